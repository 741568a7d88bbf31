/*
 * Helpers of the camera plugins (frigate, hikvision, dahua), header-only
 * like plugin_util.h: message headers and a camera's online
 * state kept from its traffic (heartbeats included) with a silence timeout
 * on a wake-up (fg_host.wake_at).
 *
 * Online state lives in host state of the camera device: "seen" (epoch ms
 * of the last message) and "offline" ("1" while reported offline).
 */
#ifndef FG_PLUGIN_CAMERA_H
#define FG_PLUGIN_CAMERA_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "firegrid/plugin.h"
#include "plugin_util.h"

/* A message header (case-insensitive name), NULL when absent. */
static PU_UNUSED const char *pc_header(const struct fg_msg *msg, const char *name)
{
	for (size_t i = 0; msg->headers && i < msg->n_headers; i++)
		if (msg->headers[i].name && strcasecmp(msg->headers[i].name, name) == 0)
			return msg->headers[i].value;
	return NULL;
}

/*
 * The camera sent something at now_ms: with offline_after_ms > 0, remember
 * it, arm a wake-up at the end of the silence allowed, and report `online`
 * (attrs may be NULL) when it was offline.
 */
static PU_UNUSED void pc_camera_seen(const struct fg_host *h, fg_decode_ctx *ctx,
                                     const char *camera, int64_t now_ms,
                                     int64_t offline_after_ms, const char *attrs)
{
	if (offline_after_ms <= 0)
		return;
	char v[24];
	snprintf(v, sizeof(v), "%lld", (long long)now_ms);
	h->state_set(ctx, camera, "seen", v);
	if (FG_HOST_HAS_WAKE_AT(h))
		h->wake_at(ctx, camera, now_ms + offline_after_ms);
	const char *off = h->state_get(ctx, camera, "offline");
	if (off && strcmp(off, "1") == 0) {
		h->state_set(ctx, camera, "offline", NULL);
		pu_emit(h, ctx, camera, FG_KIND_ONLINE, FG_KIND_NONE, 0, attrs);
	}
}

/* The camera's wake-up: `offline` (warning, attrs {"silent_s": N}) when it
 * has been silent offline_after_ms, once. */
static PU_UNUSED void pc_camera_wake(const struct fg_host *h, fg_decode_ctx *ctx,
                                     const char *camera, int64_t now_ms,
                                     int64_t offline_after_ms)
{
	const char *seen = h->state_get(ctx, camera, "seen");
	const char *off = h->state_get(ctx, camera, "offline");
	if (!seen || (off && strcmp(off, "1") == 0) || offline_after_ms <= 0)
		return;
	int64_t silent = now_ms - strtoll(seen, NULL, 10);
	if (silent < offline_after_ms)
		return;
	h->state_set(ctx, camera, "offline", "1");
	char attrs[64];
	snprintf(attrs, sizeof(attrs), "{\"silent_s\":%lld}", (long long)(silent / 1000));
	pu_emit(h, ctx, camera, FG_KIND_OFFLINE, FG_KIND_NONE, 0, attrs);
}

#endif
