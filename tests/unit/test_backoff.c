/* Unit tests for backoff timing and Retry-After parsing (backoff.c). */
#include <stdint.h>
#include <stdio.h>
#include "backoff.h"
#include "util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

#define SAMPLES 20000

/* Samples stay in [1, min(cap, base * 2^attempt)], reach near both ends,
 * and average about half the ceiling (full jitter is uniform). */
static void check_range(uint32_t attempt, int64_t base, int64_t cap, int64_t ceiling)
{
	uint64_t rng = 42 + attempt;
	int64_t lo = INT64_MAX, hi = 0;
	double sum = 0;
	for (int i = 0; i < SAMPLES; i++) {
		int64_t d = fg_backoff_ms(attempt, base, cap, &rng);
		if (d < lo) lo = d;
		if (d > hi) hi = d;
		sum += (double)d;
	}
	CHECK(lo >= 1);
	CHECK(hi <= ceiling);
	if (ceiling >= 100) {
		CHECK(lo <= ceiling / 50);
		CHECK(hi >= ceiling - ceiling / 50);
		double mean = sum / SAMPLES;
		CHECK(mean > ceiling * 0.45 && mean < ceiling * 0.55);
	}
}

static void test_backoff(void)
{
	check_range(0, 1000, 300000, 1000);
	check_range(1, 1000, 300000, 2000);
	check_range(5, 1000, 300000, 32000);
	check_range(8, 1000, 300000, 256000);
	check_range(9, 1000, 300000, 300000);      /* capped */
	check_range(60, 1000, 300000, 300000);     /* 2^60 * 1000 would overflow */
	check_range(UINT32_MAX, 1000, 300000, 300000);
	check_range(3, 1, 1, 1);                   /* always exactly 1 */
	check_range(2, 0, 0, 1);                   /* nonsense base/cap clamped */
	check_range(4, 500, 100, 500);             /* cap below base -> base */
	check_range(62, INT64_MAX / 4, INT64_MAX, INT64_MAX);

	/* Growth: mean of attempt n+1 about twice attempt n below the cap. */
	uint64_t rng = 7;
	double prev = 0;
	for (uint32_t a = 0; a < 6; a++) {
		double sum = 0;
		for (int i = 0; i < SAMPLES; i++)
			sum += (double)fg_backoff_ms(a, 100, 1000000, &rng);
		double mean = sum / SAMPLES;
		if (a > 0)
			CHECK(mean > prev * 1.8 && mean < prev * 2.2);
		prev = mean;
	}

	/* The generator state advances: two calls do not repeat forever. */
	rng = 1;
	int64_t first = fg_backoff_ms(10, 1000, 300000, &rng);
	int differs = 0;
	for (int i = 0; i < 10; i++)
		differs |= fg_backoff_ms(10, 1000, 300000, &rng) != first;
	CHECK(differs);
}

static void test_retry_after(void)
{
	const int64_t now = 1445412480000LL;   /* Wed, 21 Oct 2015 07:28:00 GMT */
	CHECK(fg_retry_after_ms("0", now) == 0);
	CHECK(fg_retry_after_ms("2", now) == 2000);
	CHECK(fg_retry_after_ms(" 120 ", now) == 120000);
	CHECK(fg_retry_after_ms("120\r\n", now) == 120000);
	CHECK(fg_retry_after_ms("99999999999999999999999", now) == INT64_MAX / 2);

	CHECK(fg_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30000);
	CHECK(fg_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0);
	CHECK(fg_retry_after_ms("Tue, 20 Oct 2015 07:28:00 GMT", now) == 0);   /* past */
	CHECK(fg_retry_after_ms("Wednesday, 21-Oct-15 07:29:00 GMT", now) == 60000);
	CHECK(fg_retry_after_ms("Wed Oct 21 07:28:05 2015", now) == 5000);

	const char *bad[] = { NULL, "", "  ", "-1", "1.5", "2s", "12abc", "soon", "Wed",
	                      "0x10", "+3", "tomorrow", "1 2" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t r = fg_retry_after_ms(bad[i], now);
		if (r != -1)
			fprintf(stderr, "Retry-After '%s' gave %lld\n", bad[i] ? bad[i] : "(null)", (long long)r);
		CHECK(r == -1);
	}
}

int main(void)
{
	test_backoff();
	test_retry_after();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
