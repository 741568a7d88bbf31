/* POST /v1/ingest/{source}: device pushes into the plugin path; see push.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "../plugins/common/multipart.h"
#include "log.h"
#include "metrics.h"
#include "push.h"
#include "util.h"

#define MOD "push"
#define MAX_SNAPSHOTS 8
#define MAX_HEADERS (8 + MAX_SNAPSHOTS)
#define ROUTE_MIN_BODY (64 * 1024)

struct fg_push {
	fg_store *st;
	fg_snapshots *snap;
	fg_ingest **ing;
	struct fg_ratelimit rl;
};

static const char *const accepted_types[] = {
	"application/xml", "text/xml", "application/json", "text/plain",
	"multipart/form-data", "multipart/mixed", "multipart/related",
};

static bool client_listed(const struct fg_conf_source *src, const char *client)
{
	for (size_t i = 0; client && i < src->n_http_clients; i++)
		if (strcmp(src->http_clients[i], client) == 0)
			return true;
	return false;
}

/* Store the pictures of a multipart body; their x-firegrid-snapshot
 * headers go into hdrs (JSON texts in vals, freed by the caller).
 * 0, or -EBADMSG when the body does not parse. */
static int take_pictures(fg_push *p, const char *body, size_t len, const char *boundary,
                         const char *source, struct fg_header *hdrs, size_t *n_hdrs,
                         char **vals, size_t *n_vals)
{
	size_t off = 0, used;
	struct mp_part part;
	int r;
	while ((r = mp_next((const uint8_t *)body + off, len - off, boundary, true, &part,
	                    &used)) == 1) {
		off += used;
		size_t cl;
		const char *ct = mp_header(&part, "content-type", &cl);
		bool image = ct ? mp_type_is(ct, cl, "image/*")
		                : fg_snapshot_type(part.body, part.body_len) != NULL;
		if (image && p->snap && *n_vals < MAX_SNAPSHOTS) {
			struct fg_snapshot sn;
			int s = fg_snapshots_put(p->snap, part.body, part.body_len, fg_now_ms(), &sn);
			if (s < 0) {
				fg_log_rl(&p->rl, FG_LOG_WARN, MOD, "picture refused source=%s bytes=%zu "
				          "err=\"%s\"", source, part.body_len,
				          s == -EINVAL ? "not a JPEG or PNG" : fg_strerror(s));
			} else {
				char name[128] = "";
				size_t dl;
				const char *disp = mp_header(&part, "content-disposition", &dl);
				if (disp)
					mp_param(disp, dl, "name", name, sizeof(name));
				json_t *o = fg_snapshot_ref(p->snap, &sn, name);
				char *v = o ? json_dumps(o, JSON_COMPACT) : NULL;
				json_decref(o);
				if (v) {
					vals[(*n_vals)++] = v;
					hdrs[(*n_hdrs)++] = (struct fg_header){ "x-firegrid-snapshot", v };
				}
			}
		}
		if (!used)
			break;
	}
	return r == -EBADMSG ? -EBADMSG : 0;
}

/* The source's http_auth, realm and digest algorithm; an unknown source
 * keeps the defaults (and is answered 404 once authenticated). */
static void push_auth_cb(void *data, const fg_http_req *req, struct fg_http_auth_policy *pol)
{
	fg_push *p = data;
	const struct fg_conf_source *src = fg_ingest_source(*p->ing,
	                                                    fg_http_req_param(req, "source"));
	if (!src || !src->n_http_clients)
		return;
	pol->mode = src->http_auth;
	pol->realm = src->http_realm;
	pol->digest_alg = src->http_digest_alg;
}

