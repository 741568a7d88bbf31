/* Unit tests for the dedupe core: one incident per device+kind while open,
 * repeats fold, clears and re-alarms make revisions, tests never open
 * anything, and all of it survives a restart. */
#include <errno.h>
#include <stdarg.h>
#include "incident.h"
#include "outbox.h"
#include "store.h"
#include "store_test.h"

static fg_store *st;
static fg_outbox *ob;
static fg_incidents *incs;
static struct fg_conf_sink sink = { .name = "ops", .min_severity = FG_SEV_INFO };
static struct fg_conf conf = { .gateway_id = "gw1", .sinks = &sink, .n_sinks = 1 };
static char db_path[256];

static void open_all(void)
{
	st = NULL;
	ob = NULL;
	incs = NULL;
	CHECK(fg_store_open(db_path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		exit(1);
	CHECK(fg_outbox_new(st, &conf, &ob) == 0);
	CHECK(fg_incidents_new(st, ob, &incs) == 0);
	if (!ob || !incs)
		exit(1);
}

static void close_all(void)
{
	CHECK(fg_store_commit(st) == 0);
	fg_incidents_free(incs);
	fg_outbox_free(ob);
	fg_store_close(st);
}

static int64_t q(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t q(const char *fmt, ...)
{
	char sql[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return test_query_int(fg_store_db(st), sql);
}

static int apply(const char *device, fg_kind kind, fg_severity sev, int64_t t, int64_t *id)
{
	struct fg_ev ev = test_ev(device, kind, sev, t);
	return fg_incidents_apply(incs, &ev, id);
}

static int apply_clear(const char *device, fg_kind clears, int64_t t, int64_t *id)
{
	struct fg_ev ev = test_ev(device, FG_KIND_CLEAR, FG_SEV_INFO, t);
	ev.clears = clears;
	return fg_incidents_apply(incs, &ev, id);
}

static int64_t outbox_rows(int64_t incident_id, const char *type)
{
	return q("SELECT count(*) FROM outbox WHERE incident_id = %lld AND type = "
	         "'org.firegrid.incident.%s'", (long long)incident_id, type);
}

static void test_open_repeat_clear_realarm(void)
{
	int64_t id = -1, id2 = -1;
	struct fg_incident inc;

	CHECK(apply("dev-a", FG_KIND_SMOKE, FG_SEV_CRITICAL, 1000, &id) == FG_APPLY_OPENED);
	CHECK(id > 0);
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(strcmp(inc.dedup_key, "dev-a|smoke") == 0);
	CHECK(strcmp(inc.state, FG_STATE_OPEN) == 0);
	CHECK(inc.kind == FG_KIND_SMOKE && inc.severity == FG_SEV_CRITICAL);
	CHECK(inc.revision == 1 && inc.count == 1);
	CHECK(inc.opened_ms == 1000 && inc.last_seen_ms == 1000 && inc.cleared_ms == 0);
	CHECK(strcmp(inc.source, "z2m") == 0 && strcmp(inc.plugin, "zigbee2mqtt") == 0);
	fg_incident_clear(&inc);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND from_state IS NULL"
	        " AND to_state = 'open' AND actor = 'zigbee2mqtt/z2m' AND channel = 'device'",
	        (long long)id) == 1);
	CHECK(outbox_rows(id, "opened") == 1);
	CHECK(q("SELECT count(*) FROM outbox WHERE webhook_id = 'gw1-%lld-1'", (long long)id) == 1);
	CHECK(q("SELECT incident_id FROM events ORDER BY id DESC LIMIT 1") == id);
	CHECK(q("SELECT first_event_id = last_event_id FROM incidents WHERE id = %lld", (long long)id) == 1);

	/* Repeats (also QoS 1 redeliveries and cached-state replays) fold. */
	for (int i = 1; i <= 5; i++) {
		CHECK(apply("dev-a", FG_KIND_SMOKE, FG_SEV_CRITICAL, 1000 + i, &id2) == FG_APPLY_REPEAT);
		CHECK(id2 == id);
	}
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.count == 6 && inc.revision == 1 && inc.last_seen_ms == 1005 && inc.opened_ms == 1000);
	fg_incident_clear(&inc);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id) == 1);
	CHECK(q("SELECT count(*) FROM incidents WHERE device = 'dev-a'") == 1);
	CHECK(q("SELECT count(*) FROM events WHERE device = 'dev-a'") == 6);
	CHECK(q("SELECT first_seen_ms FROM devices WHERE id = 'dev-a'") == 1000);
	CHECK(q("SELECT last_seen_ms FROM devices WHERE id = 'dev-a'") == 1005);

	/* Clear: revision 2, "cleared" webhook, still the same (open) incident. */
	CHECK(apply_clear("dev-a", FG_KIND_SMOKE, 2000, &id2) == FG_APPLY_CLEARED);
	CHECK(id2 == id);
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.cleared_ms == 2000 && inc.revision == 2 && strcmp(inc.state, "open") == 0);
	fg_incident_clear(&inc);
	CHECK(outbox_rows(id, "cleared") == 1);
	CHECK(q("SELECT count(*) FROM outbox WHERE webhook_id = 'gw1-%lld-2'", (long long)id) == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND note = 'cleared'"
	        " AND revision = 2", (long long)id) == 1);
	CHECK(q("SELECT count(*) FROM events WHERE kind = 'clear' AND clears = 'smoke'"
	        " AND incident_id = %lld", (long long)id) == 1);

	/* A second clear finds nothing active: recorded only. */
	id2 = -1;
	CHECK(apply_clear("dev-a", FG_KIND_SMOKE, 2001, &id2) == FG_APPLY_RECORDED);
	CHECK(id2 == 0);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id) == 2);

	/* Re-alarm of the cleared, still open incident. */
	CHECK(apply("dev-a", FG_KIND_SMOKE, FG_SEV_CRITICAL, 3000, &id2) == FG_APPLY_REALARM);
	CHECK(id2 == id);
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.cleared_ms == 0 && inc.revision == 3 && inc.count == 7);
	fg_incident_clear(&inc);
	CHECK(outbox_rows(id, "updated") == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND note = 'realarm'",
	        (long long)id) == 1);
	/* ... and a repeat after it is quiet again. */
	CHECK(apply("dev-a", FG_KIND_SMOKE, FG_SEV_CRITICAL, 3001, &id2) == FG_APPLY_REPEAT);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id) == 3);
}

