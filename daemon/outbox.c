/* The webhook outbox (see outbox.h for ordering and ownership). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cloudevent.h"
#include "formats.h"
#include "outbox.h"
#include "snapshot.h"
#include "util.h"

struct fg_outbox {
	fg_store *st;
	const struct fg_conf *conf;
	fg_snapshots *snap;
};

static const char SQL_ENQUEUE[] =
	"INSERT INTO outbox(sink, incident_id, revision, webhook_id, type, priority, body,"
	" created_ms, next_attempt_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";

/* Walks outbox_due in delivery order and stops after LIMIT rows; the index
 * covers every column used, and the correlated NOT EXISTS (SQLite evaluates
 * subquery terms last) is a probe of outbox_incident.  The table, with the
 * bodies, is read only for the rows handed out (SQL_ROW). */
static const char SQL_DUE[] =
	"SELECT o.id FROM outbox AS o INDEXED BY outbox_due"
	" WHERE o.sink = ?1 AND o.next_attempt_ms <= ?2"
	" AND NOT EXISTS (SELECT 1 FROM outbox AS p"
	"  WHERE p.incident_id = o.incident_id AND p.sink = o.sink AND p.id < o.id)"
	" ORDER BY o.priority DESC, o.id LIMIT ?3";

static const char SQL_ROW[] =
	"SELECT id, incident_id, revision, webhook_id, type, body, priority, attempts,"
	" created_ms, next_attempt_ms FROM outbox WHERE id = ?1";

/* Heads only: a row waiting behind an older row of its incident is not
 * going anywhere before that one, whatever its own next_attempt_ms.  Walks
 * outbox_next in time order and stops at the first head, so the cost is
 * the number of blocked rows due before it, not the backlog. */
static const char SQL_NEXT_DUE[] =
	"SELECT o.next_attempt_ms FROM outbox AS o INDEXED BY outbox_next"
	" WHERE o.sink = ?1"
	" AND NOT EXISTS (SELECT 1 FROM outbox AS p"
	"  WHERE p.incident_id = o.incident_id AND p.sink = o.sink AND p.id < o.id)"
	" ORDER BY o.next_attempt_ms LIMIT 1";

static const char SQL_DONE[] = "DELETE FROM outbox WHERE id = ?1";

static const char SQL_RETRY[] =
	"UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_status = ?3,"
	" last_error = ?4 WHERE id = ?1";

static const char SQL_DEAD[] =
	"INSERT INTO dead_letters(sink, incident_id, revision, webhook_id, type, body, status,"
	" response, error, attempts, created_ms, failed_ms)"
	" SELECT sink, incident_id, revision, webhook_id, type, body, ?2, ?3, ?4,"
	" attempts + 1, created_ms, ?5 FROM outbox WHERE id = ?1";

static const char SQL_STATS[] = "SELECT count(*), min(created_ms) FROM outbox";

int fg_outbox_new(fg_store *st, const struct fg_conf *conf, fg_outbox **ret)
{
	fg_outbox *ob = calloc(1, sizeof(*ob));
	if (!ob)
		return -ENOMEM;
	ob->st = st;
	ob->conf = conf;
	*ret = ob;
	return 0;
}

void fg_outbox_set_conf(fg_outbox *ob, const struct fg_conf *conf)
{
	ob->conf = conf;
}

void fg_outbox_set_snapshots(fg_outbox *ob, fg_snapshots *snap)
{
	ob->snap = snap;
}

void fg_outbox_free(fg_outbox *ob)
{
	free(ob);
}

