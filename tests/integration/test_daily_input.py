"""Bad input to dealerscope.ops.daily is refused with a message naming the variable, before any
host is contacted: the inventory points at a closed port, so any contact would show up as
UNREACHABLE instead of the preflight message."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return closed_port_inventory(tmp_path_factory.mktemp("inv") / "hosts.yml")


def run_daily(inventory, extra, args=()):
    base = {"daily_lb_url": "https://127.0.0.1:9", "daily_report_dir": "/tmp/ds-daily-input-test"}
    base.update(extra)
    return run(inventory, "dealerscope.ops.daily", base, args)


@pytest.mark.parametrize("extra,needle", [
    ({"daily_endpoints": []}, "daily_endpoints is empty"),
    ({"daily_endpoints": [{"name": "api", "url": "htp:/broken", "p95_ms": 500}]}, "got htp:/broken"),
    ({"daily_endpoints": [{"name": "api", "url": "https://lb.example", "p95_ms": -5}]}, "numeric p95_ms"),
    ({"daily_error_rate_percent": -1}, "daily_error_rate_percent is -1"),
    ({"daily_error_rate_percent": "abc"}, "daily_error_rate_percent"),
    ({"daily_disk_warn_percent": 95, "daily_disk_crit_percent": 90}, "daily_disk_warn_percent is 95"),
    ({"runbook_end_severity_map": {"service_down": "urgent"}}, "severity_map.service_down: invalid severity 'urgent'"),
    ({"runbook_end_report_templates": "/nonexistent/templates"}, "report_templates /nonexistent/templates is not a directory"),
    ({"daily_report_dir": "/etc/hostname/reports"}, "report_dir /etc/hostname/reports cannot hold the daily run's files: /etc/hostname is not a directory"),
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
    assert not contacted(output)
    assert "SECRET-TOKEN" not in output


def test_good_input_does_contact_hosts(inventory):
    """The control case: with valid input the same inventory is contacted (and unreachable)."""
    result = run_daily(inventory, {"daily_notify_channels": []})
    output = result.stdout + result.stderr
    assert contacted(output)
    assert result.returncode != 0


def test_tags_preflight_only_checks_the_input(inventory):
    """`--tags preflight` (an AWX job tag, or a dry check of a survey's answers) runs the checks and nothing else."""
    good = run_daily(inventory, {"daily_notify_channels": []}, ["--tags", "preflight"])
    assert good.returncode == 0 and not contacted(good.stdout + good.stderr), good.stdout[-3000:]
    bad = run_daily(inventory, {"daily_error_rate_percent": -1}, ["--tags", "preflight"])
    assert bad.returncode != 0 and "daily_error_rate_percent is -1" in bad.stdout + bad.stderr, bad.stdout[-3000:]
    # the checks run whatever else is asked for (tag always): a collect-only run is refused the same way
    collect = run_daily(inventory, {"daily_error_rate_percent": -1}, ["--tags", "collect"])
    assert collect.returncode != 0 and "daily_error_rate_percent is -1" in collect.stdout + collect.stderr
    assert not contacted(collect.stdout + collect.stderr)
