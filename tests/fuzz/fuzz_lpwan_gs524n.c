/* Fuzz target: the lpwan-gs524n plugin through the plugin host (see
 * fuzz_plugin.h for the input format).  Seeds: ../shared/corpus/lpwan_smoke,
 * tests/data/lpwan-gs524n, tests/fuzz/seeds/lpwan-gs524n (bare frames). */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = {
	"application/9a1f6a2e/device/24e124535b312345/event/up",
	"v3/compound-smoke@ttn/devices/b5-stair-3f/up",
	"application/9a1f6a2e/device/24e124535b312345/event/join",
	"application/9a1f6a2e/event/up",
	"device/",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "lpwan-gs524n",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
	};
	return fuzz_plugin_run(&fp, data, size);
}
