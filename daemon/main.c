/*
 * firegridd: one libuv loop owns the process.
 *
 *   mqtt ──► ingest (plugins) ──► incidents ──► outbox ══ commit ══► webhook
 *
 * The store's group transaction is opened by the first write of a loop
 * iteration and committed either by the MQTT module (before it releases
 * PUBACKs) or by the check handle at the end of the iteration.  Each commit
 * kicks the webhook module, which only ever reads committed outbox rows.
 *
 * Signals: SIGTERM/SIGINT drain (commit, PUBACKs out, in-flight webhooks get
 * shutdown_timeout) and exit 0; SIGHUP reloads the config, keeping the old
 * one when the new one has any error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include "api.h"
#include "gb26875.h"
#include "conf.h"
#include "escalate.h"
#include "fg_config.h"
#include "http.h"
#include "incident.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "modbus.h"
#include "mqtt.h"
#include "outbox.h"
#include "plugin_host.h"
#include "push.h"
#include "snapfetch.h"
#include "snapshot.h"
#include "stream.h"
#include "store.h"
#include "util.h"
#include "webhook.h"

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define notify(...) sd_notifyf(0, __VA_ARGS__)
#else
#define notify(...) do { } while (0)
#endif

#define HOUSEKEEPING_MS 5000
#define PRUNE_EVERY 12          /* housekeeping ticks between event prunes */

struct daemon {
	uv_loop_t loop;
	struct fg_conf *conf;
	fg_store *st;
	fg_outbox *ob;
	fg_incidents *inc;
	fg_plugin_host *host;
	fg_ingest *ing;
	fg_webhook *wh;
	fg_mqtt *mqtt;
	fg_http *http;               /* NULL when [api] enabled = false */
	fg_gb26875 *gb26875;         /* GB/T 26875.3 listeners; NULL without any */
	fg_api *api;
	fg_snapshots *snap;          /* camera pictures; NULL without the API or when disabled */
	fg_push *push;               /* POST /v1/ingest/{source} */
	fg_snapfetch *snapfetch;     /* pictures cameras serve (Frigate); NULL without snap */
	fg_streams *streams;         /* event streams read from devices (stream_url) */
	fg_escalate *esc;            /* the deadline timer */
	int64_t connects;            /* MQTT connects seen by on_msg */
	fg_modbus *modbus;
	fg_modbus *old_modbus;       /* closing after a reload */
	bool modbus_restarting;

	uv_signal_t sigterm, sigint, sighup;
	uv_check_t commit_check;
	uv_timer_t lazy_commit;
	uv_timer_t housekeeping;
	uv_timer_t watchdog;
	uv_timer_t wakes;            /* plugins' wake-ups (fg_host.wake_at) */
	unsigned ticks;

	bool stopping;
	/* Reload: the MQTT client closes asynchronously and starts again with
	 * the new config; old_conf is freed once it is gone. */
	bool restarting;             /* the MQTT client is closing */
	struct fg_conf *old_conf;
};

static void on_msg(void *data, const struct fg_msg *msg)
{
	struct daemon *d = data;
	/* First message since the broker link (re)connected: offline reports
	 * settle for a while, since what we missed is not the devices' fault.
	 * (mqtt.h has no connect callback; its connect counter tells.) */
	int64_t connects = fg_metrics_get("firegrid_mqtt_connects_total", NULL, NULL);
	if (connects != d->connects) {
		d->connects = connects;
		fg_incidents_settle(d->inc, fg_now_ms() + d->conf->offline_settle_ms);
	}
	fg_ingest_msg(d->ing, msg);
}

static void on_delivered(void *data, const struct fg_outbox_row *row, long status,
                         const char *body, size_t len)
{
	struct daemon *d = data;
	int r = fg_incidents_delivered(d->inc, row->incident_id, row->sink, fg_now_ms(), body, len);
	if (r < 0)
		fg_warn("main", "cannot mark incident reported id=%lld err=\"%s\"",
		        (long long)row->incident_id, fg_strerror(r));
}

