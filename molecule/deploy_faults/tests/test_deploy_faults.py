"""Faults in dealerscope.ops.deploy and dealerscope.ops.rollback: releases that fail their gates, rollback under load.

Order matters (pytest runs a file top to bottom): 2.0.0 is live on green and 1.1.0 warm on blue at the start;
the two failing deploys leave that as it was; the rollback then moves to 1.1.0 (warm), a named rollback to the
provisioned 1.0.0 (no colour runs it) goes through the health gate; the refusals run last.
"""
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.awx_job import assert_no_secret, scenario_job  # noqa: E402
from helpers.deploy import (APP_HOSTS, UPSTREAM_FILE, VersionWatch, deploy, digest, layout, load, on,  # noqa: E402
                            rollback, versions_through_lb)
from helpers.runbook import changed_tasks, latest_report  # noqa: E402

testinfra_hosts = ["localhost"]


def test_start_2_0_0_live_on_green_1_1_0_warm_on_blue():
    assert versions_through_lb() == {"2.0.0"}
    for host in APP_HOSTS:
        assert layout(host)["green"] == "2.0.0" and layout(host)["blue"] == "1.1.0" and layout(host)["current"] == "2.0.0"


def _failing_deploy(version, message):
    """Deploy a release that must fail, under load: the run fails with `message`, users see no failed request, the
    pool is back exactly as it was, 2.0.0 still serves, the release is marked bad and blue holds 1.1.0 again.
    Returns the load summary and the deploy report."""
    pool = digest("lb1", UPSTREAM_FILE)
    with load() as running:
        result = deploy(version)
    summary = running.summary()
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-4000:]
    assert summary["failed"] == 0 and summary["skipped"] == 0, summary
    assert digest("lb1", UPSTREAM_FILE) == pool, "the pool must be back exactly as it was"
    assert versions_through_lb() == {"2.0.0"}
    for host in APP_HOSTS:
        state = layout(host)
        assert version in state["bad"] and state["blue"] == "1.1.0" and state["current"] == "2.0.0", state
    report, dummy = latest_report("deploy")
    assert report["status"] == "critical" and {p["alert"] for p in report["problems"]} == {"deployment_failed"}, report["problems"]
    return summary, report


def test_a_release_failing_its_health_gate_never_takes_traffic():
    summary, dummy = _failing_deploy("3.0.0", "health gate of 3.0.0 on the idle colour blue failed")
    assert summary["sent"] > 20, summary
    for host in APP_HOSTS:
        marker = json.loads(on(host, "cat /opt/dealerscope/releases/3.0.0/.dealerscope-bad"))
        assert "health gate" in marker["reason"] and marker["by"] == "dealerscope.ops.deploy", marker
        # blue is back on 1.1.0 and answers: the instant rollback target is warm again
        assert json.loads(on(host, "curl -sf http://127.0.0.1:8001/version"))["version"] == "1.1.0"


def test_a_release_marked_bad_is_refused_before_any_change():
    result = deploy("3.0.0")
    assert result.returncode != 0 and "release 3.0.0 is marked bad on app1" in result.stdout, result.stdout[-3000:]
    assert changed_tasks(result.stdout, skip_ending=True) == []


def test_a_release_failing_the_slo_at_its_first_canary_step_moves_traffic_back():
    # nginx retries a 503 on the other colour, so users saw no error even at 10 %
    dummy, report = _failing_deploy("3.0.1", "canary step 10 % to 3.0.1 on blue failed the SLO")
    assert report["meta"]["steps_done"] == [], report["meta"]


