/* Incidents: the dedupe core (see incident.h for the rules). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cloudevent.h"
#include "incident.h"
#include "lifecycle.h"
#include "outbox.h"
#include "registry.h"
#include "util.h"

_Static_assert(FG_ARRAY_SIZE(((struct fg_incident *)0)->reg) == FG_REG__COLS,
               "an incident carries every registry column");

struct fg_incidents {
	fg_store *st;
	struct fg_outbox *ob;      /* may be NULL: no webhooks queued */
	const struct fg_conf *conf;/* lifecycle settings; NULL = none */
	int64_t settle_until_ms;   /* see fg_incidents_settle */
	struct fg_incidents_watcher *watchers;
};

/* One apply() is all-or-nothing inside the group transaction: a failure
 * half-way must not leave an event without its incident change. */
static const char SQL_SAVEPOINT[] = "SAVEPOINT fg_apply";
static const char SQL_RELEASE[] = "RELEASE fg_apply";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO fg_apply";

/* Known devices are the common case: try the update first (one seek), and
 * insert only when it touched nothing.  A clock that steps back never
 * moves last_seen backwards.  A device the registry knows but that was
 * never heard of gets its first sighting here. */
static const char SQL_DEVICE_SEEN[] =
	"UPDATE devices SET last_seen_ms = ?2, first_seen_ms = coalesce(first_seen_ms, ?2),"
	" source = coalesce(source, ?3), plugin = coalesce(plugin, ?4)"
	" WHERE id = ?1 AND (last_seen_ms IS NULL OR last_seen_ms < ?2)";
static const char SQL_DEVICE_NEW[] =
	"INSERT OR IGNORE INTO devices(id, source, plugin, first_seen_ms, last_seen_ms)"
	" VALUES(?1, ?2, ?3, ?4, ?4)";

static const char SQL_EVENT_INSERT[] =
	"INSERT INTO events(recv_ms, device_ms, source, plugin, device, kind, severity,"
	" clears, value, unit, attrs, incident_id, topic)"
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

static const char SQL_FIND_OPEN[] =
	"SELECT id, state, severity, cleared_ms, attrs FROM incidents"
	" WHERE dedup_key = ?1 AND state <> 'closed'";

static const char SQL_INCIDENT_INSERT[] =
	"INSERT INTO incidents(dedup_key, device, source, plugin, kind, severity, state,"
	" revision, count, opened_ms, last_seen_ms, value, unit, attrs)"
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, 'open', 1, 1, ?7, ?7, ?8, ?9, ?10)";

static const char SQL_INCIDENT_EVENTS[] =
	"UPDATE incidents SET first_event_id = ?2, last_event_id = ?2 WHERE id = ?1";

/* A repeat keeps the latest measured value and attributes; an event without
 * a value does not erase the last one. */
#define SQL_FOLD_SET \
	"count = count + 1, last_seen_ms = max(last_seen_ms, ?2)," \
	" value = CASE WHEN ?3 IS NULL THEN value ELSE ?3 END," \
	" unit = CASE WHEN ?3 IS NULL THEN unit ELSE ?4 END," \
	" attrs = coalesce(?5, attrs), last_event_id = ?6"

static const char SQL_FOLD[] =
	"UPDATE incidents SET " SQL_FOLD_SET " WHERE id = ?1";

/* Fold that is also a new revision: re-alarm after a clear, or a rise in
 * severity. */
static const char SQL_FOLD_REVISE[] =
	"UPDATE incidents SET " SQL_FOLD_SET ", severity = ?7, cleared_ms = NULL,"
	" revision = revision + (hold_until_ms IS NULL AND parent_id IS NULL) WHERE id = ?1";

static const char SQL_FIND_ACTIVE_KEY[] =
	"SELECT id, state, kind, parent_id FROM incidents"
	" WHERE dedup_key = ?1 AND state <> 'closed' AND cleared_ms IS NULL";

static const char SQL_FIND_ACTIVE_DEVICE[] =
	"SELECT id, state, kind, parent_id FROM incidents"
	" WHERE device = ?1 AND state <> 'closed' AND cleared_ms IS NULL ORDER BY id";

static const char SQL_CLEAR[] =
	"UPDATE incidents SET cleared_ms = ?2,"
	" revision = revision + (hold_until_ms IS NULL AND parent_id IS NULL),"
	" last_event_id = ?3 WHERE id = ?1";

static const char SQL_HISTORY[] =
	"INSERT INTO incident_history(incident_id, at_ms, from_state, to_state, actor,"
	" channel, note, revision)"
	" SELECT id, ?2, ?3, state, ?4, ?5, ?6, revision FROM incidents WHERE id = ?1";

/* A re-alarm soon after close reopens the incident it ends, if the center
 * ever had it (a held report dropped quietly was never sent).  (Revisions
 * made while a report is held back are not counted: the first webhook of
 * a held incident is revision 1.) */
static const char SQL_FIND_CLOSED[] =
	"SELECT id, severity FROM incidents WHERE dedup_key = ?1 AND state = 'closed' AND closed_ms >= ?2"
	" AND reported_ms IS NOT NULL ORDER BY closed_ms DESC LIMIT 1";

/* Reopening by a re-alarm: like a fold that is a new revision, and the
 * incident starts over (escalation from level 0, no disposition). */
static const char SQL_REOPEN[] =
	"UPDATE incidents SET " SQL_FOLD_SET ", severity = ?7,"
	" cleared_ms = NULL, closed_ms = NULL, resolved_ms = NULL, disposition = NULL,"
	" state = 'reopened', overdue = 0, esc_level = 0, reopened = reopened + 1,"
	" revision = revision + 1 WHERE id = ?1";

