"""
A reference city operations center for the integration tests.

It plays both sides of the loop:
  - a webhook receiver (its own HTTP server on a loopback port) that checks
    every Standard Webhooks signature, records each CloudEvent, and answers
    the first revision of an incident with {"case_no": "..."} the way a
    center's intake does;
  - an API client of firegridd's ops-center API (bearer token or Standard
    Webhooks signatures) that reads incidents and posts actions.

A policy callback may act on webhooks as they arrive (e.g. accept every
opened incident), which is how a real center would close the loop; tests
mostly drive the steps themselves and wait for the revisions.

Standard library only (http.server, urllib, hmac).
"""

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness as h

TOKEN = 'ops-center-token-0123456789abcdef'
CLIENT_SECRET = 'whsec_b3BzIGNlbnRlciBjbGllbnQgc2lnbmluZyBrZXk='


def _key(secret):
    return base64.b64decode(secret[len('whsec_'):] if secret.startswith('whsec_') else secret)


def sign(secret, msg_id, ts, body):
    mac = hmac.new(_key(secret), b'%s.%d.%s' % (msg_id.encode(), ts, body), hashlib.sha256)
    return 'v1,' + base64.b64encode(mac.digest()).decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        center = self.server.center
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n)
        msg_id = self.headers.get('webhook-id') or ''
        ts = self.headers.get('webhook-timestamp') or '0'
        sigs = (self.headers.get('webhook-signature') or '').split()
        ok = False
        try:
            want = sign(center.secret, msg_id, int(ts), body)
            ok = any(hmac.compare_digest(want, s) for s in sigs)
        except ValueError:
            ok = False
        if not ok:
            center._record({'signature_ok': False, 'webhook_id': msg_id})
            self._reply(401, {'error': 'bad signature'})
            return
        try:
            ce = json.loads(body)
        except ValueError:
            self._reply(400, {'error': 'not JSON'})
            return
        status, reply = center._accept(msg_id, ce)
        self._reply(status, reply)

    def _reply(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class OpsCenter:
    """Webhook receiver + API client.  `api_port` is firegridd's API port."""

    def __init__(self, env, api_port, secret=h.SECRET, token=TOKEN,
                 client_secret=CLIENT_SECRET, policy=None):
        self.env = env
        self.api_port = api_port
        self.secret = secret
        self.token = token
        self.client_secret = client_secret
        self.policy = policy
        self.lock = threading.Lock()
        self.events = []           # CloudEvents accepted, in arrival order
        self.bad_signatures = 0
        self.status = 200          # answer to webhooks
        self.case_seq = 0
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.server.center = self
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = 'http://127.0.0.1:%d/intake' % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # --- webhook side -----------------------------------------------------------
    def _record(self, rec):
        with self.lock:
            if rec.get('signature_ok') is False:
                self.bad_signatures += 1

    def _accept(self, msg_id, ce):
        with self.lock:
            status = self.status
            if status >= 300:
                return status, {'error': 'configured failure'}
            first = not any(e['id'] == ce.get('id') for e in self.events)
            if first:
                self.events.append(ce)
            reply = {'ok': True}
            inc = ce.get('data', {}).get('incident', {})
            if ce.get('type', '').endswith('.opened') and not inc.get('case_no'):
                self.case_seq += 1
                reply['case_no'] = 'CASE-%d-%d' % (inc.get('id', 0), self.case_seq)
        if self.policy and first:
            threading.Thread(target=self.policy, args=(self, ce), daemon=True).start()
        return 200, reply

    def sink(self, **kw):
        kv = {'url': self.url, 'secret': self.secret}
        kv.update(kw)
        return ('center', kv)

    def types(self, incident_id):
        """CloudEvent types received for one incident, in revision order."""
        with self.lock:
            evs = [e for e in self.events
                   if e.get('data', {}).get('incident', {}).get('id') == incident_id]
        evs.sort(key=lambda e: e['data']['incident']['revision'])
        return [e['type'].rsplit('.', 1)[1] for e in evs]

    def latest(self, incident_id):
        with self.lock:
            evs = [e for e in self.events
                   if e.get('data', {}).get('incident', {}).get('id') == incident_id]
        return max(evs, key=lambda e: e['data']['incident']['revision']) if evs else None

    def wait_type(self, incident_id, change, timeout=30, count=1):
        h.wait_until(lambda: self.types(incident_id).count(change) >= count, timeout,
                     'a %s webhook for incident %s (got %s)'
                     % (change, incident_id, self.types(incident_id)))
        return self.latest(incident_id)

    def wait_incident(self, pred, timeout=30, what='an incident webhook'):
        def find():
            with self.lock:
                for e in self.events:
                    if pred(e):
                        return e
            return None
        return h.wait_until(find, timeout, what)

    # --- API side ---------------------------------------------------------------
    def request(self, method, path, body=None, auth='bearer', raw=None, headers=None):
        """Returns (status, parsed JSON or text)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = {'Content-Type': 'application/json'}
        if auth == 'bearer':
            hdrs['Authorization'] = 'Bearer ' + self.token
        elif auth == 'signature':
            msg_id = 'msg_' + uuid.uuid4().hex
            ts = int(time.time())
            hdrs['webhook-id'] = msg_id
            hdrs['webhook-timestamp'] = str(ts)
            hdrs['webhook-signature'] = sign(self.client_secret, msg_id, ts, data or b'')
        elif isinstance(auth, str) and auth.startswith('Bearer '):
            hdrs['Authorization'] = auth
        hdrs.update(headers or {})
        req = urllib.request.Request('http://127.0.0.1:%d%s' % (self.api_port, path), data=data,
                                     method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def act(self, incident_id, action, auth='bearer', **fields):
        body = {'action': action, 'actor': fields.pop('actor', 'dispatcher-7'),
                'action_id': fields.pop('action_id', 'act-' + uuid.uuid4().hex)}
        body.update(fields)
        return self.request('POST', '/v1/incidents/%s/actions' % incident_id, body, auth=auth)

    def incident(self, incident_id):
        status, doc = self.request('GET', '/v1/incidents/%s' % incident_id)
        h.check(status == 200, 'GET incident %s: %s %s' % (incident_id, status, doc))
        return doc


def api_sections(port, token=TOKEN, client_secret=CLIENT_SECRET, extra_api=None):
    """[api] and [client] sections for a daemon config."""
    api = {'listen': '127.0.0.1:%d' % port}
    api.update(extra_api or {})
    return [('api', api),
            ('client center', {'token': token, 'allow': 'read actions'}),
            ('client signer', {'secret': client_secret, 'allow': 'read actions'}),
            ('client viewer', {'token': 'viewer-token-0123456789abcdef', 'allow': 'read'})]


def start_daemon(env, broker, center_or_sinks, sources=None, api_port=None, extra=None,
                 sections=(), name='firegridd', wait=True, api=None):
    """A firegridd with the API and our clients configured; returns it.
    `api` adds [api] keys, `sections` more INI sections."""
    api_port = api_port or h.free_port()
    sinks = center_or_sinks if isinstance(center_or_sinks, list) else [center_or_sinks.sink()]
    d = env.daemon(broker, sinks, sources or h.generic_sources(), start=False, name=name,
                   extra=extra)
    d.api_port = api_port
    d.api_extra = api
    d.extra_sections = list(api_sections(api_port, extra_api=api)) + list(sections)
    d.write_config(d.config_text() + '\n' + h.ini(d.extra_sections))
    if wait:
        d.start()
        h.wait_until(lambda: h.port_open(api_port), 15, 'the API to listen on %d' % api_port)
    return d


def rewrite_config(d, sections=None):
    if sections is not None:
        d.extra_sections = list(api_sections(d.api_port, extra_api=d.api_extra)) + list(sections)
    d.write_config(d.config_text() + '\n' + h.ini(d.extra_sections))


def publish(env, broker, device, kind, **fields):
    msg = {'device': device, 'kind': kind}
    msg.update(fields)
    env.fg_pub(broker.port, '--topic', 'firegrid/' + device, '--message', json.dumps(msg))
