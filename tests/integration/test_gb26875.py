#!/usr/bin/env python3
"""
GB/T 26875.3 end to end: a real TCP client plays a user information
transmission device (UITD) against firegridd's [gb26875] listener.

- A fire alarm frame sent in three pieces is confirmed (command 3, same
  serial, addresses swapped, valid checksum) and, by the time the confirm
  arrives, its incident is already committed (ack after commit).
- Several frames merged into one write, with a corrupted frame and line
  noise between them: every good data frame confirmed in order, the bad one
  never, counted in firegrid_gb26875_bad_frames_total, the stream resynced.
- Retransmissions (same serial) are confirmed again but never make a second
  incident, not even after the alarm cleared.
- The transmitter reconnecting closes its old connection.
- A silent transmitter goes offline after offline_after; its next frame ends
  the offline.
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

sys.path.insert(0, os.path.join(h.SOURCE_ROOT, 'tests', 'data', 'gb26875'))
import make_frames as mf  # noqa: E402

LISTENER = 'compound'
UITD = '000020010307'
KITCHEN = UITD + '/1-1/42-00010017'
STAIR = UITD + '/1-1/42-00010023'
SHED = UITD + '/1-1/17-00020003'


def corpus_frame(name):
    with open(os.path.join(h.CORPUS, 'gb26875', name)) as f:
        return bytes.fromhex(json.load(f)['frame_hex'])


class Uitd:
    """A transmitter's TCP connection: sends bytes, reads confirm frames."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.buf = b''

    def send(self, *chunks, pause=0.05):
        for c in chunks:
            self.sock.sendall(c)
            time.sleep(pause)

    def confirms(self, n, timeout=20):
        """The next n confirm frames, parsed and checked."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            while len(self.buf) >= 30 and len(out) < n:
                f, self.buf = self.buf[:30], self.buf[30:]
                h.check(f[:2] == b'@@' and f[-2:] == b'##', 'not a frame: %s' % f.hex())
                h.check(f[26] == 3 and f[24:26] == b'\0\0', 'not an empty confirm: %s' % f.hex())
                h.check(sum(f[2:27]) & 0xff == f[27], 'confirm checksum wrong: %s' % f.hex())
                out.append(f)
            if len(out) == n:
                break
            left = deadline - time.monotonic()
            h.check(left > 0, 'timed out waiting for confirm #%d' % (len(out) + 1))
            self.sock.settimeout(left)
            data = self.sock.recv(4096)
            h.check(data, 'the listener closed the connection')
            self.buf += data
        return out

    def nothing_more(self, wait=1.0):
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return True
        return False

    def closed_by_peer(self, timeout=10):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096) == b''
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


def serial(f):
    return int.from_bytes(f[2:4], 'little')


def check_confirm(c, frame):
    h.check(c[2:6] == frame[2:6], 'confirm serial/version %s, frame %s' % (c[2:6].hex(), frame[2:6].hex()))
    h.check(c[12:18] == frame[18:24] and c[18:24] == frame[12:18],
            'confirm addresses not swapped: %s' % c.hex())


def by_device(d):
    out = {}
    for i in d.incidents():
        out.setdefault((h.incident_device(i), i.get('kind')), []).append(i)
    return out


def body(env):
    broker = env.broker()
    rx = env.receiver()
    port = h.free_port()
    d = env.daemon(broker, [h.sink(rx)],
                   [('uitd', {'plugin': 'gb26875', 'topics': 'gb26875/%s/#' % LISTENER})],
                   start=False)
    d.write_config(d.config_text() + '\n[gb26875 %s]\nlisten = 127.0.0.1:%d\n'
                   'offline_after = 3s\n' % (LISTENER, port))
    d.start()
    d.wait_log('gb26875: listening listener=%s' % LISTENER)

    fire = corpus_frame('smoke_detector_fire_alarm.json')          # serial 17
    fault = corpus_frame('smoke_detector_fault.json')              # serial 19
    shed = corpus_frame('residual_current_detector_alarm.json')    # serial 20
    state = corpus_frame('uitd_running_state_normal.json')         # serial 22
    cleared = mf.frame(18, mf.adu(2, [mf.component(42, 0x00010017, 0x0001, mf.KITCHEN)]))
    corrupt = bytearray(mf.frame(63, mf.adu(2, [mf.component(42, 0x00010099, 3, 'x')])))
    corrupt[-3] ^= 0x55

    # 1. One frame in three pieces: confirmed only after it is committed.
    u = Uitd(port)
    u.send(fire[:5], fire[5:40], fire[40:])
    [c] = u.confirms(1)
    check_confirm(c, fire)
    inc = by_device(d)
    h.check(len(inc.get((KITCHEN, 'smoke'), [])) == 1,
            'the fire was confirmed before its incident was committed: %s' % inc)
    h.log('split frame confirmed after commit: %s' % c.hex(' '))

    # 2. Merged frames with noise and a corrupted frame between them.
    u.send(fault + b'\x00\x13noise@' + bytes(corrupt) + shed + b'@' + state, pause=0)
    cs = u.confirms(3)
    h.check([serial(c) for c in cs] == [19, 20, 22], 'confirm serials %s' % [serial(c) for c in cs])
    for c, f in zip(cs, (fault, shed, state)):
        check_confirm(c, f)
    h.check(u.nothing_more(), 'the corrupted frame was confirmed')
    inc = by_device(d)
    h.check((STAIR, 'fault') in inc and (SHED, 'residual_current') in inc,
            'merged frames not all decoded: %s' % sorted(inc))
    h.check(not any(dev.endswith('00010099') for dev, _ in inc), 'the corrupted frame was decoded')

    # 3. Retransmissions: confirmed again, never a second incident or a re-alarm.
    u.send(fire)
    check_confirm(u.confirms(1)[0], fire)
    u.send(cleared)
    check_confirm(u.confirms(1)[0], cleared)
    u.send(fire, fire)
    h.check([serial(c) for c in u.confirms(2)] == [17, 17], 'retransmissions not confirmed')
    time.sleep(0.5)
    smoke = by_device(d).get((KITCHEN, 'smoke'), [])
    h.check(len(smoke) == 1, 'retransmission made another incident: %s' % smoke)
    h.check(smoke[0].get('cleared_at'),
            'the retransmitted alarm re-opened the cleared incident: %s' % smoke[0])
    h.check(smoke[0].get('count', 1) == 1, 'retransmission counted as a repeat: %s' % smoke[0])

    # 4. Reconnecting closes the old connection.
    u2 = Uitd(port)
    u2.send(state)
    check_confirm(u2.confirms(1)[0], state)
    h.check(u.closed_by_peer(), 'the old connection stayed open after the reconnect')
    u.close()

    # 5. Silence: offline after offline_after (3 s), online with the next frame.
    # (Every step above sent a frame well within 3 s of the one before.)
    h.check((UITD, 'offline') not in by_device(d), 'offline before the transmitter fell silent')
    h.wait_until(lambda: (UITD, 'offline') in by_device(d), 30, 'the silent transmitter offline')
    d.wait_log('transmitter silent listener=%s uitd=%s' % (LISTENER, UITD))
    heartbeat = mf.frame(70, b'')
    u2.send(heartbeat)
    check_confirm(u2.confirms(1)[0], heartbeat)
    h.wait_until(lambda: [i for i in by_device(d)[(UITD, 'offline')]
                          if i.get('cleared_at')],
                 30, 'the offline to end with the next frame')
    u2.close()

    # The bad frames were counted (counters reach the store every few seconds).
    h.wait_until(lambda: d.metric('firegrid_gb26875_bad_frames_total', 'listener', LISTENER) >= 1,
                 30, 'the bad frame to be counted')
    h.wait_until(lambda: d.metric('firegrid_gb26875_confirms_total', 'listener', LISTENER) == 10,
                 30, 'the 10 confirms to be counted')

    # Webhooks went out for the fire (signed, as everywhere).
    h.wait_until(lambda: any(r.get('type') == 'org.firegrid.incident.opened' for r in rx.records()),
                 30, 'an opened webhook')
    h.check(d.stop() == 0, 'firegridd did not stop cleanly')
    h.check('handles left open' not in d.log_text(), 'handles left open at exit')


if __name__ == '__main__':
    h.run('gb26875', body)
