/* Unit tests for the incident lifecycle: the whole transition table, action
 * body validation, actions applied to stored incidents (history, webhook
 * revisions, idempotency records), reopening, device-health resolution and
 * the center's deadline turning an incident overdue. */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include "incident.h"
#include "lifecycle.h"
#include "outbox.h"
#include "registry.h"
#include "store.h"
#include "store_test.h"
#include "util.h"

static fg_store *st;
static fg_outbox *ob;
static fg_incidents *incs;
static struct fg_conf_sink sink = { .name = "ops", .min_severity = FG_SEV_INFO };
static struct fg_conf conf = {
	.gateway_id = "gw1", .sinks = &sink, .n_sinks = 1,
	.reopen_window_ms = 1800000, .confirm_persist_ms = 60000,
	.esc_fire = { .ms = { 60000, 180000, 300000 }, .n = 3 },
	.esc_fire_elderly = { .ms = { 30000, 90000, 150000 }, .n = 3 },
	.esc_ebike = { .ms = { 900000, 1800000, 2700000 }, .n = 3 },
	.esc_fire_lane = { .ms = { 86400000, 172800000 }, .n = 2 },
	.esc_device_health = { .ms = { 86400000, 172800000, 259200000 }, .n = 3 },
	.fire_lane_hold_ms = 1800000, .fire_lane_resolve_within_ms = 172800000,
};

