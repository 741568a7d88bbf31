/*
 * hikvision: Hikvision ISAPI EventNotificationAlert documents (docs/cameras.md).
 *
 * Arrives as the body of a camera's HTTP push to /v1/ingest/<source>
 * ("alarm server" / HTTP listening), either application/xml or
 * multipart/form-data with the XML part first and pictures after it, or as
 * parts of the alertStream (multipart/mixed).  The XML is parsed with
 * libxml2 and matched on local element names only: the namespace differs
 * between firmwares (hikvision.com ver10/ver20, isapi.org, std-cgi.com,
 * psialliance).  A multipart body is searched for its XML parts by
 * Content-Type (or by content when a part has none); pictures were already
 * stored by the host, which names them in x-firegrid-snapshot headers.
 *
 * Camera identity: macAddress, else serialNumber, else ipAddress[:portNo]
 * from the XML, else the pushing peer (x-firegrid-peer).  Channels are
 * channelID; an NVR numbers its IP channels from nvr_channel_base + 1 (33),
 * which become D1, D2... as on the NVR's screen.  Device ids:
 *   <camera>                     the camera itself (online/offline)
 *   <camera>/<channel>/region<N> a fire-lane region: one incident
 *   <camera>/<channel>/io<N>     an alarm input mapped by io_inputs
 *
 * Fire lanes: an intrusion-type rule (lane_events, default fielddetection)
 * firing on a region listed in lane_regions for a target in targets
 * (vehicle) means a vehicle is in that lane.  Push mode has no end message:
 * the camera keeps posting while the target stays (activePostCount grows),
 * so the lane is occupied from the first post and empties clear_after
 * after the last one.  Blocked after `dwell` of continuous posts
 * (plugins/common/lane.h).  A post repeated with the same dateTime and
 * activePostCount, or marked isDataRetransmission, is old data: it neither
 * starts nor extends a presence.  eventState inactive (alertStream) empties
 * the lane at once.
 *
 * ANPR is vehicle identity, never an alarm: the plate (with its confidence;
 * low when confidenceLevel or any plateCharBelieve digit is below
 * plate_min_confidence) is kept per camera channel and goes into that
 * channel's blocked event when it was read within plate_window.  A plate
 * read while a lane of the channel is already blocked, or a change in the
 * number of vehicles in it, repeats the blocked event with the new attrs
 * (the host makes it an `updated` revision of the open incident); the same
 * plate again changes nothing.  The channel keeps the list of its blocked
 * lanes ("lanes") for this.
 *
 * videoloss + inactive is the alertStream's heartbeat, not an event.  Every
 * document refreshes the camera's online state; with offline_after set, a
 * camera silent that long is `offline` (warning) until it posts again.
 * Alarm inputs (IO) mean what io_inputs says (site wiring); push sends no
 * inactive, so an input clears io_clear_after after its last post.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "firegrid/plugin.h"
#include "../common/camera.h"
#include "../common/lane.h"
#include "../common/multipart.h"
#include "../common/plugin_util.h"

#define MAX_BODY (8 * 1024 * 1024)
#define MAX_XML (1024 * 1024)
#define MAX_DOCS 64                  /* XML parts per body */
#define TEXT_MAX 128
#define OCCUPANT "region"

struct hik_config {
	int64_t dwell_ms;
	int64_t clear_after_ms;
	const char *lane_events;
	const char *lane_regions;
	const char *targets;
	int untargeted;
	int64_t nvr_channel_base;
	int64_t offline_after_ms;
	const char *io_inputs;
	int64_t io_clear_after_ms;
	int64_t plate_window_ms;
	int64_t plate_min_confidence;
};

