#!/usr/bin/env python3
"""
Outage test: the operations center's receiver answers 503 for a while, then
hangs past the sink's timeout, then answers 200.  Every webhook must arrive,
each incident's revisions in order (a revision is never sent before the
previous one was accepted), and nothing may be dead-lettered.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEVICES = 30
CLEARED = 15          # devices whose alarm is cleared during the outage
TIMEOUT_MS = 1000     # sink timeout; the receiver hangs 3x that


def confirmed(r):
    """A delivery the daemon saw succeed: 2xx and answered within its timeout."""
    return 200 <= int(r.get('status', 0)) <= 299 and int(r.get('hung_ms', 0)) < TIMEOUT_MS


def body(env):
    broker = env.broker()
    rx = env.receiver()
    rx.control(status=503)
    d = env.daemon(broker, [h.sink(rx, timeout='%dms' % TIMEOUT_MS, retry_min='100ms',
                                   retry_max='1s', max_connections=4)],
                   h.generic_sources())

    # Phase 1: 503.  Alarms open incidents; half of them clear while the
    # receiver is still failing, so those incidents have two revisions queued.
    env.fg_pub(broker.port, '--devices', DEVICES, '--topic-prefix', 'firegrid/')
    h.wait_until(lambda: len(d.incidents()) >= DEVICES, 30, '%d incidents' % DEVICES)
    env.fg_pub(broker.port, '--devices', CLEARED, '--kind', 'clear', '--topic-prefix', 'firegrid/')
    h.wait_until(lambda: rx.stats()['by_status'].get('503', 0) >= 2 * DEVICES, 30,
                 'repeated 503 answers')

    # Phase 2: hang past the timeout (the daemon must give up and retry).
    rx.control(status=200, hang_ms=3 * TIMEOUT_MS)
    t_hang = time.time() * 1000
    h.wait_until(lambda: any(int(r.get('hung_ms', 0)) > 0 for r in rx.records()), 30,
                 'a hung request to finish')
    time.sleep(2 * TIMEOUT_MS / 1000)
    h.check(d.alive(), 'firegridd died during the outage:\n' + h.tail(d.log_text()))

    # Phase 3: healthy again.
    rx.control(status=200, hang_ms=0)
    t_ok = time.time() * 1000
    expected = DEVICES + CLEARED

    def all_delivered():
        ok = {(r.get('incident_id'), r.get('revision')) for r in rx.records() if confirmed(r)}
        return ok if len(ok) >= expected else None
    h.wait_until(all_delivered, 60, '%d accepted revisions' % expected, interval=0.2)
    h.wait_until(lambda: len(d.outbox()) == 0, 30, 'an empty outbox')

    records = rx.records()
    h.check(all(r.get('signature_ok') is True for r in records), 'a bad signature')
    h.check(any(r.get('status') == 503 for r in records), 'the 503 phase was not exercised')
    h.check(any(int(r.get('hung_ms', 0)) >= TIMEOUT_MS and r['received_at_ms'] >= t_hang - 50
                for r in records), 'the hang phase was not exercised')
    h.check(any(confirmed(r) and r['received_at_ms'] >= t_ok - 50 for r in records),
            'nothing delivered after recovery')

    incidents = {i['id']: i for i in d.incidents()}
    h.check(len(incidents) == DEVICES, '%d incidents, expected %d' % (len(incidents), DEVICES))
    per_incident = {}
    for r in records:
        per_incident.setdefault(r.get('incident_id'), []).append(r)
    n_cleared = 0
    for iid, inc in incidents.items():
        rs = sorted(per_incident.get(iid, []), key=lambda r: r['received_at_ms'])
        revs = sorted({int(r['revision']) for r in rs if confirmed(r)})
        want = list(range(1, int(inc['revision']) + 1))
        h.check(revs == want, 'incident %s: accepted revisions %s, expected %s'
                % (iid, revs, want))
        # Per-incident order: revision n+1 is never sent before revision n
        # was accepted.
        for r in rs:
            rev = int(r['revision'])
            if rev == 1:
                continue
            h.check(any(confirmed(p) and int(p['revision']) == rev - 1 and
                        p['received_at_ms'] <= r['received_at_ms'] for p in rs),
                    'incident %s: revision %d sent before revision %d was accepted'
                    % (iid, rev, rev - 1))
        types = [r['type'] for r in rs if confirmed(r)]
        h.check(types and types[0].endswith('.opened'), 'incident %s: first type %s' % (iid, types))
        n_cleared += any(t.endswith('.cleared') for t in types)
    h.check(n_cleared == CLEARED, '%d incidents cleared, expected %d' % (n_cleared, CLEARED))
    dl = d.dead_letters()
    h.check(not dl, 'dead letters: %r' % (dl[:3],))
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s on SIGTERM' % rc)


if __name__ == '__main__':
    h.run('outage', body)