int fg_outbox_enqueue(fg_outbox *ob, const struct fg_incident *inc,
                      const struct fg_ev *trigger, const char *change, int64_t now_ms)
{
	const struct fg_conf *conf = ob->conf;
	size_t admitted = 0;
	if (!conf || !conf->gateway_id || !inc || !change)
		return -EINVAL;
	for (size_t i = 0; i < conf->n_sinks; i++)
		if (inc->severity >= conf->sinks[i].min_severity)
			admitted++;
	if (admitted == 0)
		return 0;

	char webhook_id[192], type[64];
	if ((size_t)snprintf(webhook_id, sizeof(webhook_id), "%s-%lld-%lld", conf->gateway_id,
	                     (long long)inc->id, (long long)inc->revision) >= sizeof(webhook_id) ||
	    (size_t)snprintf(type, sizeof(type), "org.firegrid.incident.%s", change) >= sizeof(type))
		return -ENAMETOOLONG;
	/* One body per format (per sink for pagerduty, whose body holds the
	 * sink's routing key), built once: the bytes are what gets signed, and
	 * a retry re-sends exactly them. */
	char *bodies[3] = { NULL, NULL, NULL };
	int r = fg_store_begin(ob->st), n = 0;
	for (size_t i = 0; r >= 0 && i < conf->n_sinks; i++) {
		const struct fg_conf_sink *sk = &conf->sinks[i];
		if (inc->severity < sk->min_severity)
			continue;
		int fmt = sk->format >= 0 && sk->format < 3 ? sk->format : FG_FORMAT_CLOUDEVENTS;
		bool shared = fmt != FG_FORMAT_PAGERDUTY;
		char *body = shared ? bodies[fmt] : NULL;
		if (!body)
			body = fg_format_body(sk, conf->gateway_id, webhook_id, change, inc, trigger,
			                      now_ms);
		if (!body) {
			r = -ENOMEM;
			break;
		}
		if (shared)
			bodies[fmt] = body;
		/* This sink's own copy with the pictures' bytes, when it wants them
		 * and the body references any (NULL: the shared body as it is). */
		char *own = fmt == FG_FORMAT_CLOUDEVENTS && sk->inline_snapshots_max_bytes > 0 &&
		            ob->snap ? fg_snapshots_inline(ob->snap, body,
		                                           (size_t)sk->inline_snapshots_max_bytes)
		                     : NULL;
		if (own) {
			if (!shared)
				free(body);
			body = own;
			shared = false;
		}
		sqlite3_stmt *s = fg_store_stmt(ob->st, SQL_ENQUEUE);
		if (!s) {
			if (!shared)
				free(body);
			r = -EIO;
			break;
		}
		fg_store_bind_text(s, 1, sk->name);
		sqlite3_bind_int64(s, 2, inc->id);
		sqlite3_bind_int64(s, 3, inc->revision);
		fg_store_bind_text(s, 4, webhook_id);
		fg_store_bind_text(s, 5, type);
		sqlite3_bind_int(s, 6, (int)inc->severity);
		fg_store_bind_text(s, 7, body);
		sqlite3_bind_int64(s, 8, now_ms);
		r = fg_store_step_done(s);
		if (!shared)
			free(body);
		if (r >= 0)
			n++;
	}
	for (size_t f = 0; f < FG_ARRAY_SIZE(bodies); f++)
		free(bodies[f]);
	if (n > 0)
		fg_store_mark_urgent(ob->st);   /* to be delivered: commit promptly */
	return r < 0 ? r : n;
}

void fg_outbox_row_clear(struct fg_outbox_row *row)
{
	if (!row)
		return;
	free(row->sink);
	free(row->webhook_id);
	free(row->type);
	free(row->body);
	memset(row, 0, sizeof(*row));
}

void fg_outbox_rows_free(struct fg_outbox_row *rows, size_t n)
{
	if (!rows)
		return;
	for (size_t i = 0; i < n; i++)
		fg_outbox_row_clear(&rows[i]);
	free(rows);
}

static bool in_skip(int64_t id, const int64_t *skip, size_t n_skip)
{
	for (size_t i = 0; i < n_skip; i++)
		if (skip[i] == id)
			return true;
	return false;
}

static int row_read(sqlite3_stmt *s, const char *sink, struct fg_outbox_row *row)
{
	*row = (struct fg_outbox_row){
		.id = sqlite3_column_int64(s, 0),
		.sink = strdup(sink),
		.incident_id = sqlite3_column_int64(s, 1),
		.revision = sqlite3_column_int64(s, 2),
		.webhook_id = fg_store_column_strdup(s, 3),
		.type = fg_store_column_strdup(s, 4),
		.body = fg_store_column_strdup(s, 5),
		.body_len = (size_t)sqlite3_column_bytes(s, 5),
		.priority = sqlite3_column_int(s, 6),
		.attempts = sqlite3_column_int64(s, 7),
		.created_ms = sqlite3_column_int64(s, 8),
		.next_attempt_ms = sqlite3_column_int64(s, 9),
	};
	if (!row->sink || !row->webhook_id || !row->type || !row->body) {
		fg_outbox_row_clear(row);
		return -ENOMEM;
	}
	return 0;
}

/* In-flight rows (skip[]) still hold their place, so they are fetched and
 * dropped here rather than excluded in SQL: LIMIT grows by n_skip. */
