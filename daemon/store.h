/*
 * The store: one SQLite database in WAL mode that holds everything that
 * matters (events, devices, incidents and their history, the webhook outbox,
 * dead letters, plugin state, counters).  A restart resumes from it.
 *
 * Transactions are group commits: the first write in a loop iteration opens
 * a transaction (fg_store_begin), and fg_store_commit() ends it, either from
 * the MQTT module right before it lets libmosquitto write PUBACKs, or from
 * the loop's check phase.  durability=full makes each commit an fsync.
 *
 * Each module owns the SQL for its own tables (incident.c, outbox.c, ...)
 * and uses fg_store_stmt() to get cached prepared statements; store.c owns
 * the connection, the schema and its migrations, and transactions.
 *
 * Thread: loop thread only (firegridctl opens its own read-only connection).
 *
 * Schema v1 (PRAGMA user_version = 1).  Times are Unix epoch ms; kind,
 * severity and state are stored as their names ("smoke", "critical",
 * "open") so the database reads well in the sqlite3 shell.
 *   devices(id TEXT PK, source, plugin, first_seen_ms, last_seen_ms,
 *           registered INT DEFAULT 0, attrs TEXT)            WITHOUT ROWID
 *   events(id INTEGER PK, recv_ms, device_ms, source, plugin, device, kind,
 *          severity, clears, value REAL, unit, attrs, incident_id, topic)
 *      ids only ever grow and are deleted from the low end (pruning)
 *   incidents(id INTEGER PK, dedup_key, device, source, plugin, kind,
 *          severity, state, revision, count, opened_ms, last_seen_ms,
 *          cleared_ms, closed_ms, value REAL, unit, attrs, first_event_id,
 *          last_event_id, reported_ms)         (unset times are NULL)
 *      UNIQUE INDEX on dedup_key WHERE state <> 'closed'
 *      INDEX on device WHERE state <> 'closed'
 *   incident_history(id INTEGER PK, incident_id, at_ms, from_state,
 *          to_state, actor, channel, note, revision)   INDEX on incident_id
 *   outbox(id INTEGER PK, sink, incident_id, revision, webhook_id, type,
 *          priority, body, created_ms, next_attempt_ms, attempts,
 *          last_status, last_error, UNIQUE(sink, webhook_id))
 *      INDEX (sink, priority DESC, id, next_attempt_ms, incident_id): due scan
 *      INDEX (incident_id, sink): per-incident order
 *      INDEX (sink, next_attempt_ms, incident_id): next due time
 *   dead_letters(id INTEGER PK, sink, incident_id, revision, webhook_id,
 *          type, body, status, response, error, attempts, created_ms,
 *          failed_ms)                                  INDEX on incident_id
 *   plugin_state(source, device, key, value, PK(source, device, key))
 *                                                      WITHOUT ROWID
 *   metrics(name TEXT PK, value INTEGER, updated_ms)   WITHOUT ROWID
 *
 * Schema v2 (the operations-center loop) adds
 *   incidents: case_no, disposition, dispatched_unit, overdue (0/1),
 *          confirmed (0/1, default 1), esc_level (0..3), esc_due_ms,
 *          deadline_ms (the center's), confirm_due_ms, hold_until_ms,
 *          next_due_ms (the earliest of the pending ones), dispatched_ms,
 *          resolved_ms, reopened (count), site, parent_id (grouped under a
 *          site incident)
 *      INDEX on next_due_ms WHERE NOT NULL: the deadline timer
 *      INDEX on (dedup_key, closed_ms) WHERE state = 'closed': reopening
 *      INDEX on (site, kind) WHERE state <> 'closed': storm grouping
 *   incident_actions(action_id TEXT PK, client, incident_id, request,
 *          status, response, at_ms)  WITHOUT ROWID: idempotent API actions
 *   devices: name, compound, building, unit, floor, room, grid_small,
 *          grid_medium, grid_large, flags (space-separated), contact,
 *          registry_plugin, registered_ms (the registry, 一楼一档)
 *      INDEX on (compound, building, unit) WHERE registered = 1
 *
 * Schema v3 adds the Modbus interlock's tables (interlock.c):
 *   interlock_actions(id INTEGER PK, rule, action ('cut'|'restore'), at_ms,
 *          device, coils (JSON array), value, dry_run, written, verified,
 *          readback (JSON array, null = unread), error, incident_id,
 *          trigger, actor)                         INDEX (rule, id)
 *   interlock_commands(id INTEGER PK, created_ms, rule, action ('restore'),
 *          actor, note, done_ms, result, action_id)
 *          written by `firegridctl interlock restore`, picked up by the
 *          daemon; INDEX on id WHERE done_ms IS NULL
 *
 * Migrations are steps keyed by PRAGMA user_version: step i takes version i
 * to i + 1 in one transaction; the next version is one more step in store.c.
 */
#ifndef FG_STORE_H
#define FG_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>
#include "conf.h"

typedef struct fg_store fg_store;

