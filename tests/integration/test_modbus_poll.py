#!/usr/bin/env python3
"""
Modbus polling against a real Modbus TCP server (fg-modbus-sim):

  1. normal polling: every device of the shed is polled, no incident;
  2. overcurrent on one port: port 07 (9.08 A > 5 A for 1 s) opens an
     overcurrent incident with value and unit, delivered as a signed webhook;
     port 08 stays quiet; back to 1.21 A clears it;
  3. overtemp with hysteresis: 62 degC opens overtemp (60 for 1 s), 58 is
     inside the 5 degC band and keeps it, 54 clears it;
  4. the smoke contact of the relay board opens a critical smoke incident;
  5. `firegridd --check-config` names every bad [modbus-device] line: a bad
     threshold, a plugin that is not a Modbus plugin, an override of an
     entry the map lacks.
"""
import subprocess
import time

from harness import FIREGRIDD, check, log, run, sink
from modbus_harness import (incidents_of, modbus_config, modbus_daemon, shed_sections,
                            shed_sim, temperature, wait_incident)


def test(env):
    rx = env.receiver()
    sim = shed_sim(env)
    d = modbus_daemon(env, shed_sections(sim.port, extra={
        'modbus-device b3-temp': {'overtemp_for': '1s'}}), sinks=[sink(rx)])

    # 1. normal polling
    log('normal polling')
    start = sim.stats()
    time.sleep(3)
    after = sim.stats()
    # SDM120: 5 requests per poll (frequency and energy are adjacent: one request)
    for unit, per_poll in ((1, 1), (7, 5), (8, 5), (20, 2)):
        polls = (after[str(unit)]['reads'] - start.get(str(unit), {}).get('reads', 0)) // per_poll
        log('unit %d: %d polls in 3 s' % (unit, polls))
        check(polls >= 2, 'unit %d was polled %d times in 3 s at a 500 ms interval'
              % (unit, polls))
    check(incidents_of(d) == [], 'incidents on a quiet shed: %r' % incidents_of(d))

    # 2. overcurrent on one port
    log('overcurrent on port 07')
    sim.set(7, 'input', 6, 'f32', 9.08)
    inc = wait_incident(d, 'b3-port07', 'overcurrent')
    check(abs(inc['value'] - 9.08) < 1e-6 and inc['unit'] == 'A', 'value/unit: %r' % inc)
    check(inc['severity'] == 'major', 'severity: %r' % inc)
    check(incidents_of(d, 'b3-port08') == [], 'port 08 raised something: %r'
          % incidents_of(d, 'b3-port08'))

    def hook_for(device, kind):
        for rec in rx.records():
            body = rec.get('body') or {}
            data = body.get('data') or {}
            if (data.get('device') or {}).get('id') == device and \
                    (data.get('incident') or {}).get('kind') == kind:
                return rec
        return None
    from harness import wait_until
    rec = wait_until(lambda: hook_for('b3-port07', 'overcurrent'), 30, 'the overcurrent webhook')
    check(rec.get('signature_ok') is True, 'webhook signature not verified: %r' % rec)
    ev = rec['body']['data']['event']
    check(ev['kind'] == 'overcurrent' and abs(ev['value'] - 9.08) < 1e-6 and ev['unit'] == 'A',
          'webhook event: %r' % ev)

    sim.set(7, 'input', 6, 'f32', 1.21)
    wait_incident(d, 'b3-port07', 'overcurrent', pred=lambda i: i.get('cleared_at'))

    # 3. overtemp with hysteresis
    log('overtemp 62 degC')
    temperature(sim, 1, 62)
    inc = wait_incident(d, 'b3-temp', 'overtemp')
    check(abs(inc['value'] - 62) < 1e-9 and inc['unit'] == 'degC', 'overtemp: %r' % inc)
    temperature(sim, 1, 58)
    reads = sim.reads(1)
    from harness import wait_until as wu
    wu(lambda: sim.reads(1) >= reads + 4, 20, 'four more polls of the sensor at 58 degC')
    inc = incidents_of(d, 'b3-temp', 'overtemp')[0]
    check(not inc.get('cleared_at'), '58 degC (inside the hysteresis band) cleared it: %r' % inc)
    temperature(sim, 1, 54)
    wait_incident(d, 'b3-temp', 'overtemp', pred=lambda i: i.get('cleared_at'))
    check(len(incidents_of(d, 'b3-temp', 'overtemp')) == 1, 'one overtemp incident only')

    # 4. smoke contact
    log('smoke contact closes')
    sim.set(20, 'discrete', 0, 'bool', 1)
    inc = wait_incident(d, 'b3-relays', 'smoke')
    check(inc['severity'] == 'critical', 'smoke severity: %r' % inc)

    check(d.stop() == 0, 'firegridd did not exit cleanly')

    # 5. config errors
    bad = shed_sections(sim.port, extra={
        'modbus-device b3-temp': {'overtemp': 'hot'},
        'modbus-device b3-port07': {'plugin': 'generic-json'},
        'modbus-device b3-port08': {'scale': 'tmp:0.1'}})
    d.write_config(modbus_config(d, bad))
    r = subprocess.run([FIREGRIDD, '--check-config', '--config', d.conf_path],
                       capture_output=True, timeout=30)
    err = r.stderr.decode()
    check(r.returncode == 1, 'check-config accepted a bad config: %s' % err)
    for want in ("[modbus-device b3-temp] overtemp: expected a number",
                 "[modbus-device b3-port07] plugin: 'generic-json' is not a Modbus plugin",
                 "[modbus-device b3-port08] register map: scale 'tmp:0.1': the register map "
                 "has no entry 'tmp'"):
        check(want in err, 'check-config did not say %r:\n%s' % (want, err))


if __name__ == '__main__':
    run('modbus_poll', test)
