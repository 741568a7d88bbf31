/* The SQLite store: connection, schema migrations, group transactions and
 * the prepared-statement cache (see store.h for the contract). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "store.h"
#include "util.h"

/* Page cache per connection, in KiB (negative cache_size = KiB).  The whole
 * daemon aims at 16 MB RSS; hot pages are the b-tree interiors of the
 * incidents and outbox indexes, which fit easily.  Measured with
 * tests/bench (10,000 webhooks): 1 MiB peaks 1 MB lower than 2 MiB and costs
 * no CPU (1.76 s vs 1.94 s of firegridd CPU in the same conditions). */
#define STORE_CACHE_KIB 1024
/* Keep the WAL file from growing without bound after a burst. */
#define STORE_WAL_LIMIT_BYTES (16 * 1024 * 1024)
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_MAX_HOOKS 8
/* Rows deleted per fg_store_prune_events() call and per criterion, so a
 * prune never stalls the loop for long. */
#define STORE_PRUNE_BATCH 2000

struct stmt_slot {
	const char *sql;           /* key: the caller's string pointer */
	sqlite3_stmt *stmt;
};

struct fg_store {
	sqlite3 *db;
	bool readonly;
	bool in_txn;
	bool urgent;               /* see fg_store_mark_urgent() */
	int64_t began_mono_ms;
	int schema_version;
	int64_t changes_at_begin;  /* sqlite3_total_changes64 when the txn began */
	int commit_error;          /* -errno of the last commit, 0 when it worked */
	struct {
		fg_store_commit_cb cb;
		void *data;
	} hooks[STORE_MAX_HOOKS];
	size_t n_hooks;
	struct stmt_slot *slots;   /* open addressing, power-of-two capacity */
	size_t n_slots;
	size_t n_stmts;
};

