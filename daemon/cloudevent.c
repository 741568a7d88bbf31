/* CloudEvents 1.0 structured JSON for one incident revision (see
 * cloudevent.h and docs/webhooks.md).  Keys are sorted and the output is
 * compact, so the same revision always serialises to the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cloudevent.h"
#include "lifecycle.h"
#include "registry.h"
#include "util.h"

/* 15 significant digits: 0.1 stays "0.1" instead of 0.10000000000000001. */
#define CE_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))

/* Helpers that consume a new reference and report failure as nonzero, so a
 * whole object can be built with one `bad |=` chain and checked once. */
static int set(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

static int set_str(json_t *obj, const char *key, const char *s)
{
	return set(obj, key, s ? json_string(s) : json_null());
}

json_t *fg_cloudevent_time_json(int64_t ms)
{
	char buf[32];
	return ms ? json_string(fg_time_iso(ms, buf, sizeof(buf))) : json_null();
}

static int set_time(json_t *obj, const char *key, int64_t ms)
{
	return set(obj, key, fg_cloudevent_time_json(ms));
}

json_t *fg_cloudevent_incident_json(const struct fg_incident *inc)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
	bad |= set(o, "id", json_integer(inc->id));
	bad |= set(o, "revision", json_integer(inc->revision));
	bad |= set_str(o, "state", inc->state);
	bad |= set_str(o, "kind", fg_kind_name(inc->kind));
	bad |= set_str(o, "severity", fg_severity_name(inc->severity));
	bad |= set(o, "fire_class", json_boolean(fg_kind_is_fire(inc->kind)));
	bad |= set(o, "count", json_integer(inc->count));
	bad |= set_time(o, "opened_at", inc->opened_ms);
	bad |= set_time(o, "last_seen_at", inc->last_seen_ms);
	bad |= set_time(o, "cleared_at", inc->cleared_ms);
	bad |= set_time(o, "reported_at", inc->reported_ms);
	bad |= set_str(o, "dedup_key", inc->dedup_key);
	/* The operations-center loop. */
	bad |= set_str(o, "case_no", inc->case_no);
	bad |= set_str(o, "disposition", inc->disposition);
	bad |= set_str(o, "dispatched_unit", inc->dispatched_unit);
	bad |= set(o, "overdue", json_boolean(inc->overdue));
	bad |= set(o, "confirmed", json_boolean(inc->confirmed));
	json_t *esc = json_object();
	bad |= set(o, "escalation", esc);
	if (esc) {
		bad |= set(esc, "level", json_integer(inc->esc_level));
		bad |= set_str(esc, "tier", fg_escalation_tier(inc->esc_level));
		bad |= set_time(esc, "next_at", inc->esc_due_ms);
	}
	bad |= set_time(o, "deadline", inc->deadline_ms);
	bad |= set_time(o, "dispatched_at", inc->dispatched_ms);
	bad |= set_time(o, "resolved_at", inc->resolved_ms);
	bad |= set_time(o, "closed_at", inc->closed_ms);
	bad |= set(o, "reopened", json_integer(inc->reopened));
	bad |= set(o, "site_incident_id", inc->parent_id ? json_integer(inc->parent_id) : json_null());
	if (inc->has_value) {
		bad |= set(o, "value", json_real(inc->value));
		if (inc->unit)
			bad |= set_str(o, "unit", inc->unit);
	}
	/* Camera pictures belong to the incident, not to one revision: those
	 * pushed with its event and those fetched later (snapfetch.h) go out
	 * with every revision, a held report's included. */
	json_t *attrs = inc->attrs_json ? json_loads(inc->attrs_json, 0, NULL) : NULL;
	json_t *snaps = json_object_get(attrs, "snapshots");
	if (json_is_array(snaps) && json_array_size(snaps))
		bad |= json_object_set(o, "snapshots", snaps);
	/* The incident's own attributes (its latest event's, pictures kept):
	 * a revision without an event (a held fire-lane report released, a
	 * center action) still says which plate blocks the lane. */
	if (json_is_object(attrs))
		bad |= json_object_set(o, "attrs", attrs);
	else
		bad |= set(o, "attrs", json_object());
	json_decref(attrs);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *fg_cloudevent_device_json(const struct fg_incident *inc)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
	bad |= set_str(o, "id", inc->device);
	bad |= set_str(o, "source", inc->source);
	bad |= set_str(o, "plugin", inc->plugin);
	/* The registry (一楼一档): where the device is, its grid cells and the
	 * household's flags; an unknown device still reports, unregistered. */
	bad |= set(o, "registered", json_boolean(inc->registered));
	bad |= set_str(o, "name", inc->reg[FG_REG_NAME]);
	bad |= set_str(o, "contact", inc->reg[FG_REG_CONTACT]);
	json_t *loc = inc->registered ? json_object() : json_null();
	json_t *grid = inc->registered ? json_object() : json_null();
	json_t *flags = json_array();
	bad |= set(o, "location", loc);
	bad |= set(o, "grid", grid);
	bad |= set(o, "flags", flags);
	if (!bad && inc->registered) {
		bad |= set_str(loc, "compound", inc->reg[FG_REG_COMPOUND]);
		bad |= set_str(loc, "building", inc->reg[FG_REG_BUILDING]);
		bad |= set_str(loc, "unit", inc->reg[FG_REG_UNIT]);
		bad |= set_str(loc, "floor", inc->reg[FG_REG_FLOOR]);
		bad |= set_str(loc, "room", inc->reg[FG_REG_ROOM]);
		bad |= set_str(grid, "small", inc->reg[FG_REG_GRID_SMALL]);
		bad |= set_str(grid, "medium", inc->reg[FG_REG_GRID_MEDIUM]);
		bad |= set_str(grid, "large", inc->reg[FG_REG_GRID_LARGE]);
	}
	for (const char *p = inc->reg[FG_REG_FLAGS]; !bad && p && *p;) {
		p += strspn(p, " ");
		size_t n = strcspn(p, " ");
		if (n)
			bad |= json_array_append_new(flags, json_stringn(p, n));
		p += n;
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *event_json(const struct fg_ev *ev)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
	bad |= set_str(o, "kind", fg_kind_name(ev->kind));
	bad |= set_str(o, "severity", fg_severity_name(ev->severity));
	if (fg_kind_is_recovery(ev->kind)) {
		fg_kind target = ev->kind == FG_KIND_CLEAR ? ev->clears : fg_kind_recovers(ev->kind);
		if (target != FG_KIND_NONE && fg_kind_name(target))
			bad |= set_str(o, "clears", fg_kind_name(target));
	}
	if (ev->has_value) {
		bad |= set(o, "value", json_real(ev->value));
		if (ev->unit)
			bad |= set_str(o, "unit", ev->unit);
	}
	if (ev->device_time_ms)
		bad |= set_time(o, "device_time", ev->device_time_ms);
	bad |= set_time(o, "received_at", ev->recv_time_ms);
	bad |= set_str(o, "topic", ev->topic);

	/* The host validated attrs as a JSON object; should anything else slip
	 * through, the alarm still goes out, with empty attrs. */
	json_t *attrs = ev->attrs_json ? json_loads(ev->attrs_json, 0, NULL) : NULL;
	if (!json_is_object(attrs)) {
		json_decref(attrs);
		attrs = json_object();
	}
	bad |= set(o, "attrs", attrs);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *fg_cloudevent_build(const char *gateway_id, const char *webhook_id,
                          const char *change, const struct fg_incident *inc,
                          const struct fg_ev *trigger, int64_t time_ms)
{
	if (!gateway_id || !webhook_id || !change || !inc || !fg_kind_name(inc->kind) ||
	    !fg_severity_name(inc->severity))
		return NULL;

	char source[256], type[64], subject[48], time_buf[32];
	if ((size_t)snprintf(source, sizeof(source), "urn:firegrid:%s", gateway_id) >= sizeof(source) ||
	    (size_t)snprintf(type, sizeof(type), "org.firegrid.incident.%s", change) >= sizeof(type))
		return NULL;
	snprintf(subject, sizeof(subject), "incident/%lld", (long long)inc->id);

	json_t *data = json_object(), *ce = json_object();
	int bad = !data || !ce;
	if (!bad) {
		bad |= set(data, "incident", fg_cloudevent_incident_json(inc));
		bad |= set(data, "device", fg_cloudevent_device_json(inc));
		bad |= set(data, "event", trigger ? event_json(trigger) : json_null());
		bad |= set_str(ce, "specversion", "1.0");
		bad |= set_str(ce, "id", webhook_id);
		bad |= set_str(ce, "source", source);
		bad |= set_str(ce, "type", type);
		bad |= set_str(ce, "subject", subject);
		bad |= set_str(ce, "time", fg_time_iso(time_ms, time_buf, sizeof(time_buf)));
		bad |= set_str(ce, "datacontenttype", "application/json");
		bad |= json_object_set(ce, "data", data);
	}
	char *out = bad ? NULL : json_dumps(ce, CE_DUMP_FLAGS);
	json_decref(data);
	json_decref(ce);
	return out;
}
