/*
 * fg-receiver: a small real webhook receiver for tests, the demo and the
 * benchmarks.  It verifies every Standard Webhooks signature with the
 * daemon's own sign.c, logs one JSON line per webhook, and can be told at
 * runtime to fail, slow down or ask for Retry-After.
 *
 *   fg-receiver --port N --secret whsec_... [--bind ADDR] [--log FILE]
 *               [--quiet] [--pretty] [--tolerance SECONDS]
 *
 * stdout: "PORT <n>" first (flushed), then one JSON line per webhook unless
 * --log sends them to FILE or --quiet drops them; --pretty prints a short
 * human line per webhook instead.
 *
 * HTTP:
 *   POST <any path>   a webhook (the path is logged): 401 when the
 *                     signature is missing, wrong or its timestamp is
 *                     outside the tolerance; else the configured status
 *                     ({"ok":true} for 2xx).
 *   POST /_control    JSON {"status":503} | {"hang_ms":N} |
 *                     {"retry_after":"2" or null} | {"reset":true}
 *                     (keys combine); answers the resulting settings.
 *   GET  /_stats      JSON counters.
 *
 * MHD runs a thread per connection, so a hang delays only its own
 * connection, like a slow real server.  SIGTERM/SIGINT stop it cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "sign.h"
#include "util.h"

#define BODY_MAX (4u << 20)

struct receiver {
	uint8_t key[FG_SIGN_KEY_MAX];
	size_t key_len;
	int64_t tolerance_s;          /* 0 = do not check the timestamp */
	bool quiet, pretty;
	FILE *log;                    /* JSON lines; NULL = none */
	atomic_bool stopping;

	pthread_mutex_t lock;         /* everything below */
	int status;                   /* answer to webhooks */
	int64_t hang_ms;
	char *retry_after;            /* NULL = no header */
	uint64_t received, signature_failures, accepted, bad_requests;
	json_t *by_status;            /* "503" -> count */
	json_t *accepted_ids;         /* webhook ids answered 2xx (a set) */
	uint64_t conn_opened, conn_open, conn_peak;
};

struct request {
	char *body;
	size_t len;
	bool too_big;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *obj,
                             const char *retry_after)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!text)
		return MHD_NO;
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text,
	                                                            MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (retry_after)
		MHD_add_response_header(resp, "Retry-After", retry_after);
	enum MHD_Result r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static json_t *error_obj(unsigned status, const char *error)
{
	return json_pack("{s:b, s:i, s:s}", "ok", 0, "status", (int)status, "error", error);
}