static void push_cb(void *data, fg_http_req *req)
{
	fg_push *p = data;
	const char *source = fg_http_req_param(req, "source");
	const char *client = fg_http_req_client(req);
	const struct fg_conf_source *src = fg_ingest_source(*p->ing, source);
	if (!src || !src->n_http_clients) {
		fg_http_reply_error(req, 404, "source", "no source '%.64s' takes HTTP pushes", source);
		return;
	}
	if (!client_listed(src, client)) {
		fg_metrics_inc("firegrid_http_auth_failures_total", "reason", "forbidden");
		fg_http_reply_error(req, 403, NULL, "client '%s' may not push to source '%s' (not in "
		                    "its http_clients)", client ? client : "", src->name);
		return;
	}
	size_t len = 0;
	const char *body = fg_http_req_body(req, &len);
	if (len > (size_t)src->http_max_body) {
		fg_http_reply_error(req, 413, NULL, "body of %zu bytes exceeds source '%s''s "
		                    "http_max_body of %lld", len, src->name, (long long)src->http_max_body);
		return;
	}
	const char *ct = fg_http_req_header(req, "Content-Type");
	bool ok = false;
	for (size_t i = 0; ct && i < FG_ARRAY_SIZE(accepted_types); i++)
		ok |= mp_type_is(ct, strlen(ct), accepted_types[i]);
	if (!ok) {
		fg_http_reply_error(req, 415, "Content-Type", "%s%.64s%s; expected application/xml, "
		                    "text/xml, application/json, text/plain or multipart",
		                    ct ? "Content-Type '" : "no Content-Type", ct ? ct : "",
		                    ct ? "' is not accepted" : "");
		return;
	}
	if (!len) {
		fg_http_reply_error(req, 400, NULL, "empty body");
		return;
	}

	struct fg_header hdrs[MAX_HEADERS];
	char *vals[MAX_SNAPSHOTS];
	size_t n = 0, n_vals = 0;
	hdrs[n++] = (struct fg_header){ "content-type", ct };
	hdrs[n++] = (struct fg_header){ "x-firegrid-peer", fg_http_req_peer(req) };
	if (client)
		hdrs[n++] = (struct fg_header){ "x-firegrid-client", client };
	const char *ua = fg_http_req_header(req, "User-Agent");
	if (ua)
		hdrs[n++] = (struct fg_header){ "user-agent", ua };

	if (mp_type_is(ct, strlen(ct), "multipart/*")) {
		char boundary[MP_BOUNDARY_MAX + 1];
		if (mp_boundary(ct, boundary, sizeof(boundary)) < 0) {
			fg_http_reply_error(req, 400, "Content-Type", "multipart without a usable boundary");
			return;
		}
		if (take_pictures(p, body, len, boundary, src->name, hdrs, &n, vals, &n_vals) < 0) {
			fg_metrics_inc("firegrid_decode_errors_total", "source", src->name);
			fg_http_reply_error(req, 400, NULL, "malformed multipart body (boundary \"%s\")",
			                    boundary);
			for (size_t i = 0; i < n_vals; i++)
				free(vals[i]);
			return;
		}
	}

	struct fg_msg msg = {
		.struct_size = sizeof(msg),
		.source = src->name,
		.transport = "http",
		.topic = fg_http_req_path(req),
		.payload = (const uint8_t *)body,
		.len = len,
		.headers = hdrs,
		.n_headers = n,
		.recv_time_ms = fg_now_ms(),
	};
	char name[128];
	snprintf(name, sizeof(name), "%s", src->name);   /* src may go with a reload */
	const char *reason = NULL;
	int r = fg_ingest_msg_to(*p->ing, name, &msg, &reason);
	for (size_t i = 0; i < n_vals; i++)
		free(vals[i]);
	if (r < 0) {
		fg_http_reply_error(req, 400, NULL, "source '%s' cannot decode the body: %s", name,
		                    reason ? reason : fg_strerror(r));
		return;
	}
	int c = fg_store_in_txn(p->st) ? fg_store_commit(p->st) : 0;
	if (c < 0) {
		fg_http_reply_error(req, 503, NULL, "cannot store the events: %s", fg_strerror(c));
		return;
	}
	fg_http_reply_json(req, 200, json_pack("{s:i,s:i}", "events", r, "snapshots", (int)n_vals));
}

int fg_push_new(fg_http *http, const struct fg_conf *conf, fg_store *st, fg_snapshots *snap,
                fg_ingest **ing, fg_push **ret)
{
	fg_push *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->st = st;
	p->snap = snap;
	p->ing = ing;
	p->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 10);
	size_t max = ROUTE_MIN_BODY;
	for (size_t i = 0; i < conf->n_sources; i++)
		if (conf->sources[i].n_http_clients && (size_t)conf->sources[i].http_max_body > max)
			max = (size_t)conf->sources[i].http_max_body;
	int r = fg_http_route(http, &(struct fg_http_route){
		.method = "POST", .pattern = "/v1/ingest/{source}", .scope = FG_HTTP_SCOPE_INGEST,
		.max_body = max, .cb = push_cb, .data = p, .auth_cb = push_auth_cb });
	if (r < 0) {
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

void fg_push_free(fg_push *p)
{
	free(p);
}
