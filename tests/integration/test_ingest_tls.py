#!/usr/bin/env python3
"""
Camera pushes over TLS: with [api] tls_cert_file / tls_key_file the HTTP
server speaks HTTPS only; a Hikvision push over HTTPS with HTTP Basic is
decoded (a lane blocked at once with dwell 0), and plain HTTP gets no
answer.
"""
import base64
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from cameras import start_without_hold  # noqa: E402

USER, PASSWORD = 'tls-cam', 'tls-cam-password'


def body(env):
    key, cert = env.path('key.pem'), env.path('cert.pem')
    r = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
                        '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
                        '-addext', 'subjectAltName=IP:127.0.0.1'],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    h.check(r.returncode == 0, 'openssl: %s' % r.stderr.decode(errors='replace'))
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)],
                   [('hik', {'plugin': 'hikvision', 'http_clients': USER, 'dwell': '0'})],
                   start=False, extra={'api': {'tls_cert_file': cert, 'tls_key_file': key}})
    start_without_hold(d, [('client ' + USER, {'username': USER, 'password': PASSWORD,
                                               'allow': 'ingest'})])
    d.wait_log('http: listening')
    h.check(' tls' in d.log_text(), 'the API does not say it listens with TLS')
    with open(os.path.join(h.CORPUS, 'hikvision', 'push_fielddetection_vehicle_fire_lane.xml'),
              'rb') as f:
        xml = f.read()
    auth = 'Basic ' + base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()
    ctx = ssl.create_default_context(cafile=cert)
    req = urllib.request.Request('https://127.0.0.1:%d/v1/ingest/hik' % d.api_port, data=xml,
                                 method='POST', headers={'Content-Type': 'application/xml',
                                                         'Authorization': auth})
    with urllib.request.urlopen(req, timeout=15, context=ctx) as resp:
        h.check(resp.status == 200, 'HTTPS push: %d' % resp.status)
    h.wait_until(lambda: d.incidents(), 30, 'the blocked lane incident')
    plain = urllib.request.Request('http://127.0.0.1:%d/v1/ingest/hik' % d.api_port, data=xml,
                                   method='POST', headers={'Content-Type': 'application/xml',
                                                           'Authorization': auth})
    try:
        urllib.request.urlopen(plain, timeout=5)
        h.check(False, 'plain HTTP was answered')
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        h.log('plain HTTP refused as expected: %s' % e)
    h.check(d.stop() == 0, 'firegridd did not exit cleanly:\n' + h.tail(d.log_text()))


if __name__ == '__main__':
    h.run('ingest_tls', body)