/*
 * Migrations: migrations[i] takes the schema from version i to i + 1.  To
 * add v2, append one string; fg_store_open runs every missing step, each in
 * its own transaction together with the user_version bump.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE devices("
	" id TEXT PRIMARY KEY,"
	" source TEXT, plugin TEXT,"
	" first_seen_ms INTEGER, last_seen_ms INTEGER,"
	" registered INTEGER NOT NULL DEFAULT 0,"
	" attrs TEXT) WITHOUT ROWID;"

	"CREATE TABLE events("
	" id INTEGER PRIMARY KEY,"
	" recv_ms INTEGER NOT NULL, device_ms INTEGER,"
	" source TEXT NOT NULL, plugin TEXT NOT NULL, device TEXT NOT NULL,"
	" kind TEXT NOT NULL, severity TEXT NOT NULL, clears TEXT,"
	" value REAL, unit TEXT, attrs TEXT, incident_id INTEGER, topic TEXT);"

	"CREATE TABLE incidents("
	" id INTEGER PRIMARY KEY,"
	" dedup_key TEXT NOT NULL, device TEXT NOT NULL,"
	" source TEXT NOT NULL, plugin TEXT NOT NULL,"
	" kind TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,"
	" revision INTEGER NOT NULL, count INTEGER NOT NULL,"
	" opened_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
	" cleared_ms INTEGER, closed_ms INTEGER,"
	" value REAL, unit TEXT, attrs TEXT,"
	" first_event_id INTEGER, last_event_id INTEGER, reported_ms INTEGER);"
	"CREATE UNIQUE INDEX incidents_open_key ON incidents(dedup_key)"
	" WHERE state <> 'closed';"
	"CREATE INDEX incidents_open_device ON incidents(device)"
	" WHERE state <> 'closed';"

	"CREATE TABLE incident_history("
	" id INTEGER PRIMARY KEY,"
	" incident_id INTEGER NOT NULL REFERENCES incidents(id),"
	" at_ms INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL,"
	" actor TEXT, channel TEXT, note TEXT, revision INTEGER);"
	"CREATE INDEX incident_history_incident ON incident_history(incident_id);"

	"CREATE TABLE outbox("
	" id INTEGER PRIMARY KEY,"
	" sink TEXT NOT NULL,"
	" incident_id INTEGER NOT NULL REFERENCES incidents(id),"
	" revision INTEGER NOT NULL, webhook_id TEXT NOT NULL, type TEXT NOT NULL,"
	" priority INTEGER NOT NULL, body TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0, last_status INTEGER, last_error TEXT,"
	" UNIQUE(sink, webhook_id));"
	/* Delivery order: an index scan in (priority desc, id) order that can
	 * test due time and incident without touching the table. */
	"CREATE INDEX outbox_due ON outbox(sink, priority DESC, id, next_attempt_ms, incident_id);"
	/* Per-incident order ("is there an older pending row?") and firegridctl. */
	"CREATE INDEX outbox_incident ON outbox(incident_id, sink);"
	/* When to look again: the earliest row that is next for its incident,
	 * found without scanning a backlog that is waiting out its backoff. */
	"CREATE INDEX outbox_next ON outbox(sink, next_attempt_ms, incident_id);"

	"CREATE TABLE dead_letters("
	" id INTEGER PRIMARY KEY,"
	" sink TEXT NOT NULL,"
	" incident_id INTEGER NOT NULL REFERENCES incidents(id),"
	" revision INTEGER NOT NULL, webhook_id TEXT NOT NULL, type TEXT NOT NULL,"
	" body TEXT NOT NULL, status INTEGER, response TEXT, error TEXT,"
	" attempts INTEGER NOT NULL, created_ms INTEGER NOT NULL, failed_ms INTEGER NOT NULL);"
	"CREATE INDEX dead_letters_incident ON dead_letters(incident_id);"

	"CREATE TABLE plugin_state("
	" source TEXT NOT NULL, device TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
	" PRIMARY KEY(source, device, key)) WITHOUT ROWID;"

	"CREATE TABLE metrics("
	" name TEXT PRIMARY KEY, value INTEGER NOT NULL, updated_ms INTEGER NOT NULL)"
	" WITHOUT ROWID;",

	/* 1 -> 2: the operations-center loop (lifecycle, deadlines, double
	 * knock, held reports, site grouping, actions, device registry). */
	"ALTER TABLE incidents ADD COLUMN case_no TEXT;"
	"ALTER TABLE incidents ADD COLUMN disposition TEXT;"
	"ALTER TABLE incidents ADD COLUMN dispatched_unit TEXT;"
	"ALTER TABLE incidents ADD COLUMN overdue INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE incidents ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE incidents ADD COLUMN esc_level INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE incidents ADD COLUMN esc_due_ms INTEGER;"
	"ALTER TABLE incidents ADD COLUMN deadline_ms INTEGER;"
	"ALTER TABLE incidents ADD COLUMN confirm_due_ms INTEGER;"
	"ALTER TABLE incidents ADD COLUMN hold_until_ms INTEGER;"
	"ALTER TABLE incidents ADD COLUMN next_due_ms INTEGER;"
	"ALTER TABLE incidents ADD COLUMN dispatched_ms INTEGER;"
	"ALTER TABLE incidents ADD COLUMN resolved_ms INTEGER;"
	"ALTER TABLE incidents ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE incidents ADD COLUMN site TEXT;"
	"ALTER TABLE incidents ADD COLUMN parent_id INTEGER;"
	/* The deadline timer's walk: the earliest next_due_ms first. */
	"CREATE INDEX incidents_due ON incidents(next_due_ms) WHERE next_due_ms IS NOT NULL;"
	/* Re-alarms within the reopen window find the incident they reopen. */
	"CREATE INDEX incidents_closed_key ON incidents(dedup_key, closed_ms)"
	" WHERE state = 'closed';"
	"CREATE TABLE incident_actions("
	" action_id TEXT PRIMARY KEY, client TEXT NOT NULL,"
	" incident_id INTEGER NOT NULL REFERENCES incidents(id),"
	" request TEXT NOT NULL, status INTEGER NOT NULL, response TEXT NOT NULL,"
	" at_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"ALTER TABLE devices ADD COLUMN name TEXT;"
	"ALTER TABLE devices ADD COLUMN compound TEXT;"
	"ALTER TABLE devices ADD COLUMN building TEXT;"
	"ALTER TABLE devices ADD COLUMN unit TEXT;"
	"ALTER TABLE devices ADD COLUMN floor TEXT;"
	"ALTER TABLE devices ADD COLUMN room TEXT;"
	"ALTER TABLE devices ADD COLUMN grid_small TEXT;"
	"ALTER TABLE devices ADD COLUMN grid_medium TEXT;"
	"ALTER TABLE devices ADD COLUMN grid_large TEXT;"
	"ALTER TABLE devices ADD COLUMN flags TEXT;"
	"ALTER TABLE devices ADD COLUMN contact TEXT;"
	"ALTER TABLE devices ADD COLUMN registry_plugin TEXT;"
	"ALTER TABLE devices ADD COLUMN registered_ms INTEGER;"
	"CREATE INDEX devices_place ON devices(compound, building, unit) WHERE registered = 1;"
	/* Storm grouping: the live incidents of one site. */
	"CREATE INDEX incidents_site ON incidents(site, kind) WHERE state <> 'closed';",

	/* 2 -> 3: the Modbus interlock (interlock.c) */
	"CREATE TABLE interlock_actions("
	" id INTEGER PRIMARY KEY,"
	" rule TEXT NOT NULL, action TEXT NOT NULL, at_ms INTEGER NOT NULL,"
	" device TEXT NOT NULL, coils TEXT NOT NULL, value INTEGER NOT NULL,"
	" dry_run INTEGER NOT NULL, written INTEGER NOT NULL, verified INTEGER NOT NULL,"
	" readback TEXT, error TEXT, incident_id INTEGER, trigger TEXT, actor TEXT);"
	"CREATE INDEX interlock_actions_rule ON interlock_actions(rule, id);"
	"CREATE TABLE interlock_commands("
	" id INTEGER PRIMARY KEY,"
	" created_ms INTEGER NOT NULL, rule TEXT NOT NULL, action TEXT NOT NULL,"
	" actor TEXT, note TEXT, done_ms INTEGER, result TEXT, action_id INTEGER);"
	"CREATE INDEX interlock_commands_pending ON interlock_commands(id)"
	" WHERE done_ms IS NULL;",
};

