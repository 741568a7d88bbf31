/*
 * The plugin host (see plugin_host.h): finds and checks plugins, builds
 * source instances from config, implements struct fg_host for them and
 * validates everything they emit before it reaches the core.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "log.h"
#include "options.h"
#include "plugin_host.h"
#include "util.h"

/*
 * The generated built-in table (plugins/meson.build).  Weak, so that
 * firegridd, which loads modules only, links without it; then its address
 * is NULL.
 */
extern const struct fg_plugin *const fg_builtin_plugins[] __attribute__((weak));

/* The smallest descriptor ABI v1 accepts: everything up to decode. */
#define PLUGIN_V1_SIZE (offsetof(struct fg_plugin, decode) + sizeof(void (*)(void)))
#define SNAPSHOT_URL_MAX_LEN 1024
#define EVENT_V1_SIZE (offsetof(struct fg_event, attrs_json) + sizeof(const char *))

#define NAME_MAX_LEN 64
#define MAX_OPTIONS 256
#define STATE_MAX_LEN 1024            /* device, key and value, bytes */
#define STATE_MAX_ENTRIES (1u << 18)  /* per instance; bounds hostile input */
#define ATTRS_MAX_LEN (64 * 1024)
#define UNIT_MAX_LEN 16
#define WAKES_MAX (1u << 16)          /* pending wake-ups per instance */

struct module {
	char *name;
	void *dl;
	const struct fg_plugin *desc;
};

struct fg_plugin_host {
	char *plugin_dir;
	bool prefer_modules;
	struct module *mods;
	size_t n_mods;
	const struct fg_plugin **extra;   /* fg_plugin_host_register() */
	size_t n_extra;
};

/* ------------------------------------------------------------------------ */
/* Per-instance state table: (device, key) -> value, chained hash.           */
/* ------------------------------------------------------------------------ */

struct state_entry {
	struct state_entry *next;
	uint64_t hash;
	char *value;
	size_t klen;           /* bytes of k[] including both NULs */
	char k[];              /* device '\0' key '\0' */
};

struct state_table {
	struct state_entry **buckets;
	size_t nbuckets;       /* power of two, or 0 */
	size_t n;
};

