/* Fuzz target: the gb26875 plugin through the plugin host (see fuzz_plugin.h
 * for the input format).  Seeds: the corpus frames as binary
 * (tests/fuzz/seeds/gb26875) and tests/data/gb26875. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = {
	"gb26875/compound/000020010307",
	"gb26875/compound/000020010307/silent",
	"gb26875/compound/00002001030/silent",
	"/silent",
};

static struct fg_conf_kv opts[] = {
	{ "overtemp_c", "60", 1 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "gb26875",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = sizeof(opts) / sizeof(opts[0]),
	};
	return fuzz_plugin_run(&fp, data, size);
}
