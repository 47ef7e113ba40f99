"""Bad input to dealerscope.ops.restore_test and dealerscope.ops.dr_drill is refused with a message naming the variable
and what to fix, before any host is contacted (the hosts are a closed port: any contact shows up as UNREACHABLE);
secrets are never shown."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import assert_refused_before_contact, closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position

REGION = {"name": "eu-west", "endpoint": "s3.eu-west-1.amazonaws.com", "bucket": "ds-backups-eu-west", "region": "eu-west-1"}
GOOD = {"backup_regions": [REGION, dict(REGION, name="us-east", region="us-east-1", bucket="ds-backups-us-east")],
        "backup_s3_key": "AKIAEXAMPLEKEY", "backup_s3_key_secret": "sekrit-value-never-shown",
        "backup_cipher_pass": "cipher-pass-never-shown", "dr_report_dir": "/tmp/ds-dr-input-test",
        "ops_lb_url": "https://dealerscope.example.com"}
GROUPS = "    db_primary:\n      hosts:\n        ghostdb1:\n    db_standby:\n      hosts:\n        ghostdb2:\n"
SECRETS = ("sekrit-value-never-shown", "cipher-pass-never-shown")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return closed_port_inventory(tmp_path_factory.mktemp("inv") / "hosts.yml", hosts=("ghostapp1",), extra_groups=GROUPS)


def restore(extra):
    return "dealerscope.ops.restore_test", extra


def drill(extra):
    """A drill confirmed for the inventory's primary, unless the case says otherwise."""
    return "dealerscope.ops.dr_drill", dict({"dr_drill_confirm": "ghostdb1"}, **extra)


@pytest.mark.parametrize("runbook,needle", [
    (restore({"dr_restore_host": "ghostdb1"}), 'dr_restore_host is "ghostdb1" - the primary itself'),
    (restore({"dr_restore_region": "mars-1"}), 'dr_restore_region is "mars-1" - empty (the first healthy region) or one of eu-west, us-east'),
    (restore({"dr_restore_set": "latest"}), 'dr_restore_set is "latest" - empty (the newest point) or a backup label'),
    (restore({"dr_restore_target_time": "yesterday 9am"}), 'dr_restore_target_time is "yesterday 9am" - empty or an ISO 8601 time'),
    (restore({"dr_restore_port": "5432"}), 'dr_restore_port is "5432" - a port from 1024 to 65535 other than PostgreSQL'),
    (restore({"dr_rto_s": "0"}), 'dr_rto_s is "0" - a whole number of seconds above 0'),
    (restore({"backup_regions": []}), "backup_regions is \"[]\" - the regions of dealerscope.ops.backup (at least one)"),
    (restore({"backup_s3_key_secret": ""}), "backup_s3_key_secret is empty"),
    (drill({"dr_drill_target": "ghostdb1"}),
     'dr_drill_target is "ghostdb1" - the primary itself - a drill never restores over the primary it simulates losing'),
    (drill({"dr_drill_confirm": ""}),
     'dr_drill_confirm is "" - the drill kills PostgreSQL on ghostdb1 - outside the lab confirm it with -e dr_drill_confirm=ghostdb1'),
    (drill({"dr_drill_confirm": "db1"}), 'dr_drill_confirm is "db1" - the drill kills PostgreSQL on ghostdb1'),
    # choices are refused by the entry point's argument spec (before the preflight, on the controller too)
    (drill({"dr_drill_finish": "abandon"}), "value of dr_drill_finish must be one of: failback, leave, got: abandon"),
    (drill({"dr_drill_action": "restore"}), "value of dr_drill_action must be one of: drill, failback, got: restore"),
    (drill({"dr_drill_writer": "maybe"}), "dr_drill_writer"),
    (drill({"dr_drill_port": "5499"}), 'dr_drill_port is "5499" - a port from 1024 to 65535 other than'),
    (drill({"dr_drill_dir": "/var/lib/postgresql/15/main"}), 'dr_drill_dir is "/var/lib/postgresql/15/main" - an absolute path of its own'),
    (drill({"dr_drill_api_hosts": ["ghostapp9"]}), "dr_drill_api_hosts is"),
    (drill({"dr_drill_api_hosts": []}), 'dr_drill_api_hosts is "[]" - a list of the inventory names of the API hosts'),
    (drill({"ops_lb_url": ""}), 'dr_drill_check_url is "/api/vehicles?limit=1" - the API\'s URL through the load balancer'),
    (drill({"dr_drill_hba_sources": ["all"]}), "dr_drill_hba_sources is"),
    (drill({"dr_drill_writer_interval_ms": "10"}), 'dr_drill_writer_interval_ms is "10" - a whole number of milliseconds from 50 to 60000'),
    (drill({"dr_drill_writes_before_s": "0"}), 'dr_drill_writes_before_s is "0" - a whole number of seconds from 1 to 600'),
    (drill({"dr_rpo_s": "0"}), 'dr_rpo_s is "0" - a whole number of seconds above 0'),
    (drill({"dr_restore_region": "mars-1"}), 'dr_restore_region is "mars-1"'),
    (drill({"dr_restore_set": "20261127-010001F"}), "a drill restores the newest recoverable point"),
    (drill({"backup_cipher_pass": ""}), "backup_cipher_pass is empty"),
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, runbook, needle):
    playbook, extra = runbook
    output = assert_refused_before_contact(run(inventory, playbook, dict(GOOD, **extra)), needle, secrets=SECRETS)
    # refused by the role's preflight or by the entry point's argument spec - not by a failure further on
    assert "dr: " in output or "Validation of arguments failed" in output, output[-3000:]


@pytest.mark.parametrize("playbook,extra", [
    ("dealerscope.ops.restore_test", {}),
    ("dealerscope.ops.dr_drill", {"dr_drill_confirm": "ghostdb1"}),
    ("dealerscope.ops.dr_drill", {"dr_drill_action": "failback"}),  # a fail back needs no confirmation
])
def test_good_input_goes_on_to_the_hosts(inventory, playbook, extra):
    variables = dict(GOOD)
    variables.update(extra)
    result = run(inventory, playbook, variables)
    output = result.stdout + result.stderr
    assert contacted(output), output[-3000:]
    for secret in SECRETS:
        assert secret not in output
