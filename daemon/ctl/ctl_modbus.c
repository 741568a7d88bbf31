/* firegridctl: Modbus captures for decode, and the interlock command; see
 * ctl_modbus.h. */
#include <errno.h>
#include <getopt.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cloudevent.h"
#include "ctl.h"
#include "ctl_modbus.h"
#include "interlock.h"
#include "modbus_map.h"
#include "options.h"
#include "util.h"

#define MAX_ITEMS 256

/* A list key's items, split like the config loader splits them. */
struct items {
	char *v[MAX_ITEMS];
	size_t n;
};

struct ctl_modbus {
	struct items registers, scale, word_order;
	int64_t offline_after;
	int64_t unit;
	char *role;
	struct fg_modbus_map *map;
	struct fg_modbus_plan *plan;
	struct fg_modbus_reach reach;
};

static void items_free(struct items *it)
{
	for (size_t i = 0; i < it->n; i++)
		free(it->v[i]);
	it->n = 0;
}

static int items_add(struct items *it, const char *value)
{
	char *copy = strdup(value), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int r = 0;
	for (char *t = strtok_r(copy, " \t,", &save); t && r == 0; t = strtok_r(NULL, " \t,", &save)) {
		if (it->n == MAX_ITEMS)
			r = -E2BIG;
		else if (!(it->v[it->n] = strdup(t)))
			r = -ENOMEM;
		else
			it->n++;
	}
	free(copy);
	return r;
}

void ctl_modbus_free(struct ctl_modbus *m)
{
	if (!m)
		return;
	items_free(&m->registers);
	items_free(&m->scale);
	items_free(&m->word_order);
	free(m->role);
	fg_modbus_map_free(m->map);
	fg_modbus_plan_free(m->plan);
	free(m);
}

/* One [modbus-device] key given as --option; 1 = taken, 0 = not ours. */
static int take_key(struct ctl_modbus *m, const struct fg_conf_kv *kv)
{
	int r = 0;
	if (strcmp(kv->key, "registers") == 0)
		r = items_add(&m->registers, kv->value);
	else if (strcmp(kv->key, "scale") == 0)
		r = items_add(&m->scale, kv->value);
	else if (strcmp(kv->key, "word_order") == 0)
		r = items_add(&m->word_order, kv->value);
	else if (strcmp(kv->key, "offline_after") == 0)
		r = fg_parse_int(kv->value, &m->offline_after) < 0 || m->offline_after < 1 ? -EINVAL : 0;
	else if (strcmp(kv->key, "unit") == 0)
		r = fg_parse_int(kv->value, &m->unit) < 0 || m->unit < 0 || m->unit > 255 ? -EINVAL : 0;
	else if (strcmp(kv->key, "role") == 0)
		r = (free(m->role), m->role = strdup(kv->value)) ? 0 : -ENOMEM;
	else
		return 0;
	return r < 0 ? r : 1;
}

int ctl_modbus_take_options(const struct fg_plugin *plugin, struct fg_conf_kv *opts,
                            size_t *n_opts, struct ctl_modbus **ret)
{
	*ret = NULL;
	if (!fg_plugin_is_modbus(plugin))
		return 0;
	struct ctl_modbus *m = calloc(1, sizeof(*m));
	if (!m) {
		fprintf(stderr, "firegridctl decode: out of memory\n");
		return 2;
	}
	m->offline_after = FG_MODBUS_OFFLINE_AFTER_DEFAULT;
	m->unit = -1;
	m->reach = (struct fg_modbus_reach)FG_MODBUS_REACH_INIT;
	size_t kept = 0;
	for (size_t i = 0; i < *n_opts; i++) {
		int r = take_key(m, &opts[i]);
		if (r < 0) {
			fprintf(stderr, "firegridctl decode: --option %s=%s: %s\n", opts[i].key,
			        opts[i].value, r == -EINVAL ? "bad value" : fg_strerror(r));
			ctl_modbus_free(m);
			return 2;
		}
		if (r == 0)
			opts[kept++] = opts[i];
	}
	*n_opts = kept;
	*ret = m;
	return 0;
}

int ctl_modbus_start(struct ctl_modbus *m, fg_source_inst *si)
{
	char err[256];
	int r = fg_modbus_map_compose(fg_source_inst_modbus_map(si), m->registers.v,
	                              m->registers.n, m->scale.v, m->scale.n, m->word_order.v,
	                              m->word_order.n, &m->map, err, sizeof(err));
	if (r == 0)
		r = fg_modbus_plan_new(m->map, &m->plan);
	if (r < 0) {
		fprintf(stderr, "firegridctl decode: plugin '%s': %s\n",
		        fg_source_inst_plugin(si)->name, r == -ENOMEM ? "out of memory" : err);
		return 1;
	}
	return 0;
}

