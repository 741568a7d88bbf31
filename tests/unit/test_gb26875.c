/*
 * Unit tests for the GB/T 26875.3 framing (daemon/gb26875.c): frames found
 * whole, split at every byte, merged, behind garbage, and bad ones (length,
 * '##', checksum) reported for resynchronisation; the confirm frame is
 * byte-for-byte the corpus's center_confirm_ack.json; and, with a real
 * listener and client on the loop, a confirm leaves only after the frame's
 * writes are committed, and never when the commit fails.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "gb26875.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* The "frame_hex" of a corpus sample as bytes. */
static size_t corpus_frame(const char *name, uint8_t *out, size_t cap)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", FG_TEST_CORPUS "/gb26875", name);
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	const char *hex = json_string_value(json_object_get(root, "frame_hex"));
	size_t n = 0;
	for (const char *p = hex; p && *p; p++) {
		unsigned v;
		if (*p == ' ')
			continue;
		if (n == cap || sscanf(p, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
		p++;
	}
	if (!hex)
		fprintf(stderr, "cannot read %s: %s\n", path, err.text);
	json_decref(root);
	return n;
}

static enum fg_gb26875_find find(const uint8_t *b, size_t n, size_t *off, size_t *len)
{
	const char *why = NULL;
	return fg_gb26875_frame_find(b, n, true, off, len, &why);
}

static void test_whole_and_split(void)
{
	uint8_t f[128];
	size_t n = corpus_frame("smoke_detector_fire_alarm.json", f, sizeof(f)), off, len;
	CHECK(n == 78);
	CHECK(find(f, n, &off, &len) == FG_GB26875_FRAME && off == 0 && len == 78);
	/* Every prefix is incomplete, and never garbage to drop. */
	for (size_t cut = 0; cut < n; cut++) {
		off = 99;
		CHECK(find(f, cut, &off, &len) == FG_GB26875_NEED_MORE);
		CHECK(off == (cut ? 0 : cut));
	}
}

static void test_merged_and_garbage(void)
{
	uint8_t a[128], b[128], buf[512];
	size_t na = corpus_frame("smoke_detector_fault.json", a, sizeof(a));
	size_t nb = corpus_frame("uitd_running_state_normal.json", b, sizeof(b));
	CHECK(na == 78 && nb == 39);
	/* garbage "x@y" + a + "@" "@" "@" + b : the stray '@'s before b resolve. */
	size_t n = 0;
	memcpy(buf + n, "x@y", 3), n += 3;
	memcpy(buf + n, a, na), n += na;
	memcpy(buf + n, "@@@", 3), n += 3;
	memcpy(buf + n, b, nb), n += nb;
	size_t pos = 0, off, len, frames = 0, bad = 0;
	for (;;) {
		enum fg_gb26875_find r = find(buf + pos, n - pos, &off, &len);
		if (r == FG_GB26875_NEED_MORE) {
			pos += off;
			break;
		}
		if (r == FG_GB26875_BAD) {
			bad++;
			pos += off + 1;
			continue;
		}
		CHECK(frames != 0 || (pos + off == 3 && len == na));
		CHECK(frames != 1 || (pos + off == 3 + na + 3 && len == nb));
		frames++;
		pos += off + len;
	}
	CHECK(frames == 2);
	CHECK(bad >= 1);        /* the "@@@" run */
	CHECK(pos == n);
}

static void test_bad_frames(void)
{
	uint8_t f[128], g[128];
	size_t n = corpus_frame("residual_current_detector_alarm.json", f, sizeof(f)), off, len;
	const char *why = NULL;

	memcpy(g, f, n);
	g[n - 3] ^= 1;     /* checksum */
	CHECK(fg_gb26875_frame_find(g, n, true, &off, &len, &why) == FG_GB26875_BAD && off == 0);
	CHECK(why && strstr(why, "checksum"));
	CHECK(fg_gb26875_frame_find(g, n, false, &off, &len, &why) == FG_GB26875_FRAME);

	memcpy(g, f, n);
	g[n - 1] = '$';    /* tail */
	CHECK(fg_gb26875_frame_find(g, n, true, &off, &len, &why) == FG_GB26875_BAD);
	CHECK(why && strstr(why, "'##'"));

	memcpy(g, f, n);
	g[24] = 0x01;
	g[25] = 0x08;      /* ADU length 2049 */
	CHECK(fg_gb26875_frame_find(g, n, true, &off, &len, &why) == FG_GB26875_BAD);
	CHECK(why && strstr(why, "over 1024"));

	CHECK(find((const uint8_t *)"no frame here", 13, &off, &len) == FG_GB26875_NEED_MORE);
	CHECK(off == 13);
	CHECK(find((const uint8_t *)"junk@", 5, &off, &len) == FG_GB26875_NEED_MORE && off == 4);
}

/* The corpus confirm answers the fire alarm (serial 17) at 21:45:04 local. */
static void test_confirm(void)
{
	uint8_t f[128], want[64], out[FG_GB26875_CONFIRM_LEN];
	corpus_frame("smoke_detector_fire_alarm.json", f, sizeof(f));
	size_t n = corpus_frame("center_confirm_ack.json", want, sizeof(want)), off, len;
	struct tm t = { .tm_sec = 4, .tm_min = 45, .tm_hour = 21, .tm_mday = 14, .tm_mon = 2,
	                .tm_year = 125 };
	fg_gb26875_confirm(f, &t, out);
	CHECK(n == FG_GB26875_CONFIRM_LEN);
	CHECK(memcmp(out, want, FG_GB26875_CONFIRM_LEN) == 0);
	CHECK(find(out, sizeof(out), &off, &len) == FG_GB26875_FRAME && len == sizeof(out));
}

/* ---- ack after commit ------------------------------------------------------ */

struct ack_test {
	uv_loop_t loop;
	fg_store *st;
	const char *db;
	fg_gb26875 *g;
	uv_tcp_t client;
	uv_connect_t connect;
	uv_write_t write;
	uv_timer_t timeout;
	const uint8_t *frame;
	size_t frame_len;
	uint8_t got[64];
	size_t n_got;
	bool eof;
	bool row_at_confirm;         /* the frame's write was visible when the confirm came */
	int frames;
};

/* Stands in for ingest: what a frame makes is written in the group
 * transaction, which the listener must commit before confirming. */
static void ack_on_msg(void *data, const struct fg_msg *msg)
{
	struct ack_test *t = data;
	char serial[8];
	snprintf(serial, sizeof(serial), "%u", msg->payload[2] | msg->payload[3] << 8);
	t->frames++;
	CHECK(strcmp(msg->transport, "tcp") == 0);
	CHECK(strcmp(msg->topic, "gb26875/t/000020010307") == 0);
	CHECK(msg->n_headers == 1 && strcmp(msg->headers[0].name, "peer") == 0);
	CHECK(fg_store_state_put(t->st, "uitd", "000020010307", "serial", serial) == 0);
}

static bool row_visible(const char *db)
{
	fg_store *ro = NULL;
	bool found = false;
	if (fg_store_open_readonly(db, &ro) < 0)
		return false;
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(fg_store_db(ro), "SELECT value FROM plugin_state WHERE key = 'serial'",
	                       -1, &s, NULL) == SQLITE_OK)
		found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	fg_store_close(ro);
	return found;
}

