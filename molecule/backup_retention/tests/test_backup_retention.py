"""Retention applied per region by dealerscope.ops.backup on db1 (three regions of the lab's object storage).

Order matters (pytest runs a file top to bottom). Converge took a full backup in every region; a second one follows.
Judged as of 40 days later, the first full backup of each region is outside the daily window (30 days) and, when
both are of the same ISO week, not that week's newest: retention expires it. backup_expire "false" (a string, as
extra vars arrive) expires nothing; check mode predicts exactly what the real run expires and deletes nothing; a
backup pinned in one region stays there while the other regions expire theirs; unpinned but in use by a restore
running now (named in dealerscope.ops.dr's lock on a restore host) it stays; once that lock is a dead run's (stale) it
goes; a re-run expires nothing more.
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.backup import REGIONS, backup, info, keys  # noqa: E402
from helpers.runbook import changed_tasks, checks_by, latest_report, on  # noqa: E402

testinfra_hosts = ["localhost"]

REPO = {region: number for number, region in enumerate(REGIONS, start=1)}  # repo1 is the first region (host_vars order)
AS_OF = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
FIRST = {}


def by_region():
    """{region: [labels, oldest first]} as pgBackRest lists them."""
    out = {region: [] for region in REGIONS}
    repos = {number: region for region, number in REPO.items()}
    for entry in sorted(info()["backup"], key=lambda b: (b["timestamp"]["stop"], b["label"])):
        out[repos[entry["database"]["repo-key"]]].append(entry)
    return out


def iso_week(entry):
    return datetime.datetime.fromtimestamp(entry["timestamp"]["stop"], datetime.timezone.utc).isocalendar()[:2]


def expected_gone(entries):
    """The first full backup goes when the second is of the same ISO week (else it is its own week's newest)."""
    first, second = entries[0], entries[-1]
    return [first["label"]] if iso_week(first) == iso_week(second) else []


def run(*args, **extra):
    extra.setdefault("backup_type", "none")
    extra.setdefault("backup_verify", "false")
    result = backup(*args, **extra)
    assert result.returncode == 0, result.stdout[-4000:]
    return result


def expired(output):
    return sorted((task.replace(" (check mode - predicted)", ""), host) for task, host in changed_tasks(output, skip_ending=True))


def test_a_second_full_backup_lands_in_every_region():
    before = by_region()
    assert all(len(entries) == 1 and entries[0]["type"] == "full" for entries in before.values()), before
    run(backup_type="full")
    after = by_region()
    for region, entries in after.items():
        assert [e["type"] for e in entries] == ["full", "full"], (region, entries)
        FIRST[region] = entries[0]["label"]
    # each region's backups are its own (labels are the start times of separate backups)
    assert len(set(FIRST.values())) == 3, FIRST


def test_backup_expire_false_expires_nothing():
    before = by_region()
    result = run(backup_expire="false", backup_retention_now=AS_OF)
    assert by_region() == before
    assert not [task for task, host in changed_tasks(result.stdout, skip_ending=True) if "xpire" in task], result.stdout[-3000:]
    checks = checks_by(latest_report("backup")[0], "db1")
    assert not [name for name in checks if name.endswith(":retention")], checks


def test_check_mode_predicts_the_expiry_and_deletes_nothing_then_the_real_run_expires_exactly_that():
    before = by_region()
    pin = {"backup_retention_now": AS_OF, "backup_retention_pinned": [FIRST["eu-west"]]}
    check = run("--check", **pin)
    assert by_region() == before, "check mode expired a backup"
    real = run(**pin)
    assert expired(check.stdout) == expired(real.stdout), (expired(check.stdout), expired(real.stdout))
    after = by_region()
    gone = {region: sorted({e["label"] for e in before[region]} - {e["label"] for e in after[region]}) for region in REGIONS}
    assert gone == {"eu-west": [], "eu-central": expected_gone(before["eu-central"]), "us-east": expected_gone(before["us-east"])}, gone
    assert len(expired(real.stdout)) == sum(len(labels) for labels in gone.values()), expired(real.stdout)
    # the objects went with the catalog entry: nothing of an expired backup stays in its bucket
    for region, labels in gone.items():
        for label in labels:
            assert keys(region, "dealerscope/backup/dealerscope/%s/" % label) == {}, (region, label)
    assert keys("eu-west", "dealerscope/backup/dealerscope/%s/" % FIRST["eu-west"]), "the pinned backup lost its files"
    checks = checks_by(latest_report("backup")[0], "db1")
    for region in REGIONS:
        row = checks["backup:%s:retention" % region]
        assert row["status"] == "ok" and row["value"] == len(gone[region]), row
        assert ("expired %d" % len(gone[region])) in row["message"] and "as of " + AS_OF in row["message"], row
        assert all(label in row["message"] for label in gone[region]), row


LOCK = "/run/lock/dealerscope-dr"  # dealerscope.ops.dr's lock; app1 stands in for the restore host here


def test_unpinned_but_in_use_by_a_running_restore_it_stays():
    before = by_region()
    on("app1", "mkdir -p %s && echo restore-test-1 > %s/owner && echo '{\"run\": \"restore-test-1\", \"region\": \"eu-west\", "
               "\"sets\": [\"%s\"]}' > %s/in_use.json" % (LOCK, LOCK, FIRST["eu-west"], LOCK))
    result = run(backup_retention_now=AS_OF, backup_restore_hosts=["app1"])
    assert by_region() == before, expired(result.stdout)
    row = checks_by(latest_report("backup")[0], "db1")["backup:eu-west:retention"]
    assert row["status"] == "ok" and "in use by a restore running now: %s" % FIRST["eu-west"] in row["message"], row
    # the restore died hours ago: its lock no longer holds anything
    on("app1", "touch -d '7 hours ago' %s" % LOCK)


def test_unpinned_it_goes_and_a_rerun_expires_nothing_more():
    before = by_region()
    run(backup_retention_now=AS_OF, backup_expire="true", backup_restore_hosts=["app1"])
    on("app1", "rm -rf %s" % LOCK)
    after = by_region()
    assert [e["label"] for e in after["eu-west"]] == [e["label"] for e in before["eu-west"] if e["label"] not in expected_gone(before["eu-west"])]
    for region in ("eu-central", "us-east"):
        assert after[region] == before[region], region
    again = run(backup_retention_now=AS_OF)
    assert not [task for task, host in changed_tasks(again.stdout, skip_ending=True) if "xpire" in task], again.stdout[-3000:]
    assert by_region() == after
    # the newest backup of every region is never expired, whatever the date
    assert all(entries and entries[-1]["type"] == "full" for entries in after.values()), after
