#!/usr/bin/env python3
"""
Frigate snapshots fetched from its HTTP API, over the real broker into the
real firegridd, with a test HTTP server standing in for Frigate's API
(GET /api/events/<id>/snapshot.jpg) and two webhook sinks:

  - a car parks past the dwell on cam1: the incident opens (the `opened`
    webhook does not wait for the picture), firegridd fetches the event's
    snapshot, stores it and sends an `updated` revision whose
    data.incident.snapshots names it by sha256 and URL;
    GET /v1/snapshots/<sha256> returns the same bytes; the sink with
    inline_snapshots_max_bytes gets the bytes base64 in data_base64
    (decoded: same sha256), the other sink and a sink whose limit is
    smaller than the picture do not; every signature verifies;
  - Frigate answers 404 for a while (the event not written yet): retried,
    attached once it answers;
  - Frigate answers 404 forever on cam2 and garbage on cam3: counted
    (firegrid_snapshot_fetch_total{result}), the incidents are delivered
    all the same, without pictures;
  - after a reload with [escalation] fire_lane_hold: the picture arrives
    while the report is held, so no extra revision is made and the released
    `opened` (data.event null) carries it;
  - SIGTERM while a fetch hangs: abandoned, counted, clean exit.
"""
import base64
import hashlib
import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from cameras import changes, start_without_hold, webhooks  # noqa: E402
from test_frigate import Frigate  # noqa: E402

DWELL_S = 2
READER = 'reader-token-0123456789abcdef'
BOUNDARY = b'8d5c3e1a0b7f4e2d'


def corpus_jpeg():
    """The detection picture of the shared corpus's Hikvision ANPR push."""
    path = os.path.join(h.CORPUS, 'hikvision', 'push_anpr_multipart_with_pictures.multipart')
    with open(path, 'rb') as f:
        data = f.read()
    for part in data.split(b'--' + BOUNDARY):
        head, _, body = part.partition(b'\r\n\r\n')
        if b'image/jpeg' in head:
            body = body[:-2] if body.endswith(b'\r\n') else body
            h.check(body[:3] == b'\xff\xd8\xff' and body[-2:] == b'\xff\xd9',
                    'corpus picture is not a JPEG')
            return body
    raise h.TestFailure('no JPEG in the corpus ANPR push')


def bigger_jpeg(size):
    """A JPEG-framed picture (SOI, APP0, filler, EOI) of `size` bytes."""
    filler = bytes((i * 37 + 11) % 251 for i in range(size - 6))
    return b'\xff\xd8\xff\xe0' + filler + b'\xff\xd9'


