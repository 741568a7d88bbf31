#!/usr/bin/env python3
"""
The device registry and correlation on the real firegridd:
  - `firegridctl devices import` refuses a bad CSV as a whole, naming line and
    column, and imports a good one (also while firegridd runs); export gives
    it back;
  - registered devices carry place, grid cells and flags in every webhook and
    in GET /v1/devices, unknown ones are marked unregistered;
  - double knock: a second detector in the same building confirms the first;
    an elderly_alone household is confirmed at once;
  - storm: many devices of one compound going offline make one site incident;
  - after the broker link comes back, offline reports settle: a device that is
    back within offline_settle is never reported.
"""
import csv
import io
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import ops_center as oc  # noqa: E402

GOOD = (
    'device_id,plugin,name,compound,building,unit,floor,room,grid_small,grid_medium,grid_large,'
    'flags,contact\n'
    'k1,generic-json,"3-1-201 kitchen",heping,3,1,2,201,b3,community-5,street-2,,"Li, desk"\n'
    'k2,generic-json,3-2-502 hall,heping,3,2,5,502,b3,community-5,street-2,,\n'
    'k3,generic-json,4-1-101,heping,4,1,1,101,b4,community-5,street-2,elderly_alone;mobility_impaired,\n'
) + ''.join('w%d,generic-json,west %d,west,1,1,1,,w1,community-6,street-2,,\n' % (i, i)
            for i in range(1, 7))


