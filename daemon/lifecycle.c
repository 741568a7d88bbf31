/* The incident lifecycle: transition table, the center's actions,
 * deadlines (see lifecycle.h and docs/lifecycle.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lifecycle.h"
#include "registry.h"
#include "util.h"

#define MAX_ID 128
#define MAX_TEXT 128
#define MAX_NOTE 2000
#define MAX_CASE_NO 64

static const char *const action_names[FG_ACTION__COUNT] = {
	[FG_ACTION_ACCEPT] = "accept", [FG_ACTION_DISPATCH] = "dispatch",
	[FG_ACTION_PROGRESS] = "progress", [FG_ACTION_RESOLVE] = "resolve",
	[FG_ACTION_CLOSE] = "close", [FG_ACTION_RETURN] = "return",
	[FG_ACTION_REOPEN] = "reopen",
};

static const char *const action_changes[FG_ACTION__COUNT] = {
	[FG_ACTION_ACCEPT] = "accepted", [FG_ACTION_DISPATCH] = "dispatched",
	[FG_ACTION_PROGRESS] = "progress", [FG_ACTION_RESOLVE] = "resolved",
	[FG_ACTION_CLOSE] = "closed", [FG_ACTION_RETURN] = "returned",
	[FG_ACTION_REOPEN] = "reopened",
};

static const char *const disposition_names[FG_DISP__COUNT] = {
	[FG_DISP_NONE] = "none", [FG_DISP_REAL_FIRE] = "real_fire",
	[FG_DISP_FALSE_ALARM] = "false_alarm", [FG_DISP_TEST] = "test",
	[FG_DISP_DEVICE_FAULT] = "device_fault", [FG_DISP_HANDLED] = "handled",
};

/* Every state, as the static strings the table hands out. */
static const char *const all_states[] = {
	FG_STATE_OPEN, FG_STATE_REPORTED, FG_STATE_DISPATCHED, FG_STATE_IN_PROGRESS,
	FG_STATE_RESOLVED, FG_STATE_CLOSED, FG_STATE_RETURNED, FG_STATE_REOPENED,
};

const char *fg_action_name(enum fg_action a)
{
	return (unsigned)a < FG_ACTION__COUNT ? action_names[a] : NULL;
}

const char *fg_action_change(enum fg_action a)
{
	return (unsigned)a < FG_ACTION__COUNT ? action_changes[a] : NULL;
}

int fg_action_parse(const char *name, enum fg_action *ret)
{
	for (unsigned i = 0; name && i < FG_ACTION__COUNT; i++)
		if (strcmp(name, action_names[i]) == 0) {
			*ret = (enum fg_action)i;
			return 0;
		}
	return -EINVAL;
}

const char *fg_disposition_name(enum fg_disposition d)
{
	return (unsigned)d < FG_DISP__COUNT ? disposition_names[d] : NULL;
}

int fg_disposition_parse(const char *name, enum fg_disposition *ret)
{
	/* "none" is the absence of one, not something to send. */
	for (unsigned i = FG_DISP_NONE + 1; name && i < FG_DISP__COUNT; i++)
		if (strcmp(name, disposition_names[i]) == 0) {
			*ret = (enum fg_disposition)i;
			return 0;
		}
	return -EINVAL;
}

enum fg_hazard fg_hazard_of(fg_kind k)
{
	switch (k) {
	case FG_KIND_SMOKE: case FG_KIND_HEAT: case FG_KIND_CO: case FG_KIND_RESIDUAL_CURRENT:
		return FG_HAZARD_FIRE;
	case FG_KIND_OVERTEMP: case FG_KIND_OVERCURRENT:
		return FG_HAZARD_EBIKE;
	case FG_KIND_FIRE_LANE_BLOCKED:
		return FG_HAZARD_FIRE_LANE;
	case FG_KIND_BATTERY_LOW: case FG_KIND_TAMPER: case FG_KIND_FAULT: case FG_KIND_OFFLINE:
		return FG_HAZARD_DEVICE_HEALTH;
	default:
		return FG_HAZARD_NONE;
	}
}

const struct fg_conf_tiers *fg_escalation_tiers(const struct fg_conf *conf, fg_kind k,
                                                bool elderly_alone)
{
	if (!conf)
		return NULL;
	switch (fg_hazard_of(k)) {
	case FG_HAZARD_FIRE:
		return elderly_alone ? &conf->esc_fire_elderly : &conf->esc_fire;
	case FG_HAZARD_EBIKE:
		return &conf->esc_ebike;
	case FG_HAZARD_FIRE_LANE:
		return &conf->esc_fire_lane;
	case FG_HAZARD_DEVICE_HEALTH:
		return &conf->esc_device_health;
	default:
		return NULL;
	}
}

int64_t fg_escalation_next(const struct fg_conf_tiers *t, int level, int64_t from_ms)
{
	if (!t || level < 0 || (size_t)level >= t->n)
		return 0;
	return from_ms + t->ms[level] - (level ? t->ms[level - 1] : 0);
}

const char *fg_escalation_tier(int level)
{
	static const char *const tiers[] = { "small_grid", "medium_grid", "large_grid",
	                                     "fire_brigade" };
	return level >= 0 && (size_t)level < FG_ARRAY_SIZE(tiers) ? tiers[level] : NULL;
}

static bool is(const char *state, const char *s)
{
	return strcmp(state, s) == 0;
}

bool fg_state_escalates(const char *state)
{
	return is(state, FG_STATE_OPEN) || is(state, FG_STATE_REPORTED) ||
	       is(state, FG_STATE_RETURNED) || is(state, FG_STATE_REOPENED);
}

bool fg_state_live(const char *state)
{
	return !is(state, FG_STATE_RESOLVED) && !is(state, FG_STATE_CLOSED);
}

static const char *static_state(const char *state)
{
	for (size_t i = 0; i < FG_ARRAY_SIZE(all_states); i++)
		if (is(state, all_states[i]))
			return all_states[i];
	return NULL;
}

