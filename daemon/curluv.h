/*
 * curl's multi interface driven by a libuv loop: one uv_poll per socket
 * curl wants watched (CURLMOPT_SOCKETFUNCTION) and one uv_timer for its
 * timeouts (CURLMOPT_TIMERFUNCTION), so transfers run on the loop thread
 * without a thread of their own.  The owner adds easy handles and is told
 * when each one finishes.  (webhook.c drives its own multi the same way.)
 *
 * Ownership: the easy handles stay the caller's; `done` runs after an
 * easy handle was removed from the multi handle, so it may clean it up or
 * add it again.  Thread: loop thread only.
 */
#ifndef FG_CURLUV_H
#define FG_CURLUV_H

#include <curl/curl.h>

struct uv_loop_s;
typedef struct fg_curluv fg_curluv;

typedef void (*fg_curluv_done_cb)(void *data, CURL *easy, CURLcode result);

int fg_curluv_new(struct uv_loop_s *loop, fg_curluv_done_cb done, void *data, fg_curluv **ret);
/* Start a transfer.  0 or -EIO (curl refused it; done is not called). */
int fg_curluv_add(fg_curluv *c, CURL *easy);
/* Abandon a transfer (done is not called for it). */
void fg_curluv_remove(fg_curluv *c, CURL *easy);
/* Close the socket watchers and the timer; every transfer must have been
 * removed.  closed(data) runs from the last close callback (at once when
 * nothing is open).  NULL-safe. */
void fg_curluv_close(fg_curluv *c, void (*closed)(void *data), void *data);
/* Free once closed.  NULL-safe. */
void fg_curluv_free(fg_curluv *c);

/* The options every transfer firegrid makes shares: url, private pointer,
 * error buffer (CURL_ERROR_SIZE), no signals, firegrid's User-Agent, and
 * HTTP(S) only, redirects included.  0, or non-zero when curl refused an
 * option.  The caller adds its own (callbacks, timeouts, TLS, auth). */
int fg_curl_easy_base(CURL *e, const char *url, void *priv, char *errbuf);

#endif
