/*
 * zigbee2mqtt: smoke, heat and CO detectors, and smart RCBOs, as published by
 * Zigbee2MQTT (docs/plugins.md walks through this file).
 *
 * Topics under <base_topic>/:
 *   bridge/devices         retained device list: friendly_name -> ieee_address
 *                          and model, kept in host state ("" device,
 *                          "name:<friendly name>" -> ieee; <ieee> "model")
 *   bridge/state           {"state":"online|offline"} or plain text: the
 *                          whole bridge, device "<base_topic>/bridge"
 *   bridge/event           device_leave -> fault of that ieee address
 *   bridge/...             everything else: no event
 *   <name>/availability    JSON or plain online/offline; empty = the retained
 *                          message of a renamed device being deleted
 *   <name>/set, /get       commands to devices: no event
 *   <name>                 device state (friendly names may contain '/')
 *
 * Zigbee2MQTT republishes every cached key on every device message and its
 * whole cache at start-up, so alarms come from transitions kept in host
 * state per device ("1" active, "0" normal, "?" unknown after a stale
 * replay), never from the mere presence of `smoke:true`.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"
#include "../common/plugin_util.h"

struct z2m_config {
	const char *base_topic;
	int64_t stale_after_ms;
	const char *heat_models;
	int64_t battery_low_percent;
};

static const struct fg_option z2m_options[] = {
	{ "base_topic", FG_OPT_STRING, "zigbee2mqtt", offsetof(struct z2m_config, base_topic),
	  "Zigbee2MQTT's mqtt.base_topic", 0, 0 },
	{ "stale_after", FG_OPT_DURATION, "10m", offsetof(struct z2m_config, stale_after_ms),
	  "a device message whose last_seen is older than this when received is a cached "
	  "replay: no alarm, state unknown (0 = off)", 0, 0 },
	{ "heat_models", FG_OPT_STRING, "HESZB-120", offsetof(struct z2m_config, heat_models),
	  "comma-separated model ids (bridge/devices definition.model) whose smoke key "
	  "reports heat", 0, 0 },
	{ "battery_low_percent", FG_OPT_INT, "0",
	  offsetof(struct z2m_config, battery_low_percent),
	  "also report battery_low when battery is at or below this percentage (0 = off)",
	  0, 100 },
	FG_OPTION_END
};

struct z2m {
	const struct fg_host *host;
	char *base;
	size_t base_len;
	char *bridge_device;          /* "<base>/bridge" */
	int64_t stale_after_ms;
	int64_t battery_low_percent;
	char *heat_buf;               /* heat_models split in place */
	const char **heat;
	size_t n_heat;
};

/* Conditions tracked by transition, in the order their events are emitted. */
enum cond { C_TEST, C_SMOKE, C_HEAT, C_CO, C_FAULT, C_TAMPER, C_BATTERY_LOW, C__N };

static const struct {
	const char *state_key;
	fg_kind kind;
	fg_severity severity;
} conds[C__N] = {
	[C_TEST] = { "test", FG_KIND_TEST, FG_SEV_INFO },
	[C_SMOKE] = { "smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL },
	[C_HEAT] = { "heat", FG_KIND_HEAT, FG_SEV_CRITICAL },
	[C_CO] = { "co", FG_KIND_CO, FG_SEV_CRITICAL },
	[C_FAULT] = { "fault", FG_KIND_FAULT, FG_SEV_MAJOR },
	[C_TAMPER] = { "tamper", FG_KIND_TAMPER, FG_SEV_MAJOR },
	[C_BATTERY_LOW] = { "battery_low", FG_KIND_BATTERY_LOW, FG_SEV_WARNING },
};

/* A device as resolved from its friendly name. */
struct dev {
	const char *id;               /* ieee address, or the friendly name */
	const char *friendly_name;
	char ieee[64];
	char model[128];
	bool resolved;
};

static void z2m_fini(void *state)
{
	struct z2m *z = state;
	if (!z)
		return;
	free(z->base);
	free(z->bridge_device);
	free(z->heat_buf);
	free(z->heat);
	free(z);
}

static int z2m_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct z2m_config *cfg = config;
	struct z2m *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->host = host;
	z->stale_after_ms = cfg->stale_after_ms;
	z->battery_low_percent = cfg->battery_low_percent;
	const char *base = cfg->base_topic ? cfg->base_topic : "zigbee2mqtt";
	z->base_len = strlen(base);
	while (z->base_len && base[z->base_len - 1] == '/')
		z->base_len--;
	if (!z->base_len || memchr(base, '+', z->base_len) || memchr(base, '#', z->base_len)) {
		z2m_fini(z);
		return pu_option_error(host, "base_topic", "must be a topic without + or #");
	}
	z->base = strndup(base, z->base_len);
	z->heat_buf = strdup(cfg->heat_models ? cfg->heat_models : "");
	if (!z->base || !z->heat_buf || asprintf(&z->bridge_device, "%s/bridge", z->base) < 0) {
		z->bridge_device = NULL;
		z2m_fini(z);
		return -ENOMEM;
	}
	/* Room for one model per separator, whichever separators are used. */
	size_t cap = 1;
	for (const char *p = z->heat_buf; *p; p++)
		cap += *p == ',' || *p == ' ' || *p == '\t';
	z->heat = calloc(cap, sizeof(*z->heat));
	if (!z->heat) {
		z2m_fini(z);
		return -ENOMEM;
	}
	char *save = NULL;
	for (char *tok = strtok_r(z->heat_buf, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save))
		z->heat[z->n_heat++] = tok;
	*ret_state = z;
	return 0;
}

