#!/usr/bin/env python3
"""
The API under hostile and broken requests, on the real firegridd: no or bad
credentials, a read-only client trying to act, stale and forged signatures,
oversized bodies (declared and chunked), malformed and deeply nested JSON,
unknown fields, garbage bytes instead of HTTP, an oversized header, idle and
half-sent connections, more connections than the limit.  Afterwards the
daemon still answers, still ingests alarms, and the incident was never
touched by any of it.
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import ops_center as oc  # noqa: E402


def raw(port, data, timeout=10):
    """Send raw bytes, return what comes back before the server closes (or the timeout)."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(data)
        out = b''
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    return out


def status_of(reply):
    try:
        return int(reply.split(b' ', 2)[1])
    except (IndexError, ValueError):
        return None


def body(env):
    broker = env.broker()
    center = oc.OpsCenter(env, 0)
    # Short idle timeout, a small connection limit and body limit for this test.
    d = oc.start_daemon(env, broker, center, api={'idle_timeout': '2s', 'connection_limit': '8',
                                                  'max_body': '4096'})
    center.api_port = port = d.api_port

    oc.publish(env, broker, 'dev-a', 'smoke')
    ev = center.wait_incident(lambda e: e['type'].endswith('.opened'), 30, 'opened')
    iid = ev['data']['incident']['id']
    path = '/v1/incidents/%d/actions' % iid
    good = {'action': 'accept', 'action_id': 'x-1', 'actor': 'desk'}

    # --- credentials ------------------------------------------------------------
    for auth, want in ((None, 401), ('Bearer short', 401),
                       ('Bearer viewer-token-0123456789abcdef', 403)):
        st, doc = center.request('POST', path, good, auth=auth)
        h.check(st == want, 'auth %r: %s %s' % (auth, st, doc))
    forged = center.client_secret
    center.client_secret = 'whsec_' + 'QUFB' * 8
    st, doc = center.request('POST', path, good, auth='signature')
    h.check(st == 401, 'a signature with an unknown secret: %s %s' % (st, doc))
    center.client_secret = forged
    data = json.dumps(good).encode()
    stale = int(time.time()) - 3600
    st, doc = center.request('POST', path, raw=data, auth=None, headers={
        'webhook-id': 'msg_old', 'webhook-timestamp': str(stale),
        'webhook-signature': oc.sign(center.client_secret, 'msg_old', stale, data)})
    h.check(st == 401 and 'tolerance' in doc.get('error', ''), 'stale signature: %s %s' % (st, doc))

    # --- bodies -------------------------------------------------------------------
    cases = [
        (b'{"action":', 400), (b'[]', 400), (b'"accept"', 400), (b'', 400),
        (b'{"action":"accept","action_id":"x","actor":"a","extra":true}', 400),
        (b'{"action":"accept","action_id":"x","actor":"a","action":"close"}', 400),
        (b'\xff\xfe{"action"', 400),
        (b'[' * 2000 + b']' * 2000, 400),
        (b'{"action":"accept","action_id":"' + b'x' * 5000 + b'","actor":"a"}', 413),
    ]
    for payload, want in cases:
        st, doc = center.request('POST', path, raw=payload)
        h.check(st == want, 'body %r...: %s %s' % (payload[:40], st, doc))
        h.check(isinstance(doc, dict) and doc.get('status') == want,
                'error body is not JSON with the status: %r' % (doc,))
    # A chunked body that grows past the limit.
    chunks = b''.join(b'%x\r\n%s\r\n' % (1000, b'x' * 1000) for _ in range(10)) + b'0\r\n\r\n'
    reply = raw(port, b'POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
                b'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
                % (path.encode(), oc.TOKEN.encode()) + chunks)
    h.check(status_of(reply) == 413, 'chunked oversize: %r' % reply[:200])

    # --- not HTTP at all, oversized header, bad paths ----------------------------
    reply = raw(port, b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + os.urandom(200), timeout=5)
    h.check(status_of(reply) in (None, 400), 'garbage got %r' % reply[:100])
    reply = raw(port, b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 100000 +
                b'\r\n\r\n', timeout=5)
    h.check(status_of(reply) in (None, 400, 413, 431), 'huge header got %r' % reply[:100])
    for p in ('/v1/incidents/../../etc/passwd', '/v1/incidents/%00', '/v1/incidents/1/actions/x',
              '/v1/incidents/99999999999999999999999'):
        st, doc = center.request('GET', p)
        h.check(st in (400, 404, 405), '%s: %s %s' % (p, st, doc))

    # --- idle, half-sent and too many connections ---------------------------------
    socks = []
    for _ in range(20):
        try:
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            s.sendall(b'POST ' + path.encode() + b' HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n')
            socks.append(s)
        except OSError:
            pass
    # The daemon is single-threaded: half-sent requests must not block it.
    oc.publish(env, broker, 'dev-b', 'heat')
    center.wait_incident(lambda e: e['data']['device']['id'].endswith('dev-b'), 30,
                         'an alarm while connections hang')
    # The idle timeout frees the slots.
    time.sleep(3)
    for s in socks:
        s.close()
    h.wait_until(lambda: center.request('GET', '/healthz', auth=None)[0] == 200, 30,
                 '/healthz after the idle connections were dropped')

    # --- nothing of it touched the incident ----------------------------------------
    doc = center.incident(iid)
    h.check(doc['incident']['state'] == 'reported' and
            not any(x['channel'].startswith('api:') for x in doc['history']),
            'the incident was changed by refused requests: %s' % doc)
    st, doc = center.request('POST', path, good)
    h.check(st == 200, 'a good action after all that: %s %s' % (st, doc))
    h.check(d.alive(), 'firegridd died')
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s' % rc)
    center.close()


if __name__ == '__main__':
    h.run('api_abuse', body)
