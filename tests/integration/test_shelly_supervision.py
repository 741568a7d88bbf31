#!/usr/bin/env python3
"""
Deep-sleeping Shellys are supervised by their wake-ups (fg_host.wake_at
through the daemon): a Gen1 Shelly Smoke reports over a real mosquitto and
then stays silent longer than wakeup_period + wakeup_grace (3 s + 1 s here):
an offline incident opens; its next message clears it.  Its Last Will
`false` alone never opened one.

Time the gateway itself was down counts for no one: a second sleeper falls
due while firegridd is stopped (a wake-up more than 10 s late); after the restart it gets a full period
again instead of an instant offline, and only then goes offline.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FIRST = 'shellysmoke-68C63A'
SECOND = 'shellysmoke-71B04E'


def offline(d, device):
    return [i for i in d.incidents() if i.get('kind') == 'offline' and
            device in h.incident_device(i)]


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)],
                   [('shelly', {'plugin': 'shelly', 'topics': 'shellies/#',
                                'wakeup_period': '3s', 'wakeup_grace': '1s'})])
    battery = env.write('battery.txt', '80')
    asleep = env.write('online_false.txt', 'false')
    env.fg_pub(broker.port, '--topic', 'shellies/%s/sensor/battery' % FIRST, '--file', battery,
               '--topic', 'shellies/%s/online' % FIRST, '--file', asleep)
    found = h.wait_until(lambda: offline(d, FIRST), 60, 'the missed wake-up as an offline')
    h.check(len(found) == 1 and found[0].get('severity') == 'warning', 'offline: %s' % found)
    h.check(not found[0].get('cleared_at'), 'cleared too early: %s' % found)
    env.fg_pub(broker.port, '--topic', 'shellies/%s/sensor/battery' % FIRST, '--file', battery)
    h.wait_until(lambda: [i for i in offline(d, FIRST) if i.get('cleared_at')], 30,
                 'the next wake-up to clear the offline')
    h.check(len(offline(d, FIRST)) == 1, 'a second offline: %s' % offline(d, FIRST))

    # The second sleeper falls due (4 s) while firegridd is down (18 s); its
    # PUBACK came after the commit, so it is stored when fg-pub returns.
    env.fg_pub(broker.port, '--topic', 'shellies/%s/sensor/battery' % SECOND, '--file', battery)
    h.check(d.stop() == 0, 'firegridd did not stop cleanly')
    time.sleep(18)
    restarted = time.monotonic()
    d.start()
    time.sleep(2)
    h.check(not offline(d, SECOND), 'offline for the time the gateway was down: %s'
            % offline(d, SECOND))
    h.wait_until(lambda: offline(d, SECOND), 60, 'the offline a full period after the restart')
    h.check(time.monotonic() - restarted >= 3.5,
            'the offline came %.1f s after the restart' % (time.monotonic() - restarted))
    h.check(d.stop() == 0, 'firegridd did not stop cleanly')


if __name__ == '__main__':
    h.run('shelly_supervision', body)
