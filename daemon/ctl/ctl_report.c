/* firegridctl report: what the operations center asks of a gateway's
 * history — hazard types, where, peak hours, how fast the loop runs, false
 * alarms per device model, the devices that alarm most.  Read-only SQL over
 * the store; times are the incidents' own (opened, reported, dispatched,
 * closed).  --by hour uses the local time zone (TZ). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cloudevent.h"
#include "ctl.h"
#include "options.h"
#include "util.h"

#define TOP_DEVICES 10

static const char usage_text[] =
	"Usage: firegridctl [--json] report [--since 30d|TIME] [--by kind|building|grid|hour]\n"
	"                   [--csv]\n"
	"\n"
	"  --since  incidents opened since then: a duration back from now (30d, 12h) or an\n"
	"           RFC 3339 time; default 30d\n"
	"  --by     group the counts by hazard kind (default), building (compound/building\n"
	"           from the registry), grid (small grid cell) or hour of day (local time)\n"
	"  --csv    only the grouped counts, as CSV\n";

/* The grouping key of each --by, as an SQL expression over incidents i
 * left-joined with its registered device d. */
static const struct {
	const char *name;
	const char *sql;
} groupings[] = {
	{ "kind", "i.kind" },
	{ "building", "coalesce(d.compound || '/' || d.building, '(unregistered)')" },
	{ "grid", "coalesce(d.grid_small, '(unregistered)')" },
	{ "hour", "strftime('%H', i.opened_ms / 1000, 'unixepoch', 'localtime')" },
};

#define FROM " FROM incidents AS i LEFT JOIN devices AS d ON d.id = i.device AND d.registered = 1" \
	" WHERE i.opened_ms >= ?1 AND i.dedup_key NOT LIKE 'site:%'"

static const char SQL_GROUPS_TAIL[] =
	" AS k, count(*), sum(i.kind IN ('smoke', 'heat', 'co', 'residual_current')),"
	" sum(i.confirmed), sum(i.state = 'closed'), sum(i.disposition = 'false_alarm'),"
	" sum(i.disposition = 'real_fire')" FROM " GROUP BY k ORDER BY k";

static const char SQL_TIMES[] =
	"SELECT avg(i.reported_ms - i.opened_ms), count(i.reported_ms),"
	" avg(i.dispatched_ms - i.opened_ms), count(i.dispatched_ms),"
	" avg(i.closed_ms - i.opened_ms), count(i.closed_ms)" FROM;

static const char SQL_MODELS[] =
	"SELECT coalesce(json_extract(i.attrs, '$.model'), d.registry_plugin, i.plugin) AS m,"
	" count(*), sum(i.state = 'closed'), sum(i.disposition = 'false_alarm')" FROM
	" AND json_valid(coalesce(i.attrs, '{}')) GROUP BY m ORDER BY m";

static const char SQL_DEVICES[] =
	"SELECT i.device, count(*), sum(i.count), d.name" FROM
	" GROUP BY i.device ORDER BY count(*) DESC, sum(i.count) DESC, i.device LIMIT ?2";

static json_t *ratio(int64_t num, int64_t den)
{
	return den ? json_real((double)num / (double)den) : json_null();
}

/* Mean seconds, or null when nothing to average. */
static json_t *mean_s(sqlite3_stmt *s, int col)
{
	return sqlite3_column_int64(s, col + 1) ? json_real(sqlite3_column_double(s, col) / 1000.0)
	                                        : json_null();
}

static int query(sqlite3 *db, const char *sql, int64_t since, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, ret, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "firegridctl report: %s\n", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_int64(*ret, 1, since);
	sqlite3_bind_int(*ret, 2, TOP_DEVICES);
	return 0;
}

static json_t *groups_json(sqlite3 *db, int by, int64_t since)
{
	char sql[1024];
	snprintf(sql, sizeof(sql), "SELECT %s%s", groupings[by].sql, SQL_GROUPS_TAIL);
	sqlite3_stmt *s;
	if (query(db, sql, since, &s) < 0)
		return NULL;
	json_t *arr = json_array();
	while (arr && sqlite3_step(s) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);
		int64_t closed = sqlite3_column_int64(s, 4), fa = sqlite3_column_int64(s, 5);
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			"key", k ? k : "-", "incidents", (json_int_t)sqlite3_column_int64(s, 1),
			"fire_class", (json_int_t)sqlite3_column_int64(s, 2),
			"confirmed", (json_int_t)sqlite3_column_int64(s, 3),
			"closed", (json_int_t)closed, "false_alarms", (json_int_t)fa,
			"real_fires", (json_int_t)sqlite3_column_int64(s, 6),
			"false_alarm_ratio", ratio(fa, closed)));
	}
	sqlite3_finalize(s);
	return arr;
}