_Static_assert(FG_ARRAY_SIZE(migrations) == FG_STORE_SCHEMA_VERSION,
               "one migration step per schema version");
#define STORE_SCHEMA_VERSION FG_STORE_SCHEMA_VERSION

int fg_store_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_INTERRUPT:
	case SQLITE_ABORT:
		return -EINTR;
	case SQLITE_NOLFS:
		return -EFBIG;
	case SQLITE_PROTOCOL:
		return -EPROTO;
	case SQLITE_SCHEMA:
		return -EAGAIN;
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Open failures: prefer the OS errno SQLite saw (EACCES vs ENOENT). */
static int open_errno(sqlite3 *db, int rc)
{
	int sys = db ? sqlite3_system_errno(db) : 0;
	if ((rc & 0xff) == SQLITE_CANTOPEN && sys > 0)
		return -sys;
	return fg_store_errno(rc);
}

static int exec(fg_store *st, const char *sql)
{
	return fg_store_errno(sqlite3_exec(st->db, sql, NULL, NULL, NULL));
}

static int read_user_version(fg_store *st, int *ret)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return fg_store_errno(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : fg_store_errno(rc);
}

static int migrate(fg_store *st)
{
	int v, r = read_user_version(st, &v);
	if (r < 0)
		return r;
	if (v > STORE_SCHEMA_VERSION)
		return -EPROTO;
	for (; v < STORE_SCHEMA_VERSION; v++) {
		char bump[48];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
		r = exec(st, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		r = exec(st, migrations[v]);
		if (r >= 0)
			r = exec(st, bump);
		if (r >= 0)
			r = exec(st, "COMMIT");
		if (r < 0) {
			fg_err("store", "schema migration to v%d failed: %s", v + 1,
			       sqlite3_errmsg(st->db));
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return r;
		}
	}
	st->schema_version = v;
	return 0;
}

static int configure(fg_store *st, bool readonly, enum fg_durability durability)
{
	char sql[256];
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	snprintf(sql, sizeof(sql),
	         "PRAGMA cache_size = -%d; PRAGMA temp_store = MEMORY;"
	         " PRAGMA mmap_size = 0; PRAGMA foreign_keys = ON;",
	         STORE_CACHE_KIB);
	int r = exec(st, sql);
	if (r < 0 || readonly)
		return r;
	/* journal_mode returns a row; sqlite3_exec discards it.  A database on a
	 * file system without shared memory would silently stay in rollback
	 * mode, so check. */
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return fg_store_errno(rc);
	rc = sqlite3_step(s);
	bool wal = rc == SQLITE_ROW &&
	           strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return fg_store_errno(rc);
	if (!wal)
		return -ENOTSUP;
	snprintf(sql, sizeof(sql),
	         "PRAGMA synchronous = %s; PRAGMA journal_size_limit = %d;",
	         durability == FG_DURABILITY_FULL ? "FULL" : "NORMAL",
	         STORE_WAL_LIMIT_BYTES);
	return exec(st, sql);
}

static int store_open(const char *path, bool readonly, enum fg_durability durability,
                      fg_store **ret)
{
	fg_store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->readonly = readonly;
	int flags = readonly ? SQLITE_OPEN_READONLY
	                     : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	/* One connection per thread of use; no shared cache, no mutexes. */
	flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
	int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
	int r = rc == SQLITE_OK ? 0 : open_errno(st->db, rc);
	if (r >= 0) {
		sqlite3_extended_result_codes(st->db, 1);
		r = configure(st, readonly, durability);
	}
	if (r >= 0 && readonly) {
		r = read_user_version(st, &st->schema_version);
		if (r >= 0 && st->schema_version == 0)
			r = -ENOENT;   /* not a firegrid database (or never opened by firegridd) */
		else if (r >= 0 && st->schema_version > STORE_SCHEMA_VERSION)
			r = -EPROTO;
	} else if (r >= 0) {
		r = migrate(st);
	}
	if (r < 0) {
		fg_store_close(st);
		return r;
	}
	*ret = st;
	return 0;
}

int fg_store_open(const char *path, enum fg_durability durability, fg_store **ret)
{
	return store_open(path, false, durability, ret);
}

int fg_store_open_readonly(const char *path, fg_store **ret)
{
	return store_open(path, true, FG_DURABILITY_NORMAL, ret);
}

void fg_store_close(fg_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_slots; i++)
		sqlite3_finalize(st->slots[i].stmt);
	free(st->slots);
	/* An open transaction is rolled back by sqlite3_close: "commits
	 * nothing" is the contract. */
	sqlite3_close(st->db);
	free(st);
}