/* Device health is resolved by the device itself (the center still
 * closes it). */
static const char SQL_AUTO_RESOLVE[] =
	"UPDATE incidents SET state = 'resolved', resolved_ms = ?2 WHERE id = ?1";

/* The first acceptance of an incident the center already acted on (it
 * dispatched before our 2xx was processed): the time, not the state. */
static const char SQL_REPORTED_AT[] =
	"UPDATE incidents SET reported_ms = ?2 WHERE id = ?1 AND reported_ms IS NULL";

static const char SQL_CASE_NO[] =
	"UPDATE incidents SET case_no = ?2 WHERE id = ?1 AND case_no IS NULL";

static const char SQL_MARK_REPORTED[] =
	"UPDATE incidents SET state = 'reported', reported_ms = coalesce(reported_ms, ?2)"
	" WHERE id = ?1 AND state = 'open'";

static const char SQL_GET[] =
	"SELECT i.id, i.dedup_key, i.device, i.source, i.plugin, i.kind, i.severity, i.state,"
	" i.revision, i.count, i.opened_ms, i.last_seen_ms, i.cleared_ms, i.closed_ms,"
	" i.reported_ms, i.value, i.unit, i.attrs, i.case_no, i.disposition, i.dispatched_unit,"
	" i.overdue, i.confirmed, i.esc_level, i.esc_due_ms, i.deadline_ms, i.confirm_due_ms,"
	" i.hold_until_ms, i.dispatched_ms, i.resolved_ms, i.reopened, i.site, i.parent_id,"
	" coalesce(d.registered, 0), d.id, d.registry_plugin, d.name, d.compound, d.building,"
	" d.unit, d.floor, d.room, d.grid_small, d.grid_medium, d.grid_large, d.flags, d.contact"
	" FROM incidents AS i LEFT JOIN devices AS d ON d.id = i.device AND d.registered = 1"
	" WHERE i.id = ?1";

void fg_incident_clear(struct fg_incident *inc)
{
	if (!inc)
		return;
	free(inc->dedup_key);
	free(inc->device);
	free(inc->source);
	free(inc->plugin);
	free(inc->state);
	free(inc->unit);
	free(inc->attrs_json);
	free(inc->case_no);
	free(inc->disposition);
	free(inc->dispatched_unit);
	free(inc->site);
	for (size_t i = 0; i < FG_ARRAY_SIZE(inc->reg); i++)
		free(inc->reg[i]);
	memset(inc, 0, sizeof(*inc));
}

int fg_incidents_new(fg_store *st, struct fg_outbox *ob, fg_incidents **ret)
{
	fg_incidents *inc = calloc(1, sizeof(*inc));
	if (!inc)
		return -ENOMEM;
	inc->st = st;
	inc->ob = ob;
	*ret = inc;
	return 0;
}

void fg_incidents_free(fg_incidents *inc)
{
	free(inc);
}

void fg_incidents_set_conf(fg_incidents *inc, const struct fg_conf *conf)
{
	inc->conf = conf;
}

void fg_incidents_settle(fg_incidents *inc, int64_t until_ms)
{
	if (until_ms > inc->settle_until_ms)
		inc->settle_until_ms = until_ms;
}

int64_t fg_incidents_settle_until(fg_incidents *inc)
{
	return inc->settle_until_ms;
}

const struct fg_conf *fg_incidents_conf(fg_incidents *inc)
{
	return inc->conf;
}

fg_store *fg_incidents_store(fg_incidents *inc)
{
	return inc->st;
}


static int64_t column_ms(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, col);
}

int fg_incident_get(fg_store *st, int64_t id, struct fg_incident *ret)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_GET);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	int r = fg_store_step_row(s);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;

	bool oom = false;
	struct fg_incident inc = {
		.id = sqlite3_column_int64(s, 0),
		.dedup_key = fg_store_column_strdup(s, 1),
		.device = fg_store_column_strdup(s, 2),
		.source = fg_store_column_strdup(s, 3),
		.plugin = fg_store_column_strdup(s, 4),
		.state = fg_store_column_strdup(s, 7),
		.revision = sqlite3_column_int64(s, 8),
		.count = sqlite3_column_int64(s, 9),
		.opened_ms = column_ms(s, 10),
		.last_seen_ms = column_ms(s, 11),
		.cleared_ms = column_ms(s, 12),
		.closed_ms = column_ms(s, 13),
		.reported_ms = column_ms(s, 14),
		.has_value = sqlite3_column_type(s, 15) != SQLITE_NULL,
		.value = sqlite3_column_double(s, 15),
		.unit = fg_store_column_strdup(s, 16),
		.attrs_json = fg_store_column_strdup(s, 17),
	};
	/* Names this binary does not know (a newer daemon wrote them) read
	 * as none/info rather than failing the whole row. */
	inc.case_no = fg_store_column_strdup(s, 18);
	inc.disposition = fg_store_column_strdup(s, 19);
	inc.dispatched_unit = fg_store_column_strdup(s, 20);
	inc.overdue = sqlite3_column_int(s, 21);
	inc.confirmed = sqlite3_column_int(s, 22);
	inc.esc_level = sqlite3_column_int(s, 23);
	inc.esc_due_ms = column_ms(s, 24);
	inc.deadline_ms = column_ms(s, 25);
	inc.confirm_due_ms = column_ms(s, 26);
	inc.hold_until_ms = column_ms(s, 27);
	inc.dispatched_ms = column_ms(s, 28);
	inc.resolved_ms = column_ms(s, 29);
	inc.reopened = sqlite3_column_int64(s, 30);
	inc.site = fg_store_column_strdup(s, 31);
	inc.parent_id = column_ms(s, 32);
	inc.registered = sqlite3_column_int(s, 33);
	for (int c = 0; c < (int)FG_ARRAY_SIZE(inc.reg); c++) {
		inc.reg[c] = fg_store_column_strdup(s, 34 + c);
		oom |= !inc.reg[c] && sqlite3_column_type(s, 34 + c) != SQLITE_NULL;
	}
	if (fg_kind_parse((const char *)sqlite3_column_text(s, 5), &inc.kind) < 0)
		inc.kind = FG_KIND_NONE;
	if (fg_severity_parse((const char *)sqlite3_column_text(s, 6), &inc.severity) < 0)
		inc.severity = FG_SEV_INFO;
	for (int col = 16; col <= 31; col++) {
		char *const *p = col == 16 ? &inc.unit : col == 17 ? &inc.attrs_json :
		                 col == 18 ? &inc.case_no : col == 19 ? &inc.disposition :
		                 col == 20 ? &inc.dispatched_unit : col == 31 ? &inc.site : NULL;
		oom |= p && !*p && sqlite3_column_type(s, col) != SQLITE_NULL;
	}
	sqlite3_reset(s);
	if (!inc.dedup_key || !inc.device || !inc.source || !inc.plugin || !inc.state || oom) {
		fg_incident_clear(&inc);
		return -ENOMEM;
	}
	*ret = inc;
	return 0;
}

