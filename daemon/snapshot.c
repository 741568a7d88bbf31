/* Camera pictures on disk, named by SHA-256, under a quota; see snapshot.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>
#include "log.h"
#include "metrics.h"
#include "snapshot.h"
#include "util.h"

#define MOD "snapshot"
#define JPEG_TAIL_SLACK 32      /* bytes after FF D9 some encoders pad with */
#define MIN_IMAGE 12

struct entry {
	char sha[65];
	const char *ext;           /* "jpg" / "png" */
	size_t bytes;
	int64_t mtime_ms;
};

struct fg_snapshots {
	const struct fg_conf *conf;
	char *dir;
	struct entry *e;           /* oldest first */
	size_t n, cap;
	uint64_t total;
	struct fg_ratelimit rl;
};

static const char *ext_type(const char *ext)
{
	return strcmp(ext, "png") == 0 ? "image/png" : "image/jpeg";
}

const char *fg_snapshot_type(const void *data, size_t len)
{
	const uint8_t *p = data;
	if (len >= MIN_IMAGE && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
		size_t from = len > JPEG_TAIL_SLACK + 2 ? len - JPEG_TAIL_SLACK - 2 : 3;
		for (size_t i = len - 2; i + 1 > from; i--)
			if (p[i] == 0xff && p[i + 1] == 0xd9)
				return "image/jpeg";
		return NULL;       /* cut short: no end of image */
	}
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	if (len >= 8 + 25 + 12 && memcmp(p, sig, 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0 &&
	    memcmp(p + len - 8, "IEND", 4) == 0)
		return "image/png";
	return NULL;
}

static bool valid_sha(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static void gauges(fg_snapshots *s)
{
	fg_metrics_set("firegrid_snapshots_bytes", NULL, NULL, (int64_t)s->total);
	fg_metrics_set("firegrid_snapshots_files", NULL, NULL, (int64_t)s->n);
}

static void path_of(const fg_snapshots *s, const char *sha, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.%s", s->dir, sha, ext);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->mtime_ms != y->mtime_ms)
		return x->mtime_ms < y->mtime_ms ? -1 : 1;
	return strcmp(x->sha, y->sha);
}

static ssize_t find(const fg_snapshots *s, const char *sha)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->e[i].sha, sha) == 0)
			return (ssize_t)i;
	return -1;
}

static void drop(fg_snapshots *s, size_t i, const char *reason)
{
	char path[4200];
	path_of(s, s->e[i].sha, s->e[i].ext, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		fg_log_rl(&s->rl, FG_LOG_WARN, MOD, "cannot delete path=%s err=\"%s\"", path,
		          fg_strerror(-errno));
	s->total -= s->e[i].bytes;
	memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(*s->e));
	s->n--;
	if (reason)
		fg_metrics_inc("firegrid_snapshots_deleted_total", "reason", reason);
}

static int add(fg_snapshots *s, const struct entry *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct entry *x = realloc(s->e, cap * sizeof(*x));
		if (!x)
			return -ENOMEM;
		s->e = x;
		s->cap = cap;
	}
	s->e[s->n++] = *e;
	s->total += e->bytes;
	return 0;
}

/* Index what the directory holds (a restart); leftovers of an interrupted
 * write are removed. */
static int scan(fg_snapshots *s)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
		if (strncmp(de->d_name, ".tmp-", 5) == 0) {
			unlink(path);
			continue;
		}
		size_t len = strlen(de->d_name);
		if (len != 68 || de->d_name[64] != '.')
			continue;
		char sha[65];
		memcpy(sha, de->d_name, 64);
		sha[64] = '\0';
		const char *ext = de->d_name + 65;
		struct stat st;
		if (!valid_sha(sha) || (strcmp(ext, "jpg") && strcmp(ext, "png")) ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		struct entry e = { .ext = strcmp(ext, "png") == 0 ? "png" : "jpg",
		                   .bytes = (size_t)st.st_size,
		                   .mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
		                               st.st_mtim.tv_nsec / 1000000 };
		memcpy(e.sha, sha, sizeof(sha));
		r = add(s, &e);
	}
	closedir(d);
	if (s->n)
		qsort(s->e, s->n, sizeof(*s->e), entry_cmp);
	return r;
}