int ctl_modbus_payload(struct ctl_modbus *m, const char *device, const char *text, size_t len,
                       char **ret, size_t *ret_len, char *topic, size_t topiclen,
                       char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "not a Modbus capture or poll payload: %s",
		         doc ? "not a JSON object" : jerr.text);
		json_decref(doc);
		return -EINVAL;
	}
	struct fg_modbus_origin origin = { .device = device, .bus = "capture",
	                                   .unit = (int)m->unit, .role = m->role };
	/* A ready payload goes through untouched. */
	if (json_object_get(doc, "status") && !json_object_get(doc, "exchanges")) {
		json_t *u = json_object_get(doc, "unit");
		origin.unit = json_is_integer(u) ? (int)json_integer_value(u) : origin.unit;
		fg_modbus_topic(&origin, topic, topiclen);
		json_decref(doc);
		*ret = strndup(text, len);
		*ret_len = len;
		return *ret ? 0 : -ENOMEM;
	}
	struct fg_modbus_poll poll;
	int unit = -1;
	int r = fg_modbus_poll_from_capture(doc, m->plan, &poll, &unit, err, errlen);
	json_decref(doc);
	if (r < 0)
		return r;
	if (origin.unit < 0)
		origin.unit = unit < 0 ? 0 : unit;
	fg_modbus_reach_update(&m->reach, poll.status != FG_MODBUS_NO_RESPONSE,
	                       (uint32_t)m->offline_after);
	*ret = fg_modbus_payload(m->map, &poll, &origin, &m->reach, NULL, ret_len);
	fg_modbus_poll_clear(&poll);
	fg_modbus_topic(&origin, topic, topiclen);
	return *ret ? 0 : -ENOMEM;
}

/* ======================================================================== */
/* firegridctl interlock                                                     */
/* ======================================================================== */

static void interlock_usage(FILE *f)
{
	fputs("usage: firegridctl [--json] interlock status\n"
	      "       firegridctl [--json] interlock history [--rule RULE] [--limit N]\n"
	      "       firegridctl [--json] interlock restore RULE [--actor NAME] [--note TEXT]\n"
	      "                                                  [--wait SECONDS]\n"
	      "  restore queues a command for firegridd (it picks it up within a second and\n"
	      "  writes the coils back, reading them back to verify); --wait waits for the\n"
	      "  outcome.  Power is never restored any other way.\n", f);
}

static json_t *text_or_null(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);
	return t ? json_string(t) : json_null();
}

/* The store, read-only, when it has the interlock's tables; else NULL after
 * saying why. */
static fg_store *interlock_store(struct ctl *c)
{
	fg_store *st = NULL;
	if (ctl_open_store(c, &st) < 0)
		return NULL;
	if (fg_store_schema_version(st) >= FG_INTERLOCK_SCHEMA_VERSION)
		return st;
	fprintf(stderr, "firegridctl interlock: this store predates the interlock (schema v%d); "
	        "start this version of firegridd once\n", fg_store_schema_version(st));
	fg_store_close(st);
	return NULL;
}

/* The rows as --json output, or the table; frees both. */
static int interlock_print(struct ctl *c, json_t *rows, struct ctl_table *t)
{
	if (c->json)
		return ctl_json_print(rows);
	json_decref(rows);
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	return 0;
}

static int interlock_status(struct ctl *c)
{
	static const char sql[] =
		"SELECT a.rule, a.action, a.at_ms, a.verified, a.dry_run, a.error,"
		" (SELECT count(*) FROM interlock_commands k WHERE k.rule = a.rule AND k.done_ms IS NULL)"
		" FROM interlock_actions a"
		" WHERE a.id = (SELECT max(id) FROM interlock_actions b WHERE b.rule = a.rule)"
		" ORDER BY a.rule";
	fg_store *st = interlock_store(c);
	if (!st)
		return 1;
	sqlite3_stmt *s = fg_store_stmt(st, sql);
	json_t *rows = json_array();
	static const char *const head[] = { "RULE", "LAST ACTION", "AT", "VERIFIED", "PENDING",
	                                    "ERROR" };
	struct ctl_table *t = c->json ? NULL : ctl_table_new(6, head);
	int r;
	while (s && (r = fg_store_step_row(s)) > 0) {
		json_t *row = json_pack("{s:o, s:o, s:o, s:b, s:b, s:o, s:I}",
		                        "rule", text_or_null(s, 0), "last_action", text_or_null(s, 1),
		                        "at", fg_cloudevent_time_json(sqlite3_column_int64(s, 2)), "verified", sqlite3_column_int(s, 3),
		                        "dry_run", sqlite3_column_int(s, 4), "error", text_or_null(s, 5),
		                        "pending_commands", (json_int_t)sqlite3_column_int64(s, 6));
		json_array_append_new(rows, row);
		if (t) {
			char at[40], pending[24];
			snprintf(pending, sizeof(pending), "%lld", (long long)sqlite3_column_int64(s, 6));
			const char *action = (const char *)sqlite3_column_text(s, 1);
			char label[48];
			snprintf(label, sizeof(label), "%s%s", action ? action : "?",
			         sqlite3_column_int(s, 4) ? " (dry run)" : "");
			const char *cells[] = { (const char *)sqlite3_column_text(s, 0), label,
			                        ctl_time(sqlite3_column_int64(s, 2), at, sizeof(at)),
			                        sqlite3_column_int(s, 3) ? "yes" : "no", pending,
			                        (const char *)sqlite3_column_text(s, 5) };
			ctl_table_add(t, cells);
		}
	}
	fg_store_close(st);
	return interlock_print(c, rows, t);
}

