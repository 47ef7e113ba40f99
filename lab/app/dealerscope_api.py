"""DealerScope sample API for the lab fleet (stdlib + psycopg2 only).

GET /healthz        200 when PostgreSQL answers `SELECT 1`, 503 otherwise
GET /api/vehicles   rows from the `vehicles` table (?limit=N, default 50, max 500)
GET /version        the release this process runs, its colour (blue/green) and the active feature flags
GET /dashboard      a small HTML dashboard (inventory by make, price bands)

Fault injection for lab tests: when /etc/dealerscope/faults.json exists it is read on every
request: {"delay_ms": 800} slows every response, {"status": 500} turns responses into errors
(optionally only for "paths": [...]). Delete the file to heal.

Feature flags: the JSON object in /etc/dealerscope/flags.json (DS_FLAGS; dealerscope.ops.deploy writes it
atomically) is read again whenever its modification time changes, so a flag changes without a deploy. Flags
set to true are active. The flag `enhanced_score` adds the column of that name to /api/vehicles (the readiness
document's example migration adds it).

The version is DS_VERSION, else the VERSION file next to this script (a release directory), else 0.0.0.

Every request is logged as one JSON line (access log) with a correlation ID taken
from the X-Request-ID header, or generated when absent, and echoed back.
Configuration comes from the environment (see the systemd unit's EnvironmentFile).

Like a real service linked against a shared library, the process maps the lab's demo library
/usr/lib/dslab/libdemo.so.1 (package dslab-libdemo from the lab repository, lab/repo/build.py)
read-only at start, when it is installed, and keeps the mapping for its whole life: after an
upgrade replaces the file, /proc/<pid>/maps shows it "(deleted)" until the service restarts,
which is what needrestart-style checks look for.
"""
import html
import json
import mmap
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg2
import psycopg2.pool


def _release_version():
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION"), encoding="utf-8") as handle:
            return handle.read().strip() or "0.0.0"
    except OSError:
        return "0.0.0"


VERSION = os.environ.get("DS_VERSION") or _release_version()
COLOUR = os.environ.get("DS_COLOUR", "")
FLAGS_PATH = os.environ.get("DS_FLAGS", "/etc/dealerscope/flags.json")
_FLAGS = {"mtime": None, "flags": {}}
LOG_PATH = os.environ.get("DS_ACCESS_LOG", "/var/log/dealerscope/access.log")
FAULTS_PATH = os.environ.get("DS_FAULTS", "/etc/dealerscope/faults.json")
LIBDEMO_PATH = os.environ.get("DS_LIBDEMO", "/usr/lib/dslab/libdemo.so.1")
POOL = None
LIBDEMO = None  # the mapping lives as long as the process


