"""
Integration harness for firegrid: real processes on loopback.

Every test runs the real binaries from the build tree:
  - mosquitto (/usr/sbin/mosquitto) with etc/mosquitto/firegrid-gateway.conf
    plus a loopback listener and a private persistence directory,
  - fg-receiver (tests/tools), the webhook receiver that verifies signatures,
  - firegridd with a generated INI config,
  - fg-pub (tests/tools) to publish, firegridctl --json to read the state.

Processes are tracked by PID and killed when the test ends, whatever happens
(finally + atexit).  Every wait is bounded.  Standard library only.

Environment (set by tests/integration/meson.build):
  FG_BUILD_ROOT   the meson build directory (default: <source>/build)
  FG_SOURCE_ROOT  the source tree (default: two levels above this file)
  FG_KEEP_TMP=1   keep the temporary directory even when the test passes
  FG_TEST_SEED    seed for randomised tests (printed on every run)
"""

import atexit
import json
import os
import pwd
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

SOURCE_ROOT = os.environ.get('FG_SOURCE_ROOT') or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_ROOT = os.environ.get('FG_BUILD_ROOT') or os.path.join(SOURCE_ROOT, 'build')
MOSQUITTO = os.environ.get('FG_MOSQUITTO', '/usr/sbin/mosquitto')
GATEWAY_SNIPPET = os.path.join(SOURCE_ROOT, 'etc', 'mosquitto', 'firegrid-gateway.conf')
CORPUS = os.environ.get('FG_CORPUS') or os.path.join(
    os.path.dirname(SOURCE_ROOT), 'shared', 'corpus')
Z2M_DATA = os.path.join(SOURCE_ROOT, 'tests', 'data', 'zigbee2mqtt')

FIREGRIDD = os.path.join(BUILD_ROOT, 'daemon', 'firegridd')
FIREGRIDCTL = os.path.join(BUILD_ROOT, 'daemon', 'ctl', 'firegridctl')
FG_PUB = os.path.join(BUILD_ROOT, 'tests', 'tools', 'fg-pub')
FG_RECEIVER = os.path.join(BUILD_ROOT, 'tests', 'tools', 'fg-receiver')
PLUGIN_DIR = os.path.join(BUILD_ROOT, 'plugins')

SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'


class TestFailure(Exception):
    pass


def check(cond, msg):
    """Assert that survives python -O and says what went wrong."""
    if not cond:
        raise TestFailure(msg)


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns something truthy; fail after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TestFailure('timed out after %.0f s waiting for %s' % (timeout, what))
        time.sleep(interval)


def read_jsonl(path):
    """JSON lines of a file that may still be written to: a torn last line is skipped."""
    out = []
    try:
        with open(path, 'r', encoding='utf-8', errors='replace') as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out


