#!/usr/bin/env python3
"""
Output formats per sink on the real firegridd: one incident goes to a
CloudEvents sink (the reference ops center), a PagerDuty sink and a CAP sink
at once.  The PagerDuty sink sees trigger, then acknowledge after the
dispatch, then resolve after the close, all with the same dedup_key; the CAP
sink sees Alert, Updates and a Cancel that reference the first alert, each a
well-formed CAP 1.2 document; each request has its content type.
"""
import json
import os
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import ops_center as oc  # noqa: E402

CAP = '{urn:oasis:names:tc:emergency:cap:1.2}'


class Raw(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n)
        with self.server.lock:
            self.server.got.append((self.path, self.headers.get('Content-Type'), body))
        self.send_response(202)
        self.send_header('Content-Length', '0')
        self.end_headers()


def raw_server():
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Raw)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.got = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def body(env):
    broker = env.broker()
    center = oc.OpsCenter(env, 0)
    raw = raw_server()
    base = 'http://127.0.0.1:%d' % raw.server_address[1]
    sinks = [center.sink(),
             ('pd', {'url': base + '/pd', 'secret': h.SECRET, 'format': 'pagerduty',
                     'routing_key': 'R0UTINGKEY0123456789abcdef012345'}),
             ('cap', {'url': base + '/cap', 'secret': h.SECRET, 'format': 'cap'})]
    d = oc.start_daemon(env, broker, sinks)
    center.api_port = d.api_port

    def got(path):
        with raw.lock:
            return [(ct, b) for p, ct, b in raw.got if p == path]

    oc.publish(env, broker, 'dev-a', 'smoke', trigger='manual')
    ev = center.wait_incident(lambda e: e['type'].endswith('.opened'), 30, 'opened')
    iid = ev['data']['incident']['id']
    h.wait_until(lambda: len(got('/pd')) >= 1 and len(got('/cap')) >= 1, 30, 'pd and cap bodies')
    st, doc = center.act(iid, 'dispatch', unit='station-1')
    h.check(st == 200, 'dispatch: %s' % doc)
    st, doc = center.act(iid, 'close', disposition='false_alarm')
    h.check(st == 200, 'close: %s' % doc)
    h.wait_until(lambda: len(got('/pd')) >= 3 and len(got('/cap')) >= 3, 30, 'three revisions each')

    pds = got('/pd')
    h.check(all(ct == 'application/json' for ct, _ in pds), 'pd content types: %s' % pds)
    docs = [json.loads(b) for _, b in pds]
    h.check([x['event_action'] for x in docs] == ['trigger', 'acknowledge', 'resolve'],
            'pd actions: %s' % [x['event_action'] for x in docs])
    h.check(len({x['dedup_key'] for x in docs}) == 1 and
            docs[0]['dedup_key'] == 'gw-test-%d' % iid, 'pd dedup keys: %s' % docs)
    h.check(docs[0]['routing_key'] == 'R0UTINGKEY0123456789abcdef012345' and
            docs[0]['payload']['severity'] == 'critical' and
            docs[0]['payload']['custom_details']['incident']['id'] == iid, 'pd trigger: %s' % docs[0])

    caps = got('/cap')
    h.check(all(ct == 'application/cap+xml' for ct, _ in caps), 'cap content types')
    alerts = [ET.fromstring(b) for _, b in caps]
    kinds = [a.find(CAP + 'msgType').text for a in alerts]
    h.check(kinds == ['Alert', 'Update', 'Cancel'], 'cap msgTypes: %s' % kinds)
    first = alerts[0].find(CAP + 'identifier').text
    for a in alerts[1:]:
        refs = a.find(CAP + 'references').text.split(',')
        h.check(refs[1] == first, 'an update does not reference the alert: %s' % refs)
    info = alerts[0].find(CAP + 'info')
    h.check(info.find(CAP + 'category').text == 'Fire' and
            info.find(CAP + 'certainty').text == 'Observed' and
            info.find(CAP + 'urgency').text == 'Immediate', 'cap info: %s' % ET.tostring(info))
    h.check(alerts[2].find(CAP + 'info').find(CAP + 'certainty').text == 'Unlikely',
            'a false alarm is unlikely')
    h.check(d.stop() == 0, 'firegridd exit code')
    raw.shutdown()
    center.close()


if __name__ == '__main__':
    h.run('formats', body)