static json_t *report_json(sqlite3 *db, int by, int64_t since)
{
	json_t *doc = json_object();
	sqlite3_stmt *s;
	if (!doc)
		return NULL;
	json_object_set_new(doc, "since", fg_cloudevent_time_json(since));
	json_object_set_new(doc, "by", json_string(groupings[by].name));
	json_object_set_new(doc, "groups", groups_json(db, by, since));

	if (query(db, SQL_TIMES, since, &s) == 0 && sqlite3_step(s) == SQLITE_ROW)
		json_object_set_new(doc, "mean_seconds", json_pack("{s:o, s:o, s:o}",
			"to_report", mean_s(s, 0), "to_dispatch", mean_s(s, 2), "to_close", mean_s(s, 4)));
	sqlite3_finalize(s);

	json_t *models = json_array();
	if (query(db, SQL_MODELS, since, &s) == 0) {
		while (sqlite3_step(s) == SQLITE_ROW) {
			int64_t closed = sqlite3_column_int64(s, 2), fa = sqlite3_column_int64(s, 3);
			const char *m = (const char *)sqlite3_column_text(s, 0);
			json_array_append_new(models, json_pack("{s:s, s:I, s:I, s:I, s:o}",
				"model", m ? m : "-", "incidents", (json_int_t)sqlite3_column_int64(s, 1),
				"closed", (json_int_t)closed, "false_alarms", (json_int_t)fa,
				"false_alarm_ratio", ratio(fa, closed)));
		}
	}
	sqlite3_finalize(s);
	json_object_set_new(doc, "models", models);

	json_t *devs = json_array();
	if (query(db, SQL_DEVICES, since, &s) == 0) {
		while (sqlite3_step(s) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(s, 3);
			json_array_append_new(devs, json_pack("{s:s, s:s?, s:I, s:I}",
				"device", (const char *)sqlite3_column_text(s, 0), "name", name,
				"incidents", (json_int_t)sqlite3_column_int64(s, 1),
				"alarms", (json_int_t)sqlite3_column_int64(s, 2)));
		}
	}
	sqlite3_finalize(s);
	json_object_set_new(doc, "top_devices", devs);
	return doc;
}

/* ---- human and CSV output ---------------------------------------------------- */

static void cell_int(json_t *o, const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%lld", (long long)json_integer_value(json_object_get(o, key)));
}

static void cell_ratio(json_t *o, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(o, key);
	if (json_is_real(v))
		snprintf(buf, len, "%.0f%%", json_real_value(v) * 100);
	else
		snprintf(buf, len, "-");
}

static void print_groups(json_t *groups, const char *by, bool csv)
{
	static const char *const keys[] = { "incidents", "fire_class", "confirmed", "closed",
	                                    "false_alarms", "real_fires" };
	const char *headers[] = { by, "INCIDENTS", "FIRE CLASS", "CONFIRMED", "CLOSED",
	                          "FALSE ALARMS", "REAL FIRES", "FALSE ALARM %" };
	if (csv) {
		printf("%s,incidents,fire_class,confirmed,closed,false_alarms,real_fires,"
		       "false_alarm_ratio\r\n", by);
	}
	struct ctl_table *t = csv ? NULL : ctl_table_new(8, headers);
	size_t i;
	json_t *g;
	json_array_foreach(groups, i, g) {
		char cells[8][64];
		const char *cp[8];
		snprintf(cells[0], sizeof(cells[0]), "%s", json_string_value(json_object_get(g, "key")));
		for (size_t k = 0; k < FG_ARRAY_SIZE(keys); k++)
			cell_int(g, keys[k], cells[k + 1], sizeof(cells[k + 1]));
		json_t *r = json_object_get(g, "false_alarm_ratio");
		if (csv) {
			if (json_is_real(r))
				snprintf(cells[7], sizeof(cells[7]), "%.4f", json_real_value(r));
			else
				cells[7][0] = '\0';
			/* Keys are kinds, "compound/building", grid cells or hours:
			 * quote them anyway, registry values may hold commas. */
			printf("\"");
			for (const char *p = cells[0]; *p; p++)
				printf(*p == '"' ? "\"\"" : "%c", *p);
			printf("\",%s,%s,%s,%s,%s,%s,%s\r\n", cells[1], cells[2], cells[3], cells[4],
			       cells[5], cells[6], cells[7]);
			continue;
		}
		cell_ratio(g, "false_alarm_ratio", cells[7], sizeof(cells[7]));
		for (int k = 0; k < 8; k++)
			cp[k] = cells[k];
		ctl_table_add(t, cp);
	}
	if (t) {
		ctl_table_print(t, stdout);
		ctl_table_free(t);
	}
}