int fg_lifecycle_next(const char *state, enum fg_action action, enum fg_disposition disposition,
                      const char **ret_state, const char **ret_why)
{
	static const char *const cannot[FG_ACTION__COUNT] = {
		[FG_ACTION_ACCEPT] = "only an incident waiting for dispatch (open, reported, "
		                     "returned, reopened) can be accepted",
		[FG_ACTION_DISPATCH] = "only an incident waiting for dispatch (open, reported, "
		                       "returned, reopened) can be dispatched",
		[FG_ACTION_PROGRESS] = "only a dispatched incident can report progress",
		[FG_ACTION_RESOLVE] = "only a dispatched incident can be resolved",
		[FG_ACTION_CLOSE] = "a closed incident cannot be closed again",
		[FG_ACTION_RETURN] = "only an incident the center has (reported, dispatched, "
		                     "in_progress, resolved, reopened) can be returned",
		[FG_ACTION_REOPEN] = "only a resolved or closed incident can be reopened",
	};
	const char *from = state ? static_state(state) : NULL;
	const char *to = NULL;
	if (!from || (unsigned)action >= FG_ACTION__COUNT) {
		*ret_why = "unknown state or action";
		return -EINVAL;
	}
	switch (action) {
	case FG_ACTION_ACCEPT:
		if (fg_state_escalates(from))
			to = is(from, FG_STATE_OPEN) ? FG_STATE_REPORTED : from;
		break;
	case FG_ACTION_DISPATCH:
		if (fg_state_escalates(from))
			to = FG_STATE_DISPATCHED;
		break;
	case FG_ACTION_PROGRESS:
		if (is(from, FG_STATE_DISPATCHED) || is(from, FG_STATE_IN_PROGRESS))
			to = FG_STATE_IN_PROGRESS;
		break;
	case FG_ACTION_RESOLVE:
		if (is(from, FG_STATE_DISPATCHED) || is(from, FG_STATE_IN_PROGRESS))
			to = FG_STATE_RESOLVED;
		break;
	case FG_ACTION_CLOSE:
		if (is(from, FG_STATE_RESOLVED)) {
			to = FG_STATE_CLOSED;
		} else if (fg_state_live(from)) {
			/* Nothing to handle: a false alarm, a test or a broken
			 * device may be closed straight away. */
			if (disposition == FG_DISP_FALSE_ALARM || disposition == FG_DISP_TEST ||
			    disposition == FG_DISP_DEVICE_FAULT)
				to = FG_STATE_CLOSED;
			else
				*ret_why = "closing as real_fire or handled needs the incident "
				           "resolved first";
		}
		break;
	case FG_ACTION_RETURN:
		if (is(from, FG_STATE_REPORTED) || is(from, FG_STATE_DISPATCHED) ||
		    is(from, FG_STATE_IN_PROGRESS) || is(from, FG_STATE_RESOLVED) ||
		    is(from, FG_STATE_REOPENED))
			to = FG_STATE_RETURNED;
		break;
	case FG_ACTION_REOPEN:
		if (is(from, FG_STATE_RESOLVED) || is(from, FG_STATE_CLOSED))
			to = FG_STATE_REOPENED;
		break;
	default:
		break;
	}
	if (!to) {
		if (action != FG_ACTION_CLOSE || !fg_state_live(from))
			*ret_why = cannot[action];
		return -EPERM;
	}
	*ret_state = to;
	return 0;
}

/* ---- the request body ---------------------------------------------------- */

static int bad_field(const char **ret_field, const char *field, char *why, size_t whylen,
                     const char *reason)
{
	*ret_field = field;
	snprintf(why, whylen, "%s", reason);
	return -EINVAL;
}

/* A string field: absent (NULL, 0), or a string of min..max bytes without
 * control characters.  -EINVAL otherwise. */
static int text_field(json_t *obj, const char *key, size_t min, size_t max, const char **ret)
{
	json_t *v = json_object_get(obj, key);
	*ret = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n < min || n > max || strlen(s) != n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
			return -EINVAL;
	*ret = s;
	return 0;
}

int fg_action_from_json(json_t *obj, int64_t now_ms, struct fg_action_req *ret,
                        const char **ret_field, char *why, size_t whylen)
{
	static const char *const known[] = { "action", "action_id", "actor", "unit", "note",
	                                      "deadline", "case_no", "disposition" };
	struct fg_action_req a = { .disposition = FG_DISP_NONE };
	const char *key, *action = NULL, *deadline = NULL, *disp = NULL;
	json_t *v;
	char msg[160];

	if (!json_is_object(obj))
		return bad_field(ret_field, NULL, why, whylen, "body must be a JSON object");
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (size_t i = 0; i < FG_ARRAY_SIZE(known); i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok) {
			*ret_field = NULL;
			snprintf(why, whylen, "unknown field '%.40s'", key);
			return -EINVAL;
		}
	}
	if (text_field(obj, "action", 1, 32, &action) < 0 || !action ||
	    fg_action_parse(action, &a.action) < 0)
		return bad_field(ret_field, "action", why, whylen, "action must be one of accept, "
		                 "dispatch, progress, resolve, close, return, reopen");
	if (text_field(obj, "action_id", 1, MAX_ID, &a.action_id) < 0 || !a.action_id)
		return bad_field(ret_field, "action_id", why, whylen,
		                 "action_id must be a string of 1..128 characters (idempotency key)");
	if (text_field(obj, "actor", 1, MAX_TEXT, &a.actor) < 0 || !a.actor)
		return bad_field(ret_field, "actor", why, whylen,
		                 "actor must be a string of 1..128 characters");
	if (text_field(obj, "unit", 1, MAX_TEXT, &a.unit) < 0)
		return bad_field(ret_field, "unit", why, whylen,
		                 "unit must be a string of 1..128 characters");
	if (text_field(obj, "note", 0, MAX_NOTE, &a.note) < 0)
		return bad_field(ret_field, "note", why, whylen,
		                 "note must be a string of at most 2000 characters");
	if (text_field(obj, "case_no", 1, MAX_CASE_NO, &a.case_no) < 0)
		return bad_field(ret_field, "case_no", why, whylen,
		                 "case_no must be a string of 1..64 characters");
	if (text_field(obj, "disposition", 1, 32, &disp) < 0 ||
	    (disp && fg_disposition_parse(disp, &a.disposition) < 0))
		return bad_field(ret_field, "disposition", why, whylen, "disposition must be one of "
		                 "real_fire, false_alarm, test, device_fault, handled");
	if (text_field(obj, "deadline", 1, 64, &deadline) < 0 ||
	    (deadline && fg_time_parse_iso(deadline, &a.deadline_ms) < 0))
		return bad_field(ret_field, "deadline", why, whylen,
		                 "deadline must be an RFC 3339 time");

	if (a.action == FG_ACTION_DISPATCH && !a.unit)
		return bad_field(ret_field, "unit", why, whylen, "dispatch needs the unit sent");
	if (a.action == FG_ACTION_CLOSE && !disp)
		return bad_field(ret_field, "disposition", why, whylen, "close needs a disposition");
	if (a.action != FG_ACTION_CLOSE && disp) {
		snprintf(msg, sizeof(msg), "only close takes a disposition, not %s", action);
		return bad_field(ret_field, "disposition", why, whylen, msg);
	}
	if (deadline) {
		if (a.action != FG_ACTION_ACCEPT && a.action != FG_ACTION_DISPATCH &&
		    a.action != FG_ACTION_PROGRESS && a.action != FG_ACTION_RETURN) {
			snprintf(msg, sizeof(msg), "%s takes no deadline", action);
			return bad_field(ret_field, "deadline", why, whylen, msg);
		}
		if (a.deadline_ms <= now_ms)
			return bad_field(ret_field, "deadline", why, whylen,
			                 "deadline must be in the future");
	}
	*ret = a;
	return 0;
}

