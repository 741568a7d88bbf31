/* firegridctl against a prepared store: the real binary (argv[1]) with
 * --db and --json, output parsed and checked, plus exit codes. */
#include <errno.h>
#include <sys/wait.h>
#include <jansson.h>
#include "incident.h"
#include "outbox.h"
#include "store.h"
#include "store_test.h"

static const char *ctl;
static char db[256];

/* Run firegridctl with args; returns its exit code and its stdout in *out
 * (malloc'd). */
static int run(const char *args, char **out)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' --db '%s' %s 2>/dev/null", ctl, db, args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t cap = 4096, len = 0, n;
	char *buf = malloc(cap);
	while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = '\0';
	int st = pclose(p);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *run_json(const char *args)
{
	char *out = NULL;
	int rc = run(args, &out);
	CHECK(rc == 0);
	json_error_t err;
	json_t *doc = out ? json_loads(out, 0, &err) : NULL;
	if (!doc)
		fprintf(stderr, "firegridctl %s: not one JSON document: %s\n", args, out ? out : "");
	free(out);
	return doc;
}

#define JINT(o, k) json_integer_value(json_object_get((o), (k)))
#define JSTR(o, k) (json_string_value(json_object_get((o), (k))) ? json_string_value(json_object_get((o), (k))) : "")

static void prepare(void)
{
	fg_store *st = NULL;
	fg_outbox *ob = NULL;
	fg_incidents *incs = NULL;
	struct fg_conf_sink sink = { .name = "ops" };
	struct fg_conf conf = { .gateway_id = "gw1", .sinks = &sink, .n_sinks = 1 };
	CHECK(fg_store_open(db, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		exit(1);
	CHECK(fg_outbox_new(st, &conf, &ob) == 0);
	CHECK(fg_incidents_new(st, ob, &incs) == 0);
	struct fg_ev ev = test_ev("0x00158d0001a2b3c4", FG_KIND_SMOKE, FG_SEV_CRITICAL, 1741918305120LL);
	int64_t id;
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED && id == 1);
	ev.recv_time_ms += 1000;
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_REPEAT);
	ev.device = "3号楼-烟感-12";
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED && id == 2);
	ev.kind = FG_KIND_CLEAR;
	ev.clears = FG_KIND_SMOKE;
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_CLEARED);
	/* Outbox rows: 1 = incident 1 opened, 2 = incident 2 opened, 3 = cleared. */
	CHECK(fg_outbox_retry(ob, 1, 1741918999000LL, 503, "HTTP 503") == 0);
	CHECK(fg_outbox_dead(ob, 2, 410, "gone", "HTTP 410", 1741918999000LL) == 0);
	CHECK(fg_incidents_mark_reported(incs, 1, "ops", 1741918305500LL) == 0);
	CHECK(fg_store_metric_put(st, "firegrid_events_total", 4, 1741918999000LL) == 0);
	CHECK(fg_store_commit(st) == 0);
	fg_incidents_free(incs);
	fg_outbox_free(ob);
	fg_store_close(st);
}