/* "<device>|<kind>" in buf, or malloc'd when it does not fit (the caller
 * frees the result when it differs from buf).  NULL on OOM. */
static char *dedup_key(char *buf, size_t len, const char *device, fg_kind kind)
{
	int n = snprintf(buf, len, "%s|%s", device, fg_kind_name(kind));
	if (n < 0)
		return NULL;
	if ((size_t)n < len)
		return buf;
	char *p = malloc((size_t)n + 1);
	if (p)
		snprintf(p, (size_t)n + 1, "%s|%s", device, fg_kind_name(kind));
	return p;
}

struct apply {
	fg_incidents *inc;
	const struct fg_ev *ev;
	int64_t now_ms;
	char actor[160];           /* "<plugin>/<source>" for history rows */
};

/* The state changed on the device's account: escalation and deadlines
 * follow the new state. */
static int lifecycle_restart(struct apply *a, int64_t id)
{
	return fg_incidents_reschedule(a->inc, id, a->now_ms);
}

static int device_seen(struct apply *a)
{
	fg_store *st = a->inc->st;
	sqlite3_stmt *s = fg_store_stmt(st, SQL_DEVICE_SEEN);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, a->ev->device);
	sqlite3_bind_int64(s, 2, a->now_ms);
	fg_store_bind_text(s, 3, a->ev->source);
	fg_store_bind_text(s, 4, a->ev->plugin);
	int r = fg_store_step_done(s);
	if (r < 0 || sqlite3_changes(fg_store_db(st)) > 0)
		return r;
	/* New device, or one already seen at this very millisecond. */
	s = fg_store_stmt(st, SQL_DEVICE_NEW);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, a->ev->device);
	fg_store_bind_text(s, 2, a->ev->source);
	fg_store_bind_text(s, 3, a->ev->plugin);
	sqlite3_bind_int64(s, 4, a->now_ms);
	return fg_store_step_done(s);
}

static void bind_value(sqlite3_stmt *s, int idx, const struct fg_ev *ev)
{
	if (ev->has_value) {
		sqlite3_bind_double(s, idx, ev->value);
		fg_store_bind_text(s, idx + 1, ev->unit);
	} else {
		sqlite3_bind_null(s, idx);
		sqlite3_bind_null(s, idx + 1);
	}
}

/* Record the event itself; *ret_id gets its row id. */
static int event_insert(struct apply *a, int64_t incident_id, int64_t *ret_id)
{
	const struct fg_ev *ev = a->ev;
	sqlite3_stmt *s = fg_store_stmt(a->inc->st, SQL_EVENT_INSERT);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, a->now_ms);
	if (ev->device_time_ms)
		sqlite3_bind_int64(s, 2, ev->device_time_ms);
	fg_store_bind_text(s, 3, ev->source);
	fg_store_bind_text(s, 4, ev->plugin);
	fg_store_bind_text(s, 5, ev->device);
	fg_store_bind_text(s, 6, fg_kind_name(ev->kind));
	fg_store_bind_text(s, 7, fg_severity_name(ev->severity));
	if (ev->kind == FG_KIND_CLEAR && ev->clears != FG_KIND_NONE)
		fg_store_bind_text(s, 8, fg_kind_name(ev->clears));
	bind_value(s, 9, ev);
	fg_store_bind_text(s, 11, ev->attrs_json);
	if (incident_id)
		sqlite3_bind_int64(s, 12, incident_id);
	fg_store_bind_text(s, 13, ev->topic);
	int r = fg_store_step_done(s);
	if (r < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(fg_store_db(a->inc->st));
	return 0;
}

int fg_incident_history_add(fg_store *st, int64_t id, int64_t at_ms, const char *from_state,
                            const char *actor, const char *channel, const char *note)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_HISTORY);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, at_ms);
	fg_store_bind_text(s, 3, from_state);
	fg_store_bind_text(s, 4, actor);
	fg_store_bind_text(s, 5, channel);
	fg_store_bind_text(s, 6, note);
	return fg_store_step_done(s);
}