/* ---- applying actions -------------------------------------------------- */

static const char SQL_SAVEPOINT[] = "SAVEPOINT fg_act";
static const char SQL_RELEASE[] = "RELEASE fg_act";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO fg_act";

static const char SQL_LIVE_KEY[] =
	"SELECT id FROM incidents WHERE dedup_key = ?1 AND state <> 'closed' AND id <> ?2";

static const char SQL_ACT[] =
	"UPDATE incidents SET state = ?2, revision = revision + 1,"
	" case_no = coalesce(?3, case_no),"
	" dispatched_unit = coalesce(?4, dispatched_unit),"
	" deadline_ms = coalesce(?5, deadline_ms),"
	" reported_ms = CASE WHEN ?2 = 'reported' THEN coalesce(reported_ms, ?6) ELSE reported_ms END,"
	" dispatched_ms = CASE WHEN ?2 = 'dispatched' THEN ?6 ELSE dispatched_ms END,"
	" resolved_ms = CASE WHEN ?2 = 'resolved' THEN ?6 WHEN ?2 = 'reopened' THEN NULL"
	"  ELSE resolved_ms END,"
	" closed_ms = CASE WHEN ?2 = 'closed' THEN ?6 ELSE NULL END,"
	" disposition = CASE WHEN ?2 = 'closed' THEN ?7 WHEN ?2 = 'reopened' THEN NULL"
	"  ELSE disposition END,"
	" reopened = reopened + (?2 = 'reopened'),"
	" overdue = CASE WHEN ?2 = 'reopened' THEN 0 ELSE overdue END,"
	" esc_level = CASE WHEN ?2 = 'reopened' THEN 0 ELSE esc_level END"
	" WHERE id = ?1";

static const char SQL_OVERDUE[] =
	"UPDATE incidents SET overdue = 1, revision = revision + 1 WHERE id = ?1";

static const char SQL_ON_OPEN[] =
	"UPDATE incidents SET confirmed = ?2, confirm_due_ms = ?3, hold_until_ms = ?4 WHERE id = ?1";
static const char SQL_KNOCK[] =
	"SELECT i.id, i.confirmed, i.state FROM devices AS d JOIN incidents AS i ON i.device = d.id"
	" WHERE d.registered = 1 AND d.compound = ?1 AND d.building = ?2"
	" AND (?3 IS NULL OR d.unit = ?3) AND d.id <> ?4"
	" AND i.state <> 'closed' AND i.state <> 'resolved'"
	" AND i.kind IN ('smoke', 'heat', 'co', 'residual_current') AND i.last_seen_ms >= ?5";
static const char SQL_SET_SITE[] = "UPDATE incidents SET site = ?2 WHERE id = ?1";
static const char SQL_HOLD[] = "UPDATE incidents SET hold_until_ms = ?2 WHERE id = ?1";
static const char SQL_SITE_PARENT[] =
	"SELECT id, device, dedup_key FROM incidents WHERE site = ?1 AND kind = 'offline'"
	" AND state <> 'closed' AND parent_id IS NULL AND hold_until_ms IS NULL AND id <> ?3"
	" ORDER BY dedup_key <> ?2, id";
static const char SQL_JOIN_SITE[] =
	"UPDATE incidents SET parent_id = ?2, hold_until_ms = NULL WHERE id = ?1";
static const char SQL_SITE_COUNT[] =
	"UPDATE incidents SET count = count + 1, last_seen_ms = max(last_seen_ms, ?2) WHERE id = ?1";
static const char SQL_SITE_AGAIN[] =
	"UPDATE incidents SET cleared_ms = NULL, resolved_ms = NULL, revision = revision + 1,"
	" state = CASE state WHEN 'resolved' THEN 'reopened' ELSE state END WHERE id = ?1";
static const char SQL_HELD_COUNT[] =
	"SELECT count(*) FROM incidents WHERE site = ?1 AND kind = 'offline' AND state <> 'closed'"
	" AND parent_id IS NULL AND hold_until_ms IS NOT NULL AND opened_ms >= ?2";
