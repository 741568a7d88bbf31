/*
 * CloudEvents 1.0 structured-mode JSON for one incident revision
 * (Content-Type: application/cloudevents+json).  Pure function: no I/O.
 *
 *   {"specversion":"1.0","id":"<webhook id>","source":"urn:firegrid:<gateway>",
 *    "type":"org.firegrid.incident.<change>","subject":"incident/<id>",
 *    "time":"<RFC 3339>","datacontenttype":"application/json",
 *    "data":{"incident":{...},"device":{...},"event":{...}|null}}
 * The exact fields are documented in docs/webhooks.md.
 */
#ifndef FG_CLOUDEVENT_H
#define FG_CLOUDEVENT_H

#include <stdint.h>
#include <jansson.h>
#include "event.h"
#include "incident.h"

/* Returns a malloc'd compact JSON string, or NULL on OOM / invalid input. */
char *fg_cloudevent_build(const char *gateway_id, const char *webhook_id,
                          const char *change, const struct fg_incident *inc,
                          const struct fg_ev *trigger, int64_t time_ms);

/* The body's data.incident object on its own (new reference, NULL on OOM);
 * firegridctl --json prints incidents in the same shape. */
json_t *fg_cloudevent_incident_json(const struct fg_incident *inc);

/* The body's data.device object (new reference, NULL on OOM). */
json_t *fg_cloudevent_device_json(const struct fg_incident *inc);

/* RFC 3339 UTC string for epoch ms, or JSON null for 0 (new reference). */
json_t *fg_cloudevent_time_json(int64_t ms);

#endif
