/*
 * MIME multipart bodies (RFC 2046 section 5.1; RFC 7578 form-data), as
 * cameras send them: Hikvision pushes (multipart/form-data: the event XML
 * and its pictures), Hikvision alertStream and Dahua eventManager streams
 * (multipart/mixed, multipart/x-mixed-replace: one event per part, forever).
 * Header-only, like plugin_util.h, so that each plugin module and the daemon
 * (snapshot extraction, the stream client) compile the same parser.  No
 * Debian library parses multipart without pulling in a whole MIME or mail
 * stack, so this one is small, bounded and fuzzed (tests/fuzz/fuzz_multipart.c).
 *
 * What it accepts, because cameras do it:
 *   - the boundary from the Content-Type's boundary= parameter (token or
 *     quoted string, 1..70 characters);
 *   - a preamble before the first delimiter and an epilogue after the close
 *     delimiter "--B--" (both ignored), or no close delimiter at all (a
 *     stream chunk, a truncated body: the last part ends at the end of the
 *     data when `final`);
 *   - CRLF or bare LF line ends in delimiters and part headers;
 *   - a part Content-Length: used when it is plausible (the data after it is
 *     the next delimiter, a line end, or the end of the data), else the body
 *     runs to the next delimiter.  In a stream (final = false) a part with a
 *     plausible Content-Length is complete as soon as its body has arrived,
 *     so an event is not held back until the next part starts.
 * Limits: MP_MAX_HEADERS headers of at most MP_MAX_HEADER_BYTES in all.
 */
#ifndef FG_PLUGIN_MULTIPART_H
#define FG_PLUGIN_MULTIPART_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define MP_BOUNDARY_MAX 70
#define MP_MAX_HEADERS 16
#define MP_MAX_HEADER_BYTES 8192
#define MP_UNUSED __attribute__((unused))

struct mp_header {
	const char *name, *value;     /* not NUL-terminated */
	size_t name_len, value_len;
};

struct mp_part {
	struct mp_header headers[MP_MAX_HEADERS];
	size_t n_headers;
	const uint8_t *body;
	size_t body_len;
};

/* Case-insensitive "does [s, s+n) equal word". */
static MP_UNUSED bool mp__eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* The value of parameter `name` of a header value like
 * `multipart/form-data; boundary="x y"; charset=UTF-8`, unquoted, into buf.
 * 0, -ENOENT when absent, -EINVAL when malformed or longer than len - 1. */
