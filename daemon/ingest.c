/* Raw message -> plugin -> events -> incidents; see ingest.h. */
#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "event.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "snapfetch.h"
#include "util.h"

struct fg_ingest {
	struct fg_ingest_out out;    /* out.st NULL when only validating a config */
	fg_source_inst **inst;
	size_t n_inst;
};

static struct fg_ratelimit decode_rl = FG_RATELIMIT_INIT(10000, 20);
static struct fg_ratelimit apply_rl = FG_RATELIMIT_INIT(10000, 5);
static struct fg_ratelimit unmatched_rl = FG_RATELIMIT_INIT(60000, 5);

static void persist_state_cb(void *data, const char *source, const char *device,
                             const char *key, const char *value)
{
	const struct fg_ingest_out *out = data;
	fg_store_begin(out->st);
	int r = fg_store_state_put(out->st, source, device, key, value);
	if (r < 0)
		fg_log_rl(&apply_rl, FG_LOG_ERR, "ingest", "cannot store plugin state source=%s device=%s err=\"%s\"",
		          source, device, fg_strerror(r));
}

static void load_state_cb(void *data, const char *device, const char *key, const char *value)
{
	fg_source_inst_state_load(data, device, key, value);
}

static void emit_cb(void *data, const struct fg_ev *ev)
{
	const struct fg_ingest_out *out = data;
	int64_t id = 0;

	fg_metrics_inc("firegrid_events_total", "kind", fg_kind_name(ev->kind));
	int r = fg_incidents_apply(out->inc, ev, &id);
	if (r < 0) {
		fg_metrics_inc("firegrid_store_errors_total", NULL, NULL);
		fg_log_rl(&apply_rl, FG_LOG_ERR, "ingest", "cannot store event source=%s device=%s kind=%s err=\"%s\"",
		          ev->source, ev->device, fg_kind_name(ev->kind), fg_strerror(r));
		return;
	}
	if (ev->snapshot_url &&
	    (r == FG_APPLY_OPENED || r == FG_APPLY_REALARM || r == FG_APPLY_REOPENED))
		fg_snapfetch_add(out->sf, id, ev);     /* counts and logs its own refusals */
	switch (r) {
	case FG_APPLY_OPENED:
		fg_info("incident", "opened id=%lld device=%s kind=%s severity=%s source=%s",
		        (long long)id, ev->device, fg_kind_name(ev->kind),
		        fg_severity_name(ev->severity), ev->source);
		break;
	case FG_APPLY_REALARM:
		fg_info("incident", "re-alarm id=%lld device=%s kind=%s", (long long)id, ev->device,
		        fg_kind_name(ev->kind));
		break;
	case FG_APPLY_CLEARED:
		fg_info("incident", "cleared id=%lld device=%s by=%s", (long long)id, ev->device,
		        fg_kind_name(ev->kind));
		break;
	default:
		break;
	}
}

static bool topic_matches(const struct fg_conf_source *src, const char *topic)
{
	for (size_t i = 0; i < src->n_topics; i++) {
		bool match = false;
		if (mosquitto_topic_matches_sub(src->topics[i], topic, &match) == MOSQ_ERR_SUCCESS && match)
			return true;
	}
	return false;
}

/* Count and log the outcome of one decode (a message or a wake-up). */
static void decoded(const struct fg_conf_source *src, const char *topic, size_t len, int r,
                    const char *reason, unsigned rejected)
{
	if (rejected)
		fg_metrics_add("firegrid_events_rejected_total", "source", src->name, rejected);
	if (r < 0) {
		char why[256];
		/* key="value" logs: keep the plugin's quotes from ending the value */
		snprintf(why, sizeof(why), "%s", reason ? reason : "");
		for (char *q = why; *q; q++)
			if (*q == '"')
				*q = '\'';
		fg_metrics_inc("firegrid_decode_errors_total", "source", src->name);
		fg_log_rl(&decode_rl, FG_LOG_WARN, "ingest",
		          "cannot decode source=%s plugin=%s topic=%s bytes=%zu err=\"%s\" reason=\"%s\"",
		          src->name, src->plugin, topic, len, fg_strerror(r), why);
	}
}

int fg_ingest_out_decode(const struct fg_ingest_out *out, fg_source_inst *si,
                         const struct fg_msg *msg, const char **reason)
{
	const struct fg_conf_source *src = fg_source_inst_conf(si);
	struct fg_msg m = *msg;
	m.source = src->name;
	fg_metrics_inc("firegrid_messages_total", "source", src->name);

	unsigned rejected = 0;
	int r = fg_source_inst_decode(si, &m, emit_cb, (void *)out, reason, &rejected);
	decoded(src, msg->topic, msg->len, r, reason ? *reason : NULL, rejected);
	return r;
}

