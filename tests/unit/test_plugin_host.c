/*
 * Unit tests for the plugin host: built-ins and shared modules, the ABI gate
 * (deliberately broken modules from tests/unit/plugins/bad_abi.c), option
 * errors, emit validation, plugin state with its persist callback, the
 * pinned clock and the JSON-lines form of events.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugin_host.h"
#include "util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)
#define CHECK_CONTAINS(s, sub) do { const char *s_ = (s); if (!s_ || !strstr(s_, (sub))) { fprintf(stderr, "%s:%d: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, (sub), s_ ? s_ : "(null)"); failures++; } } while (0)

extern const struct fg_plugin fg_plugin_zigbee2mqtt;

/* Events the host handed on, as JSON lines, plus the last one whole. */
struct sink {
	int n;
	char lines[8][512];
	struct fg_ev last;
	char last_source[32], last_plugin[32], last_topic[64];
};

static void sink_cb(void *data, const struct fg_ev *ev)
{
	struct sink *s = data;
	char *line = fg_ev_to_json_line(ev);
	if (s->n < 8)
		snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s", line ? line : "");
	free(line);
	s->n++;
	s->last = *ev;
	snprintf(s->last_source, sizeof(s->last_source), "%s", ev->source);
	snprintf(s->last_plugin, sizeof(s->last_plugin), "%s", ev->plugin);
	snprintf(s->last_topic, sizeof(s->last_topic), "%s", ev->topic);
}

static struct fg_msg make_msg(const char *topic, const char *payload)
{
	return (struct fg_msg){
		.struct_size = sizeof(struct fg_msg),
		.transport = "mqtt",
		.topic = topic,
		.payload = (const uint8_t *)payload,
		.len = payload ? strlen(payload) : 0,
	};
}

static fg_source_inst *new_inst(fg_plugin_host *h, const char *plugin, struct fg_conf_source *src,
                                char **errors)
{
	*src = (struct fg_conf_source){ .name = "src1", .line = 2, .plugin = (char *)plugin };
	fg_source_inst *si = NULL;
	*errors = NULL;
	if (fg_source_inst_new(h, "test.conf", src, &si, errors) < 0)
		return NULL;
	return si;
}

/* ---- built-ins and modules ------------------------------------------------ */

