#!/usr/bin/env python3
"""
The local interlock against a real Modbus server (fg-modbus-sim):

  1. with the uplink down (the ops center answers 503), overtemp in the shed
     cuts the charging power: coils 0..3 of the relay board are written off
     and read back; the action is recorded as verified, in the incident's
     history and, once the uplink is back, in an "updated" webhook whose
     event carries the interlock record; the open relays the gateway
     commanded are not reported as relay faults;
  2. the power is never restored by itself, not even after the overtemp
     clears;
  3. `firegridctl interlock restore` (a command row the daemon picks up)
     writes the coils back on, verified and recorded;
  4. a board that acknowledges writes but does not switch (the simulator's
     "stuck" unit) fails the read-back: a major interlock fault incident;
  5. dry_run (after a SIGHUP reload): the action is logged and recorded,
     nothing is written.
"""
import subprocess

from harness import FIREGRIDCTL, check, log, run, sink, wait_until
from modbus_harness import (incidents_of, interlock_webhook, modbus_config, modbus_daemon,
                            shed_sections, shed_sim, store_query, temperature, wait_incident)

COILS = (0, 1, 2, 3)


def coils(sim):
    return [sim.get(20, 'coil', c) for c in COILS]


def actions(d):
    return store_query(d, 'SELECT action, written, verified, dry_run, error, incident_id'
                          ' FROM interlock_actions ORDER BY id')


def interlock_sections(port, dry_run=False):
    return shed_sections(port, extra={'modbus-device b3-temp': {'overtemp_for': '1s'}}) + [
        ('interlock shed-b3', {'device': 'b3-relays', 'coils': ' '.join(map(str, COILS)),
                               'from': 'b3-temp b3-relays', 'dry_run': str(dry_run).lower()}),
    ]


def uplink_back_cut_webhook(rx, incident_id):
    """The uplink comes back: the signed "updated" webhook of the incident
    whose event carries the verified cut of coils 0..3; (record, cut)."""
    log('uplink back')
    rx.control(status=200)
    rec, il = wait_until(lambda: interlock_webhook(rx, incident_id), 30,
                         'the interlock webhook')
    check(rec['signature_ok'] and rec['type'] == 'org.firegrid.incident.updated',
          'interlock webhook: %r' % rec)
    check(il['action'] == 'cut' and il['verified'] is True and il['coils'] == list(COILS) and
          il['value'] == 0 and il['readback'] == [False] * 4 and il['dry_run'] is False,
          'interlock record: %r' % il)
    return rec, il


