/*
 * Normalised events inside the daemon: names of kinds and severities, the
 * hazard classes, and the host-side view of one decoded event.
 */
#ifndef FG_EVENT_H
#define FG_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include "firegrid/plugin.h"

/* "smoke", "battery_low", ...; NULL for out-of-range values. */
const char *fg_kind_name(fg_kind k);
/* Returns 0 and sets *ret, or -EINVAL for an unknown name. */
int fg_kind_parse(const char *name, fg_kind *ret);
/* "info", "warning", "major", "critical"; NULL for out-of-range. */
const char *fg_severity_name(fg_severity s);
int fg_severity_parse(const char *name, fg_severity *ret);

/* Fire class: smoke, heat, co, residual_current.  Never held back, sent
 * before any backlog of lower classes. */
bool fg_kind_is_fire(fg_kind k);
/* Kinds that open (or bump) an incident.  test, clear, online and
 * fire_lane_cleared never do: they only update existing ones. */
bool fg_kind_opens_incident(fg_kind k);
/* Kinds that end a condition (clear, online, fire_lane_cleared) and which
 * kind they end when the event itself does not say (clear -> NONE = all). */
bool fg_kind_is_recovery(fg_kind k);
fg_kind fg_kind_recovers(fg_kind k);

/*
 * One event as the host hands it on after validating a plugin's emit():
 * the plugin's fields plus where the message came from.  Borrowed: valid
 * only during the callback that receives it.
 */
struct fg_ev {
	const char *source;        /* configured source name */
	const char *plugin;        /* plugin name */
	const char *transport;     /* "mqtt", "http", ... */
	const char *topic;
	const char *device;
	fg_kind kind;
	fg_severity severity;
	fg_kind clears;            /* for recovery kinds, see fg_kind_recovers() */
	int has_value;
	double value;
	const char *unit;          /* NULL unless has_value */
	int64_t device_time_ms;    /* 0 = unknown */
	int64_t recv_time_ms;
	const char *attrs_json;    /* validated JSON object text, or NULL */
	const char *snapshot_url;  /* a picture to fetch (fg_event.snapshot_url), or NULL */
};

#endif
