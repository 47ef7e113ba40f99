"""dealerscope.ops.dr_drill: db1 lost, db2 restored from a region and promoted, the API repointed through lb1.

Converge ran a drill that failed back. Order matters (pytest runs the file top to bottom): the converge report and
everything back as it was; check mode; a drill left as the primary after one region's bytes were flipped (another
region is used); a second drill refused while it is; the fail back of it; last, a drill whose only allowed region is
the damaged one - it fails after db1 was lost and fails back by itself.
"""
import json
import os
import ssl
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.awx_job import assert_no_secret, scenario_job  # noqa: E402
from helpers.backup import flip_bytes, record  # noqa: E402
from helpers.runbook import EPHEMERAL, PROJECT, changed_tasks, checks_by, latest_report, on, run_playbook  # noqa: E402

testinfra_hosts = ["localhost"]
LB = "https://127.0.0.1:18445/api/vehicles?limit=1"
PSQL = "runuser -u postgres -- psql -XAt -d dealerscope"


def drill(*args, **extra):
    return run_playbook("dealerscope.ops.dr_drill", *args, extra_vars=extra, timeout=900)


def lb_serves():
    context = ssl.create_default_context(cafile=str(EPHEMERAL / "lab" / "ca" / "ca.pem"))
    with urllib.request.urlopen(LB, timeout=5, context=context) as resp:
        return resp.status == 200 and json.loads(resp.read())


def api_db(host):
    """DS_DB_HOST:DS_DB_PORT of the API's environment file on an application host."""
    env = dict(line.split("=", 1) for line in on(host, "cat /etc/dealerscope/api.env").splitlines() if "=" in line)
    return "%s:%s" % (env["DS_DB_HOST"], env.get("DS_DB_PORT", "5432"))


def back_as_it_was():
    """db1 the primary, db2 its streaming standby, the API on db1 through lb1, nothing of the drill left."""
    assert on("db1", PSQL + " -c 'SELECT pg_is_in_recovery()'").strip() == "f"
    assert on("db1", PSQL + " -c \"SELECT to_regclass('dsops_drill_writes') IS NULL\"").strip() == "t", "the writer's table is left"
    for host in ("app1", "app2"):
        assert api_db(host) == "db1:5432", host
        assert on(host, "test -e /etc/dealerscope/api.env.before-dr-drill && echo present || echo absent").strip() == "absent"
    assert on("app1", "systemctl is-active dealerscope-drill-writer || true").strip() in ("inactive", "unknown")
    assert on("db2", "test -e /etc/systemd/system/dealerscope-dr-drill.service && echo present || echo absent").strip() == "absent"
    assert on("db2", "test -e /var/lib/dealerscope-drill/data && echo present || echo absent").strip() == "absent"
    assert on("db2", "ss -Htln 'sport = :5433' | wc -l").strip() == "0"
    assert on("db2", "test -e /run/lock/dealerscope-dr && echo present || echo absent").strip() == "absent"
    for dummy in range(60):  # the standby's WAL receiver retries every 5 s
        if on("db2", "runuser -u postgres -- psql -XAtc 'SELECT status FROM pg_stat_wal_receiver'").strip() == "streaming":
            break
        time.sleep(0.5)
    else:
        raise AssertionError("db2 is not streaming from db1 again")
    assert lb_serves()


def test_the_drill_measured_rto_and_rpo_with_writes_in_flight_and_failed_back():
    report, base = latest_report("dr_drill")
    assert report["status"] == "ok", report["problems"]
    checks = checks_by(report, "db2")
    for name in ("drill:failure", "drill:source", "drill:pages", "drill:api", "drill:rto", "drill:rpo", "drill:writes", "drill:finish"):
        assert checks[name]["status"] == "ok", (name, checks)
    meta, figures = report["meta"], report["meta"]["figures"]
    assert meta["region"] == "eu-west" and meta["finish"] == "failback", meta
    # RTO: drill start -> API serving from db2 through lb1; within the run, under the 4 h target
    assert 0 < figures["outage_s"] < figures["rto_s"] == checks["drill:rto"]["value"] < 300, figures
    assert checks["drill:rto"]["threshold"] == 14400
    # RPO: the writer committed every 200 ms for 10 s before the failure; the restore holds every row up to the last
    # WAL archived (archive_timeout 8 s in this scenario), so some rows are restored, the newest are lost, and the loss
    # is bounded by the archive timeout and the archiving's own delay
    assert figures["writes_acked"] >= 30, figures
    assert 1 <= figures["writes_restored"] == figures["restored_max_seq"] <= figures["writes_acked"], figures
    assert 0 <= figures["rpo_s"] == checks["drill:rpo"]["value"] <= 20, figures
    assert figures["last_acked_at"] - figures["rpo_s"] - 0.1 <= figures["restored_newest_at"] <= figures["last_acked_at"] + 1, figures
    assert checks["drill:rpo"]["threshold"] == 3600
    assert "connections there" in checks["drill:api"]["message"] and "db2:5433" in checks["drill:api"]["message"]
    events = [event["event"] for event in meta["timeline"]]
    offsets = [event["offset_s"] for event in meta["timeline"]]
    assert offsets == sorted(offsets) and offsets[0] == 0.0, meta["timeline"]
    for needle in ("drill started", "last write the writer saw committed", "primary db1 lost", "from region eu-west",
                   "API answering through the load balancer", "failed back: db1 is the primary"):
        assert any(needle in event for event in events), (needle, events)
    markdown = (base / "report.md").read_text()
    page = (base / "report.html").read_text()
    assert "## Timeline" in markdown and "<h2>Timeline</h2>" in page
    copies = PROJECT / "tests" / "output" / "molecule"  # the converge drill's report, to read as a person would
    for name in ("report.md", "report.html"):
        (copies / ("dr_drill_" + name)).write_text((base / name).read_text())
    record(drill_rto_s=figures["rto_s"], drill_rpo_s=figures["rpo_s"], drill_outage_s=figures["outage_s"])
    back_as_it_was()


