/* The local power cut-off: rules, actions, their records; see interlock.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "interlock.h"
#include "log.h"
#include "metrics.h"
#include "modbus.h"
#include "options.h"
#include "util.h"

#define COMMAND_POLL_MS 1000
#define COMMANDS_PER_TICK 16
#define MAX_ON 8

enum action { ACT_CUT, ACT_RESTORE };
static const char *const action_names[] = { "cut", "restore" };

struct rule {
	fg_interlock *il;
	const struct fg_conf_interlock *conf;
	uint16_t *coils;
	size_t n_coils;
	fg_kind on[MAX_ON];
	size_t n_on;
	char fault_device[96];         /* "interlock/<rule>", also its actor */
	bool fault_open;
	int64_t last_cut_incident;     /* the incident of the last cut */
	/* the write in flight, if busy */
	bool busy;
	enum action act;
	int64_t incident;
	int64_t command;               /* restore: its command row */
	char actor[96];
	char trigger[96];              /* "<device> <kind>" for a cut */
	/* a cut to make once the rule can: an alarm that came before the
	 * rule started (a reload, start-up: the first one) or while a write
	 * was in flight (the latest one) */
	bool pending;
	int64_t pending_incident;
	char pending_trigger[96];
};

struct fg_interlock {
	uv_loop_t *loop;
	fg_modbus *m;
	fg_store *st;
	fg_incidents *inc;
	struct rule *rules;
	size_t n_rules;
	uv_timer_t timer;
	struct fg_incidents_watcher watcher;
	bool watching;
	bool started, closing;
	void (*closed_cb)(void *data);
	void *closed_data;
};

static struct fg_ratelimit store_rl = FG_RATELIMIT_INIT(10000, 5);

static const char SQL_ACTION_INSERT[] =
	"INSERT INTO interlock_actions(rule, action, at_ms, device, coils, value, dry_run,"
	" written, verified, readback, error, incident_id, trigger, actor)"
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
static const char SQL_LAST_ACTION[] =
	"SELECT action, value, incident_id FROM interlock_actions"
	" WHERE rule = ?1 AND dry_run = 0 ORDER BY id DESC LIMIT 1";
static const char SQL_FAULT_OPEN[] =
	"SELECT 1 FROM incidents WHERE dedup_key = ?1 AND state <> 'closed'"
	" AND cleared_ms IS NULL";
static const char SQL_COMMANDS[] =
	"SELECT id, rule, action, actor FROM interlock_commands WHERE done_ms IS NULL"
	" ORDER BY id LIMIT 16";
static const char SQL_COMMAND_DONE[] =
	"UPDATE interlock_commands SET done_ms = ?2, result = ?3, action_id = ?4 WHERE id = ?1";

/* ---- records ------------------------------------------------------------ */

/* The coil value an action writes. */
static int action_value(const struct rule *r, enum action act)
{
	return act == ACT_CUT ? r->conf->cut_value : !r->conf->cut_value;
}

/* {"interlock": detail} as the attrs of the events that record an action
 * (malloc'd; NULL when out of memory). */
static char *event_attrs(json_t *detail)
{
	json_t *attrs = json_pack("{s:O}", "interlock", detail);
	char *text = attrs ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(attrs);
	return text;
}

/* A revision of a still-open incident that says what the interlock did:
 * history row, revision + 1, an "updated" webhook whose event attrs carry
 * the action -- through fg_incidents_annotate, the path every revision
 * takes.  A closed (or unknown) incident is left alone. */
