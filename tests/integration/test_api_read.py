#!/usr/bin/env python3
"""
The ops-center API's read side on the real firegridd: /healthz follows the
broker link (503 while the broker is down), /metrics is Prometheus text with
the incident and outbox gauges, GET /v1/incidents filters and pages,
GET /v1/incidents/{id} carries the history, GET /v1/devices lists what was
seen, and /v1 refuses callers without credentials.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import ops_center as oc  # noqa: E402


def body(env):
    broker = env.broker()
    center = oc.OpsCenter(env, 0)
    d = oc.start_daemon(env, broker, center)
    center.api_port = d.api_port

    st, doc = center.request('GET', '/healthz', auth=None)
    h.check(st == 200 and doc['status'] == 'ok' and doc['broker'] == 'connected' and
            doc['store'] == 'ok', 'healthz: %s %s' % (st, doc))

    oc.publish(env, broker, 'dev-a', 'smoke')
    oc.publish(env, broker, 'dev-b', 'battery_low')
    h.wait_until(lambda: len(center.events) >= 2, 30, 'two opened webhooks')

    # --- list and filters ---------------------------------------------------
    st, doc = center.request('GET', '/v1/incidents')
    h.check(st == 200 and len(doc['incidents']) == 2, 'list: %s %s' % (st, doc))
    h.check(doc['next_before'] is None, 'a short list has no next page: %s' % doc)
    ids = [i['id'] for i in doc['incidents']]
    h.check(ids == sorted(ids, reverse=True), 'newest first: %s' % ids)
    smoke = next(i for i in doc['incidents'] if i['kind'] == 'smoke')
    h.check(smoke['device']['id'].endswith('dev-a') and smoke['fire_class'] is True,
            'smoke incident view: %s' % smoke)

    st, doc = center.request('GET', '/v1/incidents?kind=smoke')
    h.check(st == 200 and [i['id'] for i in doc['incidents']] == [smoke['id']], 'kind=smoke: %s' % doc)
    st, doc = center.request('GET', '/v1/incidents?since=1h')
    h.check(st == 200 and len(doc['incidents']) == 2, 'since=1h: %s' % doc)
    st, doc = center.request('GET', '/v1/incidents?since=2099-01-01T00:00:00Z')
    h.check(st == 200 and doc['incidents'] == [], 'since in the future: %s' % doc)
    st, doc = center.request('GET', '/v1/incidents?limit=1')
    h.check(st == 200 and len(doc['incidents']) == 1 and doc['next_before'] == ids[0],
            'limit=1: %s' % doc)
    st, doc = center.request('GET', '/v1/incidents?limit=1&before=%d' % ids[0])
    h.check(st == 200 and [i['id'] for i in doc['incidents']] == [ids[1]], 'page 2: %s' % doc)
    for q, field in (('state=burning', 'state'), ('kind=lava', 'kind'), ('since=yesterday', 'since'),
                     ('limit=0', 'limit'), ('limit=5000', 'limit'), ('before=-3', 'before')):
        st, doc = center.request('GET', '/v1/incidents?' + q)
        h.check(st == 400 and doc.get('field') == field, '%s: %s %s' % (q, st, doc))

    # --- one incident --------------------------------------------------------
    st, doc = center.request('GET', '/v1/incidents/%d' % smoke['id'])
    h.check(st == 200 and doc['incident']['id'] == smoke['id'], 'detail: %s %s' % (st, doc))
    hist = doc['history']
    h.check(hist and hist[0]['to'] == 'open' and hist[0]['from'] is None and
            hist[0]['channel'] == 'device', 'history starts with the opening: %s' % hist)
    st, doc = center.request('GET', '/v1/incidents/999999')
    h.check(st == 404 and doc.get('field') == 'id', 'unknown id: %s %s' % (st, doc))
    st, doc = center.request('GET', '/v1/incidents/abc')
    h.check(st == 400 and doc.get('field') == 'id', 'bad id: %s %s' % (st, doc))

    # --- devices -------------------------------------------------------------
    st, doc = center.request('GET', '/v1/devices')
    devs = sorted(x['id'] for x in doc.get('devices', []))
    h.check(st == 200 and len(devs) == 2 and devs[0].endswith('dev-a'), 'devices: %s %s' % (st, doc))
    st, doc = center.request('GET', '/v1/devices?limit=1')
    h.check(st == 200 and doc['next_after'] == devs[0], 'devices page: %s' % doc)
    st, doc = center.request('GET', '/v1/devices?after=%s' % devs[0])
    h.check(st == 200 and [x['id'] for x in doc['devices']] == devs[1:], 'devices after: %s' % doc)

    # --- authentication -------------------------------------------------------
    st, doc = center.request('GET', '/v1/incidents', auth=None)
    h.check(st == 401, 'no credentials: %s %s' % (st, doc))
    st, doc = center.request('GET', '/v1/incidents', auth='Bearer wrong-token-0123456789abc')
    h.check(st == 401, 'wrong token: %s %s' % (st, doc))
    st, doc = center.request('GET', '/v1/incidents', auth='Bearer viewer-token-0123456789abcdef')
    h.check(st == 200, 'read-only client reads: %s %s' % (st, doc))
    st, doc = center.request('GET', '/v1/incidents', auth='signature')
    h.check(st == 200, 'signed read: %s %s' % (st, doc))

    # --- metrics --------------------------------------------------------------
    st, text = center.request('GET', '/metrics', auth=None)
    h.check(st == 200 and isinstance(text, str), '/metrics: %s' % st)
    for pat in (r'^# TYPE firegrid_incidents gauge$',
                r'^firegrid_outbox_depth \d+$', r'^firegrid_outbox_oldest_age_seconds \d+$',
                r'^firegrid_events_total\{kind="smoke"\} 1$', r'^firegrid_mqtt_connected 1$',
                r'^# TYPE firegrid_http_requests_total counter$', r'^firegrid_dead_letters 0$'):
        h.check(re.search(pat, text, re.M), '/metrics lacks %s:\n%s' % (pat, text))
    live = sum(int(v) for v in re.findall(r'^firegrid_incidents\{state="(?:open|reported)"\} (\d+)$',
                                           text, re.M))
    h.check(live == 2, 'open + reported incidents in /metrics: %d\n%s' % (live, text))
    h.check(re.search(r'^firegrid_incidents\{state="dispatched"\} 0$', text, re.M),
            'states without incidents read 0:\n' + text)
    families = [m for m in re.findall(r'^# TYPE (\S+)', text, re.M)]
    h.check(len(families) == len(set(families)), 'a metric family is split: %s' % families)

    # --- health follows the broker link ---------------------------------------
    broker.stop()
    h.wait_until(lambda: center.request('GET', '/healthz', auth=None)[0] == 503, 30,
                 '/healthz 503 with the broker down')
    st, doc = center.request('GET', '/healthz', auth=None)
    h.check(doc['broker'] == 'disconnected' and doc['status'] == 'unavailable', 'healthz: %s' % doc)
    broker.start()
    h.wait_until(lambda: center.request('GET', '/healthz', auth=None)[0] == 200, 60,
                 '/healthz 200 after the broker is back')

    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s' % rc)
    center.close()


if __name__ == '__main__':
    h.run('api_read', body)
