/*
 * Fuzz target: everything a Modbus message goes through.
 *   1. the input as a poll payload, straight into each Modbus plugin
 *      (sht20, sdm120, sdm630, relay-board, modbus-generic) via the host;
 *   2. the input as a captured exchange (firegridctl decode's format):
 *      frames checked and mapped onto each plugin's plan, then the payload
 *      built from it decoded by the plugin;
 *   3. the input's first line as a `registers` entry of the config.
 * Seeds: the corpus captures and tests/data/modbus payloads.
 */
#include <jansson.h>
#include <stdlib.h>
#include "log.h"
#include "plugin_host.h"
#include "modbus_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fg_conf_kv generic_opts[] = {
	{ "residual_current_value", "leak", 2 },
	{ "overtemp_value", "temperature", 3 },
	{ "smoke_value", "smoke", 4 },
};
static struct fg_conf_kv relay_opts[] = {
	{ "inputs", "2", 1 },
	{ "smoke_input", "1", 2 },
};
static struct fg_conf_kv threshold_opts[] = {
	{ "overcurrent", "5", 1 },
	{ "overcurrent_for", "0", 2 },
};

struct target {
	const char *plugin;
	struct fg_conf_kv *opts;
	size_t n_opts;
	char *registers;           /* config entries for the effective map */
};

static void emit_cb(void *data, const struct fg_ev *ev)
{
	free(fg_ev_to_json_line(ev));
	(void)data;
}

static void decode(fg_source_inst *si, const char *payload, size_t len)
{
	struct fg_msg msg = {
		.struct_size = sizeof(msg), .transport = "modbus", .topic = "modbus/fuzz/1/fuzz",
		.payload = (const uint8_t *)payload, .len = len,
	};
	fg_source_inst_decode(si, &msg, emit_cb, NULL, NULL, NULL);
}

static void run_target(fg_plugin_host *host, const struct target *t, const uint8_t *data,
                       size_t size, const json_t *doc)
{
	struct fg_conf_source src = { .name = "fuzz", .plugin = (char *)t->plugin,
	                              .opts = t->opts, .n_opts = t->n_opts };
	fg_source_inst *si = NULL;
	char *errors = NULL;
	if (fg_source_inst_new(host, "fuzz", &src, &si, &errors) < 0)
		abort();
	free(errors);
	fg_source_inst_set_now(si, 1741939200000LL);
	decode(si, (const char *)data, size);

	struct fg_modbus_map *map = NULL;
	struct fg_modbus_plan *plan = NULL;
	char err[256];
	char *regs[1] = { t->registers };
	if (fg_modbus_map_compose(fg_source_inst_modbus_map(si), regs, t->registers ? 1 : 0, NULL,
	                          0, NULL, 0, &map, err, sizeof(err)) < 0 ||
	    fg_modbus_plan_new(map, &plan) < 0)
		abort();
	struct fg_modbus_poll poll;
	int unit = 0;
	if (doc && fg_modbus_poll_from_capture(doc, plan, &poll, &unit, err, sizeof(err)) == 0) {
		struct fg_modbus_reach reach = FG_MODBUS_REACH_INIT;
		struct fg_modbus_origin o = { "fuzz", "bus", unit, NULL };
		size_t len = 0;
		fg_modbus_reach_update(&reach, poll.status != FG_MODBUS_NO_RESPONSE, 1);
		char *payload = fg_modbus_payload(map, &poll, &o, &reach, NULL, &len);
		if (payload)
			decode(si, payload, len);
		free(payload);
		fg_modbus_poll_clear(&poll);
	}
	fg_modbus_plan_free(plan);
	fg_modbus_map_free(map);
	fg_source_inst_free(si);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fg_plugin_host *host;
	static const struct target targets[] = {
		{ "sht20", NULL, 0, NULL },
		{ "sdm120", threshold_opts, 2, NULL },
		{ "sdm630", threshold_opts, 2, NULL },
		{ "relay-board", relay_opts, 2, NULL },
		{ "modbus-generic", generic_opts, 3, "leak:i0:u16:mA" },
	};
	if (!host) {
		fg_log_set_level(FG_LOG_ERR);
		if (fg_plugin_host_new(NULL, &host) < 0)
			abort();
	}
	json_t *doc = json_loadb((const char *)data, size, 0, NULL);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		run_target(host, &targets[i], data, size, json_is_object(doc) ? doc : NULL);
	json_decref(doc);

	char line[200];
	size_t n = 0;
	while (n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n] != '\0') {
		line[n] = (char)data[n];
		n++;
	}
	line[n] = '\0';
	struct fg_modbus_entry_text e;
	char err[200];
	fg_modbus_entry_parse(line, &e, err, sizeof(err));
	return 0;
}
