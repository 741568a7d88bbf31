/*
 * tasmota: Tasmota devices over MQTT (docs/plugins.md has the mapping).
 *
 * Topics follow the device's FullTopic (option full_topic, default
 * "%prefix%/%topic%/") with the message type as the last level:
 *   tele/<topic>/SENSOR    telemetry: ZbReceived (Zigbee IAS zones behind a
 *                          Zigbee2Tasmota bridge), ENERGY (sockets on e-bike
 *                          charging ports), temperature sensors (DS18B20...),
 *                          SwitchN inputs (SwitchMode 15)
 *   tele/<topic>/<addr>/SENSOR   the same, per Zigbee device (SetOption89)
 *   stat/<topic>/RESULT    {"SwitchN":{"Action":"ON"}} (SetOption114)
 *   tele/<topic>/LWT       plain "Online" / "Offline" (retained Last Will)
 * Device ids: the Tasmota topic, plus "/<short address>" (or the Zigbee
 * name when there is no address) for Zigbee devices, "/<sensor id>" for
 * temperature probes and "/SwitchN" for inputs.
 *
 * Tasmota only reports numbers; overcurrent and overtemp are gateway
 * thresholds with hysteresis, and every condition is a transition kept in
 * host state, because telemetry repeats the same values every TelePeriod.
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

#define MAX_PAYLOAD (256 * 1024)
#define MAX_LEVELS 16

struct tasmota_config {
	const char *full_topic;
	const char *prefixes;
	double current_max;
	double power_max;
	int64_t hysteresis_percent;
	double overtemp_c;
	double temp_hysteresis_c;
	const char *smoke_inputs;
	const char *smoke_zigbee;
	const char *state_text_on;
	const char *state_text_off;
	int64_t utc_offset_min;
};

#define O(f) offsetof(struct tasmota_config, f)
static const struct fg_option tasmota_options[] = {
	{ "full_topic", FG_OPT_STRING, "%prefix%/%topic%/", O(full_topic),
	  "the devices' FullTopic; %prefix% and %topic% are found in it, other %tokens% "
	  "match one level", 0, 0 },
	{ "prefixes", FG_OPT_STRING, "tele,stat", O(prefixes),
	  "prefixes the devices publish with (cmnd is always ignored)", 0, 0 },
	{ "current_max", FG_OPT_DOUBLE, "5", O(current_max),
	  "overcurrent above this ENERGY.Current, in A (0 = off)", 0, 1000 },
	{ "power_max", FG_OPT_DOUBLE, "1200", O(power_max),
	  "overcurrent above this ENERGY.Power, in W (0 = off)", 0, 1e6 },
	{ "hysteresis_percent", FG_OPT_INT, "10", O(hysteresis_percent),
	  "an overcurrent clears once current and power are this far below their limits",
	  0, 90 },
	{ "overtemp_c", FG_OPT_DOUBLE, "70", O(overtemp_c),
	  "overtemp above this temperature in degC, whatever TempUnit the device uses "
	  "(0 = off)", -100, 1000 },
	{ "temp_hysteresis_c", FG_OPT_DOUBLE, "5", O(temp_hysteresis_c),
	  "an overtemp clears once the temperature is this far below overtemp_c", 0, 100 },
	{ "smoke_inputs", FG_OPT_STRING, "", O(smoke_inputs),
	  "inputs wired to a smoke detector's alarm relay: <topic>/SwitchN, with :nc for "
	  "a normally closed contact; comma separated", 0, 0 },
	{ "smoke_zigbee", FG_OPT_STRING, "", O(smoke_zigbee),
	  "Zigbee IAS devices known to be smoke detectors (<topic>/<short address or name>), "
	  "so that raw zone frames without a Fire key count as smoke; comma separated", 0, 0 },
	{ "state_text_on", FG_OPT_STRING, "ON", O(state_text_on),
	  "input text for an active contact (StateText2)", 0, 0 },
	{ "state_text_off", FG_OPT_STRING, "OFF", O(state_text_off),
	  "input text for an idle contact (StateText1)", 0, 0 },
	{ "utc_offset", FG_OPT_INT, "480", O(utc_offset_min),
	  "minutes east of UTC of the devices' local Time (Tasmota's Timezone); 480 = +08:00",
	  -720, 840 },
	FG_OPTION_END
};
#undef O

struct tasmota {
	const struct fg_host *host;
	const struct tasmota_config *cfg;
	char *pattern;                /* full_topic split in place */
	const char *levels[MAX_LEVELS];
	size_t n_levels;
};

