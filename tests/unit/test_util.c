/* Unit tests for the shared helpers: time, kinds, metrics, secret files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "event.h"
#include "metrics.h"
#include "util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static void test_time(void)
{
	int64_t ms;
	char buf[32];
	CHECK(fg_time_parse_iso("2025-03-14T02:11:45.120Z", &ms) == 0);
	CHECK(ms == 1741918305120LL);
	CHECK(strcmp(fg_time_iso(ms, buf, sizeof(buf)), "2025-03-14T02:11:45.120Z") == 0);
	CHECK(fg_time_parse_iso("2025-03-14T10:11:45+08:00", &ms) == 0);
	CHECK(ms == 1741918305000LL);
	CHECK(fg_time_parse_iso("2025-03-14T02:11:45", &ms) == 0);
	CHECK(ms == 1741918305000LL);
	CHECK(fg_time_parse_iso("2025-03-14T02:11:45.5Z", &ms) == 0 && ms == 1741918305500LL);
	CHECK(fg_time_parse_iso("yesterday", &ms) == -EINVAL);
	CHECK(fg_time_parse_iso("2025-03-14T02:11:45Zjunk", &ms) == -EINVAL);
	CHECK(fg_time_parse_iso("2025-03-14T02:11:45+99:00", &ms) == -EINVAL);
	CHECK(fg_time_parse_iso(NULL, &ms) == -EINVAL);
}

static void test_kinds(void)
{
	fg_kind k;
	fg_severity s;
	for (unsigned i = 1; i < FG_KIND__COUNT; i++) {
		CHECK(fg_kind_parse(fg_kind_name((fg_kind)i), &k) == 0 && k == (fg_kind)i);
	}
	CHECK(fg_kind_parse("none", &k) == -EINVAL);
	CHECK(fg_kind_parse("fire", &k) == -EINVAL);
	CHECK(fg_kind_name((fg_kind)99) == NULL);
	CHECK(fg_severity_parse("critical", &s) == 0 && s == FG_SEV_CRITICAL);
	CHECK(fg_severity_parse("urgent", &s) == -EINVAL);
	CHECK(fg_kind_is_fire(FG_KIND_SMOKE) && fg_kind_is_fire(FG_KIND_RESIDUAL_CURRENT));
	CHECK(!fg_kind_is_fire(FG_KIND_TEST) && !fg_kind_is_fire(FG_KIND_OVERTEMP));
	CHECK(!fg_kind_opens_incident(FG_KIND_TEST));
	CHECK(!fg_kind_opens_incident(FG_KIND_CLEAR) && !fg_kind_opens_incident(FG_KIND_ONLINE));
	CHECK(fg_kind_opens_incident(FG_KIND_BATTERY_LOW) && fg_kind_opens_incident(FG_KIND_OFFLINE));
	CHECK(fg_kind_recovers(FG_KIND_ONLINE) == FG_KIND_OFFLINE);
	CHECK(fg_kind_recovers(FG_KIND_FIRE_LANE_CLEARED) == FG_KIND_FIRE_LANE_BLOCKED);
}

static void test_metrics(void)
{
	fg_metrics_reset();
	for (int i = 0; i < 1000; i++) {
		char v[16];
		snprintf(v, sizeof(v), "s%d", i % 100);
		fg_metrics_inc("firegrid_messages_total", "source", v);
	}
	CHECK(fg_metrics_get("firegrid_messages_total", "source", "s7") == 10);
	CHECK(fg_metrics_get("firegrid_messages_total", "source", "nope") == 0);
	fg_metrics_set("firegrid_mqtt_connected", NULL, NULL, 1);
	CHECK(fg_metrics_get("firegrid_mqtt_connected", NULL, NULL) == 1);
	fg_metrics_reset();
	CHECK(fg_metrics_get("firegrid_mqtt_connected", NULL, NULL) == 0);
}

static void test_files(void)
{
	char path[] = "/tmp/fg-test-secret-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "whsec_abc  \nsecond line\n", 24) == 24);
	close(fd);
	char *s = NULL;
	CHECK(fg_read_secret_file(path, &s) == 0 && s && strcmp(s, "whsec_abc") == 0);
	free(s);
	char *buf = NULL;
	CHECK(fg_read_file(path, 8, &buf, NULL) == -EFBIG);
	unlink(path);
	CHECK(fg_read_secret_file(path, &s) == -ENOENT);
}

static void test_rand(void)
{
	uint64_t st = fg_rand_seed(), a = fg_rand_next(&st), b = fg_rand_next(&st);
	CHECK(a != b);
}

int main(void)
{
	test_time();
	test_kinds();
	test_metrics();
	test_files();
	test_rand();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
