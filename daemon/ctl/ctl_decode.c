/*
 * `firegridctl decode`: the plugin maintainers' harness (see ctl.h).  The
 * files run in order as one message stream through one plugin instance, so
 * state carries from file to file exactly as in the daemon; --topic and
 * --header apply to the files after them.  One JSON line per normalised
 * event on stdout (fg_ev_to_json_line), nothing for a message without
 * events; a file the plugin rejects is reported on stderr as "FILE: reason"
 * and the run goes on.  Exit 0, 1 if any file failed, 2 on usage errors.
 *
 * --hex (like --topic, for the files after it) reads binary samples kept as
 * text: "--hex -" takes the whole file as hex digits, "--hex KEY" the string
 * member KEY of a JSON object (the corpus's binary samples keep their frames
 * in "frame_hex" / "payload_hex"); whitespace between digits is skipped and
 * "--hex=" goes back to raw files.
 *
 * --at TIME moves the clock forward: every wake-up the plugin asked for
 * (fg_host.wake_at) that falls due by TIME runs first, in time order, each
 * with the clock at its own due time; the files after it are then decoded
 * at TIME.  That is how golden tests let minutes pass without messages.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "ctl.h"
#include "ctl_modbus.h"
#include "fg_config.h"
#include "plugin_host.h"
#include "util.h"

#define DECODE_MAX_FILE (16 * 1024 * 1024)

/* One file to decode and the topic/headers in force where it was named. */
struct job {
	const char *path;          /* NULL: a clock step (--at) */
	int64_t at_ms;
	const char *topic;
	const char *hex;           /* NULL raw, "-" hex text, else a JSON member */
	struct fg_header *headers;
	size_t n_headers;
};

struct decode_args {
	const char *plugin;
	const char *plugin_dir;
	const char *source;
	const char *now;
	struct fg_conf_kv *opts;
	size_t n_opts;
	struct job *jobs;
	size_t n_jobs;
	char **pool;               /* strings the headers and options point into */
	size_t n_pool;
};

static void decode_usage(FILE *f)
{
	fputs("usage: firegridctl decode --plugin NAME [--plugin-dir DIR] [--source NAME]\n"
	      "                          [--option KEY=VALUE]... [--now ISO-8601]\n"
	      "                          [--topic TOPIC] [--header 'Name: value']\n"
	      "                          [--hex -|KEY] [--at ISO-8601] FILE...\n"
	      "  Runs the files in order as one message stream through the plugin and prints\n"
	      "  one JSON line per event.  --topic, --header and --hex apply to the files after\n"
	      "  them; --hex - reads a file as hex digits, --hex KEY the hex string member KEY\n"
	      "  of a JSON file (binary samples), --hex= raw files again;\n"
	      "  --at moves the clock to a later time, first running the plugin's wake-ups\n"
	      "  due by then, and decodes the files after it at that time.  With a Modbus\n"
	      "  plugin a FILE is a captured exchange (hex ADUs) or a poll payload, and the\n"
	      "  [modbus-device] keys registers, scale, word_order, offline_after, unit and\n"
	      "  role may be given as --option too;\n"
	      "  --plugin-dir loads the plugin's module from DIR (DIR/NAME.so or\n"
	      "  DIR/NAME/NAME.so) in preference to the built-in one.\n", f);
}

static char *pool_add(struct decode_args *a, char *s)
{
	if (!s)
		return NULL;
	char **p = realloc(a->pool, (a->n_pool + 1) * sizeof(*p));
	if (!p) {
		free(s);
		return NULL;
	}
	a->pool = p;
	a->pool[a->n_pool++] = s;
	return s;
}

static void decode_args_free(struct decode_args *a)
{
	for (size_t i = 0; i < a->n_jobs; i++)
		free(a->jobs[i].headers);
	free(a->jobs);
	free(a->opts);
	for (size_t i = 0; i < a->n_pool; i++)
		free(a->pool[i]);
	free(a->pool);
}

/* "Name: value" -> lower-case name, trimmed value.  -EINVAL without a colon
 * or with an empty name. */
static int parse_header(struct decode_args *a, const char *text, struct fg_header *h)
{
	const char *colon = strchr(text, ':');
	if (!colon || colon == text)
		return -EINVAL;
	char *name = pool_add(a, strndup(text, (size_t)(colon - text)));
	const char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	char *value = pool_add(a, strdup(v));
	if (!name || !value)
		return -ENOMEM;
	size_t n = strlen(value);
	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		value[--n] = '\0';
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	h->name = name;
	h->value = value;
	return 0;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past the value.
 * 1 matched, 0 not this flag, -1 matched without a value. */
static int take(int argc, char **argv, int *i, const char *name, const char **ret)
{
	size_t n = strlen(name);
	const char *arg = argv[*i];
	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*ret = arg + n + 1;
		return 1;
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "firegridctl decode: %s needs a value\n", name);
		return -1;
	}
	*ret = argv[++*i];
	return 1;
}

