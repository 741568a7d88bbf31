/*
 * The plugin host: finds plugins (built in, or shared modules in the plugin
 * directory), checks their ABI, turns [source NAME] config sections into
 * plugin instances, and runs messages through them.
 *
 * Loading a module: dlopen("<plugin_dir>/<name>.so", or failing that
 * "<plugin_dir>/<name>/<name>.so" so that a build tree's `build/plugins`
 * works as a plugin dir), dlsym(FG_PLUGIN_SYMBOL), then refuse unless
 * desc->abi_major == FG_PLUGIN_ABI_MAJOR, desc->struct_size >= the v1 size,
 * desc->name == <name>, decode is set and the option table is sane; the
 * refusal message says which and what was expected.  Built-ins (statically
 * linked plugins: the generated fg_builtin_plugins[] table, absent from
 * firegridd) are found first unless fg_plugin_host_prefer_modules() was set.
 *
 * Plugin state (fg_host.state_get/set) lives in an in-memory table per
 * instance; when a persist callback is set (the daemon), every state_set that
 * changes a value is also written through to the store inside the current
 * transaction.
 *
 * Logging and counting: decode failures are returned (with the plugin's
 * reason) and neither logged nor counted here; the caller (ingest, or
 * `firegridctl decode`) logs once with its context and counts.  Emits
 * rejected by validation (returned as a count too) and fg_host.log() lines
 * are logged here, rate-limited per instance, tagged with the plugin name.
 *
 * Thread: loop thread only.
 */
#ifndef FG_PLUGIN_HOST_H
#define FG_PLUGIN_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conf.h"
#include "event.h"
#include "firegrid/plugin.h"

typedef struct fg_plugin_host fg_plugin_host;
typedef struct fg_source_inst fg_source_inst;

/* plugin_dir may be NULL (built-ins only). */
int fg_plugin_host_new(const char *plugin_dir, fg_plugin_host **ret);
void fg_plugin_host_free(fg_plugin_host *host);   /* dlcloses modules; NULL-safe */

/* Look in the plugin dir before the built-ins (`firegridctl decode
 * --plugin-dir`, tests of the shared modules).  A plugin missing from the
 * dir is still found built in. */
void fg_plugin_host_prefer_modules(fg_plugin_host *host, bool prefer);

/* Add a built-in descriptor at run time (tests, embedders).  It gets the
 * same ABI checks as a module; the descriptor must outlive the host. */
int fg_plugin_host_register(fg_plugin_host *host, const struct fg_plugin *desc,
                            char *err, size_t errlen);

/* Find (and load if needed) a plugin by name.  On failure returns -errno and
 * writes a clear reason into err ("plugin 'x': ABI major 2, this firegridd
 * speaks 1"). */
int fg_plugin_host_find(fg_plugin_host *host, const char *name,
                        const struct fg_plugin **ret, char *err, size_t errlen);

/* Every plugin known: built-ins plus the modules in the plugin dir (loaded;
 * modules that are refused are skipped).  Where a module and a built-in share
 * a name, the one fg_plugin_host_find() returns is listed.  *ret is a
 * malloc'd array the caller frees; the descriptors belong to the host. */
int fg_plugin_host_list(fg_plugin_host *host, const struct fg_plugin ***ret, size_t *ret_n);

/* Called for every event a plugin emits that passed validation. */
typedef void (*fg_emit_cb)(void *data, const struct fg_ev *ev);
/* Write-through for plugin state (value NULL = delete). */
typedef void (*fg_state_persist_cb)(void *data, const char *source, const char *device,
                                    const char *key, const char *value);

/*
 * Create an instance from a [source] section: finds the plugin, validates
 * src->opts against its option table (errors name conf_path:line and key,
 * all of them, newline-separated into *ret_errors, which the caller frees),
 * applies defaults, calls init().  The instance keeps pointers into src: src
 * must outlive it.
 */
