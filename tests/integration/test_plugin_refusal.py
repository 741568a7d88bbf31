#!/usr/bin/env python3
"""
Plugins that fail the ABI gate or whose init() fails, at daemon level.

Choice: a configuration is all or nothing.  firegridd given a source whose
plugin is refused does NOT start (exit 1, one clear log line naming file,
line, source, plugin and the rule that failed); `--check-config` says the
same.  A SIGHUP to such a configuration is rejected and the running
configuration, with every other source, keeps working.

The broken modules are tests/unit/plugins/bad_abi.c built as bad_major.so
(abi_major 2) and init_fails.so; the plugin dir also holds the real
generic-json module, all as symlinks in a scratch directory.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BAD_DIR = os.path.join(h.BUILD_ROOT, 'tests', 'unit')
GOOD = ('generic', {'plugin': 'generic-json', 'topics': 'firegrid/#'})
REASONS = {
    'bad_major': "ABI major 2, this firegrid speaks 1; rebuild it against this firegrid's plugin.h",
    'init_fails': "plugin 'init_fails' refused to start: Input/output error",
}


def plugin_dir(env):
    d = env.path('plugins')
    os.makedirs(d, exist_ok=True)
    os.symlink(os.path.join(h.PLUGIN_DIR, 'generic-json', 'generic-json.so'),
               os.path.join(d, 'generic-json.so'))
    for name in REASONS:
        os.symlink(os.path.join(BAD_DIR, name + '.so'), os.path.join(d, name + '.so'))
    return d


def source_line(conf_path, name):
    with open(conf_path) as f:
        for n, line in enumerate(f, 1):
            if line.strip() == '[source %s]' % name:
                return n
    raise h.TestFailure('no [source %s] in %s' % (name, conf_path))


def refuses_to_start(env, broker, rx, plugins, bad):
    d = h.Daemon(env, broker, [h.sink(rx)], [GOOD, ('broken', {'plugin': bad, 'topics': 'x/#'})],
                 name='refuse-' + bad, extra={'daemon': {'plugin_dir': plugins}})
    want = '%s:%d: [source broken] plugin: ' % (d.conf_path, source_line(d.conf_path, 'broken'))
    r = subprocess.run([h.FIREGRIDD, '--check-config', '--config', d.conf_path],
                       capture_output=True, timeout=30, universal_newlines=True)
    h.check(r.returncode == 1, '--check-config with %s exited %d' % (bad, r.returncode))
    h.check(want in r.stderr and REASONS[bad] in r.stderr,
            '--check-config message for %s: %r' % (bad, r.stderr))
    d.start(wait=False)
    rc = d.proc.popen.wait(timeout=30)
    out = d.log_text()
    h.check(rc == 1, 'firegridd with a %s source exited %r, expected 1:\n%s' % (bad, rc, out))
    h.check('cannot start sources' in out and want in out and REASONS[bad] in out,
            'firegridd did not say why it refused %s:\n%s' % (bad, out))
    h.check('ready' not in out, 'firegridd got ready despite %s:\n%s' % (bad, out))
    h.log('%s: refused to start: %s' % (bad, [l for l in out.splitlines() if want in l][0]))


def body(env):
    broker = env.broker()
    rx = env.receiver()
    plugins = plugin_dir(env)
    for bad in REASONS:
        refuses_to_start(env, broker, rx, plugins, bad)

    # A running daemon keeps its configuration when a reload brings a refused plugin.
    d = env.daemon(broker, [h.sink(rx)], [GOOD], extra={'daemon': {'plugin_dir': plugins}})
    first = env.write('first.json', '{"device":"b3-u201-kitchen","kind":"smoke"}')
    env.fg_pub(broker.port, '--topic', 'firegrid/b3', '--file', first)
    h.wait_until(lambda: len(d.incidents()) == 1, 30, 'the first incident')
    for bad in REASONS:
        d.write_config(d.config_text(sources=[GOOD, ('broken', {'plugin': bad, 'topics': 'x/#'})]))
        d.reload()
        d.wait_log('reload rejected, keeping the running config', count=list(REASONS).index(bad) + 1)
        h.check(REASONS[bad] in d.log_text(), 'reload log does not say why %s was refused' % bad)
    second = env.write('second.json', '{"device":"b5-stair-3f","kind":"smoke"}')
    env.fg_pub(broker.port, '--topic', 'firegrid/b5', '--file', second)
    h.wait_until(lambda: len(d.incidents()) == 2, 30, 'the second incident after the rejected reloads')
    h.check(d.alive(), 'firegridd died')
    h.check(d.stop() == 0, 'firegridd did not stop cleanly')


if __name__ == '__main__':
    h.run('plugin_refusal', body)