int fg_snapshots_new(const struct fg_conf *conf, fg_snapshots **ret)
{
	fg_snapshots *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->conf = conf;
	s->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 10);
	int r = conf->snap_dir ? ((s->dir = strdup(conf->snap_dir)) ? 0 : -ENOMEM)
	                       : asprintf(&s->dir, "%s/snapshots", conf->state_dir) < 0 ? -ENOMEM : 0;
	if (r == 0 && mkdir(s->dir, 0750) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0)
		r = scan(s);
	if (r < 0) {
		fg_snapshots_free(s);
		return r;
	}
	fg_snapshots_sweep(s, fg_now_ms());
	gauges(s);
	*ret = s;
	return 0;
}

void fg_snapshots_set_conf(fg_snapshots *s, const struct fg_conf *conf)
{
	if (s)
		s->conf = conf;
}

void fg_snapshots_free(fg_snapshots *s)
{
	if (!s)
		return;
	free(s->e);
	free(s->dir);
	free(s);
}

json_t *fg_snapshot_ref(const fg_snapshots *s, const struct fg_snapshot *sn, const char *name)
{
	char url[512];
	fg_snapshots_url(s, sn->sha256, url, sizeof(url));
	json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "sha256", sn->sha256, "url", url, "type", sn->type,
	                      "bytes", (json_int_t)sn->bytes);
	if (o && name && name[0] && json_object_set_new(o, "name", json_string(name)) < 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

int fg_snapshots_sweep(fg_snapshots *s, int64_t now_ms)
{
	int n = 0;
	while (s->n && s->e[0].mtime_ms + s->conf->snap_max_age_ms <= now_ms) {
		drop(s, 0, "age");
		n++;
	}
	while (s->n && s->total > (uint64_t)s->conf->snap_max_bytes) {
		drop(s, 0, "quota");
		n++;
	}
	gauges(s);
	return n;
}

static int write_file(const fg_snapshots *s, const char *path, const void *data, size_t len)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%d-%s", s->dir, (int)getpid(), strrchr(path, '/') + 1);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	const uint8_t *p = data;
	size_t off = 0;
	int r = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int fg_snapshots_put(fg_snapshots *s, const void *data, size_t len, int64_t now_ms,
                     struct fg_snapshot *ret)
{
	if (len > (size_t)s->conf->snap_max_image) {
		fg_metrics_inc("firegrid_snapshots_rejected_total", "reason", "too_large");
		return -EFBIG;
	}
	const char *type = fg_snapshot_type(data, len);
	if (!type) {
		fg_metrics_inc("firegrid_snapshots_rejected_total", "reason", "not_an_image");
		return -EINVAL;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -EIO;
	struct entry e = { .ext = strcmp(type, "image/png") == 0 ? "png" : "jpg", .bytes = len,
	                   .mtime_ms = now_ms };
	for (int i = 0; i < 32; i++)
		snprintf(e.sha + 2 * i, 3, "%02x", md[i]);

	char path[4200];
	path_of(s, e.sha, e.ext, path, sizeof(path));
	ssize_t i = find(s, e.sha);
	int r;
	if (i >= 0) {
		/* the same picture again: it is new again (age, quota order) */
		struct entry old = s->e[i];
		s->total -= old.bytes;
		memmove(&s->e[i], &s->e[i + 1], (s->n - (size_t)i - 1) * sizeof(*s->e));
		s->n--;
		r = access(path, F_OK) < 0 ? write_file(s, path, data, len) : 0;
	} else {
		r = write_file(s, path, data, len);
	}
	/* the file's mtime is its age after a restart */
	struct timespec ts[2] = { { now_ms / 1000, (now_ms % 1000) * 1000000 },
	                          { now_ms / 1000, (now_ms % 1000) * 1000000 } };
	if (r == 0)
		utimensat(AT_FDCWD, path, ts, 0);
	if (r == 0)
		r = add(s, &e);
	if (r < 0) {
		fg_metrics_inc("firegrid_snapshots_rejected_total", "reason", "io");
		return r;
	}
	fg_metrics_inc("firegrid_snapshots_stored_total", NULL, NULL);
	/* quota: never delete the picture just stored, even if it alone is over */
	while (s->n > 1 && s->total > (uint64_t)s->conf->snap_max_bytes) {
		drop(s, 0, "quota");
	}
	gauges(s);
	memcpy(ret->sha256, e.sha, sizeof(e.sha));
	ret->type = type;
	ret->bytes = len;
	return 0;
}

void fg_snapshots_url(const fg_snapshots *s, const char *sha256, char *buf, size_t len)
{
	const char *base = s->conf->snap_base_url ? s->conf->snap_base_url : "";
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	snprintf(buf, len, "%.*s/v1/snapshots/%s", (int)bl, base, sha256);
}

int fg_snapshots_get(fg_snapshots *s, const char *sha256, char **ret_data, size_t *ret_len,
                     const char **ret_type)
{
	ssize_t i = valid_sha(sha256) ? find(s, sha256) : -1;
	if (i < 0)
		return -ENOENT;
	char path[4200];
	path_of(s, s->e[i].sha, s->e[i].ext, path, sizeof(path));
	int r = fg_read_file(path, (size_t)s->conf->snap_max_image > s->e[i].bytes
	                                 ? (size_t)s->conf->snap_max_image : s->e[i].bytes,
	                     ret_data, ret_len);
	if (r == 0)
		*ret_type = ext_type(s->e[i].ext);
	return r;
}

/* "data_base64" into each reference of `list` not yet in `seen` (an
 * object used as a set of sha256).  Returns how many were inlined. */
static int inline_list(fg_snapshots *s, json_t *list, size_t max_bytes, json_t *seen)
{
	size_t i;
	json_t *ref;
	int n = 0;
	json_array_foreach(list, i, ref) {
		const char *sha = json_string_value(json_object_get(ref, "sha256"));
		json_int_t bytes = json_integer_value(json_object_get(ref, "bytes"));
		if (!valid_sha(sha) || json_object_get(seen, sha) || bytes <= 0 ||
		    (uint64_t)bytes > max_bytes || json_object_get(ref, "data_base64"))
			continue;
		char *data = NULL;
		size_t len = 0;
		const char *type;
		if (fg_snapshots_get(s, sha, &data, &len, &type) < 0 || len > max_bytes) {
			free(data);
			continue;
		}
		char *b64 = malloc(4 * ((len + 2) / 3) + 1);
		if (b64 && EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)data,
		                           (int)len) >= 0 &&
		    json_object_set_new(ref, "data_base64", json_string(b64)) == 0) {
			json_object_set_new(seen, sha, json_true());
			n++;
		}
		free(b64);
		free(data);
	}
	return n;
}

