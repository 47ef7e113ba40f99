"""The daily runbook on a real stack: healthy, then one injected fault at a time.

Each fault test breaks something for real on a scenario host, runs dealerscope.ops.daily again,
asserts on the report it wrote (and the notifications the lab receiver got), then heals the host.
"""
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.molecule_ssh import ssh  # noqa: E402
from helpers.runbook import (  # noqa: E402
    EPHEMERAL, PROJECT, RECEIVER, checks_by, daily, latest_report, on, receiver_clear, receiver_messages, run_playbook,
)

DAILY = "dealerscope.ops.daily"
HOSTS = ("lb1", "app1", "app2", "db1", "db2")
PAGER_KEY = "rk-lab-daily-0001"


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
    assert report["meta"]["backup_catalog"] is False  # no backups here: molecule/dr proves the backup rows
    assert checks_by(report, "db1")["replication_lag"]["status"] == "ok"


def test_database_hosts_are_judged_by_their_cluster_units():
    """The role's default db: [postgresql.service] (the lab does not override it) is judged by each cluster's own unit."""
    lab = yaml.safe_load((PROJECT / "inventories" / "lab" / "group_vars" / "all" / "daily.yml").read_text())
    assert "daily_expected_services" not in lab, lab
    report, base = latest_report()
    for host in ("db1", "db2"):
        version = on(host, "ls /etc/postgresql").split()[0]
        checks = checks_by(report, host)
        check = checks["service:postgresql@%s-main.service" % version]
        assert check["status"] == "ok" and check["details"]["expanded_from"] == "postgresql.service", (host, check)
        assert "service:postgresql.service" not in checks, (host, checks["service:postgresql.service"])


def test_first_run_records_the_account_baseline_instead_of_warning():
    # converge is the fleet's first daily run (prepare has no cursor run, --check writes no cursor): no "since",
    # so the accounts provisioning created are the baseline, reported ok - not new_accounts warnings
    report, base = latest_report()
    for host in HOSTS:
        check = checks_by(report, host)["new_accounts"]
        assert check["status"] == "ok" and check["message"].startswith("first run: baseline of "), (host, check)
        assert check["details"]["baseline"] > 10, check


