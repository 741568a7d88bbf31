/*
 * The local interlock: [interlock NAME] rules that cut an e-bike charging
 * shed's power by writing relay coils when one of its devices raises smoke,
 * overtemp or residual_current (the rule's `on` kinds), without waiting for
 * anyone -- it works with the uplink down.
 *
 *   trigger  an alarm event (not a clear) of a kind in `on` from a
 *            [modbus-device] listed in `from` (its source name), or from a
 *            detector of any source listed in `trigger_devices` (its device
 *            id or the topic of its message: a Zigbee smoke alarm in the
 *            shed); every event fg_incidents_apply stores is watched
 *            (fg_incidents_watch), whatever its transport
 *   cut      write cut_value to every coil of `device`, read each back,
 *            record the action; dry_run only logs and records
 *   restore  never automatic: `firegridctl interlock restore NAME` queues a
 *            command row the daemon picks up within a second (it runs
 *            beside the daemon, and works without the ops-center API)
 *
 * Every action is a row of interlock_actions (time, rule, action, coils,
 * value, written, verified, dry_run, error, the incident, actor) and, when
 * it belongs to an incident that is not closed (the trigger's for a cut,
 * the last cut's for a restore), an incident_history row (actor
 * "interlock/<rule>", channel "interlock") plus a new revision whose webhook
 * carries {"interlock": {...}} in data.event.attrs.  A write or read-back
 * that fails raises its own major incident: kind fault on device
 * "interlock/<rule>", cleared by the next verified action of that rule.
 * After each verified (or attempted) write the coils' values are handed to
 * the relay plugin as "commanded", so an open relay the gateway opened is
 * not reported as a fault.  A restart reloads the last action of each rule:
 * the cut stays cut.
 *
 * History rows, revisions and webhooks go through fg_incidents_annotate,
 * inside the same group transaction as the interlock_actions row.
 *
 * Loop thread only.  Created and driven by modbus.c; the coil writes run on
 * the bus worker (fg_modbus_write_coils), never on the loop thread.  The
 * rules watch from fg_interlock_new (with a loop): an alarm that comes
 * before fg_interlock_start -- a SIGHUP reload waiting for the old buses
 * to finish the request in hand, or start-up -- is kept and cuts once the
 * rules start; closing drops it.
 */
#ifndef FG_INTERLOCK_H
#define FG_INTERLOCK_H

#include <stdint.h>
#include <uv.h>
#include "conf.h"
#include "event.h"
#include "incident.h"
#include "store.h"

struct fg_modbus;
typedef struct fg_interlock fg_interlock;

/* The store schema version that added interlock_actions/_commands. */
#define FG_INTERLOCK_SCHEMA_VERSION 3

/* Rules of conf (cross-references were checked by the config loader).
 * loop NULL: validation only. */
int fg_interlock_new(uv_loop_t *loop, const struct fg_conf *conf, struct fg_modbus *m,
                     fg_store *st, fg_incidents *inc, fg_interlock **ret, char **ret_errors);
/* Load each rule's last action (commanded coil states) and start watching
 * for restore commands.  0 or -errno. */
int fg_interlock_start(fg_interlock *il);
/* Stop the command timer; cb when its handle is closed (at once if never
 * started or NULL). */
void fg_interlock_close(fg_interlock *il, void (*cb)(void *data), void *data);
void fg_interlock_free(fg_interlock *il);     /* NULL-safe */

/* An event of any source, after it was folded into incident_id (0 if
 * none).  Called by the incidents watcher; the interlock's own fault
 * events never trigger. */
void fg_interlock_on_event(fg_interlock *il, const struct fg_ev *ev, int64_t incident_id);

#endif
