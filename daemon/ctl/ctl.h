/*
 * firegridctl: the operator CLI.  Human tables by default, --json for
 * scripts.  Read commands open the store read-only (SQLite WAL lets them run
 * beside a live firegridd); decode runs plugins in-process.
 *
 *   firegridctl [--config FILE] [--db FILE] [--json] COMMAND [ARGS]
 *     status | incidents [--state S] | incident ID | outbox | dead-letters
 *     decode --plugin NAME [--plugin-dir DIR] [--now ISO] [--topic T] [--header 'K: V'] FILE...
 */
#ifndef FG_CTL_H
#define FG_CTL_H

#include <stdbool.h>
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

/* Simple aligned table for human output: add a header row, then rows, then
 * print.  Cells are copied. */
struct ctl_table;
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
void ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Subcommands: argv[0] is the subcommand name; return the process exit code
 * (0 ok, 1 runtime failure, 2 usage error). */
int ctl_cmd_decode(struct ctl *c, int argc, char **argv);
int ctl_cmd_status(struct ctl *c, int argc, char **argv);
int ctl_cmd_incidents(struct ctl *c, int argc, char **argv);
int ctl_cmd_incident(struct ctl *c, int argc, char **argv);
int ctl_cmd_outbox(struct ctl *c, int argc, char **argv);
int ctl_cmd_dead_letters(struct ctl *c, int argc, char **argv);

#endif