def map_library(path):
    """Map `path` read-only and private, as the loader maps a library (None when absent, unreadable or empty)."""
    try:
        with open(path, "rb") as handle:
            return mmap.mmap(handle.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None


def flags():
    """The feature flags file as a dict (cached until its mtime changes; {} when absent or unreadable)."""
    try:
        mtime = os.stat(FLAGS_PATH).st_mtime_ns
    except OSError:
        return {}
    if mtime != _FLAGS["mtime"]:
        try:
            with open(FLAGS_PATH, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return _FLAGS["flags"]
        _FLAGS.update(mtime=mtime, flags=data if isinstance(data, dict) else {})
    return _FLAGS["flags"]


def pool():
    global POOL
    if POOL is None:
        POOL = psycopg2.pool.ThreadedConnectionPool(
            1, int(os.environ.get("DS_DB_POOL", "10")),
            host=os.environ.get("DS_DB_HOST", "127.0.0.1"),
            port=int(os.environ.get("DS_DB_PORT", "5432")),
            dbname=os.environ.get("DS_DB_NAME", "dealerscope"),
            user=os.environ.get("DS_DB_USER", "dealerscope"),
            password=os.environ.get("DS_DB_PASSWORD", ""),
            connect_timeout=3,
            application_name="dealerscope-api",
        )
    return POOL


def query(sql, params=()):
    """Run a read-only query on a pooled connection. A pooled connection that PostgreSQL dropped (a restart, a
    failover) fails with OperationalError/InterfaceError: it is closed and the query tried once more on a fresh one,
    as a pool with a pre-ping does - so a database restart costs no request, while a database that is down still
    fails it."""
    p = pool()
    for attempt in (1, 2):
        conn = p.getconn()
        broken = False
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                cols = [c.name for c in cur.description]
                rows = [dict(zip(cols, r)) for r in cur.fetchall()]
            conn.rollback()
            return rows
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            broken = True
            if attempt == 2:
                raise
        except psycopg2.Error:
            broken = True
            raise
        finally:
            p.putconn(conn, close=broken)
    return []  # not reached


class Handler(BaseHTTPRequestHandler):
    server_version = "dealerscope-api"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    def _respond(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-ID", self.request_id)
        self.end_headers()
        self.wfile.write(data)
        return status, len(data)

    def _send(self, status, body):
        return self._respond(status, json.dumps(body, default=str).encode(), "application/json")

    def _send_html(self, status, page):
        return self._respond(status, page.encode(), "text/html; charset=utf-8")

    def do_GET(self):  # noqa: N802 - http.server API
        started = time.monotonic()
        self.request_id = self.headers.get("X-Request-ID") or uuid.uuid4().hex
        url = urlparse(self.path)
        try:
            status, size = self.route(url)
        except psycopg2.Error as exc:
            status, size = self._send(503, {"error": "database unavailable", "detail": exc.__class__.__name__})
        except Exception as exc:  # pylint: disable=broad-except
            status, size = self._send(500, {"error": "internal error", "detail": exc.__class__.__name__})
        self.access_log(url.path, status, size, started)

    def route(self, url):
        fault = self.fault(url.path)
        if fault.get("delay_ms"):
            time.sleep(min(float(fault["delay_ms"]), 10000) / 1000.0)
        if fault.get("status"):
            return self._send(int(fault["status"]), {"error": "injected fault"})
        if url.path == "/healthz":
            query("SELECT 1 AS ok")
            return self._send(200, {"status": "ok", "version": VERSION})
        if url.path == "/version":
            active = sorted(name for name, value in flags().items() if value is True)
            return self._send(200, {"version": VERSION, "host": os.uname().nodename, "colour": COLOUR or None,
                                    "flags": active})
        if url.path == "/dashboard":
            rows = query("SELECT make, count(*) AS n, round(avg(price)) AS avg_price, round(avg(price_score), 1) AS score "
                         "FROM vehicles GROUP BY make ORDER BY make")
            cells = "".join("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
                html.escape(str(r["make"])), r["n"], r["avg_price"], r["score"]) for r in rows)
            page = ("<!doctype html><html><head><meta charset='utf-8'><title>DealerScope</title></head><body>"
                    "<h1>DealerScope inventory</h1><table><tr><th>Make</th><th>Vehicles</th><th>Avg price</th>"
                    "<th>Avg score</th></tr>%s</table><p>release %s</p></body></html>") % (cells, html.escape(VERSION))
            return self._send_html(200, page)
        if url.path == "/api/vehicles":
            qs = parse_qs(url.query)
            try:
                limit = max(1, min(500, int(qs.get("limit", ["50"])[0])))
            except ValueError:
                return self._send(400, {"error": "limit must be an integer"})
            extra = ", enhanced_score" if flags().get("enhanced_score") is True else ""
            rows = query(
                "SELECT id, vin, make, model, year, price, price_score, market_factor%s "
                "FROM vehicles ORDER BY id LIMIT %%s" % extra, (limit,))
            return self._send(200, {"count": len(rows), "vehicles": rows})
        return self._send(404, {"error": "not found"})

    @staticmethod
    def fault(path):
        try:
            with open(FAULTS_PATH, encoding="utf-8") as handle:
                fault = json.load(handle)
        except (OSError, ValueError):
            return {}
        if fault.get("paths") and path not in fault["paths"]:
            return {}
        return fault

    def access_log(self, path, status, size, started):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "correlation_id": self.request_id,
            "remote": self.headers.get("X-Forwarded-For", self.client_address[0]),
            "method": self.command,
            "path": path,
            "status": status,
            "bytes": size,
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
            "host": os.uname().nodename,
        }
        try:
            with open(LOG_PATH, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
        except OSError as exc:
            sys.stderr.write("access log unwritable: %s\n" % exc)


def main():
    global LIBDEMO
    LIBDEMO = map_library(LIBDEMO_PATH)
    bind = os.environ.get("DS_BIND", "0.0.0.0")
    port = int(os.environ.get("DS_PORT", "8000"))
    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