static bool is_heat_model(const struct z2m *z, const char *model)
{
	for (size_t i = 0; i < z->n_heat; i++)
		if (strcmp(z->heat[i], model) == 0)
			return true;
	return false;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Name-map key for a friendly name; false when it cannot fit the host's
 * 1024-byte key limit (then the name stays unresolved). */
static bool name_key(const char *friendly_name, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "name:%s", friendly_name) < len;
}

static void resolve(struct z2m *z, fg_decode_ctx *ctx, const char *friendly_name,
                    struct dev *d)
{
	const struct fg_host *h = z->host;
	char key[1025];
	memset(d, 0, sizeof(*d));
	d->friendly_name = friendly_name;
	d->id = friendly_name;
	const char *ieee = name_key(friendly_name, key, sizeof(key))
		? h->state_get(ctx, "", key) : NULL;
	if (!ieee || strlen(ieee) >= sizeof(d->ieee))
		return;
	strcpy(d->ieee, ieee);
	d->id = d->ieee;
	d->resolved = true;
	const char *model = h->state_get(ctx, d->ieee, "model");
	if (model)
		snprintf(d->model, sizeof(d->model), "%s", model);
}

/* attrs common to every event of a device; `extra` (may be NULL) is merged
 * in.  Returns malloc'd JSON text or NULL. */
static char *device_attrs(const struct dev *d, json_t *extra)
{
	json_t *a = json_object();
	if (!a)
		return NULL;
	json_object_set_new(a, "friendly_name", json_string(d->friendly_name));
	if (d->model[0])
		json_object_set_new(a, "model", json_string(d->model));
	if (!d->resolved)
		json_object_set_new(a, "unresolved", json_true());
	if (extra)
		json_object_update(a, extra);
	char *s = json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(a);
	return s;
}

static json_t *pick(json_t *obj, const char *const *keys)
{
	json_t *out = json_object();
	for (; out && obj && keys && *keys; keys++) {
		json_t *v = json_object_get(obj, *keys);
		if (v && !json_is_null(v))
			json_object_set(out, *keys, v);
	}
	return out;
}

/* attrs built on first use: most device messages are repeats that emit
 * nothing, and the daemon should not pay for JSON it never sends. */
struct lazy_attrs {
	const struct dev *d;
	json_t *msg;                  /* message to copy `keys` from, or NULL */
	const char *const *keys;
	char *text;
	bool built;
};

static const char *lazy_attrs(struct lazy_attrs *la)
{
	if (!la->built) {
		json_t *extra = pick(la->msg, la->keys);
		la->text = device_attrs(la->d, extra);
		json_decref(extra);
		la->built = true;
	}
	return la->text;
}

static int emit(struct z2m *z, fg_decode_ctx *ctx, const char *device, fg_kind kind,
                fg_severity sev, fg_kind clears, int64_t device_time_ms, const char *attrs)
{
	struct fg_event ev = {
		.struct_size = sizeof(ev),
		.kind = kind,
		.severity = sev,
		.device = device,
		.clears = clears,
		.device_time_ms = device_time_ms,
		.attrs_json = attrs,
	};
	return z->host->emit(ctx, &ev);
}

/* online/offline from "online", "offline" or {"state":"online"}.  Returns
 * 1 online, 0 offline, or -EINVAL after fail(). */
