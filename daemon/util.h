/* Small helpers shared by every module: time, errors, files, strings. */
#ifndef FG_UTIL_H
#define FG_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, Unix epoch milliseconds. */
int64_t fg_now_ms(void);
/* Monotonic clock, milliseconds since an arbitrary point. */
int64_t fg_mono_ms(void);
/* Format epoch ms as "2026-11-23T10:00:00.123Z" into buf (>= 25 bytes). */
char *fg_time_iso(int64_t ms, char *buf, size_t len);
/* Parse RFC 3339 / ISO-8601 ("2025-03-14T02:11:45.120Z", "+08:00" offsets,
 * or no zone = UTC) into epoch ms.  -EINVAL if not a timestamp. */
int fg_time_parse_iso(const char *s, int64_t *ret_ms);

/* Message for a firegrid -errno style code (plain strerror for errno values). */
const char *fg_strerror(int err);

/* Read a whole file into a NUL-terminated malloc'd buffer (max_len bytes at
 * most, else -EFBIG).  *ret_len may be NULL. */
int fg_read_file(const char *path, size_t max_len, char **ret, size_t *ret_len);
/* Read a secret from a file: first line, trailing whitespace stripped. */
int fg_read_secret_file(const char *path, char **ret);

/* Append one printf-formatted line to a malloc'd, newline-separated text
 * (*text NULL = empty), as config checks collect their errors.  0 or
 * -ENOMEM (*text unchanged). */
int fg_lines_append(char **text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* xorshift-based PRNG for jitter (not for secrets).  Seed with fg_rand_seed. */
uint64_t fg_rand_seed(void);
uint64_t fg_rand_next(uint64_t *state);

/* strdup that aborts on OOM is NOT provided on purpose: callers handle NULL. */
#define FG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Free a pointer and NULL it. */
#define fg_freep(p) do { free(*(p)); *(p) = NULL; } while (0)

#endif