static void commit_now(struct daemon *d)
{
	int r = fg_store_commit(d->st);
	if (r < 0)
		fg_err("store", "commit failed err=\"%s\"", fg_strerror(r));
}

static void lazy_commit_cb(uv_timer_t *t)
{
	commit_now(t->data);
}

/* Group commit for everything that is not MQTT (its batches commit before
 * their PUBACKs): after the poll phase of each loop iteration.  New outbox
 * rows commit at once; a transaction holding only delivery outcomes and
 * counters waits up to FG_STORE_LAZY_COMMIT_MS to share one fsync with
 * what comes next (see store.h). */
static void commit_check_cb(uv_check_t *h)
{
	struct daemon *d = h->data;
	if (!fg_store_in_txn(d->st))
		return;
	int64_t age = fg_store_txn_age_ms(d->st);
	if (fg_store_txn_urgent(d->st) || age >= FG_STORE_LAZY_COMMIT_MS || d->stopping) {
		uv_timer_stop(&d->lazy_commit);
		commit_now(d);
	} else if (!uv_is_active((uv_handle_t *)&d->lazy_commit)) {
		uv_timer_start(&d->lazy_commit, lazy_commit_cb,
		               (uint64_t)(FG_STORE_LAZY_COMMIT_MS - age), 0);
	}
}

static void flush_metric_cb(void *data, const char *key, int64_t value)
{
	struct daemon *d = data;
	fg_store_metric_put(d->st, key, value, fg_now_ms());
}

static void housekeeping_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	int64_t depth = 0, oldest = 0, now = fg_now_ms();

	if (fg_outbox_stats(d->ob, &depth, &oldest) == 0) {
		fg_metrics_set("firegrid_outbox_depth", NULL, NULL, depth);
		fg_metrics_set("firegrid_outbox_oldest_age_seconds", NULL, NULL,
		               depth && oldest ? (now - oldest) / 1000 : 0);
	}
	fg_store_begin(d->st);
	if (++d->ticks % PRUNE_EVERY == 0) {
		int r = fg_store_prune_events(d->st, now, d->conf->event_retention_ms, d->conf->max_events);
		if (r > 0)
			fg_debug("store", "pruned events rows=%d", r);
	}
	if (d->snap)
		fg_snapshots_sweep(d->snap, now);
	fg_metrics_each(flush_metric_cb, d);
	notify("STATUS=outbox=%lld mqtt=%s", (long long)depth,
	       fg_mqtt_connected(d->mqtt) ? "connected" : "disconnected");
}

static void watchdog_cb(uv_timer_t *t)
{
	notify("WATCHDOG=1");
}

static void wakes_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	if (!d->stopping)
		fg_ingest_run_wakes(d->ing, fg_now_ms());
}

static void log_errors(const char *what, const char *errs)
{
	/* One log line per error: journald and humans both read them better. */
	const char *p = errs;
	while (p && *p) {
		size_t n = strcspn(p, "\n");
		fg_err("main", "%s: %.*s", what, (int)n, p);
		p += n;
		if (*p == '\n')
			p++;
	}
}

static int start_mqtt(struct daemon *d)
{
	if (!d->conf->mqtt_enabled)
		return 0;
	int r = fg_mqtt_new(&d->loop, d->conf, d->st, on_msg, d, &d->mqtt);
	if (r < 0) {
		fg_err("main", "cannot create MQTT client err=\"%s\"", fg_strerror(r));
		return r;
	}
	return fg_mqtt_start(d->mqtt);
}

static bool broker_up(void *data)
{
	struct daemon *d = data;
	return fg_mqtt_connected(d->mqtt);
}

/* The HTTP server; modules register their routes on d->http before it
 * starts listening. */
