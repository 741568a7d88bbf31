/*
 * frigate: blocked fire lanes from Frigate NVR over MQTT (docs/cameras.md).
 *
 * Topics under base_topic (default "frigate"):
 *   events     {"type":"new"|"update"|"end","before":{...},"after":{...}}:
 *              one tracked object; the fire-lane logic below
 *   reviews    review items: an "alert" in a lane zone is kept as
 *              confirmation (attrs of the blocked event), never as timing
 *   available  "online" | "offline" | "stopped" (Frigate's Last Will)
 *   others     (stats, per-camera topics, snapshots) nothing
 *
 * A lane is a (camera, zone) with the zone named in `lanes`; its device id
 * is "<camera>/<zone>" and it is the unit of one incident.  A vehicle (an
 * object whose label is in `labels`) occupies a lane while the zone is in
 * after.current_zones (entered_zones is history and never shrinks).  It
 * arrived when the zone first showed up -- before.frame_time when `before`
 * already had it -- minus `loitering_time` for zones Frigate only reports
 * after its own loitering time, and never before the object's start_time.
 * Frigate's clock is mapped onto ours by the offset between the message's
 * frame_time and its receive time, so dwell is measured in Frigate's frame
 * times but timed by the host.
 *
 * fire_lane_blocked once a vehicle has stayed `dwell` (a wake-up fires it
 * even when Frigate sends nothing new); fire_lane_cleared when the last
 * vehicle leaves the zone (verified), or its tracking ends while it is still
 * in the zone, or it falls silent for `stale_after` (both unverified:
 * attrs.verified false).  Frigate republishes a parked car at least once a
 * minute; those updates only refresh it, unless a blocked lane's plate
 * (recognized_license_plate, read late) or number of vehicles changed: then
 * the blocked event is repeated with the new attrs, which the host makes an
 * `updated` revision of the open incident (pl_lane_facts_changed).
 *
 * `stationary` is not required: it flips only after 50 frames and a car
 * moving inside the lane still blocks it; it is reported in attrs.
 * Payloads of Frigate 0.12 (snapshot_time, no active/pending_loitering) and
 * of 0.13..0.17 (snapshot object, recognized_license_plate) are both read;
 * only the keys below are required.
 *
 * api_url (optional): the blocked event names Frigate's snapshot of the
 * vehicle that blocked the lane, <api_url>/api/events/<object id>/
 * snapshot.jpg?<snapshot_query>, in fg_event.snapshot_url; the daemon
 * fetches it and attaches it to the incident (the plugin does no I/O).
 *
 * available offline/stopped: one `offline` (major) for the Frigate instance
 * (device = base_topic; attrs.cameras lists the cameras seen); lanes stay as
 * they are (unknown, not cleared) and no dwell completes while Frigate is
 * away.  When it comes back its object ids start afresh: known vehicles are
 * forgotten, and a blocked lane where no vehicle is seen again within
 * stale_after clears (unverified).
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
#include "../common/camera.h"
#include "../common/lane.h"
#include "../common/plugin_util.h"

#define MAX_PAYLOAD (512 * 1024)
#define MAX_LANES 32
#define NAME_MAX_LEN 96
#define CAMERAS_KEY "cameras"
#define MAX_CAMERAS 64                /* what fits the 1 KiB list */

struct frigate_config {
	const char *base_topic;
	const char *lanes;
	const char *labels;
	int64_t dwell_ms;
	int64_t loitering_ms;
	int64_t stale_after_ms;
	const char *api_url;
	const char *snapshot_query;
};

