/*
 * The HTTP server: libmicrohttpd driven by the libuv loop, with no MHD
 * thread.  Each listen address is one MHD daemon in MHD_USE_EPOLL mode; its
 * epoll fd is watched by a uv_poll, and a uv_timer armed from
 * MHD_get_timeout() runs MHD's timeouts.  Every handler therefore runs on
 * the loop thread, like the rest of firegridd, and may use the store
 * directly.
 *
 * Modules register routes; the server matches them, reads the body (up to
 * a limit: 413), authenticates the client (401) and checks what it may do
 * (403) before the handler sees anything:
 *
 *   static void get_thing_cb(void *data, fg_http_req *req)
 *   {
 *       const char *id = fg_http_req_param(req, "id");
 *       ...
 *       fg_http_reply_json(req, 200, json_pack("{s:s}", "id", id));
 *   }
 *   fg_http_route(http, &(struct fg_http_route){
 *       .method = "GET", .pattern = "/v1/things/{id}",
 *       .scope = FG_HTTP_SCOPE_READ, .cb = get_thing_cb, .data = me });
 *
 * Patterns: literal segments and "{name}" captures of exactly one non-empty
 * segment; no wildcards, exact match (a trailing '/' matters).  A path that
 * matches no pattern is 404; one that matches only with another method is
 * 405 with an Allow header.  The path handed to matching is MHD's, already
 * percent-decoded.
 *
 * Authentication ([client NAME] sections, see conf.h):
 *   - "Authorization: Bearer <token>" with a client's token, or
 *   - Standard Webhooks headers (webhook-id, webhook-timestamp,
 *     webhook-signature) signing "<id>.<timestamp>.<body>" with a client's
 *     whsec_ secret (sign.c), the timestamp within signature_tolerance.
 *   - "Authorization: Basic <base64 user:password>" with a client's username
 *     and password (cameras that push events cannot send tokens).
 *   - "Authorization: Digest ..." (RFC 7616, MD5 or SHA-256, qop=auth) with a
 *     client's username and password, checked by libmicrohttpd (its nonces,
 *     nonce-count replay check, and nonce timeout), only on routes whose
 *     auth_cb asks for it (per source: [source] http_auth = digest).
 * No or bad credentials: 401 (WWW-Authenticate: Bearer, plus Basic on
 * "ingest" routes: devices send credentials only when challenged; a route
 * whose auth_cb restricts the scheme challenges with that scheme only; a
 * digest challenge is a fresh nonce, with stale=true when the request's
 * nonce had expired).  Counted in
 * firegrid_http_auth_failures_total{reason="missing"|"invalid"|"stale"}.  A
 * client not allowed the route's scope: 403.  A route with scope NULL is
 * public.
 *
 * TLS: with [api] tls_cert_file and tls_key_file every listen address
 * speaks HTTPS only (libmicrohttpd with GnuTLS).
 *
 * Handlers reply synchronously, exactly once, with one of the fg_http_reply
 * functions (a handler that returns without replying gets a 500).  A
 * handler that changes state commits it (fg_store_commit) before a 2xx
 * reply, so that a 2xx means durable; the reply is written after the
 * handler returns.
 *
 * Errors are JSON: {"error": "<reason>", "status": <code>} plus "field"
 * naming the offending request field when there is one.
 *
 * Every request is counted in firegrid_http_requests_total{status="..."}.
 * Thread: loop thread only.
 */
#ifndef FG_HTTP_H
#define FG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>
#include "conf.h"

/* uv_loop_t, without pulling uv.h (and its MIN/MAX) into every includer. */
struct uv_loop_s;

/* Scopes a client may be allowed ([client NAME] allow = ...). */
#define FG_HTTP_SCOPE_READ    "read"      /* GET /v1/... */
#define FG_HTTP_SCOPE_ACTIONS "actions"   /* POST /v1/incidents/{id}/actions */
#define FG_HTTP_SCOPE_INGEST  "ingest"    /* device pushes (cameras) */
#define FG_HTTP_SCOPE_METRICS "metrics"   /* GET /metrics when not public */

typedef struct fg_http fg_http;
typedef struct fg_http_req fg_http_req;

typedef void (*fg_http_handler_cb)(void *data, fg_http_req *req);

/* Which credentials a request may use (see fg_http_route.auth_cb). */
struct fg_http_auth_policy {
	int mode;                  /* enum fg_http_auth (conf.h); default any */
	const char *realm;         /* of the challenges; NULL = "firegrid" */
	int digest_alg;            /* enum fg_http_digest_alg, for mode digest */
};

/* Fill *policy (preset to mode any) for a request whose route and captures
 * are known, before it is authenticated.  Strings must stay valid until the
 * request is answered. */
typedef void (*fg_http_auth_cb)(void *data, const fg_http_req *req,
                                struct fg_http_auth_policy *policy);

