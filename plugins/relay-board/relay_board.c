/*
 * relay-board: Modbus relay boards switching the charging ports of a shed
 * (Waveshare "Modbus RTU Relay" and its many clones): relay N is coil N-1,
 * read FC01 and written FC05; optional opto inputs are discrete inputs
 * (FC02), one of which may carry a smoke detector's alarm contact.
 *
 * The plugin reads the coils and checks each relay against what it should
 * be: `normal` (default on: the port is powered) unless the gateway's own
 * interlock last commanded otherwise (the payload's "commanded").  A relay
 * in any other state raises fault on "<device>/relay_N" ("relay opened
 * unexpectedly": a tripped contactor, a manual switch, a board reset);
 * a relay the interlock opened and that reads open confirms the cut-off and
 * raises nothing.  Coil bytes are LSB first on the wire (bit 0 = relay 1);
 * the host has already unpacked them.
 *
 * smoke_input = K (1-based) reports smoke (critical) on the device while
 * input K is active (closed; or open with smoke_active_low), and clear when
 * it is not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"
#include "../common/modbus_plugin.h"

#define RB_MAX 32

struct rb_config {
	int64_t channels;
	int64_t inputs;
	int64_t smoke_input;
	int smoke_active_low;
	int normal;
};

static const struct fg_option rb_options[] = {
	{ "channels", FG_OPT_INT, "8", offsetof(struct rb_config, channels),
	  "relays on the board (relay N is coil N-1)", 1, RB_MAX },
	{ "inputs", FG_OPT_INT, "0", offsetof(struct rb_config, inputs),
	  "digital inputs to read (input N is discrete input N-1)", 0, RB_MAX },
	{ "smoke_input", FG_OPT_INT, "0", offsetof(struct rb_config, smoke_input),
	  "input wired to a smoke detector's alarm contact (1-based); 0 = none", 0, RB_MAX },
	{ "smoke_active_low", FG_OPT_BOOL, "false", offsetof(struct rb_config, smoke_active_low),
	  "the smoke contact opens on alarm (normally closed loop)", 0, 0 },
	{ "normal", FG_OPT_BOOL, "on", offsetof(struct rb_config, normal),
	  "relay state while charging is allowed (on = coil energised)", 0, 0 },
	FG_OPTION_END
};

struct rb {
	const struct fg_host *host;
	struct rb_config cfg;
	struct fg_modbus_reg regs[2 * RB_MAX];
	char names[2 * RB_MAX][24];
	struct fg_modbus_map map;
};

static int rb_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct rb_config *cfg = config;
	if (cfg->smoke_input > cfg->inputs)   /* the input must be one that is read */
		return pu_option_error(host, "smoke_input", "input %d, but the board reads %d inputs",
		                       (int)cfg->smoke_input, (int)cfg->inputs);
	struct rb *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->host = host;
	b->cfg = *cfg;
	size_t n = 0;
	for (int64_t i = 0; i < cfg->channels; i++, n++) {
		snprintf(b->names[n], sizeof(b->names[n]), "relay_%d", (int)i + 1);
		b->regs[n] = (struct fg_modbus_reg){ b->names[n], FG_MODBUS_COILS, (uint16_t)i,
		                                     FG_MODBUS_BOOL, FG_MODBUS_ABCD, 1, NULL };
	}
	for (int64_t i = 0; i < cfg->inputs; i++, n++) {
		snprintf(b->names[n], sizeof(b->names[n]), "input_%d", (int)i + 1);
		b->regs[n] = (struct fg_modbus_reg){ b->names[n], FG_MODBUS_DISCRETE_INPUTS,
		                                     (uint16_t)i, FG_MODBUS_BOOL, FG_MODBUS_ABCD, 1,
		                                     NULL };
	}
	b->map = (struct fg_modbus_map){ sizeof(b->map), sizeof(b->regs[0]), b->regs, n, 0, 0 };
	*ret_state = b;
	return 0;
}

static void rb_fini(void *state)
{
	free(state);
}

static const struct fg_modbus_map *rb_modbus_map(void *state)
{
	struct rb *b = state;
	return &b->map;
}

static void rb_relay(struct rb *b, fg_decode_ctx *ctx, const struct mp_poll *p, int n)
{
	const char *name = b->names[n - 1];     /* "relay_<n>", from rb_init */
	char dev[1100];
	double v;
	if (!mp_value(p, name, &v))
		return;
	json_t *cmd = p->commanded ? json_object_get(p->commanded, name) : NULL;
	bool want = json_is_boolean(cmd) ? json_is_true(cmd) : b->cfg.normal != 0;
	bool is = v != 0;
	json_t *a = json_pack("{s:i, s:s, s:b, s:O*}", "relay", n, "state", is ? "on" : "off",
	                      "expected", want, "commanded", json_is_boolean(cmd) ? cmd : NULL);
	mp_flag_check(b->host, ctx, p, mp_subdevice(p->device, name, dev, sizeof(dev)), "relay",
	              FG_KIND_FAULT, FG_SEV_MAJOR, is != want, a);
	json_decref(a);
}

static int rb_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct rb *b = state;
	struct mp_poll p;
	int r = mp_poll_parse(b->host, ctx, msg, &p);
	if (r < 0)
		return r;
	mp_status_events(b->host, ctx, &p);
	for (int i = 1; i <= b->cfg.channels; i++)
		rb_relay(b, ctx, &p, i);
	double v;
	if (b->cfg.smoke_input &&
	    mp_value(&p, b->names[b->cfg.channels + b->cfg.smoke_input - 1], &v)) {
		bool active = (v != 0) != (b->cfg.smoke_active_low != 0);
		json_t *a = json_pack("{s:I}", "input", (json_int_t)b->cfg.smoke_input);
		mp_flag_check(b->host, ctx, &p, p.device, "smoke_input", FG_KIND_SMOKE,
		              FG_SEV_CRITICAL, active, a);
		json_decref(a);
	}
	mp_poll_free(&p);
	return 0;
}

FG_PLUGIN_DEFINE(relay_board,
	.name = "relay-board",
	.version = "1.0",
	.description = "Modbus relay boards switching charging ports (Waveshare-style): relay "
	               "faults, smoke contact input",
	.options = rb_options,
	.config_size = sizeof(struct rb_config),
	.init = rb_init,
	.fini = rb_fini,
	.decode = rb_decode,
	.modbus_map = rb_modbus_map,
);
