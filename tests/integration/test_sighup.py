#!/usr/bin/env python3
"""
SIGHUP: a broken config is logged and the running one kept (firegridd still
ingests and delivers); a valid changed config is applied (a new source's
topics are subscribed and decoded, webhooks go to the new sink).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def has_device(d, name):
    return any(h.incident_device(i).endswith(name) for i in d.incidents())


def opened_for(rx, name):
    return any(str(r.get('type', '')).endswith('.opened') and
               name in str(h.find_key(r.get('body'), 'device') or '') for r in rx.records())


def body(env):
    broker = env.broker()
    rx1 = env.receiver(name='receiver-1')
    rx2 = env.receiver(name='receiver-2', secret='whsec_c2Vjb25kIHJlY2VpdmVyIHNlY3JldCBrZXk=')
    d = env.daemon(broker, [h.sink(rx1)], h.generic_sources())

    env.fg_pub(broker.port, '--topic', 'firegrid/dev-a', '--message',
               '{"device":"dev-a","kind":"smoke"}')
    h.wait_until(lambda: opened_for(rx1, 'dev-a'), 30, 'dev-a at receiver 1')

    # 1. A broken file: the reload is refused and logged, nothing changes.
    good_text = open(d.conf_path).read()
    d.write_config(good_text + '\n[sink broken]\nurl = ftp://nowhere\nbogus_key = 1\n')
    d.reload()
    h.wait_until(lambda: d.conf_path + ':' in d.log_text() and 'bogus_key' in d.log_text(), 15,
                 'the reload error naming file, line and key')
    h.check(d.alive(), 'firegridd exited on a broken reload:\n' + h.tail(d.log_text()))
    env.fg_pub(broker.port, '--topic', 'firegrid/dev-b', '--message',
               '{"device":"dev-b","kind":"smoke"}')
    h.wait_until(lambda: opened_for(rx1, 'dev-b'), 30, 'dev-b at receiver 1 after a broken reload')

    # 2. A valid new config: another source on new topics, and the sink now
    #    points at receiver 2 with its own secret.
    subscribed_before = d.log_text().count('mqtt: subscribed')
    d.sources = h.generic_sources() + [('site', {'plugin': 'generic-json', 'topics': 'site/#'})]
    d.sinks = [h.sink(rx2)]
    d.write_config()
    d.reload()
    d.wait_log('mqtt: subscribed', 30, count=subscribed_before + 1)
    env.fg_pub(broker.port, '--topic', 'site/dev-c', '--message',
               '{"device":"dev-c","kind":"smoke"}')
    h.wait_until(lambda: has_device(d, 'dev-c'), 30, 'an incident from the new source')
    h.wait_until(lambda: opened_for(rx2, 'dev-c'), 30, 'dev-c at receiver 2')
    h.check(all(r.get('signature_ok') for r in rx2.records()),
            'receiver 2 saw a signature made with the old secret')
    h.check(not opened_for(rx1, 'dev-c'), 'the old sink still got webhooks after the reload')
    # The old topics still work under the new config.
    env.fg_pub(broker.port, '--topic', 'firegrid/dev-d', '--message',
               '{"device":"dev-d","kind":"smoke"}')
    h.wait_until(lambda: opened_for(rx2, 'dev-d'), 30, 'dev-d at receiver 2')
    h.check(len(d.incidents()) == 4, 'incidents: %r' % d.incidents())
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited with %s on SIGTERM' % rc)


if __name__ == '__main__':
    h.run('sighup', body)
