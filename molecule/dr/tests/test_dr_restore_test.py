"""dealerscope.ops.restore_test: db1's backups (three regions of the lab's object storage) restored onto db2.

Converge restored the newest point into a scratch instance on db2 and smoke-tested an API copy on app1. Order
matters (pytest runs a file top to bottom): the converge report; nothing left behind; check mode changes nothing;
a chosen backup from a chosen region; a point in time (a row committed after it is not restored); a held lock
refused and left alone; the primary refused as a target; last, bytes flipped in the first region's copy - that
region is named and another, healthy one is restored from.
"""
import datetime
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.awx_job import assert_no_secret, scenario_job  # noqa: E402
from helpers.backup import flip_bytes, info, record  # noqa: E402
from helpers.molecule_ssh import ssh  # noqa: E402
from helpers.runbook import changed_tasks, checks_by, latest_report, on, run_playbook  # noqa: E402

testinfra_hosts = ["localhost"]
ROWS = ("restore:source", "restore:recovery", "restore:data", "restore:pages", "restore:api", "restore:rto", "restore:cleanup")


def restore_test(*args, **extra):
    return run_playbook("dealerscope.ops.restore_test", *args, extra_vars=extra, timeout=900)


def nothing_left_behind():
    assert on("db2", "test -e /var/lib/dealerscope-restore/data && echo present || echo absent").strip() == "absent"
    assert on("db2", "test -e /run/lock/dealerscope-dr && echo present || echo absent").strip() == "absent"
    assert on("db2", "ss -Htln 'sport = :5499' | wc -l").strip() == "0", "the scratch instance still listens"
    assert on("app1", "systemctl is-active dealerscope-api-restore-test || true").strip() in ("inactive", "unknown")
    assert on("app1", "test -e /run/dealerscope-api-restore-test.env && echo present || echo absent").strip() == "absent"
    # db2 is still the streaming standby it was
    assert on("db2", "runuser -u postgres -- psql -XAtc 'SELECT status FROM pg_stat_wal_receiver'").strip() == "streaming"


def test_the_newest_point_was_restored_verified_and_smoke_tested():
    report, dummy = latest_report("restore_test")
    assert report["status"] == "ok", report["problems"]
    checks = checks_by(report, "db2")
    for name in ROWS:
        assert checks[name]["status"] == "ok", (name, checks)
    primary = on("db1", "runuser -u postgres -- psql -XAt -d dealerscope -c 'SELECT count(*) FROM vehicles'").strip()
    assert checks["restore:data"]["value"] == int(primary) > 0, (checks["restore:data"], primary)
    assert "equal to the primary's at the restore point" in checks["restore:data"]["message"], checks["restore:data"]
    assert checks["restore:pages"]["value"] > 10, checks["restore:pages"]  # pg_catalog's and vehicles' B-tree indexes
    meta = report["meta"]
    assert meta["mode"] == "newest" and meta["region"] == "eu-west" and meta["restore_point"].startswith("dsops-restore-test-"), meta
    timings = meta["timings"]
    assert 0 < timings["restore_s"] < timings["total_s"] <= 600, timings
    newest = max((b for b in info()["backup"] if b["database"]["repo-key"] == 1), key=lambda b: b["timestamp"]["stop"])
    assert newest["label"] in checks["restore:source"]["message"], (newest["label"], checks["restore:source"])
    record(restore_test_timings=timings)
    nothing_left_behind()


def test_check_mode_changes_nothing_and_predicts_the_restore():
    result = restore_test("--check")
    assert result.returncode == 0, result.stdout[-4000:]
    changed = changed_tasks(result.stdout, skip_ending=True)
    assert [(task.split(" : ")[-1], host) for task, host in changed] == [("Restore - the restore test (check mode - predicted)", "db2")], changed
    nothing_left_behind()


