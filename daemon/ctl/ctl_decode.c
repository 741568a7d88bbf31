/*
 * `firegridctl decode`: the plugin maintainers' harness (see ctl.h).  The
 * files run in order as one message stream through one plugin instance, so
 * state carries from file to file exactly as in the daemon; --topic and
 * --header apply to the files after them.  One JSON line per normalised
 * event on stdout (fg_ev_to_json_line), nothing for a message without
 * events; a file the plugin rejects is reported on stderr as "FILE: reason"
 * and the run goes on.  Exit 0, 1 if any file failed, 2 on usage errors.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctl.h"
#include "ctl_modbus.h"
#include "fg_config.h"
#include "plugin_host.h"
#include "util.h"

#define DECODE_MAX_FILE (16 * 1024 * 1024)

/* One file to decode and the topic/headers/clock in force where it was named. */
struct job {
	const char *path;
	const char *topic;
	int64_t now_ms;            /* --now before it; 0 = real time */
	struct fg_header *headers;
	size_t n_headers;
};

struct decode_args {
	const char *plugin;
	const char *plugin_dir;
	const char *source;
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
	      "                          [--topic TOPIC] [--header 'Name: value'] FILE...\n"
	      "  Runs the files in order as one message stream through the plugin and prints\n"
	      "  one JSON line per event.  --topic, --header and --now apply to the files after\n"
	      "  them.  With a Modbus plugin a FILE is a captured exchange (hex ADUs) or a poll\n"
	      "  payload, and the [modbus-device] keys registers, scale, word_order,\n"
	      "  offline_after, unit and role may be given as --option too.\n"
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

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past the value. */
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

static int parse_args(int argc, char **argv, struct decode_args *a)
{
	const char *topic = "";
	int64_t now_ms = 0;
	struct fg_header *hdrs = NULL;
	size_t n_hdrs = 0;
	int r = 0;
	bool files_only = false;

	for (int i = 1; i < argc && r == 0; i++) {
		const char *v = NULL;
		int t;
		if (!files_only && strcmp(argv[i], "--") == 0) {
			files_only = true;
		} else if (!files_only && (t = take(argc, argv, &i, "--plugin", &v)) != 0) {
			r = t < 0 ? -EINVAL : 0;
			a->plugin = v;
		} else if (!files_only && (t = take(argc, argv, &i, "--plugin-dir", &v)) != 0) {
			r = t < 0 ? -EINVAL : 0;
			a->plugin_dir = v;
		} else if (!files_only && (t = take(argc, argv, &i, "--source", &v)) != 0) {
			r = t < 0 ? -EINVAL : 0;
			a->source = v;
		} else if (!files_only && (t = take(argc, argv, &i, "--now", &v)) != 0) {
			r = t < 0 ? -EINVAL : 0;
			if (r == 0 && fg_time_parse_iso(v, &now_ms) < 0) {
				fprintf(stderr, "firegridctl decode: --now wants an ISO-8601 time like "
				        "2025-03-14T09:00:00Z, got '%s'\n", v);
				r = -EINVAL;
			}
		} else if (!files_only && (t = take(argc, argv, &i, "--topic", &v)) != 0) {
			r = t < 0 ? -EINVAL : 0;
			topic = v;
		} else if (!files_only && (t = take(argc, argv, &i, "--option", &v)) != 0) {
			if (t < 0) {
				r = -EINVAL;
				break;
			}
			const char *eq = strchr(v, '=');
			if (!eq || eq == v) {
				fprintf(stderr, "firegridctl decode: --option wants KEY=VALUE, got '%s'\n", v);
				r = -EINVAL;
				break;
			}
			struct fg_conf_kv *o = realloc(a->opts, (a->n_opts + 1) * sizeof(*o));
			if (!o) {
				r = -ENOMEM;
				break;
			}
			a->opts = o;
			o = &a->opts[a->n_opts];
			o->key = pool_add(a, strndup(v, (size_t)(eq - v)));
			o->value = pool_add(a, strdup(eq + 1));
			o->line = (int)++a->n_opts;
			if (!o->key || !o->value)
				r = -ENOMEM;
		} else if (!files_only && (t = take(argc, argv, &i, "--header", &v)) != 0) {
			if (t < 0) {
				r = -EINVAL;
				break;
			}
			struct fg_header h;
			if (parse_header(a, v, &h) < 0) {
				fprintf(stderr, "firegridctl decode: --header wants 'Name: value', got '%s'\n", v);
				r = -EINVAL;
				break;
			}
			/* A header named again replaces its earlier value. */
			size_t k = 0;
			while (k < n_hdrs && strcmp(hdrs[k].name, h.name) != 0)
				k++;
			if (k == n_hdrs) {
				struct fg_header *x = realloc(hdrs, (n_hdrs + 1) * sizeof(*x));
				if (!x) {
					r = -ENOMEM;
					break;
				}
				hdrs = x;
				n_hdrs++;
			}
			hdrs[k] = h;
		} else if (!files_only && argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "firegridctl decode: unknown option '%s'\n", argv[i]);
			r = -EINVAL;
		} else {
			struct job *j = realloc(a->jobs, (a->n_jobs + 1) * sizeof(*j));
			if (!j) {
				r = -ENOMEM;
				break;
			}
			a->jobs = j;
			j = &a->jobs[a->n_jobs++];
			*j = (struct job){ .path = argv[i], .topic = topic, .now_ms = now_ms,
			                   .n_headers = n_hdrs };
			if (n_hdrs) {
				j->headers = malloc(n_hdrs * sizeof(*hdrs));
				if (!j->headers) {
					r = -ENOMEM;
					break;
				}
				memcpy(j->headers, hdrs, n_hdrs * sizeof(*hdrs));
			}
		}
	}
	free(hdrs);
	if (r == -ENOMEM)
		fprintf(stderr, "firegridctl decode: out of memory\n");
	if (r == 0 && !a->plugin) {
		fprintf(stderr, "firegridctl decode: --plugin NAME is required\n");
		r = -EINVAL;
	}
	if (r == 0 && a->n_jobs == 0) {
		fprintf(stderr, "firegridctl decode: no FILE given\n");
		r = -EINVAL;
	}
	return r;
}