static int64_t q(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t q(const char *fmt, ...)
{
	char sql[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return test_query_int(fg_store_db(st), sql);
}

/* ---- the table ------------------------------------------------------------ */

/* Expected target state per (state, action); "-" = refused.  close is
 * listed for a disposition of real_fire (needs resolved) and of
 * false_alarm (any live state) separately. */
static const char *const states[] = { "open", "reported", "dispatched", "in_progress",
                                      "resolved", "closed", "returned", "reopened" };
static const char *const expected[][8] = {
	/* accept   */ { "reported", "reported", "-", "-", "-", "-", "returned", "reopened" },
	/* dispatch */ { "dispatched", "dispatched", "-", "-", "-", "-", "dispatched", "dispatched" },
	/* progress */ { "-", "-", "in_progress", "in_progress", "-", "-", "-", "-" },
	/* resolve  */ { "-", "-", "resolved", "resolved", "-", "-", "-", "-" },
	/* close rf */ { "-", "-", "-", "-", "closed", "-", "-", "-" },
	/* return   */ { "-", "returned", "returned", "returned", "returned", "-", "-", "returned" },
	/* reopen   */ { "-", "-", "-", "-", "reopened", "reopened", "-", "-" },
	/* close fa */ { "closed", "closed", "closed", "closed", "closed", "-", "closed", "closed" },
};

static void test_table(void)
{
	for (int a = 0; a < 8; a++) {
		enum fg_action act = a == 7 ? FG_ACTION_CLOSE : (enum fg_action)a;
		enum fg_disposition disp = a == 4 ? FG_DISP_REAL_FIRE
		                           : a == 7 ? FG_DISP_FALSE_ALARM : FG_DISP_NONE;
		for (int s = 0; s < 8; s++) {
			const char *to = NULL, *why = NULL;
			int r = fg_lifecycle_next(states[s], act, disp, &to, &why);
			bool want = strcmp(expected[a][s], "-") != 0;
			if ((r == 0) != want || (want && strcmp(to, expected[a][s]) != 0) ||
			    (!want && (r != -EPERM || !why || !*why))) {
				fprintf(stderr, "  %s on %s: r=%d to=%s why=%s, expected %s\n",
				        fg_action_name(act), states[s], r, to ? to : "-", why ? why : "-",
				        expected[a][s]);
				failures++;
			}
		}
	}
	/* Every disposition that needs handling first; the ones that do not. */
	const char *to, *why;
	CHECK(fg_lifecycle_next("dispatched", FG_ACTION_CLOSE, FG_DISP_HANDLED, &to, &why) == -EPERM);
	CHECK(strstr(why, "resolved first") != NULL);
	CHECK(fg_lifecycle_next("reported", FG_ACTION_CLOSE, FG_DISP_TEST, &to, &why) == 0);
	CHECK(fg_lifecycle_next("open", FG_ACTION_CLOSE, FG_DISP_DEVICE_FAULT, &to, &why) == 0);
	CHECK(fg_lifecycle_next("weird", FG_ACTION_CLOSE, FG_DISP_TEST, &to, &why) == -EINVAL);
	CHECK(fg_lifecycle_next("open", FG_ACTION__COUNT, FG_DISP_TEST, &to, &why) == -EINVAL);

	/* Escalation runs exactly in the states waiting for a dispatch. */
	for (int s = 0; s < 8; s++) {
		bool esc = fg_state_escalates(states[s]);
		bool want = s == 0 || s == 1 || s == 6 || s == 7;
		CHECK(esc == want);
		CHECK(fg_state_live(states[s]) == (s != 4 && s != 5));
	}
	CHECK(strcmp(fg_escalation_tier(0), "small_grid") == 0);
	CHECK(strcmp(fg_escalation_tier(3), "fire_brigade") == 0);
	CHECK(fg_escalation_tier(4) == NULL && fg_escalation_tier(-1) == NULL);

	enum fg_action act;
	enum fg_disposition disp;
	CHECK(fg_action_parse("dispatch", &act) == 0 && act == FG_ACTION_DISPATCH);
	CHECK(fg_action_parse("Dispatch", &act) == -EINVAL);
	CHECK(fg_disposition_parse("false_alarm", &disp) == 0 && disp == FG_DISP_FALSE_ALARM);
	CHECK(fg_disposition_parse("none", &disp) == -EINVAL);
	CHECK(strcmp(fg_action_change(FG_ACTION_PROGRESS), "progress") == 0);
}

/* ---- request bodies --------------------------------------------------------- */

static int parse(const char *text, struct fg_action_req *a, const char **field)
{
	json_t *doc = json_loads(text, 0, NULL);
	char why[200];
	*field = "untouched";
	int r = fg_action_from_json(doc, 1000000, a, field, why, sizeof(why));
	json_decref(doc);
	return r;
}

static void test_bodies(void)
{
	struct fg_action_req a;
	const char *f;
	/* Strings are borrowed from the JSON: check them before it is freed. */
	json_t *doc = json_loads("{\"action\":\"dispatch\",\"action_id\":\"x1\",\"actor\":\"desk 3\","
	                         "\"unit\":\"station-3\",\"note\":\"go\",\"case_no\":\"C-1\","
	                         "\"deadline\":\"2030-01-01T00:00:00Z\"}", 0, NULL);
	char why[200];
	CHECK(fg_action_from_json(doc, 1000000, &a, &f, why, sizeof(why)) == 0);
	CHECK(a.action == FG_ACTION_DISPATCH && strcmp(a.unit, "station-3") == 0);
	CHECK(strcmp(a.actor, "desk 3") == 0 && strcmp(a.case_no, "C-1") == 0);
	CHECK(a.deadline_ms == 1893456000000LL && a.disposition == FG_DISP_NONE);
	json_decref(doc);

	static const struct {
		const char *body, *field;
	} bad[] = {
		{ "{\"action_id\":\"x\",\"actor\":\"a\"}", "action" },
		{ "{\"action\":\"explode\",\"action_id\":\"x\",\"actor\":\"a\"}", "action" },
		{ "{\"action\":7,\"action_id\":\"x\",\"actor\":\"a\"}", "action" },
		{ "{\"action\":\"accept\",\"actor\":\"a\"}", "action_id" },
		{ "{\"action\":\"accept\",\"action_id\":\"\",\"actor\":\"a\"}", "action_id" },
		{ "{\"action\":\"accept\",\"action_id\":\"x\"}", "actor" },
		{ "{\"action\":\"accept\",\"action_id\":\"x\",\"actor\":null}", "actor" },
		{ "{\"action\":\"accept\",\"action_id\":\"x\",\"actor\":\"a\\u0001b\"}", "actor" },
		{ "{\"action\":\"dispatch\",\"action_id\":\"x\",\"actor\":\"a\"}", "unit" },
		{ "{\"action\":\"dispatch\",\"action_id\":\"x\",\"actor\":\"a\",\"unit\":5}", "unit" },
		{ "{\"action\":\"close\",\"action_id\":\"x\",\"actor\":\"a\"}", "disposition" },
		{ "{\"action\":\"close\",\"action_id\":\"x\",\"actor\":\"a\",\"disposition\":\"meh\"}",
		  "disposition" },
		{ "{\"action\":\"resolve\",\"action_id\":\"x\",\"actor\":\"a\",\"disposition\":\"test\"}",
		  "disposition" },
		{ "{\"action\":\"accept\",\"action_id\":\"x\",\"actor\":\"a\",\"deadline\":\"soon\"}",
		  "deadline" },
		{ "{\"action\":\"accept\",\"action_id\":\"x\",\"actor\":\"a\","
		  "\"deadline\":\"1970-01-01T00:00:01Z\"}", "deadline" },
		{ "{\"action\":\"resolve\",\"action_id\":\"x\",\"actor\":\"a\","
		  "\"deadline\":\"2030-01-01T00:00:00Z\"}", "deadline" },
		{ "{\"action\":\"accept\",\"action_id\":\"x\",\"actor\":\"a\",\"case_no\":\"\"}",
		  "case_no" },
		{ "{\"action\":\"accept\",\"action_id\":\"x\",\"actor\":\"a\",\"note\":[]}", "note" },
	};
	for (size_t i = 0; i < FG_ARRAY_SIZE(bad); i++) {
		int r = parse(bad[i].body, &a, &f);
		if (r != -EINVAL || !f || strcmp(f, bad[i].field) != 0) {
			fprintf(stderr, "  %s: r=%d field=%s, expected %s\n", bad[i].body, r,
			        f ? f : "(null)", bad[i].field);
			failures++;
		}
	}
	/* Unknown fields are refused without a field of ours to name. */
	CHECK(parse("{\"action\":\"accept\",\"action_id\":\"x\",\"actor\":\"a\",\"colour\":1}",
	            &a, &f) == -EINVAL && f == NULL);
	CHECK(parse("[1]", &a, &f) == -EINVAL);
}

/* ---- stored incidents ----------------------------------------------------------- */

static int64_t open_alarm(const char *device, fg_kind kind, int64_t t)
{
	struct fg_ev ev = test_ev(device, kind, kind == FG_KIND_BATTERY_LOW ? FG_SEV_WARNING
	                                                                 : FG_SEV_CRITICAL, t);
	int64_t id = -1;
	int r = fg_incidents_apply(incs, &ev, &id);
	CHECK(r == FG_APPLY_OPENED || r == FG_APPLY_REOPENED);
	return id;
}

static int act(int64_t id, enum fg_action action, const char *unit, enum fg_disposition disp,
               int64_t deadline, int64_t now, struct fg_act_result *res)
{
	struct fg_action_req a = { .action = action, .action_id = "id", .actor = "desk-1",
	                           .unit = unit, .note = "n", .disposition = disp,
	                           .deadline_ms = deadline };
	return fg_incidents_act(incs, id, &a, "center", now, res);
}

static int64_t webhooks(int64_t id, const char *type)
{
	return q("SELECT count(*) FROM outbox WHERE incident_id = %lld AND type = "
	         "'org.firegrid.incident.%s'", (long long)id, type);
}

static void test_loop(void)
{
	struct fg_act_result res;
	int64_t id = open_alarm("dev-a", FG_KIND_SMOKE, 1000);
	CHECK(fg_incidents_delivered(incs, id, "ops", 1100, "{\"case_no\":\"SH-1\"}", 18) == 0);
	CHECK(q("SELECT state = 'reported' AND case_no = 'SH-1' AND reported_ms = 1100 FROM incidents"
	        " WHERE id = %lld", (long long)id) == 1);
	/* A second acceptance does not replace the case number. */
	CHECK(fg_incidents_delivered(incs, id, "ops", 1150, "{\"case_no\":\"SH-2\"}", 18) == 0);
	CHECK(fg_incidents_delivered(incs, id, "ops", 1160, "not json", 8) == 0);
	CHECK(q("SELECT case_no = 'SH-1' FROM incidents WHERE id = %lld", (long long)id) == 1);

	CHECK(act(id, FG_ACTION_PROGRESS, NULL, 0, 0, 1200, &res) == -EPERM);
	CHECK(strcmp(res.from, "reported") == 0);
	CHECK(act(id, FG_ACTION_DISPATCH, "st-3", 0, 0, 1300, &res) == 0);
	CHECK(strcmp(res.from, "reported") == 0 && strcmp(res.to, "dispatched") == 0);
	CHECK(res.revision == 2);
	CHECK(act(id, FG_ACTION_RETURN, NULL, 0, 0, 1400, &res) == 0 && res.revision == 3);
	CHECK(act(id, FG_ACTION_DISPATCH, "st-4", 0, 0, 1500, &res) == 0);
	CHECK(act(id, FG_ACTION_PROGRESS, NULL, 0, 0, 1600, &res) == 0);
	CHECK(act(id, FG_ACTION_CLOSE, NULL, FG_DISP_REAL_FIRE, 0, 1650, &res) == -EPERM);
	CHECK(act(id, FG_ACTION_RESOLVE, NULL, 0, 0, 1700, &res) == 0);
	CHECK(act(id, FG_ACTION_CLOSE, NULL, FG_DISP_REAL_FIRE, 0, 1800, &res) == 0);
	CHECK(res.revision == 7);
	CHECK(q("SELECT state = 'closed' AND closed_ms = 1800 AND disposition = 'real_fire'"
	        " AND dispatched_unit = 'st-4' AND dispatched_ms = 1500 AND resolved_ms = 1700"
	        " FROM incidents WHERE id = %lld", (long long)id) == 1);
	CHECK(webhooks(id, "dispatched") == 2 && webhooks(id, "returned") == 1);
	CHECK(webhooks(id, "progress") == 1 && webhooks(id, "resolved") == 1);
	CHECK(webhooks(id, "closed") == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND channel ="
	        " 'api:center' AND actor = 'desk-1'", (long long)id) == 6);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND from_state ="
	        " 'returned' AND to_state = 'dispatched' AND revision = 4", (long long)id) == 1);
	CHECK(act(999999, FG_ACTION_ACCEPT, NULL, 0, 0, 1900, &res) == -ENOENT);

	/* Within the reopen window a re-alarm reopens the same incident. */
	int64_t again = open_alarm("dev-a", FG_KIND_SMOKE, 1800 + 60000);
	CHECK(again == id);
	CHECK(q("SELECT state = 'reopened' AND reopened = 1 AND closed_ms IS NULL AND disposition"
	        " IS NULL FROM incidents WHERE id = %lld", (long long)id) == 1);
	CHECK(webhooks(id, "reopened") == 1);
	CHECK(act(id, FG_ACTION_CLOSE, NULL, FG_DISP_FALSE_ALARM, 0, 70000, &res) == 0);
	/* After the window: a new incident. */
	int64_t later = open_alarm("dev-a", FG_KIND_SMOKE, 70000 + 1800001);
	CHECK(later != id && later > 0);
	/* The center cannot reopen the old one while the new one is live. */
	CHECK(act(id, FG_ACTION_REOPEN, NULL, 0, 0, 70000 + 1800002, &res) == -EBUSY);
	CHECK(res.conflict_id == later);
	CHECK(act(later, FG_ACTION_CLOSE, NULL, FG_DISP_TEST, 0, 70000 + 1800003, &res) == 0);
	CHECK(act(id, FG_ACTION_REOPEN, NULL, 0, 0, 70000 + 1800004, &res) == 0);
	CHECK(strcmp(res.to, "reopened") == 0);
}

