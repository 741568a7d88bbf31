/* Fuzz target: the hikvision plugin (libxml2 parsing of ISAPI alerts, the
 * multipart bodies around them, and its wake-ups), through the plugin host
 * (see fuzz_plugin.h).  Built twice: plain (XML, or multipart sniffed from a
 * leading delimiter) and with FUZZ_MULTIPART (a multipart/form-data
 * Content-Type on every message).  Seeds: ../shared/corpus/hikvision,
 * tests/data/hikvision. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = { "/v1/ingest/hik" };

static struct fg_conf_kv opts[] = {
	{ "dwell", "30s", 1 },
	{ "offline_after", "30s", 2 },
	{ "io_inputs", "1:smoke,2:fault", 3 },
	{ "untargeted", "true", 4 },
};

#ifdef FUZZ_MULTIPART
static const struct fg_header headers[] = {
	{ "content-type", "multipart/form-data; boundary=8d5c3e1a0b7f4e2d" },
	{ "x-firegrid-snapshot", "{\"sha256\":\"00\",\"url\":\"/v1/snapshots/00\"}" },
	{ "x-firegrid-peer", "192.168.10.9" },
};
#define N_HEADERS (sizeof(headers) / sizeof(headers[0]))
#else
static const struct fg_header headers[] = { { "x-firegrid-peer", "192.168.10.9" } };
#define N_HEADERS 1
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "hikvision",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = sizeof(opts) / sizeof(opts[0]),
		.run_wakes = true,
		.headers = headers,
		.n_headers = N_HEADERS,
	};
	return fuzz_plugin_run(&fp, data, size);
}
