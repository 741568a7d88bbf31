/* firegridctl report on a fixed data set: counts by kind, building, grid
 * cell and hour, mean times to report / dispatch / close, false alarms per
 * device model, the devices that alarm most, and the CSV output.  Runs the
 * real firegridctl (argv[1]) on a store written here. */
#include <errno.h>
#include <stdlib.h>
#include <jansson.h>
#include "store.h"
#include "store_test.h"
#include "util.h"

#define T0 1767225600000LL          /* 2026-01-01T00:00:00Z */
#define H 3600000LL

static const char *ctl_path;
static char db_path[256];

static char *run(const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "TZ=UTC %s --db %s %s", ctl_path, db_path, args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, n, m);
	fclose(m);
	int rc = pclose(p);
	CHECK(rc == 0);
	return out;
}

static json_t *report(const char *args)
{
	char *out = run(args);
	json_t *doc = out ? json_loads(out, 0, NULL) : NULL;
	if (!doc)
		fprintf(stderr, "not JSON: %s\n", out ? out : "(null)");
	free(out);
	return doc;
}

static json_t *group(json_t *doc, const char *key)
{
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(doc, "groups"), i, g)
		if (strcmp(json_string_value(json_object_get(g, "key")), key) == 0)
			return g;
	return NULL;
}

