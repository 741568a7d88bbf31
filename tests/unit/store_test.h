/* Shared bits of the store / incident / outbox tests: a CHECK macro that
 * counts failures, and a scratch directory removed at exit. */
#ifndef FG_STORE_TEST_H
#define FG_STORE_TEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "event.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
	__FILE__, __LINE__, #c); failures++; } } while (0)

static char test_dir[64];

static inline void test_dir_remove(void)
{
	DIR *d = opendir(test_dir);
	if (!d)
		return;
	struct dirent *e;
	char path[512];
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", test_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(test_dir);
}

/* Create the scratch directory; returns its path. */
static inline const char *test_dir_make(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/fg-test-XXXXXX");
	if (!mkdtemp(test_dir)) {
		perror("mkdtemp");
		exit(99);
	}
	atexit(test_dir_remove);
	return test_dir;
}

/* Path of a file inside the scratch directory, written into buf. */
static inline const char *test_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", test_dir, name);
	return buf;
}

/* A minimal valid event from the z2m source; tests override fields. */
static inline struct fg_ev test_ev(const char *device, fg_kind kind, fg_severity sev,
                                   int64_t recv_ms)
{
	return (struct fg_ev){
		.source = "z2m",
		.plugin = "zigbee2mqtt",
		.transport = "mqtt",
		.topic = "zigbee2mqtt/test",
		.device = device,
		.kind = kind,
		.severity = sev,
		.recv_time_ms = recv_ms,
	};
}

/* First column of the first row of sql, or -1 (no row) / -2 (bad SQL). */
static inline int64_t test_query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static inline int test_result(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
		return 1;
	}
	return 0;
}

#endif
