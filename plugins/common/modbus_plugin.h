/*
 * What every bundled Modbus plugin shares (header-only, like plugin_util.h:
 * each plugin compiles its own copy and depends on nothing but the ABI
 * header and jansson):
 *
 *   - reading the poll payload the host hands to decode() (format in
 *     firegrid/plugin.h, "Modbus register maps");
 *   - device status: offline / online from the host's verdict, exception
 *     responses as fault (distinct from offline), each reported once per
 *     transition with per-device host state;
 *   - thresholds with hysteresis and a minimum duration, kept across polls
 *     (and restarts) in host state, reporting the measured value and unit.
 *
 * Time is msg->recv_time_ms: the poll's time in the daemon, pinned by
 * `firegridctl decode --now` in tests.
 */
#ifndef FG_MODBUS_PLUGIN_H
#define FG_MODBUS_PLUGIN_H

#include <inttypes.h>
#include <stdbool.h>
#include "plugin_util.h"

#define MP_MAX_PAYLOAD (256 * 1024)

/* One poll as the host reported it; json members are borrowed from root. */
struct mp_poll {
	json_t *root;
	const char *device;        /* the [modbus-device] name */
	const char *role;          /* may be NULL */
	const char *status;        /* "ok", "exception", "no_response" */
	bool online;
	json_int_t failures;
	json_t *values;            /* object, or NULL when nothing was read */
	json_t *exception;         /* object, or NULL */
	json_t *commanded;         /* object, or NULL */
	const char *error;         /* no_response: what failed */
	int64_t now_ms;
};

static PU_UNUSED void mp_poll_free(struct mp_poll *p)
{
	json_decref(p->root);
	p->root = NULL;
}