#define O(f) offsetof(struct hik_config, f)
static const struct fg_option hik_options[] = {
	{ "dwell", FG_OPT_DURATION, "5m", O(dwell_ms),
	  "a vehicle must keep a lane region alarming this long before it is reported blocked",
	  0, 86400000.0 },
	{ "clear_after", FG_OPT_DURATION, "2m", O(clear_after_ms),
	  "a lane region without a new post this long is empty again (push mode has no end "
	  "message)", 1000, 86400000.0 },
	{ "lane_events", FG_OPT_STRING, "fielddetection", O(lane_events),
	  "eventType values of the rules drawn on fire lanes (intrusion = fielddetection; "
	  "also regionEntrance, loitering, parking)", 0, 0 },
	{ "lane_regions", FG_OPT_STRING, "", O(lane_regions),
	  "regionID values that are fire lanes, as N (every camera) or CAMERA/CHANNEL#N; "
	  "empty = every region of a lane event", 0, 0 },
	{ "targets", FG_OPT_STRING, "vehicle", O(targets),
	  "detectionTarget values that count as vehicles", 0, 0 },
	{ "untargeted", FG_OPT_BOOL, "false", O(untargeted),
	  "count a lane alarm without detectionTarget (firmware without target "
	  "classification) as a vehicle", 0, 0 },
	{ "nvr_channel_base", FG_OPT_INT, "32", O(nvr_channel_base),
	  "NVR IP channels are numbered from this + 1 and named D1, D2...; 0 = plain numbers",
	  0, 1000 },
	{ "offline_after", FG_OPT_DURATION, "0", O(offline_after_ms),
	  "a camera silent this long is offline (alertStream heartbeats every ~10 s: 30s); "
	  "0 = off (push mode is silent when nothing happens)", 0, 86400000.0 },
	{ "io_inputs", FG_OPT_STRING, "", O(io_inputs),
	  "alarm inputs wired to detectors, PORT:KIND, comma separated (e.g. 1:smoke); "
	  "unlisted inputs are ignored", 0, 0 },
	{ "io_clear_after", FG_OPT_DURATION, "5m", O(io_clear_after_ms),
	  "an alarm input without a new post this long is normal again", 1000, 86400000.0 },
	{ "plate_window", FG_OPT_DURATION, "10m", O(plate_window_ms),
	  "a plate read on the same camera channel this recently goes into the blocked event",
	  0, 86400000.0 },
	{ "plate_min_confidence", FG_OPT_INT, "80", O(plate_min_confidence),
	  "plates read with less confidence (overall or any character) are marked "
	  "plate_low_confidence", 0, 100 },
	FG_OPTION_END
};
#undef O

struct hik {
	const struct fg_host *host;
	const struct hik_config *cfg;
};

static int hik_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct hik_config *cfg = config;
	/* io_inputs must name kinds this plugin can report. */
	for (const char *p = cfg->io_inputs ? cfg->io_inputs : ""; *p;) {
		p += strspn(p, ", \t");
		size_t w = strcspn(p, ", \t");
		if (!w)
			break;
		char item[48];
		if (w >= sizeof(item))
			return pu_option_error(host, "io_inputs", "'%.*s' is too long", (int)w, p);
		memcpy(item, p, w);
		item[w] = '\0';
		char *colon = strchr(item, ':');
		if (!colon || colon == item || strspn(item, "0123456789") != (size_t)(colon - item))
			return pu_option_error(host, "io_inputs", "'%s' is not INPUT:KIND (e.g. 1:smoke)",
			                       item);
		static const char *const kinds[] = { "smoke", "heat", "co", "fault", "tamper",
		                                     "overtemp", "overcurrent", "residual_current" };
		bool ok = false;
		for (size_t i = 0; i < PU_ARRAY_LEN(kinds); i++)
			ok |= strcmp(colon + 1, kinds[i]) == 0;
		if (!ok)
			return pu_option_error(host, "io_inputs",
			                       "'%s': the kind is none of smoke heat co fault tamper "
			                       "overtemp overcurrent residual_current", item);
		p += w;
	}
	struct hik *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	xmlInitParser();
	k->host = host;
	k->cfg = cfg;
	*ret_state = k;
	return 0;
}

static void hik_fini(void *state)
{
	free(state);
}

static fg_kind kind_named(const char *name)
{
	static const struct { const char *n; fg_kind k; } map[] = {
		{ "smoke", FG_KIND_SMOKE }, { "heat", FG_KIND_HEAT }, { "co", FG_KIND_CO },
		{ "fault", FG_KIND_FAULT }, { "tamper", FG_KIND_TAMPER },
		{ "overtemp", FG_KIND_OVERTEMP }, { "overcurrent", FG_KIND_OVERCURRENT },
		{ "residual_current", FG_KIND_RESIDUAL_CURRENT },
	};
	for (size_t i = 0; i < PU_ARRAY_LEN(map); i++)
		if (strcmp(map[i].n, name) == 0)
			return map[i].k;
	return FG_KIND_NONE;
}

/* ---- XML helpers --------------------------------------------------------- */

static bool named(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->name &&
	       strcasecmp((const char *)n->name, name) == 0;
}

