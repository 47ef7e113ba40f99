"""The daily runbook as AWX runs it (tests/helpers/awx_job.py: ansible_runner on a fresh private data dir per job,
the machine credential's key in env/ssh_key, extra vars as strings), then as a sliced job (3 slices at once, each on
its share of the inventory, in one workflow job), with only the report and notification directories kept between
jobs. One fault (app2's API stopped) gives the run something to report and page.

Proven: rc/status, the failed host in runner_on_failed events and the stats artifact; the sliced job writes one report
that says what the unsliced job's report says, sends nothing the first job sent already (the ledger outlived the job),
fails the same host; no secret in any event or artifact file of any job.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.awx_job import AwxJob, assert_no_secret, lab_secrets  # noqa: E402
from helpers.runbook import EPHEMERAL, PROJECT, RECEIVER, inventory_dir, on, receiver_clear, receiver_messages, scenario_extra_vars  # noqa: E402

SLACK_PATH = "/slack/T0AWX/B0AWX/awx-secret-token"
PAGER_KEY = "rk-awx-job-0007"


def said(report):
    """What a report says about the fleet: every row's checks and statuses, the problems and the counts."""
    rows = dict((host, sorted((check["name"], check["status"], check["alert"]) for check in entry["checks"]))
                for host, entry in report["hosts"].items())
    problems = sorted((p["host"], p["name"], p["status"], p["alert"]) for p in report["problems"])
    return report["status"], rows, problems, report["summary"]


def test_sliced_job_reports_and_alerts_as_the_unsliced_job(tmp_path):
    durable = tmp_path / "durable"
    extravars = dict(scenario_extra_vars(), daily_report_dir=str(durable / "reports"), daily_notify_state_dir=str(durable / "notify"),
                     daily_notify_channels=[
                         {"name": "slack", "kind": "slack", "url": RECEIVER + SLACK_PATH, "severities": ["critical", "high"], "team": True},
                         {"name": "pager", "kind": "pager", "url": RECEIVER + "/pager", "routing_key": PAGER_KEY, "severities": ["critical"]}])
    job = AwxJob(tmp_path / "jobs", "daily", inventory_dir(), extravars)
    receiver_clear()
    on("app2", "systemctl stop dealerscope-api")
    try:
        whole = job.run()
        first_alerts = receiver_messages()
        slices = job.run_sliced(3, "4711")
    finally:
        on("app2", "systemctl start dealerscope-api")

    assert (whole.rc, whole.status) == (2, "failed"), whole.stdout[-3000:]
    assert whole.failed_hosts() == ["app2"], "\n".join(e["event_data"]["res"].get("msg", "")[:600] for e in whole.events
                                                       if e["event"] == "runner_on_failed")
    outcome = whole.outcome("daily")
    assert outcome["status"] == "critical" and outcome["failed_hosts"] == ["app2"] and outcome["hosts"] >= 6
    assert outcome["report_url"].startswith(str(durable / "reports" / "daily" / "2"))
    unsliced = json.loads((durable / "reports" / "daily" / "latest" / "report.json").read_text())
    assert unsliced["meta"]["job"]["template"] == "DealerScope daily" and unsliced["meta"]["job"]["launched_by"] == "oncall"
    pages = [m["body"]["dedup_key"] for m in first_alerts if m["path"] == "/pager"]
    assert "service_down|app2|service:dealerscope-api.service" in pages and all("|app2|" in page for page in pages), pages

    for result in slices:
        assert result.status in ("successful", "failed"), result.stdout[-3000:]
    # the run's stats key only from the slice that merged it (AWX keeps the last finished job's value per key)
    artifacts = [result.stats()["artifact_data"] for result in slices]
    merged = [data["dealerscope_daily"] for data in artifacts if "dealerscope_daily" in data]
    assert len(merged) == 1 and merged[0]["slice"]["merged"], artifacts
    partial = sorted((key, value["slice"]["merged"]) for data in artifacts for key, value in data.items() if key != "dealerscope_daily")
    assert partial == [("dealerscope_daily_slice_1", False), ("dealerscope_daily_slice_2", False)], partial
    assert merged[0]["failed_hosts"] == ["app2"] and merged[0]["status"] == "critical"
    assert sorted(host for result in slices for host in result.failed_hosts()) == ["app2"]  # each slice fails its own
    # the service is probed once, from the slice holding the load balancer - not three times at once
    probed = [[e["event"] for e in result.events if e["event"] in ("runner_on_ok", "runner_on_skipped")
               and e["event_data"].get("task", "").startswith("Service SLOs through the load balancer")] for result in slices]
    assert sorted(probed) == [["runner_on_ok"], ["runner_on_skipped"], ["runner_on_skipped"]], probed
    report = json.loads((durable / "reports" / "daily" / "latest" / "report.json").read_text())
    assert report["meta"]["slices"]["run"] == "4711" and len(report["meta"]["slices"]["jobs"]) == 3
    assert report["meta"]["hosts"] == unsliced["meta"]["hosts"] == 5
    assert said(report) == said(unsliced)
    assert len(list((durable / "reports" / "daily").glob("2*"))) == 2  # one report per job, not one per slice
    later = receiver_messages()[len(first_alerts):]
    # the ledger outlived the job: nobody is paged twice; the team gets the run's one status update (not one per slice)
    assert [m["path"] for m in later] == [SLACK_PATH], later
    assert later[0]["body"]["text"].startswith("[daily runbook] DealerScope daily: CRITICAL - 6 hosts"), later[0]["body"]["text"]

    for result in [whole] + slices:
        text = result.artifact_text()
        assert SLACK_PATH not in text and "awx-secret-token" not in text and PAGER_KEY not in text


