"""Helpers shared by the fire-lane camera tests (test_frigate, test_hikvision,
test_dahua): the webhooks a receiver got, and the config they all need."""
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
