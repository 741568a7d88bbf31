/* The HTTP server: libmicrohttpd in external epoll mode on the libuv loop
 * (see http.h for routing, authentication and reply rules). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <uv.h>
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "sign.h"
#include "util.h"

#define MOD "http"
/* A listen address that cannot be bound is tried again this often. */
#define RETRY_BIND_MS 5000
#define MAX_PARAMS 4
#define MAX_SEGMENTS 16
#define MAX_HEADERS 8
/* Digest nonces: how long one is good for (then the client gets stale=true
 * and retries with a fresh one), and how many libmicrohttpd remembers per
 * listen address for its nonce-count replay check (a camera whose nonce was
 * pushed out by others' is challenged again). */
#define DIGEST_NONCE_TIMEOUT_S 300
#define DIGEST_NONCE_SLOTS 1024
#define DEFAULT_REALM "firegrid"

struct route {
	struct fg_http_route r;
};

/* A client's credentials, the secret decoded once. */
struct client_key {
	const struct fg_conf_client *conf;
	uint8_t key[FG_SIGN_KEY_MAX];
	size_t key_len;            /* 0: no secret */
};

struct listener {
	fg_http *h;
	size_t index;
	struct sockaddr_storage addr;
	char label[80];            /* the address as configured */
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;          /* MHD timeouts, or the next bind attempt */
	bool poll_init;
	int port;
	char last_error[160];      /* MHD's last log line, for the bind error */
	struct fg_ratelimit rl;
};

struct fg_http {
	uv_loop_t *loop;
	const struct fg_conf *conf;
	struct route *routes;
	size_t n_routes;
	struct client_key *keys;
	size_t n_keys;
	struct listener *ls;
	size_t n_ls;
	bool started, closing;
	char *tls_key, *tls_cert;  /* PEM text ([api] tls_*_file), NULL = plain HTTP */
	size_t open_handles;
	uint8_t digest_rnd[32];    /* server secret of the digest nonces */
	void (*done)(void *data);
	void *done_data;
	struct fg_ratelimit rl_req;
};

/* A digest challenge to send with a 401 (libmicrohttpd makes the nonce). */
struct digest_challenge {
	const char *realm;
	int alg;                   /* enum fg_http_digest_alg */
	bool stale;
};

struct reply_header {
	char *name, *value;
};

struct fg_http_req {
	fg_http *h;
	struct listener *l;
	struct MHD_Connection *conn;
	const struct route *route;
	const char *method;
	const char *path;
	struct {
		const char *name;      /* points into the route pattern */
		size_t name_len;
		char *value;
	} params[MAX_PARAMS];
	size_t n_params;
	char *body;
	size_t len, max_body;
	bool too_big;
	bool in_handler;
	const struct fg_conf_client *client;
	const char *auth;
	struct reply_header headers[MAX_HEADERS];
	size_t n_headers;
	bool replied;
	enum MHD_Result queued;    /* result of MHD_queue_response */
	char peer[INET6_ADDRSTRLEN];
};

static int reply_json(fg_http_req *req, unsigned status, json_t *doc,
                      const struct digest_challenge *dc);

/* ---- addresses ------------------------------------------------------------ */

