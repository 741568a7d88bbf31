"""
Modbus pieces for the integration tests, on top of harness.py:

  - ModbusSim: the real tests/tools/fg-modbus-sim (a libmodbus server playing a
    charging shed), driven line by line over its stdin while it runs;
  - modbus_daemon(): a firegridd with MQTT off and [modbus-*] sections;
  - a shed: meters (SDM120, units 7 and 8), a temperature sensor (SHT20,
    unit 1), a relay board with a smoke contact (unit 20).

Poll counts are read from the simulator (requests it answered per unit), so
"others keep their schedule" is measured outside firegridd.
"""

import json
import os
import select
import sqlite3
import subprocess
import time
import types

from harness import BUILD_ROOT, Daemon, Proc, TestFailure, check, ini, wait_until

FG_MODBUS_SIM = os.environ.get('FG_MODBUS_SIM') or os.path.join(
    BUILD_ROOT, 'tests', 'tools', 'fg-modbus-sim')


class ModbusSim(Proc):
    """fg-modbus-sim as a child: TCP on 127.0.0.1 (port 0 = any), or RTU.
    A harness.Proc (stop, alive, output) whose stdin is a pipe for control."""

    def __init__(self, env, port=0, name='modbus-sim', rtu=None, unit=1):
        # Proc's own constructor gives the child no stdin; the rest is Proc's.
        self.name = name
        self.argv = [FG_MODBUS_SIM] + (['--rtu', rtu, '--unit', str(unit)] if rtu
                                       else ['--port', str(port)])
        self.log_path = os.path.join(env.tmp, '%s.log' % name)
        self._log = open(self.log_path, 'ab')
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, cwd=env.tmp)
        self.pid = self.popen.pid
        self._buf = b''
        env.procs.append(self)
        first = self._line(10)
        check(first.startswith('PORT ') or first.startswith('RTU '),
              'fg-modbus-sim did not start: %r\n%s' % (first, self.output()))
        self.port = int(first.split()[1]) if first.startswith('PORT ') else None

    # --- control ---------------------------------------------------------------
    def _line(self, timeout):
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b'\n' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure('fg-modbus-sim did not answer within %d s' % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise TestFailure('fg-modbus-sim exited:\n' + self.output())
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b'\n')
        return line.decode(errors='replace').strip()

    def cmd(self, line):
        self.popen.stdin.write((line + '\n').encode())
        self.popen.stdin.flush()
        answer = self._line(10)
        check(answer.startswith('ok'), 'fg-modbus-sim: %r -> %r' % (line, answer))
        return answer[2:].strip()

    def set(self, unit, table, addr, typ, value, order=None):
        parts = ['set', unit, table, addr, typ] + ([order] if order else []) + [value]
        self.cmd(' '.join(str(p) for p in parts))

    def get(self, unit, table, addr):
        return int(self.cmd('get %d %s %d' % (unit, table, addr)))

    def stats(self):
        return json.loads(self.cmd('stats'))

    def reads(self, unit):
        return self.stats().get(str(unit), {}).get('reads', 0)

    def writes(self, unit):
        return self.stats().get(str(unit), {}).get('writes', 0)


# --- the shed ------------------------------------------------------------------

def meter(sim, unit, volts=229.8, amps=1.21, watts=265.3):
    sim.set(unit, 'input', 0, 'f32', volts)
    sim.set(unit, 'input', 6, 'f32', amps)
    sim.set(unit, 'input', 12, 'f32', watts)
    sim.set(unit, 'input', 30, 'f32', 0.955)
    sim.set(unit, 'input', 70, 'f32', 50.02)
    sim.set(unit, 'input', 72, 'f32', 412.3)


def temperature(sim, unit, deg_c, rh=54.6):
    sim.set(unit, 'input', 1, 'i16', int(round(deg_c * 10)))
    sim.set(unit, 'input', 2, 'u16', int(round(rh * 10)))


def relays(sim, unit, states, smoke=False):
    for i, on in enumerate(states):
        sim.set(unit, 'coil', i, 'bool', 1 if on else 0)
    sim.set(unit, 'discrete', 0, 'bool', 1 if smoke else 0)


def shed_sim(env, **kw):
    sim = ModbusSim(env, **kw)
    meter(sim, 7)
    meter(sim, 8)
    temperature(sim, 1, 30.5)
    relays(sim, 20, [True] * 4)
    return sim


