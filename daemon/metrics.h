/*
 * Process counters, named in Prometheus style with optional labels:
 *   fg_metrics_inc("firegrid_messages_total", "plugin", "zigbee2mqtt", 1)
 * Loop thread only.  Snapshotted into the store every few seconds so that
 * firegridctl can show them without talking to the daemon.
 */
#ifndef FG_METRICS_H
#define FG_METRICS_H

#include <stdint.h>

/* Add n to the counter name{label="value"} (label may be NULL). */
void fg_metrics_add(const char *name, const char *label, const char *value, int64_t n);
#define fg_metrics_inc(name, label, value) fg_metrics_add(name, label, value, 1)
/* Set a gauge. */
void fg_metrics_set(const char *name, const char *label, const char *value, int64_t v);
int64_t fg_metrics_get(const char *name, const char *label, const char *value);

/* Iterate all series: key is the full "name{label=\"value\"}" string. */
void fg_metrics_each(void (*cb)(void *data, const char *key, int64_t value), void *data);
void fg_metrics_reset(void);   /* tests */

#endif
