#!/usr/bin/env python3
"""
The plugin kit, as a plugin author outside the tree uses it:

1. `meson install` this build into a scratch DESTDIR;
2. configure and build docs/example-plugin (an out-of-tree project whose
   meson.build is `dependency('firegrid-plugin')` plus one shared_module)
   against that installed copy only, through firegrid-plugin.pc
   (PKG_CONFIG_PATH + PKG_CONFIG_SYSROOT_DIR), with -Werror;
3. check that the module exports exactly firegrid_plugin_v1, that
   `firegridctl plugins` lists it with its ABI and option, and that its
   golden file passes through the real `firegridctl decode`.

Standard library only; everything happens under one temporary directory.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def run(cmd, env=None, cwd=None):
    r = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit('FAIL: %s exited %d:\n%s' % (' '.join(cmd), r.returncode, r.stdout))
    return r.stdout


def check(cond, msg):
    if not cond:
        raise SystemExit('FAIL: ' + msg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build-root', required=True)
    ap.add_argument('--source-root', required=True)
    args = ap.parse_args()
    build, src = os.path.abspath(args.build_root), os.path.abspath(args.source_root)
    ctl = os.path.join(build, 'daemon', 'ctl', 'firegridctl')
    tmp = tempfile.mkdtemp(prefix='fg-kit-')
    try:
        root = os.path.join(tmp, 'root')
        run(['meson', 'install', '-C', build, '--no-rebuild', '--quiet', '--destdir', root])

        pcs = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
               if f == 'firegrid-plugin.pc']
        check(len(pcs) == 1, 'expected one installed firegrid-plugin.pc, found %r' % pcs)
        headers = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                   if f == 'plugin.h' and os.path.basename(d) == 'firegrid']
        check(len(headers) == 1, 'expected one installed firegrid/plugin.h, found %r' % headers)
        with open(headers[0], 'rb') as a, \
                open(os.path.join(src, 'daemon', 'include', 'firegrid', 'plugin.h'), 'rb') as b:
            check(a.read() == b.read(), 'installed plugin.h differs from the source tree')

        env = dict(os.environ)
        env['PKG_CONFIG_PATH'] = os.path.dirname(pcs[0])
        env['PKG_CONFIG_SYSROOT_DIR'] = root
        for k in [k for k in env if k.startswith('MESON')]:
            del env[k]
        ex = os.path.join(tmp, 'example-build')
        run(['meson', 'setup', '-Dwerror=true', ex, os.path.join(src, 'docs', 'example-plugin')],
            env=env)
        run(['ninja', '-C', ex], env=env)

        # It compiled against the installed header, not the source tree.
        with open(os.path.join(ex, 'compile_commands.json')) as f:
            cc = json.load(f)[0]['command']
        inc = os.path.dirname(os.path.dirname(headers[0]))
        check('-I' + inc in cc, 'not built against the installed kit (%s): %s' % (inc, cc))
        check('-DFG_PLUGIN_MODULE' in cc and '-fvisibility=hidden' in cc,
              'the kit did not supply its flags: ' + cc)

        module = os.path.join(ex, 'esphome-smoke.so')
        syms = run(['nm', '-D', '--defined-only', module]).split()
        exported = [s for s in syms if s not in ('T', 'D', 'B', 'R') and not s[0].isdigit()
                    and len(s) > 1]
        check(exported == ['firegrid_plugin_v1'],
              'the module should export only firegrid_plugin_v1, exports %r' % exported)

        listed = json.loads(run([ctl, '--json', 'plugins', '--plugin-dir', ex]))
        names = [p['name'] for p in listed['plugins']]
        check(names == ['esphome-smoke'], 'firegridctl plugins lists %r' % names)
        p = listed['plugins'][0]
        check(p['abi_major'] == listed['abi_major'] and p['version'] == '1.0',
              'ABI/version wrong: %r' % p)
        check([o['key'] for o in p['options']] == ['smoke_sensors'], 'options: %r' % p['options'])
        check(listed['refused'] == [], 'refused: %r' % listed['refused'])

        out = run([sys.executable, os.path.join(src, 'tests', 'golden', 'run_golden.py'),
                   '--firegridctl', ctl, '--plugin-dir', ex, '--root', src,
                   os.path.join(src, 'docs', 'example-plugin', 'samples', 'smoke_on_off.golden')])
        print(out.strip())
        print('plugin kit: PASS')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
