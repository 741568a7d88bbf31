/* Unit tests for the two incident hooks the local interlock uses: the
 * watcher every stored event passes (whatever its source), and
 * fg_incidents_annotate, the one path for a revision made by someone other
 * than the device (history row + outbox row, all or nothing). */
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

struct seen {
	int calls;
	char device[64];
	fg_kind kind;
	int64_t incident;
	bool nested;            /* apply again from inside the callback */
};

static void watch_cb(void *data, const struct fg_ev *ev, int64_t incident_id)
{
	struct seen *s = data;
	s->calls++;
	snprintf(s->device, sizeof(s->device), "%s", ev->device);
	s->kind = ev->kind;
	s->incident = incident_id;
	if (s->nested) {
		s->nested = false;
		struct fg_ev f = test_ev("interlock/x", FG_KIND_FAULT, FG_SEV_MAJOR, 5000);
		CHECK(fg_incidents_apply(incs, &f, NULL) == FG_APPLY_OPENED);
	}
}

static void test_watch(void)
{
	struct seen a = { 0 }, b = { 0 };
	struct fg_incidents_watcher wa = { .cb = watch_cb, .data = &a };
	struct fg_incidents_watcher wb = { .cb = watch_cb, .data = &b };
	fg_incidents_watch(incs, &wa);
	int64_t id = 0;
	struct fg_ev ev = test_ev("0xa4c138b1e5f3a8d0", FG_KIND_SMOKE, FG_SEV_CRITICAL, 1000);
	ev.topic = "zigbee2mqtt/shed-b3-smoke";
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	CHECK(a.calls == 1 && a.kind == FG_KIND_SMOKE && a.incident == id && id > 0 &&
	      strcmp(a.device, "0xa4c138b1e5f3a8d0") == 0);

	/* A failed apply is not seen; a test press (no incident) is, with 0. */
	struct fg_ev bad = test_ev("", FG_KIND_SMOKE, FG_SEV_CRITICAL, 1100);
	CHECK(fg_incidents_apply(incs, &bad, NULL) == -EINVAL);
	CHECK(a.calls == 1);
	struct fg_ev t = test_ev("dev-t", FG_KIND_TEST, FG_SEV_INFO, 1200);
	CHECK(fg_incidents_apply(incs, &t, NULL) == FG_APPLY_RECORDED);
	CHECK(a.calls == 2 && a.incident == 0);

	/* The callback may apply an event itself. */
	a.nested = true;
	struct fg_ev h = test_ev("dev-h", FG_KIND_HEAT, FG_SEV_CRITICAL, 1300);
	CHECK(fg_incidents_apply(incs, &h, NULL) == FG_APPLY_OPENED);
	CHECK(a.calls == 4 && a.kind == FG_KIND_FAULT);
	CHECK(q("SELECT count(*) FROM incidents WHERE device = 'interlock/x'") == 1);

	/* Two at once (a reload), each removed on its own. */
	fg_incidents_watch(incs, &wb);
	CHECK(fg_incidents_apply(incs, &t, NULL) == FG_APPLY_RECORDED);
	CHECK(a.calls == 5 && b.calls == 1);
	fg_incidents_unwatch(incs, &wa);
	fg_incidents_unwatch(incs, &wa);          /* twice: nothing */
	CHECK(fg_incidents_apply(incs, &t, NULL) == FG_APPLY_RECORDED);
	CHECK(a.calls == 5 && b.calls == 2);
	fg_incidents_unwatch(incs, &wb);
	CHECK(fg_incidents_apply(incs, &t, NULL) == FG_APPLY_RECORDED);
	CHECK(a.calls == 5 && b.calls == 2);
	fg_incidents_unwatch(NULL, &wb);
}

static void test_annotate(void)
{
	int64_t id = 0;
	struct fg_ev ev = test_ev("shed-smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL, 2000);
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	struct fg_ev note = ev;
	note.topic = "interlock/shed-b3";
	note.attrs_json = "{\"interlock\":{\"action\":\"cut\",\"verified\":true}}";
	CHECK(fg_incidents_annotate(incs, id, 2500, "interlock/shed-b3", "interlock",
	                            "cut coils [0] = 0: verified", "updated", &note) == 1);
	CHECK(q("SELECT revision FROM incidents WHERE id = %lld", (long long)id) == 2);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND revision = 2"
	        " AND actor = 'interlock/shed-b3' AND channel = 'interlock' AND at_ms = 2500"
	        " AND from_state = 'open' AND to_state = 'open'"
	        " AND note = 'cut coils [0] = 0: verified'", (long long)id) == 1);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld AND revision = 2 AND"
	        " type = 'org.firegrid.incident.updated' AND instr(body, '\"verified\":true') > 0",
	        (long long)id) == 1);

	/* Closed or unknown: nothing written. */
	int64_t rows = q("SELECT count(*) FROM outbox");
	int64_t hist = q("SELECT count(*) FROM incident_history");
	CHECK(sqlite3_exec(fg_store_db(st), "UPDATE incidents SET state = 'closed' WHERE id = "
	                   "(SELECT max(id) FROM incidents WHERE device = 'shed-smoke')",
	                   NULL, NULL, NULL) == SQLITE_OK);
	CHECK(fg_incidents_annotate(incs, id, 2600, "interlock/shed-b3", "interlock", "restore",
	                            "updated", &note) == 0);
	CHECK(fg_incidents_annotate(incs, 999999, 2600, "interlock/shed-b3", "interlock", "x",
	                            "updated", NULL) == 0);
	CHECK(q("SELECT revision FROM incidents WHERE id = %lld", (long long)id) == 2);
	CHECK(q("SELECT count(*) FROM outbox") == rows &&
	      q("SELECT count(*) FROM incident_history") == hist);
}

int main(void)
{
	char db_path[256];
	test_dir_make();
	test_path(db_path, sizeof(db_path), "annotate.db");
	CHECK(fg_store_open(db_path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return 1;
	CHECK(fg_outbox_new(st, &conf, &ob) == 0);
	CHECK(fg_incidents_new(st, ob, &incs) == 0);
	if (!ob || !incs)
		return 1;
	test_watch();
	test_annotate();
	CHECK(fg_store_commit(st) == 0);
	fg_incidents_free(incs);
	fg_outbox_free(ob);
	fg_store_close(st);
	return test_result("test_incident_annotate");
}
