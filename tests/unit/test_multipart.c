/*
 * Unit tests for plugins/common/multipart.h: boundaries from Content-Type,
 * whole bodies (the corpus's Hikvision and Dahua samples), the same bodies
 * fed as a stream in every chunk size, Content-Length that lies, and
 * malformed input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/common/multipart.h"
#include "util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

struct got {
	int n;
	size_t len[8];
	char head[8][48];
	char ctype[8][48];
};

static void note(struct got *g, const struct mp_part *part)
{
	if (g->n < 8) {
		size_t cl;
		const char *ct = mp_header(part, "Content-Type", &cl);
		g->len[g->n] = part->body_len;
		snprintf(g->head[g->n], sizeof(g->head[0]), "%.*s",
		         (int)(part->body_len < 44 ? part->body_len : 44), (const char *)part->body);
		snprintf(g->ctype[g->n], sizeof(g->ctype[0]), "%.*s", ct ? (int)cl : 0, ct ? ct : "");
	}
	g->n++;
}

/* Whole body: every part until the end. */
static int parse_all(const uint8_t *p, size_t n, const char *b, struct got *g)
{
	memset(g, 0, sizeof(*g));
	size_t off = 0, used;
	struct mp_part part;
	int r;
	while ((r = mp_next(p + off, n - off, b, true, &part, &used)) == 1) {
		note(g, &part);
		off += used;
		if (!used)
			return -99;
	}
	return r;
}

/* The same body arriving `chunk` bytes at a time, parsed as it comes. */
static int parse_stream(const uint8_t *p, size_t n, const char *b, size_t chunk, struct got *g)
{
	memset(g, 0, sizeof(*g));
	size_t start = 0, have = 0, used;
	struct mp_part part;
	while (have < n) {
		have = have + chunk < n ? have + chunk : n;
		for (;;) {
			int r = mp_next(p + start, have - start, b, false, &part, &used);
			start += used;
			if (r == 1) {
				note(g, &part);
				continue;
			}
			if (r == -EAGAIN)
				break;
			return r;
		}
	}
	/* the stream ended: whatever is left is final */
	return parse_all(p + start, n - start, b, &(struct got){ 0 }) < 0 ? -1 : 0;
}

static uint8_t *load(const char *name, size_t *len)
{
	char path[512], *buf = NULL;
	snprintf(path, sizeof(path), "%s/%s", FG_TEST_CORPUS, name);
	if (fg_read_file(path, 1 << 20, &buf, len) < 0) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	return (uint8_t *)buf;
}

static void test_params(void)
{
	char b[80];
	CHECK(mp_boundary("multipart/form-data; boundary=8d5c3e1a0b7f4e2d", b, sizeof(b)) == 0);
	CHECK(strcmp(b, "8d5c3e1a0b7f4e2d") == 0);
	CHECK(mp_boundary("Multipart/Mixed;boundary=\"a b;c\"; charset=x", b, sizeof(b)) == 0);
	CHECK(strcmp(b, "a b;c") == 0);
	CHECK(mp_boundary("multipart/x-mixed-replace; charset=\"b=1\"; boundary=myboundary", b,
	                  sizeof(b)) == 0 && strcmp(b, "myboundary") == 0);
	CHECK(mp_boundary("application/xml; boundary=x", b, sizeof(b)) == -EINVAL);
	CHECK(mp_boundary("multipart/mixed", b, sizeof(b)) == -EINVAL);
	CHECK(mp_boundary("multipart/mixed; boundary=", b, sizeof(b)) == -EINVAL);
	CHECK(mp_boundary("multipart/mixed; boundary=\"unterminated", b, sizeof(b)) == -EINVAL);
	char longb[200];
	snprintf(longb, sizeof(longb), "multipart/mixed; boundary=%075d", 1);
	CHECK(mp_boundary(longb, b, sizeof(b)) == -EINVAL);
	CHECK(mp_type_is("image/jpeg", 10, "image/*"));
	CHECK(mp_type_is("application/xml; charset=\"UTF-8\"", 32, "application/xml"));
	CHECK(!mp_type_is("application/xmlx", 16, "application/xml"));
}