static void test_test_press_never_incident(void)
{
	int64_t before = q("SELECT count(*) FROM incidents"), id = -1;
	CHECK(apply("dev-t", FG_KIND_TEST, FG_SEV_INFO, 4000, &id) == FG_APPLY_RECORDED);
	CHECK(id == 0);
	CHECK(apply("dev-t", FG_KIND_TEST, FG_SEV_CRITICAL, 4001, &id) == FG_APPLY_RECORDED);
	CHECK(q("SELECT count(*) FROM incidents") == before);
	CHECK(q("SELECT count(*) FROM events WHERE device = 'dev-t' AND kind = 'test'"
	        " AND incident_id IS NULL") == 2);
	CHECK(q("SELECT count(*) FROM devices WHERE id = 'dev-t'") == 1);
}

static void test_online_clears_offline(void)
{
	int64_t off = -1, id = -1;
	CHECK(apply("dev-b", FG_KIND_OFFLINE, FG_SEV_WARNING, 5000, &off) == FG_APPLY_OPENED);
	CHECK(apply("dev-b", FG_KIND_BATTERY_LOW, FG_SEV_WARNING, 5000, &id) == FG_APPLY_OPENED);
	int64_t battery = id;
	CHECK(apply("dev-b", FG_KIND_ONLINE, FG_SEV_INFO, 5100, &id) == FG_APPLY_CLEARED);
	CHECK(id == off);
	CHECK(q("SELECT cleared_ms FROM incidents WHERE id = %lld", (long long)off) == 5100);
	/* online ends "offline" only, not the other conditions of the device. */
	CHECK(q("SELECT cleared_ms IS NULL FROM incidents WHERE id = %lld", (long long)battery) == 1);
	CHECK(outbox_rows(off, "cleared") == 1);
	/* Online of a device that was never offline: nothing to clear. */
	CHECK(apply("dev-a", FG_KIND_ONLINE, FG_SEV_INFO, 5200, &id) == FG_APPLY_RECORDED);

	int64_t lane = -1;
	CHECK(apply("cam-1", FG_KIND_FIRE_LANE_BLOCKED, FG_SEV_MAJOR, 5300, &lane) == FG_APPLY_OPENED);
	CHECK(apply("cam-1", FG_KIND_FIRE_LANE_CLEARED, FG_SEV_INFO, 5400, &id) == FG_APPLY_CLEARED);
	CHECK(id == lane);
	CHECK(q("SELECT cleared_ms FROM incidents WHERE id = %lld", (long long)lane) == 5400);
}

