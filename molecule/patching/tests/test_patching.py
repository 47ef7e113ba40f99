"""Rolling patching on a real stack: converge patched both app hosts under load; the tests below
run dealerscope.ops.patch again against real state and assert on hosts, the load balancer, reports
and notifications. They run in file order (each leaves the fleet as the next one expects)."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.runbook import EPHEMERAL, checks_by, latest_report, on, receiver_clear, receiver_messages, run_playbook  # noqa: E402

PATCH = "dealerscope.ops.patch"
APPS = ("app1", "app2")
PKGS = ("dslab-libdemo", "dslab-tools", "dslab-kernel-stub")
UPSTREAM = "/etc/nginx/sites-available/dealerscope.conf"


def versions(host):
    out = on(host, "dpkg-query -W -f='${Package} ${Version}\\n' 'dslab-*'")
    return dict(line.split() for line in out.splitlines() if line.strip())


def boot_time(host):
    return on(host, "awk '{print $22}' /proc/1/stat").strip()


def upstream_line(host):
    text = on("lb1", "cat %s" % UPSTREAM)
    return [line.strip() for line in text.splitlines() if line.strip().startswith("server %s:8000" % host)][0]


def fact(host):
    text = on(host, "cat /etc/ansible/facts.d/dealerscope_patching.fact 2>/dev/null || echo '{}'")
    return json.loads(text)


def reset(host, extra_packages=()):
    """Back to the 1.0 packages (pending 1.1 updates), nothing marked, the API mapping the 1.0 library."""
    pkgs = " ".join("%s=1.0" % p for p in PKGS + tuple(extra_packages))
    on(host, "apt-get install -y -q --allow-downgrades %s >/dev/null 2>&1 && rm -f /run/reboot-required /run/reboot-required.pkgs "
             "/etc/ansible/facts.d/dealerscope_patching.fact /etc/dealerscope/faults.json && systemctl restart dealerscope-api" % pkgs)


def host_changes(output):
    """Changed task results per managed host: `changed: [app1]` and `changed: [app1 -> lb1]` count (the
    latter for lb1, where the change happened); results delegated to the controller (reports, notifications) do not."""
    rows = {}
    for match in re.finditer(r"^changed: \[([^\]\s]+)(?: -> ([^\]\s]+))?\]", output, re.M):
        where = (match.group(2) or match.group(1)).split("(")[0]
        if where != "localhost":
            rows[where] = rows.get(where, 0) + 1
    return rows


def snapshot():
    """Everything a patch run could change on the fleet."""
    state = {}
    for host in APPS:
        state[host] = (versions(host), boot_time(host), fact(host), on(host, "systemctl show -p MainPID --value dealerscope-api"),
                       on(host, "ls /run/reboot-required 2>/dev/null; true"))
    state["lb1"] = (on("lb1", "md5sum %s" % UPSTREAM), on("lb1", "pgrep -f '^nginx: worker' | sort"))
    return state


def test_rolling_patch_under_load_dropped_no_request():
    load = json.loads((EPHEMERAL / "load.json").read_text())
    assert load["sent"] >= 200, load  # 20 req/s for the whole run
    assert load["failed"] == 0 and load["skipped"] == 0, load["errors"]
    report, base = latest_report("patch")
    assert report["meta"]["kind"] == "rollout" and report["status"] in ("ok", "warning"), report["problems"]
    assert report["meta"]["counts"]["patched"] == 2 and report["meta"]["counts"]["failed"] == 0
    assert report["meta"]["batches"] == [["app1"], ["app2"]] and report["meta"]["canary"] == "app1"


def test_packages_upgraded_held_package_kept_hosts_rebooted_and_back_in_pool():
    assert versions("app1") == {"dslab-kernel-stub": "1.1", "dslab-libdemo": "1.1", "dslab-tools": "1.1"}
    assert versions("app2") == {"dslab-kernel-stub": "1.1", "dslab-libdemo": "1.1", "dslab-tools": "1.0"}  # held
    report, base = latest_report("patch")
    for host in APPS:
        assert boot_time(host) != (EPHEMERAL / ("boot_before_%s" % host)).read_text().strip(), "%s was not rebooted" % host
        assert "down" not in upstream_line(host).split("#")[0]
        checks = checks_by(report, host)
        assert checks["reboot"]["message"].startswith("rebooted")
        assert checks["pool"]["value"] > 0 and checks["postcheck"]["status"] == "ok"
        assert fact(host)["status"] == "ok" and fact(host)["reboot_required"] in (False, "False", "false")
        assert on(host, "test -e /run/reboot-required && echo yes || echo no").strip() == "no"
    assert checks_by(report, "app1")["restarts"]["details"]["restarted"] == ["dealerscope-api.service"]
    assert checks_by(report, "app1")["precheck"]["status"] == "ok"
    held = [p for p in checks_by(report, "app2")["plan"]["details"]["packages"] if p["name"] == "dslab-tools"][0]
    assert held["held"] is True and held["action"] == "skip"
    assert (base / "report.md").exists() and (base / "report.html").exists()


def test_team_was_told_start_and_finish():
    texts = [m["body"].get("text", "") for m in receiver_messages() if m["path"] == "/slack"]
    assert any("patching started" in t for t in texts), texts[-5:]
    assert any("patching finished" in t for t in texts), texts[-5:]


def test_plan_of_the_whole_fleet_orders_standby_before_primary():
    result = run_playbook(PATCH, extra_vars={"patching_group": "dealerscope", "patching_plan_only": True, "patching_mode": "security"})
    assert result.returncode == 0, result.stdout[-3000:]
    report, base = latest_report("patch")
    assert report["meta"]["kind"] == "plan"
    assert report["meta"]["batches"] == [["db2"], ["db1"], ["app1"], ["app2"], ["lb1"]] and report["meta"]["canary"] == "db2"
    db1 = {p["name"]: p for p in checks_by(report, "db1")["plan"]["details"]["packages"]}
    assert db1["dslab-libdemo"]["action"] == "upgrade" and db1["dslab-libdemo"]["security"] is True
    assert db1["dslab-tools"]["action"] == "skip" and db1["dslab-tools"]["skip_reason"] == "not a security update (mode security)"
    assert versions("db1")["dslab-libdemo"] == "1.0"  # plan only: nothing changed


def test_host_changes_counts_delegated_changes_where_they_happen():
    sample = ("changed: [app1 -> lb1(127.0.0.1)] => (item=lb1)\nchanged: [app1]\nok: [app2]\n"
              "changed: [app1 -> localhost] => \nchanged: [localhost]\n")
    assert host_changes(sample) == {"lb1": 1, "app1": 1}


def test_second_run_changes_nothing_on_any_host():
    result = run_playbook(PATCH)
    assert result.returncode == 0, result.stdout[-3000:]
    assert host_changes(result.stdout) == {}, result.stdout[-3000:]
    assert re.search(r"^app1\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", result.stdout, re.M)
    report, base = latest_report("patch")
    for host in APPS:
        assert checks_by(report, host)["patch"]["message"].startswith("nothing to upgrade")


def test_check_mode_changes_nothing_anywhere():
    reset("app1")
    before = snapshot()
    result = run_playbook(PATCH, "--check", "--diff")
    assert result.returncode == 0, result.stdout[-3000:]
    assert snapshot() == before
    assert "+dslab-libdemo 1.1" in result.stdout  # the diff of what would change
    report, base = latest_report("patch")
    assert report["meta"]["kind"] == "plan" and report["meta"]["check_mode"] is True
    assert checks_by(report, "app1")["plan"]["value"] == 3
    assert "dealerscope-api.service" in checks_by(report, "app1")["plan"]["details"]["restarts_predicted"]
    assert checks_by(report, "app1")["plan"]["details"]["reboot_predicted"] is True


def test_outside_the_maintenance_window_nothing_changes():
    before = snapshot()
    today = time.strftime("%a", time.gmtime()).lower()
    other = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d != today]
    result = run_playbook(PATCH, extra_vars={"patching_windows": [{"days": other, "start": "00:00", "end": "24:00"}]})
    assert result.returncode != 0
    assert "refused, nothing was changed" in result.stdout and "next window opens" in result.stdout, result.stdout[-2000:]
    assert snapshot() == before


def test_failed_post_check_halts_the_rollout_and_leaves_the_host_drained():
    reset("app2")
    on("app2", "apt-mark unhold dslab-tools >/dev/null")
    reset("app1")
    on("app1", "apt-get install -y -q dslab-hookbreak=1.0 >/dev/null 2>&1")  # its 1.1 postinst breaks the API
    app2_before = (versions("app2"), boot_time("app2"), upstream_line("app2"))
    receiver_clear()
    result = run_playbook(PATCH)
    assert result.returncode != 0
    assert "stopped at app1" in result.stdout, result.stdout[-3000:]
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
    assert "app1: left drained and marked failed by a previous run" in result.stdout, result.stdout[-2000:]
    on("app1", "rm -f /etc/dealerscope/faults.json")  # the operator fixes the host
    result = run_playbook(PATCH, extra_vars={"patching_retry_failed": True})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "down" not in upstream_line("app1").split("#")[0] and fact("app1")["status"] == "ok"
    assert versions("app2")["dslab-tools"] == "1.1" and fact("app2")["status"] == "ok"
