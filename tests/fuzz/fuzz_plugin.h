/*
 * Shared driver for the plugin fuzz targets: runs an input through a fresh
 * built-in plugin instance via the plugin host, so every input starts from
 * the same state and nothing accumulates between inputs.
 *
 * Input forms:
 *   - first byte < number of topics: a stream of messages separated by 0xff
 *     bytes, each "<topic index byte><payload>" (state carries between them);
 *   - anything else (a raw corpus file as a seed): the whole input is one
 *     payload, delivered on every topic in turn.
 */
#ifndef FG_FUZZ_PLUGIN_H
#define FG_FUZZ_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "plugin_host.h"

struct fuzz_plugin {
	const char *plugin;
	const char *const *topics;
	size_t n_topics;
	struct fg_conf_kv *opts;
	size_t n_opts;
	/* Run every wake-up the plugin asked for (fg_host.wake_at) after the
	 * input, with the clock at each one's due time. */
	bool run_wakes;
	/* Headers for every message (e.g. a multipart Content-Type). */
	const struct fg_header *headers;
	size_t n_headers;
};

static void fuzz_emit_cb(void *data, const struct fg_ev *ev)
{
	/* Format every event: the JSON-lines path must take whatever passed
	 * validation. */
	free(fg_ev_to_json_line(ev));
	(void)data;
}

static void fuzz_one(fg_source_inst *si, const struct fuzz_plugin *fp, const char *topic,
                     const uint8_t *p, size_t n)
{
	struct fg_msg msg = {
		.headers = fp->headers,
		.n_headers = fp->n_headers,
		.struct_size = sizeof(msg),
		.transport = "mqtt",
		.topic = topic,
		.payload = p,
		.len = n,
		.qos = 1,
	};
	fg_source_inst_decode(si, &msg, fuzz_emit_cb, NULL, NULL, NULL);
}

static int fuzz_plugin_run(const struct fuzz_plugin *fp, const uint8_t *data, size_t size)
{
	static fg_plugin_host *host;
	if (!host) {
		fg_log_set_level(FG_LOG_ERR);   /* rejected-event warnings would flood */
		if (fg_plugin_host_new(NULL, &host) < 0)
			abort();
	}
	struct fg_conf_source src = { .name = "fuzz", .plugin = (char *)fp->plugin,
	                              .opts = fp->opts, .n_opts = fp->n_opts };
	fg_source_inst *si = NULL;
	char *errors = NULL;
	if (fg_source_inst_new(host, "fuzz", &src, &si, &errors) < 0)
		abort();   /* the harness itself is broken */
	free(errors);
	fg_source_inst_set_now(si, 1741939200000LL);   /* 2025-03-14T09:00:00Z */

	if (size == 0 || data[0] >= fp->n_topics) {
		for (size_t t = 0; t < fp->n_topics; t++)
			fuzz_one(si, fp, fp->topics[t], data, size);
	} else {
		const uint8_t *p = data, *end = data + size;
		while (p < end) {
			const uint8_t *sep = memchr(p, 0xff, (size_t)(end - p));
			const uint8_t *stop = sep ? sep : end;
			if (stop > p && *p < fp->n_topics)
				fuzz_one(si, fp, fp->topics[*p], p + 1, (size_t)(stop - p - 1));
			p = sep ? sep + 1 : end;
		}
	}
	if (fp->run_wakes)
		fg_source_inst_run_wakes(si, INT64_MAX / 2, true, fuzz_emit_cb, NULL, NULL);
	fg_source_inst_free(si);
	return 0;
}

#endif
