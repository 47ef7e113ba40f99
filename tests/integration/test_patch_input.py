"""Bad input to dealerscope.ops.patch is refused with a message naming the variable, before any
host is contacted: the inventory points at a closed port, so any contact would show up as
UNREACHABLE instead of the preflight message."""
import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import assert_refused_before_contact, closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return closed_port_inventory(tmp_path_factory.mktemp("inv") / "hosts.yml", hosts=("ghost1", "ghost2"),
                                 extra_groups="    empty_group:\n      hosts: {}\n")


def run_patch(inventory, extra):
    base = {"patching_report_dir": "/tmp/ds-patch-input-test", "patching_lb_backend": "none", "patching_pools": []}
    base.update(extra)
    return run(inventory, "dealerscope.ops.patch", base)


@pytest.mark.parametrize("extra,needle", [
    ({"patching_serial": 0}, "patching_serial"),
    ({"patching_serial": "0%"}, "patching_serial"),
    ({"patching_serial": "abc"}, "patching_serial"),
    ({"patching_mode": "everything"}, "patching_mode is 'everything'"),
    ({"patching_reboot": "sometimes"}, "patching_reboot is 'sometimes'"),
    ({"patching_windows": [{"days": ["sat"], "start": "05:00", "end": "02:00"}]}, "patching_windows[0]"),
    ({"patching_windows": [{"days": ["caturday"], "start": "01:00", "end": "02:00"}]}, "patching_windows[0]"),
    ({"patching_freeze": [{"start": "2026-13-40", "end": "2027-01-03", "reason": "x"}]}, "patching_freeze[0]"),
    ({"patching_freeze": [{"start": "2027-01-03", "end": "2026-12-20", "reason": "x"}]}, "patching_freeze[0]"),
    ({"patching_timezone": "Mars/Olympus"}, "patching_timezone"),
    ({"patching_group": "empty_group"}, "patching_group 'empty_group' matches no host"),
    ({"patching_group": "no_such_group"}, "patching_group 'no_such_group' matches no host"),
    ({"patching_canary": "ghost9"}, "patching_canary"),
    ({"patching_max_fail_percentage": 101}, "patching_max_fail_percentage is 101"),
    ({"patching_override_window": True}, "patching_override_reason"),
    ({"patching_lb_backend": "nginx", "patching_lb_hosts": ["nowhere"]}, "patching_lb_hosts"),
    ({"patching_pools": [{"group": "app", "min_healthy": 2}]}, "patching_pools[0]"),
    ({"patching_db_ready_timeout": -1}, "patching_db_ready_timeout is -1"),
    ({"patching_db_ready_timeout": 4000}, "patching_db_ready_timeout is 4000"),
    ({"patching_db_ready_timeout": "soon"}, "patching_db_ready_timeout is soon"),
    ({"patching_allow_traffic_interruption": "maybe"}, "patching_allow_traffic_interruption is 'maybe' - use true or false"),
    ({"patching_report_dir": "/etc/hostname/reports"}, "report_dir /etc/hostname/reports cannot hold the patch run's files"),
    ({"patching_report_keep": "0"}, "report_keep must be at least 1"),
    ({"runbook_end_severity_map": {"patch_failed": "p1"}}, "severity_map.patch_failed: invalid severity 'p1'"),
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, extra, needle):
    result = run_patch(inventory, extra)
    assert_refused_before_contact(result, needle)


def test_outside_the_window_nothing_is_contacted(inventory):
    """A valid window that is not now: refused with the next opening, before any host is contacted."""
    result = run_patch(inventory, {"patching_freeze": [{"start": "2000-01-01", "end": "2999-12-31", "reason": "test freeze"}]})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "refused, nothing was changed" in output and "test freeze" in output, output[-3000:]
    assert not contacted(output)


def test_good_input_does_contact_hosts(inventory):
    """The control case: with valid input the same inventory is contacted (and unreachable), and refused."""
    result = run_patch(inventory, {})
    output = result.stdout + result.stderr
    assert contacted(output)
    assert "refused before any change" in output and "ghost1: unreachable" in output, output[-3000:]
    assert result.returncode != 0


# ------------------------------------------------------------------------------------------------
# The only load balancer (item 4 of issue 8): patching it interrupts all traffic, so the run is
# refused before any host is contacted unless patching_allow_traffic_interruption is true. The
# switch arrives as a string, as from -e key=value, cron or an AWX survey.

REPORT = pathlib.Path("/tmp/ds-patch-input-test/patch/latest/report.json")
LB_HOST = "        ghostlb{n}: {{ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}}\n"


@pytest.fixture(scope="module")
def lb_inventory(tmp_path_factory):
    """ghost1, ghost2 (app) and the load balancers ghostlb1 (the only one) and, in group two_lbs, ghostlb1 + ghostlb2."""
    groups = ("    loadbalancers:\n      hosts:\n" + LB_HOST.format(n=1)
              + "    two_lbs:\n      hosts:\n" + LB_HOST.format(n=1) + LB_HOST.format(n=2))
    return closed_port_inventory(tmp_path_factory.mktemp("lbinv") / "hosts.yml", hosts=("ghost1", "ghost2"), extra_groups=groups)


@pytest.mark.parametrize("switch", [None, "false", "no"])
def test_patching_the_only_load_balancer_is_refused_before_any_host_is_contacted(lb_inventory, switch):
    extra = {"patching_group": "app:loadbalancers"}
    if switch is not None:
        extra["patching_allow_traffic_interruption"] = switch
    result = run_patch(lb_inventory, extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "refused, nothing was changed - batch 3 patches ghostlb1, every load balancer of patching_lb_hosts" in output, output[-3000:]
    assert "patching_allow_traffic_interruption=true" in output
    assert not contacted(output)


def test_the_operator_may_accept_the_interruption_and_the_report_says_so(lb_inventory):
    """With the switch (a string "true") the run goes on: the hosts are contacted (and unreachable here, so refused in
    the plan), and the plan report says patching ghostlb1 interrupts all traffic."""
    REPORT.unlink(missing_ok=True)
    result = run_patch(lb_inventory, {"patching_group": "app:loadbalancers", "patching_allow_traffic_interruption": "true"})
    output = result.stdout + result.stderr
    assert "every load balancer of patching_lb_hosts" not in output, output[-3000:]
    assert contacted(output) and "ghostlb1: unreachable" in output, output[-3000:]
    report = json.loads(REPORT.read_text())
    traffic = [c for c in report["hosts"]["ghostlb1"]["checks"] if c["name"] == "traffic"]
    assert traffic and traffic[0]["status"] == "warning" and "would interrupt all traffic" in traffic[0]["message"], report["hosts"]["ghostlb1"]
    assert not [c for c in report["hosts"]["ghost1"]["checks"] if c["name"] == "traffic"]


def test_a_load_balancer_with_a_peer_left_serving_is_not_refused(lb_inventory):
    result = run_patch(lb_inventory, {"patching_group": "app:ghostlb1", "patching_lb_hosts": ["ghostlb1", "ghostlb2"]})
    output = result.stdout + result.stderr
    assert "every load balancer of patching_lb_hosts" not in output and contacted(output), output[-3000:]


def test_every_load_balancer_in_one_batch_is_refused(lb_inventory):
    result = run_patch(lb_inventory, {"patching_group": "two_lbs", "patching_order": ["two_lbs"], "patching_serial": 2, "patching_canary": False,
                                      "patching_lb_hosts": ["ghostlb1", "ghostlb2"]})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "batch 1 patches ghostlb1, ghostlb2, every load balancer of patching_lb_hosts" in output, output[-3000:]
    assert not contacted(output)


def test_a_plan_of_the_only_load_balancer_is_not_refused(lb_inventory):
    """A plan changes nothing: it may include the only load balancer (and its report says a real run would interrupt traffic)."""
    result = run_patch(lb_inventory, {"patching_group": "app:loadbalancers", "patching_plan_only": "true"})
    output = result.stdout + result.stderr
    assert "every load balancer of patching_lb_hosts" not in output and contacted(output), output[-3000:]
