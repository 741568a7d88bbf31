/*
 * lpwan-gs524n: Milesight GS524N LoRaWAN smoke alarms, as a network
 * server's MQTT integration delivers them (docs/plugins.md has the mapping).
 *
 * Accepted payloads:
 *   - ChirpStack v4 uplink events (application/<app>/device/<devEui>/event/up):
 *     JSON with deviceInfo.devEui, fCnt, time and base64 `data`;
 *   - The Things Stack v3 uplinks (v3/<app>/devices/<id>/up): JSON with
 *     end_device_ids.dev_eui and uplink_message.frm_payload / f_cnt;
 *   - the bare 6-byte frame, the device EUI then taken from the topic level
 *     after "device/" or "devices/" (firegridctl decode --hex, bridges).
 * Other ChirpStack events (join, status, ack, txack, log) carry no alarm.
 *
 * The frame (Milesight SensorDecoders, GS524N):
 *   byte 0  firmware version (high nibble), protocol version (low nibble)
 *   byte 1  sensor type (high nibble, 1 = smoke), message type (low nibble)
 *   byte 2  battery %     byte 3  concentration %     byte 4  temperature degC (int8)
 *   byte 5  check: the sum of all six bytes is 0 mod 256 (the vendor's own
 *           decoder does not check it; we do)
 * Each uplink carries exactly one message type; type 7 "normal" is both the
 * heartbeat and the only clear, and a mute (2) is not a clear.  Conditions
 * are transitions kept in host state, so the periodic repeats of an alarm
 * and network-server redeliveries (same fCnt) add nothing.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"
#include "../common/plugin_util.h"

#define FRAME_LEN 6
#define MAX_PAYLOAD (64 * 1024)
#define EUI_MAX 64

struct gs524n_config {
	int64_t battery_ok_percent;
};

static const struct fg_option gs524n_options[] = {
	{ "battery_ok_percent", FG_OPT_INT, "30", offsetof(struct gs524n_config, battery_ok_percent),
	  "a low battery ends when a normal (type 7) uplink reports at least this percentage",
	  0, 100 },
	FG_OPTION_END
};

struct gs524n {
	const struct fg_host *host;
	const struct gs524n_config *cfg;
};

enum msg_type {
	T_ALARM = 1, T_SILENT = 2, T_LOW_BATTERY = 4, T_FAILOVER = 5, T_NORMAL = 7,
	T_REMOVED = 10, T_INSTALLED = 11, T_TEST = 14, T_TEST_LOW_BATTERY = 15,
};

static const char *type_name(unsigned t)
{
	switch (t) {
	case T_ALARM: return "alarm";
	case T_SILENT: return "silent";
	case T_LOW_BATTERY: return "low battery";
	case T_FAILOVER: return "failover";
	case T_NORMAL: return "normal";
	case T_REMOVED: return "removed";
	case T_INSTALLED: return "installed";
	case T_TEST: return "testing alarm with normal battery";
	case T_TEST_LOW_BATTERY: return "testing alarm with low battery";
	default: return NULL;
	}
}

static int gs524n_init(const struct fg_host *host, const void *config, void **ret_state)
{
	struct gs524n *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->host = host;
	g->cfg = config;
	*ret_state = g;
	return 0;
}

static void gs524n_fini(void *state)
{
	free(state);
}

/* What the network server told us besides the frame. */
struct uplink {
	char eui[EUI_MAX + 1];
	uint8_t frame[FRAME_LEN];
	bool has_fcnt;
	json_int_t fcnt;
	int64_t time_ms;
	json_t *meta;            /* attrs from the envelope (new reference) */
};