static const struct fg_option frigate_options[] = {
	{ "base_topic", FG_OPT_STRING, "frigate", offsetof(struct frigate_config, base_topic),
	  "Frigate's mqtt.topic_prefix", 0, 0 },
	{ "lanes", FG_OPT_STRING, "fire_lane", offsetof(struct frigate_config, lanes),
	  "Frigate zones that are fire lanes: ZONE (on every camera) or CAMERA/ZONE, "
	  "comma separated", 0, 0 },
	{ "labels", FG_OPT_STRING, "car,truck,motorcycle,bus",
	  offsetof(struct frigate_config, labels),
	  "object labels that count as vehicles", 0, 0 },
	{ "dwell", FG_OPT_DURATION, "5m", offsetof(struct frigate_config, dwell_ms),
	  "a vehicle must stay in a lane this long before it is reported blocked", 0,
	  86400000.0 },
	{ "loitering_time", FG_OPT_DURATION, "0", offsetof(struct frigate_config, loitering_ms),
	  "the loitering_time configured on the lane zones in Frigate: such zones appear only "
	  "after it, so it counts towards the dwell", 0, 3600000.0 },
	{ "stale_after", FG_OPT_DURATION, "5m", offsetof(struct frigate_config, stale_after_ms),
	  "a vehicle Frigate has not mentioned this long is gone (it republishes tracked "
	  "objects every minute); 0 = never", 0, 86400000.0 },
	{ "api_url", FG_OPT_STRING, NULL, offsetof(struct frigate_config, api_url),
	  "Frigate's HTTP API, e.g. http://192.168.1.20:5000: the blocked event's snapshot is "
	  "fetched from <api_url>/api/events/<id>/snapshot.jpg; unset = no pictures", 0, 0 },
	{ "snapshot_query", FG_OPT_STRING, "bbox=1", offsetof(struct frigate_config, snapshot_query),
	  "query of the snapshot URL (Frigate: bbox, crop, timestamp, height, quality); "
	  "empty = none", 0, 0 },
	FG_OPTION_END
};

struct lane_spec {
	char camera[NAME_MAX_LEN];    /* "" = every camera */
	char zone[NAME_MAX_LEN];
};

struct frigate {
	const struct fg_host *host;
	const struct frigate_config *cfg;
	struct lane_spec lanes[MAX_LANES];
	size_t n_lanes;
	char topic_events[160], topic_reviews[160], topic_available[160];
};

static int parse_lanes(struct frigate *f, const char *list)
{
	const struct fg_host *h = f->host;
	for (const char *p = list ? list : ""; *p;) {
		p += strspn(p, ", \t");
		size_t w = strcspn(p, ", \t");
		if (!w)
			break;
		if (f->n_lanes == MAX_LANES)
			return pu_option_error(h, "lanes", "more than %d lanes", MAX_LANES);
		if (w >= NAME_MAX_LEN)
			return pu_option_error(h, "lanes", "'%.*s' is longer than %d characters",
			                       (int)w, p, NAME_MAX_LEN - 1);
		struct lane_spec *l = &f->lanes[f->n_lanes++];
		const char *slash = memchr(p, '/', w);
		if (slash) {
			size_t cw = (size_t)(slash - p);
			if (!cw || cw + 1 == w || memchr(slash + 1, '/', w - cw - 1))
				return pu_option_error(h, "lanes", "'%.*s' is not ZONE or CAMERA/ZONE",
				                       (int)w, p);
			memcpy(l->camera, p, cw);
			memcpy(l->zone, slash + 1, w - cw - 1);
		} else {
			memcpy(l->zone, p, w);
		}
		p += w;
	}
	return f->n_lanes ? 0 : pu_option_error(h, "lanes", "no fire-lane zone given");
}

static int frigate_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct frigate_config *cfg = config;
	if (!cfg->base_topic || !cfg->base_topic[0] || strlen(cfg->base_topic) > 100 ||
	    strpbrk(cfg->base_topic, "+#"))
		return pu_option_error(host, "base_topic",
		                       "must be a topic of 1..100 characters without + or #");
	const char *api = cfg->api_url;
	if (api && api[0] && ((strncmp(api, "http://", 7) && strncmp(api, "https://", 8)) ||
	                      strlen(api) > 512 || strpbrk(api, "?# \t")))
		return pu_option_error(host, "api_url",
		                       "must be an http:// or https:// URL of at most 512 "
		                       "characters, without query, fragment or spaces");
	if (cfg->snapshot_query && (strlen(cfg->snapshot_query) > 256 ||
	                            strpbrk(cfg->snapshot_query, "# \t")))
		return pu_option_error(host, "snapshot_query",
		                       "must be a query string of at most 256 characters, "
		                       "without # or spaces");
	struct frigate *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->host = host;
	f->cfg = cfg;
	if (parse_lanes(f, cfg->lanes) < 0) {
		free(f);
		return -EINVAL;
	}
	snprintf(f->topic_events, sizeof(f->topic_events), "%s/events", cfg->base_topic);
	snprintf(f->topic_reviews, sizeof(f->topic_reviews), "%s/reviews", cfg->base_topic);
	snprintf(f->topic_available, sizeof(f->topic_available), "%s/available", cfg->base_topic);
	*ret_state = f;
	return 0;
}