static void test_builtins(void)
{
	fg_plugin_host *h;
	const struct fg_plugin *p;
	char err[512];
	CHECK(fg_plugin_host_new(NULL, &h) == 0);
	CHECK(fg_plugin_host_find(h, "zigbee2mqtt", &p, err, sizeof(err)) == 0);
	CHECK(p == &fg_plugin_zigbee2mqtt);
	CHECK(fg_plugin_host_find(h, "generic-json", &p, err, sizeof(err)) == 0);
	CHECK(fg_plugin_host_find(h, "nope", &p, err, sizeof(err)) == -ENOENT);
	CHECK_CONTAINS(err, "plugin 'nope': not built in");
	CHECK(fg_plugin_host_find(h, "../evil", &p, err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "not a valid plugin name");
	fg_plugin_host_free(h);
	fg_plugin_host_free(NULL);
}

static void test_modules(void)
{
	fg_plugin_host *h;
	const struct fg_plugin *p;
	char err[512], *errors;
	CHECK(fg_plugin_host_new(FG_TEST_MODULE_DIR, &h) == 0);
	/* Without preference the built-in wins; with it, the module. */
	CHECK(fg_plugin_host_find(h, "zigbee2mqtt", &p, err, sizeof(err)) == 0);
	CHECK(p == &fg_plugin_zigbee2mqtt);
	fg_plugin_host_prefer_modules(h, true);
	CHECK(fg_plugin_host_find(h, "zigbee2mqtt", &p, err, sizeof(err)) == 0);
	CHECK(p != &fg_plugin_zigbee2mqtt);
	CHECK(p && strcmp(p->name, "zigbee2mqtt") == 0);

	/* The module decodes like the built-in: a corpus-shaped alarm. */
	struct fg_conf_source src;
	fg_source_inst *si = new_inst(h, "zigbee2mqtt", &src, &errors);
	CHECK(si != NULL);
	CHECK(si && fg_source_inst_plugin(si) == p);
	struct sink s = { 0 };
	struct fg_msg m = make_msg("zigbee2mqtt/b3/u201/smoke_kitchen",
	                           "{\"battery\":100,\"smoke\":true,\"test\":false}");
	CHECK(si && fg_source_inst_decode(si, &m, sink_cb, &s, NULL, NULL) == 1);
	CHECK(s.n == 1);
	CHECK_CONTAINS(s.lines[0], "\"kind\":\"smoke\",\"severity\":\"critical\"");
	CHECK(strcmp(s.last_source, "src1") == 0 && strcmp(s.last_plugin, "zigbee2mqtt") == 0);
	CHECK(strcmp(s.last_topic, "zigbee2mqtt/b3/u201/smoke_kitchen") == 0);
	CHECK(s.last.recv_time_ms > 0);
	fg_source_inst_free(si);
	free(errors);

	const struct fg_plugin **list;
	size_t n;
	CHECK(fg_plugin_host_list(h, &list, &n) == 0);
	int seen = 0;
	for (size_t i = 0; i < n; i++)
		seen += strcmp(list[i]->name, "zigbee2mqtt") == 0 || strcmp(list[i]->name, "generic-json") == 0;
	CHECK(seen == 2);
	free(list);
	fg_plugin_host_free(h);
}

static void expect_refused(fg_plugin_host *h, const char *name, int rc, const char *why)
{
	const struct fg_plugin *p = NULL;
	char err[512] = "";
	int r = fg_plugin_host_find(h, name, &p, err, sizeof(err));
	if (r != rc)
		fprintf(stderr, "%s: rc %d, expected %d (%s)\n", name, r, rc, err);
	CHECK(r == rc);
	CHECK_CONTAINS(err, why);
}

static void test_bad_modules(void)
{
	fg_plugin_host *h;
	CHECK(fg_plugin_host_new(FG_TEST_BAD_DIR, &h) == 0);
	expect_refused(h, "bad_major", -EPROTO, "ABI major 2, this firegrid speaks 1");
	expect_refused(h, "small_struct", -EPROTO, "ABI v1 needs at least");
	expect_refused(h, "wrong_name", -EPROTO, "module calls itself 'other_name'");
	expect_refused(h, "no_decode", -EPROTO, "no decode function");
	expect_refused(h, "no_symbol", -ENOEXEC, "does not export firegrid_plugin_v1");
	expect_refused(h, "bad_option", -EPROTO, "option 'flag' lies outside");
	expect_refused(h, "absent", -ENOENT, "no absent.so or absent/absent.so in");

	/* Passes the ABI gate, but its init() fails: the source is refused. */
	struct fg_conf_source src;
	char *errors = NULL;
	CHECK(new_inst(h, "init_fails", &src, &errors) == NULL);
	CHECK_CONTAINS(errors, "test.conf:2: [source src1] plugin: plugin 'init_fails' refused to start");
	free(errors);

	/* Only modules that pass the gate are listed. */
	const struct fg_plugin **list;
	size_t n;
	CHECK(fg_plugin_host_list(h, &list, &n) == 0);
	int init_fails = 0, bad = 0;
	for (size_t i = 0; i < n; i++) {
		init_fails += strcmp(list[i]->name, "init_fails") == 0;
		bad += strcmp(list[i]->name, "bad_major") == 0 || strcmp(list[i]->name, "no_decode") == 0;
	}
	CHECK(init_fails == 1 && bad == 0);
	free(list);
	fg_plugin_host_free(h);
}

/*
 * A refusal touches nothing else: the healthy module next to the broken ones
 * loads and decodes, a built-in source runs beside it, a refused module is
 * refused again with the same reason (never half-registered), and a source
 * whose init() failed leaves the others working.
 */
static void test_refusal_isolated(void)
{
	fg_plugin_host *h;
	char err1[512] = "", err2[512] = "", *errors = NULL;
	const struct fg_plugin *p = NULL;
	CHECK(fg_plugin_host_new(FG_TEST_BAD_DIR, &h) == 0);
	CHECK(fg_plugin_host_find(h, "bad_major", &p, err1, sizeof(err1)) == -EPROTO);
	CHECK(fg_plugin_host_find(h, "bad_major", &p, err2, sizeof(err2)) == -EPROTO);
	CHECK(strcmp(err1, err2) == 0);

	struct fg_conf_source bad_src, good_src, z2m_src;
	CHECK(new_inst(h, "init_fails", &bad_src, &errors) == NULL);
	free(errors);
	CHECK(new_inst(h, "bad_major", &bad_src, &errors) == NULL);
	CHECK_CONTAINS(errors, "test.conf:2: [source src1] plugin: plugin 'bad_major'");
	CHECK_CONTAINS(errors, "ABI major 2, this firegrid speaks 1");
	free(errors);

	fg_source_inst *good = new_inst(h, "good", &good_src, &errors);
	free(errors);
	fg_source_inst *z2m = new_inst(h, "zigbee2mqtt", &z2m_src, &errors);
	free(errors);
	CHECK(good && z2m);
	struct sink s = { 0 };
	struct fg_msg m = make_msg("any/topic", "1");
	CHECK(good && fg_source_inst_decode(good, &m, sink_cb, &s, NULL, NULL) == 1);
	CHECK_CONTAINS(s.lines[0], "{\"device\":\"good-1\",\"kind\":\"smoke\"");
	m = make_msg("zigbee2mqtt/b3/u201/smoke_kitchen", "{\"smoke\":true}");
	CHECK(z2m && fg_source_inst_decode(z2m, &m, sink_cb, &s, NULL, NULL) == 1);
	CHECK(s.n == 2);

	/* Still refused after all that, and still absent from the list. */
	CHECK(fg_plugin_host_find(h, "bad_major", &p, err2, sizeof(err2)) == -EPROTO);
	const struct fg_plugin **list;
	size_t n;
	CHECK(fg_plugin_host_list(h, &list, &n) == 0);
	int good_listed = 0, bad_listed = 0;
	for (size_t i = 0; i < n; i++) {
		good_listed += strcmp(list[i]->name, "good") == 0;
		bad_listed += strcmp(list[i]->name, "bad_major") == 0;
	}
	CHECK(good_listed == 1 && bad_listed == 0);
	free(list);
	fg_source_inst_free(good);
	fg_source_inst_free(z2m);
	fg_plugin_host_free(h);
}

/* ---- options ---------------------------------------------------------------- */

static void test_option_errors(void)
{
	fg_plugin_host *h;
	CHECK(fg_plugin_host_new(NULL, &h) == 0);
	struct fg_conf_kv kv[] = {
		{ "stale_after", "soon", 7 },
		{ "bogus", "1", 8 },
		{ "battery_low_percent", "200", 9 },
		{ "heat_models", "HESZB-120", 10 },
	};
	struct fg_conf_source src = { .name = "z2m", .line = 5, .plugin = "zigbee2mqtt",
	                              .opts = kv, .n_opts = 4 };
	fg_source_inst *si = NULL;
	char *errors = NULL;
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == -EINVAL);
	CHECK(si == NULL);
	CHECK_CONTAINS(errors, "test.conf:7: [source z2m] stale_after: expected a duration");
	CHECK_CONTAINS(errors, "test.conf:8: [source z2m] bogus: unknown option for plugin 'zigbee2mqtt'");
	CHECK_CONTAINS(errors, "test.conf:9: [source z2m] battery_low_percent: expected an integer in 0..100");
	CHECK(errors && !strstr(errors, "heat_models"));
	free(errors);

	/* The same section with good values starts. */
	kv[0].value = "15m";
	kv[2].value = "15";
	src.n_opts = 1;
	errors = NULL;
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == 0);
	CHECK(errors == NULL);
	fg_source_inst_free(si);

	src.plugin = "nope";
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == -ENOENT);
	CHECK_CONTAINS(errors, "test.conf:5: [source z2m] plugin: plugin 'nope': not built in");
	free(errors);
	fg_plugin_host_free(h);
}

