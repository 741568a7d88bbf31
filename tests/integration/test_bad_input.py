#!/usr/bin/env python3
"""
Bad input: non-JSON, truncated JSON, a 1 MB payload, wrong types and unknown
devices on both the Zigbee2MQTT and the generic-json topics, interleaved
with good alarms.  firegridd must keep running, turn every good alarm into
an incident, log the bad ones and count them (firegrid_decode_errors_total
per source, firegrid_oversize_total), visible in `firegridctl --json status`.
Also: an invalid config is refused by --check-config with file:line and key.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KITCHEN = 'zigbee2mqtt/b3/u201/smoke_kitchen'


def check_config_errors(env):
    """--check-config accepts a good file and refuses a bad one precisely."""
    good = env.write('good.conf', h.ini([
        ('daemon', {'gateway_id': 'gw-test', 'state_dir': env.path(), 'plugin_dir': h.PLUGIN_DIR}),
        ('mqtt', {'port': 1883}),
        ('source z2m', {'plugin': 'zigbee2mqtt', 'topics': 'zigbee2mqtt/#'}),
        ('sink ops', {'url': 'http://127.0.0.1:9/hooks', 'secret': h.SECRET}),
    ]))
    r = subprocess.run([h.FIREGRIDD, '--check-config', '--config', good], capture_output=True,
                       timeout=30)
    h.check(r.returncode == 0, '--check-config refused a valid file: %s' % r.stderr.decode())

    bad = env.write('bad.conf', '\n'.join([
        '[daemon]',
        'gateway_id = gw-test',
        'state_dir = %s' % env.path(),
        '[mqtt]',
        'port = not-a-port',            # line 5
        'colour = blue',                # line 6: unknown key
        '[sink ops]',
        'url = http://127.0.0.1:9/hooks',
        'secret = %s' % h.SECRET,
        '',
    ]))
    r = subprocess.run([h.FIREGRIDD, '--check-config', '--config', bad], capture_output=True,
                       timeout=30)
    err = (r.stderr + r.stdout).decode(errors='replace')
    h.check(r.returncode != 0, '--check-config accepted an invalid file')
    h.check('%s:5' % bad in err and 'port' in err, 'no "%s:5 ... port" in: %s' % (bad, err))
    h.check('%s:6' % bad in err and 'colour' in err, 'no "%s:6 ... colour" in: %s' % (bad, err))

    # The daemon itself refuses to start on it, too.
    r = subprocess.run([h.FIREGRIDD, '--config', bad], capture_output=True, timeout=30)
    h.check(r.returncode != 0, 'firegridd started with an invalid config')


def body(env):
    check_config_errors(env)

    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)], [
        ('z2m', {'plugin': 'zigbee2mqtt', 'topics': 'zigbee2mqtt/#'}),
        ('generic', {'plugin': 'generic-json', 'topics': 'firegrid/#'}),
    ])
    big = env.write('big.json', b'{"smoke":true,"pad":"' + b'x' * (1024 * 1024) + b'"}')
    bad_z2m = [
        ('not json at all', b'smoke!!'),
        ('truncated', b'{"smoke":true,"battery":'),
        ('wrong types', b'{"smoke":"yes","battery":"full","test":7}'),
        ('array', b'[1,2,3]'),
        ('binary', bytes(range(256))),
    ]
    bad_generic = [
        ('not json', b'<alarm/>'),
        ('truncated', b'{"device":"dev-x","kind":"sm'),
        ('wrong types', b'{"device":42,"kind":["smoke"]}'),
        ('unknown kind', b'{"device":"dev-x","kind":"volcano"}'),
        ('no device', b'{"kind":"smoke"}'),
    ]
    args = ['--retain', '--topic', 'zigbee2mqtt/bridge/devices',
            '--file', h.z2m_file('bridge_devices.json'), '--no-retain']
    for i, (what, payload) in enumerate(bad_z2m):
        args += ['--topic', KITCHEN, '--file', env.write('z2m-bad-%d' % i, payload)]
    args += ['--topic', KITCHEN, '--file', big]
    # A device Zigbee2MQTT never listed in bridge/devices.
    args += ['--topic', 'zigbee2mqtt/b9/unknown_smoke', '--message', '{"smoke":true}']
    for i, (what, payload) in enumerate(bad_generic):
        args += ['--topic', 'firegrid/dev-bad', '--file', env.write('gen-bad-%d' % i, payload)]
    args += ['--topic', 'firegrid/big', '--file', big]
    # The good ones, after all of that.
    args += ['--topic', KITCHEN, '--file', h.z2m_file('heiman_hs1sa_smoke_alarm_active.json'),
             '--topic', 'firegrid/dev-good', '--message', '{"device":"dev-good","kind":"smoke"}']
    summary = env.fg_pub(broker.port, *args)
    h.check(summary['acked'] == summary['published'], 'fg-pub: %r' % summary)

    def good_incidents():
        inc = d.incidents()
        devs = {h.incident_device(i) for i in inc}
        ok_z2m = any(h.z2m_ieee('b3/u201/smoke_kitchen') in x for x in devs)
        ok_gen = any(x.endswith('dev-good') for x in devs)
        return inc if ok_z2m and ok_gen else None
    incidents = h.wait_until(good_incidents, 30, 'the good alarms to become incidents')
    h.check(d.alive(), 'firegridd died')

    def counters():
        z = d.metric('firegrid_decode_errors_total', 'source', 'z2m')
        g = d.metric('firegrid_decode_errors_total', 'source', 'generic')
        o = d.metric('firegrid_oversize_total')
        return (z, g, o) if z >= len(bad_z2m) and g >= len(bad_generic) and o >= 2 else None
    try:
        z, g, o = h.wait_until(counters, 30, 'the bad-input counters', interval=0.5)
    except h.TestFailure:
        h.log('status: %s' % d.status())
        raise
    h.log('decode errors z2m=%d generic=%d, oversize=%d' % (z, g, o))
    msgs = d.metric('firegrid_messages_total', 'source', 'z2m')
    h.check(msgs >= len(bad_z2m) + 2, 'firegrid_messages_total{source="z2m"} = %d' % msgs)

    # Unknown z2m device: no incident under a made-up id for the good
    # device's name, and nothing from the bad payloads.
    kinds = sorted(i['kind'] for i in incidents if 'dev-bad' not in h.incident_device(i))
    h.log('incidents: %s' % [(h.incident_device(i), i['kind']) for i in incidents])
    h.check(not any('dev-bad' in h.incident_device(i) or h.incident_device(i) in ('42', 'dev-x')
                    for i in incidents), 'a bad generic message became an incident')
    h.check('smoke' in kinds, 'no smoke incident')
    # A smoke alarm from a device missing from bridge/devices is still an
    # alarm: it must not be dropped (it is known by its friendly name).
    h.check(any('b9/unknown_smoke' in h.incident_device(i) for i in incidents),
            'the alarm of a device unknown to bridge/devices was dropped')

    log_text = d.log_text()
    h.check('decode' in log_text or 'error' in log_text, 'no log line for the bad input')
    h.check('oversize' in log_text or 'too large' in log_text or 'max_payload' in log_text,
            'no log line for the 1 MB payload:\n' + h.tail(log_text))

    # Still serving: one more good alarm after all that.
    env.fg_pub(broker.port, '--topic', 'firegrid/dev-late',
               '--message', '{"device":"dev-late","kind":"smoke"}')
    h.wait_until(lambda: any(h.incident_device(i).endswith('dev-late') for i in d.incidents()),
                 30, 'an alarm after the bad input')
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s on SIGTERM' % rc)


if __name__ == '__main__':
    h.run('bad_input', body)