static void test_device_health(void)
{
	struct fg_act_result res;
	int64_t id = open_alarm("dev-b", FG_KIND_BATTERY_LOW, 5000);
	struct fg_ev clr = test_ev("dev-b", FG_KIND_CLEAR, FG_SEV_INFO, 5100);
	clr.clears = FG_KIND_BATTERY_LOW;
	int64_t cid = -1;
	CHECK(fg_incidents_apply(incs, &clr, &cid) == FG_APPLY_CLEARED && cid == id);
	CHECK(q("SELECT state = 'resolved' AND resolved_ms = 5100 AND cleared_ms = 5100"
	        " FROM incidents WHERE id = %lld", (long long)id) == 1);
	CHECK(webhooks(id, "cleared") == 1);
	/* Low again before the center closed it: reopened. */
	CHECK(open_alarm("dev-b", FG_KIND_BATTERY_LOW, 5200) == id);
	CHECK(q("SELECT state FROM incidents WHERE id = %lld AND state = 'reopened'",
	        (long long)id) != -1);
	CHECK(fg_incidents_apply(incs, &clr, &cid) == FG_APPLY_CLEARED);
	CHECK(act(id, FG_ACTION_CLOSE, NULL, FG_DISP_HANDLED, 0, 5300, &res) == 0);

	/* A fire-class alarm that clears stays for the center to resolve. */
	int64_t f = open_alarm("dev-f", FG_KIND_SMOKE, 5400);
	struct fg_ev fc = test_ev("dev-f", FG_KIND_CLEAR, FG_SEV_INFO, 5500);
	fc.clears = FG_KIND_SMOKE;
	CHECK(fg_incidents_apply(incs, &fc, &cid) == FG_APPLY_CLEARED && cid == f);
	CHECK(q("SELECT state = 'open' FROM incidents WHERE id = %lld", (long long)f) == 1);
}

