"""Bounded, fixed-rate HTTP(S) load for "zero failed requests while ..." tests and bench scripts.

    from helpers.load import Load

    with Load("https://127.0.0.1:8443/api/vehicles?limit=5", rate=20, ca_path=".lab/ca/ca.pem") as load:
        ...                                   # patch, restart, fail over: the load keeps running
    summary = load.summary()                  # {"sent": 412, "ok": 412, "failed": 0, ...}
    assert summary["failed"] == 0 and summary["skipped"] == 0, summary["errors"]

Open loop: request n (from 1) is due at t0 + (n - 1) / rate, whatever happened to the previous ones, and
runs on one of `pool` worker threads, so slow responses do not slow the schedule down. There is no queue:
when all workers are busy at a request's due time (the server is slower than pool / rate seconds), the
request is not sent and is counted in `skipped` (a saturated client, reported, never hidden; assert on it
too). Every request is a fresh connection with `X-Request-ID: <id_prefix>-<n>`; "ok" means HTTP 200,
anything else (another status, a refused connection, a TLS error, a timeout) is failed, so
sent == ok + failed. The load stops when the `with` block ends, on stop(), or after `max_seconds`,
whichever comes first; requests in flight are waited for (each bounded by `timeout`).

Time is read from `clock` (default time.monotonic) and waited for with `sleep(seconds)` (default: a wait on the
stop event, so stop() interrupts it at once; a sleep may return early, the scheduler sleeps again until the due
time). Tests inject a fake clock and sleep to check the timetable without real time (see run_schedule).

Hard bounds: rate <= 100 requests/s, max_seconds <= 600, pool <= 32 workers.

CLI (prints the summary as JSON; exit status 1 when any request failed or was skipped):
    python tests/helpers/load.py URL [--rate 20] [--seconds 10] [--ca PATH] [--timeout 5] [--pool 16]
        [--until-file PATH] [--out PATH] [--ready-file PATH]
--ready-file is written (the summary so far, as JSON) once the first request has completed, whatever its result:
a background load's caller waits for that file instead of sleeping before it starts what the load must cover.
"""

import argparse
import os
import http.client
import json
import ssl
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

MAX_RATE = 100
MAX_SECONDS = 600
MAX_POOL = 32
MAX_ERRORS_KEPT = 20


