/* Output formats: CloudEvents, PagerDuty Events API v2, OASIS CAP 1.2 (see
 * formats.h and docs/formats.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "cloudevent.h"
#include "formats.h"
#include "lifecycle.h"
#include "registry.h"
#include "util.h"

const char *fg_format_content_type(int format)
{
	switch (format) {
	case FG_FORMAT_PAGERDUTY:
		return "application/json";
	case FG_FORMAT_CAP:
		return "application/cap+xml";
	default:
		return "application/cloudevents+json";
	}
}

/* What the alarm is, for people. */
static const char *event_name(fg_kind k)
{
	switch (k) {
	case FG_KIND_SMOKE: return "Smoke alarm";
	case FG_KIND_HEAT: return "Heat alarm";
	case FG_KIND_CO: return "Carbon monoxide alarm";
	case FG_KIND_RESIDUAL_CURRENT: return "Residual current alarm";
	case FG_KIND_OVERTEMP: return "E-bike shed overheat";
	case FG_KIND_OVERCURRENT: return "E-bike shed overcurrent";
	case FG_KIND_FIRE_LANE_BLOCKED: return "Fire lane blocked";
	case FG_KIND_BATTERY_LOW: return "Detector battery low";
	case FG_KIND_TAMPER: return "Detector tampered with";
	case FG_KIND_FAULT: return "Detector fault";
	case FG_KIND_OFFLINE: return "Device offline";
	default: return "Alarm";
	}
}

/* "heping, building 3, unit 2, floor 2, room 201", or "device <id>". */
static void where(const struct fg_incident *inc, char *buf, size_t len)
{
	static const struct { int col; const char *label; } parts[] = {
		{ FG_REG_COMPOUND, "" }, { FG_REG_BUILDING, "building " }, { FG_REG_UNIT, "unit " },
		{ FG_REG_FLOOR, "floor " }, { FG_REG_ROOM, "room " },
	};
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; inc->registered && i < FG_ARRAY_SIZE(parts); i++) {
		const char *v = inc->reg[parts[i].col];
		if (v && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s%s", n ? ", " : "", parts[i].label, v);
	}
	if (!n)
		snprintf(buf, len, "device %s", inc->device);
}

/* "Smoke alarm at heping, building 3 (critical, unconfirmed, escalated to
 * medium_grid)" */
static void summary(const struct fg_incident *inc, char *buf, size_t len)
{
	char place[300];
	where(inc, place, sizeof(place));
	int n = snprintf(buf, len, "%s at %s (%s", event_name(inc->kind), place,
	                 fg_severity_name(inc->severity));
	if (n >= 0 && (size_t)n < len && fg_kind_is_fire(inc->kind) && !inc->confirmed)
		n += snprintf(buf + n, len - (size_t)n, ", unconfirmed");
	if (n >= 0 && (size_t)n < len && inc->esc_level > 0)
		n += snprintf(buf + n, len - (size_t)n, ", escalated to %s",
		              fg_escalation_tier(inc->esc_level));
	if (n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ")");
}

/* ---- PagerDuty Events API v2 --------------------------------------------------- */

static const char *pd_action(const struct fg_incident *inc)
{
	if (!fg_state_live(inc->state))
		return "resolve";
	if (strcmp(inc->state, FG_STATE_DISPATCHED) == 0 ||
	    strcmp(inc->state, FG_STATE_IN_PROGRESS) == 0)
		return "acknowledge";
	return "trigger";
}

static const char *pd_severity(fg_severity s)
{
	switch (s) {
	case FG_SEV_CRITICAL: return "critical";
	case FG_SEV_MAJOR: return "error";
	case FG_SEV_WARNING: return "warning";
	default: return "info";
	}
}

