"""Patching faults on a real stack: a sick peer stops the rollout before anything changes, a post-upgrade
hook that breaks the canary halts it (host left drained and marked, next host untouched, pager alert,
report naming the host and the failed check), and the marked host is refused until retried.
They run in file order (each leaves the fleet as the next one expects)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.runbook import checks_by, latest_report, on, receiver_clear, receiver_messages, run_playbook  # noqa: E402
from helpers.patching import PATCH, boot_time, fact, reset, upstream_line, versions  # noqa: E402


def said(result):
    """What the run printed, whitespace collapsed: the YAML callback folds long messages over several lines."""
    return " ".join(result.stdout.split())


def test_converge_only_planned():
    report, base = latest_report("patch")
    assert report["meta"]["kind"] == "plan" and report["meta"]["batches"] == [["app1"], ["app2"]]
    assert versions("app1")["dslab-libdemo"] == "1.0" and versions("app2")["dslab-libdemo"] == "1.0"


def test_sick_peer_stops_the_rollout_before_anything_changes():
    on("app2", "systemctl stop dealerscope-api")
    try:
        before = {host: (versions(host), boot_time(host), upstream_line(host)) for host in ("app1", "app2")}
        result = run_playbook(PATCH)
        assert result.returncode != 0
        assert "only 0 healthy peer(s) would stay in pool dealerscope_api" in said(result), result.stdout[-3000:]
        assert {host: (versions(host), boot_time(host), upstream_line(host)) for host in ("app1", "app2")} == before
        assert fact("app1") == {}  # failed before any change: not marked
        report, base = latest_report("patch")
        patch = checks_by(report, "app1")["patch"]
        assert patch["status"] == "critical" and "untouched (failed before any change)" in patch["message"]
        assert report["meta"]["stopped"]["host"] == "app1" and report["meta"]["counts"]["not_reached"] == 1
    finally:
        on("app2", "systemctl start dealerscope-api")


def test_failed_post_check_halts_the_rollout_and_leaves_the_host_drained():
    reset("app2")
    on("app2", "apt-mark unhold dslab-tools >/dev/null")
    reset("app1")
    on("app1", "apt-get install -y -q dslab-hookbreak=1.0 >/dev/null 2>&1")  # its 1.1 postinst breaks the API
    app2_before = (versions("app2"), boot_time("app2"), upstream_line("app2"))
    receiver_clear()
    result = run_playbook(PATCH)
    assert result.returncode != 0
    assert "stopped at app1" in said(result), result.stdout[-3000:]
    # app1: upgraded, broken by the hook, left out of the pool and marked
    assert versions("app1")["dslab-hookbreak"] == "1.1"
    line = upstream_line("app1")
    assert " down" in line and "dealerscope.ops drained" in line, line
    assert fact("app1")["status"] == "failed"
    # app2: the next host was not touched at all
    assert (versions("app2"), boot_time("app2"), upstream_line("app2")) == app2_before
    report, base = latest_report("patch")
    app1 = checks_by(report, "app1")
    assert app1["patch"]["status"] == "critical" and "left out of the pool and marked failed" in app1["patch"]["message"]
    assert app1["postcheck"]["status"] == "critical" and "503" in json.dumps(app1["postcheck"]["details"])
    assert checks_by(report, "app2")["patch"]["alert"] == "patch_not_reached"
    assert "rollout stopped at app1" in checks_by(report, "app2")["patch"]["message"]
    pages = [m for m in receiver_messages() if m["path"] == "/pager"]
    assert any("app1" in json.dumps(m["body"]) and "patch_failed" in json.dumps(m["body"]) for m in pages), pages


def test_marked_host_is_refused_until_retried_then_returns_to_the_pool():
    result = run_playbook(PATCH)
    assert result.returncode != 0
    assert "app1: left drained and marked failed by a previous run" in said(result), result.stdout[-2000:]
    on("app1", "rm -f /etc/dealerscope/faults.json")  # the operator fixes the host
    result = run_playbook(PATCH, extra_vars={"patching_retry_failed": True})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "down" not in upstream_line("app1").split("#")[0] and fact("app1")["status"] == "ok"
    assert versions("app2")["dslab-tools"] == "1.1" and fact("app2")["status"] == "ok"
