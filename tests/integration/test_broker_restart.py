#!/usr/bin/env python3
"""
Broker restart: mosquitto is stopped and started again (same port, its
persistence on) in the middle of a QoS 1 stream.  firegridd must reconnect,
resubscribe (persistent session: what was queued for it survives) and lose
nothing: every device ends up with exactly one incident.

Both the publisher and firegridd lose their connection; fg-pub re-sends
what the broker had not acknowledged, firegridd gets what the broker had
queued for its session from the broker's persistence file.

The broker is stopped with SIGTERM, as systemd stops it: mosquitto writes
its persistence file at shutdown and every autosave_interval, so a SIGKILL
would lose what it queued since the last save - a limit of the broker that
no subscriber can make up for.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEVICES = 1500
RATE = 300


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)], h.generic_sources())

    pub = env.fg_pub_async(broker.port, '--devices', DEVICES, '--rate', RATE, '--qos', 1,
                           '--topic-prefix', 'firegrid/', '--reconnect-timeout', 60)
    stream_s = DEVICES / RATE
    for n in range(2):
        # Twice: once while firegridd is busy ingesting, once in a quieter moment.
        time.sleep(env.random.uniform(0.15, 0.35) * stream_s)
        h.log('stopping mosquitto')
        broker.stop()
        h.check(d.alive(), 'firegridd died when the broker went away')
        time.sleep(env.random.uniform(0.5, 2.0))
        broker.start()
        h.log('mosquitto back on port %d' % broker.port)
        d.wait_log('mqtt: subscribed', 30, count=n + 2)

    summary = env.fg_pub_result(pub)
    h.log('fg-pub: %s' % summary)

    def complete():
        inc = d.incidents()
        return inc if len(inc) >= DEVICES else None
    h.wait_until(complete, 120, '%d incidents' % DEVICES, interval=0.5)
    # A little longer: nothing more may appear (no duplicates).
    time.sleep(1.0)
    incidents = d.incidents()
    devices = [h.incident_device(i).split(':')[-1] for i in incidents]
    h.check(len(devices) == len(set(devices)), 'duplicate incidents for a device')
    h.check(set(devices) == {'dev-%05d' % i for i in range(DEVICES)},
            'incidents do not match the published devices')

    def opened_all():
        ids = {r.get('incident_id') for r in rx.records()
               if str(r.get('type', '')).endswith('.opened')}
        return len(ids) >= DEVICES
    h.wait_until(opened_all, 120, 'every opened webhook', interval=0.5)
    h.check(d.metric('firegrid_mqtt_connects_total') >= 3 or
            d.log_text().count('mqtt: subscribed') >= 3, 'firegridd did not reconnect twice')
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s on SIGTERM' % rc)


if __name__ == '__main__':
    h.run('broker_restart', body)