static uint64_t state_hash(const char *device, const char *key)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a over device \0 key */
	for (const char *p = device; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h *= 1099511628211ull;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static struct state_entry **state_slot(struct state_table *t, const char *device,
                                       const char *key, uint64_t h)
{
	if (!t->nbuckets)
		return NULL;
	size_t dlen = strlen(device);
	struct state_entry **pp = &t->buckets[h & (t->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next) {
		struct state_entry *e = *pp;
		if (e->hash == h && strcmp(e->k, device) == 0 && strcmp(e->k + dlen + 1, key) == 0)
			return pp;
	}
	return pp;
}

static int state_grow(struct state_table *t)
{
	size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
	struct state_entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct state_entry *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
	return 0;
}

static const char *state_get(struct state_table *t, const char *device, const char *key)
{
	struct state_entry **pp = state_slot(t, device, key, state_hash(device, key));
	return pp && *pp ? (*pp)->value : NULL;
}

/* Returns 1 when the stored value changed, 0 when it was already so. */
static int state_put(struct state_table *t, const char *device, const char *key,
                     const char *value)
{
	if (strlen(device) > STATE_MAX_LEN || strlen(key) > STATE_MAX_LEN ||
	    (value && strlen(value) > STATE_MAX_LEN))
		return -E2BIG;
	uint64_t h = state_hash(device, key);
	struct state_entry **pp = state_slot(t, device, key, h);
	struct state_entry *e = pp ? *pp : NULL;
	if (!value) {
		if (!e)
			return 0;
		*pp = e->next;
		free(e->value);
		free(e);
		t->n--;
		return 1;
	}
	if (e) {
		if (strcmp(e->value, value) == 0)
			return 0;
		char *v = strdup(value);
		if (!v)
			return -ENOMEM;
		free(e->value);
		e->value = v;
		return 1;
	}
	if (t->n >= STATE_MAX_ENTRIES)
		return -ENOSPC;
	if (t->n >= t->nbuckets / 4 * 3) {
		int r = state_grow(t);
		if (r < 0)
			return r;
	}
	size_t dlen = strlen(device), klen = strlen(key);
	e = malloc(sizeof(*e) + dlen + klen + 2);
	if (!e)
		return -ENOMEM;
	e->value = strdup(value);
	if (!e->value) {
		free(e);
		return -ENOMEM;
	}
	e->hash = h;
	e->klen = dlen + klen + 2;
	memcpy(e->k, device, dlen + 1);
	memcpy(e->k + dlen + 1, key, klen + 1);
	pp = &t->buckets[h & (t->nbuckets - 1)];
	e->next = *pp;
	*pp = e;
	t->n++;
	return 1;
}

static void state_clear(struct state_table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct state_entry *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e->value);
			free(e);
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------------ */
/* Finding and checking plugins                                              */
/* ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool valid_plugin_name(const char *name)
{
	size_t n = 0;
	for (const char *p = name; *p; p++, n++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	return n > 0 && n <= NAME_MAX_LEN;
}

static size_t option_size(fg_opt_type type)
{
	switch (type) {
	case FG_OPT_STRING: return sizeof(const char *);
	case FG_OPT_INT: return sizeof(int64_t);
	case FG_OPT_DOUBLE: return sizeof(double);
	case FG_OPT_BOOL: return sizeof(int);
	case FG_OPT_DURATION: return sizeof(int64_t);
	default: return 0;
	}
}

/*
 * The ABI gate.  `want` is the name we looked for (NULL for registered
 * built-ins), `where` names the file for the message.  Fields beyond
 * abi_major/struct_size are read only once struct_size vouches for them.
 */
static int check_descriptor(const struct fg_plugin *d, const char *want, const char *where,
                            char *err, size_t errlen)
{
	const char *label = want ? want : "?";
	if (d->abi_major != FG_PLUGIN_ABI_MAJOR) {
		seterr(err, errlen, "plugin '%s' (%s): ABI major %u, this firegrid speaks %u; "
		       "rebuild it against this firegrid's plugin.h", label, where,
		       d->abi_major, FG_PLUGIN_ABI_MAJOR);
		return -EPROTO;
	}
	if (d->struct_size < PLUGIN_V1_SIZE) {
		seterr(err, errlen, "plugin '%s' (%s): descriptor is %u bytes, ABI v%u needs at "
		       "least %zu", label, where, d->struct_size, FG_PLUGIN_ABI_MAJOR,
		       (size_t)PLUGIN_V1_SIZE);
		return -EPROTO;
	}
	if (!d->name || !valid_plugin_name(d->name)) {
		seterr(err, errlen, "plugin '%s' (%s): descriptor has no valid name "
		       "(want [a-z0-9_-]{1,64})", label, where);
		return -EPROTO;
	}
	if (want && strcmp(d->name, want) != 0) {
		seterr(err, errlen, "plugin '%s' (%s): module calls itself '%s'; the file name "
		       "must match the plugin name", want, where, d->name);
		return -EPROTO;
	}
	label = d->name;
	if (!d->decode) {
		seterr(err, errlen, "plugin '%s' (%s): descriptor has no decode function",
		       label, where);
		return -EPROTO;
	}
	if (!d->options)
		return 0;
	for (size_t i = 0;; i++) {
		const struct fg_option *o = &d->options[i];
		if (i >= MAX_OPTIONS) {
			seterr(err, errlen, "plugin '%s' (%s): option table has no end marker "
			       "within %d entries", label, where, MAX_OPTIONS);
			return -EPROTO;
		}
		if (o->type == FG_OPT_END && !o->key)
			break;
		size_t sz = option_size(o->type);
		if (!o->key || !sz) {
			seterr(err, errlen, "plugin '%s' (%s): option #%zu has no key or an unknown "
			       "type %d", label, where, i, (int)o->type);
			return -EPROTO;
		}
		if (o->offset > d->config_size || d->config_size - o->offset < sz) {
			seterr(err, errlen, "plugin '%s' (%s): option '%s' lies outside the %zu-byte "
			       "config block", label, where, o->key, d->config_size);
			return -EPROTO;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->options[j].key, o->key) == 0) {
				seterr(err, errlen, "plugin '%s' (%s): option '%s' declared twice",
				       label, where, o->key);
				return -EPROTO;
			}
	}
	return 0;
}

int fg_plugin_host_new(const char *plugin_dir, fg_plugin_host **ret)
{
	fg_plugin_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (plugin_dir && *plugin_dir) {
		h->plugin_dir = strdup(plugin_dir);
		if (!h->plugin_dir) {
			free(h);
			return -ENOMEM;
		}
	}
	*ret = h;
	return 0;
}

void fg_plugin_host_free(fg_plugin_host *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_mods; i++) {
		dlclose(h->mods[i].dl);
		free(h->mods[i].name);
	}
	free(h->mods);
	free(h->extra);
	free(h->plugin_dir);
	free(h);
}

void fg_plugin_host_prefer_modules(fg_plugin_host *h, bool prefer)
{
	h->prefer_modules = prefer;
}

static const struct fg_plugin *find_builtin(fg_plugin_host *h, const char *name)
{
	for (size_t i = 0; i < h->n_extra; i++)
		if (strcmp(h->extra[i]->name, name) == 0)
			return h->extra[i];
	if (!fg_builtin_plugins)
		return NULL;
	for (size_t i = 0; fg_builtin_plugins[i]; i++)
		if (fg_builtin_plugins[i]->name && strcmp(fg_builtin_plugins[i]->name, name) == 0)
			return fg_builtin_plugins[i];
	return NULL;
}

