#!/usr/bin/env python3
"""
Escalation and the double knock with small configured timers on the real
firegridd: a smoke alarm goes out at once unconfirmed, is confirmed when it
persists, climbs the grid tiers while nobody dispatches (firegridd is
stopped while two tier deadlines pass and catches up as soon as it is back),
a dispatch stops the climb and a return resumes it; a blocked fire lane is
held back, and reported only if still blocked at the end of the hold.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import ops_center as oc  # noqa: E402

ESC = {'fire': '3s 6s 9s', 'fire_lane': '20s', 'fire_lane_hold': '3s'}


def opened(center, device):
    return center.wait_incident(lambda e: e['type'].endswith('.opened') and
                                e['data']['device']['id'].endswith(device), 30,
                                'opened for %s' % device)


def body(env):
    broker = env.broker()
    center = oc.OpsCenter(env, 0)
    d = oc.start_daemon(env, broker, center,
                        sections=[('incidents', {'confirm_persist': '1s'}), ('escalation', ESC)])
    center.api_port = d.api_port

    # --- climb while nobody dispatches, across a restart ---------------------
    t0 = time.time()
    oc.publish(env, broker, 'dev-a', 'smoke')
    ev = opened(center, 'dev-a')
    iid = ev['data']['incident']['id']
    first = ev['data']['incident']
    h.check(first['confirmed'] is False and first['escalation']['level'] == 0 and
            first['escalation']['next_at'], 'the first revision: %s' % first)
    ev = center.wait_type(iid, 'confirmed', 15)
    h.check(ev['data']['incident']['confirmed'] is True, 'confirmed: %s' % ev)
    ev = center.wait_type(iid, 'escalated', 15)
    esc = ev['data']['incident']['escalation']
    h.check(esc['level'] == 1 and esc['tier'] == 'medium_grid' and
            ev['data']['incident']['overdue'] is True, 'level 1: %s' % ev['data']['incident'])
    h.check(time.time() - t0 >= 2.5, 'level 1 came before its 3 s')
    h.check(d.stop() == 0, 'firegridd did not stop cleanly')
    while time.time() < t0 + 10:          # levels 2 (6 s) and 3 (9 s) pass while down
        time.sleep(0.2)
    d.start()
    ev = center.wait_type(iid, 'escalated', 30, count=3)
    esc = ev['data']['incident']['escalation']
    h.check(esc['level'] == 3 and esc['tier'] == 'fire_brigade' and esc['next_at'] is None,
            'level 3 after the restart: %s' % esc)
    revs = sorted(e['data']['incident']['revision'] for e in center.events
                  if e['data']['incident']['id'] == iid)
    h.check(revs == list(range(1, len(revs) + 1)), 'revisions not contiguous: %s' % revs)
    h.check(center.types(iid) == ['opened', 'confirmed', 'escalated', 'escalated', 'escalated'],
            'webhooks: %s' % center.types(iid))
    hist = center.incident(iid)['history']
    notes = [x['note'] for x in hist if x['channel'] == 'timer']
    h.check(notes[-1] == 'level 3 (fire_brigade): not dispatched within 9s', 'notes: %s' % notes)

    # --- dispatch stops it, return resumes it -------------------------------------
    oc.publish(env, broker, 'dev-b', 'heat', manual=True)
    ev = opened(center, 'dev-b')
    bid = ev['data']['incident']['id']
    h.check(ev['data']['incident']['confirmed'] is True, 'a manual trigger is confirmed at once')
    st, doc = center.act(bid, 'dispatch', unit='micro-station-2')
    h.check(st == 200 and doc['incident']['escalation']['next_at'] is None, 'dispatch: %s' % doc)
    time.sleep(4)
    h.check('escalated' not in center.types(bid), 'escalated after a dispatch: %s'
            % center.types(bid))
    t_ret = time.time()
    st, doc = center.act(bid, 'return', note='needs the street office')
    h.check(st == 200 and doc['incident']['escalation']['next_at'], 'return: %s' % doc)
    ev = center.wait_type(bid, 'escalated', 15)
    h.check(ev['data']['incident']['escalation']['level'] == 1 and time.time() - t_ret >= 2.5,
            'resumed escalation: %s' % ev['data']['incident']['escalation'])

    # --- a fire lane is held back -------------------------------------------------
    oc.publish(env, broker, 'cam-1', 'fire_lane_blocked')
    oc.publish(env, broker, 'cam-2', 'fire_lane_blocked')
    time.sleep(1)
    oc.publish(env, broker, 'cam-1', 'fire_lane_cleared')
    ev = opened(center, 'cam-2')
    lane = ev['data']['incident']
    h.check(lane['revision'] == 1 and lane['deadline'] and lane['escalation']['next_at'],
            'held fire lane report: %s' % lane)
    time.sleep(1)
    h.check(not any(e['data']['device']['id'].endswith('cam-1') for e in center.events),
            'a fire lane cleared within the hold was reported')
    st, doc = center.request('GET', '/v1/incidents?kind=fire_lane_blocked')
    states = sorted(i['state'] for i in doc['incidents'])
    h.check(states == ['closed', 'reported'], 'fire lane incidents: %s' % states)

    h.check(center.bad_signatures == 0, 'bad signatures')
    h.check(d.stop() == 0, 'firegridd exit code')
    center.close()


if __name__ == '__main__':
    h.run('escalation', body)
