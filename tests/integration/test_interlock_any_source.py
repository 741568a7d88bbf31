#!/usr/bin/env python3
"""
The local interlock triggered by detectors that are not on Modbus: a real
mosquitto carries Zigbee2MQTT messages, the real Modbus shed simulator
(fg-modbus-sim) holds the relay board whose coils switch the charging ports,
and firegridd sits between them with the uplink down (the ops center
answers 503).

  [interlock shed-b3] trigger_devices = zigbee2mqtt/shed-b3-smoke <RCBO IEEE>

  1. a smoke alarm from an unrelated Zigbee detector (the kitchen of flat
     201) opens its incident, and nothing is written to the relay board;
  2. a smoke alarm published on zigbee2mqtt/shed-b3-smoke (named by its
     topic: the bridge does not know its IEEE address) cuts the power:
     coils written off, read back, the action recorded for that incident,
     in its history and -- once the uplink is back -- in its "updated"
     webhook;
  3. after `firegridctl interlock restore`, a leakage alarm of the shed's
     Zigbee RCBO (named by its IEEE address, published under its friendly
     name) cuts again as residual_current;
  4. a smoke alarm that arrives while a SIGHUP reload waits for the old bus
     worker (stuck in a dead device's timeout) cuts once the new rules run.
"""
from harness import (check, incident_device, ini, log, run, sink, wait_until, z2m_file,
                     z2m_ieee)
from modbus_harness import request_log, shed_sections, shed_sim, store_query
from test_modbus_interlock import COILS, actions, coils, ctl_restore, uplink_back_cut_webhook

SHED_SMOKE = 'zigbee2mqtt/shed-b3-smoke'        # not in bridge/devices
KITCHEN = 'zigbee2mqtt/b3/u201/smoke_kitchen'    # another building's detector
RCBO = 'zigbee2mqtt/shed_b3/rcbo_ebike_feeder'


def wait_z2m_incident(d, device, kind, timeout=30):
    def found():
        for inc in d.incidents() or []:
            if incident_device(inc) == device and inc.get('kind') == kind:
                return inc
        return None
    return wait_until(found, timeout, 'a %s incident for %s' % (kind, device), interval=0.2)


def publish(env, broker, topic, sample, retain=False):
    args = (['--retain'] if retain else []) + ['--topic', topic, '--file', z2m_file(sample)]
    summary = env.fg_pub(broker.port, *args)
    check(summary.get('acked') == 1, 'fg-pub %s: %r' % (topic, summary))


