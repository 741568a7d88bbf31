/* The operations-center API: routes on the HTTP server (see api.h and
 * docs/api.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "api.h"
#include "cloudevent.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "registry.h"
#include "util.h"

#define MOD "api"
#define LIST_DEFAULT 100
#define LIST_MAX 1000

struct fg_api {
	fg_http *http;
	const struct fg_conf *conf;
	fg_store *st;
	fg_incidents *inc;
	fg_outbox *ob;
	fg_api_broker_cb broker;
	void *broker_data;
};

/* Every state an incident can be in; "closed" last (not a live gauge). */
static const char *const states[] = {
	FG_STATE_OPEN, FG_STATE_REPORTED, FG_STATE_DISPATCHED, FG_STATE_IN_PROGRESS,
	FG_STATE_RESOLVED, FG_STATE_RETURNED, FG_STATE_REOPENED, FG_STATE_CLOSED,
};

static const char SQL_STATE_COUNTS[] =
	"SELECT state, count(*) FROM incidents WHERE state <> 'closed' GROUP BY state";
static const char SQL_DEAD_COUNT[] = "SELECT count(*) FROM dead_letters";
static const char SQL_LIST[] =
	"SELECT id FROM incidents WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR kind = ?2)"
	" AND opened_ms >= ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5";
static const char SQL_DEVICES[] =
	"SELECT id, source, plugin, first_seen_ms, last_seen_ms, registered, registry_plugin, name,"
	" compound, building, unit, floor, room, grid_small, grid_medium, grid_large, flags, contact"
	" FROM devices WHERE id > ?1 AND (?2 IS NULL OR registered = ?2) ORDER BY id LIMIT ?3";

/* Reads show committed state only (and a failing commit shows up as a
 * store problem right here). */
static int settle(fg_api *api)
{
	return fg_store_in_txn(api->st) ? fg_store_commit(api->st) : 0;
}

static bool store_trouble(fg_api *api, fg_http_req *req, int r)
{
	if (r >= 0)
		return false;
	fg_http_reply_error(req, r == -EBUSY ? 503 : 500, NULL, "store error: %s", fg_strerror(r));
	return true;
}

/* ---- /healthz ------------------------------------------------------------- */

static void healthz_cb(void *data, fg_http_req *req)
{
	fg_api *api = data;
	int sr = settle(api);
	if (sr == 0)
		sr = fg_store_health(api->st);
	int64_t depth = 0, oldest = 0, now = fg_now_ms();
	if (sr == 0)
		sr = fg_outbox_stats(api->ob, &depth, &oldest);
	const char *broker = !api->conf->mqtt_enabled ? "disabled"
	                     : api->broker && api->broker(api->broker_data) ? "connected"
	                     : "disconnected";
	bool ok = sr == 0 && strcmp(broker, "disconnected") != 0;
	json_t *doc = json_pack("{s:s, s:s, s:s, s:{s:I, s:I}}",
	                        "status", ok ? "ok" : "unavailable",
	                        "store", sr == 0 ? "ok" : fg_strerror(sr),
	                        "broker", broker,
	                        "outbox", "pending", (json_int_t)depth,
	                        "oldest_age_s", (json_int_t)(depth && oldest ? (now - oldest) / 1000 : 0));
	fg_http_reply_json(req, ok ? 200 : 503, doc);
}

/* ---- /metrics -------------------------------------------------------------- */

