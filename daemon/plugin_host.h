/*
 * The plugin host: finds plugins (built in, or shared modules in the plugin
 * directory), checks their ABI, turns [source NAME] config sections into
 * plugin instances, and runs messages through them.
 *
 * Loading a module: dlopen("<plugin_dir>/<name>.so"), dlsym(FG_PLUGIN_SYMBOL),
 * then refuse unless desc->abi_major == FG_PLUGIN_ABI_MAJOR and
 * desc->struct_size >= the v1 size and desc->name == <name>; the refusal
 * message says which and what was expected.  Built-ins (statically linked
 * plugins, see builtin list in meson) are found first unless the host was
 * created with prefer_modules.
 *
 * Plugin state (fg_host.state_get/set) lives in an in-memory table per
 * instance; when a persist callback is set (the daemon), every state_set is
 * also written through to the store inside the current transaction.
 *
 * Thread: loop thread only.
 */
#ifndef FG_PLUGIN_HOST_H
#define FG_PLUGIN_HOST_H

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

/* Find (and load if needed) a plugin by name.  On failure returns -errno and
 * writes a clear reason into err ("plugin 'x': ABI major 2, this firegridd
 * speaks 1"). */
int fg_plugin_host_find(fg_plugin_host *host, const char *name,
                        const struct fg_plugin **ret, char *err, size_t errlen);

/* Every plugin known: built-ins plus *.so in the plugin dir (loaded). */
int fg_plugin_host_list(fg_plugin_host *host, const struct fg_plugin ***ret, size_t *ret_n);

/* Called for every event a plugin emits that passed validation. */
typedef void (*fg_emit_cb)(void *data, const struct fg_ev *ev);
/* Write-through for plugin state (value NULL = delete). */
typedef void (*fg_state_persist_cb)(void *data, const char *source, const char *device,
                                    const char *key, const char *value);

/*
 * Create an instance from a [source] section: finds the plugin, validates
 * src->opts against its option table (errors name conf_path:line and key,
 * all of them, newline-separated into *ret_errors), applies defaults, calls
 * init().  The instance keeps pointers into src: src must outlive it.
 */
int fg_source_inst_new(fg_plugin_host *host, const char *conf_path,
                       const struct fg_conf_source *src,
                       fg_source_inst **ret, char **ret_errors);
void fg_source_inst_free(fg_source_inst *si);     /* calls fini; NULL-safe */

const struct fg_conf_source *fg_source_inst_conf(fg_source_inst *si);
const struct fg_plugin *fg_source_inst_plugin(fg_source_inst *si);

void fg_source_inst_set_persist(fg_source_inst *si, fg_state_persist_cb cb, void *data);
/* Preload one state entry (startup, from the store). */
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
 * in *ret_rejected (may be NULL) and do not fail the message.
 */
int fg_source_inst_decode(fg_source_inst *si, const struct fg_msg *msg,
                          fg_emit_cb cb, void *data,
                          const char **reason, unsigned *ret_rejected);

/* JSON-lines form of an event as printed by `firegridctl decode`:
 * {"device":..,"kind":..,"severity":..,["value":..,"unit":..],
 *  ["clears":..],["device_time":..],["attrs":{..}]} — malloc'd. */
char *fg_ev_to_json_line(const struct fg_ev *ev);

#endif