int fg_http_addr_parse(const char *s, struct sockaddr_storage *ret)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_s;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));

	if (!s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		port_s = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host) || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port_s = colon + 1;
	}
	char *end;
	errno = 0;
	long port = strtol(port_s, &end, 10);
	if (!*port_s || *end || errno || port < 0 || port > 65535 || port_s[0] == '+' ||
	    port_s[0] == '-' || port_s[0] == ' ')
		return -EINVAL;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (s[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	} else if (s[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
	} else {
		return -EINVAL;
	}
	*ret = ss;
	return 0;
}

int fg_http_addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

bool fg_http_addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

/* ---- routes ----------------------------------------------------------------- */

/* Next '/'-separated segment of *p (without the slash); false at the end. */
static bool next_segment(const char **p, const char **seg, size_t *len)
{
	if (**p != '/')
		return false;
	*seg = *p + 1;
	*len = strcspn(*seg, "/");
	*p = *seg + *len;
	return true;
}

static bool pattern_valid(const char *pattern)
{
	const char *p = pattern, *seg;
	size_t len, n = 0, captures = 0;
	if (!pattern || pattern[0] != '/')
		return false;
	while (next_segment(&p, &seg, &len)) {
		if (++n > MAX_SEGMENTS)
			return false;
		bool open = len && seg[0] == '{', close = len && seg[len - 1] == '}';
		if (open != close || (open && len < 3))
			return false;
		if (memchr(seg + open, '{', len - open) || memchr(seg, '}', len - close))
			return false;
		captures += open;
	}
	return *p == '\0' && captures <= MAX_PARAMS;
}

/* Does path match pattern?  Fills the captures of req when it does. */
static bool route_match(const char *pattern, const char *path, fg_http_req *req)
{
	const char *pp = pattern, *qp = path, *ps, *qs;
	size_t pl, ql, n = 0;
	struct { const char *name; size_t name_len; const char *v; size_t vl; } caps[MAX_PARAMS];

	for (;;) {
		bool more_p = next_segment(&pp, &ps, &pl);
		bool more_q = next_segment(&qp, &qs, &ql);
		if (!more_p || !more_q) {
			if (more_p || more_q || *pp || *qp)
				return false;
			break;
		}
		if (pl >= 2 && ps[0] == '{') {
			if (ql == 0 || n == MAX_PARAMS)
				return false;
			caps[n].name = ps + 1;
			caps[n].name_len = pl - 2;
			caps[n].v = qs;
			caps[n].vl = ql;
			n++;
		} else if (pl != ql || memcmp(ps, qs, pl) != 0) {
			return false;
		}
	}
	if (!req)
		return true;
	for (size_t i = 0; i < n; i++) {
		req->params[i].name = caps[i].name;
		req->params[i].name_len = caps[i].name_len;
		req->params[i].value = strndup(caps[i].v, caps[i].vl);
		if (!req->params[i].value) {
			req->n_params = i;
			return false;
		}
	}
	req->n_params = n;
	return true;
}

int fg_http_route(fg_http *h, const struct fg_http_route *route)
{
	if (!route || !route->method || !route->cb || !pattern_valid(route->pattern))
		return -EINVAL;
	for (size_t i = 0; i < h->n_routes; i++)
		if (strcmp(h->routes[i].r.method, route->method) == 0 &&
		    strcmp(h->routes[i].r.pattern, route->pattern) == 0)
			return -EINVAL;
	struct route *rs = realloc(h->routes, (h->n_routes + 1) * sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	h->routes = rs;
	h->routes[h->n_routes++].r = *route;
	return 0;
}

/* ---- clients -------------------------------------------------------------- */

static void keys_free(struct client_key *keys, size_t n)
{
	if (keys)
		OPENSSL_cleanse(keys, n * sizeof(*keys));
	free(keys);
}

static int keys_build(const struct fg_conf *conf, struct client_key **ret, size_t *ret_n)
{
	struct client_key *keys = calloc(conf->n_clients ? conf->n_clients : 1, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < conf->n_clients; i++) {
		keys[i].conf = &conf->clients[i];
		if (conf->clients[i].secret &&
		    fg_sign_key_decode(conf->clients[i].secret, keys[i].key, &keys[i].key_len) < 0) {
			keys_free(keys, conf->n_clients);
			return -EINVAL;
		}
	}
	*ret = keys;
	*ret_n = conf->n_clients;
	return 0;
}

static bool client_allows(const struct fg_conf_client *c, const char *scope)
{
	for (size_t i = 0; i < c->n_allow; i++)
		if (strcmp(c->allow[i], scope) == 0)
			return true;
	return false;
}

/* Constant time in the token's content; lengths may differ openly. */
static bool token_equal(const char *a, const char *b, size_t blen)
{
	return strlen(a) == blen && CRYPTO_memcmp(a, b, blen) == 0;
}

/* HTTP Basic (RFC 7617) against the clients that have a username: the
 * cameras that push events and cannot send a token. */
static int authenticate_basic(fg_http *h, const char *b64, const struct fg_conf_client **ret,
                              const char **how, const char **why)
{
	while (*b64 == ' ')
		b64++;
	size_t n = strcspn(b64, " ");
	unsigned char dec[512];
	if (n == 0 || n % 4 || n / 4 * 3 >= sizeof(dec)) {
		*why = "Basic credentials are not base64 of user:password";
		return -EACCES;
	}
	int len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
	if (len < 0) {
		*why = "Basic credentials are not base64 of user:password";
		return -EACCES;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes */
	for (size_t pad = n; pad > 0 && b64[pad - 1] == '='; pad--)
		len--;
	dec[len < 0 ? 0 : len] = '\0';
	char *colon = memchr(dec, ':', (size_t)(len < 0 ? 0 : len));
	if (!colon) {
		OPENSSL_cleanse(dec, sizeof(dec));
		*why = "Basic credentials are not base64 of user:password";
		return -EACCES;
	}
	*colon = '\0';
	const char *user = (const char *)dec, *pass = colon + 1;
	int r = -EACCES;
	*why = "unknown user name or wrong password";
	for (size_t i = 0; i < h->n_keys && r < 0; i++) {
		const struct fg_conf_client *c = h->keys[i].conf;
		if (c->username && c->password && strcmp(c->username, user) == 0 &&
		    token_equal(c->password, pass, strlen(pass))) {
			*ret = c;
			*how = "basic";
			r = 0;
		}
	}
	OPENSSL_cleanse(dec, sizeof(dec));
	return r;
}

/* 0 and the client, -ENOENT when the request carries no credentials,
 * -EACCES when they are wrong (*why says how). */
static int authenticate(fg_http_req *req, const struct fg_conf_client **ret, const char **how,
                        const char **why)
{
	fg_http *h = req->h;
	const char *authz = fg_http_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *sig = fg_http_req_header(req, "webhook-signature");

	if (authz && strncasecmp(authz, "Basic ", 6) == 0)
		return authenticate_basic(h, authz + 6, ret, how, why);
	if (authz) {
		if (strncasecmp(authz, "Bearer ", 7) != 0) {
			*why = "Authorization must be 'Bearer <token>' (or 'Basic' for a client with a "
			       "username)";
			return -EACCES;
		}
		const char *tok = authz + 7;
		while (*tok == ' ')
			tok++;
		size_t n = strlen(tok);
		while (n && tok[n - 1] == ' ')
			n--;
		for (size_t i = 0; i < h->n_keys; i++) {
			const struct fg_conf_client *c = h->keys[i].conf;
			if (c->token && token_equal(c->token, tok, n)) {
				*ret = c;
				*how = "bearer";
				return 0;
			}
		}
		*why = "unknown bearer token";
		return -EACCES;
	}
	if (!sig)
		return -ENOENT;

	const char *id = fg_http_req_header(req, "webhook-id");
	const char *ts_s = fg_http_req_header(req, "webhook-timestamp");
	char *end;
	if (!id || !*id || !ts_s || !*ts_s) {
		*why = "a signed request needs webhook-id and webhook-timestamp";
		return -EACCES;
	}
	errno = 0;
	long long ts = strtoll(ts_s, &end, 10);
	if (errno || *end || ts <= 0) {
		*why = "webhook-timestamp is not a Unix time in seconds";
		return -EACCES;
	}
	int64_t skew_ms = fg_now_ms() - (int64_t)ts * 1000;
	if (skew_ms < 0)
		skew_ms = -skew_ms;
	if (skew_ms > h->conf->api_signature_tolerance_ms) {
		*why = "webhook-timestamp is outside the accepted tolerance";
		return -EACCES;
	}
	for (size_t i = 0; i < h->n_keys; i++) {
		if (!h->keys[i].key_len)
			continue;
		if (fg_sign_verify(h->keys[i].key, h->keys[i].key_len, id, (int64_t)ts,
		                   req->body ? req->body : "", req->len, sig) == 0) {
			*ret = h->keys[i].conf;
			*how = "signature";
			return 0;
		}
	}
	*why = "no client's secret verifies webhook-signature";
	return -EACCES;
}

/* HTTP Digest (RFC 7616) by libmicrohttpd, for the client with the user
 * name the request gives (user names of digest clients are unique: conf.c).
 * 0 and the client; -ENOENT without Digest credentials; -ESTALE when the
 * nonce has expired (the client should retry with a fresh one); -EACCES. */
static int authenticate_digest(fg_http_req *req, const struct fg_http_auth_policy *pol,
                               const struct fg_conf_client **ret, const char **how,
                               const char **why)
{
	fg_http *h = req->h;
	const char *authz = fg_http_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!authz)
		return -ENOENT;
	if (strncasecmp(authz, "Digest ", 7) != 0) {
		*why = "this source takes HTTP Digest credentials only";
		return -EACCES;
	}
	char *user = MHD_digest_auth_get_username(req->conn);
	const struct fg_conf_client *c = NULL;
	for (size_t i = 0; user && i < h->n_keys && !c; i++)
		if (h->keys[i].conf->username && h->keys[i].conf->password &&
		    strcmp(h->keys[i].conf->username, user) == 0)
			c = h->keys[i].conf;
	int ok = c ? MHD_digest_auth_check2(req->conn, pol->realm, user, c->password,
	                                    DIGEST_NONCE_TIMEOUT_S,
	                                    pol->digest_alg == FG_HTTP_DIGEST_SHA256
	                                    ? MHD_DIGEST_ALG_SHA256 : MHD_DIGEST_ALG_MD5)
	           : MHD_NO;
	MHD_free(user);
	if (ok == MHD_YES) {
		*ret = c;
		*how = "digest";
		return 0;
	}
	if (ok == MHD_INVALID_NONCE) {
		*why = "digest nonce expired or unknown; retry with the new one";
		return -ESTALE;
	}
	*why = "unknown user name or wrong password (or a replayed or foreign nonce)";
	return -EACCES;
}

/* Does a credential of kind `how` satisfy the policy's mode? */
static bool mode_accepts(int mode, const char *how)
{
	switch (mode) {
	case FG_HTTP_AUTH_BASIC:
		return strcmp(how, "basic") == 0;
	case FG_HTTP_AUTH_BEARER:
		return strcmp(how, "bearer") == 0;
	case FG_HTTP_AUTH_DIGEST:
		return strcmp(how, "digest") == 0;
	default:
		return true;
	}
}

/* 401 with the challenges the route's policy allows. */
static void reply_unauthorized(fg_http_req *req, const struct fg_http_auth_policy *pol, int a,
                               const char *why)
{
	const char *scope = req->route->r.scope;
	fg_metrics_inc("firegrid_http_auth_failures_total", "reason",
	               a == -ENOENT ? "missing" : a == -ESTALE ? "stale" : "invalid");
	json_t *doc = json_pack("{s:s, s:i}", "error", why, "status", 401);
	if (pol->mode == FG_HTTP_AUTH_DIGEST) {
		struct digest_challenge dc = { pol->realm, pol->digest_alg, a == -ESTALE };
		reply_json(req, 401, doc, &dc);
		return;
	}
	char basic[128];
	snprintf(basic, sizeof(basic), "Basic realm=\"%s\", charset=\"UTF-8\"", pol->realm);
	if (pol->mode != FG_HTTP_AUTH_BASIC)
		fg_http_reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"firegrid\"");
	/* devices that push ask for credentials only when challenged */
	if (pol->mode == FG_HTTP_AUTH_BASIC ||
	    (pol->mode == FG_HTTP_AUTH_ANY && strcmp(scope, FG_HTTP_SCOPE_INGEST) == 0))
		fg_http_reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, basic);
	fg_http_reply_json(req, 401, doc);
}

