#!/usr/bin/env python3
"""
`firegridctl plugins` against real plugin directories:

- the build's plugins: every bundled module listed once, ABI 1, the same
  version and option table as the copy linked into firegridctl (--builtin),
  and the config's sources named per plugin;
- a directory of deliberately broken modules (tests/unit/plugins/bad_abi.c):
  each refused with the ABI gate's reason, the healthy ones still listed;
- usage errors exit 2, a missing directory exits 1 with a clear message.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def ctl(exe, *args, rc=0):
    r = subprocess.run([exe] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    if r.returncode != rc:
        raise SystemExit('FAIL: firegridctl %s exited %d, expected %d\n%s%s'
                         % (' '.join(args), r.returncode, rc, r.stdout, r.stderr))
    return r


def check(cond, msg):
    if not cond:
        raise SystemExit('FAIL: ' + msg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--firegridctl', required=True)
    ap.add_argument('--plugin-dir', required=True)
    ap.add_argument('--bad-dir', required=True)
    ap.add_argument('--bundled', required=True, help='comma-separated bundled plugin names')
    a = ap.parse_args()
    bundled = sorted(a.bundled.split(','))

    with tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False) as f:
        f.write('[daemon]\ngateway_id = gw-test\nstate_dir = %s\nplugin_dir = %s\n'
                '[source kitchen]\nplugin = shelly\ntopics = +/events/rpc\n'
                '[source stair]\nplugin = shelly\ntopics = shellies/#\n'
                '[source sheds]\nplugin = tasmota\ntopics = tele/#\n'
                % (tempfile.gettempdir(), a.plugin_dir))
        conf = f.name
    try:
        mods = json.loads(ctl(a.firegridctl, '--config', conf, '--json', 'plugins').stdout)
        check(mods['plugin_dir'] == a.plugin_dir, 'plugin_dir %r' % mods['plugin_dir'])
        names = [p['name'] for p in mods['plugins']]
        check(names == bundled, 'modules listed %r, expected %r' % (names, bundled))
        check(mods['refused'] == [], 'refused %r' % mods['refused'])
        by = {p['name']: p for p in mods['plugins']}
        check(by['shelly']['sources'] == ['kitchen', 'stair'], 'shelly sources %r'
              % by['shelly']['sources'])
        check(by['tasmota']['sources'] == ['sheds'] and by['zigbee2mqtt']['sources'] == [],
              'sources per plugin wrong')
        for p in mods['plugins']:
            check(p['abi_major'] == mods['abi_major'] == 1 and not p['builtin'] and
                  os.path.isfile(p['module']), 'bad entry %r' % p)

        # The shared modules and the built-ins are the same plugins.
        built = json.loads(ctl(a.firegridctl, '--json', 'plugins', '--builtin').stdout)
        bb = {p['name']: p for p in built['plugins']}
        for n in bundled:
            check(n in bb, '%s is not built into firegridctl' % n)
            for k in ('version', 'description', 'options', 'descriptor_size'):
                check(bb[n][k] == by[n][k], '%s: %s differs between module and built-in' % (n, k))
        opt = {o['key']: o for o in by['tasmota']['options']}
        check(opt['current_max']['type'] == 'number' and opt['current_max']['default'] == '5'
              and opt['current_max']['max'] == 1000, 'tasmota current_max %r' % opt['current_max'])

        human = ctl(a.firegridctl, '--config', conf, 'plugins').stdout
        check('PLUGIN' in human and 'kitchen,stair' in human and 'shelly options:' in human
              and 'battery_low_percent' in human, 'human output:\n' + human)

        # Broken modules: refused with the gate's reason; nothing else affected.
        bad = json.loads(ctl(a.firegridctl, '--json', 'plugins', '--plugin-dir', a.bad_dir).stdout)
        refused = {r['name']: r['error'] for r in bad['refused']}
        want = {
            'bad_major': 'ABI major 2, this firegrid speaks 1',
            'small_struct': 'ABI v1 needs at least',
            'wrong_name': "module calls itself 'other_name'",
            'no_decode': 'no decode function',
            'no_symbol': 'does not export firegrid_plugin_v1',
            'bad_option': "option 'flag' lies outside",
        }
        for n, why in want.items():
            check(n in refused and why in refused[n], '%s: refusal %r' % (n, refused.get(n)))
        listed = [p['name'] for p in bad['plugins']]
        check('init_fails' in listed and 'good' in listed and not set(listed) & set(want),
              'listed despite refusal, or healthy module missing: %r' % listed)
        human = ctl(a.firegridctl, 'plugins', '--plugin-dir', a.bad_dir).stdout
        check('REFUSED bad_major: ' in human, 'no REFUSED line:\n' + human)

        ctl(a.firegridctl, 'plugins', '--bogus', rc=2)
        r = ctl(a.firegridctl, 'plugins', '--plugin-dir', '/nonexistent/plugins', rc=1)
        check('/nonexistent/plugins' in r.stderr, 'missing dir message: %r' % r.stderr)
        print('firegridctl plugins: PASS')
    finally:
        os.unlink(conf)


if __name__ == '__main__':
    main()