/* Parse and check the payload; explains failures through host->fail. */
static PU_UNUSED int mp_poll_parse(const struct fg_host *host, fg_decode_ctx *ctx,
                                   const struct fg_msg *msg, struct mp_poll *ret)
{
	json_t *root = NULL;
	int r = pu_parse_json(host, ctx, msg, MP_MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	struct mp_poll p = { .root = root, .now_ms = msg->recv_time_ms };
	const char *why = NULL;
	json_t *online = json_object_get(root, "online");
	if (!json_is_object(root))
		why = "payload is not a JSON object";
	else if (!(p.device = json_string_value(json_object_get(root, "device"))) || !p.device[0])
		why = "\"device\" is missing or not a non-empty string";
	else if (!(p.status = json_string_value(json_object_get(root, "status"))))
		why = "\"status\" is missing or not a string";
	else if (strcmp(p.status, "ok") && strcmp(p.status, "exception") &&
	         strcmp(p.status, "no_response"))
		why = "\"status\" is not ok, exception or no_response";
	else if (!json_is_boolean(online))
		why = "\"online\" is missing or not a boolean";
	if (why) {
		host->fail(ctx, "not a Modbus poll payload: %s", why);
		json_decref(root);
		return -EPROTO;
	}
	p.online = json_is_true(online);
	p.failures = json_integer_value(json_object_get(root, "failures"));
	p.role = json_string_value(json_object_get(root, "role"));
	p.error = json_string_value(json_object_get(root, "error"));
	json_t *v = json_object_get(root, "values");
	p.values = json_is_object(v) ? v : NULL;
	v = json_object_get(root, "exception");
	p.exception = json_is_object(v) ? v : NULL;
	v = json_object_get(root, "commanded");
	p.commanded = json_is_object(v) ? v : NULL;
	*ret = p;
	return 0;
}

/* A numeric value of the poll (booleans read as 0/1); false when absent. */
static PU_UNUSED bool mp_value(const struct mp_poll *p, const char *name, double *ret)
{
	json_t *v = p->values ? json_object_get(p->values, name) : NULL;
	if (json_is_number(v)) {
		*ret = json_number_value(v);
		return true;
	}
	if (json_is_boolean(v)) {
		*ret = json_is_true(v) ? 1 : 0;
		return true;
	}
	return false;
}

/* attrs {"role":...} plus one more key (NULL = none); malloc'd text. */
static PU_UNUSED char *mp_attrs(const struct mp_poll *p, const char *key, json_t *value)
{
	json_t *a = json_object();
	if (p->role)
		json_object_set_new(a, "role", json_string(p->role));
	if (key)
		json_object_set(a, key, value);
	char *s = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(a);
	return s;
}

static PU_UNUSED void mp_emit(const struct fg_host *host, fg_decode_ctx *ctx,
                              const char *device, fg_kind kind, fg_kind clears,
                              fg_severity sev, bool has_value, double value,
                              const char *unit, const char *attrs)
{
	struct fg_event ev = {
		.struct_size = sizeof(ev),
		.kind = kind,
		.severity = sev,
		.device = device,
		.clears = clears,
		.has_value = has_value,
		.value = value,
		.unit = has_value ? unit : NULL,
		.attrs_json = attrs,
	};
	host->emit(ctx, &ev);
}

/*
 * Device status, once per transition:
 *   online false (state "online" not yet "0")  -> offline, warning
 *   online true after offline                  -> online, info
 *   exception with a code other than the last  -> fault, major, with the
 *                                                 request and the code
 *   an "ok" poll after an exception fault      -> clear (fault)
 * A timeout never raises fault and an exception never raises offline: the
 * first means the device (or bus) is gone, the second that it answered but
 * the request is wrong for it.
 */
static PU_UNUSED void mp_status_events(const struct fg_host *host, fg_decode_ctx *ctx,
                                       const struct mp_poll *p)
{
	const char *was = host->state_get(ctx, p->device, "online");
	if (!p->online && !(was && strcmp(was, "0") == 0)) {
		json_t *a = json_pack("{s:s?, s:I}", "error", p->error, "failures",
		                      (json_int_t)p->failures);
		char *attrs = mp_attrs(p, "poll", a);
		json_decref(a);
		mp_emit(host, ctx, p->device, FG_KIND_OFFLINE, FG_KIND_NONE, FG_SEV_WARNING, false,
		        0, NULL, attrs);
		free(attrs);
		host->state_set(ctx, p->device, "online", "0");
	} else if (p->online && was) {
		char *attrs = mp_attrs(p, NULL, NULL);
		mp_emit(host, ctx, p->device, FG_KIND_ONLINE, FG_KIND_NONE, FG_SEV_INFO, false, 0,
		        NULL, attrs);
		free(attrs);
		host->state_set(ctx, p->device, "online", NULL);
	}

	const char *exc = host->state_get(ctx, p->device, "exception");
	if (strcmp(p->status, "exception") == 0 && p->exception) {
		char code[16];
		snprintf(code, sizeof(code), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(json_object_get(p->exception, "code")));
		if (exc && strcmp(exc, code) == 0)
			return;
		char *attrs = mp_attrs(p, "exception", p->exception);
		mp_emit(host, ctx, p->device, FG_KIND_FAULT, FG_KIND_NONE, FG_SEV_MAJOR, false, 0,
		        NULL, attrs);
		free(attrs);
		host->state_set(ctx, p->device, "exception", code);
	} else if (strcmp(p->status, "ok") == 0 && exc) {
		mp_emit(host, ctx, p->device, FG_KIND_CLEAR, FG_KIND_FAULT, FG_SEV_INFO, false, 0,
		        NULL, NULL);
		host->state_set(ctx, p->device, "exception", NULL);
	}
}

/* ---- thresholds ---------------------------------------------------------- */

/*
 * An alarm when a value stays above `limit` for at least for_ms (measured
 * from the first poll above it), and a clear once it falls to
 * limit - hysteresis or below.  limit <= 0 disables the check (every
 * quantity firegrid watches is positive when it matters).
 */
struct mp_limit {
	fg_kind kind;
	fg_severity severity;
	double limit;
	int64_t for_ms;
	double hysteresis;
};

/* Option table rows for one limit: KEY, KEY_for, KEY_hysteresis. */
#define MP_LIMIT_OPTIONS(type, field, key, def_limit, def_for, def_hyst, what, lo, hi) \
	{ key, FG_OPT_DOUBLE, def_limit, offsetof(type, field.limit),                      \
	  what " alarm threshold; 0 = off", lo, hi },                                     \
	{ key "_for", FG_OPT_DURATION, def_for, offsetof(type, field.for_ms),              \
	  "how long " what " must stay above the threshold before the alarm", 0,          \
	  86400000 },                                                                      \
	{ key "_hysteresis", FG_OPT_DOUBLE, def_hyst, offsetof(type, field.hysteresis),    \
	  what " clears at threshold minus this", 0, hi }

/*
 * Run one limit for `device` with this poll's value.  key names the state
 * (e.g. "overcurrent"); extra (may be NULL) is merged into the event attrs.
 */
static PU_UNUSED void mp_limit_check(const struct fg_host *host, fg_decode_ctx *ctx,
                                     const struct mp_poll *p, const char *device,
                                     const char *key, const struct mp_limit *lim,
                                     double value, const char *unit)
{
	if (lim->limit <= 0)
		return;
	char k_on[80], k_since[80], buf[32];
	snprintf(k_on, sizeof(k_on), "%s.on", key);
	snprintf(k_since, sizeof(k_since), "%s.since", key);
	bool on = host->state_get(ctx, device, k_on) != NULL;

	if (value > lim->limit) {
		if (on)
			return;
		const char *since_s = host->state_get(ctx, device, k_since);
		int64_t since = since_s ? strtoll(since_s, NULL, 10) : p->now_ms;
		if (!since_s) {
			snprintf(buf, sizeof(buf), "%" PRId64, since);
			host->state_set(ctx, device, k_since, buf);
		}
		if (p->now_ms - since < lim->for_ms)
			return;
		json_t *t = json_pack("{s:f, s:f, s:f}", "threshold", lim->limit, "for_s",
		                      lim->for_ms / 1000.0, "hysteresis", lim->hysteresis);
		char *attrs = mp_attrs(p, "limit", t);
		json_decref(t);
		mp_emit(host, ctx, device, lim->kind, FG_KIND_NONE, lim->severity, true, value, unit,
		        attrs);
		free(attrs);
		host->state_set(ctx, device, k_on, "1");
		host->state_set(ctx, device, k_since, NULL);
		return;
	}
	/* At or below the limit: the duration starts over. */
	host->state_set(ctx, device, k_since, NULL);
	if (on && value <= lim->limit - lim->hysteresis) {
		char *attrs = mp_attrs(p, NULL, NULL);
		mp_emit(host, ctx, device, FG_KIND_CLEAR, lim->kind, FG_SEV_INFO, true, value, unit,
		        attrs);
		free(attrs);
		host->state_set(ctx, device, k_on, NULL);
	}
}

/*
 * A yes/no condition (a smoke contact, a relay in the wrong state): the
 * alarm when it becomes true, a clear when it becomes false again; extra is
 * attached to the alarm's attrs under `key` (borrowed, may be NULL).
 */
static PU_UNUSED void mp_flag_check(const struct fg_host *host, fg_decode_ctx *ctx,
                                    const struct mp_poll *p, const char *device,
                                    const char *key, fg_kind kind, fg_severity sev,
                                    bool active, json_t *extra)
{
	char k_on[80];
	snprintf(k_on, sizeof(k_on), "%s.on", key);
	bool on = host->state_get(ctx, device, k_on) != NULL;
	if (active == on)
		return;
	char *attrs = active ? mp_attrs(p, key, extra) : mp_attrs(p, NULL, NULL);
	if (active)
		mp_emit(host, ctx, device, kind, FG_KIND_NONE, sev, false, 0, NULL, attrs);
	else
		mp_emit(host, ctx, device, FG_KIND_CLEAR, kind, FG_SEV_INFO, false, 0, NULL, attrs);
	free(attrs);
	host->state_set(ctx, device, k_on, active ? "1" : NULL);
}

/* "<device>/<suffix>" into buf. */
static PU_UNUSED const char *mp_subdevice(const char *device, const char *suffix, char *buf,
                                          size_t len)
{
	snprintf(buf, len, "%s/%s", device, suffix);
	return buf;
}

/* Shared descriptor field for plugins whose map is a static table. */
#define MP_STATIC_MAP(regs_array, gap, count)                                           \
	{ sizeof(struct fg_modbus_map), sizeof(struct fg_modbus_reg), regs_array,          \
	  PU_ARRAY_LEN(regs_array), gap, count }

#endif