def ctl(d, *args):
    r = subprocess.run([h.FIREGRIDCTL, '--db', d.db] + list(args), capture_output=True,
                       timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def webhooks_for(center, device, change=None):
    return [e for e in center.events if e['data']['device']['id'] == device and
            (change is None or e['type'].endswith('.' + change))]


def body(env):
    broker = env.broker()
    center = oc.OpsCenter(env, 0)
    d = oc.start_daemon(env, broker, center, wait=False, sections=[
        ('incidents', {'storm_devices': '3', 'storm_window': '2s', 'offline_settle': '6s'})])
    center.api_port = d.api_port

    # --- import: all or nothing -------------------------------------------------
    bad = env.write('bad.csv', 'device_id,building,colour\nk9,3,red\n,4,blue\nk9,5,x\n'
                               'k8,"open quote,1\n')
    rc, out, err = ctl(d, 'devices', 'import', bad)
    h.check(rc == 1, 'a bad registry was accepted: %s %s' % (out, err))
    for want in ('bad.csv:1: column colour: unknown column', 'bad.csv:3: column device_id: '
                 'device_id is required', "bad.csv:4: column device_id: 'k9' is already on line 2",
                 'bad.csv:5: a quoted field is not closed', 'nothing imported'):
        h.check(want in err, 'import errors lack %r:\n%s' % (want, err))
    good = env.write('good.csv', GOOD)
    rc, out, err = ctl(d, 'devices', 'import', good)
    h.check(rc == 0 and '9 devices registered' in out, 'import: %s %s' % (out, err))
    rc, out, err = ctl(d, 'devices', 'export')
    rows = list(csv.DictReader(io.StringIO(out)))
    h.check(rc == 0 and len(rows) == 9, 'export: %s %s' % (out, err))
    k3 = next(r for r in rows if r['device_id'] == 'k3')
    h.check(k3['flags'] == 'elderly_alone;mobility_impaired' and k3['building'] == '4',
            'exported k3: %s' % k3)
    h.check(next(r for r in rows if r['device_id'] == 'k1')['contact'] == 'Li, desk',
            'a quoted cell did not survive')

    d.start()
    h.wait_until(lambda: h.port_open(d.api_port), 15, 'the API')

    # --- the registry in webhooks ----------------------------------------------
    oc.publish(env, broker, 'k1', 'smoke')
    oc.publish(env, broker, 'stranger', 'battery_low')
    ev = center.wait_incident(lambda e: e['data']['device']['id'] == 'k1', 30, 'k1 opened')
    dev = ev['data']['device']
    h.check(dev['registered'] is True and dev['name'] == '3-1-201 kitchen' and
            dev['location'] == {'compound': 'heping', 'building': '3', 'unit': '1', 'floor': '2',
                                'room': '201'} and
            dev['grid'] == {'small': 'b3', 'medium': 'community-5', 'large': 'street-2'} and
            dev['flags'] == [] and dev['contact'] == 'Li, desk', 'k1 device: %s' % dev)
    h.check(ev['data']['incident']['confirmed'] is False, 'k1 is a first knock')
    k1 = ev['data']['incident']['id']
    ev = center.wait_incident(lambda e: e['data']['device']['id'] == 'stranger', 30, 'stranger')
    h.check(ev['data']['device']['registered'] is False and ev['data']['device']['location'] is None,
            'unknown device: %s' % ev['data']['device'])

    # --- double knock ------------------------------------------------------------
    oc.publish(env, broker, 'k2', 'heat')
    ev = center.wait_incident(lambda e: e['data']['device']['id'] == 'k2', 30, 'k2 opened')
    h.check(ev['data']['incident']['confirmed'] is True, 'the second knock is confirmed at once')
    ev = center.wait_type(k1, 'confirmed', 15)
    h.check(ev['data']['incident']['confirmed'] is True, 'k1 upgraded: %s' % ev)
    oc.publish(env, broker, 'k3', 'smoke')
    ev = center.wait_incident(lambda e: e['data']['device']['id'] == 'k3', 30, 'k3 opened')
    h.check(ev['data']['incident']['confirmed'] is True and
            ev['data']['device']['flags'] == ['elderly_alone', 'mobility_impaired'],
            'elderly alone: %s' % ev['data'])

    # --- storm: one site incident instead of six -------------------------------------
    time.sleep(6.5)                     # past the settle time of the first connect
    for i in range(1, 7):
        oc.publish(env, broker, 'w%d' % i, 'offline')
    ev = center.wait_incident(lambda e: e['data']['device']['id'] == 'site:west', 30,
                              'the site incident')
    site = ev['data']['incident']
    h.check(site['kind'] == 'offline' and site['count'] >= 4, 'site incident: %s' % site)
    time.sleep(3)
    h.check(not any(webhooks_for(center, 'w%d' % i) for i in range(1, 7)),
            'device offline reports went out despite the storm')
    st, doc = center.request('GET', '/v1/incidents/%d' % site['id'])
    h.check(doc['incident']['count'] == 6, 'site count: %s' % doc['incident'])
    for i in range(1, 7):
        oc.publish(env, broker, 'w%d' % i, 'online')
    ev = center.wait_type(site['id'], 'cleared', 30)
    h.check(ev['data']['incident']['state'] == 'resolved', 'site back: %s' % ev['data']['incident'])

    # --- offline settles after the broker link comes back ---------------------------
    oc.publish(env, broker, 'lone-1', 'offline')          # baseline: reported after 2 s
    center.wait_incident(lambda e: e['data']['device']['id'] == 'lone-1', 30, 'lone-1 reported')
    broker.stop()
    broker.start()
    d.wait_log('mqtt: subscribed', 60, count=2)
    oc.publish(env, broker, 'lone-2', 'offline')
    time.sleep(2.5)                                       # past storm_window, within settle
    oc.publish(env, broker, 'lone-2', 'online')
    time.sleep(6)
    h.check(not webhooks_for(center, 'lone-2'), 'an offline report during the settle went out')
    st, doc = center.request('GET', '/v1/incidents?kind=offline')
    lone2 = [i for i in doc['incidents'] if i['device']['id'] == 'lone-2']
    h.check(lone2 and lone2[0]['state'] == 'closed', 'lone-2: %s' % lone2)

    # --- the registry over the API, and a replace while running ----------------------
    st, doc = center.request('GET', '/v1/devices?registered=true')
    h.check(st == 200 and len(doc['devices']) == 9 and
            all(x['registered'] for x in doc['devices']), 'registered devices: %s' % doc)
    k1dev = next(x for x in doc['devices'] if x['id'] == 'k1')
    h.check(k1dev['location']['building'] == '3' and k1dev['last_seen_at'], 'k1: %s' % k1dev)
    rc, out, err = ctl(d, 'devices', 'import', '--replace',
                       env.write('small.csv', 'device_id,compound,building\nk1,heping,3\n'))
    h.check(rc == 0, 'replace while running: %s' % err)
    st, doc = center.request('GET', '/v1/devices?registered=true')
    h.check([x['id'] for x in doc['devices']] == ['k1'], 'after replace: %s' % doc)
    h.check(center.bad_signatures == 0, 'bad signatures')
    h.check(d.stop() == 0, 'firegridd exit code')
    center.close()


if __name__ == '__main__':
    h.run('registry', body)