static int add_option(struct decode_args *a, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq || eq == v) {
		fprintf(stderr, "firegridctl decode: --option wants KEY=VALUE, got '%s'\n", v);
		return -EINVAL;
	}
	struct fg_conf_kv *o = realloc(a->opts, (a->n_opts + 1) * sizeof(*o));
	if (!o)
		return -ENOMEM;
	a->opts = o;
	o = &a->opts[a->n_opts];
	o->key = pool_add(a, strndup(v, (size_t)(eq - v)));
	o->value = pool_add(a, strdup(eq + 1));
	o->line = (int)++a->n_opts;   /* "command line:N:" counts --options */
	return o->key && o->value ? 0 : -ENOMEM;
}

/* The headers in force: a header named again replaces its earlier value. */
static int add_header(struct decode_args *a, const char *v, struct fg_header **hdrs,
                      size_t *n_hdrs)
{
	struct fg_header h;
	int r = parse_header(a, v, &h);
	if (r < 0) {
		if (r == -EINVAL)
			fprintf(stderr, "firegridctl decode: --header wants 'Name: value', got '%s'\n", v);
		return r;
	}
	size_t k = 0;
	while (k < *n_hdrs && strcmp((*hdrs)[k].name, h.name) != 0)
		k++;
	if (k == *n_hdrs) {
		struct fg_header *x = realloc(*hdrs, (*n_hdrs + 1) * sizeof(*x));
		if (!x)
			return -ENOMEM;
		*hdrs = x;
		(*n_hdrs)++;
	}
	(*hdrs)[k] = h;
	return 0;
}

/* A file, with a snapshot of the topic and headers named before it. */
static int add_job(struct decode_args *a, const char *path, const char *topic,
                   const char *hex, const struct fg_header *hdrs, size_t n_hdrs)
{
	struct job *j = realloc(a->jobs, (a->n_jobs + 1) * sizeof(*j));
	if (!j)
		return -ENOMEM;
	a->jobs = j;
	j = &a->jobs[a->n_jobs++];
	*j = (struct job){ .path = path, .topic = topic, .hex = hex, .n_headers = n_hdrs };
	if (n_hdrs) {
		if (!(j->headers = malloc(n_hdrs * sizeof(*hdrs))))
			return -ENOMEM;
		memcpy(j->headers, hdrs, n_hdrs * sizeof(*hdrs));
	}
	return 0;
}

enum decode_flag { F_PLUGIN, F_PLUGIN_DIR, F_SOURCE, F_NOW, F_TOPIC, F_OPTION, F_HEADER, F_HEX,
                   F_AT, F__N };

static const char *const decode_flags[F__N] = {
	[F_PLUGIN] = "--plugin", [F_PLUGIN_DIR] = "--plugin-dir", [F_SOURCE] = "--source",
	[F_NOW] = "--now", [F_TOPIC] = "--topic", [F_OPTION] = "--option", [F_HEADER] = "--header",
	[F_HEX] = "--hex", [F_AT] = "--at",
};

static int parse_args(int argc, char **argv, struct decode_args *a)
{
	const char *topic = "", *hex = NULL;
	struct fg_header *hdrs = NULL;
	size_t n_hdrs = 0;
	int r = 0;
	bool files_only = false;

	for (int i = 1; i < argc && r == 0; i++) {
		if (files_only || argv[i][0] != '-' || argv[i][1] == '\0') {
			r = add_job(a, argv[i], topic, hex, hdrs, n_hdrs);
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			files_only = true;
			continue;
		}
		const char *v = NULL;
		int f = 0, t = 0;
		while (f < F__N && (t = take(argc, argv, &i, decode_flags[f], &v)) == 0)
			f++;
		if (f == F__N) {
			fprintf(stderr, "firegridctl decode: unknown option '%s'\n", argv[i]);
			r = -EINVAL;
		} else if (t < 0) {
			r = -EINVAL;
		} else if (f == F_OPTION) {
			r = add_option(a, v);
		} else if (f == F_HEADER) {
			r = add_header(a, v, &hdrs, &n_hdrs);
		} else if (f == F_TOPIC) {
			topic = v;
		} else if (f == F_HEX) {
			hex = v[0] ? v : NULL;
		} else if (f == F_AT) {
			int64_t at = 0;
			if (fg_time_parse_iso(v, &at) < 0 || at <= 0) {
				fprintf(stderr, "firegridctl decode: --at wants an ISO-8601 time like "
				        "2025-03-14T09:00:00Z, got '%s'\n", v);
				r = -EINVAL;
			} else if ((r = add_job(a, NULL, topic, hex, NULL, 0)) == 0) {
				a->jobs[a->n_jobs - 1].at_ms = at;
			}
		} else {
			const char **dst[] = { [F_PLUGIN] = &a->plugin, [F_PLUGIN_DIR] = &a->plugin_dir,
			                       [F_SOURCE] = &a->source, [F_NOW] = &a->now };
			*dst[f] = v;
		}
	}
	free(hdrs);
	if (r == -ENOMEM)
		fprintf(stderr, "firegridctl decode: out of memory\n");
	if (r == 0 && !a->plugin) {
		fprintf(stderr, "firegridctl decode: --plugin NAME is required\n");
		r = -EINVAL;
	}
	size_t n_files = 0;
	for (size_t i = 0; i < a->n_jobs; i++)
		n_files += a->jobs[i].path != NULL;
	if (r == 0 && n_files == 0) {
		fprintf(stderr, "firegridctl decode: no FILE given\n");
		r = -EINVAL;
	}
	return r;
}

