/*
 * Modbus buses, their worker threads and the devices polled on them; see
 * modbus.h for the threading rule.  The file has three parts: the worker
 * (the only code that calls libmodbus, on the bus thread), the loop side
 * (timers, results, plugins, incidents) and setup from the config.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <modbus/modbus.h>   /* not "modbus.h": that is ours */
#include "backoff.h"
#include "ingest.h"
#include "interlock.h"
#include "log.h"
#include "metrics.h"
#include "modbus.h"
#include "modbus_map.h"
#include "util.h"

#define WRITE_ATTEMPTS 3        /* per coil, on no response */
#define TIMEOUTS_BEFORE_RECONNECT 5

enum req_type { REQ_POLL, REQ_WRITE };

/*
 * One request, allocated by the loop, run by the worker, handed back.  The
 * worker writes only the result fields.
 */
struct mb_req {
	struct mb_req *next;
	enum req_type type;
	int unit;
	uint32_t timeout_ms;
	struct fg_modbus_poll poll;     /* REQ_POLL: plan blocks in, data out */
	uint16_t *coils;                /* REQ_WRITE */
	size_t n_coils;
	int value;
	uint8_t *readback, *read;       /* REQ_WRITE results, n_coils each */
	bool written;
	char error[128];
	bool cancelled;                 /* dropped at shutdown */
	/* loop side only */
	struct mb_device *dev;
	fg_modbus_write_cb cb;
	void *cb_data;
};

/* Touched by the worker thread only (config copied in before it starts). */
struct mb_worker {
	modbus_t *ctx;
	bool connected;
	int64_t next_connect_ms;
	uint32_t attempt;
	uint64_t rng;
	unsigned timeouts;
	char why[96];                   /* why the bus is down */
	/* copies of the bus config */
	bool tcp;
	char *host, *device;
	int port, baud, parity, data_bits, stop_bits;
	int64_t connect_timeout_ms, reconnect_min_ms, reconnect_max_ms;
};

struct mb_bus {
	fg_modbus *m;
	const struct fg_conf_modbus_bus *conf;
	uv_thread_t thread;
	bool started;
	uv_mutex_t lock;                /* guards the queues and the flags below */
	uv_cond_t cond;
	struct mb_req *todo, *todo_tail;
	struct mb_req *done, *done_tail;
	bool stop;                      /* loop -> worker */
	bool exited;                    /* worker -> loop */
	uv_async_t async;
	struct mb_worker w;
	size_t n_devices;
};

struct mb_device {
	fg_modbus *m;
	struct mb_bus *bus;
	const struct fg_conf_modbus_device *conf;
	struct fg_conf_source src;      /* what the plugin host sees */
	fg_source_inst *si;
	struct fg_modbus_map *map;      /* effective: plugin + config */
	struct fg_modbus_plan *plan;
	struct fg_modbus_reach reach;
	json_t *commanded;              /* entry name -> bool */
	uv_timer_t timer;
	bool in_flight;
	int64_t last_poll_ms;
	char topic[256];
};

struct fg_modbus {
	uv_loop_t *loop;
	const struct fg_conf *conf;
	struct fg_ingest_out out;  /* where decoded polls go: the ingest path */
	struct mb_bus *buses;
	size_t n_buses;
	struct mb_device *devs;
	size_t n_devs;
	fg_interlock *il;
	bool started, closing;
	unsigned pending_closes;
	void (*closed_cb)(void *data);
	void *closed_data;
};

static struct fg_ratelimit decode_rl = FG_RATELIMIT_INIT(10000, 20);

/* ======================================================================== */
/* The worker (bus thread): the only code that calls libmodbus              */
/* ======================================================================== */

static void worker_error(char *buf, size_t len, const char *what, int err)
{
	snprintf(buf, len, "%s: %s", what, modbus_strerror(err));
}