def ctl_restore(d, wait=15):
    r = subprocess.run([FIREGRIDCTL, '--db', d.db, 'interlock', 'restore', 'shed-b3',
                        '--actor', 'duty-officer', '--wait', str(wait)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=wait + 30)
    return r.returncode, r.stdout.decode(errors='replace') + r.stderr.decode(errors='replace')


def test(env):
    rx = env.receiver()
    rx.control(status=503)               # the uplink is down
    sim = shed_sim(env)
    d = modbus_daemon(env, interlock_sections(sim.port), sinks=[sink(rx, retry_min='100ms',
                                                                      retry_max='1s')])

    # 1. overtemp cuts the power, uplink down
    log('overtemp: the interlock cuts')
    temperature(sim, 1, 68.5)
    inc = wait_incident(d, 'b3-temp', 'overtemp')
    wait_until(lambda: coils(sim) == [0, 0, 0, 0], 20, 'coils 0..3 written off')
    wait_until(lambda: len(actions(d)) >= 1, 20, 'the cut recorded')
    act = actions(d)[0]
    check(act[:4] == ('cut', 1, 1, 0) and act[5] == inc['id'],
          'cut not recorded as written+verified for incident %d: %r' % (inc['id'], act))
    hist = d.ctl('incident', str(inc['id']))['history']
    check(any(h.get('channel') == 'interlock' and 'verified' in (h.get('note') or '')
              for h in hist), 'no interlock row in the incident history: %r' % hist)
    uplink_back_cut_webhook(rx, inc['id'])
    # The relays the gateway opened are not "opened unexpectedly".
    reads = sim.reads(20)
    wait_until(lambda: sim.reads(20) >= reads + 6, 20, 'three more relay polls')
    check([i for i in incidents_of(d) if i['device'].startswith('b3-relays/')] == [],
          'commanded relays reported as faults: %r' % incidents_of(d))

    # 2. never restored automatically
    log('overtemp clears; the power stays off')
    temperature(sim, 1, 30.5)
    wait_incident(d, 'b3-temp', 'overtemp', pred=lambda i: i.get('cleared_at'))
    reads = sim.reads(20)
    wait_until(lambda: sim.reads(20) >= reads + 6, 20, 'three more relay polls')
    check(coils(sim) == [0, 0, 0, 0], 'power came back by itself: %r' % coils(sim))

    # 3. restore by command
    log('firegridctl interlock restore')
    rc, out = ctl_restore(d)
    check(rc == 0 and 'verified' in out, 'restore failed (%d): %s' % (rc, out))
    check(coils(sim) == [1, 1, 1, 1], 'coils after restore: %r' % coils(sim))
    act = actions(d)[-1]
    check(act[:4] == ('restore', 1, 1, 0) and act[5] == inc['id'], 'restore record: %r' % (act,))
    who = store_query(d, "SELECT actor FROM interlock_actions WHERE action = 'restore'")
    check(who == [('ctl/duty-officer',)], 'restore actor: %r' % who)
    hist = d.ctl('incident', str(inc['id']))['history']
    check(any(h.get('channel') == 'interlock' and 'restore' in (h.get('note') or '')
              for h in hist), 'restore not in the incident history: %r' % hist)

    # 4. a stuck board: the read-back fails
    log('stuck relay board: read-back fails')
    sim.cmd('stuck 20 on')
    sim.set(20, 'discrete', 0, 'bool', 1)          # the smoke contact
    wait_incident(d, 'b3-relays', 'smoke')
    fault = wait_incident(d, 'interlock/shed-b3', 'fault')
    check(fault['severity'] == 'major', 'interlock fault severity: %r' % fault)
    act = actions(d)[-1]
    check(act[0] == 'cut' and act[1] == 1 and act[2] == 0 and 'read-back' in (act[4] or ''),
          'a cut that did not switch was not recorded as failed: %r' % (act,))
    check(coils(sim) == [1, 1, 1, 1], 'the stuck board switched: %r' % coils(sim))
    sim.cmd('stuck 20 off')
    sim.set(20, 'discrete', 0, 'bool', 0)

    # 5. dry run after a reload
    log('dry run')
    rc, out = ctl_restore(d)
    check(rc == 0, 'restore before the dry run failed: %s' % out)
    d.write_config(modbus_config(d, interlock_sections(sim.port, dry_run=True)))
    d.reload()
    d.wait_log('main: reloaded', 30)
    n_actions = len(actions(d))
    writes = sim.writes(20)
    temperature(sim, 1, 70)
    wait_until(lambda: len(actions(d)) > n_actions, 30, 'the dry-run action recorded')
    act = actions(d)[-1]
    check(act[:4] == ('cut', 0, 0, 1), 'dry run record: %r' % (act,))
    check(sim.writes(20) == writes and coils(sim) == [1, 1, 1, 1],
          'the dry run wrote coils (writes %d -> %d, coils %r)' % (writes, sim.writes(20),
                                                                    coils(sim)))
    check('dry run: would cut' in d.log_text(), 'the dry run was not logged')

    # firegridctl reads it all back
    hist = d.ctl('interlock', 'history')
    check([(h['action'], h['verified'], h['dry_run']) for h in hist][:2] ==
          [('cut', False, True), ('restore', True, False)],
          'interlock history (newest first): %r' % hist[:3])
    check(hist[-1]['coils'] == list(COILS) and hist[-1]['readback'] == [False] * 4 and
          hist[-1]['trigger'] == 'b3-temp overtemp', 'first action: %r' % hist[-1])
    status = d.ctl('interlock', 'status')
    check(len(status) == 1 and status[0]['rule'] == 'shed-b3' and
          status[0]['last_action'] == 'cut' and status[0]['dry_run'] is True and
          status[0]['pending_commands'] == 0, 'interlock status: %r' % status)
    check(d.stop() == 0, 'firegridd did not exit cleanly')


if __name__ == '__main__':
    run('modbus_interlock', test)
