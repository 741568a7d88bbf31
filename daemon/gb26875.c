/* GB/T 26875.3 TCP transport: framing, confirm after commit, silence
 * supervision (see gb26875.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <mosquitto.h>
#include "gb26875.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define CONN_BUF 4096                 /* > one whole frame (1054) plus a read */
#define MAX_PENDING_WRITE (64 * 1024) /* a peer that does not read is dropped */
#define KEEPALIVE_S 60
#define ADDR_LEN 12

struct conn;

/* A transmitter this listener supervises. */
struct uitd {
	char addr[ADDR_LEN + 1];
	int64_t last_ms;             /* fg_mono_ms() of its last frame, or of start-up */
	bool offline;                /* its silence was reported */
	struct conn *conn;           /* where it was last heard, or NULL */
};

struct listener {
	fg_gb26875 *g;
	char *name;
	char *listen;
	int64_t offline_after_ms;
	bool checksum;
	int64_t max_conns;
	uv_tcp_t server;
	uv_timer_t tick;
	struct conn *conns;
	size_t n_conns;
	struct uitd *uitds;
	size_t n_uitds;
	struct fg_ratelimit rl;
};

struct conn {
	struct listener *l;
	uv_tcp_t tcp;
	struct conn *prev, *next;
	char peer[64];
	bool closing;
	bool resyncing;              /* inside a run of bad bytes: counted once */
	size_t len;
	uint8_t buf[CONN_BUF];
};

struct fg_gb26875 {
	uv_loop_t *loop;
	fg_store *st;
	fg_gb26875_msg_cb on_msg;
	void *data;
	struct listener *ls;
	size_t n;
	unsigned handles;            /* initialised and not yet closed */
	bool closing;
	void (*closed_cb)(void *data);
	void *closed_data;
};

/* ------------------------------------------------------------------------ */
/* Frames                                                                    */
/* ------------------------------------------------------------------------ */

static unsigned u16le(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return (uint8_t)s;
}

enum fg_gb26875_find fg_gb26875_frame_find(const uint8_t *buf, size_t len, bool checksum,
                                           size_t *ret_off, size_t *ret_len,
                                           const char **ret_why)
{
	const char *why = NULL;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '@')
			continue;
		*ret_off = i;
		if (i + 1 == len)
			return FG_GB26875_NEED_MORE;    /* a lone '@' may begin "@@" */
		if (buf[i + 1] != '@')
			continue;
		if (len - i < FG_GB26875_HEAD_LEN)
			return FG_GB26875_NEED_MORE;
		size_t adu = u16le(buf + i + 24), total = FG_GB26875_OVERHEAD + adu;
		if (adu > FG_GB26875_MAX_ADU)
			why = "ADU length over 1024";
		else if (len - i < total)
			return FG_GB26875_NEED_MORE;
		else if (buf[i + total - 2] != '#' || buf[i + total - 1] != '#')
			why = "no '##' where the length field says the frame ends";
		else if (checksum && sum8(buf + i + 2, total - 5) != buf[i + total - 3])
			why = "checksum mismatch";
		if (why) {
			if (ret_why)
				*ret_why = why;
			return FG_GB26875_BAD;
		}
		*ret_len = total;
		return FG_GB26875_FRAME;
	}
	*ret_off = len;
	return FG_GB26875_NEED_MORE;
}

void fg_gb26875_confirm(const uint8_t *frame, const struct tm *t,
                        uint8_t out[FG_GB26875_CONFIRM_LEN])
{
	out[0] = out[1] = '@';
	memcpy(out + 2, frame + 2, 4);          /* serial, version */
	out[6] = (uint8_t)t->tm_sec;
	out[7] = (uint8_t)t->tm_min;
	out[8] = (uint8_t)t->tm_hour;
	out[9] = (uint8_t)t->tm_mday;
	out[10] = (uint8_t)(t->tm_mon + 1);
	out[11] = (uint8_t)(t->tm_year % 100);
	memcpy(out + 12, frame + 18, 6);        /* we answer as its destination */
	memcpy(out + 18, frame + 12, 6);
	out[24] = out[25] = 0;
	out[26] = 3;                            /* confirm */
	out[27] = sum8(out + 2, 25);
	out[28] = out[29] = '#';
}