int fg_incidents_publish(fg_incidents *inc, int64_t id, const char *change,
                         const struct fg_ev *trigger, int64_t now_ms)
{
	if (!inc->ob)
		return 0;
	struct fg_incident row;
	int r = fg_incident_get(inc->st, id, &row);
	if (r < 0)
		return r;
	if (!row.hold_until_ms && !row.parent_id)
		r = fg_outbox_enqueue(inc->ob, &row, trigger, change, now_ms);
	fg_incident_clear(&row);
	return r < 0 ? r : 0;
}

/* History row for the incident's current state and revision. */
static int history(struct apply *a, int64_t incident_id, const char *from_state,
                   const char *note)
{
	return fg_incident_history_add(a->inc->st, incident_id, a->now_ms, from_state, a->actor,
	                               "device", note);
}

/* Queue the incident's current revision for the sinks. */
static int publish(struct apply *a, int64_t incident_id, const char *change)
{
	return fg_incidents_publish(a->inc, incident_id, change, a->ev, a->now_ms);
}

static int open_incident(struct apply *a, const char *key, int64_t *ret_id)
{
	const struct fg_ev *ev = a->ev;
	fg_store *st = a->inc->st;
	sqlite3_stmt *s = fg_store_stmt(st, SQL_INCIDENT_INSERT);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, key);
	fg_store_bind_text(s, 2, ev->device);
	fg_store_bind_text(s, 3, ev->source);
	fg_store_bind_text(s, 4, ev->plugin);
	fg_store_bind_text(s, 5, fg_kind_name(ev->kind));
	fg_store_bind_text(s, 6, fg_severity_name(ev->severity));
	sqlite3_bind_int64(s, 7, a->now_ms);
	bind_value(s, 8, ev);
	fg_store_bind_text(s, 10, ev->attrs_json);
	int r = fg_store_step_done(s);
	if (r < 0)
		return r;
	int64_t id = sqlite3_last_insert_rowid(fg_store_db(st)), event_id;
	r = event_insert(a, id, &event_id);
	if (r < 0)
		return r;
	s = fg_store_stmt(st, SQL_INCIDENT_EVENTS);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, event_id);
	r = fg_store_step_done(s);
	if (r >= 0)
		r = fg_incidents_on_open(a->inc, id, a->ev, a->now_ms);
	if (r >= 0)
		r = history(a, id, NULL, NULL);
	if (r >= 0)
		r = publish(a, id, "opened");
	if (r < 0)
		return r;
	*ret_id = id;
	return FG_APPLY_OPENED;
}

/* A re-alarm brings a resolved (or recently closed) incident back. */
static int reopen(struct apply *a, int64_t id, int64_t event_id, const char *from_state,
                  fg_severity sev, const char *note)
{
	sqlite3_stmt *s = fg_store_stmt(a->inc->st, SQL_REOPEN);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, a->now_ms);
	bind_value(s, 3, a->ev);
	fg_store_bind_text(s, 5, a->ev->attrs_json);
	sqlite3_bind_int64(s, 6, event_id);
	fg_store_bind_text(s, 7, fg_severity_name(sev));
	int r = fg_store_step_done(s);
	if (r >= 0)
		r = lifecycle_restart(a, id);
	if (r >= 0)
		r = history(a, id, from_state, note);
	if (r >= 0)
		r = publish(a, id, "reopened");
	return r < 0 ? r : FG_APPLY_REOPENED;
}

/* A closed incident of this key within the reopen window?  1 and its id
 * and severity, 0 when none (or no window), -errno. */
static int find_closed(struct apply *a, const char *key, int64_t *ret_id, fg_severity *ret_sev)
{
	const struct fg_conf *conf = a->inc->conf;
	if (!conf || conf->reopen_window_ms <= 0)
		return 0;
	sqlite3_stmt *s = fg_store_stmt(a->inc->st, SQL_FIND_CLOSED);
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, key);
	sqlite3_bind_int64(s, 2, a->now_ms - conf->reopen_window_ms);
	int r = fg_store_step_row(s);
	if (r > 0) {
		*ret_id = sqlite3_column_int64(s, 0);
		if (fg_severity_parse((const char *)sqlite3_column_text(s, 1), ret_sev) < 0)
			*ret_sev = FG_SEV_INFO;
		sqlite3_reset(s);
	}
	return r;
}

static int reopen_closed(struct apply *a, int64_t id, fg_severity sev)
{
	int64_t event_id;
	int r = event_insert(a, id, &event_id);
	if (r < 0)
		return r;
	return reopen(a, id, event_id, FG_STATE_CLOSED,
	              a->ev->severity > sev ? a->ev->severity : sev,
	              "realarm within the reopen window");
}

/*
 * Attributes whose change is news for the operations centre while the
 * condition goes on: a blocked fire lane's plate (often read after the lane
 * was reported) and its number of vehicles.  Other attrs (dwell, times)
 * follow the latest event silently; pictures accumulate (attrs_fold).
 */
static const struct {
	fg_kind kind;
	const char *keys[3];
} revising_attrs[] = {
	{ FG_KIND_FIRE_LANE_BLOCKED, { "plate", "vehicles", NULL } },
};

/* Most pictures one incident keeps in attrs.snapshots. */
#define INCIDENT_MAX_SNAPSHOTS 16

/* Did a revising attribute (keys) of the event (now) change against the
 * incident's attrs (old)?  An attribute the event does not carry is no
 * change.  Writes "plate: - -> X" style notes into note. */
