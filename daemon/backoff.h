/*
 * Retry timing: capped exponential backoff with full jitter
 * (delay = uniform(0, min(cap, base * 2^attempt))), used for webhook retries
 * and MQTT reconnects, plus Retry-After parsing.  Pure functions.
 */
#ifndef FG_BACKOFF_H
#define FG_BACKOFF_H

#include <stdint.h>

/* attempt counts from 0.  base_ms > 0, cap_ms >= base_ms.  Uses and advances
 * *rng (see fg_rand_next). Never returns less than 1 ms... see backoff.c. */
int64_t fg_backoff_ms(uint32_t attempt, int64_t base_ms, int64_t cap_ms, uint64_t *rng);

/* Parse an HTTP Retry-After value: delta-seconds or an IMF-fixdate.
 * Returns the delay in ms from now_ms (0 if the date is past), or -1 when
 * the value is not valid. */
int64_t fg_retry_after_ms(const char *value, int64_t now_ms);

#endif