static const char SQL_STORM_NEW[] =
	"INSERT INTO incidents(dedup_key, device, source, plugin, kind, severity, state, revision,"
	" count, opened_ms, last_seen_ms, site)"
	" VALUES(?1, ?2, ?3, 'firegrid', 'offline', 'major', 'open', 1, ?4, ?5, ?5, ?6)";
static const char SQL_GROUP_HELD[] =
	"UPDATE incidents SET parent_id = ?1, hold_until_ms = NULL WHERE site = ?2"
	" AND kind = 'offline' AND state <> 'closed' AND parent_id IS NULL"
	" AND hold_until_ms IS NOT NULL AND id <> ?1";
static const char SQL_GROUP_HISTORY[] =
	"INSERT INTO incident_history(incident_id, at_ms, from_state, to_state, actor, channel,"
	" note, revision) SELECT id, ?2, state, state, 'firegrid', 'correlation',"
	" 'grouped under site incident ' || ?1, revision FROM incidents WHERE parent_id = ?1"
	" AND NOT EXISTS (SELECT 1 FROM incident_history AS h WHERE h.incident_id = incidents.id"
	" AND h.channel = 'correlation')";
static const char SQL_CHILDREN_DOWN[] =
	"SELECT count(*) FROM incidents WHERE parent_id = ?1 AND state <> 'closed'"
	" AND cleared_ms IS NULL";
static const char SQL_SITE_BACK[] =
	"UPDATE incidents SET cleared_ms = ?2, resolved_ms = ?2, revision = revision + 1,"
	" state = CASE WHEN state IN ('resolved', 'closed') THEN state ELSE 'resolved' END"
	" WHERE id = ?1";
static const char SQL_CLOSE_CHILDREN_HISTORY[] =
	"INSERT INTO incident_history(incident_id, at_ms, from_state, to_state, actor, channel,"
	" note, revision) SELECT id, ?2, state, 'closed', ?3, ?4,"
	" 'closed with site incident ' || ?1, revision FROM incidents WHERE parent_id = ?1"
	" AND state <> 'closed'";
static const char SQL_CLOSE_CHILDREN[] =
	"UPDATE incidents SET state = 'closed', closed_ms = ?2, disposition = ?3,"
	" next_due_ms = NULL, esc_due_ms = NULL WHERE parent_id = ?1 AND state <> 'closed'";
static const char SQL_ESC_DUE[] = "UPDATE incidents SET esc_due_ms = ?2 WHERE id = ?1";
static const char SQL_ESCALATE[] =
	"UPDATE incidents SET esc_level = esc_level + 1, esc_due_ms = ?2, overdue = 1,"
	" revision = revision + 1 WHERE id = ?1";
static const char SQL_CONFIRM[] =
	"UPDATE incidents SET confirmed = 1, confirm_due_ms = NULL, revision = revision + 1"
	" WHERE id = ?1";
static const char SQL_CONFIRM_LAPSED[] =
	"UPDATE incidents SET confirm_due_ms = NULL WHERE id = ?1";
static const char SQL_RELEASE_HOLD[] =
	"UPDATE incidents SET hold_until_ms = NULL, deadline_ms = coalesce(deadline_ms, ?2)"
	" WHERE id = ?1";
static const char SQL_DROP_HELD[] =
	"UPDATE incidents SET hold_until_ms = NULL, state = 'closed', closed_ms = ?2,"
	" confirm_due_ms = NULL, esc_due_ms = NULL WHERE id = ?1";

static const char SQL_DUE_REFRESH[] =
	"UPDATE incidents SET next_due_ms = (SELECT min(v) FROM ("
	" SELECT esc_due_ms AS v UNION ALL SELECT confirm_due_ms UNION ALL SELECT hold_until_ms"
	" UNION ALL SELECT deadline_ms WHERE overdue = 0 AND state NOT IN ('resolved', 'closed')))"
	" WHERE id = ?1";

static const char SQL_ACTION_GET[] =
	"SELECT client, request, status, response FROM incident_actions WHERE action_id = ?1";
static const char SQL_ACTION_PUT[] =
	"INSERT INTO incident_actions(action_id, client, incident_id, request, status, response,"
	" at_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";

static int run_sql(fg_store *st, const char *sql)
{
	sqlite3_stmt *s = fg_store_stmt(st, sql);
	return s ? fg_store_step_done(s) : -EIO;
}

/* Run body(ctx) under a savepoint of the group transaction: all or
 * nothing. */
static int atomically(fg_store *st, int (*body)(void *ctx), void *ctx)
{
	int r = fg_store_begin(st);
	if (r >= 0)
		r = run_sql(st, SQL_SAVEPOINT);
	if (r < 0)
		return r;
	r = body(ctx);
	if (r < 0)
		run_sql(st, SQL_ROLLBACK_TO);
	int rr = run_sql(st, SQL_RELEASE);
	return r < 0 ? r : rr < 0 ? rr : r;
}

static int live_conflict(fg_store *st, const struct fg_incident *row, int64_t *ret_id)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_LIVE_KEY);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, row->dedup_key);
	sqlite3_bind_int64(s, 2, row->id);
	int r = fg_store_step_row(s);
	if (r > 0) {
		*ret_id = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	}
	return r;
}

static int close_children(fg_store *st, int64_t id, const struct fg_action_req *a,
                          const char *channel, int64_t now_ms)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_CLOSE_CHILDREN_HISTORY);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now_ms);
	fg_store_bind_text(s, 3, a->actor);
	fg_store_bind_text(s, 4, channel);
	int r = fg_store_step_done(s);
	if (r < 0 || !(s = fg_store_stmt(st, SQL_CLOSE_CHILDREN)))
		return r < 0 ? r : -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now_ms);
	fg_store_bind_text(s, 3, fg_disposition_name(a->disposition));
	return fg_store_step_done(s);
}

struct act {
	fg_incidents *inc;
	int64_t id;
	const struct fg_action_req *a;
	const char *client;
	int64_t now_ms;
	struct fg_act_result *res;
};

static void bind_opt_ms(sqlite3_stmt *s, int idx, int64_t ms)
{
	if (ms)
		sqlite3_bind_int64(s, idx, ms);
	else
		sqlite3_bind_null(s, idx);
}