/* Values only init() can judge are reported at their own key and line
 * (fg_host.option_error), not as a bare "refused to start". */
static void test_init_option_errors(void)
{
	fg_plugin_host *h;
	CHECK(fg_plugin_host_new(NULL, &h) == 0);
	struct fg_conf_kv kv[] = {
		{ "lanes", "fire_lane", 12 },
		{ "api_url", "ftp://frigate.local:5000", 13 },
	};
	struct fg_conf_source src = { .name = "cams", .line = 11, .plugin = "frigate",
	                              .opts = kv, .n_opts = 2 };
	fg_source_inst *si = NULL;
	char *errors = NULL;
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == -EINVAL && !si);
	CHECK_CONTAINS(errors, "test.conf:13: [source cams] api_url: must be an http:// or https:// URL");
	CHECK(errors && !strstr(errors, "refused to start"));
	free(errors);

	kv[0].value = "front/";
	kv[1].value = "http://192.168.10.5:5000";
	errors = NULL;
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == -EINVAL && !si);
	CHECK_CONTAINS(errors, "test.conf:12: [source cams] lanes: 'front/' is not ZONE or CAMERA/ZONE");
	free(errors);

	kv[0].value = "front/fire_lane";
	errors = NULL;
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == 0 && si && !errors);
	fg_source_inst_free(si);

	struct fg_conf_kv rb[] = { { "smoke_input", "3", 21 } };
	src = (struct fg_conf_source){ .name = "b3-relays", .line = 20, .plugin = "relay-board",
	                               .opts = rb, .n_opts = 1 };
	si = NULL;
	errors = NULL;
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == -EINVAL && !si);
	CHECK_CONTAINS(errors, "test.conf:21: [source b3-relays] smoke_input: input 3, but the board reads 0 inputs");
	free(errors);

	/* A key left at its default is reported at the section's line. */
	struct fg_conf_kv sht[] = { { "min_plausible", "200", 31 } };
	src = (struct fg_conf_source){ .name = "b3-temp", .line = 30, .plugin = "sht20",
	                               .opts = sht, .n_opts = 1 };
	errors = NULL;
	CHECK(fg_source_inst_new(h, "test.conf", &src, &si, &errors) == -EINVAL && !si);
	CHECK_CONTAINS(errors, "test.conf:30: [source b3-temp] max_plausible: 125 is not above min_plausible 200");
	free(errors);
	fg_plugin_host_free(h);
}

