#!/usr/bin/env python3
"""
The test rig itself, without firegridd: mosquitto with the gateway snippet
delivers a fast QoS 1 stream from fg-pub to one subscriber without dropping
anything, and fg-receiver accepts a correctly signed webhook and refuses a
forged one.  If this fails, the other integration tests cannot be trusted.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 20000


def post(rx, body, wid, ts, sig):
    req = urllib.request.Request(rx.url, data=body, method='POST', headers={
        'Content-Type': 'application/cloudevents+json', 'webhook-id': wid,
        'webhook-timestamp': str(ts), 'webhook-signature': sig})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def body(env):
    broker = env.broker()
    sub = env.fg_sub(broker.port, 'firegrid/#', N)
    summary = env.fg_pub(broker.port, '--devices', 1000, '--repeats', N // 1000, '--rate', 0)
    h.check(summary['acked'] == N, 'publisher: %r' % summary)
    got = env.fg_pub_result(sub, 60)
    h.log('publisher %s, subscriber %s' % (summary, got))
    h.check(got['received'] == N, 'the broker dropped messages: %r' % got)

    rx = env.receiver()
    key = base64.b64decode(h.SECRET[len('whsec_'):])
    payload = json.dumps({'specversion': '1.0', 'type': 'org.firegrid.incident.opened',
                          'id': 'wh-1', 'data': {'incident': {'id': 7, 'revision': 1}}}).encode()
    ts = int(time.time())
    mac = hmac.new(key, b'wh-1.%d.' % ts + payload, hashlib.sha256).digest()
    good = 'v1,' + base64.b64encode(mac).decode()
    h.check(post(rx, payload, 'wh-1', ts, good) == 200, 'a signed webhook was refused')
    h.check(post(rx, payload, 'wh-2', ts, good) == 401, 'a forged webhook was accepted')
    recs = h.wait_until(lambda: len(rx.records()) >= 2 and rx.records(), 10, 'receiver log')
    h.check(recs[0]['signature_ok'] is True and recs[0]['incident_id'] == 7 and
            recs[0]['revision'] == 1, 'receiver log: %r' % recs[0])
    h.check(recs[1]['signature_ok'] is False, 'receiver log: %r' % recs[1])
    stats = rx.stats()
    h.check(stats['accepted'] == 1 and stats['signature_failures'] == 1, 'stats: %r' % stats)


if __name__ == '__main__':
    h.run('tools', body)
