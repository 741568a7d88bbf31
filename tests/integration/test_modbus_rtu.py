#!/usr/bin/env python3
"""
Modbus RTU over a serial line: socat joins two pseudo-terminals, fg-modbus-sim
serves unit 1 (an SHT20 temperature sensor) on one end in RTU mode, firegridd
polls the other end as an [modbus-bus] of type rtu (9600 8N1).

  1. polling works over RTU framing (CRC, silent intervals): a normal
     reading raises nothing, 68.5 degC raises overtemp with its value;
  2. the sensor goes away (the simulator is stopped, the line stays):
     offline after 3 unanswered polls; back on the same line: online.

Skipped (exit 77) when socat is not installed.
"""
import os
import shutil
import sys

from harness import Proc, check, log, run, wait_until
from modbus_harness import ModbusSim, modbus_daemon, temperature, wait_incident


def test(env):
    socat = shutil.which('socat')
    a, b = env.path('ttyA'), env.path('ttyB')
    Proc(env, 'socat', [socat, '-d', '-d', 'pty,raw,echo=0,link=%s' % a,
                        'pty,raw,echo=0,link=%s' % b])
    wait_until(lambda: os.path.exists(a) and os.path.exists(b), 10, 'the pty pair')
    sim = ModbusSim(env, rtu=a, unit=1)
    temperature(sim, 1, 30.5)
    d = modbus_daemon(env, [
        ('modbus-bus line1', {'type': 'rtu', 'device': b, 'baud': 9600, 'parity': 'none',
                              'timeout': '500ms', 'reconnect_min': '200ms',
                              'reconnect_max': '1s'}),
        ('modbus-device b3-temp', {'bus': 'line1', 'unit': 1, 'plugin': 'sht20',
                                   'interval': '500ms', 'overtemp_for': '1s',
                                   'offline_interval': '1s'}),
    ])
    wait_until(lambda: sim.reads(1) >= 3, 20, 'three RTU polls')
    check(d.incidents() == [], 'incidents on a normal reading: %r' % d.incidents())

    log('overtemp over RTU')
    temperature(sim, 1, 68.5)
    inc = wait_incident(d, 'b3-temp', 'overtemp')
    check(abs(inc['value'] - 68.5) < 1e-9 and inc['unit'] == 'degC', 'overtemp: %r' % inc)

    log('the sensor goes quiet')
    sim.stop()
    wait_incident(d, 'b3-temp', 'offline')
    sim2 = ModbusSim(env, rtu=a, unit=1, name='modbus-sim-2')
    temperature(sim2, 1, 30.5)
    wait_incident(d, 'b3-temp', 'offline', pred=lambda i: i.get('cleared_at'))
    wait_incident(d, 'b3-temp', 'overtemp', pred=lambda i: i.get('cleared_at'))
    check(d.stop() == 0, 'firegridd did not exit cleanly')


if __name__ == '__main__':
    if not shutil.which('socat'):
        print('SKIP: socat is not installed (Debian package socat)')
        sys.exit(77)
    run('modbus_rtu', test)
