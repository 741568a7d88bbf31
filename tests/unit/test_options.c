/* Unit tests for declarative option tables and value parsers (options.c). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "options.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

struct sample {
	char *name;
	int64_t count;
	double ratio;
	int enabled;
	int64_t interval_ms;
	char *unset;
};

#define OFF(f) offsetof(struct sample, f)
static const struct fg_option table[] = {
	{ "name", FG_OPT_STRING, "default-name", OFF(name), "a name", 0, 0 },
	{ "count", FG_OPT_INT, "3", OFF(count), "how many", 1, 10 },
	{ "ratio", FG_OPT_DOUBLE, "0.5", OFF(ratio), "a fraction", 0, 1 },
	{ "enabled", FG_OPT_BOOL, "yes", OFF(enabled), "on or off", 0, 0 },
	{ "interval", FG_OPT_DURATION, "10s", OFF(interval_ms), "how often", 100, 3600000 },
	{ "unset", FG_OPT_STRING, NULL, OFF(unset), "no default", 0, 0 },
	FG_OPTION_END
};

static int64_t dur(const char *s)
{
	int64_t v = -12345;
	int r = fg_parse_duration_ms(s, &v);
	return r < 0 ? r : v;
}

static void test_durations(void)
{
	CHECK(dur("500ms") == 500);
	CHECK(dur("10s") == 10000);
	CHECK(dur("5m") == 300000);
	CHECK(dur("24h") == 86400000);
	CHECK(dur("2d") == 172800000);
	CHECK(dur("7") == 7000);          /* bare number = seconds */
	CHECK(dur("0") == 0);
	CHECK(dur("0ms") == 0);
	CHECK(dur("") == -EINVAL);
	CHECK(dur("s") == -EINVAL);
	CHECK(dur("-5s") == -EINVAL);
	CHECK(dur("1.5s") == -EINVAL);
	CHECK(dur("10 s") == -EINVAL);
	CHECK(dur(" 10s") == -EINVAL);
	CHECK(dur("10S") == -EINVAL);
	CHECK(dur("10w") == -EINVAL);
	CHECK(dur("10sec") == -EINVAL);
	CHECK(dur("99999999999999999999") == -ERANGE);
	CHECK(dur("9223372036854775d") == -ERANGE);
	CHECK(fg_parse_duration_ms(NULL, &(int64_t){0}) == -EINVAL);

	char buf[32];
	CHECK(strcmp(fg_format_duration_ms(500, buf, sizeof(buf)), "500ms") == 0);
	CHECK(strcmp(fg_format_duration_ms(1500, buf, sizeof(buf)), "1500ms") == 0);
	CHECK(strcmp(fg_format_duration_ms(10000, buf, sizeof(buf)), "10s") == 0);
	CHECK(strcmp(fg_format_duration_ms(300000, buf, sizeof(buf)), "5m") == 0);
	CHECK(strcmp(fg_format_duration_ms(86400000, buf, sizeof(buf)), "1d") == 0);
	CHECK(strcmp(fg_format_duration_ms(90000000, buf, sizeof(buf)), "25h") == 0);
	CHECK(strcmp(fg_format_duration_ms(0, buf, sizeof(buf)), "0s") == 0);
	/* Round trip through the parser. */
	const int64_t samples[] = { 1, 999, 1000, 61000, 3600000, 2 * 86400000LL, 123456789 };
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		CHECK(dur(fg_format_duration_ms(samples[i], buf, sizeof(buf))) == samples[i]);
}

static void test_scalars(void)
{
	int b = -1;
	const char *truths[] = { "true", "TRUE", "yes", "Yes", "on", "1" };
	const char *lies[] = { "false", "no", "OFF", "0" };
	for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
		b = -1;
		CHECK(fg_parse_bool(truths[i], &b) == 0 && b == 1);
	}
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		b = -1;
		CHECK(fg_parse_bool(lies[i], &b) == 0 && b == 0);
	}
	b = 7;
	CHECK(fg_parse_bool("maybe", &b) == -EINVAL && b == 7);
	CHECK(fg_parse_bool("", &b) == -EINVAL);
	CHECK(fg_parse_bool("2", &b) == -EINVAL);

	int64_t i = 0;
	CHECK(fg_parse_int("42", &i) == 0 && i == 42);
	CHECK(fg_parse_int("-42", &i) == 0 && i == -42);
	CHECK(fg_parse_int("+7", &i) == 0 && i == 7);
	CHECK(fg_parse_int("9223372036854775807", &i) == 0 && i == INT64_MAX);
	i = 5;
	CHECK(fg_parse_int("9223372036854775808", &i) == -ERANGE && i == 5);
	CHECK(fg_parse_int("", &i) == -EINVAL);
	CHECK(fg_parse_int("-", &i) == -EINVAL);
	CHECK(fg_parse_int("12x", &i) == -EINVAL);
	CHECK(fg_parse_int(" 12", &i) == -EINVAL);
	CHECK(fg_parse_int("0x10", &i) == -EINVAL);
	CHECK(fg_parse_int("1.0", &i) == -EINVAL);

	double d = 0;
	CHECK(fg_parse_double("0.25", &d) == 0 && d == 0.25);
	CHECK(fg_parse_double("-3", &d) == 0 && d == -3);
	CHECK(fg_parse_double("1e3", &d) == 0 && d == 1000);
	CHECK(fg_parse_double("inf", &d) == -EINVAL);
	CHECK(fg_parse_double("nan", &d) == -EINVAL);
	CHECK(fg_parse_double("0x1p3", &d) == -EINVAL);
	CHECK(fg_parse_double("1e999", &d) == -ERANGE);
	CHECK(fg_parse_double("", &d) == -EINVAL);
	CHECK(fg_parse_double("1.2.3", &d) == -EINVAL);
}

