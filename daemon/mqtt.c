/*
 * MQTT ingest on the loop; see mqtt.h for the contract.
 *
 * The order that makes "ack after commit" true (libmosquitto 2.0.x):
 *   1. poll says readable -> mosquitto_loop_read() one packet at a time;
 *      for a QoS 1 PUBLISH, handle__publish() calls send__puback(), which
 *      in threaded mode only appends the PUBACK to the out-queue
 *      (packet__queue: "callback_depth == 0 && threaded == none" is false),
 *      then calls on_message, where the message is decoded and its events
 *      are written into the open store transaction;
 *   2. when the socket has no more whole packets (errno == EAGAIN) or the
 *      batch is full, fg_store_commit() makes the batch durable;
 *   3. only then mosquitto_loop_write() sends the queued PUBACKs.
 * If the commit fails, the connection is shut down without writing: the
 * queued PUBACKs are discarded on reconnect (mosquitto__reconnect calls
 * packet__cleanup_all) and the broker redelivers the batch.
 *
 * libmosquitto closes its socket itself on errors and then calls
 * on_disconnect; that callback is the single place where the poll handle is
 * dropped and a reconnect is scheduled.
 */
#include <errno.h>
#include <mosquitto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "backoff.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "util.h"

#define MISC_INTERVAL_MS 1000
/* Upper bound of packets handled per commit; keeps one batch's latency and
 * transaction size bounded when the broker has a deep backlog for us. */
#define READ_BATCH_MAX 2048

struct mqtt_poll {
	uv_poll_t handle;
	struct fg_mqtt *owner;
	int events;
};

struct fg_mqtt {
	uv_loop_t *loop;
	const struct fg_conf *conf;
	fg_store *st;
	fg_mqtt_msg_cb cb;
	void *cb_data;
	struct mosquitto *mosq;

	struct mqtt_poll *poll;      /* NULL while not connected/connecting */
	uv_timer_t misc_timer;
	uv_timer_t reconnect_timer;
	uv_idle_t more;              /* continue a capped read batch */

	bool connected;              /* CONNACK received */
	bool closing;
	bool connect_called;         /* host/port handed to libmosquitto */
	uint32_t attempt;            /* consecutive failed connects */
	uint64_t rng;
	int pending_subacks;

	int handles_open;
	void (*close_done)(void *data);
	void *close_data;
};

static struct fg_ratelimit oversize_rl = FG_RATELIMIT_INIT(10000, 5);

static void update_poll(fg_mqtt *m);
static void schedule_reconnect(fg_mqtt *m);

static void poll_close_cb(uv_handle_t *h)
{
	free(h->data);
}

static void drop_poll(fg_mqtt *m)
{
	if (!m->poll)
		return;
	m->poll->handle.data = m->poll;
	uv_close((uv_handle_t *)&m->poll->handle, poll_close_cb);
	m->poll = NULL;
}

/* Drop the connection without writing anything libmosquitto queued (used
 * when a batch could not be committed: its PUBACKs must never go out). */
