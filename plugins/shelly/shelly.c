/*
 * shelly: Shelly smoke alarms over MQTT (docs/plugins.md has the mapping).
 *
 * Gen2 (Plus Smoke), topic prefix `<id>` (default the device id, e.g.
 * shellyplussmoke-a0a3b3e60d84):
 *   <id>/events/rpc        JSON-RPC notifications: NotifyStatus (a delta:
 *                          absent keys are unchanged), NotifyFullStatus,
 *                          NotifyEvent (alarm, alarm_off, alarm_test)
 *   <id>/status/<comp:N>   one component's full status (status_ntf)
 *   <id>/online            Last Will, "true" / "false"
 * Gen1 (Shelly Smoke), one plain-text topic per value:
 *   shellies/<id>/sensor/smoke     "true" / "false"
 *   shellies/<id>/sensor/battery   percent
 *   shellies/<id>/online           "true" / "false"
 *
 * The same alarm arrives up to three times (NotifyStatus, NotifyEvent,
 * status/smoke:0), so alarms are transitions kept in host state per device,
 * never presence.  A mute is not a clear.  A test press is only ever an
 * event (alarm_test), never alarm:true.  These detectors deep-sleep: their
 * Last Will flips to false after every wake-up, so `online:false` from a
 * sleeper is not an offline alarm; only mains-powered devices get one.
 * Sleepers are supervised by their wake-ups instead: every message from one
 * asks the host for a wake-up (fg_host.wake_at) at its wakeup_period plus
 * wakeup_grace from now; if that wake-up comes first, the device missed its
 * wake-up and is offline until it speaks again.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"
#include "../common/plugin_util.h"

/* Device clocks before SNTP count seconds since boot: anything below this
 * (2001-09-09) is not an epoch. */
#define EPOCH_MIN_S 1e9
#define BATTERY_HYSTERESIS 5.0
#define MAX_PAYLOAD (256 * 1024)
/* A wake-up this late ran after the gateway itself was down (the daemon
 * runs due wake-ups about once a second): that is nobody's offline. */
#define WAKE_LATE_MS 10000

struct shelly_config {
	const char *gen1_prefix;
	int64_t battery_low_percent;
	const char *sleeping_models;
	int64_t wakeup_period_ms;
	int64_t wakeup_grace_ms;
};

static const struct fg_option shelly_options[] = {
	{ "gen1_prefix", FG_OPT_STRING, "shellies", offsetof(struct shelly_config, gen1_prefix),
	  "first topic level of Gen1 devices (shellies/<id>/...)", 0, 0 },
	{ "battery_low_percent", FG_OPT_INT, "15",
	  offsetof(struct shelly_config, battery_low_percent),
	  "battery_low below this battery percentage, cleared again 5 points above it "
	  "(0 = off)", 0, 100 },
	{ "sleeping_models", FG_OPT_STRING,
	  "shellyplussmoke,shellysmoke,shellyht,shellyplusht,shellyhtg3",
	  offsetof(struct shelly_config, sleeping_models),
	  "device id prefixes of battery devices that deep-sleep: their online=false is "
	  "routine, not an offline alarm (devices reporting sys.wakeup_period count too)", 0, 0 },
	{ "wakeup_period", FG_OPT_DURATION, "24h", offsetof(struct shelly_config, wakeup_period_ms),
	  "how often a sleeper wakes up when it has not reported sys.wakeup_period itself "
	  "(the Plus Smoke's default is 24h)", 1000, 30 * 86400000.0 },
	{ "wakeup_grace", FG_OPT_DURATION, "1h", offsetof(struct shelly_config, wakeup_grace_ms),
	  "a sleeper not heard of for its wakeup period plus this is offline (0 = no "
	  "supervision)", 0, 7 * 86400000.0 },
	FG_OPTION_END
};

struct shelly {
	const struct fg_host *host;
	const struct shelly_config *cfg;
};

static int shelly_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct shelly_config *cfg = config;
	if (!cfg->gen1_prefix || !cfg->gen1_prefix[0] || strchr(cfg->gen1_prefix, '/'))
		return pu_option_error(host, "gen1_prefix", "must be one topic level (no '/')");
	struct shelly *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->host = host;
	s->cfg = cfg;
	*ret_state = s;
	return 0;
}