static xmlNode *child(const xmlNode *n, const char *name)
{
	for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

/* The trimmed text of child `name` into buf ("" when absent). */
static const char *child_text(const xmlNode *n, const char *name, char *buf, size_t len)
{
	buf[0] = '\0';
	xmlNode *c = child(n, name);
	xmlChar *t = c ? xmlNodeGetContent(c) : NULL;
	if (t) {
		const char *s = (const char *)t;
		s += strspn(s, " \t\r\n");
		size_t l = strlen(s);
		while (l && strchr(" \t\r\n", s[l - 1]))
			l--;
		if (l >= len)
			l = len - 1;
		memcpy(buf, s, l);
		buf[l] = '\0';
		xmlFree(t);
	}
	return buf;
}

static long long child_int(const xmlNode *n, const char *name, long long dflt)
{
	char buf[32], *end;
	child_text(n, name, buf, sizeof(buf));
	if (!buf[0])
		return dflt;
	long long v = strtoll(buf, &end, 10);
	return *end ? dflt : v;
}

/* ---- one alert ------------------------------------------------------------ */

/* What identifies the document's camera and channel. */
struct alert {
	const struct fg_msg *msg;
	xmlNode *root;
	char camera[96];
	char channel[16];          /* "1", "D1" */
	char type[48], state[16], date[48], count[24], channel_name[TEXT_MAX], ip[64];
	int64_t device_time_ms;
	bool retransmission;
};

static bool looks_like_mac(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' && s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	return strcmp(s, "00:00:00:00:00:00") != 0;
}

static int read_alert(struct hik *k, fg_decode_ctx *ctx, struct alert *a)
{
	char buf[TEXT_MAX];
	xmlNode *r = a->root;
	child_text(r, "eventType", a->type, sizeof(a->type));
	child_text(r, "eventState", a->state, sizeof(a->state));
	child_text(r, "dateTime", a->date, sizeof(a->date));
	child_text(r, "activePostCount", a->count, sizeof(a->count));
	child_text(r, "channelName", a->channel_name, sizeof(a->channel_name));
	child_text(r, "ipAddress", a->ip, sizeof(a->ip));
	if (!a->type[0]) {
		k->host->fail(ctx, "EventNotificationAlert without eventType");
		return -EPROTO;
	}
	a->retransmission = strcasecmp(child_text(r, "isDataRetransmission", buf, sizeof(buf)),
	                               "true") == 0;
	int64_t t;
	a->device_time_ms = a->date[0] && pu_parse_iso_time(a->date, &t) == 0 && t > 0 ? t : 0;

	const char *mac = child_text(r, "macAddress", buf, sizeof(buf));
	char serial[TEXT_MAX], port[16];
	if (looks_like_mac(mac)) {
		for (int i = 0; i < 17; i++)
			a->camera[i] = mac[i] == '-' ? ':' : (char)(mac[i] | 0x20);
		a->camera[17] = '\0';
	} else if (child_text(r, "serialNumber", serial, sizeof(serial))[0] && !strchr(serial, '/')) {
		snprintf(a->camera, sizeof(a->camera), "%.95s", serial);
	} else if (a->ip[0] && !strchr(a->ip, '/') && strcmp(a->ip, "0.0.0.0") != 0) {
		child_text(r, "portNo", port, sizeof(port));
		if (port[0] && strcmp(port, "80") != 0 && strspn(port, "0123456789") == strlen(port))
			snprintf(a->camera, sizeof(a->camera), "%.63s:%s", a->ip, port);
		else
			snprintf(a->camera, sizeof(a->camera), "%.63s", a->ip);
	} else {
		const char *peer = pc_header(a->msg, "x-firegrid-peer");
		if (!peer || !peer[0] || strchr(peer, '/') || strlen(peer) >= sizeof(a->camera)) {
			k->host->fail(ctx, "no camera identity: no macAddress, serialNumber or ipAddress, "
			              "and no peer address");
			return -EPROTO;
		}
		snprintf(a->camera, sizeof(a->camera), "%s", peer);
	}
	long long ch = child_int(r, "channelID", -1);
	if (ch < 0)
		ch = child_int(r, "dynChannelID", 1);
	long long base = k->cfg->nvr_channel_base;
	if (ch < 0 || ch > 100000)
		ch = 1;
	if (base > 0 && ch > base)
		snprintf(a->channel, sizeof(a->channel), "D%lld", ch - base);
	else
		snprintf(a->channel, sizeof(a->channel), "%lld", ch);
	return 0;
}

/* The pictures the host stored from this message, as a JSON array. */
static json_t *snapshots_of(const struct fg_msg *msg)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && msg->headers && i < msg->n_headers && json_array_size(arr) < 4;
	     i++) {
		if (!msg->headers[i].name || strcasecmp(msg->headers[i].name, "x-firegrid-snapshot") ||
		    !msg->headers[i].value)
			continue;
		json_t *o = json_loads(msg->headers[i].value, 0, NULL);
		if (json_is_object(o) && json_is_string(json_object_get(o, "sha256")))
			json_array_append_new(arr, o);
		else
			json_decref(o);
	}
	return arr;
}

