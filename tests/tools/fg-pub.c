/*
 * fg-pub: a fast, real MQTT client for firegrid's integration tests, demo and
 * benchmarks (libmosquitto, one thread, manual loop).
 *
 * Modes
 *   publish files   fg-pub [--topic T] [--qos Q] [--retain] --file F [--topic T2 --file F2 ...]
 *                   Each --file (or --message STRING) is published with the
 *                   --topic/--qos/--retain given before it, in command-line
 *                   order, over one connection.  --pause-ms N waits N ms
 *                   between messages.
 *   generate load   fg-pub --devices N [--repeats R] [--rate MSG_PER_S]
 *                   [--topic-prefix P] [--payload-template generic|z2m]
 *                   [--kind K] [--device-offset O]
 *                   Publishes N*R alarms, round-robin over N devices named
 *                   dev-%05d (offset by O), on "<P>dev-%05d".  --rate 0 means
 *                   as fast as the in-flight window allows.
 *   subscribe       fg-pub --subscribe FILTER --expect N [--qos Q]
 *                   A bare subscriber: counts N messages and reports the
 *                   broker's delivery rate (reference for the benchmark).
 *
 * In every publishing mode QoS 1/2 messages are tracked until their PUBACK
 * (at most --window unacknowledged at a time, default 1000); when the
 * connection drops, fg-pub reconnects for up to --reconnect-timeout seconds
 * and libmosquitto re-sends the unacknowledged messages.  At the end fg-pub
 * prints one JSON line on stdout:
 *   {"mode":"generate","published":N,"acked":N,"elapsed_ms":T,"rate":R,"reconnects":K}
 * and exits 0 only if every message was acknowledged (QoS 0: written).
 *
 * Payload templates (sent_ms is the wall clock at publish time, epoch ms with
 * microsecond fraction, so the benchmark can measure alarm-to-webhook time):
 *   generic  {"device":"dev-00042","kind":"smoke","seq":7,"sent_ms":1712345678901.234}
 *   z2m      {"battery":97,"linkquality":80,"seq":7,"sent_ms":...,"smoke":true,"test":false}
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

enum mode { MODE_NONE, MODE_FILES, MODE_GENERATE, MODE_SUBSCRIBE };
enum tmpl { TMPL_GENERIC, TMPL_Z2M };

/* One message of the files mode, in command-line order. */
struct item {
	char *topic;
	char *path;        /* NULL when the payload came from --message */
	char *text;
	int qos;
	bool retain;
};

struct pub {
	struct mosquitto *mosq;
	const char *host;
	int port;
	const char *client_id;
	int keepalive;
	int window;
	double reconnect_timeout_s;
	bool verbose;

	bool connected;
	bool subscribed;
	int connack_rc;
	long reconnects;
	long inflight;         /* published, not yet acknowledged */
	long published;
	long acked;