static void test_corpus(void)
{
	size_t n;
	struct got g;
	uint8_t *hb = load("hikvision/alertstream_videoloss_inactive_heartbeat.multipart", &n);
	CHECK(parse_all(hb, n, "boundary", &g) == 0);
	CHECK(g.n == 2 && g.len[0] == 508 && g.len[1] == 508);
	CHECK(strncmp(g.head[0], "<EventNotificationAlert", 23) == 0);
	CHECK(strcmp(g.ctype[1], "application/xml; charset=\"UTF-8\"") == 0);
	for (size_t chunk = 1; chunk <= n; chunk += chunk < 16 ? 1 : 37) {
		struct got s;
		CHECK(parse_stream(hb, n, "boundary", chunk, &s) == 0);
		if (s.n != 2 || s.len[0] != 508 || s.len[1] != 508) {
			fprintf(stderr, "stream chunk %zu: %d parts\n", chunk, s.n);
			failures++;
			break;
		}
	}
	/* a Content-Length that lies is not believed */
	char *lie = malloc(n + 1);
	memcpy(lie, hb, n);
	char *cl = strstr(lie, "Content-Length: 508");
	memcpy(cl, "Content-Length: 100", 19);
	CHECK(parse_all((uint8_t *)lie, n, "boundary", &g) == 0 && g.n == 2 && g.len[0] == 508);
	free(lie);
	free(hb);

	uint8_t *anpr = load("hikvision/push_anpr_multipart_with_pictures.multipart", &n);
	CHECK(parse_all(anpr, n, "8d5c3e1a0b7f4e2d", &g) == 0);
	CHECK(g.n == 3 && strcmp(g.ctype[0], "application/xml") == 0);
	CHECK(strncmp(g.head[0], "<?xml", 5) == 0);
	CHECK(g.len[1] == 22 && (uint8_t)g.head[1][0] == 0xff && (uint8_t)g.head[1][1] == 0xd8);
	CHECK(strcmp(g.ctype[2], "image/jpeg") == 0 && g.len[2] == 22);
	struct got s;
	CHECK(parse_stream(anpr, n, "8d5c3e1a0b7f4e2d", 7, &s) == 0 && s.n == 3 && s.len[2] == 22);
	/* the wrong boundary is no multipart */
	CHECK(parse_all(anpr, n, "nope", &g) == 0 && g.n == 0);
	free(anpr);

	uint8_t *dh = load("dahua/parking_detection_start.txt", &n);
	CHECK(parse_all(dh, n, "myboundary", &g) == 0 && g.n == 1 && g.len[0] == 42);
	CHECK(strcmp(g.head[0], "Code=ParkingDetection;action=Start;index=0") == 0);
	CHECK(parse_stream(dh, n, "myboundary", 5, &s) == 0 && s.n == 1 && s.len[0] == 42);
	free(dh);
	uint8_t *vm = load("dahua/videomotion_start_with_json_data.txt", &n);
	CHECK(parse_all(vm, n, "myboundary", &g) == 0 && g.n == 1 && g.len[0] == 126);
	free(vm);
}

static void test_malformed(void)
{
	struct mp_part part;
	size_t used;
	const char *noheader = "--b\r\nno colon here\r\n\r\nbody\r\n--b--\r\n";
	CHECK(mp_next((const uint8_t *)noheader, strlen(noheader), "b", true, &part, &used) == -EBADMSG);
	const char *junk = "--bX\r\n";
	CHECK(mp_next((const uint8_t *)junk, strlen(junk), "b", true, &part, &used) == -EBADMSG);
	/* LF-only line ends and a preamble */
	const char *lf = "preamble\n--b\nContent-Type: text/plain\n\nhello\n--b--\n";
	CHECK(mp_next((const uint8_t *)lf, strlen(lf), "b", true, &part, &used) == 1);
	CHECK(part.body_len == 5 && memcmp(part.body, "hello", 5) == 0);
	CHECK(mp_next((const uint8_t *)lf + used, strlen(lf) - used, "b", true, &part, &used) == 0);
	/* too many headers */
	char many[2048] = "--b\r\n";
	for (int i = 0; i < MP_MAX_HEADERS + 1; i++)
		strcat(many, "X-A: 1\r\n");
	strcat(many, "\r\nx\r\n--b--");
	CHECK(mp_next((const uint8_t *)many, strlen(many), "b", true, &part, &used) == -EBADMSG);
	/* a delimiter inside a line is not one */
	const char *inline_d = "--b\r\n\r\nsee --b here\r\n--b--";
	CHECK(mp_next((const uint8_t *)inline_d, strlen(inline_d), "b", true, &part, &used) == 1);
	CHECK(part.body_len == 12);
}

int main(void)
{
	test_params();
	test_corpus();
	test_malformed();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