EE_IMAGE = "localhost/dealerscope-ops-ee:lab"


def test_jobs_in_the_execution_environment_image_report_and_page_once(tmp_path):
    """The image lab/bin/ee-build.sh builds from execution-environment.yml (make ee; make test builds it first) runs
    the job as AWX runs it in a container: the collection is the image's (nothing of the checkout is mounted but the
    private data dir's project copy), the report and the ledger go to the one mounted durable path; two jobs, each in
    a new container with nothing kept of the one before: the second pages nobody again."""
    from helpers.lab_conf import containers_conf  # pylint: disable=import-outside-toplevel
    exists = subprocess.run(["podman", "image", "exists", EE_IMAGE], env=dict(os.environ, CONTAINERS_CONF=containers_conf()), check=False)
    assert exists.returncode == 0, "no %s: build it with make ee (lab/bin/ee-build.sh)" % EE_IMAGE
    durable = tmp_path / "durable"
    durable.mkdir()
    extravars = dict(scenario_extra_vars(), daily_report_dir=str(durable / "reports"), daily_notify_state_dir=str(durable / "notify"),
                     daily_notify_channels=[
                         {"name": "pager", "kind": "pager", "url": RECEIVER + "/pager", "routing_key": PAGER_KEY, "severities": ["critical"]}])
    # the lab's own files the inventory reads (its CA, its generated passwords) are exposed read-only, as a credential would be
    job = AwxJob(tmp_path / "jobs", "daily", inventory_dir(), extravars, image=EE_IMAGE, mounts=[durable, "%s:ro" % EPHEMERAL])
    receiver_clear()
    on("app2", "systemctl stop dealerscope-api")
    try:
        first = job.run()
        pages = receiver_messages()
        second = job.run()
    finally:
        on("app2", "systemctl start dealerscope-api")
    for result in (first, second):
        assert (result.rc, result.status) == (2, "failed"), result.stdout[-3000:]
        assert result.failed_hosts() == ["app2"], result.stdout[-3000:]
        assert result.outcome("daily")["failed_hosts"] == ["app2"] and result.outcome("daily")["status"] == "critical"
        paths = set(event["event_data"].get("task_path", "").split(":")[0] for event in result.events if event["event"] == "playbook_on_task_start")
        image_roles = "/usr/share/ansible/collections/ansible_collections/dealerscope/ops/roles/"
        role_paths = [path for path in paths if "/roles/" in path]
        assert role_paths and all(path.startswith(image_roles) for path in role_paths), sorted(paths)[:5]
        assert str(PROJECT) not in result.artifact_text()  # nothing of the checkout
    assert any(m["path"] == "/pager" and m["body"]["dedup_key"] == "service_down|app2|service:dealerscope-api.service" for m in pages), pages
    assert [m for m in receiver_messages()[len(pages):] if m["path"] == "/pager"] == []  # the ledger outlived the container
    assert len(list((durable / "reports" / "daily").glob("2*"))) == 2
    assert_no_secret([first, second], PAGER_KEY, *lab_secrets())