/* Store a JSON value in state (bounded: dropped when over the limit). */
static void state_json(struct hik *k, fg_decode_ctx *ctx, const char *dev, const char *key,
                       json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	if (!s || strlen(s) > 1024) {
		free(s);
		s = NULL;
	}
	k->host->state_set(ctx, dev, key, s);
	free(s);
}

static json_t *state_json_get(struct hik *k, fg_decode_ctx *ctx, const char *dev, const char *key)
{
	const char *s = k->host->state_get(ctx, dev, key);
	return s ? json_loads(s, 0, NULL) : NULL;
}

/* The camera/channel device of a lane device "<camera>/<channel>/regionN". */
static void channel_of(const char *lane, char *buf, size_t len)
{
	const char *slash = strrchr(lane, '/');
	size_t n = slash ? (size_t)(slash - lane) : 0;
	if (n >= len)
		n = len - 1;
	memcpy(buf, lane, n);
	buf[n] = '\0';
}

/* Add or remove a lane in its channel's list of blocked lanes. */
static void channel_lanes_set(struct hik *k, fg_decode_ctx *ctx, const char *lane, bool blocked)
{
	char chdev[128], list[1024] = "";
	channel_of(lane, chdev, sizeof(chdev));
	const char *slash = strrchr(lane, '/'), *name = slash ? slash + 1 : lane;
	const char *old = k->host->state_get(ctx, chdev, "lanes");
	size_t used = 0, nl = strlen(name);
	for (const char *p = old ? old : ""; *p;) {
		size_t w = strcspn(p, " ");
		if (w && !(w == nl && strncmp(p, name, nl) == 0) && used + w + 2 < sizeof(list)) {
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%.*s",
			                         used ? " " : "", (int)w, p);
		}
		p += w + (p[w] == ' ');
	}
	if (blocked && used + nl + 2 < sizeof(list))
		snprintf(list + used, sizeof(list) - used, "%s%s", used ? " " : "", name);
	k->host->state_set(ctx, chdev, "lanes", list[0] ? list : NULL);
}

/* The attrs of a blocked lane's event (and of its updates) into a, and its
 * facts (plate and number of vehicles) into facts.  The channel's plate
 * counts when read within plate_window; a lane keeps the plate it was
 * reported with, so that later updates still carry it. */
static void blocked_attrs(struct hik *k, fg_decode_ctx *ctx, const struct pl_lane *ln,
                          int64_t now, json_t *a, char *facts, size_t facts_len)
{
	const struct pl_occupant *o = pl_lane_first(ln);
	if (o)
		json_object_set_new(a, "dwell_s", json_integer((json_int_t)((now - o->since_ms) / 1000)));
	const char *nv = k->host->state_get(ctx, ln->device, "vehicles");
	int vehicles = nv ? atoi(nv) : 1;
	json_object_set_new(a, "vehicles", json_integer(vehicles));
	json_t *snaps = state_json_get(k, ctx, ln->device, "snapshots");
	if (json_array_size(snaps))
		json_object_set_new(a, "snapshots", snaps);
	else
		json_decref(snaps);
	char chdev[128];
	channel_of(ln->device, chdev, sizeof(chdev));
	json_t *plate = state_json_get(k, ctx, chdev, "plate");
	json_t *at = json_object_get(plate, "at_ms");
	if (json_is_integer(at) && now - json_integer_value(at) <= k->cfg->plate_window_ms) {
		json_object_del(plate, "at_ms");
		state_json(k, ctx, ln->device, "plate", plate);
	} else {
		json_decref(plate);
		plate = state_json_get(k, ctx, ln->device, "plate");
	}
	if (json_is_object(plate))
		json_object_update(a, plate);
	const char *text = json_string_value(json_object_get(plate, "plate"));
	snprintf(facts, facts_len, "%d|%s", vehicles, text ? text : "");
	json_decref(plate);
}

