/* curl multi on the libuv loop; see curluv.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>
#include "curluv.h"
#include "fg_config.h"

struct sock {
	uv_poll_t poll;
	fg_curluv *c;
	curl_socket_t fd;
	struct sock *next, **pprev;
};

struct fg_curluv {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct sock *socks;
	size_t open_handles;
	bool closing;
	fg_curluv_done_cb done;
	void *data;
	void (*closed)(void *data);
	void *closed_data;
};

static void handle_closed(fg_curluv *c)
{
	if (--c->open_handles == 0 && c->closed)
		c->closed(c->closed_data);
}

static void timer_close_cb(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void sock_close_cb(uv_handle_t *h)
{
	struct sock *s = h->data;
	fg_curluv *c = s->c;
	free(s);
	handle_closed(c);
}

static void sock_close(struct sock *s)
{
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

/* Hand every finished transfer to the owner. */
static void check_done(fg_curluv *c)
{
	CURLMsg *msg;
	int left;
	while (!c->closing && (msg = curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *e = msg->easy_handle;
		CURLcode result = msg->data.result;
		curl_multi_remove_handle(c->multi, e);
		c->done(c->data, e, result);
	}
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct sock *s = h->data;
	int flags = status < 0 ? CURL_CSELECT_ERR : 0, running;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(s->c->multi, s->fd, flags, &running);
	check_done(s->c);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	fg_curluv *c = userp;
	struct sock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(c->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (!s) {
		if (!(s = calloc(1, sizeof(*s))))
			return -1;
		if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->c = c;
		s->fd = fd;
		s->next = c->socks;
		if (s->next)
			s->next->pprev = &s->next;
		s->pprev = &c->socks;
		c->socks = s;
		c->open_handles++;
		curl_multi_assign(c->multi, fd, s);
	}
	int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
	return uv_poll_start(&s->poll, events, poll_cb) < 0 ? -1 : 0;
}

static void timer_cb(uv_timer_t *t)
{
	fg_curluv *c = t->data;
	int running;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

/* curl must not be re-entered from here: the timer calls it later. */
static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	fg_curluv *c = userp;
	if (timeout_ms < 0 || c->closing)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, timer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

int fg_curluv_new(uv_loop_t *loop, fg_curluv_done_cb done, void *data, fg_curluv **ret)
{
	fg_curluv *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->multi = curl_multi_init())) {
		free(c);
		return -ENOMEM;
	}
	c->loop = loop;
	c->done = done;
	c->data = data;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->open_handles = 1;
	*ret = c;
	return 0;
}

int fg_curluv_add(fg_curluv *c, CURL *easy)
{
	if (c->closing || curl_multi_add_handle(c->multi, easy) != CURLM_OK)
		return -EIO;
	return 0;
}

void fg_curluv_remove(fg_curluv *c, CURL *easy)
{
	curl_multi_remove_handle(c->multi, easy);
}

void fg_curluv_close(fg_curluv *c, void (*closed)(void *data), void *data)
{
	if (!c || c->closing) {
		if (!c && closed)
			closed(data);
		return;
	}
	c->closing = true;
	c->closed = closed;
	c->closed_data = data;
	curl_multi_cleanup(c->multi);     /* may still report sockets removed */
	c->multi = NULL;
	while (c->socks)
		sock_close(c->socks);
	uv_close((uv_handle_t *)&c->timer, timer_close_cb);
}

void fg_curluv_free(fg_curluv *c)
{
	if (!c)
		return;
	if (c->multi)
		curl_multi_cleanup(c->multi);
	curl_global_cleanup();
	free(c);
}

int fg_curl_easy_base(CURL *e, const char *url, void *priv, char *errbuf)
{
	int bad = 0;
	bad |= curl_easy_setopt(e, CURLOPT_URL, url);
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, priv);
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "firegrid/" FG_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	return bad;
}
