/* Declarative option tables: typed parsing, defaults, docs; see options.h. */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD(block, off, type) ((type *)(void *)((char *)(block) + (off)))

/* Longest piece of a bad value quoted back in an error message. */
#define QUOTE_MAX 48

static const struct {
	const char *name;
	int64_t ms;
} duration_units[] = {
	/* Largest first: fg_format_duration_ms picks the first exact divisor. */
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
};

int fg_parse_bool(const char *s, int *ret)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = 0;
			return 0;
		}
	}
	return -EINVAL;
}

int fg_parse_int(const char *s, int64_t *ret)
{
	if (!s)
		return -EINVAL;
	/* strtoll would also skip leading blanks and accept "0x"; neither is a
	 * config integer. */
	const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
	if (*d < '0' || *d > '9' || strspn(d, "0123456789") != strlen(d))
		return -EINVAL;
	errno = 0;
	long long v = strtoll(s, NULL, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*ret = v;
	return 0;
}

int fg_parse_double(const char *s, double *ret)
{
	if (!s || !*s || strspn(s, "0123456789+-.eE") != strlen(s))
		return -EINVAL;   /* also keeps out "inf", "nan" and hex floats */
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end)
		return -EINVAL;
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	*ret = v;
	return 0;
}

int fg_parse_duration_ms(const char *s, int64_t *ret)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	int64_t n = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (n > (INT64_MAX - (*s - '0')) / 10)
			return -ERANGE;
		n = n * 10 + (*s - '0');
	}
	int64_t mult = 1000;   /* bare number: seconds */
	if (*s) {
		mult = 0;
		for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
			if (strcmp(s, duration_units[i].name) == 0)
				mult = duration_units[i].ms;
		if (!mult)
			return -EINVAL;
	}
	if (n > INT64_MAX / mult)
		return -ERANGE;
	*ret = n * mult;
	return 0;
}

char *fg_format_duration_ms(int64_t ms, char *buf, size_t len)
{
	size_t i = 0;
	while (ms != 0 && ms % duration_units[i].ms != 0)
		i++;   /* terminates: the last unit is 1 */
	if (ms == 0)
		i = 3;   /* "0s" reads better than "0d" */
	snprintf(buf, len, "%" PRId64 "%s", ms / duration_units[i].ms, duration_units[i].name);
	return buf;
}

const struct fg_option *fg_options_find(const struct fg_option *table, const char *key)
{
	if (!table || !key)
		return NULL;
	for (const struct fg_option *o = table; o->key; o++)
		if (strcmp(o->key, key) == 0)
			return o;
	return NULL;
}

/* Bounds apply to numbers only, and only when the table sets max > min. */
static bool has_bounds(const struct fg_option *o)
{
	return o->max > o->min &&
	       (o->type == FG_OPT_INT || o->type == FG_OPT_DOUBLE || o->type == FG_OPT_DURATION);
}

/* Bounds in the option's own notation, e.g. "1..65535" or "1s..1h". */
static void format_bounds(const struct fg_option *o, char *buf, size_t len)
{
	char a[32], b[32];

	switch (o->type) {
	case FG_OPT_DURATION:
		fg_format_duration_ms((int64_t)o->min, a, sizeof(a));
		fg_format_duration_ms((int64_t)o->max, b, sizeof(b));
		break;
	case FG_OPT_INT:
		snprintf(a, sizeof(a), "%lld", (long long)o->min);
		snprintf(b, sizeof(b), "%lld", (long long)o->max);
		break;
	default:
		snprintf(a, sizeof(a), "%g", o->min);
		snprintf(b, sizeof(b), "%g", o->max);
		break;
	}
	snprintf(buf, len, "%s..%s", a, b);
}

