/* Fuzz target: the generic-json plugin through the plugin host (see
 * fuzz_plugin.h for the input format).  Seeds: tests/fuzz/seeds/generic-json. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = {
	"site/b7/events",
	"site/b2/heat-u101",
	"site/b2/",
	"",
	"/",
};

static struct fg_conf_kv opts[] = {
	{ "device_from_topic", "true", 1 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "generic-json",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = 1,
	};
	return fuzz_plugin_run(&fp, data, size);
}
