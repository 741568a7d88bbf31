/*
 * Retry timing: capped exponential backoff with full jitter
 * (delay = uniform(1, min(cap, base * 2^attempt))), used for webhook retries
 * and MQTT reconnects, plus Retry-After parsing.  Pure functions.
 */
#ifndef FG_BACKOFF_H
#define FG_BACKOFF_H

#include <stdint.h>

/*
 * Delay before retry number `attempt` (counting from 0), in ms: uniform in
 * [1, ceiling] with ceiling = min(cap_ms, base_ms * 2^attempt).  Full jitter
 * spreads a crowd of clients that failed together; the 1 ms floor keeps a
 * caller from spinning.  base_ms < 1 is taken as 1 and cap_ms < base_ms as
 * base_ms; large attempts saturate at the cap (no overflow).  Uses and
 * advances *rng (see fg_rand_next in util.h).
 */
int64_t fg_backoff_ms(uint32_t attempt, int64_t base_ms, int64_t cap_ms, uint64_t *rng);

/*
 * Parse an HTTP Retry-After value (RFC 9110 10.2.3): delta-seconds
 * ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"; the obsolete
 * RFC 850 and asctime forms are accepted too, as HTTP requires).
 * Surrounding blanks are ignored; dates go through curl_getdate(), which
 * is lenient about what follows a complete date.  Returns the delay in ms
 * from now_ms (0 if the date is past; huge values saturate at
 * INT64_MAX / 2), or -1 when the value is not valid (empty, negative,
 * digits followed by junk, no recognisable date).
 */
int64_t fg_retry_after_ms(const char *value, int64_t now_ms);

#endif
