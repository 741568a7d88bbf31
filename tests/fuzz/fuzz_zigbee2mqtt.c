/* Fuzz target: the zigbee2mqtt plugin through the plugin host (see
 * fuzz_plugin.h for the input format).  Seeds: ../shared/corpus/zigbee2mqtt. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = {
	"zigbee2mqtt/bridge/devices",              /* first, so seeds can resolve names */
	"zigbee2mqtt/b3/u201/smoke_kitchen",
	"zigbee2mqtt/b3/u201/smoke_kitchen/availability",
	"zigbee2mqtt/bridge/state",
	"zigbee2mqtt/bridge/event",
	"zigbee2mqtt/bridge/info",
	"zigbee2mqtt/b6/u104/heat_kitchen",
	"zigbee2mqtt/shed_b3/rcbo_ebike_feeder",
	"zigbee2mqtt/b3/u201/smoke_kitchen/set",
	"zigbee2mqtt/",
	"zigbee2mqtt/availability",
	"elsewhere/b3",
};

static struct fg_conf_kv opts[] = {
	{ "battery_low_percent", "15", 1 },
	{ "heat_models", " HESZB-120 HS1SA,,\tTS0601_smoke_4 ", 2 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "zigbee2mqtt",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = sizeof(opts) / sizeof(opts[0]),
	};
	return fuzz_plugin_run(&fp, data, size);
}
