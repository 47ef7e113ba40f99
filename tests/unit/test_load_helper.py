# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/helpers/load.py against a local http.server on 127.0.0.1: rate, failures, bounds, HTTPS, CLI."""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import load as load_mod  # noqa: E402  pylint: disable=wrong-import-position
from helpers.load import Load  # noqa: E402  pylint: disable=wrong-import-position


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        with srv.lock:
            srv.seen.append((time.monotonic(), self.path, self.headers.get('X-Request-ID')))
        if srv.delay:
            time.sleep(srv.delay)
        body = b'{"ok": true}'
        try:
            self.send_response(srv.status)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout tests)


class Server:
    """A ThreadingHTTPServer on a free loopback port; status and delay can be changed per test."""

    def __init__(self, context=None):
        self.srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.srv.daemon_threads = True
        self.srv.lock = threading.Lock()
        self.srv.seen = []
        self.srv.status = 200
        self.srv.delay = 0
        if context is not None:
            self.srv.socket = context.wrap_socket(self.srv.socket, server_side=True)
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def url(self, path='/api/vehicles?limit=5', scheme='http', host='127.0.0.1'):
        return '%s://%s:%d%s' % (scheme, host, self.srv.server_address[1], path)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def test_fixed_rate_over_two_seconds_and_request_ids(server):
    load = Load(server.url(), rate=20, max_seconds=2)
    started = time.monotonic()
    with load:
        assert load.wait(timeout=10)
    elapsed = time.monotonic() - started
    summary = load.summary()
    # Requests are due at n/20 s for n = 0..39: exactly 40, over ~1.95 s.
    assert summary['sent'] == 40
    assert summary['ok'] == 40 and summary['failed'] == 0 and summary['skipped'] == 0 and summary['errors'] == []
    assert summary['by_status'] == {'200': 40}
    assert summary['stopped_by'] == 'max_seconds'
    assert 1.9 <= summary['duration_s'] <= 2.3
    assert elapsed < 3.5
    assert 17.0 <= summary['achieved_rate'] <= 21.0
    seen = sorted(server.srv.seen)
    assert sorted(rid for _t, _p, rid in seen) == sorted('load-%d' % n for n in range(1, 41))
    assert {path for _t, path, _r in seen} == {'/api/vehicles?limit=5'}
    span = seen[-1][0] - seen[0][0]
    assert 1.75 <= span <= 2.2, span  # 39 intervals of 50 ms
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
    assert max(gaps) < 0.25, gaps  # no stalls in the schedule
    assert summary['p95_ms'] is not None and 0 < summary['p95_ms'] < 1000


def test_503_counts_as_failed_and_errors_are_capped(server):
    server.srv.status = 503
    with Load(server.url('/healthz'), rate=50, max_seconds=1) as load:
        load.wait(timeout=10)
    summary = load.summary()
    assert summary['sent'] == 50
    assert summary['ok'] == 0 and summary['failed'] == 50
    assert summary['by_status'] == {'503': 50}
    assert len(summary['errors']) == load_mod.MAX_ERRORS_KEPT == 20
    assert all('HTTP 503' in e and e.startswith('t=') and 'load-' in e for e in summary['errors'])


def test_mixed_statuses_only_200_is_ok(server):
    with Load(server.url(), rate=40, max_seconds=5) as load:
        time.sleep(0.5)
        server.srv.status = 500
        time.sleep(0.5)
    summary = load.summary()
    assert summary['ok'] > 0 and summary['failed'] > 0
    assert summary['ok'] + summary['failed'] == summary['sent']
    assert set(summary['by_status']) == {'200', '500'}
    assert summary['by_status']['200'] == summary['ok'] and summary['by_status']['500'] == summary['failed']


def test_exit_stops_early_and_reports_it(server):
    started = time.monotonic()
    with Load(server.url(), rate=20, max_seconds=300) as load:
        time.sleep(0.5)
    took = time.monotonic() - started
    summary = load.summary()
    assert took < 1.5
    assert summary['stopped_by'] == 'stop'
    assert 9 <= summary['sent'] <= 12  # due at 0, 50, ..., 500 ms
    assert summary['duration_s'] < 1.0
    before = summary['sent']
    time.sleep(0.2)
    assert load.summary()['sent'] == before  # nothing after the stop
    load.stop()  # idempotent


def test_slow_responses_do_not_slow_the_schedule(server):
    server.srv.delay = 0.3  # 6 requests in flight at 20/s; the pool has 16 workers
    with Load(server.url(), rate=20, max_seconds=1) as load:
        load.wait(timeout=10)
    summary = load.summary()
    assert summary['sent'] == 20 and summary['ok'] == 20
    assert summary['max_lag_ms'] < 150
    assert summary['p95_ms'] >= 300
    arrivals = sorted(t for t, _p, _r in server.srv.seen)
    assert arrivals[-1] - arrivals[0] < 1.2  # still 20 requests in ~0.95 s