static bool scope_public(fg_http *h, const char *scope)
{
	return !scope || (h->conf->api_metrics_public && strcmp(scope, FG_HTTP_SCOPE_METRICS) == 0);
}

/* ---- replies ----------------------------------------------------------------- */

int fg_http_reply_header(fg_http_req *req, const char *name, const char *value)
{
	if (req->replied)
		return -EALREADY;
	if (req->n_headers == MAX_HEADERS)
		return -ENOSPC;
	struct reply_header *rh = &req->headers[req->n_headers];
	rh->name = strdup(name);
	rh->value = strdup(value);
	if (!rh->name || !rh->value) {
		free(rh->name);
		free(rh->value);
		return -ENOMEM;
	}
	req->n_headers++;
	return 0;
}

static int reply(fg_http_req *req, unsigned status, const char *content_type, const void *body,
                 size_t len, const struct digest_challenge *dc)
{
	if (req->replied)
		return -EALREADY;
	req->replied = true;
	req->queued = MHD_NO;
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body,
	                                                            MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return -ENOMEM;
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	for (size_t i = 0; i < req->n_headers; i++)
		MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value);
	if (dc)
		/* The opaque value is echoed by clients and not checked: the
		 * nonce carries what matters (time, method, URI, realm). */
		req->queued = MHD_queue_auth_fail_response2(
			req->conn, dc->realm, "66697265677269640a", resp, dc->stale ? MHD_YES : MHD_NO,
			dc->alg == FG_HTTP_DIGEST_SHA256 ? MHD_DIGEST_ALG_SHA256 : MHD_DIGEST_ALG_MD5);
	else
		req->queued = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);

	char code[8];
	snprintf(code, sizeof(code), "%u", status);
	fg_metrics_inc("firegrid_http_requests_total", "status", code);
	if (status >= 400 && status != 404)
		fg_log_rl(&req->h->rl_req, status >= 500 ? FG_LOG_WARN : FG_LOG_INFO, MOD,
		          "request refused method=%s path=\"%.80s\" peer=%s client=%s status=%u",
		          req->method, req->path, req->peer,
		          req->client ? req->client->name : "-", status);
	return req->queued == MHD_YES ? 0 : -EIO;
}

