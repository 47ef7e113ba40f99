# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP(S) service-SLO probe used by the ``http_probe`` module (stdlib only).

Sends N requests per endpoint with a bounded number of workers, each worker reusing one
keep-alive connection, and turns the measurements into runbook checks (see ``ops_checks``).

Percentiles use **linear interpolation between closest ranks** (the "inclusive" method of
``statistics.quantiles``, NumPy's default): for sorted values ``v[0..n-1]`` the q-quantile is
``v[k] + (v[k+1] - v[k]) * f`` with ``k + f = (n - 1) * q``.

Pure logic plus socket I/O only: no AnsibleModule import.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import http.client
import math
import re
import secrets
import ssl
import threading
import time
import urllib.parse

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, threshold_check

DEFAULT_SECURITY_HEADERS = ('Strict-Transport-Security', 'Content-Security-Policy', 'X-Content-Type-Options')
MAX_CONCURRENCY = 64
METHODS = ('GET', 'HEAD')
USER_AGENT = 'dealerscope-http-probe/1'
# Errors on a *reused* keep-alive connection that mean "the server closed it while idle": retried once.
_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
# What a request to a sick service, a broken network or a bad certificate raises: connection, DNS, timeout and
# TLS errors are OSErrors (socket.timeout, ssl.SSLError, ssl.CertificateError, urllib.error.URLError, ConnectionError),
# malformed responses are http.client.HTTPExceptions. Only these count as failed requests; anything else is a bug
# in the probe and raises ProbeError, so that it is reported as a runbook error and never as the service's error rate.
REQUEST_ERRORS = (OSError, http.client.HTTPException)
_MAX_ERROR_SAMPLES = 3
_URL_FORBIDDEN = re.compile('[\x00-\x20\x7f]')


class ProbeError(Exception):
    """The probe itself failed (a bug or an unexpected condition), not the probed service."""


# ---------------------------------------------------------------------------------------------
# statistics

def percentile(sorted_values, q):
    """The ``q`` quantile (0 <= q <= 1) of an ascending, non-empty sequence, by linear interpolation."""
    if not sorted_values:
        raise ValueError('percentile of an empty sequence')
    if not 0 <= q <= 1:
        raise ValueError('q must be between 0 and 1, got %r' % (q,))
    pos = (len(sorted_values) - 1) * q
    low = int(math.floor(pos))
    high = min(low + 1, len(sorted_values) - 1)
    frac = pos - low
    lo_value, hi_value = sorted_values[low], sorted_values[high]
    value = lo_value + (hi_value - lo_value) * frac
    return min(max(value, lo_value), hi_value)  # guard against float rounding outside [lo, hi]


def latency_stats(latencies_ms):
    """p50/p95/p99/mean/min/max of latencies in ms (all None when there are none), rounded to 0.001 ms."""
    keys = ('p50', 'p95', 'p99', 'mean', 'min', 'max')
    if not latencies_ms:
        return dict((key, None) for key in keys)
    values = sorted(latencies_ms)
    raw = {
        'p50': percentile(values, 0.50),
        'p95': percentile(values, 0.95),
        'p99': percentile(values, 0.99),
        'mean': math.fsum(values) / len(values),
        'min': values[0],
        'max': values[-1],
    }
    return dict((key, round(raw[key], 3)) for key in keys)


# ---------------------------------------------------------------------------------------------
# validation

def parse_url(url, field='url'):
    """Split an http(s) URL into ``(scheme, host, port, target)``; ValueError names ``field``."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError('%s must be a non-empty http:// or https:// URL' % field)
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError('%s is not a valid URL (%s): %r' % (field, exc, url))
    scheme = parts.scheme.lower()
    if scheme not in ('http', 'https'):
        raise ValueError('%s: scheme must be http or https, got %r in %r' % (field, parts.scheme, url))
    if not parts.hostname:
        raise ValueError('%s: a host is required in %r' % (field, url))
    try:
        parts.hostname.encode('idna')  # what the resolver will do; an empty or over-long label fails here, not mid-probe
    except UnicodeError as exc:
        raise ValueError('%s: invalid host name %r (%s)' % (field, parts.hostname, exc))
    if parts.username is not None or parts.password is not None:
        raise ValueError('%s: credentials in the URL are not supported (and would be logged); use headers instead' % field)
    if port is None:
        port = 443 if scheme == 'https' else 80
    target = parts.path or '/'
    if parts.query:
        target += '?' + parts.query
    if _URL_FORBIDDEN.search(parts.hostname + target):  # http.client would refuse every request (InvalidURL)
        raise ValueError('%s: spaces and control characters must be percent-encoded (%%20), got %r' % (field, url))
    return scheme, parts.hostname, port, target


def _number(value, field, minimum=None, exclusive=False, maximum=None, integer=False):
    if value is None or isinstance(value, bool):
        raise ValueError('%s must be a number, got %r' % (field, value))
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ValueError('%s must be %s, got %r' % (field, 'an integer' if integer else 'a number', value))
    if integer and number != float(value):
        raise ValueError('%s must be an integer, got %r' % (field, value))
    if not integer and not math.isfinite(number):
        raise ValueError('%s must be a finite number, got %r' % (field, value))
    if minimum is not None:
        if exclusive and number <= minimum:
            raise ValueError('%s must be greater than %s, got %s' % (field, minimum, value))
        if not exclusive and number < minimum:
            raise ValueError('%s must not be negative, got %s' % (field, value) if minimum == 0 else
                             '%s must be at least %s, got %s' % (field, minimum, value))
    if maximum is not None and number > maximum:
        raise ValueError('%s must be at most %s, got %s' % (field, maximum, value))
    return number


def validate_options(params):
    """Check the module options and return ``(endpoints, settings)`` with every default resolved.

    ``params`` uses the module's option names. Raises ValueError with a message naming the field.
    """
    settings = {
        'count': _number(params.get('count', 20), 'count', 0, exclusive=True, integer=True),
        'concurrency': _number(params.get('concurrency', 4), 'concurrency', 0, exclusive=True, maximum=MAX_CONCURRENCY, integer=True),
        'timeout_s': _number(params.get('timeout_s', 5.0), 'timeout_s', 0, exclusive=True),
        'p95_ms': _number(params.get('p95_ms', 500.0), 'p95_ms', 0, exclusive=True),
        'p95_crit_factor': _number(params.get('p95_crit_factor', 2.0), 'p95_crit_factor', 1),
        'error_rate_percent': _number(params.get('error_rate_percent', 0.1), 'error_rate_percent', 0, exclusive=True, maximum=100),
        'validate_certs': bool(params.get('validate_certs', True)),
        'ca_path': params.get('ca_path'),
        'tls_warn_days': _number(params.get('tls_warn_days', 21), 'tls_warn_days', 0, integer=True),
        'tls_crit_days': _number(params.get('tls_crit_days', 7), 'tls_crit_days', 0, integer=True),
        'max_requests': _number(params.get('max_requests', 2000), 'max_requests', 0, exclusive=True, integer=True),
        'max_seconds': _number(params.get('max_seconds', 60.0), 'max_seconds', 0, exclusive=True),
    }
    if settings['tls_crit_days'] > settings['tls_warn_days']:
        raise ValueError('tls_crit_days (%d) must not be greater than tls_warn_days (%d)' % (settings['tls_crit_days'], settings['tls_warn_days']))
    headers = params.get('security_headers')
    if headers is None:
        headers = list(DEFAULT_SECURITY_HEADERS)
    for index, header in enumerate(headers):
        if not isinstance(header, str) or not header.strip() or ':' in header:
            raise ValueError('security_headers[%d] must be a header name, got %r' % (index, header))
    settings['security_headers'] = [header.strip() for header in headers]

    raw_endpoints = params.get('endpoints')
    if not raw_endpoints:
        raise ValueError('endpoints must contain at least one endpoint')
    endpoints = []
    seen = set()
    for index, raw in enumerate(raw_endpoints):
        where = 'endpoints[%d]' % index
        if not isinstance(raw, dict):
            raise ValueError('%s must be a dict with name and url' % where)
        name = raw.get('name')
        if not isinstance(name, str) or not name.strip():
            raise ValueError('%s.name is required and must be a non-empty string' % where)
        name = name.strip()
        where = 'endpoints[%d] (%s)' % (index, name)
        if name in seen:
            raise ValueError('%s.name: duplicate endpoint name %r' % (where, name))
        seen.add(name)
        scheme, host, port, target = parse_url(raw.get('url'), '%s.url' % where)

        def pick(key, raw=raw):
            value = raw.get(key)
            return settings[key] if value is None else value

        method = (raw.get('method') or 'GET').upper()
        if method not in METHODS:
            raise ValueError('%s.method must be one of %s, got %r' % (where, ', '.join(METHODS), raw.get('method')))
        expect = raw.get('expect_status')
        if expect is None:
            expect = [200]
        if not expect:
            raise ValueError('%s.expect_status must not be empty' % where)
        expect = [_number(code, '%s.expect_status[%d]' % (where, i), 100, maximum=599, integer=True) for i, code in enumerate(expect)]
        headers = raw.get('headers') or {}
        if not isinstance(headers, dict):
            raise ValueError('%s.headers must be a dict of header name to value' % where)
        for key, value in headers.items():
            if not isinstance(key, str) or not key.strip() or ':' in key or any(c in str(key) + str(value) for c in '\r\n'):
                raise ValueError('%s.headers: invalid header %r' % (where, key))
            try:  # http.client sends names as ASCII and values as Latin-1
                key.encode('ascii')
                str(value).encode('latin-1')
            except UnicodeError:
                raise ValueError('%s.headers: header %r must be ASCII and its value Latin-1 text' % (where, key))
        endpoints.append({
            'name': name,
            'url': raw['url'].strip(),
            'scheme': scheme,
            'host': host,
            'port': port,
            'target': target,
            'method': method,
            'count': _number(pick('count'), '%s.count' % where, 0, exclusive=True, integer=True),
            'concurrency': _number(pick('concurrency'), '%s.concurrency' % where, 0, exclusive=True, maximum=MAX_CONCURRENCY, integer=True),
            'p95_ms': _number(pick('p95_ms'), '%s.p95_ms' % where, 0, exclusive=True),
            'error_rate_percent': _number(pick('error_rate_percent'), '%s.error_rate_percent' % where, 0, exclusive=True, maximum=100),
            'expect_status': expect,
            'headers': dict((str(key).strip(), str(value)) for key, value in headers.items()),
        })
    total = sum(endpoint['count'] for endpoint in endpoints)
    if total > settings['max_requests']:
        raise ValueError('the endpoints ask for %d requests in total (sum of count), more than max_requests (%d); '
                         'lower count or raise max_requests' % (total, settings['max_requests']))
    return endpoints, settings


# ---------------------------------------------------------------------------------------------
# TLS helpers

def make_ssl_context(validate_certs=True, ca_path=None):
    """Client SSL context: verifying against ``ca_path`` (or the system store), or not verifying at all."""
    if validate_certs:
        return ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _iso(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def cert_not_after(sock, verified):
    """``(not_after_epoch, reason)`` of the peer's leaf certificate; ``reason`` says why it is None."""
    if verified:
        info = sock.getpeercert() or {}
        if info.get('notAfter'):
            return float(ssl.cert_time_to_seconds(info['notAfter'])), None
        return None, 'the verified peer certificate has no notAfter field'
    der = sock.getpeercert(binary_form=True)
    if not der:
        return None, 'the server sent no certificate'
    return der_not_after(der)


def der_not_after(der):
    """``(not_after_epoch, reason)`` from a DER certificate, with the ``cryptography`` package when installed."""
    try:
        from cryptography import x509  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None, 'validate_certs is false and the Python cryptography package is not installed, so the certificate cannot be parsed'
    try:
        cert = x509.load_der_x509_certificate(der)
        not_after = getattr(cert, 'not_valid_after_utc', None)
        if not_after is None:  # cryptography < 42
            not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        return not_after.timestamp(), None
    except Exception as exc:  # pylint: disable=broad-except
        return None, 'cannot parse the server certificate: %s' % exc


# ---------------------------------------------------------------------------------------------
# probing

def _classify(exc):
    """``(kind, message)`` for a request failure (one of REQUEST_ERRORS)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return 'tls', 'certificate verification failed: %s' % (exc.verify_message or exc)
    if isinstance(exc, ssl.SSLError):
        return 'tls', 'TLS error: %s' % exc
    if isinstance(exc, TimeoutError):
        return 'timeout', 'timed out: %s' % (exc or 'no data within timeout_s')
    if isinstance(exc, http.client.HTTPException):
        return 'protocol', 'HTTP protocol error: %s: %s' % (type(exc).__name__, exc)
    return 'connection', 'connection error: %s' % (exc.strerror or exc)


class EndpointProbe:
    """Runs the requests of one endpoint; ``run()`` returns its metrics dict."""

    def __init__(self, endpoint, settings, deadline, ssl_context=None, request_id_prefix=None, security_headers=None):
        self.endpoint = endpoint
        self.settings = settings
        self.deadline = deadline
        self.https = endpoint['scheme'] == 'https'
        self.ssl_context = ssl_context
        if self.https and ssl_context is None:
            self.ssl_context = make_ssl_context(settings['validate_certs'], settings.get('ca_path'))
        self.prefix = request_id_prefix or 'probe-%s' % secrets.token_hex(6)
        self.security_headers = list(settings['security_headers'] if security_headers is None else security_headers)
        self.lock = threading.Lock()
        self.aborted = False
        self.claimed = 0
        self.truncated = False
        self.connections = 0
        self.latencies = []
        self.status_codes = {}
        self.error_kinds = {}
        self.error_samples = []
        self.responses = 0
        self.errors = 0
        self.not_after = None
        self.tls_reason = None
        self.tls_seen = False
        self.headers_2xx = None

    # -- bookkeeping ---------------------------------------------------------------------------
    def _claim(self):
        with self.lock:
            if self.aborted or self.claimed >= self.endpoint['count']:
                return None
            if time.monotonic() >= self.deadline:
                self.truncated = True
                return None
            self.claimed += 1
            return self.claimed

    def _record_error(self, kind, message):
        with self.lock:
            self.errors += 1
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
            if message not in self.error_samples and len(self.error_samples) < _MAX_ERROR_SAMPLES:
                self.error_samples.append(message)

    def _record_response(self, status, latency_ms, headers):
        expected = status in self.endpoint['expect_status'] and status < 500
        with self.lock:
            self.responses += 1
            self.latencies.append(latency_ms)
            key = str(status)
            self.status_codes[key] = self.status_codes.get(key, 0) + 1
            if self.headers_2xx is None and 200 <= status < 300:
                self.headers_2xx = set(name.lower() for name in headers.keys())
        if not expected:
            self._record_error('status', 'unexpected HTTP status %d (expected %s)' % (
                status, ', '.join(str(code) for code in self.endpoint['expect_status'])))

    # -- I/O -----------------------------------------------------------------------------------
    def _connect(self):
        endpoint = self.endpoint
        timeout = self.settings['timeout_s']
        if self.https:
            conn = http.client.HTTPSConnection(endpoint['host'], endpoint['port'], timeout=timeout, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(endpoint['host'], endpoint['port'], timeout=timeout)
        try:
            conn.connect()
        except Exception:
            conn.close()
            raise
        with self.lock:
            self.connections += 1
            record_cert = self.https and not self.tls_seen
            self.tls_seen = True
        if record_cert:
            not_after, reason = cert_not_after(conn.sock, self.ssl_context.verify_mode != ssl.CERT_NONE)
            with self.lock:
                self.not_after, self.tls_reason = not_after, reason
        return conn

    def _request(self, conn, number):
        """Send request ``number``; return the connection to keep using (None to reconnect)."""
        endpoint = self.endpoint
        headers = {'User-Agent': USER_AGENT, 'Accept': '*/*'}
        headers.update(endpoint['headers'])
        headers['X-Request-ID'] = '%s-%d' % (self.prefix, number)
        start = time.monotonic()
        retried = False
        while True:
            reused = conn is not None
            try:
                if conn is None:
                    conn = self._connect()
                conn.request(endpoint['method'], endpoint['target'], headers=headers)
                response = conn.getresponse()
                response.read()
                latency_ms = (time.monotonic() - start) * 1000.0
                self._record_response(response.status, latency_ms, response.headers)
                if response.will_close:
                    conn.close()
                    conn = None
                return conn
            except REQUEST_ERRORS as exc:
                if conn is not None:
                    conn.close()
                    conn = None
                if reused and not retried and isinstance(exc, _STALE_CONNECTION_ERRORS):
                    retried = True  # an idle keep-alive connection closed by the server: one fresh try
                    continue
                self._record_error(*_classify(exc))
                return None
            except BaseException:  # a bug: not the service's failure; the worker stops and run() raises ProbeError
                if conn is not None:
                    conn.close()
                raise

    def _worker(self):
        conn = None
        try:
            while True:
                number = self._claim()
                if number is None:
                    break
                conn = self._request(conn, number)
        except BaseException:
            with self.lock:
                self.aborted = True  # the other workers stop sending
            raise
        finally:
            if conn is not None:
                conn.close()

    def run(self):
        endpoint = self.endpoint
        started = time.monotonic()
        workers = min(endpoint['concurrency'], endpoint['count'])
        if time.monotonic() < self.deadline:
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix='http_probe') as pool:
                futures = [pool.submit(self._worker) for dummy in range(workers)]
                for future in futures:
                    exc = future.exception()
                    if exc is not None:
                        raise ProbeError('internal error while probing %s: %s: %s' % (endpoint['name'], type(exc).__name__, exc)) from exc
        else:
            self.truncated = True
        duration = time.monotonic() - started
        return self.metrics(duration)

    def metrics(self, duration):
        endpoint = self.endpoint
        sent = self.claimed
        result = {
            'url': endpoint['url'],
            'method': endpoint['method'],
            'requests_planned': endpoint['count'],
            'requests_sent': sent,
            'concurrency': min(endpoint['concurrency'], endpoint['count']),
            'truncated': self.truncated,
            'duration_s': round(duration, 3),
            'connections_opened': self.connections,
            'responses': self.responses,
            'errors': self.errors,
            'error_rate_percent': round(100.0 * self.errors / sent, 3) if sent else None,
            'error_kinds': dict(self.error_kinds),
            'error_samples': list(self.error_samples),
            'status_codes': dict(sorted(self.status_codes.items())),
            'reachable': self.responses > 0,
            'latency_ms': latency_stats(self.latencies),
            'p95_ms_threshold': endpoint['p95_ms'],
            'error_rate_percent_threshold': endpoint['error_rate_percent'],
            'tls': None,
            'security_headers': None,
        }
        if self.https:
            days = None
            if self.not_after is not None:
                days = round((self.not_after - time.time()) / 86400.0, 2)
            result['tls'] = {
                'handshake': self.tls_seen,
                'verified': self.ssl_context.verify_mode != ssl.CERT_NONE,
                'not_after': _iso(self.not_after) if self.not_after is not None else None,
                'days_to_expiry': days,
                'unknown_reason': self.tls_reason if self.not_after is None and self.tls_seen else None,
            }
            if self.headers_2xx is None:
                result['security_headers'] = {'checked': False, 'present': [], 'missing': []}
            else:
                result['security_headers'] = {
                    'checked': True,
                    'present': [name for name in self.security_headers if name.lower() in self.headers_2xx],
                    'missing': [name for name in self.security_headers if name.lower() not in self.headers_2xx],
                }
        return result


def probe_ssl_context(endpoints, settings):
    """The SSL context shared by the HTTPS endpoints (None without any). ValueError/OSError: a bad ``ca_path``."""
    if any(endpoint['scheme'] == 'https' for endpoint in endpoints):
        return make_ssl_context(settings['validate_certs'], settings.get('ca_path'))
    return None


def run_probes(endpoints, settings, request_id_prefix=None, ssl_context=None):
    """Probe every endpoint in turn within ``settings['max_seconds']``; return ``(probes, checks)``.

    Failed requests (REQUEST_ERRORS) are measurements; any other exception in a request is raised as ProbeError
    naming the endpoint.
    """
    deadline = time.monotonic() + settings['max_seconds']
    prefix = request_id_prefix or 'probe-%s' % secrets.token_hex(6)
    context = ssl_context if ssl_context is not None else probe_ssl_context(endpoints, settings)
    probes = {}
    checks = []
    for endpoint in endpoints:
        probe = EndpointProbe(endpoint, settings, deadline, ssl_context=context if endpoint['scheme'] == 'https' else None,
                              request_id_prefix='%s-%s' % (prefix, _slug(endpoint['name'])))
        metrics = probe.run()
        probes[endpoint['name']] = metrics
        checks.extend(endpoint_checks(endpoint['name'], metrics, settings))
    return probes, checks


def _slug(name):
    return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)[:40]


# ---------------------------------------------------------------------------------------------
# checks

def endpoint_checks(name, metrics, settings):
    """The checks of one probed endpoint (see the module documentation for their meaning)."""
    checks = []
    sent = metrics['requests_sent']
    p95_ms = metrics['p95_ms_threshold']
    err_limit = metrics['error_rate_percent_threshold']
    crit_ms = p95_ms * settings['p95_crit_factor']
    https = metrics['tls'] is not None
    dependent = ['latency_p95'] + (['tls_expiry', 'security_headers'] if https else [])

    if sent == 0:
        message = '%s was not probed: max_seconds (%s s) was used up by earlier endpoints' % (name, settings['max_seconds'])
        checks.append(make_check('%s:error_rate' % name, 'warning', None, err_limit, message, unit='%'))
        for suffix in dependent:
            checks.append(make_check('%s:%s' % (name, suffix), 'warning', None, None, message))
        return _order(name, checks)

    truncated = ''
    if metrics['truncated']:
        truncated = ' (only %d of %d requests sent before max_seconds)' % (sent, metrics['requests_planned'])

    if not metrics['reachable']:
        cause = metrics['error_samples'][0] if metrics['error_samples'] else 'no response'
        checks.append(make_check('%s:error_rate' % name, 'critical', 100.0, err_limit,
                                 '%s is unreachable: %d of %d requests failed without any HTTP response (%s)%s'
                                 % (name, sent, sent, cause, truncated), alert='service_down', unit='%'))
        for suffix in dependent:
            if suffix == 'tls_expiry' and metrics['tls']['days_to_expiry'] is not None:
                checks.append(_tls_check(name, metrics['tls'], settings))
                continue
            checks.append(make_check('%s:%s' % (name, suffix), 'critical', None, None,
                                     '%s %s not measured: endpoint unreachable (%s)' % (name, suffix.replace('_', ' '), cause),
                                     alert='service_down'))
        return _order(name, checks)

    rate = metrics['error_rate_percent']
    check = threshold_check('%s:error_rate' % name, rate, crit=err_limit, unit='%', alert='high_error_rate',
                            label='%s error rate' % name)
    check['message'] += ': %d of %d requests failed%s%s' % (
        metrics['errors'], sent, (' (%s)' % metrics['error_samples'][0]) if metrics['error_samples'] else '', truncated)
    checks.append(check)

    p95 = metrics['latency_ms']['p95']
    check = threshold_check('%s:latency_p95' % name, p95, warn=p95_ms, crit=crit_ms, unit='ms', alert='high_latency',
                            label='%s latency p95' % name)
    check['message'] += ' over %d responses%s' % (metrics['responses'], truncated)
    checks.append(check)

    if https:
        checks.append(_tls_check(name, metrics['tls'], settings))
        checks.append(_headers_check(name, metrics['security_headers']))
    return checks


def _order(name, checks):
    order = ['%s:%s' % (name, suffix) for suffix in ('error_rate', 'latency_p95', 'tls_expiry', 'security_headers')]
    return sorted(checks, key=lambda check: order.index(check['name']))


def _tls_check(name, tls, settings):
    check_name = '%s:tls_expiry' % name
    days = tls['days_to_expiry']
    if days is None:
        reason = tls['unknown_reason'] or 'no TLS handshake completed'
        return make_check(check_name, 'warning', None, settings['tls_warn_days'],
                          '%s TLS certificate expiry is unknown: %s' % (name, reason), alert='tls_expiry', unit='days')
    check = threshold_check(check_name, days, warn=settings['tls_warn_days'], crit=settings['tls_crit_days'],
                            higher_is_worse=False, unit='days', alert='tls_expiry', label='%s TLS certificate validity left' % name)
    check['message'] += ', expires %s' % tls['not_after']
    if days <= 0:
        check['message'] = '%s TLS certificate EXPIRED on %s' % (name, tls['not_after'])
    return check


def _headers_check(name, headers):
    check_name = '%s:security_headers' % name
    if not headers['checked']:
        return make_check(check_name, 'warning', None, 0, '%s security headers not checked: no 2xx response' % name,
                          alert='security_headers', details=headers)
    missing = headers['missing']
    if missing:
        return make_check(check_name, 'warning', len(missing), 0, '%s is missing security header(s): %s' % (name, ', '.join(missing)),
                          alert='security_headers', details=headers)
    return make_check(check_name, 'ok', 0, 0, '%s sends all %d required security headers' % (name, len(headers['present'])),
                      details=headers)
