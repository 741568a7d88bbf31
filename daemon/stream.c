/* Device event streams (multipart over a long-lived GET); see stream.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include <openssl/crypto.h>
#include "../plugins/common/multipart.h"
#include "backoff.h"
#include "curluv.h"
#include "log.h"
#include "metrics.h"
#include "stream.h"
#include "util.h"

#define MOD "stream"
#define MAX_PART (1024 * 1024)
#define STABLE_MS 60000          /* a connection this old resets the backoff */
#define CONNECT_TIMEOUT_S 10L

struct stream {
	fg_streams *owner;
	char *source, *url, *user, *pass;
	char peer[256];
	int64_t rmin_ms, rmax_ms, idle_ms;

	CURL *easy;                /* NULL while waiting to reconnect */
	char errbuf[CURL_ERROR_SIZE];
	char ctype[256];           /* of the current response */
	char boundary[MP_BOUNDARY_MAX + 1];
	bool checked;              /* status and boundary looked at */
	long bad_status;           /* a non-200 answer */
	uint8_t *buf;
	size_t len, cap;
	int64_t connected_ms;      /* 0 = not connected */
	unsigned parts;

	uint32_t attempt;
	int64_t next_ms;           /* when to (re)connect; 0 = running */
};

struct fg_streams {
	uv_loop_t *loop;
	fg_ingest **ing;
	fg_curluv *curl;
	uv_timer_t retry;
	struct stream *s;
	size_t n;
	uint64_t rng;
	bool closing;
	struct fg_ratelimit rl;
};

static void schedule(fg_streams *ss);

static void set_connected(struct stream *st, bool on)
{
	fg_metrics_set("firegrid_stream_connected", "source", st->source, on);
	st->connected_ms = on ? fg_now_ms() : 0;
}

/* One complete part: to the source's plugin. */
static void deliver(struct stream *st, const uint8_t *p, size_t n)
{
	char ct[MP_BOUNDARY_MAX + 64], b[MP_BOUNDARY_MAX + 1];
	const char *ctype = st->ctype;
	/* The plugin splits the part with the boundary of its Content-Type:
	 * name the one this stream uses when the response's does not (no
	 * multipart type, or one without a boundary: it was sniffed). */
	if (!mp_type_is(ctype, strlen(ctype), "multipart/*") ||
	    mp_boundary(ctype, b, sizeof(b)) < 0) {
		snprintf(ct, sizeof(ct), "multipart/mixed; boundary=\"%s\"", st->boundary);
		ctype = ct;
	}
	const struct fg_header hdrs[] = {
		{ "content-type", ctype },
		{ "x-firegrid-peer", st->peer },
	};
	struct fg_msg msg = {
		.struct_size = sizeof(msg),
		.source = st->source,
		.transport = "stream",
		.topic = st->url,
		.payload = p,
		.len = n,
		.headers = hdrs,
		.n_headers = FG_ARRAY_SIZE(hdrs),
		.recv_time_ms = fg_now_ms(),
	};
	const char *reason = NULL;
	fg_metrics_inc("firegrid_stream_parts_total", "source", st->source);
	st->parts++;
	/* -ENOENT: the source went with a reload; failures are logged by ingest */
	fg_ingest_msg_to(*st->owner->ing, st->source, &msg, &reason);
}

/* Cut what has arrived into parts. */
static void parse(struct stream *st)
{
	size_t start = 0;
	for (;;) {
		struct mp_part part;
		size_t used = 0;
		int r = mp_next(st->buf + start, st->len - start, st->boundary, false, &part, &used);
		if (r == 1) {
			deliver(st, st->buf + start, used);
			start += used;
			if (!used)
				break;
			continue;
		}
		if (r == -EAGAIN) {
			start += used;
			break;
		}
		if (r == 0) {              /* close delimiter: the rest is epilogue */
			start = st->len;
			break;
		}
		/* not a part: skip to the delimiter after this one */
		fg_metrics_inc("firegrid_stream_errors_total", "source", st->source);
		fg_log_rl(&st->owner->rl, FG_LOG_WARN, MOD, "malformed part skipped source=%s",
		          st->source);
		ptrdiff_t d = mp_find_delim(st->buf, st->len, st->boundary, strlen(st->boundary),
		                            start + 2);
		start = d < 0 ? st->len : (size_t)d;
	}
	memmove(st->buf, st->buf + start, st->len - start);
	st->len -= start;
	if (st->len > MAX_PART) {
		fg_metrics_inc("firegrid_stream_errors_total", "source", st->source);
		fg_log_rl(&st->owner->rl, FG_LOG_WARN, MOD, "part over %d bytes dropped source=%s",
		          MAX_PART, st->source);
		st->len = 0;
	}
}

