/*
 * Logging to stderr in a form journald keeps: under systemd (JOURNAL_STREAM
 * set) each line starts with a "<N>" syslog priority prefix, elsewhere with
 * an ISO-8601 UTC timestamp and the level name.  Then "module: message" and
 * key=value context, e.g.
 *   <4>mqtt: connection lost host=127.0.0.1 port=1883 err="connection refused"
 *
 * Rule (STYLE.md): helpers return -errno and do not log; the caller that
 * decides logs once, with the context.  Thread-safe (one write() per line).
 */
#ifndef FG_LOG_H
#define FG_LOG_H

#include "firegrid/plugin.h"   /* enum fg_log_level */

void fg_log_set_level(int level);      /* FG_LOG_ERR .. FG_LOG_DEBUG */
int fg_log_get_level(void);
/* Parse "error", "warning", "info", "debug"; -EINVAL otherwise. */
int fg_log_level_parse(const char *name, int *ret);

void fg_log(int level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Rate-limited variant: at most `burst` lines per `interval_ms` for the
 * given limiter; suppressed lines are counted and reported in the next line
 * that gets through ("(N similar lines suppressed)").  Used for plugin logs
 * and bad-input messages, which a hostile or broken device can flood.
 */
struct fg_ratelimit {
	int64_t interval_ms;
	unsigned burst;
	int64_t window_start_ms;
	unsigned used;
	unsigned suppressed;
};
#define FG_RATELIMIT_INIT(ms, n) { (ms), (n), 0, 0, 0 }
void fg_log_rl(struct fg_ratelimit *rl, int level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define fg_err(mod, ...)   fg_log(FG_LOG_ERR, mod, __VA_ARGS__)
#define fg_warn(mod, ...)  fg_log(FG_LOG_WARN, mod, __VA_ARGS__)
#define fg_info(mod, ...)  fg_log(FG_LOG_INFO, mod, __VA_ARGS__)
#define fg_debug(mod, ...) fg_log(FG_LOG_DEBUG, mod, __VA_ARGS__)

#endif
