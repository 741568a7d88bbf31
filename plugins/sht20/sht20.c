/*
 * sht20: SHT20-class RS485 temperature/humidity transmitters (XY-MD02 and
 * the many boards like it) watching the air of a charging shed.
 *
 * Register map: input registers 1 (temperature, int16, x0.1 degC, two's
 * complement below zero) and 2 (humidity, uint16, x0.1 %RH), read with one
 * FC04 request.  The same model ships with x100 firmware on the same
 * registers: give such a device `scale = 0.01` in its [modbus-device]
 * section.  A reading outside the sensor's range (-40..125 degC by
 * default) is reported as a fault, never as overtemp: it is what a wrong
 * scale looks like (3050 read as x10 is 305 degC).
 *
 * Events: overtemp (major) above `overtemp` (default 60 degC) for
 * `overtemp_for` (default 10 s), clear at `overtemp - overtemp_hysteresis`
 * (default 5); plus the shared status events (offline, online, fault).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"
#include "../common/modbus_plugin.h"

struct sht_config {
	struct mp_limit overtemp;
	double min_plausible;
	double max_plausible;
};

static const struct fg_option sht_options[] = {
	MP_LIMIT_OPTIONS(struct sht_config, overtemp, "overtemp", "60", "10s", "5",
	                 "temperature (degC)", 0, 1000),
	{ "min_plausible", FG_OPT_DOUBLE, "-40", offsetof(struct sht_config, min_plausible),
	  "lowest reading the sensor can make (degC); below it is a fault", -1000, 1000 },
	{ "max_plausible", FG_OPT_DOUBLE, "125", offsetof(struct sht_config, max_plausible),
	  "highest reading the sensor can make (degC); above it is a fault", -1000, 1000 },
	FG_OPTION_END
};

static const struct fg_modbus_reg sht_regs[] = {
	{ "temperature", FG_MODBUS_INPUT_REGISTERS, 1, FG_MODBUS_I16, FG_MODBUS_ABCD, 0.1, "degC" },
	{ "humidity", FG_MODBUS_INPUT_REGISTERS, 2, FG_MODBUS_U16, FG_MODBUS_ABCD, 0.1, "%RH" },
};
static const struct fg_modbus_map sht_map = MP_STATIC_MAP(sht_regs, 0, 0);

struct sht {
	const struct fg_host *host;
	struct sht_config cfg;
};

static int sht_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct sht_config *cfg = config;
	if (cfg->min_plausible >= cfg->max_plausible)
		return pu_option_error(host, "max_plausible", "%g is not above min_plausible %g",
		                       cfg->max_plausible, cfg->min_plausible);
	struct sht *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->host = host;
	s->cfg = *cfg;
	s->cfg.overtemp.kind = FG_KIND_OVERTEMP;
	s->cfg.overtemp.severity = FG_SEV_MAJOR;
	*ret_state = s;
	return 0;
}

static void sht_fini(void *state)
{
	free(state);
}

static const struct fg_modbus_map *sht_modbus_map(void *state)
{
	return &sht_map;
}

/* Out-of-range readings: a fault once, cleared when plausible again. */
static bool sht_plausible(struct sht *s, fg_decode_ctx *ctx, const struct mp_poll *p, double t)
{
	const struct fg_host *host = s->host;
	bool bad = t < s->cfg.min_plausible || t > s->cfg.max_plausible;
	bool was_bad = host->state_get(ctx, p->device, "implausible") != NULL;
	if (bad && !was_bad) {
		json_t *a = json_pack("{s:s, s:f, s:f}", "reason",
		                      "temperature outside the sensor's range: check the scale",
		                      "min", s->cfg.min_plausible, "max", s->cfg.max_plausible);
		char *attrs = mp_attrs(p, "plausibility", a);
		json_decref(a);
		mp_emit(host, ctx, p->device, FG_KIND_FAULT, FG_KIND_NONE, FG_SEV_MAJOR, true, t,
		        "degC", attrs);
		free(attrs);
		host->state_set(ctx, p->device, "implausible", "1");
	} else if (!bad && was_bad) {
		mp_emit(host, ctx, p->device, FG_KIND_CLEAR, FG_KIND_FAULT, FG_SEV_INFO, true, t,
		        "degC", NULL);
		host->state_set(ctx, p->device, "implausible", NULL);
	}
	return !bad;
}

static int sht_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct sht *s = state;
	struct mp_poll p;
	int r = mp_poll_parse(s->host, ctx, msg, &p);
	if (r < 0)
		return r;
	mp_status_events(s->host, ctx, &p);
	double t;
	if (mp_value(&p, "temperature", &t) && sht_plausible(s, ctx, &p, t))
		mp_limit_check(s->host, ctx, &p, p.device, "overtemp", &s->cfg.overtemp, t, "degC");
	mp_poll_free(&p);
	return 0;
}

FG_PLUGIN_DEFINE(sht20,
	.name = "sht20",
	.version = "1.0",
	.description = "SHT20-class RS485 temperature/humidity transmitters (Modbus): overtemp",
	.options = sht_options,
	.config_size = sizeof(struct sht_config),
	.init = sht_init,
	.fini = sht_fini,
	.decode = sht_decode,
	.modbus_map = sht_modbus_map,
);
