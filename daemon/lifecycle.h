/*
 * The incident lifecycle beyond dedupe: the operations center's closed loop
 * (发现上报 → 分流处置 → 跟踪督办 → 反馈销号) as a transition table, the
 * center's actions (through the API), and what happens when a deadline
 * passes.  docs/lifecycle.md has the state diagram.
 *
 *   open ──2xx──► reported ──dispatch──► dispatched ──progress──► in_progress
 *     │               │                     │  ▲                    │
 *     │            accept                return│dispatch          resolve
 *     │               ▼                     ▼  │                    ▼
 *     └──dispatch──► ...                  returned          resolved ──close──► closed
 *                                                               ▲               │
 *                                    re-alarm / reopen ─► reopened ◄────────────┘
 *
 * The transition table (fg_lifecycle_next) is pure; the rest works on the
 * incidents in the store, inside the group transaction, and queues one
 * webhook revision per change (type org.firegrid.incident.<change>):
 *
 *   action    from                                        to           change
 *   accept    open reported returned reopened             reported*    accepted
 *   dispatch  open reported returned reopened             dispatched   dispatched
 *   progress  dispatched in_progress                      in_progress  progress
 *   resolve   dispatched in_progress                      resolved     resolved
 *   close     resolved (any disposition);                 closed       closed
 *             any other live state with false_alarm, test or device_fault
 *   return    reported dispatched in_progress resolved reopened  returned  returned
 *   reopen    resolved closed                             reopened     reopened
 *   (* accept keeps returned and reopened as they are: it records who took
 *    the case and its case number)
 *
 * Fields: dispatch needs `unit`; close needs `disposition` (real_fire,
 * false_alarm, test, device_fault, handled) and nothing else takes one;
 * `deadline` (RFC 3339, in the future) may come with accept, dispatch,
 * progress and return: when it passes before the incident is resolved the
 * incident becomes overdue (revision "overdue").
 *
 * Escalation runs while an incident waits for a dispatch (open, reported,
 * returned, reopened): dispatch stops it, return resumes it, reopen starts
 * it again at level 0.
 */
#ifndef FG_LIFECYCLE_H
#define FG_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "incident.h"
#include "store.h"

enum fg_action {
	FG_ACTION_ACCEPT = 0,
	FG_ACTION_DISPATCH,
	FG_ACTION_PROGRESS,
	FG_ACTION_RESOLVE,
	FG_ACTION_CLOSE,
	FG_ACTION_RETURN,
	FG_ACTION_REOPEN,
	FG_ACTION__COUNT
};

enum fg_disposition {
	FG_DISP_NONE = 0,
	FG_DISP_REAL_FIRE,
	FG_DISP_FALSE_ALARM,
	FG_DISP_TEST,
	FG_DISP_DEVICE_FAULT,
	FG_DISP_HANDLED,
	FG_DISP__COUNT
};

/* "accept", ... / "real_fire", ...; NULL out of range.  parse: 0 or -EINVAL. */
const char *fg_action_name(enum fg_action a);
int fg_action_parse(const char *name, enum fg_action *ret);
const char *fg_disposition_name(enum fg_disposition d);
int fg_disposition_parse(const char *name, enum fg_disposition *ret);
/* The webhook change an action produces ("accepted", "dispatched", ...). */
const char *fg_action_change(enum fg_action a);

/*
 * The transition table.  0 and *ret_state (a static string) when `action`
 * may move an incident in `state`; -EPERM and *ret_why (static text, e.g.
 * "cannot dispatch an incident that is closed") when not.  disposition
 * matters only for close.
 */
int fg_lifecycle_next(const char *state, enum fg_action action, enum fg_disposition disposition,
                      const char **ret_state, const char **ret_why);

/* Hazard classes: each has its own escalation policy ([escalation]). */
enum fg_hazard {
	FG_HAZARD_NONE = 0,
	FG_HAZARD_FIRE,            /* smoke, heat, co, residual_current */
	FG_HAZARD_EBIKE,           /* overtemp, overcurrent */
	FG_HAZARD_FIRE_LANE,       /* fire_lane_blocked */
	FG_HAZARD_DEVICE_HEALTH,   /* battery_low, tamper, fault, offline */
};
enum fg_hazard fg_hazard_of(fg_kind k);

/* The tier times for an incident of kind k (elderly_alone: the household
 * flag of its device); NULL when conf is NULL or the class has none. */
const struct fg_conf_tiers *fg_escalation_tiers(const struct fg_conf *conf, fg_kind k,
                                                bool elderly_alone);