/* ---- a scripted plugin for emit validation and state ------------------------ */

static int last_emit_rc, last_state_rc;
static int64_t seen_now;
static const struct fg_host *test_host;

static struct fg_event base_event(fg_kind kind)
{
	return (struct fg_event){ .struct_size = sizeof(struct fg_event), .kind = kind,
	                          .severity = FG_SEV_CRITICAL, .device = "dev1" };
}

/* The topic says what to do. */
static int script_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	(void)state;
	const struct fg_host *h = test_host;
	const char *t = msg->topic;
	struct fg_event ev = base_event(FG_KIND_SMOKE);
	if (strcmp(t, "good") == 0) {
		ev.has_value = 1;
		ev.value = 38;
		ev.unit = "mA";
		ev.attrs_json = "{\"model\":\"X\"}";
		ev.device_time_ms = 1741918305120LL;
	} else if (strcmp(t, "online") == 0) {
		ev.kind = FG_KIND_ONLINE;
		ev.clears = FG_KIND_SMOKE;   /* ignored: online ends offline */
	} else if (strcmp(t, "bad-kind") == 0) {
		ev.kind = (fg_kind)99;
	} else if (strcmp(t, "none-kind") == 0) {
		ev.kind = FG_KIND_NONE;
	} else if (strcmp(t, "empty-device") == 0) {
		ev.device = "";
	} else if (strcmp(t, "null-device") == 0) {
		ev.device = NULL;
	} else if (strcmp(t, "bad-utf8") == 0) {
		ev.device = "dev\xff";
	} else if (strcmp(t, "bad-severity") == 0) {
		ev.severity = (fg_severity)7;
	} else if (strcmp(t, "attrs-array") == 0) {
		ev.attrs_json = "[1,2]";
	} else if (strcmp(t, "attrs-broken") == 0) {
		ev.attrs_json = "{\"a\":";
	} else if (strcmp(t, "clears-clear") == 0) {
		ev.kind = FG_KIND_CLEAR;
		ev.clears = FG_KIND_CLEAR;
	} else if (strcmp(t, "nan") == 0) {
		ev.has_value = 1;
		ev.value = NAN;
	} else if (strcmp(t, "small") == 0) {
		ev.struct_size = 8;
	} else if (strcmp(t, "flood") == 0) {
		for (int i = 0; i < FG_MAX_EVENTS_PER_MSG + 10; i++)
			last_emit_rc = h->emit(ctx, &ev);
		return 0;
	} else if (strcmp(t, "fail") == 0) {
		h->emit(ctx, &ev);
		h->fail(ctx, "because %d", 42);
		return -EINVAL;
	} else if (strcmp(t, "silent-fail") == 0) {
		return -EIO;
	} else if (strcmp(t, "set") == 0) {
		last_state_rc = h->state_set(ctx, "dev1", "k", "v1");
		return 0;
	} else if (strcmp(t, "get") == 0) {
		const char *v = h->state_get(ctx, msg->len ? "dev2" : "dev1", "k");
		if (!v)
			return 0;
		ev.device = v;
	} else if (strcmp(t, "del") == 0) {
		last_state_rc = h->state_set(ctx, "dev1", "k", NULL);
		return 0;
	} else if (strcmp(t, "big") == 0) {
		static char key[1100];
		memset(key, 'k', sizeof(key) - 1);
		last_state_rc = h->state_set(ctx, "dev1", key, "v");
		return 0;
	} else if (strcmp(t, "now") == 0) {
		seen_now = h->now_ms(ctx);
		return 0;
	}
	last_emit_rc = h->emit(ctx, &ev);
	return 0;
}

