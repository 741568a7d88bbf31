/* Golden tests of the output formats: the exact bodies of PagerDuty Events
 * API v2 (trigger, acknowledge, resolve) and OASIS CAP 1.2 (Alert, Update,
 * Cancel) for fixed incidents, compared with tests/unit/formats/ (set
 * FG_UPDATE_GOLDEN=1 to rewrite them after a deliberate change); the
 * outbox building one body per format; the sink config. */
#include <errno.h>
#include <stdlib.h>
#include "formats.h"
#include "outbox.h"
#include "registry.h"
#include "store.h"
#include "store_test.h"
#include "util.h"

static struct fg_conf_sink pd = { .name = "pd", .format = FG_FORMAT_PAGERDUTY,
                                  .routing_key = "R0UTINGKEY0123456789abcdef012345" };
static struct fg_conf_sink cap = { .name = "cap", .format = FG_FORMAT_CAP };

static struct fg_incident incident(void)
{
	return (struct fg_incident){
		.id = 42, .dedup_key = "0x00158d0001a2b3c4|smoke", .device = "0x00158d0001a2b3c4",
		.source = "z2m", .plugin = "zigbee2mqtt", .kind = FG_KIND_SMOKE,
		.severity = FG_SEV_CRITICAL, .state = "reported", .revision = 1, .count = 1,
		.opened_ms = 1741918305120LL, .last_seen_ms = 1741918305120LL,
		.reported_ms = 1741918305300LL, .registered = 1,
		.reg = { [FG_REG_NAME] = "3-2-201 kitchen", [FG_REG_COMPOUND] = "heping",
		         [FG_REG_BUILDING] = "3", [FG_REG_UNIT] = "2", [FG_REG_FLOOR] = "2",
		         [FG_REG_ROOM] = "201", [FG_REG_GRID_SMALL] = "b3",
		         [FG_REG_GRID_MEDIUM] = "community-5", [FG_REG_GRID_LARGE] = "street-2" },
	};
}

static void golden(const char *name, char *body)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", FG_TEST_GOLDEN_DIR, name);
	CHECK(body != NULL);
	if (!body)
		return;
	if (getenv("FG_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");
		CHECK(f && fputs(body, f) >= 0 && fclose(f) == 0);
		free(body);
		return;
	}
	char *want = NULL;
	CHECK(fg_read_file(path, 1 << 20, &want, NULL) == 0);
	if (want && strcmp(body, want) != 0) {
		fprintf(stderr, "%s differs:\ngot:\n%s\nwant:\n%s\n", name, body, want);
		failures++;
	}
	free(want);
	free(body);
}

static void test_pagerduty(void)
{
	struct fg_incident inc = incident();
	golden("pagerduty-trigger.json",
	       fg_format_body(&pd, "gw1", "gw1-42-1", "opened", &inc, NULL, 1741918305125LL));
	inc.state = "dispatched";
	inc.revision = 3;
	inc.confirmed = 1;
	inc.case_no = "SH-0314-007";
	inc.dispatched_unit = "micro-station-3";
	inc.dispatched_ms = 1741918335000LL;
	golden("pagerduty-acknowledge.json",
	       fg_format_body(&pd, "gw1", "gw1-42-3", "dispatched", &inc, NULL, 1741918335001LL));
	inc.state = "closed";
	inc.revision = 6;
	inc.disposition = "real_fire";
	inc.closed_ms = 1741919305000LL;
	golden("pagerduty-resolve.json",
	       fg_format_body(&pd, "gw1", "gw1-42-6", "closed", &inc, NULL, 1741919305001LL));
	/* An escalated, unregistered detector: the summary says so. */
	inc = incident();
	inc.registered = 0;
	memset(inc.reg, 0, sizeof(inc.reg));
	inc.esc_level = 2;
	inc.revision = 4;
	char *b = fg_format_body(&pd, "gw1", "gw1-42-4", "escalated", &inc, NULL, 1741918485125LL);
	CHECK(b && strstr(b, "\"summary\":\"Smoke alarm at device 0x00158d0001a2b3c4 (critical, "
	                     "unconfirmed, escalated to large_grid)\""));
	CHECK(b && strstr(b, "\"group\":\"z2m\"") && strstr(b, "\"event_action\":\"trigger\""));
	free(b);
}

