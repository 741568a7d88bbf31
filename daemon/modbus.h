/*
 * Modbus polling: [modbus-bus] sections become bus workers, [modbus-device]
 * sections become plugin instances polled on their own schedule, and the
 * [interlock] rules (interlock.h) ride on top.
 *
 * THREADS -- the one exception to "one loop owns everything"
 *   libmodbus is blocking and a modbus_t is not thread-safe, so every bus
 *   (a TCP endpoint or a serial line) gets exactly one worker thread.  The
 *   worker owns its modbus_t and nothing else: it creates it, connects,
 *   reconnects, runs requests and frees it.  It talks to the loop through
 *   two queues under the bus's mutex:
 *     todo  loop -> worker: requests (a poll of one device, or a coil write
 *           with read-back for the interlock, which jumps the queue);
 *     done  worker -> loop: the same request objects, filled in, followed by
 *           a uv_async_send; the loop drains them in the async callback.
 *   A request carries everything the worker needs (unit id, timeout, the
 *   device's request plan, which is read-only while the bus lives, and its
 *   own result buffers).  The worker never touches plugins, the store, uv
 *   handles or any other loop state, and the loop never calls libmodbus --
 *   not even modbus_strerror(): error texts are written by the worker.
 *
 * Schedule and isolation
 *   Each device has a uv_timer firing every `interval` (staggered across the
 *   bus).  A device has at most one poll queued or running: a timer tick
 *   that finds its previous poll unfinished is counted as an overrun and
 *   skipped, so a slow device never piles up work.  A poll stops at its
 *   first unanswered request, so a silent device costs one response timeout
 *   per poll, and the requests of the other devices on the bus wait at most
 *   that long.  Once offline (offline_after unanswered polls in a row) a
 *   device is polled only every offline_interval.  Buses are independent
 *   threads: one bus's timeouts never delay another.
 *
 * Failures
 *   An exception response is a device fault (with its code), a timeout or a
 *   broken frame is "no response"; only the latter count towards offline.
 *   The worker reconnects by itself with capped full-jitter backoff
 *   (reconnect_min..reconnect_max); libmodbus's own error recovery is off.
 *   While a bus is down its polls fail at once without waiting.
 *
 * Events
 *   Each poll result becomes one message (transport "modbus", the payload of
 *   firegrid/plugin.h) decoded by the device's plugin instance (source name
 *   = the device name, state persisted like any source's); its events go to
 *   incidents inside the store's group transaction and then to the
 *   interlock.
 *
 * Metrics (label device):  firegrid_modbus_polls_total,
 *   firegrid_modbus_no_response_total, firegrid_modbus_exceptions_total,
 *   firegrid_modbus_overruns_total; firegrid_modbus_online (gauge).
 */
#ifndef FG_MODBUS_H
#define FG_MODBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "conf.h"
#include "event.h"
#include "incident.h"
#include "plugin_host.h"
#include "store.h"

typedef struct fg_modbus fg_modbus;

/*
 * Build the buses, devices (plugin instances, effective register maps,
 * request plans) and interlock rules of conf.  Nothing runs yet.  With loop
 * == NULL (and st, inc, ob NULL) it only validates: `firegridd
 * --check-config` and SIGHUP run it before committing to a config.  On a
 * config error returns -EINVAL with every message ("FILE:LINE: [section]
 * key: reason", newline-separated) in *ret_errors (malloc'd).
 * conf, host, st and inc must outlive the object (the interlock's
 * webhooks are queued through inc's outbox).
 */
int fg_modbus_new(uv_loop_t *loop, const struct fg_conf *conf, fg_plugin_host *host,
                  fg_store *st, fg_incidents *inc, fg_modbus **ret, char **ret_errors);

/* Start the workers, the poll timers and the interlock.  0 or -errno. */
int fg_modbus_start(fg_modbus *m);

/*
 * Stop polling: timers stop, workers finish the request in hand (at most
 * one response timeout) and exit, queued polls are dropped, queued coil
 * writes are reported as failed.  cb runs on the loop once every thread is
 * joined and every handle closed (at once for NULL or a never-started m).
 */
void fg_modbus_close(fg_modbus *m, void (*cb)(void *data), void *data);
void fg_modbus_free(fg_modbus *m);           /* after close; NULL-safe */

/* Number of devices and buses configured (status lines). */
size_t fg_modbus_n_devices(const fg_modbus *m);

/* ---- for the interlock (loop thread) ------------------------------------- */

struct fg_modbus_write_result {
	const char *device;
	size_t n;                  /* coils written */
	const uint16_t *coils;
	const uint8_t *readback;   /* value read back per coil (valid if read[i]) */
	const uint8_t *read;       /* 1 when that coil could be read back */
	int value;
	bool written;              /* every write was acknowledged */
	bool verified;             /* ... and every coil reads back as value */
	const char *error;         /* first failure, "" when verified */
};
typedef void (*fg_modbus_write_cb)(void *data, const struct fg_modbus_write_result *res);

/*
 * Write `value` to coils of a device (FC05 each, a couple of attempts on no
 * response), then read every one back (FC01) -- ahead of any queued poll on
 * the device's bus, connecting at once if the bus is down.  cb runs on the
 * loop with the outcome (also when the bus shuts down first: not written).
 * Returns 0, -ENOENT for an unknown device, -ESHUTDOWN when closing,
 * -ENOMEM; cb is not called on error.
 */
int fg_modbus_write_coils(fg_modbus *m, const char *device, const uint16_t *coils, size_t n,
                          int value, fg_modbus_write_cb cb, void *data);

/* Record what the gateway last wrote to a device's coil (the payload's
 * "commanded", by map entry name; coils outside the map are ignored). */
void fg_modbus_set_commanded(fg_modbus *m, const char *device, uint16_t coil, int value);

#endif