static void test_deadline(void)
{
	struct fg_act_result res;
	int64_t id = open_alarm("dev-d", FG_KIND_HEAT, 10000);
	CHECK(act(id, FG_ACTION_DISPATCH, "st-1", 0, 20000, 11000, &res) == 0);
	/* The deadline comes before the persistence check (70000); the
	 * dispatch stopped escalation. */
	CHECK(q("SELECT next_due_ms FROM incidents WHERE id = %lld", (long long)id) == 20000);
	CHECK(q("SELECT esc_due_ms IS NULL FROM incidents WHERE id = %lld", (long long)id) == 1);
	/* Too early: nothing, still due at 20000. */
	CHECK(fg_incidents_run_due(incs, id, 19999) == 0);
	CHECK(q("SELECT overdue FROM incidents WHERE id = %lld", (long long)id) == 0);
	CHECK(fg_incidents_run_due(incs, id, 20001) == 1);
	CHECK(q("SELECT overdue = 1 AND next_due_ms = 70000 FROM incidents WHERE id = %lld",
	        (long long)id) == 1);
	CHECK(webhooks(id, "overdue") == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND channel = 'timer'"
	        " AND actor = 'firegrid' AND note LIKE 'deadline %%passed'", (long long)id) == 1);
	/* Once only. */
	CHECK(fg_incidents_run_due(incs, id, 30000) == 0);
	CHECK(webhooks(id, "overdue") == 1);

	/* Resolved before the deadline: never overdue. */
	int64_t id2 = open_alarm("dev-e", FG_KIND_HEAT, 10000);
	CHECK(act(id2, FG_ACTION_DISPATCH, "st-1", 0, 20000, 11000, &res) == 0);
	CHECK(act(id2, FG_ACTION_RESOLVE, NULL, 0, 0, 12000, &res) == 0);
	CHECK(q("SELECT next_due_ms FROM incidents WHERE id = %lld", (long long)id2) == 70000);
	CHECK(fg_incidents_run_due(incs, id2, 20001) == 0);
	CHECK(webhooks(id2, "overdue") == 0);
	/* ... nor confirmed after it was resolved. */
	CHECK(fg_incidents_run_due(incs, id2, 70001) == 0);
	CHECK(q("SELECT next_due_ms IS NULL AND confirmed = 0 FROM incidents WHERE id = %lld",
	        (long long)id2) == 1);
	CHECK(webhooks(id2, "confirmed") == 0);
}