void fg_ingest_msg(fg_ingest *ing, const struct fg_msg *msg)
{
	bool matched = false;

	for (size_t i = 0; i < ing->n_inst; i++) {
		const struct fg_conf_source *src = fg_source_inst_conf(ing->inst[i]);
		if (!topic_matches(src, msg->topic))
			continue;
		matched = true;
		const char *reason = NULL;
		fg_ingest_out_decode(&ing->out, ing->inst[i], msg, &reason);
	}
	if (!matched) {
		fg_metrics_inc("firegrid_unmatched_total", NULL, NULL);
		fg_log_rl(&unmatched_rl, FG_LOG_INFO, "ingest", "no source for topic=%s", msg->topic);
	}
}

int fg_ingest_msg_to(fg_ingest *ing, const char *source, const struct fg_msg *msg,
                     const char **reason)
{
	for (size_t i = 0; i < ing->n_inst; i++)
		if (strcmp(fg_source_inst_conf(ing->inst[i])->name, source) == 0)
			return fg_ingest_out_decode(&ing->out, ing->inst[i], msg, reason);
	return -ENOENT;
}

void fg_ingest_set_snapfetch(fg_ingest *ing, fg_snapfetch *sf)
{
	if (ing)
		ing->out.sf = sf;
}

const struct fg_conf_source *fg_ingest_source(fg_ingest *ing, const char *source)
{
	for (size_t i = 0; ing && i < ing->n_inst; i++)
		if (strcmp(fg_source_inst_conf(ing->inst[i])->name, source) == 0)
			return fg_source_inst_conf(ing->inst[i]);
	return NULL;
}

struct wake_ctx {
	fg_ingest *ing;
	const struct fg_conf_source *src;
};

static void wake_emit_cb(void *data, const struct fg_ev *ev)
{
	struct wake_ctx *w = data;
	emit_cb(&w->ing->out, ev);
}

static void wake_done_cb(void *data, const char *device, int result, const char *reason,
                         unsigned rejected)
{
	struct wake_ctx *w = data;
	decoded(w->src, device, 0, result, reason, rejected);
}

int fg_ingest_run_wakes(fg_ingest *ing, int64_t now_ms)
{
	int total = 0;
	for (size_t i = 0; ing && i < ing->n_inst; i++) {
		if (fg_source_inst_next_wake(ing->inst[i]) > now_ms)
			continue;
		struct wake_ctx w = { .ing = ing, .src = fg_source_inst_conf(ing->inst[i]) };
		int r = fg_source_inst_run_wakes(ing->inst[i], now_ms, false, wake_emit_cb,
		                                 wake_done_cb, &w);
		if (r < 0)
			fg_log_rl(&apply_rl, FG_LOG_ERR, "ingest", "cannot run wake-ups source=%s err=\"%s\"",
			          w.src->name, fg_strerror(r));
		else
			total += r;
	}
	return total;
}

int fg_ingest_new(const struct fg_conf *conf, fg_plugin_host *host, fg_store *st,
                  fg_incidents *inc, fg_ingest **ret, char **ret_errors)
{
	fg_ingest *ing = calloc(1, sizeof(*ing));
	char *errs = NULL;
	if (!ing)
		return -ENOMEM;
	ing->out = (struct fg_ingest_out){ .st = st, .inc = inc };
	ing->inst = calloc(conf->n_sources ? conf->n_sources : 1, sizeof(*ing->inst));
	if (!ing->inst) {
		free(ing);
		return -ENOMEM;
	}
	for (size_t i = 0; i < conf->n_sources; i++) {
		fg_source_inst *si = NULL;
		char *e = NULL;
		int r = fg_source_inst_new(host, conf->path, &conf->sources[i], &si, &e);
		if (r < 0) {
			if (e)
				fg_lines_append(&errs, "%s", e);
			else {
				fg_lines_append(&errs, "%s:%d: [source %s] cannot start plugin '%s': %s",
				                conf->path, conf->sources[i].line, conf->sources[i].name,
				                conf->sources[i].plugin, fg_strerror(r));
			}
			free(e);
			continue;
		}
		free(e);
		ing->inst[ing->n_inst++] = si;
		if (st)
			fg_ingest_out_attach(&ing->out, si);
	}
	if (errs) {
		fg_ingest_free(ing);
		*ret_errors = errs;
		return -EINVAL;
	}
	*ret = ing;
	return 0;
}

void fg_ingest_out_attach(const struct fg_ingest_out *out, fg_source_inst *si)
{
	fg_store_state_load(out->st, fg_source_inst_conf(si)->name, load_state_cb, si);
	fg_source_inst_set_persist(si, persist_state_cb, (void *)out);
}

void fg_ingest_free(fg_ingest *ing)
{
	if (!ing)
		return;
	for (size_t i = 0; i < ing->n_inst; i++)
		fg_source_inst_free(ing->inst[i]);
	free(ing->inst);
	free(ing);
}
