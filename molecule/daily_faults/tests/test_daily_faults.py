"""The daily runbook on a real stack with one injected fault at a time (the rest is in molecule/daily).

Each fault test breaks something for real on a scenario host, runs dealerscope.ops.daily again,
asserts on the report it wrote (and the notifications the lab receiver got), then heals the host.
"""
import json
import os
import sys
import time


sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.runbook import app_fault, checks_by, daily, on  # noqa: E402
from helpers.molecule_ssh import ssh  # noqa: E402

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def test_slow_endpoint_is_high_latency():
    with app_fault({"delay_ms": 700, "paths": ["/api/vehicles"]}):
        result, report, base = daily()
        latency = [c for c in report["problems"] if c["name"].endswith("latency_p95")]
        assert latency and all(c["alert"] == "high_latency" for c in latency), report["problems"]


def test_5xx_is_high_error_rate():
    with app_fault({"status": 500, "paths": ["/api/vehicles"]}):
        result, report, base = daily()
        assert result.returncode != 0
        errors = [c for c in report["problems"] if c["alert"] == "high_error_rate"]
        assert errors and all(c["status"] == "critical" for c in errors)


def test_full_filesystem_is_resource_exhaustion():
    on("app1", "fallocate -l $(( $(df --output=avail -B1 /srv/data | tail -1) * 96 / 100 )) /srv/data/fill")
    try:
        result, report, base = daily()
        check = checks_by(report, "app1")["disk:/srv/data"]
        assert check["status"] == "critical" and check["alert"] == "resource_exhaustion", check
    finally:
        on("app1", "rm -f /srv/data/fill")


def test_ssh_failures_are_reported_with_their_source():
    app1_ip = on("app1", "hostname -I").split()[0]
    on("app1", "for i in $(seq 12); do ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
               "-o ConnectTimeout=3 nosuchuser@db1 true 2>/dev/null; done; true")
    result, report, base = daily()
    check = checks_by(report, "db1")["ssh_auth_failures"]
    assert check["value"] >= 12 and check["status"] in ("warning", "critical")
    assert app1_ip in json.dumps(check.get("details", {}))
    # the cursor moved: the same failures are not counted again
    result, report, base = daily()
    assert checks_by(report, "db1")["ssh_auth_failures"]["value"] == 0


def test_pii_in_app_logs_is_counted_and_masked():
    line = json.dumps({"ts": "2026-01-01T00:00:00Z", "status": 200, "path": "/api/vehicles", "note": "contact %s card %s" % (EMAIL, CARD)})
    on("app1", "echo '%s' >> /var/log/dealerscope/access.log" % line)
    result, report, base = daily()
    check = checks_by(report, "app1")["pii_in_logs"]
    assert check["value"] >= 1 and check["status"] != "ok"
    for name in ("report.json", "report.md", "report.html"):
        text = (base / name).read_text()
        assert EMAIL not in text and CARD not in text and CARD.replace(" ", "") not in text, name


def _api_healthy(host):
    """The sample API's /healthz answers 200 (it runs SELECT 1 against the primary)."""
    probe = "python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)\""
    return ssh(host, probe).returncode == 0


def test_stopped_cluster_is_critical_although_the_wrapper_is_active():
    """The role's default db: [postgresql.service] is judged by the cluster's own unit (the lab does not override it)."""
    version = on("db1", "ls /etc/postgresql").split()[0]
    unit = "postgresql@%s-main.service" % version
    on("db1", "pg_ctlcluster %s main stop" % version)
    try:
        assert on("db1", "systemctl is-active %s || true" % unit).strip() in ("inactive", "failed")
        assert on("db1", "systemctl is-active postgresql.service || true").strip() == "active"  # the wrapper stays active
        result, report, base = daily()
        assert result.returncode != 0, "a critical check must fail the run"
        checks = checks_by(report, "db1")
        check = checks["service:%s" % unit]
        assert check["status"] == "critical" and check["alert"] == "service_down", check
        assert check["details"]["expanded_from"] == "postgresql.service", check
        assert "service:postgresql.service" not in checks, checks["service:postgresql.service"]
    finally:
        on("db1", "pg_ctlcluster %s main start" % version)
        deadline = time.monotonic() + 60
        while not all(_api_healthy(host) for host in ("app1", "app2")):
            assert time.monotonic() < deadline, "the API's /healthz did not answer within 60 s of restarting the cluster"
            time.sleep(1)