/* ---- escalation ------------------------------------------------------------ */

static void test_escalation_math(void)
{
	const struct fg_conf_tiers *t = fg_escalation_tiers(&conf, FG_KIND_SMOKE, false);
	CHECK(t == &conf.esc_fire);
	CHECK(fg_escalation_next(t, 0, 1000) == 61000);
	CHECK(fg_escalation_next(t, 1, 61000) == 181000);
	CHECK(fg_escalation_next(t, 2, 181000) == 301000);
	CHECK(fg_escalation_next(t, 3, 301000) == 0);
	CHECK(fg_escalation_next(t, -1, 0) == 0 && fg_escalation_next(NULL, 0, 5) == 0);
	/* Resuming at level 1 (after a return) waits for the gap to level 2. */
	CHECK(fg_escalation_next(t, 1, 500000) == 620000);
	/* Elderly living alone: half the fire timers. */
	t = fg_escalation_tiers(&conf, FG_KIND_HEAT, true);
	CHECK(t == &conf.esc_fire_elderly && fg_escalation_next(t, 0, 0) == 30000);
	CHECK(fg_escalation_tiers(&conf, FG_KIND_OVERCURRENT, true) == &conf.esc_ebike);
	CHECK(fg_escalation_next(&conf.esc_ebike, 2, 0) == 900000);
	CHECK(fg_escalation_tiers(&conf, FG_KIND_OFFLINE, false) == &conf.esc_device_health);
	CHECK(fg_escalation_tiers(&conf, FG_KIND_FIRE_LANE_BLOCKED, false) == &conf.esc_fire_lane);
	CHECK(fg_escalation_next(&conf.esc_fire_lane, 2, 0) == 0);
	CHECK(fg_escalation_tiers(&conf, FG_KIND_TEST, false) == NULL);
	CHECK(fg_escalation_tiers(NULL, FG_KIND_SMOKE, false) == NULL);
	CHECK(fg_hazard_of(FG_KIND_RESIDUAL_CURRENT) == FG_HAZARD_FIRE);
	CHECK(fg_hazard_of(FG_KIND_OVERTEMP) == FG_HAZARD_EBIKE);
	CHECK(fg_hazard_of(FG_KIND_TAMPER) == FG_HAZARD_DEVICE_HEALTH);
	CHECK(fg_hazard_of(FG_KIND_CLEAR) == FG_HAZARD_NONE);
}

static int64_t col(int64_t id, const char *expr)
{
	return q("SELECT %s FROM incidents WHERE id = %lld", expr, (long long)id);
}

