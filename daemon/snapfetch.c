/* Pictures fetched from cameras and attached to incidents; see snapfetch.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <uv.h>
#include "backoff.h"
#include "curluv.h"
#include "log.h"
#include "metrics.h"
#include "snapfetch.h"
#include "util.h"

#define MOD "snapfetch"
#define MAX_JOBS 64
#define MAX_REDIRECTS 3L
#define METRIC "firegrid_snapshot_fetch_total"

struct job {
	fg_snapfetch *sf;
	CURL *easy;
	bool active;                 /* in the multi handle */
	int64_t incident_id;
	fg_kind kind;
	char *device, *url;
	unsigned attempt;            /* attempts made */
	int64_t due_ms;              /* next attempt (when not active) */
	char *buf;
	size_t len;
	bool too_large;
	char errbuf[CURL_ERROR_SIZE];
	struct job *next;
};

struct fg_snapfetch {
	const struct fg_conf *conf;
	fg_snapshots *snap;
	fg_incidents *inc;
	fg_curluv *cu;
	uv_timer_t timer;            /* the next retry */
	struct job *jobs;
	size_t n_jobs;
	uint64_t rng;
	bool closing;
	unsigned open_handles;       /* the timer and curluv */
	void (*done)(void *data);
	void *done_data;
	struct fg_ratelimit rl;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->easy)
		curl_easy_cleanup(j->easy);
	free(j->device);
	free(j->url);
	free(j->buf);
	free(j);
}

static void job_unlink(fg_snapfetch *sf, struct job *j)
{
	for (struct job **p = &sf->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			sf->n_jobs--;
			return;
		}
}

static void job_end(fg_snapfetch *sf, struct job *j, const char *result)
{
	if (result)
		fg_metrics_inc(METRIC, "result", result);
	job_unlink(sf, j);
	job_free(j);
}

static size_t write_cb(char *ptr, size_t size, size_t n, void *data)
{
	struct job *j = data;
	size_t add = size * n;
	size_t max = (size_t)j->sf->conf->snap_max_image;
	if (j->len + add > max) {
		j->too_large = true;
		return 0;            /* curl ends the transfer with CURLE_WRITE_ERROR */
	}
	char *b = realloc(j->buf, j->len + add + 1);
	if (!b)
		return 0;
	memcpy(b + j->len, ptr, add);
	j->buf = b;
	j->len += add;
	return add;
}

static int start(fg_snapfetch *sf, struct job *j)
{
	if (!j->easy && !(j->easy = curl_easy_init()))
		return -ENOMEM;
	CURL *e = j->easy;
	curl_easy_reset(e);
	free(j->buf);
	j->buf = NULL;
	j->len = 0;
	j->too_large = false;
	j->errbuf[0] = '\0';
	fg_curl_easy_base(e, j->url, j, j->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)sf->conf->snap_fetch_timeout_ms);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sf->conf->snap_max_image);
	j->attempt++;
	if (fg_curluv_add(sf->cu, e) < 0)
		return -EIO;
	j->active = true;
	return 0;
}

static void timer_cb(uv_timer_t *t);