static bool attrs_revise(const char *const *keys, const json_t *now, const json_t *old,
                         char *note, size_t len)
{
	size_t used = 0;
	note[0] = '\0';
	for (size_t k = 0; keys && keys[k]; k++) {
		json_t *n = json_object_get(now, keys[k]), *o = json_object_get(old, keys[k]);
		if (!n || json_is_null(n) || (o && json_equal(n, o)))
			continue;
		char *ot = o ? json_dumps(o, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		char *nt = json_dumps(n, JSON_ENCODE_ANY | JSON_COMPACT);
		int w = snprintf(note + used, len - used, "%s%s: %.40s -> %.40s", used ? ", " : "",
		                 keys[k], ot ? ot : "-", nt ? nt : "?");
		free(ot);
		free(nt);
		if (w > 0)
			used = (size_t)w >= len - used ? len - 1 : used + (size_t)w;
	}
	return used > 0;
}

/* Add the pictures of fresh (an array, or anything else: none) to list,
 * each once (by sha256), up to INCIDENT_MAX_SNAPSHOTS; how many were
 * added. */
static size_t snapshots_merge(json_t *list, const json_t *fresh)
{
	size_t i, j, added = 0;
	json_t *pic, *have;
	json_array_foreach(json_is_array(fresh) ? fresh : NULL, i, pic) {
		const char *sha = json_string_value(json_object_get(pic, "sha256"));
		bool known = false;
		json_array_foreach(list, j, have)
			known = known || (sha && json_equal(json_object_get(have, "sha256"),
			                                    json_object_get(pic, "sha256")));
		if (!known && json_array_size(list) < INCIDENT_MAX_SNAPSHOTS &&
		    json_array_append(list, pic) == 0)
			added++;
	}
	return added;
}

/*
 * A repeat's attrs replace the incident's, except its pictures: the incident
 * keeps the ones it has (a Frigate snapshot fetched after the report, pictures
 * pushed with earlier posts) and gains the event's new ones, so a later
 * revision (a plate read late) never drops a picture the operations centre
 * was already sent.  The earliest INCIDENT_MAX_SNAPSHOTS stay: they show how
 * the condition began.  Returns the merged attrs (malloc'd), or NULL when the
 * event's own attrs stand as they are.
 */
static char *attrs_fold(json_t *now, const json_t *old)
{
	json_t *kept = json_object_get(old, "snapshots");
	if (!json_is_object(now) || !json_is_array(kept) || json_array_size(kept) == 0)
		return NULL;
	json_t *merged = json_deep_copy(kept);
	snapshots_merge(merged, json_object_get(now, "snapshots"));
	json_object_set_new(now, "snapshots", merged);
	return json_dumps(now, JSON_COMPACT);
}

/*
 * What a repeat of the event does to the incident's attrs (old_json, may be
 * NULL), with each side parsed once and only when it matters (a kind with
 * revising attributes, an incident with pictures): true when a revising
 * attribute changed (note says which), and in *ret_attrs what the attrs
 * become (malloc'd; NULL = the event's as they are).
 */
static bool attrs_repeat(const struct fg_ev *ev, const char *old_json, char *note, size_t len,
                         char **ret_attrs)
{
	const char *const *keys = NULL;
	for (size_t i = 0; i < sizeof(revising_attrs) / sizeof(revising_attrs[0]); i++)
		if (revising_attrs[i].kind == ev->kind)
			keys = revising_attrs[i].keys;
	bool pictures = old_json && strstr(old_json, "\"snapshots\"");
	*ret_attrs = NULL;
	if (!ev->attrs_json || (!keys && !pictures))
		return false;
	json_t *now = json_loads(ev->attrs_json, 0, NULL);
	json_t *old = old_json ? json_loads(old_json, 0, NULL) : NULL;
	bool news = attrs_revise(keys, now, old, note, len);
	if (pictures)
		*ret_attrs = attrs_fold(now, old);
	json_decref(now);
	json_decref(old);
	return news;
}

/* An alarm for a key that has an incident that is not closed.  attrs_note
 * (NULL = none) says which revising attribute changed (attrs_revise); attrs
 * (NULL = the event's) is what the incident's attrs become. */
static int fold(struct apply *a, int64_t id, const char *state, fg_severity severity,
                bool cleared, const char *attrs_note, const char *attrs)
{
	const struct fg_ev *ev = a->ev;
	fg_store *st = a->inc->st;
	int64_t event_id;
	int r = event_insert(a, id, &event_id);
	if (r < 0)
		return r;
	/* Severity only ever rises; a rise is news for the operations centre,
	 * just like a re-alarm after a clear. */
	fg_severity new_sev = ev->severity > severity ? ev->severity : severity;
	bool revise = cleared || new_sev != severity || attrs_note;
	if (cleared && strcmp(state, FG_STATE_RESOLVED) == 0)
		return reopen(a, id, event_id, state, new_sev, "realarm of a resolved incident");
	sqlite3_stmt *s = fg_store_stmt(st, revise ? SQL_FOLD_REVISE : SQL_FOLD);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, a->now_ms);
	bind_value(s, 3, ev);
	fg_store_bind_text(s, 5, attrs ? attrs : ev->attrs_json);
	sqlite3_bind_int64(s, 6, event_id);
	if (revise)
		fg_store_bind_text(s, 7, fg_severity_name(new_sev));
	r = fg_store_step_done(s);
	if (r < 0 || !revise)
		return r < 0 ? r : FG_APPLY_REPEAT;

	char note[160];
	if (cleared)
		snprintf(note, sizeof(note), "realarm");
	else if (new_sev != severity)
		snprintf(note, sizeof(note), "severity %s -> %s", fg_severity_name(severity),
		         fg_severity_name(new_sev));
	else
		snprintf(note, sizeof(note), "attrs %s", attrs_note);
	r = history(a, id, state, note);
	if (r >= 0)
		r = publish(a, id, "updated");
	if (r < 0)
		return r;
	return cleared ? FG_APPLY_REALARM : FG_APPLY_REPEAT;
}

