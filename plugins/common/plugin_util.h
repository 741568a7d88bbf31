/*
 * Small helpers shared by the bundled plugins.  Header-only on purpose: a
 * plugin is one shared module that depends on nothing but firegrid/plugin.h
 * and jansson, never on the daemon's own code, so each plugin compiles its
 * own copy of what it uses.
 */
#ifndef FG_PLUGIN_UTIL_H
#define FG_PLUGIN_UTIL_H

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "firegrid/plugin.h"

#define PU_UNUSED __attribute__((unused))
#define PU_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Device messages larger than this are refused before parsing.  Lists
 * (Zigbee2MQTT's bridge/devices carries every device's full definition, a
 * few KiB each) get PU_MAX_LIST_PAYLOAD. */
#define PU_MAX_PAYLOAD (1024 * 1024)
#define PU_MAX_LIST_PAYLOAD (16 * 1024 * 1024)

/* From init(): name the bad option (fg_host.option_error, when the host
 * has it) and return -EINVAL, so a refusal reads
 * "firegrid.conf:12: [source cams] api_url: must start with http:// ...". */
__attribute__((format(printf, 3, 4)))
static PU_UNUSED int pu_option_error(const struct fg_host *host, const char *key,
                                     const char *fmt, ...)
{
	if (host && FG_HOST_HAS_OPTION_ERROR(host) && host->option_error) {
		char why[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		host->option_error(key, "%s", why);
	}
	return -EINVAL;
}

static PU_UNUSED const char *pu_json_type(const json_t *v)
{
	if (!v)
		return "nothing";   /* a missing key: json_object_get gave NULL */
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

/* "string \"yes\"" or "number 3": a short description of a value for error
 * messages, truncated to fit buf. */
static PU_UNUSED const char *pu_describe(const json_t *v, char *buf, size_t len)
{
	if (!v) {
		snprintf(buf, len, "nothing (the key is missing)");
		return buf;
	}
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (text && strlen(text) > 40)
		strcpy(text + 37, "...");
	snprintf(buf, len, "%s %s", pu_json_type(v), text ? text : "");
	free(text);
	return buf;
}

/*
 * Parse a payload as JSON text of any type (the caller checks the shape;
 * duplicate keys are refused: they make a message ambiguous).  On failure
 * explains why through host->fail and returns -EINVAL (-E2BIG past
 * max_len bytes); *ret is a new reference on success.
 */
static PU_UNUSED int pu_parse_json(const struct fg_host *host, fg_decode_ctx *ctx,
                                   const struct fg_msg *msg, size_t max_len, json_t **ret)
{
	if (msg->len > max_len) {
		host->fail(ctx, "payload of %zu bytes exceeds the %zu-byte limit", msg->len,
		           max_len);
		return -E2BIG;
	}
	json_error_t err;
	json_t *root = json_loadb((const char *)msg->payload, msg->len,
	                          JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (!root) {
		host->fail(ctx, "payload is not valid JSON: %s (line %d, column %d)", err.text,
		           err.line, err.column);
		return -EINVAL;
	}
	*ret = root;
	return 0;
}

/* ISO-8601 / RFC 3339 ("2025-03-14T02:11:45.120Z", "+08:00" offsets; no
 * zone = UTC) to epoch ms.  -EINVAL when s is not such a timestamp. */
static PU_UNUSED int pu_parse_iso_time(const char *s, int64_t *ret_ms)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	int64_t ms = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (digits < 3) {
				ms = ms * 10 + (*p - '0');
				digits++;
			}
		if (!digits)
			return -EINVAL;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	int64_t offset_s = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh, mm, n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 &&
		    sscanf(p + 1, "%2d%2d%n", &hh, &mm, &n) != 2)
			return -EINVAL;
		if (hh > 23 || mm > 59)
			return -EINVAL;
		p += 1 + n;
		offset_s = sign * (hh * 3600 + mm * 60);
	}
	if (*p)
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret_ms = ((int64_t)t - offset_s) * 1000 + ms;
	return 0;
}