int fg_plugin_host_register(fg_plugin_host *h, const struct fg_plugin *desc,
                            char *err, size_t errlen)
{
	int r = check_descriptor(desc, NULL, "built in", err, errlen);
	if (r < 0)
		return r;
	if (find_builtin(h, desc->name)) {
		seterr(err, errlen, "plugin '%s': already built in", desc->name);
		return -EEXIST;
	}
	const struct fg_plugin **x = realloc(h->extra, (h->n_extra + 1) * sizeof(*x));
	if (!x)
		return -ENOMEM;
	h->extra = x;
	h->extra[h->n_extra++] = desc;
	return 0;
}

/* Where a module for `name` lives in the plugin dir: "<dir>/<name>.so", or
 * "<dir>/<name>/<name>.so" (a meson build tree).  0 and the path, or -ENOENT. */
static int module_path(fg_plugin_host *h, const char *name, char *buf, size_t len)
{
	if (!h->plugin_dir)
		return -ENOENT;
	struct stat sb;
	snprintf(buf, len, "%s/%s.so", h->plugin_dir, name);
	if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode))
		return 0;
	snprintf(buf, len, "%s/%s/%s.so", h->plugin_dir, name, name);
	if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode))
		return 0;
	return -ENOENT;
}

static int load_module(fg_plugin_host *h, const char *name, const char *path,
                       const struct fg_plugin **ret, char *err, size_t errlen)
{
	struct module *mods = realloc(h->mods, (h->n_mods + 1) * sizeof(*mods));
	if (!mods)
		return -ENOMEM;
	h->mods = mods;

	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *why = dlerror();
		seterr(err, errlen, "plugin '%s': cannot load %s: %s", name, path,
		       why ? why : "unknown error");
		return -ENOEXEC;
	}
	fg_plugin_entry_fn entry;
	/* POSIX: the object-to-function pointer conversion goes through a
	 * pointer to the function pointer. */
	*(void **)&entry = dlsym(dl, FG_PLUGIN_SYMBOL);
	if (!entry) {
		seterr(err, errlen, "plugin '%s': %s does not export %s (not a firegrid plugin, "
		       "or built without FG_PLUGIN_DEFINE)", name, path, FG_PLUGIN_SYMBOL);
		dlclose(dl);
		return -ENOEXEC;
	}
	const struct fg_plugin *d = entry();
	if (!d) {
		seterr(err, errlen, "plugin '%s': %s returned no descriptor", name, path);
		dlclose(dl);
		return -ENOEXEC;
	}
	int r = check_descriptor(d, name, path, err, errlen);
	if (r < 0) {
		dlclose(dl);
		return r;
	}
	char *n = strdup(name);
	if (!n) {
		dlclose(dl);
		return -ENOMEM;
	}
	h->mods[h->n_mods++] = (struct module){ .name = n, .dl = dl, .desc = d };
	*ret = d;
	return 0;
}

int fg_plugin_host_find(fg_plugin_host *h, const char *name, const struct fg_plugin **ret,
                        char *err, size_t errlen)
{
	if (!name || !valid_plugin_name(name)) {
		seterr(err, errlen, "plugin '%s': not a valid plugin name (want [a-z0-9_-]{1,64})",
		       name ? name : "");
		return -EINVAL;
	}
	for (size_t i = 0; i < h->n_mods; i++)
		if (strcmp(h->mods[i].name, name) == 0) {
			*ret = h->mods[i].desc;
			return 0;
		}
	const struct fg_plugin *b = find_builtin(h, name);
	if (b && !h->prefer_modules) {
		*ret = b;
		return 0;
	}
	char path[4096];
	if (module_path(h, name, path, sizeof(path)) == 0)
		return load_module(h, name, path, ret, err, errlen);
	if (b) {
		*ret = b;
		return 0;
	}
	if (h->plugin_dir)
		seterr(err, errlen, "plugin '%s': not built in and no %s.so or %s/%s.so in %s",
		       name, name, name, name, h->plugin_dir);
	else
		seterr(err, errlen, "plugin '%s': not built in and no plugin directory set", name);
	return -ENOENT;
}

