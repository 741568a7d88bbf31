/* ctl_decode.c: `firegridctl decode` (see ctl.h).  Placeholder until the
 * plugin host lands. */
#include <stdio.h>
#include "ctl.h"

int ctl_cmd_decode(struct ctl *c, int argc, char **argv)
{
	(void)c; (void)argc; (void)argv;
	fprintf(stderr, "firegridctl decode: plugin host not built in yet\n");
	return 1;
}
