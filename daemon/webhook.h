/*
 * Webhook delivery: drains the outbox with libcurl's multi interface driven
 * by the loop (CURLMOPT_SOCKETFUNCTION -> uv_poll, CURLMOPT_TIMERFUNCTION ->
 * uv_timer).  HTTP keep-alive, at most max_connections requests in flight
 * per sink.  Each attempt is signed anew (fresh webhook-timestamp) under the
 * row's stable webhook-id.
 *
 * Outcomes: 2xx -> row done (delivered callback); network error, timeout,
 * 408, 429, 5xx -> retry with capped full-jitter backoff honouring
 * Retry-After (critical rows forever, others until give_up_ms, then dead
 * letter); any other status -> dead letter with status and body excerpt.
 *
 * Retry-After (delta-seconds or HTTP-date) replaces the backoff delay for
 * that attempt, clamped to [retry_min_ms, retry_max_ms]: honoured as "not
 * before", but a receiver cannot stall a fire report beyond the sink's own
 * cap, nor make us spin with "0".
 *
 * Outcome writes go into the store's group transaction (fg_store_begin);
 * whoever commits next makes them durable.  Rows are read only after they
 * are committed: fg_webhook_new() registers a store commit hook that calls
 * fg_webhook_kick(), and a scan that finds a transaction open commits it
 * first, so nothing that could still roll back is ever sent.
 *
 * Thread: loop thread only.
 */
#ifndef FG_WEBHOOK_H
#define FG_WEBHOOK_H

#include <uv.h>
#include "conf.h"
#include "outbox.h"
#include "store.h"

typedef struct fg_webhook fg_webhook;

/* Called after a 2xx, inside the group transaction (row is still valid). */
typedef void (*fg_webhook_delivered_cb)(void *data, const struct fg_outbox_row *row,
                                        long http_status, const char *resp_body, size_t resp_len);

/* One delivery engine for all sinks of conf (conf, st and ob must outlive
 * it).  Registers a commit hook on st.  -EINVAL for a sink whose secret is
 * not a valid whsec_ secret, -ENOMEM, -EIO when curl cannot start, -ENOSPC
 * when the store has no free hook slot.  *ret untouched on failure. */
int fg_webhook_new(uv_loop_t *loop, const struct fg_conf *conf, fg_store *st,
                   fg_outbox *ob, fg_webhook **ret);
void fg_webhook_on_delivered(fg_webhook *wh, fg_webhook_delivered_cb cb, void *data);

/* Reload: take the sinks of a new conf (which must then outlive the
 * webhook; the old one may be freed once this returns).  Sinks match by
 * name; a kept sink finishes its in-flight requests as they started and uses
 * the new URL, secret, timeouts and limits from its next request; a removed
 * sink's in-flight requests are aborted and its rows stay queued.  -EINVAL
 * (nothing changed) when a sink's secret is not a valid whsec_ secret. */
int fg_webhook_set_conf(fg_webhook *wh, const struct fg_conf *conf);

/* New committed rows may be due: look soon (coalesced, never re-entrant). */
void fg_webhook_kick(fg_webhook *wh);

/* Counters for status/metrics. */
struct fg_webhook_stats {
	uint64_t sent, delivered, retried, dead, in_flight;
};
void fg_webhook_stats(fg_webhook *wh, struct fg_webhook_stats *ret);

/* Stop taking new rows; in-flight requests get until timeout_ms to finish
 * (their outcome is recorded), then are aborted (rows stay pending and go
 * out again after a restart, under the same webhook-id).  All handles are
 * closed; done(data) runs from the last close callback.  NULL-safe (done
 * then runs at once).  Kicks after close are ignored. */
void fg_webhook_close(fg_webhook *wh, int64_t timeout_ms, void (*done)(void *data), void *data);

/* Free the memory once done() has run.  The store keeps the commit hook
 * registered by fg_webhook_new() (it has no way to remove one), so free the
 * webhook only after the last fg_store_commit() on st, i.e. after
 * fg_store_close().  NULL-safe. */
void fg_webhook_free(fg_webhook *wh);

#endif