def shed_sections(port, interval='500ms', timeout='300ms', bus='shed-b3', extra=None):
    """[modbus-bus] + the four devices of the shed; extra: {section: {k: v}}."""
    extra = extra or {}
    sec = [
        ('modbus-bus ' + bus, {'type': 'tcp', 'host': '127.0.0.1', 'port': port,
                               'timeout': timeout, 'reconnect_min': '200ms',
                               'reconnect_max': '2s'}),
        ('modbus-device b3-temp', {'bus': bus, 'unit': 1, 'plugin': 'sht20',
                                   'interval': interval, 'role': 'shed ceiling'}),
        ('modbus-device b3-port07', {'bus': bus, 'unit': 7, 'plugin': 'sdm120',
                                     'interval': interval, 'role': 'port 07 meter',
                                     'overcurrent': 5, 'overcurrent_for': '1s'}),
        ('modbus-device b3-port08', {'bus': bus, 'unit': 8, 'plugin': 'sdm120',
                                     'interval': interval, 'role': 'port 08 meter',
                                     'overcurrent': 5, 'overcurrent_for': '1s'}),
        ('modbus-device b3-relays', {'bus': bus, 'unit': 20, 'plugin': 'relay-board',
                                     'interval': interval, 'channels': 4, 'inputs': 1,
                                     'smoke_input': 1}),
    ]
    out = []
    for name, kv in sec:
        kv = dict(kv)
        kv.update(extra.get(name, {}))
        out.append((name, kv))
    return out


def modbus_daemon(env, sections, sinks=(), start=True, name='firegridd', **kw):
    """A firegridd without MQTT whose config ends with `sections`."""
    no_broker = types.SimpleNamespace(port=1)
    extra = kw.pop('extra', {})
    extra = dict(extra)
    extra['mqtt'] = dict({'enabled': 'false'}, **extra.get('mqtt', {}))
    d = Daemon(env, no_broker, list(sinks), [], name=name, extra=extra, **kw)
    d.modbus_sections = list(sections)
    d.write_config(modbus_config(d))
    env.daemons.append(d)
    if start:
        start_modbus_daemon(d)
    return d


def modbus_config(d, sections=None):
    return d.config_text() + '\n' + ini(sections if sections is not None else d.modbus_sections)


def start_modbus_daemon(d, timeout=30):
    d.start(wait=False)
    d.wait_log('main: ready', timeout)
    return d


def incidents_of(d, device=None, kind=None):
    out = []
    for inc in d.incidents() or []:
        if device is not None and inc.get('device') != device:
            continue
        if kind is not None and inc.get('kind') != kind:
            continue
        out.append(inc)
    return out


def wait_incident(d, device, kind, timeout=30, pred=None):
    def found():
        for inc in incidents_of(d, device, kind):
            if pred is None or pred(inc):
                return inc
        return None
    return wait_until(found, timeout, 'a %s incident for %s' % (kind, device), interval=0.2)


def store_query(d, sql, *args):
    """Rows from the daemon's store, read-only (firegridctl does not show
    everything, e.g. an incident's attrs or the interlock tables)."""
    db = sqlite3.connect('file:%s?mode=ro' % d.db, uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def incident_attrs(d, incident_id):
    rows = store_query(d, 'SELECT attrs FROM incidents WHERE id = ?', incident_id)
    return json.loads(rows[0][0]) if rows and rows[0][0] else {}


def request_log(sim, unit):
    """(now_ms, [(ms, function, address, answered), ...]) from the simulator's
    clock: every request unit received, answered or not, oldest first."""
    out = json.loads(sim.cmd('log %d' % unit))
    return out['now'], [tuple(r) for r in out['requests']]


def poll_times(requests, key, since_ms=0):
    """Times of the requests for key = (function, address) from since_ms on:
    the start times of the polls of a device whose plan reads key once."""
    return [r[0] for r in requests if r[0] >= since_ms and tuple(r[1:3]) == tuple(key)]


def lateness(ref_ms, times, interval_s):
    """How late each poll after a reference poll at ref_ms came, against an
    undisturbed schedule of one poll per interval (the n-th poll after the
    reference is due at ref + n * interval; a skipped poll counts as a full
    interval late), in seconds."""
    return [(t - ref_ms) / 1e3 - n * interval_s for n, t in enumerate(times, 1)]


def poll_rates(sim, units, seconds):
    """Requests each unit answered over `seconds` of wall time."""
    before = sim.stats()
    time.sleep(seconds)
    after = sim.stats()
    return {u: after.get(str(u), {}).get('reads', 0) - before.get(str(u), {}).get('reads', 0)
            for u in units}


def interlock_webhook(rx, incident_id=None):
    """(record, attrs.interlock) of the first accepted webhook that carries an
    interlock record (of incident_id, if given), or None."""
    for rec in rx.records():
        if rec.get('status') != 200:
            continue
        if incident_id is not None and str(rec.get('incident_id')) != str(incident_id):
            continue
        ev = ((rec.get('body') or {}).get('data') or {}).get('event') or {}
        il = (ev.get('attrs') or {}).get('interlock')
        if il:
            return rec, il
    return None
