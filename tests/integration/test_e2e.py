#!/usr/bin/env python3
"""
End to end with the Zigbee2MQTT corpus: a smoke alarm, its cached repeat, the
clear, a test-button press and a Tuya low battery go through a real
mosquitto into firegridd, and come out as exactly two incidents (smoke,
battery_low) and three signed webhooks (smoke opened + cleared, battery_low
opened).  The test press must not become an incident.
"""
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KITCHEN = 'zigbee2mqtt/b3/u201/smoke_kitchen'
STAIR = 'zigbee2mqtt/b5/stair_3f_smoke'
HEIMAN_IEEE = h.z2m_ieee('b3/u201/smoke_kitchen')
TUYA_IEEE = h.z2m_ieee('b5/stair_3f_smoke')


def unique_webhooks(records):
    """One record per webhook-id (deliveries are at least once)."""
    seen = {}
    for r in records:
        seen.setdefault(r.get('webhook_id'), r)
    return list(seen.values())


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)],
                   [('z2m', {'plugin': 'zigbee2mqtt', 'topics': 'zigbee2mqtt/#'})])

    summary = env.fg_pub(
        broker.port, '--pause-ms', 300,
        '--retain', '--topic', 'zigbee2mqtt/bridge/devices',
        '--file', h.z2m_file('bridge_devices.json'), '--no-retain',
        '--topic', KITCHEN,
        '--file', h.z2m_file('heiman_hs1sa_smoke_alarm_active.json'),
        '--file', h.z2m_file('heiman_hs1sa_cached_repeat_after_battery_report.json'),
        '--file', h.z2m_file('heiman_hs1sa_smoke_cleared.json'),
        '--file', h.z2m_file('heiman_hs1sa_test_button.json'),
        '--topic', STAIR,
        '--file', h.z2m_file('tuya_ts0601_smoke_4_battery_state_low.json'))
    h.check(summary.get('acked') == 6, 'fg-pub: %r' % summary)

    def three_webhooks():
        hooks = unique_webhooks(rx.records())
        return hooks if len(hooks) >= 3 else None
    h.wait_until(three_webhooks, 30, 'three webhooks')
    h.wait_until(lambda: len(d.outbox()) == 0, 30, 'an empty outbox')

    incidents = d.incidents()
    h.log('incidents: %s' % incidents)
    kinds = sorted(i.get('kind') for i in incidents)
    h.check(kinds == ['battery_low', 'smoke'],
            'expected one smoke and one battery_low incident, got %s' % kinds)
    smoke = next(i for i in incidents if i['kind'] == 'smoke')
    battery = next(i for i in incidents if i['kind'] == 'battery_low')
    h.check(HEIMAN_IEEE in h.incident_device(smoke),
            'smoke incident device %r is not the Heiman resolved via bridge/devices'
            % smoke.get('device'))
    h.check(TUYA_IEEE in h.incident_device(battery),
            'battery incident device %r is not the Tuya' % battery.get('device'))
    h.check(smoke.get('severity') == 'critical', 'smoke severity %r' % smoke.get('severity'))
    h.check(battery.get('severity') == 'warning', 'battery severity %r' % battery.get('severity'))
    h.check(smoke.get('cleared_at'), 'smoke incident not marked cleared: %r' % smoke)
    h.check(not battery.get('cleared_at'), 'battery incident wrongly cleared: %r' % battery)

    records = rx.records()
    h.check(all(r.get('signature_ok') is True for r in records),
            'a webhook failed signature verification: %r'
            % [r for r in records if r.get('signature_ok') is not True])
    hooks = unique_webhooks(records)
    got = sorted((str(r.get('incident_id')), r.get('type')) for r in hooks)
    want = sorted([(str(smoke['id']), 'org.firegrid.incident.opened'),
                   (str(smoke['id']), 'org.firegrid.incident.cleared'),
                   (str(battery['id']), 'org.firegrid.incident.opened')])
    h.check(got == want, 'webhooks %s, expected %s' % (got, want))
    opened = next(r for r in hooks if str(r.get('incident_id')) == str(smoke['id'])
                  and r['type'].endswith('.opened'))
    cleared = next(r for r in hooks if str(r.get('incident_id')) == str(smoke['id'])
                   and r['type'].endswith('.cleared'))
    h.check(int(opened['revision']) < int(cleared['revision']),
            'cleared revision %s not after opened %s' % (cleared['revision'], opened['revision']))
    h.check(records.index(opened) < records.index(cleared), 'cleared arrived before opened')

    # The test press is recorded as an event only: no incident, no webhook.
    h.check(not any(i.get('kind') == 'test' for i in incidents), 'a test press became an incident')

    # Human output works too.
    table = subprocess.run([h.FIREGRIDCTL, '--db', d.db, 'incidents'], capture_output=True,
                           timeout=30)
    h.check(table.returncode == 0 and b'smoke' in table.stdout,
            'firegridctl incidents: %r' % table.stdout)
    detail = d.ctl('incident', str(smoke['id']))
    history = detail.get('history', [])
    h.check(any(x.get('to_state') == 'open' and x.get('revision') == 1 for x in history) and
            any(x.get('revision') == 2 and 'clear' in str(x.get('note')) for x in history),
            'incident %s history lacks the opening or the clear: %r' % (smoke['id'], history))

    # The daemon's own health endpoint agrees.
    with urllib.request.urlopen('http://127.0.0.1:%d/healthz' % d.api_port, timeout=10) as r:
        health = json.loads(r.read().decode())
    h.check(r.status == 200 and health.get('status') == 'ok', 'healthz: %r' % health)

    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s on SIGTERM' % rc)


if __name__ == '__main__':
    h.run('e2e', body)
