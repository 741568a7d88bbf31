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

static PU_UNUSED const char *pu_json_type(const json_t *v)
{
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

#endif