static int apply_alarm(struct apply *a, int64_t *ret_id)
{
	char buf[256];
	char *key = dedup_key(buf, sizeof(buf), a->ev->device, a->ev->kind);
	if (!key)
		return -ENOMEM;
	int r = device_seen(a);
	sqlite3_stmt *s = r < 0 ? NULL : fg_store_stmt(a->inc->st, SQL_FIND_OPEN);
	if (r >= 0 && !s)
		r = -EIO;
	if (r >= 0) {
		fg_store_bind_text(s, 1, key);
		r = fg_store_step_row(s);
	}
	if (r == 1) {
		int64_t id = sqlite3_column_int64(s, 0);
		char state[24];
		snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(s, 1));
		fg_severity sev;
		if (fg_severity_parse((const char *)sqlite3_column_text(s, 2), &sev) < 0)
			sev = FG_SEV_INFO;
		bool cleared = sqlite3_column_type(s, 3) != SQLITE_NULL;
		char note[128];
		char *attrs;
		bool news = attrs_repeat(a->ev, (const char *)sqlite3_column_text(s, 4), note,
		                         sizeof(note), &attrs);
		sqlite3_reset(s);
		r = fold(a, id, state, sev, cleared, news ? note : NULL, attrs);
		free(attrs);
		*ret_id = id;
	} else if (r == 0) {
		int64_t closed_id = 0;
		fg_severity sev = FG_SEV_INFO;
		r = find_closed(a, key, &closed_id, &sev);
		if (r > 0) {
			r = reopen_closed(a, closed_id, sev);
			*ret_id = closed_id;
		} else if (r == 0) {
			r = open_incident(a, key, ret_id);
		}
	}
	if (key != buf)
		free(key);
	return r;
}

struct active {
	int64_t id;
	char state[24];
	fg_kind kind;
	int64_t parent_id;
};

/* Conditions of the device itself, which end when it says so. */
static bool device_health(fg_kind k)
{
	return k == FG_KIND_BATTERY_LOW || k == FG_KIND_TAMPER || k == FG_KIND_FAULT ||
	       k == FG_KIND_OFFLINE;
}

static bool state_live(const char *state)
{
	return strcmp(state, FG_STATE_RESOLVED) != 0 && strcmp(state, FG_STATE_CLOSED) != 0;
}

/* Active (not cleared, not closed) incidents a recovery event ends. */
static int find_active(struct apply *a, fg_kind target, struct active **ret, size_t *ret_n)
{
	char buf[256], *key = NULL;
	sqlite3_stmt *s;
	if (target != FG_KIND_NONE) {
		key = dedup_key(buf, sizeof(buf), a->ev->device, target);
		if (!key)
			return -ENOMEM;
		s = fg_store_stmt(a->inc->st, SQL_FIND_ACTIVE_KEY);
		if (s)
			fg_store_bind_text(s, 1, key);
	} else {
		s = fg_store_stmt(a->inc->st, SQL_FIND_ACTIVE_DEVICE);
		if (s)
			fg_store_bind_text(s, 1, a->ev->device);
	}
	int r = s ? 0 : -EIO;
	struct active *v = NULL;
	size_t n = 0, cap = 0;
	while (r >= 0 && (r = fg_store_step_row(s)) > 0) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct active *nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				sqlite3_reset(s);
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n].id = sqlite3_column_int64(s, 0);
		snprintf(v[n].state, sizeof(v[n].state), "%s", (const char *)sqlite3_column_text(s, 1));
		if (fg_kind_parse((const char *)sqlite3_column_text(s, 2), &v[n].kind) < 0)
			v[n].kind = FG_KIND_NONE;
		v[n].parent_id = column_ms(s, 3);
		n++;
	}
	if (key && key != buf)
		free(key);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int apply_recovery(struct apply *a, int64_t *ret_id)
{
	const struct fg_ev *ev = a->ev;
	fg_kind target = ev->kind == FG_KIND_CLEAR ? ev->clears : fg_kind_recovers(ev->kind);
	struct active *v = NULL;
	size_t n = 0;
	int64_t event_id;
	int r = device_seen(a);
	if (r >= 0)
		r = find_active(a, target, &v, &n);
	if (r >= 0)
		r = event_insert(a, n ? v[0].id : 0, &event_id);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		sqlite3_stmt *s = fg_store_stmt(a->inc->st, SQL_CLEAR);
		if (!s) {
			r = -EIO;
			break;
		}
		sqlite3_bind_int64(s, 1, v[i].id);
		sqlite3_bind_int64(s, 2, a->now_ms);
		sqlite3_bind_int64(s, 3, event_id);
		r = fg_store_step_done(s);
		/* The device says it is healthy again: resolved, and the
		 * center's close is still needed. */
		if (r >= 0 && device_health(v[i].kind) && state_live(v[i].state) &&
		    (s = fg_store_stmt(a->inc->st, SQL_AUTO_RESOLVE))) {
			sqlite3_bind_int64(s, 1, v[i].id);
			sqlite3_bind_int64(s, 2, a->now_ms);
			r = fg_store_step_done(s);
			if (r >= 0)
				r = lifecycle_restart(a, v[i].id);
		}
		if (r >= 0)
			r = history(a, v[i].id, v[i].state, "cleared");
		if (r >= 0)
			r = publish(a, v[i].id, "cleared");
		if (r >= 0 && v[i].parent_id)
			r = fg_incidents_child_cleared(a->inc, v[i].parent_id, a->now_ms);
	}
	if (r >= 0) {
		*ret_id = n ? v[0].id : 0;
		r = n ? FG_APPLY_CLEARED : FG_APPLY_RECORDED;
	}
	free(v);
	return r;
}