static int record_on_incident(fg_interlock *il, struct rule *r, int64_t incident_id,
                              int64_t at_ms, const char *note, json_t *detail)
{
	if (!incident_id || !il->inc)
		return 0;
	struct fg_incident inc;
	int rc = fg_incident_get(il->st, incident_id, &inc);
	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	const char *actor = r->fault_device;
	char *attrs_s = event_attrs(detail);
	struct fg_ev ev = {
		.source = inc.source, .plugin = inc.plugin, .transport = "modbus",
		.topic = actor, .device = inc.device, .kind = inc.kind, .severity = inc.severity,
		.clears = FG_KIND_NONE, .recv_time_ms = at_ms, .attrs_json = attrs_s,
	};
	rc = attrs_s ? fg_incidents_annotate(il->inc, incident_id, at_ms, actor, "interlock", note,
	                                     "updated", &ev) : -ENOMEM;
	free(attrs_s);
	fg_incident_clear(&inc);
	return rc < 0 ? rc : 0;
}

/* The rule's own incident: fault (major) on a failed action, clear after a
 * verified one. */
static void record_fault(fg_interlock *il, struct rule *r, bool failed, json_t *detail,
                         int64_t at_ms)
{
	if (!il->inc || failed == r->fault_open)
		return;
	char *attrs_s = event_attrs(detail);
	struct fg_ev ev = {
		.source = r->conf->name, .plugin = "interlock", .transport = "modbus",
		.topic = r->fault_device, .device = r->fault_device,
		.kind = failed ? FG_KIND_FAULT : FG_KIND_CLEAR,
		.severity = failed ? FG_SEV_MAJOR : FG_SEV_INFO,
		.clears = FG_KIND_FAULT, .recv_time_ms = at_ms, .attrs_json = attrs_s,
	};
	int rc = fg_incidents_apply(il->inc, &ev, NULL);
	free(attrs_s);
	if (rc < 0)
		fg_log_rl(&store_rl, FG_LOG_ERR, "interlock", "cannot record the interlock fault "
		          "rule=%s err=\"%s\"", r->conf->name, fg_strerror(rc));
	else
		r->fault_open = failed;
}

static json_t *coils_json(const uint16_t *coils, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_integer(coils[i]));
	return a;
}