static void tasmota_fini(void *state)
{
	struct tasmota *t = state;
	if (!t)
		return;
	free(t->pattern);
	free(t);
}

static int tasmota_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct tasmota_config *cfg = config;
	struct tasmota *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->host = host;
	t->cfg = cfg;
	t->pattern = strdup(cfg->full_topic ? cfg->full_topic : "");
	if (!t->pattern) {
		tasmota_fini(t);
		return -ENOMEM;
	}
	bool has_topic = false;
	char *save = NULL;
	for (char *l = strtok_r(t->pattern, "/", &save); l; l = strtok_r(NULL, "/", &save)) {
		if (t->n_levels == MAX_LEVELS || strchr(l, '+') || strchr(l, '#')) {
			tasmota_fini(t);
			return pu_option_error(host, "full_topic",
			                       "at most %d levels, without + or #", MAX_LEVELS);
		}
		has_topic |= strcmp(l, "%topic%") == 0;
		t->levels[t->n_levels++] = l;
	}
	if (!has_topic) {
		tasmota_fini(t);
		return pu_option_error(host, "full_topic", "needs a %%topic%% level");
	}
	*ret_state = t;
	return 0;
}

/* Where a message came from: the FullTopic's %prefix% and %topic%, the
 * message type, and the optional per-Zigbee-device level (SetOption89). */
struct where {
	char prefix[64];
	char topic[256];
	char type[32];
	char subdevice[64];
};

static bool copy_level(char *dst, size_t len, const char *src, size_t n)
{
	if (n == 0 || n >= len)
		return false;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return true;
}

/* 0, or -EPROTO when the topic does not fit the FullTopic. */
static int match_topic(const struct tasmota *t, const char *topic, struct where *w)
{
	const char *lv[MAX_LEVELS + 2];
	size_t len[MAX_LEVELS + 2], n = 0;
	memset(w, 0, sizeof(*w));
	for (const char *p = topic;; p++) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);
		if (n == MAX_LEVELS + 2)
			return -EPROTO;
		lv[n] = p;
		len[n++] = l;
		if (!slash)
			break;
		p = slash;
	}
	size_t k = t->n_levels;
	if (n != k + 1 && n != k + 2)
		return -EPROTO;
	for (size_t i = 0; i < k; i++) {
		const char *pat = t->levels[i];
		if (strcmp(pat, "%prefix%") == 0) {
			if (!copy_level(w->prefix, sizeof(w->prefix), lv[i], len[i]))
				return -EPROTO;
		} else if (strcmp(pat, "%topic%") == 0) {
			if (!copy_level(w->topic, sizeof(w->topic), lv[i], len[i]))
				return -EPROTO;
		} else if (pat[0] != '%' && (strlen(pat) != len[i] || strncmp(pat, lv[i], len[i]))) {
			return -EPROTO;
		}
	}
	if (!copy_level(w->type, sizeof(w->type), lv[n - 1], len[n - 1]))
		return -EPROTO;
	if (n == k + 2 && (strcmp(w->type, "SENSOR") != 0 ||
	                   !copy_level(w->subdevice, sizeof(w->subdevice), lv[k], len[k])))
		return -EPROTO;
	return 0;
}