static int interlock_history(struct ctl *c, const char *rule, long long limit)
{
	static const char sql[] =
		"SELECT id, at_ms, rule, action, device, coils, value, dry_run, written, verified,"
		" readback, error, incident_id, trigger, actor FROM interlock_actions"
		" WHERE ?1 IS NULL OR rule = ?1 ORDER BY id DESC LIMIT ?2";
	fg_store *st = interlock_store(c);
	if (!st)
		return 1;
	sqlite3_stmt *s = fg_store_stmt(st, sql);
	if (s) {
		fg_store_bind_text(s, 1, rule);
		sqlite3_bind_int64(s, 2, limit);
	}
	json_t *rows = json_array();
	static const char *const head[] = { "ID", "AT", "RULE", "ACTION", "DEVICE", "COILS",
	                                    "VALUE", "RESULT", "INCIDENT", "BY" };
	struct ctl_table *t = c->json ? NULL : ctl_table_new(10, head);
	while (s && fg_store_step_row(s) > 0) {
		json_t *coils = json_loads((const char *)sqlite3_column_text(s, 5), 0, NULL);
		const char *rb = (const char *)sqlite3_column_text(s, 10);
		json_t *readback = rb ? json_loads(rb, 0, NULL) : NULL;
		json_t *row = json_pack(
			"{s:I, s:o, s:o, s:o, s:o, s:o, s:i, s:b, s:b, s:b, s:o, s:o, s:o, s:o, s:o}",
			"id", (json_int_t)sqlite3_column_int64(s, 0), "at", fg_cloudevent_time_json(sqlite3_column_int64(s, 1)),
			"rule", text_or_null(s, 2), "action", text_or_null(s, 3),
			"device", text_or_null(s, 4), "coils", coils ? coils : json_null(),
			"value", sqlite3_column_int(s, 6), "dry_run", sqlite3_column_int(s, 7),
			"written", sqlite3_column_int(s, 8), "verified", sqlite3_column_int(s, 9),
			"readback", readback ? readback : json_null(), "error", text_or_null(s, 11),
			"incident", sqlite3_column_type(s, 12) == SQLITE_NULL ? json_null()
			            : json_integer(sqlite3_column_int64(s, 12)),
			"trigger", text_or_null(s, 13), "actor", text_or_null(s, 14));
		json_array_append_new(rows, row);
		if (t) {
			char id[24], at[40], value[8], inc[24];
			snprintf(id, sizeof(id), "%lld", (long long)sqlite3_column_int64(s, 0));
			snprintf(value, sizeof(value), "%d", sqlite3_column_int(s, 6));
			snprintf(inc, sizeof(inc), "%lld", (long long)sqlite3_column_int64(s, 12));
			const char *err = (const char *)sqlite3_column_text(s, 11);
			const char *result = sqlite3_column_int(s, 7) ? "dry run"
				: sqlite3_column_int(s, 9) ? "verified" : err ? err : "failed";
			const char *cells[] = { id, ctl_time(sqlite3_column_int64(s, 1), at, sizeof(at)),
			                        (const char *)sqlite3_column_text(s, 2),
			                        (const char *)sqlite3_column_text(s, 3),
			                        (const char *)sqlite3_column_text(s, 4),
			                        (const char *)sqlite3_column_text(s, 5), value, result,
			                        sqlite3_column_type(s, 12) == SQLITE_NULL ? "-" : inc,
			                        (const char *)sqlite3_column_text(s, 14) };
			ctl_table_add(t, cells);
		}
	}
	fg_store_close(st);
	return interlock_print(c, rows, t);
}

