/* Webhook delivery over one curl multi handle on the loop; see webhook.h. */
#include "webhook.h"
#include "formats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "backoff.h"
#include "curluv.h"
#include "log.h"
#include "metrics.h"
#include "sign.h"
#include "util.h"

#define MOD "webhook"
#define SINK_MAX_INFLIGHT 16
#define EXCERPT_MAX 512
/* When rows are pending but none can go yet for a reason the outbox does
 * not date (blocked behind an older revision), look again this often. */
#define POLL_BLOCKED_MS 1000
#define RETRY_STORE_MS 1000

struct wh_sink;

/* One request slot; its easy handle is kept for the next row, so curl's
 * connection cache (in the multi handle) does the keep-alive. */
struct wh_req {
	struct fg_webhook *wh;
	struct wh_sink *sink;
	CURL *easy;
	bool active;
	unsigned gen;                 /* sink->gen the easy handle was set up for */
	struct curl_slist *headers;
	struct fg_outbox_row row;
	char excerpt[EXCERPT_MAX + 1];
	size_t excerpt_len;
	char retry_after[64];         /* "" = none */
	char errbuf[CURL_ERROR_SIZE];
};

struct wh_sink {
	const struct fg_conf_sink *conf;
	uint8_t key[FG_SIGN_KEY_MAX];
	size_t key_len;
	size_t max_inflight;          /* slots [0, max_inflight) take new rows */
	size_t n_inflight;            /* after a reload it may exceed max_inflight */
	unsigned gen;                 /* bumped when the sink's settings change */
	struct wh_req reqs[SINK_MAX_INFLIGHT];
	struct fg_ratelimit rl_retry, rl_dead, rl_store;
};

/* A socket curl wants watched; freed from its close callback. */
struct wh_sock {
	uv_poll_t poll;
	struct fg_webhook *wh;
	curl_socket_t fd;
	struct wh_sock *next, **pprev;
};

struct fg_webhook {
	uv_loop_t *loop;
	const struct fg_conf *conf;
	fg_store *st;
	fg_outbox *ob;
	CURLM *multi;
	uv_timer_t curl_timer;        /* CURLMOPT_TIMERFUNCTION */
	uv_timer_t sched_timer;       /* kick / next due row / close timeout */
	struct wh_sink **sinks;
	size_t n_sinks;
	struct wh_sock *socks;
	fg_webhook_delivered_cb delivered_cb;
	void *delivered_data;
	uint64_t rng;
	struct fg_webhook_stats stats;
	struct fg_ratelimit rl;
	bool started;                 /* timers initialised */
	bool closing, finishing;
	unsigned open_handles;
	void (*done)(void *data);
	void *done_data;
};

static void scan(struct fg_webhook *wh);
static void finish(struct fg_webhook *wh);

static void handle_closed(struct fg_webhook *wh)
{
	if (--wh->open_handles == 0 && wh->done)
		wh->done(wh->done_data);
}

static void timer_close_cb(uv_handle_t *h)
{
	handle_closed(h->data);
}

/* ---- curl <-> libuv ------------------------------------------------------ */

static void sock_close_cb(uv_handle_t *h)
{
	struct wh_sock *ws = h->data;
	struct fg_webhook *wh = ws->wh;
	free(ws);
	handle_closed(wh);
}

static void sock_close(struct wh_sock *ws)
{
	*ws->pprev = ws->next;
	if (ws->next)
		ws->next->pprev = ws->pprev;
	uv_close((uv_handle_t *)&ws->poll, sock_close_cb);
}

