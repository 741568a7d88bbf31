/*
 * `firegridctl plugins`: what firegridd would load from its plugin
 * directory (see ctl.h): every module that passes the ABI gate with its
 * version, ABI, options and the config sources that use it, and every module
 * the host refuses with the reason.  --builtin lists the plugins linked into
 * firegridctl itself instead (what `decode` uses without --plugin-dir).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctl.h"
#include "fg_config.h"
#include "options.h"
#include "plugin_host.h"
#include "util.h"

extern const struct fg_plugin *const fg_builtin_plugins[];

char *ctl_plugin_dir(struct ctl *c)
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

/* One plugin as listed: loaded (desc) or refused (error). */
struct entry {
	char name[72];
	char module[4096];
	const struct fg_plugin *desc;
	char error[512];
};

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The module file the host loads for `name`, in either layout. */
static bool module_file(const char *dir, const char *name, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s.so", dir, name) < len && is_file(buf))
		return true;
	return (size_t)snprintf(buf, len, "%s/%s/%s.so", dir, name, name) < len && is_file(buf);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* Every module of the plugin dir through the host's ABI gate. */
static int scan(fg_plugin_host *host, const char *dir, struct entry **ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct entry *list = NULL;
	size_t n = 0;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		char name[72];
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len >= sizeof(name) + 3)
			continue;
		snprintf(name, sizeof(name), "%.*s",
		         (int)(len > 3 && strcmp(de->d_name + len - 3, ".so") == 0 ? len - 3 : len),
		         de->d_name);
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcmp(list[i].name, name) == 0;
		struct entry e = { 0 };
		if (dup || !module_file(dir, name, e.module, sizeof(e.module)))
			continue;
		snprintf(e.name, sizeof(e.name), "%s", name);
		if (fg_plugin_host_find(host, name, &e.desc, e.error, sizeof(e.error)) < 0)
			e.desc = NULL;
		struct entry *x = realloc(list, (n + 1) * sizeof(*x));
		if (!x) {
			r = -ENOMEM;
			break;
		}
		list = x;
		list[n++] = e;
	}
	closedir(d);
	if (r < 0) {
		free(list);
		return r;
	}
	qsort(list, n, sizeof(*list), cmp_entry);
	*ret = list;
	*ret_n = n;
	return 0;
}

static int builtins(struct entry **ret, size_t *ret_n)
{
	size_t n = 0;
	while (fg_builtin_plugins[n])
		n++;
	struct entry *list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		list[i].desc = fg_builtin_plugins[i];
		snprintf(list[i].name, sizeof(list[i].name), "%s", list[i].desc->name);
	}
	qsort(list, n, sizeof(*list), cmp_entry);
	*ret = list;
	*ret_n = n;
	return 0;
}

static const char *opt_type(fg_opt_type t)
{
	switch (t) {
	case FG_OPT_STRING: return "string";
	case FG_OPT_INT: return "integer";
	case FG_OPT_DOUBLE: return "number";
	case FG_OPT_BOOL: return "boolean";
	case FG_OPT_DURATION: return "duration";
	default: return "?";
	}
}

/* The sources of the daemon's config that use `name`, comma separated. */
static void sources_of(const struct ctl *c, const char *name, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; c->conf && i < c->conf->n_sources; i++) {
		const struct fg_conf_source *s = &c->conf->sources[i];
		size_t used = strlen(buf);
		if (strcmp(s->plugin, name) == 0 && used + 1 < len)
			snprintf(buf + used, len - used, "%s%s", used ? "," : "", s->name);
	}
}