static int apply_other(struct apply *a, int64_t *ret_id)
{
	int64_t event_id;
	int r = device_seen(a);
	if (r >= 0)
		r = event_insert(a, 0, &event_id);
	*ret_id = 0;
	return r < 0 ? r : FG_APPLY_RECORDED;
}

static int run_stmt(fg_store *st, const char *sql)
{
	sqlite3_stmt *s = fg_store_stmt(st, sql);
	return s ? fg_store_step_done(s) : -EIO;
}

int fg_incidents_apply(fg_incidents *inc, const struct fg_ev *ev, int64_t *ret_incident_id)
{
	if (!ev || !ev->device || !ev->device[0] || !ev->source || !ev->plugin ||
	    ev->kind == FG_KIND_NONE || !fg_kind_name(ev->kind) ||
	    !fg_severity_name(ev->severity) ||
	    (ev->kind == FG_KIND_CLEAR && !fg_kind_name(ev->clears)))
		return -EINVAL;
	struct apply a = {
		.inc = inc,
		.ev = ev,
		.now_ms = ev->recv_time_ms ? ev->recv_time_ms : fg_now_ms(),
	};
	snprintf(a.actor, sizeof(a.actor), "%s/%s", ev->plugin, ev->source);

	int r = fg_store_begin(inc->st);
	if (r >= 0)
		r = run_stmt(inc->st, SQL_SAVEPOINT);
	if (r < 0)
		return r;

	int64_t id = 0;
	if (fg_kind_opens_incident(ev->kind))
		r = apply_alarm(&a, &id);
	else if (fg_kind_is_recovery(ev->kind))
		r = apply_recovery(&a, &id);
	else
		r = apply_other(&a, &id);

	if (r < 0) {
		run_stmt(inc->st, SQL_ROLLBACK_TO);
		run_stmt(inc->st, SQL_RELEASE);
		return r;
	}
	int rr = run_stmt(inc->st, SQL_RELEASE);
	if (rr < 0)
		return rr;
	if (ret_incident_id)
		*ret_incident_id = id;
	for (struct fg_incidents_watcher *w = inc->watchers; w; w = w->next)
		w->cb(w->data, ev, id);
	return r;
}

void fg_incidents_watch(fg_incidents *inc, struct fg_incidents_watcher *w)
{
	w->next = inc->watchers;
	inc->watchers = w;
}

void fg_incidents_unwatch(fg_incidents *inc, struct fg_incidents_watcher *w)
{
	for (struct fg_incidents_watcher **p = inc ? &inc->watchers : NULL; p && *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			w->next = NULL;
			return;
		}
}

static const char SQL_ATTRS_OF[] =
	"SELECT attrs FROM incidents WHERE id = ?1 AND device = ?2 AND kind = ?3"
	" AND state <> 'closed'";
static const char SQL_ATTRS_SET[] = "UPDATE incidents SET attrs = ?2 WHERE id = ?1";

int fg_incidents_add_snapshot(fg_incidents *inc, int64_t id, const char *device, fg_kind kind,
                              const json_t *ref, int64_t at_ms)
{
	int r = fg_store_begin(inc->st);
	sqlite3_stmt *s = r < 0 ? NULL : fg_store_stmt(inc->st, SQL_ATTRS_OF);
	if (r >= 0 && !s)
		r = -EIO;
	if (r < 0)
		return r;
	fg_store_bind_text(s, 2, device);
	fg_store_bind_text(s, 3, fg_kind_name(kind));
	sqlite3_bind_int64(s, 1, id);
	r = fg_store_step_row(s);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	const char *text = (const char *)sqlite3_column_text(s, 0);
	json_t *attrs = text ? json_loads(text, 0, NULL) : NULL;
	sqlite3_reset(s);
	if (!json_is_object(attrs)) {
		json_decref(attrs);
		attrs = json_object();
	}
	json_t *list = json_object_get(attrs, "snapshots");
	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(attrs, "snapshots", list);
	}
	json_t *one = json_pack("[O]", ref);
	size_t added = one && list ? snapshots_merge(list, one) : 0;
	json_decref(one);
	char *out = added ? json_dumps(attrs, JSON_COMPACT) : NULL;
	json_decref(attrs);
	if (!added)
		return 0;
	s = out ? fg_store_stmt(inc->st, SQL_ATTRS_SET) : NULL;
	r = !out ? -ENOMEM : !s ? -EIO : 0;
	if (r == 0) {
		sqlite3_bind_int64(s, 1, id);
		fg_store_bind_text(s, 2, out);
		r = fg_store_step_done(s);
	}
	free(out);
	if (r < 0)
		return r;
	char note[96];
	snprintf(note, sizeof(note), "snapshot attached %.16s",
	         json_string_value(json_object_get(ref, "sha256")) ?: "?");
	r = fg_incidents_annotate(inc, id, at_ms, "firegrid", "snapshot", note, "updated", NULL);
	return r < 0 ? r : r == 0 ? -ENOENT : 1;
}

/* Revisions by others (fg_incidents_annotate) under a savepoint of their
 * own: they never run inside an apply, but may run inside a caller's. */
static const char SQL_ANNOTATE_SAVEPOINT[] = "SAVEPOINT fg_annotate";
static const char SQL_ANNOTATE_RELEASE[] = "RELEASE fg_annotate";
static const char SQL_ANNOTATE_ROLLBACK_TO[] = "ROLLBACK TO fg_annotate";