static void frigate_fini(void *state)
{
	free(state);
}

/* Is `zone` of `camera` a lane?  Its device id in dev. */
static bool lane_of(const struct frigate *f, const char *camera, const char *zone, char *dev,
                    size_t len)
{
	for (size_t i = 0; i < f->n_lanes; i++) {
		const struct lane_spec *l = &f->lanes[i];
		if (strcmp(l->zone, zone) == 0 && (!l->camera[0] || strcmp(l->camera, camera) == 0)) {
			snprintf(dev, len, "%s/%s", camera, zone);
			return true;
		}
	}
	return false;
}

/* Every lane zone of camera (without repeats), as device ids. */
static size_t lanes_of_camera(const struct frigate *f, const char *camera,
                              char devs[][2 * NAME_MAX_LEN + 2])
{
	size_t n = 0;
	for (size_t i = 0; i < f->n_lanes; i++) {
		const struct lane_spec *l = &f->lanes[i];
		if (l->camera[0] && strcmp(l->camera, camera) != 0)
			continue;
		char dev[2 * NAME_MAX_LEN + 2];
		snprintf(dev, sizeof(dev), "%s/%s", camera, l->zone);
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcmp(devs[j], dev) == 0;
		if (!dup)
			memcpy(devs[n++], dev, sizeof(dev));
	}
	return n;
}

