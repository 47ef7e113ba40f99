"""Helpers for the real load-balancer tests of dealerscope.ops.lb_member (haproxy, nginx): tiny HTTP backends that
answer their own name, plain HTTP requests, and running the module for real through ``ansible``."""
import http.client
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
SLOW_S = 2.0


def binary(name):
    """Path of a daemon binary (``/usr/sbin`` is not on every PATH), or None."""
    return shutil.which(name) or next((p for p in ("/usr/sbin/" + name, "/usr/local/sbin/" + name) if os.access(p, os.X_OK)), None)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def do_GET(self):
        backend = self.server.backend
        if self.path.startswith("/slow"):
            # Hold the request until the test's gate opens (the drain was applied), then SLOW_S more seconds:
            # a request in flight across the drain, whatever the start-up time of the module run.
            backend.slow_started.set()
            deadline = time.monotonic() + 20
            while not backend.gate() and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(SLOW_S)
        body = backend.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Quiet: the load balancer closing idle keep-alive connections at its exit is no error here."""


class Backend:
    """An HTTP server on 127.0.0.1 answering its own name; ``/slow`` waits for ``gate()`` then SLOW_S seconds."""

    def __init__(self, name):
        self.name = name
        self.gate = lambda: True
        self.slow_started = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.backend = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def get(port, path="/", timeout=25):
    """One request on a new connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def probe(address, port, path="/", timeout=5):
    """GET http://<address>:<port><path> directly (no proxy), the way the patching role probes a pool member's health from
    the load balancer host: (status, body)."""
    host = "[%s]" % address if ":" in address else address
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://%s:%d%s" % (host, port, path), timeout=timeout) as response:
        return response.status, response.read().decode()


def answers(port, count=20):
    """Bodies of ``count`` sequential requests (every one must be a 200)."""
    bodies = []
    for _index in range(count):
        status, body = get(port, timeout=5)
        assert status == 200, (status, body)
        bodies.append(body)
    return bodies


class InFlight:
    """A slow request sent in a thread; ``result`` is (status, body) or the exception."""

    def __init__(self, port, path="/slow"):
        self.result = None
        self.finished_at = None
        self.thread = threading.Thread(target=self._run, args=(port, path), daemon=True)
        self.thread.start()

    def _run(self, port, path):
        try:
            self.result = get(port, path)
        except Exception as exc:  # pylint: disable=broad-except
            self.result = exc
        self.finished_at = time.monotonic()

    def join(self, timeout=30):
        self.thread.join(timeout)
        return self.result


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def run_module(args, check=False, timeout=90):
    """Run dealerscope.ops.lb_member on localhost through ``ansible`` (the collection as users get it); return its result."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    command = [str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=%s" % sys.executable,
               "-m", "dealerscope.ops.lb_member", "-a", json.dumps(args)]
    if check:
        command.append("--check")
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        output = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("ansible printed no JSON (rc %d): %s %s" % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def stop_process(proc):
    """Stop a process this test started (by its own handle), waiting for it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