int fg_http_reply(fg_http_req *req, unsigned status, const char *content_type,
                  const void *body, size_t len)
{
	return reply(req, status, content_type, body, len, NULL);
}

static int reply_json(fg_http_req *req, unsigned status, json_t *doc,
                      const struct digest_challenge *dc)
{
	static const char oom[] = "{\"error\":\"out of memory\",\"status\":500}";
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(doc);
	if (!text)
		return reply(req, 500, "application/json", oom, sizeof(oom) - 1, NULL);
	int r = reply(req, status, "application/json", text, strlen(text), dc);
	free(text);
	return r;
}

int fg_http_reply_json(fg_http_req *req, unsigned status, json_t *doc)
{
	return reply_json(req, status, doc, NULL);
}

int fg_http_reply_error(fg_http_req *req, unsigned status, const char *field,
                        const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	json_t *doc = json_pack("{s:s, s:i}", "error", why, "status", (int)status);
	if (doc && field)
		json_object_set_new(doc, "field", json_string(field));
	return fg_http_reply_json(req, status, doc);
}

/* ---- request accessors ----------------------------------------------------- */

const char *fg_http_req_method(const fg_http_req *req)
{
	return req->method;
}

const char *fg_http_req_path(const fg_http_req *req)
{
	return req->path;
}

