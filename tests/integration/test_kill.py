#!/usr/bin/env python3
"""
Kill test: QoS 1 alarms from 2,000 distinct devices (each sent twice) while
firegridd is SIGKILLed and restarted at random moments.  Afterwards every
device has exactly one incident, every incident's `opened` webhook reached
the receiver at least once with a valid signature, and any delivery that was
repeated carries the same webhook-id and the identical body.

What makes this hold is ack-after-commit: a message whose PUBACK the broker
saw is already in SQLite, and one whose PUBACK it did not see is redelivered
from firegridd's persistent session and deduplicated.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEVICES = int(os.environ.get('FG_KILL_DEVICES', 2000))
REPEATS = 2
RATE = 500          # msg/s: the stream lasts ~8 s, long enough for the kills
KILLS = 6


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx, max_connections=8)], h.generic_sources(),
                   durability='full')

    pub = env.fg_pub_async(broker.port, '--devices', DEVICES, '--repeats', REPEATS,
                           '--rate', RATE, '--qos', 1, '--topic-prefix', 'firegrid/',
                           '--payload-template', 'generic')
    stream_s = DEVICES * REPEATS / RATE
    # Kill moments spread over the stream (and a little after it, while the
    # backlog drains), each at a random point of its slot.
    slot = (stream_s + 2.0) / KILLS
    t0 = time.monotonic()
    kills = 0
    for k in range(KILLS):
        at = t0 + slot * k + env.random.uniform(0.2, slot * 0.9)
        time.sleep(max(0.0, at - time.monotonic()))
        h.check(d.alive(), 'firegridd died by itself:\n' + h.tail(d.log_text()))
        d.kill()
        kills += 1
        h.log('kill %d at %.2f s' % (kills, time.monotonic() - t0))
        time.sleep(env.random.uniform(0.0, 0.5))
        d.start(timeout=60)

    summary = env.fg_pub_result(pub)
    h.log('fg-pub: %s' % summary)
    h.check(summary['acked'] == DEVICES * REPEATS, 'not every alarm was acknowledged: %r' % summary)
    h.check(kills >= 5, 'only %d kills' % kills)

    def all_incidents():
        inc = d.incidents()
        return inc if len(inc) >= DEVICES else None
    h.wait_until(all_incidents, 180, '%d incidents' % DEVICES, interval=0.5)

    def all_opened():
        opened = {str(r.get('incident_id')) for r in rx.records()
                  if str(r.get('type', '')).endswith('.opened')}
        return opened if len(opened) >= DEVICES else None
    h.wait_until(all_opened, 180, '%d opened webhooks' % DEVICES, interval=0.5)
    h.wait_until(lambda: len(d.outbox()) == 0, 60, 'an empty outbox', interval=0.5)

    incidents = d.incidents()
    by_device = {}
    for inc in incidents:
        by_device.setdefault(h.incident_device(inc), []).append(inc)
    expected = {'dev-%05d' % i for i in range(DEVICES)}
    found = {}
    for dev, incs in by_device.items():
        name = next((e for e in (dev, dev.split(':')[-1], dev.split('/')[-1]) if e in expected),
                    None)
        h.check(name is not None, 'incident for an unexpected device %r' % dev)
        h.check(name not in found, 'device %s has incidents under two ids' % name)
        found[name] = incs
    missing = expected - set(found)
    h.check(not missing, '%d devices have no incident, e.g. %s' % (len(missing), sorted(missing)[:5]))
    dup = {k: v for k, v in found.items() if len(v) != 1}
    h.check(not dup, '%d devices have more than one incident, e.g. %s'
            % (len(dup), list(dup.items())[:2]))
    h.check(all(i.get('kind') == 'smoke' for i in incidents), 'non-smoke incidents')

    records = rx.records()
    bad_sig = [r for r in records if r.get('signature_ok') is not True]
    h.check(not bad_sig, '%d webhooks with a bad signature, e.g. %r' % (len(bad_sig), bad_sig[:1]))
    ids = {str(i['id']) for i in incidents}
    opened = {}
    for r in records:
        if str(r.get('type', '')).endswith('.opened'):
            opened.setdefault(str(r.get('incident_id')), []).append(r)
    h.check(ids <= set(opened), 'incidents without an opened webhook: %s'
            % sorted(ids - set(opened))[:5])
    # Redeliveries of one revision are byte-identical under one webhook-id.
    per_rev = {}
    for r in records:
        per_rev.setdefault((str(r.get('incident_id')), r.get('revision'), r.get('type')),
                           []).append(r)
    repeated = 0
    for key, rs in per_rev.items():
        wids = {r.get('webhook_id') for r in rs}
        h.check(len(wids) == 1, 'revision %s delivered under several webhook-ids: %s' % (key, wids))
        bodies = {r.get('body') if isinstance(r.get('body'), str) else
                  json.dumps(r.get('body'), sort_keys=True) for r in rs}
        h.check(len(bodies) == 1, 'revision %s delivered with different bodies' % (key,))
        repeated += len(rs) > 1
    per_id = {}
    for r in records:
        per_id.setdefault(r.get('webhook_id'), set()).add(
            (str(r.get('incident_id')), r.get('revision')))
    h.check(all(len(v) == 1 for v in per_id.values()), 'one webhook-id used for two revisions')
    h.check(not d.dead_letters(), 'dead letters: %r' % d.dead_letters()[:3])
    h.log('%d incidents, %d webhook deliveries, %d revisions delivered more than once'
          % (len(incidents), len(records), repeated))
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s on SIGTERM' % rc)


if __name__ == '__main__':
    h.run('kill', body)