def test_a_chosen_backup_from_a_chosen_region(tmp_path):
    label = [b["label"] for b in info()["backup"] if b["database"]["repo-key"] == 3][0]
    held, done = [], threading.Event()

    def watch():  # what the run's lock says while it restores: dealerscope.ops.backup keeps these backups meanwhile
        while not done.is_set() and not held:
            seen = ssh("db2", "cat /run/lock/dealerscope-dr/in_use.json 2>/dev/null").stdout.strip()
            if seen:
                held.append(json.loads(seen))
            time.sleep(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # the survey's answers, as AWX runs the job template (tests/helpers/awx_job.py)
        result = scenario_job(tmp_path, "restore_test", dr_restore_region="us-east", dr_restore_set=label).run()
    finally:
        done.set()
        watcher.join(timeout=10)
    assert (result.rc, result.status) == (0, "successful"), result.stdout[-4000:]
    outcome = result.outcome("restore_test")
    assert (outcome["status"], outcome["failed_hosts"]) == ("ok", []), outcome
    assert_no_secret([result])
    assert held and held[0]["sets"] == [label] and held[0]["region"] == "us-east", held
    report, dummy = latest_report("restore_test")
    checks = checks_by(report, "db2")
    assert "backup set %s) from region us-east" % label in checks["restore:source"]["message"], checks["restore:source"]
    assert checks["restore:data"]["status"] == "ok" and "no marker" in checks["restore:data"]["message"], checks["restore:data"]
    assert report["meta"]["mode"] == "set" and report["meta"]["region"] == "us-east", report["meta"]
    nothing_left_behind()


def test_a_point_in_time_leaves_out_what_was_committed_after_it():
    def sql(query):
        return on("db1", "runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d dealerscope -c \"%s\"" % query).strip()
    before = int(sql("SELECT count(*) FROM vehicles"))
    time.sleep(1.2)  # the target is a whole second strictly between the rows before it and the one after it
    target = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.2)
    sql("INSERT INTO vehicles (vin, make, model, year, price, price_score, market_factor) "
        "VALUES ('PITRPROBE00000001', 'Probe', 'After', 2026, 1, 1, 1)")
    segment = sql("SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + 90
    while sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment:
        assert time.monotonic() < deadline, "the WAL with the row after the target was not archived within 90 s"
        time.sleep(1)
    try:
        result = restore_test(dr_restore_target_time=target)
        assert result.returncode == 0, result.stdout[-4000:]
        report, dummy = latest_report("restore_test")
        checks = checks_by(report, "db2")
        # the restored table has the rows committed before the target and not the one after it
        assert checks["restore:data"]["value"] == before, (checks["restore:data"], before)
        assert "the point in time %s" % target in checks["restore:source"]["message"], checks["restore:source"]
        assert report["meta"]["mode"] == "time", report["meta"]
    finally:
        sql("DELETE FROM vehicles WHERE vin = 'PITRPROBE00000001'")
    nothing_left_behind()


def test_a_held_lock_is_refused_and_left_alone():
    on("db2", "mkdir -p /run/lock/dealerscope-dr && echo drill-20261127T030000Z > /run/lock/dealerscope-dr/owner")
    try:
        result = restore_test()
        assert result.returncode != 0, result.stdout[-4000:]
        checks = checks_by(latest_report("restore_test")[0], "db2")
        failed = checks["restore:failed"]
        assert failed["status"] == "critical" and "drill-20261127T030000Z" in failed["message"], failed
        assert "restore:source" not in checks, checks
        assert on("db2", "cat /run/lock/dealerscope-dr/owner").strip() == "drill-20261127T030000Z"
    finally:
        on("db2", "rm -rf /run/lock/dealerscope-dr")
    nothing_left_behind()


def test_the_primary_is_refused_as_the_restore_host_before_any_change():
    before = on("db1", "runuser -u postgres -- psql -XAtc 'SELECT pg_current_wal_lsn()'").strip()
    result = restore_test(dr_restore_host="db1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "dr_restore_host is \"db1\" - the primary itself" in output, output[-3000:]
    assert "Restore - lock" not in output and "restore point on the primary" not in output, output[-3000:]
    assert on("db1", "test -e /var/lib/dealerscope-restore && echo present || echo absent").strip() == "absent"
    assert before  # db1 answered before the run and is untouched: no scratch directory


def test_a_damaged_first_region_is_named_and_a_healthy_one_is_restored_from():
    flip_bytes("eu-west")
    result = restore_test()
    assert result.returncode != 0, result.stdout[-4000:]  # the damaged region is critical; the restore itself succeeded
    report, dummy = latest_report("restore_test")
    checks = checks_by(report, "db2")
    damaged = checks["restore:eu-west:usable"]
    assert damaged["status"] == "critical" and damaged["alert"] == "backup_invalid", damaged
    assert report["meta"]["region"] == "eu-central", report["meta"]
    for name in ROWS:
        assert checks[name]["status"] == "ok", (name, checks)
    events = json.dumps(report["problems"])
    assert "eu-west" in events, events
    nothing_left_behind()
