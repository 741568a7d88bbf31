#!/usr/bin/env python3
"""
A Dahua-style event stream served by a test HTTP server (multipart/
x-mixed-replace, HTTP Basic challenge first, a heartbeat every 0.3 s) that
firegridd reads as a client:

  - connection 1: heartbeat, a VideoMotion event (ignored), ParkingDetection
    Start on index 0; heartbeats while the vehicle stays past the 2 s dwell
    -> one `opened` webhook for lane 127.0.0.1/1; then the server drops the
    connection in the middle of a part;
  - firegridd reconnects (backoff 200 ms .. 1 s) and the half part is not
    taken for an event;
  - connection 2: heartbeats, then ParkingDetection Stop -> the `cleared`
    webhook; exactly two webhooks in all, one incident.
"""
import base64
import http.server
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from cameras import attrs as attrs_of, changes, start_without_hold, webhooks  # noqa: E402

USER, PASSWORD = 'admin', 'dahua-secret-1'
DWELL_S = 2


def part(text):
    body = text.encode()
    return (b'--myboundary\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n' % len(body)
            + body + b'\r\n')


class Camera:
    """The test server's shared state: what the test wants the stream to do."""

    def __init__(self):
        self.connections = 0
        self.unauthorized = 0
        self.drop = threading.Event()
        self.stop = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()


def handler_for(cam):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def do_GET(self):
            want = 'Basic ' + base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()
            if self.headers.get('Authorization') != want:
                with cam.lock:
                    cam.unauthorized += 1
                self.send_response(401)
                self.send_header('WWW-Authenticate', 'Basic realm="Login to dahua"')
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            if not self.path.startswith('/cgi-bin/eventManager.cgi?action=attach'):
                self.send_error(404)
                return
            with cam.lock:
                cam.connections += 1
                n = cam.connections
            self.send_response(200)
            # Some firmware names no boundary: after the reconnect firegridd
            # takes it from the first delimiter line.
            self.send_header('Content-Type', 'multipart/x-mixed-replace; boundary=myboundary'
                             if n == 1 else 'multipart/x-mixed-replace')
            self.send_header('Connection', 'close')
            self.end_headers()
            try:
                if n == 1:
                    self.first()
                else:
                    self.second()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def send(self, data):
            self.wfile.write(data)
            self.wfile.flush()

        def heartbeats_until(self, event):
            while not event.is_set() and not cam.done.is_set():
                self.send(part('Heartbeat'))
                time.sleep(0.3)

        def first(self):
            self.send(part('Heartbeat'))
            self.send(part('Code=VideoMotion;action=Start;index=0;data={\n   "Id" : [ 0 ]\n}'))
            self.send(part('Code=ParkingDetection;action=Start;index=0'))
            self.heartbeats_until(cam.drop)
            # half a part, then the connection goes away
            self.send(b'--myboundary\r\nContent-Type: text/plain\r\nContent-Length: 41\r\n\r\n'
                      b'Code=ParkingDet')
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

        def second(self):
            self.send(part('Heartbeat'))
            self.heartbeats_until(cam.stop)
            if not cam.done.is_set():
                self.send(part('Code=ParkingDetection;action=Stop;index=0'))
            self.heartbeats_until(cam.done)

    return Handler


def body(env):
    cam = Camera()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler_for(cam))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = ('http://127.0.0.1:%d/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=1'
           % server.server_address[1])
    try:
        broker = env.broker()
        rx = env.receiver()
        d = env.daemon(broker, [h.sink(rx)],
                       [('dahua', {'plugin': 'dahua', 'stream_url': url,
                                   'stream_username': USER, 'stream_password': PASSWORD,
                                   'stream_reconnect_min': '200ms', 'stream_reconnect_max': '1s',
                                   'stream_idle_timeout': '5s', 'dwell': '%ds' % DWELL_S})],
                       start=False)
        start_without_hold(d)
        d.wait_log('stream: connected')
        h.check(cam.unauthorized >= 1, 'firegridd never met the Basic challenge')

        h.wait_until(lambda: changes(webhooks(rx)) == ['opened'], DWELL_S + 30, 'the blocked lane webhook')
        inc = d.incidents()
        h.check(len(inc) == 1 and h.incident_device(inc[0]) == '127.0.0.1/1' and
                inc[0].get('kind') == 'fire_lane_blocked', 'incidents: %r' % inc)
        attrs = attrs_of(webhooks(rx)[0])
        h.check(attrs.get('code') == 'ParkingDetection' and attrs.get('channel') == 1 and
                attrs.get('dwell_s', -1) >= DWELL_S - 1, 'blocked attrs: %r' % attrs)

        cam.drop.set()
        h.wait_until(lambda: cam.connections >= 2, 30, 'firegridd to reconnect')
        d.wait_log('stream lost')
        time.sleep(1)
        h.check(changes(webhooks(rx)) == ['opened'], 'the dropped part made an event: %s' % changes(webhooks(rx)))

        cam.stop.set()
        h.wait_until(lambda: changes(webhooks(rx)) == ['opened', 'cleared'], 30, 'the cleared webhook')
        attrs = attrs_of(webhooks(rx)[1])
        h.check(attrs.get('verified') is True and attrs.get('reason') == 'stop',
                'cleared attrs: %r' % attrs)
        h.wait_until(lambda: d.metric('firegrid_stream_disconnects_total', 'source', 'dahua') >= 1,
                     30, 'the disconnect counter')
        h.check(d.metric('firegrid_decode_errors_total', 'source', 'dahua') == 0,
                'decode errors counted')
        h.check(len(d.incidents()) == 1, 'incidents: %r' % d.incidents())
        cam.done.set()
        h.check(d.stop() == 0, 'firegridd did not exit cleanly:\n' + h.tail(d.log_text()))
    finally:
        cam.done.set()
        server.shutdown()
        server.server_close()


if __name__ == '__main__':
    h.run('dahua', body)
