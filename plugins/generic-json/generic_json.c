/*
 * generic-json: for integrators whose devices publish their own JSON.  The
 * schema (docs/plugins.md, "generic-json"):
 *
 *   {"device":"b3-u201-smoke", "kind":"smoke", "severity":"critical",
 *    "value":4.2, "unit":"ppm", "time":"2025-03-14T02:11:45Z",
 *    "clears":"smoke", ...anything else...}
 *
 * device and kind are required (device may come from the last topic level
 * with device_from_topic); severity defaults per kind; value/unit, time (ISO
 * 8601 or epoch ms) and clears (kind "clear" only) are optional.  Every other
 * field is kept and travels as the event's attrs.  A JSON array of such
 * objects is a batch.  The plugin keeps no state: each object is one event,
 * and deduplication is the core's job.
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

#define GJ_MAX_BATCH 1024

struct gj_config {
	int device_from_topic;
};

static const struct fg_option gj_options[] = {
	{ "device_from_topic", FG_OPT_BOOL, "false",
	  offsetof(struct gj_config, device_from_topic),
	  "take the device id from the last topic level when the message has no \"device\"",
	  0, 0 },
	FG_OPTION_END
};

struct gj {
	const struct fg_host *host;
	bool device_from_topic;
};

/* Kind names as on the wire, indexed by the ABI enum, with the severity a
 * message gets when it names none. */
static const struct {
	const char *name;
	fg_severity severity;
} kinds[FG_KIND__COUNT] = {
	[FG_KIND_SMOKE] = { "smoke", FG_SEV_CRITICAL },
	[FG_KIND_HEAT] = { "heat", FG_SEV_CRITICAL },
	[FG_KIND_CO] = { "co", FG_SEV_CRITICAL },
	[FG_KIND_TEST] = { "test", FG_SEV_INFO },
	[FG_KIND_CLEAR] = { "clear", FG_SEV_INFO },
	[FG_KIND_BATTERY_LOW] = { "battery_low", FG_SEV_WARNING },
	[FG_KIND_TAMPER] = { "tamper", FG_SEV_MAJOR },
	[FG_KIND_FAULT] = { "fault", FG_SEV_MAJOR },
	[FG_KIND_OFFLINE] = { "offline", FG_SEV_WARNING },
	[FG_KIND_ONLINE] = { "online", FG_SEV_INFO },
	[FG_KIND_OVERTEMP] = { "overtemp", FG_SEV_MAJOR },
	[FG_KIND_OVERCURRENT] = { "overcurrent", FG_SEV_MAJOR },
	[FG_KIND_RESIDUAL_CURRENT] = { "residual_current", FG_SEV_CRITICAL },
	[FG_KIND_FIRE_LANE_BLOCKED] = { "fire_lane_blocked", FG_SEV_MAJOR },
	[FG_KIND_FIRE_LANE_CLEARED] = { "fire_lane_cleared", FG_SEV_INFO },
};

static const char *const severities[] = {
	[FG_SEV_INFO] = "info",
	[FG_SEV_WARNING] = "warning",
	[FG_SEV_MAJOR] = "major",
	[FG_SEV_CRITICAL] = "critical",
};

/* The schema's own keys; everything else goes to attrs. */
static const char *const schema_keys[] = {
	"device", "kind", "severity", "value", "unit", "time", "clears", NULL
};

static int gj_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct gj_config *cfg = config;
	struct gj *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->host = host;
	g->device_from_topic = cfg->device_from_topic != 0;
	*ret_state = g;
	return 0;
}

static void gj_fini(void *state)
{
	free(state);
}

static int kind_parse(const char *name, fg_kind *ret)
{
	for (unsigned k = FG_KIND_NONE + 1; k < FG_KIND__COUNT; k++)
		if (strcmp(kinds[k].name, name) == 0) {
			*ret = (fg_kind)k;
			return 0;
		}
	return -EINVAL;
}

/* The last non-empty level of an MQTT topic or HTTP path, or NULL. */
static const char *topic_device(const char *topic, char *buf, size_t len)
{
	size_t n = strlen(topic);
	while (n && topic[n - 1] == '/')
		n--;
	size_t start = n;
	while (start && topic[start - 1] != '/')
		start--;
	if (n == start || n - start >= len)
		return NULL;
	memcpy(buf, topic + start, n - start);
	buf[n - start] = '\0';
	return buf;
}

/* One object of the schema -> one event.  On error writes the reason to
 * why and returns -EINVAL without emitting. */