static int open_plugin(fg_plugin_host **host, const char *dir, bool prefer_modules,
                       const char *name, const struct fg_plugin **ret, char *why, size_t whylen)
{
	if (fg_plugin_host_new(dir, host) < 0)
		return -ENOMEM;
	fg_plugin_host_prefer_modules(*host, prefer_modules);
	return fg_plugin_host_find(*host, name, ret, why, whylen);
}

static void print_event_cb(void *data, const struct fg_ev *ev)
{
	FILE *out = data;
	char *line = fg_ev_to_json_line(ev);
	if (!line) {
		fprintf(stderr, "firegridctl decode: out of memory formatting an event\n");
		return;
	}
	fputs(line, out);
	fputc('\n', out);
	free(line);
}

/* Wake-ups print their events like files, and report failures as
 * "wake-up DEVICE: reason" (the exit status becomes 1). */
static void wake_event_cb(void *data, const struct fg_ev *ev)
{
	print_event_cb(stdout, ev);
}

static void wake_done_cb(void *data, const char *device, int result, const char *reason,
                         unsigned rejected)
{
	int *ret = data;
	fflush(stdout);
	if (result < 0) {
		fprintf(stderr, "wake-up %s: %s\n", device, reason ? reason : fg_strerror(result));
		*ret = 1;
	} else if (rejected) {
		fprintf(stderr, "wake-up %s: %u event(s) failed validation\n", device, rejected);
		*ret = 1;
	}
}

/*
 * A binary sample kept as hex text (--hex): the whole file ("-") or the
 * string member `key` of a JSON object.  Replaces *buf and *len with the bytes.
 * Returns 0, or -EINVAL with a reason in why.
 */
static int unhex(const char *key, char **buf, size_t *len, char *why, size_t whylen)
{
	json_t *root = NULL;
	const char *text = *buf;
	size_t n = *len;
	if (strcmp(key, "-") != 0) {
		json_error_t jerr;
		root = json_loadb(*buf, *len, 0, &jerr);
		json_t *v = json_object_get(root, key);
		if (!json_is_string(v)) {
			snprintf(why, whylen, "--hex %s: %s", key, !root ? "not a JSON object"
			         : "no string member of that name");
			json_decref(root);
			return -EINVAL;
		}
		text = json_string_value(v);
		n = json_string_length(v);
	}
	char *out = malloc(n / 2 + 1);
	size_t m = 0;
	int hi = -1, r = out ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (isspace(c))
			continue;
		int d = isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
		if (d < 0) {
			snprintf(why, whylen, "--hex: '%c' at offset %zu is not a hex digit", c, i);
			r = -EINVAL;
		} else if (hi < 0) {
			hi = d;
		} else {
			out[m++] = (char)(hi << 4 | d);
			hi = -1;
		}
	}
	if (r == 0 && hi >= 0) {
		snprintf(why, whylen, "--hex: an odd number of hex digits");
		r = -EINVAL;
	}
	json_decref(root);
	if (r < 0) {
		free(out);
		return r;
	}
	free(*buf);
	*buf = out;
	*len = m;
	return 0;
}

/* Decode one file; returns 0, or -1 after reporting it on stderr.  mb is
 * set for Modbus plugins: the file is turned into a poll payload first. */
