/* Unit tests for config loading and validation (conf.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "conf.h"
#include "fg_config.h"
#include "util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* The spec's example secret: 24 bytes, the smallest accepted. */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static char tmpdir[] = "/tmp/fg-test-conf-XXXXXX";

/* A config that loads: the required keys and nothing else. */
#define MINIMAL \
	"[daemon]\n" \
	"gateway_id = gw-1\n" \
	"[source z2m]\n" \
	"plugin = zigbee2mqtt\n" \
	"topics = zigbee2mqtt/#\n" \
	"[sink ops]\n" \
	"url = http://127.0.0.1:8080/hook\n" \
	"secret = " SECRET "\n"

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	char *s;
	va_list ap;
	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static char *write_tmp(const char *name, const char *content)
{
	char *path = fmt("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fputs(content, f);
	fclose(f);
	return path;
}

/* "whsec_" + base64 of n bytes. */
static char *make_secret(size_t n)
{
	unsigned char raw[128], b64[200];
	for (size_t i = 0; i < n; i++)
		raw[i] = (unsigned char)(i * 37 + 11);
	EVP_EncodeBlock(b64, raw, (int)n);
	return fmt("whsec_%s", b64);
}

static unsigned count_lines(const char *s)
{
	unsigned n = s && *s ? 1 : 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

static int has(const char *errs, const char *needle)
{
	int ok = errs && strstr(errs, needle) != NULL;
	if (!ok)
		fprintf(stderr, "  expected an error containing \"%s\" in:\n%s\n", needle,
		        errs ? errs : "(none)");
	return ok;
}

/* Load text that must be rejected; returns the messages (caller frees). */
static char *load_bad(const char *text)
{
	struct fg_conf *c = (struct fg_conf *)(uintptr_t)0x1;
	char *errs = NULL;
	int r = fg_conf_load_string("t.conf", text, &c, &errs);
	CHECK(r == -EINVAL);
	CHECK(c == (struct fg_conf *)(uintptr_t)0x1);   /* untouched on failure */
	CHECK(errs != NULL && *errs);
	CHECK(errs == NULL || errs[strlen(errs) - 1] != '\n');
	return errs;
}

static struct fg_conf *load_ok(const char *text)
{
	struct fg_conf *c = NULL;
	char *errs = (char *)"unset";
	int r = fg_conf_load_string("t.conf", text, &c, &errs);
	if (r != 0)
		fprintf(stderr, "  unexpected errors:\n%s\n", errs ? errs : "(none)");
	CHECK(r == 0 && c != NULL && errs == NULL);
	if (r != 0)
		free(errs);
	return c;
}

static void test_defaults(void)
{
	struct fg_conf *c = load_ok(MINIMAL);
	if (!c)
		return;
	CHECK(strcmp(c->path, "t.conf") == 0);
	CHECK(strcmp(c->gateway_id, "gw-1") == 0);
	CHECK(strcmp(c->state_dir, "/var/lib/firegrid") == 0);
	CHECK(strcmp(c->plugin_dir, FG_PLUGIN_DIR) == 0);
	CHECK(c->log_level == FG_LOG_INFO);
	CHECK(c->watchdog_ms == 0 && c->shutdown_timeout_ms == 5000);
	CHECK(strcmp(c->db_path, "/var/lib/firegrid/firegrid.db") == 0);
	CHECK(c->durability == FG_DURABILITY_NORMAL);
	CHECK(c->event_retention_ms == 30LL * 86400000 && c->max_events == 1000000);
	CHECK(c->mqtt_enabled == 1 && strcmp(c->mqtt_host, "127.0.0.1") == 0 && c->mqtt_port == 1883);
	CHECK(strcmp(c->mqtt_client_id, "firegrid-gw-1") == 0);
	CHECK(!c->mqtt_username && !c->mqtt_password && !c->mqtt_ca_file && !c->mqtt_cert_file &&
	      !c->mqtt_key_file && c->mqtt_tls_insecure == 0);
	CHECK(c->mqtt_keepalive_s == 30 && c->mqtt_reconnect_min_ms == 500 &&
	      c->mqtt_reconnect_max_ms == 30000 && c->mqtt_max_payload == 262144);

	CHECK(c->n_sources == 1);
	const struct fg_conf_source *s = &c->sources[0];
	CHECK(strcmp(s->name, "z2m") == 0 && s->line == 3 && strcmp(s->plugin, "zigbee2mqtt") == 0);
	CHECK(s->n_topics == 1 && strcmp(s->topics[0], "zigbee2mqtt/#") == 0);
	CHECK(s->qos == 1 && s->n_opts == 0);

	CHECK(c->n_sinks == 1);
	const struct fg_conf_sink *k = &c->sinks[0];
	CHECK(strcmp(k->name, "ops") == 0 && k->line == 6);
	CHECK(strcmp(k->url, "http://127.0.0.1:8080/hook") == 0 && strcmp(k->secret, SECRET) == 0);
	CHECK(k->timeout_ms == 10000 && k->connect_timeout_ms == 5000 && k->max_connections == 4);
	CHECK(k->retry_min_ms == 1000 && k->retry_max_ms == 300000);
	CHECK(k->give_up_ms == 7LL * 86400000 && k->min_severity == FG_SEV_INFO);
	CHECK(k->ca_file == NULL && k->tls_verify == 1);
	fg_conf_free(c);
}

/* Every key set away from its default, through every value type. */
static void test_all_keys(void)
{
	char *pw = write_tmp("mqtt.pw", "s3cret  \nsecond line ignored\n");
	char *ca = write_tmp("ca.pem", "not really a certificate\n");
	char *text = fmt(
		"; a comment\n"
		"# another\n"
		"[daemon]\n"
		"gateway_id = compound.7_b\n"
		"state_dir = /srv/fg\n"
		"plugin_dir = /opt/plugins\n"
		"log_level = debug\n"
		"watchdog = 20s\n"
		"shutdown_timeout = 500ms\n"
		"[store]\n"
		"db_path = db/x.db\n"
		"durability = full\n"
		"event_retention = 2d\n"
		"max_events = 5000\n"
		"[mqtt]\n"
		"enabled = no\n"
		"host = broker.local\n"
		"port = 8883\n"
		"client_id = fg-custom\n"
		"username = firegrid\n"
		"password_file = %s\n"
		"ca_file = %s\n"
		"cert_file = %s\n"
		"key_file = %s\n"
		"tls_insecure = on\n"
		"keepalive = 60\n"
		"reconnect_min = 5m\n"
		"reconnect_max = 24h\n"
		"max_payload = 1024\n"
		"[source z2m]\n"
		"plugin = zigbee2mqtt\n"
		"topics = a/#, b/+/c  d\n"
		"  e/#,f/g\n"
		"\tsingle/level\n"
		"qos = 2\n"
		"base_topic = zigbee2mqtt\n"
		"max_age = 10\n"
		"[sink ops]\n"
		"url = https://ops.example.org/hook?x=1\n"
		"secret = %s\n"
		"timeout = 30\n"
		"connect_timeout = 2s\n"
		"max_connections = 16\n"
		"retry_min = 250ms\n"
		"retry_max = 1d\n"
		"give_up = 3d\n"
		"min_severity = major\n"
		"ca_file = %s\n"
		"tls_verify = false\n",
		pw, ca, ca, ca, SECRET, ca);
	struct fg_conf *c = load_ok(text);
	if (c) {
		CHECK(strcmp(c->gateway_id, "compound.7_b") == 0);
		CHECK(strcmp(c->state_dir, "/srv/fg") == 0 && strcmp(c->plugin_dir, "/opt/plugins") == 0);
		CHECK(c->log_level == FG_LOG_DEBUG && c->watchdog_ms == 20000);
		CHECK(c->shutdown_timeout_ms == 500);
		CHECK(strcmp(c->db_path, "/srv/fg/db/x.db") == 0);
		CHECK(c->durability == FG_DURABILITY_FULL && c->event_retention_ms == 2 * 86400000LL);
		CHECK(c->max_events == 5000);
		CHECK(c->mqtt_enabled == 0 && strcmp(c->mqtt_host, "broker.local") == 0);
		CHECK(c->mqtt_port == 8883 && strcmp(c->mqtt_client_id, "fg-custom") == 0);
		CHECK(strcmp(c->mqtt_username, "firegrid") == 0);
		CHECK(strcmp(c->mqtt_password, "s3cret") == 0);   /* first line, trailing blanks cut */
		CHECK(strcmp(c->mqtt_ca_file, ca) == 0 && strcmp(c->mqtt_cert_file, ca) == 0 &&
		      strcmp(c->mqtt_key_file, ca) == 0);
		CHECK(c->mqtt_tls_insecure == 1 && c->mqtt_keepalive_s == 60);
		CHECK(c->mqtt_reconnect_min_ms == 300000 && c->mqtt_reconnect_max_ms == 86400000);
		CHECK(c->mqtt_max_payload == 1024);

		const struct fg_conf_source *s = &c->sources[0];
		const char *want[] = { "a/#", "b/+/c", "d", "e/#", "f/g", "single/level" };
		CHECK(s->n_topics == 6);
		for (size_t i = 0; i < 6 && i < s->n_topics; i++)
			CHECK(strcmp(s->topics[i], want[i]) == 0);
		CHECK(s->qos == 2);
		CHECK(s->n_opts == 2);
		if (s->n_opts == 2) {
			CHECK(strcmp(s->opts[0].key, "base_topic") == 0);
			CHECK(strcmp(s->opts[0].value, "zigbee2mqtt") == 0 && s->opts[0].line == 36);
			CHECK(strcmp(s->opts[1].key, "max_age") == 0 && s->opts[1].line == 37);
		}

		const struct fg_conf_sink *k = &c->sinks[0];
		CHECK(strcmp(k->url, "https://ops.example.org/hook?x=1") == 0);
		CHECK(k->timeout_ms == 30000 && k->connect_timeout_ms == 2000);
		CHECK(k->max_connections == 16 && k->retry_min_ms == 250 && k->retry_max_ms == 86400000);
		CHECK(k->give_up_ms == 3 * 86400000LL && k->min_severity == FG_SEV_MAJOR);
		CHECK(strcmp(k->ca_file, ca) == 0 && k->tls_verify == 0);
		fg_conf_free(c);
	}
	free(text);
	free(pw);
	free(ca);
}

static void test_several_named(void)
{
	struct fg_conf *c = load_ok(MINIMAL
		"[source shelly]\nplugin = generic-json\ntopics = shellies/+/events\nqos = 0\n"
		"[sink backup]\nurl = https://b.example/\nsecret = " SECRET "\nmin_severity = critical\n"
		"[store]\ndb_path = /data/fg.db\n"
		"[mqtt]\nusername =\n");
	if (!c)
		return;
	CHECK(c->n_sources == 2 && c->n_sinks == 2);
	CHECK(strcmp(c->sources[1].name, "shelly") == 0 && c->sources[1].qos == 0);
	CHECK(strcmp(c->sources[1].plugin, "generic-json") == 0);
	CHECK(strcmp(c->sinks[1].name, "backup") == 0 && c->sinks[1].min_severity == FG_SEV_CRITICAL);
	CHECK(strcmp(c->db_path, "/data/fg.db") == 0);   /* absolute stays */
	CHECK(c->mqtt_username == NULL);                   /* empty = unset */
	fg_conf_free(c);

	/* CRLF line endings and a byte order mark are fine. */
	c = load_ok("\xEF\xBB\xBF[daemon]\r\ngateway_id = crlf\r\n[mqtt]\r\nport = 1884\r\n");
	if (c) {
		CHECK(strcmp(c->gateway_id, "crlf") == 0 && c->mqtt_port == 1884);
		CHECK(c->n_sources == 0 && c->n_sinks == 0);
	}
	fg_conf_free(c);
}

static void test_durations(void)
{
	static const struct {
		const char *key, *text;
		int64_t ms;
	} cases[] = {
		{ "retry_min", "500ms", 500 }, { "retry_min", "10s", 10000 },
		{ "retry_min", "5m", 300000 }, { "retry_min", "90", 90000 },
		{ "give_up", "24h", 86400000 }, { "give_up", "2d", 172800000 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = fmt(MINIMAL "%s = %s\n", cases[i].key, cases[i].text);
		struct fg_conf *c = load_ok(text);
		if (c)
			CHECK((cases[i].key[0] == 'r' ? c->sinks[0].retry_min_ms : c->sinks[0].give_up_ms) ==
			      cases[i].ms);
		fg_conf_free(c);
		free(text);
	}
	char *errs = load_bad(MINIMAL "retry_max = 1w\n");
	CHECK(has(errs, "t.conf:9: [sink ops] retry_max: expected a duration in 1s..1d, got '1w'"));
	free(errs);
	errs = load_bad(MINIMAL "retry_max = 999ms\n");
	CHECK(has(errs, "t.conf:9: [sink ops] retry_max: expected a duration in 1s..1d"));
	free(errs);
}

/* Each bad line is line 4 of its file, after a header line of its section. */
#define HEAD "[daemon]\ngateway_id = g\n"
#define IN_DAEMON(l) "[daemon]\n" l "\ngateway_id = g\n"
#define IN(sec, l) HEAD sec "\n" l "\n"
#define IN_SINK(l, rest) HEAD "[sink x]\n" l "\n" rest
#define IN_SOURCE(l, rest) HEAD "[source y]\n" l "\n" rest
#define URL "url = http://h/\n"
#define SEC "secret = " SECRET "\n"

static void test_bounds_and_types(void)
{
	static const struct {
		const char *text, *expect;
	} cases[] = {
		{ IN("[mqtt]", "port = 0"), "[mqtt] port: expected an integer in 1..65535, got '0'" },
		{ IN("[mqtt]", "port = 65536"), "[mqtt] port: expected an integer in 1..65535" },
		{ IN("[mqtt]", "port = 80x"), "[mqtt] port: expected an integer" },
		{ IN("[mqtt]", "enabled = maybe"), "[mqtt] enabled: expected true or false" },
		{ IN("[mqtt]", "keepalive = 30s"), "[mqtt] keepalive: expected an integer in 5..3600" },
		{ IN("[mqtt]", "client_id = a b"), "[mqtt] client_id: 'a b' may only contain" },
		{ IN("[mqtt]", "reconnect_min = 5ms"), "[mqtt] reconnect_min: expected a duration in 10ms..1h" },
		{ IN("[mqtt]", "cert_file = /etc/hostname"), "[mqtt] cert_file: cert_file and key_file go together" },
		{ IN("[store]", "durability = paranoid"), "[store] durability: expected one of normal, full" },
		{ IN("[store]", "max_events = 10"), "[store] max_events: expected an integer in 1000..1000000000" },
		{ IN("[store]", "event_retention = 59s"), "[store] event_retention: expected a duration in 1m..3650d" },
		{ IN_DAEMON("log_level = verbose"), "[daemon] log_level: expected one of error, warning, info, debug, got 'verbose'" },
		{ IN_DAEMON("shutdown_timeout = -1s"), "[daemon] shutdown_timeout: expected a duration in 0s..5m, got '-1s'" },
		{ IN_SINK("max_connections = 17", URL SEC), "[sink x] max_connections: expected an integer in 1..16" },
		{ IN_SINK("min_severity = fire", URL SEC), "[sink x] min_severity: expected one of info, warning, major, critical" },
		{ IN_SINK("tls_verify = sure", URL SEC), "[sink x] tls_verify: expected true or false" },
		{ IN_SINK("ca_file = /nonexistent/ca.pem", URL SEC), "[sink x] ca_file: cannot read '/nonexistent/ca.pem'" },
		{ IN_SINK("url = ftp://x.example/", SEC), "[sink x] url: 'ftp://x.example/' must start with http:// or https://" },
		{ IN_SINK("url = not a url", SEC), "[sink x] url: 'not a url' is not a valid URL" },
		{ IN_SINK("url = https://", SEC), "[sink x] url: 'https://' is not a valid URL" },
		{ IN_SOURCE("qos = 3", "plugin = p\ntopics = t\n"), "[source y] qos: expected one of 0, 1, 2, got '3'" },
		{ IN_SOURCE("topics = a/#/b", "plugin = p\n"), "[source y] topics: 'a/#/b' is not a valid MQTT topic filter" },
		{ IN_SOURCE("topics = ok/#, a+/b", "plugin = p\n"), "[source y] topics: 'a+/b' is not a valid MQTT topic filter" },
		{ IN_SOURCE("plugin = Bad/Name", "topics = t\n"), "[source y] plugin: 'Bad/Name' may only contain" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *errs = load_bad(cases[i].text);
		char *want = fmt("t.conf:%d: %s", strncmp(cases[i].text, HEAD, strlen(HEAD)) == 0 ? 4 : 2,
		                 cases[i].expect);
		CHECK(has(errs, want));
		CHECK(count_lines(errs) == 1);
		free(want);
		free(errs);
	}
}

static void test_structure_errors(void)
{
	char *errs;

	errs = load_bad(MINIMAL "[daemon2]\nx = 1\n");
	CHECK(has(errs, "t.conf:9: [daemon2]: unknown section"));
	CHECK(count_lines(errs) == 1);   /* its keys are not reported one by one */
	free(errs);

	errs = load_bad(MINIMAL "colour = red\n");
	CHECK(has(errs, "t.conf:9: [sink ops] colour: unknown key"));
	free(errs);

	errs = load_bad("orphan = 1\n" MINIMAL);
	CHECK(has(errs, "t.conf:1: orphan: key outside of any section"));
	free(errs);

	errs = load_bad(MINIMAL "url = http://again/\n");
	CHECK(has(errs, "t.conf:9: [sink ops] url: duplicate key (first given at line 7)"));
	free(errs);

	/* A duplicate plugin option is ours to catch too. */
	errs = load_bad(MINIMAL "[source s2]\nplugin = p\ntopics = t\nfoo = 1\nfoo = 2\n");
	CHECK(has(errs, "t.conf:13: [source s2] foo: duplicate key (first given at line 12)"));
	free(errs);

	errs = load_bad(MINIMAL "[sink ops]\nurl = http://h/\nsecret = " SECRET "\n");
	CHECK(has(errs, "t.conf:9: [sink ops]: sink 'ops' is already defined at line 6"));
	CHECK(count_lines(errs) == 1);
	free(errs);

	errs = load_bad(MINIMAL "[source z2m]\nplugin = p\ntopics = t\n");
	CHECK(has(errs, "t.conf:9: [source z2m]: source 'z2m' is already defined at line 3"));
	free(errs);

	/* A source and a sink may share a name. */
	struct fg_conf *c = load_ok(MINIMAL "[sink z2m]\nurl = http://h/\nsecret = " SECRET "\n");
	fg_conf_free(c);

	errs = load_bad(MINIMAL "[daemon]\nlog_level = debug\n");
	CHECK(has(errs, "t.conf:9: [daemon]: section is already defined at line 1"));
	free(errs);

	errs = load_bad(MINIMAL "[sink]\n[source a/b]\n[mqtt broker]\n");
	CHECK(has(errs, "t.conf:9: [sink]: needs a name: [sink NAME]"));
	CHECK(has(errs, "t.conf:10: [source a/b]: bad name"));
	CHECK(has(errs, "t.conf:11: [mqtt broker]: takes no name"));
	free(errs);

	errs = load_bad(MINIMAL "just some words\n[mqtt\nport = 1\n[store] trailing\n");
	CHECK(has(errs, "t.conf:9: expected 'key = value', a [section] header or a comment"));
	CHECK(has(errs, "t.conf:10: section header without a closing ']'"));
	CHECK(has(errs, "t.conf:12: [store]: unexpected text after the section header"));
	CHECK(count_lines(errs) == 3);
	free(errs);

	/* Only lists continue on indented lines. */
	errs = load_bad(MINIMAL "[mqtt]\nhost = a\n  b\n");
	CHECK(has(errs, "t.conf:11: [mqtt] host: indented line continues the value of 'host'"));
	free(errs);

	/* An empty (no keys) sink is still checked. */
	errs = load_bad(MINIMAL "[sink empty]\n");
	CHECK(has(errs, "t.conf:9: [sink empty] url: required key missing"));
	CHECK(has(errs, "t.conf:9: [sink empty] secret: required key missing"));
	CHECK(count_lines(errs) == 2);
	free(errs);
}

static void test_missing_required(void)
{
	char *errs = load_bad("");
	CHECK(has(errs, "t.conf:1: [daemon] gateway_id: required key missing (there is no [daemon] section)"));
	CHECK(count_lines(errs) == 1);
	free(errs);

	errs = load_bad("[daemon]\ngateway_id =\n[source s]\n[sink k]\nsecret = " SECRET "\n"
	                "[source t]\nplugin = p\ntopics =\n");
	CHECK(has(errs, "t.conf:2: [daemon] gateway_id: must not be empty"));
	CHECK(has(errs, "t.conf:3: [source s] plugin: required key missing"));
	CHECK(has(errs, "t.conf:3: [source s] topics: required key missing"));
	CHECK(has(errs, "t.conf:4: [sink k] url: required key missing"));
	CHECK(has(errs, "t.conf:8: [source t] topics: must not be empty"));
	CHECK(count_lines(errs) == 5);
	free(errs);
}

static void test_secrets(void)
{
	char *errs, *text, *path;
	struct fg_conf *c;

	/* Sizes: 24..64 decoded bytes. */
	for (size_t n = 20; n <= 70; n++) {
		char *secret = make_secret(n);
		text = fmt("[daemon]\ngateway_id = g\n[sink k]\nurl = http://h/\nsecret = %s\n", secret);
		if (n >= 24 && n <= 64) {
			c = load_ok(text);
			CHECK(c && strcmp(c->sinks[0].secret, secret) == 0);
			fg_conf_free(c);
		} else {
			errs = load_bad(text);
			CHECK(has(errs, "t.conf:5: [sink k] secret: "));
			CHECK(n > 64 || has(errs, "expected 24..64"));
			free(errs);
		}
		free(text);
		free(secret);
	}

	static const char *const bad[] = {
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",           /* no prefix */
		"whsec_",                                     /* nothing after it */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",     /* not base64 */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwx",    /* bad length */
		"whsec_MfKQ9r8GKYqr=wjUPD8ILPZIo2LaLaSw",     /* padding inside */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = fmt("[daemon]\ngateway_id = g\n[sink k]\nurl = http://h/\nsecret = %s\n", bad[i]);
		errs = load_bad(text);
		CHECK(has(errs, "t.conf:5: [sink k] secret: "));
		/* The secret itself never appears in a message. */
		CHECK(strlen(bad[i]) < 10 || !strstr(errs, bad[i] + 6));
		free(errs);
		free(text);
	}

	/* secret_file: first line, trailing whitespace stripped. */
	path = write_tmp("ops.secret", SECRET " \t\r\nignored\n");
	text = fmt("[daemon]\ngateway_id = g\n[sink k]\nurl = http://h/\nsecret_file = %s\n", path);
	c = load_ok(text);
	CHECK(c && strcmp(c->sinks[0].secret, SECRET) == 0);
	fg_conf_free(c);
	free(text);

	/* Both forms at once. */
	text = fmt("[daemon]\ngateway_id = g\n[sink k]\nurl = http://h/\nsecret = %s\n"
	           "secret_file = %s\n", SECRET, path);
	errs = load_bad(text);
	CHECK(has(errs, "t.conf:6: [sink k] secret_file: give either secret or secret_file, not both (the other is at line 5)"));
	CHECK(count_lines(errs) == 1);
	free(errs);
	free(text);
	free(path);

	/* A bad secret from a file names the file's config line. */
	path = write_tmp("short.secret", "whsec_c2hvcnQ=\n");
	text = fmt("[daemon]\ngateway_id = g\n[sink k]\nurl = http://h/\nsecret_file = %s\n", path);
	errs = load_bad(text);
	CHECK(has(errs, "t.conf:5: [sink k] secret_file: key is 5 bytes, expected 24..64"));
	free(errs);
	free(text);
	free(path);

	/* Missing and empty files. */
	text = fmt("[daemon]\ngateway_id = g\n[sink k]\nurl = http://h/\nsecret_file = %s/nope\n"
	           "[mqtt]\npassword_file = %s/nope\n", tmpdir, tmpdir);
	errs = load_bad(text);
	char *want = fmt("t.conf:5: [sink k] secret_file: cannot read '%s/nope': No such file", tmpdir);
	CHECK(has(errs, want));
	free(want);
	want = fmt("t.conf:7: [mqtt] password_file: cannot read '%s/nope': No such file", tmpdir);
	CHECK(has(errs, want));
	free(want);
	CHECK(count_lines(errs) == 2);   /* and no "secret missing" on top */
	free(errs);
	free(text);

	path = write_tmp("empty.secret", "\n");
	text = fmt("[daemon]\ngateway_id = g\n[mqtt]\npassword_file = %s\n", path);
	errs = load_bad(text);
	CHECK(has(errs, "[mqtt] password_file: cannot read") && has(errs, "the file is empty"));
	free(errs);
	free(text);
	free(path);

	/* A directory (or a FIFO) is refused rather than read. */
	text = fmt("[daemon]\ngateway_id = g\n[mqtt]\npassword_file = %s\n", tmpdir);
	errs = load_bad(text);
	CHECK(has(errs, "t.conf:4: [mqtt] password_file: cannot read") &&
	      has(errs, "not a regular file"));
	free(errs);
	free(text);

	/* Only secrets have a _file form. */
	errs = load_bad(MINIMAL "url_file = /etc/hostname\n");
	CHECK(has(errs, "t.conf:9: [sink ops] url_file: unknown key"));
	free(errs);
}

static void test_long_line(void)
{
	char topics[400];
	size_t n = 0;
	while (n < 300)
		n += (size_t)snprintf(topics + n, sizeof(topics) - n, "site/%03zu/# ", n);
	char *text = fmt(MINIMAL "[source big]\nplugin = p\ntopics = %s\nqos = 2\n", topics);
	char *errs = load_bad(text);
	CHECK(has(errs, "t.conf:11: [source big] topics: line is too long ("));
	CHECK(has(errs, "at most 197"));
	/* Reported once, not split into bogus pieces; later lines keep their numbers. */
	CHECK(count_lines(errs) == 1);
	free(errs);
	free(text);

	/* Exactly at the limit is fine. */
	char value[200];
	memset(value, 'a', sizeof(value));
	value[197 - strlen("username = ")] = '\0';
	text = fmt(MINIMAL "[mqtt]\nusername = %s\n", value);
	struct fg_conf *c = load_ok(text);
	CHECK(c && strlen(c->mqtt_username) == 197 - strlen("username = "));
	fg_conf_free(c);
	free(text);
	value[197 - strlen("username = ")] = 'a';
	value[198 - strlen("username = ")] = '\0';
	text = fmt(MINIMAL "[mqtt]\nusername = %s\n", value);
	errs = load_bad(text);
	CHECK(has(errs, "t.conf:10: [mqtt] username: line is too long (198 characters, at most 197)"));
	free(errs);
	free(text);
}

/* Many mistakes in one file: every one is reported, in line order. */
static void test_all_errors(void)
{
	const char *text =
		"[daemon]\n"                           /* 1 */
		"gateway_id = bad id\n"                /* 2 */
		"log_level = loud\n"                   /* 3 */
		"watchdog = soon\n"                    /* 4 */
		"[store]\n"                            /* 5 */
		"durability = maybe\n"                 /* 6 */
		"bogus = 1\n"                          /* 7 */
		"[mqtt]\n"                             /* 8 */
		"port = 0\n"                           /* 9 */
		"port = 1\n"                           /* 10 */
		"reconnect_min = 1m\n"                 /* 11 */
		"reconnect_max = 1s\n"                 /* 12 */
		"[source a]\n"                         /* 13 */
		"topics = x/#/y\n"                     /* 14 */
		"[sink b]\n"                           /* 15 */
		"url = gopher://x/\n"                  /* 16 */
		"secret = nope\n"                      /* 17 */
		"retry_min = 1h\n"                     /* 18 */
		"retry_max = 1m\n"                     /* 19 */
		"[wat]\n"                              /* 20 */
		"no equals sign\n";                    /* 21 */
	const char *expect[] = {
		"t.conf:2: [daemon] gateway_id: ",
		"t.conf:3: [daemon] log_level: ",
		"t.conf:4: [daemon] watchdog: ",
		"t.conf:6: [store] durability: ",
		"t.conf:7: [store] bogus: unknown key",
		"t.conf:9: [mqtt] port: ",
		"t.conf:10: [mqtt] port: duplicate key",
		"t.conf:11: [mqtt] reconnect_min: must not exceed reconnect_max",
		"t.conf:13: [source a] plugin: required key missing",
		"t.conf:14: [source a] topics: ",
		"t.conf:16: [sink b] url: ",
		"t.conf:17: [sink b] secret: ",
		"t.conf:18: [sink b] retry_min: must not exceed retry_max",
		"t.conf:20: [wat]: unknown section",
		"t.conf:21: expected 'key = value'",
	};
	size_t n = sizeof(expect) / sizeof(expect[0]);
	char *errs = load_bad(text);
	CHECK(count_lines(errs) == n);
	/* In line order: each expected message starts the i-th line. */
	const char *p = errs;
	for (size_t i = 0; i < n && p; i++) {
		if (strncmp(p, expect[i], strlen(expect[i])) != 0) {
			fprintf(stderr, "  line %zu: want \"%s...\"\n", i + 1, expect[i]);
			failures++;
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	free(errs);

	/* ret_errors may be NULL. */
	struct fg_conf *c = NULL;
	CHECK(fg_conf_load_string("t.conf", text, &c, NULL) == -EINVAL && c == NULL);
}

static void test_load_file(void)
{
	char *path = write_tmp("fg.conf", MINIMAL);
	struct fg_conf *c = NULL;
	char *errs = NULL;
	CHECK(fg_conf_load(path, &c, &errs) == 0 && c && !errs);
	CHECK(c && strcmp(c->path, path) == 0);
	fg_conf_free(c);
	free(path);

	path = write_tmp("bad.conf", MINIMAL "[mqtt]\nport = x\n");
	c = NULL;
	CHECK(fg_conf_load(path, &c, &errs) == -EINVAL && !c);
	char *want = fmt("%s:10: [mqtt] port: expected an integer", path);
	CHECK(has(errs, want));
	free(want);
	free(errs);
	free(path);

	/* A NUL byte hidden in the file. */
	path = fmt("%s/nul.conf", tmpdir);
	FILE *f = fopen(path, "w");
	fwrite(MINIMAL "[mqtt]\nhost = a\0b\n", 1, sizeof(MINIMAL "[mqtt]\nhost = a\0b\n") - 1, f);
	fclose(f);
	CHECK(fg_conf_load(path, &c, &errs) == -EINVAL);
	CHECK(has(errs, ":10: [mqtt] host: line contains a NUL byte"));
	free(errs);
	free(path);

	path = fmt("%s/absent.conf", tmpdir);
	errs = NULL;
	CHECK(fg_conf_load(path, &c, &errs) == -ENOENT);
	CHECK(has(errs, "absent.conf: cannot read the file: "));
	free(errs);
	free(path);

	fg_conf_free(NULL);
}

static char *read_all(const char *path)
{
	char *text = NULL;
	if (fg_read_file(path, 1 << 20, &text, NULL) < 0)
		return NULL;
	return text;
}

/* The shipped etc/firegrid.conf is the generated default and it loads. */
static void test_shipped_config(void)
{
	char *shipped = read_all(FG_SHIPPED_CONF);
	CHECK(shipped != NULL);
	if (!shipped)
		return;

	char *generated = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&generated, &len);
	fg_conf_write_defaults(f);
	fclose(f);
	if (strcmp(shipped, generated) != 0) {
		fprintf(stderr, "  etc/firegrid.conf differs from fg_conf_write_defaults(); "
		        "regenerate it with `firegridd --dump-defaults`\n");
		failures++;
	}

	/* As shipped, only the placeholder secret file is missing. */
	struct fg_conf *c = NULL;
	char *errs = NULL;
	CHECK(fg_conf_load(FG_SHIPPED_CONF, &c, &errs) == -EINVAL);
	CHECK(has(errs, "[sink ops-center] secret_file: cannot read '/etc/firegrid/ops-center.secret'") ||
	      access("/etc/firegrid/ops-center.secret", R_OK) == 0);
	CHECK(count_lines(errs) == 1);
	free(errs);

	/* A test copy with the secret file pointing somewhere real loads. */
	char *secret = write_tmp("ops-center.secret", SECRET "\n");
	const char *placeholder = "/etc/firegrid/ops-center.secret";
	char *at = strstr(shipped, placeholder);
	CHECK(at != NULL);
	if (at) {
		*at = '\0';
		char *text = fmt("%s%s%s", shipped, secret, at + strlen(placeholder));
		c = load_ok(text);
		if (c) {
			CHECK(strcmp(c->gateway_id, "compound-01") == 0);
			CHECK(c->n_sources == 1 && strcmp(c->sources[0].name, "zigbee2mqtt") == 0);
			CHECK(strcmp(c->sources[0].plugin, "zigbee2mqtt") == 0);
			CHECK(c->sources[0].n_topics == 1 &&
			      strcmp(c->sources[0].topics[0], "zigbee2mqtt/#") == 0);
			CHECK(c->n_sinks == 1 && strcmp(c->sinks[0].name, "ops-center") == 0);
			CHECK(strcmp(c->sinks[0].secret, SECRET) == 0);
			CHECK(c->mqtt_port == 1883 && c->sinks[0].max_connections == 4);
		}
		fg_conf_free(c);
		free(text);
	}
	free(secret);

	/* Every line of the generated file fits libinih's line limit. */
	for (const char *p = generated; *p;) {
		size_t n = strcspn(p, "\n");
		CHECK(n <= 197);
		p += n + (p[n] == '\n');
	}
	free(generated);
	free(shipped);
}

/* [source] http_auth: the clients of a restricted source must have the
 * credentials it takes; digest user names are unique. */
static void test_push_auth(void)
{
#define CAM(name, user) "[client " name "]\nusername = " user "\npassword = cam-password-123\nallow = ingest\n"
	struct fg_conf *c = load_ok(HEAD "[source hik]\nplugin = hikvision\nhttp_clients = a\n"
	                            "http_auth = digest\nhttp_realm = b3 cameras\n"
	                            "http_digest_algorithm = sha256\n" CAM("a", "cam-a"));
	CHECK(c && c->sources[0].http_auth == FG_HTTP_AUTH_DIGEST &&
	      strcmp(c->sources[0].http_realm, "b3 cameras") == 0 &&
	      c->sources[0].http_digest_alg == FG_HTTP_DIGEST_SHA256);
	fg_conf_free(c);
	c = load_ok(HEAD "[source hik]\nplugin = hikvision\nhttp_clients = a\n" CAM("a", "cam-a"));
	CHECK(c && c->sources[0].http_auth == FG_HTTP_AUTH_ANY &&
	      strcmp(c->sources[0].http_realm, "firegrid") == 0 &&
	      c->sources[0].http_digest_alg == FG_HTTP_DIGEST_MD5);
	fg_conf_free(c);

	static const struct {
		const char *text, *expect;
	} cases[] = {
		{ HEAD "[source hik]\nplugin = p\nhttp_auth = basic\ntopics = t\n",
		  "t.conf:5: [source hik] http_auth: is for pushes: the source needs http_clients" },
		{ HEAD "[source hik]\nplugin = p\nhttp_auth = ntlm\nhttp_clients = a\n" CAM("a", "u"),
		  "t.conf:5: [source hik] http_auth: expected one of any, basic, digest, bearer" },
		{ HEAD "[source hik]\nplugin = p\nhttp_realm = say \"hi\"\nhttp_clients = a\n" CAM("a", "u"),
		  "t.conf:5: [source hik] http_realm: a realm may not contain quotes" },
		{ HEAD "[source hik]\nplugin = p\nhttp_auth = digest\nhttp_clients = a b\n" CAM("a", "u"),
		  "t.conf:3: [source hik] http_clients: no [client b] in this file" },
		{ HEAD "[source hik]\nplugin = p\nhttp_auth = digest\nhttp_clients = a\n"
		  "[client a]\ntoken = 0123456789abcdef0123\nallow = ingest\n",
		  "t.conf:3: [source hik] http_clients: [client a] has no username and password, which "
		  "http_auth = digest needs" },
		{ HEAD "[source hik]\nplugin = p\nhttp_auth = bearer\nhttp_clients = a\n" CAM("a", "u"),
		  "t.conf:3: [source hik] http_clients: [client a] has no token, which http_auth = "
		  "bearer needs" },
		{ HEAD "[source hik]\nplugin = p\nhttp_auth = digest\nhttp_clients = a\n" CAM("a", "u")
		  CAM("b", "u"),
		  "t.conf:3: [source hik] http_clients: [client a] shares its username with [client b] "
		  "(line 11); digest needs it unique" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *errs = load_bad(cases[i].text);
		CHECK(has(errs, cases[i].expect));
		if (!has(errs, cases[i].expect))
			fprintf(stderr, "case %zu: %s\n", i, errs ? errs : "(no error)");
		CHECK(count_lines(errs) == 1);
		free(errs);
	}
#undef CAM
}

static void remove_tmpdir(void)
{
	char *cmd = fmt("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	free(cmd);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_all_keys();
	test_several_named();
	test_durations();
	test_bounds_and_types();
	test_structure_errors();
	test_missing_required();
	test_secrets();
	test_long_line();
	test_all_errors();
	test_load_file();
	test_shipped_config();
	test_push_auth();
	remove_tmpdir();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
