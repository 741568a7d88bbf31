/* Fuzz target: the tasmota plugin through the plugin host (see fuzz_plugin.h
 * for the input format).  Seeds: ../shared/corpus/tasmota, tests/data/tasmota. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const topics[] = {
	"tele/zbbridge_b3/SENSOR",
	"tele/zbbridge_b3/LWT",
	"tele/ebike_b3_port07/SENSOR",
	"tele/shed_b3_io/SENSOR",
	"stat/shed_b3_io/RESULT",
	"tele/zbbridge_b3/4A1C/SENSOR",
	"cmnd/zbbridge_b3/ZbSend",
	"tele/shed_b3_cable/STATE",
	"tele//SENSOR",
	"tele/a/b/c/d",
	"other/x/SENSOR",
};

static struct fg_conf_kv opts[] = {
	{ "smoke_inputs", "shed_b3_io/Switch1, shed_b3_io/Switch2:nc", 1 },
	{ "smoke_zigbee", "zbbridge_b3/0x4A1C zbbridge_b3/smoke_b6_u104", 2 },
	{ "overtemp_c", "60", 3 },
	{ "power_max", "1000", 4 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_plugin fp = {
		.plugin = "tasmota",
		.topics = topics,
		.n_topics = sizeof(topics) / sizeof(topics[0]),
		.opts = opts,
		.n_opts = sizeof(opts) / sizeof(opts[0]),
	};
	return fuzz_plugin_run(&fp, data, size);
}