static void check_done(struct fg_webhook *wh);

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct wh_sock *ws = h->data;
	struct fg_webhook *wh = ws->wh;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(wh->multi, ws->fd, flags, &running);
	check_done(wh);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct fg_webhook *wh = userp;
	struct wh_sock *ws = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (ws) {
			curl_multi_assign(wh->multi, s, NULL);
			sock_close(ws);
		}
		return 0;
	}
	if (!ws) {
		ws = calloc(1, sizeof(*ws));
		if (!ws)
			return -1;
		if (uv_poll_init_socket(wh->loop, &ws->poll, s) < 0) {
			free(ws);
			return -1;
		}
		ws->poll.data = ws;
		ws->wh = wh;
		ws->fd = s;
		ws->next = wh->socks;
		if (ws->next)
			ws->next->pprev = &ws->next;
		ws->pprev = &wh->socks;
		wh->socks = ws;
		wh->open_handles++;
		curl_multi_assign(wh->multi, s, ws);
	}
	int events = 0;
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	return uv_poll_start(&ws->poll, events, poll_cb) < 0 ? -1 : 0;
}

static void curl_timer_cb(uv_timer_t *t)
{
	struct fg_webhook *wh = t->data;
	int running;
	curl_multi_socket_action(wh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(wh);
}

/* curl must not be re-entered from here: the timer calls it later. */
static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct fg_webhook *wh = userp;
	if (timeout_ms < 0 || wh->finishing)
		uv_timer_stop(&wh->curl_timer);
	else
		uv_timer_start(&wh->curl_timer, curl_timer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- one request ----------------------------------------------------------- */

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
	struct wh_req *req = userp;
	size_t len = size * n;
	size_t room = EXCERPT_MAX - req->excerpt_len;
	size_t take = len < room ? len : room;
	memcpy(req->excerpt + req->excerpt_len, data, take);
	req->excerpt_len += take;
	req->excerpt[req->excerpt_len] = '\0';
	return len;   /* read the rest too, so the connection stays reusable */
}

static size_t header_cb(char *data, size_t size, size_t n, void *userp)
{
	struct wh_req *req = userp;
	size_t len = size * n;
	static const char name[] = "retry-after:";

	/* A new status line starts a new response (after a 100 Continue). */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
		req->retry_after[0] = '\0';
	else if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		size_t vlen = len - (sizeof(name) - 1);
		if (vlen >= sizeof(req->retry_after))
			vlen = sizeof(req->retry_after) - 1;   /* too long to be valid anyway */
		memcpy(req->retry_after, data + sizeof(name) - 1, vlen);
		req->retry_after[vlen] = '\0';
	}
	return len;
}

static int req_setup(struct wh_req *req)
{
	const struct fg_conf_sink *sc = req->sink->conf;
	CURL *e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	int bad = fg_curl_easy_base(e, sc->url, req, req->errbuf);
	bad |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)sc->timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)sc->connect_timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (sc->ca_file)
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, sc->ca_file);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, sc->tls_verify ? 1L : 0L);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, sc->tls_verify ? 2L : 0L);
	if (bad) {
		curl_easy_cleanup(e);
		return -EINVAL;
	}
	req->easy = e;
	return 0;
}

static void set_inflight_gauge(struct fg_webhook *wh, struct wh_sink *sink)
{
	fg_metrics_set("firegrid_webhook_in_flight", "sink", sink->conf->name,
	               (int64_t)sink->n_inflight);
}

static void req_release(struct wh_req *req)
{
	struct fg_webhook *wh = req->wh;
	curl_slist_free_all(req->headers);
	req->headers = NULL;
	fg_outbox_row_clear(&req->row);
	memset(&req->row, 0, sizeof(req->row));
	req->active = false;
	req->sink->n_inflight--;
	wh->stats.in_flight--;
	set_inflight_gauge(wh, req->sink);
}

