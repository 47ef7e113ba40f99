"""Patching the database group on a real stack, with the role's default database checks (the lab inventory does
not override them): converge rolled db2 (standby) then db1 (primary), each rebooted, each judged by its cluster's
own unit, SELECT 1 and - on the standby - streaming replication. Then: a stopped cluster (postgresql.service, the
Debian wrapper, still active) and a standby that does not stream each fail the pre-check with nothing changed; and a
primary that does not come back after its reboot (dslab-pgbreak 1.1) stops the rollout before the app host.
They run in file order (each leaves the fleet as the next one expects)."""
import json
import os
import pathlib
import sys
import time

import yaml

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.runbook import EPHEMERAL, PROJECT, checks_by, latest_report, on, receiver_clear, receiver_messages, run_playbook  # noqa: E402
from helpers.patching import PATCH, boot_time, fact, versions  # noqa: E402

DBS = ("db2", "db1")  # standby first


def said(result):
    """What the run printed, whitespace collapsed: the YAML callback folds long messages over several lines."""
    return " ".join(result.stdout.split())


def cluster(host):
    """The host's one cluster as (version/main, its unit)."""
    version = on(host, "ls /etc/postgresql").split()[0]
    return "%s/main" % version, "postgresql@%s-main.service" % version


def active(host, unit):
    return on(host, "systemctl is-active %s || true" % unit).strip()


def receiver(host):
    return on(host, "runuser -u postgres -- psql -XAtc 'SELECT status FROM pg_stat_wal_receiver'").strip()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out after %d s waiting for %s" % (timeout, what)
        time.sleep(1)


def postchecks(report, host):
    return {c["name"]: c for c in checks_by(report, host)["postcheck"]["details"]["checks"]}


def test_the_lab_does_not_override_the_database_units():
    """The default is what the lab proves: no patching_services entry for db (the role finds the cluster units)."""
    lab = yaml.safe_load((pathlib.Path(PROJECT) / "inventories" / "lab" / "group_vars" / "all" / "patching.yml").read_text())
    assert "db" not in (lab.get("patching_services") or {}), lab


def test_standby_then_primary_were_patched_rebooted_and_judged_by_their_clusters():
    report, base = latest_report("patch")
    assert report["meta"]["kind"] == "rollout" and report["meta"]["batches"] == [["db2"], ["db1"]], report["meta"]
    assert report["meta"]["canary"] == "db2"
    assert report["meta"]["counts"]["patched"] == 2 and report["meta"]["counts"]["failed"] == 0, report["meta"]["summary"]
    for host in DBS:
        name, unit = cluster(host)
        checks = checks_by(report, host)
        assert checks["reboot"]["message"].startswith("rebooted"), checks["reboot"]
        assert boot_time(host) != (EPHEMERAL / ("boot_before_%s" % host)).read_text().strip(), "%s was not rebooted" % host
        db = postchecks(report, host)["database:%s" % name]
        assert db["status"] == "ok" and db["details"]["unit"] == unit and "SELECT 1 answers" in db["message"], db
        pre = {c["name"]: c for c in checks["precheck"]["details"]["checks"]}
        assert pre["database:%s" % name]["status"] == "ok"
        assert fact(host)["status"] == "ok"
        assert versions(host)["dslab-libdemo"] == "1.1"
    name, unit = cluster("db2")
    replication = postchecks(report, "db2")["replication:%s" % name]
    assert replication["status"] == "ok" and replication["details"]["wal_receiver"] == "streaming", replication
    assert postchecks(report, "db1")["database:%s" % name]["details"]["role"] == "primary"
    assert "replication:%s" % name not in postchecks(report, "db1")
    wait_for(lambda: receiver("db2") == "streaming", 60, "db2 to stream from db1 again")
    assert versions("app1")["dslab-libdemo"] == "1.0"  # not a target


def test_a_stopped_cluster_and_a_standby_that_does_not_stream_fail_the_precheck_with_nothing_changed():
    name, unit = cluster("db1")
    for host in DBS:
        on(host, "apt-get install -y -q --allow-downgrades dslab-tools=1.0 >/dev/null 2>&1")  # something to patch
    on("db1", "systemctl stop %s" % unit)
    try:
        assert active("db1", unit) == "inactive"
        assert active("db1", "postgresql.service") == "active"  # the wrapper the old default trusted
        wait_for(lambda: receiver("db2") != "streaming", 30, "db2 to lose its primary")
        before = {host: (versions(host), boot_time(host), fact(host)) for host in DBS}
        result = run_playbook(PATCH, extra_vars={"patching_max_fail_percentage": 100})  # both hosts reach their pre-check
        assert result.returncode != 0
        assert "%s: %s is inactive - the database is not running" % (name, unit) in said(result), result.stdout[-3000:]
        assert "%s: standby does not stream from its primary" % name in said(result), result.stdout[-3000:]
        assert {host: (versions(host), boot_time(host), fact(host)) for host in DBS} == before
        report, base = latest_report("patch")
        for host in DBS:
            patch = checks_by(report, host)["patch"]
            assert patch["status"] == "critical" and "untouched (failed before any change)" in patch["message"], patch
    finally:
        on("db1", "systemctl start %s" % unit)
    wait_for(lambda: receiver("db2") == "streaming", 60, "db2 to stream from db1 again")


def test_a_primary_that_does_not_come_back_stops_the_rollout():
    name, unit = cluster("db1")
    on("db1", "apt-get install -y -q dslab-pgbreak=1.0 >/dev/null 2>&1")  # its 1.1 breaks the cluster's next start
    app1_before = (versions("app1"), boot_time("app1"), fact("app1"))
    db1_boot = boot_time("db1")
    receiver_clear()
    result = run_playbook(PATCH, extra_vars={"patching_group": "db:app", "patching_pools": []})
    assert result.returncode != 0
    assert "stopped at db1" in said(result), result.stdout[-3000:]
    # db2 went first and is fine; db1 was upgraded, rebooted, and its database did not come back
    assert versions("db2")["dslab-tools"] == "1.1" and fact("db2")["status"] == "ok"
    assert versions("db1")["dslab-pgbreak"] == "1.1" and boot_time("db1") != db1_boot
    assert active("db1", unit) == "failed" and active("db1", "postgresql.service") == "active"
    assert fact("db1")["status"] == "failed"
    # the app host after it was not touched at all
    assert (versions("app1"), boot_time("app1"), fact("app1")) == app1_before
    report, base = latest_report("patch")
    db1 = checks_by(report, "db1")
    assert db1["postcheck"]["status"] == "critical", db1["postcheck"]
    assert "%s: %s is failed - the database is not running" % (name, unit) in db1["postcheck"]["message"], db1["postcheck"]
    assert db1["patch"]["status"] == "critical" and "failed at postcheck" in db1["patch"]["message"], db1["patch"]
    app1 = checks_by(report, "app1")["patch"]
    assert app1["alert"] == "patch_not_reached" and "rollout stopped at db1 (postcheck)" in app1["message"], app1
    pages = [m for m in receiver_messages() if m["path"] == "/pager"]
    assert any("db1" in json.dumps(m["body"]) and "patch_failed" in json.dumps(m["body"]) for m in pages), pages