sqlite3 *fg_store_db(fg_store *st)
{
	return st->db;
}

int fg_store_schema_version(fg_store *st)
{
	return st->schema_version;
}

bool fg_store_in_txn(fg_store *st)
{
	return st->in_txn;
}

void fg_store_mark_urgent(fg_store *st)
{
	if (st->in_txn)
		st->urgent = true;
}

bool fg_store_txn_urgent(fg_store *st)
{
	return st->in_txn && st->urgent;
}

int64_t fg_store_txn_age_ms(fg_store *st)
{
	return st->in_txn ? fg_mono_ms() - st->began_mono_ms : 0;
}

int fg_store_begin(fg_store *st)
{
	if (st->in_txn)
		return 0;
	if (st->readonly)
		return -EROFS;
	/* IMMEDIATE: take the write lock now, so the commit cannot fail with
	 * BUSY after the batch has been built. */
	int r = exec(st, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	st->in_txn = true;
	st->urgent = false;
	st->began_mono_ms = fg_mono_ms();
	st->changes_at_begin = sqlite3_total_changes64(st->db);
	return 0;
}

/* A statement left mid-result keeps its read snapshot; release them all
 * before the transaction ends. */
static void reset_busy_stmts(fg_store *st)
{
	for (size_t i = 0; i < st->n_slots; i++)
		if (st->slots[i].stmt && sqlite3_stmt_busy(st->slots[i].stmt))
			sqlite3_reset(st->slots[i].stmt);
}

int fg_store_commit(fg_store *st)
{
	if (!st->in_txn)
		return 0;
	reset_busy_stmts(st);
	bool wrote = sqlite3_total_changes64(st->db) != st->changes_at_begin;
	int r = exec(st, "COMMIT");
	st->in_txn = false;
	st->urgent = false;
	st->commit_error = r < 0 ? r : 0;
	if (r < 0) {
		/* After a failed COMMIT SQLite may or may not have rolled back
		 * already; make sure the connection is out of the transaction. */
		if (!sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	if (wrote)
		for (size_t i = 0; i < st->n_hooks; i++)
			st->hooks[i].cb(st->hooks[i].data);
	return 0;
}

int fg_store_health(fg_store *st)
{
	if (st->commit_error < 0)
		return st->commit_error;
	sqlite3_stmt *s = fg_store_stmt(st, "SELECT count(*) FROM metrics");
	return s ? fg_store_step_done(s) : -EIO;
}

int fg_store_rollback(fg_store *st)
{
	if (!st->in_txn)
		return 0;
	reset_busy_stmts(st);
	st->in_txn = false;
	st->urgent = false;
	return exec(st, "ROLLBACK");
}

int fg_store_on_commit(fg_store *st, fg_store_commit_cb cb, void *data)
{
	if (!cb)
		return -EINVAL;
	if (st->n_hooks == STORE_MAX_HOOKS)
		return -ENOSPC;
	st->hooks[st->n_hooks].cb = cb;
	st->hooks[st->n_hooks].data = data;
	st->n_hooks++;
	return 0;
}

static size_t ptr_hash(const void *p)
{
	uintptr_t x = (uintptr_t)p;
	x ^= x >> 33;
	x *= (uintptr_t)0xff51afd7ed558ccdULL;
	x ^= x >> 29;
	return (size_t)x;
}

static struct stmt_slot *slot_find(struct stmt_slot *slots, size_t n, const char *sql)
{
	size_t i = ptr_hash(sql) & (n - 1);
	while (slots[i].sql && slots[i].sql != sql)
		i = (i + 1) & (n - 1);
	return &slots[i];
}

static int slots_grow(fg_store *st)
{
	size_t n = st->n_slots ? st->n_slots * 2 : 64;
	struct stmt_slot *slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < st->n_slots; i++)
		if (st->slots[i].sql)
			*slot_find(slots, n, st->slots[i].sql) = st->slots[i];
	free(st->slots);
	st->slots = slots;
	st->n_slots = n;
	return 0;
}

sqlite3_stmt *fg_store_stmt(fg_store *st, const char *sql)
{
	if (st->n_slots) {
		struct stmt_slot *s = slot_find(st->slots, st->n_slots, sql);
		if (s->sql) {
			sqlite3_reset(s->stmt);
			sqlite3_clear_bindings(s->stmt);
			return s->stmt;
		}
	}
	/* Keep the load factor at or below one half. */
	if ((st->n_stmts + 1) * 2 > st->n_slots && slots_grow(st) < 0)
		return NULL;
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	if (rc != SQLITE_OK) {
		fg_err("store", "cannot prepare statement: %s sql=\"%s\"",
		       sqlite3_errmsg(st->db), sql);
		return NULL;
	}
	struct stmt_slot *s = slot_find(st->slots, st->n_slots, sql);
	s->sql = sql;
	s->stmt = stmt;
	st->n_stmts++;
	return stmt;
}

int fg_store_step_done(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fg_store_errno(rc);
}

int fg_store_step_row(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return 1;
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : fg_store_errno(rc);
}

void fg_store_bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, i);
}

