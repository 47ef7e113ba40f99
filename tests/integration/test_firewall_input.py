"""Bad input to dealerscope.ops.firewall is refused with a message naming the zone, rule or variable, before
any host is contacted: the hosts are a closed port, so any contact would show up as UNREACHABLE instead."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import assert_refused_before_contact, contacted, run  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = """all:
  children:
    dealerscope:
      vars: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}
      children:
        loadbalancers:
          hosts:
            ghostlb1: {ghost_ip: 10.9.0.10}
        app:
          hosts:
            ghost1: {ghost_ip: 10.9.0.11}
        db:
          hosts:
            ghostdb1: {ghost_ip: 10.9.1.21}
"""
ZONES = {"mgmt": {"cidrs": ["10.200.0.0/24"]}, "public": {"cidrs": ["0.0.0.0/0", "::/0"]}, "fleet": {"groups": ["dealerscope"]},
         "lb": {"groups": ["loadbalancers"]}, "app": {"groups": ["app"]}, "db": {"groups": ["db"]}}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    path.write_text(INVENTORY)
    return path


def run_firewall(inventory, extra):
    base = {"firewall_report_dir": "/tmp/ds-firewall-input-test", "firewall_address_var": "ghost_ip", "firewall_zones": ZONES}
    base.update(extra)
    return run(inventory, "dealerscope.ops.firewall", base)


def zones(**changes):
    result = dict(ZONES)
    result.update(changes)
    return result


@pytest.mark.parametrize("extra,needle", [
    ({"firewall_zones": zones(mgmt={"cidrs": ["10.200.0.300/24"]})}, "firewall_zones.mgmt"),
    ({"firewall_zones": zones(mgmt={"cidrs": ["10.200.0.1/24"]})}, "10.200.0.0/24"),
    ({"firewall_zones": zones(app={"groups": ["app"], "cidrs": ["10.9.1.0/24"]})}, "zones overlap - app and db"),
    ({"firewall_rules": [{"from": "lb", "to": "nowhere", "service": "api"}]}, "nowhere"),
    ({"firewall_rules": [{"from": "lb", "to": "app", "service": "telnet"}]}, "telnet"),
    ({"firewall_services": {"api": {"port": 70000, "proto": "tcp"}}, "firewall_rules": [{"from": "lb", "to": "app", "service": "api"}]},
     "70000"),
    ({"firewall_mgmt_ssh": "false"}, "firewall_mgmt_ssh is \"false\" - true, or false together with firewall_allow_removing_mgmt_ssh=true"),
    ({"firewall_zones": zones(mgmt={"cidrs": []})}, "mgmt"),
    ({"firewall_confirm_timeout": 5}, "firewall_confirm_timeout is \"5\" - seconds between 10 and 3600"),
    ({"firewall_mode": "yolo"}, "firewall_mode"),
    ({"firewall_address_var": "ansible_host"}, "loopback"),
])
def test_bad_input_is_refused_before_any_host_is_contacted(inventory, extra, needle):
    result = run_firewall(inventory, extra)
    assert_refused_before_contact(result, needle)


def test_good_input_goes_on_to_the_hosts(inventory):
    result = run_firewall(inventory, {})
    output = result.stdout + result.stderr
    assert contacted(output), output[-3000:]