static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static struct curl_slist *add_header(struct curl_slist *list, bool *failed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct curl_slist *add_header(struct curl_slist *list, bool *failed, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	struct curl_slist *l = n < 0 || (size_t)n >= sizeof(line) ? NULL : curl_slist_append(list, line);
	if (!l) {
		*failed = true;
		return list;
	}
	return l;
}

/* Sign the row afresh and hand it to curl.  On failure the row is not
 * consumed (the caller keeps ownership). */
static int req_start(struct wh_req *req, struct fg_outbox_row *row)
{
	struct fg_webhook *wh = req->wh;
	struct wh_sink *sink = req->sink;
	char sig[FG_SIGN_SIG_MAX];
	int64_t ts = fg_now_ms() / 1000;

	if (!req->easy || req->gen != sink->gen) {
		curl_easy_cleanup(req->easy);
		req->easy = NULL;
		int r = req_setup(req);
		if (r < 0)
			return r;
		req->gen = sink->gen;
	}
	int r = fg_sign(sink->key, sink->key_len, row->webhook_id, ts, row->body, row->body_len, sig);
	if (r < 0)
		return r;

	bool failed = false;
	struct curl_slist *h = NULL;
	h = add_header(h, &failed, "Content-Type: %s", fg_format_content_type(sink->conf->format));
	h = add_header(h, &failed, "webhook-id: %s", row->webhook_id);
	h = add_header(h, &failed, "webhook-timestamp: %" PRId64, ts);
	h = add_header(h, &failed, "webhook-signature: %s", sig);
	h = add_header(h, &failed, "Expect:");   /* no 100-continue round trip */
	if (failed) {
		curl_slist_free_all(h);
		return -ENOMEM;
	}
	curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, row->body);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)row->body_len);
	req->excerpt_len = 0;
	req->excerpt[0] = '\0';
	req->retry_after[0] = '\0';
	req->errbuf[0] = '\0';
	if (curl_multi_add_handle(wh->multi, req->easy) != CURLM_OK) {
		curl_slist_free_all(h);
		return -EIO;
	}
	req->headers = h;
	req->row = *row;
	memset(row, 0, sizeof(*row));
	req->active = true;
	sink->n_inflight++;
	wh->stats.in_flight++;
	wh->stats.sent++;
	fg_metrics_inc("firegrid_webhook_sent_total", "sink", sink->conf->name);
	set_inflight_gauge(wh, sink);
	return 0;
}

/* Log-safe copy of a response excerpt: one line, printable, short. */
static const char *excerpt_for_log(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	for (; s[i] && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i] == '"' ? '\'' : s[i];
	buf[i] = '\0';
	return buf;
}

static void outcome_dead(struct wh_req *req, long status, const char *error, int64_t now)
{
	struct fg_webhook *wh = req->wh;
	struct wh_sink *sink = req->sink;
	const struct fg_outbox_row *row = &req->row;
	char ex[121];

	int r = fg_outbox_dead(wh->ob, row->id, (int)status, req->excerpt, error, now);
	if (r < 0) {
		fg_log_rl(&sink->rl_store, FG_LOG_ERR, MOD,
		          "cannot dead-letter, row stays queued sink=%s webhook_id=%s err=\"%s\"",
		          sink->conf->name, row->webhook_id, fg_strerror(r));
		return;
	}
	wh->stats.dead++;
	fg_metrics_inc("firegrid_webhook_dead_letters_total", "sink", sink->conf->name);
	fg_log_rl(&sink->rl_dead, FG_LOG_ERR, MOD,
	          "dead-lettered sink=%s webhook_id=%s incident=%" PRId64 " revision=%" PRId64
	          " status=%ld attempts=%" PRId64 " error=\"%s\" response=\"%s\"",
	          sink->conf->name, row->webhook_id, row->incident_id, row->revision, status,
	          row->attempts + 1, error, excerpt_for_log(req->excerpt, ex, sizeof(ex)));
}

