"""Bad input to dealerscope.ops.tls is refused with a message naming the certificate, field or variable, before
any host is contacted: the hosts are a closed port, so any contact would show up as UNREACHABLE instead."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position

GOOD = {"tls_certificates": [{"name": "api", "domains": ["dealerscope.example", "api.dealerscope.example"], "endpoint": "lb1:443"}],
        "tls_allowed_domains": [".dealerscope.example", "dealerscope.example"], "tls_acme_directory": "https://acme.invalid/dir",
        "tls_acme_terms_agreed": "true", "tls_report_dir": "/tmp/ds-tls-input-test"}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return closed_port_inventory(tmp_path_factory.mktemp("inv") / "hosts.yml", hosts=("ghostlb1",))


def run_tls(inventory, extra):
    variables = dict(GOOD)
    variables.update(extra)
    return run(inventory, "dealerscope.ops.tls", variables)


def cert(**changes):
    result = dict(GOOD["tls_certificates"][0])
    result.update(changes)
    return [result]


@pytest.mark.parametrize("extra,needle", [
    ({"tls_certificates": cert(challenge="tls-alpn-01")}, "certificate 'api'"),
    ({"tls_certificates": cert(challenge="tls-alpn-01")}, "challenge"),
    ({"tls_certificates": cert(domains=["evil.example.com"])}, "evil.example.com"),
    ({"tls_acme_directory": "http://acme.invalid/dir"}, "HTTPS"),
    ({"tls_renew_days": "-1"}, "renew_days"),
    ({"tls_crit_days": "30", "tls_warn_days": "21"}, "crit_days"),
    ({"tls_acme_terms_agreed": "false"}, "tls_acme_terms_agreed is \"false\""),
    ({"tls_keep_releases": "1"}, "tls_keep_releases"),
    ({"tls_mode": "yolo"}, "tls_mode"),
    ({"tls_certificates": cert(issuer="internal")}, "set tls_internal_ca_host"),
    ({"tls_postgresql_require_tls_from": ["10.0.0.300/24"]}, "tls_postgresql_require_tls_from"),
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, extra, needle):
    result = run_tls(inventory, extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert needle in output, output[-3000:]
    assert not contacted(output), output[-3000:]


def test_good_input_goes_on_to_the_hosts(inventory):
    result = run_tls(inventory, {})
    output = result.stdout + result.stderr
    assert contacted(output), output[-3000:]