static const char SQL_REVISE[] =
	"UPDATE incidents SET revision = revision + (hold_until_ms IS NULL AND parent_id IS NULL)"
	" WHERE id = ?1 AND state <> 'closed'";
static const char SQL_STATE[] = "SELECT state FROM incidents WHERE id = ?1";

int fg_incidents_annotate(fg_incidents *inc, int64_t id, int64_t at_ms, const char *actor,
                          const char *channel, const char *note, const char *change,
                          const struct fg_ev *trigger)
{
	int r = fg_store_begin(inc->st);
	if (r >= 0)
		r = run_stmt(inc->st, SQL_ANNOTATE_SAVEPOINT);
	if (r < 0)
		return r;
	sqlite3_stmt *s = fg_store_stmt(inc->st, SQL_REVISE);
	if (!s)
		r = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		r = fg_store_step_done(s);
	}
	bool live = r >= 0 && sqlite3_changes(fg_store_db(inc->st)) > 0;
	char state[24] = "";
	s = live ? fg_store_stmt(inc->st, SQL_STATE) : NULL;
	if (live && !s)
		r = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		r = fg_store_step_row(s);
		if (r > 0) {
			snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(s, 0));
			sqlite3_reset(s);
		}
	}
	if (live && r >= 0)
		r = fg_incident_history_add(inc->st, id, at_ms, state, actor, channel, note);
	if (live && r >= 0)
		r = fg_incidents_publish(inc, id, change, trigger, at_ms);
	if (r < 0)
		run_stmt(inc->st, SQL_ANNOTATE_ROLLBACK_TO);
	int rr = run_stmt(inc->st, SQL_ANNOTATE_RELEASE);
	return r < 0 ? r : rr < 0 ? rr : live;
}

int fg_incidents_delivered(fg_incidents *inc, int64_t incident_id, const char *sink,
                           int64_t at_ms, const char *resp_body, size_t resp_len)
{
	int r = fg_incidents_mark_reported(inc, incident_id, sink, at_ms);
	sqlite3_stmt *s = r < 0 ? NULL : fg_store_stmt(inc->st, SQL_REPORTED_AT);
	if (r >= 0 && !s)
		r = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, incident_id);
		sqlite3_bind_int64(s, 2, at_ms);
		r = fg_store_step_done(s);
	}
	if (r < 0 || !resp_body || !resp_len)
		return r;
	json_t *doc = json_loadb(resp_body, resp_len, 0, NULL);
	const char *case_no = json_string_value(json_object_get(doc, "case_no"));
	if (case_no && *case_no && strlen(case_no) <= 64) {
		s = fg_store_stmt(inc->st, SQL_CASE_NO);
		if (!s) {
			r = -EIO;
		} else {
			sqlite3_bind_int64(s, 1, incident_id);
			fg_store_bind_text(s, 2, case_no);
			r = fg_store_step_done(s);
		}
	}
	json_decref(doc);
	return r;
}

int fg_incidents_mark_reported(fg_incidents *inc, int64_t incident_id,
                               const char *sink, int64_t at_ms)
{
	int r = fg_store_begin(inc->st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = fg_store_stmt(inc->st, SQL_MARK_REPORTED);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, incident_id);
	sqlite3_bind_int64(s, 2, at_ms);
	r = fg_store_step_done(s);
	if (r < 0 || sqlite3_changes(fg_store_db(inc->st)) == 0)
		return r;   /* already past open (or unknown): nothing to record */

	s = fg_store_stmt(inc->st, SQL_HISTORY);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, incident_id);
	sqlite3_bind_int64(s, 2, at_ms);
	fg_store_bind_text(s, 3, FG_STATE_OPEN);
	fg_store_bind_text(s, 4, sink);
	fg_store_bind_text(s, 5, "webhook");
	return fg_store_step_done(s);
}

static const char SQL_HISTORY_READ[] =
	"SELECT at_ms, from_state, to_state, revision, actor, channel, note"
	" FROM incident_history WHERE incident_id = ?1 ORDER BY id";

static json_t *text_or_null(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	return t ? json_string((const char *)t) : json_null();
}

int fg_incident_history_json(fg_store *st, int64_t id, json_t **ret)
{
	sqlite3_stmt *s = fg_store_stmt(st, SQL_HISTORY_READ);
	if (!s)
		return -EIO;
	json_t *arr = json_array();
	if (!arr)
		return -ENOMEM;
	sqlite3_bind_int64(s, 1, id);
	int r;
	while ((r = fg_store_step_row(s)) > 0) {
		json_t *h = json_object();
		int bad = !h || json_array_append_new(arr, h) < 0;
		bad |= !bad && json_object_set_new(h, "at", fg_cloudevent_time_json(sqlite3_column_int64(s, 0))) < 0;
		bad |= !bad && json_object_set_new(h, "from", text_or_null(s, 1)) < 0;
		bad |= !bad && json_object_set_new(h, "to", text_or_null(s, 2)) < 0;
		bad |= !bad && json_object_set_new(h, "revision", sqlite3_column_type(s, 3) == SQLITE_NULL
		                                   ? json_null() : json_integer(sqlite3_column_int64(s, 3))) < 0;
		bad |= !bad && json_object_set_new(h, "actor", text_or_null(s, 4)) < 0;
		bad |= !bad && json_object_set_new(h, "channel", text_or_null(s, 5)) < 0;
		bad |= !bad && json_object_set_new(h, "note", text_or_null(s, 6)) < 0;
		if (bad) {
			sqlite3_reset(s);
			r = -ENOMEM;
			break;
		}
	}
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	*ret = arr;
	return 0;
}