/* Emit the edge of a threshold condition with its measured value; attrs
 * are stolen. */
static void emit_edge(struct tasmota *t, fg_decode_ctx *ctx, const char *device, fg_kind kind,
                      enum pu_edge e, double value, const char *unit, int64_t time_ms,
                      json_t *attrs)
{
	char *a = pu_attrs_text(attrs);
	pu_emit_edge(t->host, ctx, device, e, kind, isnan(value) ? NULL : unit, value, time_ms, a);
	free(a);
}

/* A threshold with hysteresis: active above `max`, and while active until
 * the value falls to `max - margin`. */
static enum pu_edge threshold(struct tasmota *t, fg_decode_ctx *ctx, const char *device,
                              const char *key, bool above, bool above_release)
{
	const char *prev = t->host->state_get(ctx, device, key);
	bool was = prev && strcmp(prev, "1") == 0;
	return pu_edge(t->host, ctx, device, key, above || (was && above_release));
}

/* ---- ZbReceived: Zigbee IAS zones ----------------------------------------- */

/* IAS Zone Status bits (ZCL 8.2.2.2.1.3). */
#define IAS_ALARM1 0x0001u
#define IAS_ALARM2 0x0002u
#define IAS_TAMPER 0x0004u
#define IAS_BATTERY 0x0008u
#define IAS_TROUBLE 0x0040u
#define IAS_TEST 0x0100u

/* Zone status from a raw Zone Status Change Notification ("0500<00",
 * "0500!00" or "0500?00" across Tasmota versions): little-endian hex,
 * zone status first.  -1 when absent or malformed. */
static long raw_zone_status(json_t *entry)
{
	static const char *const keys[] = { "0500<00", "0500!00", "0500?00" };
	for (size_t i = 0; i < PU_ARRAY_LEN(keys); i++) {
		const char *hex = json_string_value(json_object_get(entry, keys[i]));
		unsigned lo, hi;
		if (hex && strlen(hex) >= 4 && strspn(hex, "0123456789abcdefABCDEF") == strlen(hex) &&
		    sscanf(hex, "%2x%2x", &lo, &hi) == 2)
			return (long)(lo | hi << 8);
	}
	return -1;
}

/* A number or boolean field as 0/1, -1 when absent. */
static int flag(json_t *v)
{
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_number(v))
		return json_number_value(v) != 0;
	return -1;
}

