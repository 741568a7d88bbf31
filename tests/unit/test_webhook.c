/*
 * Webhook delivery against a real fg-receiver process on a free loopback
 * port, with a real store, incidents and outbox on a libuv loop.  Each case
 * gets its own database and gateway id (so its webhook ids are its own) and
 * ends with uv_loop_close() == 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "incident.h"
#include "metrics.h"
#include "outbox.h"
#include "store.h"
#include "util.h"
#include "webhook.h"

extern char **environ;

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define WAIT_MS 20000   /* generous upper bound; cases finish in well under a second or two */

static pid_t rx_pid;
static unsigned rx_port;
static char tmpdir[] = "/tmp/fg-test-webhook-XXXXXX";
static char rx_log[512];

/* ---- the receiver process ------------------------------------------------- */

static int receiver_start(const char *path)
{
	int fds[2];
	if (pipe(fds) < 0)
		return -errno;
	snprintf(rx_log, sizeof(rx_log), "%s/receiver.jsonl", tmpdir);
	char *argv[] = { (char *)path, "--port", "0", "--secret", SECRET, "--log", rx_log,
	                 "--quiet", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	int r = posix_spawn(&rx_pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (r != 0) {
		close(fds[0]);
		return -r;
	}
	FILE *f = fdopen(fds[0], "r");
	char line[64] = "";
	if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "PORT %u", &rx_port) != 1 ||
	    rx_port == 0) {
		if (f)
			fclose(f);
		return -EIO;
	}
	fclose(f);
	return 0;
}

static int receiver_stop(void)
{
	int status = 0;
	kill(rx_pid, SIGTERM);
	if (waitpid(rx_pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
	json_t **out = userp;
	json_error_t e;
	json_decref(*out);
	*out = json_loadb(data, size * n, 0, &e);
	return size * n;
}

/* Blocking request to the receiver's control API (the loop is idle meanwhile). */
static json_t *rx_call(const char *path, const char *post)
{
	char url[128];
	json_t *out = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", rx_port, path);
	CURL *e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
	if (post)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
	CURLcode rc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	if (rc != CURLE_OK) {
		fprintf(stderr, "receiver %s: %s\n", path, curl_easy_strerror(rc));
		json_decref(out);
		return NULL;
	}
	return out;
}

static void rx_control(const char *json)
{
	json_t *r = rx_call("/_control", json);
	CHECK(r && json_is_integer(json_object_get(r, "status")));
	json_decref(r);
}

static int64_t rx_stat(const char *key)
{
	json_t *r = rx_call("/_stats", NULL);
	int64_t v = json_integer_value(json_object_get(r, key));
	json_decref(r);
	return v;
}

/* Receiver log lines of one gateway (webhook ids start with it). */
static json_t *rx_lines(const char *gateway)
{
	json_t *arr = json_array();
	FILE *f = fopen(rx_log, "r");
	char *line = NULL;
	size_t cap = 0;
	size_t glen = strlen(gateway);
	while (f && getline(&line, &cap, f) > 0) {
		json_error_t e;
		json_t *o = json_loads(line, 0, &e);
		const char *id = json_string_value(json_object_get(o, "webhook_id"));
		if (id && strncmp(id, gateway, glen) == 0 && id[glen] == '-')
			json_array_append(arr, o);
		json_decref(o);
	}
	free(line);
	if (f)
		fclose(f);
	return arr;
}

/* ---- one case's world --------------------------------------------------- */

struct world {
	uv_loop_t loop;
	uv_check_t commit;            /* the daemon's group commit per loop turn */
	uv_timer_t tick;              /* keeps UV_RUN_ONCE from sleeping long */
	struct fg_conf conf;
	struct fg_conf_sink sink;
	char gateway[32];
	char url[128];
	fg_store *st;
	fg_outbox *ob;
	fg_incidents *inc;
	fg_webhook *wh;
	int delivered;
	bool closed;
};

static void commit_cb(uv_check_t *h)
{
	struct world *w = h->data;
	if (fg_store_in_txn(w->st))
		CHECK(fg_store_commit(w->st) == 0);
}

static void tick_cb(uv_timer_t *t)
{
}

static void delivered_cb(void *data, const struct fg_outbox_row *row, long status,
                         const char *body, size_t len)
{
	struct world *w = data;
	CHECK(fg_store_in_txn(w->st));
	CHECK(status >= 200 && status <= 299);
	CHECK(len > 0 && strstr(body, "\"ok\":true"));
	CHECK(fg_incidents_mark_reported(w->inc, row->incident_id, row->sink, fg_now_ms()) == 0);
	w->delivered++;
}

static void world_open(struct world *w, const char *name, const char *secret, int max_conn,
                       int64_t retry_min, int64_t retry_max, int64_t give_up)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->gateway, sizeof(w->gateway), "gw-%s", name);
	snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%u/hooks/firegrid", rx_port);
	w->sink = (struct fg_conf_sink){
		.name = "ops", .url = w->url, .secret = (char *)secret,
		.timeout_ms = 2000, .connect_timeout_ms = 1000, .max_connections = max_conn,
		.retry_min_ms = retry_min, .retry_max_ms = retry_max, .give_up_ms = give_up,
		.min_severity = FG_SEV_INFO, .tls_verify = 1,
	};
	w->conf.gateway_id = w->gateway;
	w->conf.sinks = &w->sink;
	w->conf.n_sinks = 1;

	char path[600];
	snprintf(path, sizeof(path), "%s/%s.db", tmpdir, name);
	CHECK(uv_loop_init(&w->loop) == 0);
	CHECK(fg_store_open(path, FG_DURABILITY_NORMAL, &w->st) == 0);
	CHECK(fg_outbox_new(w->st, &w->conf, &w->ob) == 0);
	CHECK(fg_incidents_new(w->st, w->ob, &w->inc) == 0);
	CHECK(fg_webhook_new(&w->loop, &w->conf, w->st, w->ob, &w->wh) == 0);
	fg_webhook_on_delivered(w->wh, delivered_cb, w);
	uv_check_init(&w->loop, &w->commit);
	w->commit.data = w;
	uv_check_start(&w->commit, commit_cb);
	uv_timer_init(&w->loop, &w->tick);
	uv_timer_start(&w->tick, tick_cb, 5, 5);
	fg_metrics_reset();
	rx_control("{\"status\":200,\"hang_ms\":0,\"retry_after\":null}");
}