def find_key(obj, key):
    """First value of `key` anywhere in a JSON tree (depth first), or None."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        return None
    for child in children:
        v = find_key(child, key)
        if v is not None:
            return v
    return None


class Proc:
    """A child process, its output in a file, stopped by PID."""

    def __init__(self, env, name, argv, stdout=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(env.tmp, '%s.log' % name)
        self._log = open(self.log_path, 'ab')
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else self._log,
            stderr=self._log, cwd=env.tmp)
        self.pid = self.popen.pid
        env.procs.append(self)

    def alive(self):
        return self.popen.poll() is None

    def send_signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Send sig, wait for exit (SIGKILL after timeout); return exit code."""
        self.send_signal(sig)
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log('%s (pid %d) ignored signal %d for %d s, killing' % (self.name, self.pid, sig, timeout))
            self.send_signal(signal.SIGKILL)
            rc = self.popen.wait(timeout=10)
        self._log.close()
        return rc

    def output(self):
        try:
            with open(self.log_path, 'r', encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''


class Broker:
    """A real mosquitto with the gateway snippet, on a loopback port."""

    def __init__(self, env, port=None, name='mosquitto'):
        self.env = env
        self.port = port or free_port()
        self.name = name
        self.persist_dir = os.path.join(env.tmp, name + '-data')
        os.makedirs(self.persist_dir, exist_ok=True)
        self._let_broker_write(self.persist_dir)
        self.conf_path = os.path.join(env.tmp, name + '.conf')
        with open(GATEWAY_SNIPPET, 'r') as f:
            snippet = f.read()
        with open(self.conf_path, 'w') as f:
            f.write(snippet)
            f.write('\n# --- test instance ---\n')
            f.write('persistence_location %s/\n' % self.persist_dir)
            f.write('log_dest stderr\n')
            f.write('log_type error\nlog_type warning\nlog_type notice\nlog_type information\n')
            f.write('listener %d 127.0.0.1\n' % self.port)
            f.write('allow_anonymous true\n')
        self.proc = None
        self.starts = 0

    @staticmethod
    def _let_broker_write(path):
        # Started as root, mosquitto drops to the `mosquitto` user; its
        # persistence directory must be reachable and writable for that user.
        if os.geteuid() != 0:
            return
        try:
            pw = pwd.getpwnam('mosquitto')
        except KeyError:
            return
        os.chown(path, pw.pw_uid, pw.pw_gid)
        d = os.path.dirname(path)
        os.chmod(d, os.stat(d).st_mode | 0o711)

    def start(self):
        self.starts += 1
        self.proc = Proc(self.env, '%s-%d' % (self.name, self.starts), [MOSQUITTO, '-c', self.conf_path])
        wait_until(lambda: port_open(self.port) or not self.proc.alive(), 10,
                   'mosquitto to listen on %d' % self.port)
        check(self.proc.alive(), 'mosquitto exited:\n' + self.proc.output())
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            self.proc.stop(sig)
            self.proc = None


class Receiver:
    """The real webhook receiver (tests/tools/fg-receiver)."""

    def __init__(self, env, secret=SECRET, name='receiver', extra_args=()):
        self.env = env
        self.secret = secret
        self.name = name
        self.log_path = os.path.join(env.tmp, name + '.jsonl')
        self.proc = Proc(env, name, [FG_RECEIVER, '--port', '0', '--secret', secret,
                                     '--log', self.log_path] + list(extra_args),
                         stdout=subprocess.PIPE)
        line = self._read_port_line()
        check(line.startswith('PORT '), 'fg-receiver did not print PORT: %r\n%s'
              % (line, self.proc.output()))
        self.port = int(line.split()[1])
        self.url = 'http://127.0.0.1:%d/hooks' % self.port

    def _read_port_line(self):
        # Bounded read of the first stdout line.
        out = self.proc.popen.stdout
        deadline = time.monotonic() + 10
        buf = b''
        while b'\n' not in buf and time.monotonic() < deadline:
            r, _, _ = select.select([out], [], [], 0.2)
            if r:
                chunk = os.read(out.fileno(), 256)
                if not chunk:
                    break
                buf += chunk
        return buf.decode(errors='replace').strip().splitlines()[0] if buf.strip() else ''

    def _http(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request('http://127.0.0.1:%d%s' % (self.port, path), data=data,
                                     method=method, headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
        return json.loads(text) if text.strip() else {}

    def control(self, **kw):
        """Change the receiver's behaviour: status=503, hang_ms=N, status=200."""
        return self._http('POST', '/_control', kw)

    def stats(self):
        return self._http('GET', '/_stats')

    def records(self):
        return read_jsonl(self.log_path)

    def stop(self):
        self.proc.stop()


def ini(sections):
    """Render [(section, {key: value})] as INI text."""
    out = []
    for name, kv in sections:
        out.append('[%s]' % name)
        for k, v in kv.items():
            if isinstance(v, (list, tuple)):
                v = ' '.join(v)
            out.append('%s = %s' % (k, v))
        out.append('')
    return '\n'.join(out)


class Daemon:
    """The real firegridd, one config file, restartable."""

    def __init__(self, env, broker, sinks, sources, name='firegridd', durability='full',
                 extra=None, client_id=None):
        self.env = env
        self.name = name
        self.state_dir = os.path.join(env.tmp, name + '-state')
        os.makedirs(self.state_dir, exist_ok=True)
        self.db = os.path.join(self.state_dir, 'firegrid.db')
        self.conf_path = os.path.join(env.tmp, name + '.conf')
        self.broker = broker
        self.client_id = client_id or 'firegrid-test-%d' % os.getpid()
        self.durability = durability
        self.sinks = sinks
        self.sources = sources
        self.extra = extra or {}
        self.api_port = free_port()
        self.proc = None
        self.starts = 0
        self.write_config()

    def config_text(self, sinks=None, sources=None, extra=None):
        sinks = self.sinks if sinks is None else sinks
        sources = self.sources if sources is None else sources
        extra = self.extra if extra is None else extra
        sections = [
            ('daemon', dict({'gateway_id': 'gw-test', 'state_dir': self.state_dir,
                             'plugin_dir': PLUGIN_DIR, 'log_level': 'info'},
                            **extra.get('daemon', {}))),
            ('store', dict({'durability': self.durability}, **extra.get('store', {}))),
            ('mqtt', dict({'host': '127.0.0.1', 'port': self.broker.port,
                           'client_id': self.client_id}, **extra.get('mqtt', {}))),
        ]
        for name, kv in sources:
            sections.append(('source ' + name, kv))
        for name, kv in sinks:
            sections.append(('sink ' + name, kv))
        # The HTTP API is on by default (127.0.0.1:8089): give each daemon a
        # free port of its own, unless the test writes its own [api]
        # section (ops_center.py appends it as extra_sections).
        if not any(n == 'api' for n, _ in getattr(self, 'extra_sections', ())):
            sections.append(('api', dict({'listen': '127.0.0.1:%d' % self.api_port},
                                         **extra.get('api', {}))))
        return ini(sections)

    def write_config(self, text=None):
        with open(self.conf_path, 'w') as f:
            f.write(text if text is not None else self.config_text())

    def start(self, wait=True, timeout=30):
        self.starts += 1
        self.proc = Proc(self.env, '%s-%d' % (self.name, self.starts),
                         [FIREGRIDD, '--config', self.conf_path])
        if wait:
            self.wait_log('mqtt: subscribed', timeout)
        return self

    def log_text(self):
        return self.proc.output() if self.proc else ''

    def wait_log(self, needle, timeout=30, count=1):
        def seen():
            check(self.proc.alive(), 'firegridd exited (rc %s) while waiting for %r:\n%s'
                  % (self.proc.popen.returncode, needle, tail(self.log_text())))
            return self.log_text().count(needle) >= count
        wait_until(seen, timeout, '%r in the firegridd log' % needle)

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def stop(self, sig=signal.SIGTERM):
        rc = self.proc.stop(sig) if self.proc else None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    # --- state through firegridctl ------------------------------------------
    def ctl(self, *args, check_rc=True):
        return self.env.ctl(self.db, *args, check_rc=check_rc)

    def incidents(self):
        data = self.ctl('incidents')
        if isinstance(data, dict):
            data = data.get('incidents', [])
        return data

    def status(self):
        return self.ctl('status')

    def metric(self, name, label=None, value=None):
        """A counter from `firegridctl --json status` (0 when absent).  The
        daemon snapshots its counters into the store every few seconds."""
        counters = (self.status() or {}).get('counters', {})
        key = name if label is None else '%s{%s="%s"}' % (name, label, value)
        return int(counters.get(key, 0) or 0)

    def outbox(self):
        data = self.ctl('outbox')
        if isinstance(data, dict):
            data = data.get('outbox', data.get('pending', []))
        return data

    def dead_letters(self):
        data = self.ctl('dead-letters')
        if isinstance(data, dict):
            data = data.get('dead_letters', data.get('dead-letters', []))
        return data


def tail(text, n=60):
    lines = text.splitlines()
    return '\n'.join(lines[-n:])


def incident_device(inc):
    dev = inc.get('device')
    if isinstance(dev, dict):
        dev = dev.get('id') or dev.get('device')
    return str(dev or '')


class Env:
    """One test's temporary directory and the processes started in it."""

    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix='fg-%s-' % name)
        self.procs = []
        self.daemons = []
        seed = os.environ.get('FG_TEST_SEED')
        self.seed = int(seed) if seed else int(time.time() * 1000) % 1000000
        self.random = random.Random(self.seed)
        atexit.register(self.cleanup)
        log('%s: tmp %s, seed %d' % (name, self.tmp, self.seed))

    # --- factories -----------------------------------------------------------
    def broker(self, **kw):
        return Broker(self, **kw).start()

    def receiver(self, **kw):
        return Receiver(self, **kw)

    def daemon(self, broker, sinks, sources, start=True, **kw):
        d = Daemon(self, broker, sinks, sources, **kw)
        self.daemons.append(d)
        return d.start() if start else d

    # --- tools ----------------------------------------------------------------
    def fg_pub(self, broker_port, *args, timeout=300, check_rc=True):
        """Run fg-pub to completion and return its JSON summary."""
        argv = [FG_PUB, '--port', str(broker_port)] + [str(a) for a in args]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = r.stdout.decode(errors='replace').strip().splitlines()
        if check_rc:
            check(r.returncode == 0, 'fg-pub failed (%d): %s\n%s' % (
                r.returncode, ' '.join(argv), r.stderr.decode(errors='replace')))
        return json.loads(out[-1]) if out else {}

    def fg_pub_async(self, broker_port, *args, name='fg-pub'):
        argv = [FG_PUB, '--port', str(broker_port)] + [str(a) for a in args]
        return Proc(self, name, argv, stdout=subprocess.PIPE)

    def fg_pub_result(self, proc, timeout=120):
        """Wait for an fg_pub_async()/fg_sub() run to end; its JSON summary."""
        wait_until(lambda: not proc.alive(), timeout, '%s to finish' % proc.name)
        out = proc.popen.stdout.read().decode(errors='replace').strip().splitlines()
        check(proc.popen.returncode == 0 and out, '%s failed (exit %s):\n%s'
              % (proc.name, proc.popen.returncode, proc.output()))
        return json.loads(out[-1])

    def fg_sub(self, broker_port, topic_filter, expect, timeout=60):
        """A bare QoS 1 subscriber (fg-pub --subscribe), returned once subscribed."""
        proc = self.fg_pub_async(broker_port, '--subscribe', topic_filter, '--expect', expect,
                                 '--qos', 1, '--timeout', timeout, name='subscriber')
        line = proc.popen.stdout.readline().decode(errors='replace').strip()
        check(line == 'SUBSCRIBED', 'subscriber: %r\n%s' % (line, proc.output()))
        return proc

    def ctl(self, db, *args, check_rc=True):
        argv = [FIREGRIDCTL, '--db', db, '--json'] + list(args)
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if check_rc:
            check(r.returncode == 0, 'firegridctl %s failed (%d): %s' % (
                ' '.join(args), r.returncode, r.stderr.decode(errors='replace')))
        text = r.stdout.decode(errors='replace').strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            # one JSON object per line
            return [json.loads(line) for line in text.splitlines() if line.strip()]

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, name, data):
        p = self.path(name)
        with open(p, 'wb' if isinstance(data, bytes) else 'w') as f:
            f.write(data)
        return p

    # --- teardown ---------------------------------------------------------------
    def cleanup(self):
        for p in reversed(self.procs):
            if p.alive():
                p.send_signal(signal.SIGKILL)
                try:
                    p.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self.procs = []

    def dump_logs(self):
        for p in self.procs:
            rc = p.popen.poll()
            state = 'running' if rc is None else 'exit %d' % rc
            print('----- %s, pid %d, %s (%s) -----' % (p.name, p.pid, state, p.log_path))
            print(tail(p.output(), 80))


def z2m_file(name):
    """A Zigbee2MQTT sample: the shared corpus first, then tests/data/zigbee2mqtt."""
    for d in (os.path.join(CORPUS, 'zigbee2mqtt'), Z2M_DATA):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise TestFailure('missing test data file %s' % name)


def z2m_ieee(friendly_name):
    """The ieee_address tests/data/zigbee2mqtt/bridge_devices.json gives a name."""
    with open(z2m_file('bridge_devices.json')) as f:
        for dev in json.load(f):
            if dev.get('friendly_name') == friendly_name:
                return dev['ieee_address']
    raise TestFailure('%s is not in bridge_devices.json' % friendly_name)


def generic_sources(prefix='firegrid/'):
    return [('generic', {'plugin': 'generic-json', 'topics': prefix + '#'})]


def sink(receiver, **kw):
    kv = {'url': receiver.url, 'secret': receiver.secret}
    kv.update(kw)
    return ('ops', kv)


def run(name, body):
    """Run body(env) as a test: exit 0 on success, 1 with logs on failure."""
    env = Env(name)
    ok = False
    try:
        body(env)
        ok = True
    except TestFailure as e:
        print('FAIL: %s' % e, flush=True)
    except Exception:
        traceback.print_exc()
    finally:
        if not ok:
            env.dump_logs()
        env.cleanup()
        if ok and not os.environ.get('FG_KEEP_TMP'):
            shutil.rmtree(env.tmp, ignore_errors=True)
        else:
            print('kept %s' % env.tmp)
    print('%s: %s' % (name, 'PASS' if ok else 'FAIL'), flush=True)
    sys.exit(0 if ok else 1)