static char *pagerduty(const struct fg_conf_sink *sink, const char *gateway_id,
                       const char *webhook_id, const char *change,
                       const struct fg_incident *inc, int64_t time_ms)
{
	char dedup[192], sum[512], source[256], group[256], t[32];
	snprintf(dedup, sizeof(dedup), "%s-%lld", gateway_id, (long long)inc->id);
	summary(inc, sum, sizeof(sum));
	snprintf(source, sizeof(source), "%s/%s", gateway_id, inc->device);
	if (inc->registered && inc->reg[FG_REG_COMPOUND] && inc->reg[FG_REG_BUILDING])
		snprintf(group, sizeof(group), "%s/%s", inc->reg[FG_REG_COMPOUND],
		         inc->reg[FG_REG_BUILDING]);
	else
		snprintf(group, sizeof(group), "%s", inc->site ? inc->site : inc->source);

	const char *action = pd_action(inc);
	json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "routing_key",
	                        sink->routing_key ? sink->routing_key : "", "event_action", action,
	                        "dedup_key", dedup, "client", "firegrid");
	if (doc && strcmp(action, "trigger") == 0) {
		json_t *details = json_pack("{s:s, s:s, s:o, s:o}", "change", change,
		                            "webhook_id", webhook_id,
		                            "incident", fg_cloudevent_incident_json(inc),
		                            "device", fg_cloudevent_device_json(inc));
		json_t *payload = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
		                            "summary", sum, "source", source,
		                            "severity", pd_severity(inc->severity),
		                            "timestamp", fg_time_iso(time_ms, t, sizeof(t)),
		                            "component", inc->device, "group", group,
		                            "class", fg_kind_name(inc->kind),
		                            "custom_details", details);
		if (!payload || json_object_set_new(doc, "payload", payload) < 0) {
			json_decref(doc);
			doc = NULL;
		}
	}
	char *out = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))
	                : NULL;
	json_decref(doc);
	return out;
}

/* ---- OASIS CAP 1.2 -------------------------------------------------------------- */

/* CAP dateTime: seconds, and "+00:00" rather than "Z". */
static const char *cap_time(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	return buf;
}

static void xml_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default:
			/* XML 1.0 has no place for other control characters. */
			if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
				fputc(*s, f);
		}
	}
}

static void xml_elem(FILE *f, int indent, const char *name, const char *value)
{
	fprintf(f, "%*s<%s>", indent, "", name);
	xml_text(f, value);
	fprintf(f, "</%s>\n", name);
}

static void cap_param(FILE *f, const char *name, const char *value)
{
	if (!value)
		return;
	fprintf(f, "    <parameter>\n");
	xml_elem(f, 6, "valueName", name);
	xml_elem(f, 6, "value", value);
	fprintf(f, "    </parameter>\n");
}

static const char *cap_category(fg_kind k)
{
	switch (fg_hazard_of(k)) {
	case FG_HAZARD_FIRE: case FG_HAZARD_EBIKE: return "Fire";
	case FG_HAZARD_FIRE_LANE: return "Safety";
	default: return "Infra";
	}
}

static const char *cap_severity(fg_severity s)
{
	switch (s) {
	case FG_SEV_CRITICAL: return "Extreme";
	case FG_SEV_MAJOR: return "Severe";
	case FG_SEV_WARNING: return "Moderate";
	default: return "Minor";
	}
}

static const char *cap_urgency(const struct fg_incident *inc)
{
	if (!fg_state_live(inc->state))
		return "Past";
	return fg_hazard_of(inc->kind) == FG_HAZARD_FIRE ? "Immediate" : "Expected";
}

static const char *cap_certainty(const struct fg_incident *inc)
{
	if (inc->disposition && (strcmp(inc->disposition, "false_alarm") == 0 ||
	                         strcmp(inc->disposition, "test") == 0 ||
	                         strcmp(inc->disposition, "device_fault") == 0))
		return "Unlikely";
	if (fg_kind_is_fire(inc->kind) && !inc->confirmed)
		return "Likely";
	return "Observed";
}

