/*
 * Declarative option tables (struct fg_option from the plugin ABI), shared
 * by the daemon's own config sections and by plugin options: one parser for
 * every typed value, one place that knows defaults, one generator for the
 * documented default config.
 */
#ifndef FG_OPTIONS_H
#define FG_OPTIONS_H

#include <stddef.h>
#include "firegrid/plugin.h"

/* Find `key` in a table; NULL when absent. */
const struct fg_option *fg_options_find(const struct fg_option *table, const char *key);

/*
 * Parse `value` according to `opt` and store it into `block` at opt->offset.
 * Strings are strdup'd (free with fg_options_free).  On error returns
 * -EINVAL and writes a human reason ("expected a duration like 10s, got
 * 'abc'") into err; the caller adds file:line and key.
 */
int fg_options_set(const struct fg_option *opt, void *block, const char *value,
                   char *err, size_t errlen);

/* Apply every default of the table to a zeroed block. */
int fg_options_defaults(const struct fg_option *table, void *block, char *err, size_t errlen);

/* Free the strings a table owns inside block (NULL-safe). */
void fg_options_free(const struct fg_option *table, void *block);

/* Parsers exposed for other callers (same rules as the table types). */
int fg_parse_bool(const char *s, int *ret);
int fg_parse_int(const char *s, int64_t *ret);
int fg_parse_double(const char *s, double *ret);
int fg_parse_duration_ms(const char *s, int64_t *ret);   /* "500ms" "10s" "5m" "24h" "2d"; bare number = seconds */

#endif