static void shelly_fini(void *state)
{
	free(state);
}

/* Device time from a Shelly `ts` (float seconds); 0 when it is absent or
 * counts seconds since boot (then attrs carry it as uptime_s). */
static int64_t device_time(const json_t *ts)
{
	double t = json_number_value(ts);
	return json_is_number(ts) && isfinite(t) && t >= EPOCH_MIN_S && t < 253402300800.0
		? (int64_t)llround(t * 1000) : 0;
}

/* attrs of a Gen2 event: component, channel, and a boot-relative ts. */
static char *gen2_attrs(const char *component, const char *channel, const json_t *ts,
                        const json_t *mute)
{
	json_t *a = json_pack("{s:s,s:s}", "component", component, "channel", channel);
	if (a && json_is_number(ts) && !device_time(ts))
		json_object_set(a, "uptime_s", (json_t *)ts);
	if (a && json_is_boolean(mute))
		json_object_set(a, "mute", (json_t *)mute);
	return pu_attrs_text(a);
}

/* Device id of component N: the device itself for N = 0 (the Plus Smoke has
 * only smoke:0), "<src>/<component>" otherwise. */
static void component_device(const char *src, const char *component, char *buf, size_t len)
{
	const char *colon = strchr(component, ':');
	if (colon && strcmp(colon + 1, "0") == 0)
		snprintf(buf, len, "%s", src);
	else
		snprintf(buf, len, "%s/%s", src, component);
}

static void smoke_transition(struct shelly *s, fg_decode_ctx *ctx, const char *device,
                             bool alarm, int64_t time_ms, const char *attrs)
{
	pu_transition(s->host, ctx, device, "smoke", alarm, FG_KIND_SMOKE, time_ms, attrs);
}

/* battery_low below the threshold, cleared BATTERY_HYSTERESIS above it so a
 * reading that wobbles around the line does not flap. */
static void battery_transition(struct shelly *s, fg_decode_ctx *ctx, const char *device,
                               double percent, double volts, int64_t time_ms)
{
	double thr = (double)s->cfg->battery_low_percent;
	if (thr <= 0)
		return;
	const char *prev = s->host->state_get(ctx, device, "battery_low");
	bool was = prev && strcmp(prev, "1") == 0;
	bool low = percent < thr || (was && percent < thr + BATTERY_HYSTERESIS);
	enum pu_edge e = pu_edge(s->host, ctx, device, "battery_low", low);
	if (e == PU_EDGE_NONE)
		return;
	json_t *a = json_object();
	if (a)
		json_object_set_new(a, "battery", pu_json_number(percent));
	if (a && !isnan(volts))
		json_object_set_new(a, "voltage", json_real(volts));
	char *attrs = pu_attrs_text(a);
	pu_emit_edge(s->host, ctx, device, e, FG_KIND_BATTERY_LOW, "%", percent, time_ms, attrs);
	free(attrs);
}

static bool is_sleeper(struct shelly *s, fg_decode_ctx *ctx, const char *device)
{
	const char *wp = s->host->state_get(ctx, device, "wakeup_period");
	return (wp && atoll(wp) > 0) || pu_list_has(s->cfg->sleeping_models, device, 1);
}

/* The wakeup period of a sleeper: its own sys.wakeup_period, else the option. */
static int64_t wakeup_period_ms(struct shelly *s, fg_decode_ctx *ctx, const char *device)
{
	const char *wp = s->host->state_get(ctx, device, "wakeup_period");
	return wp && atoll(wp) > 0 ? atoll(wp) * 1000 : s->cfg->wakeup_period_ms;
}

/*
 * A message from `device`: a device reported missing is back, and a
 * sleeper's next wake-up is due by its period plus the grace (a later
 * message moves that check again).
 */