const char *fg_http_req_param(const fg_http_req *req, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < req->n_params; i++)
		if (req->params[i].name_len == n && memcmp(req->params[i].name, name, n) == 0)
			return req->params[i].value;
	return NULL;
}

const char *fg_http_req_query(const fg_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *fg_http_req_header(const fg_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *fg_http_req_body(const fg_http_req *req, size_t *ret_len)
{
	if (ret_len)
		*ret_len = req->len;
	return req->body ? req->body : "";
}

const char *fg_http_req_client(const fg_http_req *req)
{
	return req->client ? req->client->name : NULL;
}

const char *fg_http_req_auth(const fg_http_req *req)
{
	return req->auth;
}

const char *fg_http_req_peer(const fg_http_req *req)
{
	return req->peer;
}

json_t *fg_http_req_json(fg_http_req *req)
{
	json_error_t jerr;
	if (!req->len) {
		fg_http_reply_error(req, 400, NULL, "the request needs a JSON object body");
		return NULL;
	}
	json_t *doc = json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		fg_http_reply_error(req, 400, NULL, "body is not JSON: %s (line %d, column %d)",
		                    jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		fg_http_reply_error(req, 400, NULL, "body must be a JSON object");
		return NULL;
	}
	return doc;
}

/* ---- MHD callbacks ----------------------------------------------------------- */

static void req_free(fg_http_req *req)
{
	if (!req)
		return;
	for (size_t i = 0; i < req->n_params; i++)
		free(req->params[i].value);
	for (size_t i = 0; i < req->n_headers; i++) {
		free(req->headers[i].name);
		free(req->headers[i].value);
	}
	free(req->body);
	free(req);
}

static void peer_name(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(buf, len, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
		          (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
		          (socklen_t)len);
}

/* First call for a request: find its route.  Returns the route, or NULL
 * after answering 404/405. */
static const struct route *find_route(fg_http_req *req)
{
	fg_http *h = req->h;
	char allow[64] = "";
	for (size_t i = 0; i < h->n_routes; i++) {
		const struct route *rt = &h->routes[i];
		if (!route_match(rt->r.pattern, req->path, NULL))
			continue;
		if (strcmp(rt->r.method, req->method) == 0)
			return route_match(rt->r.pattern, req->path, req) ? rt : NULL;
		size_t n = strlen(allow);
		if (!strstr(allow, rt->r.method))
			snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", rt->r.method);
	}
	if (*allow) {
		fg_http_reply_header(req, MHD_HTTP_HEADER_ALLOW, allow);
		fg_http_reply_error(req, 405, NULL, "method %s not allowed here (allowed: %s)",
		                    req->method, allow);
	} else {
		fg_http_reply_error(req, 404, NULL, "no such resource");
	}
	return NULL;
}

static bool parse_size(const char *s, uint64_t *ret)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

static void run_handler(fg_http_req *req)
{
	fg_http *h = req->h;
	const struct fg_http_route *r = &req->route->r;

	if (req->too_big) {
		fg_http_reply_error(req, 413, NULL, "request body larger than %zu bytes", req->max_body);
		return;
	}
	const struct fg_conf_client *client = NULL;
	const char *how = NULL, *why = "credentials required";
	struct fg_http_auth_policy pol = { .mode = FG_HTTP_AUTH_ANY };
	if (r->auth_cb)
		r->auth_cb(r->data, req, &pol);
	if (!pol.realm)
		pol.realm = DEFAULT_REALM;
	int a = pol.mode == FG_HTTP_AUTH_DIGEST ? authenticate_digest(req, &pol, &client, &how, &why)
	                                        : authenticate(req, &client, &how, &why);
	if (a == 0 && !mode_accepts(pol.mode, how)) {
		a = -EACCES;
		why = pol.mode == FG_HTTP_AUTH_BASIC ? "this source takes HTTP Basic credentials only"
		                                     : "this source takes a bearer token only";
	}
	if (a == 0) {
		req->client = client;
		req->auth = how;
	}
	if (!scope_public(h, r->scope)) {
		if (a < 0) {
			reply_unauthorized(req, &pol, a, why);
			return;
		}
		if (!client_allows(client, r->scope)) {
			fg_metrics_inc("firegrid_http_auth_failures_total", "reason", "forbidden");
			fg_http_reply_error(req, 403, NULL, "client '%s' is not allowed '%s'",
			                    client->name, r->scope);
			return;
		}
	}
	req->in_handler = true;
	r->cb(r->data, req);
	req->in_handler = false;
	if (!req->replied) {
		fg_log(FG_LOG_ERR, MOD, "handler gave no reply method=%s path=\"%.80s\"", req->method,
		       req->path);
		fg_http_reply_error(req, 500, NULL, "internal error");
	}
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
	struct listener *l = cls;
	fg_http *h = l->h;
	fg_http_req *req = *con_cls;

	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		req->h = h;
		req->l = l;
		req->conn = c;
		req->method = method;
		req->path = url;
		peer_name(c, req->peer, sizeof(req->peer));
		req->route = find_route(req);
		if (!req->route)
			return req->replied ? req->queued : MHD_NO;
		req->max_body = req->route->r.max_body ? req->route->r.max_body
		                                       : (size_t)h->conf->api_max_body;
		uint64_t declared;
		if (parse_size(fg_http_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH), &declared) &&
		    declared > req->max_body) {
			/* Refused before reading: MHD closes the connection after the
			 * reply instead of draining the body. */
			fg_http_reply_error(req, 413, NULL, "request body larger than %zu bytes",
			                    req->max_body);
			return req->queued;
		}
		return MHD_YES;
	}
	if (req->replied)
		return req->queued;
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (req->too_big || req->len + n > req->max_body) {
			/* Chunked (or lying) bodies: keep reading, answer 413 at the
			 * end; the idle timeout bounds a client that never ends. */
			req->too_big = true;
			return MHD_YES;
		}
		char *nb = realloc(req->body, req->len + n + 1);
		if (!nb)
			return MHD_NO;
		memcpy(nb + req->len, upload_data, n);
		req->body = nb;
		req->len += n;
		req->body[req->len] = '\0';
		return MHD_YES;
	}
	run_handler(req);
	return req->queued;
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	req_free(*con_cls);
	*con_cls = NULL;
}