static int act_body(void *ctx)
{
	struct act *x = ctx;
	fg_store *st = fg_incidents_store(x->inc);
	const struct fg_action_req *a = x->a;
	struct fg_incident row;
	int r = fg_incident_get(st, x->id, &row);
	if (r < 0)
		return r;
	snprintf(x->res->from, sizeof(x->res->from), "%s", row.state);
	const char *to = NULL, *why = NULL;
	r = fg_lifecycle_next(row.state, a->action, a->disposition, &to, &why);
	if (r == 0 && a->action == FG_ACTION_REOPEN && strcmp(row.state, FG_STATE_CLOSED) == 0 &&
	    (r = live_conflict(st, &row, &x->res->conflict_id)) > 0)
		r = -EBUSY;
	fg_incident_clear(&row);
	if (r < 0)
		return r == -EINVAL ? -EPERM : r;
	snprintf(x->res->to, sizeof(x->res->to), "%s", to);

	sqlite3_stmt *s = fg_store_stmt(st, SQL_ACT);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, x->id);
	fg_store_bind_text(s, 2, to);
	fg_store_bind_text(s, 3, a->case_no);
	fg_store_bind_text(s, 4, a->unit);
	bind_opt_ms(s, 5, a->deadline_ms);
	sqlite3_bind_int64(s, 6, x->now_ms);
	fg_store_bind_text(s, 7, a->action == FG_ACTION_CLOSE ? fg_disposition_name(a->disposition)
	                                                      : NULL);
	if ((r = fg_store_step_done(s)) < 0)
		return r;

	char channel[80];
	snprintf(channel, sizeof(channel), "api:%s", x->client ? x->client : "-");
	/* Closing a site incident closes the device incidents grouped under it. */
	if (strcmp(to, FG_STATE_CLOSED) == 0 &&
	    (r = close_children(st, x->id, a, channel, x->now_ms)) < 0)
		return r;
	if ((r = fg_incidents_reschedule(x->inc, x->id, x->now_ms)) < 0 ||
	    (r = fg_incident_history_add(st, x->id, x->now_ms, x->res->from, a->actor, channel,
	                                 a->note)) < 0 ||
	    (r = fg_incidents_publish(x->inc, x->id, fg_action_change(a->action), NULL,
	                              x->now_ms)) < 0)
		return r;
	if ((r = fg_incident_get(st, x->id, &row)) < 0)
		return r;
	x->res->revision = row.revision;
	fg_incident_clear(&row);
	return 0;
}

int fg_incidents_act(fg_incidents *inc, int64_t id, const struct fg_action_req *a,
                     const char *client, int64_t now_ms, struct fg_act_result *ret)
{
	struct fg_act_result res = { .from = "", .to = "" };
	struct act x = { inc, id, a, client, now_ms, &res };
	int r = atomically(fg_incidents_store(inc), act_body, &x);
	*ret = res;
	return r;
}

int fg_action_lookup(fg_store *st, const char *action_id, char **ret_client, char **ret_request,
                     int *ret_status, char **ret_response)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_ACTION_GET);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, action_id);
	int r = fg_store_step_row(s);
	if (r <= 0)
		return r;
	char *client = fg_store_column_strdup(s, 0), *request = fg_store_column_strdup(s, 1);
	char *response = fg_store_column_strdup(s, 3);
	int status = sqlite3_column_int(s, 2);
	sqlite3_reset(s);
	if (!client || !request || !response) {
		free(client);
		free(request);
		free(response);
		return -ENOMEM;
	}
	*ret_client = client;
	*ret_request = request;
	*ret_response = response;
	*ret_status = status;
	return 1;
}

int fg_action_record(fg_store *st, const char *action_id, const char *client,
                     int64_t incident_id, const char *request, int status,
                     const char *response, int64_t now_ms)
{
	int r = fg_store_begin(st);
	sqlite3_stmt *s = r < 0 ? NULL : fg_store_stmt(st, SQL_ACTION_PUT);
	if (!s)
		return r < 0 ? r : -EIO;
	fg_store_bind_text(s, 1, action_id);
	fg_store_bind_text(s, 2, client ? client : "");
	sqlite3_bind_int64(s, 3, incident_id);
	fg_store_bind_text(s, 4, request);
	sqlite3_bind_int(s, 5, status);
	fg_store_bind_text(s, 6, response);
	sqlite3_bind_int64(s, 7, now_ms);
	return fg_store_step_done(s);
}

/* ---- deadlines ------------------------------------------------------------ */

static int due_refresh(fg_store *st, int64_t id)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_DUE_REFRESH);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	return fg_store_step_done(s);
}

static int exec_id(fg_store *st, const char *sql, int64_t id, int64_t v, bool v_null)
{
	sqlite3_stmt *s = fg_store_stmt(st, sql);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	if (v_null)
		sqlite3_bind_null(s, 2);
	else
		sqlite3_bind_int64(s, 2, v);
	return fg_store_step_done(s);
}

/* A manual call point or panic button: {"manual": true} or {"trigger":
 * "manual" | "panic"} in the event's attrs. */
static bool manual_trigger(const struct fg_ev *ev)
{
	json_t *attrs = ev->attrs_json ? json_loads(ev->attrs_json, 0, NULL) : NULL;
	const char *trigger = json_string_value(json_object_get(attrs, "trigger"));
	bool manual = json_is_true(json_object_get(attrs, "manual")) ||
	              (trigger && (strcmp(trigger, "manual") == 0 || strcmp(trigger, "panic") == 0));
	json_decref(attrs);
	return manual;
}