static bool is_exception(int err)
{
	return err > MODBUS_ENOBASE && err <= MODBUS_ENOBASE + MODBUS_EXCEPTION_GATEWAY_TARGET;
}

static bool is_bad_frame(int err)
{
	return err == EMBBADCRC || err == EMBBADDATA || err == EMBBADEXC || err == EMBUNKEXC ||
	       err == EMBMDATA || err == EMBBADSLAVE;
}

static void set_timeout(modbus_t *ctx, int64_t ms)
{
	modbus_set_response_timeout(ctx, (uint32_t)(ms / 1000), (uint32_t)(ms % 1000) * 1000);
}

static void worker_disconnect(struct mb_worker *w, const char *why)
{
	modbus_close(w->ctx);
	w->connected = false;
	w->timeouts = 0;
	w->next_connect_ms = fg_mono_ms();       /* try again at the next request */
	snprintf(w->why, sizeof(w->why), "%s", why);
}

/* Connected, or -1 with w->why.  A failed attempt schedules the next one
 * with capped full-jitter backoff; `force` ignores the schedule (the
 * interlock's writes). */
static int worker_connect(struct mb_worker *w, bool force)
{
	if (w->connected)
		return 0;
	if (!w->ctx)
		return -1;
	int64_t now = fg_mono_ms();
	if (!force && now < w->next_connect_ms)
		return -1;
	set_timeout(w->ctx, w->connect_timeout_ms);
	if (modbus_connect(w->ctx) == 0) {
		w->connected = true;
		w->attempt = 0;
		w->timeouts = 0;
		return 0;
	}
	worker_error(w->why, sizeof(w->why), "connect", errno);
	w->next_connect_ms = now + fg_backoff_ms(w->attempt, w->reconnect_min_ms,
	                                          w->reconnect_max_ms, &w->rng);
	if (w->attempt < 32)
		w->attempt++;
	return -1;
}

/* After a failed request: 1 = exception (device alive), 0 = no response. */
static int worker_failed(struct mb_worker *w, int err, char *buf, size_t len)
{
	if (is_exception(err))
		return 1;
	worker_error(buf, len, "request", err);
	if (err == ETIMEDOUT || is_bad_frame(err)) {
		/* A late or broken answer must not be read as the next one's. */
		modbus_flush(w->ctx);
		if (err == ETIMEDOUT && ++w->timeouts >= TIMEOUTS_BEFORE_RECONNECT)
			worker_disconnect(w, "too many timeouts in a row: reconnecting");
	} else {
		worker_disconnect(w, buf);
	}
	return 0;
}

static int read_block(modbus_t *ctx, const struct fg_modbus_block *b, struct fg_modbus_poll *p)
{
	switch (b->table) {
	case FG_MODBUS_COILS:
		return modbus_read_bits(ctx, b->address, b->count, p->bits + b->offset);
	case FG_MODBUS_DISCRETE_INPUTS:
		return modbus_read_input_bits(ctx, b->address, b->count, p->bits + b->offset);
	case FG_MODBUS_HOLDING_REGISTERS:
		return modbus_read_registers(ctx, b->address, b->count, p->words + b->offset);
	case FG_MODBUS_INPUT_REGISTERS:
		return modbus_read_input_registers(ctx, b->address, b->count, p->words + b->offset);
	}
	errno = EINVAL;
	return -1;
}

