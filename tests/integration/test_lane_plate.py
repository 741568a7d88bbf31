#!/usr/bin/env python3
"""
A plate read after the fire lane was reported, over the real firegridd: the
Hikvision corpus's fielddetection push repeated until the dwell opens the
lane's incident (one `opened` webhook, no plate), then the corpus's ANPR push
(multipart with pictures) from the same camera channel: the open incident's
attrs take the plate and the operations centre gets exactly one `updated`
revision; the same ANPR push again and further posts change nothing (no new
incident, no new webhook).  Pushes use HTTP Digest (`curl --digest`).
"""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from cameras import (attrs as attrs_of, changes, corpus, digest_post,  # noqa: E402
                     start_without_hold, webhooks, with_mac)

USER, PASSWORD = 'lane-cam', 'lane-cam-digest-password'
LANE_MAC = b'84:9a:40:b1:7c:ae'
PLATE = '沪A12345'
ANPR_CT = 'multipart/form-data; boundary=8d5c3e1a0b7f4e2d'


def body(env):
    broker = env.broker()
    rx = env.receiver()
    d = env.daemon(broker, [h.sink(rx)],
                   [('hik', {'plugin': 'hikvision', 'http_clients': 'lane-cam',
                             'http_auth': 'digest', 'dwell': '2s', 'clear_after': '10m'})],
                   start=False)
    start_without_hold(d, [('client lane-cam', {'username': USER, 'password': PASSWORD,
                                                'allow': 'ingest'})])
    d.wait_log('http: listening')
    port = d.api_port
    xml = corpus('hikvision', 'push_fielddetection_vehicle_fire_lane.xml')

    def post(count):
        b = xml.replace(b'<activePostCount>1<', b'<activePostCount>%d<' % count)
        st, _, text = digest_post(port, '/v1/ingest/hik', b, USER, PASSWORD)
        h.check(st == 200, 'fielddetection post: %d %s' % (st, text))

    count = 1
    start = time.monotonic()
    while not webhooks(rx) and time.monotonic() - start < 30:
        post(count)
        count += 1
        time.sleep(1)
    h.wait_until(lambda: webhooks(rx), 30, 'the opened webhook')
    h.check(changes(webhooks(rx)) == ['opened'], 'webhooks: %r' % changes(webhooks(rx)))
    h.check(attrs_of(webhooks(rx)[0]).get('plate') is None,
            'a plate before any was read: %r' % attrs_of(webhooks(rx)[0]))

    # The ANPR push of the lane camera (the corpus's, with the lane camera's MAC).
    anpr = with_mac(corpus('hikvision', 'push_anpr_multipart_with_pictures.multipart'), LANE_MAC)
    st, _, text = digest_post(port, '/v1/ingest/hik', anpr, USER, PASSWORD, ANPR_CT)
    h.check(st == 200 and json.loads(text)['events'] == 1, 'ANPR push: %d %s' % (st, text))
    h.wait_until(lambda: len(webhooks(rx)) >= 2, 30, 'the updated webhook')
    hooks = webhooks(rx)
    h.check(changes(hooks) == ['opened', 'updated'], 'webhooks: %r' % changes(hooks))
    upd = attrs_of(hooks[1])
    h.check(upd.get('plate') == PLATE and upd.get('vehicles') == 1 and
            len(upd.get('plate_snapshots') or []) == 2, 'updated attrs: %r' % upd)
    rev = [h.find_key(r.get('body') or {}, 'revision') for r in hooks]
    h.check(rev == [1, 2], 'revisions: %r' % rev)

    # The same plate again, and the vehicle still posting: nothing new.
    st, _, text = digest_post(port, '/v1/ingest/hik', anpr, USER, PASSWORD, ANPR_CT)
    h.check(st == 200 and json.loads(text)['events'] == 0, 'ANPR again: %d %s' % (st, text))
    for _ in range(2):
        post(count)
        count += 1
    time.sleep(3)
    incs = d.incidents()
    h.check(len(incs) == 1 and incs[0].get('kind') == 'fire_lane_blocked',
            'one incident expected: %r' % incs)
    # the incident's own attrs (not shown by firegridctl): read the store
    db = sqlite3.connect('file:%s?mode=ro' % d.db, uri=True, timeout=30)
    try:
        row = db.execute('SELECT attrs, revision FROM incidents').fetchall()
    finally:
        db.close()
    h.check(len(row) == 1 and json.loads(row[0][0]).get('plate') == PLATE and row[0][1] == 2,
            'incident attrs: %r' % row)
    h.check(len(webhooks(rx)) == 2, 'more webhooks: %r' % changes(webhooks(rx)))
    h.check(all(r.get('signature_ok') is True for r in rx.records()), 'bad signature')
    h.check(d.stop() == 0, 'firegridd did not exit cleanly:\n' + h.tail(d.log_text()))


if __name__ == '__main__':
    h.run('lane_plate', body)