struct fg_http_route {
	const char *method;        /* "GET", "POST", ... (exact, upper case) */
	const char *pattern;       /* "/v1/incidents/{id}/actions" */
	const char *scope;         /* FG_HTTP_SCOPE_*, or NULL for a public route */
	size_t max_body;           /* bytes; 0 = [api] max_body */
	fg_http_handler_cb cb;
	void *data;
	fg_http_auth_cb auth_cb;   /* NULL: any credentials (mode any) */
};

/* A server for conf's [api] and [client] sections (conf must outlive it, or
 * be replaced with fg_http_set_conf).  Nothing listens until fg_http_start.
 * -EINVAL for a listen address or client secret that does not parse. */
int fg_http_new(struct uv_loop_s *loop, const struct fg_conf *conf, fg_http **ret);

/* Add a route (copied; strings must stay valid while the server lives:
 * pass literals).  Before or after start.  -EINVAL for a bad pattern or a
 * duplicate method + pattern, -ENOMEM. */
int fg_http_route(fg_http *h, const struct fg_http_route *route);

/* Listen on every address of [api] listen.  An address that cannot be
 * bound now (in use, not configured on this host) is logged and retried
 * every few seconds: the API must not keep alarms from flowing.  Returns 0,
 * or -errno only for a failure that retrying cannot fix (out of memory). */
int fg_http_start(fg_http *h);

/* Number of addresses currently listening, and the bound port of the i-th
 * configured address (0 when not bound: useful with port 0 in tests). */
size_t fg_http_listening(fg_http *h);
int fg_http_port(fg_http *h, size_t i);

/* Reload: clients, limits and timeouts of a new conf take effect for new
 * requests; listen addresses change only at the next restart (returns 1
 * when they differ, so the caller can say so).  The old conf may be freed
 * once this returns, whatever it returns: on -EINVAL (a client secret that
 * does not parse) or -ENOMEM no client is known until the next good
 * reload, so every authenticated route answers 401. */
int fg_http_set_conf(fg_http *h, const struct fg_conf *conf);

/* Stop listening, close every connection and handle; done(data) runs from
 * the last close callback.  NULL-safe (done then runs at once). */
void fg_http_close(fg_http *h, void (*done)(void *data), void *data);
/* Free the memory once done() has run.  NULL-safe. */
void fg_http_free(fg_http *h);

/* ---- the request (valid during the handler only) ------------------------ */

const char *fg_http_req_method(const fg_http_req *req);
const char *fg_http_req_path(const fg_http_req *req);
/* A {name} capture of the route pattern; NULL if the pattern has none. */
const char *fg_http_req_param(const fg_http_req *req, const char *name);
/* A query argument (?state=open), percent-decoded; NULL when absent. */
const char *fg_http_req_query(const fg_http_req *req, const char *name);
/* A request header (case-insensitive name); NULL when absent. */
const char *fg_http_req_header(const fg_http_req *req, const char *name);
/* The body, NUL-terminated (an empty string when there is none). */
const char *fg_http_req_body(const fg_http_req *req, size_t *ret_len);
/* Name of the authenticated client, NULL on a public route without
 * credentials. */
const char *fg_http_req_client(const fg_http_req *req);
/* "bearer", "signature", "basic" or "digest" (how the client
 * authenticated), or NULL. */
const char *fg_http_req_auth(const fg_http_req *req);
/* The peer's address ("127.0.0.1", "::1"). */
const char *fg_http_req_peer(const fg_http_req *req);

/* The body as a JSON object (a new reference).  When it is not one, the
 * request has already been answered 400 (with jansson's reason and
 * position) and NULL is returned: just return from the handler. */
json_t *fg_http_req_json(fg_http_req *req);

/* ---- replies (exactly one per request) ---------------------------------- */

/* Add a response header before replying (copied).  0 or -errno. */
int fg_http_reply_header(fg_http_req *req, const char *name, const char *value);
/* body is copied.  0, or -errno (-EALREADY when a reply was queued). */
int fg_http_reply(fg_http_req *req, unsigned status, const char *content_type,
                  const void *body, size_t len);
/* doc (stolen; NULL means out of memory and gives a 500) as compact JSON,
 * Content-Type application/json. */
int fg_http_reply_json(fg_http_req *req, unsigned status, json_t *doc);
/* {"error": <reason>, "status": status[, "field": field]}. */
int fg_http_reply_error(fg_http_req *req, unsigned status, const char *field,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- addresses ------------------------------------------------------------ */

/* Parse "ADDR:PORT" or "[IPV6]:PORT" (IP literals only, port 0..65535).
 * 0 or -EINVAL. */
int fg_http_addr_parse(const char *s, struct sockaddr_storage *ret);
int fg_http_addr_port(const struct sockaddr_storage *ss);
/* True for 127.0.0.0/8 and ::1. */
bool fg_http_addr_is_loopback(const struct sockaddr_storage *ss);

#endif