/* Emit a lane change.  time_ms is the post's device time (0 on wake-ups).
 * PL_UPDATED: the lane is blocked and its plate or vehicles may have
 * changed; emitted only when they did. */
static void lane_emit(struct hik *k, fg_decode_ctx *ctx, const struct pl_lane *ln,
                      enum pl_change c, int64_t now, int64_t time_ms)
{
	if (c == PL_NONE || (c == PL_UPDATED && !ln->blocked_ms))
		return;
	json_t *a = state_json_get(k, ctx, ln->device, "meta");
	if (!json_is_object(a)) {
		json_decref(a);
		a = json_object();
	}
	if (!a)
		return;
	char facts[96] = "";
	if (c != PL_CLEARED) {
		blocked_attrs(k, ctx, ln, now, a, facts, sizeof(facts));
	} else {
		const char *why = ln->clear_reason ? ln->clear_reason : "silence";
		json_object_set_new(a, "verified", json_boolean(strcmp(why, "inactive") == 0));
		json_object_set_new(a, "reason", json_string(why));
	}
	bool changed = c != PL_CLEARED && pl_lane_facts_changed(k->host, ctx, ln->device, facts);
	char *attrs = pu_attrs_text(a);
	if (c != PL_UPDATED || changed)
		pu_emit(k->host, ctx, ln->device,
		        c == PL_CLEARED ? FG_KIND_FIRE_LANE_CLEARED : FG_KIND_FIRE_LANE_BLOCKED,
		        FG_KIND_NONE, time_ms, attrs);
	free(attrs);
	if (c == PL_BLOCKED)
		channel_lanes_set(k, ctx, ln->device, true);
	if (c == PL_CLEARED) {
		k->host->state_set(ctx, ln->device, "snapshots", NULL);
		k->host->state_set(ctx, ln->device, "vehicles", NULL);
		k->host->state_set(ctx, ln->device, "plate", NULL);
		pl_lane_facts_changed(k->host, ctx, ln->device, NULL);
		channel_lanes_set(k, ctx, ln->device, false);
	}
}

/* Does region `region` of the alert's camera/channel count as a lane? */
static bool lane_region(struct hik *k, const struct alert *a, long long region)
{
	const char *list = k->cfg->lane_regions;
	if (!list || !list[0])
		return true;
	char plain[24], scoped[160];
	snprintf(plain, sizeof(plain), "%lld", region);
	snprintf(scoped, sizeof(scoped), "%s/%s#%lld", a->camera, a->channel, region);
	return pu_list_has(list, plain, 0) || pu_list_has(list, scoped, 0);
}

static void lane_alert(struct hik *k, fg_decode_ctx *ctx, struct alert *a, int64_t now)
{
	xmlNode *list = child(a->root, "DetectionRegionList");
	bool active = strcasecmp(a->state, "active") == 0;
	/* Regions with a vehicle, and how many vehicle entries each has. */
	long long regions[16];
	int counts[16], n = 0;
	for (xmlNode *e = list ? list->children : NULL; e; e = e->next) {
		if (!named(e, "DetectionRegionEntry"))
			continue;
		char target[48];
		long long region = child_int(e, "regionID", -1);
		child_text(e, "detectionTarget", target, sizeof(target));
		if (region < 0 || !lane_region(k, a, region))
			continue;
		if (target[0] ? !pu_list_has(k->cfg->targets, target, 0) : !k->cfg->untargeted)
			continue;
		int j = 0;
		while (j < n && regions[j] != region)
			j++;
		if (j == n && n < 16) {
			regions[n] = region;
			counts[n++] = 0;
		}
		if (j < n)
			counts[j]++;
	}
	for (int i = 0; i < n; i++) {
		char dev[160];
		snprintf(dev, sizeof(dev), "%s/%s/region%lld", a->camera, a->channel, regions[i]);
		struct pl_lane ln;
		pl_lane_load(k->host, ctx, dev, &ln);
		if (!active) {
			pl_lane_remove(&ln, OCCUPANT, "inactive");
		} else {
			char post[96];
			snprintf(post, sizeof(post), "%s|%s", a->date, a->count);
			const char *last = k->host->state_get(ctx, dev, "post");
			bool repeat = a->retransmission || (a->count[0] && last && strcmp(last, post) == 0);
			if (!repeat) {
				k->host->state_set(ctx, dev, "post", post);
				pl_lane_touch(&ln, OCCUPANT, now, now, "vehicle");
				json_t *meta = json_pack("{s:s,s:s,s:I,s:s}", "camera", a->camera,
				                         "channel", a->channel, "region",
				                         (json_int_t)regions[i], "event", a->type);
				if (meta && a->channel_name[0])
					json_object_set_new(meta, "channel_name", json_string(a->channel_name));
				if (meta && a->ip[0])
					json_object_set_new(meta, "ip", json_string(a->ip));
				state_json(k, ctx, dev, "meta", meta);
				json_decref(meta);
				char nv[12];
				snprintf(nv, sizeof(nv), "%d", counts[i]);
				k->host->state_set(ctx, dev, "vehicles", nv);
				json_t *snaps = snapshots_of(a->msg);
				if (json_array_size(snaps))
					state_json(k, ctx, dev, "snapshots", snaps);
				json_decref(snaps);
			}
		}
		enum pl_change c = pl_lane_settle(&ln, now, k->cfg->dwell_ms);
		/* a new post to a blocked lane may bring another number of vehicles */
		lane_emit(k, ctx, &ln, c == PL_NONE && active ? PL_UPDATED : c, now,
		          a->device_time_ms);
		pl_lane_save(k->host, ctx, &ln, k->cfg->dwell_ms, k->cfg->clear_after_ms);
	}
}