static void zigbee_entry(struct tasmota *t, fg_decode_ctx *ctx, const struct where *w,
                         const char *key, json_t *entry, int64_t time_ms)
{
	const struct fg_host *h = t->host;
	const char *addr = json_string_value(json_object_get(entry, "Device"));
	const char *name = json_string_value(json_object_get(entry, "Name"));
	bool key_is_addr = strncmp(key, "0x", 2) == 0 || strncmp(key, "0X", 2) == 0;
	if (!addr && key_is_addr)
		addr = key;
	if (!name && !key_is_addr)
		name = key;      /* name-as-key (SetOption83) without a Device field */
	char device[512], known[512];
	snprintf(device, sizeof(device), "%s/%s", w->topic, addr ? addr : name);

	int fire = flag(json_object_get(entry, "Fire"));
	json_t *zs = json_object_get(entry, "ZoneStatusChange");
	if (!json_is_number(zs))
		zs = json_object_get(entry, "ZoneStatus");
	long status = json_is_number(zs) ? (long)json_number_value(zs) : raw_zone_status(entry);
	if (fire < 0 && status < 0)
		return;          /* a temperature, a link quality report...: nothing to report */

	/* Which kind of zone: a Fire key says so and is remembered; other
	 * decoded zone keys say it is not a fire zone; the site may list it. */
	if (fire >= 0)
		h->state_set(ctx, device, "zone", "fire");
	else if (json_object_get(entry, "Water") || json_object_get(entry, "Contact") ||
	         json_object_get(entry, "Movement") || json_object_get(entry, "Occupancy"))
		h->state_set(ctx, device, "zone", "other");
	const char *zone = h->state_get(ctx, device, "zone");
	snprintf(known, sizeof(known), "%s/%s", w->topic, name ? name : "");
	bool smoke_zone = (zone && strcmp(zone, "fire") == 0) ||
	                  pu_list_has(t->cfg->smoke_zigbee, device, 0) ||
	                  (name && pu_list_has(t->cfg->smoke_zigbee, known, 0));
	if (zone && strcmp(zone, "other") == 0 && !smoke_zone)
		return;
	bool alarm = fire >= 0 ? fire : (status & (IAS_ALARM1 | IAS_ALARM2)) != 0;

	json_t *a = json_object();
	if (a) {
		json_object_set_new(a, "bridge", json_string(w->topic));
		if (addr)
			json_object_set_new(a, "short_addr", json_string(addr));
		if (name)
			json_object_set_new(a, "name", json_string(name));
		if (status >= 0)
			json_object_set_new(a, "zone_status", json_integer(status));
		json_t *lq = json_object_get(entry, "LinkQuality");
		if (json_is_number(lq))
			json_object_set(a, "linkquality", lq);
		if (!smoke_zone)
			json_object_set_new(a, "zone_type", json_string("unknown"));
	}
	char *attrs = pu_attrs_text(a);

	/* A test press raises the alarm bit too: the test wins. */
	bool test = status >= 0 && (status & IAS_TEST);
	if (pu_edge(h, ctx, device, "test", test) == PU_EDGE_RISE)
		pu_emit(h, ctx, device, FG_KIND_TEST, FG_KIND_NONE, time_ms, attrs);
	if (!test) {
		enum pu_edge e = pu_edge(h, ctx, device, "smoke", alarm);
		/* An IAS alarm nobody can place still goes to the operator, as a
		 * smoke report one step below critical. */
		struct fg_event ev = {
			.struct_size = sizeof(ev),
			.kind = e == PU_EDGE_RISE ? FG_KIND_SMOKE : FG_KIND_CLEAR,
			.severity = e != PU_EDGE_RISE ? FG_SEV_INFO
			          : smoke_zone ? FG_SEV_CRITICAL : FG_SEV_MAJOR,
			.device = device,
			.clears = FG_KIND_SMOKE,
			.device_time_ms = time_ms,
			.attrs_json = attrs,
		};
		if (e != PU_EDGE_NONE)
			h->emit(ctx, &ev);
	}
	if (status >= 0) {
		static const struct { unsigned bit; const char *key; fg_kind kind; } bits[] = {
			{ IAS_TAMPER, "tamper", FG_KIND_TAMPER },
			{ IAS_TROUBLE, "fault", FG_KIND_FAULT },
			{ IAS_BATTERY, "battery_low", FG_KIND_BATTERY_LOW },
		};
		for (size_t i = 0; i < PU_ARRAY_LEN(bits); i++)
			pu_transition(h, ctx, device, bits[i].key, status & bits[i].bit, bits[i].kind,
			              time_ms, attrs);
	}
	free(attrs);
}

static int zigbee_received(struct tasmota *t, fg_decode_ctx *ctx, const struct where *w,
                           json_t *zb, int64_t time_ms)
{
	char desc[64];
	if (!json_is_object(zb)) {
		t->host->fail(ctx, "\"ZbReceived\": expected an object, got %s",
		              pu_describe(zb, desc, sizeof(desc)));
		return -EINVAL;
	}
	const char *key;
	json_t *entry;
	json_object_foreach(zb, key, entry) {
		if (!json_is_object(entry) || !key[0] || strlen(key) > 200) {
			t->host->fail(ctx, "\"ZbReceived\".\"%.40s\": expected an object keyed by a "
			              "short address or name", key);
			return -EINVAL;
		}
	}
	/* A bridge: its Last Will takes every device behind it along. */
	t->host->state_set(ctx, w->topic, "bridge", "1");
	json_object_foreach(zb, key, entry)
		zigbee_entry(t, ctx, w, key, entry, time_ms);
	return 0;
}