static bool in_string_array(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* Remember a camera for `available` (bounded by the state value size). */
static void note_camera(struct frigate *f, fg_decode_ctx *ctx, const char *camera)
{
	const char *list = f->host->state_get(ctx, "", CAMERAS_KEY);
	if (pu_list_has(list, camera, 0))
		return;
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s%s%s", list ? list : "", list ? "," : "", camera);
	if (n > 0 && (size_t)n < sizeof(buf))
		f->host->state_set(ctx, "", CAMERAS_KEY, buf);
	else
		f->host->log(ctx, FG_LOG_WARN, "too many cameras to remember camera %s", camera);
}

/* The cameras seen so far (note_camera), at most max. */
static size_t known_cameras(struct frigate *f, fg_decode_ctx *ctx, char names[][NAME_MAX_LEN],
                            size_t max)
{
	const char *list = f->host->state_get(ctx, "", CAMERAS_KEY);
	char buf[1024];
	size_t n = 0;
	snprintf(buf, sizeof(buf), "%s", list ? list : "");
	for (char *save = NULL, *c = strtok_r(buf, ",", &save); c && n < max;
	     c = strtok_r(NULL, ",", &save))
		snprintf(names[n++], NAME_MAX_LEN, "%s", c);
	return n;
}

static bool frigate_online(struct frigate *f, fg_decode_ctx *ctx)
{
	const char *a = f->host->state_get(ctx, "", "available");
	return !a || strcmp(a, "offline") != 0;
}

/* ---- events -------------------------------------------------------------- */

/* The fields of a tracked object this plugin reads, type-checked. */
struct tracked {
	const char *id, *camera, *label, *plate;
	double frame_time, start_time;
	const json_t *zones;           /* current_zones (array) */
	int stationary;                /* -1 unknown */
	bool false_positive;
};

/* Check one of before/after; 0, or -EINVAL after fail() unless quiet.
 * `where` names it. */
#define FAIL(...) do { if (!quiet) f->host->fail(ctx, __VA_ARGS__); } while (0)
static int read_tracked(struct frigate *f, fg_decode_ctx *ctx, const char *where, json_t *o,
                        struct tracked *t, bool quiet)
{
	char desc[64];
	static const char *const strings[] = { "id", "camera", "label" };
	const char **dst[] = { &t->id, &t->camera, &t->label };
	memset(t, 0, sizeof(*t));
	t->stationary = -1;
	if (!json_is_object(o)) {
		FAIL("\"%s\": expected an object, got %s", where,
		              pu_describe(o, desc, sizeof(desc)));
		return -EINVAL;
	}
	for (size_t i = 0; i < PU_ARRAY_LEN(strings); i++) {
		json_t *v = json_object_get(o, strings[i]);
		if (!json_is_string(v) || !json_string_length(v) ||
		    json_string_length(v) >= NAME_MAX_LEN || strchr(json_string_value(v), '/')) {
			FAIL("\"%s.%s\": expected a name (1..%d characters, no '/'), got %s",
			              where, strings[i], NAME_MAX_LEN - 1,
			              v ? pu_describe(v, desc, sizeof(desc)) : "nothing");
			return -EINVAL;
		}
		*dst[i] = json_string_value(v);
	}
	static const char *const times[] = { "frame_time", "start_time" };
	double *tdst[] = { &t->frame_time, &t->start_time };
	for (size_t i = 0; i < PU_ARRAY_LEN(times); i++) {
		json_t *v = json_object_get(o, times[i]);
		double d = json_number_value(v);
		if (!json_is_number(v) || !isfinite(d) || d < 0 || d > 253402300800.0) {
			FAIL("\"%s.%s\": expected epoch seconds, got %s", where, times[i],
			              v ? pu_describe(v, desc, sizeof(desc)) : "nothing");
			return -EINVAL;
		}
		*tdst[i] = d;
	}
	t->zones = json_object_get(o, "current_zones");
	size_t i;
	json_t *z;
	if (!json_is_array(t->zones)) {
		FAIL("\"%s.current_zones\": expected an array, got %s", where,
		              t->zones ? pu_describe(t->zones, desc, sizeof(desc)) : "nothing");
		return -EINVAL;
	}
	json_array_foreach(t->zones, i, z)
		if (!json_is_string(z)) {
			FAIL("\"%s.current_zones[%zu]\": expected a string, got %s", where,
			              i, pu_describe(z, desc, sizeof(desc)));
			return -EINVAL;
		}
	json_t *st = json_object_get(o, "stationary");
	if (st && !json_is_boolean(st) && !json_is_null(st)) {
		FAIL("\"%s.stationary\": expected a boolean, got %s", where,
		              pu_describe(st, desc, sizeof(desc)));
		return -EINVAL;
	}
	t->stationary = json_is_boolean(st) ? json_is_true(st) : -1;
	t->false_positive = json_is_true(json_object_get(o, "false_positive"));
	json_t *plate = json_object_get(o, "recognized_license_plate");
	if (json_is_string(plate) && json_string_length(plate) && json_string_length(plate) < 32)
		t->plate = json_string_value(plate);
	return 0;
}
#undef FAIL

/* Frigate's picture of tracked object `id`, when api_url is set:
 * <api_url>/api/events/<id>/snapshot.jpg[?snapshot_query].  The id is
 * percent-encoded (Frigate's are "<epoch>.<frac>-<random>", but they come
 * off the network). */
static bool snapshot_url(const struct frigate *f, const char *id, char *buf, size_t len)
{
	const char *api = f->cfg->api_url, *q = f->cfg->snapshot_query;
	if (!api || !api[0])
		return false;
	size_t al = strlen(api);
	while (al && api[al - 1] == '/')
		al--;
	char enc[3 * PL_ID_MAX + 1];
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)id; *p && n + 4 <= sizeof(enc); p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			enc[n++] = (char)*p;
		else
			n += (size_t)snprintf(enc + n, sizeof(enc) - n, "%%%02X", *p);
	}
	enc[n] = '\0';
	int w = snprintf(buf, len, "%.*s/api/events/%s/snapshot.jpg%s%s", (int)al, api, enc,
	                 q && q[0] ? "?" : "", q && q[0] ? q : "");
	return w > 0 && (size_t)w < len;
}

/* Emit what the lane's change means.  `t` is the message's object (NULL on
 * a wake-up), time_ms the Frigate time of the message (0 on a wake-up). */