static void outcome_retry(struct wh_req *req, long status, const char *error, int64_t now)
{
	struct fg_webhook *wh = req->wh;
	struct wh_sink *sink = req->sink;
	const struct fg_conf_sink *sc = sink->conf;
	const struct fg_outbox_row *row = &req->row;

	if (row->priority < FG_SEV_CRITICAL && now - row->created_ms > sc->give_up_ms) {
		char why[CURL_ERROR_SIZE + 96];
		snprintf(why, sizeof(why), "gave up after %" PRId64 " attempts: %s",
		         row->attempts + 1, error);
		outcome_dead(req, status, why, now);
		return;
	}

	int64_t delay;
	int64_t ra = req->retry_after[0] ? fg_retry_after_ms(req->retry_after, now) : -1;
	if (ra >= 0)
		delay = ra < sc->retry_min_ms ? sc->retry_min_ms :
		        ra > sc->retry_max_ms ? sc->retry_max_ms : ra;
	else
		delay = fg_backoff_ms(row->attempts > UINT32_MAX ? UINT32_MAX : (uint32_t)row->attempts,
		                      sc->retry_min_ms, sc->retry_max_ms, &wh->rng);

	int r = fg_outbox_retry(wh->ob, row->id, now + delay, (int)status, error);
	if (r < 0) {
		fg_log_rl(&sink->rl_store, FG_LOG_ERR, MOD,
		          "cannot record retry sink=%s webhook_id=%s err=\"%s\"",
		          sc->name, row->webhook_id, fg_strerror(r));
		return;
	}
	wh->stats.retried++;
	fg_metrics_inc("firegrid_webhook_retries_total", "sink", sc->name);
	fg_log_rl(&sink->rl_retry, FG_LOG_WARN, MOD,
	          "delivery failed, will retry sink=%s webhook_id=%s status=%ld error=\"%s\""
	          " attempt=%" PRId64 " retry_in_ms=%" PRId64 "%s",
	          sc->name, row->webhook_id, status, error, row->attempts + 1, delay,
	          ra >= 0 ? " (Retry-After)" : "");
}

static void outcome(struct wh_req *req, CURLcode result)
{
	struct fg_webhook *wh = req->wh;
	struct wh_sink *sink = req->sink;
	int64_t now = fg_now_ms();
	long status = 0;
	char error[CURL_ERROR_SIZE + 32];

	int r = fg_store_begin(wh->st);
	if (r < 0) {
		/* Nothing recorded: the row stays due and goes out again. */
		fg_log_rl(&sink->rl_store, FG_LOG_ERR, MOD, "cannot begin transaction sink=%s err=\"%s\"",
		          sink->conf->name, fg_strerror(r));
		return;
	}
	if (result == CURLE_OK)
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);

	if (result == CURLE_OK && status >= 200 && status <= 299) {
		r = fg_outbox_done(wh->ob, req->row.id);
		if (r < 0) {
			fg_log_rl(&sink->rl_store, FG_LOG_ERR, MOD,
			          "delivered but cannot mark done, will resend sink=%s webhook_id=%s err=\"%s\"",
			          sink->conf->name, req->row.webhook_id, fg_strerror(r));
			return;
		}
		wh->stats.delivered++;
		fg_metrics_inc("firegrid_webhook_delivered_total", "sink", sink->conf->name);
		fg_debug(MOD, "delivered sink=%s webhook_id=%s status=%ld attempts=%" PRId64,
		         sink->conf->name, req->row.webhook_id, status, req->row.attempts + 1);
		if (wh->delivered_cb)
			wh->delivered_cb(wh->delivered_data, &req->row, status, req->excerpt,
			                 req->excerpt_len);
		return;
	}

	if (result != CURLE_OK)
		snprintf(error, sizeof(error), "%s", req->errbuf[0] ? req->errbuf
		                                                     : curl_easy_strerror(result));
	else
		snprintf(error, sizeof(error), "HTTP %ld", status);

	if (result != CURLE_OK || status == 408 || status == 429 || status >= 500)
		outcome_retry(req, status, error, now);
	else
		outcome_dead(req, status, error, now);
}

/* Collect finished transfers, record their outcomes, then look for more
 * work on the next loop turn (one scan per turn however many finished). */