static void test_per_device_isolation_and_clear_all(void)
{
	int64_t a = -1, c1 = -1, c2 = -1, id = -1;
	CHECK(apply("dev-c", FG_KIND_SMOKE, FG_SEV_CRITICAL, 6000, &c1) == FG_APPLY_OPENED);
	CHECK(apply("dev-c", FG_KIND_TAMPER, FG_SEV_WARNING, 6001, &c2) == FG_APPLY_OPENED);
	CHECK(c1 != c2);
	CHECK(apply("dev-d", FG_KIND_SMOKE, FG_SEV_CRITICAL, 6002, &a) == FG_APPLY_OPENED);
	CHECK(a != c1);
	/* A clear of another kind ends nothing. */
	CHECK(apply_clear("dev-c", FG_KIND_HEAT, 6003, &id) == FG_APPLY_RECORDED);
	/* clear without a kind ends every active condition of dev-c, only. */
	CHECK(apply_clear("dev-c", FG_KIND_NONE, 6100, &id) == FG_APPLY_CLEARED);
	CHECK(id == c1);
	CHECK(q("SELECT count(*) FROM incidents WHERE device = 'dev-c' AND cleared_ms = 6100") == 2);
	CHECK(q("SELECT cleared_ms IS NULL FROM incidents WHERE id = %lld", (long long)a) == 1);
	CHECK(outbox_rows(c1, "cleared") == 1 && outbox_rows(c2, "cleared") == 1);
	CHECK(outbox_rows(a, "cleared") == 0);
}

static void test_severity_and_value(void)
{
	int64_t id = -1, id2 = -1;
	struct fg_ev ev = test_ev("shed-1", FG_KIND_OVERTEMP, FG_SEV_MAJOR, 7000);
	ev.has_value = 1;
	ev.value = 71.5;
	ev.unit = "degC";
	ev.attrs_json = "{\"port\":3}";
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	/* Same severity, no value: folds and keeps the last measurement. */
	ev = test_ev("shed-1", FG_KIND_OVERTEMP, FG_SEV_MAJOR, 7001);
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT && id2 == id);
	struct fg_incident inc;
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.has_value && inc.value == 71.5 && inc.unit && strcmp(inc.unit, "degC") == 0);
	CHECK(inc.attrs_json && strcmp(inc.attrs_json, "{\"port\":3}") == 0);
	fg_incident_clear(&inc);

	/* Rising severity is a new revision; the incident takes the maximum. */
	ev = test_ev("shed-1", FG_KIND_OVERTEMP, FG_SEV_CRITICAL, 7002);
	ev.has_value = 1;
	ev.value = 90;
	ev.unit = "degC";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT && id2 == id);
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.severity == FG_SEV_CRITICAL && inc.revision == 2 && inc.value == 90);
	fg_incident_clear(&inc);
	CHECK(outbox_rows(id, "updated") == 1);
	CHECK(q("SELECT priority FROM outbox WHERE incident_id = %lld AND revision = 2",
	        (long long)id) == FG_SEV_CRITICAL);
	/* A lower one later does not lower it, and sends nothing. */
	ev = test_ev("shed-1", FG_KIND_OVERTEMP, FG_SEV_WARNING, 7003);
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT);
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.severity == FG_SEV_CRITICAL && inc.revision == 2 && inc.count == 4);
	fg_incident_clear(&inc);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id) == 2);
}