static int start_api(struct daemon *d)
{
	if (!d->conf->api_enabled)
		return 0;
	int r = fg_http_new(&d->loop, d->conf, &d->http);
	if (r == 0)
		r = fg_api_new(d->http, d->conf, d->st, d->inc, d->ob, broker_up, d, &d->api);
	if (r == 0 && d->conf->snap_enabled && (r = fg_snapshots_new(d->conf, &d->snap)) == 0)
		r = fg_snapshots_routes(d->snap, d->http);
	if (r == 0 && d->snap &&
	    (r = fg_snapfetch_new(&d->loop, d->conf, d->snap, d->inc, &d->snapfetch)) == 0) {
		fg_ingest_set_snapfetch(d->ing, d->snapfetch);
		fg_outbox_set_snapshots(d->ob, d->snap);
	}
	if (r == 0)
		r = fg_push_new(d->http, d->conf, d->st, d->snap, &d->ing, &d->push);
	if (r == 0)
		r = fg_http_start(d->http);
	if (r < 0)
		fg_err("main", "cannot start the HTTP API err=\"%s\"", fg_strerror(r));
	return r;
}

/* GB/T 26875.3 listeners ([gb26875 NAME]); frames go the way of MQTT
 * messages.  The module logs which listener failed. */
static int start_gb26875(struct daemon *d)
{
	return fg_gb26875_new(&d->loop, d->conf, d->st, on_msg, d, &d->gb26875);
}

static void stop_gb26875(struct daemon *d)
{
	fg_gb26875_close(d->gb26875, NULL, NULL);    /* NULL-safe; frees itself */
	d->gb26875 = NULL;
}