static void check_done(struct fg_webhook *wh)
{
	CURLMsg *msg;
	int left;
	bool any = false;

	while ((msg = curl_multi_info_read(wh->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *e = msg->easy_handle;
		CURLcode result = msg->data.result;
		struct wh_req *req = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&req);
		curl_multi_remove_handle(wh->multi, e);
		outcome(req, result);
		req_release(req);
		any = true;
	}
	if (!any)
		return;
	if (wh->closing) {
		if (wh->stats.in_flight == 0)
			finish(wh);
		return;
	}
	fg_webhook_kick(wh);
}

/* ---- scheduling ------------------------------------------------------------ */

static void sched_timer_cb(uv_timer_t *t)
{
	scan(t->data);
}

static struct wh_req *free_slot(struct wh_sink *sink)
{
	for (size_t i = 0; i < sink->max_inflight; i++)
		if (!sink->reqs[i].active)
			return &sink->reqs[i];
	return NULL;
}

/* Fill the free slots of one sink.  Returns when to look again (ms epoch),
 * INT64_MAX when only a completion can make more work possible. */
static int64_t fill_sink(struct fg_webhook *wh, struct wh_sink *sink, int64_t now)
{
	if (sink->n_inflight >= sink->max_inflight)
		return INT64_MAX;
	size_t room = sink->max_inflight - sink->n_inflight;

	int64_t skip[SINK_MAX_INFLIGHT];
	size_t n_skip = 0;
	for (size_t i = 0; i < SINK_MAX_INFLIGHT; i++)
		if (sink->reqs[i].active)
			skip[n_skip++] = sink->reqs[i].row.id;

	struct fg_outbox_row *rows = NULL;
	size_t n = 0;
	int r = fg_outbox_due(wh->ob, sink->conf->name, now, skip, n_skip, room, &rows, &n);
	if (r < 0) {
		fg_log_rl(&sink->rl_store, FG_LOG_ERR, MOD, "cannot read outbox sink=%s err=\"%s\"",
		          sink->conf->name, fg_strerror(r));
		return now + RETRY_STORE_MS;
	}

	int64_t again = INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		struct wh_req *req = free_slot(sink);
		if (!req)
			break;   /* the outbox returned more than asked for */
		if (!rows[i].webhook_id || !header_safe(rows[i].webhook_id)) {
			/* Rows built by the outbox never look like this; a row that
			 * cannot be put in a header must not block its incident. */
			r = fg_store_begin(wh->st);
			if (r >= 0)
				r = fg_outbox_dead(wh->ob, rows[i].id, 0, NULL,
				                   "webhook-id is not a valid header value", now);
			fg_log_rl(&sink->rl_store, FG_LOG_ERR, MOD,
			          "unsendable outbox row sink=%s id=%" PRId64 " dead_lettered=%s",
			          sink->conf->name, rows[i].id, r < 0 ? "no" : "yes");
			again = now + RETRY_STORE_MS;
			continue;
		}
		r = req_start(req, &rows[i]);
		if (r < 0) {
			fg_log_rl(&sink->rl_store, FG_LOG_ERR, MOD, "cannot start request sink=%s webhook_id=%s err=\"%s\"",
			          sink->conf->name, rows[i].webhook_id, fg_strerror(r));
			again = now + RETRY_STORE_MS;
		}
	}
	fg_outbox_rows_free(rows, n);

	if (n < room) {
		int64_t due = fg_outbox_next_due_ms(wh->ob, sink->conf->name);
		if (due != INT64_MAX) {
			/* Due but not handed out: in flight or behind an older revision. */
			if (due <= now)
				due = now + POLL_BLOCKED_MS;
			if (due < again)
				again = due;
		}
	}
	return again;
}

static void scan(struct fg_webhook *wh)
{
	if (wh->closing)
		return;
	/* Only committed rows may go out (see webhook.h).  A transaction that
	 * added none (only outcomes of earlier deliveries) may stay open: the
	 * rows this scan sees were all committed before it began. */
	if (fg_store_txn_urgent(wh->st)) {
		int r = fg_store_commit(wh->st);
		if (r < 0) {
			fg_log_rl(&wh->rl, FG_LOG_ERR, MOD, "commit before delivery failed err=\"%s\"",
			          fg_strerror(r));
			uv_timer_start(&wh->sched_timer, sched_timer_cb, RETRY_STORE_MS, 0);
			return;
		}
	}
	uv_timer_stop(&wh->sched_timer);   /* this scan covers any kick so far */

	int64_t now = fg_now_ms();
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < wh->n_sinks; i++) {
		int64_t at = fill_sink(wh, wh->sinks[i], now);
		if (at < next)
			next = at;
	}
	if (next != INT64_MAX)
		uv_timer_start(&wh->sched_timer, sched_timer_cb, (uint64_t)(next - now), 0);
}