static int script_init(const struct fg_host *host, const void *config, void **ret_state)
{
	(void)config; (void)ret_state;
	test_host = host;
	return host->abi_major == FG_PLUGIN_ABI_MAJOR ? 0 : -EPROTO;
}

static const struct fg_plugin script_plugin = {
	.abi_major = FG_PLUGIN_ABI_MAJOR,
	.struct_size = sizeof(struct fg_plugin),
	.name = "script",
	.init = script_init,
	.decode = script_decode,
};

static int run(fg_source_inst *si, const char *topic, struct sink *s, unsigned *rejected,
               const char **reason)
{
	struct fg_msg m = make_msg(topic, NULL);
	memset(s, 0, sizeof(*s));
	last_emit_rc = 1;
	return fg_source_inst_decode(si, &m, sink_cb, s, reason, rejected);
}

/* A host with the script plugin registered (once only) and an instance. */
static fg_source_inst *script_setup(fg_plugin_host **h, struct fg_conf_source *src)
{
	char err[256], *errors = NULL;
	CHECK(fg_plugin_host_new(NULL, h) == 0);
	CHECK(fg_plugin_host_register(*h, &script_plugin, err, sizeof(err)) == 0);
	CHECK(fg_plugin_host_register(*h, &script_plugin, err, sizeof(err)) == -EEXIST);
	fg_source_inst *si = new_inst(*h, "script", src, &errors);
	CHECK(si != NULL);
	free(errors);
	if (!si)
		fg_plugin_host_free(*h);
	return si;
}

static void test_emit_validation(void)
{
	fg_plugin_host *h;
	struct fg_conf_source src;
	fg_source_inst *si = script_setup(&h, &src);
	if (!si)
		return;
	struct sink s;
	unsigned rejected = 99;
	const char *reason = NULL;

	CHECK(run(si, "good", &s, &rejected, NULL) == 1);
	CHECK(rejected == 0 && last_emit_rc == 0 && s.n == 1);
	CHECK(strcmp(s.lines[0], "{\"device\":\"dev1\",\"kind\":\"smoke\",\"severity\":\"critical\","
	             "\"value\":38,\"unit\":\"mA\",\"device_time\":\"2025-03-14T02:11:45.120Z\","
	             "\"attrs\":{\"model\":\"X\"}}") == 0);

	CHECK(run(si, "online", &s, &rejected, NULL) == 1);
	CHECK(s.last.clears == FG_KIND_OFFLINE);

	static const char *const bad[] = {
		"bad-kind", "none-kind", "empty-device", "null-device", "bad-utf8", "bad-severity",
		"attrs-array", "attrs-broken", "clears-clear", "nan", "small",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = run(si, bad[i], &s, &rejected, NULL);
		if (r != 0 || rejected != 1 || s.n != 0 || last_emit_rc != -EINVAL)
			fprintf(stderr, "emit case %s: r=%d rejected=%u n=%d rc=%d\n", bad[i], r,
			        rejected, s.n, last_emit_rc);
		CHECK(r == 0 && rejected == 1 && s.n == 0 && last_emit_rc == -EINVAL);
	}

	CHECK(run(si, "flood", &s, &rejected, NULL) == FG_MAX_EVENTS_PER_MSG);
	CHECK(rejected == 10 && last_emit_rc == -E2BIG);

	/* fail(): the message fails with the plugin's reason; earlier events stay. */
	CHECK(run(si, "fail", &s, &rejected, &reason) == -EINVAL);
	CHECK(s.n == 1);
	CHECK(reason && strcmp(reason, "because 42") == 0);
	reason = NULL;
	CHECK(run(si, "silent-fail", &s, &rejected, &reason) == -EIO);
	CHECK_CONTAINS(reason, "plugin script gave no reason");

	fg_source_inst_free(si);
	fg_plugin_host_free(h);
}