static void close_handles(struct daemon *d)
{
	fg_streams_close(d->streams);          /* no-op when already closing */
	fg_snapfetch_close(d->snapfetch, NULL, NULL);
	stop_gb26875(d);
	fg_http_close(d->http, NULL, NULL);    /* no-op when already closing */
	fg_escalate_close(d->esc, NULL, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	uv_close((uv_handle_t *)&d->commit_check, NULL);
	uv_close((uv_handle_t *)&d->lazy_commit, NULL);
	uv_close((uv_handle_t *)&d->housekeeping, NULL);
	uv_close((uv_handle_t *)&d->watchdog, NULL);
	uv_close((uv_handle_t *)&d->wakes, NULL);
}

static void webhook_closed_cb(void *data)
{
	close_handles(data);
}

/* The MQTT client is gone (its last batch committed, PUBACKs out): either
 * finish stopping, or start it again with the reloaded config. */
/* The previous config goes once neither MQTT nor Modbus uses it. */
static void release_old_conf(struct daemon *d)
{
	if (d->restarting || d->modbus_restarting)
		return;
	fg_conf_free(d->old_conf);
	d->old_conf = NULL;
}

static void mqtt_closed_cb(void *data)
{
	struct daemon *d = data;
	d->restarting = false;
	release_old_conf(d);
	if (d->stopping) {
		fg_webhook_close(d->wh, d->conf->shutdown_timeout_ms, webhook_closed_cb, d);
		return;
	}
	if (start_mqtt(d) < 0) {
		fg_err("main", "cannot restart MQTT after reload; stopping");
		d->stopping = true;
		fg_webhook_close(d->wh, d->conf->shutdown_timeout_ms, webhook_closed_cb, d);
		return;
	}
	fg_info("main", "reloaded config=%s", d->conf->path);
}

/* The Modbus buses of the previous config are gone: start the new ones. */
static void modbus_reloaded_cb(void *data)
{
	struct daemon *d = data;
	fg_modbus_free(d->old_modbus);
	d->old_modbus = NULL;
	d->modbus_restarting = false;
	if (!d->stopping)
		fg_modbus_start(d->modbus);
	release_old_conf(d);
}

static void stop_mqtt(struct daemon *d)
{
	fg_mqtt *m = d->mqtt;
	d->mqtt = NULL;
	d->restarting = true;
	fg_mqtt_close(m, mqtt_closed_cb, d);   /* NULL-safe: calls back at once */
}

static void shutdown_cb(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (d->stopping)
		return;
	d->stopping = true;
	notify("STOPPING=1");
	fg_info("main", "stopping signal=%s", strsignal(signum));
	fg_http_close(d->http, NULL, NULL);    /* no new callbacks while draining */
	fg_streams_close(d->streams);
	fg_snapfetch_close(d->snapfetch, NULL, NULL);
	stop_gb26875(d);
	fg_modbus_close(d->modbus, NULL, NULL);   /* workers exit; their handles close */
	if (d->restarting)
		return;         /* mqtt_closed_cb sees d->stopping */
	stop_mqtt(d);
}

static void reload_cb(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	struct fg_conf *nc = NULL;
	fg_ingest *ning = NULL;
	fg_modbus *nmodbus = NULL;
	char *errs = NULL;

	if (d->stopping || d->restarting || d->modbus_restarting) {
		fg_warn("main", "reload ignored: busy");
		return;
	}
	notify("RELOADING=1");
	fg_info("main", "reloading config=%s", d->conf->path);
	int r = fg_conf_load(d->conf->path, &nc, &errs);
	if (r == 0) {
		if (fg_store_in_txn(d->st))
			fg_store_commit(d->st);     /* plugin state of the old instances */
		r = fg_ingest_new(nc, d->host, d->st, d->inc, &ning, &errs);
	}
	if (r == 0)
		r = fg_modbus_new(&d->loop, nc, d->host, d->st, d->inc, &nmodbus, &errs);
	if (r < 0) {
		log_errors("reload rejected, keeping the running config", errs);
		free(errs);
		fg_ingest_free(ning);
		fg_conf_free(nc);
		notify("READY=1");
		return;
	}
	if (strcmp(nc->db_path, d->conf->db_path) != 0 || nc->durability != d->conf->durability)
		fg_warn("main", "store settings changed; they take effect at the next restart");

	fg_ingest_free(d->ing);
	d->ing = ning;
	fg_ingest_set_snapfetch(d->ing, d->snapfetch);
	fg_log_set_level(nc->log_level);
	bool gb_same = fg_gb26875_conf_equal(d->conf, nc);
	r = fg_webhook_set_conf(d->wh, nc);
	if (r < 0)
		fg_err("main", "webhook sinks not reloaded err=\"%s\"", fg_strerror(r));
	d->old_conf = d->conf;
	d->conf = nc;
	fg_outbox_set_conf(d->ob, nc);
	fg_incidents_set_conf(d->inc, nc);
	if (d->api)
		fg_api_set_conf(d->api, nc);
	fg_snapshots_set_conf(d->snap, nc);
	fg_snapfetch_set_conf(d->snapfetch, nc);
	if (fg_streams_set_conf(d->streams, nc) < 0)
		fg_err("main", "event streams not restarted after the reload");
	r = d->http ? fg_http_set_conf(d->http, nc) : 0;
	if (r < 0)
		fg_err("main", "API clients not reloaded, all refused err=\"%s\"", fg_strerror(r));
	else if (r > 0)
		fg_warn("main", "API listen addresses take effect at the next restart");
	d->old_modbus = d->modbus;
	d->modbus = nmodbus;
	d->modbus_restarting = true;
	fg_modbus_close(d->old_modbus, modbus_reloaded_cb, d);
	if (!gb_same) {
		/* The new listeners rebuild their supervision from the store. */
		stop_gb26875(d);
		if (start_gb26875(d) < 0)
			fg_err("main", "GB/T 26875 listeners not running after the reload; fix the "
			       "config and reload again");
	}
	stop_mqtt(d);        /* mqtt_closed_cb starts it again with nc */
	notify("READY=1");
}

static int ensure_dir(const char *path)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: firegridd [--config FILE] [--check-config] [--dump-defaults] [--version]\n"
	        "\n"
	        "  -c, --config FILE   configuration (default %s/firegrid.conf)\n"
	        "  -t, --check-config  validate the configuration and its plugin options, then exit\n"
	        "      --dump-defaults print the documented default configuration\n"
	        "  -V, --version       print the version\n",
	        FG_SYSCONFDIR);
}

