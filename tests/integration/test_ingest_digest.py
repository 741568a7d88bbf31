#!/usr/bin/env python3
"""
Camera pushes with HTTP Digest (RFC 7616) into the real firegridd: two
sources take digest only ([source] http_auth = digest), one with MD5 (what
Hikvision/Dahua cameras do), one with SHA-256; a third keeps the default
(any: Basic, token, signature).

  - the Hikvision corpus push with the right password by `curl --digest`
    (MD5 and SHA-256): accepted, one blocked-lane incident each (dwell 0)
    and its webhook.  (python's urllib digest client is not used: it
    refuses libmicrohttpd 0.9.75's lower-case `algorithm=md5`, which RFC
    7616's ABNF allows);
  - a wrong password: 401 with a fresh Digest challenge, nothing ingested,
    counted as firegrid_http_auth_failures_total{reason="invalid"};
  - no credentials: 401 with only a Digest challenge (realm, algorithm,
    qop) and no Basic one; HTTP Basic with the right password on the
    digest source: 401;
  - a nonce the server did not make: 401 with stale=true;
  - digest credentials on the default source: 401 (not taken there), Basic
    there still works.
"""
import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from cameras import changes, start_without_hold, webhooks  # noqa: E402

MD5_USER, MD5_PASS = 'hik-b3', 'hik-b3-digest-password'
SHA_USER, SHA_PASS = 'hik-b4', 'hik-b4-digest-password'
BASIC_USER, BASIC_PASS = 'hik-b5', 'hik-b5-basic-password'
REALM = 'firegrid-b3'


def corpus(name):
    with open(os.path.join(h.CORPUS, 'hikvision', name), 'rb') as f:
        return f.read()


def with_mac(xml, mac):
    """The corpus push from another camera (a lane of its own)."""
    return re.sub(rb'<macAddress>[^<]*</macAddress>', b'<macAddress>' + mac + b'</macAddress>', xml)


