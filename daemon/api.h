/*
 * The operations-center API, on the HTTP server (http.h):
 *
 *   GET  /healthz                       public; 503 when the store or the
 *                                       broker link is down
 *   GET  /metrics                       Prometheus text (scope metrics,
 *                                       public by default)
 *   GET  /v1/incidents?state=&kind=&since=&before=&limit=   scope read
 *   GET  /v1/incidents/{id}             scope read; with its history
 *   GET  /v1/devices?registered=&limit=&after=              scope read
 *
 * docs/api.md documents every request and response.  Reads commit the
 * open group transaction first, so they only ever show committed state.
 *
 * Thread: loop thread only.
 */
#ifndef FG_API_H
#define FG_API_H

#include <stdbool.h>
#include "conf.h"
#include "http.h"
#include "incident.h"
#include "outbox.h"
#include "store.h"

typedef struct fg_api fg_api;

/* Is the broker link up?  NULL = no broker configured (always healthy). */
typedef bool (*fg_api_broker_cb)(void *data);

/* Register the routes on http (which must outlive the api).  st, inc and
 * ob must outlive it too; conf until replaced with fg_api_set_conf. */
int fg_api_new(fg_http *http, const struct fg_conf *conf, fg_store *st, fg_incidents *inc,
               fg_outbox *ob, fg_api_broker_cb broker, void *broker_data, fg_api **ret);
void fg_api_set_conf(fg_api *api, const struct fg_conf *conf);
/* Free it after the HTTP server is closed (no handler may run any more). */
void fg_api_free(fg_api *api);

#endif