static void heard(struct shelly *s, fg_decode_ctx *ctx, const struct fg_msg *msg,
                  const char *device)
{
	const struct fg_host *h = s->host;
	const char *avail = h->state_get(ctx, device, "avail");
	if (avail && strcmp(avail, "missing") == 0) {
		pu_emit(h, ctx, device, FG_KIND_ONLINE, FG_KIND_NONE, 0, "{\"reason\":\"woke up\"}");
		h->state_set(ctx, device, "avail", "online");
	}
	if (s->cfg->wakeup_grace_ms <= 0 || !FG_HOST_HAS_WAKE_AT(h) || !is_sleeper(s, ctx, device))
		return;
	char ms[24];
	snprintf(ms, sizeof(ms), "%lld", (long long)msg->recv_time_ms);
	h->state_set(ctx, device, "seen", ms);
	h->state_set(ctx, device, "check_from", NULL);
	h->wake_at(ctx, device, msg->recv_time_ms + wakeup_period_ms(s, ctx, device) +
	           s->cfg->wakeup_grace_ms);
}

/* The wake-up came before the device did: it missed its wake-up. */
static int missed_wakeup(struct shelly *s, fg_decode_ctx *ctx, const struct fg_msg *msg)
{
	const struct fg_host *h = s->host;
	const char *device = msg->topic, *seen = h->state_get(ctx, device, "seen");
	const char *avail = h->state_get(ctx, device, "avail");
	const char *since = h->state_get(ctx, device, "check_from");
	int64_t period = wakeup_period_ms(s, ctx, device), now = msg->recv_time_ms;
	int64_t last = seen ? atoll(seen) : 0, from = last;
	if (!seen || (avail && strcmp(avail, "missing") == 0))
		return 0;
	if (since && atoll(since) > from)
		from = atoll(since);
	if (now - (from + period + s->cfg->wakeup_grace_ms) > WAKE_LATE_MS) {
		/* We were down when it was due: give it a full period from now. */
		char ms[24];
		snprintf(ms, sizeof(ms), "%lld", (long long)now);
		h->state_set(ctx, device, "check_from", ms);
		h->wake_at(ctx, device, now + period + s->cfg->wakeup_grace_ms);
		return 0;
	}
	char attrs[160];
	snprintf(attrs, sizeof(attrs), "{\"reason\":\"missed wake-up\",\"wakeup_period_s\":%lld,"
	         "\"silent_s\":%lld}", (long long)(period / 1000), (long long)((now - last) / 1000));
	pu_emit(h, ctx, device, FG_KIND_OFFLINE, FG_KIND_NONE, 0, attrs);
	h->state_set(ctx, device, "avail", "missing");
	return 0;
}

/* ---- Gen2 components ---------------------------------------------------- */

static bool is_component(const char *key, const char *type)
{
	size_t n = strlen(type);
	if (strncmp(key, type, n) != 0 || key[n] != ':' || !key[n + 1])
		return false;
	return strspn(key + n + 1, "0123456789") == strlen(key + n + 1);
}

/* Type checks for the components this plugin reads; everything else in a
 * status is ignored.  Returns 0 or -EINVAL after fail(). */
static int check_component(struct shelly *s, fg_decode_ctx *ctx, const char *key, json_t *v)
{
	char desc[64];
	const char *field = NULL, *want = NULL;
	json_t *bad = NULL;
	if (is_component(key, "smoke") || is_component(key, "devicepower") ||
	    strcmp(key, "sys") == 0) {
		if (!json_is_object(v)) {
			s->host->fail(ctx, "\"%s\": expected an object, got %s", key,
			              pu_describe(v, desc, sizeof(desc)));
			return -EINVAL;
		}
	}
	if (is_component(key, "smoke")) {
		static const char *const keys[] = { "alarm", "mute" };
		for (size_t i = 0; i < PU_ARRAY_LEN(keys) && !bad; i++) {
			json_t *f = json_object_get(v, keys[i]);
			if (f && !json_is_boolean(f) && !json_is_null(f))
				bad = f, field = keys[i], want = "a boolean";
		}
	} else if (is_component(key, "devicepower")) {
		json_t *b = json_object_get(v, "battery");
		if (b && !json_is_object(b) && !json_is_null(b))
			bad = b, field = "battery", want = "an object";
		static const char *const keys[] = { "percent", "V" };
		for (size_t i = 0; i < PU_ARRAY_LEN(keys) && !bad && json_is_object(b); i++) {
			json_t *f = json_object_get(b, keys[i]);
			if (f && !json_is_number(f) && !json_is_null(f))
				bad = f, field = keys[i], want = "a number or null";
		}
	} else if (strcmp(key, "sys") == 0) {
		json_t *f = json_object_get(v, "wakeup_period");
		if (f && !json_is_integer(f) && !json_is_null(f))
			bad = f, field = "wakeup_period", want = "an integer";
	}
	if (bad) {
		s->host->fail(ctx, "\"%s\".%s: expected %s, got %s", key, field, want,
		              pu_describe(bad, desc, sizeof(desc)));
		return -EINVAL;
	}
	return 0;
}

