/*
 * Incidents: the dedupe/correlation core.  One incident per dedup key
 * ("<device>|<kind>") while it is not closed.
 *
 *   alarm kind, no open incident      -> new incident, state "open",
 *                                        revision 1, outbox "opened"
 *   alarm kind, open incident         -> count++, last_seen; no webhook
 *                                        (unless it was cleared: then the
 *                                        clear is undone, revision++, outbox
 *                                        "updated", history note "realarm";
 *                                        or its severity rises: revision++,
 *                                        outbox "updated", note "severity";
 *                                        or a revising attribute changed:
 *                                        fire_lane_blocked's plate or
 *                                        vehicles, revision++, outbox
 *                                        "updated", note "attrs plate: ...")
 *   clear/online/fire_lane_cleared    -> matching open incidents of the
 *                                        device get cleared_ms, revision++,
 *                                        outbox "cleared"; none open: nothing
 *                                        (clear ends ev->clears, or every
 *                                        active incident of the device when
 *                                        NONE; online ends offline;
 *                                        fire_lane_cleared ends
 *                                        fire_lane_blocked)
 *   test                              -> event recorded, never an incident
 *
 * Incident severity is the highest severity of its events; value, unit and
 * attrs follow the latest event that carried them.  Every state change and
 * revision appends an incident_history row (actor "<plugin>/<source>",
 * channel "device"; the first webhook acceptance: actor = sink name,
 * channel "webhook").
 *
 * Every event is recorded in `events` with the incident it touched, and the
 * device's first/last seen times in `devices`.  All of this runs inside the
 * store's group transaction (under a savepoint per event), so an event, its
 * incident change and its outbox rows commit together or not at all.
 */
#ifndef FG_INCIDENT_H
#define FG_INCIDENT_H

#include <stdint.h>
#include <jansson.h>
#include "event.h"
#include "store.h"

struct fg_outbox;

/* Incident states (issue: ops-center loop adds the transitions). */
#define FG_STATE_OPEN        "open"
#define FG_STATE_REPORTED    "reported"
#define FG_STATE_DISPATCHED  "dispatched"
#define FG_STATE_IN_PROGRESS "in_progress"
#define FG_STATE_RESOLVED    "resolved"
#define FG_STATE_CLOSED      "closed"
#define FG_STATE_RETURNED    "returned"
#define FG_STATE_REOPENED    "reopened"

/* A row of `incidents` as read back; strings owned by the struct's user
 * (filled by fg_incident_get into caller storage via fg_incident_free). */
struct fg_incident {
	int64_t id;
	char *dedup_key;
	char *device;
	char *source;
	char *plugin;
	fg_kind kind;
	fg_severity severity;
	char *state;
	int64_t revision;
	int64_t count;
	int64_t opened_ms;
	int64_t last_seen_ms;
	int64_t cleared_ms;        /* 0 = not cleared */
	int64_t closed_ms;         /* 0 = not closed */
	int64_t reported_ms;       /* 0 = no sink accepted it yet */
	int has_value;
	double value;
	char *unit;
	char *attrs_json;          /* attrs of the latest event, or NULL */

	/* The operations-center loop (schema v2; see lifecycle.h). */
	char *case_no;             /* the center's case number, or NULL */
	char *disposition;         /* set on close: real_fire, false_alarm, ... */
	char *dispatched_unit;     /* "unit" of the last dispatch, or NULL */
	int overdue;               /* a deadline passed (sticky until reopened) */
	int confirmed;             /* fire class: 0 until the double knock */
	int esc_level;             /* 0..3: small grid, medium, large, fire brigade */
	int64_t esc_due_ms;        /* next escalation, 0 = not escalating */
	int64_t deadline_ms;       /* the center's deadline, 0 = none */
	int64_t confirm_due_ms;    /* persistence check of an unconfirmed alarm */
	int64_t hold_until_ms;     /* report held back until then (0 = sent) */
	int64_t dispatched_ms;
	int64_t resolved_ms;
	int64_t reopened;          /* times reopened */
	char *site;                /* compound (registry) or source: storm grouping */
	int64_t parent_id;         /* site incident it is grouped under, 0 = none */

	/* Its device in the registry (registry.h), read with the incident:
	 * reg[FG_REG_*], NULL when absent; registered = 0 for an unknown
	 * device. */
	int registered;
	char *reg[13];
};

void fg_incident_clear(struct fg_incident *inc);   /* frees strings, NULL-safe */

typedef struct fg_incidents fg_incidents;

int fg_incidents_new(fg_store *st, struct fg_outbox *ob, fg_incidents **ret);
void fg_incidents_free(fg_incidents *inc);

/* What one event did, for counters and logs. */
enum fg_apply_result {
	FG_APPLY_RECORDED = 0,    /* stored as an event only (test, stray clear) */
	FG_APPLY_OPENED,          /* new incident */
	FG_APPLY_REPEAT,          /* folded into an open incident */
	FG_APPLY_REALARM,         /* re-alarm of a cleared, still-open incident */
	FG_APPLY_CLEARED,         /* cleared one or more incidents */
	FG_APPLY_REOPENED,        /* re-alarm of a resolved incident, or of a
	                             closed one within reopen_window */
};

/* Fold one event in (inside the current transaction; begins it if needed).
 * Returns an fg_apply_result (>= 0) or a negative errno (-EINVAL for an
 * event with no device, source or plugin or an unknown kind/severity;
 * nothing of a failed event is left in the transaction).
 * *ret_incident_id (may be NULL) gets the incident touched (the first one
 * for a clear of several), 0 if none; untouched on failure.  The event's
 * recv_time_ms is the time of record (0 = now). */
