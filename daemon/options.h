/*
 * Declarative option tables (struct fg_option from the plugin ABI), shared
 * by the daemon's own config sections and by plugin options: one parser for
 * every typed value, one place that knows defaults, one generator for the
 * documented default config.
 *
 * Storage at `offset` inside the caller's block, by type:
 *   FG_OPT_STRING    char * (malloc'd here, freed by fg_options_free)
 *   FG_OPT_INT       int64_t
 *   FG_OPT_DOUBLE    double
 *   FG_OPT_BOOL      int, 0 or 1
 *   FG_OPT_DURATION  int64_t milliseconds
 * Bounds (min..max, checked only when max > min) are in the stored unit:
 * milliseconds for durations.
 *
 * None of these functions log; errors come back as -errno plus a short
 * human reason that never includes file, line or key (the caller adds them).
 */
#ifndef FG_OPTIONS_H
#define FG_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include "firegrid/plugin.h"

/* Find `key` in a table; NULL when absent (or table is NULL). */
const struct fg_option *fg_options_find(const struct fg_option *table, const char *key);

/*
 * Parse `value` according to `opt` and store it into `block` at opt->offset.
 * Strings are strdup'd (free with fg_options_free); setting a string again
 * frees the previous one.  value == NULL resets the field (NULL string,
 * zero number).  On error the field is left untouched, -EINVAL (-ERANGE for
 * numbers out of int64 range, -ENOMEM) is returned and a human reason
 * ("expected a duration in 1s..1h, got '2h'") is written into err.
 */
int fg_options_set(const struct fg_option *opt, void *block, const char *value,
                   char *err, size_t errlen);

/* Apply every default of the table to a zeroed block.  On error returns
 * -EINVAL with "KEY: reason" in err (a broken table, i.e. a bug). */
int fg_options_defaults(const struct fg_option *table, void *block, char *err, size_t errlen);

/* Free the strings a table owns inside block and NULL them (NULL-safe). */
void fg_options_free(const struct fg_option *table, void *block);

/* Reset one field: free a string and NULL it, zero a number (NULL-safe). */
void fg_option_reset(const struct fg_option *opt, void *block);

/*
 * Describe an option's type and bounds for documentation and error
 * messages: "string", "boolean", "integer 1..65535", "number",
 * "duration 1s..1h".  Returns buf.
 */
char *fg_options_describe(const struct fg_option *opt, char *buf, size_t len);

/*
 * Parsers exposed for other callers (same rules as the table types).  All
 * return 0, -EINVAL for malformed text or -ERANGE when the number does not
 * fit; *ret is untouched on failure.
 *   bool:     true/false, yes/no, on/off, 1/0 (any letter case)
 *   int:      decimal, optional sign
 *   double:   decimal, optional sign, fraction and exponent; finite only
 *   duration: a non-negative integer with unit ms, s, m, h or d; a bare
 *             number means seconds ("500ms" "10s" "5m" "24h" "2d")
 */
int fg_parse_bool(const char *s, int *ret);
int fg_parse_int(const char *s, int64_t *ret);
int fg_parse_double(const char *s, double *ret);
int fg_parse_duration_ms(const char *s, int64_t *ret);

/* Format milliseconds in the largest unit that divides them exactly
 * ("500ms", "10s", "5m", "24h", "2d"); the inverse of fg_parse_duration_ms
 * for non-negative values.  Returns buf. */
char *fg_format_duration_ms(int64_t ms, char *buf, size_t len);

#endif