static void apply_component(struct shelly *s, fg_decode_ctx *ctx, const char *src,
                            const char *key, json_t *v, const json_t *ts, const char *channel)
{
	char device[1024];
	component_device(src, key, device, sizeof(device));
	if (is_component(key, "smoke")) {
		json_t *alarm = json_object_get(v, "alarm");
		if (!json_is_boolean(alarm))
			return;           /* a delta without alarm: unchanged */
		char *attrs = gen2_attrs(key, channel, ts, json_object_get(v, "mute"));
		smoke_transition(s, ctx, device, json_is_true(alarm), device_time(ts), attrs);
		free(attrs);
	} else if (is_component(key, "devicepower")) {
		json_t *b = json_object_get(v, "battery");
		json_t *pct = json_object_get(b, "percent"), *volts = json_object_get(b, "V");
		if (json_is_number(pct))   /* null: not measurable right now */
			battery_transition(s, ctx, src, json_number_value(pct),
			                   json_is_number(volts) ? json_number_value(volts) : NAN,
			                   device_time(ts));
	} else if (strcmp(key, "sys") == 0) {
		json_t *wp = json_object_get(v, "wakeup_period");
		if (json_is_integer(wp)) {
			char buf[32];
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(wp));
			s->host->state_set(ctx, src, "wakeup_period", buf);
		}
	}
}

/* NotifyStatus / NotifyFullStatus params: component keys beside "ts". */
static int decode_status(struct shelly *s, fg_decode_ctx *ctx, const char *src, json_t *params)
{
	const char *key;
	json_t *v;
	json_object_foreach(params, key, v) {
		int r = check_component(s, ctx, key, v);
		if (r < 0)
			return r;
	}
	json_t *ts = json_object_get(params, "ts");
	json_object_foreach(params, key, v)
		apply_component(s, ctx, src, key, v, ts, "events/rpc");
	return 0;
}

static int decode_events(struct shelly *s, fg_decode_ctx *ctx, const char *src, json_t *params)
{
	char desc[64];
	json_t *events = json_object_get(params, "events");
	if (!json_is_array(events)) {
		s->host->fail(ctx, "NotifyEvent: \"params.events\": expected an array, got %s",
		              events ? pu_describe(events, desc, sizeof(desc)) : "nothing");
		return -EINVAL;
	}
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e) {
		if (!json_is_object(e) || !json_is_string(json_object_get(e, "component")) ||
		    !json_is_string(json_object_get(e, "event"))) {
			s->host->fail(ctx, "NotifyEvent: event #%zu: expected an object with string "
			              "\"component\" and \"event\"", i);
			return -EINVAL;
		}
	}
	json_array_foreach(events, i, e) {
		const char *component = json_string_value(json_object_get(e, "component"));
		const char *event = json_string_value(json_object_get(e, "event"));
		if (!is_component(component, "smoke"))
			continue;
		json_t *ts = json_object_get(e, "ts");
		if (!json_is_number(ts))
			ts = json_object_get(params, "ts");
		char device[1024];
		component_device(src, component, device, sizeof(device));
		char *attrs = gen2_attrs(component, "events/rpc", ts, NULL);
		if (strcmp(event, "alarm") == 0 || strcmp(event, "alarm_off") == 0)
			smoke_transition(s, ctx, device, strcmp(event, "alarm") == 0, device_time(ts),
			                 attrs);
		else if (strcmp(event, "alarm_test") == 0)
			pu_emit(s->host, ctx, device, FG_KIND_TEST, FG_KIND_NONE, device_time(ts), attrs);
		free(attrs);
	}
	return 0;
}