/* Store one action and everything it touches; res is NULL for a dry run. */
static void record_action(fg_interlock *il, struct rule *r, const struct fg_modbus_write_result *res)
{
	int64_t now = fg_now_ms();
	int value = action_value(r, r->act);
	bool dry = res == NULL;
	bool verified = res && res->verified;
	json_t *readback = json_array();
	for (size_t i = 0; res && readback && i < res->n; i++)
		json_array_append_new(readback, res->read[i] ? json_boolean(res->readback[i])
		                                             : json_null());
	char at[40];
	json_t *detail = json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:O, s:s?}",
	                           "rule", r->conf->name, "action", action_names[r->act],
	                           "at", fg_time_iso(now, at, sizeof(at)),
	                           "device", r->conf->device,
	                           "coils", coils_json(r->coils, r->n_coils),
	                           "value", value, "dry_run", dry, "written", res && res->written,
	                           "verified", verified, "readback", dry ? json_null() : readback,
	                           "error", res && res->error[0] ? res->error : NULL);
	char *coils_s = json_dumps(json_object_get(detail, "coils"), JSON_COMPACT);
	char *readback_s = dry ? NULL : json_dumps(readback, JSON_COMPACT);
	int64_t action_id = 0;
	int rc = !detail || !coils_s ? -ENOMEM : fg_store_begin(il->st);
	sqlite3_stmt *s = rc < 0 ? NULL : fg_store_stmt(il->st, SQL_ACTION_INSERT);
	if (rc == 0 && !s)
		rc = -EIO;
	if (rc == 0) {
		fg_store_bind_text(s, 1, r->conf->name);
		fg_store_bind_text(s, 2, action_names[r->act]);
		sqlite3_bind_int64(s, 3, now);
		fg_store_bind_text(s, 4, r->conf->device);
		fg_store_bind_text(s, 5, coils_s);
		sqlite3_bind_int(s, 6, value);
		sqlite3_bind_int(s, 7, dry);
		sqlite3_bind_int(s, 8, res && res->written);
		sqlite3_bind_int(s, 9, verified);
		fg_store_bind_text(s, 10, readback_s);
		fg_store_bind_text(s, 11, res && res->error[0] ? res->error : NULL);
		if (r->incident)
			sqlite3_bind_int64(s, 12, r->incident);
		fg_store_bind_text(s, 13, r->act == ACT_CUT ? r->trigger : NULL);
		fg_store_bind_text(s, 14, r->actor);
		rc = fg_store_step_done(s);
		action_id = sqlite3_last_insert_rowid(fg_store_db(il->st));
	}
	if (rc == 0) {
		char note[160];
		snprintf(note, sizeof(note), "%s%s coils %s = %d: %s", dry ? "dry run: " : "",
		         action_names[r->act], coils_s, value,
		         dry ? "not written" : verified ? "verified" : res->error);
		rc = record_on_incident(il, r, r->incident, now, note, detail);
	}
	if (rc == 0 && r->command) {
		s = fg_store_stmt(il->st, SQL_COMMAND_DONE);
		rc = s ? 0 : -EIO;
		if (s) {
			char result[160];
			snprintf(result, sizeof(result), "%s", dry ? "dry run" : verified ? "verified"
			         : res->error);
			sqlite3_bind_int64(s, 1, r->command);
			sqlite3_bind_int64(s, 2, now);
			fg_store_bind_text(s, 3, result);
			sqlite3_bind_int64(s, 4, action_id);
			rc = fg_store_step_done(s);
		}
	}
	if (rc < 0)
		fg_log_rl(&store_rl, FG_LOG_ERR, "interlock", "cannot record the action rule=%s "
		          "err=\"%s\"", r->conf->name, fg_strerror(rc));
	if (!dry && detail)
		record_fault(il, r, !verified, detail, now);
	fg_metrics_inc(verified ? "firegrid_interlock_actions_total"
	               : dry ? "firegrid_interlock_dry_runs_total"
	               : "firegrid_interlock_failures_total", "rule", r->conf->name);
	json_decref(detail);
	json_decref(readback);
	free(coils_s);
	free(readback_s);
}

/* ---- actions ------------------------------------------------------------ */

static void start_action(struct rule *r, enum action act, int64_t incident, int64_t command,
                         const char *actor, const char *trigger);

/* Remember a cut for later (see struct rule's pending). */
static void defer_cut(struct rule *r, int64_t incident, const char *trigger)
{
	r->pending = true;
	r->pending_incident = incident;
	snprintf(r->pending_trigger, sizeof(r->pending_trigger), "%s", trigger ? trigger : "");
}

/* Make the remembered cut, if any, as the interlock itself. */
static void run_pending(struct rule *r)
{
	if (!r->pending)
		return;
	r->pending = false;
	start_action(r, ACT_CUT, r->pending_incident, 0, r->fault_device, r->pending_trigger);
}

static void write_cb(void *data, const struct fg_modbus_write_result *res)
{
	struct rule *r = data;
	fg_interlock *il = r->il;
	r->busy = false;
	if (res->verified)
		fg_warn("interlock", "%s done rule=%s device=%s coils=%zu value=%d verified",
		        action_names[r->act], r->conf->name, res->device, res->n, res->value);
	else
		fg_err("interlock", "%s FAILED rule=%s device=%s value=%d err=\"%s\"",
		       action_names[r->act], r->conf->name, res->device, res->value, res->error);
	/* What the gateway commanded, right or wrong: the relay plugin then
	 * flags any coil that does not follow. */
	for (size_t i = 0; i < r->n_coils; i++)
		fg_modbus_set_commanded(il->m, r->conf->device, r->coils[i], res->value);
	if (r->act == ACT_CUT)
		r->last_cut_incident = r->incident;
	record_action(il, r, res);
	r->command = 0;
	if (!il->closing)
		run_pending(r);
}