/* Standard base64 of exactly FRAME_LEN bytes.  -EINVAL otherwise. */
static int base64_frame(const char *b64, uint8_t out[FRAME_LEN], size_t *ret_len)
{
	size_t n = strlen(b64);
	unsigned char buf[3 * 64];
	if (n == 0 || n % 4 || n > 4 * 64)
		return -EINVAL;
	int len = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
	if (len < 0)
		return -EINVAL;
	len -= (b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
	*ret_len = (size_t)len;
	if (len != FRAME_LEN)
		return -EINVAL;
	memcpy(out, buf, FRAME_LEN);
	return 0;
}

/* The EUI from the topic level after "device/" (ChirpStack) or "devices/"
 * (The Things Stack). */
static bool eui_from_topic(const char *topic, char *eui)
{
	const char *p = NULL;
	for (const char *l = topic; l && !p; l = strchr(l, '/') ? strchr(l, '/') + 1 : NULL) {
		if (strncmp(l, "device/", 7) == 0)
			p = l + 7;
		else if (strncmp(l, "devices/", 8) == 0)
			p = l + 8;
	}
	if (!p)
		return false;
	size_t n = strcspn(p, "/");
	if (n == 0 || n > EUI_MAX)
		return false;
	memcpy(eui, p, n);
	eui[n] = '\0';
	return true;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Best (strongest) RSSI and its SNR over the receiving gateways. */
static void radio_attrs(json_t *meta, json_t *rx_info)
{
	size_t i;
	json_t *rx, *best = NULL;
	json_array_foreach(rx_info, i, rx) {
		json_t *rssi = json_object_get(rx, "rssi");
		if (json_is_number(rssi) && (!best || json_number_value(rssi) >
		                                      json_number_value(json_object_get(best, "rssi"))))
			best = rx;
	}
	if (best) {
		json_object_set(meta, "rssi", json_object_get(best, "rssi"));
		json_t *snr = json_object_get(best, "snr");
		if (json_is_number(snr))
			json_object_set(meta, "snr", snr);
	}
}

/*
 * A ChirpStack v4 or TTS v3 uplink into *up.  Returns 1 for an uplink,
 * 0 for an event without a frame (join, status...), or -errno after fail().
 */
static int parse_envelope(struct gs524n *g, fg_decode_ctx *ctx, const struct fg_msg *msg,
                          json_t *root, struct uplink *up)
{
	const struct fg_host *h = g->host;
	char desc[64];
	json_t *data, *eui, *fcnt, *time, *name;
	json_t *tts = json_object_get(root, "uplink_message");
	if (tts) {
		json_t *ids = json_object_get(root, "end_device_ids");
		data = json_object_get(tts, "frm_payload");
		fcnt = json_object_get(tts, "f_cnt");
		time = json_object_get(tts, "received_at");
		eui = json_object_get(ids, "dev_eui");
		name = json_object_get(ids, "device_id");
		radio_attrs(up->meta, json_object_get(tts, "rx_metadata"));
	} else {
		json_t *info = json_object_get(root, "deviceInfo");
		data = json_object_get(root, "data");
		fcnt = json_object_get(root, "fCnt");
		time = json_object_get(root, "time");
		eui = json_object_get(info, "devEui");
		name = json_object_get(info, "deviceName");
		radio_attrs(up->meta, json_object_get(root, "rxInfo"));
	}
	if (!data)
		return 0;   /* join, status, ack, txack, log: nothing to report */
	if (!json_is_string(data)) {
		h->fail(ctx, "uplink \"%s\": expected a base64 string, got %s",
		        tts ? "frm_payload" : "data", pu_describe(data, desc, sizeof(desc)));
		return -EINVAL;
	}
	size_t len = 0;
	if (base64_frame(json_string_value(data), up->frame, &len) < 0) {
		h->fail(ctx, "uplink data is not the base64 of a %d-byte GS524N frame "
		        "(%zu bytes)", FRAME_LEN, len);
		return -EINVAL;
	}
	if (json_is_string(eui) && json_string_length(eui) > 0 &&
	    json_string_length(eui) <= EUI_MAX)
		snprintf(up->eui, sizeof(up->eui), "%s", json_string_value(eui));
	else if (!eui_from_topic(msg->topic, up->eui)) {
		h->fail(ctx, "uplink without a device EUI (deviceInfo.devEui, "
		        "end_device_ids.dev_eui or the topic)");
		return -EPROTO;
	}
	if (json_is_integer(fcnt)) {
		up->has_fcnt = true;
		up->fcnt = json_integer_value(fcnt);
		json_object_set(up->meta, "fcnt", fcnt);
	}
	if (json_is_string(time))
		pu_parse_iso_time(json_string_value(time), &up->time_ms);
	if (json_is_string(name))
		json_object_set(up->meta, "device_name", name);
	return 1;
}

/* Rise -> the kind (with a percentage when with_value), fall -> its clear. */
static void edge(struct gs524n *g, fg_decode_ctx *ctx, const struct uplink *up,
                 const char *key, fg_kind kind, bool active, bool with_value, double value,
                 const char *attrs)
{
	enum pu_edge e = pu_edge(g->host, ctx, up->eui, key, active);
	pu_emit_edge(g->host, ctx, up->eui, e, kind, e == PU_EDGE_RISE && with_value ? "%" : NULL,
	             value, up->time_ms, attrs);
}

static int decode_frame(struct gs524n *g, fg_decode_ctx *ctx, struct uplink *up)
{
	const struct fg_host *h = g->host;
	const uint8_t *f = up->frame;
	unsigned sum = 0;
	for (int i = 0; i < FRAME_LEN; i++)
		sum += f[i];
	if (sum & 0xff) {
		h->fail(ctx, "GS524N frame checksum: the bytes sum to 0x%02x mod 256, expected 0x00",
		        sum & 0xff);
		return -EBADMSG;
	}
	unsigned sensor = f[1] >> 4, type = f[1] & 0x0f;
	if (sensor != 1) {
		h->fail(ctx, "GS524N frame: sensor type %u, expected 1 (smoke)", sensor);
		return -EPROTO;
	}
	const char *name = type_name(type);
	if (!name) {
		h->fail(ctx, "GS524N frame: unknown message type %u", type);
		return -EPROTO;
	}
	lower(up->eui);
	/* The same uplink again (a QoS 1 redelivery, a second integration):
	 * the frame counter says so. */
	char fcnt[32];
	if (up->has_fcnt) {
		snprintf(fcnt, sizeof(fcnt), "%lld", (long long)up->fcnt);
		const char *prev = h->state_get(ctx, up->eui, "fcnt");
		if (prev && strcmp(prev, fcnt) == 0)
			return 0;
		h->state_set(ctx, up->eui, "fcnt", fcnt);
	}
	unsigned battery = f[2], concentration = f[3];
	int temperature = (int8_t)f[4];
	json_t *a = up->meta;
	json_object_set_new(a, "message_type", json_integer(type));
	json_object_set_new(a, "event", json_string(name));
	json_object_set_new(a, "battery", json_integer(battery));
	json_object_set_new(a, "concentration", json_integer(concentration));
	json_object_set_new(a, "temperature", json_integer(temperature));
	json_object_set_new(a, "firmware", json_integer(f[0] >> 4));
	char *attrs = json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(15));   /* a: up->meta */

	switch (type) {
	case T_ALARM:
		edge(g, ctx, up, "smoke", FG_KIND_SMOKE, true, true, concentration, attrs);
		break;
	case T_SILENT:
		break;      /* the buzzer is muted; the alarm is not over */
	case T_LOW_BATTERY:
		edge(g, ctx, up, "battery_low", FG_KIND_BATTERY_LOW, true, true, battery, attrs);
		break;
	case T_FAILOVER:
		edge(g, ctx, up, "fault", FG_KIND_FAULT, true, false, 0, attrs);
		break;
	case T_NORMAL:
		edge(g, ctx, up, "smoke", FG_KIND_SMOKE, false, false, 0, attrs);
		edge(g, ctx, up, "fault", FG_KIND_FAULT, false, false, 0, attrs);
		if (battery >= (unsigned)g->cfg->battery_ok_percent)
			edge(g, ctx, up, "battery_low", FG_KIND_BATTERY_LOW, false, false, 0, attrs);
		break;
	case T_REMOVED:
	case T_INSTALLED:
		edge(g, ctx, up, "tamper", FG_KIND_TAMPER, type == T_REMOVED, false, 0, attrs);
		break;
	case T_TEST:
	case T_TEST_LOW_BATTERY:
		pu_emit(g->host, ctx, up->eui, FG_KIND_TEST, FG_KIND_NONE, up->time_ms, attrs);
		if (type == T_TEST_LOW_BATTERY)
			edge(g, ctx, up, "battery_low", FG_KIND_BATTERY_LOW, true, true, battery, attrs);
		break;
	}
	free(attrs);
	return 0;
}

static int gs524n_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct gs524n *g = state;
	struct uplink up;
	memset(&up, 0, sizeof(up));
	if (!(up.meta = json_object()))
		return -ENOMEM;
	int r;
	if (msg->len == FRAME_LEN && msg->payload[0] != '{') {
		/* A bare frame, as a bridge or `firegridctl decode --hex` hands it. */
		memcpy(up.frame, msg->payload, FRAME_LEN);
		if (!eui_from_topic(msg->topic, up.eui)) {
			g->host->fail(ctx, "a bare frame needs the device EUI in the topic "
			              "(.../device/<devEui>/...)");
			r = -EPROTO;
		} else {
			r = decode_frame(g, ctx, &up);
		}
	} else {
		json_t *root = NULL;
		r = pu_parse_json(g->host, ctx, msg, MAX_PAYLOAD, &root);
		if (r == 0 && !json_is_object(root)) {
			g->host->fail(ctx, "payload is a JSON %s, expected an uplink object",
			              pu_json_type(root));
			r = -EINVAL;
		}
		if (r == 0 && (r = parse_envelope(g, ctx, msg, root, &up)) > 0)
			r = decode_frame(g, ctx, &up);
		json_decref(root);
	}
	json_decref(up.meta);
	return r;
}

FG_PLUGIN_DEFINE(lpwan_gs524n,
	.name = "lpwan-gs524n",
	.version = "1.0",
	.description = "Milesight GS524N LoRaWAN smoke alarm via ChirpStack v4 / TTS v3 MQTT",
	.options = gs524n_options,
	.config_size = sizeof(struct gs524n_config),
	.init = gs524n_init,
	.fini = gs524n_fini,
	.decode = gs524n_decode);
