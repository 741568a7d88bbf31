/*
 * dahua: Dahua eventManager events (docs/cameras.md).
 *
 * firegrid reads the camera's event stream itself
 * (GET /cgi-bin/eventManager.cgi?action=attach&codes=[...]&heartbeat=5,
 * [source] stream_url): a multipart/x-mixed-replace body, one part per
 * event, each a text/plain line
 *   Code=ParkingDetection;action=Start;index=0[;data={...JSON...}]
 * or just "Heartbeat".  The stream client hands the plugin one part at a
 * time (delimiter, headers and body, as in the corpus files); a body may
 * also come bare.  Only the first ";data=" splits: the JSON may hold '='
 * and ';' and span lines.
 *
 * Device ids: the camera is its host (x-firegrid-peer, set by the stream
 * client; else the `camera` option); a lane is "<camera>/<channel>", the
 * channel being index + 1 (index is 0-based).
 *
 * A code in lane_codes (ParkingDetection: the camera's own illegal-parking
 * rule, which already applies its minimum duration) is level-triggered:
 * Start puts a vehicle in the lane, Stop takes it out.  fire_lane_blocked
 * once it has stayed `dwell` (0 = at once: trust the camera's rule alone),
 * fire_lane_cleared at Stop (plugins/common/lane.h).  A lost Stop (the
 * stream dropped) is not guessed: the lane stays blocked until the next
 * Stop; with offline_after the camera is reported offline meanwhile.
 * Heartbeat and every other code only refresh the camera's online state.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "firegrid/plugin.h"
#include "../common/camera.h"
#include "../common/lane.h"
#include "../common/multipart.h"
#include "../common/plugin_util.h"

#define MAX_BODY (1024 * 1024)
#define OCCUPANT "parking"

struct dahua_config {
	int64_t dwell_ms;
	const char *lane_codes;
	const char *lane_channels;
	const char *camera;
	int64_t offline_after_ms;
};

static const struct fg_option dahua_options[] = {
	{ "dwell", FG_OPT_DURATION, "5m", offsetof(struct dahua_config, dwell_ms),
	  "a vehicle must stay this long after the camera's Start before the lane is reported "
	  "blocked; 0 = at Start", 0, 86400000.0 },
	{ "lane_codes", FG_OPT_STRING, "ParkingDetection", offsetof(struct dahua_config, lane_codes),
	  "event codes whose Start/Stop mean a vehicle in / out of a fire lane", 0, 0 },
	{ "lane_channels", FG_OPT_STRING, "", offsetof(struct dahua_config, lane_channels),
	  "channels (1-based) that watch fire lanes; empty = every channel", 0, 0 },
	{ "camera", FG_OPT_STRING, "", offsetof(struct dahua_config, camera),
	  "camera id when the transport names no peer (decode tests, relays)", 0, 0 },
	{ "offline_after", FG_OPT_DURATION, "0", offsetof(struct dahua_config, offline_after_ms),
	  "a camera whose stream is silent this long (heartbeats included) is offline; with "
	  "heartbeat=5 in the stream URL, 30s; 0 = off", 0, 86400000.0 },
	FG_OPTION_END
};

struct dahua {
	const struct fg_host *host;
	const struct dahua_config *cfg;
};

static int dahua_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct dahua_config *cfg = config;
	if (cfg->camera && strchr(cfg->camera, '/'))
		return pu_option_error(host, "camera", "must not contain '/' (it is part of device ids)");
	struct dahua *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->host = host;
	d->cfg = cfg;
	*ret_state = d;
	return 0;
}

static void dahua_fini(void *state)
{
	free(state);
}

/* The value of `key` in "Code=X;action=Y;index=N" (the part before
 * ";data="), into buf; NULL when absent. */
static const char *field(const char *head, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	for (const char *p = head; *p;) {
		size_t w = strcspn(p, ";");
		if (w > kl && strncasecmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = w - kl - 1;
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, p + kl + 1, vl);
			buf[vl] = '\0';
			return buf;
		}
		p += w;
		if (*p == ';')
			p++;
	}
	return NULL;
}