static void ack_stop(struct ack_test *t)
{
	uv_timer_stop(&t->timeout);
	if (!uv_is_closing((uv_handle_t *)&t->client))
		uv_close((uv_handle_t *)&t->client, NULL);
	fg_gb26875_close(t->g, NULL, NULL);
	t->g = NULL;
}

static void ack_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct ack_test *t = h->data;
	buf->base = (char *)t->got + t->n_got;
	buf->len = sizeof(t->got) - t->n_got;
}

static void ack_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ack_test *t = s->data;
	if (n < 0) {
		t->eof = true;
		ack_stop(t);
		return;
	}
	t->n_got += (size_t)n;
	if (t->n_got >= FG_GB26875_CONFIRM_LEN) {
		t->row_at_confirm = row_visible(t->db);
		ack_stop(t);
	}
}

static void ack_written(uv_write_t *w, int status)
{
	CHECK(status == 0);
}

static void ack_connected(uv_connect_t *c, int status)
{
	struct ack_test *t = c->data;
	CHECK(status == 0);
	if (status < 0) {
		ack_stop(t);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)t->frame, (unsigned)t->frame_len);
	uv_write(&t->write, (uv_stream_t *)&t->client, &b, 1, ack_written);
	uv_read_start((uv_stream_t *)&t->client, ack_alloc, ack_read);
}