/* First bytes of a response: is it a 200 multipart stream? */
static bool check_response(struct stream *st)
{
	long code = 0;
	curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		st->bad_status = code;
		return false;
	}
	if (mp_boundary(st->ctype, st->boundary, sizeof(st->boundary)) < 0)
		st->boundary[0] = '\0';   /* sniffed from the first delimiter below */
	st->checked = true;
	set_connected(st, true);
	fg_info(MOD, "connected source=%s peer=%s", st->source, st->peer);
	return true;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct stream *st = userdata;
	size_t n = size * nmemb;
	if (!st->checked && !check_response(st))
		return 0;                  /* abort: CURLE_WRITE_ERROR */
	if (st->len + n > st->cap) {
		size_t cap = st->cap ? st->cap : 16384;
		while (cap < st->len + n)
			cap *= 2;
		uint8_t *b = realloc(st->buf, cap);
		if (!b)
			return 0;
		st->buf = b;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, ptr, n);
	st->len += n;
	if (!st->boundary[0]) {
		/* no boundary in the Content-Type: take the first delimiter line */
		uint8_t *nl = memchr(st->buf, '\n', st->len);
		if (!nl)
			return st->len > 256 ? 0 : n;
		size_t l = (size_t)(nl - st->buf);
		if (l && st->buf[l - 1] == '\r')
			l--;
		if (l - 2 > MP_BOUNDARY_MAX ||
		    mp_boundary_sniff(st->buf, l, st->boundary, sizeof(st->boundary)) < 0)
			return 0;
	}
	parse(st);
	return n;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
	struct stream *st = userdata;
	size_t n = size * nitems;
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		st->ctype[0] = '\0';       /* a new response (after a 401 challenge) */
	} else if (n > 13 && strncasecmp(line, "content-type:", 13) == 0) {
		size_t v = 13;
		while (v < n && (line[v] == ' ' || line[v] == '\t'))
			v++;
		size_t e = n;
		while (e > v && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' '))
			e--;
		snprintf(st->ctype, sizeof(st->ctype), "%.*s", (int)(e - v), line + v);
	}
	return n;
}

static int stream_open(struct stream *st)
{
	CURL *e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	st->checked = false;
	st->bad_status = 0;
	st->len = 0;
	st->ctype[0] = st->boundary[0] = st->errbuf[0] = '\0';
	st->parts = 0;
	fg_curl_easy_base(e, st->url, st, st->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, st);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, st);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	/* silence longer than idle_timeout ends the transfer (heartbeats keep
	 * a healthy stream above one byte per second over that window) */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((st->idle_ms + 999) / 1000));
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (st->user) {
		curl_easy_setopt(e, CURLOPT_USERNAME, st->user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, st->pass ? st->pass : "");
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)(CURLAUTH_DIGEST | CURLAUTH_BASIC));
	}
	st->easy = e;
	st->next_ms = 0;
	if (fg_curluv_add(st->owner->curl, e) < 0) {
		curl_easy_cleanup(e);
		st->easy = NULL;
		return -EIO;
	}
	return 0;
}

/* A transfer ended: say why, and try again later. */
static void done_cb(void *data, CURL *easy, CURLcode result)
{
	fg_streams *ss = data;
	struct stream *st = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&st);
	if (!st)
		return;
	int64_t now = fg_now_ms();
	bool was_up = st->connected_ms != 0;
	if (was_up && now - st->connected_ms >= STABLE_MS && st->parts)
		st->attempt = 0;
	char why[CURL_ERROR_SIZE + 32];
	if (st->bad_status)
		snprintf(why, sizeof(why), "HTTP status %ld", st->bad_status);
	else if (result == CURLE_OK)
		snprintf(why, sizeof(why), "the device closed the stream");
	else if (result == CURLE_WRITE_ERROR && !st->boundary[0])
		snprintf(why, sizeof(why), "not a multipart stream (Content-Type '%.80s')", st->ctype);
	else
		snprintf(why, sizeof(why), "%s", st->errbuf[0] ? st->errbuf : curl_easy_strerror(result));
	curl_easy_cleanup(easy);
	st->easy = NULL;
	if (was_up)
		set_connected(st, false);
	fg_metrics_inc("firegrid_stream_disconnects_total", "source", st->source);
	int64_t delay = fg_backoff_ms(st->attempt++, st->rmin_ms, st->rmax_ms, &ss->rng);
	st->next_ms = now + delay;
	fg_log_rl(&ss->rl, was_up ? FG_LOG_WARN : FG_LOG_INFO, MOD,
	          "%s source=%s peer=%s err=\"%s\" parts=%u retry_ms=%lld",
	          was_up ? "stream lost" : "cannot open stream", st->source, st->peer, why,
	          st->parts, (long long)delay);
	schedule(ss);
}

static void retry_cb(uv_timer_t *t)
{
	fg_streams *ss = t->data;
	int64_t now = fg_now_ms();
	for (size_t i = 0; i < ss->n && !ss->closing; i++) {
		struct stream *st = &ss->s[i];
		if (st->easy || !st->next_ms || st->next_ms > now)
			continue;
		if (stream_open(st) < 0) {
			st->next_ms = now + fg_backoff_ms(st->attempt++, st->rmin_ms, st->rmax_ms, &ss->rng);
			fg_log_rl(&ss->rl, FG_LOG_ERR, MOD, "cannot start a transfer source=%s", st->source);
		}
	}
	schedule(ss);
}

