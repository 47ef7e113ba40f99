"""Helpers for the deploy and deploy_faults scenarios' verifiers (lb1, app1, app2 of the lab stack)."""
import contextlib
import json
import os
import ssl
import threading
import time
import urllib.request

from helpers.load import Load
from helpers.runbook import EPHEMERAL, on, run_playbook

LB_URL = "https://127.0.0.1:18443"
CA = str(EPHEMERAL / "lab" / "ca" / "ca.pem")
UPSTREAM_FILE = "/etc/nginx/sites-available/dealerscope.conf"
APP_HOSTS = ("app1", "app2")


def artifact(version):
    return os.path.join(str(EPHEMERAL / "artifacts"), version)


def get(path, timeout=5):
    """GET through lb1 (TLS verified against the lab CA): (status, parsed JSON or None)."""
    context = ssl.create_default_context(cafile=CA)
    try:
        with urllib.request.urlopen(LB_URL + path, timeout=timeout, context=context) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def versions_through_lb(count=20):
    """The set of versions /version reports through lb1 over `count` requests."""
    seen = set()
    for dummy in range(count):
        status, body = get("/version")
        assert status == 200, status
        seen.add(body["version"])
    return seen


def upstream():
    """The server lines of lb1's upstream, stripped."""
    text = on("lb1", "sed -n '/^upstream dealerscope_api/,/^}/p' %s" % UPSTREAM_FILE)
    return [line.strip() for line in text.splitlines() if line.strip().startswith("server ")]


def digest(host, *paths):
    """sha256 of files (and of a directory listing) on a host: a fingerprint that changes when anything does."""
    return on(host, "for p in %s; do if [ -d \"$p\" ]; then ls -la --time-style=+%%s \"$p\"; else sha256sum \"$p\" 2>&1; fi; done"
              % " ".join(paths))


def layout(host):
    """{current, blue, green, releases, bad} of an app host, from the file system."""
    text = on(host, "cd /opt/dealerscope && echo current=$(readlink current); for c in blue green; do echo $c=$(readlink colours/$c); done; "
                    "echo releases=$(ls releases | tr '\\n' ' '); echo bad=$(ls releases/*/.dealerscope-bad 2>/dev/null | cut -d/ -f2 | tr '\\n' ' ')")
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {
        "current": os.path.basename(values["current"]) or None,
        "blue": os.path.basename(values["blue"]) or None,
        "green": os.path.basename(values["green"]) or None,
        "releases": values["releases"].split(),
        "bad": values["bad"].split(),
    }


def deploy(version, *args, artifact_path=None, **extra):
    """Run dealerscope.ops.deploy for `version` (its artifact unless given) with extra vars; the process result."""
    extra_vars = {"deploy_version": version, "deploy_artifact": artifact_path or artifact(version)}
    extra_vars.update(extra)
    return run_playbook("dealerscope.ops.deploy", *args, extra_vars=extra_vars, timeout=400)


def rollback(*args, **extra):
    return run_playbook("dealerscope.ops.rollback", *args, extra_vars=extra, timeout=300)


@contextlib.contextmanager
def load(rate=20, seconds=240):
    """A bounded load through lb1 for the duration of the block; yields the Load (summary() after the block)."""
    runner = Load(LB_URL + "/api/vehicles?limit=5", rate=rate, max_seconds=seconds, ca_path=CA, id_prefix="deploy-test")
    with runner:
        yield runner


class VersionWatch:
    """Polls /version through lb1 every `interval` s in a thread; records (monotonic time, version or status)."""

    def __init__(self, interval=0.05, max_seconds=240):
        self.interval = interval
        self.max_seconds = max_seconds
        self.seen = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        started = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            try:
                status, body = get("/version", timeout=3)
                self.seen.append((time.monotonic(), body["version"] if status == 200 and body else "HTTP %d" % status))
            except OSError as exc:
                self.seen.append((time.monotonic(), "error %s" % exc))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def switch_window(self, old, new):
        """Seconds between the first answer from `new` and the last answer from `old` after it (0 when clean)."""
        first_new = next(t for t, v in self.seen if v == new)
        last_old = max([t for t, v in self.seen if v == old and t >= first_new] or [first_new])
        return last_old - first_new