static void test_escalation_store(void)
{
	struct fg_act_result res;
	int64_t t0 = 100000000;
	int64_t id = open_alarm("esc-1", FG_KIND_SMOKE, t0);
	CHECK(col(id, "esc_level") == 0 && col(id, "esc_due_ms") == t0 + 60000);
	CHECK(col(id, "confirmed") == 0 && col(id, "confirm_due_ms") == t0 + 60000);
	CHECK(col(id, "next_due_ms") == t0 + 60000);
	/* 60 s later: the alarm persisted (confirmed) and nobody dispatched
	 * (level 1): two revisions. */
	CHECK(fg_incidents_run_due(incs, id, t0 + 60000) == 2);
	CHECK(col(id, "confirmed") == 1 && col(id, "esc_level") == 1 && col(id, "overdue") == 1);
	CHECK(col(id, "esc_due_ms") == t0 + 180000 && col(id, "revision") == 3);
	CHECK(webhooks(id, "confirmed") == 1 && webhooks(id, "escalated") == 1);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND note ="
	        " 'level 1 (medium_grid): not dispatched within 60s'", (long long)id) == 1);
	/* Dispatch stops it; return resumes from now at level 1. */
	CHECK(act(id, FG_ACTION_DISPATCH, "st", 0, 0, t0 + 70000, &res) == 0);
	CHECK(col(id, "esc_due_ms IS NULL") == 1 && col(id, "next_due_ms IS NULL") == 1);
	CHECK(act(id, FG_ACTION_RETURN, NULL, 0, 0, t0 + 100000, &res) == 0);
	CHECK(col(id, "esc_due_ms") == t0 + 100000 + 120000);
	/* Far later (firegridd was down): each run climbs one level, each a
	 * revision, until the last. */
	int64_t late = t0 + 3600000;
	CHECK(fg_incidents_run_due(incs, id, late) == 1 && col(id, "esc_level") == 2);
	CHECK(col(id, "esc_due_ms") == t0 + 220000 + 120000);
	CHECK(fg_incidents_run_due(incs, id, late) == 1 && col(id, "esc_level") == 3);
	CHECK(col(id, "esc_due_ms IS NULL") == 1 && col(id, "next_due_ms IS NULL") == 1);
	CHECK(fg_incidents_run_due(incs, id, late) == 0);
	CHECK(webhooks(id, "escalated") == 3);
	/* A reopen starts over at level 0. */
	CHECK(act(id, FG_ACTION_CLOSE, NULL, FG_DISP_TEST, 0, late + 1, &res) == 0);
	CHECK(act(id, FG_ACTION_REOPEN, NULL, 0, 0, late + 2, &res) == 0);
	CHECK(col(id, "esc_level") == 0 && col(id, "esc_due_ms") == late + 2 + 60000);
	CHECK(col(id, "overdue") == 0);

	/* Cleared before 60 s: stays unconfirmed. */
	int64_t c = open_alarm("esc-2", FG_KIND_SMOKE, t0);
	struct fg_ev clr = test_ev("esc-2", FG_KIND_CLEAR, FG_SEV_INFO, t0 + 5000);
	clr.clears = FG_KIND_SMOKE;
	int64_t cid;
	CHECK(fg_incidents_apply(incs, &clr, &cid) == FG_APPLY_CLEARED);
	CHECK(fg_incidents_run_due(incs, c, t0 + 60000) == 1);      /* escalated only */
	CHECK(col(c, "confirmed") == 0 && col(c, "confirm_due_ms IS NULL") == 1);
	CHECK(webhooks(c, "confirmed") == 0);

	/* A manual call point is confirmed at once. */
	struct fg_ev man = test_ev("mcp-1", FG_KIND_SMOKE, FG_SEV_CRITICAL, t0);
	man.attrs_json = "{\"trigger\":\"manual\"}";
	int64_t m = -1;
	CHECK(fg_incidents_apply(incs, &man, &m) == FG_APPLY_OPENED);
	CHECK(col(m, "confirmed") == 1 && col(m, "confirm_due_ms IS NULL") == 1);
	/* Device health escalates on its own day-long tiers. */
	int64_t b = open_alarm("esc-b", FG_KIND_BATTERY_LOW, t0);
	CHECK(col(b, "confirmed") == 1 && col(b, "esc_due_ms") == t0 + 86400000);
}

static void test_fire_lane_hold(void)
{
	int64_t t0 = 200000000, id = -1, id2 = -1, cid;
	struct fg_ev ev = test_ev("cam-1", FG_KIND_FIRE_LANE_BLOCKED, FG_SEV_MAJOR, t0);
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	CHECK(col(id, "hold_until_ms") == t0 + 1800000 && col(id, "esc_due_ms IS NULL") == 1);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id) == 0);
	/* Cleared within the hold: never reported, closed quietly. */
	struct fg_ev clr = test_ev("cam-1", FG_KIND_FIRE_LANE_CLEARED, FG_SEV_INFO, t0 + 600000);
	CHECK(fg_incidents_apply(incs, &clr, &cid) == FG_APPLY_CLEARED);
	CHECK(col(id, "revision") == 1);
	CHECK(fg_incidents_run_due(incs, id, t0 + 1800000) == 0);
	CHECK(col(id, "state = 'closed' AND hold_until_ms IS NULL") == 1);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id) == 0);

	/* Still blocked after 30 min: reported as revision 1, with the 48 h
	 * deadline and the first tier 24 h on. */
	ev = test_ev("cam-2", FG_KIND_FIRE_LANE_BLOCKED, FG_SEV_MAJOR, t0);
	CHECK(fg_incidents_apply(incs, &ev, &id2) == FG_APPLY_OPENED);
	int64_t rel = t0 + 1800000;
	CHECK(fg_incidents_run_due(incs, id2, rel) == 1);
	CHECK(q("SELECT count(*) FROM outbox WHERE incident_id = %lld AND revision = 1 AND type ="
	        " 'org.firegrid.incident.opened'", (long long)id2) == 1);
	CHECK(col(id2, "deadline_ms") == rel + 172800000 && col(id2, "esc_due_ms") == rel + 86400000);
	CHECK(col(id2, "next_due_ms") == rel + 86400000);
}