static int parse_availability(struct z2m *z, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	const char *p = (const char *)msg->payload;
	size_t n = msg->len;
	while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	if (n && *p == '{') {
		json_t *root;
		int r = pu_parse_json(z->host, ctx, msg, PU_MAX_PAYLOAD, &root);
		if (r < 0)
			return r;
		json_t *st = json_object_get(root, "state");
		const char *s = json_string_value(st);
		int ret = -EINVAL;
		if (s && strcmp(s, "online") == 0)
			ret = 1;
		else if (s && strcmp(s, "offline") == 0)
			ret = 0;
		else {
			char desc[64];
			z->host->fail(ctx, "availability: expected \"state\" to be \"online\" or "
			              "\"offline\", got %s", st ? pu_describe(st, desc, sizeof(desc))
			              : "no \"state\" key");
		}
		json_decref(root);
		return ret;
	}
	if (n == 6 && memcmp(p, "online", 6) == 0)
		return 1;
	if (n == 7 && memcmp(p, "offline", 7) == 0)
		return 0;
	z->host->fail(ctx, "availability: expected online, offline or {\"state\":...}, got "
	              "%zu bytes of something else", msg->len);
	return -EINVAL;
}

/* Emit offline on a change to offline, online only when it ends a known
 * offline; the retained message redelivered on every reconnect is quiet. */
static int availability_transition(struct z2m *z, fg_decode_ctx *ctx, const char *device,
                                   int online, fg_severity offline_sev,
                                   struct lazy_attrs *la)
{
	const struct fg_host *h = z->host;
	const char *prev = h->state_get(ctx, device, "avail");
	bool was_offline = prev && strcmp(prev, "offline") == 0;
	if (online && was_offline)
		emit(z, ctx, device, FG_KIND_ONLINE, FG_SEV_INFO, FG_KIND_NONE, 0,
		     la ? lazy_attrs(la) : NULL);
	else if (!online && !was_offline)
		emit(z, ctx, device, FG_KIND_OFFLINE, offline_sev, FG_KIND_NONE, 0,
		     la ? lazy_attrs(la) : NULL);
	h->state_set(ctx, device, "avail", online ? "online" : "offline");
	return 0;
}

static int decode_availability(struct z2m *z, const struct fg_msg *msg, fg_decode_ctx *ctx,
                               const char *friendly_name)
{
	char key[1025];
	if (!friendly_name[0]) {
		z->host->fail(ctx, "availability topic without a friendly name");
		return -EPROTO;
	}
	if (msg->len == 0) {
		/* A rename deletes the old name's retained availability. */
		if (name_key(friendly_name, key, sizeof(key)))
			z->host->state_set(ctx, "", key, NULL);
		return 0;
	}
	int online = parse_availability(z, msg, ctx);
	if (online < 0)
		return online;
	struct dev d;
	resolve(z, ctx, friendly_name, &d);
	struct lazy_attrs la = { .d = &d };
	availability_transition(z, ctx, d.id, online, FG_SEV_WARNING, &la);
	free(la.text);
	return 0;
}

static int decode_bridge_state(struct z2m *z, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	int online = parse_availability(z, msg, ctx);
	if (online < 0)
		return online;
	/* Bridge offline: every device behind it is unknown, none is offline. */
	return availability_transition(z, ctx, z->bridge_device, online, FG_SEV_MAJOR, NULL);
}