static void start_action(struct rule *r, enum action act, int64_t incident, int64_t command,
                         const char *actor, const char *trigger)
{
	fg_interlock *il = r->il;
	if (r->busy) {
		/* A restore waits in its table; another cut is remembered. */
		if (act == ACT_CUT)
			defer_cut(r, incident, trigger);
		return;
	}
	r->act = act;
	r->incident = incident;
	r->command = command;
	snprintf(r->actor, sizeof(r->actor), "%s", actor);
	snprintf(r->trigger, sizeof(r->trigger), "%s", trigger ? trigger : "");
	int value = action_value(r, act);
	if (r->conf->dry_run) {
		fg_warn("interlock", "dry run: would %s rule=%s device=%s coils=%zu value=%d "
		        "trigger=\"%s\"", action_names[act], r->conf->name, r->conf->device,
		        r->n_coils, value, r->trigger);
		record_action(il, r, NULL);
		r->command = 0;
		return;
	}
	fg_warn("interlock", "%s rule=%s device=%s coils=%zu value=%d trigger=\"%s\"",
	        action_names[act], r->conf->name, r->conf->device, r->n_coils, value, r->trigger);
	int rc = fg_modbus_write_coils(il->m, r->conf->device, r->coils, r->n_coils, value,
	                               write_cb, r);
	if (rc == 0) {
		r->busy = true;
		return;
	}
	uint8_t none[1] = { 0 };
	char why[96];
	snprintf(why, sizeof(why), "not written: %s", fg_strerror(rc));
	struct fg_modbus_write_result res = {
		.device = r->conf->device, .n = 0, .coils = r->coils, .readback = none,
		.read = none, .value = value, .error = why,
	};
	write_cb(r, &res);
}

/* Does the rule name this event's detector?  `from` by the [modbus-device]
 * (the plugin instance, i.e. the event's source), trigger_devices by the
 * device id or the topic of the message, so a Zigbee detector matches by
 * its MQTT topic whether or not the bridge has told its IEEE address yet. */
static bool rule_names(const struct rule *r, const struct fg_ev *ev)
{
	const struct fg_conf_interlock *c = r->conf;
	for (size_t k = 0; k < c->n_from; k++)
		if (strcmp(c->from[k], ev->source) == 0)
			return true;
	for (size_t k = 0; k < c->n_trigger_devices; k++)
		if (strcmp(c->trigger_devices[k], ev->device) == 0 ||
		    (ev->topic && strcmp(c->trigger_devices[k], ev->topic) == 0))
			return true;
	return false;
}

void fg_interlock_on_event(fg_interlock *il, const struct fg_ev *ev, int64_t incident_id)
{
	if (!il || !il->loop || il->closing || !fg_kind_opens_incident(ev->kind) ||
	    strcmp(ev->plugin, "interlock") == 0)
		return;
	for (size_t i = 0; i < il->n_rules; i++) {
		struct rule *r = &il->rules[i];
		bool kind = false;
		for (size_t k = 0; k < r->n_on; k++)
			kind |= r->on[k] == ev->kind;
		if (!kind || !rule_names(r, ev))
			continue;
		char trigger[96];
		snprintf(trigger, sizeof(trigger), "%s %s", ev->device, fg_kind_name(ev->kind));
		if (!il->started) {
			/* The buses of this config are not running yet (a reload
			 * waits for the old ones to finish): cut once they are. */
			if (!r->pending) {
				defer_cut(r, incident_id, trigger);
				fg_warn("interlock", "alarm before the rule started rule=%s trigger=\"%s\": "
				        "cutting once the Modbus buses run", r->conf->name, trigger);
			}
			continue;
		}
		start_action(r, ACT_CUT, incident_id, 0, r->fault_device, trigger);
	}
}

static void event_cb(void *data, const struct fg_ev *ev, int64_t incident_id)
{
	fg_interlock_on_event(data, ev, incident_id);
}

/* ---- restore commands --------------------------------------------------- */

