/* Unit tests for the outbox: fan-out per sink by min_severity, delivery
 * order (priority, then age, per-incident order), the in-flight skip list,
 * and the retry / done / dead outcomes. */
#include <errno.h>
#include <jansson.h>
#include "incident.h"
#include "outbox.h"
#include "store.h"
#include "store_test.h"

static fg_store *st;
static fg_outbox *ob;
static fg_incidents *incs;
static struct fg_conf_sink sinks[] = {
	{ .name = "ops", .min_severity = FG_SEV_INFO },
	{ .name = "brigade", .min_severity = FG_SEV_CRITICAL },
};
static struct fg_conf conf = { .gateway_id = "gw1", .sinks = sinks, .n_sinks = 2 };

static int64_t q(const char *sql)
{
	return test_query_int(fg_store_db(st), sql);
}

static int64_t raise_alarm(const char *device, fg_kind kind, fg_severity sev, int64_t t)
{
	struct fg_ev ev = test_ev(device, kind, sev, t);
	int64_t id = 0;
	CHECK(fg_incidents_apply(incs, &ev, &id) >= 0);
	return id;
}

static void clear(const char *device, int64_t t)
{
	struct fg_ev ev = test_ev(device, FG_KIND_CLEAR, FG_SEV_INFO, t);
	CHECK(fg_incidents_apply(incs, &ev, NULL) == FG_APPLY_CLEARED);
}

/* Due rows of sink as "incident:revision" list, e.g. "3:1 1:1 2:1". */
static const char *due_str(const char *sink, int64_t now, const int64_t *skip, size_t n_skip,
                           size_t limit)
{
	static char buf[512];
	struct fg_outbox_row *rows = NULL;
	size_t n = 99;
	buf[0] = '\0';
	int r = fg_outbox_due(ob, sink, now, skip, n_skip, limit, &rows, &n);
	CHECK(r == 0);
	if (r < 0)
		return "error";
	CHECK(n <= limit);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof(buf) - len, "%s%lld:%lld", i ? " " : "",
		         (long long)rows[i].incident_id, (long long)rows[i].revision);
		CHECK(strcmp(rows[i].sink, sink) == 0);
		CHECK(rows[i].body_len == strlen(rows[i].body));
	}
	fg_outbox_rows_free(rows, n);
	return buf;
}

static int64_t row_id(const char *sink, int64_t incident, int64_t revision)
{
	char sql[200];
	snprintf(sql, sizeof(sql), "SELECT id FROM outbox WHERE sink = '%s' AND incident_id = %lld"
	         " AND revision = %lld", sink, (long long)incident, (long long)revision);
	return q(sql);
}

static void test_enqueue_per_sink(void)
{
	int64_t warn = raise_alarm("d1", FG_KIND_BATTERY_LOW, FG_SEV_WARNING, 1000);
	int64_t smoke = raise_alarm("d2", FG_KIND_SMOKE, FG_SEV_CRITICAL, 1001);
	/* The brigade sink admits critical only. */
	CHECK(q("SELECT count(*) FROM outbox WHERE sink = 'ops'") == 2);
	CHECK(q("SELECT count(*) FROM outbox WHERE sink = 'brigade'") == 1);
	CHECK(row_id("brigade", smoke, 1) > 0);
	CHECK(row_id("brigade", warn, 1) == -1);

	struct fg_outbox_row *rows = NULL;
	size_t n = 0;
	CHECK(fg_outbox_due(ob, "brigade", 1001, NULL, 0, 10, &rows, &n) == 0);
	CHECK(n == 1);
	if (n == 1) {
		char want_id[64];
		snprintf(want_id, sizeof(want_id), "gw1-%lld-1", (long long)smoke);
		CHECK(strcmp(rows[0].webhook_id, want_id) == 0);
		CHECK(strcmp(rows[0].type, "org.firegrid.incident.opened") == 0);
		CHECK(rows[0].priority == FG_SEV_CRITICAL && rows[0].attempts == 0);
		CHECK(rows[0].created_ms == 1001 && rows[0].next_attempt_ms == 1001);
		json_t *body = json_loads(rows[0].body, 0, NULL);
		CHECK(body != NULL);
		CHECK(strcmp(json_string_value(json_object_get(body, "id")), want_id) == 0);
		CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(body, "data"),
		                                                           "incident"), "id")) == smoke);
		json_decref(body);
	}
	fg_outbox_rows_free(rows, n);

	/* Same incident revision queued twice would break webhook-id
	 * uniqueness: refused. */
	struct fg_incident inc;
	CHECK(fg_incident_get(st, smoke, &inc) == 0);
	CHECK(fg_outbox_enqueue(ob, &inc, NULL, "opened", 1002) == -EEXIST);
	inc.severity = FG_SEV_INFO;
	inc.revision = 9;
	CHECK(fg_outbox_enqueue(ob, &inc, NULL, "updated", 1002) == 1);   /* ops only */
	fg_incident_clear(&inc);

	/* No sink admits it: nothing queued, not an error. */
	struct fg_conf_sink only_brigade = { .name = "brigade", .min_severity = FG_SEV_CRITICAL };
	struct fg_conf conf2 = { .gateway_id = "gw1", .sinks = &only_brigade, .n_sinks = 1 };
	fg_outbox_set_conf(ob, &conf2);
	int64_t before = q("SELECT count(*) FROM outbox");
	raise_alarm("d3", FG_KIND_TAMPER, FG_SEV_WARNING, 1003);
	CHECK(q("SELECT count(*) FROM outbox") == before);
	fg_outbox_set_conf(ob, &conf);
	CHECK(q("DELETE FROM outbox") == -1);
	CHECK(fg_store_commit(st) == 0);
}

