"""Faults in dealerscope.ops.backup on db1 (three regions in the lab's object storage, lab/bin/s3.sh).

Order matters (pytest runs a file top to bottom): converge took a full backup in every region; one region is then
made unreachable (a warning, the other two still verified) and brought back; string booleans; last, bytes
are flipped in one region's copy (that region is named critical, the others verify).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.backup import backup, flip_bytes, region_down  # noqa: E402
from helpers.runbook import checks_by, latest_report, on  # noqa: E402

testinfra_hosts = ["localhost"]


def test_one_region_unreachable_is_a_warning_and_the_others_are_still_verified():
    with region_down("us-east"):
        result = backup()
    assert result.returncode == 0, result.stdout[-4000:]  # a warning: fail_on is critical
    report, dummy = latest_report("backup")
    checks = checks_by(report, "db1")
    unreachable = checks["backup:us-east:newest"]
    assert unreachable["status"] == "warning" and unreachable["alert"] == "backup_region_unreachable", unreachable
    assert "us-east" in unreachable["message"] and "Connection refused" in unreachable["message"], unreachable
    for region in ("eu-west", "eu-central"):
        assert checks["backup:%s:newest" % region]["status"] == "ok", checks
        assert checks["backup:%s:verify" % region]["status"] == "ok", checks
    assert "backup:us-east:verify" not in checks, checks
    assert report["status"] == "warning", report["problems"]


def test_string_booleans_backup_verify_and_backup_timers():
    """-e backup_verify=false / backup_timers=false arrive as strings: verify is skipped and the timers stop; "true"
    verifies and starts them again."""
    result = backup(backup_type="none", backup_verify="false", backup_timers="false")
    assert result.returncode == 0, result.stdout[-4000:]
    checks = checks_by(latest_report("backup")[0], "db1")
    assert not [name for name in checks if name.endswith(":verify")], checks
    assert on("db1", "systemctl is-active dealerscope-pgbackrest-diff.timer || true").strip() == "inactive"
    result = backup(backup_type="none", backup_verify="true", backup_timers="true")
    assert result.returncode == 0, result.stdout[-4000:]
    checks = checks_by(latest_report("backup")[0], "db1")
    assert len([name for name in checks if name.endswith(":verify")]) == 3, checks
    assert on("db1", "systemctl is-active dealerscope-pgbackrest-diff.timer").strip() == "active"


def test_flipped_bytes_in_one_regions_copy_name_that_region_and_the_others_verify():
    flip_bytes("eu-central")
    result = backup(backup_type="none")
    assert result.returncode != 0, result.stdout[-4000:]  # critical: the run fails after its report
    report, dummy = latest_report("backup")
    checks = checks_by(report, "db1")
    damaged = checks["backup:eu-central:verify"]
    assert damaged["status"] == "critical" and damaged["alert"] == "backup_invalid" and "eu-central" in damaged["message"], damaged
    for region in ("eu-west", "us-east"):
        assert checks["backup:%s:verify" % region]["status"] == "ok", checks
