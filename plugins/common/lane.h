/*
 * Fire-lane presence with dwell confirmation, shared by the camera plugins
 * (frigate, hikvision, dahua).  Header-only, like plugin_util.h.
 *
 * A lane is one device id (e.g. "<camera>/<zone>"): the unit of one
 * incident.  Its occupants are whatever the camera tracks in it (Frigate
 * object ids, a Hikvision region that keeps alarming, a Dahua parking rule),
 * each with the time it arrived (`since`) and the last time it was seen
 * (`last`), in the host's clock (epoch ms).  The lane is
 *
 *   blocked  once an occupant has stayed `dwell` (fire_lane_blocked, once),
 *   cleared  when the last occupant has gone: left, ended, or silent for
 *            `silence` (sources without end messages; 0 = never silent).
 *
 * Everything lives in host state of the lane device, so it survives
 * restarts and commits with the message's events:
 *   "occ"      one line per occupant: "<id>\t<since>\t<last>\t<info>"
 *   "blocked"  the time the lane became blocked, absent when it is not
 *   "facts"    what the centre was told while blocked (pl_lane_facts_changed)
 * and one wake-up (fg_host.wake_at) at the next time something can change:
 * an occupant reaching the dwell, one falling silent, or `recheck_at`.
 *
 * Use:
 *   struct pl_lane ln;
 *   pl_lane_load(h, ctx, device, &ln);
 *   pl_lane_touch(&ln, id, since, now, info) / pl_lane_remove(&ln, id, why);
 *   switch (pl_lane_settle(&ln, now, dwell, silence)) { emit blocked/cleared }
 *   pl_lane_save(h, ctx, &ln, dwell, silence);
 */
#ifndef FG_PLUGIN_LANE_H
#define FG_PLUGIN_LANE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"

#define PL_LANE_MAX 8              /* occupants tracked per lane (state value <= 1 KiB) */
#define PL_ID_MAX 64
#define PL_INFO_MAX 24

struct pl_occupant {
	char id[PL_ID_MAX];
	int64_t since_ms, last_ms;
	char info[PL_INFO_MAX];    /* plugin's note, e.g. the object label */
};

struct pl_lane {
	char device[256];
	struct pl_occupant occ[PL_LANE_MAX];
	size_t n;
	int64_t blocked_ms;        /* 0 = not blocked */
	int64_t recheck_at_ms;     /* an extra wake-up the plugin wants (0 = none) */
	const char *clear_reason;  /* why the last occupant went (static string) */
	int dropped;               /* occupants not tracked: the lane was full */
};

/* Text of one field up to a tab (fields never contain tabs: they are
 * replaced when stored). */
static __attribute__((unused)) void pl__copy_field(char *dst, size_t len, const char *src)
{
	size_t n = 0;
	for (; src[n] && n + 1 < len; n++)
		dst[n] = (src[n] == '\t' || src[n] == '\n') ? ' ' : src[n];
	dst[n] = '\0';
}

static __attribute__((unused)) void pl_lane_load(const struct fg_host *h, fg_decode_ctx *ctx,
                                                 const char *device, struct pl_lane *ln)
{
	memset(ln, 0, sizeof(*ln));
	pl__copy_field(ln->device, sizeof(ln->device), device);
	const char *b = h->state_get(ctx, device, "blocked");
	ln->blocked_ms = b ? strtoll(b, NULL, 10) : 0;
	if (b && ln->blocked_ms <= 0)
		ln->blocked_ms = 1;          /* unreadable, but blocked all the same */
	const char *p = h->state_get(ctx, device, "occ");
	while (p && *p && ln->n < PL_LANE_MAX) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char line[PL_ID_MAX + PL_INFO_MAX + 64];
		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
			char *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
			if (t1 && t2 && t3) {
				struct pl_occupant *o = &ln->occ[ln->n];
				*t1 = *t2 = *t3 = '\0';
				pl__copy_field(o->id, sizeof(o->id), line);
				o->since_ms = strtoll(t1 + 1, NULL, 10);
				o->last_ms = strtoll(t2 + 1, NULL, 10);
				pl__copy_field(o->info, sizeof(o->info), t3 + 1);
				if (o->id[0] && o->since_ms > 0 && o->last_ms > 0)
					ln->n++;
			}
		}
		p = end ? end + 1 : NULL;
	}
}

static __attribute__((unused)) struct pl_occupant *pl_lane_find(struct pl_lane *ln,
                                                                const char *id)
{
	for (size_t i = 0; i < ln->n; i++)
		if (strncmp(ln->occ[i].id, id, PL_ID_MAX - 1) == 0)
			return &ln->occ[i];
	return NULL;
}

/* Occupant `id` is in the lane at now_ms; it arrived at since_ms when it is
 * new (later since_ms of a known occupant are ignored: arrival only ever
 * moves earlier, with better knowledge).  Returns the occupant, or NULL
 * when the lane is full (counted in ln->dropped). */
static __attribute__((unused)) struct pl_occupant *
pl_lane_touch(struct pl_lane *ln, const char *id, int64_t since_ms, int64_t now_ms,
              const char *info)
{
	struct pl_occupant *o = pl_lane_find(ln, id);
	if (!o) {
		if (ln->n == PL_LANE_MAX) {
			ln->dropped++;
			return NULL;
		}
		o = &ln->occ[ln->n++];
		memset(o, 0, sizeof(*o));
		pl__copy_field(o->id, sizeof(o->id), id);
		o->since_ms = since_ms > 0 && since_ms <= now_ms ? since_ms : now_ms;
	} else if (since_ms > 0 && since_ms < o->since_ms) {
		o->since_ms = since_ms;
	}
	if (now_ms > o->last_ms)
		o->last_ms = now_ms;
	if (info)
		pl__copy_field(o->info, sizeof(o->info), info);
	return o;
}

