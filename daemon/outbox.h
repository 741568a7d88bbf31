/*
 * The webhook outbox: one row per (sink, incident revision), written in the
 * same transaction as the incident change, drained by webhook.c after
 * commit.  The body is built once at enqueue time (CloudEvents JSON), so a
 * retry re-sends exactly the same bytes under the same webhook-id.
 *
 * Ordering: a row is due only when no older row of the same incident for
 * the same sink is still pending (per-incident order), and due rows come out
 * highest priority (= severity) first, then oldest first, so fire-class
 * revisions overtake a backlog of lower severities.
 */
#ifndef FG_OUTBOX_H
#define FG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include "conf.h"
#include "event.h"
#include "incident.h"
#include "store.h"

typedef struct fg_outbox fg_outbox;

/* Sinks are taken from conf (names, min_severity); gateway_id goes into the
 * CloudEvents source and webhook ids.  conf must outlive the outbox (or be
 * replaced with fg_outbox_set_conf on reload). */
int fg_outbox_new(fg_store *st, const struct fg_conf *conf, fg_outbox **ret);
void fg_outbox_set_conf(fg_outbox *ob, const struct fg_conf *conf);
/* The snapshot store, for sinks with inline_snapshots_max_bytes: their
 * CloudEvents bodies get the pictures' bytes (fg_snapshots_inline) when the
 * row is queued, so the stored body is what is signed and re-sent.
 * Without it (the default) every sink gets URL + hash only. */
struct fg_snapshots;
void fg_outbox_set_snapshots(fg_outbox *ob, struct fg_snapshots *snap);
void fg_outbox_free(fg_outbox *ob);

/*
 * Enqueue revision inc->revision of an incident for every sink whose
 * min_severity admits it.  change is "opened", "updated" or "cleared" (the
 * CloudEvents type becomes "org.firegrid.incident.<change>").  trigger may be
 * NULL.  webhook-id = "<gateway_id>-<incident id>-<revision>".
 * Returns the number of rows queued (0 when no sink admits the severity)
 * or -errno (-EEXIST if that revision is already queued for a sink).
 * Inside the group transaction (begins it).
 */
int fg_outbox_enqueue(fg_outbox *ob, const struct fg_incident *inc,
                      const struct fg_ev *trigger, const char *change, int64_t now_ms);

struct fg_outbox_row {
	int64_t id;
	char *sink;
	int64_t incident_id;
	int64_t revision;
	char *webhook_id;
	char *type;
	char *body;
	size_t body_len;
	int priority;
	int64_t attempts;
	int64_t created_ms;
	int64_t next_attempt_ms;
};
void fg_outbox_row_clear(struct fg_outbox_row *row);      /* NULL-safe */
void fg_outbox_rows_free(struct fg_outbox_row *rows, size_t n);

/*
 * Rows due for `sink` at now_ms, in delivery order, skipping the ids in
 * skip[] (in flight) and any row whose incident has an older pending row.
 * At most `limit` rows.  *ret is malloc'd (free with fg_outbox_rows_free;
 * NULL when limit is 0).  The work done is proportional to limit + n_skip
 * when the rows at the head of the order are due, whatever the backlog.
 */
int fg_outbox_due(fg_outbox *ob, const char *sink, int64_t now_ms,
                  const int64_t *skip, size_t n_skip, size_t limit,
                  struct fg_outbox_row **ret, size_t *ret_n);

/* Earliest next_attempt_ms among the pending rows of sink that are next in
 * line for their incident (a row waiting behind an older one does not
 * count), or INT64_MAX when nothing is pending.  Rows in flight are still
 * pending and count, so the result may lie in the past while requests are
 * out; callers re-poll on completions rather than on this time alone.
 * An index walk in time order: cheap even behind a large backlog. */
int64_t fg_outbox_next_due_ms(fg_outbox *ob, const char *sink);

/* Outcomes, each inside the group transaction (begins it); -ENOENT when
 * the row is gone.  done deletes the row.  retry counts the attempt and
 * records the status (0 = no HTTP response) and error.  dead moves the row,
 * with attempts counted, to dead_letters and frees the incident's next
 * revision for delivery. */
int fg_outbox_done(fg_outbox *ob, int64_t id);
int fg_outbox_retry(fg_outbox *ob, int64_t id, int64_t next_attempt_ms,
                    int http_status, const char *error);
int fg_outbox_dead(fg_outbox *ob, int64_t id, int http_status,
                   const char *response_excerpt, const char *error, int64_t now_ms);

/* Number of pending rows and created_ms of the oldest (0 when empty), for
 * status and metrics; either pointer may be NULL.  Counts every row: call
 * it every few seconds, not per delivery. */
int fg_outbox_stats(fg_outbox *ob, int64_t *ret_depth, int64_t *ret_oldest_created_ms);

#endif