def test_saturated_pool_skips_instead_of_queueing(server):
    server.srv.delay = 0.6  # 2 workers, 20/s: both are busy from 50 ms to ~600 ms
    started = time.monotonic()
    with Load(server.url(), rate=20, max_seconds=0.5, pool=2) as load:
        load.wait(timeout=5)
    took = time.monotonic() - started
    summary = load.summary()
    assert summary['sent'] == 2 and summary['ok'] == 2
    assert summary['skipped'] == 8 and summary['sent'] + summary['skipped'] == 10
    assert all('client saturated' in e for e in summary['errors'])
    assert len(server.srv.seen) == 2
    assert took < 1.0  # stop waited for the 2 in flight only


def test_timeouts_are_failures_and_stop_waits_only_for_the_timeout(server):
    server.srv.delay = 2
    started = time.monotonic()
    with Load(server.url(), rate=10, max_seconds=0.3, timeout=0.2) as load:
        load.wait(timeout=5)
    took = time.monotonic() - started
    summary = load.summary()
    assert summary['sent'] == 3 and summary['failed'] == 3
    assert summary['by_status'] == {'error': 3}
    assert all('timed out' in e for e in summary['errors']), summary['errors']
    assert took < 1.5


def test_refused_connection_is_a_failure():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with Load('http://127.0.0.1:%d/' % port, rate=20, max_seconds=0.25) as load:
        load.wait(timeout=5)
    summary = load.summary()
    assert summary['sent'] == 5 and summary['failed'] == 5 and summary['ok'] == 0
    assert 'ConnectionRefusedError' in summary['errors'][0]
    assert summary['p95_ms'] is None


@pytest.mark.parametrize('kwargs, message', [
    ({'rate': 101}, 'rate must be > 0 and <= 100'),
    ({'rate': 0}, 'rate must be > 0'),
    ({'max_seconds': 601}, 'max_seconds must be > 0 and <= 600'),
    ({'pool': 33}, 'pool must be > 0 and <= 32'),
    ({'pool': 0}, 'pool must be > 0'),
    ({'timeout': 0}, 'timeout must be > 0'),
])
def test_hard_bounds(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Load('http://127.0.0.1:1/', **kwargs)


def test_bad_url_and_types():
    with pytest.raises(ValueError, match='http:// or https://'):
        Load('ftp://example.invalid/')
    with pytest.raises(TypeError, match='rate must be a number'):
        Load('http://127.0.0.1:1/', rate='20')
    with pytest.raises(TypeError, match='pool must be an integer'):
        Load('http://127.0.0.1:1/', pool=4.5)


def test_start_twice_is_refused(server):
    load = Load(server.url(), rate=10, max_seconds=0.1)
    with load:
        with pytest.raises(RuntimeError, match='started already'):
            load.start()


def _tls_files(tmp_path):
    pytest.importorskip('cryptography')
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    import ipaddress  # pylint: disable=import-outside-toplevel
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'load test CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, '127.0.0.1')]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {name: tmp_path / name for name in ('ca.pem', 'server.pem', 'server.key')}
    paths['ca.pem'].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths['server.pem'].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths['server.key'].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return paths


def test_https_with_the_ca_and_without_it(tmp_path):
    paths = _tls_files(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(paths['server.pem']), str(paths['server.key']))
    srv = Server(context)
    try:
        with Load(srv.url(scheme='https'), rate=20, max_seconds=0.25, ca_path=str(paths['ca.pem'])) as load:
            load.wait(timeout=5)
        assert load.summary()['ok'] == 5
        with Load(srv.url(scheme='https'), rate=20, max_seconds=0.1) as untrusted:
            untrusted.wait(timeout=5)
        summary = untrusted.summary()
        assert summary['failed'] == 2 and summary['ok'] == 0
        assert 'SSLCertVerificationError' in summary['errors'][0]
    finally:
        srv.close()


def test_cli_prints_json_and_exit_status(server, capsys):
    assert load_mod.main([server.url(), '--rate', '20', '--seconds', '0.5']) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['sent'] == 10 and summary['failed'] == 0 and summary['by_status'] == {'200': 10}
    server.srv.status = 503
    assert load_mod.main([server.url(), '--rate', '20', '--seconds', '0.25']) == 1
    assert json.loads(capsys.readouterr().out)['failed'] == 5
    with pytest.raises(SystemExit):
        load_mod.main([server.url(), '--rate', '500'])
    assert 'rate must be > 0 and <= 100' in capsys.readouterr().err