int fg_incidents_reschedule(fg_incidents *inc, int64_t id, int64_t now_ms)
{
	fg_store *st = fg_incidents_store(inc);
	const struct fg_conf *conf = fg_incidents_conf(inc);
	struct fg_incident row;
	int r = fg_incident_get(st, id, &row);
	if (r < 0)
		return r;
	int64_t due = row.esc_due_ms;
	if (!fg_state_escalates(row.state) || row.hold_until_ms)
		due = 0;
	else if (!due && conf)
		due = fg_escalation_next(fg_escalation_tiers(conf, row.kind,
		                                             fg_registry_has_flag(st, row.device, "elderly_alone")),
		                         row.esc_level, now_ms);
	if (due != row.esc_due_ms)
		r = exec_id(st, SQL_ESC_DUE, id, due, due == 0);
	fg_incident_clear(&row);
	return r < 0 ? r : due_refresh(st, id);
}

/* A revision made by correlation (actor "firegrid", channel
 * "correlation"). */
static int correlation_revision(fg_incidents *inc, int64_t id, const char *from_state,
                                const char *change, const char *note, int64_t now_ms)
{
	int r = fg_incident_history_add(fg_incidents_store(inc), id, now_ms, from_state, "firegrid",
	                                "correlation", note);
	return r < 0 ? r : fg_incidents_publish(inc, id, change, NULL, now_ms);
}

/*
 * The double knock by place: live fire-class incidents of other registered
 * detectors in the same building (or unit) seen within confirm_window.
 * Those still unconfirmed are confirmed now (a revision each); returns how
 * many such detectors there are (then the new one is confirmed too).
 */
static int double_knock(fg_incidents *inc, const struct fg_incident *row, int64_t now_ms)
{
	const struct fg_conf *conf = fg_incidents_conf(inc);
	fg_store *st = fg_incidents_store(inc);
	if (!row->registered || !row->reg[FG_REG_COMPOUND] || !row->reg[FG_REG_BUILDING] ||
	    (conf->confirm_scope_unit && !row->reg[FG_REG_UNIT]))
		return 0;
	sqlite3_stmt *s = fg_store_stmt(st, SQL_KNOCK);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, row->reg[FG_REG_COMPOUND]);
	fg_store_bind_text(s, 2, row->reg[FG_REG_BUILDING]);
	fg_store_bind_text(s, 3, conf->confirm_scope_unit ? row->reg[FG_REG_UNIT] : NULL);
	fg_store_bind_text(s, 4, row->device);
	sqlite3_bind_int64(s, 5, now_ms - conf->confirm_window_ms);
	int64_t ids[32];
	char states[32][24];
	size_t n = 0;
	int r, found = 0;
	while ((r = fg_store_step_row(s)) > 0) {
		found++;
		if (!sqlite3_column_int(s, 1) && n < FG_ARRAY_SIZE(ids)) {
			ids[n] = sqlite3_column_int64(s, 0);
			snprintf(states[n], sizeof(states[n]), "%s", sqlite3_column_text(s, 2));
			n++;
		}
	}
	if (r < 0)
		return r;
	char note[200];
	snprintf(note, sizeof(note), "double knock: second detector %.64s in the same %s",
	         row->device, conf->confirm_scope_unit ? "unit" : "building");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = exec_id(st, SQL_CONFIRM, ids[i], 0, true);
		if (r >= 0)
			r = correlation_revision(inc, ids[i], states[i], "confirmed", note, now_ms);
	}
	return r < 0 ? r : found;
}

static bool is_bridge(fg_store *st, const char *device)
{
	size_t n = strlen(device);
	return fg_registry_has_flag(st, device, "bridge") ||
	       (n > 7 && strcmp(device + n - 7, "/bridge") == 0);
}

/* The live site-level offline incident of a site (a storm incident or an
 * offline bridge), 0 when none. */
static int64_t site_incident(fg_store *st, const char *site, const char *site_key, int64_t self)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_SITE_PARENT);
	if (!s)
		return 0;
	fg_store_bind_text(s, 1, site);
	fg_store_bind_text(s, 2, site_key);
	sqlite3_bind_int64(s, 3, self);
	int64_t id = 0;
	while (fg_store_step_row(s) > 0) {
		const char *dev = (const char *)sqlite3_column_text(s, 1);
		if (strcmp((const char *)sqlite3_column_text(s, 2), site_key) == 0 ||
		    (dev && is_bridge(st, dev))) {
			id = sqlite3_column_int64(s, 0);
			sqlite3_reset(s);
			break;
		}
	}
	return id;
}

static int group_held(fg_store *st, const char *site, int64_t parent, int64_t now_ms)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_GROUP_HELD);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, parent);
	fg_store_bind_text(s, 2, site);
	int r = fg_store_step_done(s);
	if (r < 0 || !(s = fg_store_stmt(st, SQL_GROUP_HISTORY)))
		return r < 0 ? r : -EIO;
	sqlite3_bind_int64(s, 1, parent);
	sqlite3_bind_int64(s, 2, now_ms);
	return fg_store_step_done(s);
}

/* Join a device's offline incident to its site incident (quietly). */
static int join_site(fg_incidents *inc, const struct fg_incident *row, int64_t parent,
                     int64_t now_ms)
{
	fg_store *st = fg_incidents_store(inc);
	struct fg_incident p;
	int r = exec_id(st, SQL_JOIN_SITE, row->id, parent, false);
	if (r >= 0)
		r = exec_id(st, SQL_SITE_COUNT, parent, now_ms, false);
	if (r >= 0)
		r = fg_incident_get(st, parent, &p);
	if (r < 0)
		return r;
	/* The site was back already: it is not any more. */
	if (p.cleared_ms) {
		r = exec_id(st, SQL_SITE_AGAIN, parent, 0, true);
		if (r >= 0)
			r = correlation_revision(inc, parent, p.state,
			                         strcmp(p.state, FG_STATE_RESOLVED) ? "updated" : "reopened",
			                         "devices of the site offline again", now_ms);
		if (r >= 0)
			r = fg_incidents_reschedule(inc, parent, now_ms);
	}
	fg_incident_clear(&p);
	return r;
}

/* More than storm_devices held offline reports of the site: one site
 * incident takes them all. */
