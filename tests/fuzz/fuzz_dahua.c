/* Fuzz target: the dahua plugin (event lines, multipart chunks sniffed from
 * a leading delimiter, wake-ups) through the plugin host (see
 * fuzz_plugin.h).  Seeds: ../shared/corpus/dahua, tests/data/dahua. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = { "http://192.168.1.108/cgi-bin/eventManager.cgi" };

static struct fg_conf_kv opts[] = {
	{ "dwell", "20s", 1 },
	{ "offline_after", "30s", 2 },
	{ "lane_codes", "ParkingDetection,CrossRegionDetection", 3 },
};

static const struct fg_header headers[] = { { "x-firegrid-peer", "192.168.1.108" } };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "dahua",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = sizeof(opts) / sizeof(opts[0]),
		.run_wakes = true,
		.headers = headers,
		.n_headers = 1,
	};
	return fuzz_plugin_run(&fp, data, size);
}
