# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import http.client
import ipaddress
import re
import ssl
import socket
import statistics
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import http_probe
from ansible_collections.dealerscope.ops.plugins.module_utils.http_probe import (
    EndpointProbe,
    der_not_after,
    endpoint_checks,
    latency_stats,
    parse_url,
    percentile,
    run_probes,
    validate_options,
)

ALL_SECURITY_HEADERS = {
    'Strict-Transport-Security': 'max-age=63072000',
    'Content-Security-Policy': "default-src 'none'",
    'X-Content-Type-Options': 'nosniff',
}


# ---------------------------------------------------------------------------------------------
# a real HTTP(S) server on 127.0.0.1

class ProbeTarget(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(('127.0.0.1', 0), Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.flaky = 0
        self.requests = []  # (method, path, headers)

    def reset(self):
        with self.lock:
            self.connections = 0
            self.flaky = 0
            self.requests = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _reply(self, status, body=b'{"ok": true}', headers=None, close_header=False):
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close_header:
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def do_GET(self):
        with self.server.lock:
            self.server.requests.append((self.command, self.path, dict(self.headers.items())))
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        partial = {'Strict-Transport-Security': 'max-age=63072000', 'X-Content-Type-Options': 'nosniff'}
        if parts.path == '/ok':
            self._reply(200, headers=partial)
        elif parts.path == '/secure':
            self._reply(200, headers=ALL_SECURITY_HEADERS)
        elif parts.path == '/slow':
            time.sleep(float(query.get('d', ['0.15'])[0]))
            self._reply(200, headers=partial)
        elif parts.path == '/fail':
            self._reply(500, b'{"error": "boom"}')
        elif parts.path == '/flaky':
            with self.server.lock:
                self.server.flaky += 1
                number = self.server.flaky
            self._reply(503 if number % 3 == 0 else 200)
        elif parts.path == '/close':
            self.close_connection = True
            self._reply(200, close_header=True)
        elif parts.path == '/drop':
            # keep-alive response, then the server drops the idle connection anyway (stale keep-alive)
            self._reply(200)
            self.close_connection = True
        else:
            self._reply(404, b'{}')

    do_HEAD = do_GET


def _serve(server):
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope='module')
def http_server():
    server = ProbeTarget()
    _serve(server)
    yield server
    server.shutdown()
    server.server_close()


def make_cert(tmp_dir, days=5):
    """A short-lived self-signed certificate for 127.0.0.1 (usable as its own CA); returns (cert, key, not_after)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'probe-test.local')])
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    not_after = now + datetime.timedelta(days=days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                       critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_dir / 'cert.pem'
    key_path = tmp_dir / 'key.pem'
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path), not_after


@pytest.fixture(scope='module')
def tls_server(tmp_path_factory):
    cert, key, not_after = make_cert(tmp_path_factory.mktemp('tls'), days=5)
    server = ProbeTarget()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _serve(server)
    server.cert_path = cert
    server.not_after = not_after
    yield server
    server.shutdown()
    server.server_close()


def url(server, path, scheme='http'):
    return '%s://127.0.0.1:%d%s' % (scheme, server.server_address[1], path)


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def probe(endpoints, **options):
    """validate_options + run_probes; ``endpoints`` are (name, url) tuples or dicts."""
    raw = [dict(name=e[0], url=e[1]) if isinstance(e, tuple) else e for e in endpoints]
    params = dict(options, endpoints=raw)
    eps, settings = validate_options(params)
    return run_probes(eps, settings)


def by_name(checks):
    return dict((check['name'], check) for check in checks)


# ---------------------------------------------------------------------------------------------
# percentile math

latency_lists = st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False), min_size=1, max_size=200)


@given(latency_lists)
def test_stats_are_ordered(values):
    stats = latency_stats(values)
    assert stats['min'] <= stats['p50'] <= stats['p95'] <= stats['p99'] <= stats['max']
    assert stats['min'] <= stats['mean'] <= stats['max'] + 1e-9
    assert stats['max'] == round(max(values), 3)


@given(latency_lists, st.floats(min_value=0, max_value=1), st.floats(min_value=0, max_value=1))
def test_percentile_monotone_in_q(values, q1, q2):
    values = sorted(values)
    low, high = sorted((q1, q2))
    assert percentile(values, low) <= percentile(values, high)
    assert values[0] <= percentile(values, low) <= values[-1]


@given(latency_lists, st.data())
def test_percentile_monotone_in_data(values, data):
    """Making any sample slower never makes a percentile faster."""
    bumps = data.draw(st.lists(st.floats(min_value=0, max_value=1e4), min_size=len(values), max_size=len(values)))
    slower = [v + b for v, b in zip(values, bumps)]
    for q in (0.5, 0.95, 0.99):
        assert percentile(sorted(slower), q) >= percentile(sorted(values), q) - 1e-9


@given(st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), min_size=2, max_size=200))
def test_percentile_matches_statistics_quantiles(values):
    expected = statistics.quantiles(values, n=100, method='inclusive')
    ordered = sorted(values)
    for k in (50, 95, 99):
        assert percentile(ordered, k / 100.0) == pytest.approx(expected[k - 1], rel=1e-9, abs=1e-6)


def test_percentile_known_values():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 0.5) == pytest.approx(10.5)
    assert percentile(values, 0.95) == pytest.approx(19.05)
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)
    assert latency_stats([]) == dict.fromkeys(('p50', 'p95', 'p99', 'mean', 'min', 'max'))


# ---------------------------------------------------------------------------------------------
# validation

def test_parse_url():
    assert parse_url('https://lb.example.com/api/v?limit=5') == ('https', 'lb.example.com', 443, '/api/v?limit=5')
    assert parse_url('HTTP://127.0.0.1:8000') == ('http', '127.0.0.1', 8000, '/')
    assert parse_url('http://[::1]:81/x') == ('http', '::1', 81, '/x')


@pytest.mark.parametrize('url, message', [
    ('ftp://example.com/', 'scheme must be http or https'),
    ('example.com/path', 'scheme must be http or https'),
    ('http:///nohost', 'a host is required'),
    ('https://user:secret@example.com/', 'credentials in the URL'),
    ('http://example.com:99999/', 'not a valid URL'),
    ('', 'non-empty'),
])
def test_parse_url_errors(url, message):
    with pytest.raises(ValueError, match=re.escape(message)) as excinfo:
        parse_url(url, 'endpoints[0].url')
    assert str(excinfo.value).startswith('endpoints[0].url')
    assert 'secret' not in str(excinfo.value)


def test_validate_defaults_and_overrides():
    endpoints, settings = validate_options(dict(endpoints=[
        dict(name='a', url='http://127.0.0.1:8000/api'),
        dict(name='b', url='https://x.example/', count=5, concurrency=2, p95_ms=300, error_rate_percent=1, method='head',
             expect_status=[200, 204], headers={'Authorization': 'Bearer t'}),
    ]))
    assert settings['count'] == 20 and settings['p95_ms'] == 500.0 and settings['error_rate_percent'] == 0.1
    assert settings['security_headers'] == ['Strict-Transport-Security', 'Content-Security-Policy', 'X-Content-Type-Options']
    first, second = endpoints
    assert (first['count'], first['concurrency'], first['p95_ms'], first['expect_status'], first['method']) == (20, 4, 500.0, [200], 'GET')
    assert (second['count'], second['concurrency'], second['p95_ms'], second['error_rate_percent']) == (5, 2, 300.0, 1.0)
    assert second['method'] == 'HEAD' and second['expect_status'] == [200, 204] and second['port'] == 443
    assert second['headers'] == {'Authorization': 'Bearer t'}


@pytest.mark.parametrize('params, message', [
    (dict(endpoints=[]), 'endpoints must contain at least one endpoint'),
    (dict(endpoints=None), 'endpoints must contain at least one endpoint'),
    (dict(endpoints=[dict(url='http://a/')]), 'endpoints[0].name is required'),
    (dict(endpoints=[dict(name='a', url='gopher://a/')]), 'endpoints[0] (a).url: scheme must be http or https'),
    (dict(endpoints=[dict(name='a', url='http://a/'), dict(name='a', url='http://b/')]), "endpoints[1] (a).name: duplicate"),
    (dict(endpoints=[dict(name='a', url='http://a/', count=0)]), 'endpoints[0] (a).count must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/', concurrency=65)]), 'endpoints[0] (a).concurrency must be at most 64'),
    (dict(endpoints=[dict(name='a', url='http://a/', concurrency=0)]), 'endpoints[0] (a).concurrency must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/', p95_ms=-1)]), 'endpoints[0] (a).p95_ms must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/', error_rate_percent=-0.5)]), 'endpoints[0] (a).error_rate_percent must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/', expect_status=[])]), 'expect_status must not be empty'),
    (dict(endpoints=[dict(name='a', url='http://a/', expect_status=[42])]), 'expect_status[0] must be at least 100'),
    (dict(endpoints=[dict(name='a', url='http://a/', method='POST')]), 'method must be one of GET, HEAD'),
    (dict(endpoints=[dict(name='a', url='http://a/', headers={'X-A': 'b\r\nInjected: 1'})]), 'invalid header'),
    (dict(endpoints=[dict(name='a', url='http://a/', headers={'X-A': 'caf\u00e9 \u2713'})]), "header 'X-A' must be ASCII and its value Latin-1"),
    (dict(endpoints=[dict(name='a', url='http://a..b/')]), "endpoints[0] (a).url: invalid host name 'a..b'"),
    (dict(endpoints=[dict(name='a', url='http://a/api/vehicles?make=Land Rover')]), 'endpoints[0] (a).url: spaces and control characters'),
    (dict(endpoints=[dict(name='a', url='http://a/x\x7f')]), 'endpoints[0] (a).url: spaces and control characters'),
    (dict(endpoints=[dict(name='a', url='http://%s.example/' % ('x' * 64))]), 'endpoints[0] (a).url: invalid host name'),
    (dict(endpoints=[dict(name='a', url='http://a/')], count=-3), 'count must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/')], concurrency=100), 'concurrency must be at most 64'),
    (dict(endpoints=[dict(name='a', url='http://a/')], timeout_s=0), 'timeout_s must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/')], p95_ms=-10), 'p95_ms must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/')], p95_crit_factor=0.5), 'p95_crit_factor must be at least 1'),
    (dict(endpoints=[dict(name='a', url='http://a/')], error_rate_percent=101), 'error_rate_percent must be at most 100'),
    (dict(endpoints=[dict(name='a', url='http://a/')], tls_warn_days=-1), 'tls_warn_days must not be negative'),
    (dict(endpoints=[dict(name='a', url='http://a/')], tls_warn_days=5, tls_crit_days=10), 'tls_crit_days (10) must not be greater'),
    (dict(endpoints=[dict(name='a', url='http://a/')], max_seconds=0), 'max_seconds must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://a/')], security_headers=['X-Ok', '']), 'security_headers[1]'),
    (dict(endpoints=[dict(name='a', url='http://a/', count=600), dict(name='b', url='http://b/', count=500)], max_requests=1000),
     'ask for 1100 requests in total (sum of count), more than max_requests (1000)'),
])
def test_validate_errors(params, message):
    with pytest.raises(ValueError) as excinfo:
        validate_options(params)
    assert message in str(excinfo.value)


# ---------------------------------------------------------------------------------------------
# checks from synthetic metrics

def metrics(**overrides):
    base = {
        'url': 'http://h/', 'method': 'GET', 'requests_planned': 20, 'requests_sent': 20, 'concurrency': 4, 'truncated': False,
        'duration_s': 0.1, 'connections_opened': 4, 'responses': 20, 'errors': 0, 'error_rate_percent': 0.0, 'error_kinds': {},
        'error_samples': [], 'status_codes': {'200': 20}, 'reachable': True,
        'latency_ms': {'p50': 10.0, 'p95': 20.0, 'p99': 30.0, 'mean': 12.0, 'min': 5.0, 'max': 31.0},
        'p95_ms_threshold': 500.0, 'error_rate_percent_threshold': 0.1, 'tls': None, 'security_headers': None,
    }
    base.update(overrides)
    return base


SETTINGS = validate_options(dict(endpoints=[dict(name='x', url='http://x/')]))[1]


@pytest.mark.parametrize('p95, status', [(499.9, 'ok'), (500.0, 'warning'), (999.0, 'warning'), (1000.0, 'critical')])
def test_latency_thresholds(p95, status):
    checks = by_name(endpoint_checks('api', metrics(latency_ms=dict(p50=1.0, p95=p95, p99=p95, mean=1.0, min=1.0, max=p95)), SETTINGS))
    check = checks['api:latency_p95']
    assert check['status'] == status
    assert check['value'] == p95 and check['threshold'] == 500.0 and check['unit'] == 'ms'
    assert check['alert'] == (None if status == 'ok' else 'high_latency')
    assert set(checks) == {'api:latency_p95', 'api:error_rate'}  # no TLS checks for http


def test_error_rate_threshold():
    ok = by_name(endpoint_checks('api', metrics(), SETTINGS))['api:error_rate']
    assert ok['status'] == 'ok' and ok['value'] == 0.0 and ok['threshold'] == 0.1 and ok['alert'] is None
    bad = by_name(endpoint_checks('api', metrics(errors=1, error_rate_percent=5.0, error_samples=['unexpected HTTP status 500 (expected 200)']),
                                  SETTINGS))['api:error_rate']
    assert bad['status'] == 'critical' and bad['alert'] == 'high_error_rate'
    assert '1 of 20 requests failed' in bad['message'] and 'status 500' in bad['message']


def test_unreachable_is_service_down():
    tls = {'handshake': False, 'verified': True, 'not_after': None, 'days_to_expiry': None, 'unknown_reason': None}
    checks = endpoint_checks('lb', metrics(url='https://h/', responses=0, errors=20, error_rate_percent=100.0, reachable=False,
                                           error_samples=['connection error: Connection refused'],
                                           latency_ms=latency_stats([]), tls=tls,
                                           security_headers={'checked': False, 'present': [], 'missing': []}), SETTINGS)
    assert [c['name'] for c in checks] == ['lb:error_rate', 'lb:latency_p95', 'lb:tls_expiry', 'lb:security_headers']
    assert all(c['status'] == 'critical' and c['alert'] == 'service_down' for c in checks)
    assert checks[0]['value'] == 100.0 and 'Connection refused' in checks[0]['message']


def test_not_probed_endpoint_is_warning():
    checks = endpoint_checks('late', metrics(requests_sent=0, responses=0, truncated=True, reachable=False, error_rate_percent=None,
                                             latency_ms=latency_stats([])), SETTINGS)
    assert [c['status'] for c in checks] == ['warning', 'warning']
    assert all(c['value'] is None and 'max_seconds' in c['message'] for c in checks)


@pytest.mark.parametrize('days, status', [(90.0, 'ok'), (21.0, 'warning'), (7.5, 'warning'), (7.0, 'critical'), (-2.0, 'critical')])
def test_tls_days_thresholds(days, status):
    tls = {'handshake': True, 'verified': True, 'not_after': '2030-01-01T00:00:00Z', 'days_to_expiry': days, 'unknown_reason': None}
    check = by_name(endpoint_checks('lb', metrics(tls=tls, security_headers={'checked': True, 'present': [], 'missing': []}),
                                    SETTINGS))['lb:tls_expiry']
    assert check['status'] == status and check['value'] == days and check['unit'] == 'days'
    assert check['alert'] == (None if status == 'ok' else 'tls_expiry')
    assert ('EXPIRED' in check['message']) == (days <= 0)


# ---------------------------------------------------------------------------------------------
# probing a real server

def test_keepalive_request_ids_and_metrics(http_server):
    http_server.reset()
    probes, checks = probe([('ok', url(http_server, '/ok?x=1'))], count=20, concurrency=4)
    result = probes['ok']
    assert result['requests_sent'] == 20 and result['responses'] == 20 and result['errors'] == 0
    assert result['status_codes'] == {'200': 20}
    # one keep-alive connection per worker (a worker that starts late may find no request left to send)
    assert 1 <= result['connections_opened'] <= 4 and http_server.connections == result['connections_opened']
    assert result['error_rate_percent'] == 0.0 and result['reachable'] and not result['truncated']
    assert result['tls'] is None and result['security_headers'] is None
    lat = result['latency_ms']
    assert 0 < lat['min'] <= lat['p50'] <= lat['p95'] <= lat['p99'] <= lat['max']
    ids = [headers.get('X-Request-ID') for _m, path, headers in http_server.requests]
    assert all(path == '/ok?x=1' for _m, path, _h in http_server.requests)
    assert len(set(ids)) == 20
    match = [re.match(r'^probe-([0-9a-f]{12})-ok-(\d+)$', rid) for rid in ids]
    assert all(match) and len(set(m.group(1) for m in match)) == 1
    assert sorted(int(m.group(2)) for m in match) == list(range(1, 21))
    assert [c['status'] for c in checks] == ['ok', 'ok']


def test_fail_is_high_error_rate_not_service_down(http_server):
    probes, checks = probe([dict(name='fail', url=url(http_server, '/fail'), expect_status=[200, 500])], count=6, concurrency=2)
    assert probes['fail']['status_codes'] == {'500': 6}
    assert probes['fail']['error_rate_percent'] == 100.0 and probes['fail']['error_kinds'] == {'status': 6}
    check = by_name(checks)['fail:error_rate']
    assert check['status'] == 'critical' and check['alert'] == 'high_error_rate'  # 5xx is an error even when expected
    assert by_name(checks)['fail:latency_p95']['status'] == 'ok'


def test_flaky_every_third_fails(http_server):
    http_server.reset()
    probes, checks = probe([('flaky', url(http_server, '/flaky'))], count=21, concurrency=3, error_rate_percent=50)
    assert probes['flaky']['status_codes'] == {'200': 14, '503': 7}
    assert probes['flaky']['errors'] == 7 and probes['flaky']['error_rate_percent'] == pytest.approx(33.333, abs=0.001)
    assert by_name(checks)['flaky:error_rate']['status'] == 'ok'  # 33.3 % < 50 %
    probes, checks = probe([('flaky', url(http_server, '/flaky'))], count=3, concurrency=1)
    assert by_name(checks)['flaky:error_rate']['status'] == 'critical'


def test_slow_latency_warning_and_critical(http_server):
    probes, checks = probe([dict(name='slow', url=url(http_server, '/slow?d=0.15'), p95_ms=100)], count=4, concurrency=4, p95_crit_factor=10)
    assert probes['slow']['latency_ms']['p95'] >= 150
    assert probes['slow']['duration_s'] < 0.6  # the 4 requests ran in parallel
    assert by_name(checks)['slow:latency_p95']['status'] == 'warning'
    assert by_name(checks)['slow:latency_p95']['alert'] == 'high_latency'
    _probes, checks = probe([dict(name='slow', url=url(http_server, '/slow?d=0.15'), p95_ms=50)], count=2, concurrency=2)
    assert by_name(checks)['slow:latency_p95']['status'] == 'critical'


def test_timeout_counts_as_error(http_server):
    probes, checks = probe([('slow', url(http_server, '/slow?d=0.5'))], count=2, concurrency=2, timeout_s=0.1)
    assert probes['slow']['error_kinds'] == {'timeout': 2}
    assert not probes['slow']['reachable']
    assert by_name(checks)['slow:error_rate']['alert'] == 'service_down'


def test_unreachable_endpoint(http_server):
    probes, checks = probe([('down', 'http://127.0.0.1:%d/' % closed_port()), ('up', url(http_server, '/ok'))], count=3, concurrency=2)
    assert probes['down']['error_kinds'] == {'connection': 3} and probes['down']['requests_sent'] == 3
    assert probes['down']['connections_opened'] == 0
    named = by_name(checks)
    assert named['down:error_rate']['status'] == 'critical' and named['down:error_rate']['value'] == 100.0
    assert named['down:error_rate']['alert'] == 'service_down' and 'refused' in named['down:error_rate']['message'].lower()
    assert named['up:error_rate']['status'] == 'ok'


def test_a_bug_in_the_probe_is_raised_not_counted_as_failed_requests(http_server, monkeypatch):
    """An AttributeError from a bug must not become the service's error rate (and page as high_error_rate)."""
    http_server.reset()
    original = EndpointProbe._record_response

    def buggy(self, status, latency_ms, headers):
        original(self, status, latency_ms, headers)
        return headers.no_such_attribute  # AttributeError, like a typo in the probe

    monkeypatch.setattr(EndpointProbe, '_record_response', buggy)
    with pytest.raises(Exception) as excinfo:
        probe([('api', url(http_server, '/ok'))], count=50, concurrency=4)
    assert excinfo.type is http_probe.ProbeError
    message = str(excinfo.value)
    assert 'api' in message and 'AttributeError' in message and 'no_such_attribute' in message
    assert isinstance(excinfo.value.__cause__, AttributeError)
    # the workers stopped at the bug instead of sending every request
    assert len(http_server.requests) <= 4


@pytest.mark.parametrize('error', [
    ConnectionResetError(104, 'Connection reset by peer'),
    socket.timeout('timed out'),
    ssl.SSLError(1, 'record layer failure'),
    http.client.BadStatusLine('garbage'),
    http.client.IncompleteRead(b'partial'),
])
def test_network_tls_and_protocol_errors_are_failed_requests(http_server, monkeypatch, error):
    def failing_connect(self):
        raise error

    monkeypatch.setattr(EndpointProbe, '_connect', failing_connect)
    probes, checks = probe([('api', url(http_server, '/ok'))], count=3, concurrency=1)
    assert probes['api']['errors'] == 3 and probes['api']['requests_sent'] == 3
    assert sum(probes['api']['error_kinds'].values()) == 3
    assert set(probes['api']['error_kinds']) <= {'connection', 'timeout', 'tls', 'protocol'}
    assert by_name(checks)['api:error_rate']['status'] == 'critical'


def test_max_seconds_stops_sending(http_server):
    started = time.monotonic()
    probes, checks = probe([('slow', url(http_server, '/slow?d=0.1')), ('later', url(http_server, '/ok'))],
                           count=50, concurrency=1, max_seconds=0.35)
    assert time.monotonic() - started < 1.5
    assert probes['slow']['truncated'] and 2 <= probes['slow']['requests_sent'] <= 6
    assert probes['slow']['errors'] == 0 and probes['slow']['responses'] == probes['slow']['requests_sent']
    assert probes['later']['requests_sent'] == 0 and probes['later']['truncated']
    named = by_name(checks)
    assert 'only %d of 50 requests sent' % probes['slow']['requests_sent'] in named['slow:error_rate']['message']
    assert named['later:error_rate']['status'] == 'warning' and named['later:error_rate']['value'] is None


def test_server_closing_connections(http_server):
    probes, _checks = probe([('close', url(http_server, '/close')), ('drop', url(http_server, '/drop'))], count=5, concurrency=1)
    assert probes['close']['errors'] == 0 and probes['close']['connections_opened'] == 5  # Connection: close honoured
    assert probes['drop']['errors'] == 0 and probes['drop']['responses'] == 5  # stale keep-alive retried once
    assert probes['drop']['connections_opened'] == 5


def test_head_and_custom_headers(http_server):
    http_server.reset()
    probes, _checks = probe([dict(name='head', url=url(http_server, '/ok'), method='HEAD', headers={'Authorization': 'Bearer s3cr3t'})],
                            count=2, concurrency=1)
    assert probes['head']['status_codes'] == {'200': 2}
    assert [m for m, _p, _h in http_server.requests] == ['HEAD', 'HEAD']
    assert all(h.get('Authorization') == 'Bearer s3cr3t' for _m, _p, h in http_server.requests)
    assert 's3cr3t' not in repr(probes)


# ---------------------------------------------------------------------------------------------
# TLS

def test_tls_verified_days_and_headers(tls_server):
    probes, checks = probe([('tls', url(tls_server, '/ok', 'https')), ('secure', url(tls_server, '/secure', 'https'))],
                           count=4, concurrency=2, ca_path=tls_server.cert_path)
    tls = probes['tls']['tls']
    assert tls['verified'] and tls['handshake'] and probes['tls']['errors'] == 0
    assert tls['days_to_expiry'] == pytest.approx(5, abs=0.05)
    assert tls['not_after'] == tls_server.not_after.strftime('%Y-%m-%dT%H:%M:%SZ')
    named = by_name(checks)
    assert named['tls:tls_expiry']['status'] == 'critical' and named['tls:tls_expiry']['alert'] == 'tls_expiry'  # 5 <= 7 days
    assert named['tls:security_headers']['status'] == 'warning' and named['tls:security_headers']['value'] == 1
    assert named['tls:security_headers']['details']['missing'] == ['Content-Security-Policy']
    assert 'Content-Security-Policy' in named['tls:security_headers']['message']
    assert named['secure:security_headers']['status'] == 'ok' and named['secure:security_headers']['alert'] is None
    _probes, checks = probe([('tls', url(tls_server, '/ok', 'https'))], count=1, ca_path=tls_server.cert_path, tls_warn_days=4, tls_crit_days=2)
    assert by_name(checks)['tls:tls_expiry']['status'] == 'ok'


def test_tls_unverified_uses_cryptography(tls_server):
    probes, checks = probe([('tls', url(tls_server, '/ok', 'https'))], count=2, concurrency=1, validate_certs=False)
    assert not probes['tls']['tls']['verified']
    assert probes['tls']['tls']['days_to_expiry'] == pytest.approx(5, abs=0.05)
    assert by_name(checks)['tls:tls_expiry']['status'] == 'critical'


def test_tls_unverified_without_cryptography_is_unknown(tls_server, monkeypatch):
    monkeypatch.setitem(sys.modules, 'cryptography', None)  # import fails
    probes, checks = probe([('tls', url(tls_server, '/ok', 'https'))], count=2, concurrency=1, validate_certs=False)
    assert probes['tls']['errors'] == 0
    assert probes['tls']['tls']['days_to_expiry'] is None
    assert 'cryptography' in probes['tls']['tls']['unknown_reason']
    check = by_name(checks)['tls:tls_expiry']
    assert check['status'] == 'warning' and check['value'] is None and 'unknown' in check['message']


def test_tls_verification_failure(tls_server):
    probes, checks = probe([('tls', url(tls_server, '/ok', 'https'))], count=2, concurrency=1)  # system CAs do not trust it
    assert probes['tls']['error_kinds'] == {'tls': 2}
    assert 'certificate verification failed' in probes['tls']['error_samples'][0]
    assert by_name(checks)['tls:error_rate']['alert'] == 'service_down'


def test_security_headers_not_checked_for_http(http_server):
    _probes, checks = probe([('plain', url(http_server, '/ok'))], count=1)
    assert not any(c['name'].endswith((':security_headers', ':tls_expiry')) for c in checks)


def test_der_not_after_garbage():
    value, reason = der_not_after(b'not a certificate')
    assert value is None and 'cannot parse' in reason


def test_endpoint_probe_uses_given_prefix(http_server):
    http_server.reset()
    endpoints, settings = validate_options(dict(endpoints=[dict(name='a', url=url(http_server, '/ok'))], count=2, concurrency=1))
    result = EndpointProbe(endpoints[0], settings, time.monotonic() + 5, request_id_prefix='probe-fixed').run()
    assert result['requests_sent'] == 2
    assert [h['X-Request-ID'] for _m, _p, h in http_server.requests] == ['probe-fixed-1', 'probe-fixed-2']
    assert http_probe.USER_AGENT in http_server.requests[0][2]['User-Agent']


@hsettings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=8))
def test_requests_sent_equals_count(count, concurrency):
    server = _shared_server()
    probes, _checks = probe([('ok', url(server, '/ok'))], count=count, concurrency=concurrency)
    assert probes['ok']['requests_sent'] == count == probes['ok']['responses']
    assert 1 <= probes['ok']['connections_opened'] <= min(count, concurrency)


_SHARED = []


def _shared_server():
    if not _SHARED:
        server = ProbeTarget()
        _serve(server)
        _SHARED.append(server)
    return _SHARED[0]