int fg_incidents_apply(fg_incidents *inc, const struct fg_ev *ev, int64_t *ret_incident_id);

/* A sink accepted a revision (2xx).  The first acceptance moves the incident
 * from open to reported and sets reported_ms (history row, actor = sink
 * name, channel "webhook"); later calls, or an unknown id, change nothing
 * and return 0.  Inside the group transaction (begins it). */
int fg_incidents_mark_reported(fg_incidents *inc, int64_t incident_id,
                               const char *sink, int64_t at_ms);

/* Lifecycle settings (reopen window, ...) from conf, which must outlive
 * the incidents or be replaced by another call.  Without a conf (NULL, the
 * default) incidents only ever open, fold and clear: nothing reopens. */
void fg_incidents_set_conf(fg_incidents *inc, const struct fg_conf *conf);

/* Offline reports of incidents opened before until_ms wait until then (and
 * are dropped if the device is back): firegridd just started, or the
 * broker link just came back. */
void fg_incidents_settle(fg_incidents *inc, int64_t until_ms);
int64_t fg_incidents_settle_until(fg_incidents *inc);

/* A sink accepted a revision: fg_incidents_mark_reported, and when the
 * response body is a JSON object with a string "case_no" and the incident
 * has none yet, keep it (later revisions carry it).  Inside the group
 * transaction. */
int fg_incidents_delivered(fg_incidents *inc, int64_t incident_id, const char *sink,
                           int64_t at_ms, const char *resp_body, size_t resp_len);

/* Read one incident by id into *ret (strings malloc'd: release with
 * fg_incident_clear): 0, -ENOENT, or -errno; *ret untouched on failure.
 * Works on a read-only store too. */
int fg_incident_get(fg_store *st, int64_t id, struct fg_incident *ret);

/* ---- shared with lifecycle.c and escalate.c -------------------------------- */

fg_store *fg_incidents_store(fg_incidents *inc);
/* NULL until fg_incidents_set_conf. */
const struct fg_conf *fg_incidents_conf(fg_incidents *inc);

/* Append a history row for the incident's current state and revision
 * (to_state and revision are read from the row). */
int fg_incident_history_add(fg_store *st, int64_t id, int64_t at_ms, const char *from_state,
                            const char *actor, const char *channel, const char *note);

/* Queue the incident's current revision for the sinks as `change`
 * (trigger may be NULL).  Nothing is queued while its report is held
 * (hold_until_ms), for an incident grouped under a site incident
 * (parent_id), or without an outbox.  0 or -errno. */
int fg_incidents_publish(fg_incidents *inc, int64_t id, const char *change,
                         const struct fg_ev *trigger, int64_t now_ms);

/* A revision of a live (not closed) incident made by something other than
 * its device or the operations center -- the local interlock saying what
 * it did: the revision goes up (as for every revision, not while the
 * report is held or the incident is grouped under a site incident), one
 * history row (from = to = its state; actor, channel, note as given) and
 * the revision queued for the sinks as `change` with trigger (may be NULL;
 * its attrs carry the news), through the same calls every other revision
 * uses.  All or nothing under a savepoint of the group transaction (begins
 * it).  1 when recorded, 0 when the incident is closed or unknown (nothing
 * written), or -errno. */
int fg_incidents_annotate(fg_incidents *inc, int64_t id, int64_t at_ms, const char *actor,
                          const char *channel, const char *note, const char *change,
                          const struct fg_ev *trigger);

/* A camera picture (ref: fg_snapshot_ref's object) for the live incident
 * id of (device, kind), fetched after its event (snapfetch.h): it joins the
 * incident's attrs.snapshots the way pictures of repeats do (once by
 * sha256, at most 16) and, when new, a revision "updated" with history
 * note "snapshot attached <sha256>" goes out through fg_incidents_annotate.
 * Inside the group transaction (begins it).  1 attached, 0 already there,
 * -ENOENT when the incident is closed or not that one, or -errno. */
int fg_incidents_add_snapshot(fg_incidents *inc, int64_t id, const char *device, fg_kind kind,
                              const json_t *ref, int64_t at_ms);

/* Watchers of the events fg_incidents_apply stored -- every decoded event
 * passes there, whatever its transport (MQTT, HTTP push, event streams,
 * Modbus polling): the local interlock uses it to act on alarms from any
 * source.  cb runs on the loop thread after the event's savepoint is
 * released and only when apply succeeded, with the incident it touched
 * (0 if none); it may call fg_incidents_apply itself, but not watch or
 * unwatch.  The watcher is owned by the caller (embedded in its object)
 * and must stay valid until unwatched; several may watch at once (an old
 * and a new config's interlock during a reload).  unwatch of a watcher
 * that is not watching, or with inc NULL, does nothing. */
struct fg_incidents_watcher {
	void (*cb)(void *data, const struct fg_ev *ev, int64_t incident_id);
	void *data;
	struct fg_incidents_watcher *next;      /* owned by fg_incidents */
};
void fg_incidents_watch(fg_incidents *inc, struct fg_incidents_watcher *w);
void fg_incidents_unwatch(fg_incidents *inc, struct fg_incidents_watcher *w);

/* The incident's history, oldest first, as a JSON array of
 * {"at", "from", "to", "revision", "actor", "channel", "note"} (times RFC
 * 3339, absent values null) in *ret (new reference).  0 or -errno; an
 * unknown id gives an empty array.  Works on a read-only store too. */
struct json_t;
int fg_incident_history_json(fg_store *st, int64_t id, struct json_t **ret);

#endif