def plain_post(port, path, body, auth=None):
    headers = {'Content-Type': 'application/xml'}
    if auth:
        headers['Authorization'] = auth
    req = urllib.request.Request('http://127.0.0.1:%d%s' % (port, path), data=body,
                                 method='POST', headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def digest_post(port, path, body, user, password):
    """POST by `curl --digest` (it answers the 401 challenge): status code,
    the last WWW-Authenticate challenge, the response body."""
    out = subprocess.run(['curl', '-sS', '--digest', '-u', '%s:%s' % (user, password),
                          '-H', 'Content-Type: application/xml', '--data-binary', '@-',
                          '-D', '-', '-w', '\n%{http_code}', 'http://127.0.0.1:%d%s' % (port, path)],
                         input=body, capture_output=True, timeout=60)
    h.check(out.returncode == 0, 'curl failed: %s' % out.stderr.decode(errors='replace'))
    text, _, code = out.stdout.decode(errors='replace').rpartition('\n')
    ch = re.findall(r'(?im)^WWW-Authenticate: *(.*?)\r?$', text)
    return int(code), (ch[-1] if ch else ''), text.rsplit('\r\n\r\n', 1)[-1]


def challenges(hdrs):
    return hdrs.get_all('WWW-Authenticate') or []


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)], [
        ('hik', {'plugin': 'hikvision', 'http_clients': 'cam-b3', 'http_auth': 'digest',
                 'http_realm': REALM, 'dwell': '0'}),
        ('hik256', {'plugin': 'hikvision', 'http_clients': 'cam-b4', 'http_auth': 'digest',
                    'http_digest_algorithm': 'sha256', 'dwell': '0'}),
        ('hikany', {'plugin': 'hikvision', 'http_clients': 'cam-b5 cam-b3', 'dwell': '0'}),
    ], start=False)
    pw_file = env.path('cam-b3.password')
    with open(pw_file, 'w') as f:
        f.write(MD5_PASS + '\n')
    start_without_hold(d, [
        ('client cam-b3', {'username': MD5_USER, 'password_file': pw_file, 'allow': 'ingest'}),
        ('client cam-b4', {'username': SHA_USER, 'password': SHA_PASS, 'allow': 'ingest'}),
        ('client cam-b5', {'username': BASIC_USER, 'password': BASIC_PASS, 'allow': 'ingest'}),
    ])
    d.wait_log('http: listening')
    port = d.api_port
    xml = corpus('push_fielddetection_vehicle_fire_lane.xml')

    # No credentials: a Digest challenge only.
    st, hdrs, _ = plain_post(port, '/v1/ingest/hik', xml)
    ch = challenges(hdrs)
    h.check(st == 401 and len(ch) == 1 and ch[0].startswith('Digest ') and
            'realm="%s"' % REALM in ch[0] and 'algorithm=md5' in ch[0].lower() and 'qop="auth"' in ch[0]
            and 'nonce="' in ch[0], 'no credentials: %d %r' % (st, ch))

    # Basic with the right password on a digest-only source.
    basic = 'Basic ' + base64.b64encode(('%s:%s' % (MD5_USER, MD5_PASS)).encode()).decode()
    st, hdrs, text = plain_post(port, '/v1/ingest/hik', xml, auth=basic)
    h.check(st == 401 and all(c.startswith('Digest ') for c in challenges(hdrs)) and
            b'Digest' in text, 'basic on a digest source: %d %r %s' % (st, challenges(hdrs), text))

    # A wrong password: 401 (urllib gives up after re-challenges), nothing in.
    invalid_before = d.metric('firegrid_http_auth_failures_total', 'reason', 'invalid')
    st, ch, _ = digest_post(port, '/v1/ingest/hik', xml, MD5_USER, 'not-the-password-at-all')
    h.check(st == 401, 'wrong digest password: %d' % st)
    h.check(ch.startswith('Digest ') and 'stale' not in ch,
            'wrong password: no fresh challenge: %r' % ch)
    st, _, _ = digest_post(port, '/v1/ingest/hik', xml, 'nobody-here', MD5_PASS)
    h.check(st == 401, 'unknown digest user: %d' % st)

    # A nonce the server never made: stale=true, so the client retries.
    nonce = re.search(r'nonce="([^"]+)"', challenges(plain_post(port, '/v1/ingest/hik', xml)[1])[0])
    forged = ('0' if nonce.group(1)[0] != '0' else '1') + nonce.group(1)[1:]
    auth = ('Digest username="%s", realm="%s", nonce="%s", uri="/v1/ingest/hik", '
            'response="%s", qop=auth, nc=00000001, cnonce="0a4f113b", algorithm=MD5'
            % (MD5_USER, REALM, forged, '0' * 32))
    st, hdrs, _ = plain_post(port, '/v1/ingest/hik', xml, auth=auth)
    ch = challenges(hdrs)
    h.check(st == 401 and ch and re.search(r'stale="?true', ch[0], re.I),
            'forged nonce: %d %r' % (st, ch))
    h.check(not d.incidents(), 'refused pushes made incidents: %r' % d.incidents())

    # The right password (MD5, python's digest client).
    st, _, text = digest_post(port, '/v1/ingest/hik', xml, MD5_USER, MD5_PASS)
    h.check(st == 200 and json.loads(text)['events'] >= 1, 'digest MD5 push: %d %s' % (st, text))
    h.wait_until(lambda: len(webhooks(rx)) >= 1, 30, 'the opened webhook')
    incs = d.incidents()
    h.check(len(incs) == 1 and incs[0].get('kind') == 'fire_lane_blocked',
            'one blocked lane expected: %r' % incs)
    h.check(changes(webhooks(rx)) == ['opened'], 'webhooks: %r' % changes(webhooks(rx)))

    # SHA-256, by curl, from another camera.
    b4 = with_mac(xml, b'84:9a:40:b1:7c:b4')
    st, hdrs, _ = plain_post(port, '/v1/ingest/hik256', xml)
    h.check(st == 401 and 'algorithm=sha-256' in challenges(hdrs)[0].lower(),
            'sha256 challenge: %r' % challenges(hdrs))
    code, _, text = digest_post(port, '/v1/ingest/hik256', b4, SHA_USER, 'wrong-wrong-wrong')
    h.check(code == 401, 'curl wrong password: %d %s' % (code, text))
    code, _, text = digest_post(port, '/v1/ingest/hik256', b4, SHA_USER, SHA_PASS)
    h.check(code == 200, 'curl --digest SHA-256: %d %s' % (code, text))
    # the MD5 camera's credentials are not this source's
    code, _, _ = digest_post(port, '/v1/ingest/hik256', b4, MD5_USER, MD5_PASS)
    h.check(code in (401, 403), 'MD5 client on the SHA-256 source: %d' % code)
    h.wait_until(lambda: len(webhooks(rx)) >= 2, 30, 'the second opened webhook')
    h.check(len(d.incidents()) == 2, 'two lanes expected: %r' % d.incidents())

    # The default source takes Basic, not Digest.
    b5 = with_mac(xml, b'84:9a:40:b1:7c:b5')
    st, _, _ = digest_post(port, '/v1/ingest/hikany', b5, MD5_USER, MD5_PASS)
    h.check(st == 401, 'digest on a Basic source: %d' % st)
    basic5 = 'Basic ' + base64.b64encode(('%s:%s' % (BASIC_USER, BASIC_PASS)).encode()).decode()
    st, _, text = plain_post(port, '/v1/ingest/hikany', b5, auth=basic5)
    h.check(st == 200, 'basic on the default source: %d %s' % (st, text))
    h.wait_until(lambda: len(d.incidents()) == 3, 30, 'the third lane')

    def counted():
        return (d.metric('firegrid_http_auth_failures_total', 'reason', 'invalid') >=
                invalid_before + 3 and
                d.metric('firegrid_http_auth_failures_total', 'reason', 'stale') >= 1 and
                d.metric('firegrid_http_auth_failures_total', 'reason', 'missing') >= 2)
    h.wait_until(counted, 30, 'auth failure counters')
    h.check(all(r.get('signature_ok') is True for r in rx.records()), 'bad signature')
    h.check(d.stop() == 0, 'firegridd did not exit cleanly:\n' + h.tail(d.log_text()))


if __name__ == '__main__':
    h.run('ingest_digest', body)