/* Gauges read from the store at scrape time. */
static int store_gauges(fg_api *api)
{
	int64_t counts[FG_ARRAY_SIZE(states)] = { 0 };
	sqlite3_stmt *s = fg_store_stmt(api->st, SQL_STATE_COUNTS);
	if (!s)
		return -EIO;
	int r;
	while ((r = fg_store_step_row(s)) > 0) {
		const char *state = (const char *)sqlite3_column_text(s, 0);
		for (size_t i = 0; state && i < FG_ARRAY_SIZE(states); i++)
			if (strcmp(state, states[i]) == 0)
				counts[i] = sqlite3_column_int64(s, 1);
	}
	if (r < 0)
		return r;
	for (size_t i = 0; i + 1 < FG_ARRAY_SIZE(states); i++)
		fg_metrics_set("firegrid_incidents", "state", states[i], counts[i]);

	int64_t depth = 0, oldest = 0, now = fg_now_ms();
	if ((r = fg_outbox_stats(api->ob, &depth, &oldest)) < 0)
		return r;
	fg_metrics_set("firegrid_outbox_depth", NULL, NULL, depth);
	fg_metrics_set("firegrid_outbox_oldest_age_seconds", NULL, NULL,
	               depth && oldest ? (now - oldest) / 1000 : 0);
	if (!(s = fg_store_stmt(api->st, SQL_DEAD_COUNT)))
		return -EIO;
	if ((r = fg_store_step_row(s)) > 0) {
		fg_metrics_set("firegrid_dead_letters", NULL, NULL, sqlite3_column_int64(s, 0));
		sqlite3_reset(s);
	}
	return r < 0 ? r : 0;
}

struct series {
	const char *key;
	int64_t value;
};

struct series_list {
	struct series *v;
	size_t n, cap;
	bool oom;
};

static void collect_cb(void *data, const char *key, int64_t value)
{
	struct series_list *l = data;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 128;
		struct series *nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv) {
			l->oom = true;
			return;
		}
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = (struct series){ key, value };
}

static size_t family_len(const char *key)
{
	return strcspn(key, "{");
}

/* Series of one family must be adjacent in the exposition: sort by the
 * family name first, then by the whole key. */
static int cmp_series(const void *a, const void *b)
{
	const char *x = ((const struct series *)a)->key, *y = ((const struct series *)b)->key;
	size_t nx = family_len(x), ny = family_len(y);
	int c = strncmp(x, y, nx < ny ? nx : ny);
	if (c == 0 && nx != ny)
		return nx < ny ? -1 : 1;
	return c ? c : strcmp(x, y);
}

