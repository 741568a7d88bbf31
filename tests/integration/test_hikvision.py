#!/usr/bin/env python3
"""
Hikvision pushes over HTTP into the real firegridd (POST /v1/ingest/hik, HTTP
Basic as cameras send it), with the corpus's real bodies:

  - no credentials: 401 with a Basic challenge; a client not in the
    source's http_clients: 403; a wrong Content-Type: 415;
  - the alertStream heartbeats (multipart): accepted, no event, no incident;
  - the ANPR push with its two JPEG parts: the pictures are stored (named by
    SHA-256) and served by GET /v1/snapshots/<sha256> to a reader;
  - fielddetection posts of a parked vehicle (multipart with a picture),
    repeated every second, with exact repeats and a retransmission among
    them: one incident after the dwell (one `opened` webhook carrying the
    plate and the picture's hash and URL), and a `cleared` webhook after the
    posts stop (silence timeout);
  - malformed XML: 400 with the parser's reason, counted;
  - pictures beyond [snapshots] max_bytes: the oldest are deleted (counted),
    a corrupt picture is refused (counted) and the push still succeeds.
"""
import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from cameras import attrs as attrs_of, changes, start_without_hold, webhooks  # noqa: E402

HIK = os.path.join(h.CORPUS, 'hikvision')
CAM_USER, CAM_PASS = 'b3-cam', 'correct-horse-battery'
READER = 'reader-token-0123456789abcdef'
DWELL_S, CLEAR_S = 3, 4
BOUNDARY = 'fgtestboundary7d3a'


def corpus(name):
    with open(os.path.join(HIK, name), 'rb') as f:
        return f.read()


def basic(user, password):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