static void schedule(fg_snapfetch *sf)
{
	int64_t next = INT64_MAX;
	for (struct job *j = sf->jobs; j; j = j->next)
		if (!j->active && j->due_ms < next)
			next = j->due_ms;
	if (next == INT64_MAX || sf->closing) {
		uv_timer_stop(&sf->timer);
		return;
	}
	int64_t wait = next - fg_now_ms();
	uv_timer_start(&sf->timer, timer_cb, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void timer_cb(uv_timer_t *t)
{
	fg_snapfetch *sf = t->data;
	int64_t now = fg_now_ms();
	struct job *j = sf->jobs, *next;
	for (; j; j = next) {
		next = j->next;
		if (j->active || j->due_ms > now)
			continue;
		if (start(sf, j) < 0)
			job_end(sf, j, "dropped");
	}
	schedule(sf);
}

/* The picture joins the incident (fg_incidents_add_snapshot): 0, or
 * -ENOENT when the incident is closed or gone, or -errno. */
static int attach(fg_snapfetch *sf, struct job *j, const struct fg_snapshot *sn, int64_t now)
{
	json_t *ref = fg_snapshot_ref(sf->snap, sn, "snapshot.jpg");
	int r = ref ? fg_incidents_add_snapshot(sf->inc, j->incident_id, j->device, j->kind, ref,
	                                        now)
	            : -ENOMEM;
	json_decref(ref);
	return r < 0 ? r : 0;
}

/* The URL for a log line: without user name and password. */
static void url_for_log(const char *url, char *buf, size_t len)
{
	CURLU *u = curl_url();
	char *out = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK)
		snprintf(buf, len, "%s", out);
	else
		snprintf(buf, len, "(unparsable)");
	curl_free(out);
	curl_url_cleanup(u);
}

/* Retry later, or give up. */
static void again(fg_snapfetch *sf, struct job *j)
{
	if (j->attempt >= (unsigned)sf->conf->snap_fetch_attempts) {
		char url[1100];
		url_for_log(j->url, url, sizeof(url));
		fg_log_rl(&sf->rl, FG_LOG_WARN, MOD, "picture given up incident=%lld device=%s "
		          "attempts=%u url=%s", (long long)j->incident_id, j->device, j->attempt, url);
		job_end(sf, j, "gave_up");
		return;
	}
	int64_t base = sf->conf->snap_fetch_retry_ms;
	j->due_ms = fg_now_ms() + fg_backoff_ms(j->attempt - 1, base, base * 16, &sf->rng);
	schedule(sf);
}

static void done_cb(void *data, CURL *easy, CURLcode result)
{
	fg_snapfetch *sf = data;
	struct job *j = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&j);
	if (!j)
		return;
	j->active = false;
	long status = 0;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	const char *outcome;
	bool retry = false;
	if (j->too_large || result == CURLE_FILESIZE_EXCEEDED) {
		fg_metrics_inc("firegrid_snapshots_rejected_total", "reason", "too_large");
		outcome = "too_large";
	} else if (result == CURLE_OPERATION_TIMEDOUT) {
		outcome = "timeout";
		retry = true;
	} else if (result != CURLE_OK) {
		outcome = "network";
		retry = true;
	} else if (status != 200) {
		outcome = "http_error";
		retry = status == 404 || status == 408 || status == 429 || status >= 500;
	} else {
		outcome = NULL;
	}
	if (outcome) {
		fg_metrics_inc(METRIC, "result", outcome);
		char why[CURL_ERROR_SIZE + 32];
		if (result == CURLE_OK)
			snprintf(why, sizeof(why), "HTTP status %ld", status);
		else
			snprintf(why, sizeof(why), "%s", j->errbuf[0] ? j->errbuf
			                                             : curl_easy_strerror(result));
		fg_log_rl(&sf->rl, FG_LOG_WARN, MOD, "picture not fetched incident=%lld device=%s "
		          "attempt=%u result=%s err=\"%s\"", (long long)j->incident_id, j->device,
		          j->attempt, outcome, why);
		if (retry)
			again(sf, j);
		else
			job_end(sf, j, NULL);
		return;
	}

	int64_t now = fg_now_ms();
	struct fg_snapshot sn;
	int r = fg_snapshots_put(sf->snap, j->buf ? j->buf : "", j->len, now, &sn);
	if (r < 0) {
		const char *why = r == -EINVAL ? "not_an_image" : r == -EFBIG ? "too_large" : "error";
		fg_log_rl(&sf->rl, FG_LOG_WARN, MOD, "picture refused incident=%lld device=%s "
		          "bytes=%zu result=%s", (long long)j->incident_id, j->device, j->len, why);
		job_end(sf, j, why);
		return;
	}
	fg_metrics_inc(METRIC, "result", "ok");
	r = attach(sf, j, &sn, now);
	if (r < 0) {
		fg_log_rl(&sf->rl, r == -ENOENT ? FG_LOG_INFO : FG_LOG_ERR, MOD,
		          "picture not attached incident=%lld device=%s sha256=%s err=\"%s\"",
		          (long long)j->incident_id, j->device, sn.sha256,
		          r == -ENOENT ? "the incident is closed or gone" : fg_strerror(r));
		job_end(sf, j, "dropped");
		return;
	}
	fg_info(MOD, "picture attached incident=%lld device=%s sha256=%s bytes=%zu",
	        (long long)j->incident_id, j->device, sn.sha256, sn.bytes);
	job_end(sf, j, NULL);
}