/*
 * Where the daemon looks for modules: [daemon] plugin_dir of the config
 * (loaded into c->conf, which firegridctl frees), else the install's plugin
 * dir.  A missing or broken config is not decode's business: it falls back
 * quietly, because built-in plugins need no directory at all.
 */
static char *daemon_plugin_dir(struct ctl *c)
{
	if (!c->conf && c->config_path && access(c->config_path, R_OK) == 0) {
		char *errors = NULL;
		if (fg_conf_load(c->config_path, &c->conf, &errors) < 0)
			c->conf = NULL;
		free(errors);
	}
	if (c->conf && c->conf->plugin_dir && c->conf->plugin_dir[0])
		return strdup(c->conf->plugin_dir);
	return strdup(FG_PLUGIN_DIR);
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

/* Decode one file; returns 0, or -1 after reporting it on stderr.  mb is
 * set for Modbus plugins: the file is turned into a poll payload first. */
static int decode_file(fg_source_inst *si, const struct job *j, struct ctl_modbus *mb)
{
	char *buf = NULL;
	size_t len = 0;
	int64_t now_ms = j->now_ms;
	int r = fg_read_file(j->path, DECODE_MAX_FILE, &buf, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", j->path, fg_strerror(r));
		return -1;
	}
	char topic[512], why[256];
	if (mb) {
		char *payload = NULL;
		r = ctl_modbus_payload(mb, fg_source_inst_conf(si)->name, buf, len, &payload, &len,
		                       topic, sizeof(topic), why, sizeof(why));
		free(buf);
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", j->path, r == -ENOMEM ? "out of memory" : why);
			return -1;
		}
		buf = payload;
	}
	fg_source_inst_set_now(si, now_ms);
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
		dir = daemon_plugin_dir(c);
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
	if (mb && ctl_modbus_start(mb, si) != 0)
		goto out;

	ret = 0;
	for (size_t i = 0; i < a.n_jobs; i++)
		if (decode_file(si, &a.jobs[i], mb) < 0)
			ret = 1;
out:
	ctl_modbus_free(mb);
	fg_source_inst_free(si);
	fg_plugin_host_free(host);
	free(dir);
	decode_args_free(&a);
	return ret;
}
