"""The daily runbook's backup check on molecule/dr's fleet, whose primary is backed up in three regions (prepare).

The rows come from the pgBackRest catalog, read on the primary (dealerscope.ops.backup_catalog, no verify)."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.backup import region_down  # noqa: E402
from helpers.runbook import checks_by, daily  # noqa: E402

testinfra_hosts = ["localhost"]
# This scenario does not publish the load balancer, so the daily run's probe through it fails: judged by its rows,
# not its exit status; nothing is sent.
QUIET = {"daily_fail_on": "never", "daily_notify_channels": []}


def test_backup_check_reads_every_regions_catalog_and_names_an_unreachable_region():
    """The backup rows come from the pgBackRest catalog (the newest good backup's age against 6 h + 1 h, each region's
    WAL, the archive's exposure against the RPO - judged separately); one region unreachable is a warning naming it,
    the others still ok. daily_backup_catalog="false" (a string from -e) turns the rows off, "true" on."""
    with region_down("us-east"):
        result, report, dummy = daily("--limit", "db1", extra_vars=dict(daily_backup_catalog="true", **QUIET))
    assert result.returncode == 0, result.stdout[-3000:]
    db1 = checks_by(report, "db1")
    down = db1["backup:us-east:newest"]
    assert down["status"] == "warning" and down["alert"] == "backup_region_unreachable" and "us-east" in down["message"], down
    for region in ("eu-west", "eu-central"):
        newest = db1["backup:%s:newest" % region]
        assert newest["status"] == "ok" and 0 <= newest["value"] < 1 and newest["threshold"] == 7, newest
    assert db1["backup:rpo"]["status"] == "ok" and db1["backup:rpo"]["threshold"] == 3600, db1["backup:rpo"]
    assert report["meta"]["backup_catalog"] is True
    result, report, dummy = daily("--limit", "db1", extra_vars=dict(daily_backup_catalog="false", **QUIET))
    assert result.returncode == 0, result.stdout[-3000:]
    assert not [name for name in checks_by(report, "db1") if name.startswith("backup:")], checks_by(report, "db1").keys()
    assert report["meta"]["backup_catalog"] is False