/* Arm the retry timer for the earliest stream waiting to reconnect. */
static void schedule(fg_streams *ss)
{
	if (ss->closing)
		return;
	int64_t next = INT64_MAX, now = fg_now_ms();
	for (size_t i = 0; i < ss->n; i++)
		if (!ss->s[i].easy && ss->s[i].next_ms && ss->s[i].next_ms < next)
			next = ss->s[i].next_ms;
	if (next == INT64_MAX)
		uv_timer_stop(&ss->retry);
	else
		uv_timer_start(&ss->retry, retry_cb, next > now ? (uint64_t)(next - now) : 0, 0);
}

static void streams_clear(fg_streams *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		struct stream *st = &ss->s[i];
		if (st->easy) {
			fg_curluv_remove(ss->curl, st->easy);
			curl_easy_cleanup(st->easy);
		}
		if (st->connected_ms)
			set_connected(st, false);
		free(st->source);
		free(st->url);
		free(st->user);
		if (st->pass) {
			OPENSSL_cleanse(st->pass, strlen(st->pass));
			free(st->pass);
		}
		free(st->buf);
	}
	free(ss->s);
	ss->s = NULL;
	ss->n = 0;
}

/* The host of a URL, for x-firegrid-peer (the device id of its events). */
static void url_host(const char *url, char *buf, size_t len)
{
	CURLU *u = curl_url();
	char *host = NULL;
	snprintf(buf, len, "%s", url);
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		snprintf(buf, len, "%s", host);
	curl_free(host);
	curl_url_cleanup(u);
}

static int streams_build(fg_streams *ss, const struct fg_conf *conf)
{
	size_t n = 0;
	for (size_t i = 0; i < conf->n_sources; i++)
		n += conf->sources[i].stream_url != NULL;
	if (!n)
		return 0;
	if (!(ss->s = calloc(n, sizeof(*ss->s))))
		return -ENOMEM;
	int64_t now = fg_now_ms();
	for (size_t i = 0; i < conf->n_sources; i++) {
		const struct fg_conf_source *src = &conf->sources[i];
		if (!src->stream_url)
			continue;
		struct stream *st = &ss->s[ss->n++];
		st->owner = ss;
		st->source = strdup(src->name);
		st->url = strdup(src->stream_url);
		st->user = src->stream_username ? strdup(src->stream_username) : NULL;
		st->pass = src->stream_password ? strdup(src->stream_password) : NULL;
		if (!st->source || !st->url || (src->stream_username && !st->user) ||
		    (src->stream_password && !st->pass))
			return -ENOMEM;
		url_host(st->url, st->peer, sizeof(st->peer));
		st->rmin_ms = src->stream_reconnect_min_ms;
		st->rmax_ms = src->stream_reconnect_max_ms;
		st->idle_ms = src->stream_idle_timeout_ms;
		st->next_ms = now;         /* open at the next timer run */
	}
	schedule(ss);
	return 0;
}

int fg_streams_new(uv_loop_t *loop, const struct fg_conf *conf, fg_ingest **ing,
                   fg_streams **ret)
{
	fg_streams *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return -ENOMEM;
	ss->loop = loop;
	ss->ing = ing;
	ss->rng = fg_rand_seed();
	ss->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 20);
	int r = fg_curluv_new(loop, done_cb, ss, &ss->curl);
	if (r < 0) {
		free(ss);
		return r;
	}
	uv_timer_init(loop, &ss->retry);
	ss->retry.data = ss;
	r = streams_build(ss, conf);
	if (r < 0) {
		fg_streams_close(ss);
		*ret = ss;                 /* closed: the caller frees it after the loop */
		return r;
	}
	*ret = ss;
	return 0;
}

int fg_streams_set_conf(fg_streams *ss, const struct fg_conf *conf)
{
	if (!ss || ss->closing)
		return 0;
	streams_clear(ss);
	uv_timer_stop(&ss->retry);
	return streams_build(ss, conf);
}

size_t fg_streams_connected(const fg_streams *ss)
{
	size_t n = 0;
	for (size_t i = 0; ss && i < ss->n; i++)
		n += ss->s[i].connected_ms != 0;
	return n;
}

void fg_streams_close(fg_streams *ss)
{
	if (!ss || ss->closing)
		return;
	streams_clear(ss);
	ss->closing = true;
	fg_curluv_close(ss->curl, NULL, NULL);
	uv_close((uv_handle_t *)&ss->retry, NULL);
}

void fg_streams_free(fg_streams *ss)
{
	if (!ss)
		return;
	streams_clear(ss);
	fg_curluv_free(ss->curl);
	free(ss);
}