static void metrics_cb(void *data, fg_http_req *req)
{
	fg_api *api = data;
	int r = settle(api);
	if (r == 0)
		r = store_gauges(api);
	if (r < 0)
		fg_warn(MOD, "metrics: store gauges unavailable err=\"%s\"", fg_strerror(r));

	struct series_list l = { 0 };
	fg_metrics_each(collect_cb, &l);
	char *text = NULL;
	size_t len = 0;
	FILE *f = l.oom ? NULL : open_memstream(&text, &len);
	if (!f) {
		free(l.v);
		fg_http_reply_error(req, 500, NULL, "out of memory");
		return;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_series);
	for (size_t i = 0; i < l.n; i++) {
		size_t fl = family_len(l.v[i].key);
		if (i == 0 || family_len(l.v[i - 1].key) != fl || strncmp(l.v[i - 1].key, l.v[i].key, fl))
			fprintf(f, "# TYPE %.*s %s\n", (int)fl, l.v[i].key,
			        fl > 6 && strncmp(l.v[i].key + fl - 6, "_total", 6) == 0 ? "counter" : "gauge");
		fprintf(f, "%s %lld\n", l.v[i].key, (long long)l.v[i].value);
	}
	free(l.v);
	if (fclose(f) != 0) {
		free(text);
		fg_http_reply_error(req, 500, NULL, "out of memory");
		return;
	}
	fg_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* ---- incidents --------------------------------------------------------------- */

/* The webhook's incident object with its device and closing time. */
static json_t *incident_view(const struct fg_incident *inc)
{
	json_t *o = fg_cloudevent_incident_json(inc);
	if (o && (json_object_set_new(o, "device", fg_cloudevent_device_json(inc)) < 0 ||
	          json_object_set_new(o, "closed_at", fg_cloudevent_time_json(inc->closed_ms)) < 0)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static bool parse_id(const char *s, int64_t *ret)
{
	int64_t v;
	if (!s || fg_parse_int(s, &v) < 0 || v <= 0 || s[0] == '+')
		return false;
	*ret = v;
	return true;
}

/* ?limit: 1..LIST_MAX.  false after answering 400. */
static bool query_limit(fg_http_req *req, int64_t *ret)
{
	const char *s = fg_http_req_query(req, "limit");
	*ret = LIST_DEFAULT;
	if (s && (fg_parse_int(s, ret) < 0 || *ret < 1 || *ret > LIST_MAX)) {
		fg_http_reply_error(req, 400, "limit", "limit must be an integer in 1..%d", LIST_MAX);
		return false;
	}
	return true;
}

/* ?since: an RFC 3339 time, or a duration back from now ("24h"). */
static bool query_since(fg_http_req *req, int64_t *ret)
{
	const char *s = fg_http_req_query(req, "since");
	int64_t v;
	*ret = 0;
	if (!s)
		return true;
	if (fg_time_parse_iso(s, &v) == 0) {
		*ret = v;
		return true;
	}
	if (fg_parse_duration_ms(s, &v) == 0) {
		*ret = fg_now_ms() - v;
		return true;
	}
	fg_http_reply_error(req, 400, "since", "since must be an RFC 3339 time or a duration "
	                    "such as 30m or 24h");
	return false;
}

static bool known_state(const char *s)
{
	for (size_t i = 0; i < FG_ARRAY_SIZE(states); i++)
		if (strcmp(s, states[i]) == 0)
			return true;
	return false;
}

static void incidents_cb(void *data, fg_http_req *req)
{
	fg_api *api = data;
	const char *state = fg_http_req_query(req, "state");
	const char *kind = fg_http_req_query(req, "kind");
	const char *before_s = fg_http_req_query(req, "before");
	int64_t since, limit, before = INT64_MAX;
	fg_kind k;

	if (state && !known_state(state)) {
		fg_http_reply_error(req, 400, "state", "unknown state '%.32s'", state);
		return;
	}
	if (kind && fg_kind_parse(kind, &k) < 0) {
		fg_http_reply_error(req, 400, "kind", "unknown kind '%.32s'", kind);
		return;
	}
	if (before_s && !parse_id(before_s, &before)) {
		fg_http_reply_error(req, 400, "before", "before must be an incident id");
		return;
	}
	if (!query_since(req, &since) || !query_limit(req, &limit))
		return;
	int r = settle(api);
	sqlite3_stmt *s = r < 0 ? NULL : fg_store_stmt(api->st, SQL_LIST);
	if (store_trouble(api, req, r < 0 ? r : s ? 0 : -EIO))
		return;

	int64_t ids[LIST_MAX];
	size_t n = 0;
	fg_store_bind_text(s, 1, state);
	fg_store_bind_text(s, 2, kind);
	sqlite3_bind_int64(s, 3, since);
	sqlite3_bind_int64(s, 4, before);
	sqlite3_bind_int64(s, 5, limit);
	while ((r = fg_store_step_row(s)) > 0)
		ids[n++] = sqlite3_column_int64(s, 0);
	json_t *list = json_array();
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct fg_incident inc;
		r = fg_incident_get(api->st, ids[i], &inc);
		if (r < 0)
			break;
		if (json_array_append_new(list, incident_view(&inc)) < 0)
			r = -ENOMEM;
		fg_incident_clear(&inc);
	}
	if (store_trouble(api, req, r)) {
		json_decref(list);
		return;
	}
	json_t *next = n == (size_t)limit ? json_integer(ids[n - 1]) : json_null();
	fg_http_reply_json(req, 200, json_pack("{s:o, s:o}", "incidents", list, "next_before", next));
}

static void incident_cb(void *data, fg_http_req *req)
{
	fg_api *api = data;
	int64_t id;
	if (!parse_id(fg_http_req_param(req, "id"), &id)) {
		fg_http_reply_error(req, 400, "id", "incident ids are positive integers");
		return;
	}
	struct fg_incident inc;
	int r = settle(api);
	if (r == 0)
		r = fg_incident_get(api->st, id, &inc);
	if (r == -ENOENT) {
		fg_http_reply_error(req, 404, "id", "no incident %lld", (long long)id);
		return;
	}
	if (store_trouble(api, req, r))
		return;
	json_t *history = NULL;
	r = fg_incident_history_json(api->st, id, &history);
	json_t *view = incident_view(&inc);
	fg_incident_clear(&inc);
	if (store_trouble(api, req, r)) {
		json_decref(view);
		return;
	}
	fg_http_reply_json(req, 200, json_pack("{s:o, s:o}", "incident", view, "history", history));
}

/* ---- actions ------------------------------------------------------------------ */

static void reply_text_json(fg_http_req *req, unsigned status, const char *text)
{
	fg_http_reply(req, status, "application/json", text, strlen(text));
}

/* The answer to an action that was applied: what it did and the incident
 * as it is now. */
static char *action_response(fg_api *api, int64_t id, const struct fg_action_req *a,
                             const struct fg_act_result *res)
{
	struct fg_incident inc;
	if (fg_incident_get(api->st, id, &inc) < 0)
		return NULL;
	json_t *doc = json_pack("{s:{s:s, s:s, s:s, s:s, s:I}, s:o}",
	                        "transition", "action", fg_action_name(a->action),
	                        "action_id", a->action_id, "from", res->from, "to", res->to,
	                        "revision", (json_int_t)res->revision,
	                        "incident", incident_view(&inc));
	fg_incident_clear(&inc);
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))
	                 : NULL;
	json_decref(doc);
	return text;
}

