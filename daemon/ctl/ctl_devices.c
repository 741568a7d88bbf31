/* firegridctl devices: import and export the device registry (一楼一档)
 * as CSV (see registry.h for the columns and rules). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ctl.h"
#include "registry.h"
#include "util.h"

#define CSV_MAX_BYTES (16u << 20)

static const char usage_text[] =
	"Usage: firegridctl [--json] devices import FILE.csv [--replace]\n"
	"       firegridctl devices export [FILE.csv]\n"
	"\n"
	"  import    register the devices of FILE.csv (columns: device_id, plugin, name,\n"
	"            compound, building, unit, floor, room, grid_small, grid_medium,\n"
	"            grid_large, flags, contact); all or nothing: any problem is reported\n"
	"            with its line and column and nothing is written\n"
	"  --replace devices not in the file stop being registered\n"
	"  export    the registry as CSV, to FILE or stdout\n";

static int cmd_import(struct ctl *c, const char *path, bool replace)
{
	char *text = NULL, *errors = NULL;
	size_t len = 0, n = 0;
	struct fg_registry_row *rows = NULL;
	int r = fg_read_file(path, CSV_MAX_BYTES, &text, &len);
	if (r < 0) {
		fprintf(stderr, "firegridctl: %s: %s\n", path,
		        r == -EFBIG ? "larger than 16 MiB" : fg_strerror(r));
		return 1;
	}
	r = fg_registry_parse_csv(path, text, len, &rows, &n, &errors);
	free(text);
	if (r < 0) {
		if (errors)
			fprintf(stderr, "%s\n", errors);
		fprintf(stderr, "firegridctl: %s: %s; nothing imported\n", path,
		        r == -EINVAL ? "invalid registry" : r == -EFBIG ? "more than 100000 devices"
		                                                        : fg_strerror(r));
		free(errors);
		return 1;
	}
	fg_store *st = NULL;
	if (ctl_open_store_rw(c, &st) < 0) {
		fg_registry_rows_free(rows, n);
		return 1;
	}
	r = fg_registry_import(st, rows, n, replace, fg_now_ms());
	fg_registry_rows_free(rows, n);
	fg_store_close(st);
	if (r < 0) {
		fprintf(stderr, "firegridctl: cannot write the registry: %s; nothing imported\n",
		        fg_strerror(r));
		return 1;
	}
	if (c->json)
		return ctl_json_print(json_pack("{s:i, s:b}", "imported", r, "replace", replace));
	printf("%d devices registered%s\n", r, replace ? " (registry replaced)" : "");
	return 0;
}

static int cmd_export(struct ctl *c, const char *path)
{
	fg_store *st = NULL;
	if (ctl_open_store(c, &st) < 0)
		return 1;
	FILE *f = path ? fopen(path, "w") : stdout;
	if (!f) {
		fprintf(stderr, "firegridctl: %s: %s\n", path, fg_strerror(-errno));
		fg_store_close(st);
		return 1;
	}
	int r = fg_registry_export(st, f);
	if ((path && fclose(f) != 0) || (!path && fflush(f) != 0))
		r = r < 0 ? r : -EIO;
	fg_store_close(st);
	if (r < 0) {
		fprintf(stderr, "firegridctl: cannot export the registry: %s\n", fg_strerror(r));
		return 1;
	}
	if (path)
		fprintf(stderr, "%d devices written to %s\n", r, path);
	return 0;
}

int ctl_cmd_devices(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "replace", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool replace = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "rjh", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': replace = true; break;
		case 'j': c->json = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	const char *sub = optind < argc ? argv[optind] : NULL;
	int rest = argc - optind - 1;
	if (sub && strcmp(sub, "import") == 0 && rest == 1)
		return cmd_import(c, argv[optind + 1], replace);
	if (sub && strcmp(sub, "export") == 0 && rest <= 1 && !replace)
		return cmd_export(c, rest == 1 ? argv[optind + 1] : NULL);
	fputs(usage_text, stderr);
	return 2;
}