char *fg_snapshots_inline(fg_snapshots *s, const char *body, size_t max_bytes)
{
	/* Most bodies reference no picture: no need to parse them. */
	if (!strstr(body, "\"sha256\""))
		return NULL;
	json_t *root = json_loads(body, 0, NULL), *seen = json_object();
	json_t *data = json_object_get(root, "data");
	json_t *attrs = json_object_get(json_object_get(data, "event"), "attrs");
	json_t *lists[] = {
		json_object_get(json_object_get(data, "incident"), "snapshots"),
		json_object_get(attrs, "snapshots"),
		json_object_get(attrs, "plate_snapshots"),
	};
	int n = 0;
	for (size_t i = 0; seen && i < FG_ARRAY_SIZE(lists); i++)
		if (json_is_array(lists[i]))
			n += inline_list(s, lists[i], max_bytes, seen);
	/* the flags of fg_cloudevent_build: sorted, compact, reals as written */
	char *out = n > 0 ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS |
	                                    JSON_REAL_PRECISION(15)) : NULL;
	json_decref(seen);
	json_decref(root);
	return out;
}

static void get_cb(void *data, fg_http_req *req)
{
	fg_snapshots *s = data;
	const char *sha = fg_http_req_param(req, "sha256");
	if (!valid_sha(sha)) {
		fg_http_reply_error(req, 400, "sha256", "expected 64 lower-case hex digits");
		return;
	}
	char *body = NULL;
	size_t len = 0;
	const char *type = NULL;
	int r = fg_snapshots_get(s, sha, &body, &len, &type);
	if (r == -ENOENT)
		fg_http_reply_error(req, 404, "sha256", "no such snapshot (never stored, or deleted "
		                    "by the quota)");
	else if (r < 0)
		fg_http_reply_error(req, 500, NULL, "cannot read the snapshot: %s", fg_strerror(r));
	else
		fg_http_reply(req, 200, type, body, len);
	free(body);
}

int fg_snapshots_routes(fg_snapshots *s, fg_http *http)
{
	return fg_http_route(http, &(struct fg_http_route){
		.method = "GET", .pattern = "/v1/snapshots/{sha256}", .scope = FG_HTTP_SCOPE_READ,
		.cb = get_cb, .data = s });
}