/* A repeated action id: the same request gets the stored answer again; a
 * different request under a used id is a conflict.  true when answered. */
static bool replay(fg_api *api, fg_http_req *req, const struct fg_action_req *a,
                   const char *client, const char *request)
{
	char *pc = NULL, *preq = NULL, *presp = NULL;
	int status = 0;
	int r = fg_action_lookup(api->st, a->action_id, &pc, &preq, &status, &presp);
	if (r == 0)
		return false;
	if (r < 0) {
		store_trouble(api, req, r);
		return true;
	}
	if (strcmp(pc, client) == 0 && strcmp(preq, request) == 0) {
		fg_metrics_inc("firegrid_api_actions_replayed_total", NULL, NULL);
		fg_http_reply_header(req, "Idempotent-Replayed", "true");
		reply_text_json(req, (unsigned)status, presp);
	} else {
		fg_http_reply_error(req, 409, "action_id", "action_id '%.64s' was already used for a "
		                    "different request", a->action_id);
	}
	free(pc);
	free(preq);
	free(presp);
	return true;
}

/* Why the table refused, with the incident's state: 409. */
static void refuse(fg_http_req *req, const struct fg_action_req *a, const struct fg_act_result *res,
                   int r)
{
	const char *to, *why = "not allowed";
	json_t *doc;
	char msg[256];
	if (r == -EBUSY) {
		snprintf(msg, sizeof(msg), "incident %lld is live for the same device and kind; "
		         "act on that one", (long long)res->conflict_id);
		doc = json_pack("{s:s, s:i, s:s, s:s, s:I}", "error", msg, "status", 409,
		                "field", "action", "state", res->from,
		                "conflict_id", (json_int_t)res->conflict_id);
	} else {
		fg_lifecycle_next(res->from, a->action, a->disposition, &to, &why);
		snprintf(msg, sizeof(msg), "cannot %s an incident that is %s: %s",
		         fg_action_name(a->action), res->from, why);
		doc = json_pack("{s:s, s:i, s:s, s:s}", "error", msg, "status", 409, "field", "action",
		                "state", res->from);
	}
	fg_metrics_inc("firegrid_api_actions_refused_total", "action", fg_action_name(a->action));
	fg_http_reply_json(req, 409, doc);
}