static void test_cap(void)
{
	struct fg_incident inc = incident();
	golden("cap-alert.xml", fg_format_body(&cap, "gw1", "gw1-42-1", "opened", &inc, NULL,
	                                       1741918305125LL));
	inc.revision = 2;
	inc.confirmed = 1;
	inc.esc_level = 1;
	inc.overdue = 1;
	golden("cap-update.xml", fg_format_body(&cap, "gw1", "gw1-42-2", "escalated", &inc, NULL,
	                                        1741918365125LL));
	inc.state = "closed";
	inc.revision = 3;
	inc.disposition = "false_alarm";
	inc.closed_ms = 1741918405000LL;
	inc.case_no = "SH<&>\"7\"";
	golden("cap-cancel.xml", fg_format_body(&cap, "gw1", "gw1-42-3", "closed", &inc, NULL,
	                                        1741918405001LL));
	/* Device health is infrastructure, not fire. */
	inc = incident();
	inc.kind = FG_KIND_BATTERY_LOW;
	inc.severity = FG_SEV_WARNING;
	char *b = fg_format_body(&cap, "gw1", "gw1-42-1", "opened", &inc, NULL, 1741918305125LL);
	CHECK(b && strstr(b, "<category>Infra</category>") && strstr(b, "<urgency>Expected</urgency>"));
	CHECK(b && strstr(b, "<severity>Moderate</severity>") && strstr(b, "<certainty>Observed"));
	free(b);
	CHECK(strcmp(fg_format_content_type(FG_FORMAT_CAP), "application/cap+xml") == 0);
	CHECK(strcmp(fg_format_content_type(FG_FORMAT_PAGERDUTY), "application/json") == 0);
	CHECK(strcmp(fg_format_content_type(FG_FORMAT_CLOUDEVENTS), "application/cloudevents+json") == 0);
	CHECK(fg_format_body(&cap, "gw1", "x", "opened", NULL, NULL, 0) == NULL);
}

/* Three sinks, three formats: one outbox row each, each in its format. */
static void test_outbox(void)
{
	char path[256];
	struct fg_conf_sink sinks[] = {
		{ .name = "ce", .min_severity = FG_SEV_INFO },
		{ .name = "pd", .format = FG_FORMAT_PAGERDUTY, .routing_key = "key-1" },
		{ .name = "cap", .format = FG_FORMAT_CAP },
	};
	struct fg_conf conf = { .gateway_id = "gw1", .sinks = sinks, .n_sinks = 3 };
	fg_store *st;
	fg_outbox *ob;
	test_dir_make();
	CHECK(fg_store_open(test_path(path, sizeof(path), "f.db"), FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return;
	CHECK(fg_outbox_new(st, &conf, &ob) == 0);
	CHECK(sqlite3_exec(fg_store_db(st), "INSERT INTO incidents(id, dedup_key, device, source,"
	                   " plugin, kind, severity, state, revision, count, opened_ms, last_seen_ms)"
	                   " VALUES(42, 'd|smoke', 'd', 'z2m', 'zigbee2mqtt', 'smoke', 'critical',"
	                   " 'open', 1, 1, 1000, 1000)", NULL, NULL, NULL) == SQLITE_OK);
	struct fg_incident inc = incident();
	inc.state = "open";
	CHECK(fg_outbox_enqueue(ob, &inc, NULL, "opened", 2000) == 3);
	sqlite3 *db = fg_store_db(st);
	CHECK(test_query_int(db, "SELECT count(*) FROM outbox WHERE sink = 'ce' AND body LIKE"
	                         " '{\"data\":%'") == 1);
	CHECK(test_query_int(db, "SELECT count(*) FROM outbox WHERE sink = 'pd' AND body LIKE"
	                         " '%\"routing_key\":\"key-1\"%'") == 1);
	CHECK(test_query_int(db, "SELECT count(*) FROM outbox WHERE sink = 'cap' AND body LIKE"
	                         " '<?xml%<msgType>Alert</msgType>%'") == 1);
	CHECK(test_query_int(db, "SELECT count(DISTINCT webhook_id) FROM outbox") == 1);

	CHECK(fg_store_commit(st) == 0);
	fg_outbox_free(ob);
	fg_store_close(st);
}

static void test_conf(void)
{
	struct fg_conf *c = NULL;
	char *errs = NULL;
	static const char text[] =
		"[daemon]\ngateway_id = gw\n"
		"[sink pd]\nurl = https://events.pagerduty.com/v2/enqueue\n"
		"secret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nformat = pagerduty\n"
		"[sink cap]\nurl = http://127.0.0.1:1/cap\nsecret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
		"format = cap\n"
		"[sink x]\nurl = http://127.0.0.1:1/x\nsecret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
		"format = rss\n";
	CHECK(fg_conf_load_string("t.conf", text, &c, &errs) == -EINVAL);
	CHECK(errs && strstr(errs, "t.conf:6: [sink pd] routing_key: format = pagerduty needs"));
	CHECK(errs && strstr(errs, "t.conf:14: [sink x] format: expected one of cloudevents, "
	                           "pagerduty, cap, got 'rss'"));
	if (errs && (!strstr(errs, "[sink pd] routing_key") || !strstr(errs, "got 'rss'")))
		fprintf(stderr, "%s\n", errs);
	free(errs);
}

int main(void)
{
	test_pagerduty();
	test_cap();
	test_outbox();
	test_conf();
	return test_result("test_formats");
}