static void test_order(void)
{
	char want[256];
	/* A backlog of low-severity revisions, then a fire. */
	int64_t w1 = raise_alarm("o1", FG_KIND_BATTERY_LOW, FG_SEV_WARNING, 2000);
	int64_t w2 = raise_alarm("o2", FG_KIND_FAULT, FG_SEV_MAJOR, 2001);
	int64_t w3 = raise_alarm("o3", FG_KIND_BATTERY_LOW, FG_SEV_WARNING, 2002);
	int64_t fire = raise_alarm("o4", FG_KIND_SMOKE, FG_SEV_CRITICAL, 2003);
	clear("o1", 2004);       /* w1 revision 2 waits behind revision 1 */

	snprintf(want, sizeof(want), "%lld:1 %lld:1 %lld:1 %lld:1", (long long)fire, (long long)w2,
	         (long long)w1, (long long)w3);
	CHECK(strcmp(due_str("ops", 2004, NULL, 0, 10), want) == 0);
	snprintf(want, sizeof(want), "%lld:1 %lld:1", (long long)fire, (long long)w2);
	CHECK(strcmp(due_str("ops", 2004, NULL, 0, 2), want) == 0);
	/* Not yet due at an earlier time. */
	CHECK(strcmp(due_str("ops", 1999, NULL, 0, 10), "") == 0);

	/* In flight: fire and w1 rev 1.  w1 rev 2 stays behind its in-flight
	 * predecessor; the rest come out. */
	int64_t skip[] = { row_id("ops", fire, 1), row_id("ops", w1, 1) };
	snprintf(want, sizeof(want), "%lld:1 %lld:1", (long long)w2, (long long)w3);
	CHECK(strcmp(due_str("ops", 2004, skip, 2, 10), want) == 0);
	snprintf(want, sizeof(want), "%lld:1", (long long)w2);
	CHECK(strcmp(due_str("ops", 2004, skip, 2, 1), want) == 0);

	/* w1 rev 1 delivered: rev 2 is next for that incident, behind the older
	 * w3 of the same priority. */
	CHECK(fg_outbox_done(ob, row_id("ops", w1, 1)) == 0);
	CHECK(fg_outbox_done(ob, row_id("ops", w1, 1)) == -ENOENT);
	snprintf(want, sizeof(want), "%lld:1 %lld:1 %lld:1 %lld:2", (long long)fire, (long long)w2,
	         (long long)w3, (long long)w1);
	CHECK(strcmp(due_str("ops", 2004, NULL, 0, 10), want) == 0);
	CHECK(fg_outbox_next_due_ms(ob, "ops") == 2001);
	CHECK(fg_outbox_next_due_ms(ob, "nobody") == INT64_MAX);

	/* Retry: out of the due set until its time, and it holds back the
	 * incident's next revision meanwhile. */
	clear("o4", 2005);
	int64_t fire1 = row_id("ops", fire, 1);
	CHECK(fg_outbox_retry(ob, fire1, 5000, 503, "HTTP 503") == 0);
	CHECK(fg_outbox_retry(ob, 424242, 5000, 503, NULL) == -ENOENT);
	CHECK(q("SELECT attempts FROM outbox WHERE last_status = 503 AND last_error = 'HTTP 503'") == 1);
	snprintf(want, sizeof(want), "%lld:1 %lld:1 %lld:2", (long long)w2, (long long)w3, (long long)w1);
	CHECK(strcmp(due_str("ops", 4999, NULL, 0, 10), want) == 0);
	snprintf(want, sizeof(want), "%lld:1 %lld:1 %lld:1 %lld:2", (long long)fire, (long long)w2,
	         (long long)w3, (long long)w1);
	CHECK(strcmp(due_str("ops", 5000, NULL, 0, 10), want) == 0);
	/* Network error: no status. */
	CHECK(fg_outbox_retry(ob, fire1, 6000, 0, "connection refused") == 0);
	CHECK(q("SELECT attempts FROM outbox WHERE last_status IS NULL"
	        " AND last_error = 'connection refused'") == 2);

	/* Dead letter: moved with status and excerpt, the next revision
	 * becomes deliverable. */
	int64_t depth, oldest;
	CHECK(fg_outbox_stats(ob, &depth, &oldest) == 0);
	CHECK(depth == q("SELECT count(*) FROM outbox") && oldest == 2001);
	CHECK(fg_outbox_dead(ob, fire1, 410, "gone", NULL, 7000) == 0);
	CHECK(fg_outbox_dead(ob, fire1, 410, "gone", NULL, 7000) == -ENOENT);
	CHECK(q("SELECT count(*) FROM dead_letters WHERE status = 410 AND response = 'gone'"
	        " AND attempts = 3 AND failed_ms = 7000 AND created_ms = 2003 AND type ="
	        " 'org.firegrid.incident.opened' AND body LIKE '{\"data\":%'") == 1);
	int64_t depth2;
	CHECK(fg_outbox_stats(ob, &depth2, NULL) == 0 && depth2 == depth - 1);
	snprintf(want, sizeof(want), "%lld:2 %lld:1 %lld:1 %lld:2", (long long)fire, (long long)w2,
	         (long long)w3, (long long)w1);
	CHECK(strcmp(due_str("ops", 7000, NULL, 0, 10), want) == 0);

	/* Drain everything: empty outbox. */
	struct fg_outbox_row *rows = NULL;
	size_t n = 0;
	for (int round = 0; round < 10; round++) {
		CHECK(fg_outbox_due(ob, "ops", 7000, NULL, 0, 3, &rows, &n) == 0);
		for (size_t i = 0; i < n; i++)
			CHECK(fg_outbox_done(ob, rows[i].id) == 0);
		fg_outbox_rows_free(rows, n);
		if (n == 0)
			break;
	}
	CHECK(q("SELECT count(*) FROM outbox WHERE sink = 'ops'") == 0);
	CHECK(fg_outbox_next_due_ms(ob, "ops") == INT64_MAX);
	CHECK(fg_outbox_due(ob, "ops", 7000, NULL, 0, 0, &rows, &n) == 0 && n == 0);
	CHECK(fg_store_commit(st) == 0);
}

