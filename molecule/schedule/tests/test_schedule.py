"""dealerscope.ops.schedule on the runner host app1: the TLS runbook every day through ansible-runner.

Order matters (pytest runs a file top to bottom): the converged timer is checked,
a run is started as the timer starts it, then a run stopped at its time limit (alerted once, re-armed by the next
completed run), a blackout date, the configuration's idempotence and check mode, unlisted timers and a refused
calendar. Every run here is a real ansible-runner run on app1 against the lab hosts over SSH.
"""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.molecule_ssh import ssh  # noqa: E402
from helpers.runbook import changed_tasks, on, run_playbook  # noqa: E402

testinfra_hosts = ["localhost"]
RUNNER = "app1"
RUNS = "/var/lib/dealerscope-ops/runner/runbooks/tls"
CONFIG = "/etc/dealerscope-ops/schedule/tls.json"
RECEIVER = "http://10.213.48.1:8766"


def schedule(*args, **extra_vars):
    """dealerscope.ops.schedule against the scenario's inventory (app1's host_vars hold the runbooks)."""
    return run_playbook("dealerscope.ops.schedule", *args, extra_vars=extra_vars, timeout=300)


def run_now():
    """Start the runbook's service as its timer does and wait for it: (exit status, last.json)."""
    started = time.monotonic()
    result = ssh(RUNNER, "systemctl start dealerscope-runbook@tls.service", timeout=600)
    last = json.loads(on(RUNNER, "cat %s/last.json" % RUNS))
    last["wall_s"] = round(time.monotonic() - started, 1)
    return result.returncode, last


def messages(path):
    with urllib.request.urlopen(RECEIVER + "/messages", timeout=5) as resp:
        return [m for m in json.loads(resp.read()) if m["path"] == path]


def test_the_timer_runs_the_tls_runbook_every_day_at_0630():
    shown = on(RUNNER, "systemctl show dealerscope-runbook-tls.timer -p ActiveState -p UnitFileState -p TimersCalendar"
                       " -p NextElapseUSecRealtime -p Unit")
    state = dict(line.split("=", 1) for line in shown.strip().splitlines())
    assert state["ActiveState"] == "active" and state["UnitFileState"] == "enabled", state
    assert "OnCalendar=*-*-* 06:30:00" in state["TimersCalendar"] and state["Unit"] == "dealerscope-runbook@tls.service", state
    assert " 06:30:00 " in state["NextElapseUSecRealtime"], state
    # the collection the runs use is the one built from this checkout, installed on the runner host
    manifest = json.loads(on(RUNNER, "cat /var/lib/dealerscope-ops/runner/collections/ansible_collections/dealerscope/ops/MANIFEST.json"))
    assert manifest["collection_info"]["name"] == "ops"
    assert on(RUNNER, "stat -c %a /var/lib/dealerscope-ops/runner/.ssh/id_runner /etc/dealerscope-ops/schedule/tls.json").split() == ["600", "600"]


def test_a_run_started_as_the_timer_starts_it_completes_with_its_report():
    rc, last = run_now()
    assert rc == 0, last
    assert last["completed"] is True and last["status"] == "successful" and last["rc"] == 0, last
    assert last["runbook_status"] == "ok", last
    report = on(RUNNER, "cat %s" % last["report_url"].replace("report.html", "report.json"))
    assert json.loads(report)["runbook"] == "tls"
    assert on(RUNNER, "cat %s/status" % last["artifacts"]).strip() == "successful"
    # no secret in any artifact: the private key's body and the channels' URLs stay in their 0600 files
    key_line = on(RUNNER, "sed -n 2p /var/lib/dealerscope-ops/runner/.ssh/id_runner").strip()
    leaked = ssh(RUNNER, "grep -rlF -e '%s' -e 8766/schedule %s" % (key_line, last["artifacts"]))
    assert leaked.returncode == 1 and leaked.stdout == "", leaked.stdout
    assert ssh(RUNNER, "systemctl is-failed dealerscope-runbook@tls.service").stdout.strip() != "failed"