static void test_json(void)
{
	json_t *doc = run_json("--json status");
	json_t *inc = json_object_get(doc, "incidents");
	CHECK(JINT(doc, "schema_version") == FG_STORE_SCHEMA_VERSION);
	CHECK(JINT(inc, "open") == 1 && JINT(inc, "reported") == 1);
	CHECK(JINT(json_object_get(doc, "outbox"), "pending") == 2);
	CHECK(strcmp(JSTR(json_object_get(doc, "outbox"), "oldest_created_at"),
	             "2025-03-14T02:11:45.120Z") == 0);
	CHECK(JINT(doc, "dead_letters") == 1);
	CHECK(JINT(doc, "events") == 4);
	CHECK(JINT(json_object_get(doc, "counters"), "firegrid_events_total") == 4);
	json_decref(doc);

	doc = run_json("--json incidents");
	CHECK(json_array_size(doc) == 2);
	json_t *first = json_array_get(doc, 0), *second = json_array_get(doc, 1);
	CHECK(JINT(first, "id") == 2 && JINT(second, "id") == 1);       /* newest first */
	CHECK(strcmp(JSTR(first, "device"), "3号楼-烟感-12") == 0);
	CHECK(strcmp(JSTR(first, "cleared_at"), "2025-03-14T02:11:46.120Z") == 0);
	CHECK(JINT(first, "revision") == 2);
	CHECK(strcmp(JSTR(second, "state"), "reported") == 0 && JINT(second, "count") == 2);
	CHECK(strcmp(JSTR(second, "reported_at"), "2025-03-14T02:11:45.500Z") == 0);
	json_decref(doc);

	doc = run_json("--json incidents --state reported --limit 5");
	CHECK(json_array_size(doc) == 1 && JINT(json_array_get(doc, 0), "id") == 1);
	json_decref(doc);
	doc = run_json("incidents --limit 1 --json");      /* --json after the command */
	CHECK(json_array_size(doc) == 1 && JINT(json_array_get(doc, 0), "id") == 2);
	json_decref(doc);
	doc = run_json("--json incidents --state closed");
	CHECK(json_is_array(doc) && json_array_size(doc) == 0);
	json_decref(doc);

	doc = run_json("--json incident 2");
	CHECK(JINT(json_object_get(doc, "incident"), "id") == 2);
	json_t *hist = json_object_get(doc, "history");
	CHECK(json_array_size(hist) == 2);
	CHECK(strcmp(JSTR(json_array_get(hist, 1), "note"), "cleared") == 0);
	CHECK(strcmp(JSTR(json_array_get(hist, 0), "at"), "2025-03-14T02:11:46.120Z") == 0);
	CHECK(json_array_size(json_object_get(doc, "outbox")) == 1);
	CHECK(JINT(json_array_get(json_object_get(doc, "dead_letters"), 0), "status") == 410);
	json_decref(doc);

	doc = run_json("--json outbox");
	CHECK(json_array_size(doc) == 2);
	CHECK(JINT(json_array_get(doc, 0), "id") == 1 && JINT(json_array_get(doc, 0), "last_status") == 503);
	CHECK(strcmp(JSTR(json_array_get(doc, 1), "webhook_id"), "gw1-2-2") == 0);
	json_decref(doc);

	doc = run_json("--json dead-letters");
	CHECK(json_array_size(doc) == 1);
	json_t *body = json_loads(JSTR(json_array_get(doc, 0), "body"), 0, NULL);
	CHECK(strcmp(JSTR(body, "id"), "gw1-2-1") == 0);
	CHECK(strcmp(JSTR(json_array_get(doc, 0), "response"), "gone") == 0);
	json_decref(body);
	json_decref(doc);
}

static void test_human_and_exit_codes(void)
{
	char *out = NULL;
	CHECK(run("incidents", &out) == 0);
	CHECK(out && strncmp(out, "ID ", 3) == 0);
	CHECK(out && strstr(out, "3号楼-烟感-12") && strstr(out, "open (cleared)"));
	free(out);
	CHECK(run("incident 1", &out) == 0);
	CHECK(out && strstr(out, "incident 1: critical smoke, reported"));
	CHECK(out && strstr(out, "zigbee2mqtt/z2m") && strstr(out, "HTTP 503"));
	free(out);
	CHECK(run("status", &out) == 0);
	CHECK(out && strstr(out, "open 1, reported 1") && strstr(out, "firegrid_events_total"));
	free(out);
	CHECK(run("--version", &out) == 0);
	CHECK(out && strncmp(out, "firegridctl ", 12) == 0);
	free(out);

	CHECK(run("frobnicate", NULL) == 2);
	CHECK(run("incident", NULL) == 2);
	CHECK(run("incident abc", NULL) == 2);
	CHECK(run("incidents --state bogus", NULL) == 2);
	CHECK(run("incidents --limit -3", NULL) == 2);
	CHECK(run("incident 99", NULL) == 1);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "'%s' --db '%s/missing.db' status >/dev/null 2>&1", ctl, test_dir);
	int st = system(cmd);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

/* Without --db the store path comes from the configuration. */
static void test_config_path(void)
{
	char conf[256], cmd[1024];
	test_path(conf, sizeof(conf), "firegrid.conf");
	FILE *f = fopen(conf, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fprintf(f, "[daemon]\ngateway_id = gw1\nstate_dir = %s\n\n[store]\ndb_path = ctl.db\n\n"
	           "[sink ops]\nurl = http://127.0.0.1:9/\n"
	           "secret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", test_dir);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "'%s' --config '%s' --json incidents 2>/dev/null", ctl, conf);
	FILE *p = popen(cmd, "r");
	json_t *doc = p ? json_loadf(p, 0, NULL) : NULL;
	CHECK(p && pclose(p) == 0);
	CHECK(json_array_size(doc) == 2);
	json_decref(doc);
	snprintf(cmd, sizeof(cmd), "'%s' --config '%s/absent.conf' status >/dev/null 2>&1", ctl, test_dir);
	int st = system(cmd);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_ctl PATH-TO-FIREGRIDCTL\n");
		return 2;
	}
	ctl = argv[1];
	test_dir_make();
	test_path(db, sizeof(db), "ctl.db");
	prepare();
	test_json();
	test_human_and_exit_codes();
	test_config_path();
	return test_result("test_ctl");
}