static void lane_emit(struct dahua *d, fg_decode_ctx *ctx, const struct pl_lane *ln,
                      enum pl_change c, int64_t now)
{
	if (c == PL_NONE)
		return;
	const char *m = d->host->state_get(ctx, ln->device, "meta");
	json_t *a = m ? json_loads(m, 0, NULL) : NULL;
	if (!json_is_object(a)) {
		json_decref(a);
		a = json_object();
	}
	if (a && c == PL_BLOCKED) {
		const struct pl_occupant *o = pl_lane_first(ln);
		if (o)
			json_object_set_new(a, "dwell_s", json_integer((json_int_t)((now - o->since_ms) / 1000)));
	} else if (a) {
		json_object_set_new(a, "verified", json_boolean(ln->clear_reason &&
		                                                strcmp(ln->clear_reason, "stop") == 0));
		json_object_set_new(a, "reason", json_string(ln->clear_reason ? ln->clear_reason
		                                                              : "unknown"));
	}
	char *attrs = pu_attrs_text(a);
	pu_emit(d->host, ctx, ln->device,
	        c == PL_BLOCKED ? FG_KIND_FIRE_LANE_BLOCKED : FG_KIND_FIRE_LANE_CLEARED,
	        FG_KIND_NONE, 0, attrs);
	free(attrs);
}

/* One event line. */
static int one_event(struct dahua *d, const struct fg_msg *msg, fg_decode_ctx *ctx,
                     const char *camera, const uint8_t *p, size_t n)
{
	char text[4096];
	while (n && (*p == ' ' || *p == '\r' || *p == '\n' || *p == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == '\t'))
		n--;
	if (n >= sizeof(text) || memchr(p, '\0', n)) {
		d->host->fail(ctx, "event of %zu bytes is too long or not text", n);
		return -EINVAL;
	}
	memcpy(text, p, n);
	text[n] = '\0';
	int64_t now = msg->recv_time_ms;
	pc_camera_seen(d->host, ctx, camera, now, d->cfg->offline_after_ms, NULL);
	if (strcasecmp(text, "Heartbeat") == 0)
		return 0;
	char *data = strstr(text, ";data=");
	if (data) {
		*data = '\0';
		data += 6;
	}
	char code[64], action[16], index[16];
	if (!field(text, "Code", code, sizeof(code)) || !field(text, "action", action, sizeof(action))) {
		d->host->fail(ctx, "expected Code=...;action=...;index=..., got \"%.60s\"", text);
		return -EINVAL;
	}
	if (!pu_list_has(d->cfg->lane_codes, code, 0))
		return 0;                       /* VideoMotion and the rest: not ours */
	char *end;
	long idx = field(text, "index", index, sizeof(index)) ? strtol(index, &end, 10) : -1;
	if (idx < 0 || idx > 1000 || *end) {
		d->host->fail(ctx, "%s: expected index=N (0-based channel), got \"%.60s\"", code, text);
		return -EINVAL;
	}
	char ch[16];
	snprintf(ch, sizeof(ch), "%ld", idx + 1);
	if (d->cfg->lane_channels && d->cfg->lane_channels[0] &&
	    !pu_list_has(d->cfg->lane_channels, ch, 0))
		return 0;
	bool start = strcasecmp(action, "Start") == 0, stop = strcasecmp(action, "Stop") == 0;
	if (!start && !stop)
		return 0;                       /* Pulse and others: no level to follow */

	char dev[160];
	snprintf(dev, sizeof(dev), "%s/%s", camera, ch);
	struct pl_lane ln;
	pl_lane_load(d->host, ctx, dev, &ln);
	if (start) {
		pl_lane_touch(&ln, OCCUPANT, now, now, code);
		json_t *meta = json_pack("{s:s,s:I,s:I,s:s}", "camera", camera, "channel",
		                         (json_int_t)(idx + 1), "index", (json_int_t)idx, "code", code);
		json_t *dj = data ? json_loads(data, 0, NULL) : NULL;
		const char *rule = json_string_value(json_object_get(dj, "Name"));
		if (meta && rule)
			json_object_set_new(meta, "rule", json_string(rule));
		json_decref(dj);
		char *ms = pu_attrs_text(meta);
		d->host->state_set(ctx, dev, "meta", ms && strlen(ms) <= 1024 ? ms : NULL);
		free(ms);
	} else {
		pl_lane_remove(&ln, OCCUPANT, "stop");
	}
	enum pl_change c = pl_lane_settle(&ln, now, d->cfg->dwell_ms);
	lane_emit(d, ctx, &ln, c, now);
	pl_lane_save(d->host, ctx, &ln, d->cfg->dwell_ms, 0);
	return 0;
}

