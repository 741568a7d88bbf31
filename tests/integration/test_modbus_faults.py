#!/usr/bin/env python3
"""
Modbus failures against a real Modbus TCP server (fg-modbus-sim):

  1. a device that stops answering: the others keep their poll schedule,
     measured as requests the server answered per unit before and during
     the silence (no timing assertion: rates against their own baseline); the
     silent one goes offline after 3 polls (a warning incident, nobody else),
     and online again when it answers;
  2. exception replies: a device answering "server device failure" raises a
     fault incident with the exception code, never offline; it clears when the
     device answers normally;
  3. a second bus whose endpoint does not exist does not disturb the first;
  4. server restart: every device goes offline while the server is gone, the
     worker reconnects by itself (capped backoff), every device comes back
     online and polling resumes on the new server.
"""
import signal
import time

from harness import check, log, run, wait_until
from modbus_harness import (ModbusSim, incident_attrs, incidents_of, meter, modbus_daemon,
                            poll_rates, relays, shed_sections, temperature, wait_incident)

INTERVAL_S = 0.5
OTHERS = (1, 7, 20)           # units that keep answering
PER_POLL = {1: 1, 7: 5, 20: 2}     # requests per poll


def fill(sim):
    meter(sim, 7)
    meter(sim, 8)
    temperature(sim, 1, 30.5)
    relays(sim, 20, [True] * 4)


def test(env):
    sim = ModbusSim(env)
    fill(sim)
    # A silent device keeps costing its timeout every interval (offline
    # polls as often as online ones): the worst case for its neighbours.
    # The others are probed every second once offline (server restart).
    sections = shed_sections(sim.port, extra={
        'modbus-device b3-port08': {'offline_interval': '500ms'},
        'modbus-device b3-temp': {'offline_interval': '1s'},
        'modbus-device b3-port07': {'offline_interval': '1s'},
        'modbus-device b3-relays': {'offline_interval': '1s'}})
    # A second bus on a port nobody listens on.
    from harness import free_port
    sections += [
        ('modbus-bus shed-b4', {'type': 'tcp', 'host': '127.0.0.1', 'port': free_port(),
                                'timeout': '300ms', 'reconnect_min': '100ms',
                                'reconnect_max': '500ms'}),
        ('modbus-device b4-port01', {'bus': 'shed-b4', 'unit': 1, 'plugin': 'sdm120',
                                     'interval': '500ms'}),
    ]
    d = modbus_daemon(env, sections)
    wait_incident(d, 'b4-port01', 'offline')
    check(incidents_of(d, 'b3-port07') == [], 'the dead bus touched shed-b3')

    # 1. a device stops answering
    base = poll_rates(sim, OTHERS, 4)
    log('baseline requests in 4 s: %r' % base)
    sim.cmd('silent 8 on')
    inc = wait_incident(d, 'b3-port08', 'offline')
    check(inc['severity'] == 'warning', 'offline severity: %r' % inc)
    during = poll_rates(sim, OTHERS, 4)
    log('with unit 8 silent, requests in 4 s: %r' % during)
    for u in OTHERS:
        polls_base, polls_during = base[u] // PER_POLL[u], during[u] // PER_POLL[u]
        check(polls_base >= 4, 'unit %d: only %d polls in the baseline' % (u, polls_base))
        # Each silent poll costs one 300 ms timeout, less than the 500 ms
        # interval: the others must keep (nearly) their own rate.
        check(polls_during >= 0.75 * polls_base,
              'unit %d: %d polls while unit 8 was silent, %d before' % (u, polls_during,
                                                                       polls_base))
    for dev in ('b3-temp', 'b3-port07', 'b3-relays'):
        check(incidents_of(d, dev) == [], '%s has incidents: %r' % (dev, incidents_of(d, dev)))
    sim.cmd('silent 8 off')
    wait_incident(d, 'b3-port08', 'offline', pred=lambda i: i.get('cleared_at'))

    # 2. exception replies
    log('unit 7 answers with exception 4')
    sim.cmd('exception 7 4')
    inc = wait_incident(d, 'b3-port07', 'fault')
    check(inc['severity'] == 'major', 'fault severity: %r' % inc)
    exc = incident_attrs(d, inc['id']).get('exception') or {}
    check(exc.get('code') == 4 and exc.get('function') == 4 and exc.get('address') == 0,
          'exception not recorded with its code and request: %r' % exc)
    time.sleep(4 * INTERVAL_S)
    check(incidents_of(d, 'b3-port07', 'offline') == [],
          'an exception reply counted as offline')
    sim.cmd('exception 7 off')
    wait_incident(d, 'b3-port07', 'fault', pred=lambda i: i.get('cleared_at'))

    # 4. server restart
    log('server restart')
    port = sim.port
    sim.stop(signal.SIGKILL)
    for dev in ('b3-temp', 'b3-port07', 'b3-port08', 'b3-relays'):
        wait_incident(d, dev, 'offline', pred=lambda i: not i.get('cleared_at'))
    sim2 = ModbusSim(env, port=port, name='modbus-sim-2')
    fill(sim2)
    for dev in ('b3-temp', 'b3-port07', 'b3-port08', 'b3-relays'):
        wait_incident(d, dev, 'offline', pred=lambda i: i.get('cleared_at'))
    wait_until(lambda: sim2.reads(1) >= 3, 20, 'polls on the restarted server')
    check('connect' in d.log_text(), 'no reconnect attempt logged')
    check(d.stop() == 0, 'firegridd did not exit cleanly')


if __name__ == '__main__':
    run('modbus_faults', test)