def test_report_validates_against_the_documented_schema():
    import jsonschema
    report, base = latest_report()
    schema = json.loads((PROJECT / "docs" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert (base / "report.md").exists() and (base / "report.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_module_executions_per_host_stay_within_budget():
    report, base = latest_report()
    executions = report["meta"]["module_executions"]
    # one host_health per host (its log scan included), pg_health on db hosts, the direct http_probe on app hosts (this
    # scenario has no backups: no backup_catalog on the primary, see molecule.yml)
    assert executions == {"db1": 2, "db2": 2, "app1": 2, "app2": 2, "lb1": 1}, executions


MARKER = "/run/ds-daily-check-marker"


def host_state(host):
    """What a daily run could change on a host: its log cursor (and anything else under /var/lib/dealerscope-ops),
    the updates cache, and any file written under the usual places since the marker."""
    return on(host, "find /var/lib/dealerscope-ops /var/cache/dealerscope-ops -type f -exec sha256sum {} + 2>/dev/null | sort; echo ---; "
                    "find /etc /var/lib/dealerscope-ops /var/cache/dealerscope-ops /root /home /usr/local /opt -xdev -type f -newer %s 2>/dev/null "
                    "| grep -v '^/root/.ansible/' | sort; true" % MARKER)


def controller_state():
    """The notification state (dedupe ledger, digest queues, retry queue) and every report file and link."""
    state = {}
    for base in (EPHEMERAL / "lab" / "notify", EPHEMERAL / "reports"):
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_symlink():
                state[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def changed_hosts(output, task, role="daily"):
    """Hosts a task reported changed on (`changed: [app1]`), from the playbook output."""
    section = output.split("TASK [dealerscope.ops.%s : %s]" % (role, task), 1)[1].split("\nTASK [", 1)[0]
    return sorted(set(re.findall(r"^changed: \[([^\]\s]+)", section, re.M)))


def test_check_mode_changes_nothing_anywhere():
    for host in HOSTS:
        # no updates cache: a check run that wrongly wrote one would leave a new file
        on(host, "rm -f /var/cache/dealerscope-ops/updates.json; touch %s" % MARKER)
    before = dict((host, host_state(host)) for host in HOSTS)
    assert all("daily-log-cursor.json" in state for state in before.values()), before  # converge wrote the cursors
    controller_before, sent_before = controller_state(), len(receiver_messages())
    assert any(path.endswith("sent.json") for path in controller_before)
    result = run_playbook(DAILY, "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert dict((host, host_state(host)) for host in HOSTS) == before
    assert controller_state() == controller_before
    assert len(receiver_messages()) == sent_before
    assert "(check mode: not written; retention would delete" in result.stdout
    # check mode predicts what a real run would report: new log lines since converge (this run's own SSH
    # sessions, its probes in the access logs) would move every cursor; the status summary would be posted
    assert changed_hosts(result.stdout, "Host health and the logs since the previous run (one module execution)") == sorted(HOSTS), result.stdout[-3000:]
    assert changed_hosts(result.stdout, "Runbook ending - report, notifications and outcome (controller)", "runbook_end"), result.stdout[-3000:]


def closed_url(path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d%s" % (port, path)


def delivery_vars(pager_url):
    """The lab's channels with the pager at `pager_url` (with its routing key), and security events paged: a
    new account is a warning (the run stays green) that pages - so only the delivery can make the run fail."""
    return {
        "runbook_end_severity_map": {"security_event": "critical"},
        "daily_notify_channels": [
            {"name": "slack", "kind": "slack", "url": RECEIVER + "/slack", "severities": ["critical", "high"], "team": True},
            {"name": "pager", "kind": "pager", "url": pager_url, "routing_key": PAGER_KEY, "severities": ["critical"]},
        ],
    }


def test_dead_pager_fails_the_run_and_the_page_is_retried_next_run():
    receiver_clear()
    on("db2", "useradd --no-create-home --shell /usr/sbin/nologin dsdeliverytest")
    try:
        result, report, base = daily(extra_vars=delivery_vars(closed_url("/pager")))
    finally:
        on("db2", "userdel dsdeliverytest")
    assert checks_by(report, "db2")["new_accounts"]["status"] == "warning"
    assert "dsdeliverytest" in checks_by(report, "db2")["new_accounts"]["details"]["users"]
    # the page did not go out: the report says so, critical, and that alone fails the run
    row = report["hosts"]["alert delivery"]
    assert row["status"] == "critical", row
    check = row["checks"][0]
    assert check["name"] == "notify:delivery" and check["alert"] == "notification_failure"
    assert [f["channel"] for f in check["details"]["failed"]] == ["pager"]
    assert check["details"]["retried_next_run"] == ["security_event|db2|new_accounts"]
    assert [(p["host"], p["name"]) for p in report["problems"] if p["status"] == "critical"] == [("alert delivery", "notify:delivery")]
    assert result.returncode != 0, result.stdout[-3000:]
    assert "alert delivery failed" in result.stdout
    messages = receiver_messages()
    assert not [m for m in messages if m["path"] == "/pager"]
    assert any(m["path"] == "/slack" and "db2 new_accounts" in json.dumps(m["body"]) for m in messages)  # Slack did get it
    assert PAGER_KEY not in result.stdout and PAGER_KEY not in json.dumps(report)

    # the pager is back: the next run pages, although the event (in the previous run's window) is no longer raised
    result, report, base = daily(extra_vars=delivery_vars(RECEIVER + "/pager"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert checks_by(report, "db2")["new_accounts"]["status"] == "ok"
    row = report["hosts"]["alert delivery"]
    assert row["status"] == "ok" and row["checks"][0]["details"]["delivered_late"] == ["security_event|db2|new_accounts"], row
    pages = [m["body"] for m in receiver_messages() if m["path"] == "/pager"]
    assert len(pages) == 1, pages
    assert pages[0]["dedup_key"] == "security_event|db2|new_accounts" and pages[0]["routing_key"] == PAGER_KEY
    assert "undelivered since" in pages[0]["payload"]["summary"] and "dsdeliverytest" in pages[0]["payload"]["summary"]


def test_api_down_is_critical_and_pages():
    receiver_clear()
    on("app2", "systemctl stop dealerscope-api")
    try:
        result, report, base = daily()
        assert result.returncode != 0, "a critical check must fail the run"
        check = checks_by(report, "app2")["service:dealerscope-api.service"]
        assert check["status"] == "critical" and check["alert"] == "service_down"
        # the sick host fails, the healthy ones do not (AWX's host summary, "relaunch on failed hosts")
        recap = dict(re.findall(r"^(\S+)\s+: ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)", result.stdout, re.M))
        assert recap["app2"] == "1" and recap["app1"] == "0" and recap["db1"] == "0", recap
        assert "fatal: [app2]: FAILED!" in result.stdout and "daily: app2 CRITICAL - " in result.stdout, result.stdout[-3000:]
        delivered = json.dumps(receiver_messages())
        assert "/pager" in delivered and "service_down" in delivered and "app2" in delivered
    finally:
        on("app2", "systemctl start dealerscope-api")


# Booted, clock synchronised (chronyd asked for a burst, as lab/provision.yml does), the standby streaming again.
READY = ("timeout 90 systemctl is-system-running --wait >/dev/null; "
         "for i in 1 2 3; do chronyc refresh >/dev/null 2>&1; chronyc burst 4/4 >/dev/null 2>&1; chronyc waitsync 20 0 0 0.5 >/dev/null && break; done; "
         "chronyc waitsync 1 0 0 0.5 >/dev/null || { echo 'clock not synchronised'; exit 1; }; "
         "for i in $(seq 60); do [ \"$(runuser -u postgres -- psql -XAtc 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)\" = streaming ]"
         " && exit 0; sleep 1; done; echo 'the standby does not stream'; exit 1")


def wait_ready(host, timeout=240):
    """A restarted host is back as the tests after this one judge it (test_runner.py runs daily jobs next): a daily run
    that reached it while its PostgreSQL was still starting found it critical."""
    deadline, seen = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        try:
            result = ssh(host, READY, timeout=200)
        except subprocess.TimeoutExpired:
            seen = "timed out"
            continue
        if result.returncode == 0:
            return
        seen = (result.stdout + result.stderr).strip()[-300:]
        time.sleep(2)
    raise AssertionError("%s is not back after %d s: %s" % (host, timeout, seen))


def test_unreachable_host_is_a_critical_result_not_a_crash():
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
        wait_ready("db2")