int fg_outbox_due(fg_outbox *ob, const char *sink, int64_t now_ms,
                  const int64_t *skip, size_t n_skip, size_t limit,
                  struct fg_outbox_row **ret, size_t *ret_n)
{
	struct fg_outbox_row *rows = NULL;
	size_t n = 0;
	if (limit == 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	sqlite3_stmt *s = fg_store_stmt(ob->st, SQL_DUE);
	if (!s)
		return -EIO;
	rows = calloc(limit, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	fg_store_bind_text(s, 1, sink);
	sqlite3_bind_int64(s, 2, now_ms);
	sqlite3_bind_int64(s, 3, (int64_t)(limit + n_skip));
	int r = 0;
	size_t n_ids = 0;
	while (n_ids < limit && (r = fg_store_step_row(s)) > 0) {
		int64_t id = sqlite3_column_int64(s, 0);
		if (!in_skip(id, skip, n_skip))
			rows[n_ids++].id = id;
	}
	sqlite3_reset(s);
	for (; r >= 0 && n < n_ids; n++) {
		s = fg_store_stmt(ob->st, SQL_ROW);
		if (!s) {
			r = -EIO;
			break;
		}
		sqlite3_bind_int64(s, 1, rows[n].id);
		r = fg_store_step_row(s);
		if (r == 0)
			r = -EIO;   /* gone within our own transaction: cannot happen */
		if (r > 0) {
			r = row_read(s, sink, &rows[n]);
			sqlite3_reset(s);
		}
	}
	if (r < 0) {
		fg_outbox_rows_free(rows, n);
		return r;
	}
	*ret = rows;
	*ret_n = n;
	return 0;
}

int64_t fg_outbox_next_due_ms(fg_outbox *ob, const char *sink)
{
	sqlite3_stmt *s = fg_store_stmt(ob->st, SQL_NEXT_DUE);
	if (!s)
		return INT64_MAX;
	fg_store_bind_text(s, 1, sink);
	int64_t v = INT64_MAX;
	if (fg_store_step_row(s) > 0) {
		v = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	}
	return v;
}

static int exec_changed(fg_outbox *ob, sqlite3_stmt *s)
{
	int r = fg_store_step_done(s);
	if (r < 0)
		return r;
	return sqlite3_changes(fg_store_db(ob->st)) ? 0 : -ENOENT;
}

int fg_outbox_done(fg_outbox *ob, int64_t id)
{
	int r = fg_store_begin(ob->st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = fg_store_stmt(ob->st, SQL_DONE);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	return exec_changed(ob, s);
}

static void bind_status(sqlite3_stmt *s, int idx, int http_status)
{
	if (http_status > 0)
		sqlite3_bind_int(s, idx, http_status);
	else
		sqlite3_bind_null(s, idx);
}

int fg_outbox_retry(fg_outbox *ob, int64_t id, int64_t next_attempt_ms,
                    int http_status, const char *error)
{
	int r = fg_store_begin(ob->st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = fg_store_stmt(ob->st, SQL_RETRY);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, next_attempt_ms);
	bind_status(s, 3, http_status);
	fg_store_bind_text(s, 4, error);
	return exec_changed(ob, s);
}

int fg_outbox_dead(fg_outbox *ob, int64_t id, int http_status,
                   const char *response_excerpt, const char *error, int64_t now_ms)
{
	int r = fg_store_begin(ob->st);
	if (r < 0)
		return r;
	sqlite3_stmt *s = fg_store_stmt(ob->st, SQL_DEAD);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	bind_status(s, 2, http_status);
	fg_store_bind_text(s, 3, response_excerpt);
	fg_store_bind_text(s, 4, error);
	sqlite3_bind_int64(s, 5, now_ms);
	r = exec_changed(ob, s);
	if (r < 0)
		return r;
	return fg_outbox_done(ob, id);
}

int fg_outbox_stats(fg_outbox *ob, int64_t *ret_depth, int64_t *ret_oldest_created_ms)
{
	sqlite3_stmt *s = fg_store_stmt(ob->st, SQL_STATS);
	if (!s)
		return -EIO;
	int r = fg_store_step_row(s);
	if (r < 0)
		return r;
	if (r > 0) {
		if (ret_depth)
			*ret_depth = sqlite3_column_int64(s, 0);
		if (ret_oldest_created_ms)
			*ret_oldest_created_ms = sqlite3_column_type(s, 1) == SQLITE_NULL
			                         ? 0 : sqlite3_column_int64(s, 1);
		sqlite3_reset(s);
	}
	return 0;
}
