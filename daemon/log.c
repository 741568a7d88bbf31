/* stderr logging in a journald-friendly form; see log.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "util.h"

static int log_level = FG_LOG_INFO;
static int journal = -1;   /* -1 unknown, 0 plain, 1 journald prefix */

void fg_log_set_level(int level)
{
	log_level = level;
}

int fg_log_get_level(void)
{
	return log_level;
}

int fg_log_level_parse(const char *name, int *ret)
{
	static const struct { const char *name; int level; } levels[] = {
		{ "error", FG_LOG_ERR }, { "warning", FG_LOG_WARN }, { "warn", FG_LOG_WARN },
		{ "info", FG_LOG_INFO }, { "debug", FG_LOG_DEBUG },
	};
	for (size_t i = 0; name && i < FG_ARRAY_SIZE(levels); i++)
		if (strcmp(name, levels[i].name) == 0) {
			*ret = levels[i].level;
			return 0;
		}
	return -EINVAL;
}

static const char *level_name(int level)
{
	switch (level) {
	case FG_LOG_ERR: return "ERROR";
	case FG_LOG_WARN: return "WARN";
	case FG_LOG_INFO: return "INFO";
	default: return "DEBUG";
	}
}

/* journald sets JOURNAL_STREAM when stderr is connected to it; then the
 * "<N>" prefix carries the priority and journald adds the time itself. */
static bool use_journal_prefix(void)
{
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	return journal == 1;
}

static void log_v(int level, const char *module, const char *suffix, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static void log_v(int level, const char *module, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n;
	int w;

	if (use_journal_prefix()) {
		w = snprintf(line, sizeof(line), "<%d>%s: ", level, module);
	} else {
		char ts[32];
		w = snprintf(line, sizeof(line), "%s %s %s: ", fg_time_iso(fg_now_ms(), ts, sizeof(ts)),
		             level_name(level), module);
	}
	n = w < 0 ? 0 : (size_t)w;
	if (n < sizeof(line)) {
		w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		n += w < 0 ? 0 : (size_t)w;
	}
	if (suffix && n < sizeof(line)) {
		w = snprintf(line + n, sizeof(line) - n, "%s", suffix);
		n += w < 0 ? 0 : (size_t)w;
	}
	if (n >= sizeof(line) - 1) {
		n = sizeof(line) - 2;
		memcpy(line + n - 3, "...", 3);
	}
	/* One line, no embedded newlines (a device string could carry one). */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* A single write keeps lines whole across threads (Modbus workers). */
	ssize_t r;
	do
		r = write(STDERR_FILENO, line, n);
	while (r < 0 && errno == EINTR);
}

void fg_log(int level, const char *module, const char *fmt, ...)
{
	if (level > log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_v(level, module, NULL, fmt, ap);
	va_end(ap);
}

void fg_log_rl(struct fg_ratelimit *rl, int level, const char *module, const char *fmt, ...)
{
	if (level > log_level)
		return;
	int64_t now = fg_mono_ms();
	if (now - rl->window_start_ms >= rl->interval_ms) {
		rl->window_start_ms = now;
		rl->used = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return;
	}
	rl->used++;
	char suffix[64] = "";
	if (rl->suppressed) {
		snprintf(suffix, sizeof(suffix), " (%u similar lines suppressed)", rl->suppressed);
		rl->suppressed = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	log_v(level, module, suffix[0] ? suffix : NULL, fmt, ap);
	va_end(ap);
}