def test_rollback_moves_traffic_to_the_warm_release_in_one_step_under_2_s():
    with load() as running, VersionWatch() as watch:
        result = rollback(rollback_reason="INC-42 checkout errors", rollback_mark_bad="true")
    summary = running.summary()
    assert result.returncode == 0, result.stdout[-4000:]
    assert summary["failed"] == 0 and summary["skipped"] == 0 and summary["sent"] > 20, summary
    report, dummy = latest_report("rollback")
    assert report["meta"]["from"] == "2.0.0" and report["meta"]["to"] == "1.1.0" and report["meta"]["colour"] == "blue"
    window = watch.switch_window("2.0.0", "1.1.0")
    figures = {"switch_s": float(report["meta"]["switch_s"]), "both_versions_seen_s": round(window, 3), "load": summary}
    (pathlib.Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "tests" / "output" / "molecule" / "rollback_figures.json").write_text(
        json.dumps(figures, indent=1))
    assert 0 < figures["switch_s"] < 2, report["meta"]
    assert window < 2, watch.seen[-40:]
    assert versions_through_lb() == {"1.1.0"}
    assert changed_tasks(result.stdout).count(("dealerscope.ops.rollback : Switch - all traffic in one step to blue (1.1.0)", "app1")) == 1
    for host in APP_HOSTS:
        state = layout(host)
        assert state["current"] == "1.1.0" and "2.0.0" in state["bad"], state
        assert "INC-42" in json.loads(on(host, "cat /opt/dealerscope/releases/2.0.0/.dealerscope-bad"))["reason"]


def test_rollback_to_a_named_release_no_colour_runs_goes_through_the_health_gate(tmp_path):
    # 1.0.0 is the provisioned release: no colour runs it, so it is put on the idle colour (green) and gated first;
    # the rollback runs as AWX runs the job template with these survey answers (tests/helpers/awx_job.py)
    with load() as running:
        result = scenario_job(tmp_path, "rollback", rollback_to="1.0.0", rollback_mark_bad="false").run()
    summary = running.summary()
    assert (result.rc, result.status) == (0, "successful"), result.stdout[-4000:]
    outcome = result.outcome("rollback")
    assert (outcome["status"], outcome["failed_hosts"]) == ("ok", []), outcome
    assert_no_secret([result])
    assert "no colour runs it: onto the idle colour green" in result.stdout
    assert summary["failed"] == 0 and summary["skipped"] == 0, summary
    assert versions_through_lb() == {"1.0.0"}
    for host in APP_HOSTS:
        state = layout(host)
        assert state["current"] == "1.0.0" and state["green"] == "1.0.0" and state["blue"] == "1.1.0", state
        assert "1.1.0" not in state["bad"], state  # rollback_mark_bad "false"


def test_rollback_refuses_an_unknown_or_bad_release_and_when_there_is_none():
    pool = digest("lb1", UPSTREAM_FILE)
    unknown = rollback(rollback_to="9.9.9")
    assert unknown.returncode != 0 and "release 9.9.9 is unknown on app1" in unknown.stdout, unknown.stdout[-3000:]
    bad = rollback(rollback_to="3.0.1")
    assert bad.returncode != 0 and "release 3.0.1 is marked bad on app1" in bad.stdout, bad.stdout[-3000:]
    # another run holds the deploy lock: refused before reading anything, naming the holder
    lock = "/run/dealerscope-ops/deploy.lock"
    record = {"holder": "deploy 9.9.9 by carol", "token": "carol-1", "since": "earlier", "since_epoch": time.time()}
    on("lb1", "mkdir -p %s && echo '%s' > %s/holder.json" % (lock, json.dumps(record), lock))
    held = rollback()
    assert held.returncode != 0 and "is held by deploy 9.9.9 by carol" in held.stdout, held.stdout[-3000:]
    assert "carol-1" in on("lb1", "cat %s/holder.json" % lock), "a lock held by another run is never removed"
    # the same lock two hours old: its run died; taken over with a warning, and released at the end of this run
    on("lb1", "echo '%s' > %s/holder.json" % (json.dumps(dict(record, since_epoch=time.time() - 7200)), lock))
    # 1.0.0, the oldest release, is live: there is nothing before it to go back to
    none = rollback()
    assert "died without releasing it; taken over" in none.stdout + none.stderr, none.stdout[-3000:]
    assert none.returncode != 0 and "there is no release to roll back to: no release before '1.0.0'" in none.stdout, none.stdout[-3000:]
    assert on("lb1", "test -e %s && echo held || echo free" % lock).strip() == "free"
    for result in (unknown, bad, held, none):
        assert changed_tasks(result.stdout, skip_ending=True) == []
    assert digest("lb1", UPSTREAM_FILE) == pool and versions_through_lb() == {"1.0.0"}