/* ---- correlation: double knock, storms, settling ---------------------------- */

static void registry(const char *csv)
{
	struct fg_registry_row *rows = NULL;
	size_t n = 0;
	char *errs = NULL;
	CHECK(fg_registry_parse_csv("t.csv", csv, strlen(csv), &rows, &n, &errs) == 0);
	if (errs)
		fprintf(stderr, "%s\n", errs);
	free(errs);
	CHECK(fg_registry_import(st, rows, n, false, 1) == (int)n);
	fg_registry_rows_free(rows, n);
}

static void test_double_knock(void)
{
	conf.confirm_window_ms = 120000;
	registry("device_id,compound,building,unit,flags\n"
	         "k1,east,3,1,\nk2,east,3,2,\nk3,east,4,1,\nk4,east,3,1,\n"
	         "k5,east,3,2,elderly_alone\nk6,east,5,1,\nk7,east,5,2,\n");
	int64_t t0 = 300000000;
	int64_t a = open_alarm("k1", FG_KIND_SMOKE, t0);
	CHECK(col(a, "confirmed") == 0);
	int64_t b = open_alarm("k3", FG_KIND_HEAT, t0 + 10000);       /* another building */
	CHECK(col(b, "confirmed") == 0 && col(a, "confirmed") == 0);
	int64_t c = open_alarm("k2", FG_KIND_SMOKE, t0 + 30000);      /* second knock */
	CHECK(col(c, "confirmed") == 1 && col(c, "confirm_due_ms IS NULL") == 1);
	CHECK(col(a, "confirmed") == 1 && col(a, "confirm_due_ms IS NULL") == 1);
	CHECK(webhooks(a, "confirmed") == 1 && webhooks(c, "confirmed") == 0);
	CHECK(q("SELECT count(*) FROM incident_history WHERE incident_id = %lld AND note ="
	        " 'double knock: second detector k2 in the same building' AND channel ="
	        " 'correlation'", (long long)a) == 1);
	CHECK(col(b, "confirmed") == 0);
	/* Outside the window: no knock. */
	int64_t d = open_alarm("k4", FG_KIND_SMOKE, t0 + 200000);
	CHECK(col(d, "confirmed") == 0);
	/* An elderly person living alone: confirmed at once. */
	int64_t e = open_alarm("k5", FG_KIND_CO, t0 + 400000);
	CHECK(col(e, "confirmed") == 1);
	/* Scope unit: the same building is not enough. */
	conf.confirm_scope_unit = 1;
	int64_t f = open_alarm("k6", FG_KIND_SMOKE, t0 + 500000);
	int64_t g = open_alarm("k7", FG_KIND_SMOKE, t0 + 500001);
	CHECK(col(f, "confirmed") == 0 && col(g, "confirmed") == 0);
	conf.confirm_scope_unit = 0;
	conf.confirm_window_ms = 0;
}

static int64_t offline(const char *device, const char *source, int64_t t)
{
	struct fg_ev ev = test_ev(device, FG_KIND_OFFLINE, FG_SEV_WARNING, t);
	ev.source = source;
	int64_t id = -1;
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);
	return id;
}

static void online(const char *device, int64_t t)
{
	struct fg_ev ev = test_ev(device, FG_KIND_ONLINE, FG_SEV_INFO, t);
	int64_t id;
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_CLEARED);
}

static int64_t rows_of(int64_t id)
{
	return q("SELECT count(*) FROM outbox WHERE incident_id = %lld", (long long)id);
}