/* Occupant `id` has gone; `why` (a static string) explains a clear. */
static __attribute__((unused)) int pl_lane_remove(struct pl_lane *ln, const char *id,
                                                  const char *why)
{
	struct pl_occupant *o = pl_lane_find(ln, id);
	if (!o)
		return 0;
	*o = ln->occ[--ln->n];
	ln->clear_reason = why;
	return 1;
}

/* Occupants not seen for `silence` ms are gone (reason "silence"). */
static __attribute__((unused)) int pl_lane_expire(struct pl_lane *ln, int64_t now_ms,
                                                  int64_t silence_ms)
{
	int n = 0;
	for (size_t i = 0; silence_ms > 0 && i < ln->n;) {
		if (ln->occ[i].last_ms + silence_ms <= now_ms) {
			ln->occ[i] = ln->occ[--ln->n];
			ln->clear_reason = "silence";
			n++;
		} else {
			i++;
		}
	}
	return n;
}

/* The occupant that arrived first (NULL when empty). */
static __attribute__((unused)) const struct pl_occupant *pl_lane_first(const struct pl_lane *ln)
{
	const struct pl_occupant *f = NULL;
	for (size_t i = 0; i < ln->n; i++)
		if (!f || ln->occ[i].since_ms < f->since_ms)
			f = &ln->occ[i];
	return f;
}

/* PL_UPDATED is never returned by pl_lane_settle: a plugin uses it for a
 * blocked lane whose reported facts may have changed (pl_lane_facts_changed). */
enum pl_change { PL_NONE = 0, PL_BLOCKED, PL_CLEARED, PL_UPDATED };

/* Decide what the lane's occupants mean at now_ms and update blocked_ms.
 * PL_BLOCKED once the first occupant has stayed dwell_ms; PL_CLEARED when a
 * blocked lane is empty; otherwise PL_NONE (repeats, periodic updates). */
static __attribute__((unused)) enum pl_change pl_lane_settle(struct pl_lane *ln, int64_t now_ms,
                                                             int64_t dwell_ms)
{
	if (ln->blocked_ms) {
		if (ln->n)
			return PL_NONE;
		ln->blocked_ms = 0;
		return PL_CLEARED;
	}
	const struct pl_occupant *f = pl_lane_first(ln);
	if (f && now_ms - f->since_ms >= dwell_ms) {
		ln->blocked_ms = now_ms;
		return PL_BLOCKED;
	}
	return PL_NONE;
}

/*
 * What the operations centre was told about a blocked lane: a short text
 * the plugin makes of the attributes that matter (plate, number of
 * vehicles), kept as "facts" in the lane's state.  Returns true, and
 * remembers `facts`, when they differ from the last ones: then the plugin
 * emits fire_lane_blocked again with the new attrs, which the host makes an
 * `updated` revision of the open incident.  Retransmissions and periodic
 * posts with the same facts return false: nothing is re-sent.  Call it for
 * the blocked event itself too (so the first update compares against it),
 * and with facts NULL when the lane clears (forgets them; returns false).
 */
static __attribute__((unused)) bool pl_lane_facts_changed(const struct fg_host *h,
                                                          fg_decode_ctx *ctx,
                                                          const char *device, const char *facts)
{
	const char *old = h->state_get(ctx, device, "facts");
	if (!facts) {
		if (old)
			h->state_set(ctx, device, "facts", NULL);
		return false;
	}
	if (old && strcmp(old, facts) == 0)
		return false;
	h->state_set(ctx, device, "facts", facts);
	return true;
}

/* Write the lane back and ask for a wake-up at its next possible change. */
static __attribute__((unused)) int pl_lane_save(const struct fg_host *h, fg_decode_ctx *ctx,
                                                const struct pl_lane *ln, int64_t dwell_ms,
                                                int64_t silence_ms)
{
	char occ[1024] = "", b[24];
	size_t used = 0;
	int64_t next = ln->recheck_at_ms > 0 ? ln->recheck_at_ms : INT64_MAX;
	for (size_t i = 0; i < ln->n; i++) {
		const struct pl_occupant *o = &ln->occ[i];
		int w = snprintf(occ + used, sizeof(occ) - used, "%s%s\t%lld\t%lld\t%s",
		                 used ? "\n" : "", o->id, (long long)o->since_ms,
		                 (long long)o->last_ms, o->info);
		if (w < 0 || (size_t)w >= sizeof(occ) - used) {
			occ[used] = '\0';
			break;
		}
		used += (size_t)w;
		if (silence_ms > 0 && o->last_ms + silence_ms < next)
			next = o->last_ms + silence_ms;
		if (!ln->blocked_ms && o->since_ms + dwell_ms < next)
			next = o->since_ms + dwell_ms;
	}
	snprintf(b, sizeof(b), "%lld", (long long)ln->blocked_ms);
	int r = h->state_set(ctx, ln->device, "occ", used ? occ : NULL);
	int r2 = h->state_set(ctx, ln->device, "blocked", ln->blocked_ms ? b : NULL);
	if (FG_HOST_HAS_WAKE_AT(h))
		h->wake_at(ctx, ln->device, next == INT64_MAX ? 0 : next);
	return r < 0 ? r : r2;
}

#endif