static int names_add(char ***names, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*names)[i], name) == 0)
			return 0;
	char **x = realloc(*names, (*n + 1) * sizeof(*x));
	if (!x)
		return -ENOMEM;
	*names = x;
	if (!(x[*n] = strdup(name)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* Names of the modules in the plugin dir, in both layouts. */
static int scan_dir(fg_plugin_host *h, char ***names, size_t *n)
{
	if (!h->plugin_dir)
		return 0;
	DIR *d = opendir(h->plugin_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	int r = 0;
	struct dirent *de;
	char path[4096];
	while (r == 0 && (de = readdir(d))) {
		char name[NAME_MAX_LEN + 1];
		size_t len = strlen(de->d_name);
		if (len > 3 && strcmp(de->d_name + len - 3, ".so") == 0 && len - 3 <= NAME_MAX_LEN) {
			memcpy(name, de->d_name, len - 3);
			name[len - 3] = '\0';
		} else if (len <= NAME_MAX_LEN) {
			memcpy(name, de->d_name, len + 1);
		} else {
			continue;
		}
		if (valid_plugin_name(name) && module_path(h, name, path, sizeof(path)) == 0)
			r = names_add(names, n, name);
	}
	closedir(d);
	return r;
}

int fg_plugin_host_list(fg_plugin_host *h, const struct fg_plugin ***ret, size_t *ret_n)
{
	char **names = NULL;
	size_t n = 0;
	int r = 0;
	for (size_t i = 0; r == 0 && i < h->n_extra; i++)
		r = names_add(&names, &n, h->extra[i]->name);
	for (size_t i = 0; r == 0 && fg_builtin_plugins && fg_builtin_plugins[i]; i++)
		if (fg_builtin_plugins[i]->name)
			r = names_add(&names, &n, fg_builtin_plugins[i]->name);
	if (r == 0)
		r = scan_dir(h, &names, &n);
	const struct fg_plugin **out = NULL;
	size_t nout = 0;
	if (r == 0 && n > 0 && !(out = calloc(n, sizeof(*out))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct fg_plugin *d;
		if (fg_plugin_host_find(h, names[i], &d, NULL, 0) == 0)
			out[nout++] = d;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret = out;
	*ret_n = nout;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Source instances and the fg_host services                                 */
/* ------------------------------------------------------------------------ */

/* A pending fg_host.wake_at() request. */
struct wake {
	char *device;
	int64_t at_ms;
};

struct fg_source_inst {
	fg_plugin_host *host;
	const struct fg_conf_source *src;
	const struct fg_plugin *plugin;
	const char *name;          /* source name */
	void *config;              /* option block */
	void *pstate;              /* from init() */
	struct state_table state;
	fg_state_persist_cb persist;
	void *persist_data;
	int64_t now_ms;            /* pinned clock, 0 = real */
	const struct fg_modbus_map *modbus_map;   /* from the plugin, after init */
	struct fg_ratelimit rl_log;
	struct fg_ratelimit rl_reject;
	char reason[512];
	/* Wake-ups, unordered (few: one per device that waits for time to
	 * pass); mirrored in `state` under FG_STATE_KEY_WAKE for persistence. */
	struct wake *wakes;
	size_t n_wakes, cap_wakes;
};

struct fg_decode_ctx {
	fg_source_inst *si;
	const struct fg_msg *msg;
	fg_emit_cb cb;
	void *cb_data;
	unsigned emitted;
	unsigned rejected;
	bool failed;
};

static int64_t inst_now(const fg_source_inst *si)
{
	return si->now_ms ? si->now_ms : fg_now_ms();
}

static bool is_utf8(const char *s)
{
	json_t *j = json_string(s);   /* jansson refuses invalid UTF-8 */
	json_decref(j);
	return j != NULL;
}

/* Why an event is unacceptable, or NULL.  Also fills in the normalised
 * fields (clears, unit) of *out. */
static const char *validate_event(const struct fg_event *ev, struct fg_ev *out)
{
	if (ev->struct_size < EVENT_V1_SIZE)
		return "struct fg_event is smaller than ABI v1's";
	if (ev->kind == FG_KIND_NONE || (unsigned)ev->kind >= FG_KIND__COUNT)
		return "kind out of range";
	if (!ev->device || !ev->device[0])
		return "empty device id";
	if (strlen(ev->device) > STATE_MAX_LEN)
		return "device id longer than 1024 bytes";
	if (!is_utf8(ev->device))
		return "device id is not UTF-8";
	if ((unsigned)ev->severity > FG_SEV_CRITICAL)
		return "severity out of range";
	if (ev->kind == FG_KIND_CLEAR) {
		if ((unsigned)ev->clears >= FG_KIND__COUNT || ev->clears == FG_KIND_CLEAR)
			return "clears names no kind a clear can end";
		out->clears = ev->clears;
	} else {
		out->clears = fg_kind_recovers(ev->kind);
	}
	if (ev->has_value) {
		if (!isfinite(ev->value))
			return "value is not a finite number";
		if (ev->unit && (!ev->unit[0] || strlen(ev->unit) > UNIT_MAX_LEN || !is_utf8(ev->unit)))
			return "unit is empty, longer than 16 bytes or not UTF-8";
		out->has_value = 1;
		out->value = ev->value;
		out->unit = ev->unit;
	}
	if (ev->device_time_ms < 0)
		return "device time is negative";
	if (ev->attrs_json) {
		if (strlen(ev->attrs_json) > ATTRS_MAX_LEN)
			return "attrs longer than 64 KiB";
		json_error_t jerr;
		json_t *a = json_loads(ev->attrs_json, JSON_REJECT_DUPLICATES, &jerr);
		bool obj = json_is_object(a);
		json_decref(a);
		if (!a)
			return "attrs are not valid JSON";
		if (!obj)
			return "attrs are not a JSON object";
	}
	if (FG_EVENT_HAS_SNAPSHOT_URL(ev) && ev->snapshot_url) {
		const char *u = ev->snapshot_url;
		if (strlen(u) > SNAPSHOT_URL_MAX_LEN || !is_utf8(u) ||
		    (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
			return "snapshot_url is not an http(s) URL of at most 1024 bytes";
		out->snapshot_url = u;
	}
	return NULL;
}

static int host_emit(fg_decode_ctx *ctx, const struct fg_event *ev)
{
	if (!ctx || !ev)
		return -EINVAL;
	fg_source_inst *si = ctx->si;
	const struct fg_msg *msg = ctx->msg;
	struct fg_ev out = {
		.source = si->name,
		.plugin = si->plugin->name,
		.transport = msg->transport,
		.topic = msg->topic,
		.recv_time_ms = msg->recv_time_ms ? msg->recv_time_ms : inst_now(si),
	};
	bool too_many = ctx->emitted >= FG_MAX_EVENTS_PER_MSG;
	const char *why = too_many ? "too many events for one message" : validate_event(ev, &out);
	if (why) {
		ctx->rejected++;
		fg_log_rl(&si->rl_reject, FG_LOG_WARN, "plugin",
		          "rejected event from plugin %s: %s source=%s topic=%s kind=%d",
		          si->plugin->name, why, si->name, msg->topic, (int)ev->kind);
		return too_many ? -E2BIG : -EINVAL;
	}
	out.device = ev->device;
	out.kind = ev->kind;
	out.severity = ev->severity;
	out.device_time_ms = ev->device_time_ms;
	out.attrs_json = ev->attrs_json;
	ctx->emitted++;
	if (ctx->cb)
		ctx->cb(ctx->cb_data, &out);
	return 0;
}

__attribute__((format(printf, 2, 3)))
static void host_fail(fg_decode_ctx *ctx, const char *fmt, ...)
{
	if (!ctx)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->si->reason, sizeof(ctx->si->reason), fmt, ap);
	va_end(ap);
	ctx->failed = true;
}

__attribute__((format(printf, 3, 4)))
static void host_log(fg_decode_ctx *ctx, int level, const char *fmt, ...)
{
	if (!ctx)
		return;
	if (level < FG_LOG_ERR)
		level = FG_LOG_ERR;
	if (level > FG_LOG_DEBUG)
		level = FG_LOG_DEBUG;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fg_log_rl(&ctx->si->rl_log, level, ctx->si->plugin->name, "%s source=%s topic=%s",
	          line, ctx->si->name, ctx->msg->topic);
}

static bool reserved_key(const char *key)
{
	return strncmp(key, "fg:", 3) == 0;
}

static ssize_t wake_find(const fg_source_inst *si, const char *device)
{
	for (size_t i = 0; i < si->n_wakes; i++)
		if (strcmp(si->wakes[i].device, device) == 0)
			return (ssize_t)i;
	return -1;
}

/* Set (at_ms > 0) or drop the in-memory wake-up of device; not persisted. */
static int wake_put(fg_source_inst *si, const char *device, int64_t at_ms)
{
	ssize_t i = wake_find(si, device);
	if (at_ms <= 0) {
		if (i >= 0) {
			free(si->wakes[i].device);
			si->wakes[i] = si->wakes[--si->n_wakes];
		}
		return 0;
	}
	if (i >= 0) {
		si->wakes[i].at_ms = at_ms;
		return 0;
	}
	if (si->n_wakes >= WAKES_MAX)
		return -ENOSPC;
	if (si->n_wakes == si->cap_wakes) {
		size_t cap = si->cap_wakes ? si->cap_wakes * 2 : 16;
		struct wake *w = realloc(si->wakes, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		si->wakes = w;
		si->cap_wakes = cap;
	}
	char *d = strdup(device);
	if (!d)
		return -ENOMEM;
	si->wakes[si->n_wakes++] = (struct wake){ .device = d, .at_ms = at_ms };
	return 0;
}

/* Set or drop a wake-up and its state mirror (written through). */
static int wake_set(fg_source_inst *si, const char *device, int64_t at_ms)
{
	if (!device || !device[0])
		return -EINVAL;
	if (strlen(device) > STATE_MAX_LEN)
		return -E2BIG;
	char v[24];
	snprintf(v, sizeof(v), "%lld", (long long)at_ms);
	int r = state_put(&si->state, device, FG_STATE_KEY_WAKE, at_ms > 0 ? v : NULL);
	if (r < 0)
		return r;
	int w = wake_put(si, device, at_ms);
	if (w < 0) {
		state_put(&si->state, device, FG_STATE_KEY_WAKE, NULL);
		return w;
	}
	if (r > 0 && si->persist)
		si->persist(si->persist_data, si->name, device, FG_STATE_KEY_WAKE,
		            at_ms > 0 ? v : NULL);
	return 0;
}

static int host_wake_at(fg_decode_ctx *ctx, const char *device, int64_t at_ms)
{
	if (!ctx)
		return -EINVAL;
	return wake_set(ctx->si, device, at_ms);
}

static const char *host_state_get(fg_decode_ctx *ctx, const char *device, const char *key)
{
	if (!ctx || !device || !key)
		return NULL;
	return state_get(&ctx->si->state, device, key);
}

static int host_state_set(fg_decode_ctx *ctx, const char *device, const char *key,
                          const char *value)
{
	if (!ctx || !device || !key)
		return -EINVAL;
	if (reserved_key(key))
		return -EPERM;
	fg_source_inst *si = ctx->si;
	int r = state_put(&si->state, device, key, value);
	if (r > 0 && si->persist)
		si->persist(si->persist_data, si->name, device, key, value);
	return r < 0 ? r : 0;
}

static int64_t host_now_ms(fg_decode_ctx *ctx)
{
	return ctx ? inst_now(ctx->si) : fg_now_ms();
}

/*
 * The instance whose init() is running, for option_error(): init() runs on
 * one thread (the loop's, or the config check's before it), one instance at
 * a time, and the host vtable is shared, so this is where the context is.
 */
static struct {
	FILE *errors;
	const char *conf_path;
	const struct fg_conf_source *src;
	int n;
} init_ctx;

static void opt_error(FILE *f, const char *conf_path, int line, const struct fg_conf_source *src,
                      const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void host_option_error(const char *key, const char *fmt, ...)
{
	if (!init_ctx.errors || !key)
		return;
	const struct fg_conf_source *src = init_ctx.src;
	int line = src->line;
	for (size_t i = 0; i < src->n_opts; i++)
		if (strcmp(src->opts[i].key, key) == 0)
			line = src->opts[i].line;
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	opt_error(init_ctx.errors, init_ctx.conf_path, line, src, key, "%s", why);
	init_ctx.n++;
}

static const struct fg_host host_vtable = {
	.struct_size = sizeof(struct fg_host),
	.abi_major = FG_PLUGIN_ABI_MAJOR,
	.emit = host_emit,
	.fail = host_fail,
	.log = host_log,
	.state_get = host_state_get,
	.state_set = host_state_set,
	.now_ms = host_now_ms,
	.wake_at = host_wake_at,
	.option_error = host_option_error,
};

/* Append one "path:line: [source NAME] key: reason" line to the error text
 * (or [<src->section> NAME] for sections of other modules). */
__attribute__((format(printf, 6, 7)))
static void opt_error(FILE *f, const char *conf_path, int line,
                      const struct fg_conf_source *src, const char *key, const char *fmt, ...)
{
	const char *name = src->name ? src->name : (src->plugin ? src->plugin : "?");
	fprintf(f, "%s:%d: [%s %s] %s: ", conf_path, line, src->section ? src->section : "source",
	        name, key);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/*
 * Defaults first, then the [source] keys over them (fg_options_set frees a
 * string it replaces).  Every problem is written to f; returns how many.
 */
static int apply_options(fg_source_inst *si, const char *conf_path, FILE *f)
{
	const struct fg_conf_source *src = si->src;
	const struct fg_plugin *p = si->plugin;
	char err[256] = "";
	int nerr = 0;

	if (fg_options_defaults(p->options, si->config, err, sizeof(err)) < 0) {
		opt_error(f, conf_path, src->line, src, "plugin",
		          "plugin '%s' has a bad default: %s", p->name, err);
		return 1;
	}
	for (size_t i = 0; i < src->n_opts; i++) {
		const struct fg_conf_kv *kv = &src->opts[i];
		const struct fg_option *o = fg_options_find(p->options, kv->key);
		if (!o) {
			opt_error(f, conf_path, kv->line, src, kv->key,
			          "unknown option for plugin '%s'", p->name);
			nerr++;
			continue;
		}
		err[0] = '\0';
		if (fg_options_set(o, si->config, kv->value, err, sizeof(err)) < 0) {
			opt_error(f, conf_path, kv->line, src, kv->key, "%s",
			          err[0] ? err : "invalid value");
			nerr++;
		}
	}
	return nerr;
}

int fg_source_inst_new(fg_plugin_host *host, const char *conf_path,
                       const struct fg_conf_source *src, fg_source_inst **ret,
                       char **ret_errors)
{
	char *errors = NULL;
	size_t errlen = 0;
	FILE *f = open_memstream(&errors, &errlen);
	if (!f)
		return -ENOMEM;
	const char *name = src->name ? src->name : (src->plugin ? src->plugin : "?");
	conf_path = conf_path ? conf_path : "?";
	int r;

	fg_source_inst *si = calloc(1, sizeof(*si));
	if (!si) {
		r = -ENOMEM;
		goto fail;
	}
	si->host = host;
	si->src = src;
	si->name = name;
	si->rl_log = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 20);
	si->rl_reject = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 20);

	char why[512];
	r = fg_plugin_host_find(host, src->plugin, &si->plugin, why, sizeof(why));
	if (r < 0) {
		opt_error(f, conf_path, src->line, src, "plugin", "%s", why);
		goto fail;
	}
	si->config = calloc(1, si->plugin->config_size ? si->plugin->config_size : 1);
	if (!si->config) {
		r = -ENOMEM;
		goto fail;
	}
	if (apply_options(si, conf_path, f) > 0) {
		r = -EINVAL;
		goto fail;
	}
	if (si->plugin->init) {
		init_ctx.errors = f;
		init_ctx.conf_path = conf_path;
		init_ctx.src = src;
		init_ctx.n = 0;
		r = si->plugin->init(&host_vtable, si->config, &si->pstate);
		int named = init_ctx.n;
		init_ctx.errors = NULL;
		if (r >= 0 && named > 0) {
			/* It named a bad option yet started: the option wins. */
			if (si->plugin->fini)
				si->plugin->fini(si->pstate);
			r = -EINVAL;
		}
		if (r < 0) {
			if (!named)
				opt_error(f, conf_path, src->line, src, "plugin",
				          "plugin '%s' refused to start: %s", si->plugin->name,
				          fg_strerror(r));
			si->pstate = NULL;
			goto fail;
		}
	}
	if (fg_plugin_is_modbus(si->plugin))
		si->modbus_map = si->plugin->modbus_map(si->pstate);
	fclose(f);
	free(errors);
	*ret = si;
	return 0;

fail:
	fclose(f);
	if (si && si->config && si->plugin->options)
		fg_options_free(si->plugin->options, si->config);
	if (si)
		free(si->config);
	free(si);
	if (errlen && errors[errlen - 1] == '\n')
		errors[errlen - 1] = '\0';
	if (ret_errors && errlen)
		*ret_errors = errors;
	else
		free(errors);
	return r;
}

void fg_source_inst_free(fg_source_inst *si)
{
	if (!si)
		return;
	if (si->plugin->fini)
		si->plugin->fini(si->pstate);
	if (si->plugin->options)
		fg_options_free(si->plugin->options, si->config);
	free(si->config);
	state_clear(&si->state);
	for (size_t i = 0; i < si->n_wakes; i++)
		free(si->wakes[i].device);
	free(si->wakes);
	free(si);
}

const struct fg_conf_source *fg_source_inst_conf(fg_source_inst *si)
{
	return si->src;
}

const struct fg_plugin *fg_source_inst_plugin(fg_source_inst *si)
{
	return si->plugin;
}

bool fg_plugin_is_modbus(const struct fg_plugin *desc)
{
	/* Optional descriptor field: present only in plugins built with it. */
	return desc->struct_size >= offsetof(struct fg_plugin, modbus_map) +
	       sizeof(desc->modbus_map) && desc->modbus_map;
}

const struct fg_modbus_map *fg_source_inst_modbus_map(fg_source_inst *si)
{
	return si->modbus_map;
}

void fg_source_inst_set_persist(fg_source_inst *si, fg_state_persist_cb cb, void *data)
{
	si->persist = cb;
	si->persist_data = data;
}

int fg_source_inst_state_load(fg_source_inst *si, const char *device, const char *key,
                              const char *value)
{
	if (!device || !key)
		return -EINVAL;
	if (strcmp(key, FG_STATE_KEY_WAKE) == 0) {
		char *end;
		errno = 0;
		long long at = value ? strtoll(value, &end, 10) : 0;
		if (value && (errno || *end || at <= 0))
			return -EINVAL;
		int w = wake_put(si, device, at);
		if (w < 0)
			return w;
	}
	int r = state_put(&si->state, device, key, value);
	return r < 0 ? r : 0;
}

void fg_source_inst_set_now(fg_source_inst *si, int64_t now_ms)
{
	si->now_ms = now_ms;
}

int fg_source_inst_decode(fg_source_inst *si, const struct fg_msg *msg, fg_emit_cb cb,
                          void *data, const char **reason, unsigned *ret_rejected)
{
	struct fg_msg m = *msg;
	if (!m.topic)
		m.topic = "";
	if (!m.source)
		m.source = si->name;
	if (!m.payload)
		m.len = 0;
	if (!m.recv_time_ms)
		m.recv_time_ms = inst_now(si);
	struct fg_decode_ctx ctx = { .si = si, .msg = &m, .cb = cb, .cb_data = data };
	si->reason[0] = '\0';

	int r = si->plugin->decode(si->pstate, &m, &ctx);
	if (ret_rejected)
		*ret_rejected = ctx.rejected;
	if (r >= 0)
		return (int)ctx.emitted;
	if (!si->reason[0])
		snprintf(si->reason, sizeof(si->reason), "plugin %s gave no reason: %s",
		         si->plugin->name, fg_strerror(r));
	if (reason)
		*reason = si->reason;
	return r;
}

int64_t fg_source_inst_next_wake(const fg_source_inst *si)
{
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < si->n_wakes; i++)
		if (si->wakes[i].at_ms < next)
			next = si->wakes[i].at_ms;
	return next;
}

static int wake_cmp(const void *a, const void *b)
{
	const struct wake *x = a, *y = b;
	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return strcmp(x->device, y->device);
}

int fg_source_inst_run_wakes(fg_source_inst *si, int64_t until_ms, bool pin_clock,
                             fg_emit_cb cb, fg_wake_done_cb done, void *data)
{
	/* The wake-ups due now, copied: each decode may add, move or cancel
	 * wake-ups, and one asked for again at or before until_ms waits for
	 * the next call, so a plugin cannot keep this loop going. */
	size_t n = 0;
	for (size_t i = 0; i < si->n_wakes; i++)
		n += si->wakes[i].at_ms <= until_ms;
	if (!n)
		return 0;
	struct wake *due = calloc(n, sizeof(*due));
	if (!due)
		return -ENOMEM;
	size_t k = 0;
	int r = 0;
	for (size_t i = 0; i < si->n_wakes && r == 0; i++) {
		if (si->wakes[i].at_ms > until_ms)
			continue;
		due[k].at_ms = si->wakes[i].at_ms;
		if (!(due[k++].device = strdup(si->wakes[i].device)))
			r = -ENOMEM;
	}
	if (r == 0)
		qsort(due, n, sizeof(*due), wake_cmp);

	int64_t saved_now = si->now_ms;
	int ran = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		ssize_t w = wake_find(si, due[i].device);
		if (w < 0 || si->wakes[w].at_ms != due[i].at_ms)
			continue;          /* cancelled or moved by an earlier wake-up */
		wake_set(si, due[i].device, 0);
		if (pin_clock)
			si->now_ms = due[i].at_ms;
		struct fg_msg msg = {
			.struct_size = sizeof(msg),
			.source = si->name,
			.transport = FG_TRANSPORT_WAKE,
			.topic = due[i].device,
			.recv_time_ms = inst_now(si),
		};
		const char *reason = NULL;
		unsigned rejected = 0;
		int res = fg_source_inst_decode(si, &msg, cb, data, &reason, &rejected);
		ran++;
		if (done)
			done(data, due[i].device, res, res < 0 ? reason : NULL, rejected);
	}
	si->now_ms = saved_now;
	for (size_t i = 0; i < k; i++)
		free(due[i].device);
	free(due);
	return r < 0 ? r : ran;
}

char *fg_ev_to_json_line(const struct fg_ev *ev)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "device", json_string(ev->device));
	json_object_set_new(o, "kind", json_string(fg_kind_name(ev->kind)));
	json_object_set_new(o, "severity", json_string(fg_severity_name(ev->severity)));
	if (ev->has_value) {
		double v = ev->value;
		if (v == floor(v) && fabs(v) < 9007199254740992.0)
			json_object_set_new(o, "value", json_integer((json_int_t)v));
		else
			json_object_set_new(o, "value", json_real(v));
		if (ev->unit)
			json_object_set_new(o, "unit", json_string(ev->unit));
	}
	if (ev->kind == FG_KIND_CLEAR && ev->clears != FG_KIND_NONE)
		json_object_set_new(o, "clears", json_string(fg_kind_name(ev->clears)));
	if (ev->device_time_ms) {
		char buf[40];
		json_object_set_new(o, "device_time",
		                    json_string(fg_time_iso(ev->device_time_ms, buf, sizeof(buf))));
	}
	if (ev->attrs_json) {
		json_t *a = json_loads(ev->attrs_json, 0, NULL);
		if (a)
			json_object_set_new(o, "attrs", a);
	}
	if (ev->snapshot_url)
		json_object_set_new(o, "snapshot_url", json_string(ev->snapshot_url));
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	return s;
}