class FrigateApi:
    """Frigate's snapshot endpoint: per event id, a list of answers to give
    in turn (the last one repeats): (status, body)."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition('?')
                api.requests.append((path, query))
                parts = path.split('/')
                oid = parts[3] if len(parts) == 5 and parts[:3] == ['', 'api', 'events'] \
                    and parts[4] == 'snapshot.jpg' else None
                seq = api.answers.get(oid, [(404, b'{"message":"Event not found"}')])
                n = sum(1 for p, _ in api.requests if p == path)
                status, body, *delay = seq[min(n, len(seq)) - 1]
                if delay:
                    time.sleep(delay[0])    # a slow Frigate
                self.send_response(status)
                self.send_header('Content-Type', 'image/jpeg' if status == 200 else
                                 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hits(self, oid):
        return [q for p, q in self.requests if p == '/api/events/%s/snapshot.jpg' % oid]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def get(port, path, token):
    req = urllib.request.Request('http://127.0.0.1:%d%s' % (port, path),
                                 headers={'Authorization': 'Bearer ' + token})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def incident_snapshots(hook):
    return (((hook.get('body') or {}).get('data') or {}).get('incident') or {}).get('snapshots')


def park(fr, oid, camera):
    """A car parks in the lane and Frigate keeps republishing it."""
    fr.send('new', oid, camera, [])
    fr.send('update', oid, camera, ['fire_lane'])
    for _ in range(2):
        time.sleep(1)
        fr.send('update', oid, camera, ['fire_lane'])


def body(env):
    jpeg = corpus_jpeg()
    late = bigger_jpeg(3000)
    api = FrigateApi({
        'car-ok': [(200, jpeg)],
        'car-held': [(200, jpeg)],
        'car-slow': [(200, jpeg, 20)],
        'car-late': [(404, b'{"message":"Event not found"}'), (200, late)],
        'car-404': [(404, b'{"message":"Event not found"}')],
        'car-garbage': [(200, b'<html>this is not a picture</html>')],
    })
    try:
        run(env, api, jpeg, late)
    finally:
        api.stop()


def run(env, api, jpeg, late):
    broker = env.broker()
    rx_plain = env.receiver(name='plain')
    rx_inline = env.receiver(name='inline')
    rx_small = env.receiver(name='small')
    sinks = [('plain', {'url': rx_plain.url, 'secret': rx_plain.secret}),
             ('inline', {'url': rx_inline.url, 'secret': rx_inline.secret,
                         'inline_snapshots_max_bytes': 65536}),
             ('small', {'url': rx_small.url, 'secret': rx_small.secret,
                        'inline_snapshots_max_bytes': 1000})]
    d = env.daemon(broker, sinks,
                   [('frigate', {'plugin': 'frigate', 'topics': 'frigate/#',
                                 'dwell': '%ds' % DWELL_S, 'stale_after': '1m',
                                 'api_url': 'http://127.0.0.1:%d/' % api.port})], start=False)
    start_without_hold(d, [
        ('client reader', {'token': READER, 'allow': 'read'}),
        ('snapshots', {'fetch_timeout': '5s', 'fetch_attempts': 3, 'fetch_retry': '300ms'}),
    ])
    d.wait_log('mqtt: subscribed')
    fr = Frigate(env, broker.port)

    # cam1: the picture is there at once.
    lane = 'cam1/fire_lane'
    park(fr, 'car-ok', 'cam1')
    h.wait_until(lambda: changes(webhooks(rx_plain, lane)) == ['opened', 'updated'], 30,
                 'opened + updated (picture) webhooks for %s' % lane)
    sha = hashlib.sha256(jpeg).hexdigest()
    hooks = webhooks(rx_plain, lane)
    h.check(not incident_snapshots(hooks[0]), 'the opened revision waited for the picture?')
    snaps = incident_snapshots(hooks[1])
    h.check(snaps and snaps[0].get('sha256') == sha and snaps[0].get('bytes') == len(jpeg) and
            snaps[0].get('url') == '/v1/snapshots/' + sha and
            snaps[0].get('type') == 'image/jpeg', 'snapshot reference: %r' % snaps)
    h.check('data_base64' not in snaps[0], 'a sink without the option got the bytes')
    h.check(api.hits('car-ok') == ['bbox=1'], 'requests: %r' % api.requests)
    st, got = get(d.api_port, '/v1/snapshots/' + sha, READER)
    h.check(st == 200 and got == jpeg, 'GET /v1/snapshots: %d, %d bytes' % (st, len(got)))

    h.wait_until(lambda: changes(webhooks(rx_inline, lane)) == ['opened', 'updated'], 30,
                 'the inline sink\'s webhooks')
    ref = incident_snapshots(webhooks(rx_inline, lane)[1])[0]
    raw = base64.b64decode(ref.get('data_base64') or '', validate=True)
    h.check(hashlib.sha256(raw).hexdigest() == sha and ref.get('sha256') == sha,
            'inline picture: %r' % ref)
    h.wait_until(lambda: changes(webhooks(rx_small, lane)) == ['opened', 'updated'], 30,
                 'the small-limit sink\'s webhooks')
    ref = incident_snapshots(webhooks(rx_small, lane)[1])[0]
    h.check(ref.get('sha256') == sha and base64.b64decode(ref.get('data_base64', '')) == jpeg,
            'a %d-byte picture not inlined under a 1000-byte limit: %r' % (len(jpeg), ref))

    # cam4: Frigate has not written the event yet (404), then has.
    lane = 'cam4/fire_lane'
    park(fr, 'car-late', 'cam4')
    h.wait_until(lambda: changes(webhooks(rx_inline, lane)) == ['opened', 'updated'], 30,
                 'the late picture attached')
    ref = incident_snapshots(webhooks(rx_inline, lane)[1])[0]
    h.check(ref.get('sha256') == hashlib.sha256(late).hexdigest() and
            base64.b64decode(ref['data_base64']) == late, 'late picture: %r' % ref)
    h.wait_until(lambda: changes(webhooks(rx_small, lane)) == ['opened', 'updated'], 30,
                 'the late picture at the small sink')
    ref = incident_snapshots(webhooks(rx_small, lane)[1])[0]
    h.check('data_base64' not in ref, 'a 3000-byte picture inlined under a 1000-byte limit')
    h.check(len(api.hits('car-late')) == 2, 'late requests: %r' % api.hits('car-late'))

    # cam2: 404 forever; cam3: not a picture.  Incidents delivered anyway.
    park(fr, 'car-404', 'cam2')
    park(fr, 'car-garbage', 'cam3')
    for lane in ('cam2/fire_lane', 'cam3/fire_lane'):
        h.wait_until(lambda: webhooks(rx_plain, lane), 30, 'the %s incident' % lane)
    h.wait_until(lambda: d.metric('firegrid_snapshot_fetch_total', 'result', 'gave_up') == 1,
                 30, 'the 404 picture given up')
    h.wait_until(lambda: d.metric('firegrid_snapshot_fetch_total', 'result',
                                  'not_an_image') == 1, 30, 'the garbage counted')
    h.check(len(api.hits('car-404')) == 3, '404 requests: %r' % api.hits('car-404'))
    h.check(len(api.hits('car-garbage')) == 1, 'garbage is not retried')
    h.check(d.metric('firegrid_snapshot_fetch_total', 'result', 'http_error') == 4,
            'http_error attempts (1 late + 3 given up)')
    h.check(d.metric('firegrid_snapshot_fetch_total', 'result', 'ok') == 2, 'ok fetches')
    h.check(d.metric('firegrid_snapshots_rejected_total', 'reason', 'not_an_image') == 1,
            'the garbage counted as a rejected snapshot')
    time.sleep(1)
    for lane in ('cam2/fire_lane', 'cam3/fire_lane'):
        hooks = webhooks(rx_plain, lane)
        h.check(changes(hooks) == ['opened'] and not incident_snapshots(hooks[0]),
                '%s: %s' % (lane, changes(hooks)))

    # With the report held back (fire_lane_hold), the picture comes in
    # during the hold: no extra revision, the released `opened` carries it.
    d.write_config(d.config_text() + '\n' + h.ini([
        ('client reader', {'token': READER, 'allow': 'read'}),
        ('snapshots', {'fetch_timeout': '5s', 'fetch_attempts': 3, 'fetch_retry': '300ms'}),
        ('escalation', {'fire_lane_hold': '4s'})]))
    d.reload()
    d.wait_log('main: reloaded')
    lane = 'cam5/fire_lane'
    park(fr, 'car-held', 'cam5')
    h.wait_until(lambda: webhooks(rx_inline, lane), 30, 'the held report')
    time.sleep(1)
    hooks = webhooks(rx_inline, lane)
    h.check(changes(hooks) == ['opened'], 'held report: %s' % changes(hooks))
    ref = (incident_snapshots(hooks[0]) or [{}])[0]
    h.check(hooks[0]['body']['data'].get('event') is None and
            ref.get('sha256') == hashlib.sha256(jpeg).hexdigest() and
            base64.b64decode(ref.get('data_base64', '')) == jpeg,
            'the released report without its picture: %r' % hooks[0]['body']['data'])
    # No event in a released report, but the incident's attrs say what blocks
    # the lane (and keep the picture).
    attrs = hooks[0]['body']['data']['incident'].get('attrs') or {}
    h.check(attrs.get('vehicles') == 1 and attrs.get('snapshots', [{}])[0].get('sha256') ==
            ref.get('sha256'), 'the released report without the lane attrs: %r' % attrs)

    for rx in (rx_plain, rx_inline, rx_small):
        h.check(rx.records() and all(r.get('signature_ok') is True for r in rx.records()),
                'bad signature at %s' % rx.name)

    # Stopping while a fetch hangs: abandoned (counted), a clean exit.
    park(fr, 'car-slow', 'cam6')
    h.wait_until(lambda: api.hits('car-slow'), 30, 'the slow fetch to start')
    h.check(d.stop() == 0, 'firegridd did not exit cleanly:\n' + h.tail(d.log_text()))
    h.check(d.metric('firegrid_snapshot_fetch_total', 'result', 'dropped') == 1,
            'the abandoned fetch counted as dropped')


if __name__ == '__main__':
    h.run('snapfetch', body)