def test(env):
    rcbo_ieee = z2m_ieee('shed_b3/rcbo_ebike_feeder')
    kitchen_ieee = z2m_ieee('b3/u201/smoke_kitchen')
    broker = env.broker()
    rx = env.receiver()
    rx.control(status=503)                     # the uplink is down
    sim = shed_sim(env)
    d = env.daemon(broker, [sink(rx, retry_min='100ms', retry_max='1s')],
                   [('z2m', {'plugin': 'zigbee2mqtt', 'topics': 'zigbee2mqtt/#'})],
                   start=False)
    sections = shed_sections(sim.port) + [
        ('interlock shed-b3', {'device': 'b3-relays', 'coils': ' '.join(map(str, COILS)),
                               'trigger_devices': '%s %s' % (SHED_SMOKE, rcbo_ieee)}),
    ]
    d.write_config(d.config_text() + '\n' + ini(sections))
    d.start()
    d.wait_log('modbus: polling', 30)
    publish(env, broker, 'zigbee2mqtt/bridge/devices', 'bridge_devices.json', retain=True)

    # 1. an unrelated detector: its incident opens, no coil is written
    log('smoke in flat 201: not the shed')
    publish(env, broker, KITCHEN, 'heiman_hs1sa_smoke_alarm_active.json')
    wait_z2m_incident(d, kitchen_ieee, 'smoke')
    reads = sim.reads(20)
    wait_until(lambda: sim.reads(20) >= reads + 6, 20, 'three more relay polls')
    check(sim.writes(20) == 0 and coils(sim) == [1, 1, 1, 1] and actions(d) == [],
          'an unrelated alarm touched the relays: writes %d, coils %r, actions %r'
          % (sim.writes(20), coils(sim), actions(d)))

    # 2. the shed's own smoke detector, named by its topic
    log('smoke in the shed: the interlock cuts')
    publish(env, broker, SHED_SMOKE, 'heiman_hs1sa_smoke_alarm_active.json')
    inc = wait_z2m_incident(d, 'shed-b3-smoke', 'smoke')
    wait_until(lambda: coils(sim) == [0, 0, 0, 0], 20, 'coils 0..3 written off')
    wait_until(lambda: len(actions(d)) >= 1, 20, 'the cut recorded')
    act = actions(d)
    check(len(act) == 1 and act[0][:4] == ('cut', 1, 1, 0) and act[0][5] == inc['id'],
          'cut not recorded as written+verified for incident %d: %r' % (inc['id'], act))
    trig = store_query(d, 'SELECT trigger, readback FROM interlock_actions')
    check(trig == [('shed-b3-smoke smoke', '[false,false,false,false]')],
          'trigger/read-back: %r' % trig)
    hist = d.ctl('incident', str(inc['id']))['history']
    rows = [h for h in hist if h.get('channel') == 'interlock']
    check(len(rows) == 1 and rows[0]['actor'] == 'interlock/shed-b3' and
          rows[0]['note'] == 'cut coils [0,1,2,3] = 0: verified',
          'interlock history of incident %d: %r' % (inc['id'], hist))
    check(not any(r.get('status') == 200 for r in rx.records()),
          'a webhook got through while the uplink was down')

    rec, _ = uplink_back_cut_webhook(rx, inc['id'])
    # History row and webhook are one revision, written together.
    check(rec.get('revision') == rows[0]['revision'] and
          rec.get('webhook_id', '').endswith('-%d-%d' % (inc['id'], rows[0]['revision'])),
          'webhook revision %r / history revision %r' % (rec.get('revision'), rows[0]))

    # 3. restore, then the RCBO (named by its IEEE address) cuts again
    rc, out = ctl_restore(d)
    check(rc == 0 and 'verified' in out and coils(sim) == [1, 1, 1, 1],
          'restore failed (%d, coils %r): %s' % (rc, coils(sim), out))
    log('leakage at the shed RCBO: the interlock cuts')
    publish(env, broker, RCBO, 'tongou_towsmr1_leakage_alarm.json')
    leak = wait_z2m_incident(d, rcbo_ieee, 'residual_current')
    wait_until(lambda: coils(sim) == [0, 0, 0, 0], 20, 'coils 0..3 written off again')
    wait_until(lambda: len(actions(d)) >= 3, 20, 'the second cut recorded')
    act = actions(d)[-1]
    check(act[:4] == ('cut', 1, 1, 0) and act[5] == leak['id'],
          'second cut for incident %d: %r' % (leak['id'], act))
    check([a[0] for a in actions(d)] == ['cut', 'restore', 'cut'],
          'actions: %r' % actions(d))

    # 4. an alarm while a reload swaps the Modbus side: the old bus worker
    # is inside a dead device's 4 s timeout, so the new rules start only
    # after it; the alarm that came meanwhile still cuts, once they run.
    rc, out = ctl_restore(d)
    check(rc == 0 and coils(sim) == [1, 1, 1, 1], 'restore before the reload: %s' % out)
    sim.cmd('unit 30')
    sim.cmd('silent 30 on')
    dead = [('modbus-device b3-dead', {'bus': 'shed-b3', 'unit': 30, 'plugin': 'sht20',
                                       'interval': '1s', 'offline_interval': '1s',
                                       'timeout': '4s'})]
    d.write_config(d.config_text() + '\n' + ini(sections + dead))
    d.reload()
    d.wait_log('main: reloaded', 30)
    d.wait_log('modbus: polling', 30, count=2)
    _, before = request_log(sim, 30)
    wait_until(lambda: len(request_log(sim, 30)[1]) > len(before), 20,
               'a request to the dead device')
    n_actions = len(actions(d))
    d.reload()                     # the old worker now waits up to 4 s
    d.wait_log('main: reloading', 10, count=2)
    publish(env, broker, SHED_SMOKE, 'heiman_hs1sa_smoke_cleared.json')
    publish(env, broker, SHED_SMOKE, 'heiman_hs1sa_smoke_alarm_active.json')
    wait_until(lambda: len(actions(d)) > n_actions, 30, 'the cut after the reload recorded')
    check('alarm before the rule started rule=shed-b3' in d.log_text(),
          'the alarm did not come while the reload was under way (test timing)')
    act = actions(d)[-1]
    check(act[:4] == ('cut', 1, 1, 0) and act[5] == inc['id'] and
          coils(sim) == [0, 0, 0, 0], 'cut after the reload: %r, coils %r' % (act, coils(sim)))
    check(d.stop() == 0, 'firegridd did not exit cleanly')


if __name__ == '__main__':
    run('interlock_any_source', test)