static int check_config(struct fg_conf *conf)
{
	fg_plugin_host *host = NULL;
	fg_ingest *ing = NULL;
	fg_modbus *modbus = NULL;
	char *errs = NULL;
	int r = fg_plugin_host_new(conf->plugin_dir, &host);
	if (r == 0)
		r = fg_ingest_new(conf, host, NULL, NULL, &ing, &errs);
	if (r == 0)
		r = fg_modbus_new(NULL, conf, host, NULL, NULL, &modbus, &errs);
	if (r < 0) {
		if (errs)
			fprintf(stderr, "%s\n", errs);
		else
			fprintf(stderr, "%s: %s\n", conf->path, fg_strerror(r));
	} else {
		printf("%s: configuration OK (%zu sources, %zu sinks, %zu Modbus devices)\n",
		       conf->path, conf->n_sources, conf->n_sinks, conf->n_modbus_devices);
	}
	free(errs);
	fg_modbus_free(modbus);
	fg_ingest_free(ing);
	fg_plugin_host_free(host);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "dump-defaults", no_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = FG_SYSCONFDIR "/firegrid.conf";
	bool check_only = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 't': check_only = true; break;
		case 'D': fg_conf_write_defaults(stdout); return 0;
		case 'V': printf("firegridd %s (plugin ABI %u)\n", FG_VERSION, FG_PLUGIN_ABI_MAJOR); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	struct daemon d;
	memset(&d, 0, sizeof(d));
	char *errs = NULL;
	int r = fg_conf_load(config_path, &d.conf, &errs);
	if (r < 0) {
		if (errs)
			fprintf(stderr, "%s\n", errs);
		else
			fprintf(stderr, "%s: %s\n", config_path, fg_strerror(r));
		free(errs);
		return 1;
	}
	if (check_only) {
		r = check_config(d.conf);
		fg_conf_free(d.conf);
		return r;
	}

	signal(SIGPIPE, SIG_IGN);
	fg_log_set_level(d.conf->log_level);
	fg_info("main", "starting firegridd %s gateway=%s config=%s", FG_VERSION, d.conf->gateway_id,
	        d.conf->path);

	int exit_code = 1;
	uv_loop_init(&d.loop);
	if ((r = ensure_dir(d.conf->state_dir)) < 0) {
		fg_err("main", "cannot create state dir path=%s err=\"%s\"", d.conf->state_dir, fg_strerror(r));
		goto out;
	}
	if ((r = fg_store_open(d.conf->db_path, d.conf->durability, &d.st)) < 0) {
		fg_err("main", "cannot open store path=%s err=\"%s\"", d.conf->db_path, fg_strerror(r));
		goto out;
	}
	if ((r = fg_outbox_new(d.st, d.conf, &d.ob)) < 0 ||
	    (r = fg_incidents_new(d.st, d.ob, &d.inc)) < 0 ||
	    (r = fg_escalate_new(&d.loop, d.st, d.inc, &d.esc)) < 0 ||
	    (r = fg_plugin_host_new(d.conf->plugin_dir, &d.host)) < 0) {
		fg_err("main", "cannot initialise err=\"%s\"", fg_strerror(r));
		goto out;
	}
	if ((r = fg_ingest_new(d.conf, d.host, d.st, d.inc, &d.ing, &errs)) < 0) {
		log_errors("cannot start sources", errs ? errs : fg_strerror(r));
		free(errs);
		goto out;
	}
	if ((r = fg_modbus_new(&d.loop, d.conf, d.host, d.st, d.inc, &d.modbus, &errs)) < 0) {
		log_errors("cannot start Modbus devices", errs ? errs : fg_strerror(r));
		free(errs);
		goto out;
	}

	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	uv_signal_init(&d.loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, shutdown_cb, SIGTERM);
	uv_signal_start(&d.sigint, shutdown_cb, SIGINT);
	uv_signal_start(&d.sighup, reload_cb, SIGHUP);
	uv_check_init(&d.loop, &d.commit_check);
	d.commit_check.data = &d;
	uv_check_start(&d.commit_check, commit_check_cb);
	uv_timer_init(&d.loop, &d.lazy_commit);
	d.lazy_commit.data = &d;
	uv_timer_init(&d.loop, &d.housekeeping);
	d.housekeeping.data = &d;
	uv_timer_start(&d.housekeeping, housekeeping_cb, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
	uv_timer_init(&d.loop, &d.wakes);
	d.wakes.data = &d;
	uv_timer_start(&d.wakes, wakes_cb, 1000, 1000);
	uv_timer_init(&d.loop, &d.watchdog);
	uint64_t wd_usec = (uint64_t)d.conf->watchdog_ms * 1000;
#if HAVE_SYSTEMD
	if (!wd_usec && sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
#endif
	if (wd_usec)
		uv_timer_start(&d.watchdog, watchdog_cb, wd_usec / 2000, wd_usec / 2000);

	r = fg_webhook_new(&d.loop, d.conf, d.st, d.ob, &d.wh);
	if (r < 0) {
		fg_err("main", "cannot start webhook delivery err=\"%s\"", fg_strerror(r));
		close_handles(&d);
	} else {
		fg_webhook_on_delivered(d.wh, on_delivered, &d);
		fg_incidents_set_conf(d.inc, d.conf);
		r = fg_escalate_start(d.esc);
		if (r == 0)
			r = start_api(&d);
		if (r == 0)
			r = start_mqtt(&d);
		if (r == 0)
			r = start_gb26875(&d);
		if (r == 0 && (r = fg_streams_new(&d.loop, d.conf, &d.ing, &d.streams)) < 0)
			fg_err("main", "cannot start event streams err=\"%s\"", fg_strerror(r));
		if (r == 0)
			r = fg_modbus_start(d.modbus);
	}
	if (r < 0 && d.wh) {
		d.stopping = true;
		stop_mqtt(&d);
	} else if (r == 0) {
		notify("READY=1\nSTATUS=running");
		fg_info("main", "ready sources=%zu sinks=%zu modbus_devices=%zu", d.conf->n_sources,
		        d.conf->n_sinks, fg_modbus_n_devices(d.modbus));
		exit_code = 0;
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	fg_store_begin(d.st);
	fg_metrics_each(flush_metric_cb, &d);
	if (fg_store_commit(d.st) < 0)
		exit_code = 1;
	fg_info("main", "stopped");

out:
	fg_modbus_free(d.modbus);     /* its threads are joined: the loop has ended */
	fg_ingest_free(d.ing);
	fg_incidents_free(d.inc);
	fg_outbox_free(d.ob);
	fg_store_close(d.st);
	fg_webhook_free(d.wh);      /* after the store: it holds a commit hook */
	fg_escalate_free(d.esc);    /* likewise */
	fg_api_free(d.api);
	fg_http_free(d.http);
	fg_push_free(d.push);
	fg_streams_free(d.streams);
	fg_snapfetch_free(d.snapfetch);
	fg_snapshots_free(d.snap);
	fg_plugin_host_free(d.host);
	fg_conf_free(d.conf);
	fg_metrics_reset();
	if (uv_loop_close(&d.loop) != 0) {
		fg_err("main", "handles left open at exit");
		exit_code = 1;
	}
	return exit_code;
}
