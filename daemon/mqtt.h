/*
 * MQTT ingest: libmosquitto driven by the libuv loop.
 *
 * uv_poll watches the client socket (write interest from
 * mosquitto_want_write), a uv_timer runs mosquitto_loop_misc (keepalive).
 * No libmosquitto thread.  The client is put in threaded mode
 * (mosquitto_threaded_set) only so that libmosquitto queues every outgoing
 * packet - in particular the PUBACK of each QoS 1 message - instead of
 * writing it from inside packet handling; we write the queue ourselves after
 * the store has committed the batch those messages belong to.
 * That is the ack-after-commit guarantee: a PUBACK the broker has seen is
 * for a message whose events are already durable.
 *
 * Persistent session (fixed client id, clean session off), QoS subscriptions
 * from the sources, resubscribe on every CONNACK, reconnect with capped
 * full-jitter backoff.  TLS and username/password as configured.
 */
#ifndef FG_MQTT_H
#define FG_MQTT_H

#include <stdbool.h>
#include <uv.h>
#include "conf.h"
#include "store.h"
#include "firegrid/plugin.h"

typedef struct fg_mqtt fg_mqtt;

/* Called for every message, inside the store transaction of its batch. */
typedef void (*fg_mqtt_msg_cb)(void *data, const struct fg_msg *msg);

int fg_mqtt_new(uv_loop_t *loop, const struct fg_conf *conf, fg_store *st,
                fg_mqtt_msg_cb cb, void *data, fg_mqtt **ret);
/* Start connecting (asynchronously). */
int fg_mqtt_start(fg_mqtt *m);
bool fg_mqtt_connected(fg_mqtt *m);
/* Disconnect cleanly (after committing and writing pending PUBACKs), close
 * handles, then done(data) from the last close callback. */
void fg_mqtt_close(fg_mqtt *m, void (*done)(void *data), void *data);

#endif