static void worker_poll(struct mb_worker *w, struct mb_req *req)
{
	struct fg_modbus_poll *p = &req->poll;
	p->status = FG_MODBUS_NO_RESPONSE;
	if (worker_connect(w, false) < 0) {
		snprintf(p->error, sizeof(p->error), "bus down (%.80s)", w->why);
		return;
	}
	modbus_set_slave(w->ctx, req->unit);
	set_timeout(w->ctx, req->timeout_ms);
	bool exception = false;
	for (size_t i = 0; i < p->n_blocks; i++) {
		const struct fg_modbus_block *b = &p->blocks[i];
		int rc = read_block(w->ctx, b, p);
		int err = errno;
		if (rc < 0 && is_bad_frame(err) && w->tcp) {
			/* Most likely a late answer to an earlier, timed-out
			 * request: flushed; ask once more. */
			modbus_flush(w->ctx);
			rc = read_block(w->ctx, b, p);
			err = errno;
		}
		if (rc == b->count) {
			p->state[i] = FG_MODBUS_BLOCK_OK;
			w->timeouts = 0;
			continue;
		}
		if (rc >= 0)
			err = EMBMDATA;
		if (worker_failed(w, err, p->error, sizeof(p->error))) {
			p->state[i] = FG_MODBUS_BLOCK_EXCEPTION;
			p->code[i] = (uint8_t)(err - MODBUS_ENOBASE);
			exception = true;
			w->timeouts = 0;
			continue;
		}
		return;     /* no response: stop here, the device costs one timeout */
	}
	p->status = exception ? FG_MODBUS_EXCEPTION : FG_MODBUS_OK;
	p->error[0] = '\0';
}

static void worker_write(struct mb_worker *w, struct mb_req *req)
{
	char why[96] = "";
	bool ok = true;
	for (size_t i = 0; i < req->n_coils; i++) {
		int done = 0;
		for (int a = 0; a < WRITE_ATTEMPTS && !done; a++) {
			if (worker_connect(w, true) < 0) {
				snprintf(why, sizeof(why), "bus down (%.80s)", w->why);
				continue;
			}
			modbus_set_slave(w->ctx, req->unit);
			set_timeout(w->ctx, req->timeout_ms);
			if (modbus_write_bit(w->ctx, req->coils[i], req->value) == 1) {
				done = 1;
				w->timeouts = 0;
			} else {
				int err = errno;
				char e[96];
				if (worker_failed(w, err, e, sizeof(e))) {
					snprintf(why, sizeof(why), "coil %u: exception %d",
					         (unsigned)req->coils[i], err - MODBUS_ENOBASE);
					break;     /* the device refuses: no point repeating */
				}
				snprintf(why, sizeof(why), "coil %u: %.80s", (unsigned)req->coils[i], e);
			}
		}
		if (!done && ok) {
			ok = false;
			snprintf(req->error, sizeof(req->error), "write %s", why);
		}
	}
	req->written = ok;
	/* Read every coil back, whatever the writes said. */
	for (size_t i = 0; i < req->n_coils; i++) {
		for (int a = 0; a < WRITE_ATTEMPTS && !req->read[i]; a++) {
			if (worker_connect(w, true) < 0)
				continue;
			modbus_set_slave(w->ctx, req->unit);
			set_timeout(w->ctx, req->timeout_ms);
			uint8_t bit = 0;
			if (modbus_read_bits(w->ctx, req->coils[i], 1, &bit) == 1) {
				req->read[i] = 1;
				req->readback[i] = bit;
			} else {
				char e[96];
				if (worker_failed(w, errno, e, sizeof(e)))
					break;
			}
		}
	}
}

static struct mb_req *queue_pop(struct mb_req **head, struct mb_req **tail)
{
	struct mb_req *r = *head;
	if (r) {
		*head = r->next;
		if (!*head)
			*tail = NULL;
		r->next = NULL;
	}
	return r;
}

