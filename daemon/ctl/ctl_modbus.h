/*
 * firegridctl's Modbus parts: captured exchanges for `decode`, and the
 * `interlock` command.
 *
 * decode with a Modbus plugin: each FILE is either a captured exchange (the
 * corpus format: "exchanges" with hex response ADUs, see
 * fg_modbus_poll_from_capture) or a ready poll payload (a JSON object with
 * "status", as documented in firegrid/plugin.h).  A capture is checked
 * (CRC, MBAP, byte counts) and turned into exactly the payload the daemon
 * would build from that poll: the device's effective register map, the
 * reachability count carried from file to file.  The [modbus-device] keys
 * that shape it may be given as --option too: registers, scale and
 * word_order (lists, as in the config), offline_after, unit and role.
 */
#ifndef FG_CTL_MODBUS_H
#define FG_CTL_MODBUS_H

#include <stddef.h>
#include "conf.h"
#include "plugin_host.h"

struct ctl_modbus;

/* For a Modbus plugin, move the [modbus-device] keys out of opts (the array
 * is compacted, *n_opts shrinks) into a new *ret; other plugins get *ret =
 * NULL.  Returns 0, or 2 (usage) after printing why. */
int ctl_modbus_take_options(const struct fg_plugin *plugin, struct fg_conf_kv *opts,
                            size_t *n_opts, struct ctl_modbus **ret);
/* Compose the effective map of the instance and plan its requests.
 * Returns 0 or 1 after printing why. */
int ctl_modbus_start(struct ctl_modbus *m, fg_source_inst *si);
/* One file's text -> malloc'd payload and its topic.  -EINVAL with a
 * reason in err. */
int ctl_modbus_payload(struct ctl_modbus *m, const char *device, const char *text, size_t len,
                       char **ret, size_t *ret_len, char *topic, size_t topiclen,
                       char *err, size_t errlen);
void ctl_modbus_free(struct ctl_modbus *m);     /* NULL-safe */

#endif