static void action_cb(void *data, fg_http_req *req)
{
	fg_api *api = data;
	int64_t id, now = fg_now_ms();
	if (!parse_id(fg_http_req_param(req, "id"), &id)) {
		fg_http_reply_error(req, 400, "id", "incident ids are positive integers");
		return;
	}
	json_t *body = fg_http_req_json(req);
	if (!body)
		return;
	struct fg_action_req a;
	const char *field = NULL;
	char why[200];
	if (fg_action_from_json(body, now, &a, &field, why, sizeof(why)) < 0) {
		fg_http_reply_error(req, 400, field, "%s", why);
		json_decref(body);
		return;
	}
	/* The request as stored for replays: the incident and the body in a
	 * canonical form (sorted keys, compact). */
	const char *client = fg_http_req_client(req) ? fg_http_req_client(req) : "";
	char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	char *request = NULL;
	if (!canon || asprintf(&request, "%lld %s", (long long)id, canon) < 0)
		request = NULL;
	free(canon);
	int r = request ? settle(api) : -ENOMEM;
	if (store_trouble(api, req, r) || replay(api, req, &a, client, request))
		goto out;

	struct fg_act_result res;
	r = fg_incidents_act(api->inc, id, &a, client, now, &res);
	if (r == -ENOENT) {
		fg_http_reply_error(req, 404, "id", "no incident %lld", (long long)id);
		goto out;
	}
	if (r == -EPERM || r == -EBUSY) {
		refuse(req, &a, &res, r);
		goto out;
	}
	char *resp = r < 0 ? NULL : action_response(api, id, &a, &res);
	if (r >= 0 && !resp)
		r = -ENOMEM;
	if (r >= 0)
		r = fg_action_record(api->st, a.action_id, client, id, request, 200, resp, now);
	/* Durable before the 2xx: a lost commit must not look applied. */
	if (r >= 0)
		r = fg_store_commit(api->st);
	else
		fg_store_rollback(api->st);
	if (r < 0) {
		fg_err(MOD, "action not stored incident=%lld action=%s action_id=%s err=\"%s\"",
		       (long long)id, fg_action_name(a.action), a.action_id, fg_strerror(r));
		fg_http_reply_error(req, 503, NULL, "the action could not be stored (%s); retry with "
		                    "the same action_id", fg_strerror(r));
	} else {
		fg_info(MOD, "action incident=%lld action=%s %s -> %s revision=%lld client=%s actor=\"%.64s\"",
		        (long long)id, fg_action_name(a.action), res.from, res.to,
		        (long long)res.revision, client, a.actor);
		fg_metrics_inc("firegrid_api_actions_total", "action", fg_action_name(a.action));
		reply_text_json(req, 200, resp);
	}
	free(resp);
out:
	free(request);
	json_decref(body);
}

/* ---- devices ------------------------------------------------------------------ */

static json_t *time_col(sqlite3_stmt *s, int col)
{
	return fg_cloudevent_time_json(sqlite3_column_type(s, col) == SQLITE_NULL
	                               ? 0 : sqlite3_column_int64(s, col));
}

