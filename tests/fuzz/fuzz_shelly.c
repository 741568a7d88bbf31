/* Fuzz target: the shelly plugin through the plugin host (see fuzz_plugin.h
 * for the input format).  Seeds: ../shared/corpus/shelly, tests/data/shelly. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = {
	"shellyplussmoke-a0a3b3e60d84/events/rpc",
	"shellyplussmoke-a0a3b3e60d84/status/smoke:0",
	"shellyplussmoke-a0a3b3e60d84/status/devicepower:0",
	"shellyplussmoke-a0a3b3e60d84/status/sys",
	"shellyplussmoke-a0a3b3e60d84/online",
	"shellyplus1pm-b8d61a8a1c20/online",
	"shellies/shellysmoke-68C63A/sensor/smoke",
	"shellies/shellysmoke-68C63A/sensor/battery",
	"shellies/shellysmoke-68C63A/online",
	"shellies//online",
	"/events/rpc",
	"compound/b3/shellyplussmoke-1/status/",
};

static struct fg_conf_kv opts[] = {
	{ "battery_low_percent", "20", 1 },
	{ "sleeping_models", ",shellyplussmoke,, shellyht ", 2 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "shelly",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = sizeof(opts) / sizeof(opts[0]),
	};
	return fuzz_plugin_run(&fp, data, size);
}