static void lane_emit(struct frigate *f, fg_decode_ctx *ctx, const struct pl_lane *ln,
                      enum pl_change c, int64_t now_ms, const struct tracked *t, int64_t time_ms)
{
	if (c == PL_NONE || (c == PL_UPDATED && !ln->blocked_ms))
		return;
	const char *dev = ln->device, *slash = strchr(dev, '/');
	json_t *a = json_pack("{s:s%,s:s}", "camera", dev, slash ? (size_t)(slash - dev) : strlen(dev),
	                      "zone", slash ? slash + 1 : "");
	const char *plate = f->host->state_get(ctx, dev, "plate");
	if (a && c != PL_CLEARED) {
		const struct pl_occupant *first = pl_lane_first(ln);
		json_object_set_new(a, "vehicles", json_integer((json_int_t)ln->n));
		if (first) {
			json_object_set_new(a, "object_id", json_string(first->id));
			json_object_set_new(a, "label", json_string(first->info));
			json_object_set_new(a, "dwell_s",
			                    json_integer((json_int_t)((now_ms - first->since_ms) / 1000)));
		}
		if (t && t->stationary >= 0)
			json_object_set_new(a, "stationary", json_boolean(t->stationary));
		if (plate)
			json_object_set_new(a, "plate", json_string(plate));
		const char *review = f->host->state_get(ctx, dev, "review");
		if (review)
			json_object_set_new(a, "review_id", json_string(review));
	} else if (a) {
		const char *why = ln->clear_reason ? ln->clear_reason : "not_seen_after_reconnect";
		json_object_set_new(a, "verified", json_boolean(strcmp(why, "left_zone") == 0));
		json_object_set_new(a, "reason", json_string(why));
	}
	/* a blocked lane is news again only when its plate or vehicles change */
	char facts[64];
	snprintf(facts, sizeof(facts), "%zu|%s", ln->n, plate ? plate : "");
	if (c != PL_CLEARED && !pl_lane_facts_changed(f->host, ctx, dev, facts) &&
	    c == PL_UPDATED) {
		json_decref(a);
		return;
	}
	char *attrs = pu_attrs_text(a);
	char url[1024];
	const struct pl_occupant *first = pl_lane_first(ln);
	struct fg_event ev = {
		.struct_size = sizeof(ev),
		.kind = c == PL_CLEARED ? FG_KIND_FIRE_LANE_CLEARED : FG_KIND_FIRE_LANE_BLOCKED,
		.device = dev,
		.device_time_ms = time_ms,
		.attrs_json = attrs,
		.snapshot_url = c == PL_BLOCKED && first &&
		                snapshot_url(f, first->id, url, sizeof(url)) ? url : NULL,
	};
	ev.severity = pu_severity(ev.kind);
	f->host->emit(ctx, &ev);
	free(attrs);
	if (c == PL_CLEARED) {
		f->host->state_set(ctx, dev, "plate", NULL);
		f->host->state_set(ctx, dev, "review", NULL);
		pl_lane_facts_changed(f->host, ctx, dev, NULL);
	}
}

/* Settle a loaded lane, emit, save. */
static void lane_finish(struct frigate *f, fg_decode_ctx *ctx, struct pl_lane *ln, int64_t now_ms,
                        const struct tracked *t, int64_t time_ms)
{
	enum pl_change c = frigate_online(f, ctx) ? pl_lane_settle(ln, now_ms, f->cfg->dwell_ms)
	                                          : PL_NONE;
	/* a message about a vehicle in a blocked lane may bring its plate */
	if (c == PL_NONE && t && frigate_online(f, ctx))
		c = PL_UPDATED;
	lane_emit(f, ctx, ln, c, now_ms, t, time_ms);
	if (ln->dropped)
		f->host->log(ctx, FG_LOG_WARN, "lane %s: more than %d vehicles, %d not tracked",
		             ln->device, PL_LANE_MAX, ln->dropped);
	pl_lane_save(f->host, ctx, ln, f->cfg->dwell_ms, f->cfg->stale_after_ms);
}