/*
 * Queue a restore for firegridd: one row in interlock_commands, written
 * through the read-write store (the daemon polls the table every second).
 * With wait_s, watch the row until the daemon marks it done.
 */
static int interlock_restore(struct ctl *c, const char *rule, const char *actor,
                             const char *note, long long wait_s)
{
	static const char sql_insert[] =
		"INSERT INTO interlock_commands(created_ms, rule, action, actor, note)"
		" VALUES(?1, ?2, 'restore', ?3, ?4)";
	static const char sql_done[] =
		"SELECT done_ms, result, action_id FROM interlock_commands WHERE id = ?1";
	fg_store *st = NULL;
	if (ctl_open_store_rw(c, &st) < 0)
		return 1;
	sqlite3_stmt *s = fg_store_stmt(st, sql_insert);
	if (!s) {
		fg_store_close(st);
		return 1;
	}
	sqlite3_bind_int64(s, 1, fg_now_ms());
	fg_store_bind_text(s, 2, rule);
	fg_store_bind_text(s, 3, actor);
	fg_store_bind_text(s, 4, note);
	int r = fg_store_step_done(s);
	if (r < 0) {
		fprintf(stderr, "firegridctl interlock: cannot queue the command: %s\n",
		        fg_strerror(r));
		fg_store_close(st);
		return 1;
	}
	int64_t id = sqlite3_last_insert_rowid(fg_store_db(st));

	bool done = false;
	json_t *result = json_null(), *action = json_null();
	int64_t deadline = fg_mono_ms() + wait_s * 1000;
	while (wait_s > 0 && (s = fg_store_stmt(st, sql_done))) {
		sqlite3_bind_int64(s, 1, id);
		if (fg_store_step_row(s) > 0) {
			if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
				done = true;
				json_decref(result);
				json_decref(action);
				result = text_or_null(s, 1);
				action = sqlite3_column_type(s, 2) == SQLITE_NULL ? json_null()
					: json_integer(sqlite3_column_int64(s, 2));
			}
			sqlite3_reset(s);
		}
		if (done || fg_mono_ms() >= deadline)
			break;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fg_store_close(st);
	const char *res = json_string_value(result);
	bool ok = !wait_s || (done && res && (strcmp(res, "verified") == 0 ||
	                                      strcmp(res, "dry run") == 0));
	if (c->json) {
		ctl_json_print(json_pack("{s:I, s:s, s:b, s:O, s:O}", "command", (json_int_t)id,
		                         "rule", rule, "done", done, "result", result, "action",
		                         action));
	} else if (!wait_s) {
		printf("restore of %s queued as command %lld; firegridd picks it up within a second "
		       "(see `firegridctl interlock history`)\n", rule, (long long)id);
	} else if (done) {
		printf("restore of %s: %s\n", rule, res ? res : "?");
	} else {
		printf("restore of %s queued as command %lld, not done within %lld s: is firegridd "
		       "running?\n", rule, (long long)id, wait_s);
	}
	json_decref(result);
	json_decref(action);
	return ok ? 0 : 1;
}

int ctl_cmd_interlock(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rule", required_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'n' },
		{ "actor", required_argument, NULL, 'a' },
		{ "note", required_argument, NULL, 'm' },
		{ "wait", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rule = NULL, *note = NULL;
	const char *actor = getenv("SUDO_USER") ? getenv("SUDO_USER")
		: getenv("USER") ? getenv("USER") : "operator";
	int64_t limit = 50, wait_s = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "r:n:a:m:w:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': rule = optarg; break;
		case 'a': actor = optarg; break;
		case 'm': note = optarg; break;
		case 'j': c->json = true; break;
		case 'h': interlock_usage(stdout); return 0;
		case 'n':
		case 'w': {
			int64_t v;
			if (fg_parse_int(optarg, &v) < 0 || v < 0 || v > 86400) {
				fprintf(stderr, "firegridctl interlock: --%s wants a number, got '%s'\n",
				        opt == 'n' ? "limit" : "wait", optarg);
				return 2;
			}
			*(opt == 'n' ? &limit : &wait_s) = v;
			break;
		}
		default:
			interlock_usage(stderr);
			return 2;
		}
	}
	const char *sub = optind < argc ? argv[optind++] : NULL;
	if (sub && strcmp(sub, "status") == 0 && optind == argc)
		return interlock_status(c);
	if (sub && strcmp(sub, "history") == 0 && optind == argc)
		return interlock_history(c, rule, limit);
	if (sub && strcmp(sub, "restore") == 0 && optind + 1 == argc)
		return interlock_restore(c, argv[optind], actor, note, wait_s);
	interlock_usage(stderr);
	return 2;
}