/* MHD hands us its own printf format (MHD_OPTION_EXTERNAL_LOGGER). */
static void mhd_log_cb(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	struct listener *l = cls;
	vsnprintf(l->last_error, sizeof(l->last_error), fmt, ap);
	size_t n = strlen(l->last_error);
	while (n && (l->last_error[n - 1] == '\n' || l->last_error[n - 1] == ' '))
		l->last_error[--n] = '\0';
	if (l->mhd)
		fg_log_rl(&l->rl, FG_LOG_WARN, MOD, "listen=%s libmicrohttpd: %s", l->label,
		          l->last_error);
}

/* ---- the loop ----------------------------------------------------------------- */

static void timer_cb(uv_timer_t *t);

static unsigned connections(struct listener *l)
{
	const union MHD_DaemonInfo *ci =
		MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return ci ? ci->num_connections : 0;
}

/* After MHD worked: when must it run again even without socket activity?
 * While connections are open, at least every second: libmicrohttpd
 * 0.9.75 in external epoll mode does not always ask for the run that
 * takes up work again (see run()). */
static void arm(struct listener *l)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(l->mhd, &ms) != MHD_YES)
		ms = connections(l) ? 1000 : UINT64_MAX;
	if (ms == UINT64_MAX)
		uv_timer_stop(&l->timer);
	else
		uv_timer_start(&l->timer, timer_cb, ms > 1000 ? 1000 : (uint64_t)ms, 0);
}