static void queue_push(struct mb_req **head, struct mb_req **tail, struct mb_req *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static void worker_create_ctx(struct mb_worker *w)
{
	w->ctx = w->tcp ? modbus_new_tcp(w->host, w->port)
		: modbus_new_rtu(w->device, w->baud, (char)w->parity, w->data_bits, w->stop_bits);
	if (!w->ctx) {
		worker_error(w->why, sizeof(w->why), "cannot create the libmodbus context", errno);
		return;
	}
	modbus_set_error_recovery(w->ctx, MODBUS_ERROR_RECOVERY_NONE);
}

static void worker_main(void *arg)
{
	struct mb_bus *b = arg;
	struct mb_worker *w = &b->w;
	worker_create_ctx(w);
	for (;;) {
		uv_mutex_lock(&b->lock);
		while (!b->todo && !b->stop)
			uv_cond_wait(&b->cond, &b->lock);
		if (b->stop) {
			uv_mutex_unlock(&b->lock);
			break;
		}
		struct mb_req *req = queue_pop(&b->todo, &b->todo_tail);
		uv_mutex_unlock(&b->lock);

		if (req->type == REQ_POLL)
			worker_poll(w, req);
		else
			worker_write(w, req);

		uv_mutex_lock(&b->lock);
		queue_push(&b->done, &b->done_tail, req);
		uv_mutex_unlock(&b->lock);
		uv_async_send(&b->async);
	}
	if (w->ctx) {
		modbus_close(w->ctx);
		modbus_free(w->ctx);
		w->ctx = NULL;
	}
	/* Whatever is still queued goes back cancelled. */
	uv_mutex_lock(&b->lock);
	for (struct mb_req *r; (r = queue_pop(&b->todo, &b->todo_tail));) {
		r->cancelled = true;
		queue_push(&b->done, &b->done_tail, r);
	}
	b->exited = true;
	uv_mutex_unlock(&b->lock);
	uv_async_send(&b->async);
}

/* ======================================================================== */
/* The loop side                                                            */
/* ======================================================================== */

static void req_free(struct mb_req *req)
{
	if (!req)
		return;
	fg_modbus_poll_clear(&req->poll);
	free(req->coils);
	free(req->readback);
	free(req->read);
	free(req);
}

static int64_t device_timeout(const struct mb_device *d)
{
	return d->conf->timeout_ms ? d->conf->timeout_ms : d->bus->conf->timeout_ms;
}

/* Hand a request to the worker; urgent ones go first. */
static void bus_submit(struct mb_bus *b, struct mb_req *req, bool urgent)
{
	uv_mutex_lock(&b->lock);
	if (urgent) {
		req->next = b->todo;
		b->todo = req;
		if (!b->todo_tail)
			b->todo_tail = req;
	} else {
		queue_push(&b->todo, &b->todo_tail, req);
	}
	uv_cond_signal(&b->cond);
	uv_mutex_unlock(&b->lock);
}

static void poll_done(struct mb_device *d, struct mb_req *req)
{
	const char *name = d->conf->name;
	struct fg_modbus_poll *p = &req->poll;
	d->in_flight = false;
	fg_metrics_inc("firegrid_modbus_polls_total", "device", name);
	if (p->status == FG_MODBUS_NO_RESPONSE)
		fg_metrics_inc("firegrid_modbus_no_response_total", "device", name);
	else if (p->status == FG_MODBUS_EXCEPTION)
		fg_metrics_inc("firegrid_modbus_exceptions_total", "device", name);

	bool changed = fg_modbus_reach_update(&d->reach, p->status != FG_MODBUS_NO_RESPONSE,
	                                      (uint32_t)d->conf->offline_after);
	if (changed) {
		fg_metrics_set("firegrid_modbus_online", "device", name, d->reach.online);
		if (d->reach.online)
			fg_info("modbus", "device answers again device=%s bus=%s", name,
			        d->bus->conf->name);
		else
			fg_warn("modbus", "device offline device=%s bus=%s unit=%lld failures=%u "
			        "err=\"%s\"", name, d->bus->conf->name, (long long)d->conf->unit,
			        d->reach.failures, p->error);
	}
	struct fg_modbus_origin origin = { name, d->bus->conf->name, (int)d->conf->unit,
	                                   d->conf->role };
	size_t len = 0;
	char *payload = fg_modbus_payload(d->map, p, &origin, &d->reach, d->commanded, &len);
	if (!payload) {
		fg_log_rl(&decode_rl, FG_LOG_ERR, "modbus", "out of memory building a payload "
		          "device=%s", name);
		return;
	}
	struct fg_msg msg = {
		.struct_size = sizeof(msg),
		.source = name,
		.transport = "modbus",
		.topic = d->topic,
		.payload = (const uint8_t *)payload,
		.len = len,
		.recv_time_ms = fg_now_ms(),
	};
	const char *reason = NULL;
	fg_ingest_out_decode(&d->m->out, d->si, &msg, &reason);
	free(payload);
}

static void write_done(struct mb_req *req)
{
	if (!req->cb)
		return;
	bool verified = req->written;
	for (size_t i = 0; i < req->n_coils; i++)
		if (!req->read[i] || req->readback[i] != req->value)
			verified = false;
	if (req->cancelled && !req->error[0])
		snprintf(req->error, sizeof(req->error), "not written: firegridd is stopping");
	else if (req->written && !verified && !req->error[0])
		snprintf(req->error, sizeof(req->error), "read-back does not show the written value");
	struct fg_modbus_write_result res = {
		.device = req->dev->conf->name,
		.n = req->n_coils,
		.coils = req->coils,
		.readback = req->readback,
		.read = req->read,
		.value = req->value,
		.written = req->written && !req->cancelled,
		.verified = verified && !req->cancelled,
		.error = req->error,
	};
	req->cb(req->cb_data, &res);
}

/* One more of the handles (and the interlock) fg_modbus_close waits for. */
static void close_step(fg_modbus *m)
{
	if (--m->pending_closes == 0 && m->closed_cb)
		m->closed_cb(m->closed_data);
}

static void timer_closed_cb(uv_handle_t *h)
{
	struct mb_device *d = h->data;
	close_step(d->m);
}

static void bus_closed_cb(uv_handle_t *h)
{
	struct mb_bus *b = h->data;
	close_step(b->m);
}

static void bus_async_cb(uv_async_t *h)
{
	struct mb_bus *b = h->data;
	uv_mutex_lock(&b->lock);
	struct mb_req *list = b->done;
	b->done = b->done_tail = NULL;
	bool exited = b->exited;
	uv_mutex_unlock(&b->lock);

	while (list) {
		struct mb_req *req = list;
		list = list->next;
		if (req->type == REQ_WRITE)
			write_done(req);
		else if (!req->cancelled && !b->m->closing)
			poll_done(req->dev, req);
		req_free(req);
	}
	if (exited && b->started) {
		uv_thread_join(&b->thread);
		b->started = false;
		uv_close((uv_handle_t *)&b->async, bus_closed_cb);
	}
}

static void poll_timer_cb(uv_timer_t *t)
{
	struct mb_device *d = t->data;
	int64_t now = (int64_t)uv_now(t->loop);
	if (d->in_flight) {
		fg_metrics_inc("firegrid_modbus_overruns_total", "device", d->conf->name);
		return;
	}
	if (!d->reach.online && now - d->last_poll_ms < d->conf->offline_interval_ms)
		return;
	struct mb_req *req = calloc(1, sizeof(*req));
	if (!req || fg_modbus_poll_init(&req->poll, d->plan->blocks, d->plan->n_blocks,
	                                d->plan->n_words, d->plan->n_bits) < 0) {
		free(req);
		fg_log_rl(&decode_rl, FG_LOG_ERR, "modbus", "out of memory polling device=%s",
		          d->conf->name);
		return;
	}
	req->type = REQ_POLL;
	req->unit = (int)d->conf->unit;
	req->timeout_ms = (uint32_t)device_timeout(d);
	req->dev = d;
	d->in_flight = true;
	d->last_poll_ms = now;
	bus_submit(d->bus, req, false);
}

static struct mb_device *find_device(fg_modbus *m, const char *name)
{
	for (size_t i = 0; m && i < m->n_devs; i++)
		if (strcmp(m->devs[i].conf->name, name) == 0)
			return &m->devs[i];
	return NULL;
}

int fg_modbus_write_coils(fg_modbus *m, const char *device, const uint16_t *coils, size_t n,
                          int value, fg_modbus_write_cb cb, void *data)
{
	struct mb_device *d = find_device(m, device);
	if (!d)
		return -ENOENT;
	if (m->closing || !m->started)
		return -ESHUTDOWN;
	struct mb_req *req = calloc(1, sizeof(*req));
	if (req) {
		req->coils = malloc((n ? n : 1) * sizeof(*coils));
		req->readback = calloc(n ? n : 1, 1);
		req->read = calloc(n ? n : 1, 1);
	}
	if (!req || !req->coils || !req->readback || !req->read) {
		req_free(req);
		return -ENOMEM;
	}
	memcpy(req->coils, coils, n * sizeof(*coils));
	req->n_coils = n;
	req->type = REQ_WRITE;
	req->value = value ? 1 : 0;
	req->unit = (int)d->conf->unit;
	req->timeout_ms = (uint32_t)device_timeout(d);
	req->dev = d;
	req->cb = cb;
	req->cb_data = data;
	bus_submit(d->bus, req, true);
	return 0;
}

void fg_modbus_set_commanded(fg_modbus *m, const char *device, uint16_t coil, int value)
{
	struct mb_device *d = find_device(m, device);
	if (!d)
		return;
	for (size_t i = 0; i < d->map->n_regs; i++) {
		const struct fg_modbus_reg *r = fg_modbus_map_reg(d->map, i);
		if (r->table == FG_MODBUS_COILS && r->address == coil)
			json_object_set_new(d->commanded, r->name, json_boolean(value));
	}
}

size_t fg_modbus_n_devices(const fg_modbus *m)
{
	return m ? m->n_devs : 0;
}

/* ======================================================================== */
/* Setup and teardown                                                       */
/* ======================================================================== */

static int device_setup(fg_modbus *m, struct mb_device *d, fg_plugin_host *host, char **errs)
{
	const struct fg_conf_modbus_device *c = d->conf;
	const char *path = m->conf->path;
	d->src = (struct fg_conf_source){
		.name = c->name, .line = c->line, .plugin = c->plugin, .opts = c->opts,
		.n_opts = c->n_opts, .section = "modbus-device",
	};
	d->reach = (struct fg_modbus_reach)FG_MODBUS_REACH_INIT;
	d->commanded = json_object();
	if (!d->commanded)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_buses; i++)
		if (strcmp(m->buses[i].conf->name, c->bus) == 0)
			d->bus = &m->buses[i];
	if (!d->bus)
		return fg_lines_append(errs, "%s:%d: [modbus-device %s] bus: no [modbus-bus %s]", path,
		                    c->line, c->name, c->bus) < 0 ? -ENOMEM : -EINVAL;

	/* A plugin that is not a Modbus plugin says so, rather than refusing the
	 * thresholds it does not know. */
	const struct fg_plugin *desc = NULL;
	if (fg_plugin_host_find(host, c->plugin, &desc, NULL, 0) == 0 && !fg_plugin_is_modbus(desc))
		return fg_lines_append(errs, "%s:%d: [modbus-device %s] plugin: '%s' is not a Modbus "
		                    "plugin (it declares no register map)", path, c->line, c->name,
		                    c->plugin) < 0 ? -ENOMEM : -EINVAL;
	char *e = NULL;
	int r = fg_source_inst_new(host, path, &d->src, &d->si, &e);
	if (r < 0) {
		if (e)
			fg_lines_append(errs, "%s", e);
		else
			fg_lines_append(errs, "%s:%d: [modbus-device %s] plugin: cannot start '%s': %s",
			             path, c->line, c->name, c->plugin, fg_strerror(r));
		free(e);
		return -EINVAL;
	}
	free(e);
	char why[256];
	r = fg_modbus_map_compose(fg_source_inst_modbus_map(d->si), c->registers, c->n_registers,
	                          c->scale, c->n_scale, c->word_order, c->n_word_order, &d->map,
	                          why, sizeof(why));
	if (r == -EINVAL)
		return fg_lines_append(errs, "%s:%d: [modbus-device %s] register map: %s", path, c->line,
		                    c->name, why) < 0 ? -ENOMEM : -EINVAL;
	if (r < 0 || (r = fg_modbus_plan_new(d->map, &d->plan)) < 0)
		return r;
	struct fg_modbus_origin origin = { c->name, d->bus->conf->name, (int)c->unit, c->role };
	fg_modbus_topic(&origin, d->topic, sizeof(d->topic));
	if (m->out.st)
		fg_ingest_out_attach(&m->out, d->si);
	d->bus->n_devices++;
	return 0;
}