static void ack_timeout(uv_timer_t *h)
{
	struct ack_test *t = h->data;
	fprintf(stderr, "ack test timed out\n");
	failures++;
	ack_stop(t);
}

static int commit_refused(void *data)
{
	(void)data;
	return 1;   /* turns the COMMIT into a rollback */
}

static int free_port(void)
{
	uv_loop_t loop;
	uv_tcp_t tcp;
	struct sockaddr_in sa;
	struct sockaddr_storage ss;
	int len = sizeof(ss), port = 0;
	uv_loop_init(&loop);
	uv_tcp_init(&loop, &tcp);
	uv_ip4_addr("127.0.0.1", 0, &sa);
	if (uv_tcp_bind(&tcp, (struct sockaddr *)&sa, 0) == 0 &&
	    uv_tcp_getsockname(&tcp, (struct sockaddr *)&ss, &len) == 0)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	uv_close((uv_handle_t *)&tcp, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return port;
}

static void run_ack(bool fail_commit, struct ack_test *t)
{
	char dir[] = "/tmp/fg-test-gb26875-XXXXXX", db[128], text[512];
	uint8_t frame[128];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(db, sizeof(db), "%s/firegrid.db", dir);
	memset(t, 0, sizeof(*t));
	t->db = db;
	t->frame = frame;
	t->frame_len = corpus_frame("smoke_detector_fire_alarm.json", frame, sizeof(frame));
	int port = free_port();
	snprintf(text, sizeof(text), "[daemon]\ngateway_id = gw\nstate_dir = %s\n"
	         "[source uitd]\nplugin = gb26875\ntopics = gb26875/t/#\n"
	         "[gb26875 t]\nlisten = 127.0.0.1:%d\n", dir, port);
	struct fg_conf *conf = NULL;
	char *errors = NULL;
	CHECK(fg_conf_load_string("ack.conf", text, &conf, &errors) == 0);
	if (errors)
		fprintf(stderr, "%s\n", errors);
	free(errors);
	CHECK(fg_store_open(db, FG_DURABILITY_NORMAL, &t->st) == 0);
	if (fail_commit)
		sqlite3_commit_hook(fg_store_db(t->st), commit_refused, NULL);
	uv_loop_init(&t->loop);
	CHECK(conf && fg_gb26875_new(&t->loop, conf, t->st, ack_on_msg, t, &t->g) == 0 && t->g);

	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", port, &sa);
	uv_tcp_init(&t->loop, &t->client);
	t->client.data = t;
	t->connect.data = t;
	uv_timer_init(&t->loop, &t->timeout);
	t->timeout.data = t;
	uv_timer_start(&t->timeout, ack_timeout, 10000, 0);
	CHECK(uv_tcp_connect(&t->connect, &t->client, (struct sockaddr *)&sa, ack_connected) == 0);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t->timeout, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	CHECK(uv_loop_close(&t->loop) == 0);
	fg_store_close(t->st);
	fg_conf_free(conf);
	CHECK(t->frames == 1);
	if (fail_commit) {
		CHECK(t->eof && t->n_got == 0);      /* closed, never confirmed */
		CHECK(!row_visible(db));
	} else {
		CHECK(t->n_got == FG_GB26875_CONFIRM_LEN && t->got[26] == 3);
		CHECK(t->got[2] == frame[2] && t->got[3] == frame[3]);
		CHECK(t->row_at_confirm);
	}
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

static void test_ack_after_commit(void)
{
	struct ack_test t;
	run_ack(false, &t);
	run_ack(true, &t);
}

int main(void)
{
	test_whole_and_split();
	test_merged_and_garbage();
	test_bad_frames();
	test_confirm();
	test_ack_after_commit();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