/* Open (creating and migrating as needed) the database at path.  Sets WAL,
 * synchronous per durability, busy_timeout, foreign keys, a 2 MiB page
 * cache.  Returns 0 or a negative errno (-EPROTO: the schema is newer than
 * this binary); *ret untouched on failure. */
int fg_store_open(const char *path, enum fg_durability durability, fg_store **ret);
/* Open read-only for firegridctl; no migrations (fails with -EPROTO if the
 * schema is newer than this binary knows, -ENOENT if the file has no
 * firegrid schema yet). */
int fg_store_open_readonly(const char *path, fg_store **ret);
void fg_store_close(fg_store *st);          /* commits nothing; NULL-safe */

sqlite3 *fg_store_db(fg_store *st);
int fg_store_schema_version(fg_store *st);
/* The schema version this binary creates and migrates to. */
#define FG_STORE_SCHEMA_VERSION 3

/* Begin the group transaction if none is open (idempotent). */
int fg_store_begin(fg_store *st);
/* Commit the open transaction, if any, then run the commit hooks.
 * Returns 0, or a negative errno (the transaction is rolled back and the
 * caller must treat the batch as not stored). */
int fg_store_commit(fg_store *st);
bool fg_store_in_txn(fg_store *st);
/*
 * Urgency of the open transaction.  Writes that something downstream will
 * act on once committed (new outbox rows) mark it urgent: it is committed at
 * the end of the loop iteration, and the webhook module commits before it
 * reads the outbox.  Other writes (delivery outcomes, "reported", counters)
 * may wait up to FG_STORE_LAZY_COMMIT_MS for company: losing them in a crash
 * only means a webhook is delivered again under the same webhook-id.
 * Writers that must be durable before they answer someone (MQTT PUBACKs,
 * API replies) commit explicitly whatever the urgency.
 */
#define FG_STORE_LAZY_COMMIT_MS 20
void fg_store_mark_urgent(fg_store *st);
bool fg_store_txn_urgent(fg_store *st);
/* Monotonic ms since the open transaction began (0 when none is open). */
int64_t fg_store_txn_age_ms(fg_store *st);
/* Abandon the open transaction, if any (no hooks run). */
int fg_store_rollback(fg_store *st);
/* Is the store usable?  0, or the -errno of the last failed commit (until
 * a commit succeeds again) or of a failing probe read.  For /healthz. */
int fg_store_health(fg_store *st);

/* Called after every successful commit that wrote something (webhook uses
 * it to pick up new outbox rows).  Up to 8 hooks. */
typedef void (*fg_store_commit_cb)(void *data);
int fg_store_on_commit(fg_store *st, fg_store_commit_cb cb, void *data);

/*
 * Cached prepared statement for `sql` (keyed by the string pointer, so pass
 * a string literal or a static).  Reset and bindings cleared before being
 * returned.  NULL on error (logged once by the store with the SQL).
 */
sqlite3_stmt *fg_store_stmt(fg_store *st, const char *sql);

/* Map an SQLite result code to a negative errno (-EIO, -ENOSPC, -EBUSY,
 * -EEXIST for constraint violations...).  0 for OK/ROW/DONE. */
int fg_store_errno(int sqlite_rc);

/* Step helpers for cached statements.
 * fg_store_step_done: step once (a write, or a read whose row is not
 *   needed), reset; 0 or -errno.
 * fg_store_step_row: 1 = a row is available (the caller resets the statement
 *   when done with it), 0 = no more rows (statement reset), or -errno. */
int fg_store_step_done(sqlite3_stmt *stmt);
int fg_store_step_row(sqlite3_stmt *stmt);
/* Bind a string without copying (it must outlive the step), NULL as NULL. */
void fg_store_bind_text(sqlite3_stmt *stmt, int idx, const char *s);
/* strdup of a text column; NULL for SQL NULL (or OOM). */
char *fg_store_column_strdup(sqlite3_stmt *stmt, int col);

/* Delete events older than retention and beyond max_events (either may be
 * 0 = no limit), at most a few thousand rows per call so the loop never
 * stalls; call it periodically.  Runs inside the group transaction (begins
 * it).  Returns rows deleted or -errno. */
int fg_store_prune_events(fg_store *st, int64_t now_ms, int64_t retention_ms, int64_t max_events);

/* Persist plugin state (called from the plugin host's state_set), inside
 * the group transaction (begins it).  device NULL is stored as "". */
int fg_store_state_put(fg_store *st, const char *source, const char *device,
                       const char *key, const char *value /* NULL deletes */);
/* Call cb for every stored state entry of a source (startup).  The strings
 * are valid during the callback only.  Returns the number of entries. */
int fg_store_state_load(fg_store *st, const char *source,
                        void (*cb)(void *data, const char *device, const char *key, const char *value),
                        void *data);

/* Counters snapshot, written periodically so firegridctl can show them
 * (inside the group transaction; begins it). */
int fg_store_metric_put(fg_store *st, const char *name, int64_t value, int64_t now_ms);

#endif