static int storm(fg_incidents *inc, const struct fg_incident *row, const char *site,
                 const char *site_key, int64_t now_ms)
{
	const struct fg_conf *conf = fg_incidents_conf(inc);
	fg_store *st = fg_incidents_store(inc);
	sqlite3_stmt *s = fg_store_stmt(st, SQL_HELD_COUNT);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, site);
	sqlite3_bind_int64(s, 2, now_ms - conf->storm_window_ms);
	int r = fg_store_step_row(s);
	int64_t held = r > 0 ? sqlite3_column_int64(s, 0) : 0;
	if (r > 0)
		sqlite3_reset(s);
	if (r < 0 || held <= conf->storm_devices)
		return r < 0 ? r : 0;

	char dev[160], note[200];
	snprintf(dev, sizeof(dev), "site:%s", site);
	if (!(s = fg_store_stmt(st, SQL_STORM_NEW)))
		return -EIO;
	fg_store_bind_text(s, 1, site_key);
	fg_store_bind_text(s, 2, dev);
	fg_store_bind_text(s, 3, row->source);
	sqlite3_bind_int64(s, 4, held);
	sqlite3_bind_int64(s, 5, now_ms);
	fg_store_bind_text(s, 6, site);
	if ((r = fg_store_step_done(s)) < 0)
		return r;
	int64_t sid = sqlite3_last_insert_rowid(fg_store_db(st));
	snprintf(note, sizeof(note), "%lld devices of site %.64s offline within %llds",
	         (long long)held, site, (long long)(conf->storm_window_ms / 1000));
	if ((r = group_held(st, site, sid, now_ms)) < 0 ||
	    (r = fg_incidents_reschedule(inc, sid, now_ms)) < 0 ||
	    (r = correlation_revision(inc, sid, NULL, "opened", note, now_ms)) < 0)
		return r;
	return 1;
}

/* A device went offline: group it under its site when the site is down,
 * else hold its report for storm_window (and while settling). */
static int offline_open(fg_incidents *inc, const struct fg_incident *row, int64_t now_ms)
{
	const struct fg_conf *conf = fg_incidents_conf(inc);
	fg_store *st = fg_incidents_store(inc);
	const char *site = row->reg[FG_REG_COMPOUND] ? row->reg[FG_REG_COMPOUND] : row->source;
	char site_key[200];
	snprintf(site_key, sizeof(site_key), "site:%.150s|offline", site);
	sqlite3_stmt *s = fg_store_stmt(st, SQL_SET_SITE);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, row->id);
	fg_store_bind_text(s, 2, site);
	int r = fg_store_step_done(s);
	if (r < 0)
		return r;
	if (is_bridge(st, row->device))
		/* The bridge is the site: its own incident goes out at once and
		 * takes the offline reports still held. */
		return group_held(st, site, row->id, now_ms);
	int64_t parent = site_incident(st, site, site_key, row->id);
	if (parent)
		return join_site(inc, row, parent, now_ms);
	int64_t hold = conf->storm_window_ms ? now_ms + conf->storm_window_ms : 0;
	if (fg_incidents_settle_until(inc) > now_ms && fg_incidents_settle_until(inc) > hold)
		hold = fg_incidents_settle_until(inc);
	if (hold && (r = exec_id(st, SQL_HOLD, row->id, hold, false)) < 0)
		return r;
	return conf->storm_window_ms ? storm(inc, row, site, site_key, now_ms) : 0;
}

int fg_incidents_on_open(fg_incidents *inc, int64_t id, const struct fg_ev *ev, int64_t now_ms)
{
	const struct fg_conf *conf = fg_incidents_conf(inc);
	fg_store *st = fg_incidents_store(inc);
	if (!conf)
		return 0;
	struct fg_incident row;
	int r = fg_incident_get(st, id, &row);
	if (r < 0)
		return r;
	bool unconfirmed = fg_kind_is_fire(ev->kind) && !manual_trigger(ev) &&
	                   !fg_registry_has_flag(st, ev->device, "elderly_alone");
	if (unconfirmed && (r = double_knock(inc, &row, now_ms)) > 0)
		unconfirmed = false;
	int64_t hold = ev->kind == FG_KIND_FIRE_LANE_BLOCKED && conf->fire_lane_hold_ms > 0
	               ? now_ms + conf->fire_lane_hold_ms : 0;
	sqlite3_stmt *s = r < 0 ? NULL : fg_store_stmt(st, SQL_ON_OPEN);
	if (r >= 0 && !s)
		r = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int(s, 2, !unconfirmed);
		bind_opt_ms(s, 3, unconfirmed ? now_ms + conf->confirm_persist_ms : 0);
		bind_opt_ms(s, 4, hold);
		r = fg_store_step_done(s);
	}
	if (r >= 0 && ev->kind == FG_KIND_OFFLINE)
		r = offline_open(inc, &row, now_ms);
	fg_incident_clear(&row);
	return r < 0 ? r : fg_incidents_reschedule(inc, id, now_ms);
}

int fg_incidents_child_cleared(fg_incidents *inc, int64_t parent_id, int64_t now_ms)
{
	fg_store *st = fg_incidents_store(inc);
	struct fg_incident p;
	int r = fg_incident_get(st, parent_id, &p);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	/* Only a storm incident ends with its devices; a bridge says itself. */
	if (p.cleared_ms || !fg_state_live(p.state) || strncmp(p.dedup_key, "site:", 5) != 0) {
		fg_incident_clear(&p);
		return 0;
	}
	sqlite3_stmt *s = fg_store_stmt(st, SQL_CHILDREN_DOWN);
	if (!s) {
		fg_incident_clear(&p);
		return -EIO;
	}
	sqlite3_bind_int64(s, 1, parent_id);
	r = fg_store_step_row(s);
	int64_t down = r > 0 ? sqlite3_column_int64(s, 0) : 0;
	if (r > 0)
		sqlite3_reset(s);
	if (r >= 0 && down == 0) {
		r = exec_id(st, SQL_SITE_BACK, parent_id, now_ms, false);
		if (r >= 0)
			r = fg_incidents_reschedule(inc, parent_id, now_ms);
		if (r >= 0)
			r = correlation_revision(inc, parent_id, p.state, "cleared",
			                         "every device of the site is back", now_ms);
	}
	fg_incident_clear(&p);
	return r;
}

