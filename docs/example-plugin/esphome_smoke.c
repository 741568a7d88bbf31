/*
 * esphome-smoke: an example firegrid plugin, built out of tree against the
 * installed plugin kit (see README.md next to this file).
 *
 * ESPHome nodes publish each binary sensor's state as plain text:
 *   <node>/binary_sensor/<object_id>/state   "ON" / "OFF"
 *   <node>/status                            "online" / "offline" (Last Will)
 * Sensors whose object id contains one of the `smoke_sensors` words report
 * smoke; the device id is "<node>/<object_id>".  ESPHome republishes states
 * on every reconnect, so alarms are transitions kept in host state.
 *
 * Only <firegrid/plugin.h> is needed: no other library, no daemon header.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <firegrid/plugin.h>

struct cfg {
	const char *smoke_sensors;   /* comma separated words */
};

static const struct fg_option options[] = {
	{ "smoke_sensors", FG_OPT_STRING, "smoke", offsetof(struct cfg, smoke_sensors),
	  "binary sensors whose object id contains one of these words report smoke", 0, 0 },
	FG_OPTION_END
};

struct state {
	const struct fg_host *host;
	const struct cfg *cfg;
};

static int es_init(const struct fg_host *host, const void *config, void **ret_state)
{
	struct state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->host = host;
	s->cfg = config;
	*ret_state = s;
	return 0;
}

static void es_fini(void *state)
{
	free(state);
}

/* Whether the object id contains one of the configured words. */
static int is_smoke(const struct cfg *cfg, const char *object_id)
{
	char words[256];
	snprintf(words, sizeof(words), "%s", cfg->smoke_sensors ? cfg->smoke_sensors : "");
	char *save = NULL;
	for (char *w = strtok_r(words, ", ", &save); w; w = strtok_r(NULL, ", ", &save))
		if (strstr(object_id, w))
			return 1;
	return 0;
}

/* The payload as one short word, or NULL. */
static const char *word(const struct fg_msg *msg, char *buf, size_t len)
{
	size_t n = msg->len;
	while (n && (msg->payload[n - 1] == '\n' || msg->payload[n - 1] == '\r'))
		n--;
	if (n == 0 || n >= len || memchr(msg->payload, '\0', n))
		return NULL;
	memcpy(buf, msg->payload, n);
	buf[n] = '\0';
	return buf;
}

static int es_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct state *s = state;
	const struct fg_host *h = s->host;
	char node[128], object_id[128], text[16], device[260];
	int consumed = 0;

	if (msg->len == 0)
		return 0;   /* a retained message being deleted */
	if (sscanf(msg->topic, "%127[^/]/binary_sensor/%127[^/]/state%n", node, object_id,
	           &consumed) != 2 || msg->topic[consumed] != '\0')
		return 0;   /* status, sensor values, commands: nothing to report */
	if (!is_smoke(s->cfg, object_id))
		return 0;
	const char *w = word(msg, text, sizeof(text));
	int on = w && strcmp(w, "ON") == 0, off = w && strcmp(w, "OFF") == 0;
	if (!on && !off) {
		h->fail(ctx, "binary_sensor state: expected ON or OFF, got %zu bytes of something "
		        "else", msg->len);
		return -EINVAL;
	}

	/* Transitions: ON after anything but ON opens, OFF after ON clears. */
	snprintf(device, sizeof(device), "%s/%s", node, object_id);
	const char *prev = h->state_get(ctx, device, "smoke");
	int was_on = prev && strcmp(prev, "1") == 0;
	struct fg_event ev = {
		.struct_size = sizeof(ev),
		.device = device,
		.attrs_json = "{\"via\":\"esphome\"}",
	};
	if (on && !was_on) {
		ev.kind = FG_KIND_SMOKE;
		ev.severity = FG_SEV_CRITICAL;
		h->emit(ctx, &ev);
	} else if (off && was_on) {
		ev.kind = FG_KIND_CLEAR;
		ev.severity = FG_SEV_INFO;
		ev.clears = FG_KIND_SMOKE;
		h->emit(ctx, &ev);
	}
	h->state_set(ctx, device, "smoke", on ? "1" : "0");
	return 0;
}

FG_PLUGIN_DEFINE(esphome_smoke,
	.name = "esphome-smoke",
	.version = "1.0",
	.description = "example: ESPHome binary_sensor smoke detectors (out-of-tree build)",
	.options = options,
	.config_size = sizeof(struct cfg),
	.init = es_init,
	.fini = es_fini,
	.decode = es_decode);