static int decode_rpc(struct shelly *s, const struct fg_msg *msg, fg_decode_ctx *ctx,
                      const char *prefix)
{
	json_t *root;
	int r = pu_parse_json(s->host, ctx, msg, MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	char desc[64];
	if (!json_is_object(root)) {
		s->host->fail(ctx, "events/rpc: payload is a JSON %s, expected an object",
		              pu_json_type(root));
		json_decref(root);
		return -EINVAL;
	}
	json_t *method = json_object_get(root, "method");
	json_t *src = json_object_get(root, "src");
	json_t *params = json_object_get(root, "params");
	if (!method) {
		json_decref(root);
		return 0;        /* an RPC response: nothing to report */
	}
	if (!json_is_string(method) || (src && (!json_is_string(src) ||
	                                        !json_string_length(src)))) {
		s->host->fail(ctx, "events/rpc: \"method\" and \"src\" must be non-empty strings, "
		              "got %s", pu_describe(json_is_string(method) ? src : method, desc,
		                                    sizeof(desc)));
		json_decref(root);
		return -EINVAL;
	}
	const char *m = json_string_value(method);
	const char *id = src ? json_string_value(src) : prefix;
	bool status = strcmp(m, "NotifyStatus") == 0 || strcmp(m, "NotifyFullStatus") == 0;
	bool event = strcmp(m, "NotifyEvent") == 0;
	if ((status || event) && !json_is_object(params)) {
		s->host->fail(ctx, "%s: \"params\": expected an object, got %s", m,
		              params ? pu_describe(params, desc, sizeof(desc)) : "nothing");
		json_decref(root);
		return -EINVAL;
	}
	if (!id[0] || strlen(id) > 512) {
		s->host->fail(ctx, "events/rpc: device id is empty or longer than 512 bytes");
		json_decref(root);
		return -EPROTO;
	}
	r = status ? decode_status(s, ctx, id, params) : event ? decode_events(s, ctx, id, params) : 0;
	if (r == 0 && (status || event))
		heard(s, ctx, msg, id);   /* after sys.wakeup_period was read */
	json_decref(root);
	return r;
}

/* <prefix>/status/<component>: the component's full status, no envelope. */
static int decode_component_status(struct shelly *s, const struct fg_msg *msg,
                                   fg_decode_ctx *ctx, const char *prefix, const char *comp)
{
	json_t *root;
	int r = pu_parse_json(s->host, ctx, msg, MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	r = check_component(s, ctx, comp, root);
	if (r == 0 && !json_is_object(root)) {
		s->host->fail(ctx, "status/%s: payload is a JSON %s, expected an object", comp,
		              pu_json_type(root));
		r = -EINVAL;
	}
	if (r == 0) {
		apply_component(s, ctx, prefix, comp, root, NULL, "status");
		heard(s, ctx, msg, prefix);
	}
	json_decref(root);
	return r;
}

/* ---- plain-text topics (Gen1 values, Last Will of both) ------------------- */

/* "true"/"false" -> 1/0, or -EINVAL after fail(). */
static int parse_bool_text(struct shelly *s, const struct fg_msg *msg, fg_decode_ctx *ctx,
                           const char *what)
{
	char text[16];
	if (pu_payload_text(msg, text, sizeof(text)) == 0) {
		if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
			return 1;
		if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
			return 0;
	}
	s->host->fail(ctx, "%s: expected true or false, got %zu bytes of something else", what,
	              msg->len);
	return -EINVAL;
}

/* The Last Will.  A sleeper's false is routine; other devices get offline
 * on a change to false and online when that offline ends. */
static int decode_online(struct shelly *s, const struct fg_msg *msg, fg_decode_ctx *ctx,
                         const char *device)
{
	int online = parse_bool_text(s, msg, ctx, "online");
	if (online < 0)
		return online;
	heard(s, ctx, msg, device);
	const struct fg_host *h = s->host;
	const char *prev = h->state_get(ctx, device, "avail");
	bool was_offline = prev && strcmp(prev, "offline") == 0;
	if (online) {
		if (was_offline)
			pu_emit(h, ctx, device, FG_KIND_ONLINE, FG_KIND_NONE, 0, NULL);
		h->state_set(ctx, device, "avail", "online");
	} else if (is_sleeper(s, ctx, device)) {
		h->state_set(ctx, device, "avail", "asleep");
	} else {
		if (!was_offline)
			pu_emit(h, ctx, device, FG_KIND_OFFLINE, FG_KIND_NONE, 0, NULL);
		h->state_set(ctx, device, "avail", "offline");
	}
	return 0;
}

static int decode_gen1(struct shelly *s, const struct fg_msg *msg, fg_decode_ctx *ctx,
                       const char *rest)
{
	const char *slash = strchr(rest, '/');
	if (!slash || slash == rest || slash - rest > 512) {
		s->host->fail(ctx, "Gen1 topic without a device id");
		return -EPROTO;
	}
	char device[520];
	snprintf(device, sizeof(device), "%.*s", (int)(slash - rest), rest);
	const char *path = slash + 1;
	if (strcmp(path, "online") == 0)
		return decode_online(s, msg, ctx, device);
	if (strncmp(path, "sensor/", 7) == 0)
		heard(s, ctx, msg, device);
	if (strcmp(path, "sensor/smoke") == 0) {
		int alarm = parse_bool_text(s, msg, ctx, "sensor/smoke");
		if (alarm < 0)
			return alarm;
		smoke_transition(s, ctx, device, alarm, 0, "{\"channel\":\"gen1\"}");
		return 0;
	}
	if (strcmp(path, "sensor/battery") == 0) {
		char text[32], *end = text;
		double pct = NAN;
		if (pu_payload_text(msg, text, sizeof(text)) == 0 && text[0])
			pct = strtod(text, &end);
		if (isnan(pct) || *end || pct < 0 || pct > 100) {
			s->host->fail(ctx, "sensor/battery: expected a percentage 0..100");
			return -EINVAL;
		}
		battery_transition(s, ctx, device, pct, NAN, 0);
		return 0;
	}
	return 0;   /* temperature, act_reasons, announce, ...: nothing to report */
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int shelly_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct shelly *s = state;
	const char *topic = msg->topic;
	size_t plen = strlen(s->cfg->gen1_prefix);
	if (msg->transport && strcmp(msg->transport, FG_TRANSPORT_WAKE) == 0)
		return missed_wakeup(s, ctx, msg);
	if (msg->len == 0)
		return 0;   /* a retained message being deleted */
	if (strncmp(topic, s->cfg->gen1_prefix, plen) == 0 && topic[plen] == '/')
		return decode_gen1(s, msg, ctx, topic + plen + 1);

	/* Gen2: the prefix may itself contain '/', so match from the end. */
	char prefix[520];
	const char *cut = NULL, *comp = NULL;
	if (ends_with(topic, "/events/rpc"))
		cut = topic + strlen(topic) - strlen("/events/rpc");
	else if (ends_with(topic, "/online"))
		cut = topic + strlen(topic) - strlen("/online");
	else {
		const char *st = strstr(topic, "/status/");
		for (const char *p = st; p; p = strstr(p + 1, "/status/"))
			st = p;
		if (st && st[8] && !strchr(st + 8, '/')) {
			cut = st;
			comp = st + 8;
		}
	}
	if (!cut)
		return 0;   /* commands, debug logs, other devices' topics */
	if (cut == topic || cut - topic > 512) {
		s->host->fail(ctx, "topic '%s' has an empty or over-long device prefix", topic);
		return -EPROTO;
	}
	snprintf(prefix, sizeof(prefix), "%.*s", (int)(cut - topic), topic);
	if (comp)
		return decode_component_status(s, msg, ctx, prefix, comp);
	if (ends_with(topic, "/online"))
		return decode_online(s, msg, ctx, prefix);
	return decode_rpc(s, msg, ctx, prefix);
}

FG_PLUGIN_DEFINE(shelly,
	.name = "shelly",
	.version = "1.0",
	.description = "Shelly Plus Smoke (Gen2 RPC over MQTT) and Gen1 Shelly Smoke",
	.options = shelly_options,
	.config_size = sizeof(struct shelly_config),
	.init = shelly_init,
	.fini = shelly_fini,
	.decode = shelly_decode);
