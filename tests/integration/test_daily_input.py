"""Bad input to dealerscope.ops.daily is refused with a message naming the variable, before any
host is contacted: the inventory points at a closed port, so any contact would show up as
UNREACHABLE instead of the preflight message."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    dealerscope:\n      children:\n        app:\n          hosts:\n"
        "            ghost1: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}\n")
    return path


def run_daily(inventory, extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    base = {"daily_lb_url": "https://127.0.0.1:9", "daily_report_dir": "/tmp/ds-daily-input-test"}
    base.update(extra)
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "dealerscope.ops.daily", "-e", json.dumps(base)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("extra,needle", [
    ({"daily_endpoints": []}, "daily_endpoints is empty"),
    ({"daily_endpoints": [{"name": "api", "url": "htp:/broken", "p95_ms": 500}]}, "got htp:/broken"),
    ({"daily_endpoints": [{"name": "api", "url": "https://lb.example", "p95_ms": -5}]}, "numeric p95_ms"),
    ({"daily_error_rate_percent": -1}, "daily_error_rate_percent is -1"),
    ({"daily_error_rate_percent": "abc"}, "daily_error_rate_percent"),
    ({"daily_disk_warn_percent": 95, "daily_disk_crit_percent": 90}, "daily_disk_warn_percent is 95"),
    ({"daily_severity_map": {"service_down": "urgent"}}, "unknown severities"),
    ({"daily_fail_on": "sometimes"}, "daily_fail_on"),
    ({"daily_notify_channels": [{"name": "ops", "kind": "slack", "url": "https://hooks.example/SECRET-TOKEN", "severities": ["urgent"]}]},
     "daily_notify_channels entry ops is invalid"),
    ({"daily_notify_channels": [{"name": "ops", "kind": "slack", "url": "ftp://SECRET-TOKEN"}]}, "without an http(s) url: ops"),
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, extra, needle):
    result = run_daily(inventory, extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert needle in output, output[-3000:]
    assert "UNREACHABLE" not in output and "unreachable=1" not in output
    assert "SECRET-TOKEN" not in output


def test_good_input_does_contact_hosts(inventory):
    """The control case: with valid input the same inventory is contacted (and unreachable)."""
    result = run_daily(inventory, {"daily_notify_channels": []})
    output = result.stdout + result.stderr
    assert "UNREACHABLE" in output or "unreachable=1" in output
    assert result.returncode != 0
