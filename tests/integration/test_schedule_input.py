"""Bad input to dealerscope.ops.schedule is refused with a message naming the variable before the runner host is
contacted: the host is a closed port, so any contact would show up as UNREACHABLE instead."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import assert_refused_before_contact, closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position

RUNNER = """        ops_runners:
          hosts:
            ghostrunner: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}
"""
DAILY = {"name": "daily", "playbook": "dealerscope.ops.daily", "on_calendar": "*-*-* 06:00:00"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    base = tmp_path_factory.mktemp("schedule-input")
    (base / "inventory").mkdir()
    (base / "inventory" / "hosts.yml").write_text("all: {}\n")
    (base / "dealerscope-ops-0.1.0.tar.gz").write_bytes(b"")
    return base, closed_port_inventory(base / "hosts.yml", hosts=("ghostapp1",), extra_groups=RUNNER)


def run_schedule(workspace, extra):
    base, inventory = workspace
    variables = {"schedule_runbooks": [DAILY], "schedule_inventory_src": str(base / "inventory")}
    variables.update(extra)
    return run(inventory, "dealerscope.ops.schedule", variables)


@pytest.mark.parametrize("extra,needle", [
    ({"schedule_runbooks": [dict(DAILY, name="Daily Checks")]}, "schedule_runbooks[0] name is"),
    ({"schedule_runbooks": [DAILY, DAILY]}, "name 'daily' is also the name of schedule_runbooks[0]"),
    ({"schedule_runbooks": [dict(DAILY, playbook="../site.yml")]}, "playbook is"),
    ({"schedule_runbooks": [dict(DAILY, oncalendar="daily")]}, "unknown key(s) oncalendar"),
    ({"schedule_runbooks": [dict(DAILY, timeout_s="0")]}, "timeout_s is 0"),
    ({"schedule_runbooks": [dict(DAILY, enabled="maybe")]}, "enabled is"),
    ({"schedule_blackout": ["2026-12-26..2026-12-24"]}, "ends before it starts"),
    ({"schedule_artifacts_keep": "0"}, "schedule_artifacts_keep (0) a whole number >= 1"),
    ({"schedule_inventory_src": ""}, "schedule_inventory_src set when runbooks are scheduled"),
    ({"schedule_inventory_src": "/nonexistent/inventory"}, 'schedule_inventory_src is "/nonexistent/inventory" - no such path'),
    ({"schedule_collection_tarball": "/nonexistent/c.tar.gz"}, 'schedule_collection_tarball is "/nonexistent/c.tar.gz" - no such path'),
    ({"schedule_collection_tarball": "{base}/inventory"}, "not a .tar.gz file"),
    ({"schedule_notify_channels": [{"name": "ops", "kind": "email", "url": "http://x"}]}, "schedule_notify_channels[0] (ops) needs"),
])
def test_bad_input_is_refused_before_the_runner_host_is_contacted(workspace, extra, needle):
    base = workspace[0]
    extra = {key: value.replace("{base}", str(base)) if isinstance(value, str) else value for key, value in extra.items()}
    result = run_schedule(workspace, extra)
    assert_refused_before_contact(result, needle)


def test_a_channel_url_is_never_shown_when_refused(workspace):
    secret = "https://hooks.example.invalid/services/T000/B000/SECRETSECRET"
    result = run_schedule(workspace, {"schedule_notify_channels": [{"name": "ops", "kind": "nope", "url": secret}]})
    assert result.returncode != 0 and "SECRETSECRET" not in result.stdout + result.stderr


def test_good_input_goes_on_to_the_runner_host(workspace):
    result = run_schedule(workspace, {"schedule_remove_unlisted": "false"})
    output = result.stdout + result.stderr
    assert contacted(output), output[-3000:]