static int bus_setup(struct mb_bus *b)
{
	const struct fg_conf_modbus_bus *c = b->conf;
	struct mb_worker *w = &b->w;
	w->tcp = c->type == FG_MODBUS_BUS_TCP;
	w->host = c->host ? strdup(c->host) : NULL;
	w->device = c->device ? strdup(c->device) : NULL;
	if ((c->host && !w->host) || (c->device && !w->device))
		return -ENOMEM;
	w->port = (int)c->port;
	w->baud = (int)c->baud;
	w->parity = c->parity ? c->parity : 'N';
	w->data_bits = (int)c->data_bits;
	w->stop_bits = (int)c->stop_bits;
	w->connect_timeout_ms = c->connect_timeout_ms;
	w->reconnect_min_ms = c->reconnect_min_ms;
	w->reconnect_max_ms = c->reconnect_max_ms;
	w->rng = fg_rand_seed();
	return 0;
}

int fg_modbus_new(uv_loop_t *loop, const struct fg_conf *conf, fg_plugin_host *host,
                  fg_store *st, fg_incidents *inc, fg_modbus **ret, char **ret_errors)
{
	fg_modbus *m = calloc(1, sizeof(*m));
	char *errs = NULL;
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->conf = conf;
	m->out = (struct fg_ingest_out){ .st = st, .inc = inc };
	m->buses = calloc(conf->n_modbus_buses ? conf->n_modbus_buses : 1, sizeof(*m->buses));
	m->devs = calloc(conf->n_modbus_devices ? conf->n_modbus_devices : 1, sizeof(*m->devs));
	int r = m->buses && m->devs ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < conf->n_modbus_buses; i++) {
		struct mb_bus *b = &m->buses[m->n_buses++];
		b->m = m;
		b->conf = &conf->modbus_buses[i];
		r = bus_setup(b);
	}
	bool failed = false;
	for (size_t i = 0; r == 0 && i < conf->n_modbus_devices; i++) {
		struct mb_device *d = &m->devs[m->n_devs++];
		d->m = m;
		d->conf = &conf->modbus_devices[i];
		int dr = device_setup(m, d, host, &errs);
		failed |= dr < 0;
		if (dr == -ENOMEM)
			r = -ENOMEM;
	}
	if (r == 0) {
		char *e = NULL;
		r = fg_interlock_new(loop, conf, m, st, inc, &m->il, &e);
		if (e) {
			fg_lines_append(&errs, "%s", e);
			free(e);
		}
	}
	if (r == 0 && (errs || failed))
		r = errs ? -EINVAL : -ENOMEM;
	if (r < 0) {
		fg_modbus_free(m);
		if (ret_errors)
			*ret_errors = errs;
		else
			free(errs);
		return r;
	}
	*ret = m;
	return 0;
}