def _bounded(name, value, low_exclusive, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number, got %r" % (name, value))
    if not low_exclusive < value <= high:
        raise ValueError("%s must be > %s and <= %s, got %r" % (name, low_exclusive, high, value))
    return value


def p95(values):
    """95th percentile by linear interpolation between closest ranks (None when empty)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def run_schedule(rate, max_seconds, t0, dispatch, stop, clock=time.monotonic, sleep=None):
    """The open-loop timetable: call dispatch(n, due) for n = 1, 2, ... at due = t0 + (n - 1) / rate, never before
    clock() reaches due, whatever dispatch did or how long it took (a late dispatch is made at once, with its own due
    time; the ones after it keep theirs). Ends before the first request whose offset (n - 1) / rate reaches
    max_seconds ("max_seconds") or once `stop` (a threading.Event) is set ("stop": nothing is dispatched after
    that). sleep(seconds) waits (default stop.wait, which returns when stop is set); it may return early."""
    sleep = stop.wait if sleep is None else sleep
    n = 0
    while True:
        offset = n / rate
        if offset >= max_seconds:
            return "max_seconds"
        due = t0 + offset
        while not stop.is_set():
            delay = due - clock()
            if delay <= 0:
                break
            sleep(delay)
        if stop.is_set():
            return "stop"
        n += 1
        dispatch(n, due)


class Load:
    """Fixed-rate GET requests to one URL in a background thread; see the module docstring."""

    def __init__(self, url, rate=20, max_seconds=300, ca_path=None, timeout=5, pool=16, id_prefix="load", clock=time.monotonic,
                 sleep=None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host, got %r" % (url,))
        self.url = url
        self.rate = _bounded("rate", rate, 0, MAX_RATE)
        self.max_seconds = _bounded("max_seconds", max_seconds, 0, MAX_SECONDS)
        self.timeout = _bounded("timeout", timeout, 0, 60)
        if isinstance(pool, bool) or not isinstance(pool, int):
            raise TypeError("pool must be an integer, got %r" % (pool,))
        self.pool = _bounded("pool", pool, 0, MAX_POOL)
        self.id_prefix = id_prefix
        if not callable(clock) or not (sleep is None or callable(sleep)):
            raise TypeError("clock must be a function returning seconds and sleep None or a function taking seconds")
        self._clock = clock
        self._sleep = sleep
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        self._context = None
        if parts.scheme == "https":
            self._context = ssl.create_default_context(cafile=ca_path)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._executor = None
        self._slots = threading.BoundedSemaphore(self.pool)
        self._t0 = None
        self._ended = None
        self.stopped_by = None
        self._sent = 0
        self._ok = 0
        self._failed = 0
        self._skipped = 0
        self._errors = []
        self._latencies = []
        self._by_status = {}
        self._max_lag = 0.0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False

    def start(self):
        if self._thread is not None:
            raise RuntimeError("this Load was started already; make a new one")
        self._executor = ThreadPoolExecutor(max_workers=self.pool, thread_name_prefix="load")
        self._t0 = self._clock()
        self._thread = threading.Thread(target=self._schedule, name="load-scheduler", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout=None):
        """Block until the schedule ends by itself (max_seconds) or `timeout` seconds pass; True when it ended."""
        if self._thread is None:
            raise RuntimeError("Load was not started")
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self):
        """Stop sending and wait for the requests in flight. Safe to call twice."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._executor.shutdown(wait=True)

    def _schedule(self):
        stopped_by = run_schedule(self.rate, self.max_seconds, self._t0, self._dispatch, self._stop, clock=self._clock, sleep=self._sleep)
        with self._lock:
            self._ended = self._clock()
            self.stopped_by = stopped_by

    def _dispatch(self, n, due):
        """Hand request n to a free worker, or count it as skipped when all are busy (no queue)."""
        if self._slots.acquire(blocking=False):  # pylint: disable=consider-using-with
            self._executor.submit(self._one, n, due)
        else:
            self._skip(n, due)

    # ------------------------------------------------------------------ one request

    def _connection(self):
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _error(self, text):
        if len(self._errors) < MAX_ERRORS_KEPT:
            self._errors.append(text)

    def _skip(self, n, due):
        with self._lock:
            self._skipped += 1
            self._error("t=%.3fs %s-%d: skipped, all %d workers busy (client saturated)" % (due - self._t0, self.id_prefix, n, self.pool))

    def _one(self, n, due):
        try:
            self._request(n, due)
        finally:
            self._slots.release()

    def _request(self, n, due):
        started = self._clock()
        status = None
        problem = None
        conn = self._connection()
        try:
            conn.request("GET", self._target, headers={"X-Request-ID": "%s-%d" % (self.id_prefix, n), "Connection": "close"})
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            problem = "%s: %s" % (exc.__class__.__name__, exc)
        finally:
            conn.close()
        elapsed = self._clock() - started
        with self._lock:
            self._sent += 1
            self._max_lag = max(self._max_lag, started - due)
            key = str(status) if status is not None else "error"
            self._by_status[key] = self._by_status.get(key, 0) + 1
            if status is not None:
                self._latencies.append(elapsed * 1000.0)
            if status == 200:
                self._ok += 1
                return
            self._failed += 1
            what = "HTTP %d" % status if status is not None else problem
            self._error("t=%.3fs %s-%d: %s (%.0f ms)" % (started - self._t0, self.id_prefix, n, what, elapsed * 1000.0))

    # ------------------------------------------------------------------ results

    def summary(self):
        """Counts so far (final once the load stopped): sent, ok, failed, skipped, errors, p95_ms, duration_s, by_status, ..."""
        with self._lock:
            end = self._ended if self._ended is not None else self._clock()
            duration = (end - self._t0) if self._t0 is not None else 0.0
            p95_ms = p95(sorted(self._latencies))
            return {
                "url": self.url,
                "rate": self.rate,
                "sent": self._sent,
                "ok": self._ok,
                "failed": self._failed,
                "skipped": self._skipped,
                "errors": list(self._errors),
                "p95_ms": round(p95_ms, 1) if p95_ms is not None else None,
                "duration_s": round(duration, 3),
                "achieved_rate": round(self._sent / duration, 2) if duration > 0 else 0.0,
                "max_lag_ms": round(self._max_lag * 1000.0, 1),
                "by_status": dict(sorted(self._by_status.items())),
                "stopped_by": self.stopped_by,
            }


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fixed-rate GET load against one URL; prints a JSON summary.")
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=20, help="requests per second (<= %d)" % MAX_RATE)
    parser.add_argument("--seconds", type=float, default=10, help="how long to send (<= %d)" % MAX_SECONDS)
    parser.add_argument("--ca", default=None, help="CA certificate file for HTTPS (e.g. .lab/ca/ca.pem)")
    parser.add_argument("--timeout", type=float, default=5, help="per-request socket timeout in seconds")
    parser.add_argument("--pool", type=int, default=16, help="worker threads (<= %d)" % MAX_POOL)
    parser.add_argument("--until-file", default=None, help="stop early once this file exists (for a background load)")
    parser.add_argument("--out", default=None, help="also write the JSON summary to this file")
    parser.add_argument("--ready-file", default=None,
                        help="write the summary so far to this file once the first request has completed (whatever its result)")
    args = parser.parse_args(argv)
    try:
        load = Load(args.url, rate=args.rate, max_seconds=args.seconds, ca_path=args.ca, timeout=args.timeout, pool=args.pool)
    except (TypeError, ValueError, OSError) as exc:
        parser.error(str(exc))
    ready = args.ready_file is None
    with load:
        while not load.wait(0.05 if not ready else 0.2):
            if not ready and load.summary()["sent"] > 0:
                _write_json(args.ready_file, load.summary())
                ready = True
            if args.until_file and os.path.exists(args.until_file):
                break
    summary = load.summary()
    if not ready and summary["sent"] > 0:
        _write_json(args.ready_file, summary)
    print(json.dumps(summary, indent=2))
    if args.out:
        _write_json(args.out, summary)
    return 1 if summary["failed"] or summary["skipped"] else 0


def _write_json(path, data):
    """Write at once (a reader never sees half a file)."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    sys.exit(main())
