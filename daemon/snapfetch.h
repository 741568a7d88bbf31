/*
 * Snapshot fetches: pictures that cameras serve rather than push (Frigate's
 * GET <api_url>/api/events/<id>/snapshot.jpg), fetched with libcurl on the
 * loop (curluv.h) and attached to the incident their event opened.
 *
 * A plugin names the picture of an event in fg_event.snapshot_url; when the
 * event opens an incident (or re-alarms or reopens one), ingest hands it
 * here.  The incident is already stored and on its way: a picture never
 * delays it, and a failed fetch never loses it.
 *
 *   fetch     GET, no redirects beyond 3, http/https only, the whole
 *             transfer within [snapshots] fetch_timeout; a body over
 *             max_image_bytes is cut off and refused
 *   store     fg_snapshots_put: the same checks, quota and counters as a
 *             pushed picture (firegrid_snapshots_rejected_total{reason})
 *   attach    the picture joins the incident's attrs.snapshots
 *             ({"sha256","url","type","bytes","name"}), which every later
 *             revision carries as data.incident.snapshots; if the incident
 *             was already reported (its report is not held back) a revision
 *             "updated" goes out at once (history note "snapshot attached"),
 *             so the center has the picture within seconds, not at the next
 *             change.  A held report (fire_lane_hold) simply carries it when
 *             released.  A closed incident, or one that is gone (its
 *             transaction rolled back), keeps nothing.
 *   retry     timeouts, network errors, 404 (Frigate may not have written
 *             the event yet), 408, 429 and 5xx are tried again, up to
 *             fetch_attempts in all, after a full-jitter backoff from
 *             fetch_retry (doubling); other statuses and bodies that are
 *             not a JPEG/PNG are final.
 *
 * Counter firegrid_snapshot_fetch_total{result}: one per attempt, "ok",
 * "timeout", "network", "http_error", "not_an_image", "too_large", "error";
 * plus one per picture that is not attached: "gave_up" (attempts spent),
 * "dropped" (more than 64 waiting, shutdown, or the incident is gone).
 * Pending fetches are not persisted: a restart forgets them.
 *
 * Thread: loop thread only.
 */
#ifndef FG_SNAPFETCH_H
#define FG_SNAPFETCH_H

#include <stdint.h>
#include "conf.h"
#include "event.h"
#include "incident.h"
#include "snapshot.h"

struct uv_loop_s;
typedef struct fg_snapfetch fg_snapfetch;

/* conf must outlive it (or be replaced with fg_snapfetch_set_conf); snap and
 * inc must outlive it.  -ENOMEM, -EIO (curl). */
int fg_snapfetch_new(struct uv_loop_s *loop, const struct fg_conf *conf, fg_snapshots *snap,
                     fg_incidents *inc, fg_snapfetch **ret);
void fg_snapfetch_set_conf(fg_snapfetch *sf, const struct fg_conf *conf);

/* Fetch ev->snapshot_url for incident `incident_id`, which ev opened.
 * 0, or -ENOSPC (too many waiting) / -ENOMEM / -ECANCELED (closing), each
 * counted as "dropped".  NULL sf or a NULL URL: nothing, 0. */
int fg_snapfetch_add(fg_snapfetch *sf, int64_t incident_id, const struct fg_ev *ev);

/* Abandon the transfers (counted "dropped") and close every handle;
 * done(data) runs from the last close callback.  NULL-safe (done then
 * runs at once). */
void fg_snapfetch_close(fg_snapfetch *sf, void (*done)(void *data), void *data);
void fg_snapfetch_free(fg_snapfetch *sf);     /* once closed; NULL-safe */

#endif