static void anpr_alert(struct hik *k, fg_decode_ctx *ctx, struct alert *a, int64_t now)
{
	xmlNode *anpr = child(a->root, "ANPR");
	char plate[64], chars[128];
	child_text(anpr, "licensePlate", plate, sizeof(plate));
	if (!plate[0] || strcasecmp(plate, "unknown") == 0 || a->retransmission)
		return;
	long long conf = child_int(anpr, "confidenceLevel", -1);
	long long low = conf;
	child_text(anpr, "plateCharBelieve", chars, sizeof(chars));
	for (char *save = NULL, *t = strtok_r(chars, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		long long c = strtoll(t, NULL, 10);
		if (low < 0 || c < low)
			low = c;
	}
	json_t *p = json_pack("{s:s,s:I}", "plate", plate, "at_ms", (json_int_t)now);
	if (p && conf >= 0)
		json_object_set_new(p, "plate_confidence", json_integer(conf));
	if (p)
		json_object_set_new(p, "plate_low_confidence",
		                    json_boolean(low < 0 || low < k->cfg->plate_min_confidence));
	json_t *snaps = snapshots_of(a->msg);
	if (p && json_array_size(snaps))
		json_object_set(p, "plate_snapshots", snaps);
	json_decref(snaps);
	char chdev[128];
	snprintf(chdev, sizeof(chdev), "%s/%s", a->camera, a->channel);
	state_json(k, ctx, chdev, "plate", p);
	json_decref(p);

	/* Lanes of the channel already blocked: the plate is news for them. */
	char lanes[1024];
	const char *l = k->host->state_get(ctx, chdev, "lanes");
	snprintf(lanes, sizeof(lanes), "%s", l ? l : "");
	for (char *save = NULL, *t = strtok_r(lanes, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char dev[256];
		snprintf(dev, sizeof(dev), "%s/%s", chdev, t);
		struct pl_lane ln;
		pl_lane_load(k->host, ctx, dev, &ln);
		lane_emit(k, ctx, &ln, PL_UPDATED, now, a->device_time_ms);
	}
}

static void io_alert(struct hik *k, fg_decode_ctx *ctx, struct alert *a, int64_t now)
{
	long long port = child_int(a->root, "inputIOPortID", -1);
	if (port < 0)
		port = child_int(a->root, "dynInputIOPortID", -1);
	char key[24], mapped[48] = "";
	snprintf(key, sizeof(key), "%lld:", port);
	for (const char *p = k->cfg->io_inputs ? k->cfg->io_inputs : ""; *p && port >= 0;) {
		p += strspn(p, ", \t");
		size_t w = strcspn(p, ", \t");
		if (w > strlen(key) && w < sizeof(mapped) && strncmp(p, key, strlen(key)) == 0)
			snprintf(mapped, sizeof(mapped), "%.*s", (int)(w - strlen(key)), p + strlen(key));
		p += w;
	}
	fg_kind kind = kind_named(mapped);
	if (kind == FG_KIND_NONE || a->retransmission)
		return;
	char dev[160];
	snprintf(dev, sizeof(dev), "%s/%s/io%lld", a->camera, a->channel, port);
	bool active = strcasecmp(a->state, "active") == 0;
	json_t *at = json_pack("{s:s,s:s,s:I}", "camera", a->camera, "channel", a->channel, "input",
	                       (json_int_t)port);
	if (at && !active)
		json_object_set_new(at, "reason", json_string("inactive"));
	char *attrs = pu_attrs_text(at);
	enum pu_edge e = pu_edge(k->host, ctx, dev, mapped, active);
	if (e == PU_EDGE_RISE)
		pu_emit(k->host, ctx, dev, kind, FG_KIND_NONE, a->device_time_ms, attrs);
	else if (e == PU_EDGE_FALL)
		pu_emit(k->host, ctx, dev, FG_KIND_CLEAR, kind, a->device_time_ms, attrs);
	free(attrs);
	k->host->state_set(ctx, dev, "kind", active ? mapped : NULL);
	if (FG_HOST_HAS_WAKE_AT(k->host))
		k->host->wake_at(ctx, dev, active ? now + k->cfg->io_clear_after_ms : 0);
}

static int one_alert(struct hik *k, const struct fg_msg *msg, fg_decode_ctx *ctx, xmlNode *root)
{
	struct alert a;
	memset(&a, 0, sizeof(a));
	a.msg = msg;
	a.root = root;
	int r = read_alert(k, ctx, &a);
	if (r < 0)
		return r;
	int64_t now = msg->recv_time_ms;
	char online[96];
	snprintf(online, sizeof(online), "{\"ip\":\"%.60s\"}", strchr(a.ip, '"') ? "" : a.ip);
	pc_camera_seen(k->host, ctx, a.camera, now, k->cfg->offline_after_ms, online);
	if (strcasecmp(a.type, "videoloss") == 0 && strcasecmp(a.state, "inactive") == 0)
		return 0;                              /* alertStream heartbeat */
	if (pu_list_has(k->cfg->lane_events, a.type, 0))
		lane_alert(k, ctx, &a, now);
	else if (strcasecmp(a.type, "ANPR") == 0)
		anpr_alert(k, ctx, &a, now);
	else if (strcasecmp(a.type, "IO") == 0)
		io_alert(k, ctx, &a, now);
	return 0;                                  /* VMD and the rest: not ours */
}

/* Parse one XML document and handle its alert. */
static int one_document(struct hik *k, const struct fg_msg *msg, fg_decode_ctx *ctx,
                        const uint8_t *p, size_t n)
{
	if (n > MAX_XML) {
		k->host->fail(ctx, "XML document of %zu bytes exceeds the %d-byte limit", n, MAX_XML);
		return -E2BIG;
	}
	xmlParserCtxtPtr pc = xmlNewParserCtxt();
	if (!pc)
		return -ENOMEM;
	/* No network, no entity substitution (XML_PARSE_NOENT unset), and a
	 * document with a DTD is refused below: camera alerts never have one. */
	xmlDocPtr doc = xmlCtxtReadMemory(pc, (const char *)p, (int)n, NULL, NULL,
	                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	int r = 0;
	if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(pc);
		char why[160];
		snprintf(why, sizeof(why), "%s", e && e->message ? e->message : "unknown error");
		size_t l = strlen(why);
		while (l && (why[l - 1] == '\n' || why[l - 1] == ' '))
			why[--l] = '\0';
		k->host->fail(ctx, "XML is not well-formed: %s (line %d)", why, e ? e->line : 0);
		r = -EINVAL;
	} else if (doc->intSubset || doc->extSubset) {
		k->host->fail(ctx, "XML with a document type declaration is refused");
		r = -EINVAL;
	} else {
		xmlNode *root = xmlDocGetRootElement(doc);
		if (!named(root, "EventNotificationAlert")) {
			k->host->fail(ctx, "XML root is <%s>, expected <EventNotificationAlert>",
			              root && root->name ? (const char *)root->name : "");
			r = -EPROTO;
		} else {
			r = one_alert(k, msg, ctx, root);
		}
	}
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(pc);
	return r;
}

static bool xml_like(const uint8_t *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == 0xef ||
	             *p == 0xbb || *p == 0xbf)) {
		p++;
		n--;
	}
	return n && *p == '<';
}