static void sleep_ms(struct receiver *rx, int64_t ms)
{
	/* In slices, so SIGTERM does not wait for a long hang. */
	while (ms > 0 && !atomic_load(&rx->stopping)) {
		int64_t step = ms < 50 ? ms : 50;
		struct timespec ts = { step / 1000, (long)(step % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static bool parse_i64(const char *s, int64_t *ret)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		return false;
	*ret = v;
	return true;
}

static json_t *control_obj(struct receiver *rx)
{
	return json_pack("{s:i, s:I, s:s?}", "status", rx->status, "hang_ms", (json_int_t)rx->hang_ms,
	                 "retry_after", rx->retry_after);
}

static enum MHD_Result handle_control(struct receiver *rx, struct MHD_Connection *c,
                                      const struct request *req)
{
	json_error_t jerr;
	json_t *in = json_loadb(req->body ? req->body : "", req->len, 0, &jerr);
	if (!json_is_object(in)) {
		json_decref(in);
		return reply(c, 400, error_obj(400, "control body must be a JSON object"), NULL);
	}
	const char *k;
	json_t *v;
	json_object_foreach(in, k, v) {
		if (strcmp(k, "status") && strcmp(k, "hang_ms") && strcmp(k, "retry_after") &&
		    strcmp(k, "reset")) {
			json_decref(in);
			return reply(c, 400, error_obj(400, "unknown control key"), NULL);
		}
	}
	json_t *st = json_object_get(in, "status");
	json_t *hang = json_object_get(in, "hang_ms");
	json_t *ra = json_object_get(in, "retry_after");
	json_t *reset = json_object_get(in, "reset");
	if ((st && (!json_is_integer(st) || json_integer_value(st) < 100 ||
	            json_integer_value(st) > 599)) ||
	    (hang && (!json_is_integer(hang) || json_integer_value(hang) < 0)) ||
	    (ra && !json_is_string(ra) && !json_is_null(ra) && !json_is_integer(ra))) {
		json_decref(in);
		return reply(c, 400, error_obj(400, "bad control value"), NULL);
	}

	pthread_mutex_lock(&rx->lock);
	if (st)
		rx->status = (int)json_integer_value(st);
	if (hang)
		rx->hang_ms = json_integer_value(hang);
	if (ra) {
		free(rx->retry_after);
		rx->retry_after = NULL;
		if (json_is_string(ra))
			rx->retry_after = strdup(json_string_value(ra));
		else if (json_is_integer(ra) && asprintf(&rx->retry_after, "%" JSON_INTEGER_FORMAT,
		                                         json_integer_value(ra)) < 0)
			rx->retry_after = NULL;
	}
	if (json_is_true(reset)) {
		rx->received = rx->signature_failures = rx->accepted = rx->bad_requests = 0;
		json_object_clear(rx->by_status);
		json_object_clear(rx->accepted_ids);
	}
	json_t *out = control_obj(rx);
	pthread_mutex_unlock(&rx->lock);
	json_decref(in);
	return reply(c, 200, out, NULL);
}

static enum MHD_Result handle_stats(struct receiver *rx, struct MHD_Connection *c)
{
	pthread_mutex_lock(&rx->lock);
	json_t *out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:O, s:I, s:I, s:I, s:o}",
	                        "received", (json_int_t)rx->received,
	                        "signature_failures", (json_int_t)rx->signature_failures,
	                        "accepted", (json_int_t)rx->accepted,
	                        "accepted_unique", (json_int_t)json_object_size(rx->accepted_ids),
	                        "bad_requests", (json_int_t)rx->bad_requests,
	                        "by_status", rx->by_status,
	                        "connections_opened", (json_int_t)rx->conn_opened,
	                        "connections_open", (json_int_t)rx->conn_open,
	                        "connections_peak", (json_int_t)rx->conn_peak,
	                        "control", control_obj(rx));
	pthread_mutex_unlock(&rx->lock);
	return reply(c, 200, out, NULL);
}

/* Fields of the CloudEvent worth a column of their own. */
struct ce_fields {
	const char *type, *id, *device, *kind, *severity;
	json_int_t incident_id, revision;
};

static void ce_extract(json_t *ce, struct ce_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->incident_id = f->revision = -1;
	if (!json_is_object(ce))
		return;
	f->type = json_string_value(json_object_get(ce, "type"));
	f->id = json_string_value(json_object_get(ce, "id"));
	json_t *data = json_object_get(ce, "data");
	json_t *inc = json_object_get(data, "incident");
	json_t *dev = json_object_get(data, "device");
	if (json_is_integer(json_object_get(inc, "id")))
		f->incident_id = json_integer_value(json_object_get(inc, "id"));
	if (json_is_integer(json_object_get(inc, "revision")))
		f->revision = json_integer_value(json_object_get(inc, "revision"));
	f->kind = json_string_value(json_object_get(inc, "kind"));
	f->severity = json_string_value(json_object_get(inc, "severity"));
	f->device = json_string_value(json_object_get(dev, "id"));
	if (!f->device)
		f->device = json_string_value(json_object_get(inc, "device"));
}

static void write_log(struct receiver *rx, json_t *line, const struct ce_fields *f,
                      bool sig_ok, unsigned status, int64_t at_ms)
{
	if (rx->pretty) {
		time_t s = (time_t)(at_ms / 1000);
		struct tm tm;
		localtime_r(&s, &tm);
		pthread_mutex_lock(&rx->lock);
		printf("%02d:%02d:%02d.%03d  %-34s incident %-4" JSON_INTEGER_FORMAT
		       " rev %-3" JSON_INTEGER_FORMAT " device %-22s kind %-12s %-8s signature %s -> %u\n",
		       tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(at_ms % 1000),
		       f->type ? f->type : "?", f->incident_id, f->revision,
		       f->device ? f->device : "?", f->kind ? f->kind : "?",
		       f->severity ? f->severity : "?", sig_ok ? "ok" : "BAD", status);
		fflush(stdout);
		pthread_mutex_unlock(&rx->lock);
	}
	FILE *out = rx->log ? rx->log : (rx->quiet || rx->pretty ? NULL : stdout);
	if (!out)
		return;
	char *text = json_dumps(line, JSON_COMPACT);
	if (!text)
		return;
	pthread_mutex_lock(&rx->lock);
	fputs(text, out);
	fputc('\n', out);
	fflush(out);
	pthread_mutex_unlock(&rx->lock);
	free(text);
}

static enum MHD_Result handle_webhook(struct receiver *rx, struct MHD_Connection *c,
                                      const char *path, const struct request *req)
{
	int64_t at_ms = fg_now_ms();
	const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
	const char *ts_s = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
	const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	int64_t ts = 0;
	const char *why = NULL;

	if (!id || !ts_s || !sig)
		why = "missing webhook-id, webhook-timestamp or webhook-signature";
	else if (!parse_i64(ts_s, &ts))
		why = "bad webhook-timestamp";
	else if (fg_sign_verify(rx->key, rx->key_len, id, ts, req->body ? req->body : "",
	                        req->len, sig) != 0)
		why = "signature mismatch";
	else if (rx->tolerance_s > 0 && llabs(at_ms / 1000 - ts) > rx->tolerance_s)
		why = "webhook-timestamp outside tolerance";
	bool sig_ok = why == NULL;

	json_error_t jerr;
	json_t *ce = req->body ? json_loadb(req->body, req->len, 0, &jerr) : NULL;
	struct ce_fields f;
	ce_extract(ce, &f);

	pthread_mutex_lock(&rx->lock);
	unsigned status = sig_ok ? (unsigned)rx->status : 401;
	int64_t hang = sig_ok ? rx->hang_ms : 0;
	char *retry_after = rx->retry_after && (status < 200 || status > 299) ?
	                    strdup(rx->retry_after) : NULL;
	pthread_mutex_unlock(&rx->lock);

	sleep_ms(rx, hang);

	pthread_mutex_lock(&rx->lock);
	rx->received++;
	if (!sig_ok)
		rx->signature_failures++;
	char key[16];
	snprintf(key, sizeof(key), "%u", status);
	json_object_set_new(rx->by_status, key,
	                    json_integer(json_integer_value(json_object_get(rx->by_status, key)) + 1));
	if (status >= 200 && status <= 299) {
		rx->accepted++;
		json_object_set_new(rx->accepted_ids, id, json_true());
	}
	pthread_mutex_unlock(&rx->lock);

	json_t *line = json_pack("{s:s?, s:s?, s:b, s:s?, s:i, s:s?, s:s?, s:s?, s:s?, s:I, s:I}",
	                         "webhook_id", id, "timestamp", ts_s, "signature_ok", sig_ok,
	                         "signature_error", why, "status", (int)status,
	                         "content_type", ctype, "user_agent", ua,
	                         "type", f.type, "id", f.id,
	                         "received_at_ms", (json_int_t)at_ms, "hung_ms", (json_int_t)hang);
	if (line) {
		json_object_set_new(line, "path", json_string(path));
		if (f.incident_id >= 0)
			json_object_set_new(line, "incident_id", json_integer(f.incident_id));
		if (f.revision >= 0)
			json_object_set_new(line, "revision", json_integer(f.revision));
		json_object_set(line, "body", ce ? ce : json_null());
		if (!ce && req->len)
			json_object_set_new(line, "body_error", json_string(jerr.text));
		write_log(rx, line, &f, sig_ok, status, at_ms);
	}
	json_decref(line);
	json_decref(ce);

	enum MHD_Result r;
	if (status >= 200 && status <= 299)
		r = reply(c, status, json_pack("{s:b}", "ok", 1), NULL);
	else
		r = reply(c, status, error_obj(status, why ? why : "configured failure"), retry_after);
	free(retry_after);
	return r;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
	struct receiver *rx = cls;
	struct request *req = *con_cls;

	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (req->len + *upload_data_size > BODY_MAX) {
			req->too_big = true;
		} else if (!req->too_big) {
			char *nb = realloc(req->body, req->len + *upload_data_size + 1);
			if (!nb)
				return MHD_NO;
			memcpy(nb + req->len, upload_data, *upload_data_size);
			req->body = nb;
			req->len += *upload_data_size;
			req->body[req->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	if (strcmp(url, "/_stats") == 0 && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
		return handle_stats(rx, c);
	if (req->too_big || !post) {
		pthread_mutex_lock(&rx->lock);
		rx->bad_requests++;
		pthread_mutex_unlock(&rx->lock);
		return req->too_big ? reply(c, 413, error_obj(413, "body too large"), NULL)
		                    : reply(c, 405, error_obj(405, "POST webhooks here"), NULL);
	}
	if (strcmp(url, "/_control") == 0)
		return handle_control(rx, c, req);
	return handle_webhook(rx, c, url, req);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct request *req = *con_cls;
	if (req) {
		free(req->body);
		free(req);
		*con_cls = NULL;
	}
}

static void connection_cb(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct receiver *rx = cls;
	pthread_mutex_lock(&rx->lock);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		rx->conn_opened++;
		if (++rx->conn_open > rx->conn_peak)
			rx->conn_peak = rx->conn_open;
	} else if (rx->conn_open > 0) {
		rx->conn_open--;
	}
	pthread_mutex_unlock(&rx->lock);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fg-receiver --port N --secret whsec_... [--bind ADDR] [--log FILE]\n"
	           "                   [--quiet] [--pretty] [--tolerance SECONDS]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "secret", required_argument, NULL, 's' },
		{ "bind", required_argument, NULL, 'b' },
		{ "log", required_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "pretty", no_argument, NULL, 'P' },
		{ "tolerance", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct receiver rx = { .status = 200, .tolerance_s = 300 };
	const char *secret = NULL, *log_path = NULL, *bind_addr = "127.0.0.1";
	int64_t port = -1;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_i64(optarg, &port) || port > 65535) {
				fprintf(stderr, "fg-receiver: bad --port '%s'\n", optarg);
				return 2;
			}
			break;
		case 's': secret = optarg; break;
		case 'b': bind_addr = optarg; break;
		case 'l': log_path = optarg; break;
		case 'q': rx.quiet = true; break;
		case 'P': rx.pretty = true; break;
		case 't':
			if (!parse_i64(optarg, &rx.tolerance_s)) {
				fprintf(stderr, "fg-receiver: bad --tolerance '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (port < 0 || !secret || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (fg_sign_key_decode(secret, rx.key, &rx.key_len) < 0) {
		fprintf(stderr, "fg-receiver: --secret is not a whsec_<base64> secret\n");
		return 2;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, bind_addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "fg-receiver: --bind wants an IPv4 address, got '%s'\n", bind_addr);
		return 2;
	}
	if (log_path && !(rx.log = fopen(log_path, "a"))) {
		fprintf(stderr, "fg-receiver: %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	pthread_mutex_init(&rx.lock, NULL);
	rx.by_status = json_object();
	rx.accepted_ids = json_object();

	/* Block the stop signals before MHD starts its threads, so they all
	 * inherit the mask and only sigwait() below sees them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
		MHD_USE_ERROR_LOG,
		(uint16_t)port, NULL, NULL, access_cb, &rx,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
		MHD_OPTION_NOTIFY_COMPLETED, completed_cb, &rx,
		MHD_OPTION_NOTIFY_CONNECTION, connection_cb, &rx,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)511,
		MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fg-receiver: cannot listen on %s:%" PRId64 "\n", bind_addr, port);
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("PORT %u\n", info ? (unsigned)info->port : 0u);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&stop, &sig) != 0)
		;
	atomic_store(&rx.stopping, true);
	MHD_stop_daemon(d);

	if (!rx.quiet)
		fprintf(stderr, "fg-receiver: stopping on signal %d: received=%" PRIu64
		        " accepted=%" PRIu64 " signature_failures=%" PRIu64 "\n",
		        sig, rx.received, rx.accepted, rx.signature_failures);
	if (rx.log)
		fclose(rx.log);
	json_decref(rx.by_status);
	json_decref(rx.accepted_ids);
	free(rx.retry_after);
	pthread_mutex_destroy(&rx.lock);
	return 0;
}
