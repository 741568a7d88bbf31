/* Unit tests for the store: schema and migrations, reopen, durability
 * pragmas, group transactions and commit hooks, statement cache, pruning,
 * plugin state, metrics and the read-only connection. */
#include <errno.h>
#include <sqlite3.h>
#include "store.h"
#include "store_test.h"

static int64_t query_int(fg_store *st, const char *sql)
{
	return test_query_int(fg_store_db(st), sql);
}

static int exec(fg_store *st, const char *sql)
{
	return sqlite3_exec(fg_store_db(st), sql, NULL, NULL, NULL);
}

static void test_open_migrate_reopen(void)
{
	char path[256];
	test_path(path, sizeof(path), "open.db");
	fg_store *st = NULL;
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return;
	CHECK(fg_store_schema_version(st) == FG_STORE_SCHEMA_VERSION);
	CHECK(query_int(st, "PRAGMA user_version") == FG_STORE_SCHEMA_VERSION);
	CHECK(query_int(st, "PRAGMA synchronous") == 1);            /* NORMAL */
	CHECK(query_int(st, "PRAGMA foreign_keys") == 1);
	CHECK(query_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
	                    " ('devices','events','incidents','incident_history','outbox',"
	                    "  'dead_letters','plugin_state','metrics')") == 8);
	/* The partial unique index is what makes "one incident per key while
	 * open" hold even against a buggy caller. */
	CHECK(exec(st, "INSERT INTO incidents(dedup_key, device, source, plugin, kind, severity,"
	               " state, revision, count, opened_ms, last_seen_ms)"
	               " VALUES('d|smoke','d','s','p','smoke','critical','open',1,1,1,1)") == SQLITE_OK);
	CHECK((exec(st, "INSERT INTO incidents(dedup_key, device, source, plugin, kind, severity,"
	                " state, revision, count, opened_ms, last_seen_ms)"
	                " VALUES('d|smoke','d','s','p','smoke','critical','reported',1,1,1,1)") & 0xff)
	      == SQLITE_CONSTRAINT);
	CHECK(exec(st, "INSERT INTO incidents(dedup_key, device, source, plugin, kind, severity,"
	               " state, revision, count, opened_ms, last_seen_ms)"
	               " VALUES('d|smoke','d','s','p','smoke','critical','closed',1,1,1,1)") == SQLITE_OK);
	fg_store_close(st);

	st = NULL;
	CHECK(fg_store_open(path, FG_DURABILITY_FULL, &st) == 0);
	if (!st)
		return;
	CHECK(fg_store_schema_version(st) == FG_STORE_SCHEMA_VERSION);
	CHECK(query_int(st, "PRAGMA synchronous") == 2);            /* FULL */
	CHECK(query_int(st, "SELECT count(*) FROM incidents") == 2);
	sqlite3_stmt *s = fg_store_stmt(st, "SELECT journal_mode FROM pragma_journal_mode");
	CHECK(s && fg_store_step_row(s) == 1);
	CHECK(s && strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0);
	sqlite3_reset(s);
	fg_store_close(st);
}

static void test_newer_schema_refused(void)
{
	char path[256];
	test_path(path, sizeof(path), "future.db");
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	fg_store *st = (fg_store *)&st;   /* must stay untouched on failure */
	fg_store *const sentinel = st;
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == -EPROTO);
	CHECK(st == sentinel);
	CHECK(fg_store_open_readonly(path, &st) == -EPROTO);
	CHECK(st == sentinel);
}