static json_t *plugin_json(const struct ctl *c, const struct entry *e, bool builtin)
{
	const struct fg_plugin *p = e->desc;
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "version", p->version ? json_string(p->version) : json_null());
	json_object_set_new(o, "description",
	                    p->description ? json_string(p->description) : json_null());
	json_object_set_new(o, "abi_major", json_integer(p->abi_major));
	json_object_set_new(o, "descriptor_size", json_integer(p->struct_size));
	json_object_set_new(o, "module", builtin ? json_null() : json_string(e->module));
	json_object_set_new(o, "builtin", json_boolean(builtin));
	char used[1024];
	sources_of(c, p->name, used, sizeof(used));
	json_t *src = json_array();
	for (char *save = NULL, *t = strtok_r(used, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(src, json_string(t));
	json_object_set_new(o, "sources", src);
	json_t *opts = json_array();
	for (const struct fg_option *op = p->options; op && op->key; op++) {
		json_t *jo = json_pack("{s:s,s:s}", "key", op->key, "type", opt_type(op->type));
		json_object_set_new(jo, "default", op->default_value ? json_string(op->default_value)
		                                                      : json_null());
		if (op->max > op->min && op->type != FG_OPT_STRING && op->type != FG_OPT_BOOL) {
			json_object_set_new(jo, "min", json_real(op->min));
			json_object_set_new(jo, "max", json_real(op->max));
		}
		json_object_set_new(jo, "description",
		                    op->description ? json_string(op->description) : json_null());
		json_array_append_new(opts, jo);
	}
	json_object_set_new(o, "options", opts);
	return o;
}

static int print_json(const struct ctl *c, const char *dir, const struct entry *list, size_t n,
                      bool builtin)
{
	json_t *doc = json_object(), *plugins = json_array(), *refused = json_array();
	json_object_set_new(doc, "plugin_dir", builtin ? json_null() : json_string(dir));
	json_object_set_new(doc, "abi_major", json_integer(FG_PLUGIN_ABI_MAJOR));
	for (size_t i = 0; i < n; i++) {
		if (list[i].desc)
			json_array_append_new(plugins, plugin_json(c, &list[i], builtin));
		else
			json_array_append_new(refused, json_pack("{s:s,s:s,s:s}", "name", list[i].name,
			                                          "module", list[i].module,
			                                          "error", list[i].error));
	}
	json_object_set_new(doc, "plugins", plugins);
	json_object_set_new(doc, "refused", refused);
	return ctl_json_print(doc);
}

static void print_human(const struct ctl *c, const char *dir, const struct entry *list,
                        size_t n, bool builtin)
{
	static const char *const head[] = { "PLUGIN", "VERSION", "ABI", "SOURCES", "MODULE",
	                                    "DESCRIPTION" };
	if (builtin)
		printf("Plugins built into firegridctl (plugin ABI %u):\n\n", FG_PLUGIN_ABI_MAJOR);
	else
		printf("Plugins in %s (plugin ABI %u):\n\n", dir, FG_PLUGIN_ABI_MAJOR);
	struct ctl_table *t = ctl_table_new(6, head);
	size_t loaded = 0;
	for (size_t i = 0; i < n; i++) {
		const struct fg_plugin *p = list[i].desc;
		if (!p)
			continue;
		char abi[32], used[256];
		snprintf(abi, sizeof(abi), "%u", p->abi_major);
		sources_of(c, p->name, used, sizeof(used));
		const char *row[] = { p->name, p->version ? p->version : "-", abi,
		                      used[0] ? used : "-", builtin ? "(built in)" : list[i].module,
		                      p->description ? p->description : "" };
		ctl_table_add(t, row);
		loaded++;
	}
	if (loaded)
		ctl_table_print(t, stdout);
	else
		printf("(no plugins)\n");
	ctl_table_free(t);

	for (size_t i = 0; i < n; i++)
		if (!list[i].desc)
			printf("\nREFUSED %s: %s\n", list[i].name, list[i].error);

	static const char *const ohead[] = { "  OPTION", "TYPE", "DEFAULT", "DESCRIPTION" };
	for (size_t i = 0; i < n; i++) {
		const struct fg_plugin *p = list[i].desc;
		if (!p || !p->options || !p->options[0].key)
			continue;
		printf("\n%s options:\n", p->name);
		struct ctl_table *o = ctl_table_new(4, ohead);
		for (const struct fg_option *op = p->options; op->key; op++) {
			char key[128], type[96];
			snprintf(key, sizeof(key), "  %s", op->key);
			fg_options_describe(op, type, sizeof(type));
			const char *row[] = { key, type, op->default_value ? op->default_value : "-",
			                      op->description ? op->description : "" };
			ctl_table_add(o, row);
		}
		ctl_table_print(o, stdout);
		ctl_table_free(o);
	}
}

static void plugins_usage(FILE *f)
{
	fputs("usage: firegridctl [--json] plugins [--plugin-dir DIR] [--builtin]\n"
	      "  Lists the plugins firegridd loads from its plugin directory ([daemon]\n"
	      "  plugin_dir of the config, or --plugin-dir) with version, ABI, the config\n"
	      "  sources using them and their options; modules the ABI check refuses are\n"
	      "  listed with the reason.  --builtin lists firegridctl's built-in plugins.\n", f);
}

int ctl_cmd_plugins(struct ctl *c, int argc, char **argv)
{
	const char *dir_arg = NULL;
	bool builtin = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			plugins_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--json") == 0) {
			c->json = true;
		} else if (strcmp(argv[i], "--builtin") == 0) {
			builtin = true;
		} else if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc) {
			dir_arg = argv[++i];
		} else if (strncmp(argv[i], "--plugin-dir=", 13) == 0) {
			dir_arg = argv[i] + 13;
		} else {
			fprintf(stderr, "firegridctl plugins: unexpected argument '%s'\n", argv[i]);
			plugins_usage(stderr);
			return 2;
		}
	}
	/* The config names the sources even when --plugin-dir overrides it. */
	char *dir = ctl_plugin_dir(c);
	if (!c->conf && c->config_path && access(c->config_path, R_OK) == 0)
		fprintf(stderr, "firegridctl plugins: %s does not load (see firegridd "
		        "--check-config); sources not shown\n", c->config_path);
	if (dir_arg) {
		free(dir);
		dir = strdup(dir_arg);
	}
	fg_plugin_host *host = NULL;
	struct entry *list = NULL;
	size_t n = 0;
	int r = dir ? fg_plugin_host_new(dir, &host) : -ENOMEM;
	if (r == 0) {
		fg_plugin_host_prefer_modules(host, true);
		r = builtin ? builtins(&list, &n) : scan(host, dir, &list, &n);
	}
	int ret = 0;
	if (r < 0) {
		fprintf(stderr, "firegridctl plugins: %s: %s\n", dir ? dir : "plugin dir",
		        fg_strerror(r));
		ret = 1;
	} else if (c->json) {
		ret = print_json(c, dir, list, n, builtin);
	} else {
		print_human(c, dir, list, n, builtin);
	}
	free(list);
	fg_plugin_host_free(host);
	free(dir);
	return ret;
}
