/*
 * modbus-generic: Modbus devices nobody has written a plugin for, such as
 * electrical-fire (residual current) detectors whose register maps are only
 * in a vendor PDF.  The whole register map comes from the device's
 * `registers` list in its [modbus-device] section (the plugin declares no
 * entries of its own); the options below say which entries carry which
 * hazard:
 *
 *   residual_current_value = leak_ma     residual current, alarm above
 *                                        `residual_current` (default 300,
 *                                        in the entry's unit: mA per GB
 *                                        14287 practice)
 *   overtemp_value = cable_temp          overtemp above `overtemp` (60)
 *   overcurrent_value = i1 i2 i3         overcurrent above `overcurrent`
 *                                        (0 = off); several entries report
 *                                        as "<device>/<entry>"
 *   smoke_value = smoke                  smoke while the entry is non-zero
 *                                        (zero with smoke_active_low)
 *
 * Each limit has _for (minimum duration) and _hysteresis options; the
 * event carries the entry's value and unit.  An entry named here that the
 * poll did not deliver is reported through fail() (a config mistake).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "firegrid/plugin.h"
#include "../common/modbus_plugin.h"

#define MG_MAX_NAMES 16

struct mg_config {
	const char *overtemp_value;
	struct mp_limit overtemp;
	const char *overcurrent_value;
	struct mp_limit overcurrent;
	const char *residual_current_value;
	struct mp_limit residual_current;
	const char *smoke_value;
	int smoke_active_low;
};

#define OFF(f) offsetof(struct mg_config, f)
static const struct fg_option mg_options[] = {
	{ "residual_current_value", FG_OPT_STRING, NULL, OFF(residual_current_value),
	  "register map entry with the residual current", 0, 0 },
	MP_LIMIT_OPTIONS(struct mg_config, residual_current, "residual_current", "300", "0",
	                 "30", "residual current (entry's unit, normally mA)", 0, 1e6),
	{ "overtemp_value", FG_OPT_STRING, NULL, OFF(overtemp_value),
	  "register map entry with a temperature (cable, cabinet, air)", 0, 0 },
	MP_LIMIT_OPTIONS(struct mg_config, overtemp, "overtemp", "60", "10s", "5",
	                 "temperature (degC)", 0, 1000),
	{ "overcurrent_value", FG_OPT_STRING, NULL, OFF(overcurrent_value),
	  "register map entries with currents, separated by spaces or commas", 0, 0 },
	MP_LIMIT_OPTIONS(struct mg_config, overcurrent, "overcurrent", "0", "10s", "0.5",
	                 "current (A)", 0, 1e6),
	{ "smoke_value", FG_OPT_STRING, NULL, OFF(smoke_value),
	  "register map entry (a discrete input, usually) that is non-zero on smoke", 0, 0 },
	{ "smoke_active_low", FG_OPT_BOOL, "false", OFF(smoke_active_low),
	  "smoke when the entry is zero instead", 0, 0 },
	FG_OPTION_END
};
#undef OFF

/* The plugin has no entries of its own: the config supplies them all. */
static const struct fg_modbus_map mg_map = {
	sizeof(struct fg_modbus_map), sizeof(struct fg_modbus_reg), NULL, 0, 0, 0
};

struct mg_watch {
	struct mp_limit limit;
	const char *unit;          /* when the entry has none */
	char names[MG_MAX_NAMES][33];
	size_t n;
};

struct mg {
	const struct fg_host *host;
	struct mg_watch overtemp, overcurrent, residual;
	char smoke[33];
	bool smoke_active_low;
};

/* Split a list of entry names; -EINVAL for a bad name or too many. */
static int mg_names(const char *text, struct mg_watch *w)
{
	if (!text)
		return 0;
	char buf[1024];
	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", text);
	char *save = NULL;
	for (char *t = strtok_r(buf, " ,\t", &save); t; t = strtok_r(NULL, " ,\t", &save)) {
		if (w->n == MG_MAX_NAMES || strlen(t) >= sizeof(w->names[0]) ||
		    strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(t))
			return -EINVAL;
		snprintf(w->names[w->n++], sizeof(w->names[0]), "%s", t);
	}
	return 0;
}

