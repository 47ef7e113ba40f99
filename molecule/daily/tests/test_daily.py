"""The daily runbook on a real stack: healthy, then one injected fault at a time.

Each fault test breaks something for real on a scenario host, runs dealerscope.ops.daily again,
asserts on the report it wrote (and the notifications the lab receiver got), then heals the host.
"""
import json
import os
import sys


sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.runbook import PROJECT, checks_by, daily, latest_report, on, receiver_clear, receiver_messages, run_playbook  # noqa: E402

DAILY = "dealerscope.ops.daily"


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


def test_unreachable_host_is_a_critical_result_not_a_crash():
    import subprocess
    name = "mol-daily-db2"
    env = dict(os.environ)  # CONTAINERS_CONF: the per-user lab configuration (tests/helpers/lab_conf.py)
    subprocess.run(["podman", "stop", "-t", "2", name], check=True, env=env, capture_output=True)
    try:
        result, report, base = daily()
        assert result.returncode != 0
        assert report["hosts"]["db2"]["status"] == "critical"
        assert any(p["host"] == "db2" and p["alert"] == "service_down" for p in report["problems"])
    finally:
        subprocess.run(["podman", "start", name], check=False, env=env, capture_output=True)