/* The due query must walk the index in delivery order, not sort the whole
 * backlog: a fire must come out first even behind thousands of rows. */
static void test_large_backlog(void)
{
	char dev[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(dev, sizeof(dev), "bl-%d", i);
		raise_alarm(dev, FG_KIND_BATTERY_LOW, FG_SEV_WARNING, 8000 + i);
	}
	int64_t fire = raise_alarm("bl-fire", FG_KIND_HEAT, FG_SEV_CRITICAL, 9999);
	CHECK(fg_store_commit(st) == 0);
	char want[32];
	snprintf(want, sizeof(want), "%lld:1", (long long)fire);
	CHECK(strcmp(due_str("ops", 9999, NULL, 0, 1), want) == 0);
	CHECK(fg_outbox_next_due_ms(ob, "ops") == 8000);
	/* The oldest rows back off; the next time is the earliest remaining. */
	for (int64_t id = 1; id <= 3000; id++)
		fg_outbox_retry(ob, id, 20000 + id, 503, NULL);
	int64_t want_next = q("SELECT min(next_attempt_ms) FROM outbox WHERE sink = 'ops'");
	CHECK(want_next > 20000);
	CHECK(fg_outbox_next_due_ms(ob, "ops") == want_next);

	sqlite3_stmt *s;
	CHECK(sqlite3_prepare_v2(fg_store_db(st),
		"EXPLAIN QUERY PLAN SELECT o.id FROM outbox AS o INDEXED BY outbox_due"
		" WHERE o.sink = 'ops' AND o.next_attempt_ms <= 1 ORDER BY o.priority DESC, o.id",
		-1, &s, NULL) == SQLITE_OK);
	bool sorts = false;
	while (sqlite3_step(s) == SQLITE_ROW)
		if (strstr((const char *)sqlite3_column_text(s, 3), "TEMP B-TREE"))
			sorts = true;
	sqlite3_finalize(s);
	CHECK(!sorts);
}

int main(void)
{
	char path[256];
	test_dir_make();
	CHECK(fg_store_open(test_path(path, sizeof(path), "outbox.db"), FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return 1;
	CHECK(fg_outbox_new(st, &conf, &ob) == 0);
	CHECK(fg_incidents_new(st, ob, &incs) == 0);
	test_enqueue_per_sink();
	test_order();
	test_large_backlog();
	fg_incidents_free(incs);
	fg_outbox_free(ob);
	fg_outbox_free(NULL);
	fg_outbox_row_clear(NULL);
	fg_outbox_rows_free(NULL, 0);
	fg_store_close(st);
	return test_result("test_outbox");
}