static int decode_object(struct gj *g, const struct fg_msg *msg, fg_decode_ctx *ctx,
                         json_t *obj, char *why, size_t whylen)
{
	char desc[64], topic_buf[256];
	if (!json_is_object(obj)) {
		snprintf(why, whylen, "expected an object, got %s", pu_describe(obj, desc, sizeof(desc)));
		return -EINVAL;
	}
	struct fg_event ev = { .struct_size = sizeof(ev) };

	json_t *v = json_object_get(obj, "device");
	if (v) {
		ev.device = json_string_value(v);
		if (!ev.device || !ev.device[0]) {
			snprintf(why, whylen, "key \"device\": expected a non-empty string, got %s",
			         pu_describe(v, desc, sizeof(desc)));
			return -EINVAL;
		}
	} else if (g->device_from_topic) {
		ev.device = topic_device(msg->topic, topic_buf, sizeof(topic_buf));
		if (!ev.device) {
			snprintf(why, whylen, "no \"device\" and no usable last level in topic '%s'",
			         msg->topic);
			return -EINVAL;
		}
	} else {
		snprintf(why, whylen, "missing key \"device\" (or set device_from_topic)");
		return -EINVAL;
	}

	v = json_object_get(obj, "kind");
	if (!json_is_string(v) || kind_parse(json_string_value(v), &ev.kind) < 0) {
		snprintf(why, whylen, "key \"kind\": expected one of smoke heat co test clear "
		         "battery_low tamper fault offline online overtemp overcurrent "
		         "residual_current fire_lane_blocked fire_lane_cleared, got %s",
		         v ? pu_describe(v, desc, sizeof(desc)) : "nothing");
		return -EINVAL;
	}
	ev.severity = kinds[ev.kind].severity;

	if ((v = json_object_get(obj, "severity"))) {
		const char *s = json_string_value(v);
		unsigned i = 0;
		while (s && i < PU_ARRAY_LEN(severities) && strcmp(severities[i], s) != 0)
			i++;
		if (!s || i == PU_ARRAY_LEN(severities)) {
			snprintf(why, whylen, "key \"severity\": expected critical, major, warning or "
			         "info, got %s", pu_describe(v, desc, sizeof(desc)));
			return -EINVAL;
		}
		ev.severity = (fg_severity)i;
	}

	if ((v = json_object_get(obj, "value"))) {
		if (!json_is_number(v)) {
			snprintf(why, whylen, "key \"value\": expected a number, got %s",
			         pu_describe(v, desc, sizeof(desc)));
			return -EINVAL;
		}
		ev.has_value = 1;
		ev.value = json_number_value(v);
	}
	if ((v = json_object_get(obj, "unit"))) {
		ev.unit = json_string_value(v);
		if (!ev.unit || !ev.unit[0] || !ev.has_value) {
			snprintf(why, whylen, "key \"unit\": expected a non-empty string next to "
			         "\"value\", got %s", pu_describe(v, desc, sizeof(desc)));
			return -EINVAL;
		}
	}

	if ((v = json_object_get(obj, "time"))) {
		char twhy[160];
		if (pu_parse_time_value(v, &ev.device_time_ms, twhy, sizeof(twhy)) < 0) {
			snprintf(why, whylen, "key \"time\": %s", twhy);
			return -EINVAL;
		}
	}

	if ((v = json_object_get(obj, "clears"))) {
		const char *c = json_string_value(v);
		if (ev.kind != FG_KIND_CLEAR || !c || kind_parse(c, &ev.clears) < 0 ||
		    ev.clears == FG_KIND_CLEAR) {
			snprintf(why, whylen, "key \"clears\": expected the kind a \"clear\" ends, "
			         "got %s with kind \"%s\"", pu_describe(v, desc, sizeof(desc)),
			         kinds[ev.kind].name);
			return -EINVAL;
		}
	}

	/* Everything the schema does not name travels as attrs. */
	json_t *attrs = json_deep_copy(obj);
	if (!attrs)
		return -ENOMEM;
	for (const char *const *k = schema_keys; *k; k++)
		json_object_del(attrs, *k);
	char *attrs_json = json_object_size(attrs)
		? json_dumps(attrs, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(attrs);
	ev.attrs_json = attrs_json;
	int r = g->host->emit(ctx, &ev);
	free(attrs_json);
	if (r < 0) {
		snprintf(why, whylen, "the host refused the event (%s)", strerror(-r));
		return r;
	}
	return 0;
}

static int gj_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct gj *g = state;
	json_t *root;
	int r = pu_parse_json(g->host, ctx, msg, PU_MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	char why[512];
	if (!json_is_array(root)) {
		r = decode_object(g, msg, ctx, root, why, sizeof(why));
		if (r < 0)
			g->host->fail(ctx, "%s", why);
		json_decref(root);
		return r;
	}
	size_t n = json_array_size(root), bad = 0, i;
	if (n > GJ_MAX_BATCH) {
		g->host->fail(ctx, "batch of %zu objects exceeds the limit of %d", n, GJ_MAX_BATCH);
		json_decref(root);
		return -E2BIG;
	}
	/* Good objects of a batch are kept even when others are bad: one typo
	 * must not swallow an alarm sent with it. */
	char first[sizeof(why) + 48] = "";
	json_t *item;
	json_array_foreach(root, i, item) {
		if (decode_object(g, msg, ctx, item, why, sizeof(why)) < 0 && bad++ == 0)
			snprintf(first, sizeof(first), "batch item %zu: %s", i, why);
	}
	json_decref(root);
	if (bad) {
		g->host->fail(ctx, "%s (%zu of %zu items rejected)", first, bad, n);
		return -EINVAL;
	}
	return 0;
}

FG_PLUGIN_DEFINE(generic_json,
	.name = "generic-json",
	.version = "1.0",
	.description = "Events in firegrid's documented JSON schema, one object or a batch",
	.options = gj_options,
	.config_size = sizeof(struct gj_config),
	.init = gj_init,
	.fini = gj_fini,
	.decode = gj_decode);
