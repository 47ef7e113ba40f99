"""dealerscope.ops.deploy on the lab stack: 1.1.0 (prepare) then 2.0.0 under load (converge).

Order matters (pytest runs a file top to bottom): the converged state is checked first, then runs that change
nothing, then a release staged without traffic and promoted (2.1.0), then flags.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.deploy import (APP_HOSTS, UPSTREAM_FILE, deploy, digest, get, layout, load, upstream,  # noqa: E402
                            versions_through_lb)
from helpers.awx_job import assert_changed_nothing, scenario_job  # noqa: E402
from helpers.runbook import EPHEMERAL, changed_tasks, latest_report, on, receiver_messages, run_playbook  # noqa: E402

testinfra_hosts = ["localhost"]


def test_the_load_through_lb1_had_no_failed_request_while_2_0_0_took_over():
    summary = json.loads((EPHEMERAL / "load.json").read_text())
    assert summary["sent"] >= 100 and summary["failed"] == 0 and summary["skipped"] == 0, summary
    assert versions_through_lb() == {"2.0.0"}


def test_the_report_shows_every_canary_step_and_the_event_was_sent():
    report, dummy = latest_report("deploy")
    assert report["status"] == "ok", report["problems"]
    assert report["meta"]["version"] == "2.0.0" and report["meta"]["previous_release"] == "1.1.0"
    assert report["meta"]["steps_done"] == [10, 50, 100]
    assert [m["version"] for m in report["meta"]["migrations"]] == [1, 2]
    for host in APP_HOSTS:
        message = report["hosts"][host]["checks"][0]["message"]
        assert "2.0.0 live on green" in message and "blue keeps 1.1.0 warm" in message, message
    events = [m for m in receiver_messages() if m["path"] == "/releases"]
    assert any("2.0.0 is live on green" in json.dumps(m["body"]) for m in events), events


def test_green_runs_2_0_0_blue_keeps_1_1_0_warm_and_the_single_instance_is_gone():
    for host in APP_HOSTS:
        assert layout(host)["current"] == "2.0.0" and layout(host)["green"] == "2.0.0" and layout(host)["blue"] == "1.1.0"
        # blue answers on its own port with the old release (warm for an instant rollback)
        assert json.loads(on(host, "curl -sf http://127.0.0.1:8001/version"))["version"] == "1.1.0"
        assert json.loads(on(host, "curl -sf http://127.0.0.1:8002/version"))["colour"] == "green"
        assert on(host, "systemctl is-active dealerscope-api.service || true").strip() == "inactive"
        assert on(host, "systemctl is-enabled dealerscope-api.service || true").strip() == "disabled"
    # green takes all the traffic, blue stays in the pool down (warm), the single instance's :8000 lines are gone
    assert sorted(upstream()) == [
        "server app1:8001 max_fails=2 fail_timeout=5s down;", "server app1:8002 weight=1 max_fails=2 fail_timeout=5s;",
        "server app2:8001 max_fails=2 fail_timeout=5s down;", "server app2:8002 weight=1 max_fails=2 fail_timeout=5s;"], upstream()


def test_a_second_run_changes_nothing_and_its_check_predicts_that(tmp_path):
    before = digest("lb1", UPSTREAM_FILE)
    # both as AWX runs a job template of job type "run", then "check" (tests/helpers/awx_job.py)
    job = scenario_job(tmp_path, "deploy", deploy_version="2.0.0", deploy_artifact=str(EPHEMERAL / "artifacts" / "2.0.0.tar.gz"))
    for job_type in ("run", "check"):
        result = job.run(job_type)
        outcome = assert_changed_nothing(result, "deploy")
        assert "2.0.0 is already live on green: nothing to do" in result.stdout
        assert outcome["check_mode"] == (job_type == "check"), outcome
    assert digest("lb1", UPSTREAM_FILE) == before


def test_check_mode_predicts_the_changes_of_the_real_run_and_changes_nothing():
    paths = ("/opt/dealerscope/releases", "/opt/dealerscope/colours", "/opt/dealerscope/current", "/etc/dealerscope")
    before = {host: digest(host, *paths) for host in APP_HOSTS}
    before_lb = digest("lb1", UPSTREAM_FILE)
    check = deploy("2.1.0", "--check", "--diff", deploy_take_traffic="true")
    assert check.returncode == 0, check.stdout[-3000:]
    assert {host: digest(host, *paths) for host in APP_HOSTS} == before and digest("lb1", UPSTREAM_FILE) == before_lb
    predicted = changed_tasks(check.stdout, skip_ending=True)
    assert any("share of the requests - 10 % to blue" in task for task, dummy in predicted), predicted  # "true": traffic would move
    # staged only (no traffic): the real run of the same plan must report exactly what check mode predicted
    staged_check = deploy("2.1.0", "--check", deploy_take_traffic="false")
    assert not any("Shift - " in task for task, dummy in changed_tasks(staged_check.stdout)), staged_check.stdout[-3000:]
    real = deploy("2.1.0", deploy_take_traffic="false")
    assert real.returncode == 0, real.stdout[-3000:]
    assert sorted(changed_tasks(real.stdout, skip_ending=True)) == sorted(changed_tasks(staged_check.stdout, skip_ending=True))


def test_a_staged_release_takes_no_traffic_until_promoted():
    # 2.1.0 was staged by the test above: blue runs it, green (2.0.0) still has all the traffic
    for host in APP_HOSTS:
        assert layout(host)["blue"] == "2.1.0" and layout(host)["current"] == "2.0.0"
    assert versions_through_lb() == {"2.0.0"}
    assert layout("app1")["releases"] == ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]
    with load(rate=20, seconds=200) as running:
        # keep 2 (a string, as extra vars arrive): the live 2.1.0 and the rollback target 2.0.0 (warm on green) stay
        result = deploy("2.1.0", deploy_action="promote", deploy_keep="2")
    summary = running.summary()
    assert result.returncode == 0, result.stdout[-3000:]
    assert summary["failed"] == 0 and summary["skipped"] == 0 and summary["sent"] > 50, summary
    assert versions_through_lb() == {"2.1.0"}
    for host in APP_HOSTS:
        state = layout(host)
        assert state["current"] == "2.1.0" and state["green"] == "2.0.0" and state["releases"] == ["2.0.0", "2.1.0"], state


def test_promote_refuses_when_nothing_is_staged():
    result = deploy("9.9.9", deploy_action="promote")
    assert result.returncode != 0
    assert "nothing to promote on app1: the idle colour green holds 2.0.0, not 9.9.9" in result.stdout


def test_feature_flags_change_without_a_deploy_or_a_restart():
    pids = {host: on(host, "systemctl show -p MainPID --value dealerscope-api@blue.service").strip() for host in APP_HOSTS}
    # extra vars arrive as strings: "true" and "false" must mean what they say
    result = run_playbook("dealerscope.ops.feature_flags", extra_vars={"deploy_feature_flags": {"enhanced_score": "true", "new_dashboard": "false"}})
    assert result.returncode == 0, result.stdout[-3000:]
    status, body = get("/version")
    assert status == 200 and body["flags"] == ["enhanced_score"], body
    status, body = get("/api/vehicles?limit=3")
    assert status == 200 and all(row["enhanced_score"] is not None for row in body["vehicles"]), body
    assert json.loads(on("app1", "cat /etc/dealerscope/flags.json")) == {"enhanced_score": True, "new_dashboard": False}
    assert {host: on(host, "systemctl show -p MainPID --value dealerscope-api@blue.service").strip() for host in APP_HOSTS} == pids
    again = run_playbook("dealerscope.ops.feature_flags", extra_vars={"deploy_feature_flags": {"enhanced_score": "false", "new_dashboard": "false"}})
    assert again.returncode == 0
    status, body = get("/version")
    assert body["flags"] == [] and "enhanced_score" not in get("/api/vehicles?limit=1")[1]["vehicles"][0]


def test_a_flag_that_is_not_a_boolean_is_refused_before_any_change():
    before = digest("app1", "/etc/dealerscope/flags.json")
    result = run_playbook("dealerscope.ops.feature_flags", extra_vars={"deploy_feature_flags": {"enhanced_score": "maybe", "bad-name": True}})
    assert result.returncode != 0
    assert "wrong: bad-name, enhanced_score" in result.stdout or "wrong: enhanced_score, bad-name" in result.stdout, result.stdout[-2000:]
    assert digest("app1", "/etc/dealerscope/flags.json") == before