static void test_storm(void)
{
	struct fg_act_result res;
	conf.storm_devices = 3;
	conf.storm_window_ms = 60000;
	registry("device_id,compound\ns1,west\ns2,west\ns3,west\ns4,west\ns5,west\n");
	int64_t t0 = 400000000, ids[5];
	const char *devs[] = { "s1", "s2", "s3", "s4", "s5" };
	for (int i = 0; i < 3; i++) {
		ids[i] = offline(devs[i], "z2m", t0 + i);
		CHECK(col(ids[i], "hold_until_ms") == t0 + i + 60000 && rows_of(ids[i]) == 0);
	}
	ids[3] = offline("s4", "z2m", t0 + 3);
	int64_t site = q("SELECT id FROM incidents WHERE dedup_key = 'site:west|offline'");
	CHECK(site > 0);
	CHECK(col(site, "count") == 4 && col(site, "state = 'open'") == 1);
	CHECK(webhooks(site, "opened") == 1);
	CHECK(col(site, "esc_due_ms") == t0 + 3 + 86400000);
	for (int i = 0; i < 4; i++)
		CHECK(col(ids[i], "parent_id") == site && col(ids[i], "hold_until_ms IS NULL") == 1 &&
		      rows_of(ids[i]) == 0);
	ids[4] = offline("s5", "z2m", t0 + 5000);
	CHECK(col(ids[4], "parent_id") == site && col(site, "count") == 5 && rows_of(ids[4]) == 0);
	/* Back one by one: quiet, until the last brings the site back. */
	for (int i = 0; i < 4; i++)
		online(devs[i], t0 + 10000 + i);
	CHECK(col(site, "cleared_ms IS NULL") == 1 && webhooks(site, "cleared") == 0);
	online("s5", t0 + 20000);
	CHECK(col(site, "cleared_ms") == t0 + 20000 && col(site, "state = 'resolved'") == 1);
	CHECK(webhooks(site, "cleared") == 1);
	for (int i = 0; i < 5; i++)
		CHECK(rows_of(ids[i]) == 0 && col(ids[i], "state = 'resolved'") == 1);
	/* The center's close takes the devices' incidents along. */
	CHECK(act(site, FG_ACTION_CLOSE, NULL, FG_DISP_DEVICE_FAULT, 0, t0 + 30000, &res) == 0);
	CHECK(q("SELECT count(*) FROM incidents WHERE parent_id = %lld AND state = 'closed'"
	        " AND disposition = 'device_fault'", (long long)site) == 5);

	/* No storm: a held report that came back is dropped, one that did not
	 * goes out at the end of the window. */
	int64_t u1 = offline("u1", "z2m", t0 + 100000), u2 = offline("u2", "z2m", t0 + 100000);
	online("u1", t0 + 110000);
	CHECK(fg_incidents_run_due(incs, u1, t0 + 160000) == 0);
	CHECK(col(u1, "state = 'closed'") == 1 && rows_of(u1) == 0);
	CHECK(fg_incidents_run_due(incs, u2, t0 + 160000) == 1);
	CHECK(webhooks(u2, "opened") == 1 && col(u2, "revision") == 1);
	/* u1 was never reported: going offline again is a new incident. */
	int64_t u1b = offline("u1", "z2m", t0 + 200000);
	CHECK(u1b != u1);

	/* A bridge going offline is the site incident: reported at once, and
	 * the devices behind it join it. */
	int64_t br = offline("zigbee2mqtt/bridge", "z2m-b", t0 + 300000);
	CHECK(col(br, "hold_until_ms IS NULL") == 1 && webhooks(br, "opened") == 1);
	int64_t u3 = offline("u3", "z2m-b", t0 + 300100);
	CHECK(col(u3, "parent_id") == br && rows_of(u3) == 0);

	/* Settling after a reconnect holds offline reports longer. */
	fg_incidents_settle(incs, t0 + 900000);
	int64_t u4 = offline("u4", "z2m-c", t0 + 400000);
	CHECK(col(u4, "hold_until_ms") == t0 + 900000);
	conf.storm_devices = 0;
	conf.storm_window_ms = 0;
}

static void test_action_records(void)
{
	char *client = NULL, *request = NULL, *response = NULL;
	int status = 0;
	CHECK(fg_action_lookup(st, "a-1", &client, &request, &status, &response) == 0);
	CHECK(fg_action_record(st, "a-1", "center", 1, "1 {}", 200, "{\"ok\":1}", 1000) == 0);
	CHECK(fg_action_record(st, "a-1", "center", 1, "1 {}", 200, "{}", 1000) == -EEXIST);
	CHECK(fg_action_lookup(st, "a-1", &client, &request, &status, &response) == 1);
	CHECK(strcmp(client, "center") == 0 && strcmp(request, "1 {}") == 0 && status == 200);
	CHECK(strcmp(response, "{\"ok\":1}") == 0);
	free(client);
	free(request);
	free(response);
}

int main(void)
{
	char path[256];
	test_table();
	test_bodies();
	test_dir_make();
	CHECK(fg_store_open(test_path(path, sizeof(path), "lc.db"), FG_DURABILITY_NORMAL, &st) == 0);
	if (!st)
		return 1;
	CHECK(fg_outbox_new(st, &conf, &ob) == 0);
	CHECK(fg_incidents_new(st, ob, &incs) == 0);
	fg_incidents_set_conf(incs, &conf);
	test_loop();
	test_device_health();
	test_deadline();
	test_escalation_math();
	test_escalation_store();
	test_fire_lane_hold();
	test_double_knock();
	test_storm();
	test_action_records();
	CHECK(fg_store_commit(st) == 0);
	fg_incidents_free(incs);
	fg_outbox_free(ob);
	fg_store_close(st);
	return test_result("test_lifecycle");
}