def test_a_run_stopped_at_its_time_limit_is_alerted_once_and_a_completed_run_rearms_it():
    on(RUNNER, "python3 - <<'EOF'\nimport json\np='%s'\nc=json.load(open(p))\nc['timeout_s']=1\njson.dump(c, open(p,'w'))\nEOF" % CONFIG)
    before = len(messages("/schedule"))
    rc, last = run_now()
    assert rc != 0 and last["completed"] is False and last["status"] == "timeout", last
    assert "stopped after its time limit of 1 s" in last["reason"], last
    assert ssh(RUNNER, "systemctl is-failed dealerscope-runbook@tls.service").stdout.strip() == "failed"
    alerts = messages("/schedule")[before:]
    assert len(alerts) == 1 and "runbook tls (dealerscope.ops.tls) stopped after its time limit of 1 s" in alerts[0]["body"]["text"], alerts
    # the second incomplete run within the repeat window pages nobody again
    rc, last = run_now()
    assert rc != 0 and last["completed"] is False, last
    assert len(messages("/schedule")) == before + 1
    ledger = json.loads(on(RUNNER, "cat %s/state/notify/sent.json" % RUNS))
    assert any("runbook_incomplete" in key for key in ledger), ledger
    # the time limit back as configured, and the next completed run re-arms the alert
    on(RUNNER, "python3 - <<'EOF'\nimport json\np='%s'\nc=json.load(open(p))\nc['timeout_s']=600\njson.dump(c, open(p,'w'))\nEOF" % CONFIG)
    rc, last = run_now()
    assert rc == 0 and last["completed"] is True, last
    ledger = json.loads(on(RUNNER, "cat %s/state/notify/sent.json" % RUNS))
    assert not any("runbook_incomplete" in key for key in ledger), ledger


def test_a_blackout_date_skips_the_run_unlisted_timers_go_only_when_asked_and_check_mode_is_exact():
    today = on(RUNNER, "date +%F").strip()
    artifacts = on(RUNNER, "ls %s/artifacts" % RUNS).split()
    on(RUNNER, "printf '[Timer]\\nOnCalendar=daily\\nUnit=dealerscope-runbook@old.service\\n[Install]\\nWantedBy=timers.target\\n'"
               " > /etc/systemd/system/dealerscope-runbook-old.timer && systemctl daemon-reload && systemctl enable --now dealerscope-runbook-old.timer")
    check = schedule("--check", "--diff", schedule_blackout=[today], schedule_remove_unlisted="false")
    real = schedule(schedule_blackout=[today], schedule_remove_unlisted="false")
    assert check.returncode == 0 and real.returncode == 0, (check.stdout[-3000:], real.stdout[-3000:])
    # the configuration's edit (its drift from the test above too) is the only change, predicted exactly
    assert changed_tasks(check.stdout) == changed_tasks(real.stdout) == [
        ("dealerscope.ops.schedule : Runbooks - configuration of the run wrapper (0600, holds the channels' URLs)", RUNNER)], real.stdout[-3000:]
    assert on(RUNNER, "systemctl is-active dealerscope-runbook-old.timer || true").strip() == "active"
    rc, last = run_now()
    assert rc == 0 and last["status"] == "skipped" and last["reason"] == "blackout %s..%s" % (today, today), last
    assert on(RUNNER, "ls %s/artifacts" % RUNS).split() == artifacts, "a run skipped for a blackout starts nothing"
    removed = schedule(schedule_remove_unlisted="true")
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert on(RUNNER, "test -e /etc/systemd/system/dealerscope-runbook-old.timer && echo present || echo gone").strip() == "gone"
    assert on(RUNNER, "systemctl is-active dealerscope-runbook-tls.timer").strip() == "active"
    again = schedule()
    assert again.returncode == 0 and changed_tasks(again.stdout) == [], again.stdout[-3000:]


def test_a_calendar_systemd_refuses_changes_nothing():
    before = on(RUNNER, "md5sum /etc/systemd/system/dealerscope-runbook-tls.timer %s" % CONFIG)
    runbooks = [{"name": "tls", "playbook": "dealerscope.ops.tls", "on_calendar": "every morning"}]
    result = schedule(schedule_runbooks=runbooks)
    assert result.returncode != 0
    assert "runbook tls: on_calendar 'every morning' is refused by systemd" in result.stdout, result.stdout[-3000:]
    assert changed_tasks(result.stdout) == []
    assert on(RUNNER, "md5sum /etc/systemd/system/dealerscope-runbook-tls.timer %s" % CONFIG) == before