static void test_mark_reported(void)
{
	int64_t id = -1;
	CHECK(apply("dev-r", FG_KIND_HEAT, FG_SEV_CRITICAL, 8000, &id) == FG_APPLY_OPENED);
	CHECK(fg_incidents_mark_reported(incs, id, "ops", 8050) == 0);
	CHECK(fg_incidents_mark_reported(incs, id, "backup", 8060) == 0);   /* once only */
	struct fg_incident inc;
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(strcmp(inc.state, FG_STATE_REPORTED) == 0 && inc.reported_ms == 8050);
	fg_incident_clear(&inc);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld"
	        " AND from_state = 'open' AND to_state = 'reported' AND actor = 'ops'"
	        " AND channel = 'webhook' AND at_ms = 8050", (long long)id) == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld", (long long)id) == 2);
	/* Reported is still "not closed": repeats fold into it. */
	int64_t id2 = -1;
	CHECK(apply("dev-r", FG_KIND_HEAT, FG_SEV_CRITICAL, 8100, &id2) == FG_APPLY_REPEAT && id2 == id);
	CHECK(apply_clear("dev-r", FG_KIND_HEAT, 8200, &id2) == FG_APPLY_CLEARED);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND from_state = 'reported'"
	        " AND to_state = 'reported' AND note = 'cleared'", (long long)id) == 1);
	CHECK(fg_incidents_mark_reported(incs, 999999, "ops", 8300) == 0);
}

static void test_bad_event_and_rollback(void)
{
	int64_t before = q("SELECT count(*) FROM events"), id = 77;
	CHECK(apply("", FG_KIND_SMOKE, FG_SEV_CRITICAL, 9000, &id) == -EINVAL);
	CHECK(apply("dev-x", FG_KIND_NONE, FG_SEV_CRITICAL, 9000, &id) == -EINVAL);
	CHECK(apply("dev-x", (fg_kind)99, FG_SEV_CRITICAL, 9000, &id) == -EINVAL);
	CHECK(apply("dev-x", FG_KIND_SMOKE, (fg_severity)9, 9000, &id) == -EINVAL);
	CHECK(fg_incidents_apply(incs, NULL, &id) == -EINVAL);
	CHECK(id == 77);
	CHECK(q("SELECT count(*) FROM events") == before);

	/* A batch the caller abandons leaves no trace, incident or webhook. */
	CHECK(fg_store_commit(st) == 0);
	CHECK(apply("dev-y", FG_KIND_SMOKE, FG_SEV_CRITICAL, 9100, &id) == FG_APPLY_OPENED);
	CHECK(fg_store_rollback(st) == 0);
	CHECK(q("SELECT count(*) FROM incidents WHERE device = 'dev-y'") == 0);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id) == 0);
	CHECK(q("SELECT count(*) FROM events") == before);
}

