#!/usr/bin/env python3
"""
The operations-center loop end to end, with firegridd restarted between
every step: a smoke alarm is reported (the center's case number from its
intake reply comes back in later revisions), accepted, dispatched, returned,
re-dispatched, put in progress, resolved and closed; illegal moves get 409
with the current state; a replayed action id gets the stored answer; a
re-alarm within the reopen window reopens the same incident; device health
resolves itself and still needs the center's close; a deadline that passes
while firegridd is down makes the incident overdue as soon as it is back.
"""
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import ops_center as oc  # noqa: E402


def restart(d):
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s on SIGTERM' % rc)
    d.start()
    h.wait_until(lambda: h.port_open(d.api_port), 15, 'the API after a restart')


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


def expect(result, status, what):
    st, doc = result
    h.check(st == status, '%s: expected %d, got %s %s' % (what, status, st, doc))
    return doc


def accept_device_health(center, ce):
    """The center's side of the loop: device-health incidents are accepted
    as soon as they arrive (a callback made from the webhook handler)."""
    inc = ce['data']['incident']
    if ce['type'].endswith('.opened') and inc['kind'] == 'battery_low':
        center.act(inc['id'], 'accept', actor='intake-robot', note='auto-accepted')


def body(env):
    broker = env.broker()
    center = oc.OpsCenter(env, 0, policy=accept_device_health)
    d = oc.start_daemon(env, broker, center)
    center.api_port = d.api_port

    # --- report: the intake's case number is kept --------------------------------
    oc.publish(env, broker, 'dev-a', 'smoke')
    ev = center.wait_incident(lambda e: e['type'].endswith('.opened'), 30, 'the opened webhook')
    iid = ev['data']['incident']['id']
    h.wait_until(lambda: center.incident(iid)['incident']['state'] == 'reported', 30,
                 'state reported after the 2xx')
    inc = center.incident(iid)['incident']
    h.check(inc['case_no'] and inc['case_no'].startswith('CASE-%d-' % iid),
            'case_no from the intake reply not kept: %s' % inc)
    case_no = inc['case_no']
    restart(d)

    # --- accept, dispatch (field checks first) ------------------------------------
    doc = expect(center.act(iid, 'accept', note='taken'), 200, 'accept')
    h.check(doc['transition']['from'] == 'reported' and doc['transition']['to'] == 'reported',
            'accept transition: %s' % doc['transition'])
    ev = center.wait_type(iid, 'accepted')
    h.check(ev['data']['incident']['case_no'] == case_no, 'case_no missing in a later revision')
    restart(d)
    doc = expect(center.act(iid, 'dispatch'), 400, 'dispatch without unit')
    h.check(doc.get('field') == 'unit', 'dispatch without unit names %s' % doc)
    doc = expect(center.act(iid, 'dispatch', unit='micro-station-3'), 200, 'dispatch')
    h.check(doc['incident']['state'] == 'dispatched' and
            doc['incident']['dispatched_unit'] == 'micro-station-3', 'dispatched: %s' % doc)
    center.wait_type(iid, 'dispatched')
    restart(d)

    # --- return and re-dispatch ---------------------------------------------------
    expect(center.act(iid, 'return', note='wrong street office'), 200, 'return')
    center.wait_type(iid, 'returned')
    restart(d)
    doc = expect(center.act(iid, 'progress'), 409, 'progress while returned')
    h.check(doc.get('state') == 'returned', '409 without the current state: %s' % doc)
    expect(center.act(iid, 'dispatch', unit='fire-brigade-12'), 200, 're-dispatch')
    center.wait_type(iid, 'dispatched', count=2)
    restart(d)

    # --- progress, resolve, close ----------------------------------------------------
    expect(center.act(iid, 'progress', note='on scene'), 200, 'progress')
    restart(d)
    expect(center.act(iid, 'resolve', note='kitchen fire out'), 200, 'resolve')
    restart(d)
    doc = expect(center.act(iid, 'close'), 400, 'close without disposition')
    h.check(doc.get('field') == 'disposition', 'close without disposition: %s' % doc)
    doc = expect(center.act(iid, 'close', disposition='lava'), 400, 'bad disposition')
    h.check(doc.get('field') == 'disposition', 'bad disposition: %s' % doc)
    close_id = 'close-%d' % iid
    closed = expect(center.act(iid, 'close', disposition='real_fire', action_id=close_id,
                               actor='dispatcher-7'), 200, 'close')
    h.check(closed['incident']['state'] == 'closed' and
            closed['incident']['disposition'] == 'real_fire', 'closed: %s' % closed)
    center.wait_type(iid, 'closed')
    restart(d)

    # --- replays and illegal moves ------------------------------------------------
    st, again = center.act(iid, 'close', disposition='real_fire', action_id=close_id,
                           actor='dispatcher-7')
    h.check(st == 200 and again == closed, 'replayed close: %s %s' % (st, again))
    doc = expect(center.act(iid, 'close', disposition='test', action_id=close_id), 409,
                 'action id reused for another request')
    h.check(doc.get('field') == 'action_id', 'reused action id: %s' % doc)
    doc = expect(center.act(iid, 'progress'), 409, 'progress on a closed incident')
    h.check(doc.get('state') == 'closed', 'closed 409: %s' % doc)
    doc = expect(center.act(iid, 'close', disposition='handled'), 409, 'close twice')
    h.check(center.types(iid).count('closed') == 1, 'the replay sent another webhook')

    hist = center.incident(iid)['history']
    moves = [(x['from'], x['to']) for x in hist if x['channel'].startswith('api:')]
    want = [('reported', 'reported'), ('reported', 'dispatched'), ('dispatched', 'returned'),
            ('returned', 'dispatched'), ('dispatched', 'in_progress'),
            ('in_progress', 'resolved'), ('resolved', 'closed')]
    h.check(moves == want, 'history %s, expected %s' % (moves, want))
    h.check(all(x['actor'] for x in hist) and
            any(x['note'] == 'wrong street office' for x in hist), 'history: %s' % hist)
    h.check(any(x['channel'] == 'webhook' and x['to'] == 'reported' for x in hist),
            'the 2xx report is not in the history: %s' % hist)

    # --- a re-alarm within the window reopens the same incident -------------------
    oc.publish(env, broker, 'dev-a', 'smoke')
    ev = center.wait_type(iid, 'reopened')
    h.check(ev['data']['incident']['state'] == 'reopened' and
            ev['data']['incident']['reopened'] == 1, 'reopened: %s' % ev['data']['incident'])
    st, doc = center.request('GET', '/v1/incidents?kind=smoke')
    h.check(len(doc['incidents']) == 1, 'a second smoke incident was opened: %s' % doc)
    expect(center.act(iid, 'close', disposition='false_alarm'), 200,
           'close a reopened false alarm straight away')
    restart(d)

    # --- device health: resolved by the device, closed by the center ---------------
    oc.publish(env, broker, 'dev-b', 'battery_low')
    ev = center.wait_incident(lambda e: e['type'].endswith('.opened') and
                              e['data']['device']['id'].endswith('dev-b'), 30, 'battery opened')
    bid = ev['data']['incident']['id']
    ev = center.wait_type(bid, 'accepted')
    h.check(ev['data']['incident']['state'] == 'reported', 'auto-accept: %s' % ev)
    oc.publish(env, broker, 'dev-b', 'clear', clears='battery_low')
    ev = center.wait_type(bid, 'cleared')
    h.check(ev['data']['incident']['state'] == 'resolved', 'battery not resolved: %s' % ev)
    expect(center.act(bid, 'close', disposition='handled'), 200, 'close the battery incident')

    # --- a deadline passes while firegridd is down ---------------------------------
    oc.publish(env, broker, 'dev-c', 'heat')
    ev = center.wait_incident(lambda e: e['type'].endswith('.opened') and
                              e['data']['device']['id'].endswith('dev-c'), 30, 'heat opened')
    cid = ev['data']['incident']['id']
    deadline = time.time() + 4
    expect(center.act(cid, 'dispatch', unit='micro-station-1', deadline=iso(deadline)), 200,
           'dispatch with a deadline')
    doc = expect(center.act(cid, 'progress', deadline=iso(time.time() - 60)), 400, 'past deadline')
    h.check(doc.get('field') == 'deadline', 'past deadline: %s' % doc)
    h.check(d.stop() == 0, 'firegridd did not stop cleanly')
    while time.time() < deadline + 1:
        time.sleep(0.2)
    d.start()
    ev = center.wait_type(cid, 'overdue', 30)
    h.check(ev['data']['incident']['overdue'] is True and
            ev['data']['incident']['state'] == 'dispatched', 'overdue: %s' % ev['data']['incident'])

    h.check(center.bad_signatures == 0, '%d webhooks with a bad signature' % center.bad_signatures)
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s' % rc)
    center.close()


if __name__ == '__main__':
    h.run('lifecycle', body)