static void print_human(json_t *doc)
{
	char since[40];
	const char *by = json_string_value(json_object_get(doc, "by"));
	snprintf(since, sizeof(since), "%s", json_string_value(json_object_get(doc, "since")));
	printf("Incidents opened since %s, by %s\n\n", since, by);
	print_groups(json_object_get(doc, "groups"), by, false);

	json_t *m = json_object_get(doc, "mean_seconds");
	static const char *const names[] = { "to_report", "to_dispatch", "to_close" };
	printf("\nMean time from the alarm");
	for (size_t i = 0; i < FG_ARRAY_SIZE(names); i++) {
		json_t *v = json_object_get(m, names[i]);
		if (json_is_real(v))
			printf("%s %s %.1f s", i ? "," : ":", names[i], json_real_value(v));
		else
			printf("%s %s -", i ? "," : ":", names[i]);
	}
	printf("\n\nFalse alarms per device model\n");
	const char *mh[] = { "MODEL", "INCIDENTS", "CLOSED", "FALSE ALARMS", "FALSE ALARM %" };
	struct ctl_table *t = ctl_table_new(5, mh);
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(doc, "models"), i, x) {
		char c[5][64];
		const char *cp[5] = { c[0], c[1], c[2], c[3], c[4] };
		snprintf(c[0], sizeof(c[0]), "%s", json_string_value(json_object_get(x, "model")));
		cell_int(x, "incidents", c[1], sizeof(c[1]));
		cell_int(x, "closed", c[2], sizeof(c[2]));
		cell_int(x, "false_alarms", c[3], sizeof(c[3]));
		cell_ratio(x, "false_alarm_ratio", c[4], sizeof(c[4]));
		ctl_table_add(t, cp);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);

	printf("\nDevices that alarm most\n");
	const char *dh[] = { "DEVICE", "NAME", "INCIDENTS", "ALARMS" };
	t = ctl_table_new(4, dh);
	json_array_foreach(json_object_get(doc, "top_devices"), i, x) {
		char c[4][96];
		const char *cp[4] = { c[0], c[1], c[2], c[3] };
		const char *name = json_string_value(json_object_get(x, "name"));
		snprintf(c[0], sizeof(c[0]), "%s", json_string_value(json_object_get(x, "device")));
		snprintf(c[1], sizeof(c[1]), "%s", name ? name : "-");
		cell_int(x, "incidents", c[2], sizeof(c[2]));
		cell_int(x, "alarms", c[3], sizeof(c[3]));
		ctl_table_add(t, cp);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

int ctl_cmd_report(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "by", required_argument, NULL, 'b' },
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *since_s = "30d";
	int by = 0, opt;
	bool csv = false;
	while ((opt = getopt_long(argc, argv, "s:b:cjh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': since_s = optarg; break;
		case 'c': csv = true; break;
		case 'j': c->json = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'b':
			by = -1;
			for (size_t i = 0; i < FG_ARRAY_SIZE(groupings); i++)
				if (strcmp(optarg, groupings[i].name) == 0)
					by = (int)i;
			if (by < 0) {
				fprintf(stderr, "firegridctl report: --by wants kind, building, grid or hour\n");
				return 2;
			}
			break;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	int64_t since, d;
	if (fg_time_parse_iso(since_s, &since) < 0) {
		if (fg_parse_duration_ms(since_s, &d) < 0) {
			fprintf(stderr, "firegridctl report: --since wants a duration (30d) or an RFC 3339 "
			        "time, got '%s'\n", since_s);
			return 2;
		}
		since = fg_now_ms() - d;
	}
	if (optind != argc || (csv && c->json)) {
		fputs(usage_text, stderr);
		return 2;
	}
	fg_store *st;
	if (ctl_open_store(c, &st) < 0)
		return 1;
	json_t *doc = report_json(fg_store_db(st), by, since);
	fg_store_close(st);
	if (!doc || !json_is_array(json_object_get(doc, "groups"))) {
		json_decref(doc);
		fprintf(stderr, "firegridctl report: cannot read the store\n");
		return 1;
	}
	if (c->json)
		return ctl_json_print(doc);
	if (csv)
		print_groups(json_object_get(doc, "groups"), groupings[by].name, true);
	else
		print_human(doc);
	json_decref(doc);
	return fflush(stdout) == 0 ? 0 : 1;
}