static int mg_init(const struct fg_host *host, const void *config, void **ret_state)
{
	const struct mg_config *cfg = config;
	struct mg *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->host = host;
	g->overtemp.limit = cfg->overtemp;
	g->overtemp.limit.kind = FG_KIND_OVERTEMP;
	g->overtemp.limit.severity = FG_SEV_MAJOR;
	g->overtemp.unit = "degC";
	g->overcurrent.limit = cfg->overcurrent;
	g->overcurrent.limit.kind = FG_KIND_OVERCURRENT;
	g->overcurrent.limit.severity = FG_SEV_MAJOR;
	g->overcurrent.unit = "A";
	g->residual.limit = cfg->residual_current;
	g->residual.limit.kind = FG_KIND_RESIDUAL_CURRENT;
	g->residual.limit.severity = FG_SEV_CRITICAL;
	g->residual.unit = "mA";
	g->smoke_active_low = cfg->smoke_active_low != 0;
	struct mg_watch smoke = { .n = 0 };
	const struct {
		const char *key, *text;
		struct mg_watch *w;
		size_t max;
	} names[] = {
		{ "overtemp_value", cfg->overtemp_value, &g->overtemp, 1 },
		{ "overcurrent_value", cfg->overcurrent_value, &g->overcurrent, MG_MAX_NAMES },
		{ "residual_current_value", cfg->residual_current_value, &g->residual, 1 },
		{ "smoke_value", cfg->smoke_value, &smoke, 1 },
	};
	for (size_t i = 0; i < PU_ARRAY_LEN(names); i++) {
		if (mg_names(names[i].text, names[i].w) < 0 || names[i].w->n > names[i].max) {
			free(g);
			return pu_option_error(host, names[i].key,
			                       "expected %s register map entry name%s ([a-z0-9_])",
			                       names[i].max == 1 ? "one" : "the",
			                       names[i].max == 1 ? "" : "s");
		}
	}
	if (smoke.n)
		snprintf(g->smoke, sizeof(g->smoke), "%s", smoke.names[0]);
	*ret_state = g;
	return 0;
}

static void mg_fini(void *state)
{
	free(state);
}

static const struct fg_modbus_map *mg_modbus_map(void *state)
{
	return &mg_map;
}

/* A value the config promised; fails the message when the map lacks it. */
static int mg_need(struct mg *g, fg_decode_ctx *ctx, const struct mp_poll *p, const char *name,
                   double *ret)
{
	if (mp_value(p, name, ret))
		return 1;
	if (p->values && !json_object_get(p->values, name)) {
		g->host->fail(ctx, "no register map entry '%s' in the poll (see `registers`)", name);
		return -ENOENT;
	}
	return 0;   /* not read this time (an exception on its request) */
}

static int mg_watch(struct mg *g, fg_decode_ctx *ctx, const struct mp_poll *p,
                    const struct mg_watch *w, const char *key)
{
	json_t *units = json_object_get(p->root, "units");
	for (size_t i = 0; i < w->n; i++) {
		double v;
		char dev[1100];
		int r = mg_need(g, ctx, p, w->names[i], &v);
		if (r <= 0) {
			if (r < 0)
				return r;
			continue;
		}
		const char *unit = json_string_value(json_object_get(units, w->names[i]));
		const char *device = w->n > 1 ? mp_subdevice(p->device, w->names[i], dev, sizeof(dev))
			: p->device;
		mp_limit_check(g->host, ctx, p, device, key, &w->limit, v, unit ? unit : w->unit);
	}
	return 0;
}

static int mg_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct mg *g = state;
	struct mp_poll p;
	int r = mp_poll_parse(g->host, ctx, msg, &p);
	if (r < 0)
		return r;
	mp_status_events(g->host, ctx, &p);
	if (p.values) {
		r = mg_watch(g, ctx, &p, &g->residual, "residual_current");
		if (r == 0)
			r = mg_watch(g, ctx, &p, &g->overtemp, "overtemp");
		if (r == 0)
			r = mg_watch(g, ctx, &p, &g->overcurrent, "overcurrent");
		double v;
		int s = r == 0 && g->smoke[0] ? mg_need(g, ctx, &p, g->smoke, &v) : 0;
		if (s < 0)
			r = s;
		else if (s > 0)
			mp_flag_check(g->host, ctx, &p, p.device, "smoke", FG_KIND_SMOKE,
			              FG_SEV_CRITICAL, (v != 0) != g->smoke_active_low, NULL);
	}
	mp_poll_free(&p);
	return r;
}

FG_PLUGIN_DEFINE(modbus_generic,
	.name = "modbus-generic",
	.version = "1.0",
	.description = "Any Modbus device whose register map is written in the config: "
	               "residual current, overtemp, overcurrent, smoke thresholds",
	.options = mg_options,
	.config_size = sizeof(struct mg_config),
	.init = mg_init,
	.fini = mg_fini,
	.decode = mg_decode,
	.modbus_map = mg_modbus_map,
);