/* ---- ENERGY: sockets on e-bike charging ports ----------------------------- */

/* Channel i of a scalar-or-array field; NAN when absent.  A scalar belongs
 * to channel 0 only, unless it is shared by all (the strip's Voltage). */
static double channel_value(json_t *v, size_t i, bool shared)
{
	if (json_is_array(v))
		v = json_array_get(v, i);
	else if (i > 0 && !shared)
		return NAN;
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int energy(struct tasmota *t, fg_decode_ctx *ctx, const struct where *w, json_t *en,
                  int64_t time_ms)
{
	char desc[64];
	json_t *cur = json_object_get(en, "Current"), *pow = json_object_get(en, "Power");
	static const char *const keys[] = { "Current", "Power", "Voltage" };
	for (size_t k = 0; k < PU_ARRAY_LEN(keys); k++) {
		json_t *v = json_object_get(en, keys[k]);
		bool ok = !v || json_is_number(v) || json_is_null(v);
		if (json_is_array(v)) {
			ok = json_array_size(v) <= 8;
			for (size_t i = 0; ok && i < json_array_size(v); i++)
				ok = json_is_number(json_array_get(v, i));
		}
		if (!ok) {
			t->host->fail(ctx, "\"ENERGY\".%s: expected a number or an array of up to 8, "
			              "got %s", keys[k], pu_describe(v, desc, sizeof(desc)));
			return -EINVAL;
		}
	}
	size_t channels = json_is_array(cur) ? json_array_size(cur) : 1;
	if (json_is_array(pow) && json_array_size(pow) > channels)
		channels = json_array_size(pow);
	double margin = 1.0 - (double)t->cfg->hysteresis_percent / 100.0;
	double imax = t->cfg->current_max, pmax = t->cfg->power_max;
	for (size_t i = 0; i < channels; i++) {
		double amps = channel_value(cur, i, false), watts = channel_value(pow, i, false);
		double volts = channel_value(json_object_get(en, "Voltage"), i, true);
		bool a_on = imax > 0 && !isnan(amps), p_on = pmax > 0 && !isnan(watts);
		if (!a_on && !p_on)
			continue;
		char device[300];
		if (json_is_array(cur) || json_is_array(pow))
			snprintf(device, sizeof(device), "%s/%zu", w->topic, i + 1);
		else
			snprintf(device, sizeof(device), "%s", w->topic);
		bool above = (a_on && amps > imax) || (p_on && watts > pmax);
		bool still = (a_on && amps > imax * margin) || (p_on && watts > pmax * margin);
		enum pu_edge e = threshold(t, ctx, device, "overcurrent", above, still);
		if (e == PU_EDGE_NONE)
			continue;
		json_t *a = json_object();
		if (a && !isnan(amps))
			json_object_set_new(a, "current", pu_json_number(amps));
		if (a && !isnan(watts))
			json_object_set_new(a, "power", pu_json_number(watts));
		if (a && !isnan(volts))
			json_object_set_new(a, "voltage", pu_json_number(volts));
		if (a && a_on)
			json_object_set_new(a, "current_max", pu_json_number(imax));
		if (a && p_on)
			json_object_set_new(a, "power_max", pu_json_number(pmax));
		emit_edge(t, ctx, device, FG_KIND_OVERCURRENT, e, isnan(amps) ? watts : amps,
		          isnan(amps) ? "W" : "A", time_ms, a);
	}
	return 0;
}

/* ---- temperature probes (DS18B20 and friends) ----------------------------- */

static void temperature(struct tasmota *t, fg_decode_ctx *ctx, const struct where *w,
                        const char *sensor, json_t *obj, bool fahrenheit, int64_t time_ms)
{
	json_t *tv = json_object_get(obj, "Temperature");
	if (!json_is_number(tv) || t->cfg->overtemp_c == 0)
		return;
	double raw = json_number_value(tv);
	double c = fahrenheit ? (raw - 32.0) * 5.0 / 9.0 : raw;
	c = round(c * 100) / 100;
	const char *id = json_string_value(json_object_get(obj, "Id"));
	char device[512];
	snprintf(device, sizeof(device), "%s/%s", w->topic, id && id[0] ? id : sensor);
	double max = t->cfg->overtemp_c;
	enum pu_edge e = threshold(t, ctx, device, "overtemp", c > max,
	                           c > max - t->cfg->temp_hysteresis_c);
	if (e == PU_EDGE_NONE)
		return;
	json_t *a = json_object();
	if (a) {
		json_object_set_new(a, "sensor", json_string(sensor));
		json_object_set_new(a, "overtemp_c", pu_json_number(max));
	}
	if (a && fahrenheit)
		json_object_set_new(a, "temperature_f", pu_json_number(raw));
	emit_edge(t, ctx, device, FG_KIND_OVERTEMP, e, c, "degC", time_ms, a);
}

/* ---- relay inputs wired to smoke detectors -------------------------------- */

static void input(struct tasmota *t, fg_decode_ctx *ctx, const struct where *w,
                  const char *sw, const char *text, int64_t time_ms)
{
	char device[300], nc[310];
	snprintf(device, sizeof(device), "%s/%s", w->topic, sw);
	snprintf(nc, sizeof(nc), "%s:nc", device);
	bool normally_closed = pu_list_has(t->cfg->smoke_inputs, nc, 0);
	if (!normally_closed && !pu_list_has(t->cfg->smoke_inputs, device, 0))
		return;          /* what an input means is site configuration */
	bool on = strcmp(text, t->cfg->state_text_on) == 0;
	if (!on && strcmp(text, t->cfg->state_text_off) != 0)
		return;          /* TOGGLE, HOLD...: not a contact state */
	char attrs[400];
	snprintf(attrs, sizeof(attrs), "{\"input\":\"%s\",\"wiring\":\"%s\"}", sw,
	         normally_closed ? "nc" : "no");
	pu_transition(t->host, ctx, device, "smoke", on != normally_closed, FG_KIND_SMOKE, time_ms,
	              attrs);
}

static bool is_switch(const char *key)
{
	return strncmp(key, "Switch", 6) == 0 && key[6] && strlen(key) < 10 &&
	       strspn(key + 6, "0123456789") == strlen(key + 6);
}

/* ---- messages ------------------------------------------------------------ */

static int decode_json(struct tasmota *t, const struct fg_msg *msg, fg_decode_ctx *ctx,
                       const struct where *w)
{
	json_t *root;
	int r = pu_parse_json(t->host, ctx, msg, MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	if (!json_is_object(root)) {
		t->host->fail(ctx, "%s: payload is a JSON %s, expected an object", w->type,
		              pu_json_type(root));
		json_decref(root);
		return -EINVAL;
	}
	int64_t time_ms = 0;
	const char *time = json_string_value(json_object_get(root, "Time"));
	if (time && pu_parse_local_time(time, t->cfg->utc_offset_min, &time_ms) < 0)
		time_ms = 0;     /* a clock not yet set must not hide an alarm */
	const char *unit = json_string_value(json_object_get(root, "TempUnit"));
	bool fahrenheit = unit && strcmp(unit, "F") == 0;

	json_t *zb = json_object_get(root, "ZbReceived");
	json_t *en = json_object_get(root, "ENERGY");
	if (zb)
		r = zigbee_received(t, ctx, w, zb, time_ms);
	if (r == 0 && en) {
		if (json_is_object(en))
			r = energy(t, ctx, w, en, time_ms);
		else {
			char desc[64];
			t->host->fail(ctx, "\"ENERGY\": expected an object, got %s",
			              pu_describe(en, desc, sizeof(desc)));
			r = -EINVAL;
		}
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (r < 0)
			break;
		if (is_switch(key)) {
			/* SENSOR "Switch1":"ON", or RESULT {"Switch1":{"Action":"ON"}} */
			const char *text = json_is_object(v)
				? json_string_value(json_object_get(v, "Action")) : json_string_value(v);
			if (text)
				input(t, ctx, w, key, text, time_ms);
		} else if (json_is_object(v) && v != zb && v != en) {
			temperature(t, ctx, w, key, v, fahrenheit, time_ms);
		}
	}
	json_decref(root);
	return r;
}

static int decode_lwt(struct tasmota *t, const struct fg_msg *msg, fg_decode_ctx *ctx,
                      const struct where *w)
{
	char text[32];
	int online = -1;
	if (pu_payload_text(msg, text, sizeof(text)) == 0)
		online = strcmp(text, "Online") == 0 ? 1 : strcmp(text, "Offline") == 0 ? 0 : -1;
	if (online < 0) {
		t->host->fail(ctx, "LWT: expected Online or Offline, got %zu bytes of something else",
		              msg->len);
		return -EINVAL;
	}
	const struct fg_host *h = t->host;
	const char *prev = h->state_get(ctx, w->topic, "avail");
	bool was_offline = prev && strcmp(prev, "offline") == 0;
	const char *bridge = h->state_get(ctx, w->topic, "bridge");
	if (online && was_offline) {
		pu_emit(h, ctx, w->topic, FG_KIND_ONLINE, FG_KIND_NONE, 0, NULL);
	} else if (!online && !was_offline) {
		/* A bridge offline makes every Zigbee device behind it unknown;
		 * none of them is offline itself. */
		struct fg_event ev = {
			.struct_size = sizeof(ev),
			.kind = FG_KIND_OFFLINE,
			.severity = bridge ? FG_SEV_MAJOR : FG_SEV_WARNING,
			.device = w->topic,
			.attrs_json = bridge ? "{\"bridge\":true}" : NULL,
		};
		h->emit(ctx, &ev);
	}
	h->state_set(ctx, w->topic, "avail", online ? "online" : "offline");
	return 0;
}

static int tasmota_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct tasmota *t = state;
	struct where w;
	if (match_topic(t, msg->topic, &w) < 0) {
		t->host->fail(ctx, "topic '%s' does not match full_topic '%s' plus a message type",
		              msg->topic, t->cfg->full_topic);
		return -EPROTO;
	}
	if (w.prefix[0] && strcmp(w.prefix, "cmnd") == 0)
		return 0;   /* commands to devices */
	if (w.prefix[0] && !pu_list_has(t->cfg->prefixes, w.prefix, 0)) {
		t->host->fail(ctx, "topic prefix '%s' is not one of prefixes '%s'", w.prefix,
		              t->cfg->prefixes);
		return -EPROTO;
	}
	if (msg->len == 0)
		return 0;   /* a retained message being deleted */
	if (strcmp(w.type, "LWT") == 0)
		return decode_lwt(t, msg, ctx, &w);
	if (strcmp(w.type, "SENSOR") == 0 || strcmp(w.type, "RESULT") == 0)
		return decode_json(t, msg, ctx, &w);
	return 0;       /* STATE, INFO1..3, POWER, UPTIME...: nothing to report */
}

FG_PLUGIN_DEFINE(tasmota,
	.name = "tasmota",
	.version = "1.0",
	.description = "Tasmota: Zigbee IAS zones, e-bike port sockets, DS18B20, relay inputs",
	.options = tasmota_options,
	.config_size = sizeof(struct tasmota_config),
	.init = tasmota_init,
	.fini = tasmota_fini,
	.decode = tasmota_decode);
