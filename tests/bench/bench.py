#!/usr/bin/env python3
"""
firegrid benchmark: fg-pub -> mosquitto -> firegridd -> fg-receiver, all real
processes on loopback (the integration harness starts them).  Not a test:
it measures and prints; docs/benchmarks.md records the results.

  python3 tests/bench/bench.py [--build DIR] [--json FILE] [--quick]
  (or: ninja -C build bench)

Scenarios, each with a fresh broker, daemon and receiver:
  broker     reference: the broker's delivery rate of a QoS 1 stream to a
             bare subscriber (fg-pub --subscribe), 1,000 devices x 10
  ingest     1,000 devices x 10 repeats, QoS 1, durability=full, published
             as fast as fg-pub can; rate = messages / (time until the last
             event is committed in SQLite - time the publisher started)
  webhooks   10,000 distinct alarms, one sink with max_connections=16;
             rate = accepted webhooks / (last - first arrival at the receiver)
  latency    distinct alarms at 100 msg/s and at 2,000 msg/s; latency = the
             receiver's received_at_ms - the payload's sent_ms (fg-pub's
             wall clock right before publishing), for each opened webhook
firegridd's peak RSS is VmHWM from /proc/<pid>/status at the end of each
scenario.
"""
import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--build', help='meson build directory (default: <source>/build)')
    ap.add_argument('--json', help='also write the results to this file')
    ap.add_argument('--quick', action='store_true', help='a tenth of the load (smoke run)')
    ap.add_argument('--only', help='comma-separated scenarios: broker,ingest,webhooks,latency')
    return ap.parse_args()


ARGS = parse_args()
if ARGS.build:
    os.environ['FG_BUILD_ROOT'] = os.path.abspath(ARGS.build)
import harness as h  # noqa: E402

SCALE = 10 if ARGS.quick else 1


def machine():
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open('/proc/meminfo') as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    mosq = subprocess.run([h.MOSQUITTO, '-h'], capture_output=True).stdout.decode().splitlines()
    return {'nproc': os.cpu_count(), 'cpu': cpu, 'kernel': platform.release(),
            'memory_mb': mem_kb // 1024, 'mosquitto': mosq[0] if mosq else '',
            'python': platform.python_version()}