static json_int_t num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void fill(void)
{
	fg_store *st;
	CHECK(fg_store_open(db_path, FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		exit(1);
	static const char sql[] =
		"INSERT INTO devices(id, registered, registry_plugin, name, compound, building,"
		" grid_small) VALUES"
		" ('a1', 1, 'zigbee2mqtt', 'kitchen', 'heping', '3', 'b3'),"
		" ('a2', 1, 'zigbee2mqtt', 'hall', 'heping', '3', 'b3'),"
		" ('b1', 1, 'zigbee2mqtt', 'stairs', 'heping', '4', 'b4');"
		"INSERT INTO incidents(dedup_key, device, source, plugin, kind, severity, state,"
		" revision, count, opened_ms, last_seen_ms, reported_ms, dispatched_ms, closed_ms,"
		" disposition, confirmed, attrs) VALUES"
		" ('a1|smoke', 'a1', 'z', 'zigbee2mqtt', 'smoke', 'critical', 'closed', 5, 3,"
		"  %lld, 0, %lld, %lld, %lld, 'real_fire', 1, '{\"model\":\"HS1SA\"}'),"
		" ('a1|smoke', 'a1', 'z', 'zigbee2mqtt', 'smoke', 'critical', 'closed', 3, 1,"
		"  %lld, 0, %lld, NULL, %lld, 'false_alarm', 0, '{\"model\":\"HS1SA\"}'),"
		" ('a2|heat', 'a2', 'z', 'zigbee2mqtt', 'heat', 'critical', 'dispatched', 2, 1,"
		"  %lld, 0, %lld, %lld, NULL, NULL, 1, '{\"model\":\"TS0601\"}'),"
		" ('b1|battery_low', 'b1', 'z', 'zigbee2mqtt', 'battery_low', 'warning', 'reported',"
		"  1, 1, %lld, 0, %lld, NULL, NULL, NULL, 1, NULL),"
		" ('u1|offline', 'u1', 'g', 'generic-json', 'offline', 'warning', 'open', 1, 1,"
		"  %lld, 0, NULL, NULL, NULL, NULL, 1, '{}'),"
		" ('a1|smoke', 'a1', 'z', 'zigbee2mqtt', 'smoke', 'critical', 'closed', 2, 1,"
		"  %lld, 0, NULL, NULL, %lld, 'test', 1, NULL),"
		" ('site:west|offline', 'site:west', 'z', 'firegrid', 'offline', 'major', 'open',"
		"  1, 6, %lld, 0, NULL, NULL, NULL, NULL, 1, NULL);";
	char *text = NULL;
	long long o1 = T0 + 2 * H, o2 = T0 + 3 * H, o3 = T0 + 3 * H + 600000, o4 = T0 + 20 * H,
	          o5 = T0 + 20 * H + 300000, old = T0 - 240 * H;
	CHECK(asprintf(&text, sql, o1, o1 + 2000, o1 + 30000, o1 + 600000, o2, o2 + 4000,
	               o2 + 100000, o3, o3 + 6000, o3 + 60000, o4, o4 + 10000, o5, old, old + 1,
	               o5) > 0);
	char *err = NULL;
	CHECK(sqlite3_exec(fg_store_db(st), text, NULL, NULL, &err) == SQLITE_OK);
	if (err)
		fprintf(stderr, "%s\n", err);
	sqlite3_free(err);
	free(text);
	fg_store_close(st);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_report FIREGRIDCTL\n");
		return 2;
	}
	ctl_path = argv[1];
	test_dir_make();
	test_path(db_path, sizeof(db_path), "report.db");
	fill();

	json_t *doc = report("--json report --since 2026-01-01T00:00:00Z");
	CHECK(doc && strcmp(json_string_value(json_object_get(doc, "by")), "kind") == 0);
	CHECK(json_array_size(json_object_get(doc, "groups")) == 4);
	json_t *g = group(doc, "smoke");
	CHECK(g && num(g, "incidents") == 2 && num(g, "fire_class") == 2 && num(g, "confirmed") == 1);
	CHECK(g && num(g, "closed") == 2 && num(g, "false_alarms") == 1 && num(g, "real_fires") == 1);
	CHECK(g && json_real_value(json_object_get(g, "false_alarm_ratio")) == 0.5);
	g = group(doc, "heat");
	CHECK(g && num(g, "incidents") == 1 && json_is_null(json_object_get(g, "false_alarm_ratio")));
	CHECK(group(doc, "battery_low") && group(doc, "offline"));
	CHECK(group(doc, "offline") && num(group(doc, "offline"), "incidents") == 1);  /* no site */

	json_t *m = json_object_get(doc, "mean_seconds");
	CHECK(json_real_value(json_object_get(m, "to_report")) == 5.5);
	CHECK(json_real_value(json_object_get(m, "to_dispatch")) == 45.0);
	CHECK(json_real_value(json_object_get(m, "to_close")) == 350.0);

	json_t *models = json_object_get(doc, "models");
	CHECK(json_array_size(models) == 4);
	json_t *hs = json_array_get(models, 0);       /* sorted: HS1SA first */
	CHECK(hs && strcmp(json_string_value(json_object_get(hs, "model")), "HS1SA") == 0);
	CHECK(hs && num(hs, "incidents") == 2 && num(hs, "false_alarms") == 1 &&
	      json_real_value(json_object_get(hs, "false_alarm_ratio")) == 0.5);
	json_t *top = json_array_get(json_object_get(doc, "top_devices"), 0);
	CHECK(top && strcmp(json_string_value(json_object_get(top, "device")), "a1") == 0 &&
	      num(top, "incidents") == 2 && num(top, "alarms") == 4 &&
	      strcmp(json_string_value(json_object_get(top, "name")), "kitchen") == 0);
	json_decref(doc);

	doc = report("--json report --since 2026-01-01T00:00:00Z --by building");
	CHECK(doc && num(group(doc, "heping/3"), "incidents") == 3);
	CHECK(doc && num(group(doc, "heping/4"), "incidents") == 1);
	CHECK(doc && num(group(doc, "(unregistered)"), "incidents") == 1);
	json_decref(doc);
	doc = report("--json report --since 2026-01-01T00:00:00Z --by grid");
	CHECK(doc && num(group(doc, "b3"), "incidents") == 3 && num(group(doc, "b4"), "incidents") == 1);
	json_decref(doc);
	doc = report("--json report --since 2026-01-01T00:00:00Z --by hour");
	CHECK(doc && num(group(doc, "02"), "incidents") == 1 && num(group(doc, "03"), "incidents") == 2);
	CHECK(doc && num(group(doc, "20"), "incidents") == 2 && json_array_size(json_object_get(doc, "groups")) == 3);
	json_decref(doc);
	/* Everything since long ago includes the old test closure. */
	doc = report("--json report --since 2025-01-01T00:00:00Z");
	CHECK(doc && num(group(doc, "smoke"), "incidents") == 3);
	json_decref(doc);

	char *csv = run("report --since 2026-01-01T00:00:00Z --csv");
	CHECK(csv && strstr(csv, "kind,incidents,fire_class,confirmed,closed,false_alarms,real_fires,"
	                         "false_alarm_ratio\r\n"));
	CHECK(csv && strstr(csv, "\"smoke\",2,2,1,2,1,1,0.5000\r\n"));
	free(csv);
	char *human = run("report --since 2026-01-01T00:00:00Z");
	CHECK(human && strstr(human, "False alarms per device model") && strstr(human, "HS1SA"));
	CHECK(human && strstr(human, "to_dispatch 45.0 s"));
	free(human);
	return test_result("test_report");
}
