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
 * Thread: loop thread only.  Rows are read only after they are committed
 * (the store's commit hook calls fg_webhook_kick()).
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

int fg_webhook_new(uv_loop_t *loop, const struct fg_conf *conf, fg_store *st,
                   fg_outbox *ob, fg_webhook **ret);
void fg_webhook_on_delivered(fg_webhook *wh, fg_webhook_delivered_cb cb, void *data);

/* New committed rows may be due: look soon (coalesced, never re-entrant). */
void fg_webhook_kick(fg_webhook *wh);

/* Counters for status/metrics. */
struct fg_webhook_stats {
	uint64_t sent, delivered, retried, dead, in_flight;
};
void fg_webhook_stats(fg_webhook *wh, struct fg_webhook_stats *ret);

/* Stop taking new rows; in-flight requests get until timeout_ms to finish
 * (their outcome is recorded), then are aborted (rows stay pending).  All
 * handles are closed; done(data) runs from the last close callback. */
void fg_webhook_close(fg_webhook *wh, int64_t timeout_ms, void (*done)(void *data), void *data);

#endif