/*
 * A device timestamp: ISO-8601 text or a number of epoch milliseconds.
 * Returns 0 and *ret_ms, or -EINVAL with a reason in why.
 */
static PU_UNUSED int pu_parse_time_value(const json_t *v, int64_t *ret_ms, char *why,
                                         size_t whylen)
{
	char desc[64];
	if (json_is_string(v)) {
		if (pu_parse_iso_time(json_string_value(v), ret_ms) == 0 && *ret_ms >= 0)
			return 0;
		snprintf(why, whylen, "expected an ISO-8601 time, got %s",
		         pu_describe(v, desc, sizeof(desc)));
		return -EINVAL;
	}
	if (json_is_number(v)) {
		double d = json_number_value(v);
		/* Epoch ms up to the year 9999. */
		if (isfinite(d) && d >= 0 && d < 253402300800000.0) {
			*ret_ms = (int64_t)d;
			return 0;
		}
	}
	snprintf(why, whylen, "expected an ISO-8601 time or epoch milliseconds, got %s",
	         pu_describe(v, desc, sizeof(desc)));
	return -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* Transition-based decoding (shelly, tasmota, lpwan-gs524n, gb26875)        */
/* ------------------------------------------------------------------------ */

/* What a condition did, see pu_edge(). */
enum pu_edge { PU_EDGE_NONE = 0, PU_EDGE_RISE = 1, PU_EDGE_FALL = -1 };

/*
 * The condition `key` of `device` is now `active`.  Host state keeps it as
 * "1" (active) or "0" (normal).  RISE when it became active (first sight of
 * active counts), FALL when a known active condition ended; NONE for
 * repeats and for "normal" first seen (nothing was open to clear).  When the
 * host cannot store the state (limits) the edge is still reported: a repeat
 * is better than a missed alarm.
 */
static PU_UNUSED enum pu_edge pu_edge(const struct fg_host *h, fg_decode_ctx *ctx,
                                      const char *device, const char *key, int active)
{
	const char *prev = h->state_get(ctx, device, key);
	int was = prev && strcmp(prev, "1") == 0;
	if (active && !was) {
		h->state_set(ctx, device, key, "1");
		return PU_EDGE_RISE;
	}
	if (!active && (!prev || was)) {
		h->state_set(ctx, device, key, "0");
		return was ? PU_EDGE_FALL : PU_EDGE_NONE;
	}
	return PU_EDGE_NONE;
}

/* The corpus's severity convention for a kind (docs/plugins.md, Events). */
static PU_UNUSED fg_severity pu_severity(fg_kind kind)
{
	switch (kind) {
	case FG_KIND_SMOKE:
	case FG_KIND_HEAT:
	case FG_KIND_CO:
	case FG_KIND_RESIDUAL_CURRENT:
		return FG_SEV_CRITICAL;
	case FG_KIND_FAULT:
	case FG_KIND_TAMPER:
	case FG_KIND_OVERCURRENT:
	case FG_KIND_OVERTEMP:
	case FG_KIND_FIRE_LANE_BLOCKED:
		return FG_SEV_MAJOR;
	case FG_KIND_BATTERY_LOW:
	case FG_KIND_OFFLINE:
		return FG_SEV_WARNING;
	default:
		return FG_SEV_INFO;
	}
}

/* One event without a value, at the kind's usual severity.  A clear names
 * the kind it ends in `clears`. */
static PU_UNUSED int pu_emit(const struct fg_host *h, fg_decode_ctx *ctx, const char *device,
                             fg_kind kind, fg_kind clears, int64_t device_time_ms,
                             const char *attrs)
{
	struct fg_event ev = {
		.struct_size = sizeof(ev),
		.kind = kind,
		.severity = pu_severity(kind),
		.device = device,
		.clears = clears,
		.device_time_ms = device_time_ms,
		.attrs_json = attrs,
	};
	return h->emit(ctx, &ev);
}

/*
 * What an edge of condition `kind` means: the kind on a rise, its clear on a
 * fall, nothing otherwise.  With a unit, value goes with either.
 */
static PU_UNUSED void pu_emit_edge(const struct fg_host *h, fg_decode_ctx *ctx,
                                   const char *device, enum pu_edge e, fg_kind kind,
                                   const char *unit, double value, int64_t device_time_ms,
                                   const char *attrs)
{
	if (e == PU_EDGE_NONE)
		return;
	fg_kind k = e == PU_EDGE_RISE ? kind : FG_KIND_CLEAR;
	struct fg_event ev = {
		.struct_size = sizeof(ev),
		.kind = k,
		.severity = pu_severity(k),
		.device = device,
		.clears = kind,
		.has_value = unit != NULL,
		.value = unit ? value : 0,
		.unit = unit,
		.device_time_ms = device_time_ms,
		.attrs_json = attrs,
	};
	h->emit(ctx, &ev);
}

/* pu_edge() of `key` and the event it calls for, without a value. */
static PU_UNUSED enum pu_edge pu_transition(const struct fg_host *h, fg_decode_ctx *ctx,
                                            const char *device, const char *key, int active,
                                            fg_kind kind, int64_t device_time_ms,
                                            const char *attrs)
{
	enum pu_edge e = pu_edge(h, ctx, device, key, active);
	pu_emit_edge(h, ctx, device, e, kind, NULL, 0, device_time_ms, attrs);
	return e;
}

/* A number as JSON: an integer when it is one (battery 9, not 9.0). */
static PU_UNUSED json_t *pu_json_number(double v)
{
	return v == floor(v) && fabs(v) < 1e15 ? json_integer((json_int_t)v) : json_real(v);
}

/* attrs (stolen) as compact JSON text for fg_event.attrs_json; NULL for NULL
 * (out of memory: the event goes without attrs).  The caller frees it. */
static PU_UNUSED char *pu_attrs_text(json_t *attrs)
{
	char *s = attrs ? json_dumps(attrs, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(attrs);
	return s;
}

/* The payload as trimmed text in buf; -E2BIG when it does not fit (then
 * it is not one of the short words plain-text topics carry). */
static PU_UNUSED int pu_payload_text(const struct fg_msg *msg, char *buf, size_t len)
{
	const char *p = (const char *)msg->payload;
	size_t n = msg->len;
	while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	if (n >= len || memchr(p, '\0', n))
		return -E2BIG;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/*
 * A device's wall-clock time: ISO-8601 with a zone as written, without one
 * as local time `utc_offset_min` minutes east of UTC (Tasmota's "Time",
 * GB/T 26875.3 time labels).  -EINVAL when s is not such a time.
 */
static PU_UNUSED int pu_parse_local_time(const char *s, int64_t utc_offset_min, int64_t *ret_ms)
{
	int64_t ms;
	if (pu_parse_iso_time(s, &ms) < 0)
		return -EINVAL;
	/* A zone can only follow "YYYY-MM-DDTHH:MM:SS" (19 characters). */
	if (strlen(s) <= 19 || !strpbrk(s + 19, "Zz+-"))
		ms -= utc_offset_min * 60000;
	if (ms < 0)
		return -EINVAL;
	*ret_ms = ms;
	return 0;
}

/* Whether `item` is one of the comma/space separated words of `list`
 * (prefix = 1: whether item starts with one of them). */
static PU_UNUSED int pu_list_has(const char *list, const char *item, int prefix)
{
	size_t n = strlen(item);
	for (const char *p = list ? list : ""; *p;) {
		p += strspn(p, ", \t");
		size_t w = strcspn(p, ", \t");
		if (w && (prefix ? w <= n && strncmp(item, p, w) == 0
		                 : w == n && strncmp(item, p, w) == 0))
			return 1;
		p += w;
	}
	return 0;
}

#endif