int fg_snapfetch_new(uv_loop_t *loop, const struct fg_conf *conf, fg_snapshots *snap,
                     fg_incidents *inc, fg_snapfetch **ret)
{
	fg_snapfetch *sf = calloc(1, sizeof(*sf));
	if (!sf)
		return -ENOMEM;
	sf->conf = conf;
	sf->snap = snap;
	sf->inc = inc;
	sf->rng = fg_rand_seed();
	sf->rl = (struct fg_ratelimit)FG_RATELIMIT_INIT(60000, 10);
	int r = fg_curluv_new(loop, done_cb, sf, &sf->cu);
	if (r < 0) {
		free(sf);
		return r;
	}
	uv_timer_init(loop, &sf->timer);
	sf->timer.data = sf;
	*ret = sf;
	return 0;
}

void fg_snapfetch_set_conf(fg_snapfetch *sf, const struct fg_conf *conf)
{
	if (sf)
		sf->conf = conf;
}

int fg_snapfetch_add(fg_snapfetch *sf, int64_t incident_id, const struct fg_ev *ev)
{
	if (!sf || !ev->snapshot_url)
		return 0;
	int r = sf->closing ? -ECANCELED : sf->n_jobs >= MAX_JOBS ? -ENOSPC : 0;
	struct job *j = r ? NULL : calloc(1, sizeof(*j));
	if (!r && !j)
		r = -ENOMEM;
	if (j) {
		j->sf = sf;
		j->incident_id = incident_id;
		j->kind = ev->kind;
		j->device = strdup(ev->device);
		j->url = strdup(ev->snapshot_url);
		if (!j->device || !j->url)
			r = -ENOMEM;
	}
	if (!r) {
		j->next = sf->jobs;
		sf->jobs = j;
		sf->n_jobs++;
		if (start(sf, j) < 0) {
			job_end(sf, j, "dropped");
			return -ENOMEM;
		}
		return 0;
	}
	job_free(j);
	fg_metrics_inc(METRIC, "result", "dropped");
	fg_log_rl(&sf->rl, FG_LOG_WARN, MOD, "picture not fetched incident=%lld device=%s "
	          "err=\"%s\"", (long long)incident_id, ev->device, fg_strerror(r));
	return r;
}

static void handle_closed(void *data)
{
	fg_snapfetch *sf = data;
	if (--sf->open_handles == 0 && sf->done)
		sf->done(sf->done_data);
}

static void timer_closed_cb(uv_handle_t *h)
{
	handle_closed(h->data);
}

void fg_snapfetch_close(fg_snapfetch *sf, void (*done)(void *data), void *data)
{
	if (!sf || sf->closing) {
		if (!sf && done)
			done(data);
		return;
	}
	sf->closing = true;
	sf->done = done;
	sf->done_data = data;
	while (sf->jobs) {
		struct job *j = sf->jobs;
		if (j->active)
			fg_curluv_remove(sf->cu, j->easy);
		job_end(sf, j, "dropped");
	}
	sf->open_handles = 2;
	fg_curluv_close(sf->cu, handle_closed, sf);
	uv_close((uv_handle_t *)&sf->timer, timer_closed_cb);
}

void fg_snapfetch_free(fg_snapfetch *sf)
{
	if (!sf)
		return;
	while (sf->jobs) {
		struct job *j = sf->jobs;
		sf->jobs = j->next;
		job_free(j);
	}
	fg_curluv_free(sf->cu);
	free(sf);
}
