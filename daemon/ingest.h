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

/* One message (any transport), to every source whose topics match. */
void fg_ingest_msg(fg_ingest *ing, const struct fg_msg *msg);

/* One message to the source named `source` (HTTP pushes, event streams:
 * the transport already knows the source).  Returns the number of events
 * or the plugin's negative errno, with its reason in *reason (valid until
 * the next message of that source), counted and logged like any message;
 * -ENOENT (nothing logged) when there is no such source. */
int fg_ingest_msg_to(fg_ingest *ing, const char *source, const struct fg_msg *msg,
                     const char **reason);

/* The [source] section of a running source, NULL when there is none (or
 * ing is NULL).  Valid until the ingest is replaced (reload). */
const struct fg_conf_source *fg_ingest_source(fg_ingest *ing, const char *source);

/* Pictures named by events (fg_event.snapshot_url) that open, re-alarm or
 * reopen an incident go to sf for fetching (NULL: none are fetched).  The
 * daemon sets it on every ingest it creates. */
struct fg_snapfetch;
void fg_ingest_set_snapfetch(fg_ingest *ing, struct fg_snapfetch *sf);

/* Run the plugins' wake-ups (fg_host.wake_at) due at now_ms; the daemon
 * calls this about once a second.  Returns how many ran. */
int fg_ingest_run_wakes(fg_ingest *ing, int64_t now_ms);

/*
 * The same path for plugin instances the ingest does not own (a Modbus
 * device's, modbus.h): where their events and plugin state go.
 */
struct fg_ingest_out {
	fg_store *st;
	fg_incidents *inc;
	struct fg_snapfetch *sf;   /* NULL: pictures named by events are not fetched */
};
/* Load si's persisted plugin state and persist its changes to out->st
 * (out must outlive si). */
void fg_ingest_out_attach(const struct fg_ingest_out *out, fg_source_inst *si);
/* Decode one message with si: counted (messages, decode errors, rejected
 * events) and logged like every message, its events folded into incidents.
 * The plugin's result, with its reason in *reason (may be NULL). */
int fg_ingest_out_decode(const struct fg_ingest_out *out, fg_source_inst *si,
                         const struct fg_msg *msg, const char **reason);

#endif
