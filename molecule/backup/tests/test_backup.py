"""dealerscope.ops.backup on db1: pgBackRest into the lab's object storage in three regions (lab/bin/s3.sh).

Converge took a full backup in every region and verified each; a re-run changes nothing but its report; check mode
predicts the real run's changes; the secrets stay private; WAL reaches every region within archive_timeout; the
timers' service backs up into every region. Faults: molecule/backup_faults.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.awx_job import assert_changed_nothing, scenario_job  # noqa: E402
from helpers.backup import REGIONS, backup, bucket, info, keys, record, s3, secret  # noqa: E402
from helpers.molecule_ssh import ssh  # noqa: E402
from helpers.runbook import changed_tasks, checks_by, latest_report, on, receiver_messages  # noqa: E402

testinfra_hosts = ["localhost"]


def test_a_full_backup_landed_in_every_region_and_each_was_verified():
    report, dummy = latest_report("backup")
    assert report["status"] == "ok", report["problems"]
    checks = checks_by(report, "db1")
    for region in REGIONS:
        assert checks["backup:%s:newest" % region]["status"] == "ok", checks
        assert checks["backup:%s:verify" % region]["status"] == "ok", checks
    catalog = {row["region"]: row for row in report["meta"]["catalog"]}
    assert set(catalog) == set(REGIONS) and all(row["newest"]["type"] == "full" and row["verified"] for row in catalog.values()), catalog
    # pgBackRest's own view: one good full backup in each repository, and it is really in each region's bucket
    repos = {b["database"]["repo-key"] for b in info()["backup"] if b["type"] == "full" and not b.get("error")}
    assert repos == {1, 2, 3}, info()
    for region in REGIONS:
        label = catalog[region]["newest"]["label"]
        stored = keys(region, "dealerscope/backup/dealerscope/%s/" % label)
        assert any(key.endswith("backup.manifest") for key in stored), sorted(stored)[:20]
        assert sum(stored.values()) > 1_000_000, sum(stored.values())  # the data files, not just a manifest
    events = [m for m in receiver_messages() if m["path"] == "/backups"]
    landed = [e for e in events if "backup_success" in json.dumps(e["body"])]
    for region in REGIONS:
        assert any("landed in region %s and verified" % region in json.dumps(e["body"]) for e in landed), events


def test_a_rerun_as_an_awx_job_changes_nothing_but_its_report(tmp_path):
    """The re-run is a job as AWX runs it (ansible_runner, fresh private data dir, survey answers as strings): the
    stats artifact AWX's workflow nodes branch on, and no secret in any event or artifact file."""
    job = scenario_job(tmp_path, "backup", backup_type="auto")
    result = job.run()
    outcome = assert_changed_nothing(result, "backup", secret("s3-key-secret"), secret("backup-cipher-pass"))
    assert outcome["run_failures"] == [], outcome
    report, base = latest_report("backup")
    assert outcome["report_url"].startswith(str(base.parent)) and report["meta"]["job"]["id"] == job.job_id, (outcome, report["meta"])


def test_check_mode_predicts_exactly_what_the_real_run_changes_and_takes_nothing():
    def predicted(output):
        return sorted((task.replace(" (check mode - predicted)", ""), host) for task, host in changed_tasks(output, skip_ending=True))
    before = info()["backup"]
    check = backup("--check", backup_type="incr")
    assert check.returncode == 0, check.stdout[-4000:]
    assert info()["backup"] == before, "check mode took a backup"
    real = backup(backup_type="incr")
    assert real.returncode == 0, real.stdout[-4000:]
    assert predicted(check.stdout) == predicted(real.stdout) and len(predicted(real.stdout)) == 3, (predicted(check.stdout), predicted(real.stdout))
    assert len(info()["backup"]) == len(before) + 3


def test_the_secrets_stay_out_of_reports_and_the_configuration_is_private():
    assert on("db1", "stat -c '%a %U %G' /etc/pgbackrest/pgbackrest.conf").split() == ["640", "root", "postgres"]
    dummy, base = latest_report("backup")
    for path in base.iterdir():
        text = path.read_text(errors="replace")
        for name in ("s3-key-secret", "backup-cipher-pass"):
            assert secret(name) not in text, "%s leaks into %s" % (name, path)
    # the repositories are encrypted (OpenSSL's salted format): the catalog itself is unreadable without the pass
    for region in REGIONS:
        catalog = s3(region).get_object(Bucket=bucket(region), Key="dealerscope/backup/dealerscope/backup.info")["Body"].read()
        assert catalog.startswith(b"Salted__") and b"backup-current" not in catalog, catalog[:64]


def test_wal_reaches_every_region_within_the_archive_timeout():
    """A write on a quiet database: its WAL segment is switched by archive_timeout (20 s in the lab) and pushed to all
    regions (asynchronously)."""
    on("db1", "runuser -u postgres -- psql -d dealerscope -XAtc "
              "\"CREATE TABLE IF NOT EXISTS backup_probe (at timestamptz DEFAULT now()); INSERT INTO backup_probe DEFAULT VALUES\"")
    segment = on("db1", "runuser -u postgres -- psql -XAtc 'SELECT pg_walfile_name(pg_current_wal_insert_lsn())'").strip()
    started = time.monotonic()
    while True:
        archived = {a["database"]["repo-key"]: a["max"] for a in info()["archive"]}
        if len(archived) == 3 and all(wal >= segment for wal in archived.values()):
            break
        assert time.monotonic() - started < 120, "WAL %s not in every region after 120 s: %s" % (segment, archived)
        time.sleep(2)
    seconds = round(time.monotonic() - started, 1)
    record(wal_in_every_region_s=seconds)
    assert seconds <= 20 + 15, seconds


def test_the_timers_are_scheduled_and_their_service_backs_up_into_every_region():
    timers = on("db1", "systemctl list-timers --all --no-legend 'dealerscope-pgbackrest-*'")
    assert "dealerscope-pgbackrest-full.timer" in timers and "dealerscope-pgbackrest-diff.timer" in timers, timers
    assert on("db1", "systemctl is-enabled dealerscope-pgbackrest-diff.timer dealerscope-pgbackrest-full.timer").split() == ["enabled"] * 2
    before = len([b for b in info()["backup"] if b["type"] == "diff"])
    started = time.monotonic()
    result = ssh("db1", "systemctl start dealerscope-pgbackrest-diff.service", timeout=300)
    record(diff_backup_three_regions_s=round(time.monotonic() - started, 1))
    assert result.returncode == 0, result.stderr + on("db1", "journalctl -u dealerscope-pgbackrest-diff.service -n 30 --no-pager")
    diffs = [b for b in info()["backup"] if b["type"] == "diff"]
    assert len(diffs) == before + 3 and {b["database"]["repo-key"] for b in diffs} == {1, 2, 3}, diffs