char *fg_options_describe(const struct fg_option *o, char *buf, size_t len)
{
	static const char *const names[] = {
		[FG_OPT_STRING] = "string", [FG_OPT_INT] = "integer", [FG_OPT_DOUBLE] = "number",
		[FG_OPT_BOOL] = "boolean", [FG_OPT_DURATION] = "duration",
	};
	const char *name = (o && o->type > FG_OPT_END && o->type <= FG_OPT_DURATION)
	                   ? names[o->type] : "unknown";
	char bounds[80] = "";

	if (o && has_bounds(o))
		format_bounds(o, bounds, sizeof(bounds));
	snprintf(buf, len, "%s%s%s", name, bounds[0] ? " " : "", bounds);
	return buf;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* "expected <what>, got '<value>'", with <what> naming the bounds if any. */
static int fail_expected(const struct fg_option *o, const char *what, const char *value,
                         char *err, size_t errlen)
{
	char bounds[80] = "";
	if (has_bounds(o))
		format_bounds(o, bounds, sizeof(bounds));
	size_t n = strlen(value);
	return fail(err, errlen, "expected %s%s%s, got '%.*s%s'", what, bounds[0] ? " in " : "",
	            bounds, QUOTE_MAX, value, n > QUOTE_MAX ? "..." : "");
}

static bool out_of_bounds(const struct fg_option *o, double v)
{
	return has_bounds(o) && (v < o->min || v > o->max);
}

void fg_option_reset(const struct fg_option *o, void *block)
{
	if (!o || !block)
		return;
	switch (o->type) {
	case FG_OPT_STRING: {
		char **p = FIELD(block, o->offset, char *);
		free(*p);
		*p = NULL;
		break;
	}
	case FG_OPT_INT:
	case FG_OPT_DURATION:
		*FIELD(block, o->offset, int64_t) = 0;
		break;
	case FG_OPT_DOUBLE:
		*FIELD(block, o->offset, double) = 0;
		break;
	case FG_OPT_BOOL:
		*FIELD(block, o->offset, int) = 0;
		break;
	default:
		break;
	}
}

int fg_options_set(const struct fg_option *o, void *block, const char *value,
                   char *err, size_t errlen)
{
	if (!o || !block)
		return fail(err, errlen, "no option");
	if (!value) {
		fg_option_reset(o, block);
		return 0;
	}

	int64_t i;
	double d;
	int b, r;

	switch (o->type) {
	case FG_OPT_STRING: {
		char *s = strdup(value);
		if (!s) {
			fail(err, errlen, "out of memory");
			return -ENOMEM;
		}
		fg_option_reset(o, block);
		*FIELD(block, o->offset, char *) = s;
		return 0;
	}
	case FG_OPT_INT:
		r = fg_parse_int(value, &i);
		if (r < 0 || out_of_bounds(o, (double)i)) {
			fail_expected(o, "an integer", value, err, errlen);
			return r == -ERANGE ? r : -EINVAL;
		}
		*FIELD(block, o->offset, int64_t) = i;
		return 0;
	case FG_OPT_DOUBLE:
		r = fg_parse_double(value, &d);
		if (r < 0 || out_of_bounds(o, d)) {
			fail_expected(o, "a number", value, err, errlen);
			return r == -ERANGE ? r : -EINVAL;
		}
		*FIELD(block, o->offset, double) = d;
		return 0;
	case FG_OPT_BOOL:
		if (fg_parse_bool(value, &b) < 0)
			return fail_expected(o, "true or false (yes/no, on/off, 1/0)", value, err,
			                     errlen);
		*FIELD(block, o->offset, int) = b;
		return 0;
	case FG_OPT_DURATION:
		r = fg_parse_duration_ms(value, &i);
		if (r < 0 || out_of_bounds(o, (double)i)) {
			fail_expected(o, has_bounds(o) ? "a duration" :
			              "a duration like 500ms, 10s, 5m, 24h or 2d", value, err, errlen);
			return r == -ERANGE ? r : -EINVAL;
		}
		*FIELD(block, o->offset, int64_t) = i;
		return 0;
	default:
		return fail(err, errlen, "option has an unknown type %d", (int)o->type);
	}
}

int fg_options_defaults(const struct fg_option *table, void *block, char *err, size_t errlen)
{
	char why[200];

	for (const struct fg_option *o = table; o && o->key; o++) {
		if (!o->default_value)
			continue;
		int r = fg_options_set(o, block, o->default_value, why, sizeof(why));
		if (r < 0) {
			fail(err, errlen, "%s: bad default: %s", o->key, why);
			return r;
		}
	}
	return 0;
}

void fg_options_free(const struct fg_option *table, void *block)
{
	if (!block)
		return;
	for (const struct fg_option *o = table; o && o->key; o++)
		if (o->type == FG_OPT_STRING)
			fg_option_reset(o, block);
}
