"""Bad input to dealerscope.ops.backup is refused with a message naming the variable, region or field, before any host
is contacted (the host is a closed port: any contact would show up as UNREACHABLE instead); secrets are never shown."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import assert_refused_before_contact, closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position

REGION = {"name": "eu-west", "endpoint": "s3.eu-west-1.amazonaws.com", "bucket": "ds-backups-eu-west", "region": "eu-west-1"}
GOOD = {"backup_regions": [REGION, dict(REGION, name="us-east", region="us-east-1", bucket="ds-backups-us-east")],
        "backup_s3_key": "AKIAEXAMPLEKEY", "backup_s3_key_secret": "sekrit-value-never-shown",
        "backup_cipher_pass": "cipher-pass-never-shown", "backup_report_dir": "/tmp/ds-backup-input-test"}
GROUPS = "    db_primary:\n      hosts:\n        ghostdb1:\n"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return closed_port_inventory(tmp_path_factory.mktemp("inv") / "hosts.yml", hosts=("ghostdb1",), extra_groups=GROUPS)


def run_backup(inventory, extra):
    variables = dict(GOOD)
    variables.update(extra)
    return run(inventory, "dealerscope.ops.backup", variables)


def region(**changes):
    return [dict(REGION, **changes)]


@pytest.mark.parametrize("extra,needle", [
    ({"backup_regions": []}, "at least one region is needed"),
    ({"backup_regions": region(name="")}, "backup_regions[0].name is missing"),
    ({"backup_regions": region(bucket="")}, "backup_regions[0].bucket is missing"),
    ({"backup_regions": region(region="Mars Base 1")}, "is not an S3 region name"),
    ({"backup_regions": region(uri_style="virtual")}, "backup_regions[0].uri_style \"virtual\": host or path"),
    ({"backup_regions": region(port="70000")}, "backup_regions[0].port"),
    ({"backup_regions": region(ca_file="/nonexistent/ca.pem")}, "is not a file on the controller"),
    ({"backup_regions": [REGION, dict(REGION)]}, "region name eu-west is used twice"),
    ({"backup_s3_key_secret": ""}, "backup_s3_key_secret is empty"),
    ({"backup_s3_key": "", "backup_cipher_pass": ""}, "backup_s3_key, backup_cipher_pass are empty"),
    ({"backup_type": "weekly"}, "backup_type"),
    ({"backup_rpo_s": "0"}, "backup_rpo_s"),
    ({"backup_archive_timeout_s": "3000"}, "backup_archive_timeout_s is \"3000\""),
    ({"backup_interval_h": "-6"}, "backup_interval_h"),
    ({"backup_retention_daily_days": "0"}, "backup_retention_daily_days is \"0\" - a whole number of days, 1 or more"),
    ({"backup_retention_weekly_months": "-1"}, "backup_retention_weekly_months is \"-1\" - a whole number of months, 1 or more"),
    ({"backup_retention_pinned": ["latest"]}, "a list of backup labels (20261127-010001F)"),
    ({"backup_retention_pinned": "20261127-010001F"}, "backup_retention_pinned is \"20261127-010001F\" - a list"),
    ({"backup_retention_now": "next tuesday"}, "backup_retention_now is \"next tuesday\""),
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, extra, needle):
    result = run_backup(inventory, extra)
    assert_refused_before_contact(result, needle, secrets=("sekrit-value-never-shown", "cipher-pass-never-shown"))


def test_good_input_goes_on_to_the_hosts(inventory):
    result = run_backup(inventory, {})
    output = result.stdout + result.stderr
    assert contacted(output), output[-3000:]
    for secret in ("sekrit-value-never-shown", "cipher-pass-never-shown"):
        assert secret not in output