/*
 * When the incident at `level` reaches level + 1, waiting since from_ms at
 * that level: from_ms + (tiers[level] - tiers[level - 1]) (tiers[-1] = 0),
 * so that from the start of the wait level n is reached at tiers[n - 1].
 * 0 when there is no further level.
 */
int64_t fg_escalation_next(const struct fg_conf_tiers *t, int level, int64_t from_ms);

/* The grid tier of an escalation level: "small_grid" (0), "medium_grid",
 * "large_grid", "fire_brigade" (3); NULL out of range. */
const char *fg_escalation_tier(int level);

/* Waiting for a dispatch (escalation runs): open, reported, returned,
 * reopened. */
bool fg_state_escalates(const char *state);
/* Not yet resolved or closed. */
bool fg_state_live(const char *state);

/* One action request, validated.  Strings are borrowed from the JSON it
 * was read from. */
struct fg_action_req {
	enum fg_action action;
	const char *action_id;     /* required: idempotency key */
	const char *actor;         /* required: who (a person or desk) */
	const char *unit;          /* dispatch: the unit sent */
	const char *note;
	const char *case_no;
	int64_t deadline_ms;       /* 0 = none */
	enum fg_disposition disposition;
};

/*
 * Validate an action body (a JSON object) at now_ms.  0 and *ret, or
 * -EINVAL with *ret_field naming the offending field (static) and a reason
 * in why.  Unknown fields are refused too.
 */
int fg_action_from_json(json_t *obj, int64_t now_ms, struct fg_action_req *ret,
                        const char **ret_field, char *why, size_t whylen);

/* What fg_incidents_act did. */
struct fg_act_result {
	char from[24], to[24];     /* states */
	int64_t revision;          /* the revision it made */
	int64_t conflict_id;       /* -EBUSY: the live incident with the same key */
};

/*
 * Apply an action to incident `id` (inside the group transaction, under a
 * savepoint: all or nothing).  client names the API client (history
 * channel "api:<client>").  Returns 0, -ENOENT (no such incident), -EPERM
 * (the table forbids it: ret->from holds the current state), -EBUSY
 * (reopen while another incident of the same device and kind is live:
 * ret->conflict_id), or -errno.
 */
int fg_incidents_act(fg_incidents *inc, int64_t id, const struct fg_action_req *a,
                     const char *client, int64_t now_ms, struct fg_act_result *ret);

/*
 * Idempotency: the stored outcome of an action id.  1 and malloc'd
 * *ret_client, *ret_request, *ret_response (free them) and *ret_status
 * when known, 0 when not, -errno.
 */
int fg_action_lookup(fg_store *st, const char *action_id, char **ret_client, char **ret_request,
                     int *ret_status, char **ret_response);
/* Store an action's outcome (inside the group transaction). */
int fg_action_record(fg_store *st, const char *action_id, const char *client,
                     int64_t incident_id, const char *request, int status,
                     const char *response, int64_t now_ms);

/*
 * Deadlines: do whatever is due for incident `id` at now_ms, in this order:
 * release a held report (or close it silently when the condition ended
 * meanwhile), confirm a fire alarm that persisted, escalate one level
 * (overdue), mark it overdue when the center's deadline passed; then
 * recompute its next_due_ms.  Each change is
 * its own revision.  Inside the group transaction.  Returns the number of
 * revisions made, or -errno.
 */
int fg_incidents_run_due(fg_incidents *inc, int64_t id, int64_t now_ms);

/*
 * A new incident (inside the group transaction, before its first revision
 * is published): a fire-class alarm starts unconfirmed (unless a manual
 * trigger or an elderly_alone household), with its persistence check due
 * after confirm_persist; a blocked fire lane is held back for
 * fire_lane_hold; escalation starts.  Nothing without a conf.
 */
int fg_incidents_on_open(fg_incidents *inc, int64_t id, const struct fg_ev *ev, int64_t now_ms);

/* A device incident grouped under site incident parent_id was cleared:
 * when it was the last of a storm, the site incident clears (and
 * resolves) too.  Inside the group transaction. */
int fg_incidents_child_cleared(fg_incidents *inc, int64_t parent_id, int64_t now_ms);

/* After a change of state or a new incident: start, stop or restart
 * escalation as the state needs, then recompute next_due_ms (the earliest
 * pending deadline).  Inside the group transaction. */
int fg_incidents_reschedule(fg_incidents *inc, int64_t id, int64_t now_ms);

#endif