void fg_webhook_kick(fg_webhook *wh)
{
	if (!wh || !wh->started || wh->closing)
		return;
	if (uv_is_active((uv_handle_t *)&wh->sched_timer) &&
	    uv_timer_get_due_in(&wh->sched_timer) == 0)
		return;
	uv_timer_start(&wh->sched_timer, sched_timer_cb, 0, 0);
}

static void commit_hook(void *data)
{
	fg_webhook_kick(data);
}

/* ---- life cycle ------------------------------------------------------------ */

static int url_host_port(const char *url, char **ret_host, char **ret_port)
{
	CURLU *u = curl_url();
	*ret_host = *ret_port = NULL;
	int ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	         curl_url_get(u, CURLUPART_HOST, ret_host, 0) == CURLUE_OK &&
	         curl_url_get(u, CURLUPART_PORT, ret_port, CURLU_DEFAULT_PORT) == CURLUE_OK;
	curl_url_cleanup(u);
	return ok ? 0 : -EINVAL;
}

static size_t sink_cap(const struct fg_conf_sink *c)
{
	return c->max_connections < 1 ? 1 : c->max_connections > SINK_MAX_INFLIGHT ?
	       SINK_MAX_INFLIGHT : (size_t)c->max_connections;
}

/* curl's connection cache holds every sink's connections; its per-host limit
 * is the sum over the sinks that point at the same host:port (each sink
 * keeps to its own cap by never having more requests in flight). */
