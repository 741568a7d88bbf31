/* Small shared helpers: clocks, ISO-8601, files, jitter PRNG. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "util.h"

int64_t fg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fg_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *fg_time_iso(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;
	if (frac < 0) {
		frac += 1000;
		s -= 1;
	}
	if (!gmtime_r(&s, &tm) || len < 25) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	return buf;
}

int fg_time_parse_iso(const char *s, int64_t *ret_ms)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s)
		return -EINVAL;
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	int64_t ms = 0;
	if (*p == '.') {
		int digits = 0;
		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3) {
				ms = ms * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (digits == 0)
			return -EINVAL;
		while (digits++ < 3)
			ms *= 10;
	}
	int64_t offset_s = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
			p += 6;
		else if (sscanf(p + 1, "%2d%2d", &hh, &mm) == 2)
			p += 5;
		else
			return -EINVAL;
		if (hh > 23 || mm > 59)
			return -EINVAL;
		offset_s = sign * (hh * 3600 + mm * 60);
	}
	if (*p != '\0')
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret_ms = ((int64_t)t - offset_s) * 1000 + ms;
	return 0;
}

const char *fg_strerror(int err)
{
	if (err < 0)
		err = -err;
	return strerror(err);
}

int fg_read_file(const char *path, size_t max_len, char **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (S_ISDIR(sb.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096, len = 0;
	if (cap > max_len + 1)
		cap = max_len + 1;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max_len) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			size_t ncap = cap * 2 > max_len + 1 ? max_len + 1 : cap * 2;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max_len) {
			free(buf);
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	buf[len] = '\0';
	*ret = buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int fg_read_secret_file(const char *path, char **ret)
{
	char *buf;
	int r = fg_read_file(path, 64 * 1024, &buf, NULL);
	if (r < 0)
		return r;
	buf[strcspn(buf, "\r\n")] = '\0';
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	if (n == 0) {
		free(buf);
		return -ENODATA;
	}
	*ret = buf;
	return 0;
}

uint64_t fg_rand_seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)fg_mono_ms() ^ ((uint64_t)getpid() << 32);
	return s ? s : 0x9e3779b97f4a7c15ull;
}

/* xorshift64*: fast and good enough for spreading retries; not for secrets. */
uint64_t fg_rand_next(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

int fg_lines_append(char **text, const char *fmt, ...)
{
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	size_t old = *text ? strlen(*text) : 0;
	char *x = realloc(*text, old + (size_t)n + 2);
	if (!x) {
		free(line);
		return -ENOMEM;
	}
	if (old)
		x[old++] = '\n';
	memcpy(x + old, line, (size_t)n + 1);
	*text = x;
	free(line);
	return 0;
}