static void address(const uint8_t *p, char buf[ADDR_LEN + 1])
{
	snprintf(buf, ADDR_LEN + 1, "%02x%02x%02x%02x%02x%02x", p[5], p[4], p[3], p[2], p[1], p[0]);
}

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                  */
/* ------------------------------------------------------------------------ */

static void free_all(fg_gb26875 *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->ls[i].name);
		free(g->ls[i].listen);
		free(g->ls[i].uitds);
	}
	free(g->ls);
	void (*cb)(void *) = g->closed_cb;
	void *data = g->closed_data;
	free(g);
	if (cb)
		cb(data);
}

static void handle_closed(fg_gb26875 *g)
{
	if (--g->handles == 0 && g->closing)
		free_all(g);
}

static void listener_handle_closed_cb(uv_handle_t *h)
{
	struct listener *l = h->data;
	handle_closed(l->g);
}

static void conn_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct listener *l = c->l;
	fg_gb26875 *g = l->g;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->n_conns--;
	for (size_t i = 0; i < l->n_uitds; i++)
		if (l->uitds[i].conn == c)
			l->uitds[i].conn = NULL;
	fg_metrics_set("firegrid_gb26875_connections", "listener", l->name, (int64_t)l->n_conns);
	free(c);
	handle_closed(g);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

void fg_gb26875_close(fg_gb26875 *g, void (*closed_cb)(void *data), void *data)
{
	if (!g) {
		if (closed_cb)
			closed_cb(data);
		return;
	}
	if (g->closing)
		return;
	g->closing = true;
	g->closed_cb = closed_cb;
	g->closed_data = data;
	g->handles++;                /* hold: nothing completes synchronously below */
	for (size_t i = 0; i < g->n; i++) {
		struct listener *l = &g->ls[i];
		for (struct conn *c = l->conns; c; c = c->next)
			conn_close(c);
		if (l->server.data && !uv_is_closing((uv_handle_t *)&l->server))
			uv_close((uv_handle_t *)&l->server, listener_handle_closed_cb);
		if (l->tick.data && !uv_is_closing((uv_handle_t *)&l->tick))
			uv_close((uv_handle_t *)&l->tick, listener_handle_closed_cb);
	}
	handle_closed(g);
}

/* ------------------------------------------------------------------------ */
/* Supervision                                                               */
/* ------------------------------------------------------------------------ */

static struct uitd *uitd_get(struct listener *l, const char *addr)
{
	for (size_t i = 0; i < l->n_uitds; i++)
		if (strcmp(l->uitds[i].addr, addr) == 0)
			return &l->uitds[i];
	struct uitd *u = realloc(l->uitds, (l->n_uitds + 1) * sizeof(*u));
	if (!u)
		return NULL;
	l->uitds = u;
	u = &l->uitds[l->n_uitds++];
	memset(u, 0, sizeof(*u));
	memcpy(u->addr, addr, ADDR_LEN + 1);
	u->last_ms = fg_mono_ms();
	return u;
}

static void deliver(struct listener *l, const char *topic, const uint8_t *payload, size_t len,
                    const char *peer)
{
	struct fg_header hdr = { "peer", peer };
	struct fg_msg m = {
		.struct_size = sizeof(m),
		.transport = "tcp",
		.topic = topic,
		.payload = payload,
		.len = len,
		.headers = peer ? &hdr : NULL,
		.n_headers = peer ? 1 : 0,
		.recv_time_ms = fg_now_ms(),
	};
	l->g->on_msg(l->g->data, &m);
}

/* A silent transmitter: one notice, which the plugin makes an offline. */
static void tick_cb(uv_timer_t *t)
{
	struct listener *l = t->data;
	int64_t now = fg_mono_ms();
	for (size_t i = 0; i < l->n_uitds; i++) {
		struct uitd *u = &l->uitds[i];
		if (u->offline || now - u->last_ms < l->offline_after_ms)
			continue;
		char topic[160], secs[24];
		snprintf(topic, sizeof(topic), "gb26875/%s/%s/silent", l->name, u->addr);
		snprintf(secs, sizeof(secs), "%lld", (long long)((now - u->last_ms) / 1000));
		fg_info("gb26875", "transmitter silent listener=%s uitd=%s silent_s=%s", l->name,
		        u->addr, secs);
		u->offline = true;
		deliver(l, topic, (const uint8_t *)secs, strlen(secs), NULL);
	}
}

