"""Rolling patching on a real stack: converge patched both app hosts while 20 req/s ran through lb1;
the tests below look at the hosts, the load balancer, reports and notifications, then run
dealerscope.ops.patch again (re-run, plan of the whole fleet, --check, a closed window).
They run in file order. Faults: molecule/patching_faults."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.awx_job import assert_no_secret, scenario_job  # noqa: E402
from helpers.runbook import EPHEMERAL, checks_by, latest_report, on, receiver_messages, run_module, run_playbook  # noqa: E402
from helpers.patching import APPS, PATCH, boot_time, fact, host_changes, reset, snapshot, upstream_line, versions  # noqa: E402


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


CHANGES_PLAY = """
- name: Known changes (no state is touched), some delegated as the rollout delegates them
  hosts: app1:app2
  gather_facts: false
  tasks:
    - name: A change on app1 itself
      ansible.builtin.command: "true"
      changed_when: inventory_hostname == 'app1'
    - name: A change app1 delegates to lb1
      ansible.builtin.command: "true"
      changed_when: true
      delegate_to: lb1
      when: inventory_hostname == 'app1'
    - name: A change app1 delegates to every load balancer (loop, as the drain does)
      ansible.builtin.command: "true"
      changed_when: true
      delegate_to: "{{ item }}"
      loop: [lb1]
      when: inventory_hostname == 'app1'
    - name: A change on the controller (reports, notifications)
      ansible.builtin.command: "true"
      changed_when: true
      delegate_to: localhost
      run_once: true
"""


def test_host_changes_counts_delegated_changes_where_they_happen(tmp_path):
    """host_changes, which the re-run test relies on to say "nothing changed", reads the output of a real run with
    the same runner and callback: changes delegated to lb1 count for lb1, app1's own for app1, the controller's not."""
    play = tmp_path / "changes.yml"
    play.write_text(CHANGES_PLAY)
    result = run_playbook(str(play))
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"^changed: \[app1 -> lb1", result.stdout, re.M), result.stdout[-3000:]  # the form host_changes parses
    assert host_changes(result.stdout) == {"app1": 1, "lb1": 2}, result.stdout[-3000:]


def test_second_run_as_an_awx_job_changes_nothing_on_any_host(tmp_path):
    result = scenario_job(tmp_path, "patch").run()  # as AWX runs it (tests/helpers/awx_job.py)
    assert (result.rc, result.status) == (0, "successful"), result.stdout[-3000:]
    assert result.host_changes() == {}, result.changed_tasks()
    stats = result.stats()
    assert "app1" in stats["ok"] and not stats["failures"] and not stats["dark"], stats
    outcome = result.outcome("patch")
    assert (outcome["status"], outcome["failed_hosts"]) == ("ok", []), outcome
    assert_no_secret([result])
    report, base = latest_report("patch")
    for host in APPS:
        assert checks_by(report, host)["patch"]["message"].startswith("nothing to upgrade")


def pending(host):
    """host_health's pending updates on the host (as the daily runbook runs it, the updates cache included)."""
    result = run_module(host, "dealerscope.ops.host_health", {"cpu_sample_seconds": 0.1, "cpu_average_hours": 0})
    updates = result["health"]["updates"]
    return sorted(package["name"] for package in updates["packages"]), updates["cache"]


def test_the_daily_updates_check_follows_the_packages_not_its_cache():
    """host_health keeps apt's simulation in a cache on the host (updates_cache): a repeated run reads it, and the
    packages changing under it (here a downgrade to 1.0, as an upgrade would) show at once, never the old answer."""
    names, cache = pending("app1")
    assert not [name for name in names if name.startswith("dslab-")], names  # patched: nothing of the lab's pending
    names, cache = pending("app1")
    assert cache["used"] is True, cache
    reset("app1")  # back to 1.0: dpkg's status changed
    names, cache = pending("app1")
    assert (cache["used"], cache["reason"]) == (False, "apt state changed"), cache
    assert "dslab-libdemo" in names, names
    names, cache = pending("app1")
    assert cache["used"] is True and "dslab-libdemo" in names, (names, cache)


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
    # The role judges windows in patching_timezone (the patch_window filter), given here so no inventory can change it.
    # The window comes from this run's own start: all day on every weekday except the start's day and the next one.
    # The run (at most run_playbook's 300 s) may cross one midnight, not two, so it stays outside the window throughout,
    # and the next window opens at 00:00 two days after the start's day.
    start = time.gmtime()
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    closed = (days[start.tm_wday], days[(start.tm_wday + 1) % 7])
    window = {"days": [d for d in days if d not in closed], "start": "00:00", "end": "24:00"}
    result = run_playbook(PATCH, extra_vars={"patching_timezone": "UTC", "patching_windows": [window]})
    assert result.returncode != 0
    assert "refused, nothing was changed" in result.stdout, result.stdout[-2000:]
    assert "next window opens" in result.stdout and "(%s 00:00 UTC)" % days[(start.tm_wday + 2) % 7] in result.stdout, result.stdout[-2000:]
    assert snapshot() == before