static void abort_connection(fg_mqtt *m)
{
	int fd = mosquitto_socket(m->mosq);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void flush_writes(fg_mqtt *m)
{
	if (!m->poll)
		return;
	if (mosquitto_want_write(m->mosq)) {
		int rc = mosquitto_loop_write(m->mosq, 1);
		if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
			fg_debug("mqtt", "write failed err=\"%s\"", mosquitto_strerror(rc));
	}
	update_poll(m);
}

/* Read whole packets until the socket runs dry or the batch is full, commit,
 * then let the PUBACKs out.  Returns true when the batch was capped (more may
 * be buffered, e.g. inside TLS, where poll cannot see it). */
static bool read_batch(fg_mqtt *m)
{
	int n = 0;
	bool capped = false;

	while (m->poll) {
		errno = 0;
		int rc = mosquitto_loop_read(m->mosq, 1);
		if (rc != MOSQ_ERR_SUCCESS)
			break;    /* on_disconnect already ran and dropped the poll */
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (++n >= READ_BATCH_MAX) {
			capped = true;
			break;
		}
	}

	if (fg_store_in_txn(m->st)) {
		int r = fg_store_commit(m->st);
		if (r < 0) {
			fg_err("mqtt", "store commit failed, dropping the connection so the broker redelivers err=\"%s\"",
			       fg_strerror(r));
			fg_metrics_inc("firegrid_store_commit_failures_total", NULL, NULL);
			abort_connection(m);
			return false;
		}
	}
	flush_writes(m);
	return capped && m->poll;
}

static void more_cb(uv_idle_t *h)
{
	fg_mqtt *m = h->data;
	if (!read_batch(m))
		uv_idle_stop(&m->more);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct mqtt_poll *p = h->data;
	fg_mqtt *m = p->owner;

	/* Whatever woke us (readable, writable, error), read first: reading
	 * drives a TLS handshake in progress (want_connect), surfaces socket
	 * errors through on_disconnect, and read_batch() commits before it
	 * writes anything, so queued PUBACKs never overtake their commit. */
	if (read_batch(m))
		uv_idle_start(&m->more, more_cb);
}

static void update_poll(fg_mqtt *m)
{
	if (!m->poll)
		return;
	int want = UV_READABLE | UV_DISCONNECT;
	if (mosquitto_want_write(m->mosq))
		want |= UV_WRITABLE;
	if (want != m->poll->events) {
		m->poll->events = want;
		uv_poll_start(&m->poll->handle, want, poll_cb);
	}
}

static int start_poll(fg_mqtt *m)
{
	int fd = mosquitto_socket(m->mosq);
	if (fd < 0)
		return -ENOTCONN;
	struct mqtt_poll *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	int r = uv_poll_init_socket(m->loop, &p->handle, fd);
	if (r < 0) {
		free(p);
		return r;
	}
	p->owner = m;
	p->handle.data = p;
	m->poll = p;
	update_poll(m);
	return 0;
}

static void try_connect(fg_mqtt *m)
{
	const struct fg_conf *c = m->conf;
	int rc;

	if (m->closing)
		return;
	/* connect_async: non-blocking connect; the CONNECT packet waits in the
	 * out-queue until the socket is writable.  Host names are resolved with
	 * getaddrinfo inside libmosquitto: configure an address literal (the
	 * local broker is 127.0.0.1) to keep that off the loop entirely. */
	if (!m->connect_called) {
		m->connect_called = true;
		rc = mosquitto_connect_async(m->mosq, c->mqtt_host, (int)c->mqtt_port,
		                             (int)c->mqtt_keepalive_s);
	} else {
		rc = mosquitto_reconnect_async(m->mosq);
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		fg_log(m->attempt ? FG_LOG_DEBUG : FG_LOG_WARN, "mqtt",
		       "cannot connect host=%s port=%lld err=\"%s\"", c->mqtt_host,
		       (long long)c->mqtt_port,
		       rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		schedule_reconnect(m);
		return;
	}
	int r = start_poll(m);
	if (r < 0) {
		fg_err("mqtt", "cannot watch broker socket err=\"%s\"", fg_strerror(r));
		abort_connection(m);
		schedule_reconnect(m);
	}
}

static void reconnect_cb(uv_timer_t *t)
{
	try_connect(t->data);
}

static void schedule_reconnect(fg_mqtt *m)
{
	if (m->closing)
		return;
	int64_t delay = fg_backoff_ms(m->attempt, m->conf->mqtt_reconnect_min_ms,
	                              m->conf->mqtt_reconnect_max_ms, &m->rng);
	if (delay < 50)
		delay = 50;   /* never spin on a refusing broker */
	if (m->attempt < 30)
		m->attempt++;
	uv_timer_start(&m->reconnect_timer, reconnect_cb, (uint64_t)delay, 0);
}

static void misc_cb(uv_timer_t *t)
{
	fg_mqtt *m = t->data;
	if (!m->poll)
		return;
	mosquitto_loop_misc(m->mosq);   /* PINGREQ / keepalive timeout */
	/* A spurious EAGAIN could have ended a TLS batch with data still
	 * buffered inside OpenSSL; reading here bounds that to one tick. */
	if (m->poll && read_batch(m))
		uv_idle_start(&m->more, more_cb);
	else
		flush_writes(m);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	fg_mqtt *m = obj;
	const struct fg_conf *c = m->conf;

	if (rc != 0) {
		fg_warn("mqtt", "broker refused connection host=%s port=%lld err=\"%s\"", c->mqtt_host,
		        (long long)c->mqtt_port, mosquitto_connack_string(rc));
		return;   /* libmosquitto closes; on_disconnect reschedules */
	}
	m->connected = true;
	m->attempt = 0;
	fg_metrics_set("firegrid_mqtt_connected", NULL, NULL, 1);
	fg_metrics_inc("firegrid_mqtt_connects_total", NULL, NULL);
	fg_info("mqtt", "connected host=%s port=%lld client_id=%s", c->mqtt_host,
	        (long long)c->mqtt_port, c->mqtt_client_id);

	/* Persistent session: the broker may still hold our subscriptions, but
	 * subscribing again is idempotent and covers a broker that lost them. */
	m->pending_subacks = 0;
	for (size_t i = 0; i < c->n_sources; i++) {
		const struct fg_conf_source *s = &c->sources[i];
		if (!s->n_topics)
			continue;            /* fed by HTTP pushes or an event stream */
		int src = mosquitto_subscribe_multiple(mosq, NULL, (int)s->n_topics, s->topics, s->qos,
		                                       0, NULL);
		if (src != MOSQ_ERR_SUCCESS) {
			fg_err("mqtt", "cannot subscribe source=%s err=\"%s\"", s->name, mosquitto_strerror(src));
			continue;
		}
		m->pending_subacks++;
	}
	if (m->pending_subacks == 0)
		fg_warn("mqtt", "no topics to subscribe");
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                         const int *granted)
{
	fg_mqtt *m = obj;
	for (int i = 0; i < qos_count; i++)
		if (granted[i] == 0x80)
			fg_err("mqtt", "broker rejected a subscription mid=%d", mid);
	if (m->pending_subacks > 0 && --m->pending_subacks == 0) {
		size_t n = 0;
		for (size_t i = 0; i < m->conf->n_sources; i++)
			n += m->conf->sources[i].n_topics;
		fg_info("mqtt", "subscribed topics=%zu", n);
	}
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	fg_mqtt *m = obj;
	bool was = m->connected;

	m->connected = false;
	fg_metrics_set("firegrid_mqtt_connected", NULL, NULL, 0);
	drop_poll(m);
	uv_idle_stop(&m->more);
	if (m->closing)
		return;
	if (was)
		fg_warn("mqtt", "connection lost host=%s port=%lld err=\"%s\"", m->conf->mqtt_host,
		        (long long)m->conf->mqtt_port, rc ? mosquitto_strerror(rc) : "closed");
	schedule_reconnect(m);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *mm)
{
	fg_mqtt *m = obj;
	int64_t now = fg_now_ms();

	fg_metrics_inc("firegrid_mqtt_messages_total", NULL, NULL);
	if (mm->payloadlen < 0 || (int64_t)mm->payloadlen > m->conf->mqtt_max_payload) {
		fg_metrics_inc("firegrid_oversize_total", NULL, NULL);
		fg_log_rl(&oversize_rl, FG_LOG_WARN, "mqtt",
		          "dropping oversize message topic=%s bytes=%d limit=%lld", mm->topic,
		          mm->payloadlen, (long long)m->conf->mqtt_max_payload);
		return;
	}
	struct fg_msg msg = {
		.struct_size = sizeof(msg),
		.source = NULL,
		.transport = "mqtt",
		.topic = mm->topic,
		.payload = mm->payload,
		.len = (size_t)mm->payloadlen,
		.qos = mm->qos,
		.retained = mm->retain,
		.recv_time_ms = now,
	};
	fg_store_begin(m->st);
	m->cb(m->cb_data, &msg);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		fg_debug("mqtt", "libmosquitto: %s", str);
}

static int configure(fg_mqtt *m)
{
	const struct fg_conf *c = m->conf;
	int rc;

	mosquitto_threaded_set(m->mosq, true);   /* see the top of this file */
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_message_callback_set(m->mosq, on_message);
	mosquitto_subscribe_callback_set(m->mosq, on_subscribe);
	mosquitto_log_callback_set(m->mosq, on_log);
	/* We reconnect ourselves, with jitter. */
	mosquitto_reconnect_delay_set(m->mosq, 1, 1, false);

	if (c->mqtt_username) {
		rc = mosquitto_username_pw_set(m->mosq, c->mqtt_username, c->mqtt_password);
		if (rc != MOSQ_ERR_SUCCESS)
			return -EINVAL;
	}
	if (c->mqtt_ca_file) {
		rc = mosquitto_tls_set(m->mosq, c->mqtt_ca_file, NULL, c->mqtt_cert_file,
		                       c->mqtt_key_file, NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			fg_err("mqtt", "TLS setup failed ca_file=%s err=\"%s\"", c->mqtt_ca_file,
			       rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
			return -EINVAL;
		}
		if (c->mqtt_tls_insecure)
			mosquitto_tls_insecure_set(m->mosq, true);
	}
	return 0;
}

static void handle_close_cb(uv_handle_t *h)
{
	fg_mqtt *m = h->data;
	if (--m->handles_open > 0)
		return;
	if (m->mosq) {
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	void (*done)(void *) = m->close_done;
	void *data = m->close_data;
	free(m);
	if (done)
		done(data);
}

int fg_mqtt_new(uv_loop_t *loop, const struct fg_conf *conf, fg_store *st, fg_mqtt_msg_cb cb,
                void *data, fg_mqtt **ret)
{
	fg_mqtt *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->conf = conf;
	m->st = st;
	m->cb = cb;
	m->cb_data = data;
	m->rng = fg_rand_seed();

	/* clean_session = false: a persistent session, so QoS 1 messages that
	 * arrive while we are away wait for us in the broker. */
	m->mosq = mosquitto_new(conf->mqtt_client_id, false, m);
	if (!m->mosq) {
		int e = errno ? -errno : -ENOMEM;
		free(m);
		return e;
	}
	int r = configure(m);
	if (r < 0) {
		mosquitto_destroy(m->mosq);
		free(m);
		return r;
	}
	uv_timer_init(loop, &m->misc_timer);
	uv_timer_init(loop, &m->reconnect_timer);
	uv_idle_init(loop, &m->more);
	m->misc_timer.data = m->reconnect_timer.data = m->more.data = m;
	m->handles_open = 3;
	*ret = m;
	return 0;
}

int fg_mqtt_start(fg_mqtt *m)
{
	uv_timer_start(&m->misc_timer, misc_cb, MISC_INTERVAL_MS, MISC_INTERVAL_MS);
	try_connect(m);
	return 0;
}

bool fg_mqtt_connected(fg_mqtt *m)
{
	return m && m->connected;
}

void fg_mqtt_close(fg_mqtt *m, void (*done)(void *data), void *data)
{
	if (!m) {
		if (done)
			done(data);
		return;
	}
	m->closing = true;
	m->close_done = done;
	m->close_data = data;
	if (m->poll) {
		/* Commit what was read, let its PUBACKs out, then say goodbye. */
		if (fg_store_in_txn(m->st) && fg_store_commit(m->st) < 0)
			abort_connection(m);
		else {
			mosquitto_disconnect(m->mosq);
			mosquitto_loop_write(m->mosq, 1);
		}
	}
	drop_poll(m);
	uv_close((uv_handle_t *)&m->misc_timer, handle_close_cb);
	uv_close((uv_handle_t *)&m->reconnect_timer, handle_close_cb);
	uv_close((uv_handle_t *)&m->more, handle_close_cb);
}