/* A revision made by the clock: history (actor "firegrid", channel
 * "timer") and a webhook. */
static int timer_revision(fg_incidents *inc, int64_t id, const char *from_state,
                          const char *change, const char *note, int64_t now_ms)
{
	int r = fg_incident_history_add(fg_incidents_store(inc), id, now_ms, from_state, "firegrid",
	                                "timer", note);
	return r < 0 ? r : fg_incidents_publish(inc, id, change, NULL, now_ms);
}

struct due {
	fg_incidents *inc;
	int64_t id, now_ms;
};

/* A held report (a blocked fire lane) is due: send it, or drop it when
 * the condition already ended.  1 when it was sent, 0 when dropped. */
static int release_hold(struct due *x, const struct fg_incident *row)
{
	fg_store *st = fg_incidents_store(x->inc);
	const struct fg_conf *conf = fg_incidents_conf(x->inc);
	char note[96];
	int r;
	if (row->cleared_ms) {
		snprintf(note, sizeof(note), "ended before it was reported: not sent");
		r = exec_id(st, SQL_DROP_HELD, x->id, x->now_ms, false);
		if (r >= 0)
			r = fg_incident_history_add(st, x->id, x->now_ms, row->state, "firegrid", "timer",
			                            note);
		return r < 0 ? r : 0;
	}
	int64_t within = row->kind == FG_KIND_FIRE_LANE_BLOCKED && conf
	                 ? conf->fire_lane_resolve_within_ms : 0;
	r = exec_id(st, SQL_RELEASE_HOLD, x->id, x->now_ms + within, within == 0);
	if (r >= 0)
		r = fg_incidents_reschedule(x->inc, x->id, x->now_ms);
	if (r >= 0)
		r = timer_revision(x->inc, x->id, row->state, "opened", "still on after the hold: reported",
		                   x->now_ms);
	return r < 0 ? r : 1;
}

/* The persistence check of an unconfirmed fire alarm. */
static int check_persist(struct due *x, const struct fg_incident *row)
{
	fg_store *st = fg_incidents_store(x->inc);
	if (row->cleared_ms)
		return exec_id(st, SQL_CONFIRM_LAPSED, x->id, 0, true);
	int r = exec_id(st, SQL_CONFIRM, x->id, 0, true);
	if (r >= 0)
		r = timer_revision(x->inc, x->id, row->state, "confirmed",
		                   "alarm persisted: confirmed", x->now_ms);
	return r < 0 ? r : 1;
}

static int escalate(struct due *x, const struct fg_incident *row)
{
	fg_store *st = fg_incidents_store(x->inc);
	const struct fg_conf_tiers *t = fg_escalation_tiers(fg_incidents_conf(x->inc), row->kind,
	                                                    fg_registry_has_flag(st, row->device, "elderly_alone"));
	int level = row->esc_level + 1;
	int64_t next = fg_escalation_next(t, level, row->esc_due_ms);
	char note[128], waited[32] = "?";
	if (t && level <= (int)t->n)
		snprintf(waited, sizeof(waited), "%llds", (long long)(t->ms[level - 1] / 1000));
	snprintf(note, sizeof(note), "level %d (%s): not dispatched within %s", level,
	         fg_escalation_tier(level) ? fg_escalation_tier(level) : "?", waited);
	int r = exec_id(st, SQL_ESCALATE, x->id, next, next == 0);
	if (r >= 0)
		r = timer_revision(x->inc, x->id, row->state, "escalated", note, x->now_ms);
	return r < 0 ? r : 1;
}

static int due_body(void *ctx)
{
	struct due *x = ctx;
	fg_store *st = fg_incidents_store(x->inc);
	struct fg_incident row;
	int r = fg_incident_get(st, x->id, &row), n = 0;
	if (r < 0)
		return r;
	if (row.hold_until_ms && row.hold_until_ms <= x->now_ms) {
		r = release_hold(x, &row);
		n += r > 0;
		fg_incident_clear(&row);
		/* Whatever follows (escalation, deadlines) starts from now. */
		if (r >= 0)
			r = due_refresh(st, x->id);
		return r < 0 ? r : n;
	}
	if (r >= 0 && !row.confirmed && row.confirm_due_ms && row.confirm_due_ms <= x->now_ms &&
	    !row.hold_until_ms) {
		/* Once resolved or closed, confirmation is moot. */
		if (fg_state_live(row.state))
			r = check_persist(x, &row);
		else
			r = exec_id(st, SQL_CONFIRM_LAPSED, x->id, 0, true);
		n += r > 0;
	}
	if (r >= 0 && row.esc_due_ms && row.esc_due_ms <= x->now_ms &&
	    fg_state_escalates(row.state) && !row.hold_until_ms) {
		r = escalate(x, &row);
		n += r > 0;
		row.overdue = 1;     /* an escalation is overdue already */
	}
	if (r >= 0 && row.deadline_ms && !row.overdue && fg_state_live(row.state) &&
	    row.deadline_ms <= x->now_ms) {
		char note[64], t[32];
		snprintf(note, sizeof(note), "deadline %s passed",
		         fg_time_iso(row.deadline_ms, t, sizeof(t)));
		sqlite3_stmt *s = fg_store_stmt(st, SQL_OVERDUE);
		r = s ? 0 : -EIO;
		if (r >= 0) {
			sqlite3_bind_int64(s, 1, x->id);
			r = fg_store_step_done(s);
		}
		if (r >= 0)
			r = timer_revision(x->inc, x->id, row.state, "overdue", note, x->now_ms);
		n += r >= 0;
	}
	fg_incident_clear(&row);
	if (r >= 0)
		r = due_refresh(st, x->id);
	return r < 0 ? r : n;
}

int fg_incidents_run_due(fg_incidents *inc, int64_t id, int64_t now_ms)
{
	struct due x = { inc, id, now_ms };
	return atomically(fg_incidents_store(inc), due_body, &x);
}
