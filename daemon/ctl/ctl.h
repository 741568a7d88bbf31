/*
 * firegridctl: the operator CLI.  Human tables by default, --json for
 * scripts.  Read commands open the store read-only (SQLite WAL lets them run
 * beside a live firegridd); decode runs plugins in-process.
 *
 *   firegridctl [--config FILE] [--db FILE] [--json] COMMAND [ARGS]
 *     status | incidents [--state S] [--limit N] | incident ID |
 *     outbox [--limit N] | dead-letters [--limit N]
 *     decode --plugin NAME [--plugin-dir DIR] [--now ISO] [--topic T] [--header 'K: V']
 *            [--hex -|KEY] FILE...
 *     plugins [--plugin-dir DIR] [--builtin]
 *     decode --plugin NAME [--plugin-dir DIR] [--now ISO] [--topic T] [--header 'K: V'] FILE...
 *     interlock status | interlock history [--rule R] [--limit N] |
 *     interlock restore RULE [--actor NAME] [--note TEXT] [--wait SECONDS]
 *
 * --json prints exactly one JSON document on stdout (times RFC 3339 UTC or
 * null, ids as integers):
 *   status        {"database", "schema_version", "incidents": {state: n},
 *                  "outbox": {"pending", "oldest_created_at", "oldest_age_s"},
 *                  "dead_letters", "events", "counters": {name: value}}
 *   incidents     [incident...], newest first; an incident is the webhook's
 *                 data.incident object plus "device", "source", "plugin",
 *                 "closed_at"
 *   incident ID   {"incident", "history": [...], "outbox": [...],
 *                  "dead_letters": [...]}
 *   outbox        [row...] in delivery order per sink (no bodies)
 *   dead-letters  [row...], newest first, with the body as stored
 *   plugins       {"plugin_dir", "abi_major", "plugins": [{"name", "version",
 *                  "description", "abi_major", "descriptor_size", "module",
 *                  "builtin", "sources": [..], "options": [{"key", "type",
 *                  "default", ["min", "max"], "description"}]}],
 *                  "refused": [{"name", "module", "error"}]}
 *   interlock status   [{"rule", "last_action", "at", "verified", "dry_run",
 *                  "error", "pending_commands"}] per rule seen in the store
 *   interlock history  [action...], newest first (interlock_actions rows)
 *   interlock restore  {"command", "rule", "done", "result", "action"}
 *                  (done false when --wait ran out or was not given)
 * Errors go to stderr; exit codes 0 ok, 1 failure, 2 usage.
 */
#ifndef FG_CTL_H
#define FG_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "conf.h"
#include "store.h"

struct ctl {
	const char *config_path;   /* --config, default FG_SYSCONFDIR/firegrid.conf */
	const char *db_path;       /* --db overrides the config's store path */
	bool json;                 /* --json */
	struct fg_conf *conf;      /* loaded lazily by ctl_open_store() */
};

/* Open the store read-only, resolving its path from --db or the config.
 * Prints a clear error and returns -errno on failure. */
int ctl_open_store(struct ctl *c, fg_store **ret);

/* The same, read-write (creating and migrating the store if needed). */
int ctl_open_store_rw(struct ctl *c, fg_store **ret);

/* Simple aligned table for human output: add a header row, then rows, then
 * print.  Cells are copied. */
struct ctl_table;
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
void ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Print a JSON document (stolen reference) on stdout as --json output;
 * returns 0, or 1 when it could not be built (NULL) or written. */
struct json_t;
int ctl_json_print(struct json_t *doc);

/* Epoch ms as "2026-11-23T10:00:00.123Z" (or "-" for 0) in buf. */
const char *ctl_time(int64_t ms, char *buf, size_t len);

/* Subcommands: argv[0] is the subcommand name; return the process exit code
 * (0 ok, 1 runtime failure, 2 usage error). */
int ctl_cmd_decode(struct ctl *c, int argc, char **argv);
int ctl_cmd_status(struct ctl *c, int argc, char **argv);
int ctl_cmd_incidents(struct ctl *c, int argc, char **argv);
int ctl_cmd_incident(struct ctl *c, int argc, char **argv);
int ctl_cmd_outbox(struct ctl *c, int argc, char **argv);
int ctl_cmd_dead_letters(struct ctl *c, int argc, char **argv);
int ctl_cmd_devices(struct ctl *c, int argc, char **argv);       /* ctl_devices.c */
int ctl_cmd_report(struct ctl *c, int argc, char **argv);        /* ctl_report.c */
int ctl_cmd_plugins(struct ctl *c, int argc, char **argv);

/* Where firegridd looks for plugin modules: [daemon] plugin_dir of the
 * config (loaded into c->conf when readable; a missing or broken config
 * falls back quietly), else the install's plugin dir.  malloc'd; NULL on
 * OOM. */
char *ctl_plugin_dir(struct ctl *c);
int ctl_cmd_interlock(struct ctl *c, int argc, char **argv);     /* ctl_modbus.c */

#endif