int fg_modbus_start(fg_modbus *m)
{
	if (!m || !m->loop || m->started)
		return m && m->loop ? 0 : -EINVAL;
	m->started = true;
	for (size_t i = 0; i < m->n_buses; i++) {
		struct mb_bus *b = &m->buses[i];
		uv_mutex_init(&b->lock);
		uv_cond_init(&b->cond);
		uv_async_init(m->loop, &b->async, bus_async_cb);
		b->async.data = b;
		int r = uv_thread_create(&b->thread, worker_main, b);
		if (r < 0) {
			fg_err("modbus", "cannot start the worker of bus=%s err=\"%s\"", b->conf->name,
			       uv_strerror(r));
			b->exited = true;
			continue;
		}
		b->started = true;
	}
	size_t *seen = calloc(m->n_buses ? m->n_buses : 1, sizeof(*seen));
	for (size_t i = 0; i < m->n_devs; i++) {
		struct mb_device *d = &m->devs[i];
		size_t bi = (size_t)(d->bus - m->buses);
		/* Spread the devices of a bus over its first interval. */
		uint64_t first = 1 + (uint64_t)d->conf->interval_ms * (seen ? seen[bi]++ : 0) /
		                 (d->bus->n_devices ? d->bus->n_devices : 1);
		uv_timer_init(m->loop, &d->timer);
		d->timer.data = d;
		uv_timer_start(&d->timer, poll_timer_cb, first, (uint64_t)d->conf->interval_ms);
		fg_metrics_set("firegrid_modbus_online", "device", d->conf->name, 1);
	}
	free(seen);
	int r = fg_interlock_start(m->il);
	if (r < 0)
		fg_err("modbus", "cannot start the interlock err=\"%s\"", fg_strerror(r));
	fg_info("modbus", "polling buses=%zu devices=%zu", m->n_buses, m->n_devs);
	return 0;
}