char *fg_store_column_strdup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *s = sqlite3_column_text(stmt, i);
	return s ? strdup((const char *)s) : NULL;
}

/* The oldest events sit at the lowest ids.  Both criteria delete a bounded
 * prefix of the id range, so neither needs an index beyond the primary key
 * nor a full count(*). */
int fg_store_prune_events(fg_store *st, int64_t now_ms, int64_t retention_ms, int64_t max_events)
{
	int r = fg_store_begin(st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = fg_store_stmt(st, "SELECT min(id), max(id) FROM events");
	if (!s)
		return -EIO;
	r = fg_store_step_row(s);
	if (r <= 0)
		return r;
	int64_t lo = sqlite3_column_int64(s, 0), hi = sqlite3_column_int64(s, 1);
	bool empty = sqlite3_column_type(s, 0) == SQLITE_NULL;
	sqlite3_reset(s);
	if (empty)
		return 0;

	/* Ids are dense (only this function deletes, from the low end), so
	 * hi - lo + 1 is the row count. */
	int64_t cut = lo;   /* delete ids < cut */
	if (max_events > 0 && hi - lo + 1 > max_events)
		cut = hi - max_events + 1;
	if (cut > lo + STORE_PRUNE_BATCH)
		cut = lo + STORE_PRUNE_BATCH;

	if (retention_ms > 0 && cut < lo + STORE_PRUNE_BATCH) {
		/* Walk up from the oldest row while it is past retention.  recv_ms
		 * has no index: reading a bounded run of rows in id order is cheaper
		 * than maintaining one on every insert.  A clock step backwards only
		 * delays pruning of the rows behind it. */
		s = fg_store_stmt(st, "SELECT id, recv_ms FROM events WHERE id >= ?1 ORDER BY id LIMIT ?2");
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, cut);
		sqlite3_bind_int64(s, 2, lo + STORE_PRUNE_BATCH - cut);
		while ((r = fg_store_step_row(s)) > 0) {
			if (sqlite3_column_int64(s, 1) >= now_ms - retention_ms)
				break;
			cut = sqlite3_column_int64(s, 0) + 1;
		}
		sqlite3_reset(s);
		if (r < 0)
			return r;
	}
	if (cut <= lo)
		return 0;
	s = fg_store_stmt(st, "DELETE FROM events WHERE id < ?1");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, cut);
	r = fg_store_step_done(s);
	return r < 0 ? r : sqlite3_changes(st->db);
}