/* A multipart body: every XML part is one alert. */
static int multipart(struct hik *k, const struct fg_msg *msg, fg_decode_ctx *ctx,
                     const char *boundary)
{
	size_t off = 0, used;
	int docs = 0, r = 0, parts = 0;
	struct mp_part part;
	while (r == 0 && (r = mp_next(msg->payload + off, msg->len - off, boundary, true, &part,
	                              &used)) == 1) {
		off += used;
		r = 0;
		parts++;
		size_t cl;
		const char *ct = mp_header(&part, "content-type", &cl);
		bool xml = ct ? mp_type_is(ct, cl, "application/xml") || mp_type_is(ct, cl, "text/xml")
		              : xml_like(part.body, part.body_len);
		if (!xml)
			continue;
		if (++docs > MAX_DOCS) {
			k->host->fail(ctx, "more than %d XML parts in one body", MAX_DOCS);
			return -E2BIG;
		}
		r = one_document(k, msg, ctx, part.body, part.body_len);
		if (!used)
			break;
	}
	if (r == -EBADMSG) {
		k->host->fail(ctx, "malformed multipart body (boundary \"%s\") after %d part(s)",
		              boundary, parts);
		return -EINVAL;
	}
	if (r < 0)
		return r;
	if (!docs) {
		k->host->fail(ctx, "multipart body with %d part(s) and no XML part", parts);
		return -EPROTO;
	}
	return 0;
}

