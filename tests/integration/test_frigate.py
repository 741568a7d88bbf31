#!/usr/bin/env python3
"""
Frigate fire-lane sequences over a real mosquitto into firegridd (dwell 4 s,
[escalation] fire_lane_hold 0 so a blocked lane is reported at once):

  - a van that stops in the lane for about a second and drives on: no incident;
  - a car that parks past the dwell, with Frigate's periodic updates and a
    duplicate of one: exactly one incident (one `opened` webhook), whose
    attrs carry the vehicle count and the dwell;
  - that car leaving: the incident's `cleared` webhook (verified);
  - a Frigate 0.12 payload on a second camera: blocked by the dwell wake-up
    alone (no message arrives after it entered), then its tracking ends while
    it is still in the lane: cleared, unverified.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from cameras import attrs as attrs_of, changes, start_without_hold, webhooks  # noqa: E402

DWELL_S = 4


def tracked(oid, camera, start, frame, zones, legacy=False, end=None, label='car'):
    o = {'id': oid, 'camera': camera, 'frame_time': frame, 'label': label, 'sub_label': None,
         'top_score': 0.8, 'false_positive': False, 'start_time': start, 'end_time': end,
         'score': 0.79, 'box': [300, 340, 780, 600], 'area': 124800, 'ratio': 1.8,
         'region': [240, 200, 960, 920], 'stationary': bool(zones), 'motionless_count': 0,
         'position_changes': 1, 'current_zones': zones, 'entered_zones': ['fire_lane'],
         'has_clip': True, 'has_snapshot': True, 'attributes': {}, 'current_attributes': []}
    if legacy:
        o['snapshot_time'] = start
    else:
        o.update({'snapshot': None, 'active': not zones, 'pending_loitering': False,
                  'max_severity': 'alert', 'path_data': [], 'recognized_license_plate': None})
    return o


class Frigate:
    """Publishes frigate/events like Frigate does: before = previous after."""

    def __init__(self, env, port):
        self.env, self.port, self.last, self.n = env, port, {}, 0

    def send(self, typ, oid, camera, zones, legacy=False, end=False, times=1):
        now = time.time()
        start = self.last[oid]['start_time'] if oid in self.last else now
        after = tracked(oid, camera, start, now, zones, legacy, end=now if end else None)
        before = self.last.get(oid) or dict(after, false_positive=True, current_zones=[])
        self.last[oid] = after
        self.n += 1
        path = self.env.write('frigate-%03d.json' % self.n,
                              json.dumps({'before': before, 'after': after, 'type': typ}))
        args = ['--qos', 1, '--topic', 'frigate/events'] + ['--file', path] * times
        summary = self.env.fg_pub(self.port, *args)
        h.check(summary.get('acked') == times, 'fg-pub: %r' % summary)


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)],
                   [('frigate', {'plugin': 'frigate', 'topics': 'frigate/#',
                                 'dwell': '%ds' % DWELL_S, 'stale_after': '1m'})], start=False)
    start_without_hold(d)
    d.wait_log('mqtt: subscribed')
    fr = Frigate(env, broker.port)
    lane1, lane2 = 'cam1/fire_lane', 'cam2/fire_lane'

    # A van stops for about a second and drives on.
    fr.send('new', 'van', 'cam1', [])
    fr.send('update', 'van', 'cam1', ['fire_lane'])
    time.sleep(1)
    fr.send('update', 'van', 'cam1', [])
    fr.send('end', 'van', 'cam1', [], end=True)
    time.sleep(DWELL_S + 3)
    h.check(not d.incidents(), 'a brief stop made an incident: %r' % d.incidents())
    h.check(not webhooks(rx, lane1), 'a brief stop sent a webhook')

    # A car parks: periodic updates (one of them twice) while it stays.
    fr.send('new', 'car', 'cam1', [])
    fr.send('update', 'car', 'cam1', ['fire_lane'])
    for i in range(4):
        time.sleep(1.5)
        fr.send('update', 'car', 'cam1', ['fire_lane'], times=2 if i == 1 else 1)
    h.wait_until(lambda: webhooks(rx, lane1), 30, 'the blocked lane webhook')
    for i in range(3):                 # more periodic updates: nothing new
        time.sleep(1)
        fr.send('update', 'car', 'cam1', ['fire_lane'])
    incs = d.incidents()
    h.check(len(incs) == 1 and incs[0].get('kind') == 'fire_lane_blocked',
            'expected one fire_lane_blocked incident, got %r' % incs)
    h.check(lane1 in h.incident_device(incs[0]), 'incident device %r' % incs[0].get('device'))
    h.check(changes(webhooks(rx, lane1)) == ['opened'],
            'expected one opened webhook, got %s' % changes(webhooks(rx, lane1)))
    attrs = attrs_of(webhooks(rx, lane1)[0])
    h.check(attrs.get('vehicles') == 1 and attrs.get('dwell_s', -1) >= DWELL_S - 1 and
            attrs.get('object_id') == 'car', 'blocked attrs: %r' % attrs)

    # It leaves.
    fr.send('update', 'car', 'cam1', [])
    h.wait_until(lambda: changes(webhooks(rx, lane1)) == ['opened', 'cleared'], 30,
                 'the cleared webhook')
    attrs = attrs_of(webhooks(rx, lane1)[1])
    h.check(attrs.get('verified') is True and attrs.get('reason') == 'left_zone',
            'cleared attrs: %r' % attrs)

    # Frigate 0.12 payload: only the wake-up can report it.
    fr.send('new', 'old', 'cam2', [], legacy=True)
    fr.send('update', 'old', 'cam2', ['fire_lane'], legacy=True)
    h.wait_until(lambda: webhooks(rx, lane2), DWELL_S + 30, 'the 0.12 lane webhook')
    fr.send('end', 'old', 'cam2', ['fire_lane'], legacy=True, end=True)
    h.wait_until(lambda: changes(webhooks(rx, lane2)) == ['opened', 'cleared'], 30,
                 'the 0.12 lane cleared webhook')
    attrs = attrs_of(webhooks(rx, lane2)[1])
    h.check(attrs.get('verified') is False and attrs.get('reason') == 'tracking_ended',
            'tracking-ended attrs: %r' % attrs)

    incs = d.incidents()
    h.check(sorted(h.incident_device(i) for i in incs) == [lane1, lane2]
            or len(incs) == 2, 'expected two lane incidents, got %r' % incs)
    h.check(all(r.get('signature_ok') is True for r in rx.records()), 'bad signature')
    h.check(d.metric('firegrid_decode_errors_total', 'source', 'frigate') == 0,
            'decode errors counted')
    h.check(d.stop() == 0, 'firegridd did not exit cleanly:\n' + h.tail(d.log_text()))


if __name__ == '__main__':
    h.run('frigate', body)