int fg_store_state_put(fg_store *st, const char *source, const char *device,
                       const char *key, const char *value)
{
	int r = fg_store_begin(st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = value
		? fg_store_stmt(st, "INSERT OR REPLACE INTO plugin_state(source, device, key, value)"
		                    " VALUES(?1, ?2, ?3, ?4)")
		: fg_store_stmt(st, "DELETE FROM plugin_state"
		                    " WHERE source = ?1 AND device = ?2 AND key = ?3");
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, source);
	fg_store_bind_text(s, 2, device ? device : "");
	fg_store_bind_text(s, 3, key);
	if (value)
		fg_store_bind_text(s, 4, value);
	return fg_store_step_done(s);
}

int fg_store_state_load(fg_store *st, const char *source,
                        void (*cb)(void *data, const char *device, const char *key, const char *value),
                        void *data)
{
	sqlite3_stmt *s = fg_store_stmt(st, "SELECT device, key, value FROM plugin_state"
	                                    " WHERE source = ?1");
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, source);
	int r, n = 0;
	while ((r = fg_store_step_row(s)) > 0) {
		cb(data, (const char *)sqlite3_column_text(s, 0),
		   (const char *)sqlite3_column_text(s, 1),
		   (const char *)sqlite3_column_text(s, 2));
		n++;
	}
	return r < 0 ? r : n;
}

int fg_store_metric_put(fg_store *st, const char *name, int64_t value, int64_t now_ms)
{
	int r = fg_store_begin(st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = fg_store_stmt(st, "INSERT OR REPLACE INTO metrics(name, value, updated_ms)"
	                                    " VALUES(?1, ?2, ?3)");
	if (!s)
		return -EIO;
	fg_store_bind_text(s, 1, name);
	sqlite3_bind_int64(s, 2, value);
	sqlite3_bind_int64(s, 3, now_ms);
	return fg_store_step_done(s);
}
