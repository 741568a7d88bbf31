/*
 * Unit tests for the snapshot store: content checks (JPEG, PNG, refusals),
 * SHA-256 names, the same picture stored once, the size quota deleting the
 * oldest first and the age limit (both counted), reading back, the index
 * rebuilt from the directory after a restart, and URLs with base_url.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conf.h"
#include "metrics.h"
#include "snapshot.h"
#include "util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* A JPEG-shaped blob of n bytes whose content depends on seed. */
static unsigned char *jpeg(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 31 + seed * 7) & 0x7f);
	p[0] = 0xff, p[1] = 0xd8, p[2] = 0xff, p[n - 2] = 0xff, p[n - 1] = 0xd9;
	return p;
}

int main(void)
{
	char dir[] = "/tmp/fg-snap-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	struct fg_conf conf = {
		.state_dir = dir,
		.snap_enabled = 1,
		.snap_max_bytes = 3000,
		.snap_max_age_ms = 60000,
		.snap_max_image = 2000,
	};
	fg_snapshots *s = NULL;
	CHECK(fg_snapshots_new(&conf, &s) == 0);
	const int64_t t0 = fg_now_ms();
	struct fg_snapshot sn;

	/* the corpus's minimal JFIF stub: 22 bytes */
	static const unsigned char stub[] = { 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F',
	                                      0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
	                                      0x00, 0xff, 0xd9 };
	CHECK(fg_snapshot_type(stub, sizeof(stub)) && strcmp(fg_snapshot_type(stub, sizeof(stub)), "image/jpeg") == 0);
	CHECK(fg_snapshots_put(s, stub, sizeof(stub), t0 + 1000, &sn) == 0);
	CHECK(strlen(sn.sha256) == 64 && sn.bytes == 22 && strcmp(sn.type, "image/jpeg") == 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/snapshots/%s.jpg", dir, sn.sha256);
	CHECK(access(path, R_OK) == 0);

	/* refusals, counted */
	unsigned char cut[22];
	memcpy(cut, stub, sizeof(cut));
	cut[20] = 0;                              /* no end of image */
	CHECK(fg_snapshots_put(s, cut, sizeof(cut), t0 + 1000, &sn) == -EINVAL);
	CHECK(fg_snapshots_put(s, "GIF89a.............", 19, t0 + 1000, &sn) == -EINVAL);
	unsigned char *big = jpeg(2001, 1);
	CHECK(fg_snapshots_put(s, big, 2001, t0 + 1000, &sn) == -EFBIG);
	free(big);
	CHECK(fg_metrics_get("firegrid_snapshots_rejected_total", "reason", "not_an_image") == 2);
	CHECK(fg_metrics_get("firegrid_snapshots_rejected_total", "reason", "too_large") == 1);

	/* PNG: signature, IHDR, IEND */
	unsigned char png[57] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R' };
	memcpy(png + sizeof(png) - 12, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
	CHECK(fg_snapshot_type(png, sizeof(png)) && strcmp(fg_snapshot_type(png, sizeof(png)), "image/png") == 0);
	struct fg_snapshot pn;
	CHECK(fg_snapshots_put(s, png, sizeof(png), t0 + 2000, &pn) == 0 && strcmp(pn.type, "image/png") == 0);

	/* quota 3000 bytes: three 1000-byte pictures push the oldest out */
	struct fg_snapshot a, b, c;
	unsigned char *ja = jpeg(1000, 2), *jb = jpeg(1000, 3), *jc = jpeg(1000, 4);
	CHECK(fg_snapshots_put(s, ja, 1000, t0 + 3000, &a) == 0);
	CHECK(fg_snapshots_put(s, jb, 1000, t0 + 4000, &b) == 0);
	/* the same picture again is stored once, and is new again */
	CHECK(fg_snapshots_put(s, ja, 1000, t0 + 5000, &a) == 0);
	CHECK(fg_metrics_get("firegrid_snapshots_files", NULL, NULL) == 4);
	CHECK(fg_snapshots_put(s, jc, 1000, t0 + 6000, &c) == 0);
	/* 22 + 57 + 3000 > 3000: the stub and the PNG, the oldest, go */
	CHECK(fg_metrics_get("firegrid_snapshots_deleted_total", "reason", "quota") == 2);
	char *data = NULL;
	size_t len = 0;
	const char *type = NULL;
	CHECK(fg_snapshots_get(s, pn.sha256, &data, &len, &type) == -ENOENT);
	CHECK(fg_snapshots_get(s, sn.sha256, &data, &len, &type) == -ENOENT);
	/* one more: b is now the oldest (a was stored again after it) */
	unsigned char *jd = jpeg(1000, 5);
	struct fg_snapshot d;
	CHECK(fg_snapshots_put(s, jd, 1000, t0 + 7000, &d) == 0);
	free(jd);
	CHECK(fg_metrics_get("firegrid_snapshots_deleted_total", "reason", "quota") == 3);
	CHECK(fg_snapshots_get(s, b.sha256, &data, &len, &type) == -ENOENT);
	CHECK(fg_snapshots_get(s, a.sha256, &data, &len, &type) == 0);
	CHECK(len == 1000 && memcmp(data, ja, 1000) == 0 && strcmp(type, "image/jpeg") == 0);
	free(data);
	CHECK(fg_snapshots_get(s, "../../etc/passwd", &data, &len, &type) == -ENOENT);
	CHECK(fg_metrics_get("firegrid_snapshots_bytes", NULL, NULL) == 3000);

	/* URLs */
	char url[256];
	fg_snapshots_url(s, a.sha256, url, sizeof(url));
	CHECK(strncmp(url, "/v1/snapshots/", 14) == 0 && strcmp(url + 14, a.sha256) == 0);
	conf.snap_base_url = "https://gw.example:8089/";
	fg_snapshots_url(s, a.sha256, url, sizeof(url));
	CHECK(strncmp(url, "https://gw.example:8089/v1/snapshots/", 37) == 0);
	fg_snapshots_free(s);

	/* restart: the index comes back from the directory, in age order;
	 * the age limit then deletes everything older than 60 s */
	s = NULL;
	CHECK(fg_snapshots_new(&conf, &s) == 0);
	CHECK(fg_metrics_get("firegrid_snapshots_files", NULL, NULL) == 3);
	CHECK(fg_snapshots_get(s, c.sha256, &data, &len, &type) == 0 && len == 1000);
	free(data);
	/* the files' mtimes are the times they were stored: a sweep far later
	 * ages them all out */
	CHECK(fg_snapshots_sweep(s, (int64_t)4102444800000) == 3);
	CHECK(fg_metrics_get("firegrid_snapshots_deleted_total", "reason", "age") == 3);
	CHECK(fg_metrics_get("firegrid_snapshots_files", NULL, NULL) == 0);
	fg_snapshots_free(s);

	free(ja);
	free(jb);
	free(jc);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