def vm_hwm_kb(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    """User + system CPU seconds a process has used so far."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return 0.0


def count_events(db):
    try:
        con = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=1)
        try:
            return con.execute('SELECT count(*) FROM events').fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def logged(rx):
    """Webhooks the receiver has logged so far (cheap: counts lines, and
    opens no HTTP connection to the receiver, unlike /_stats)."""
    try:
        with open(rx.log_path, 'rb') as f:
            return f.read().count(b'\n')
    except FileNotFoundError:
        return 0


def percentile(values, p):
    if not values:
        return float('nan')
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def start_stack(env, name, max_connections=16, durability='full'):
    # Own names per scenario: own broker persistence, receiver log, state.
    broker = env.broker(name='mosquitto-' + name)
    rx = env.receiver(name='receiver-' + name)
    d = env.daemon(broker, [h.sink(rx, max_connections=max_connections)],
                   h.generic_sources('bench/'), durability=durability, name='firegridd-' + name)
    return broker, rx, d


def finish(results, key, d, broker=None, rx=None):
    rss = vm_hwm_kb(d.proc.pid)
    cpu = {'firegridd': round(cpu_s(d.proc.pid), 2)}
    if broker:
        cpu['mosquitto'] = round(cpu_s(broker.proc.pid), 2)
    if rx:
        cpu['fg-receiver'] = round(cpu_s(rx.proc.pid), 2)
    results[key]['cpu_s'] = cpu
    results.setdefault('peak_rss_kb', {})[key] = rss
    rc = d.stop()
    if rc != 0:
        h.log('firegridd (%s) exited with %s' % (key, rc))
    return rss


def bench_broker(env, results):
    n_dev, reps = 1000 // SCALE, 10
    n = n_dev * reps
    broker = env.broker(name='mosquitto-ref')
    sub = env.fg_sub(broker.port, 'bench/#', n, timeout=120)
    pub = env.fg_pub(broker.port, '--devices', n_dev, '--repeats', reps, '--rate', 0,
                     '--topic-prefix', 'bench/')
    got = env.fg_pub_result(sub, 120)
    results['broker'] = {'messages': n, 'publish_rate': pub['rate'],
                         'delivered': got['received'], 'delivery_rate': got['rate']}
    broker.stop()


def bench_ingest(env, results):
    n_dev, reps = 1000 // SCALE, 10
    n = n_dev * reps
    broker, rx, d = start_stack(env, 'ingest')
    t0 = time.time()
    pub = env.fg_pub(broker.port, '--devices', n_dev, '--repeats', reps, '--rate', 0, '--qos', 1,
                     '--topic-prefix', 'bench/ingest/')

    def done():
        return count_events(d.db) >= n and time.time()
    t1 = h.wait_until(done, 300, '%d committed events' % n, interval=0.005)
    elapsed = t1 - t0
    results['ingest'] = {'messages': n, 'devices': n_dev, 'durability': 'full',
                         'publisher_rate': pub['rate'], 'elapsed_s': round(elapsed, 3),
                         'rate': round(n / elapsed, 1)}
    h.wait_until(lambda: rx.stats().get('accepted_unique', 0) >= n_dev, 120,
                 'the ingest scenario webhooks')
    finish(results, 'ingest', d, broker, rx)
    broker.stop()
    rx.stop()


def bench_webhooks(env, results):
    n = 10000 // SCALE
    broker, rx, d = start_stack(env, 'webhooks', max_connections=16)
    env.fg_pub(broker.port, '--devices', n, '--rate', 0, '--qos', 1,
               '--topic-prefix', 'bench/hooks/')
    def all_unique():
        if logged(rx) < n:
            return None
        recs = [r for r in rx.records() if r.get('status') == 200]
        return recs if len({r['webhook_id'] for r in recs}) >= n else None
    recs = h.wait_until(all_unique, 300, '%d distinct webhooks' % n, interval=0.1)
    first = min(r['received_at_ms'] for r in recs)
    last = max(r['received_at_ms'] for r in recs)
    stats = rx.stats()   # the only HTTP request the benchmark makes to the receiver
    span = max(1, last - first) / 1000.0
    unique = len({r['webhook_id'] for r in recs})
    results['webhooks'] = {'alarms': n, 'max_connections': 16,
                           'accepted': len(recs), 'unique': unique,
                           'span_s': round(span, 3), 'rate': round(unique / span, 1),
                           'daemon_connections_opened': stats.get('connections_opened', 1) - 1}
    finish(results, 'webhooks', d, broker, rx)
    broker.stop()
    rx.stop()


def bench_latency(env, results, rate, seconds):
    n = max(50, int(rate * seconds) // SCALE)
    key = 'latency_%d' % rate
    broker, rx, d = start_stack(env, 'lat%d' % rate)
    env.fg_pub(broker.port, '--devices', n, '--rate', rate, '--qos', 1,
               '--topic-prefix', 'bench/lat%d/' % rate)
    h.wait_until(lambda: logged(rx) >= n, 120, '%d webhooks' % n, interval=0.1)
    first = {}
    for r in rx.records():
        if r.get('status') != 200 or not str(r.get('type', '')).endswith('.opened'):
            continue
        sent = h.find_key(r.get('body'), 'sent_ms')
        if sent is None:
            continue
        first.setdefault(r['incident_id'], (r['received_at_ms'] - float(sent), float(sent),
                                            r['received_at_ms']))
    lat = [v[0] for v in first.values()]
    h.check(len(lat) >= n, 'only %d of %d webhooks carried sent_ms' % (len(lat), n))
    # Where the time goes: publish -> firegridd received it (events.recv_ms),
    # and from there to the receiver.
    recv = {}
    con = sqlite3.connect('file:%s?mode=ro' % d.db, uri=True, timeout=5)
    for iid, recv_ms in con.execute('SELECT incident_id, min(recv_ms) FROM events '
                                    'GROUP BY incident_id'):
        recv[iid] = recv_ms
    con.close()
    to_daemon = [recv[i] - v[1] for i, v in first.items() if i in recv]
    to_receiver = [v[2] - recv[i] for i, v in first.items() if i in recv]
    results[key] = {'rate': rate, 'alarms': n, 'p50_ms': round(percentile(lat, 50), 2),
                    'p99_ms': round(percentile(lat, 99), 2), 'max_ms': round(max(lat), 2),
                    'to_daemon_p99_ms': round(percentile(to_daemon, 99), 2),
                    'daemon_to_receiver_p99_ms': round(percentile(to_receiver, 99), 2),
                    'note': 'receiver and events clocks have 1 ms resolution'}
    finish(results, key, d, broker, rx)
    broker.stop()
    rx.stop()


def report(results):
    m = results['machine']
    print()
    print('machine: %s x %s, %s MB, Linux %s, %s' % (m['nproc'], m['cpu'], m['memory_mb'],
                                                     m['kernel'], m['mosquitto']))
    if 'broker' in results:
        b = results['broker']
        print('broker reference  %8.0f msg/s delivered to a bare QoS 1 subscriber (%d msgs)'
              % (b['delivery_rate'], b['messages']))
    if 'ingest' in results:
        i = results['ingest']
        print('ingest            %8.0f msg/s (%d devices x 10, QoS 1, durability=full; '
              'publisher %.0f msg/s)' % (i['rate'], i['devices'], i['publisher_rate']))
    if 'webhooks' in results:
        w = results['webhooks']
        print('webhooks          %8.0f /s (%d alarms over %d connections, max_connections=16)'
              % (w['rate'], w['alarms'], w['daemon_connections_opened']))
    for k in sorted(k for k in results if k.startswith('latency_')):
        lat = results[k]
        print('latency @%5d/s  p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms (%d alarms; p99 to '
              'firegridd %.1f ms, firegridd to receiver %.1f ms)'
              % (lat['rate'], lat['p50_ms'], lat['p99_ms'], lat['max_ms'], lat['alarms'],
                 lat['to_daemon_p99_ms'], lat['daemon_to_receiver_p99_ms']))
    for k, v in results.items():
        if isinstance(v, dict) and 'cpu_s' in v:
            print('  cpu seconds in %-13s %s' % (k, ', '.join('%s %.2f' % kv for kv in v['cpu_s'].items())))
    if results.get('peak_rss_kb'):
        print('firegridd peak RSS %7.1f MB (max over scenarios: %s)' % (
            max(results['peak_rss_kb'].values()) / 1024.0,
            ', '.join('%s %.1f' % (k, v / 1024.0) for k, v in results['peak_rss_kb'].items())))


def main(env):
    only = set((ARGS.only or 'broker,ingest,webhooks,latency').split(','))
    results = {'machine': machine(), 'quick': ARGS.quick}
    if 'broker' in only:
        bench_broker(env, results)
    if 'ingest' in only:
        bench_ingest(env, results)
    if 'webhooks' in only:
        bench_webhooks(env, results)
    if 'latency' in only:
        bench_latency(env, results, 100, 10)
        bench_latency(env, results, 2000, 5)
    report(results)
    if ARGS.json:
        with open(ARGS.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    h.run('bench', main)
