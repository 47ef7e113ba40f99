# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/helpers/load.py: the timetable (fixed rate, open loop, skip when saturated, stop, max_seconds) against a
fake clock, so it is exact and independent of the machine's load; and counts, statuses, timeouts, HTTPS and the CLI
against a local http.server on 127.0.0.1 in real time. The real-time tests assert counts, never elapsed-time windows:
the server holds requests on a gate the test opens (a condition, not a duration), every load there has at least as
many workers as requests (so none can be skipped however slow the machine is), and the only durations asserted are
upper bounds many times the nominal time, each justified where it is asserted."""

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
from helpers.load import Load, run_schedule  # noqa: E402  pylint: disable=wrong-import-position


T0 = 1000.0
HOLD_S = 60  # the longest a held request waits for the gate (a broken test must not hang for ever)
WAIT_S = 30  # how long a test waits for a condition before failing (the condition normally holds within milliseconds)


class FakeClock:
    """A monotonic clock that moves only when the scheduler sleeps: by the requested delay, or by at most `step`."""

    def __init__(self, step=None):
        self.now = T0
        self.step = step
        self.sleeps = []
        self.on_sleep = None

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds if self.step is None else min(seconds, self.step)
        if self.on_sleep is not None:
            self.on_sleep()


def timetable(rate, max_seconds, clock=None, stop=None, during=None):
    """Run the real run_schedule on a fake clock; return (stopped_by, [(n, due, clock at dispatch)], clock)."""
    clock = clock or FakeClock()
    stop = stop or threading.Event()
    calls = []

    def dispatch(n, due):
        calls.append((n, due, clock()))
        if during is not None:
            during(n, clock, stop)

    stopped_by = run_schedule(rate, max_seconds, clock(), dispatch, stop, clock=clock, sleep=clock.sleep)
    return stopped_by, calls, clock


def wait_until(predicate, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out after %s s waiting for %s' % (timeout, what)
        time.sleep(0.01)


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        with srv.lock:
            srv.seen.append((self.path, self.headers.get('X-Request-ID')))
        if srv.hold:
            srv.gate.wait(HOLD_S)  # held until the test opens the gate
        body = b'{"ok": true}'
        try:
            self.send_response(srv.status)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout tests)


class Server:
    """A ThreadingHTTPServer on a free loopback port; the status can be changed and requests held on a gate per test."""

    def __init__(self, context=None):
        self.srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.srv.daemon_threads = True
        self.srv.lock = threading.Lock()
        self.srv.seen = []
        self.srv.status = 200
        self.srv.hold = False
        self.srv.gate = threading.Event()
        if context is not None:
            self.srv.socket = context.wrap_socket(self.srv.socket, server_side=True)
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def url(self, path='/api/vehicles?limit=5', scheme='http', host='127.0.0.1'):
        return '%s://%s:%d%s' % (scheme, host, self.srv.server_address[1], path)

    def ids(self):
        with self.srv.lock:
            return sorted((rid for _p, rid in self.srv.seen), key=lambda rid: int(rid.rsplit('-', 1)[1]))

    def close(self):
        self.srv.gate.set()
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


# ---------------------------------------------------------------------- the timetable, on a fake clock (exact)

def test_timetable_is_fixed_rate_and_each_request_goes_at_its_due_time():
    stopped_by, calls, clock = timetable(rate=20, max_seconds=2)
    assert stopped_by == 'max_seconds'
    assert [n for n, _due, _at in calls] == list(range(1, 41))  # due at 0, 50, ..., 1950 ms: exactly 40
    assert [due for _n, due, _at in calls] == [T0 + (n - 1) / 20 for n in range(1, 41)]
    assert [at for _n, _due, at in calls] == [due for _n, due, _at in calls]  # neither early nor late
    assert clock.sleeps == pytest.approx([0.05] * 39)  # one wait per interval, none after the last request
    assert clock() == T0 + 39 / 20


@pytest.mark.parametrize('rate, max_seconds, count', [
    (20, 0.5, 10),      # offsets 0 .. 0.45
    (10, 0.3, 3),       # offset 0.3 reaches max_seconds: not sent
    (3, 1, 3),          # 0, 1/3, 2/3
    (0.5, 10, 5),       # 0, 2, 4, 6, 8
    (20, 0.01, 1),      # the first request is due at once
    (100, 600, 60000),  # the hard bounds
])
def test_timetable_ends_at_max_seconds(rate, max_seconds, count):
    stopped_by, calls, _clock = timetable(rate, max_seconds)
    assert stopped_by == 'max_seconds'
    assert len(calls) == count and calls[-1][0] == count


def test_timetable_is_open_loop_a_late_request_shifts_nothing_after_it():
    def stall(n, clock, _stop):
        if n == 5:
            clock.now += 0.33  # request 5 (due 200 ms) held the scheduler until 530 ms

    _stopped_by, calls, clock = timetable(rate=20, max_seconds=2, during=stall)
    assert [n for n, _due, _at in calls] == list(range(1, 41))  # none dropped, none added
    assert [due for _n, due, _at in calls] == [T0 + (n - 1) / 20 for n in range(1, 41)]  # timetable unchanged
    late = [(n, at) for n, due, at in calls if at != due]
    assert [n for n, _at in late] == list(range(6, 12))  # due at 250 .. 500 ms, while request 5 held the scheduler
    assert all(at == pytest.approx(T0 + 0.53) for _n, at in late), late  # sent at once, not spaced out
    assert calls[11] == (12, T0 + 0.55, T0 + 0.55)  # back on time
    assert len(clock.sleeps) == 39 - 6


def test_timetable_sleeps_again_when_a_sleep_returns_early():
    _stopped_by, calls, clock = timetable(rate=20, max_seconds=1, clock=FakeClock(step=0.02))
    assert [due for _n, due, _at in calls] == [T0 + (n - 1) / 20 for n in range(1, 21)]
    assert all(due <= at < due + 1e-9 for _n, due, at in calls), calls  # never before its due time
    assert len(clock.sleeps) >= 19 * 3  # 50 ms intervals in steps of at most 20 ms


def test_timetable_stop_during_a_wait_sends_nothing_more():
    clock = FakeClock()
    stop = threading.Event()
    clock.on_sleep = lambda: stop.set() if clock() >= T0 + 0.48 else None  # stop() at 480 ms, while waiting for 500 ms
    stopped_by, calls, _clock = timetable(rate=20, max_seconds=300, clock=clock, stop=stop)
    assert stopped_by == 'stop'
    assert [n for n, _due, _at in calls] == list(range(1, 11))  # due at 0 .. 450 ms; the one due at 500 ms is not sent


def test_timetable_stop_during_a_dispatch_or_before_the_start():
    def stop_at_3(n, _clock, stop):
        if n == 3:
            stop.set()

    stopped_by, calls, clock = timetable(rate=20, max_seconds=300, during=stop_at_3)
    assert stopped_by == 'stop' and [n for n, _d, _a in calls] == [1, 2, 3] and len(clock.sleeps) == 2
    stop = threading.Event()
    stop.set()
    stopped_by, calls, clock = timetable(rate=20, max_seconds=300, stop=stop)
    assert stopped_by == 'stop' and calls == [] and clock.sleeps == []


def test_saturated_pool_skips_instead_of_queueing_on_the_injected_clock(server):
    server.srv.hold = True  # both workers stay busy until the gate opens, however fast or slow the machine is
    clock = FakeClock()
    with Load(server.url(), rate=20, max_seconds=0.5, pool=2, clock=clock, sleep=clock.sleep) as load:
        assert load.wait(timeout=WAIT_S)  # the fake sleep returns at once: the whole timetable, no real waiting
        during = load.summary()
        assert during['sent'] == 0 and during['skipped'] == 8
        assert during['errors'] == ['t=%.3fs load-%d: skipped, all 2 workers busy (client saturated)' % ((n - 1) / 20, n)
                                    for n in range(3, 11)]
        assert during['stopped_by'] == 'max_seconds' and during['duration_s'] == 0.45  # read from the injected clock
        assert clock.sleeps == pytest.approx([0.05] * 9)
        wait_until(lambda: len(server.srv.seen) == 2, 'the 2 requests the workers took')
        server.srv.gate.set()
    summary = load.summary()
    assert summary['sent'] == 2 and summary['ok'] == 2 and summary['skipped'] == 8
    assert server.ids() == ['load-1', 'load-2']


# ---------------------------------------------------------------------- real time: counts, statuses, no time windows

def test_fixed_rate_request_ids_and_statuses(server):
    # pool >= requests: no request can be skipped, whatever the machine's load
    load = Load(server.url(), rate=20, max_seconds=1.5, pool=32)
    with load:
        # Nominal 1.45 s; 60 s is 40 times that, so only a schedule that stalls or sleeps far too long fails here.
        assert load.wait(timeout=60)
    summary = load.summary()
    assert summary['sent'] == 30 and summary['ok'] == 30  # due at n/20 s for n = 0..29
    assert summary['failed'] == 0 and summary['skipped'] == 0 and summary['errors'] == []
    assert summary['by_status'] == {'200': 30}
    assert summary['stopped_by'] == 'max_seconds'
    assert summary['duration_s'] >= 1.45  # it cannot end before the last due time (a lower bound: load only adds)
    assert server.ids() == ['load-%d' % n for n in range(1, 31)]
    assert {path for path, _rid in server.srv.seen} == {'/api/vehicles?limit=5'}
    assert summary['p95_ms'] is not None and summary['p95_ms'] > 0


def test_slow_responses_do_not_slow_the_schedule(server):
    server.srv.hold = True  # no response until the gate opens
    with Load(server.url(), rate=20, max_seconds=0.5, pool=16) as load:
        # All 10 requests go out while none has been answered: a closed loop would wait for the first answer for ever.
        assert load.wait(timeout=WAIT_S)
        wait_until(lambda: len(server.srv.seen) == 10, '10 requests in flight at once')
        assert load.summary()['sent'] == 0 and load.summary()['skipped'] == 0
        server.srv.gate.set()
    summary = load.summary()
    assert summary['sent'] == 10 and summary['ok'] == 10 and summary['skipped'] == 0
    assert server.ids() == ['load-%d' % n for n in range(1, 11)]


def test_exit_stops_at_once_and_nothing_is_sent_after_it(server):
    # One request every 50 s: the second is due 50 s after the start, so the stop must interrupt the wait for it.
    with Load(server.url(), rate=0.02, max_seconds=300) as load:
        wait_until(lambda: load.summary()['sent'] == 1, 'the first request')
        started = time.monotonic()
    took = time.monotonic() - started
    assert took < 25, took  # a stop that waited for the next due time would take 50 s; it takes milliseconds
    summary = load.summary()
    assert summary['stopped_by'] == 'stop'
    assert summary['sent'] == 1 and summary['skipped'] == 0 and server.ids() == ['load-1']
    assert load.wait(timeout=0)  # the scheduler has ended: nothing can be sent any more
    load.stop()  # idempotent
    assert load.summary() == summary


def test_503_counts_as_failed_and_errors_are_capped(server):
    server.srv.status = 503
    with Load(server.url('/healthz'), rate=25, max_seconds=1, pool=32) as load:
        assert load.wait(timeout=60)
    summary = load.summary()
    assert summary['sent'] == 25
    assert summary['ok'] == 0 and summary['failed'] == 25
    assert summary['by_status'] == {'503': 25}
    assert len(summary['errors']) == load_mod.MAX_ERRORS_KEPT == 20
    assert all('HTTP 503' in e and e.startswith('t=') and 'load-' in e for e in summary['errors'])


def test_mixed_statuses_only_200_is_ok(server):
    with Load(server.url(), rate=20, max_seconds=300) as load:
        wait_until(lambda: load.summary()['ok'] >= 2, 'two answers with 200')
        server.srv.status = 500
        wait_until(lambda: load.summary()['failed'] >= 2, 'two answers with 500')
    summary = load.summary()
    assert summary['ok'] >= 2 and summary['failed'] >= 2
    assert summary['ok'] + summary['failed'] == summary['sent']
    assert set(summary['by_status']) == {'200', '500'}
    assert summary['by_status']['200'] == summary['ok'] and summary['by_status']['500'] == summary['failed']


def test_timeouts_are_failures_and_stop_waits_only_for_the_timeout(server):
    server.srv.hold = True  # never answered while the test runs (HOLD_S = 60 s at most)
    started = time.monotonic()
    with Load(server.url(), rate=10, max_seconds=0.3, timeout=0.2) as load:
        assert load.wait(timeout=WAIT_S)
    took = time.monotonic() - started
    summary = load.summary()
    assert summary['sent'] == 3 and summary['failed'] == 3
    assert summary['by_status'] == {'error': 3}
    assert all('timed out' in e for e in summary['errors']), summary['errors']
    # Nominal 0.5 s (0.3 s of schedule + the 0.2 s timeout); waiting for the server would take HOLD_S = 60 s.
    assert took < HOLD_S / 2, took


def test_refused_connection_is_a_failure():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with Load('http://127.0.0.1:%d/' % port, rate=20, max_seconds=0.25) as load:
        assert load.wait(timeout=WAIT_S)
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
    with pytest.raises(TypeError, match='clock must be a function'):
        Load('http://127.0.0.1:1/', clock=12.5)
    with pytest.raises(TypeError, match='sleep None or a function'):
        Load('http://127.0.0.1:1/', sleep=0.1)


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
            assert load.wait(timeout=WAIT_S)
        assert load.summary()['ok'] == 5
        with Load(srv.url(scheme='https'), rate=20, max_seconds=0.1) as untrusted:
            assert untrusted.wait(timeout=WAIT_S)
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


def test_cli_ready_file_is_written_once_the_first_request_completed(server, tmp_path, capsys, monkeypatch):
    ready, stop, out = tmp_path / 'load.ready', tmp_path / 'load.stop', tmp_path / 'load.json'
    server.srv.hold = True  # the first request cannot complete until the gate opens
    polls = []  # requests the server had seen each time the CLI's wait loop woke up (it checks for readiness after each)
    real_wait = load_mod.Load.wait

    def wait(self, timeout=None):
        ended = real_wait(self, timeout)
        polls.append(len(server.srv.seen))
        return ended

    monkeypatch.setattr(load_mod.Load, 'wait', wait)
    result = {}
    argv = [server.url(), '--rate', '1', '--seconds', '300', '--ready-file', str(ready), '--until-file', str(stop), '--out', str(out)]
    thread = threading.Thread(target=lambda: result.update(rc=load_mod.main(argv)), daemon=True)
    thread.start()
    try:
        # Two wake-ups after the request reached the server: the check after the first one has finished.
        wait_until(lambda: sum(1 for seen in polls if seen) >= 2, 'the CLI to look twice while the first request is held')
        assert not ready.exists()  # sent, not answered yet: the load is not known to work
        server.srv.gate.set()
        wait_until(ready.exists, 'the ready file')
        assert json.loads(ready.read_text())['ok'] >= 1
    finally:
        stop.touch()
        thread.join(WAIT_S)
    assert not thread.is_alive() and result['rc'] == 0
    summary = json.loads(out.read_text())
    assert summary['stopped_by'] == 'stop' and summary['ok'] >= 1 and summary['failed'] == 0 and summary['skipped'] == 0
    assert json.loads(capsys.readouterr().out) == summary
    # A load that ends before the loop first looks (one request here) leaves the file too, whatever the result.
    short = tmp_path / 'short.ready'
    server.srv.status = 503
    assert load_mod.main([server.url(), '--rate', '20', '--seconds', '0.01', '--ready-file', str(short)]) == 1
    assert json.loads(short.read_text())['failed'] == 1
