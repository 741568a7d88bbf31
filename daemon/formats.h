/*
 * Output formats per sink ([sink NAME] format = ...): the body each
 * incident revision is sent as.  Pure functions, no I/O; the same input
 * always gives the same bytes (retries resend them, golden tests pin them).
 * docs/formats.md shows each with an example.
 *
 *   cloudevents  CloudEvents 1.0 structured JSON (cloudevent.h), the default
 *                Content-Type: application/cloudevents+json
 *   pagerduty    PagerDuty Events API v2: event_action trigger while the
 *                incident waits for a dispatch (and on every revision then,
 *                which updates the alert), acknowledge once dispatched,
 *                resolve once resolved or closed; dedup_key
 *                "<gateway_id>-<incident id>"
 *                Content-Type: application/json
 *   cap          OASIS CAP 1.2 XML: msgType Alert for the first revision,
 *                Update after, Cancel when closed; category, urgency,
 *                severity and certainty mapped from the incident
 *                Content-Type: application/cap+xml
 */
#ifndef FG_FORMATS_H
#define FG_FORMATS_H

#include <stdint.h>
#include "conf.h"
#include "event.h"
#include "incident.h"

enum fg_format {
	FG_FORMAT_CLOUDEVENTS = 0,
	FG_FORMAT_PAGERDUTY = 1,
	FG_FORMAT_CAP = 2,
};

const char *fg_format_content_type(int format);

/* The body of one revision for `sink` (its format and, for pagerduty, its
 * routing key), malloc'd; NULL on OOM or bad input.  webhook_id is
 * "<gateway_id>-<incident id>-<revision>" (outbox.h), change the revision's
 * change ("opened", "dispatched", ...), trigger may be NULL. */
char *fg_format_body(const struct fg_conf_sink *sink, const char *gateway_id,
                     const char *webhook_id, const char *change,
                     const struct fg_incident *inc, const struct fg_ev *trigger,
                     int64_t time_ms);

#endif