static struct rule *find_rule(fg_interlock *il, const char *name)
{
	for (size_t i = 0; name && i < il->n_rules; i++)
		if (strcmp(il->rules[i].conf->name, name) == 0)
			return &il->rules[i];
	return NULL;
}

static void command_refuse(fg_interlock *il, int64_t id, const char *why)
{
	sqlite3_stmt *s = fg_store_stmt(il->st, SQL_COMMAND_DONE);
	if (!s)
		return;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, fg_now_ms());
	fg_store_bind_text(s, 3, why);
	fg_store_step_done(s);
}

/* Commands written by firegridctl; a rule busy with a write keeps its
 * command for the next tick. */
static void command_timer_cb(uv_timer_t *t)
{
	fg_interlock *il = t->data;
	struct cmd {
		int64_t id;
		char rule[64], action[16], actor[64];
	} cmds[COMMANDS_PER_TICK];
	size_t n = 0;
	sqlite3_stmt *s = fg_store_stmt(il->st, SQL_COMMANDS);
	int rc;
	while (s && n < COMMANDS_PER_TICK && (rc = fg_store_step_row(s)) > 0) {
		struct cmd *c = &cmds[n++];
		c->id = sqlite3_column_int64(s, 0);
		snprintf(c->rule, sizeof(c->rule), "%s", (const char *)sqlite3_column_text(s, 1));
		snprintf(c->action, sizeof(c->action), "%s", (const char *)sqlite3_column_text(s, 2));
		const char *actor = (const char *)sqlite3_column_text(s, 3);
		snprintf(c->actor, sizeof(c->actor), "%s", actor ? actor : "operator");
	}
	if (s && n == COMMANDS_PER_TICK)
		sqlite3_reset(s);
	for (size_t i = 0; i < n; i++) {
		struct rule *r = find_rule(il, cmds[i].rule);
		if (fg_store_begin(il->st) < 0)
			return;
		if (!r) {
			fg_warn("interlock", "command %lld refused: no rule %s", (long long)cmds[i].id,
			        cmds[i].rule);
			command_refuse(il, cmds[i].id, "refused: no such interlock rule");
		} else if (strcmp(cmds[i].action, "restore") != 0) {
			command_refuse(il, cmds[i].id, "refused: unknown action");
		} else if (!r->busy) {
			char actor[128];
			snprintf(actor, sizeof(actor), "ctl/%s", cmds[i].actor);
			fg_warn("interlock", "restore requested rule=%s by=%s", r->conf->name, actor);
			start_action(r, ACT_RESTORE, r->last_cut_incident, cmds[i].id, actor, NULL);
		}
	}
}

/* ---- lifecycle ---------------------------------------------------------- */

int fg_interlock_new(uv_loop_t *loop, const struct fg_conf *conf, struct fg_modbus *m,
                     fg_store *st, fg_incidents *inc, fg_interlock **ret, char **ret_errors)
{
	fg_interlock *il = calloc(1, sizeof(*il));
	if (!il)
		return -ENOMEM;
	il->loop = loop;
	il->m = m;
	il->st = st;
	il->inc = inc;
	il->rules = calloc(conf->n_interlocks ? conf->n_interlocks : 1, sizeof(*il->rules));
	if (!il->rules) {
		free(il);
		return -ENOMEM;
	}
	for (size_t i = 0; i < conf->n_interlocks; i++) {
		struct rule *r = &il->rules[il->n_rules++];
		const struct fg_conf_interlock *c = &conf->interlocks[i];
		r->il = il;
		r->conf = c;
		snprintf(r->fault_device, sizeof(r->fault_device), "interlock/%s", c->name);
		r->coils = calloc(c->n_coils ? c->n_coils : 1, sizeof(*r->coils));
		if (!r->coils) {
			fg_interlock_free(il);
			return -ENOMEM;
		}
		for (size_t k = 0; k < c->n_coils; k++) {
			int64_t v = 0;
			fg_parse_int(c->coils[k], &v);       /* checked by the config loader */
			r->coils[r->n_coils++] = (uint16_t)v;
		}
		for (size_t k = 0; k < c->n_on && r->n_on < MAX_ON; k++)
			if (fg_kind_parse(c->on[k], &r->on[r->n_on]) == 0)
				r->n_on++;
	}
	(void)ret_errors;    /* nothing beyond what the config loader checks */
	/* Watch from now on, not from start: in a reload the new rules see
	 * the alarms that come while the old buses wind down. */
	if (loop && inc && il->n_rules) {
		il->watcher = (struct fg_incidents_watcher){ .cb = event_cb, .data = il };
		fg_incidents_watch(inc, &il->watcher);
		il->watching = true;
	}
	*ret = il;
	return 0;
}