static void test_persist_and_unique_while_open(void)
{
	int64_t a = q("SELECT id FROM incidents WHERE dedup_key = 'dev-a|smoke'");
	int64_t count = q("SELECT count FROM incidents WHERE id = %lld", (long long)a);
	CHECK(a > 0);
	close_all();
	open_all();
	int64_t id = -1;
	CHECK(apply("dev-a", FG_KIND_SMOKE, FG_SEV_CRITICAL, 10000, &id) == FG_APPLY_REPEAT);
	CHECK(id == a);
	CHECK(q("SELECT count FROM incidents WHERE id = %lld", (long long)a) == count + 1);
	CHECK(q("SELECT count(*) FROM incidents WHERE dedup_key = 'dev-a|smoke'") == 1);

	/* The index refuses a second open incident for the key ... */
	CHECK(q("SELECT count(*) FROM incidents WHERE dedup_key = 'dev-a|smoke' AND state <> 'closed'") == 1);
	int rc = sqlite3_exec(fg_store_db(st),
		"INSERT INTO incidents(dedup_key, device, source, plugin, kind, severity, state,"
		" revision, count, opened_ms, last_seen_ms)"
		" VALUES('dev-a|smoke','dev-a','z2m','zigbee2mqtt','smoke','critical','open',1,1,1,1)",
		NULL, NULL, NULL);
	CHECK((rc & 0xff) == SQLITE_CONSTRAINT);
	/* ... but once the incident is closed the next alarm opens a new one. */
	CHECK(sqlite3_exec(fg_store_db(st), "UPDATE incidents SET state = 'closed', closed_ms = 10001"
	                   " WHERE dedup_key = 'dev-a|smoke'", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(apply("dev-a", FG_KIND_SMOKE, FG_SEV_CRITICAL, 10002, &id) == FG_APPLY_OPENED);
	CHECK(id != a && id > 0);
	CHECK(q("SELECT count(*) FROM incidents WHERE dedup_key = 'dev-a|smoke'") == 2);
	CHECK(q("SELECT count(*) FROM outbox WHERE webhook_id = 'gw1-%lld-1'", (long long)id) == 1);
}

static void test_long_device_id(void)
{
	char dev[600];
	memset(dev, 'x', sizeof(dev) - 1);
	dev[sizeof(dev) - 1] = '\0';
	int64_t id = -1, id2 = -1;
	CHECK(apply(dev, FG_KIND_SMOKE, FG_SEV_CRITICAL, 11000, &id) == FG_APPLY_OPENED);
	CHECK(apply(dev, FG_KIND_SMOKE, FG_SEV_CRITICAL, 11001, &id2) == FG_APPLY_REPEAT && id2 == id);
	CHECK(apply_clear(dev, FG_KIND_SMOKE, 11002, &id2) == FG_APPLY_CLEARED && id2 == id);
}

/* A blocked lane whose plate is read late, or whose number of vehicles
 * changes: a new revision ("updated"), never a new incident; the same facts
 * again, or other attrs changing, fold silently. */
static void test_lane_attrs_revise(void)
{
	int64_t id = -1, id2 = -1;
	struct fg_ev ev = test_ev("cam/1/region1", FG_KIND_FIRE_LANE_BLOCKED, FG_SEV_MAJOR, 9000);
	ev.attrs_json = "{\"vehicles\":1,\"dwell_s\":300}";
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	ev.attrs_json = "{\"vehicles\":1,\"dwell_s\":330}";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT && id2 == id);
	CHECK(outbox_rows(id, "updated") == 0);

	ev.attrs_json = "{\"vehicles\":1,\"dwell_s\":340,\"plate\":\"A12345\"}";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT && id2 == id);
	struct fg_incident inc;
	CHECK(fg_incident_get(st, id, &inc) == 0);
	CHECK(inc.revision == 2 && inc.attrs_json && strstr(inc.attrs_json, "A12345"));
	fg_incident_clear(&inc);
	CHECK(outbox_rows(id, "updated") == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND note = "
	        "'attrs plate: - -> \"A12345\"'", (long long)id) == 1);

	/* a retransmission of the same plate, an event without a plate */
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT);
	ev.attrs_json = "{\"vehicles\":1}";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT);
	CHECK(outbox_rows(id, "updated") == 1);

	ev.attrs_json = "{\"vehicles\":2,\"plate\":\"A12345\"}";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT && id2 == id);
	CHECK(outbox_rows(id, "updated") == 2);
	CHECK(q("SELECT count(*) FROM incidents WHERE device = 'cam/1/region1'") == 1);

	/* other kinds do not revise on attrs */
	ev = test_ev("shed-9", FG_KIND_OVERTEMP, FG_SEV_MAJOR, 9100);
	ev.attrs_json = "{\"plate\":\"X\",\"vehicles\":1}";
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	ev.attrs_json = "{\"plate\":\"Y\",\"vehicles\":2}";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT);
	CHECK(outbox_rows(id, "updated") == 0);
}

/* A repeat that carries no pictures (a plate read late) keeps the incident's
 * pictures; one with new pictures adds them, once each, up to the cap. */