/* Transmitters known before start-up, from the plugin state of the sources
 * that take this listener's frames ("recent": it sent data frames; "avail"
 * offline: its silence was reported already). */
static void known_cb(void *data, const char *device, const char *key, const char *value)
{
	struct listener *l = data;
	if (strlen(device) != ADDR_LEN || strspn(device, "0123456789abcdef") != ADDR_LEN)
		return;
	if (strcmp(key, "recent") != 0 && strcmp(key, "avail") != 0)
		return;
	struct uitd *u = uitd_get(l, device);
	if (u && strcmp(key, "avail") == 0 && strcmp(value, "offline") == 0)
		u->offline = true;
}

static void load_known(struct listener *l, const struct fg_conf *conf)
{
	char topic[160];
	snprintf(topic, sizeof(topic), "gb26875/%s/000000000000", l->name);
	for (size_t s = 0; s < conf->n_sources; s++) {
		const struct fg_conf_source *src = &conf->sources[s];
		bool match = false;
		for (size_t t = 0; t < src->n_topics && !match; t++)
			mosquitto_topic_matches_sub(src->topics[t], topic, &match);
		if (match)
			fg_store_state_load(l->g->st, src->name, known_cb, l);
	}
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

static void write_cb(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	free(req);
	if (status < 0 && status != UV_ECANCELED && !c->closing) {
		fg_log_rl(&c->l->rl, FG_LOG_WARN, "gb26875",
		          "cannot send confirms listener=%s peer=%s err=\"%s\"", c->l->name, c->peer,
		          uv_strerror(status));
		conn_close(c);
	}
}

static int send_confirms(struct conn *c, const uint8_t *data, size_t len)
{
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > MAX_PENDING_WRITE)
		return -ENOBUFS;
	uv_write_t *req = malloc(sizeof(*req) + len);
	if (!req)
		return -ENOMEM;
	uint8_t *copy = (uint8_t *)(req + 1);
	memcpy(copy, data, len);
	req->data = c;
	uv_buf_t b = uv_buf_init((char *)copy, (unsigned)len);
	int r = uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
	if (r < 0) {
		free(req);
		return r;
	}
	return 0;
}

static void heard(struct conn *c, const char *addr)
{
	struct listener *l = c->l;
	struct uitd *u = uitd_get(l, addr);
	if (!u)
		return;
	if (u->conn && u->conn != c) {
		fg_info("gb26875", "transmitter reconnected listener=%s uitd=%s old_peer=%s peer=%s; "
		        "closing the old connection", l->name, addr, u->conn->peer, c->peer);
		conn_close(u->conn);
	}
	u->conn = c;
	u->last_ms = fg_mono_ms();
	u->offline = false;
}

/*
 * Every whole frame in the buffer goes to the plugin; then the transaction
 * holding their events is committed, and only then are the data frames
 * confirmed.  At most CONN_BUF / 30 frames fit, so the confirms do too.
 */