static void test_readonly(void)
{
	char path[256], empty[256];
	fg_store *st = NULL, *ro = NULL;
	test_path(path, sizeof(path), "ro.db");
	CHECK(fg_store_open_readonly(path, &ro) < 0);   /* does not exist */
	CHECK(ro == NULL);

	/* An SQLite file firegridd never initialised is not a store. */
	test_path(empty, sizeof(empty), "empty.db");
	sqlite3 *db;
	CHECK(sqlite3_open(empty, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE x(y)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK(fg_store_open_readonly(empty, &ro) == -ENOENT);

	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	CHECK(fg_store_metric_put(st, "firegrid_events_total", 42, 1000) == 0);
	CHECK(fg_store_commit(st) == 0);
	/* A reader beside the live writer sees committed data only. */
	CHECK(fg_store_metric_put(st, "firegrid_events_total", 43, 2000) == 0);
	CHECK(fg_store_open_readonly(path, &ro) == 0);
	if (ro) {
		CHECK(fg_store_schema_version(ro) == FG_STORE_SCHEMA_VERSION);
		CHECK(query_int(ro, "SELECT value FROM metrics WHERE name = 'firegrid_events_total'") == 42);
		CHECK(fg_store_begin(ro) == -EROFS);
		CHECK(fg_store_metric_put(ro, "x", 1, 1) == -EROFS);
		CHECK((exec(ro, "DELETE FROM metrics") & 0xff) == SQLITE_READONLY);
	}
	CHECK(fg_store_commit(st) == 0);
	if (ro)
		CHECK(query_int(ro, "SELECT value FROM metrics WHERE name = 'firegrid_events_total'") == 43);
	fg_store_close(ro);
	fg_store_close(st);
}

struct hook_count {
	int n;
};

static void hook_cb(void *data)
{
	((struct hook_count *)data)->n++;
}

static void test_txn_and_hooks(void)
{
	char path[256];
	fg_store *st = NULL;
	test_path(path, sizeof(path), "txn.db");
	CHECK(fg_store_open(path, FG_DURABILITY_FULL, &st) == 0);
	if (!st)
		return;
	struct hook_count a = { 0 }, b = { 0 };
	CHECK(fg_store_on_commit(st, hook_cb, &a) == 0);
	CHECK(fg_store_on_commit(st, hook_cb, &b) == 0);
	CHECK(fg_store_on_commit(st, NULL, NULL) == -EINVAL);

	CHECK(!fg_store_in_txn(st));
	CHECK(fg_store_commit(st) == 0);               /* nothing open: no-op */
	CHECK(a.n == 0);
	CHECK(fg_store_begin(st) == 0);
	CHECK(fg_store_begin(st) == 0);                /* idempotent */
	CHECK(fg_store_in_txn(st));
	CHECK(fg_store_commit(st) == 0);               /* wrote nothing: no hooks */
	CHECK(!fg_store_in_txn(st));
	CHECK(a.n == 0 && b.n == 0);

	CHECK(fg_store_state_put(st, "z2m", "dev1", "k", "v") == 0);   /* begins */
	CHECK(fg_store_in_txn(st));
	CHECK(fg_store_state_put(st, "z2m", "dev1", "k2", "v2") == 0);
	CHECK(fg_store_commit(st) == 0);
	CHECK(a.n == 1 && b.n == 1);

	CHECK(fg_store_state_put(st, "z2m", "dev1", "k3", "v3") == 0);
	CHECK(fg_store_rollback(st) == 0);
	CHECK(!fg_store_in_txn(st));
	CHECK(fg_store_commit(st) == 0);
	CHECK(a.n == 1);
	CHECK(query_int(st, "SELECT count(*) FROM plugin_state") == 2);

	/* A statement left mid-result must not block the commit. */
	sqlite3_stmt *s = fg_store_stmt(st, "SELECT key FROM plugin_state");
	CHECK(fg_store_metric_put(st, "m", 1, 1) == 0);
	CHECK(s && fg_store_step_row(s) == 1);
	CHECK(fg_store_commit(st) == 0);
	CHECK(a.n == 2);

	for (int i = 2; i < 8; i++)
		CHECK(fg_store_on_commit(st, hook_cb, &b) == 0);
	CHECK(fg_store_on_commit(st, hook_cb, &b) == -ENOSPC);
	fg_store_close(st);

	/* Uncommitted work is gone after close. */
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return;
	CHECK(fg_store_state_put(st, "z2m", "dev9", "k", "v") == 0);
	fg_store_close(st);
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	if (st)
		CHECK(query_int(st, "SELECT count(*) FROM plugin_state WHERE device = 'dev9'") == 0);
	fg_store_close(st);
}

static void test_stmt_cache(void)
{
	char path[256];
	static const char sql1[] = "SELECT 1";
	static char sql2[] = "SELECT 1";    /* same text, different key */
	fg_store *st = NULL;
	test_path(path, sizeof(path), "stmt.db");
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return;
	sqlite3_stmt *a = fg_store_stmt(st, sql1);
	CHECK(a != NULL);
	CHECK(fg_store_stmt(st, sql1) == a);
	sqlite3_stmt *b = fg_store_stmt(st, sql2);
	CHECK(b != NULL && b != a);
	CHECK(fg_store_stmt(st, "SELEKT nonsense") == NULL);

	/* Enough distinct statements to make the table grow several times. */
	static char sqls[300][32];
	sqlite3_stmt *stmts[300];
	for (int i = 0; i < 300; i++) {
		snprintf(sqls[i], sizeof(sqls[i]), "SELECT %d", i);
		stmts[i] = fg_store_stmt(st, sqls[i]);
		CHECK(stmts[i] != NULL);
	}
	for (int i = 0; i < 300; i++) {
		sqlite3_stmt *s = fg_store_stmt(st, sqls[i]);
		CHECK(s == stmts[i]);
		CHECK(s && fg_store_step_row(s) == 1 && sqlite3_column_int(s, 0) == i);
	}
	CHECK(fg_store_stmt(st, sql1) == a);

	/* Returned statements come reset with bindings cleared. */
	static const char sqlp[] = "SELECT ?1";
	sqlite3_stmt *p = fg_store_stmt(st, sqlp);
	sqlite3_bind_int(p, 1, 7);
	CHECK(fg_store_step_row(p) == 1 && sqlite3_column_int(p, 0) == 7);
	p = fg_store_stmt(st, sqlp);
	CHECK(fg_store_step_row(p) == 1 && sqlite3_column_type(p, 0) == SQLITE_NULL);
	sqlite3_reset(p);
	fg_store_close(st);
}

static void test_errno(void)
{
	CHECK(fg_store_errno(SQLITE_OK) == 0);
	CHECK(fg_store_errno(SQLITE_DONE) == 0);
	CHECK(fg_store_errno(SQLITE_BUSY) == -EBUSY);
	CHECK(fg_store_errno(SQLITE_FULL) == -ENOSPC);
	CHECK(fg_store_errno(SQLITE_IOERR_FSYNC) == -EIO);
	CHECK(fg_store_errno(SQLITE_CONSTRAINT_UNIQUE) == -EEXIST);
	CHECK(fg_store_errno(SQLITE_READONLY) == -EROFS);
	CHECK(fg_store_errno(SQLITE_NOMEM) == -ENOMEM);
	CHECK(fg_store_errno(SQLITE_CORRUPT) == -EBADMSG);
}

static void insert_events(fg_store *st, int n, int64_t first_recv_ms)
{
	sqlite3_stmt *s = fg_store_stmt(st, "INSERT INTO events(recv_ms, source, plugin, device,"
	                                    " kind, severity) VALUES(?1, 's', 'p', 'd', 'smoke', 'critical')");
	CHECK(fg_store_begin(st) == 0);
	for (int i = 0; i < n; i++) {
		sqlite3_bind_int64(s, 1, first_recv_ms + i);
		CHECK(fg_store_step_done(s) == 0);
	}
	CHECK(fg_store_commit(st) == 0);
}

static void test_prune(void)
{
	char path[256];
	fg_store *st = NULL;
	test_path(path, sizeof(path), "prune.db");
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return;
	CHECK(fg_store_prune_events(st, 0, 1000, 10) == 0);      /* empty table */
	CHECK(fg_store_commit(st) == 0);

	/* Count limit: 5000 rows, keep 1000, bounded work per call. */
	insert_events(st, 5000, 1000000);
	int r, calls = 0, total = 0;
	while ((r = fg_store_prune_events(st, 1000000, 0, 1000)) > 0) {
		CHECK(r <= 2000);
		total += r;
		calls++;
		CHECK(fg_store_commit(st) == 0);
	}
	CHECK(r == 0);
	CHECK(total == 4000);
	CHECK(calls >= 2);
	CHECK(query_int(st, "SELECT count(*) FROM events") == 1000);
	CHECK(query_int(st, "SELECT min(recv_ms) FROM events") == 1000000 + 4000);

	/* Age limit: rows at recv 1004000..1004999; keep the last 300 ms. */
	total = 0;
	while ((r = fg_store_prune_events(st, 1005000, 300, 0)) > 0) {
		total += r;
		CHECK(fg_store_commit(st) == 0);
	}
	CHECK(r == 0);
	CHECK(total == 700);
	CHECK(query_int(st, "SELECT count(*) FROM events") == 300);
	CHECK(query_int(st, "SELECT min(recv_ms) FROM events") == 1005000 - 300);

	/* No limits: nothing happens. */
	CHECK(fg_store_prune_events(st, 9000000, 0, 0) == 0);
	CHECK(query_int(st, "SELECT count(*) FROM events") == 300);
	CHECK(fg_store_commit(st) == 0);
	fg_store_close(st);
}

struct state_seen {
	int n;
	char buf[256];
};

static void state_cb(void *data, const char *device, const char *key, const char *value)
{
	struct state_seen *s = data;
	size_t len = strlen(s->buf);
	snprintf(s->buf + len, sizeof(s->buf) - len, "[%s/%s=%s]", device, key, value);
	s->n++;
}

static void test_plugin_state_and_metrics(void)
{
	char path[256];
	fg_store *st = NULL;
	test_path(path, sizeof(path), "state.db");
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return;
	CHECK(fg_store_state_put(st, "z2m", "0x01", "smoke", "true") == 0);
	CHECK(fg_store_state_put(st, "z2m", NULL, "names", "{}") == 0);
	CHECK(fg_store_state_put(st, "z2m", "0x01", "smoke", "false") == 0);   /* replace */
	CHECK(fg_store_state_put(st, "z2m", "0x02", "smoke", "true") == 0);
	CHECK(fg_store_state_put(st, "z2m", "0x02", "smoke", NULL) == 0);      /* delete */
	CHECK(fg_store_state_put(st, "other", "0x01", "smoke", "true") == 0);
	CHECK(fg_store_metric_put(st, "firegrid_events_total", 5, 100) == 0);
	CHECK(fg_store_metric_put(st, "firegrid_events_total", 7, 200) == 0);
	CHECK(fg_store_commit(st) == 0);
	fg_store_close(st);

	st = NULL;
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return;
	struct state_seen seen = { 0 };
	CHECK(fg_store_state_load(st, "z2m", state_cb, &seen) == 2);
	CHECK(seen.n == 2);
	CHECK(strcmp(seen.buf, "[/names={}][0x01/smoke=false]") == 0);
	memset(&seen, 0, sizeof(seen));
	CHECK(fg_store_state_load(st, "nobody", state_cb, &seen) == 0 && seen.n == 0);
	CHECK(query_int(st, "SELECT value FROM metrics WHERE name = 'firegrid_events_total'") == 7);
	CHECK(query_int(st, "SELECT updated_ms FROM metrics WHERE name = 'firegrid_events_total'") == 200);
	fg_store_close(st);
}

int main(void)
{
	test_dir_make();
	test_open_migrate_reopen();
	test_newer_schema_refused();
	test_readonly();
	test_txn_and_hooks();
	test_stmt_cache();
	test_errno();
	test_prune();
	test_plugin_state_and_metrics();
	fg_store_close(NULL);
	return test_result("test_store");
}
