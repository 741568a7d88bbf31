/* Unit tests for the CloudEvents body: exact bytes for fixed inputs. */
#include <stdlib.h>
#include <string.h>
#include "cloudevent.h"
#include "registry.h"
#include "store_test.h"

static void check_body(const char *got, const char *want)
{
	CHECK(got != NULL);
	if (got && strcmp(got, want) != 0) {
		fprintf(stderr, "got:  %s\nwant: %s\n", got, want);
		failures++;
	}
}

static struct fg_incident smoke_incident(void)
{
	return (struct fg_incident){
		.id = 42,
		.dedup_key = "0x00158d0001a2b3c4|smoke",
		.device = "0x00158d0001a2b3c4",
		.source = "z2m",
		.plugin = "zigbee2mqtt",
		.kind = FG_KIND_SMOKE,
		.severity = FG_SEV_CRITICAL,
		.state = "open",
		.revision = 2,
		.count = 3,
		.opened_ms = 1741918305120LL,      /* 2025-03-14T02:11:45.120Z */
		.last_seen_ms = 1741918365120LL,   /* one minute later */
	};
}

static void test_realarm_with_event(void)
{
	struct fg_incident inc = smoke_incident();
	struct fg_ev ev = test_ev(inc.device, FG_KIND_SMOKE, FG_SEV_CRITICAL, 1741918365120LL);
	ev.topic = "zigbee2mqtt/b3/smoke";
	ev.device_time_ms = 1741918365000LL;
	ev.attrs_json = "{\"model\":\"HS1SA\",\"linkquality\":120,\"battery\":99}";
	inc.attrs_json = (char *)ev.attrs_json;
	char *body = fg_cloudevent_build("gw1", "gw1-42-2", "updated", &inc, &ev, 1741918365125LL);
	check_body(body,
		"{\"data\":{"
		"\"device\":{\"contact\":null,\"flags\":[],\"grid\":null,"
		"\"id\":\"0x00158d0001a2b3c4\",\"location\":null,\"name\":null,"
		"\"plugin\":\"zigbee2mqtt\",\"registered\":false,\"source\":\"z2m\"},"
		"\"event\":{\"attrs\":{\"battery\":99,\"linkquality\":120,\"model\":\"HS1SA\"},"
		"\"device_time\":\"2025-03-14T02:12:45.000Z\",\"kind\":\"smoke\","
		"\"received_at\":\"2025-03-14T02:12:45.120Z\",\"severity\":\"critical\","
		"\"topic\":\"zigbee2mqtt/b3/smoke\"},"
		"\"incident\":{\"attrs\":{\"battery\":99,\"linkquality\":120,\"model\":\"HS1SA\"},"
		"\"case_no\":null,\"cleared_at\":null,\"closed_at\":null,"
		"\"confirmed\":false,\"count\":3,\"deadline\":null,"
		"\"dedup_key\":\"0x00158d0001a2b3c4|smoke\",\"dispatched_at\":null,"
		"\"dispatched_unit\":null,\"disposition\":null,"
		"\"escalation\":{\"level\":0,\"next_at\":null,\"tier\":\"small_grid\"},"
		"\"fire_class\":true,\"id\":42,"
		"\"kind\":\"smoke\",\"last_seen_at\":\"2025-03-14T02:12:45.120Z\","
		"\"opened_at\":\"2025-03-14T02:11:45.120Z\",\"overdue\":false,\"reopened\":0,"
		"\"reported_at\":null,\"resolved_at\":null,\"revision\":2,"
		"\"severity\":\"critical\",\"site_incident_id\":null,\"state\":\"open\"}},"
		"\"datacontenttype\":\"application/json\",\"id\":\"gw1-42-2\","
		"\"source\":\"urn:firegrid:gw1\",\"specversion\":\"1.0\",\"subject\":\"incident/42\","
		"\"time\":\"2025-03-14T02:12:45.125Z\",\"type\":\"org.firegrid.incident.updated\"}");
	/* Same input, same bytes: retries and golden files rely on it. */
	char *again = fg_cloudevent_build("gw1", "gw1-42-2", "updated", &inc, &ev, 1741918365125LL);
	CHECK(body && again && strcmp(body, again) == 0);
	free(again);
	free(body);
}