static void multi_limits(struct fg_webhook *wh, const struct fg_conf *conf)
{
	long total = 0, per_host = 1;
	for (size_t i = 0; i < conf->n_sinks; i++) {
		char *hi, *pi;
		long sum = 0;
		url_host_port(conf->sinks[i].url, &hi, &pi);
		for (size_t j = 0; j < conf->n_sinks; j++) {
			char *hj, *pj;
			url_host_port(conf->sinks[j].url, &hj, &pj);
			if (i == j || (hi && hj && pi && pj && strcasecmp(hi, hj) == 0 && strcmp(pi, pj) == 0))
				sum += (long)sink_cap(&conf->sinks[j]);
			curl_free(hj);
			curl_free(pj);
		}
		curl_free(hi);
		curl_free(pi);
		total += (long)sink_cap(&conf->sinks[i]);
		if (sum > per_host)
			per_host = sum;
	}
	curl_multi_setopt(wh->multi, CURLMOPT_MAXCONNECTS, total > 0 ? total : 1L);
	curl_multi_setopt(wh->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
}

/* Point a sink at (new) settings; the key is checked by the caller. */
static void sink_configure(struct wh_sink *s, const struct fg_conf_sink *c, const uint8_t *key,
                           size_t key_len)
{
	s->conf = c;
	memcpy(s->key, key, key_len);
	s->key_len = key_len;
	s->max_inflight = sink_cap(c);
	s->gen++;   /* easy handles are set up again before their next use */
}

static struct wh_sink *sink_new(struct fg_webhook *wh)
{
	struct wh_sink *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->rl_retry = (struct fg_ratelimit)FG_RATELIMIT_INIT(10000, 20);
	s->rl_dead = (struct fg_ratelimit)FG_RATELIMIT_INIT(10000, 50);
	s->rl_store = (struct fg_ratelimit)FG_RATELIMIT_INIT(10000, 5);
	for (size_t j = 0; j < SINK_MAX_INFLIGHT; j++) {
		s->reqs[j].wh = wh;
		s->reqs[j].sink = s;
	}
	return s;
}

/* Abort what the sink has in flight (rows stay queued) and free it.
 * Returns how many requests were aborted. */
static size_t sink_free(struct fg_webhook *wh, struct wh_sink *s)
{
	size_t aborted = 0;
	if (!s)
		return 0;
	for (size_t j = 0; j < SINK_MAX_INFLIGHT; j++) {
		struct wh_req *req = &s->reqs[j];
		if (req->active) {
			curl_multi_remove_handle(wh->multi, req->easy);
			req_release(req);
			aborted++;
		}
		curl_easy_cleanup(req->easy);
		req->easy = NULL;
	}
	OPENSSL_cleanse(s->key, sizeof(s->key));
	free(s);
	return aborted;
}

static struct wh_sink *sink_find(struct fg_webhook *wh, const char *name)
{
	for (size_t i = 0; i < wh->n_sinks; i++)
		if (wh->sinks[i] && strcmp(wh->sinks[i]->conf->name, name) == 0)
			return wh->sinks[i];
	return NULL;
}

/*
 * Swap in the sinks of conf.  Sinks are matched by name: a kept sink keeps
 * its in-flight requests (they finish under the settings they started with)
 * and uses the new URL, secret, timeouts and limits from its next request;
 * a removed sink's in-flight requests are aborted, their rows stay queued.
 * Everything is checked before anything changes.
 */
int fg_webhook_set_conf(fg_webhook *wh, const struct fg_conf *conf)
{
	if (!wh || !conf || wh->closing)
		return -EINVAL;

	size_t n = conf->n_sinks;
	struct wh_sink **sinks = n ? calloc(n, sizeof(*sinks)) : NULL;
	uint8_t (*keys)[FG_SIGN_KEY_MAX] = n ? calloc(n, sizeof(*keys)) : NULL;
	size_t *key_lens = n ? calloc(n, sizeof(*key_lens)) : NULL;
	int r = -ENOMEM;
	if (n && (!sinks || !keys || !key_lens))
		goto out;

	r = -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!conf->sinks[i].name || !conf->sinks[i].url || !conf->sinks[i].secret ||
		    fg_sign_key_decode(conf->sinks[i].secret, keys[i], &key_lens[i]) < 0)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (strcmp(conf->sinks[i].name, conf->sinks[j].name) == 0)
				goto out;
	}
	r = -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		sinks[i] = sink_find(wh, conf->sinks[i].name);
		if (!sinks[i] && !(sinks[i] = sink_new(wh)))
			goto out;
	}

	/* Committed from here on: nothing below fails. */
	size_t aborted = 0;
	for (size_t i = 0; i < wh->n_sinks; i++) {
		bool kept = false;
		for (size_t j = 0; j < n; j++)
			kept |= sinks[j] == wh->sinks[i];
		if (!kept)
			aborted += sink_free(wh, wh->sinks[i]);
	}
	if (aborted)
		fg_warn(MOD, "sinks removed by the new configuration: %zu requests aborted; they stay queued",
		        aborted);
	for (size_t i = 0; i < n; i++) {
		sink_configure(sinks[i], &conf->sinks[i], keys[i], key_lens[i]);
		set_inflight_gauge(wh, sinks[i]);
	}
	free(wh->sinks);
	wh->sinks = sinks;
	wh->n_sinks = n;
	sinks = NULL;
	wh->conf = conf;
	multi_limits(wh, conf);
	fg_webhook_kick(wh);
	r = 0;
out:
	/* On failure, free only the sinks made here (not yet in wh->sinks). */
	for (size_t i = 0; sinks && i < n; i++) {
		bool existing = false;
		for (size_t j = 0; j < wh->n_sinks; j++)
			existing |= sinks[i] == wh->sinks[j];
		if (!existing)
			sink_free(wh, sinks[i]);
	}
	free(sinks);
	if (keys)
		OPENSSL_cleanse(keys, n * sizeof(*keys));
	free(keys);
	free(key_lens);
	return r;
}