static void devices_cb(void *data, fg_http_req *req)
{
	fg_api *api = data;
	const char *after = fg_http_req_query(req, "after");
	const char *reg_s = fg_http_req_query(req, "registered");
	int reg = -1;
	int64_t limit;
	if (reg_s && fg_parse_bool(reg_s, &reg) < 0) {
		fg_http_reply_error(req, 400, "registered", "registered must be true or false");
		return;
	}
	if (!query_limit(req, &limit))
		return;
	int r = settle(api);
	sqlite3_stmt *s = r < 0 ? NULL : fg_store_stmt(api->st, SQL_DEVICES);
	if (store_trouble(api, req, r < 0 ? r : s ? 0 : -EIO))
		return;
	fg_store_bind_text(s, 1, after ? after : "");
	if (reg >= 0)
		sqlite3_bind_int(s, 2, reg);
	sqlite3_bind_int64(s, 3, limit);
	json_t *list = json_array();
	int64_t n = 0;
	json_t *last = NULL;
	while ((r = fg_store_step_row(s)) > 0) {
		/* The same device object as in webhooks, plus when it was seen. */
		struct fg_incident view = {
			.device = (char *)sqlite3_column_text(s, 0),
			.source = (char *)sqlite3_column_text(s, 1),
			.plugin = (char *)sqlite3_column_text(s, 2),
			.registered = sqlite3_column_int(s, 5),
		};
		view.reg[FG_REG_DEVICE_ID] = view.device;
		for (int c = FG_REG_PLUGIN; c < FG_REG__COLS; c++)
			view.reg[c] = (char *)sqlite3_column_text(s, 5 + c);
		json_t *d = fg_cloudevent_device_json(&view);
		if (d && !view.plugin && view.reg[FG_REG_PLUGIN])
			json_object_set_new(d, "plugin", json_string(view.reg[FG_REG_PLUGIN]));
		if (d && (json_object_set_new(d, "first_seen_at", time_col(s, 3)) < 0 ||
		          json_object_set_new(d, "last_seen_at", time_col(s, 4)) < 0)) {
			json_decref(d);
			d = NULL;
		}
		if (!d || json_array_append_new(list, d) < 0) {
			sqlite3_reset(s);
			r = -ENOMEM;
			break;
		}
		last = json_object_get(d, "id");
		n++;
	}
	if (store_trouble(api, req, r)) {
		json_decref(list);
		return;
	}
	json_t *next = n == limit && last ? json_copy(last) : json_null();
	fg_http_reply_json(req, 200, json_pack("{s:o, s:o}", "devices", list, "next_after", next));
}

/* ---- lifecycle ----------------------------------------------------------------- */

int fg_api_new(fg_http *http, const struct fg_conf *conf, fg_store *st, fg_incidents *inc,
               fg_outbox *ob, fg_api_broker_cb broker, void *broker_data, fg_api **ret)
{
	fg_api *api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	*api = (struct fg_api){ http, conf, st, inc, ob, broker, broker_data };
	const struct fg_http_route routes[] = {
		{ .method = "GET", .pattern = "/healthz", .cb = healthz_cb },
		{ .method = "GET", .pattern = "/metrics", .scope = FG_HTTP_SCOPE_METRICS,
		  .cb = metrics_cb },
		{ .method = "GET", .pattern = "/v1/incidents", .scope = FG_HTTP_SCOPE_READ,
		  .cb = incidents_cb },
		{ .method = "GET", .pattern = "/v1/incidents/{id}", .scope = FG_HTTP_SCOPE_READ,
		  .cb = incident_cb },
		{ .method = "GET", .pattern = "/v1/devices", .scope = FG_HTTP_SCOPE_READ,
		  .cb = devices_cb },
		{ .method = "POST", .pattern = "/v1/incidents/{id}/actions",
		  .scope = FG_HTTP_SCOPE_ACTIONS, .cb = action_cb },
	};
	for (size_t i = 0; i < FG_ARRAY_SIZE(routes); i++) {
		struct fg_http_route r = routes[i];
		r.data = api;
		int rr = fg_http_route(http, &r);
		if (rr < 0) {
			free(api);
			return rr;
		}
	}
	*ret = api;
	return 0;
}

void fg_api_set_conf(fg_api *api, const struct fg_conf *conf)
{
	api->conf = conf;
}

void fg_api_free(fg_api *api)
{
	free(api);
}
