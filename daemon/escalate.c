/* The deadline timer (see escalate.h). */
#include <errno.h>
#include <stdlib.h>
#include <uv.h>
#include "escalate.h"
#include "lifecycle.h"
#include "log.h"
#include "util.h"

#define MOD "escalate"
/* Incidents handled per timer run; more wait for the next loop iteration
 * so a burst of deadlines cannot stall MQTT or the API. */
#define RUN_BATCH 64
/* Longest sleep: wall-clock steps are noticed within this. */
#define MAX_SLEEP_MS 60000

struct fg_escalate {
	uv_loop_t *loop;
	uv_timer_t timer;              /* initialised by fg_escalate_start */
	fg_store *st;
	fg_incidents *inc;
	bool started, closing;
	void (*done)(void *data);
	void *done_data;
	struct fg_ratelimit rl;
};

static const char SQL_NEXT[] =
	"SELECT next_due_ms FROM incidents WHERE next_due_ms IS NOT NULL"
	" ORDER BY next_due_ms LIMIT 1";
static const char SQL_DUE[] =
	"SELECT id FROM incidents WHERE next_due_ms IS NOT NULL AND next_due_ms <= ?1"
	" ORDER BY next_due_ms LIMIT ?2";

static const char SQL_POSTPONE[] = "UPDATE incidents SET next_due_ms = ?2 WHERE id = ?1";

static void timer_cb(uv_timer_t *t);

int64_t fg_escalate_next_ms(fg_escalate *e)
{
	sqlite3_stmt *s = fg_store_stmt(e->st, SQL_NEXT);
	int64_t v = INT64_MAX;
	if (s && fg_store_step_row(s) > 0) {
		v = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	}
	return v;
}

static void arm(fg_escalate *e, int64_t delay_ms)
{
	if (delay_ms < 0)
		delay_ms = 0;
	if (delay_ms > MAX_SLEEP_MS)
		delay_ms = MAX_SLEEP_MS;
	uv_timer_start(&e->timer, timer_cb, (uint64_t)delay_ms, 0);
}

void fg_escalate_kick(fg_escalate *e)
{
	if (!e->started || e->closing)
		return;
	int64_t next = fg_escalate_next_ms(e);
	arm(e, next == INT64_MAX ? MAX_SLEEP_MS : next - fg_now_ms());
}

static void commit_cb(void *data)
{
	fg_escalate_kick(data);
}

static void timer_cb(uv_timer_t *t)
{
	fg_escalate *e = t->data;
	int64_t now = fg_now_ms(), ids[RUN_BATCH];
	size_t n = 0;
	sqlite3_stmt *s = fg_store_stmt(e->st, SQL_DUE);
	int r = s ? 0 : -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, now);
		sqlite3_bind_int(s, 2, RUN_BATCH);
		while (n < RUN_BATCH && (r = fg_store_step_row(s)) > 0)
			ids[n++] = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		int rr = fg_incidents_run_due(e->inc, ids[i], now);
		if (rr < 0) {
			/* Try that one again later rather than spin on it. */
			fg_log_rl(&e->rl, FG_LOG_ERR, MOD, "deadline run failed incident=%lld err=\"%s\"",
			          (long long)ids[i], fg_strerror(rr));
			sqlite3_stmt *p = fg_store_begin(e->st) < 0 ? NULL
			                  : fg_store_stmt(e->st, SQL_POSTPONE);
			if (p) {
				sqlite3_bind_int64(p, 1, ids[i]);
				sqlite3_bind_int64(p, 2, now + MAX_SLEEP_MS);
				fg_store_step_done(p);
			}
		}
		else if (rr > 0)
			fg_debug(MOD, "deadline passed incident=%lld revisions=%d", (long long)ids[i], rr);
	}
	if (r < 0)
		fg_log_rl(&e->rl, FG_LOG_ERR, MOD, "cannot read deadlines err=\"%s\"", fg_strerror(r));
	/* The group commit re-arms through the hook; until then, look again
	 * soon (at once when the batch was full), or after a failure wait a
	 * little instead of spinning. */
	if (r >= 0 && n == 0)
		fg_escalate_kick(e);     /* nothing written: no commit will re-arm */
	else
		arm(e, r < 0 ? 1000 : n == RUN_BATCH ? 0 : MAX_SLEEP_MS);
}

int fg_escalate_new(uv_loop_t *loop, fg_store *st, fg_incidents *inc, fg_escalate **ret)
{
	fg_escalate *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->loop = loop;
	e->st = st;
	e->inc = inc;
	e->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 5);
	int r = fg_store_on_commit(st, commit_cb, e);
	if (r < 0) {
		free(e);
		return r;
	}
	*ret = e;
	return 0;
}

int fg_escalate_start(fg_escalate *e)
{
	if (e->started || e->closing)
		return -EALREADY;
	uv_timer_init(e->loop, &e->timer);
	e->timer.data = e;
	e->started = true;
	fg_escalate_kick(e);
	return 0;
}

static void closed_cb(uv_handle_t *h)
{
	fg_escalate *e = h->data;
	if (e->done)
		e->done(e->done_data);
}

void fg_escalate_close(fg_escalate *e, void (*done)(void *data), void *data)
{
	if (!e) {
		if (done)
			done(data);
		return;
	}
	if (e->closing)
		return;
	e->closing = true;
	e->done = done;
	e->done_data = data;
	if (e->started)
		uv_close((uv_handle_t *)&e->timer, closed_cb);
	else if (done)
		done(data);
}

void fg_escalate_free(fg_escalate *e)
{
	free(e);
}