static char *cap(const char *gateway_id, const char *webhook_id, const char *change,
                 const struct fg_incident *inc, int64_t time_ms)
{
	char *out = NULL, t[40], opened[40], num[32], place[300], sum[512], desc[256];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	bool first = strcmp(change, "opened") == 0;
	bool closed = strcmp(inc->state, FG_STATE_CLOSED) == 0;
	where(inc, place, sizeof(place));
	summary(inc, sum, sizeof(sum));
	snprintf(desc, sizeof(desc), "%s: incident %lld revision %lld, state %s", change,
	         (long long)inc->id, (long long)inc->revision, inc->state);

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	      "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n", f);
	xml_elem(f, 2, "identifier", webhook_id);
	fprintf(f, "  <sender>urn:firegrid:");
	xml_text(f, gateway_id);
	fprintf(f, "</sender>\n");
	xml_elem(f, 2, "sent", cap_time(time_ms, t, sizeof(t)));
	xml_elem(f, 2, "status", inc->disposition && strcmp(inc->disposition, "test") == 0
	                         ? "Test" : "Actual");
	xml_elem(f, 2, "msgType", first ? "Alert" : closed ? "Cancel" : "Update");
	xml_elem(f, 2, "scope", "Restricted");
	xml_elem(f, 2, "restriction", "city operations center");
	if (!first) {
		/* The first alert of this incident: sender,identifier,sent. */
		fprintf(f, "  <references>urn:firegrid:");
		xml_text(f, gateway_id);
		fprintf(f, ",");
		xml_text(f, gateway_id);
		fprintf(f, "-%lld-1,%s</references>\n", (long long)inc->id,
		        cap_time(inc->opened_ms, opened, sizeof(opened)));
	}
	fputs("  <info>\n", f);
	xml_elem(f, 4, "language", "en");
	xml_elem(f, 4, "category", cap_category(inc->kind));
	xml_elem(f, 4, "event", event_name(inc->kind));
	xml_elem(f, 4, "urgency", cap_urgency(inc));
	xml_elem(f, 4, "severity", cap_severity(inc->severity));
	xml_elem(f, 4, "certainty", cap_certainty(inc));
	fprintf(f, "    <senderName>firegrid gateway ");
	xml_text(f, gateway_id);
	fprintf(f, "</senderName>\n");
	xml_elem(f, 4, "headline", sum);
	xml_elem(f, 4, "description", desc);
	snprintf(num, sizeof(num), "%lld", (long long)inc->id);
	cap_param(f, "firegrid_incident", num);
	snprintf(num, sizeof(num), "%lld", (long long)inc->revision);
	cap_param(f, "firegrid_revision", num);
	cap_param(f, "firegrid_state", inc->state);
	cap_param(f, "firegrid_kind", fg_kind_name(inc->kind));
	cap_param(f, "firegrid_device", inc->device);
	cap_param(f, "firegrid_confirmed", inc->confirmed ? "true" : "false");
	snprintf(num, sizeof(num), "%d", inc->esc_level);
	cap_param(f, "firegrid_escalation_level", num);
	cap_param(f, "firegrid_escalation_tier", fg_escalation_tier(inc->esc_level));
	cap_param(f, "firegrid_case_no", inc->case_no);
	cap_param(f, "firegrid_disposition", inc->disposition);
	cap_param(f, "firegrid_grid_small", inc->reg[FG_REG_GRID_SMALL]);
	cap_param(f, "firegrid_grid_medium", inc->reg[FG_REG_GRID_MEDIUM]);
	cap_param(f, "firegrid_grid_large", inc->reg[FG_REG_GRID_LARGE]);
	fputs("    <area>\n", f);
	xml_elem(f, 6, "areaDesc", place);
	fputs("    </area>\n  </info>\n</alert>\n", f);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

char *fg_format_body(const struct fg_conf_sink *sink, const char *gateway_id,
                     const char *webhook_id, const char *change,
                     const struct fg_incident *inc, const struct fg_ev *trigger,
                     int64_t time_ms)
{
	if (!gateway_id || !webhook_id || !change || !inc || !inc->state || !inc->device ||
	    !fg_kind_name(inc->kind) || !fg_severity_name(inc->severity))
		return NULL;
	switch (sink ? sink->format : FG_FORMAT_CLOUDEVENTS) {
	case FG_FORMAT_PAGERDUTY:
		return pagerduty(sink, gateway_id, webhook_id, change, inc, time_ms);
	case FG_FORMAT_CAP:
		return cap(gateway_id, webhook_id, change, inc, time_ms);
	default:
		return fg_cloudevent_build(gateway_id, webhook_id, change, inc, trigger, time_ms);
	}
}