static MP_UNUSED int mp_param(const char *v, size_t vlen, const char *name, char *buf, size_t len)
{
	const char *p = v, *end = v + vlen;
	/* skip the media type itself */
	while (p < end && *p != ';' && *p != '"')
		p++;
	while (p < end) {
		if (*p == '"') {                     /* a quoted string outside a parameter */
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\' && p + 1 < end)
					p++;
			p++;
			continue;
		}
		if (*p++ != ';')
			continue;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		const char *k = p;
		while (p < end && *p != '=' && *p != ';')
			p++;
		size_t klen = (size_t)(p - k);
		while (klen && (k[klen - 1] == ' ' || k[klen - 1] == '\t'))
			klen--;
		if (p == end || *p != '=')
			continue;
		p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		size_t n = 0;
		bool match = mp__eq(k, klen, name);
		if (p < end && *p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (match && n + 1 < len)
					buf[n] = *p;
				n++;
			}
			if (p == end)
				return match ? -EINVAL : -ENOENT;    /* unterminated quote */
			p++;
		} else {
			for (; p < end && *p != ';' && *p != ' ' && *p != '\t'; p++) {
				if (match && n + 1 < len)
					buf[n] = *p;
				n++;
			}
		}
		if (match) {
			if (n >= len)
				return -EINVAL;
			buf[n] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}

/* Whether a Content-Type value names `type` ("application/xml"); a type
 * that ends in a slash and a star matches every subtype (any image). */
static MP_UNUSED bool mp_type_is(const char *v, size_t vlen, const char *type)
{
	size_t n = 0;
	while (n < vlen && v[n] != ';' && v[n] != ' ' && v[n] != '\t')
		n++;
	size_t tl = strlen(type);
	if (tl >= 2 && type[tl - 1] == '*' && type[tl - 2] == '/')
		return n >= tl - 1 && strncasecmp(v, type, tl - 1) == 0;
	return mp__eq(v, n, type);
}

/* The boundary of a multipart Content-Type value.  0, or -EINVAL when it is
 * not multipart/ or has no usable boundary (1..70 characters). */
static MP_UNUSED int mp_boundary(const char *ctype, char *buf, size_t len)
{
	if (!ctype || !mp_type_is(ctype, strlen(ctype), "multipart/*"))
		return -EINVAL;
	if (mp_param(ctype, strlen(ctype), "boundary", buf, len) < 0)
		return -EINVAL;
	size_t n = strlen(buf);
	return n >= 1 && n <= MP_BOUNDARY_MAX ? 0 : -EINVAL;
}

/* A header of a part, NULL when absent (*len = its length). */
static MP_UNUSED const char *mp_header(const struct mp_part *part, const char *name, size_t *len)
{
	for (size_t i = 0; i < part->n_headers; i++)
		if (mp__eq(part->headers[i].name, part->headers[i].name_len, name)) {
			*len = part->headers[i].value_len;
			return part->headers[i].value;
		}
	return NULL;
}

/* Find "--B" at the start of a line (position 0 counts as a line start)
 * in [p, p+n); returns its offset or -1. */
static MP_UNUSED ptrdiff_t mp_find_delim(const uint8_t *p, size_t n, const char *b, size_t blen,
                                         size_t from)
{
	for (size_t i = from; i + 2 + blen <= n; i++) {
		if (p[i] != '-' || p[i + 1] != '-' || (i > 0 && p[i - 1] != '\n'))
			continue;
		if (memcmp(p + i + 2, b, blen) == 0)
			return (ptrdiff_t)i;
	}
	return -1;
}

/* Length of the line end at p (CRLF or LF), 0 when there is none. */
static MP_UNUSED size_t mp__eol(const uint8_t *p, size_t n)
{
	if (n >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	return n >= 1 && p[0] == '\n' ? 1 : 0;
}

/*
 * The next part of [p, p+n).  Returns
 *   1        a part; *consumed is where parsing continues (the next call
 *            gets p + *consumed),
 *   0        no more parts: the close delimiter (or, when final, the end of
 *            the data after the last part); *consumed covers what was read,
 *   -EAGAIN  (final = false only) the part is not complete yet: call again
 *            with more data from the same p; *consumed is the preamble or
 *            line end that may be dropped already,
 *   -EBADMSG the data is not multipart with this boundary (no delimiter
 *            where one must be, a header line without a colon, too many or
 *            too long headers).
 */
static MP_UNUSED int mp_next(const uint8_t *p, size_t n, const char *boundary, bool final,
                             struct mp_part *part, size_t *consumed)
{
	size_t blen = strlen(boundary);
	*consumed = 0;
	memset(part, 0, sizeof(*part));
	if (!blen || blen > MP_BOUNDARY_MAX)
		return -EBADMSG;
	ptrdiff_t d = mp_find_delim(p, n, boundary, blen, 0);
	if (d < 0) {
		if (final)
			return 0;              /* an epilogue, or nothing */
		/* keep the last bytes: a delimiter may be arriving in pieces */
		*consumed = n > blen + 3 ? n - blen - 3 : 0;
		return -EAGAIN;
	}
	size_t i = (size_t)d + 2 + blen;
	if (n - i < 2 && !final)
		return (*consumed = (size_t)d), -EAGAIN;
	if (n - i >= 2 && p[i] == '-' && p[i + 1] == '-') {
		*consumed = n;             /* close delimiter: the rest is epilogue */
		return 0;
	}
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	size_t e = mp__eol(p + i, n - i);
	if (!e) {
		if (i == n && !final)
			return (*consumed = (size_t)d), -EAGAIN;
		if (i == n)
			return (*consumed = n), 0;
		return -EBADMSG;
	}
	i += e;
	/* headers up to an empty line */
	size_t hstart = i;
	for (;;) {
		if (i - hstart > MP_MAX_HEADER_BYTES)
			return -EBADMSG;
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		if (!nl) {
			if (!final)
				return (*consumed = (size_t)d), -EAGAIN;
			return -EBADMSG;
		}
		size_t line_end = (size_t)(nl - p), len = line_end - i;
		if (len && p[line_end - 1] == '\r')
			len--;
		if (!len) {
			i = line_end + 1;
			break;
		}
		const uint8_t *colon = memchr(p + i, ':', len);
		if (!colon || colon == p + i || part->n_headers == MP_MAX_HEADERS)
			return -EBADMSG;
		struct mp_header *h = &part->headers[part->n_headers++];
		h->name = (const char *)p + i;
		h->name_len = (size_t)(colon - (p + i));
		const uint8_t *v = colon + 1, *ve = p + i + len;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		h->value = (const char *)v;
		h->value_len = (size_t)(ve - v);
		i = line_end + 1;
	}
	if (i - hstart > MP_MAX_HEADER_BYTES)
		return -EBADMSG;
	part->body = p + i;

	/* A plausible Content-Length settles where the body ends: what follows
	 * the body is the end of the data, a line end, or the next delimiter. */
	size_t cl_len;
	const char *cl = mp_header(part, "content-length", &cl_len);
	size_t v = 0, k = 0;
	for (; cl && k < cl_len && k < 12 && cl[k] >= '0' && cl[k] <= '9'; k++)
		v = v * 10 + (size_t)(cl[k] - '0');
	if (cl && cl_len && k == cl_len) {
		if (v <= n - i) {
			size_t after = i + v, e2 = mp__eol(p + after, n - after);
			bool delim = mp_find_delim(p, n, boundary, blen, after + e2) ==
			             (ptrdiff_t)(after + e2);
			if (after == n || (e2 && (after + e2 == n || delim || !final)) || delim) {
				part->body_len = v;
				*consumed = after + e2;
				return 1;
			}
		} else if (!final && v <= (size_t)64 << 20) {
			return (*consumed = (size_t)d), -EAGAIN;
		}
	}
	ptrdiff_t next = mp_find_delim(p, n, boundary, blen, i);
	if (next < 0 && !final)
		return (*consumed = (size_t)d), -EAGAIN;
	/* the body runs to the next delimiter, or to the end of the data; the
	 * line end before a delimiter belongs to the delimiter */
	size_t end = next < 0 ? n : (size_t)next;
	if (end > i && p[end - 1] == '\n')
		end--;
	if (end > i && p[end - 1] == '\r')
		end--;
	part->body_len = end - i;
	*consumed = next < 0 ? n : (size_t)next;
	return 1;
}

/* A body that starts with a delimiter line "--B" names its boundary B (a
 * stream chunk or a file without its Content-Type).  0 and B in buf, or
 * -EINVAL. */
static MP_UNUSED int mp_boundary_sniff(const uint8_t *p, size_t n, char *buf, size_t len)
{
	if (n < 3 || p[0] != '-' || p[1] != '-')
		return -EINVAL;
	size_t e = 2;
	while (e < n && e < MP_BOUNDARY_MAX + 2 && p[e] != '\r' && p[e] != '\n')
		e++;
	if (e == 2 || e - 2 >= len)
		return -EINVAL;
	memcpy(buf, p + 2, e - 2);
	buf[e - 2] = '\0';
	return 0;
}

#endif
