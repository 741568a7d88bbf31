#!/usr/bin/env python3
"""
A deep-sleeping Shelly that misses its wake-up goes offline, through the
daemon's plugin tick (fg_plugin.tick): a Gen1 Shelly Smoke reports over a
real mosquitto, then stays silent longer than wakeup_period + wakeup_grace
(3 s + 1 s here); an offline incident opens, and its next message clears it.
Its Last Will `false` alone never opened one.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEVICE = 'shellysmoke-68C63A'


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)],
                   [('shelly', {'plugin': 'shelly', 'topics': 'shellies/#',
                                'wakeup_period': '3s', 'wakeup_grace': '1s'})])
    battery = env.write('battery.txt', '80')
    asleep = env.write('online_false.txt', 'false')
    env.fg_pub(broker.port, '--topic', 'shellies/%s/sensor/battery' % DEVICE, '--file', battery,
               '--topic', 'shellies/%s/online' % DEVICE, '--file', asleep)

    def offline():
        return [i for i in d.incidents() if i.get('kind') == 'offline' and
                DEVICE in h.incident_device(i)]
    found = h.wait_until(offline, 60, 'the missed wake-up to become an offline incident')
    h.check(len(found) == 1 and found[0].get('severity') == 'warning', 'offline: %s' % found)
    h.check(not found[0].get('cleared_at'), 'cleared too early: %s' % found)
    h.log('offline after the missed wake-up: %s' % found[0])

    env.fg_pub(broker.port, '--topic', 'shellies/%s/sensor/battery' % DEVICE, '--file', battery)
    h.wait_until(lambda: [i for i in offline() if i.get('cleared_at')], 30,
                 'the next wake-up to clear the offline')
    h.check(len(offline()) == 1, 'a second offline incident: %s' % offline())
    h.check(d.stop() == 0, 'firegridd did not stop cleanly')


if __name__ == '__main__':
    h.run('shelly_supervision', body)