def test_check_mode_predicts_the_drill_and_changes_nothing():
    result = drill("--check")
    assert result.returncode == 0, result.stdout[-4000:]
    assert [task for task, dummy in changed_tasks(result.stdout, skip_ending=True)] == ["dealerscope.ops.dr : Drill - the drill (check mode - predicted)"]
    assert "would stop PostgreSQL on db1" in result.stdout
    back_as_it_was()


def test_a_drill_left_as_the_primary_uses_a_healthy_region_and_refuses_a_second_drill(tmp_path):
    flip_bytes("eu-west")
    # the survey's answers, as AWX runs the job template (tests/helpers/awx_job.py)
    result = scenario_job(tmp_path, "dr_drill", dr_drill_confirm="db1", dr_drill_finish="leave", dr_drill_writer="false").run()
    assert (result.rc, result.status) == (2, "failed"), result.stdout[-4000:]  # the damaged region is critical; the drill itself succeeded
    # AWX's host summary and "relaunch on failed hosts": db2 (the damaged region is its row), nothing else
    assert result.failed_hosts() == ["db2"], result.failed_hosts()
    outcome = result.outcome("dr_drill")
    assert (outcome["status"], outcome["failed_hosts"]) == ("critical", ["db2"]), outcome
    assert_no_secret([result])
    report, dummy = latest_report("dr_drill")
    checks = checks_by(report, "db2")
    damaged = checks["drill:eu-west:usable"]
    assert damaged["status"] == "critical" and damaged["alert"] == "backup_invalid", damaged
    assert report["meta"]["region"] == "eu-central", report["meta"]
    for name in ("drill:source", "drill:api", "drill:rto", "drill:finish"):
        assert checks[name]["status"] == "ok", (name, checks)
    assert "drill:rpo" not in checks and "drill:writes" not in checks  # no writer ("false" from -e is false)
    assert "writes_acked" not in report["meta"]["figures"], report["meta"]
    assert "left as the primary" in checks["drill:finish"]["message"], checks["drill:finish"]
    # db2:5433 is the primary, started at boot; db1 stays down; the API uses db2 through lb1
    assert on("db2", "systemctl is-enabled dealerscope-dr-drill.service").strip() == "enabled"
    assert on("db2", "runuser -u postgres -- psql -XAt -p 5433 -d dealerscope -c 'SELECT pg_is_in_recovery()'").strip() == "f"
    assert on("db1", "systemctl is-active postgresql@15-main || true").strip() in ("inactive", "failed")
    address = on("db2", "hostname -I | awk '{ print $1 }'").strip()
    for host in ("app1", "app2"):
        assert api_db(host) == address + ":5433", host
    assert lb_serves()
    # a second drill never restores over it
    again = drill()
    output = again.stdout + again.stderr
    assert again.returncode != 0
    assert "a PostgreSQL instance runs in /var/lib/dealerscope-drill/data" in output, output[-3000:]
    assert "fail back first" in output and "Drill - the primary is lost" not in output, output[-3000:]
    assert on("db2", "systemctl is-active dealerscope-dr-drill.service").strip() == "active"
    assert on("db1", "systemctl is-active postgresql@15-main || true").strip() in ("inactive", "failed")
    assert api_db("app1") == address + ":5433"


def test_the_fail_back_of_a_drill_left_as_the_primary():
    result = drill(dr_drill_action="failback")
    assert result.returncode == 0, result.stdout[-4000:]
    checks = checks_by(latest_report("dr_drill")[0], "db2")
    assert checks["drill:finish"]["status"] == "ok" and "failed back" in checks["drill:finish"]["message"], checks
    back_as_it_was()


def test_a_drill_failing_after_the_failure_fails_back_by_itself():
    # eu-west's copy is damaged (the test before): allowed only that region, the drill fails once db1 is down
    result = drill(dr_restore_region="eu-west", dr_drill_writer="true")
    assert result.returncode != 0
    report = latest_report("dr_drill")[0]
    checks = checks_by(report, "db2")
    assert checks["drill:failure"]["status"] == "ok", checks  # db1 was lost
    assert report["meta"]["figures"]["writes_acked"] >= 30, report["meta"]  # "true" from -e: the writer ran
    assert "drill:rpo" not in checks and "drill:source" not in checks, checks  # nothing was restored
    failed = checks["drill:failed"]
    assert failed["status"] == "critical" and "no reachable region eu-west holds a good backup" in failed["message"], failed
    assert checks["drill:finish"]["status"] == "ok" and "failed back" in checks["drill:finish"]["message"], checks
    back_as_it_was()