struct persisted {
	int calls;
	char source[32], device[32], key[32], value[32];
	int value_null;
};

static void persist_cb(void *data, const char *source, const char *device, const char *key,
                       const char *value)
{
	struct persisted *p = data;
	p->calls++;
	snprintf(p->source, sizeof(p->source), "%s", source);
	snprintf(p->device, sizeof(p->device), "%s", device);
	snprintf(p->key, sizeof(p->key), "%s", key);
	snprintf(p->value, sizeof(p->value), "%s", value ? value : "");
	p->value_null = value == NULL;
}

static void test_state(void)
{
	fg_plugin_host *h;
	struct fg_conf_source src;
	fg_source_inst *si = script_setup(&h, &src);
	if (!si)
		return;
	struct persisted p = { 0 };
	fg_source_inst_set_persist(si, persist_cb, &p);
	struct sink s;
	unsigned rejected;

	CHECK(run(si, "get", &s, &rejected, NULL) == 0);   /* unset: no event */
	CHECK(run(si, "set", &s, &rejected, NULL) == 0 && last_state_rc == 0);
	CHECK(p.calls == 1 && strcmp(p.source, "src1") == 0 && strcmp(p.device, "dev1") == 0 &&
	      strcmp(p.key, "k") == 0 && strcmp(p.value, "v1") == 0);
	CHECK(run(si, "set", &s, &rejected, NULL) == 0);
	CHECK(p.calls == 1);   /* unchanged value: nothing to write */
	CHECK(run(si, "get", &s, &rejected, NULL) == 1);
	CHECK_CONTAINS(s.lines[0], "\"device\":\"v1\"");
	CHECK(run(si, "del", &s, &rejected, NULL) == 0 && last_state_rc == 0);
	CHECK(p.calls == 2 && p.value_null);
	CHECK(run(si, "get", &s, &rejected, NULL) == 0);
	CHECK(run(si, "big", &s, &rejected, NULL) == 0 && last_state_rc == -E2BIG);
	CHECK(p.calls == 2);

	/* Preloaded state (from the store at start-up) is visible, not written back. */
	CHECK(fg_source_inst_state_load(si, "dev2", "k", "from-store") == 0);
	struct fg_msg m = make_msg("get", "x");
	memset(&s, 0, sizeof(s));
	CHECK(fg_source_inst_decode(si, &m, sink_cb, &s, NULL, NULL) == 1);
	CHECK_CONTAINS(s.lines[0], "\"device\":\"from-store\"");
	CHECK(p.calls == 2);

	/* The pinned clock reaches the plugin and stamps messages. */
	fg_source_inst_set_now(si, 1741918305120LL);
	CHECK(run(si, "now", &s, &rejected, NULL) == 0 && seen_now == 1741918305120LL);
	CHECK(run(si, "good", &s, &rejected, NULL) == 1 && s.last.recv_time_ms == 1741918305120LL);
	fg_source_inst_set_now(si, 0);
	CHECK(run(si, "now", &s, &rejected, NULL) == 0 && seen_now > 1741918305120LL);

	fg_source_inst_free(si);
	fg_plugin_host_free(h);
}

static void test_json_line(void)
{
	struct fg_ev ev = { .device = "d\"1", .kind = FG_KIND_CLEAR, .severity = FG_SEV_INFO,
	                    .clears = FG_KIND_SMOKE, .has_value = 1, .value = 4.2, .unit = "ppm" };
	char *s = fg_ev_to_json_line(&ev);
	CHECK(s && strcmp(s, "{\"device\":\"d\\\"1\",\"kind\":\"clear\",\"severity\":\"info\","
	                  "\"value\":4.2,\"unit\":\"ppm\",\"clears\":\"smoke\"}") == 0);
	free(s);
	ev.clears = FG_KIND_NONE;   /* every condition: no "clears" key */
	ev.has_value = 0;
	s = fg_ev_to_json_line(&ev);
	CHECK(s && strcmp(s, "{\"device\":\"d\\\"1\",\"kind\":\"clear\",\"severity\":\"info\"}") == 0);
	free(s);
}

int main(void)
{
	test_builtins();
	test_modules();
	test_bad_modules();
	test_refusal_isolated();
	test_option_errors();
	test_init_option_errors();
	test_emit_validation();
	test_state();
	test_json_line();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