def request(port, method, path, body=None, ctype=None, auth=None):
    headers = {}
    if ctype:
        headers['Content-Type'] = ctype
    if auth:
        headers['Authorization'] = auth
    req = urllib.request.Request('http://127.0.0.1:%d%s' % (port, path), data=body,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def push(port, body, ctype, auth=basic(CAM_USER, CAM_PASS), path='/v1/ingest/hik'):
    return request(port, 'POST', path, body, ctype, auth)


def jpeg(size, seed):
    body = bytes(((i * 131 + seed * 17) % 251) for i in range(size))
    return b'\xff\xd8\xff\xe0' + body + b'\xff\xd9'


def multipart(xml, pictures):
    out = [b'--' + BOUNDARY.encode(), b'Content-Disposition: form-data; name="alert.xml"',
           b'Content-Type: application/xml', b'', xml]
    for i, pic in enumerate(pictures):
        out += [b'--' + BOUNDARY.encode(),
                ('Content-Disposition: form-data; name="detectionPicture%d.jpg"; '
                 'filename="detectionPicture%d.jpg"' % (i, i)).encode(),
                b'Content-Type: image/jpeg', b'', pic]
    out.append(b'--' + BOUNDARY.encode() + b'--')
    return b'\r\n'.join(out) + b'\r\n'


def post_xml(count, retransmission=False):
    xml = corpus('push_fielddetection_vehicle_fire_lane.xml').decode()
    xml = xml.replace('<activePostCount>1<', '<activePostCount>%d<' % count)
    if retransmission:
        xml = xml.replace('<isDataRetransmission>false<', '<isDataRetransmission>true<')
    return xml.encode()


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)],
                   [('hik', {'plugin': 'hikvision', 'http_clients': 'b3-cam',
                             'dwell': '%ds' % DWELL_S, 'clear_after': '%ds' % CLEAR_S})],
                   start=False)
    start_without_hold(d, [
        ('client b3-cam', {'username': CAM_USER, 'password': CAM_PASS, 'allow': 'ingest'}),
        ('client reader', {'token': READER, 'allow': 'read'}),
        ('snapshots', {'max_bytes': 1 << 20, 'max_image_bytes': 400 * 1024}),
    ])
    d.wait_log('http: listening')
    port = d.api_port
    reader = 'Bearer ' + READER

    # Authentication, authorisation, content type.
    st, hdrs, text = push(port, corpus('push_fielddetection_vehicle_fire_lane.xml'),
                          'application/xml', auth=None)
    challenges = ' '.join(hdrs.get_all('WWW-Authenticate') or [])
    h.check(st == 401 and 'Basic realm=' in challenges, 'no credentials: %d %r' % (st, challenges))
    st, _, _ = push(port, b'<x/>', 'application/xml', auth=basic(CAM_USER, 'wrong-password!'))
    h.check(st == 401, 'wrong password: %d' % st)
    st, _, text = push(port, b'<x/>', 'application/xml', auth=reader)
    h.check(st == 403, 'a reader may not push: %d %s' % (st, text))
    st, _, text = push(port, b'<x/>', 'image/gif')
    h.check(st == 415, 'image/gif: %d %s' % (st, text))
    st, _, text = push(port, b'<x/>', 'application/xml', path='/v1/ingest/nope')
    h.check(st == 404, 'unknown source: %d %s' % (st, text))

    # alertStream heartbeats: no event.
    st, _, text = push(port, corpus('alertstream_videoloss_inactive_heartbeat.multipart'),
                       'multipart/mixed; boundary=boundary')
    h.check(st == 200 and json.loads(text)['events'] == 0, 'heartbeat: %d %s' % (st, text))

    # ANPR with pictures: stored and served.
    st, _, text = push(port, corpus('push_anpr_multipart_with_pictures.multipart'),
                       'multipart/form-data; boundary=8d5c3e1a0b7f4e2d')
    h.check(st == 200 and json.loads(text) == {'events': 0, 'snapshots': 2},
            'anpr: %d %s' % (st, text))
    stub = corpus('push_anpr_multipart_with_pictures.multipart')
    stub = stub[stub.index(b'\xff\xd8'):stub.index(b'\xff\xd9') + 2]
    sha = hashlib.sha256(stub).hexdigest()
    st, hdrs, pic = request(port, 'GET', '/v1/snapshots/' + sha, auth=reader)
    h.check(st == 200 and pic == stub and hdrs.get('Content-Type') == 'image/jpeg',
            'GET snapshot: %d %r' % (st, hdrs.items()))
    st, _, _ = request(port, 'GET', '/v1/snapshots/' + sha)
    h.check(st == 401, 'snapshot without credentials: %d' % st)
    h.check(not d.incidents(), 'ANPR or heartbeat made an incident: %r' % d.incidents())

    # A parked vehicle: posts every second with a picture; repeats and a
    # retransmission among them.
    lane_pic = jpeg(2000, 1)
    lane_sha = hashlib.sha256(lane_pic).hexdigest()
    count = 1
    start = time.monotonic()
    while not webhooks(rx) and time.monotonic() - start < 30:
        body_ = multipart(post_xml(count), [lane_pic])
        st, _, text = push(port, body_, 'multipart/form-data; boundary=' + BOUNDARY)
        h.check(st == 200, 'fielddetection post: %d %s' % (st, text))
        if count % 2 == 0:
            st, _, _ = push(port, body_, 'multipart/form-data; boundary=' + BOUNDARY)
            st2, _, _ = push(port, post_xml(count + 100, retransmission=True), 'application/xml')
            h.check(st == 200 and st2 == 200, 'repeat / retransmission refused')
        count += 1
        time.sleep(1)
    h.check(webhooks(rx), 'no webhook after %d posts' % count)
    h.check(time.monotonic() - start >= DWELL_S - 1, 'blocked before the dwell')
    for i in range(2):                 # more posts while it stays: nothing new
        push(port, multipart(post_xml(count), [lane_pic]), 'multipart/form-data; boundary=' + BOUNDARY)
        count += 1
        time.sleep(1)
    incs = d.incidents()
    h.check(len(incs) == 1 and incs[0].get('kind') == 'fire_lane_blocked' and
            h.incident_device(incs[0]) == '84:9a:40:b1:7c:ae/1/region1',
            'expected one blocked lane incident, got %r' % incs)
    opened = webhooks(rx)
    h.check(changes(opened) == ['opened'], 'webhooks: %r' % changes(opened))
    attrs = attrs_of(opened[0])
    snaps = attrs.get('snapshots') or [{}]
    h.check(snaps[0].get('sha256') == lane_sha and
            snaps[0].get('url') == '/v1/snapshots/' + lane_sha, 'snapshot attrs: %r' % attrs)
    h.check(attrs.get('plate') is None, 'a plate from another camera was attached: %r' % attrs)
    st, _, pic = request(port, 'GET', snaps[0]['url'], auth=reader)
    h.check(st == 200 and pic == lane_pic, 'GET the lane picture: %d' % st)

    # The vehicle leaves: no more posts, cleared after clear_after.
    h.wait_until(lambda: len(webhooks(rx)) >= 2, CLEAR_S + 30, 'the cleared webhook')
    h.check(changes(webhooks(rx)) == ['opened', 'cleared'], 'webhooks: %r' % changes(webhooks(rx)))
    attrs = attrs_of(webhooks(rx)[1])
    h.check(attrs.get('reason') == 'silence' and attrs.get('verified') is False,
            'cleared attrs: %r' % attrs)

    # Malformed XML.
    st, _, text = push(port, b'<EventNotificationAlert><eventType>fielddetection</eventType>',
                       'application/xml')
    h.check(st == 400 and b'XML is not well-formed' in text, 'bad XML: %d %s' % (st, text))

    # Quota: 1 MiB of pictures at most; push 5 x 300 KB (with plate reads,
    # which are no alarm), the first ones go.
    anpr = corpus('push_anpr_deepinview_no_mac_low_char_confidence.xml')
    big = [jpeg(300 * 1024, 10 + i) for i in range(5)]
    for i, pic in enumerate(big):
        st, _, text = push(port, multipart(anpr, [pic]),
                           'multipart/form-data; boundary=' + BOUNDARY)
        h.check(st == 200, 'big picture push: %d %s' % (st, text))
    # a corrupt picture (JPEG start, no end) is refused, the push succeeds
    st, _, text = push(port, multipart(anpr, [b'\xff\xd8\xff\xe0' + b'x' * 100]),
                       'multipart/form-data; boundary=' + BOUNDARY)
    h.check(st == 200 and json.loads(text)['snapshots'] == 0, 'corrupt picture: %d %s' % (st, text))
    st, _, _ = request(port, 'GET', '/v1/snapshots/' + hashlib.sha256(big[0]).hexdigest(), auth=reader)
    h.check(st == 404, 'the oldest big picture was not deleted: %d' % st)
    st, _, pic = request(port, 'GET', '/v1/snapshots/' + hashlib.sha256(big[4]).hexdigest(),
                         auth=reader)
    h.check(st == 200 and pic == big[4], 'the newest picture is gone: %d' % st)

    def counted():
        return (d.metric('firegrid_snapshots_deleted_total', 'reason', 'quota') >= 2 and
                d.metric('firegrid_snapshots_rejected_total', 'reason', 'not_an_image') == 1 and
                d.metric('firegrid_decode_errors_total', 'source', 'hik') >= 1)
    h.wait_until(counted, 30, 'quota, corrupt picture and decode error counters')
    h.check(len(d.incidents()) == 1, 'extra incidents: %r' % d.incidents())
    h.check(all(r.get('signature_ok') is True for r in rx.records()), 'bad signature')
    h.check(d.stop() == 0, 'firegridd did not exit cleanly:\n' + h.tail(d.log_text()))


if __name__ == '__main__':
    h.run('hikvision', body)
