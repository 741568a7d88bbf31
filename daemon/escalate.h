/*
 * The deadline timer: one uv_timer for every incident deadline there is
 * (escalation tiers, the center's deadlines, double-knock persistence,
 * held reports).  Each incident keeps its earliest pending deadline in
 * next_due_ms (indexed); the timer is armed for the earliest of those, so
 * there are no per-incident timers and nothing is lost across a restart:
 * deadlines already past when firegridd starts fire at once.
 *
 * When the timer fires, every incident whose next_due_ms has passed goes
 * through fg_incidents_run_due (lifecycle.h), in deadline order, a bounded
 * number per loop iteration.  The changes land in the store's group
 * transaction; a commit hook re-arms the timer after every commit (a new
 * incident, an action or a finished run may have moved the earliest
 * deadline).  The timer never sleeps more than a minute, so a step of the
 * wall clock (deadlines are epoch ms) is noticed soon.
 *
 * Thread: loop thread only.
 */
#ifndef FG_ESCALATE_H
#define FG_ESCALATE_H

#include <stdint.h>
#include "incident.h"
#include "store.h"

struct uv_loop_s;
typedef struct fg_escalate fg_escalate;

/* Registers a commit hook on st (so: free after fg_store_close).  -ENOSPC
 * when the store has no free hook slot. */
int fg_escalate_new(struct uv_loop_s *loop, fg_store *st, fg_incidents *inc, fg_escalate **ret);
/* Arm for the earliest deadline (at once when it has passed). */
int fg_escalate_start(fg_escalate *e);
/* Deadlines may have moved: re-arm (what the commit hook does). */
void fg_escalate_kick(fg_escalate *e);
/* Earliest pending deadline in epoch ms, INT64_MAX when none. */
int64_t fg_escalate_next_ms(fg_escalate *e);
/* Stop and close the timer; done(data) from its close callback.  NULL-safe. */
void fg_escalate_close(fg_escalate *e, void (*done)(void *data), void *data);
/* After fg_store_close (the store keeps the hook).  NULL-safe. */
void fg_escalate_free(fg_escalate *e);

#endif
