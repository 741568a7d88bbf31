/*
 * Eastron SDM DIN-rail energy meters, one source built twice (meson):
 *
 *   sdm120  single phase, one per charging port: the port's current,
 *           power, voltage.  Overcurrent on `current`.
 *   sdm630  three phase, on a shed's feeder (or three ports, one per
 *           phase).  Overcurrent per phase, as devices "<device>/L1" ..
 *           "/L3" so that each phase has its own incident.
 *
 * Input registers (FC04), float32 in two registers, ABCD word order; the
 * manual numbers them from 30001, the wire from 0 (30007 "Current" is input
 * register 6).  Only adjacent registers share a request (max_gap 0): the
 * SDM120 has holes in its map, as mbmd's one-read-per-quantity shows.
 *
 * Events: overcurrent (major) above `overcurrent` amperes (0 = off, the
 * default: the limit depends on what the port feeds) for `overcurrent_for`
 * (default 10 s), clear at `overcurrent - overcurrent_hysteresis`; plus the
 * shared status events (offline, online, fault for exception responses).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"
#include "../common/modbus_plugin.h"

#if SDM_MODEL != 120 && SDM_MODEL != 630
#error "build with -DSDM_MODEL=120 or -DSDM_MODEL=630"
#endif

struct sdm_config {
	struct mp_limit overcurrent;
};

static const struct fg_option sdm_options[] = {
	MP_LIMIT_OPTIONS(struct sdm_config, overcurrent, "overcurrent", "0", "10s", "0.5",
	                 "current (A)", 0, 10000),
	FG_OPTION_END
};

#define F32(name, addr, unit) \
	{ name, FG_MODBUS_INPUT_REGISTERS, addr, FG_MODBUS_F32, FG_MODBUS_ABCD, 1, unit }

#if SDM_MODEL == 120
static const struct fg_modbus_reg sdm_regs[] = {
	F32("voltage", 0x0000, "V"),                 /* 30001 */
	F32("current", 0x0006, "A"),                 /* 30007 */
	F32("active_power", 0x000C, "W"),            /* 30013 */
	F32("power_factor", 0x001E, NULL),           /* 30031 */
	F32("frequency", 0x0046, "Hz"),              /* 30071 */
	F32("import_active_energy", 0x0048, "kWh"),  /* 30073 */
};
static const char *const sdm_currents[] = { "current" };
static const char *const sdm_phases[] = { NULL };
#else
static const struct fg_modbus_reg sdm_regs[] = {
	F32("voltage_l1", 0x0000, "V"),              /* 30001 */
	F32("voltage_l2", 0x0002, "V"),
	F32("voltage_l3", 0x0004, "V"),
	F32("current_l1", 0x0006, "A"),              /* 30007 */
	F32("current_l2", 0x0008, "A"),
	F32("current_l3", 0x000A, "A"),
	F32("power_l1", 0x000C, "W"),                /* 30013 */
	F32("power_l2", 0x000E, "W"),
	F32("power_l3", 0x0010, "W"),
	F32("power_factor_l1", 0x001E, NULL),        /* 30031 */
	F32("power_factor_l2", 0x0020, NULL),
	F32("power_factor_l3", 0x0022, NULL),
	F32("current_sum", 0x0030, "A"),             /* 30049 */
	F32("total_power", 0x0034, "W"),             /* 30053 */
	F32("frequency", 0x0046, "Hz"),              /* 30071 */
	F32("import_active_energy", 0x0048, "kWh"),  /* 30073 */
	F32("neutral_current", 0x00E0, "A"),         /* 30225 */
};
static const char *const sdm_currents[] = { "current_l1", "current_l2", "current_l3" };
static const char *const sdm_phases[] = { "L1", "L2", "L3" };
#endif
static const struct fg_modbus_map sdm_map = MP_STATIC_MAP(sdm_regs, 0, 0);

struct sdm {
	const struct fg_host *host;
	struct mp_limit overcurrent;
};

static int sdm_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct sdm_config *cfg = config;
	struct sdm *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->host = host;
	s->overcurrent = cfg->overcurrent;
	s->overcurrent.kind = FG_KIND_OVERCURRENT;
	s->overcurrent.severity = FG_SEV_MAJOR;
	*ret_state = s;
	return 0;
}

static void sdm_fini(void *state)
{
	free(state);
}

static const struct fg_modbus_map *sdm_modbus_map(void *state)
{
	return &sdm_map;
}

static int sdm_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct sdm *s = state;
	struct mp_poll p;
	int r = mp_poll_parse(s->host, ctx, msg, &p);
	if (r < 0)
		return r;
	mp_status_events(s->host, ctx, &p);
	for (size_t i = 0; i < PU_ARRAY_LEN(sdm_currents); i++) {
		double a;
		char buf[1100];
		if (!mp_value(&p, sdm_currents[i], &a))
			continue;
		const char *device = sdm_phases[i] ? mp_subdevice(p.device, sdm_phases[i], buf,
		                                                  sizeof(buf)) : p.device;
		mp_limit_check(s->host, ctx, &p, device, "overcurrent", &s->overcurrent, a, "A");
	}
	mp_poll_free(&p);
	return 0;
}

#if SDM_MODEL == 120
FG_PLUGIN_DEFINE(sdm120,
	.name = "sdm120",
	.version = "1.0",
	.description = "Eastron SDM120 single-phase meter (Modbus): per-port overcurrent",
#else
FG_PLUGIN_DEFINE(sdm630,
	.name = "sdm630",
	.version = "1.0",
	.description = "Eastron SDM630 three-phase meter (Modbus): per-phase overcurrent",
#endif
	.options = sdm_options,
	.config_size = sizeof(struct sdm_config),
	.init = sdm_init,
	.fini = sdm_fini,
	.decode = sdm_decode,
	.modbus_map = sdm_modbus_map,
);