static int decode_event(struct frigate *f, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	json_t *root = NULL;
	char desc[64];
	int r = pu_parse_json(f->host, ctx, msg, MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	struct tracked after, before;
	bool have_before = false;
	json_t *type = json_object_get(root, "type");
	const char *ty = json_string_value(type);
	if (!json_is_object(root)) {
		f->host->fail(ctx, "expected a JSON object, got %s", pu_describe(root, desc, sizeof(desc)));
		r = -EINVAL;
	} else if (!ty || (strcmp(ty, "new") && strcmp(ty, "update") && strcmp(ty, "end"))) {
		f->host->fail(ctx, "\"type\": expected \"new\", \"update\" or \"end\", got %s",
		              type ? pu_describe(type, desc, sizeof(desc)) : "nothing");
		r = -EINVAL;
	} else if ((r = read_tracked(f, ctx, "after", json_object_get(root, "after"), &after, false)) == 0) {
		json_t *b = json_object_get(root, "before");
		/* before is only a hint (when the zone was first seen): a `new`
		 * carries a placeholder with false_positive set. */
		have_before = b && read_tracked(f, ctx, "before", b, &before, true) == 0 &&
		              strcmp(before.id, after.id) == 0 && !before.false_positive;
	}
	if (r < 0) {
		json_decref(root);
		return r;
	}
	if (!pu_list_has(f->cfg->labels, after.label, 0) || after.false_positive) {
		json_decref(root);
		return 0;
	}
	note_camera(f, ctx, after.camera);

	int64_t now = msg->recv_time_ms;
	int64_t frame_ms = (int64_t)llround(after.frame_time * 1000);
	int64_t offset = now - frame_ms;          /* Frigate's clock -> ours */
	int64_t start = (int64_t)llround(after.start_time * 1000) + offset;
	bool ended = strcmp(ty, "end") == 0;

	char devs[MAX_LANES][2 * NAME_MAX_LEN + 2];
	size_t n = lanes_of_camera(f, after.camera, devs);
	for (size_t i = 0; i < n; i++) {
		const char *zone = devs[i] + strlen(after.camera) + 1;
		bool in = in_string_array(after.zones, zone);
		struct pl_lane ln;
		pl_lane_load(f->host, ctx, devs[i], &ln);
		if (!in && !pl_lane_find(&ln, after.id))
			continue;                          /* nothing to do with this lane */
		if (in && !ended) {
			int64_t first = have_before && in_string_array(before.zones, zone)
				? (int64_t)llround(before.frame_time * 1000) + offset : now;
			int64_t since = first - f->cfg->loitering_ms;
			if (since < start)
				since = start;
			pl_lane_touch(&ln, after.id, since, now, after.label);
			if (after.plate)
				f->host->state_set(ctx, devs[i], "plate", after.plate);
		} else {
			pl_lane_remove(&ln, after.id, in ? "tracking_ended" : "left_zone");
		}
		lane_finish(f, ctx, &ln, now, &after, frame_ms);
	}
	json_decref(root);
	return 0;
}

/* ---- reviews ---------------------------------------------------------------- */

static int decode_review(struct frigate *f, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	json_t *root = NULL;
	char desc[64];
	int r = pu_parse_json(f->host, ctx, msg, MAX_PAYLOAD, &root);
	if (r < 0)
		return r;
	json_t *after = json_object_get(root, "after");
	json_t *data = json_object_get(after, "data");
	const char *id = json_string_value(json_object_get(after, "id"));
	const char *camera = json_string_value(json_object_get(after, "camera"));
	const char *severity = json_string_value(json_object_get(after, "severity"));
	json_t *zones = json_object_get(data, "zones"), *objects = json_object_get(data, "objects");
	if (!json_is_object(after) || !id || !camera || !severity || !json_is_array(zones) ||
	    !json_is_array(objects)) {
		f->host->fail(ctx, "review: expected after.id, after.camera, after.severity (strings) "
		              "and after.data.zones, after.data.objects (arrays), got %s",
		              pu_describe(root, desc, sizeof(desc)));
		json_decref(root);
		return -EINVAL;
	}
	bool vehicle = false;
	size_t i;
	json_t *v;
	json_array_foreach(objects, i, v)
		vehicle |= json_is_string(v) && pu_list_has(f->cfg->labels, json_string_value(v), 0);
	if (vehicle && strcmp(severity, "alert") == 0 && strlen(id) < 128) {
		json_array_foreach(zones, i, v) {
			char dev[2 * NAME_MAX_LEN + 2];
			if (json_is_string(v) && strlen(camera) < NAME_MAX_LEN &&
			    lane_of(f, camera, json_string_value(v), dev, sizeof(dev)))
				f->host->state_set(ctx, dev, "review", id);
		}
	}
	json_decref(root);
	return 0;
}

/* ---- availability ----------------------------------------------------------- */

/* Frigate is back: its object ids start afresh.  Forget the vehicles; a
 * blocked lane gets stale_after to see one again before it clears. */
static void restart_lanes(struct frigate *f, fg_decode_ctx *ctx, int64_t now)
{
	char cams[MAX_CAMERAS][NAME_MAX_LEN];
	size_t nc = known_cameras(f, ctx, cams, MAX_CAMERAS);
	for (size_t c = 0; c < nc; c++) {
		char devs[MAX_LANES][2 * NAME_MAX_LEN + 2];
		size_t n = lanes_of_camera(f, cams[c], devs);
		for (size_t i = 0; i < n; i++) {
			struct pl_lane ln;
			pl_lane_load(f->host, ctx, devs[i], &ln);
			ln.n = 0;
			ln.clear_reason = NULL;
			if (ln.blocked_ms)
				ln.recheck_at_ms = now + (f->cfg->stale_after_ms ? f->cfg->stale_after_ms
				                                                 : f->cfg->dwell_ms);
			pl_lane_save(f->host, ctx, &ln, f->cfg->dwell_ms, f->cfg->stale_after_ms);
		}
	}
}

static int decode_available(struct frigate *f, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	char text[32];
	if (pu_payload_text(msg, text, sizeof(text)) < 0 ||
	    (strcmp(text, "online") && strcmp(text, "offline") && strcmp(text, "stopped"))) {
		f->host->fail(ctx, "availability: expected online, offline or stopped, got %zu bytes",
		              msg->len);
		return -EINVAL;
	}
	bool online = strcmp(text, "online") == 0;
	const char *prev = f->host->state_get(ctx, "", "available");
	bool was_offline = prev && strcmp(prev, "offline") == 0;
	f->host->state_set(ctx, "", "available", online ? "online" : "offline");
	if (online == !was_offline)
		return 0;     /* no change, or a first "online" (retained, on subscribe) */
	if (online)
		restart_lanes(f, ctx, msg->recv_time_ms);
	json_t *a = json_pack("{s:s}", "payload", text);
	json_t *cams = json_array();
	char names[MAX_CAMERAS][NAME_MAX_LEN];
	size_t nc = known_cameras(f, ctx, names, MAX_CAMERAS);
	for (size_t c = 0; c < nc; c++)
		json_array_append_new(cams, json_string(names[c]));
	if (a)
		json_object_set_new(a, "cameras", cams);
	else
		json_decref(cams);
	char *attrs = pu_attrs_text(a);
	struct fg_event ev = {
		.struct_size = sizeof(ev),
		.kind = online ? FG_KIND_ONLINE : FG_KIND_OFFLINE,
		.severity = online ? FG_SEV_INFO : FG_SEV_MAJOR,   /* a whole NVR's cameras */
		.device = f->cfg->base_topic,
		.attrs_json = attrs,
	};
	f->host->emit(ctx, &ev);
	free(attrs);
	return 0;
}

/* ---- wake-ups and dispatch ------------------------------------------------- */

static int decode_wake(struct frigate *f, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	if (!frigate_online(f, ctx))
		return 0;     /* re-armed when Frigate is back */
	struct pl_lane ln;
	pl_lane_load(f->host, ctx, msg->topic, &ln);
	pl_lane_expire(&ln, msg->recv_time_ms, f->cfg->stale_after_ms);
	lane_finish(f, ctx, &ln, msg->recv_time_ms, NULL, 0);
	return 0;
}

static int frigate_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct frigate *f = state;
	if (strcmp(msg->transport, FG_TRANSPORT_WAKE) == 0)
		return decode_wake(f, msg, ctx);
	if (strcmp(msg->topic, f->topic_events) == 0)
		return decode_event(f, msg, ctx);
	if (strcmp(msg->topic, f->topic_reviews) == 0)
		return decode_review(f, msg, ctx);
	if (strcmp(msg->topic, f->topic_available) == 0)
		return decode_available(f, msg, ctx);
	return 0;
}

FG_PLUGIN_DEFINE(frigate, .name = "frigate", .version = "1.0",
	.description = "Frigate NVR: vehicles dwelling in fire-lane zones (MQTT events, "
	               "reviews, availability)",
	.options = frigate_options, .config_size = sizeof(struct frigate_config),
	.init = frigate_init, .fini = frigate_fini, .decode = frigate_decode);