static int dahua_wake(struct dahua *d, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	const char *dev = msg->topic;
	int64_t now = msg->recv_time_ms;
	if (strchr(dev, '/')) {
		struct pl_lane ln;
		pl_lane_load(d->host, ctx, dev, &ln);
		enum pl_change c = pl_lane_settle(&ln, now, d->cfg->dwell_ms);
		lane_emit(d, ctx, &ln, c, now);
		pl_lane_save(d->host, ctx, &ln, d->cfg->dwell_ms, 0);
		return 0;
	}
	pc_camera_wake(d->host, ctx, dev, now, d->cfg->offline_after_ms);
	return 0;
}

static int dahua_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct dahua *d = state;
	if (strcmp(msg->transport, FG_TRANSPORT_WAKE) == 0)
		return dahua_wake(d, msg, ctx);
	if (msg->len > MAX_BODY) {
		d->host->fail(ctx, "message of %zu bytes exceeds the %d-byte limit", msg->len, MAX_BODY);
		return -E2BIG;
	}
	const char *camera = pc_header(msg, "x-firegrid-peer");
	if (!camera || !camera[0])
		camera = d->cfg->camera && d->cfg->camera[0] ? d->cfg->camera : "dahua";
	if (strchr(camera, '/') || strlen(camera) > 128) {
		d->host->fail(ctx, "camera id \"%.40s\" is not usable", camera);
		return -EINVAL;
	}
	const char *ct = pc_header(msg, "content-type");
	char boundary[MP_BOUNDARY_MAX + 1] = "";
	if (ct && mp_type_is(ct, strlen(ct), "multipart/*") &&
	    mp_boundary(ct, boundary, sizeof(boundary)) < 0) {
		d->host->fail(ctx, "multipart Content-Type without a usable boundary");
		return -EINVAL;
	}
	if (!boundary[0] && mp_boundary_sniff(msg->payload, msg->len, boundary, sizeof(boundary)) < 0)
		boundary[0] = '\0';
	if (!boundary[0])
		return one_event(d, msg, ctx, camera, msg->payload, msg->len);
	size_t off = 0, used;
	struct mp_part part;
	int r, n = 0;
	while ((r = mp_next(msg->payload + off, msg->len - off, boundary, true, &part, &used)) == 1) {
		off += used;
		n++;
		r = one_event(d, msg, ctx, camera, part.body, part.body_len);
		if (r < 0)
			return r;
		if (!used)
			break;
	}
	if (r == -EBADMSG) {
		d->host->fail(ctx, "malformed multipart chunk (boundary \"%s\") after %d part(s)",
		              boundary, n);
		return -EINVAL;
	}
	return 0;
}

FG_PLUGIN_DEFINE(dahua, .name = "dahua", .version = "1.0",
	.description = "Dahua eventManager stream: ParkingDetection start/stop as fire-lane "
	               "blockages, heartbeats as online state",
	.options = dahua_options, .config_size = sizeof(struct dahua_config),
	.init = dahua_init, .fini = dahua_fini, .decode = dahua_decode);