static void run(struct listener *l)
{
	if (l->h->closing || !l->mhd)
		return;
	unsigned before = connections(l);
	MHD_run(l->mhd);
	/* A daemon at its connection limit takes its listen socket out of
	 * epoll and puts it back only in the run after connections were
	 * cleaned up, without saying so through MHD_get_timeout(): when
	 * connections went away, run once more so waiting clients get in. */
	if (connections(l) < before)
		MHD_run(l->mhd);
	arm(l);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	run(p->data);
}

static int listener_bind(struct listener *l);

static void timer_cb(uv_timer_t *t)
{
	struct listener *l = t->data;
	if (l->h->closing)
		return;
	if (l->mhd)
		run(l);
	else if (listener_bind(l) < 0)
		uv_timer_start(&l->timer, timer_cb, RETRY_BIND_MS, 0);
}

static int listener_bind(struct listener *l)
{
	fg_http *h = l->h;
	const struct fg_conf *conf = h->conf;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (l->addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key },
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert },
		{ MHD_OPTION_END, 0, NULL },
	};
	if (h->tls_key)
		flags |= MHD_USE_TLS;
	l->last_error[0] = '\0';
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, (uint16_t)fg_http_addr_port(&l->addr), NULL, NULL, access_cb, l,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&l->addr,
		MHD_OPTION_NOTIFY_COMPLETED, completed_cb, l,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, l,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)conf->api_connection_limit,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((conf->api_idle_timeout_ms + 999) / 1000),
		MHD_OPTION_DIGEST_AUTH_RANDOM, sizeof(h->digest_rnd), h->digest_rnd,
		MHD_OPTION_NONCE_NC_SIZE, (unsigned)DIGEST_NONCE_SLOTS,
		MHD_OPTION_ARRAY, h->tls_key ? tls : tls + 2,
		MHD_OPTION_END);
	if (!d) {
		fg_log_rl(&l->rl, FG_LOG_ERR, MOD, "cannot listen listen=%s err=\"%s\"; retrying",
		          l->label, l->last_error[0] ? l->last_error : "unknown");
		return -EADDRNOTAVAIL;
	}
	const union MHD_DaemonInfo *ei = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	const union MHD_DaemonInfo *pi = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!ei || uv_poll_init(h->loop, &l->poll, ei->epoll_fd) < 0) {
		MHD_stop_daemon(d);
		fg_log(FG_LOG_ERR, MOD, "cannot watch the server's epoll fd listen=%s", l->label);
		return -EIO;
	}
	l->poll_init = true;
	h->open_handles++;
	l->poll.data = l;
	l->mhd = d;
	l->port = pi ? pi->port : fg_http_addr_port(&l->addr);
	uv_poll_start(&l->poll, UV_READABLE, poll_cb);
	arm(l);
	fg_info(MOD, "listening listen=%s port=%d%s%s", l->label, l->port, h->tls_key ? " tls" : "",
	        fg_http_addr_is_loopback(&l->addr) ? "" : " (beyond loopback)");
	return 0;
}

/* ---- lifecycle ----------------------------------------------------------------- */

