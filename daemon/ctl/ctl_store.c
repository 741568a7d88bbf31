/* firegridctl's read commands: status, incidents, incident, outbox,
 * dead-letters (see ctl.h for the JSON shapes). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cloudevent.h"
#include "ctl.h"
#include "incident.h"
#include "outbox.h"
#include "util.h"

/* Table cells longer than this are cut (errors, response excerpts). */
#define CELL_MAX 60

/* ---- shared option parsing ---------------------------------------------- */

struct list_opts {
	const char *state;
	int64_t limit;             /* -1 = all */
};

static const char *const known_states[] = {
	FG_STATE_OPEN, FG_STATE_REPORTED, FG_STATE_DISPATCHED, FG_STATE_IN_PROGRESS,
	FG_STATE_RESOLVED, FG_STATE_CLOSED, FG_STATE_RETURNED, FG_STATE_REOPENED,
};

/* Parse a command's options (--json is accepted after the command too);
 * returns -1 to go on, else the exit code. */
static int parse_opts(struct ctl *c, int argc, char **argv, bool with_state, bool with_limit,
                      const char *usage, struct list_opts *o)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	o->state = NULL;
	o->limit = -1;
	while ((opt = getopt_long(argc, argv, "s:n:jh", opts, NULL)) != -1) {
		if (opt == 'j') {
			c->json = true;
		} else if (opt == 'h') {
			printf("Usage: firegridctl [--json] %s\n", usage);
			return 0;
		} else if (opt == 's' && with_state) {
			bool ok = false;
			for (size_t i = 0; i < FG_ARRAY_SIZE(known_states); i++)
				ok |= strcmp(optarg, known_states[i]) == 0;
			if (!ok) {
				fprintf(stderr, "firegridctl %s: unknown state '%s'\n", argv[0], optarg);
				return 2;
			}
			o->state = optarg;
		} else if (opt == 'n' && with_limit) {
			char *end;
			errno = 0;
			long long v = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 0) {
				fprintf(stderr, "firegridctl %s: --limit wants a count, got '%s'\n",
				        argv[0], optarg);
				return 2;
			}
			o->limit = v;
		} else {
			fprintf(stderr, "Usage: firegridctl [--json] %s\n", usage);
			return 2;
		}
	}
	return -1;
}

/* ---- rows as tables or JSON --------------------------------------------- */

/* Column "next_attempt_ms" reads as time "next_attempt_at" in JSON and
 * "NEXT ATTEMPT" in a table header ("at_ms": "at", "AT"). */
static bool is_time_column(const char *name)
{
	size_t n = strlen(name);
	return n > 3 && strcmp(name + n - 3, "_ms") == 0;
}

