"""The daily runbook on a real stack: healthy, then one injected fault at a time.

Each fault test breaks something for real on a scenario host, runs dealerscope.ops.daily again,
asserts on the report it wrote (and the notifications the lab receiver got), then heals the host.
"""
import json
import os
import pathlib
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.molecule_ssh import ssh  # noqa: E402
from helpers.runbook import PROJECT, checks_by, latest_report, receiver_clear, receiver_messages, run_playbook  # noqa: E402

DAILY = "dealerscope.ops.daily"
EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def on(host, command):
    result = ssh(host, command)
    assert result.returncode == 0, "%s: %s failed: %s" % (host, command, result.stderr)
    return result.stdout


def daily(*args, **kwargs):
    result = run_playbook(DAILY, *args, **kwargs)
    report, base = latest_report()
    return result, report, base


def test_healthy_fleet_is_all_ok():
    report, base = latest_report()  # written by converge
    problems = [(p["host"], p["name"], p["message"]) for p in report["problems"]]
    assert report["status"] == "ok", problems
    assert set(report["hosts"]) >= {"lb1", "app1", "app2", "db1", "db2"}
    assert report["summary"]["critical"] == 0 and report["summary"]["warning"] == 0
    for host in ("app1", "app2"):
        names = checks_by(report, host)
        assert names["service:dealerscope-api.service"]["status"] == "ok"
        assert names["listening:8000"]["status"] == "ok"
    assert checks_by(report, "db1")["backup_age"]["status"] == "ok"
    assert checks_by(report, "db1")["replication_lag"]["status"] == "ok"


def test_report_validates_against_the_documented_schema():
    import jsonschema
    report, base = latest_report()
    schema = json.loads((PROJECT / "docs" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert (base / "report.md").exists() and (base / "report.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_module_executions_per_host_stay_within_budget():
    report, base = latest_report()
    executions = report["meta"]["module_executions"]
    assert executions and max(executions.values()) <= 6, executions


def test_check_mode_runs_clean():
    result = run_playbook(DAILY, "--check")
    assert result.returncode == 0, result.stdout[-3000:]


def test_api_down_is_critical_and_pages():
    receiver_clear()
    on("app2", "systemctl stop dealerscope-api")
    try:
        result, report, base = daily()
        assert result.returncode != 0, "a critical check must fail the run"
        check = checks_by(report, "app2")["service:dealerscope-api.service"]
        assert check["status"] == "critical" and check["alert"] == "service_down"
        delivered = json.dumps(receiver_messages())
        assert "/pager" in delivered and "service_down" in delivered and "app2" in delivered
    finally:
        on("app2", "systemctl start dealerscope-api")


def test_slow_endpoint_is_high_latency():
    fault = json.dumps({"delay_ms": 700, "paths": ["/api/vehicles"]})
    for host in ("app1", "app2"):
        on(host, "echo '%s' > /etc/dealerscope/faults.json" % fault)
    try:
        result, report, base = daily()
        latency = [c for c in report["problems"] if c["name"].endswith("latency_p95")]
        assert latency and all(c["alert"] == "high_latency" for c in latency), report["problems"]
    finally:
        for host in ("app1", "app2"):
            on(host, "rm -f /etc/dealerscope/faults.json")


def test_5xx_is_high_error_rate():
    fault = json.dumps({"status": 500, "paths": ["/api/vehicles"]})
    for host in ("app1", "app2"):
        on(host, "echo '%s' > /etc/dealerscope/faults.json" % fault)
    try:
        result, report, base = daily()
        assert result.returncode != 0
        errors = [c for c in report["problems"] if c["alert"] == "high_error_rate"]
        assert errors and all(c["status"] == "critical" for c in errors)
    finally:
        for host in ("app1", "app2"):
            on(host, "rm -f /etc/dealerscope/faults.json")


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


def test_unreachable_host_is_a_critical_result_not_a_crash():
    import subprocess
    name = "mol-daily-db2"
    env = dict(os.environ, CONTAINERS_CONF=str(PROJECT / "lab" / "containers.conf"))
    subprocess.run(["podman", "stop", "-t", "2", name], check=True, env=env, capture_output=True)
    try:
        result, report, base = daily()
        assert result.returncode != 0
        assert report["hosts"]["db2"]["status"] == "critical"
        assert any(p["host"] == "db2" and p["alert"] == "service_down" for p in report["problems"])
    finally:
        subprocess.run(["podman", "start", name], check=False, env=env, capture_output=True)
