/* firegridctl: global options, subcommand dispatch, store opening and the
 * table printer (see ctl.h). */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <jansson.h>
#include "ctl.h"
#include "fg_config.h"
#include "util.h"

static const struct {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "status", ctl_cmd_status, "incidents by state, outbox depth, dead letters, counters" },
	{ "incidents", ctl_cmd_incidents, "list incidents [--state S] [--limit N]" },
	{ "incident", ctl_cmd_incident, "one incident with its history and deliveries: incident ID" },
	{ "outbox", ctl_cmd_outbox, "pending webhook deliveries [--limit N]" },
	{ "dead-letters", ctl_cmd_dead_letters, "deliveries a sink refused for good [--limit N]" },
	{ "decode", ctl_cmd_decode, "run files through a plugin: decode --plugin NAME FILE..." },
	{ "plugins", ctl_cmd_plugins, "plugins in the plugin dir: version, ABI, options [--builtin]" },
	{ "devices", ctl_cmd_devices, "the device registry: devices import FILE.csv [--replace] | export [FILE]" },
	{ "report", ctl_cmd_report, "analytics: report [--since 30d] [--by kind|building|grid|hour] [--csv]" },
	{ "interlock", ctl_cmd_interlock, "power cut-offs: interlock status | history | restore RULE" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: firegridctl [--config FILE] [--db FILE] [--json] COMMAND [ARGS]\n"
	           "\n"
	           "Options:\n"
	           "  --config FILE  daemon configuration (default %s)\n"
	           "  --db FILE      store database (default: [store] path of the configuration)\n"
	           "  --json         one JSON document on stdout instead of tables\n"
	           "  --help         this text;  COMMAND --help for a command's options\n"
	           "  --version      print the version\n"
	           "\n"
	           "Commands:\n",
	        FG_SYSCONFDIR "/firegrid.conf");
	for (size_t i = 0; i < FG_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
}

/* The config's store path: absolute as given, relative to state_dir, or
 * the default file in state_dir. */
static char *conf_db_path(const struct fg_conf *conf)
{
	const char *dir = conf->state_dir ? conf->state_dir : FG_STATEDIR;
	const char *file = conf->db_path ? conf->db_path : "firegrid.db";
	char *path;
	if (file[0] == '/')
		return strdup(file);
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return NULL;
	return path;
}

static int open_store(struct ctl *c, bool writable, fg_store **ret)
{
	char *owned = NULL;
	const char *path = c->db_path;
	if (!path) {
		if (!c->conf) {
			char *errors = NULL;
			int r = fg_conf_load(c->config_path, &c->conf, &errors);
			if (r < 0) {
				fprintf(stderr, "firegridctl: %s\n", errors ? errors : fg_strerror(r));
				fprintf(stderr, "firegridctl: cannot find the store; pass --db FILE\n");
				free(errors);
				return r;
			}
		}
		path = owned = conf_db_path(c->conf);
		if (!path) {
			fprintf(stderr, "firegridctl: out of memory\n");
			return -ENOMEM;
		}
	}
	/* Writers (the registry import) create and migrate the store like
	 * firegridd would, and wait for its group commits (busy timeout). */
	int r = writable ? fg_store_open(path, c->conf ? c->conf->durability : FG_DURABILITY_FULL, ret)
	                 : fg_store_open_readonly(path, ret);
	if (r == -ENOENT && !writable)
		fprintf(stderr, "firegridctl: %s: no firegrid store there (has firegridd run?)\n", path);
	else if (r == -EPROTO)
		fprintf(stderr, "firegridctl: %s: written by a newer firegrid; upgrade firegridctl\n", path);
	else if (r < 0)
		fprintf(stderr, "firegridctl: cannot open %s: %s\n", path, fg_strerror(r));
	free(owned);
	return r;
}

int ctl_open_store(struct ctl *c, fg_store **ret)
{
	return open_store(c, false, ret);
}

int ctl_open_store_rw(struct ctl *c, fg_store **ret)
{
	return open_store(c, true, ret);
}

int ctl_json_print(struct json_t *doc)
{
	if (!doc) {
		fprintf(stderr, "firegridctl: out of memory\n");
		return 1;
	}
	int r = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	json_decref(doc);
	if (r < 0 || fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, "firegridctl: cannot write output\n");
		return 1;
	}
	return 0;
}

const char *ctl_time(int64_t ms, char *buf, size_t len)
{
	if (ms == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	return fg_time_iso(ms, buf, len);
}

/* ---- table printer ------------------------------------------------------ */

struct ctl_table {
	size_t ncols;
	size_t nrows;              /* including the header row */
	size_t cap;
	char **cells;              /* nrows * ncols */
	size_t *width;             /* display width per column */
	bool oom;
};

/* Columns of terminal text: device names and notes may be UTF-8 (Chinese
 * building names), which take two columns per character. */
static size_t display_width(const char *s)
{
	mbstate_t st;
	memset(&st, 0, sizeof(st));
	size_t w = 0, left = strlen(s);
	while (left) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, left, &st);
		if (n == (size_t)-1 || n == (size_t)-2) {
			/* Not valid in this locale: count the byte. */
			memset(&st, 0, sizeof(st));
			n = 1;
			w++;
		} else {
			if (n == 0)
				n = 1;
			int cw = wcwidth(wc);
			w += cw > 0 ? (size_t)cw : 0;
		}
		s += n;
		left -= n;
	}
	return w;
}

struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ncols = ncols;
	t->width = calloc(ncols, sizeof(*t->width));
	if (!t->width) {
		free(t);
		return NULL;
	}
	ctl_table_add(t, headers);
	return t;
}

void ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (!t || t->oom)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
		if (!nc) {
			t->oom = true;
			return;
		}
		t->cells = nc;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "";
		row[i] = strdup(s);
		if (!row[i]) {
			while (i--)
				free(row[i]);
			t->oom = true;
			return;
		}
		size_t w = display_width(s);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
}

void ctl_table_print(struct ctl_table *t, FILE *f)
{
	if (!t)
		return;
	for (size_t r = 0; r < t->nrows; r++) {
		char **row = t->cells + r * t->ncols;
		for (size_t i = 0; i < t->ncols; i++) {
			bool last = i + 1 == t->ncols;
			fputs(row[i], f);
			if (!last)
				for (size_t pad = display_width(row[i]); pad < t->width[i] + 2; pad++)
					fputc(' ', f);
		}
		fputc('\n', f);
	}
	if (t->oom)
		fprintf(stderr, "firegridctl: out of memory, table truncated\n");
}

void ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .config_path = FG_SYSCONFDIR "/firegrid.conf" };
	int opt;

	setlocale(LC_CTYPE, "");
	/* "+": stop at the command; what follows belongs to it. */
	while ((opt = getopt_long(argc, argv, "+c:d:jhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c.config_path = optarg;
			break;
		case 'd':
			c.db_path = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("firegridctl %s\n", FG_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	int ret = -1;
	for (size_t i = 0; i < FG_ARRAY_SIZE(commands); i++) {
		if (strcmp(name, commands[i].name) == 0) {
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;
			optind = 0;   /* glibc: full re-initialisation for the command */
			ret = commands[i].fn(&c, sub_argc, sub_argv);
			break;
		}
	}
	if (ret < 0) {
		fprintf(stderr, "firegridctl: unknown command '%s'\n", name);
		usage(stderr);
		ret = 2;
	}
	fg_conf_free(c.conf);
	return ret;
}