static void test_cleared_with_value(void)
{
	struct fg_incident inc = {
		.id = 7,
		.dedup_key = "shed1-port3|residual_current",
		.device = "shed1-port3",
		.source = "shed",
		.plugin = "generic-json",
		.kind = FG_KIND_RESIDUAL_CURRENT,
		.severity = FG_SEV_MAJOR,
		.state = "reported",
		.revision = 3,
		.count = 1,
		.opened_ms = 1741918305120LL,
		.last_seen_ms = 1741918305120LL,
		.cleared_ms = 1741918405000LL,
		.reported_ms = 1741918305300LL,
		.has_value = 1,
		.value = 38,
		.unit = "mA",
		/* A dispatched, escalated, overdue incident of the ops-center loop. */
		.case_no = "SH-2025-0314-007",
		.dispatched_unit = "micro-station-3",
		.overdue = 1,
		.confirmed = 1,
		.esc_level = 2,
		.esc_due_ms = 1741918605120LL,
		.deadline_ms = 1741922005120LL,
		.dispatched_ms = 1741918365120LL,
		.reopened = 1,
		.parent_id = 5,
		/* ... of a registered device. */
		.registered = 1,
		.reg = { [FG_REG_NAME] = "shed 1 port 3", [FG_REG_COMPOUND] = "heping",
		         [FG_REG_BUILDING] = "3", [FG_REG_UNIT] = "2", [FG_REG_GRID_SMALL] = "b3",
		         [FG_REG_GRID_MEDIUM] = "community-5", [FG_REG_GRID_LARGE] = "street-2",
		         [FG_REG_FLAGS] = "bridge elderly_alone", [FG_REG_CONTACT] = "property desk" },
	};
	struct fg_ev ev = test_ev(inc.device, FG_KIND_CLEAR, FG_SEV_INFO, 1741918405000LL);
	ev.source = "shed";
	ev.plugin = "generic-json";
	ev.topic = "sheds/1/3";
	ev.clears = FG_KIND_RESIDUAL_CURRENT;
	ev.has_value = 1;
	ev.value = 0.1;
	ev.unit = "mA";
	char *body = fg_cloudevent_build("gw-2", "gw-2-7-3", "cleared", &inc, &ev, 1741918405001LL);
	check_body(body,
		"{\"data\":{"
		"\"device\":{\"contact\":\"property desk\",\"flags\":[\"bridge\",\"elderly_alone\"],"
		"\"grid\":{\"large\":\"street-2\",\"medium\":\"community-5\",\"small\":\"b3\"},"
		"\"id\":\"shed1-port3\",\"location\":{\"building\":\"3\",\"compound\":\"heping\","
		"\"floor\":null,\"room\":null,\"unit\":\"2\"},\"name\":\"shed 1 port 3\","
		"\"plugin\":\"generic-json\",\"registered\":true,\"source\":\"shed\"},"
		"\"event\":{\"attrs\":{},\"clears\":\"residual_current\",\"kind\":\"clear\","
		"\"received_at\":\"2025-03-14T02:13:25.000Z\",\"severity\":\"info\","
		"\"topic\":\"sheds/1/3\",\"unit\":\"mA\",\"value\":0.1},"
		"\"incident\":{\"attrs\":{},\"case_no\":\"SH-2025-0314-007\","
		"\"cleared_at\":\"2025-03-14T02:13:25.000Z\",\"closed_at\":null,"
		"\"confirmed\":true,\"count\":1,\"deadline\":\"2025-03-14T03:13:25.120Z\","
		"\"dedup_key\":\"shed1-port3|residual_current\","
		"\"dispatched_at\":\"2025-03-14T02:12:45.120Z\","
		"\"dispatched_unit\":\"micro-station-3\",\"disposition\":null,"
		"\"escalation\":{\"level\":2,\"next_at\":\"2025-03-14T02:16:45.120Z\","
		"\"tier\":\"large_grid\"},\"fire_class\":true,\"id\":7,"
		"\"kind\":\"residual_current\",\"last_seen_at\":\"2025-03-14T02:11:45.120Z\","
		"\"opened_at\":\"2025-03-14T02:11:45.120Z\",\"overdue\":true,\"reopened\":1,"
		"\"reported_at\":\"2025-03-14T02:11:45.300Z\",\"resolved_at\":null,\"revision\":3,"
		"\"severity\":\"major\",\"site_incident_id\":5,\"state\":\"reported\","
		"\"unit\":\"mA\",\"value\":38.0}},"
		"\"datacontenttype\":\"application/json\",\"id\":\"gw-2-7-3\","
		"\"source\":\"urn:firegrid:gw-2\",\"specversion\":\"1.0\",\"subject\":\"incident/7\","
		"\"time\":\"2025-03-14T02:13:25.001Z\",\"type\":\"org.firegrid.incident.cleared\"}");
	free(body);
}

static void test_no_trigger_and_bad_input(void)
{
	struct fg_incident inc = smoke_incident();
	inc.kind = FG_KIND_BATTERY_LOW;
	inc.severity = FG_SEV_WARNING;
	inc.dedup_key = "0x00158d0001a2b3c4|battery_low";
	char *body = fg_cloudevent_build("gw1", "gw1-42-2", "opened", &inc, NULL, 1741918365125LL);
	CHECK(body && strstr(body, "\"event\":null,") != NULL);
	CHECK(body && strstr(body, "\"fire_class\":false") != NULL);
	CHECK(body && strstr(body, "\"type\":\"org.firegrid.incident.opened\"") != NULL);
	free(body);

	/* attrs that are not an object never cost the alarm its webhook. */
	struct fg_ev ev = test_ev(inc.device, FG_KIND_BATTERY_LOW, FG_SEV_WARNING, 1741918365120LL);
	ev.attrs_json = "[1,2]";
	body = fg_cloudevent_build("gw1", "gw1-42-2", "opened", &inc, &ev, 1741918365125LL);
	CHECK(body && strstr(body, "\"attrs\":{}") != NULL);
	free(body);

	CHECK(fg_cloudevent_build("gw1", "gw1-42-2", "opened", NULL, NULL, 0) == NULL);
	CHECK(fg_cloudevent_build(NULL, "gw1-42-2", "opened", &inc, NULL, 0) == NULL);
	inc.kind = (fg_kind)99;
	CHECK(fg_cloudevent_build("gw1", "gw1-42-2", "opened", &inc, NULL, 0) == NULL);
}

int main(void)
{
	test_realarm_with_event();
	test_cleared_with_value();
	test_no_trigger_and_bad_input();
	return test_result("test_cloudevent");
}