/* Where each rule stands after a restart: the coils as last commanded, the
 * incident of the last cut, whether its fault incident is open. */
static void load_rule(fg_interlock *il, struct rule *r)
{
	sqlite3_stmt *s = fg_store_stmt(il->st, SQL_LAST_ACTION);
	if (s) {
		fg_store_bind_text(s, 1, r->conf->name);
		if (fg_store_step_row(s) > 0) {
			bool cut = strcmp((const char *)sqlite3_column_text(s, 0), "cut") == 0;
			int value = sqlite3_column_int(s, 1);
			if (cut)
				r->last_cut_incident = sqlite3_column_int64(s, 2);
			for (size_t i = 0; i < r->n_coils; i++)
				fg_modbus_set_commanded(il->m, r->conf->device, r->coils[i], value);
			if (cut)
				fg_warn("interlock", "rule %s: power was cut before the restart and stays "
				        "cut until `firegridctl interlock restore %s`", r->conf->name,
				        r->conf->name);
			sqlite3_reset(s);
		}
	}
	char key[128];
	snprintf(key, sizeof(key), "%s|fault", r->fault_device);
	s = fg_store_stmt(il->st, SQL_FAULT_OPEN);
	if (s) {
		fg_store_bind_text(s, 1, key);
		r->fault_open = fg_store_step_row(s) > 0;
		sqlite3_reset(s);
	}
}

int fg_interlock_start(fg_interlock *il)
{
	if (!il || !il->loop || !il->st)
		return -EINVAL;
	for (size_t i = 0; i < il->n_rules; i++)
		load_rule(il, &il->rules[i]);
	uv_timer_init(il->loop, &il->timer);
	il->timer.data = il;
	il->started = true;
	for (size_t i = 0; i < il->n_rules; i++)
		run_pending(&il->rules[i]);
	if (il->n_rules)
		uv_timer_start(&il->timer, command_timer_cb, COMMAND_POLL_MS, COMMAND_POLL_MS);
	return 0;
}

static void unwatch(fg_interlock *il)
{
	if (il->watching)
		fg_incidents_unwatch(il->inc, &il->watcher);
	il->watching = false;
}

static void timer_closed_cb(uv_handle_t *h)
{
	fg_interlock *il = h->data;
	if (il->closed_cb)
		il->closed_cb(il->closed_data);
}

void fg_interlock_close(fg_interlock *il, void (*cb)(void *data), void *data)
{
	bool first = il && !il->closing;
	if (il) {
		il->closing = true;           /* pending alarms are dropped too */
		unwatch(il);
	}
	if (!first || !il->started) {
		if (cb)
			cb(data);
		return;
	}
	il->closed_cb = cb;
	il->closed_data = data;
	uv_close((uv_handle_t *)&il->timer, timer_closed_cb);
}

void fg_interlock_free(fg_interlock *il)
{
	if (!il)
		return;
	unwatch(il);
	for (size_t i = 0; i < il->n_rules; i++)
		free(il->rules[i].coils);
	free(il->rules);
	free(il);
}