static json_t *row_json(sqlite3_stmt *s)
{
	json_t *o = json_object();
	for (int i = 0; o && i < sqlite3_column_count(s); i++) {
		const char *name = sqlite3_column_name(s, i);
		char key[64];
		json_t *v;
		snprintf(key, sizeof(key), "%s", name);
		if (is_time_column(name)) {
			size_t n = strlen(key) - 3;
			key[n] = '\0';
			if (strcmp(key, "at") != 0)
				snprintf(key + n, sizeof(key) - n, "_at");
			v = fg_cloudevent_time_json(sqlite3_column_int64(s, i));
		} else if (sqlite3_column_type(s, i) == SQLITE_INTEGER) {
			v = json_integer(sqlite3_column_int64(s, i));
		} else if (sqlite3_column_type(s, i) == SQLITE_FLOAT) {
			v = json_real(sqlite3_column_double(s, i));
		} else if (sqlite3_column_type(s, i) == SQLITE_NULL) {
			v = json_null();
		} else {
			v = json_string((const char *)sqlite3_column_text(s, i));
		}
		if (!v || json_object_set_new(o, key, v) < 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

/* Every row of a statement (bound, not yet stepped) as a JSON array. */
static json_t *rows_json(sqlite3_stmt *s)
{
	json_t *a = json_array();
	int r;
	while (a && (r = fg_store_step_row(s)) > 0) {
		if (json_array_append_new(a, row_json(s)) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	sqlite3_reset(s);
	return a;
}

static void cell_text(sqlite3_stmt *s, int i, char *buf, size_t len)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL) {
		snprintf(buf, len, "-");
	} else if (is_time_column(sqlite3_column_name(s, i))) {
		ctl_time(sqlite3_column_int64(s, i), buf, len);
	} else {
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, i));
		if (strlen(buf) > CELL_MAX) {
			/* Cut on a UTF-8 character boundary. */
			size_t cut = CELL_MAX - 3;
			while (cut > 0 && ((unsigned char)buf[cut] & 0xc0) == 0x80)
				cut--;
			strcpy(buf + cut, "...");
		}
	}
}

/* Every row of a statement as an aligned table (header from the column
 * names); prints `none` when there are no rows. */
static int rows_table(sqlite3_stmt *s, const char *none)
{
	int ncols = sqlite3_column_count(s);
	char hdr[16][32], cell[16][CELL_MAX + 8];
	const char *hp[16], *cp[16];
	if (ncols > 16)
		ncols = 16;
	for (int i = 0; i < ncols; i++) {
		const char *name = sqlite3_column_name(s, i);
		size_t j = 0;
		for (; name[j] && j + 1 < sizeof(hdr[i]); j++)
			hdr[i][j] = name[j] == '_' ? ' ' : (char)(name[j] >= 'a' && name[j] <= 'z'
			                                           ? name[j] - 'a' + 'A' : name[j]);
		hdr[i][j] = '\0';
		if (is_time_column(name))
			hdr[i][j - 3] = '\0';
		hp[i] = hdr[i];
		cp[i] = cell[i];
	}
	struct ctl_table *t = ctl_table_new((size_t)ncols, hp);
	int r, n = 0;
	while ((r = fg_store_step_row(s)) > 0) {
		for (int i = 0; i < ncols; i++)
			cell_text(s, i, cell[i], sizeof(cell[i]));
		ctl_table_add(t, cp);
		n++;
	}
	sqlite3_reset(s);
	if (r < 0) {
		fprintf(stderr, "firegridctl: reading the store failed: %s\n", fg_strerror(r));
	} else if (n == 0) {
		printf("%s\n", none);
	} else {
		ctl_table_print(t, stdout);
	}
	ctl_table_free(t);
	return r < 0 ? 1 : 0;
}

static sqlite3_stmt *stmt(fg_store *st, const char *sql)
{
	sqlite3_stmt *s = fg_store_stmt(st, sql);
	if (!s)
		fprintf(stderr, "firegridctl: unexpected store schema: %s\n",
		        sqlite3_errmsg(fg_store_db(st)));
	return s;
}

static int64_t query_int(fg_store *st, const char *sql)
{
	sqlite3_stmt *s = stmt(st, sql);
	int64_t v = 0;
	if (s && fg_store_step_row(s) > 0) {
		v = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	}
	return v;
}

/* ---- status ------------------------------------------------------------- */

static const char SQL_BY_STATE[] =
	"SELECT state, count(*) FROM incidents GROUP BY state ORDER BY state";
/* Event ids are dense (pruning deletes from the low end), so this is the
 * row count without a full scan. */
static const char SQL_EVENTS[] = "SELECT coalesce(max(id) - min(id) + 1, 0) FROM events";
static const char SQL_DEAD_COUNT[] = "SELECT count(*) FROM dead_letters";
static const char SQL_METRICS[] = "SELECT name, value, updated_ms FROM metrics ORDER BY name";

static json_t *status_json(fg_store *st, int64_t depth, int64_t oldest, int64_t now)
{
	json_t *doc = json_object(), *by_state = json_object(), *counters = json_object();
	json_t *outbox = json_pack("{s:I,s:o,s:o}", "pending", (json_int_t)depth,
	                           "oldest_created_at", fg_cloudevent_time_json(oldest),
	                           "oldest_age_s", oldest ? json_integer((now - oldest) / 1000)
	                                                  : json_null());
	sqlite3_stmt *s = stmt(st, SQL_BY_STATE);
	while (s && by_state && fg_store_step_row(s) > 0)
		json_object_set_new(by_state, (const char *)sqlite3_column_text(s, 0),
		                    json_integer(sqlite3_column_int64(s, 1)));
	s = stmt(st, SQL_METRICS);
	while (s && counters && fg_store_step_row(s) > 0)
		json_object_set_new(counters, (const char *)sqlite3_column_text(s, 0),
		                    json_integer(sqlite3_column_int64(s, 1)));
	if (doc && by_state && counters && outbox) {
		json_object_set_new(doc, "schema_version", json_integer(fg_store_schema_version(st)));
		json_object_set_new(doc, "database", json_string(sqlite3_db_filename(fg_store_db(st), "main")));
		json_object_set(doc, "incidents", by_state);
		json_object_set(doc, "outbox", outbox);
		json_object_set_new(doc, "dead_letters", json_integer(query_int(st, SQL_DEAD_COUNT)));
		json_object_set_new(doc, "events", json_integer(query_int(st, SQL_EVENTS)));
		json_object_set(doc, "counters", counters);
	} else {
		json_decref(doc);
		doc = NULL;
	}
	json_decref(by_state);
	json_decref(counters);
	json_decref(outbox);
	return doc;
}

static int status_human(fg_store *st, int64_t depth, int64_t oldest, int64_t now)
{
	printf("%-14s%s (schema v%d)\n", "database", sqlite3_db_filename(fg_store_db(st), "main"),
	       fg_store_schema_version(st));
	printf("%-14s", "incidents");
	sqlite3_stmt *s = stmt(st, SQL_BY_STATE);
	int n = 0;
	while (s && fg_store_step_row(s) > 0)
		printf("%s%s %lld", n++ ? ", " : "", (const char *)sqlite3_column_text(s, 0),
		       (long long)sqlite3_column_int64(s, 1));
	printf("%s\n", n ? "" : "none");
	printf("%-14s%lld pending", "outbox", (long long)depth);
	if (oldest) {
		int64_t s_old = (now - oldest) / 1000;
		if (s_old < 120)
			printf(", oldest %llds old", (long long)s_old);
		else if (s_old < 2 * 3600)
			printf(", oldest %lldm old", (long long)(s_old / 60));
		else if (s_old < 2 * 86400)
			printf(", oldest %lldh old", (long long)(s_old / 3600));
		else
			printf(", oldest %lldd old", (long long)(s_old / 86400));
	}
	printf("\n%-14s%lld\n", "dead letters", (long long)query_int(st, SQL_DEAD_COUNT));
	printf("%-14s%lld\n\n", "events", (long long)query_int(st, SQL_EVENTS));
	s = stmt(st, SQL_METRICS);
	return s ? rows_table(s, "no counters recorded yet") : 1;
}

int ctl_cmd_status(struct ctl *c, int argc, char **argv)
{
	struct list_opts o;
	int r = parse_opts(c, argc, argv, false, false, "status", &o);
	if (r >= 0)
		return r;
	fg_store *st;
	fg_outbox *ob = NULL;
	if (ctl_open_store(c, &st) < 0)
		return 1;
	int64_t depth = 0, oldest = 0, now = fg_now_ms();
	r = fg_outbox_new(st, NULL, &ob);
	if (r >= 0)
		r = fg_outbox_stats(ob, &depth, &oldest);
	if (r < 0) {
		fprintf(stderr, "firegridctl: reading the outbox failed: %s\n", fg_strerror(r));
		r = 1;
	} else {
		r = c->json ? ctl_json_print(status_json(st, depth, oldest, now))
		            : status_human(st, depth, oldest, now);
	}
	fg_outbox_free(ob);
	fg_store_close(st);
	return r;
}

/* ---- incidents ---------------------------------------------------------- */

/* The webhook's incident object plus where it comes from. */
static json_t *incident_json(const struct fg_incident *inc)
{
	json_t *o = fg_cloudevent_incident_json(inc);
	if (o && (json_object_set_new(o, "device", json_string(inc->device)) < 0 ||
	          json_object_set_new(o, "source", json_string(inc->source)) < 0 ||
	          json_object_set_new(o, "plugin", json_string(inc->plugin)) < 0 ||
	          json_object_set_new(o, "closed_at", fg_cloudevent_time_json(inc->closed_ms)) < 0)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static void incident_cells(const struct fg_incident *inc, char cells[][40], const char **cp)
{
	snprintf(cells[0], 40, "%lld", (long long)inc->id);
	snprintf(cells[1], 40, "%s%s", inc->state, inc->cleared_ms ? " (cleared)" : "");
	snprintf(cells[2], 40, "%s", fg_kind_name(inc->kind));
	snprintf(cells[3], 40, "%s", fg_severity_name(inc->severity));
	snprintf(cells[4], 40, "%lld", (long long)inc->count);
	snprintf(cells[5], 40, "%lld", (long long)inc->revision);
	ctl_time(inc->opened_ms, cells[6], 40);
	ctl_time(inc->last_seen_ms, cells[7], 40);
	for (int i = 0; i < 8; i++)
		cp[i] = cells[i];
	cp[8] = inc->device;
}

int ctl_cmd_incidents(struct ctl *c, int argc, char **argv)
{
	static const char *const headers[] = {
		"ID", "STATE", "KIND", "SEVERITY", "COUNT", "REV", "OPENED", "LAST SEEN", "DEVICE",
	};
	struct list_opts o;
	int r = parse_opts(c, argc, argv, true, true, "incidents [--state S] [--limit N]", &o);
	if (r >= 0)
		return r;
	fg_store *st;
	if (ctl_open_store(c, &st) < 0)
		return 1;
	sqlite3_stmt *s = o.state
		? stmt(st, "SELECT id FROM incidents WHERE state = ?2 ORDER BY id DESC LIMIT ?1")
		: stmt(st, "SELECT id FROM incidents ORDER BY id DESC LIMIT ?1");
	if (!s) {
		fg_store_close(st);
		return 1;
	}
	sqlite3_bind_int64(s, 1, o.limit);
	if (o.state)
		fg_store_bind_text(s, 2, o.state);

	/* Ids first, then each row through fg_incident_get (one mapping of
	 * columns to struct for the daemon and the CLI). */
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	while ((r = fg_store_step_row(s)) > 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			int64_t *nids = realloc(ids, cap * sizeof(*ids));
			if (!nids) {
				sqlite3_reset(s);
				r = -ENOMEM;
				break;
			}
			ids = nids;
		}
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	json_t *doc = c->json ? json_array() : NULL;
	struct ctl_table *t = c->json ? NULL : ctl_table_new(FG_ARRAY_SIZE(headers), headers);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct fg_incident inc;
		r = fg_incident_get(st, ids[i], &inc);
		if (r < 0)
			break;
		if (doc) {
			json_array_append_new(doc, incident_json(&inc));
		} else {
			char cells[8][40];
			const char *cp[9];
			incident_cells(&inc, cells, cp);
			ctl_table_add(t, cp);
		}
		fg_incident_clear(&inc);
	}
	free(ids);
	if (r < 0) {
		fprintf(stderr, "firegridctl: reading incidents failed: %s\n", fg_strerror(r));
		json_decref(doc);
		r = 1;
	} else if (c->json) {
		r = ctl_json_print(doc);
	} else {
		if (n)
			ctl_table_print(t, stdout);
		else
			printf("no incidents%s%s\n", o.state ? " in state " : "", o.state ? o.state : "");
		r = 0;
	}
	ctl_table_free(t);
	fg_store_close(st);
	return r;
}

/* ---- one incident ------------------------------------------------------- */

static const char SQL_HISTORY[] =
	"SELECT at_ms, from_state, to_state, revision, actor, channel, note"
	" FROM incident_history WHERE incident_id = ?1 ORDER BY id";
static const char SQL_INC_OUTBOX[] =
	"SELECT id, sink, revision, type, attempts, created_ms, next_attempt_ms, last_status,"
	" last_error FROM outbox WHERE incident_id = ?1 ORDER BY sink, id";
static const char SQL_INC_DEAD[] =
	"SELECT id, sink, revision, type, status, attempts, failed_ms, error, response"
	" FROM dead_letters WHERE incident_id = ?1 ORDER BY id";

static void incident_human(const struct fg_incident *inc)
{
	char t[40];
	printf("incident %lld: %s %s, %s%s\n", (long long)inc->id, fg_severity_name(inc->severity),
	       fg_kind_name(inc->kind), inc->state, inc->cleared_ms ? " (cleared)" : "");
	printf("  %-11s%s (source %s, plugin %s)\n", "device", inc->device, inc->source, inc->plugin);
	printf("  %-11s%s\n", "dedup key", inc->dedup_key);
	printf("  %-11s%lld\n", "revision", (long long)inc->revision);
	printf("  %-11s%lld\n", "count", (long long)inc->count);
	printf("  %-11s%s\n", "opened", ctl_time(inc->opened_ms, t, sizeof(t)));
	printf("  %-11s%s\n", "last seen", ctl_time(inc->last_seen_ms, t, sizeof(t)));
	printf("  %-11s%s\n", "cleared", ctl_time(inc->cleared_ms, t, sizeof(t)));
	printf("  %-11s%s\n", "reported", ctl_time(inc->reported_ms, t, sizeof(t)));
	printf("  %-11s%s\n", "closed", ctl_time(inc->closed_ms, t, sizeof(t)));
	if (inc->has_value)
		printf("  %-11s%g %s\n", "value", inc->value, inc->unit ? inc->unit : "");
	if (inc->attrs_json)
		printf("  %-11s%s\n", "attrs", inc->attrs_json);
}

int ctl_cmd_incident(struct ctl *c, int argc, char **argv)
{
	static const char usage[] = "incident ID";
	struct list_opts o;
	int r = parse_opts(c, argc, argv, false, false, usage, &o);
	if (r >= 0)
		return r;
	char *end;
	long long id = optind < argc ? strtoll(argv[optind], &end, 10) : 0;
	if (optind + 1 != argc || *end || id <= 0) {
		fprintf(stderr, "Usage: firegridctl [--json] %s\n", usage);
		return 2;
	}
	fg_store *st;
	if (ctl_open_store(c, &st) < 0)
		return 1;
	struct fg_incident inc;
	r = fg_incident_get(st, id, &inc);
	if (r == -ENOENT) {
		fprintf(stderr, "firegridctl: no incident %lld\n", id);
		fg_store_close(st);
		return 1;
	} else if (r < 0) {
		fprintf(stderr, "firegridctl: reading incident %lld failed: %s\n", id, fg_strerror(r));
		fg_store_close(st);
		return 1;
	}
	static const char *const sqls[] = { SQL_HISTORY, SQL_INC_OUTBOX, SQL_INC_DEAD };
	static const char *const keys[] = { "history", "outbox", "dead_letters" };
	static const char *const titles[] = { "History", "Outbox", "Dead letters" };
	static const char *const none[] = { "(none)", "(nothing pending)", "(none)" };
	json_t *doc = c->json ? json_pack("{s:o}", "incident", incident_json(&inc)) : NULL;
	if (!c->json)
		incident_human(&inc);
	r = c->json && !doc ? 1 : 0;
	for (size_t i = 0; r == 0 && i < FG_ARRAY_SIZE(sqls); i++) {
		sqlite3_stmt *s = stmt(st, sqls[i]);
		if (!s) {
			r = 1;
			break;
		}
		sqlite3_bind_int64(s, 1, id);
		if (c->json) {
			json_t *rows = rows_json(s);
			r = rows && json_object_set_new(doc, keys[i], rows) == 0 ? 0 : 1;
		} else {
			printf("\n%s\n", titles[i]);
			r = rows_table(s, none[i]);
		}
	}
	if (c->json && r)
		json_decref(doc);
	else if (c->json)
		r = ctl_json_print(doc);
	fg_incident_clear(&inc);
	fg_store_close(st);
	return r;
}

/* ---- outbox and dead letters -------------------------------------------- */

static int list_rows(struct ctl *c, int argc, char **argv, const char *usage,
                     const char *sql_table, const char *sql_json, const char *none)
{
	struct list_opts o;
	int r = parse_opts(c, argc, argv, false, true, usage, &o);
	if (r >= 0)
		return r;
	fg_store *st;
	if (ctl_open_store(c, &st) < 0)
		return 1;
	sqlite3_stmt *s = stmt(st, c->json ? sql_json : sql_table);
	if (!s) {
		r = 1;
	} else {
		sqlite3_bind_int64(s, 1, o.limit);
		r = c->json ? ctl_json_print(rows_json(s)) : rows_table(s, none);
	}
	fg_store_close(st);
	return r;
}

#define SQL_OUTBOX_COLS \
	"SELECT id, sink, incident_id, revision, type, priority, attempts, created_ms," \
	" next_attempt_ms, last_status, last_error"

int ctl_cmd_outbox(struct ctl *c, int argc, char **argv)
{
	static const char sql_table[] = SQL_OUTBOX_COLS " FROM outbox"
	                                " ORDER BY sink, priority DESC, id LIMIT ?1";
	static const char sql_json[] = SQL_OUTBOX_COLS ", webhook_id FROM outbox"
	                               " ORDER BY sink, priority DESC, id LIMIT ?1";
	return list_rows(c, argc, argv, "outbox [--limit N]", sql_table, sql_json,
	                 "outbox empty: every revision delivered");
}

#define SQL_DEAD_COLS \
	"SELECT id, sink, incident_id, revision, type, status, attempts, failed_ms, error, response"

int ctl_cmd_dead_letters(struct ctl *c, int argc, char **argv)
{
	static const char sql_table[] = SQL_DEAD_COLS " FROM dead_letters ORDER BY id DESC LIMIT ?1";
	static const char sql_json[] = SQL_DEAD_COLS ", webhook_id, created_ms, body"
	                               " FROM dead_letters ORDER BY id DESC LIMIT ?1";
	return list_rows(c, argc, argv, "dead-letters [--limit N]", sql_table, sql_json,
	                 "no dead letters");
}