static void process(struct conn *c)
{
	struct listener *l = c->l;
	fg_gb26875 *g = l->g;
	uint8_t confirms[(CONN_BUF / FG_GB26875_OVERHEAD + 1) * FG_GB26875_CONFIRM_LEN];
	size_t n_conf = 0, pos = 0;
	unsigned delivered = 0;
	struct tm now;
	time_t t = time(NULL);
	localtime_r(&t, &now);

	while (!c->closing) {
		size_t off = 0, flen = 0;
		const char *why = "?";
		enum fg_gb26875_find r = fg_gb26875_frame_find(c->buf + pos, c->len - pos, l->checksum,
		                                               &off, &flen, &why);
		if (r == FG_GB26875_NEED_MORE) {
			pos += off;
			break;
		}
		if (r == FG_GB26875_BAD) {
			if (!c->resyncing) {
				fg_metrics_inc("firegrid_gb26875_bad_frames_total", "listener", l->name);
				fg_log_rl(&l->rl, FG_LOG_WARN, "gb26875", "bad frame listener=%s peer=%s "
				          "reason=\"%s\"; resynchronising on the next '@@'", l->name, c->peer,
				          why);
			}
			c->resyncing = true;
			pos += off + 1;
			continue;
		}
		const uint8_t *f = c->buf + pos + off;
		char addr[ADDR_LEN + 1], topic[160];
		c->resyncing = false;
		address(f + 12, addr);
		snprintf(topic, sizeof(topic), "gb26875/%s/%s", l->name, addr);
		fg_metrics_inc("firegrid_gb26875_frames_total", "listener", l->name);
		heard(c, addr);
		deliver(l, topic, f, flen, c->peer);
		delivered++;
		if (f[26] == 2) {
			fg_gb26875_confirm(f, &now, confirms + n_conf);
			n_conf += FG_GB26875_CONFIRM_LEN;
		}
		pos += off + flen;
	}
	memmove(c->buf, c->buf + pos, c->len - pos);
	c->len -= pos;
	if (!delivered || c->closing)
		return;

	/* Ack after commit: a confirm must never leave before the frame's
	 * events are stored, or a crash in between would lose them while the
	 * transmitter believes them delivered. */
	int r = fg_store_in_txn(g->st) ? fg_store_commit(g->st) : 0;
	if (r < 0) {
		fg_metrics_inc("firegrid_store_errors_total", NULL, NULL);
		fg_err("gb26875", "commit failed, closing without confirms listener=%s peer=%s "
		       "frames=%u err=\"%s\"", l->name, c->peer, delivered, fg_strerror(r));
		conn_close(c);
		return;
	}
	if (!n_conf)
		return;
	r = send_confirms(c, confirms, n_conf);
	if (r < 0) {
		fg_log_rl(&l->rl, FG_LOG_WARN, "gb26875", "cannot send confirms listener=%s "
		          "peer=%s err=\"%s\"", l->name, c->peer, fg_strerror(r));
		conn_close(c);
		return;
	}
	fg_metrics_add("firegrid_gb26875_confirms_total", "listener", l->name,
	               (int64_t)(n_conf / FG_GB26875_CONFIRM_LEN));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	(void)suggested;
	buf->base = (char *)c->buf + c->len;
	buf->len = CONN_BUF - c->len;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	(void)buf;
	if (nread < 0) {
		if (nread != UV_EOF)
			fg_info("gb26875", "connection lost listener=%s peer=%s err=\"%s\"", c->l->name,
			        c->peer, uv_strerror((int)nread));
		else
			fg_debug("gb26875", "connection closed listener=%s peer=%s", c->l->name, c->peer);
		conn_close(c);
		return;
	}
	if (nread == 0 || c->closing)
		return;
	c->len += (size_t)nread;
	process(c);
}

static void peer_name(uv_tcp_t *tcp, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	int n = sizeof(ss);
	char ip[64] = "?";
	int port = 0;
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n) == 0) {
		if (ss.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			snprintf(buf, len, "[%s]:%d", ip, port);
			return;
		}
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	snprintf(buf, len, "%s:%d", ip, port);
}

