/* Kind and severity names, hazard classes.  The tables are indexed by the
 * ABI enum values, so their order is part of the ABI too. */
#include <errno.h>
#include <string.h>
#include "event.h"
#include "util.h"

static const char *const kind_names[FG_KIND__COUNT] = {
	[FG_KIND_NONE] = "none",
	[FG_KIND_SMOKE] = "smoke",
	[FG_KIND_HEAT] = "heat",
	[FG_KIND_CO] = "co",
	[FG_KIND_TEST] = "test",
	[FG_KIND_CLEAR] = "clear",
	[FG_KIND_BATTERY_LOW] = "battery_low",
	[FG_KIND_TAMPER] = "tamper",
	[FG_KIND_FAULT] = "fault",
	[FG_KIND_OFFLINE] = "offline",
	[FG_KIND_ONLINE] = "online",
	[FG_KIND_OVERTEMP] = "overtemp",
	[FG_KIND_OVERCURRENT] = "overcurrent",
	[FG_KIND_RESIDUAL_CURRENT] = "residual_current",
	[FG_KIND_FIRE_LANE_BLOCKED] = "fire_lane_blocked",
	[FG_KIND_FIRE_LANE_CLEARED] = "fire_lane_cleared",
};

static const char *const severity_names[] = {
	[FG_SEV_INFO] = "info",
	[FG_SEV_WARNING] = "warning",
	[FG_SEV_MAJOR] = "major",
	[FG_SEV_CRITICAL] = "critical",
};

const char *fg_kind_name(fg_kind k)
{
	if ((unsigned)k >= FG_KIND__COUNT)
		return NULL;
	return kind_names[k];
}

int fg_kind_parse(const char *name, fg_kind *ret)
{
	if (!name)
		return -EINVAL;
	/* "none" is not a kind anyone may send. */
	for (unsigned k = FG_KIND_NONE + 1; k < FG_KIND__COUNT; k++)
		if (strcmp(name, kind_names[k]) == 0) {
			*ret = (fg_kind)k;
			return 0;
		}
	return -EINVAL;
}

const char *fg_severity_name(fg_severity s)
{
	if ((unsigned)s >= FG_ARRAY_SIZE(severity_names))
		return NULL;
	return severity_names[s];
}

int fg_severity_parse(const char *name, fg_severity *ret)
{
	if (!name)
		return -EINVAL;
	for (unsigned s = 0; s < FG_ARRAY_SIZE(severity_names); s++)
		if (strcmp(name, severity_names[s]) == 0) {
			*ret = (fg_severity)s;
			return 0;
		}
	return -EINVAL;
}

bool fg_kind_is_fire(fg_kind k)
{
	return k == FG_KIND_SMOKE || k == FG_KIND_HEAT || k == FG_KIND_CO ||
	       k == FG_KIND_RESIDUAL_CURRENT;
}

bool fg_kind_is_recovery(fg_kind k)
{
	return k == FG_KIND_CLEAR || k == FG_KIND_ONLINE || k == FG_KIND_FIRE_LANE_CLEARED;
}

fg_kind fg_kind_recovers(fg_kind k)
{
	switch (k) {
	case FG_KIND_ONLINE:
		return FG_KIND_OFFLINE;
	case FG_KIND_FIRE_LANE_CLEARED:
		return FG_KIND_FIRE_LANE_BLOCKED;
	default:
		return FG_KIND_NONE;   /* clear: whatever the event says, else all */
	}
}

bool fg_kind_opens_incident(fg_kind k)
{
	return (unsigned)k < FG_KIND__COUNT && k != FG_KIND_NONE && k != FG_KIND_TEST &&
	       !fg_kind_is_recovery(k);
}