static void test_pictures_survive_repeats(void)
{
	int64_t id = -1, id2 = -1;
	struct fg_ev ev = test_ev("cam/2/region1", FG_KIND_FIRE_LANE_BLOCKED, FG_SEV_MAJOR, 9200);
	ev.attrs_json = "{\"vehicles\":1,\"snapshots\":[{\"sha256\":\"aa\",\"url\":\"u/aa\"}]}";
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	ev.attrs_json = "{\"vehicles\":1,\"plate\":\"B777\"}";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT && id2 == id);
	CHECK(q("SELECT count(*) FROM incidents WHERE id = %lld AND attrs ->> '$.plate' = 'B777'"
	        " AND json_array_length(attrs, '$.snapshots') = 1"
	        " AND attrs ->> '$.snapshots[0].sha256' = 'aa'", (long long)id) == 1);
	CHECK(outbox_rows(id, "updated") == 1);

	ev.attrs_json = "{\"vehicles\":1,\"snapshots\":[{\"sha256\":\"aa\",\"url\":\"u/aa\"},"
	                "{\"sha256\":\"bb\",\"url\":\"u/bb\"}]}";
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT && id2 == id);
	CHECK(q("SELECT count(*) FROM incidents WHERE id = %lld"
	        " AND json_array_length(attrs, '$.snapshots') = 2"
	        " AND attrs ->> '$.snapshots[1].sha256' = 'bb'"
	        " AND attrs ->> '$.plate' IS NULL", (long long)id) == 1);

	char big[4096];
	size_t n = (size_t)snprintf(big, sizeof(big), "{\"snapshots\":[");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{\"sha256\":\"c%d\"}", i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "]}");
	ev.attrs_json = big;
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_REPEAT);
	CHECK(q("SELECT json_array_length(attrs, '$.snapshots') FROM incidents WHERE id = %lld",
	        (long long)id) == 16);
	CHECK(q("SELECT count(*) FROM incidents WHERE id = %lld AND attrs ->> '$.snapshots[0].sha256' = 'aa'",
	        (long long)id) == 1);
}

/* A picture fetched after the event joins the incident once: a second
 * fetch of the same picture (a re-alarm) adds nothing and sends nothing;
 * a closed or other incident is refused. */
static void test_add_snapshot(void)
{
	int64_t id = -1;
	struct fg_ev ev = test_ev("cam/3/region1", FG_KIND_FIRE_LANE_BLOCKED, FG_SEV_MAJOR, 9300);
	ev.attrs_json = "{\"vehicles\":1}";
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	json_t *ref = json_pack("{s:s,s:s}", "sha256", "dd", "url", "u/dd");
	CHECK(fg_incidents_add_snapshot(incs, id, "cam/3/region1", FG_KIND_FIRE_LANE_BLOCKED, ref,
	                                9400) == 1);
	CHECK(fg_incidents_add_snapshot(incs, id, "cam/3/region1", FG_KIND_FIRE_LANE_BLOCKED, ref,
	                                9500) == 0);
	CHECK(outbox_rows(id, "updated") == 1);
	CHECK(q("SELECT count(*) FROM incidents WHERE id = %lld AND attrs ->> '$.vehicles' = 1"
	        " AND json_array_length(attrs, '$.snapshots') = 1", (long long)id) == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld"
	        " AND note = 'snapshot attached dd'", (long long)id) == 1);
	CHECK(fg_incidents_add_snapshot(incs, id, "cam/9/region1", FG_KIND_FIRE_LANE_BLOCKED, ref,
	                                9600) == -ENOENT);
	json_decref(ref);
}

int main(void)
{
	test_dir_make();
	test_path(db_path, sizeof(db_path), "incidents.db");
	open_all();
	test_open_repeat_clear_realarm();
	test_test_press_never_incident();
	test_online_clears_offline();
	test_per_device_isolation_and_clear_all();
	test_severity_and_value();
	test_mark_reported();
	test_bad_event_and_rollback();
	test_persist_and_unique_while_open();
	test_long_device_id();
	test_lane_attrs_revise();
	test_pictures_survive_repeats();
	test_add_snapshot();
	close_all();
	fg_incident_clear(NULL);
	fg_incidents_free(NULL);
	return test_result("test_incident");
}