static void connection_cb(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	fg_gb26875 *g = l->g;
	if (status < 0) {
		fg_log_rl(&l->rl, FG_LOG_WARN, "gb26875", "accept failed listener=%s err=\"%s\"",
		          l->name, uv_strerror(status));
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		fg_err("gb26875", "out of memory accepting listener=%s", l->name);
		return;
	}
	c->l = l;
	uv_tcp_init(g->loop, &c->tcp);
	c->tcp.data = c;
	g->handles++;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	l->n_conns++;
	int r = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (r < 0) {
		fg_log_rl(&l->rl, FG_LOG_WARN, "gb26875", "accept failed listener=%s err=\"%s\"",
		          l->name, uv_strerror(r));
		conn_close(c);
		return;
	}
	peer_name(&c->tcp, c->peer, sizeof(c->peer));
	if ((int64_t)l->n_conns > l->max_conns) {
		fg_metrics_inc("firegrid_gb26875_refused_total", "listener", l->name);
		fg_log_rl(&l->rl, FG_LOG_WARN, "gb26875", "too many connections listener=%s peer=%s "
		          "max_connections=%lld", l->name, c->peer, (long long)l->max_conns);
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
	r = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	if (r < 0) {
		conn_close(c);
		return;
	}
	fg_metrics_set("firegrid_gb26875_connections", "listener", l->name, (int64_t)l->n_conns);
	fg_info("gb26875", "connection listener=%s peer=%s", l->name, c->peer);
}

/* ------------------------------------------------------------------------ */
/* Listeners                                                                 */
/* ------------------------------------------------------------------------ */

static int listener_start(fg_gb26875 *g, struct listener *l, const struct fg_conf *conf)
{
	struct sockaddr_storage ss;
	int r = fg_http_addr_parse(l->listen, &ss);
	if (r < 0)
		return r;
	uv_tcp_init(g->loop, &l->server);
	l->server.data = l;
	g->handles++;
	uv_timer_init(g->loop, &l->tick);
	l->tick.data = l;
	g->handles++;
	if ((r = uv_tcp_bind(&l->server, (const struct sockaddr *)&ss, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&l->server, 64, connection_cb)) < 0)
		return r;
	load_known(l, conf);
	if (l->offline_after_ms > 0) {
		/* A tenth of the limit, within 100 ms .. 5 s: offline is reported
		 * at most 10 % late. */
		int64_t every = l->offline_after_ms / 10;
		every = every < 100 ? 100 : every > 5000 ? 5000 : every;
		uv_timer_start(&l->tick, tick_cb, (uint64_t)every, (uint64_t)every);
	}
	fg_info("gb26875", "listening listener=%s address=%s known_transmitters=%zu", l->name,
	        l->listen, l->n_uitds);
	return 0;
}

int fg_gb26875_new(uv_loop_t *loop, const struct fg_conf *conf, fg_store *st,
                   fg_gb26875_msg_cb on_msg, void *data, fg_gb26875 **ret)
{
	*ret = NULL;
	if (!conf->n_gb26875)
		return 0;
	fg_gb26875 *g = calloc(1, sizeof(*g));
	if (!g || !(g->ls = calloc(conf->n_gb26875, sizeof(*g->ls)))) {
		free(g);
		return -ENOMEM;
	}
	g->loop = loop;
	g->st = st;
	g->on_msg = on_msg;
	g->data = data;
	int r = 0;
	for (size_t i = 0; i < conf->n_gb26875 && r == 0; i++) {
		const struct fg_conf_gb26875 *c = &conf->gb26875[i];
		struct listener *l = &g->ls[g->n++];
		l->g = g;
		l->offline_after_ms = c->offline_after_ms;
		l->checksum = c->checksum;
		l->max_conns = c->max_connections;
		l->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 10);
		if (!(l->name = strdup(c->name)) || !(l->listen = strdup(c->listen)))
			r = -ENOMEM;
		else if ((r = listener_start(g, l, conf)) < 0)
			fg_err("gb26875", "cannot listen listener=%s address=%s err=\"%s\"", l->name,
			       l->listen, fg_strerror(r));
	}
	if (r < 0) {
		fg_gb26875_close(g, NULL, NULL);
		return r;
	}
	*ret = g;
	return 0;
}

bool fg_gb26875_conf_equal(const struct fg_conf *a, const struct fg_conf *b)
{
	if (a->n_gb26875 != b->n_gb26875)
		return false;
	for (size_t i = 0; i < a->n_gb26875; i++) {
		const struct fg_conf_gb26875 *x = &a->gb26875[i], *y = &b->gb26875[i];
		if (strcmp(x->name, y->name) != 0 || strcmp(x->listen, y->listen) != 0 ||
		    x->offline_after_ms != y->offline_after_ms || x->checksum != y->checksum ||
		    x->max_connections != y->max_connections)
			return false;
	}
	return true;
}