static void interlock_closed_cb(void *data)
{
	close_step(data);
}

void fg_modbus_close(fg_modbus *m, void (*cb)(void *data), void *data)
{
	if (!m || !m->started || m->closing) {
		if (m && m->closing) {
			m->closed_cb = cb;     /* a second close replaces the callback */
			m->closed_data = data;
			return;
		}
		if (cb)
			cb(data);
		return;
	}
	m->closing = true;
	m->closed_cb = cb;
	m->closed_data = data;
	m->pending_closes = 1;           /* released below, after everything is asked */
	for (size_t i = 0; i < m->n_devs; i++) {
		m->pending_closes++;
		uv_close((uv_handle_t *)&m->devs[i].timer, timer_closed_cb);
	}
	for (size_t i = 0; i < m->n_buses; i++) {
		struct mb_bus *b = &m->buses[i];
		m->pending_closes++;
		if (!b->started) {
			uv_close((uv_handle_t *)&b->async, bus_closed_cb);
			continue;
		}
		uv_mutex_lock(&b->lock);
		b->stop = true;
		uv_cond_signal(&b->cond);
		uv_mutex_unlock(&b->lock);
	}
	m->pending_closes++;
	fg_interlock_close(m->il, interlock_closed_cb, m);
	interlock_closed_cb(m);
}

void fg_modbus_free(fg_modbus *m)
{
	if (!m)
		return;
	fg_interlock_free(m->il);
	for (size_t i = 0; i < m->n_devs; i++) {
		struct mb_device *d = &m->devs[i];
		fg_source_inst_free(d->si);
		fg_modbus_map_free(d->map);
		fg_modbus_plan_free(d->plan);
		json_decref(d->commanded);
	}
	for (size_t i = 0; i < m->n_buses; i++) {
		struct mb_bus *b = &m->buses[i];
		for (struct mb_req *r; (r = queue_pop(&b->done, &b->done_tail));)
			req_free(r);
		for (struct mb_req *r; (r = queue_pop(&b->todo, &b->todo_tail));)
			req_free(r);
		if (m->started) {
			uv_mutex_destroy(&b->lock);
			uv_cond_destroy(&b->cond);
		}
		free(b->w.host);
		free(b->w.device);
	}
	free(m->devs);
	free(m->buses);
	free(m);
}