static void closed_cb(void *data)
{
	((struct world *)data)->closed = true;
}

static void world_close(struct world *w, int64_t timeout_ms)
{
	fg_webhook_close(w->wh, timeout_ms, closed_cb, w);
	int64_t deadline = fg_mono_ms() + WAIT_MS;
	while (!w->closed && fg_mono_ms() < deadline)
		uv_run(&w->loop, UV_RUN_ONCE);
	CHECK(w->closed);
	uv_close((uv_handle_t *)&w->commit, NULL);
	uv_close((uv_handle_t *)&w->tick, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	CHECK(uv_loop_close(&w->loop) == 0);
	if (fg_store_in_txn(w->st))
		CHECK(fg_store_commit(w->st) == 0);
	fg_store_close(w->st);
	fg_webhook_free(w->wh);
	fg_incidents_free(w->inc);
	fg_outbox_free(w->ob);
}

/* Run the loop until pred holds (true) or WAIT_MS passes (false). */
static bool run_until(struct world *w, bool (*pred)(struct world *w, void *arg), void *arg)
{
	int64_t deadline = fg_mono_ms() + WAIT_MS;
	while (!pred(w, arg)) {
		if (fg_mono_ms() > deadline)
			return false;
		uv_run(&w->loop, UV_RUN_ONCE);
	}
	return true;
}

static void run_for(struct world *w, int64_t ms)
{
	int64_t until = fg_mono_ms() + ms;
	while (fg_mono_ms() < until)
		uv_run(&w->loop, UV_RUN_ONCE);
}

static int64_t sql_int(struct world *w, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(fg_store_db(w->st), sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static char *sql_text(struct world *w, const char *sql)
{
	sqlite3_stmt *s = NULL;
	char *v = NULL;
	if (sqlite3_prepare_v2(fg_store_db(w->st), sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		v = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return v;
}

static int64_t pending(struct world *w)
{
	int64_t depth = -1;
	CHECK(fg_outbox_stats(w->ob, &depth, NULL) == 0);
	return depth;
}

/* Feed one event through the real incident code, committed like the
 * daemon's loop would, which kicks the webhook. */
static void raise_alarm(struct world *w, const char *device, fg_kind kind, fg_severity sev)
{
	struct fg_ev ev = {
		.source = "test", .plugin = "generic-json", .transport = "mqtt",
		.topic = "test/topic", .device = device, .kind = kind, .severity = sev,
		.clears = FG_KIND_NONE,
		.recv_time_ms = fg_now_ms(),
	};
	int64_t id = 0;
	CHECK(fg_incidents_apply(w->inc, &ev, &id) >= 0);
	CHECK(fg_store_commit(w->st) == 0);
}

static bool is_idle(struct world *w, void *arg)
{
	struct fg_webhook_stats s;
	fg_webhook_stats(w->wh, &s);
	return pending(w) == 0 && s.in_flight == 0;
}

static bool stat_at_least(struct world *w, void *arg)
{
	const int64_t *want = arg;   /* {offset in stats, value} */
	struct fg_webhook_stats s;
	fg_webhook_stats(w->wh, &s);
	uint64_t v = *(const uint64_t *)((const char *)&s + want[0]);
	return v >= (uint64_t)want[1];
}

#define WAIT_STAT(w, field, n) \
	run_until((w), stat_at_least, (int64_t[]){ offsetof(struct fg_webhook_stats, field), (n) })

static bool rx_received_at_least(struct world *w, void *arg)
{
	json_t *lines = rx_lines(w->gateway);
	size_t n = json_array_size(lines);
	json_decref(lines);
	if (n < *(const size_t *)arg)
		uv_sleep(5);
	return n >= *(const size_t *)arg;
}

/* ---- cases ----------------------------------------------------------------- */

static void test_delivered(void)
{
	struct world w;
	world_open(&w, "delivered", SECRET, 2, 50, 1000, 60000);
	int64_t conns_before = rx_stat("connections_opened");

	raise_alarm(&w, "b1/smoke-1", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	raise_alarm(&w, "b1/smoke-2", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	raise_alarm(&w, "b1/battery", FG_KIND_BATTERY_LOW, FG_SEV_WARNING);
	CHECK(pending(&w) == 3);
	CHECK(run_until(&w, is_idle, NULL));
	/* A burst over the same connections: keep-alive, at most 2 sockets. */
	char dev[32];
	for (int i = 0; i < 40; i++) {
		snprintf(dev, sizeof(dev), "b2/heat-%d", i);
		raise_alarm(&w, dev, FG_KIND_HEAT, FG_SEV_MAJOR);
	}
	CHECK(run_until(&w, is_idle, NULL));

	struct fg_webhook_stats s;
	fg_webhook_stats(w.wh, &s);
	CHECK(s.delivered == 43 && s.sent == 43 && s.retried == 0 && s.dead == 0 && s.in_flight == 0);
	CHECK(w.delivered == 43);
	CHECK(fg_metrics_get("firegrid_webhook_delivered_total", "sink", "ops") == 43);
	CHECK(fg_metrics_get("firegrid_webhook_sent_total", "sink", "ops") == 43);
	CHECK(fg_metrics_get("firegrid_webhook_in_flight", "sink", "ops") == 0);
	CHECK(sql_int(&w, "SELECT count(*) FROM outbox") == 0);
	CHECK(sql_int(&w, "SELECT count(*) FROM incidents WHERE state = 'reported'") == 43);
	/* -1: the stats call itself is a new connection. */
	int64_t conns = rx_stat("connections_opened") - conns_before - 1;
	CHECK(conns >= 1 && conns <= 2);

	json_t *lines = rx_lines(w.gateway);
	CHECK(json_array_size(lines) == 43);
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) {
		CHECK(json_is_true(json_object_get(l, "signature_ok")));
		CHECK(json_integer_value(json_object_get(l, "status")) == 200);
		const char *ct = json_string_value(json_object_get(l, "content_type"));
		const char *ua = json_string_value(json_object_get(l, "user_agent"));
		CHECK(ct && strcmp(ct, "application/cloudevents+json") == 0);
		CHECK(ua && strncmp(ua, "firegrid/", 9) == 0);
		json_t *body = json_object_get(l, "body");
		CHECK(json_is_object(body));
		const char *type = json_string_value(json_object_get(body, "type"));
		CHECK(type && strcmp(type, "org.firegrid.incident.opened") == 0);
		/* CloudEvents id and webhook-id are the same stable id. */
		CHECK(json_equal(json_object_get(body, "id"), json_object_get(l, "webhook_id")));
		int64_t ts = atoll(json_string_value(json_object_get(l, "timestamp")));
		CHECK(llabs(ts - fg_now_ms() / 1000) < 60);
	}
	json_decref(lines);
	world_close(&w, 1000);
}

/* Fire-class revisions overtake an older backlog of lower severity. */
static void test_priority(void)
{
	struct world w;
	world_open(&w, "prio", SECRET, 1, 50, 1000, 60000);
	raise_alarm(&w, "b12/battery", FG_KIND_BATTERY_LOW, FG_SEV_WARNING);
	raise_alarm(&w, "b12/tamper", FG_KIND_TAMPER, FG_SEV_MAJOR);
	raise_alarm(&w, "b12/smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(run_until(&w, is_idle, NULL));
	json_t *lines = rx_lines(w.gateway);
	CHECK(json_array_size(lines) == 3);
	const char *want[] = { "gw-prio-3-1", "gw-prio-2-1", "gw-prio-1-1" };
	for (size_t i = 0; i < 3 && i < json_array_size(lines); i++) {
		const char *id = json_string_value(json_object_get(json_array_get(lines, i), "webhook_id"));
		CHECK(id && strcmp(id, want[i]) == 0);
	}
	json_decref(lines);
	world_close(&w, 1000);
}

static void test_retry_then_delivered(void)
{
	struct world w;
	world_open(&w, "retry", SECRET, 4, 20, 200, 60000);
	rx_control("{\"status\":503}");
	raise_alarm(&w, "b3/smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(WAIT_STAT(&w, retried, 3));
	CHECK(pending(&w) == 1);
	CHECK(sql_int(&w, "SELECT last_status FROM outbox") == 503);
	CHECK(sql_int(&w, "SELECT attempts FROM outbox") >= 3);
	char *err = sql_text(&w, "SELECT last_error FROM outbox");
	CHECK(err && strstr(err, "503"));
	free(err);

	rx_control("{\"status\":200}");
	CHECK(run_until(&w, is_idle, NULL));
	struct fg_webhook_stats s;
	fg_webhook_stats(w.wh, &s);
	CHECK(s.delivered == 1 && s.dead == 0 && s.sent == s.retried + 1);
	CHECK(fg_metrics_get("firegrid_webhook_retries_total", "sink", "ops") == (int64_t)s.retried);

	/* Every attempt carried the same webhook-id and a valid signature. */
	json_t *lines = rx_lines(w.gateway);
	CHECK(json_array_size(lines) == s.sent);
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) {
		CHECK(strcmp(json_string_value(json_object_get(l, "webhook_id")), "gw-retry-1-1") == 0);
		CHECK(json_is_true(json_object_get(l, "signature_ok")));
		int64_t st = json_integer_value(json_object_get(l, "status"));
		CHECK(i + 1 < json_array_size(lines) ? st == 503 : st == 200);
	}
	json_decref(lines);
	world_close(&w, 1000);
}

static void test_network_error_retried(void)
{
	/* Nothing listens on the sink's port: connection refused is retried. */
	struct world w;
	world_open(&w, "refused", SECRET, 1, 20, 100, 60000);
	uv_tcp_t probe;
	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(&w.loop, &probe);
	uv_tcp_bind(&probe, (struct sockaddr *)&sa, 0);
	int len = sizeof(sa);
	uv_tcp_getsockname(&probe, (struct sockaddr *)&sa, &len);
	uv_close((uv_handle_t *)&probe, NULL);   /* bound, never listening, then gone */
	snprintf(w.url, sizeof(w.url), "http://127.0.0.1:%u/", ntohs(sa.sin_port));

	raise_alarm(&w, "b4/smoke", FG_KIND_SMOKE, FG_SEV_MAJOR);
	CHECK(WAIT_STAT(&w, retried, 2));
	CHECK(pending(&w) == 1);
	CHECK(sql_int(&w, "SELECT last_status IS NULL FROM outbox") == 1);
	char *err = sql_text(&w, "SELECT last_error FROM outbox");
	CHECK(err && *err);
	free(err);
	world_close(&w, 1000);
}

static void test_dead_letter(void)
{
	struct world w;
	world_open(&w, "dead", SECRET, 2, 20, 200, 60000);
	rx_control("{\"status\":400}");
	raise_alarm(&w, "b5/co", FG_KIND_CO, FG_SEV_CRITICAL);
	CHECK(WAIT_STAT(&w, dead, 1));
	CHECK(run_until(&w, is_idle, NULL));
	struct fg_webhook_stats s;
	fg_webhook_stats(w.wh, &s);
	CHECK(s.sent == 1 && s.retried == 0 && s.delivered == 0);
	CHECK(fg_metrics_get("firegrid_webhook_dead_letters_total", "sink", "ops") == 1);
	CHECK(sql_int(&w, "SELECT status FROM dead_letters") == 400);
	CHECK(sql_int(&w, "SELECT attempts FROM dead_letters") == 1);
	char *resp = sql_text(&w, "SELECT response FROM dead_letters");
	CHECK(resp && strstr(resp, "configured failure"));
	free(resp);
	char *wid = sql_text(&w, "SELECT webhook_id FROM dead_letters");
	CHECK(wid && strcmp(wid, "gw-dead-1-1") == 0);
	free(wid);
	CHECK(w.delivered == 0);
	world_close(&w, 1000);
}

static void test_bad_secret_is_401(void)
{
	/* The receiver checks signatures: signed with another key -> 401 -> dead. */
	struct world w;
	world_open(&w, "badsig", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1, 20, 200, 60000);
	int64_t fails = rx_stat("signature_failures");
	raise_alarm(&w, "b6/smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(WAIT_STAT(&w, dead, 1));
	CHECK(sql_int(&w, "SELECT status FROM dead_letters") == 401);
	CHECK(rx_stat("signature_failures") == fails + 1);
	world_close(&w, 1000);
}

static void test_retry_after(void)
{
	struct world w;
	world_open(&w, "ra", SECRET, 1, 20, 5000, 60000);
	rx_control("{\"status\":503,\"retry_after\":\"1\"}");
	raise_alarm(&w, "b7/smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(WAIT_STAT(&w, retried, 1));
	rx_control("{\"status\":200,\"retry_after\":null}");
	CHECK(run_until(&w, is_idle, NULL));
	json_t *lines = rx_lines(w.gateway);
	CHECK(json_array_size(lines) == 2);
	int64_t t0 = json_integer_value(json_object_get(json_array_get(lines, 0), "received_at_ms"));
	int64_t t1 = json_integer_value(json_object_get(json_array_get(lines, 1), "received_at_ms"));
	/* Backoff alone would retry within 20 ms; Retry-After: 1 holds it a second. */
	CHECK(t1 - t0 >= 950);
	json_decref(lines);
	world_close(&w, 1000);
}

static void test_give_up_and_critical(void)
{
	struct world w;
	world_open(&w, "giveup", SECRET, 4, 10, 30, 300);
	rx_control("{\"status\":500}");
	raise_alarm(&w, "b8/battery", FG_KIND_BATTERY_LOW, FG_SEV_WARNING);
	raise_alarm(&w, "b8/smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(WAIT_STAT(&w, dead, 1));
	run_for(&w, 400);   /* the critical one keeps going well past give_up_ms */
	struct fg_webhook_stats s;
	fg_webhook_stats(w.wh, &s);
	CHECK(s.dead == 1 && s.delivered == 0);
	CHECK(sql_int(&w, "SELECT count(*) FROM dead_letters") == 1);
	CHECK(sql_int(&w, "SELECT status FROM dead_letters") == 500);
	char *err = sql_text(&w, "SELECT error FROM dead_letters");
	CHECK(err && strstr(err, "gave up"));
	free(err);
	CHECK(sql_int(&w, "SELECT priority FROM outbox") == FG_SEV_CRITICAL);
	CHECK(sql_int(&w, "SELECT attempts FROM outbox") >= 5);
	rx_control("{\"status\":200}");
	CHECK(run_until(&w, is_idle, NULL));
	CHECK(w.delivered == 1);
	world_close(&w, 1000);
}

/* Revisions of one incident arrive in order even with failures and
 * parallel connections: revision k+1 is first seen only after k was
 * accepted. */
static void test_order(void)
{
	struct world w;
	world_open(&w, "order", SECRET, 4, 5, 40, 60000);
	rx_control("{\"status\":503}");
	char dev[32];
	for (int round = 0; round < 3; round++)
		for (int d = 0; d < 4; d++) {
			snprintf(dev, sizeof(dev), "b9/smoke-%d", d);
			raise_alarm(&w, dev, round == 1 ? FG_KIND_CLEAR : FG_KIND_SMOKE, FG_SEV_CRITICAL);
		}
	CHECK(pending(&w) == 12);
	size_t want = 8;
	CHECK(run_until(&w, rx_received_at_least, &want));
	rx_control("{\"status\":200,\"hang_ms\":3}");
	CHECK(run_until(&w, is_idle, NULL));
	CHECK(w.delivered == 12);

	json_t *lines = rx_lines(w.gateway);
	int64_t accepted[5] = { 0 };   /* per incident: last accepted revision */
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) {
		int64_t inc = json_integer_value(json_object_get(l, "incident_id"));
		int64_t rev = json_integer_value(json_object_get(l, "revision"));
		int64_t st = json_integer_value(json_object_get(l, "status"));
		CHECK(inc >= 1 && inc <= 4);
		if (inc < 1 || inc > 4)
			continue;
		CHECK(rev == accepted[inc] + 1);   /* never ahead, never behind */
		if (st == 200)
			accepted[inc] = rev;
	}
	for (int k = 1; k <= 4; k++)
		CHECK(accepted[k] == 3);
	json_decref(lines);
	world_close(&w, 1000);
}

/* Reload: a kept sink picks up its new URL, a new sink starts, a removed
 * sink's in-flight request is aborted with its row kept, a bad secret
 * changes nothing. */
static void test_reload(void)
{
	struct world w;
	world_open(&w, "reload", SECRET, 2, 20, 200, 60000);
	raise_alarm(&w, "b13/smoke-1", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(run_until(&w, is_idle, NULL));

	/* "ops" moves to another path; "audit" is new and signs with a key the
	 * receiver does not know, so its copy is refused (401, dead letter). */
	char url2[160];
	snprintf(url2, sizeof(url2), "http://127.0.0.1:%u/v2/hooks", rx_port);
	struct fg_conf_sink sinks2[2] = { w.sink, w.sink };
	sinks2[0].url = url2;
	sinks2[1].name = "audit";
	sinks2[1].secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct fg_conf conf2 = w.conf;
	conf2.sinks = sinks2;
	conf2.n_sinks = 2;

	struct fg_conf bad = conf2;
	struct fg_conf_sink bad_sinks[2] = { sinks2[0], sinks2[1] };
	bad_sinks[1].secret = "whsec_!!";
	bad.sinks = bad_sinks;
	CHECK(fg_webhook_set_conf(w.wh, &bad) == -EINVAL);
	bad_sinks[1] = bad_sinks[0];   /* duplicate name */
	CHECK(fg_webhook_set_conf(w.wh, &bad) == -EINVAL);

	CHECK(fg_webhook_set_conf(w.wh, &conf2) == 0);
	fg_outbox_set_conf(w.ob, &conf2);
	raise_alarm(&w, "b13/smoke-2", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(pending(&w) == 2);
	CHECK(run_until(&w, is_idle, NULL));
	CHECK(w.delivered == 2);
	CHECK(sql_int(&w, "SELECT count(*) FROM dead_letters WHERE sink = 'audit' AND status = 401") == 1);
	json_t *lines = rx_lines(w.gateway);
	size_t i;
	json_t *l;
	int old_path = 0, new_path = 0;
	json_array_foreach(lines, i, l) {
		const char *path = json_string_value(json_object_get(l, "path"));
		const char *id = json_string_value(json_object_get(l, "webhook_id"));
		bool ok = json_is_true(json_object_get(l, "signature_ok"));
		if (strcmp(id, "gw-reload-1-1") == 0)
			old_path += path && strcmp(path, "/hooks/firegrid") == 0 && ok;
		else if (ok)
			new_path += path && strcmp(path, "/v2/hooks") == 0;
	}
	CHECK(old_path == 1 && new_path == 1);
	json_decref(lines);

	/* Remove "ops" while it waits on a slow answer. */
	rx_control("{\"hang_ms\":3000}");
	struct fg_conf conf3 = conf2;
	conf3.sinks = &sinks2[1];
	conf3.n_sinks = 1;
	raise_alarm(&w, "b13/smoke-3", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	int64_t want[2] = { offsetof(struct fg_webhook_stats, sent), 5 };
	CHECK(run_until(&w, stat_at_least, want));
	struct fg_webhook_stats s;
	fg_webhook_stats(w.wh, &s);
	CHECK(s.in_flight >= 1);
	CHECK(fg_webhook_set_conf(w.wh, &conf3) == 0);
	fg_outbox_set_conf(w.ob, &conf3);
	fg_webhook_stats(w.wh, &s);
	CHECK(fg_metrics_get("firegrid_webhook_in_flight", "sink", "ops") == 0);
	CHECK(sql_int(&w, "SELECT count(*) FROM outbox WHERE sink = 'ops'") == 1);
	rx_control("{\"hang_ms\":0}");
	world_close(&w, 4000);
}

static void test_close_drains_or_aborts(void)
{
	/* Drain: a slow answer within the timeout is still recorded. */
	struct world w;
	world_open(&w, "drain", SECRET, 2, 20, 200, 60000);
	rx_control("{\"hang_ms\":200}");
	raise_alarm(&w, "b10/smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	struct fg_webhook_stats s;
	CHECK(WAIT_STAT(&w, sent, 1));
	world_close(&w, 5000);
	CHECK(w.delivered == 1);

	/* Abort: an answer slower than the timeout leaves the row queued. */
	world_open(&w, "abort", SECRET, 2, 20, 200, 60000);
	rx_control("{\"hang_ms\":3000}");
	raise_alarm(&w, "b11/smoke", FG_KIND_SMOKE, FG_SEV_CRITICAL);
	CHECK(WAIT_STAT(&w, sent, 1));
	run_for(&w, 50);
	int64_t t0 = fg_mono_ms();
	fg_webhook_stats(w.wh, &s);
	CHECK(s.in_flight == 1);
	fg_webhook_close(w.wh, 100, closed_cb, &w);
	fg_webhook_kick(w.wh);   /* ignored once closing */
	while (!w.closed && fg_mono_ms() - t0 < WAIT_MS)
		uv_run(&w.loop, UV_RUN_ONCE);
	CHECK(w.closed);
	CHECK(fg_mono_ms() - t0 < 2500);
	CHECK(pending(&w) == 1);
	CHECK(w.delivered == 0);
	w.closed = false;
	fg_webhook *wh = w.wh;
	w.wh = NULL;   /* already closed: world_close's close is the NULL-safe path */
	world_close(&w, 0);
	fg_webhook_free(wh);
	rx_control("{\"hang_ms\":0}");
}

int main(void)
{
	const char *rx = getenv("FG_RECEIVER");
	if (!rx || access(rx, X_OK) != 0) {
		fprintf(stderr, "FG_RECEIVER not set or not executable: skipping\n");
		return 77;
	}
	/* Tests touch only loopback; keep a developer's proxy out of it. */
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (receiver_start(rx) < 0) {
		fprintf(stderr, "cannot start %s\n", rx);
		return 1;
	}

	test_delivered();
	test_priority();
	test_retry_then_delivered();
	test_network_error_retried();
	test_dead_letter();
	test_bad_secret_is_401();
	test_retry_after();
	test_give_up_and_critical();
	test_order();
	test_reload();
	test_close_drains_or_aborts();

	CHECK(receiver_stop() == 0);
	curl_global_cleanup();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (!failures && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	if (failures)
		fprintf(stderr, "%d check(s) failed (files kept in %s)\n", failures, tmpdir);
	return failures ? 1 : 0;
}
