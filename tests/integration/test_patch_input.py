"""Bad input to dealerscope.ops.patch is refused with a message naming the variable, before any
host is contacted: the inventory points at a closed port, so any contact would show up as
UNREACHABLE instead of the preflight message."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position


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
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, extra, needle):
    result = run_patch(inventory, extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert needle in output, output[-3000:]
    assert not contacted(output)


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
