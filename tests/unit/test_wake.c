/*
 * Unit tests for plugin wake-ups (fg_host.wake_at): order and clock of
 * fg_source_inst_run_wakes, replace / cancel, no endless loop when a
 * plugin asks again for a time already due, persistence through the state
 * write-through and fg_source_inst_state_load, and the reserved "fg:" keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugin_host.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static const struct fg_host *host;

/* The test plugin: a message "DEVICE AT" asks for a wake-up of DEVICE at
 * AT (ms); "again" on a wake-up asks for the same time again.  Each
 * wake-up emits a `test` event whose device is the woken device and whose
 * value is the clock the plugin sees. */
static int w_init(const struct fg_host *h, const void *config, void **ret_state)
{
	host = h;
	return FG_HOST_HAS_WAKE_AT(h) ? 0 : -ENOTSUP;
}

static int again_mode;

static int w_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	if (strcmp(msg->transport, FG_TRANSPORT_WAKE) == 0) {
		struct fg_event ev = { .struct_size = sizeof(ev), .kind = FG_KIND_TEST,
		                       .device = msg->topic, .has_value = 1,
		                       .value = (double)host->now_ms(ctx), .unit = "s" };
		CHECK(msg->recv_time_ms == host->now_ms(ctx));
		CHECK(msg->len == 0);
		host->emit(ctx, &ev);
		if (again_mode)
			host->wake_at(ctx, msg->topic, host->now_ms(ctx));
		return 0;
	}
	char dev[64];
	long long at;
	char text[128];
	snprintf(text, sizeof(text), "%.*s", (int)msg->len, (const char *)msg->payload);
	if (sscanf(text, "%63s %lld", dev, &at) != 2) {
		host->fail(ctx, "bad test message");
		return -EINVAL;
	}
	CHECK(host->state_set(ctx, dev, FG_STATE_KEY_WAKE, "1") == -EPERM);
	return host->wake_at(ctx, dev, at);
}

static const struct fg_plugin wake_plugin = {
	.abi_major = FG_PLUGIN_ABI_MAJOR, .struct_size = sizeof(struct fg_plugin),
	.name = "wake-test", .init = w_init, .decode = w_decode,
};

struct seen {
	int n;
	char dev[8][32];
	double clock[8];
};

static void seen_cb(void *data, const struct fg_ev *ev)
{
	struct seen *s = data;
	if (s->n < 8) {
		snprintf(s->dev[s->n], sizeof(s->dev[0]), "%s", ev->device);
		s->clock[s->n] = ev->value;
	}
	s->n++;
}

struct persisted {
	int n;
	char last_device[32], last_value[32];
};

static void persist_cb(void *data, const char *source, const char *device, const char *key,
                       const char *value)
{
	struct persisted *p = data;
	if (strcmp(key, FG_STATE_KEY_WAKE) != 0)
		return;
	p->n++;
	snprintf(p->last_device, sizeof(p->last_device), "%s", device);
	snprintf(p->last_value, sizeof(p->last_value), "%s", value ? value : "(deleted)");
}

static int send(fg_source_inst *si, const char *text)
{
	struct fg_msg m = { .struct_size = sizeof(m), .transport = "mqtt", .topic = "t",
	                    .payload = (const uint8_t *)text, .len = strlen(text),
	                    .recv_time_ms = 1000 };
	return fg_source_inst_decode(si, &m, NULL, NULL, NULL, NULL);
}

int main(void)
{
	fg_plugin_host *h;
	char err[256];
	CHECK(fg_plugin_host_new(NULL, &h) == 0);
	CHECK(fg_plugin_host_register(h, &wake_plugin, err, sizeof(err)) == 0);
	struct fg_conf_source src = { .name = "w", .plugin = "wake-test" };
	fg_source_inst *si = NULL;
	char *errors = NULL;
	CHECK(fg_source_inst_new(h, "test", &src, &si, &errors) == 0);
	free(errors);
	struct persisted p = { 0 };
	fg_source_inst_set_persist(si, persist_cb, &p);
	fg_source_inst_set_now(si, 1000);

	CHECK(fg_source_inst_next_wake(si) == INT64_MAX);
	CHECK(send(si, "b 5000") == 0);
	CHECK(send(si, "a 3000") == 0);
	CHECK(send(si, "c 9000") == 0);
	CHECK(send(si, "c 7000") == 0);       /* replaces 9000 */
	CHECK(send(si, "d 4000") == 0);
	CHECK(send(si, "d 0") == 0);          /* cancels */
	CHECK(p.n == 6 && strcmp(p.last_device, "d") == 0 && strcmp(p.last_value, "(deleted)") == 0);
	CHECK(fg_source_inst_next_wake(si) == 3000);

	/* Nothing due yet. */
	struct seen s = { 0 };
	CHECK(fg_source_inst_run_wakes(si, 2999, true, seen_cb, NULL, &s) == 0 && s.n == 0);
	/* Due ones in time order, each at its own time when pinned. */
	CHECK(fg_source_inst_run_wakes(si, 5000, true, seen_cb, NULL, &s) == 2);
	CHECK(s.n == 2 && strcmp(s.dev[0], "a") == 0 && s.clock[0] == 3000);
	CHECK(strcmp(s.dev[1], "b") == 0 && s.clock[1] == 5000);
	CHECK(fg_source_inst_next_wake(si) == 7000);
	/* A wake-up fires once. */
	CHECK(fg_source_inst_run_wakes(si, 5000, true, seen_cb, NULL, &s) == 0 && s.n == 2);

	/* Asked again for a time already due: waits for the next run. */
	again_mode = 1;
	CHECK(fg_source_inst_run_wakes(si, 8000, true, seen_cb, NULL, &s) == 1 && s.n == 3);
	CHECK(fg_source_inst_next_wake(si) == 7000);
	CHECK(fg_source_inst_run_wakes(si, 8000, true, seen_cb, NULL, &s) == 1 && s.n == 4);
	again_mode = 0;
	CHECK(fg_source_inst_run_wakes(si, 8000, true, seen_cb, NULL, &s) == 1 && s.n == 5);
	CHECK(fg_source_inst_next_wake(si) == INT64_MAX);

	/* Restart: a stored wake-up comes back from the state (and a broken
	 * stored value is refused). */
	fg_source_inst *si2 = NULL;
	CHECK(fg_source_inst_new(h, "test", &src, &si2, &errors) == 0);
	free(errors);
	CHECK(fg_source_inst_state_load(si2, "x", FG_STATE_KEY_WAKE, "6000") == 0);
	CHECK(fg_source_inst_state_load(si2, "y", FG_STATE_KEY_WAKE, "soon") == -EINVAL);
	CHECK(fg_source_inst_next_wake(si2) == 6000);
	struct seen s2 = { 0 };
	CHECK(fg_source_inst_run_wakes(si2, 10000, false, seen_cb, NULL, &s2) == 1);
	CHECK(s2.n == 1 && strcmp(s2.dev[0], "x") == 0 && s2.clock[0] > 1e12);  /* real clock */

	fg_source_inst_free(si2);
	fg_source_inst_free(si);
	fg_plugin_host_free(h);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