static int decode_file(fg_source_inst *si, const struct job *j, struct ctl_modbus *mb,
                       int64_t now_ms)
{
	char *buf = NULL;
	size_t len = 0;
	char why[256] = "", topic[512];
	int r = fg_read_file(j->path, DECODE_MAX_FILE, &buf, &len);
	if (r == 0 && j->hex)
		r = unhex(j->hex, &buf, &len, why, sizeof(why));
	if (r == 0 && mb) {
		char *payload = NULL;
		r = ctl_modbus_payload(mb, fg_source_inst_conf(si)->name, buf, len, &payload, &len,
		                       topic, sizeof(topic), why, sizeof(why));
		free(buf);
		buf = payload;
	}
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", j->path, why[0] ? why : fg_strerror(r));
		free(buf);
		return -1;
	}
	struct fg_msg msg = {
		.struct_size = sizeof(msg),
		.source = fg_source_inst_conf(si)->name,
		.transport = mb ? "modbus" : "file",
		.topic = mb && !j->topic[0] ? topic : j->topic,
		.payload = (const uint8_t *)buf,
		.len = len,
		.headers = j->headers,
		.n_headers = j->n_headers,
		.recv_time_ms = now_ms ? now_ms : fg_now_ms(),
	};
	const char *reason = NULL;
	unsigned rejected = 0;
	r = fg_source_inst_decode(si, &msg, print_event_cb, stdout, &reason, &rejected);
	fflush(stdout);
	free(buf);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", j->path, reason ? reason : fg_strerror(r));
		return -1;
	}
	if (rejected) {
		fprintf(stderr, "%s: %u event(s) from plugin '%s' failed validation\n", j->path,
		        rejected, fg_source_inst_plugin(si)->name);
		return -1;
	}
	return 0;
}

int ctl_cmd_decode(struct ctl *c, int argc, char **argv)
{
	struct decode_args a = { 0 };
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		decode_usage(stdout);
		return 0;
	}
	if (parse_args(argc, argv, &a) < 0) {
		decode_usage(stderr);
		decode_args_free(&a);
		return 2;
	}
	int64_t now_ms = 0;
	if (a.now && fg_time_parse_iso(a.now, &now_ms) < 0) {
		fprintf(stderr, "firegridctl decode: --now wants an ISO-8601 time like "
		        "2025-03-14T09:00:00Z, got '%s'\n", a.now);
		decode_args_free(&a);
		return 2;
	}

	int ret = 1;
	fg_plugin_host *host = NULL;
	fg_source_inst *si = NULL;
	struct ctl_modbus *mb = NULL;
	/* --plugin-dir wins over the built-ins; without it a built-in needs no
	 * directory, and only an unknown name sends us to the daemon's. */
	const struct fg_plugin *plugin;
	char why[512];
	char *dir = a.plugin_dir ? strdup(a.plugin_dir) : NULL;
	int r = a.plugin_dir && !dir ? -ENOMEM
		: open_plugin(&host, dir, a.plugin_dir != NULL, a.plugin, &plugin, why, sizeof(why));
	if (r == -ENOENT && !a.plugin_dir) {
		fg_plugin_host_free(host);
		host = NULL;
		dir = ctl_plugin_dir(c);
		r = dir ? open_plugin(&host, dir, false, a.plugin, &plugin, why, sizeof(why)) : -ENOMEM;
	}
	if (r == -ENOMEM)
		snprintf(why, sizeof(why), "out of memory");
	if (r < 0) {
		fprintf(stderr, "firegridctl decode: %s\n", why);
		goto out;
	}
	r = ctl_modbus_take_options(plugin, a.opts, &a.n_opts, &mb);
	if (r) {
		ret = r;
		goto out;
	}

	struct fg_conf_source src = {
		.name = (char *)(a.source ? a.source : a.plugin),
		.line = 0,
		.plugin = (char *)a.plugin,
		.opts = a.opts,
		.n_opts = a.n_opts,
	};
	char *errors = NULL;
	if (fg_source_inst_new(host, "command line", &src, &si, &errors) < 0) {
		fprintf(stderr, "%s\n", errors ? errors : "firegridctl decode: cannot start plugin");
		free(errors);
		goto out;
	}
	if (now_ms)
		fg_source_inst_set_now(si, now_ms);
	if (mb && ctl_modbus_start(mb, si) != 0)
		goto out;

	ret = 0;
	for (size_t i = 0; i < a.n_jobs; i++) {
		if (a.jobs[i].path) {
			if (decode_file(si, &a.jobs[i], mb, now_ms) < 0)
				ret = 1;
			continue;
		}
		if (now_ms && a.jobs[i].at_ms < now_ms) {
			fprintf(stderr, "firegridctl decode: --at %lld ms goes back in time\n",
			        (long long)a.jobs[i].at_ms);
			ret = 2;
			break;
		}
		if (fg_source_inst_run_wakes(si, a.jobs[i].at_ms, true, wake_event_cb,
		                             wake_done_cb, &ret) < 0) {
			fprintf(stderr, "firegridctl decode: out of memory\n");
			ret = 1;
		}
		now_ms = a.jobs[i].at_ms;
		fg_source_inst_set_now(si, now_ms);
	}
out:
	ctl_modbus_free(mb);
	fg_source_inst_free(si);
	fg_plugin_host_free(host);
	free(dir);
	decode_args_free(&a);
	return ret;
}
