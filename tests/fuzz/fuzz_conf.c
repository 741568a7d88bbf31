/* Fuzz target: the config loader (libinih reader, option tables, checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct fg_conf *conf = NULL;
	char *errors = NULL;
	if (fg_conf_load_string("fuzz.conf", text, &conf, &errors) == 0)
		fg_conf_free(conf);
	free(errors);
	free(text);
	return 0;
}
