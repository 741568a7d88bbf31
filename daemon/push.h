/*
 * HTTP pushes from devices: POST /v1/ingest/{source} on the HTTP server,
 * the path by which cameras (Hikvision "alarm server" / HTTP listening)
 * deliver events.  The same plugin path as MQTT messages: the body goes to
 * the named source's plugin (fg_ingest_msg_to) with transport "http", the
 * request path as topic and the headers in fg_msg.headers.
 *
 *   scope "ingest", and the authenticated client must be one of the
 *   source's http_clients (per-source credentials: each camera or group of
 *   cameras gets its own [client] with a token, or username and password
 *   for HTTP Basic or Digest, which is what cameras can send); the source's
 *   http_auth picks the schemes (any: token, signature or Basic; or only
 *   basic, digest or bearer), with its http_realm and
 *   http_digest_algorithm in the challenges;
 *   404  no such source, or it takes no pushes (no http_clients)
 *   403  the client may not push to this source
 *   413  body over the source's http_max_body
 *   415  no Content-Type, or not one of application/xml, text/xml,
 *        application/json, text/plain, multipart/form-data|mixed|related
 *   400  a multipart body without boundary or that does not parse, or a
 *        body the plugin refuses (its reason in "error")
 *   200  {"events": N, "snapshots": N} once everything is committed
 *
 * Pictures: the image parts of a multipart body are stored in the snapshot
 * store (snapshot.h) before the plugin runs, and named to it in
 * x-firegrid-snapshot headers (see fg_msg in plugin.h); a picture that is
 * not a JPEG/PNG or too large is counted and left out, the push still
 * succeeds.
 *
 * Thread: loop thread only.
 */
#ifndef FG_PUSH_H
#define FG_PUSH_H

#include "conf.h"
#include "http.h"
#include "ingest.h"
#include "snapshot.h"
#include "store.h"

typedef struct fg_push fg_push;

/*
 * Register the route.  *ing is read at every request (the daemon replaces
 * its ingest on reload), so ing must point at the daemon's variable.  snap
 * may be NULL ([snapshots] enabled = false: pictures are dropped).  The
 * route's body limit is the largest http_max_body of conf's sources (at
 * least 64 KiB); it stays until restart, per-source limits follow reloads.
 */
int fg_push_new(fg_http *http, const struct fg_conf *conf, fg_store *st, fg_snapshots *snap,
                fg_ingest **ing, fg_push **ret);
void fg_push_free(fg_push *p);        /* NULL-safe; after the HTTP server is closed */

#endif