/* ---- wake-ups ------------------------------------------------------------ */

static int hik_wake(struct hik *k, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	const char *dev = msg->topic, *slash = strrchr(dev, '/');
	int64_t now = msg->recv_time_ms;
	if (!slash) {
		pc_camera_wake(k->host, ctx, dev, now, k->cfg->offline_after_ms);
		return 0;
	}
	if (strncmp(slash + 1, "region", 6) == 0) {
		struct pl_lane ln;
		pl_lane_load(k->host, ctx, dev, &ln);
		pl_lane_expire(&ln, now, k->cfg->clear_after_ms);
		enum pl_change c = pl_lane_settle(&ln, now, k->cfg->dwell_ms);
		lane_emit(k, ctx, &ln, c, now, 0);
		pl_lane_save(k->host, ctx, &ln, k->cfg->dwell_ms, k->cfg->clear_after_ms);
	} else if (strncmp(slash + 1, "io", 2) == 0) {
		const char *kind = k->host->state_get(ctx, dev, "kind");
		fg_kind kd = kind ? kind_named(kind) : FG_KIND_NONE;
		if (kd == FG_KIND_NONE)
			return 0;
		char kn[48];
		snprintf(kn, sizeof(kn), "%s", kind);
		if (pu_edge(k->host, ctx, dev, kn, 0) == PU_EDGE_FALL)
			pu_emit(k->host, ctx, dev, FG_KIND_CLEAR, kd, 0, "{\"reason\":\"silence\"}");
		k->host->state_set(ctx, dev, "kind", NULL);
	}
	return 0;
}

static int hik_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct hik *k = state;
	if (strcmp(msg->transport, FG_TRANSPORT_WAKE) == 0)
		return hik_wake(k, msg, ctx);
	if (msg->len > MAX_BODY) {
		k->host->fail(ctx, "body of %zu bytes exceeds the %d-byte limit", msg->len, MAX_BODY);
		return -E2BIG;
	}
	if (!msg->len) {
		k->host->fail(ctx, "empty body");
		return -EINVAL;
	}
	const char *ct = pc_header(msg, "content-type");
	char boundary[MP_BOUNDARY_MAX + 1];
	if (ct && mp_type_is(ct, strlen(ct), "multipart/*")) {
		if (mp_boundary(ct, boundary, sizeof(boundary)) < 0) {
			k->host->fail(ctx, "multipart Content-Type without a usable boundary");
			return -EINVAL;
		}
		return multipart(k, msg, ctx, boundary);
	}
	/* No Content-Type (a file, a sloppy firmware): a body that starts with
	 * a delimiter line is multipart with that boundary. */
	if (!ct && mp_boundary_sniff(msg->payload, msg->len, boundary, sizeof(boundary)) == 0)
		return multipart(k, msg, ctx, boundary);
	return one_document(k, msg, ctx, msg->payload, msg->len);
}

FG_PLUGIN_DEFINE(hikvision, .name = "hikvision", .version = "1.0",
	.description = "Hikvision ISAPI alerts: vehicles in fire-lane regions (intrusion), ANPR "
	               "plates, alarm inputs, heartbeats; XML or multipart with pictures",
	.options = hik_options, .config_size = sizeof(struct hik_config),
	.init = hik_init, .fini = hik_fini, .decode = hik_decode);
