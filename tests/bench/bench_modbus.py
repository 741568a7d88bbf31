#!/usr/bin/env python3
"""
Modbus polling cost: firegridd's CPU and memory while it polls 64 devices
every second over Modbus TCP (fg-modbus-sim, a libmodbus server, stands in
for four charging sheds' gateways).

  4 buses (one simulator process each) x 16 devices:
    12 SDM120 meters (5 requests per poll), 2 SHT20 sensors (1 request),
    2 relay boards (2 requests: coils and inputs)  -> 66 requests/s per bus

After a warm-up, firegridd's CPU time (utime + stime from /proc/PID/stat) is
sampled over the measuring window; RSS is VmRSS at the end and VmHWM (peak).
The simulators' request counters give the poll rate actually achieved.
It measures and prints; it is not a test.

    ninja -C build bench-modbus      or
    python3 tests/bench/bench_modbus.py --build build [--seconds 60] [--json out.json]
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

BUSES = 4
METERS, SENSORS, BOARDS = 12, 2, 2
# SDM120: 0, 6, 12, 30 alone; 70 and 72 (frequency, energy) are adjacent: one request
REQUESTS_PER_POLL = {'sdm120': 5, 'sht20': 1, 'relay-board': 2}


def proc_cpu_s(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    ticks = os.sysconf('SC_CLK_TCK')
    return (int(fields[11]) + int(fields[12])) / ticks      # utime + stime


def proc_mem_kb(pid):
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            if key in ('VmRSS', 'VmHWM'):
                out[key] = int(value.split()[0])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--build', default=None)
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--warmup', type=float, default=10)
    ap.add_argument('--json', default=None)
    args = ap.parse_args()
    if args.build:
        os.environ['FG_BUILD_ROOT'] = os.path.abspath(args.build)
    import harness
    from modbus_harness import ModbusSim, meter, modbus_daemon, relays, temperature

    env = harness.Env('bench-modbus')
    try:
        sections = []
        sims = []
        expected_requests = 0
        for b in range(BUSES):
            sim = ModbusSim(env, name='modbus-sim-%d' % b)
            sims.append(sim)
            bus = 'shed-%d' % b
            sections.append(('modbus-bus ' + bus, {'type': 'tcp', 'host': '127.0.0.1',
                                                   'port': sim.port, 'timeout': '500ms'}))
            unit = 1
            for kind, count in (('sdm120', METERS), ('sht20', SENSORS),
                                ('relay-board', BOARDS)):
                for _ in range(count):
                    if kind == 'sdm120':
                        meter(sim, unit)
                        opts = {'overcurrent': 16}
                    elif kind == 'sht20':
                        temperature(sim, unit, 28.5)
                        opts = {}
                    else:
                        relays(sim, unit, [True] * 8)
                        opts = {'inputs': 2, 'smoke_input': 1}
                    sections.append(('modbus-device s%d-u%d' % (b, unit),
                                     dict({'bus': bus, 'unit': unit, 'plugin': kind,
                                           'interval': '1s'}, **opts)))
                    expected_requests += REQUESTS_PER_POLL[kind]
                    unit += 1
        d = modbus_daemon(env, sections, durability='full')
        pid = d.proc.pid
        time.sleep(args.warmup)
        reads0 = sum(sum(u['reads'] for u in s.stats().values()) for s in sims)
        cpu0, t0 = proc_cpu_s(pid), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = proc_cpu_s(pid), time.monotonic()
        reads1 = sum(sum(u['reads'] for u in s.stats().values()) for s in sims)
        mem = proc_mem_kb(pid)
        wall = t1 - t0
        result = {
            'devices': BUSES * (METERS + SENSORS + BOARDS),
            'buses': BUSES,
            'interval_s': 1,
            'seconds': round(wall, 1),
            'requests_per_s': round((reads1 - reads0) / wall, 1),
            'requests_per_s_expected': expected_requests,
            'cpu_percent': round(100 * (cpu1 - cpu0) / wall, 2),
            'cpu_ms_per_poll': round(1000 * (cpu1 - cpu0) /
                                     (wall * BUSES * (METERS + SENSORS + BOARDS)), 3),
            'rss_kb': mem.get('VmRSS'),
            'peak_rss_kb': mem.get('VmHWM'),
            'incidents': len(d.incidents() or []),
        }
        rc = d.stop()
        result['exit_code'] = rc
        print('modbus: %(devices)d devices on %(buses)d buses every second: '
              'firegridd %(cpu_percent).2f%% of one core (%(cpu_ms_per_poll).3f ms per poll), '
              'RSS %(rss_kb)d kB (peak %(peak_rss_kb)d kB), %(requests_per_s).1f requests/s '
              '(%(requests_per_s_expected)d expected)' % result)
        print(json.dumps(result))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(result, f, indent=2)
    finally:
        env.cleanup()


if __name__ == '__main__':
    main()
