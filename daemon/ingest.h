/*
 * Ingest: the path from a raw message to stored events and incidents.
 * Finds the source(s) whose topic filters match, runs the plugin, and folds
 * every event into incidents, all inside the store's group transaction.
 * Bad input is counted (firegrid_decode_errors_total{source}) and logged at
 * a limited rate; it never stops other messages.
 */
#ifndef FG_INGEST_H
#define FG_INGEST_H

#include "conf.h"
#include "incident.h"
#include "plugin_host.h"
#include "store.h"

typedef struct fg_ingest fg_ingest;

/* Create plugin instances for every [source] of conf.  On a config error
 * returns -EINVAL with the messages in *ret_errors (malloc'd). */
int fg_ingest_new(const struct fg_conf *conf, fg_plugin_host *host, fg_store *st,
                  fg_incidents *inc, fg_ingest **ret, char **ret_errors);
void fg_ingest_free(fg_ingest *ing);

/* One message (any transport). */
void fg_ingest_msg(fg_ingest *ing, const struct fg_msg *msg);

#endif