int fg_source_inst_new(fg_plugin_host *host, const char *conf_path,
                       const struct fg_conf_source *src,
                       fg_source_inst **ret, char **ret_errors);
void fg_source_inst_free(fg_source_inst *si);     /* calls fini; NULL-safe */

const struct fg_conf_source *fg_source_inst_conf(fg_source_inst *si);
const struct fg_plugin *fg_source_inst_plugin(fg_source_inst *si);

/* Does the descriptor carry a modbus_map function (a Modbus plugin)? */
bool fg_plugin_is_modbus(const struct fg_plugin *desc);

/* The instance's Modbus register map (fg_plugin.modbus_map, asked once
 * right after init), or NULL for plugins without one.  Not validated here:
 * see fg_modbus_map_check() (modbus_map.h).  Valid while si lives. */
const struct fg_modbus_map *fg_source_inst_modbus_map(fg_source_inst *si);

void fg_source_inst_set_persist(fg_source_inst *si, fg_state_persist_cb cb, void *data);
/* Preload one state entry (startup, from the store); not written through.
 * -E2BIG past the 1024-byte limits. */
int fg_source_inst_state_load(fg_source_inst *si, const char *device, const char *key,
                              const char *value);
/* Pin the clock plugins see (0 = real time); used by `firegridctl decode --now`. */
void fg_source_inst_set_now(fg_source_inst *si, int64_t now_ms);

/*
 * Run one message through the plugin.  Validated events go to cb (with the
 * instance's source/plugin names attached).  Returns the number of events
 * emitted (>= 0), or a negative errno when the plugin rejected the message;
 * then *reason (if not NULL) points at the plugin's explanation, valid until
 * the next decode on this instance.  Emits rejected by validation are counted
 * in *ret_rejected (may be NULL) and do not fail the message.  At most
 * FG_MAX_EVENTS_PER_MSG events are accepted per message.
 */
#define FG_MAX_EVENTS_PER_MSG 4096
int fg_source_inst_decode(fg_source_inst *si, const struct fg_msg *msg,
                          fg_emit_cb cb, void *data,
                          const char **reason, unsigned *ret_rejected);

/*
 * Wake-ups (fg_host.wake_at).  The earliest pending wake-up time of the
 * instance, INT64_MAX when none; and running every wake-up due at or before
 * until_ms, in time order, each as a decode() of a FG_TRANSPORT_WAKE
 * message whose topic is the device.  With pin_clock the plugin's clock
 * (now_ms, recv_time_ms) reads each wake-up's own due time (the decode
 * tool replaying time), else real time (the daemon); the pinned clock of
 * fg_source_inst_set_now is restored afterwards.  done (may be NULL) is
 * told the outcome of each, like fg_source_inst_decode's.  Wake-ups
 * requested again for a time <= until_ms during the run wait for the next
 * call.  Returns how many ran, or -ENOMEM.  Loaded state entries of key
 * FG_STATE_KEY_WAKE become wake-ups (fg_source_inst_state_load).
 */
typedef void (*fg_wake_done_cb)(void *data, const char *device, int result,
                                const char *reason, unsigned rejected);
int64_t fg_source_inst_next_wake(const fg_source_inst *si);
int fg_source_inst_run_wakes(fg_source_inst *si, int64_t until_ms, bool pin_clock,
                             fg_emit_cb cb, fg_wake_done_cb done, void *data);

/* JSON-lines form of an event as printed by `firegridctl decode`:
 * {"device":..,"kind":..,"severity":..,["value":..,"unit":..],
 *  ["clears":..],["device_time":..],["attrs":{..}]} — malloc'd, no newline;
 * NULL on OOM.  "clears" appears for kind clear when it names one kind
 * (absent = every active condition); "device_time" is ISO-8601 UTC; integral
 * values print as integers. */
char *fg_ev_to_json_line(const struct fg_ev *ev);

#endif