	/* subscribe mode */
	long received;
	double first_rx;
	double last_rx;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_connect_cb(struct mosquitto *mosq, void *data, int rc)
{
	struct pub *p = data;
	p->connack_rc = rc;
	p->connected = rc == 0;
	if (rc != 0)
		fprintf(stderr, "fg-pub: connection refused: %s\n", mosquitto_connack_string(rc));
}

static void on_disconnect_cb(struct mosquitto *mosq, void *data, int rc)
{
	struct pub *p = data;
	p->connected = false;
	if (p->verbose)
		fprintf(stderr, "fg-pub: disconnected (%d)\n", rc);
}

/* Called on PUBACK (QoS 1), PUBCOMP (QoS 2) or once a QoS 0 message is
 * written.  libmosquitto calls it once per message id even when the
 * message had to be re-sent after a reconnect. */
static void on_publish_cb(struct mosquitto *mosq, void *data, int mid)
{
	struct pub *p = data;
	p->acked++;
	p->inflight--;
}

static void on_subscribe_cb(struct mosquitto *mosq, void *data, int mid, int n, const int *granted)
{
	struct pub *p = data;
	p->subscribed = true;
}

static void on_message_cb(struct mosquitto *mosq, void *data, const struct mosquitto_message *msg)
{
	struct pub *p = data;
	double t = now_s();
	if (p->received == 0)
		p->first_rx = t;
	p->last_rx = t;
	p->received++;
}

static int die_usage(const char *msg)
{
	fprintf(stderr, "fg-pub: %s\n"
		"usage: fg-pub [--host H] [--port P] [--client-id ID] [--window N]\n"
		"              [--topic T] [--qos Q] [--retain] (--file F | --message S)...\n"
		"       fg-pub --devices N [--repeats R] [--rate MSG_PER_S] [--qos Q]\n"
		"              [--topic-prefix P] [--payload-template generic|z2m] [--kind K]\n"
		"              [--device-offset O]\n"
		"       fg-pub --subscribe FILTER --expect N [--qos Q] [--timeout S]\n", msg);
	return 2;
}

/* Run one iteration of the network loop; reconnect when the link is down.
 * Returns 0, or -ETIMEDOUT once reconnecting has taken too long. */
static int pump(struct pub *p, int timeout_ms, double *down_since)
{
	int rc = mosquitto_loop(p->mosq, timeout_ms, 1);
	if (rc == MOSQ_ERR_SUCCESS) {
		if (p->connack_rc > 0)
			return -ECONNREFUSED;
		if (p->connected) {
			*down_since = 0;
		} else if (*down_since == 0) {
			*down_since = now_s();
		} else if (now_s() - *down_since > p->reconnect_timeout_s) {
			fprintf(stderr, "fg-pub: no CONNACK for %.0f s\n", p->reconnect_timeout_s);
			return -ETIMEDOUT;
		}
		return 0;
	}
	/* Link lost: keep trying, libmosquitto re-sends unacknowledged
	 * messages once the new CONNACK arrives. */
	double t = now_s();
	if (*down_since == 0)
		*down_since = t;
	if (t - *down_since > p->reconnect_timeout_s) {
		fprintf(stderr, "fg-pub: broker unreachable for %.0f s: %s\n",
			p->reconnect_timeout_s, mosquitto_strerror(rc));
		return -ETIMEDOUT;
	}
	usleep(100 * 1000);
	p->connack_rc = -1;
	if (mosquitto_reconnect(p->mosq) == MOSQ_ERR_SUCCESS) {
		p->reconnects++;
		if (p->verbose)
			fprintf(stderr, "fg-pub: reconnecting\n");
	}
	return 0;
}

/* Connect and wait for CONNACK, retrying until reconnect_timeout. */
static int connect_broker(struct pub *p)
{
	double start = now_s();
	for (;;) {
		int rc = mosquitto_connect(p->mosq, p->host, p->port, p->keepalive);
		if (rc == MOSQ_ERR_SUCCESS)
			break;
		if (now_s() - start > p->reconnect_timeout_s) {
			fprintf(stderr, "fg-pub: cannot connect to %s:%d: %s\n",
				p->host, p->port, mosquitto_strerror(rc));
			return -1;
		}
		usleep(100 * 1000);
	}
	p->connack_rc = -1;
	double down = 0;
	while (!p->connected) {
		int rc = pump(p, 100, &down);
		if (rc < 0)
			return -1;
		if (now_s() - start > p->reconnect_timeout_s + 5) {
			fprintf(stderr, "fg-pub: no CONNACK from %s:%d\n", p->host, p->port);
			return -1;
		}
	}
	return 0;
}

/* Wait until the in-flight count drops below `limit`. */
static int wait_window(struct pub *p, long limit, double *down)
{
	while (p->inflight >= limit || !p->connected) {
		int rc = pump(p, 100, down);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int publish_one(struct pub *p, const char *topic, const void *payload, int len,
                       int qos, bool retain, double *down)
{
	int rc = wait_window(p, p->window, down);
	if (rc < 0)
		return rc;
	p->inflight++;
	rc = mosquitto_publish(p->mosq, NULL, topic, len, payload, qos, retain);
	if ((rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_ERRNO) &&
	    qos > 0) {
		/* The message stays queued in libmosquitto and is re-sent after
		 * the reconnect that the next pump() starts. */
		rc = MOSQ_ERR_SUCCESS;
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		p->inflight--;
		fprintf(stderr, "fg-pub: publish to %s: %s\n", topic, mosquitto_strerror(rc));
		return -EIO;
	}
	p->published++;
	/* Give libmosquitto a chance to read PUBACKs without blocking. */
	if (p->inflight >= p->window / 2)
		return pump(p, 0, down);
	return 0;
}

static int read_file(const char *path, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int run_files(struct pub *p, struct item *items, size_t n, int pause_ms)
{
	double down = 0;
	for (size_t i = 0; i < n; i++) {
		char *buf = NULL;
		size_t len = 0;
		if (items[i].path) {
			int rc = read_file(items[i].path, &buf, &len);
			if (rc < 0) {
				fprintf(stderr, "fg-pub: %s: %s\n", items[i].path, strerror(-rc));
				return -1;
			}
		} else {
			len = strlen(items[i].text);
		}
		if (len > 256 * 1024 * 1024) {
			fprintf(stderr, "fg-pub: %s: too large\n", items[i].path);
			free(buf);
			return -1;
		}
		int rc = publish_one(p, items[i].topic, buf ? buf : items[i].text, (int)len,
			items[i].qos, items[i].retain, &down);
		free(buf);
		if (rc < 0)
			return -1;
		if (pause_ms > 0 && i + 1 < n) {
			/* Wait for this message's ack first so the pause separates
			 * deliveries, not just sends. */
			if (wait_window(p, 1, &down) < 0)
				return -1;
			double until = now_s() + pause_ms / 1000.0;
			while (now_s() < until)
				if (pump(p, 20, &down) < 0)
					return -1;
		}
	}
	return wait_window(p, 1, &down) < 0 ? -1 : 0;
}

struct gen {
	long devices;
	long repeats;
	long offset;
	double rate;
	int qos;
	bool retain;
	const char *prefix;
	const char *kind;
	enum tmpl tmpl;
};

static int run_generate(struct pub *p, const struct gen *g)
{
	double down = 0;
	double start = now_s();
	long total = g->devices * g->repeats;
	char topic[512], payload[512];

	for (long seq = 0; seq < total; seq++) {
		long dev = g->offset + seq % g->devices;
		if (g->rate > 0) {
			/* Pace against the schedule, not the previous send, so a
			 * slow iteration does not lower the average rate. */
			double due = start + (double)seq / g->rate;
			for (double t = now_s(); t < due; t = now_s()) {
				int ms = (int)((due - t) * 1000);
				if (ms >= 1) {
					if (pump(p, ms, &down) < 0)
						return -1;
				} else {
					usleep((useconds_t)((due - t) * 1e6));
				}
			}
		}
		snprintf(topic, sizeof(topic), "%sdev-%05ld", g->prefix, dev);
		/* sent_ms is taken after pacing and right before the publish call. */
		int len;
		if (g->tmpl == TMPL_GENERIC)
			len = snprintf(payload, sizeof(payload),
				"{\"device\":\"dev-%05ld\",\"kind\":\"%s\",\"seq\":%ld,\"sent_ms\":%.3f}",
				dev, g->kind, seq, wall_ms());
		else
			len = snprintf(payload, sizeof(payload),
				"{\"battery\":%ld,\"linkquality\":%ld,\"seq\":%ld,\"sent_ms\":%.3f,"
				"\"smoke\":true,\"test\":false}",
				90 + dev % 10, 40 + dev % 200, seq, wall_ms());
		if (publish_one(p, topic, payload, len, g->qos, g->retain, &down) < 0)
			return -1;
	}
	return wait_window(p, 1, &down) < 0 ? -1 : 0;
}

static int run_subscribe(struct pub *p, const char *filter, int qos, long expect, double timeout_s)
{
	double down = 0, start = now_s();
	if (mosquitto_subscribe(p->mosq, NULL, filter, qos) != MOSQ_ERR_SUCCESS)
		return -1;
	while (!p->subscribed)
		if (pump(p, 100, &down) < 0)
			return -1;
	/* Tell whoever waits on us that the subscription is in place. */
	printf("SUBSCRIBED\n");
	fflush(stdout);
	while (p->received < expect) {
		if (pump(p, 100, &down) < 0)
			return -1;
		if (now_s() - start > timeout_s) {
			fprintf(stderr, "fg-pub: timed out with %ld of %ld messages\n", p->received, expect);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pub p = {
		.host = "127.0.0.1", .port = 1883, .keepalive = 30, .window = 1000,
		.reconnect_timeout_s = 30, .connack_rc = -1,
	};
	struct gen g = {
		.devices = 0, .repeats = 1, .rate = 0, .qos = 1, .prefix = "firegrid/",
		.kind = "smoke", .tmpl = TMPL_GENERIC,
	};
	enum mode mode = MODE_NONE;
	const char *topic = NULL, *sub_filter = NULL;
	int qos = 1, pause_ms = 0;
	bool retain = false;
	long expect = 0;
	double sub_timeout = 60;
	struct item *items = NULL;
	size_t n_items = 0;

	enum {
		O_HOST = 256, O_PORT, O_CLIENT_ID, O_TOPIC, O_FILE, O_MESSAGE, O_QOS, O_RETAIN,
		O_NO_RETAIN, O_DEVICES, O_REPEATS, O_RATE, O_PREFIX, O_TEMPLATE, O_KIND,
		O_OFFSET, O_WINDOW, O_PAUSE, O_SUBSCRIBE, O_EXPECT, O_TIMEOUT, O_RECONNECT,
		O_VERBOSE, O_HELP,
	};
	static const struct option opts[] = {
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"client-id", required_argument, NULL, O_CLIENT_ID},
		{"topic", required_argument, NULL, O_TOPIC},
		{"file", required_argument, NULL, O_FILE},
		{"message", required_argument, NULL, O_MESSAGE},
		{"qos", required_argument, NULL, O_QOS},
		{"retain", no_argument, NULL, O_RETAIN},
		{"no-retain", no_argument, NULL, O_NO_RETAIN},
		{"devices", required_argument, NULL, O_DEVICES},
		{"repeats", required_argument, NULL, O_REPEATS},
		{"rate", required_argument, NULL, O_RATE},
		{"topic-prefix", required_argument, NULL, O_PREFIX},
		{"payload-template", required_argument, NULL, O_TEMPLATE},
		{"kind", required_argument, NULL, O_KIND},
		{"device-offset", required_argument, NULL, O_OFFSET},
		{"window", required_argument, NULL, O_WINDOW},
		{"pause-ms", required_argument, NULL, O_PAUSE},
		{"subscribe", required_argument, NULL, O_SUBSCRIBE},
		{"expect", required_argument, NULL, O_EXPECT},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"reconnect-timeout", required_argument, NULL, O_RECONNECT},
		{"verbose", no_argument, NULL, O_VERBOSE},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};

	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_HOST: p.host = optarg; break;
		case O_PORT: p.port = atoi(optarg); break;
		case O_CLIENT_ID: p.client_id = optarg; break;
		case O_TOPIC: topic = optarg; break;
		case O_FILE:
		case O_MESSAGE: {
			if (!topic)
				return die_usage("--file/--message needs a --topic before it");
			struct item *ni = realloc(items, (n_items + 1) * sizeof(*items));
			if (!ni)
				return 1;
			items = ni;
			items[n_items++] = (struct item){
				.topic = (char *)topic, .qos = qos, .retain = retain,
				.path = c == O_FILE ? optarg : NULL,
				.text = c == O_MESSAGE ? optarg : NULL,
			};
			mode = MODE_FILES;
			break;
		}
		case O_QOS: qos = g.qos = atoi(optarg); break;
		case O_RETAIN: retain = g.retain = true; break;
		case O_NO_RETAIN: retain = g.retain = false; break;
		case O_DEVICES: g.devices = atol(optarg); mode = MODE_GENERATE; break;
		case O_REPEATS: g.repeats = atol(optarg); break;
		case O_RATE: g.rate = atof(optarg); break;
		case O_PREFIX: g.prefix = optarg; break;
		case O_TEMPLATE:
			if (strcmp(optarg, "generic") == 0)
				g.tmpl = TMPL_GENERIC;
			else if (strcmp(optarg, "z2m") == 0)
				g.tmpl = TMPL_Z2M;
			else
				return die_usage("--payload-template must be generic or z2m");
			break;
		case O_KIND: g.kind = optarg; break;
		case O_OFFSET: g.offset = atol(optarg); break;
		case O_WINDOW: p.window = atoi(optarg); break;
		case O_PAUSE: pause_ms = atoi(optarg); break;
		case O_SUBSCRIBE: sub_filter = optarg; mode = MODE_SUBSCRIBE; break;
		case O_EXPECT: expect = atol(optarg); break;
		case O_TIMEOUT: sub_timeout = atof(optarg); break;
		case O_RECONNECT: p.reconnect_timeout_s = atof(optarg); break;
		case O_VERBOSE: p.verbose = true; break;
		case O_HELP: die_usage("help"); return 0;
		default: return die_usage("bad option");
		}
	}
	if (optind < argc)
		return die_usage("unexpected argument");
	if (mode == MODE_NONE)
		return die_usage("nothing to do");
	if (qos < 0 || qos > 2 || p.port <= 0 || p.port > 65535 || p.window < 1)
		return die_usage("bad --qos, --port or --window");
	if (mode == MODE_GENERATE && (g.devices < 1 || g.repeats < 1 || g.rate < 0))
		return die_usage("bad --devices, --repeats or --rate");
	if (mode == MODE_SUBSCRIBE && expect < 1)
		return die_usage("--subscribe needs --expect N");

	mosquitto_lib_init();
	p.mosq = mosquitto_new(p.client_id, true, &p);
	if (!p.mosq) {
		fprintf(stderr, "fg-pub: mosquitto_new: %s\n", strerror(errno));
		return 1;
	}
	mosquitto_connect_callback_set(p.mosq, on_connect_cb);
	mosquitto_disconnect_callback_set(p.mosq, on_disconnect_cb);
	mosquitto_publish_callback_set(p.mosq, on_publish_cb);
	mosquitto_subscribe_callback_set(p.mosq, on_subscribe_cb);
	mosquitto_message_callback_set(p.mosq, on_message_cb);
	mosquitto_max_inflight_messages_set(p.mosq, (unsigned)p.window);
	/* Large generated streams must not wait for Nagle. */
	mosquitto_int_option(p.mosq, MOSQ_OPT_TCP_NODELAY, 1);

	int rc = -1;
	double start = now_s();
	if (connect_broker(&p) == 0) {
		start = now_s();
		if (mode == MODE_FILES)
			rc = run_files(&p, items, n_items, pause_ms);
		else if (mode == MODE_GENERATE)
			rc = run_generate(&p, &g);
		else
			rc = run_subscribe(&p, sub_filter, qos, expect, sub_timeout);
	}
	double elapsed = now_s() - start;

	if (mode == MODE_SUBSCRIBE) {
		double span = p.received > 1 ? p.last_rx - p.first_rx : 0;
		printf("{\"mode\":\"subscribe\",\"received\":%ld,\"elapsed_ms\":%.1f,\"rate\":%.1f}\n",
			p.received, span * 1000, span > 0 ? (double)(p.received - 1) / span : 0.0);
	} else {
		printf("{\"mode\":\"%s\",\"published\":%ld,\"acked\":%ld,\"elapsed_ms\":%.1f,"
			"\"rate\":%.1f,\"reconnects\":%ld}\n",
			mode == MODE_FILES ? "files" : "generate", p.published, p.acked,
			elapsed * 1000, elapsed > 0 ? (double)p.acked / elapsed : 0.0, p.reconnects);
	}
	fflush(stdout);

	if (p.connected) {
		mosquitto_disconnect(p.mosq);
		mosquitto_loop(p.mosq, 100, 1);
	}
	mosquitto_destroy(p.mosq);
	mosquitto_lib_cleanup();
	free(items);
	return rc == 0 ? 0 : 1;
}