int fg_webhook_new(uv_loop_t *loop, const struct fg_conf *conf, fg_store *st,
                   fg_outbox *ob, fg_webhook **ret)
{
	if (!loop || !conf || !st || !ob || !ret)
		return -EINVAL;

	struct fg_webhook *wh = calloc(1, sizeof(*wh));
	if (!wh)
		return -ENOMEM;
	wh->loop = loop;
	wh->st = st;
	wh->ob = ob;
	wh->rng = fg_rand_seed();
	wh->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(10000, 5);

	int r = -EIO;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(wh);
		return r;
	}
	wh->multi = curl_multi_init();
	if (!wh->multi ||
	    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
	    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETDATA, wh) != CURLM_OK ||
	    curl_multi_setopt(wh->multi, CURLMOPT_TIMERFUNCTION, timer_fn) != CURLM_OK ||
	    curl_multi_setopt(wh->multi, CURLMOPT_TIMERDATA, wh) != CURLM_OK)
		goto fail;
	r = fg_webhook_set_conf(wh, conf);
	if (r < 0)
		goto fail;
	r = fg_store_on_commit(st, commit_hook, wh);
	if (r < 0)
		goto fail;

	uv_timer_init(loop, &wh->curl_timer);
	uv_timer_init(loop, &wh->sched_timer);
	wh->curl_timer.data = wh;
	wh->sched_timer.data = wh;
	wh->open_handles = 2;
	wh->started = true;
	*ret = wh;
	fg_webhook_kick(wh);   /* rows left from before a restart */
	return 0;

fail:
	for (size_t i = 0; i < wh->n_sinks; i++)
		sink_free(wh, wh->sinks[i]);
	free(wh->sinks);
	curl_multi_cleanup(wh->multi);
	curl_global_cleanup();
	free(wh);
	return r;
}

void fg_webhook_on_delivered(fg_webhook *wh, fg_webhook_delivered_cb cb, void *data)
{
	wh->delivered_cb = cb;
	wh->delivered_data = data;
}

void fg_webhook_stats(fg_webhook *wh, struct fg_webhook_stats *ret)
{
	*ret = wh->stats;
}

static void close_timeout_cb(uv_timer_t *t)
{
	finish(t->data);
}

/* Abort what is left, let curl close its sockets, then close our handles. */
static void finish(struct fg_webhook *wh)
{
	if (wh->finishing)
		return;
	wh->finishing = true;
	uv_timer_stop(&wh->sched_timer);

	size_t aborted = 0;
	for (size_t i = 0; i < wh->n_sinks; i++)
		aborted += sink_free(wh, wh->sinks[i]);
	free(wh->sinks);
	wh->sinks = NULL;
	wh->n_sinks = 0;
	if (aborted)
		fg_warn(MOD, "shutdown: %zu requests still in flight were aborted; they stay queued",
		        aborted);
	curl_multi_cleanup(wh->multi);   /* may still report sockets removed */
	wh->multi = NULL;
	curl_global_cleanup();

	while (wh->socks)
		sock_close(wh->socks);
	uv_close((uv_handle_t *)&wh->curl_timer, timer_close_cb);
	uv_close((uv_handle_t *)&wh->sched_timer, timer_close_cb);
}

void fg_webhook_close(fg_webhook *wh, int64_t timeout_ms, void (*done)(void *data), void *data)
{
	if (!wh) {
		if (done)
			done(data);
		return;
	}
	if (wh->closing)
		return;
	wh->closing = true;
	wh->done = done;
	wh->done_data = data;
	uv_timer_stop(&wh->sched_timer);
	if (wh->stats.in_flight == 0 || timeout_ms <= 0)
		finish(wh);
	else
		uv_timer_start(&wh->sched_timer, close_timeout_cb, (uint64_t)timeout_ms, 0);
}

void fg_webhook_free(fg_webhook *wh)
{
	free(wh);
}