int fg_http_new(uv_loop_t *loop, const struct fg_conf *conf, fg_http **ret)
{
	fg_http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (RAND_bytes(h->digest_rnd, sizeof(h->digest_rnd)) != 1) {
		free(h);
		return -EIO;
	}
	h->loop = loop;
	h->conf = conf;
	h->rl_req = (struct fg_ratelimit)FG_RATELIMIT_INIT(10000, 20);
	int r = keys_build(conf, &h->keys, &h->n_keys);
	if (r < 0) {
		free(h);
		return r;
	}
	if (conf->api_tls_cert_file && conf->api_tls_key_file &&
	    ((r = fg_read_file(conf->api_tls_key_file, 1 << 20, &h->tls_key, NULL)) < 0 ||
	     (r = fg_read_file(conf->api_tls_cert_file, 1 << 20, &h->tls_cert, NULL)) < 0)) {
		fg_http_free(h);
		return r;
	}
	h->ls = calloc(conf->n_api_listen ? conf->n_api_listen : 1, sizeof(*h->ls));
	if (!h->ls) {
		fg_http_free(h);
		return -ENOMEM;
	}
	for (size_t i = 0; i < conf->n_api_listen; i++) {
		struct listener *l = &h->ls[i];
		l->h = h;
		l->index = i;
		l->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 3);
		snprintf(l->label, sizeof(l->label), "%s", conf->api_listen[i]);
		if (fg_http_addr_parse(conf->api_listen[i], &l->addr) < 0) {
			fg_http_free(h);
			return -EINVAL;
		}
	}
	h->n_ls = conf->n_api_listen;
	*ret = h;
	return 0;
}

int fg_http_start(fg_http *h)
{
	if (h->started || h->closing)
		return -EALREADY;
	h->started = true;
	for (size_t i = 0; i < h->n_ls; i++) {
		struct listener *l = &h->ls[i];
		uv_timer_init(h->loop, &l->timer);
		l->timer.data = l;
		h->open_handles++;
		if (listener_bind(l) < 0)
			uv_timer_start(&l->timer, timer_cb, RETRY_BIND_MS, 0);
	}
	return 0;
}

size_t fg_http_listening(fg_http *h)
{
	size_t n = 0;
	for (size_t i = 0; h && i < h->n_ls; i++)
		n += h->ls[i].mhd != NULL;
	return n;
}

int fg_http_port(fg_http *h, size_t i)
{
	return h && i < h->n_ls && h->ls[i].mhd ? h->ls[i].port : 0;
}

int fg_http_set_conf(fg_http *h, const struct fg_conf *conf)
{
	struct client_key *keys = NULL;
	size_t n = 0;
	int r = keys_build(conf, &keys, &n);
	/* The old keys point into the old conf, which the caller frees:
	 * they go whatever happens. */
	keys_free(h->keys, h->n_keys);
	h->keys = keys;
	h->n_keys = n;
	bool same = conf->n_api_listen == h->n_ls;
	for (size_t i = 0; same && i < h->n_ls; i++)
		same = strcmp(conf->api_listen[i], h->ls[i].label) == 0;
	h->conf = conf;
	return r < 0 ? r : same ? 0 : 1;
}

static void finish_close(fg_http *h)
{
	/* The handles are gone: MHD may now close its sockets and epoll fd
	 * (its completion callbacks free the requests still open). */
	for (size_t i = 0; i < h->n_ls; i++) {
		if (h->ls[i].mhd)
			MHD_stop_daemon(h->ls[i].mhd);
		h->ls[i].mhd = NULL;
	}
	if (h->done)
		h->done(h->done_data);
}

static void handle_closed_cb(uv_handle_t *hd)
{
	struct listener *l = hd->data;
	fg_http *h = l->h;
	if (--h->open_handles == 0)
		finish_close(h);
}

void fg_http_close(fg_http *h, void (*done)(void *data), void *data)
{
	if (!h) {
		if (done)
			done(data);
		return;
	}
	if (h->closing)
		return;
	h->closing = true;
	h->done = done;
	h->done_data = data;
	if (h->open_handles == 0) {
		finish_close(h);
		return;
	}
	for (size_t i = 0; h->started && i < h->n_ls; i++) {
		struct listener *l = &h->ls[i];
		if (l->poll_init)
			uv_close((uv_handle_t *)&l->poll, handle_closed_cb);
		uv_close((uv_handle_t *)&l->timer, handle_closed_cb);
	}
}

void fg_http_free(fg_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_ls; i++)
		if (h->ls[i].mhd)
			MHD_stop_daemon(h->ls[i].mhd);
	keys_free(h->keys, h->n_keys);
	OPENSSL_cleanse(h->digest_rnd, sizeof(h->digest_rnd));
	if (h->tls_key)
		OPENSSL_cleanse(h->tls_key, strlen(h->tls_key));
	free(h->tls_key);
	free(h->tls_cert);
	free(h->ls);
	free(h->routes);
	free(h);
}
