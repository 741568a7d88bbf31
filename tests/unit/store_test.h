/* Shared bits of the store / incident / outbox tests: a CHECK macro that
 * counts failures, and a scratch directory removed at exit. */
#ifndef FG_STORE_TEST_H
#define FG_STORE_TEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
	__FILE__, __LINE__, #c); failures++; } } while (0)

static char test_dir[64];

static void test_dir_remove(void)
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
static const char *test_dir_make(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/fg-test-XXXXXX");
	if (!mkdtemp(test_dir)) {
		perror("mkdtemp");
		exit(99);
	}
	atexit(test_dir_remove);
	return test_dir;
}

/* path of a file inside the scratch directory (static buffer per call site
 * is enough for these tests: callers copy or use it at once). */
static const char *test_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", test_dir, name);
	return buf;
}

static int test_result(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
		return 1;
	}
	return 0;
}

#endif