static int decode_bridge_event(struct z2m *z, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	json_t *root;
	int r = pu_parse_json(z->host, ctx, msg, PU_MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	const char *type = json_string_value(json_object_get(root, "type"));
	if (!json_is_object(root) || !type) {
		z->host->fail(ctx, "bridge/event: expected an object with a string \"type\"");
		json_decref(root);
		return -EPROTO;
	}
	if (strcmp(type, "device_leave") == 0) {
		json_t *data = json_object_get(root, "data");
		const char *ieee = json_string_value(json_object_get(data, "ieee_address"));
		if (!ieee || !ieee[0]) {
			z->host->fail(ctx, "bridge/event device_leave without data.ieee_address");
			json_decref(root);
			return -EPROTO;
		}
		json_t *a = json_pack("{s:s}", "reason", "device_leave");
		json_t *fn = json_object_get(data, "friendly_name");
		if (a && json_is_string(fn))
			json_object_set(a, "friendly_name", fn);
		char *attrs = a ? json_dumps(a, JSON_COMPACT) : NULL;
		emit(z, ctx, ieee, FG_KIND_FAULT, FG_SEV_MAJOR, FG_KIND_NONE, 0, attrs);
		free(attrs);
		json_decref(a);
	}
	json_decref(root);
	return 0;
}

/* The retained device list: remember friendly_name -> ieee and ieee -> model. */
static int decode_devices(struct z2m *z, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	const struct fg_host *h = z->host;
	json_t *root;
	int r = pu_parse_json(h, ctx, msg, PU_MAX_LIST_PAYLOAD, &root);
	if (r < 0)
		return r;
	if (!json_is_array(root)) {
		h->fail(ctx, "bridge/devices: payload is a JSON %s, expected an array",
		        pu_json_type(root));
		json_decref(root);
		return -EINVAL;
	}
	size_t i;
	json_t *d;
	char key[1025];
	json_array_foreach(root, i, d) {
		const char *fn = json_string_value(json_object_get(d, "friendly_name"));
		const char *ieee = json_string_value(json_object_get(d, "ieee_address"));
		if (!fn || !fn[0] || !ieee || !ieee[0] || !name_key(fn, key, sizeof(key)))
			continue;
		json_t *def = json_object_get(d, "definition");
		const char *model = json_string_value(json_object_get(def, "model"));
		if (h->state_set(ctx, "", key, ieee) == 0)
			h->state_set(ctx, ieee, "model", model);
	}
	json_decref(root);
	return 0;
}

/* What one device message says, type-checked before anything is emitted. */
struct reading {
	bool present[C__N];
	bool value[C__N];
	json_t *smoke_concentration;
	json_t *event;                /* string or NULL */
	const char *relay;            /* "state": "ON"/"OFF" or NULL */
	json_t *leakage_current;
	int64_t last_seen_ms;         /* 0 = absent */
};

/* Fetch `key` of the expected JSON type into *ret (NULL when absent or
 * null).  Returns -EINVAL after fail() on a wrong type. */
static int get_typed(struct z2m *z, fg_decode_ctx *ctx, json_t *obj, const char *key,
                     json_type want, json_t **ret)
{
	json_t *v = json_object_get(obj, key);
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	bool ok = want == JSON_TRUE ? json_is_boolean(v)
		: want == JSON_REAL ? json_is_number(v) : json_typeof(v) == want;
	if (!ok) {
		char desc[64];
		z->host->fail(ctx, "key \"%s\": expected a %s, got %s", key,
		              want == JSON_TRUE ? "boolean" : want == JSON_REAL ? "number" : "string",
		              pu_describe(v, desc, sizeof(desc)));
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int get_bool(struct z2m *z, fg_decode_ctx *ctx, json_t *obj, const char *key,
                    bool *present, bool *value)
{
	json_t *v;
	int r = get_typed(z, ctx, obj, key, JSON_TRUE, &v);
	if (r < 0 || !v)
		return r;
	*present = true;
	*value = *value || json_is_true(v);
	return 0;
}

static int read_device(struct z2m *z, fg_decode_ctx *ctx, json_t *obj, const struct dev *d,
                       struct reading *rd)
{
	memset(rd, 0, sizeof(*rd));
	int smoke_as = d->model[0] && is_heat_model(z, d->model) ? C_HEAT : C_SMOKE;
	json_t *battery_state, *battery, *linkquality, *last_seen;
	int r = 0;
	r = r ? r : get_bool(z, ctx, obj, "test", &rd->present[C_TEST], &rd->value[C_TEST]);
	r = r ? r : get_bool(z, ctx, obj, "smoke", &rd->present[smoke_as], &rd->value[smoke_as]);
	r = r ? r : get_bool(z, ctx, obj, "carbon_monoxide", &rd->present[C_CO], &rd->value[C_CO]);
	r = r ? r : get_bool(z, ctx, obj, "fault", &rd->present[C_FAULT], &rd->value[C_FAULT]);
	r = r ? r : get_bool(z, ctx, obj, "device_fault", &rd->present[C_FAULT],
	                     &rd->value[C_FAULT]);
	r = r ? r : get_bool(z, ctx, obj, "tamper", &rd->present[C_TAMPER], &rd->value[C_TAMPER]);
	r = r ? r : get_bool(z, ctx, obj, "battery_low", &rd->present[C_BATTERY_LOW],
	                     &rd->value[C_BATTERY_LOW]);
	r = r ? r : get_typed(z, ctx, obj, "battery_state", JSON_STRING, &battery_state);
	r = r ? r : get_typed(z, ctx, obj, "battery", JSON_REAL, &battery);
	r = r ? r : get_typed(z, ctx, obj, "linkquality", JSON_REAL, &linkquality);
	r = r ? r : get_typed(z, ctx, obj, "smoke_concentration", JSON_REAL,
	                      &rd->smoke_concentration);
	r = r ? r : get_typed(z, ctx, obj, "event", JSON_STRING, &rd->event);
	r = r ? r : get_typed(z, ctx, obj, "leakage_current", JSON_REAL, &rd->leakage_current);
	if (r < 0)
		return r;
	last_seen = json_object_get(obj, "last_seen");
	if (last_seen && !json_is_null(last_seen)) {
		char why[160];
		if (pu_parse_time_value(last_seen, &rd->last_seen_ms, why, sizeof(why)) < 0) {
			z->host->fail(ctx, "key \"last_seen\": %s", why);
			return -EINVAL;
		}
	}
	if (battery_state) {
		rd->present[C_BATTERY_LOW] = true;
		rd->value[C_BATTERY_LOW] |= strcmp(json_string_value(battery_state), "low") == 0;
	}
	if (battery && z->battery_low_percent > 0) {
		rd->present[C_BATTERY_LOW] = true;
		rd->value[C_BATTERY_LOW] |= json_number_value(battery) <= (double)z->battery_low_percent;
	}
	/* A test press may raise smoke/heat/CO in the same frame: the test wins
	 * and the alarm keys are not looked at until it is over. */
	if (rd->present[C_TEST] && rd->value[C_TEST])
		rd->present[C_SMOKE] = rd->present[C_HEAT] = rd->present[C_CO] = false;
	rd->relay = json_string_value(json_object_get(obj, "state"));
	return 0;
}

/* A leakage event counts once: when `event` changes to leakage_*, or when
 * the breaker trips again (state ON -> OFF) with leakage_trip still cached. */
static void residual_current(struct z2m *z, fg_decode_ctx *ctx, const struct dev *d,
                             const struct reading *rd, bool stale, json_t *obj)
{
	const struct fg_host *h = z->host;
	const char *event = json_string_value(rd->event);
	const char *prev = h->state_get(ctx, d->id, "event");
	bool changed = !prev || strcmp(prev, event) != 0;
	bool leak = strcmp(event, "leakage_trip") == 0 || strcmp(event, "leakage_alarm") == 0;
	if (leak && !changed && rd->relay && strcmp(event, "leakage_trip") == 0) {
		const char *prev_relay = h->state_get(ctx, d->id, "relay");
		changed = prev_relay && strcmp(prev_relay, "ON") == 0 &&
		          strcmp(rd->relay, "OFF") == 0;
	}
	if (leak && changed && !stale) {
		static const char *const keys[] = { "battery", "linkquality", "leakage_threshold",
		                                    "state", "event", NULL };
		struct lazy_attrs la = { .d = d, .msg = obj, .keys = keys };
		const char *attrs = lazy_attrs(&la);
		struct fg_event ev = {
			.struct_size = sizeof(ev),
			.kind = FG_KIND_RESIDUAL_CURRENT,
			.severity = FG_SEV_CRITICAL,
			.device = d->id,
			.has_value = rd->leakage_current != NULL,
			.value = json_number_value(rd->leakage_current),
			.unit = rd->leakage_current ? "mA" : NULL,
			.device_time_ms = rd->last_seen_ms,
			.attrs_json = attrs,
		};
		h->emit(ctx, &ev);
		free(la.text);
	}
	h->state_set(ctx, d->id, "event", event);
	if (rd->relay)
		h->state_set(ctx, d->id, "relay", rd->relay);
}

/*
 * One condition of one device: false -> true opens (first sight of true
 * too), true -> false clears, anything else is a repeat.  A stale replay
 * changes nothing we know and marks an alarm we did not see as unknown.
 */
static void transition(struct z2m *z, fg_decode_ctx *ctx, const struct dev *d,
                       const struct reading *rd, enum cond c, bool stale,
                       struct lazy_attrs *la)
{
	const struct fg_host *h = z->host;
	if (!rd->present[c])
		return;
	const char *key = conds[c].state_key;
	const char *prev = h->state_get(ctx, d->id, key);
	bool was_active = prev && strcmp(prev, "1") == 0;
	if (stale) {
		if (rd->value[c] && !was_active)
			h->state_set(ctx, d->id, key, "?");
		return;
	}
	if (rd->value[c] && !was_active) {
		struct fg_event ev = {
			.struct_size = sizeof(ev),
			.kind = conds[c].kind,
			.severity = conds[c].severity,
			.device = d->id,
			.device_time_ms = rd->last_seen_ms,
			.attrs_json = lazy_attrs(la),
		};
		if (c == C_SMOKE && rd->smoke_concentration) {
			ev.has_value = 1;
			ev.value = json_number_value(rd->smoke_concentration);
			ev.unit = "ppm";
		}
		h->emit(ctx, &ev);
		h->state_set(ctx, d->id, key, "1");
	} else if (!rd->value[c] && prev && strcmp(prev, "0") != 0) {
		if (was_active)
			emit(z, ctx, d->id, FG_KIND_CLEAR, FG_SEV_INFO, conds[c].kind,
			     rd->last_seen_ms, lazy_attrs(la));
		h->state_set(ctx, d->id, key, "0");
	}
}

static int decode_device(struct z2m *z, const struct fg_msg *msg, fg_decode_ctx *ctx,
                         const char *friendly_name)
{
	const struct fg_host *h = z->host;
	if (!friendly_name[0] || strlen(friendly_name) > 1000) {
		h->fail(ctx, "device topic with an empty or over-long friendly name");
		return -EPROTO;
	}
	json_t *root;
	int r = pu_parse_json(h, ctx, msg, PU_MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	if (!json_is_object(root)) {
		h->fail(ctx, "payload is a JSON %s, expected an object", pu_json_type(root));
		json_decref(root);
		return -EINVAL;
	}
	struct dev d;
	resolve(z, ctx, friendly_name, &d);
	struct reading rd;
	r = read_device(z, ctx, root, &d, &rd);
	if (r < 0) {
		json_decref(root);
		return r;
	}
	/* Zigbee2MQTT replays its cache at start-up: an alarm whose last_seen
	 * is long past is history, not news. */
	bool stale = rd.last_seen_ms && z->stale_after_ms > 0 &&
	             msg->recv_time_ms - rd.last_seen_ms > z->stale_after_ms;

	static const char *const keys[] = { "battery", "linkquality", "reliability", NULL };
	struct lazy_attrs la = { .d = &d, .msg = root, .keys = keys };
	for (int c = C_TEST; c <= C_CO; c++)
		transition(z, ctx, &d, &rd, (enum cond)c, stale, &la);
	if (rd.event)
		residual_current(z, ctx, &d, &rd, stale, root);
	for (int c = C_FAULT; c < C__N; c++)
		transition(z, ctx, &d, &rd, (enum cond)c, stale, &la);
	free(la.text);
	json_decref(root);
	return 0;
}

/* Topics addressed to devices rather than published by them. */
static bool is_command(const char *rest)
{
	return ends_with(rest, "/set") || ends_with(rest, "/get") || strstr(rest, "/set/") ||
	       strstr(rest, "/get/");
}

static int z2m_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct z2m *z = state;
	const char *topic = msg->topic;
	if (strncmp(topic, z->base, z->base_len) != 0 || topic[z->base_len] != '/') {
		z->host->fail(ctx, "topic '%s' is not under base_topic '%s'", topic, z->base);
		return -EPROTO;
	}
	const char *rest = topic + z->base_len + 1;
	bool availability = ends_with(rest, "/availability");
	if (msg->len == 0 && !availability)
		return 0;   /* a retained message being deleted */
	if (strcmp(rest, "bridge/devices") == 0)
		return decode_devices(z, msg, ctx);
	if (strcmp(rest, "bridge/state") == 0)
		return decode_bridge_state(z, msg, ctx);
	if (strcmp(rest, "bridge/event") == 0)
		return decode_bridge_event(z, msg, ctx);
	if (strncmp(rest, "bridge/", 7) == 0)
		return 0;   /* info, logging, config, responses: nothing to report */
	if (availability) {
		size_t n = strlen(rest) - strlen("/availability");
		char *name = strndup(rest, n);
		if (!name)
			return -ENOMEM;
		int r = decode_availability(z, msg, ctx, name);
		free(name);
		return r;
	}
	if (is_command(rest))
		return 0;
	return decode_device(z, msg, ctx, rest);
}

FG_PLUGIN_DEFINE(zigbee2mqtt,
	.name = "zigbee2mqtt",
	.version = "1.0",
	.description = "Zigbee2MQTT smoke/heat/CO detectors and RCBOs",
	.options = z2m_options,
	.config_size = sizeof(struct z2m_config),
	.init = z2m_init,
	.fini = z2m_fini,
	.decode = z2m_decode);
