/* Backoff and Retry-After; see backoff.h. */
#include "backoff.h"

#include <ctype.h>
#include <string.h>

#include <curl/curl.h>

#include "util.h"

#define DELAY_MAX (INT64_MAX / 2)   /* leaves room for now_ms + delay */

int64_t fg_backoff_ms(uint32_t attempt, int64_t base_ms, int64_t cap_ms, uint64_t *rng)
{
	if (base_ms < 1)
		base_ms = 1;
	if (cap_ms < base_ms)
		cap_ms = base_ms;

	/* base * 2^attempt, stopping as soon as it passes the cap. */
	int64_t ceiling = base_ms;
	for (uint32_t i = 0; i < attempt && ceiling < cap_ms; i++)
		ceiling = ceiling > cap_ms / 2 ? cap_ms : ceiling * 2;
	if (ceiling > cap_ms)
		ceiling = cap_ms;

	/* Scale a 64-bit random number onto [0, ceiling) with a multiply
	 * instead of '%', which would favour small values. */
	uint64_t r = fg_rand_next(rng);
	uint64_t pick = (uint64_t)(((unsigned __int128)r * (uint64_t)ceiling) >> 64);
	return (int64_t)pick + 1;
}

int64_t fg_retry_after_ms(const char *value, int64_t now_ms)
{
	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' ||
	                 value[n - 1] == '\r' || value[n - 1] == '\n'))
		n--;
	if (n == 0 || n >= 64)
		return -1;

	char buf[64];
	memcpy(buf, value, n);
	buf[n] = '\0';

	if (isdigit((unsigned char)buf[0])) {
		int64_t s = 0;
		for (size_t i = 0; i < n; i++) {
			if (!isdigit((unsigned char)buf[i]))
				goto date;   /* "1 Jan 2030 ...": a date after all */
			if (s < DELAY_MAX / 1000)
				s = s * 10 + (buf[i] - '0');
		}
		return s >= DELAY_MAX / 1000 ? DELAY_MAX : s * 1000;
	}

date:;
	/* An HTTP-date always names the weekday or month with letters; this
	 * keeps curl's lenient parser from reading bare numbers as dates. */
	int letters = 0;
	for (size_t i = 0; i < n; i++)
		if (isalpha((unsigned char)buf[i]))
			letters++;
	if (letters < 3)
		return -1;
	time_t t = curl_getdate(buf, NULL);
	if (t == (time_t)-1)
		return -1;
	int64_t at_ms = (int64_t)t * 1000;
	return at_ms <= now_ms ? 0 : at_ms - now_ms;
}
