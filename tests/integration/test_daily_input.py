"""Bad input to dealerscope.ops.daily is refused with a message naming the variable, before any
host is contacted: the inventory points at a closed port, so any contact would show up as
UNREACHABLE instead of the preflight message."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import assert_refused_before_contact, closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return closed_port_inventory(tmp_path_factory.mktemp("inv") / "hosts.yml")


@pytest.fixture(scope="module")
def db_inventory(tmp_path_factory):
    """A fleet with a PostgreSQL primary (closed port too): the backup check applies."""
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    path.write_text("all:\n  children:\n    dealerscope:\n      children:\n        db_primary:\n          hosts:\n"
                    "            ghostdb1: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}\n")
    return path


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
    # the shared ending validates its own argument_specs once for the play (its callers turn Ansible's per-host check off)
    ({"runbook_end_report_keep": "many"}, "runbook_end_report_keep' is of type"),
    ({"runbook_end_flush": "sometime"}, "value of runbook_end_flush must be one of: auto, now, never"),
    ({"daily_backup_interval_h": "0"}, "daily_backup_interval_h is 0 - a positive number of hours"),
    ({"daily_backup_margin_h": "-1"}, "daily_backup_margin_h is -1 - a non-negative number of hours"),
    ({"daily_notify_channels": [{"name": "ops", "kind": "slack", "url": "https://hooks.example/SECRET-TOKEN", "severities": ["urgent"]}]},
     "daily_notify_channels entry ops is invalid"),
    ({"daily_notify_channels": [{"name": "ops", "kind": "slack", "url": "ftp://SECRET-TOKEN"}]}, "without an http(s) url: ops"),
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, extra, needle):
    result = run_daily(inventory, extra)
    output = assert_refused_before_contact(result, needle)
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


@pytest.mark.parametrize("extra,needle,refused", [
    ({}, "daily: the primary ghostdb1 has no backup regions (backup_regions of dealerscope.ops.backup", True),
    ({"daily_backup_regions": [{"endpoint": "s3.example"}]}, "the primary ghostdb1 has no backup regions", True),
    ({"backup_regions": [{"name": "eu-west"}]}, None, False),  # the primary's own backup_regions (the default)
    ({"daily_backup_catalog": "false"}, None, False),  # backups that are not this collection's: the check is off
    ({"daily_backup_regions": [{"name": "eu-west"}]}, None, False),
])
def test_a_fleet_with_a_primary_needs_the_backup_regions(db_inventory, extra, needle, refused):
    result = run_daily(db_inventory, extra)
    output = result.stdout + result.stderr
    if refused:
        assert result.returncode != 0 and needle in output and not contacted(output), output[-3000:]
    else:
        assert contacted(output), output[-3000:]
