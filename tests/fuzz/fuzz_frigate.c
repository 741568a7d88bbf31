/* Fuzz target: the frigate plugin (events JSON, reviews, availability) and
 * the wake-ups it asks for, through the plugin host (see fuzz_plugin.h for
 * the input format).  Seeds: ../shared/corpus/frigate, tests/data/frigate. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = {
	"frigate/events",
	"frigate/reviews",
	"frigate/available",
	"frigate/stats",
};

static struct fg_conf_kv opts[] = {
	{ "dwell", "30s", 1 },
	{ "loitering_time", "10s", 2 },
	{ "lanes", "fire_lane,b3_firelane_cam/lane2", 3 },
	{ "api_url", "http://127.0.0.1:5000/", 4 },   /* object ids into snapshot URLs */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "frigate",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = sizeof(opts) / sizeof(opts[0]),
		.run_wakes = true,
	};
	return fuzz_plugin_run(&fp, data, size);
}
