"""Helpers shared by the fire-lane camera tests (test_frigate, test_hikvision,
test_dahua): the webhooks a receiver got, and the config they all need."""
import os
import re
import subprocess

import harness as h


def webhooks(rx, device=None):
    """Unique webhooks (by webhook-id: deliveries are at least once) in
    arrival order, only those of `device` when given."""
    seen, out = set(), []
    for r in rx.records():
        if device and device not in str(h.find_key(r.get('body') or {}, 'device') or ''):
            continue
        if r.get('webhook_id') not in seen:
            seen.add(r.get('webhook_id'))
            out.append(r)
    return out


def changes(hooks):
    """['opened', 'cleared', ...] of a list of webhooks."""
    return [r.get('type', '').rsplit('.', 1)[-1] for r in hooks]


def attrs(hook):
    """The attrs of the event a webhook carries."""
    return h.find_key(hook.get('body') or {}, 'attrs') or {}


def start_without_hold(d, sections=()):
    """Start a daemon whose blocked lanes are reported at once: the
    operations loop would hold them back for [escalation] fire_lane_hold
    (30 min); the camera side (dwell) is what these tests are about."""
    d.write_config(d.config_text() + '\n' +
                   h.ini(list(sections) + [('escalation', {'fire_lane_hold': '0'})]))
    d.start(wait=False)


def digest_post(port, path, body, user, password, ctype='application/xml'):
    """POST a camera push with `curl --digest` (it answers the 401
    challenge): status code, the last WWW-Authenticate challenge, the
    response body."""
    out = subprocess.run(['curl', '-sS', '--digest', '-u', '%s:%s' % (user, password),
                          '-H', 'Content-Type: ' + ctype, '--data-binary', '@-',
                          '-D', '-', '-w', '\n%{http_code}', 'http://127.0.0.1:%d%s' % (port, path)],
                         input=body, capture_output=True, timeout=60)
    h.check(out.returncode == 0, 'curl failed: %s' % out.stderr.decode(errors='replace'))
    text, _, code = out.stdout.decode(errors='replace').rpartition('\n')
    ch = re.findall(r'(?im)^WWW-Authenticate: *(.*?)\r?$', text)
    return int(code), (ch[-1] if ch else ''), text.rsplit('\r\n\r\n', 1)[-1]


def corpus(family, name):
    """A sample of the shared corpus, as bytes."""
    with open(os.path.join(h.CORPUS, family, name), 'rb') as f:
        return f.read()


def with_mac(body, mac):
    """A Hikvision push as if from the camera with this MAC (the same length:
    multipart bodies stay valid)."""
    return re.sub(rb'<macAddress>[^<]*</macAddress>', b'<macAddress>' + mac + b'</macAddress>',
                  body)