static void test_table(void)
{
	struct sample s;
	char err[200];
	memset(&s, 0, sizeof(s));

	CHECK(fg_options_find(table, "count") == &table[1]);
	CHECK(fg_options_find(table, "nope") == NULL);
	CHECK(fg_options_find(NULL, "count") == NULL);

	CHECK(fg_options_defaults(table, &s, err, sizeof(err)) == 0);
	CHECK(s.name && strcmp(s.name, "default-name") == 0);
	CHECK(s.count == 3 && s.ratio == 0.5 && s.enabled == 1 && s.interval_ms == 10000);
	CHECK(s.unset == NULL);

	/* Setting a string twice replaces (ASan would report the lost copy). */
	CHECK(fg_options_set(&table[0], &s, "first", err, sizeof(err)) == 0);
	CHECK(fg_options_set(&table[0], &s, "second", err, sizeof(err)) == 0);
	CHECK(strcmp(s.name, "second") == 0);

	/* Bounds: inclusive at both ends, errors name them and leave the field. */
	CHECK(fg_options_set(&table[1], &s, "1", err, sizeof(err)) == 0 && s.count == 1);
	CHECK(fg_options_set(&table[1], &s, "10", err, sizeof(err)) == 0 && s.count == 10);
	err[0] = '\0';
	CHECK(fg_options_set(&table[1], &s, "11", err, sizeof(err)) == -EINVAL && s.count == 10);
	CHECK(strcmp(err, "expected an integer in 1..10, got '11'") == 0);
	CHECK(fg_options_set(&table[1], &s, "0", err, sizeof(err)) == -EINVAL);
	CHECK(fg_options_set(&table[1], &s, "abc", err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "got 'abc'") != NULL);
	CHECK(fg_options_set(&table[1], &s, "99999999999999999999", err, sizeof(err)) == -ERANGE);

	CHECK(fg_options_set(&table[2], &s, "1", err, sizeof(err)) == 0 && s.ratio == 1.0);
	CHECK(fg_options_set(&table[2], &s, "1.01", err, sizeof(err)) == -EINVAL && s.ratio == 1.0);
	CHECK(strstr(err, "a number in 0..1") != NULL);

	CHECK(fg_options_set(&table[3], &s, "off", err, sizeof(err)) == 0 && s.enabled == 0);
	CHECK(fg_options_set(&table[3], &s, "nah", err, sizeof(err)) == -EINVAL && s.enabled == 0);
	CHECK(strstr(err, "true or false") != NULL);

	CHECK(fg_options_set(&table[4], &s, "100ms", err, sizeof(err)) == 0 && s.interval_ms == 100);
	CHECK(fg_options_set(&table[4], &s, "1h", err, sizeof(err)) == 0 && s.interval_ms == 3600000);
	CHECK(fg_options_set(&table[4], &s, "99ms", err, sizeof(err)) == -EINVAL);
	CHECK(strcmp(err, "expected a duration in 100ms..1h, got '99ms'") == 0);
	CHECK(fg_options_set(&table[4], &s, "61m", err, sizeof(err)) == -EINVAL);
	CHECK(fg_options_set(&table[4], &s, "soon", err, sizeof(err)) == -EINVAL);
	CHECK(s.interval_ms == 3600000);

	/* A long bad value is quoted shortened, never overflowing err. */
	char longval[300];
	memset(longval, 'x', sizeof(longval) - 1);
	longval[sizeof(longval) - 1] = '\0';
	CHECK(fg_options_set(&table[1], &s, longval, err, sizeof(err)) == -EINVAL);
	CHECK(strlen(err) < 120 && strstr(err, "...'") != NULL);

	/* NULL resets. */
	CHECK(fg_options_set(&table[5], &s, "x", err, sizeof(err)) == 0 && strcmp(s.unset, "x") == 0);
	CHECK(fg_options_set(&table[5], &s, NULL, err, sizeof(err)) == 0 && s.unset == NULL);
	CHECK(fg_options_set(&table[1], &s, NULL, err, sizeof(err)) == 0 && s.count == 0);

	char buf[64];
	CHECK(strcmp(fg_options_describe(&table[0], buf, sizeof(buf)), "string") == 0);
	CHECK(strcmp(fg_options_describe(&table[1], buf, sizeof(buf)), "integer 1..10") == 0);
	CHECK(strcmp(fg_options_describe(&table[2], buf, sizeof(buf)), "number 0..1") == 0);
	CHECK(strcmp(fg_options_describe(&table[3], buf, sizeof(buf)), "boolean") == 0);
	CHECK(strcmp(fg_options_describe(&table[4], buf, sizeof(buf)), "duration 100ms..1h") == 0);

	fg_options_free(table, &s);
	CHECK(s.name == NULL && s.unset == NULL);
	fg_options_free(table, NULL);
	fg_options_free(NULL, &s);
	fg_option_reset(NULL, &s);
}

static void test_bad_default(void)
{
	static const struct fg_option bad[] = {
		{ "ok", FG_OPT_STRING, "fine", offsetof(struct sample, name), "", 0, 0 },
		{ "port", FG_OPT_INT, "lots", offsetof(struct sample, count), "", 0, 0 },
		FG_OPTION_END
	};
	struct sample s;
	char err[200] = "";
	memset(&s, 0, sizeof(s));
	CHECK(fg_options_defaults(bad, &s, err, sizeof(err)) == -EINVAL);
	CHECK(strncmp(err, "port: bad default: ", 19) == 0);
	fg_options_free(bad, &s);
}

int main(void)
{
	test_durations();
	test_scalars();
	test_table();
	test_bad_default();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
