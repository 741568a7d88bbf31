#!/usr/bin/env python3
"""
MQTT over TLS with a client certificate and a username/password, as on a
gateway whose broker listener is authenticated.

A real mosquitto gets two listeners: a TLS one that requires a client
certificate signed by the test CA and a password, and a plain one that the
test publisher uses.  Certificates come from the openssl command line,
the password file from mosquitto_passwd.  firegridd connects with
ca_file/cert_file/key_file and username/password_file:
  - with a wrong password the broker refuses it (logged, nothing ingested),
  - after a SIGHUP with the right password file it connects, subscribes and
    an alarm published on the plain listener becomes an incident and a
    signed webhook.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

OPENSSL = shutil.which('openssl') or '/usr/bin/openssl'
MOSQUITTO_PASSWD = shutil.which('mosquitto_passwd') or '/usr/bin/mosquitto_passwd'


def run(*argv):
    r = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True)
    h.check(r.returncode == 0, '%s failed: %s' % (' '.join(map(str, argv)),
                                                r.stderr.decode(errors='replace')))


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    run(OPENSSL, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
        '-subj', '/CN=firegrid test CA', '-keyout', p('ca.key'), '-out', p('ca.crt'))
    for name, ext in (('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost'),
                      ('client', 'extendedKeyUsage=clientAuth')):
        run(OPENSSL, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=firegrid-' + name,
            '-keyout', p(name + '.key'), '-out', p(name + '.csr'))
        with open(p(name + '.ext'), 'w') as f:
            f.write(ext + '\n')
        run(OPENSSL, 'x509', '-req', '-in', p(name + '.csr'), '-CA', p('ca.crt'),
            '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p(name + '.ext'),
            '-out', p(name + '.crt'))
    run(MOSQUITTO_PASSWD, '-b', '-c', p('passwd'), 'gateway', 'correct horse')
    # mosquitto started as root reads these as the mosquitto user.
    for n in os.listdir(d):
        os.chmod(p(n), 0o644)
    os.chmod(d, 0o755)
    h.Broker._let_broker_write(d)
    return p


def body(env):
    h.check(os.path.exists(OPENSSL) and os.path.exists(MOSQUITTO_PASSWD),
            'openssl and mosquitto_passwd are needed')
    cert = make_certs(env.path('certs'))

    plain_port, tls_port = h.free_port(), h.free_port()
    conf = env.path('mosquitto-tls.conf')
    with open(conf, 'w') as f:
        f.write('per_listener_settings true\n'
                'persistence false\n'
                'log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n'
                'listener %d 127.0.0.1\nallow_anonymous true\n'
                'listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n'
                'cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n'
                % (plain_port, tls_port, cert('passwd'), cert('ca.crt'), cert('server.crt'),
                   cert('server.key')))
    broker = h.Proc(env, 'mosquitto-tls', [h.MOSQUITTO, '-c', conf])
    h.wait_until(lambda: h.port_open(tls_port) or not broker.alive(), 10, 'the TLS listener')
    h.check(broker.alive(), 'mosquitto exited:\n' + broker.output())

    class TlsBroker:
        port = tls_port

    wrong = env.write('wrong.pw', 'battery staple\n')
    right = env.write('right.pw', 'correct horse\n')
    mqtt = {'ca_file': cert('ca.crt'), 'cert_file': cert('client.crt'),
            'key_file': cert('client.key'), 'username': 'gateway', 'password_file': wrong}
    rx = env.receiver()
    d = env.daemon(TlsBroker, [h.sink(rx)], h.generic_sources(), start=False,
                   extra={'mqtt': mqtt})
    d.start(wait=False)
    d.wait_log('broker refused connection', timeout=30)
    h.check('mqtt: subscribed' not in d.log_text(), 'subscribed with a wrong password')

    mqtt['password_file'] = right
    d.write_config()
    d.reload()
    d.wait_log('mqtt: subscribed', timeout=30)
    h.check('mqtt: connected' in d.log_text(), 'no connected line:\n' + h.tail(d.log_text()))

    summary = env.fg_pub(plain_port, '--topic', 'firegrid/tls-dev-1', '--message',
                         '{"device":"tls-dev-1","kind":"smoke"}')
    h.check(summary.get('acked') == 1, 'fg-pub: %r' % summary)
    h.wait_until(lambda: d.incidents(), 30, 'the incident', interval=0.2)
    inc = d.incidents()
    h.check(len(inc) == 1 and inc[0].get('kind') == 'smoke', 'incidents: %r' % inc)
    h.wait_until(lambda: rx.records(), 30, 'the webhook', interval=0.2)
    rec = rx.records()[0]
    h.check(rec.get('signature_ok') is True and str(rec.get('type')).endswith('.opened'),
            'webhook: %r' % rec)
    h.wait_until(lambda: d.metric('firegrid_mqtt_connected') == 1, 20,
                 'the firegrid_mqtt_connected gauge in the status snapshot', interval=0.5)
    rc = d.stop()
    h.check(rc == 0, 'firegridd exited %s on SIGTERM' % rc)


if __name__ == '__main__':
    h.run('mqtt_tls', body)
