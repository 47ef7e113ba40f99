# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.fw_host_policy filter."""

from __future__ import annotations

import json
import re

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.fw_host_policy import FilterModule, fw_host_policy

from .ansible_render import render

ADDRESSES = {
    'mgmt': {'v4': ['10.213.0.0/16'], 'v6': [], 'hosts': []},
    'public': {'v4': ['0.0.0.0/0'], 'v6': ['::/0'], 'hosts': []},
    'lb': {'v4': ['10.213.47.10/32'], 'v6': [], 'hosts': ['lb1']},
    'app': {'v4': ['10.213.47.21/32', '10.213.47.22/32'], 'v6': ['2001:db8:47::22/128'], 'hosts': ['app1', 'app2']},
    'db': {'v4': ['10.9.0.0/24', '10.213.47.31/32'], 'v6': [], 'hosts': ['db1']},
    'v6only': {'v4': [], 'v6': ['2001:db8:60::/64'], 'hosts': []},
}
SERVICES = {
    'ssh': {'port': 22, 'proto': 'tcp'},
    'https': {'port': 443, 'proto': 'tcp'},
    'api': {'port': 8000, 'proto': 'tcp'},
    'postgres': {'port': 5432, 'proto': 'tcp'},
    'metrics': {'port': '9100-9187', 'proto': 'tcp'},
    'syslog': {'port': '514', 'proto': 'udp'},
    'one': {'port': '7000-7000', 'proto': 'udp'},
}
RULES = [
    {'from': 'public', 'to': 'lb', 'service': 'https'},
    {'from': 'lb', 'to': 'app', 'service': 'api'},
    {'from': 'app', 'to': 'db', 'service': 'postgres'},
]


def policy(host, rules=None, host_address=None, zone_addresses=None):
    return fw_host_policy(RULES if rules is None else rules, host=host, zone_addresses=ADDRESSES if zone_addresses is None else zone_addresses,
                          services=SERVICES, host_address=host_address)


def test_each_host_of_the_role_matrix():
    assert policy('lb1') == {'allow': [{'service': 'https', 'proto': 'tcp', 'port': '443', 'from': 'public', 'rule': 0}], 'zones': ['public']}
    assert policy('app2') == {'allow': [{'service': 'api', 'proto': 'tcp', 'port': '8000', 'from': 'lb', 'rule': 1}], 'zones': ['lb']}
    assert policy('db1') == {'allow': [{'service': 'postgres', 'proto': 'tcp', 'port': '5432', 'from': 'app', 'rule': 2}], 'zones': ['app']}
    assert policy('elsewhere') == {'allow': [], 'zones': []}
    assert policy('app1', rules=[]) == {'allow': [], 'zones': []}


def test_rule_order_ports_protocols_and_zones():
    rules = [{'from': 'mgmt', 'to': 'db', 'service': 'metrics'}, {'from': 'lb', 'to': 'app', 'service': 'api'},
             {'from': 'mgmt', 'to': 'db', 'service': 'ssh'}, {'from': 'app', 'to': 'db', 'service': 'syslog'},
             {'from': 'app', 'to': 'db', 'service': 'one'}]
    assert policy('db1', rules) == {
        'allow': [
            {'service': 'metrics', 'proto': 'tcp', 'port': '9100-9187', 'from': 'mgmt', 'rule': 0},
            {'service': 'ssh', 'proto': 'tcp', 'port': '22', 'from': 'mgmt', 'rule': 2},
            {'service': 'syslog', 'proto': 'udp', 'port': '514', 'from': 'app', 'rule': 3},
            {'service': 'one', 'proto': 'udp', 'port': '7000', 'from': 'app', 'rule': 4},
        ],
        'zones': ['app', 'mgmt'],
    }


def test_membership_by_address_in_the_zones_cidrs():
    rules = [{'from': 'app', 'to': 'db', 'service': 'postgres'}, {'from': 'mgmt', 'to': 'mgmt', 'service': 'ssh'}]
    # db9 and ops1 are in no group of a zone; their addresses are in db's 10.9.0.0/24 and in mgmt's 10.213.0.0/16
    assert [entry['rule'] for entry in policy('db9', rules, host_address='10.9.0.9')['allow']] == [0]
    assert [entry['rule'] for entry in policy('ops1', rules, host_address='10.213.5.5')['allow']] == [1]
    assert policy('db9', rules, host_address='10.10.0.9')['allow'] == []
    assert policy('db9', rules, host_address='')['allow'] == []


def test_ipv6_and_dual_stack_addresses():
    rules = [{'from': 'mgmt', 'to': 'v6only', 'service': 'ssh'}, {'from': 'mgmt', 'to': 'mgmt', 'service': 'ssh'}]
    assert [entry['rule'] for entry in policy('h', rules, host_address='2001:db8:60::5')['allow']] == [0]
    assert [entry['rule'] for entry in policy('h', rules, host_address=['10.213.1.1', '2001:db8:60::5'])['allow']] == [0, 1]


def test_a_catch_all_destination_applies_to_every_host_with_an_address():
    rules = [{'from': 'mgmt', 'to': 'public', 'service': 'ssh'}]
    assert policy('app1', rules)['allow'] == []   # no address given: only group membership counts
    assert policy('app1', rules, host_address='10.213.47.21')['allow'] == [{'service': 'ssh', 'proto': 'tcp', 'port': '22', 'from': 'mgmt', 'rule': 0}]
    assert policy('app1', rules, host_address='2001:db8:47::21')['zones'] == ['mgmt']


@pytest.mark.parametrize('host_address, message', [
    ('app1.example.com', "fw_host_policy: host app1: host_address 'app1.example.com' is not an IP address (host names are not resolved); "
                         "pass the IP address of app1, or a list of its addresses"),
    ('10.213.47.21/32', "fw_host_policy: host app1: host_address '10.213.47.21/32' is not an IP address"),
    (['10.213.47.21', 'app1'], "fw_host_policy: host app1: host_address 'app1' is not an IP address"),
    (21, 'fw_host_policy: host app1: host_address 21 is not an IP address'),
    ('127.0.0.1', 'fw_host_policy: host app1: host_address 127.0.0.1 is a loopback or unspecified address, not the address its traffic '
                  'arrives at; pass the own IP address of app1'),
    ('::', 'fw_host_policy: host app1: host_address :: is a loopback or unspecified address'),
])
def test_host_address_must_be_an_ip_address_naming_the_host(host_address, message):
    with pytest.raises(AnsibleFilterError) as error:
        policy('app1', host_address=host_address)
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize('rule, message', [
    ({'from': 'app', 'to': 'dbs', 'service': 'postgres'},
     "firewall_rules[2] (app -> dbs postgres): to zone 'dbs' is not defined in zone_addresses (firewall_zones) (known zones: app, db, lb, mgmt, "
     "public, v6only); did you mean 'db'?"),
    ({'from': 'app', 'to': 'db', 'service': 'pg'}, "firewall_rules[2] (app -> db pg): service 'pg' is not defined in firewall_services"),
    ({'from': 'app', 'to': 'db'}, 'firewall_rules[2] (app -> db ?): missing service'),
])
def test_bad_rules_are_named(rule, message):
    with pytest.raises(AnsibleFilterError) as error:
        policy('db1', rules=RULES[:2] + [rule])
    assert str(error.value).startswith(message), str(error.value)


def test_a_bad_service_names_the_rule_even_on_a_host_the_rule_does_not_reach():
    services = dict(SERVICES, postgres={'port': 70000, 'proto': 'tcp'})
    with pytest.raises(AnsibleFilterError, match=re.escape('firewall_rules[2] (app -> db postgres): service postgres (firewall_services.postgres): '
                                                           'port 70000 is out of range 1-65535')):
        fw_host_policy(RULES, 'lb1', ADDRESSES, services)


@pytest.mark.parametrize('args, message', [
    ((RULES, '', ADDRESSES, SERVICES), "fw_host_policy: host must be the inventory name of the host (inventory_hostname), got ''"),
    ((RULES, None, ADDRESSES, SERVICES), 'fw_host_policy: host must be the inventory name of the host (inventory_hostname), got None'),
    (({'from': 'a'}, 'app1', ADDRESSES, SERVICES), 'fw_host_policy (host app1): firewall_rules must be a list of {from, to, service} dicts'),
    ((RULES, 'app1', ADDRESSES, ['ssh']), 'fw_host_policy (host app1): firewall_services must be a dict of name: {port, proto}'),
    ((RULES, 'app1', {'app': {'groups': ['app']}}, SERVICES), "fw_host_policy (host app1): zone_addresses['app'] has no v4/v6 lists"),
])
def test_bad_arguments(args, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        fw_host_policy(*args)


def test_registered():
    assert FilterModule().filters() == {'fw_host_policy': fw_host_policy}


# --- properties ---------------------------------------------------------------------------------------------------------

ZONE_NAMES = ['a', 'b', 'c', 'd']
POOL = ['10.60.0.0/24', '10.60.0.0/26', '10.60.0.7/32', '10.61.0.0/16', '2001:db8:60::/64', '2001:db8:60::7/128', '0.0.0.0/0', '::/0']
HOSTS = ['h1', 'h2', 'h3']
HOST_ADDRESSES = ['10.60.0.7', '10.60.0.100', '10.61.3.3', '10.62.0.1', '2001:db8:60::7', '2001:db8:61::1']


@st.composite
def cases(draw):
    addresses = {}
    for name in ZONE_NAMES:
        found = [str(net) for net in netaddr.cidr_merge(draw(st.lists(st.sampled_from(POOL), max_size=2)))]
        addresses[name] = {'v4': [net for net in found if ':' not in net], 'v6': [net for net in found if ':' in net],
                           'hosts': draw(st.lists(st.sampled_from(HOSTS), unique=True, max_size=2))}
    rule = st.fixed_dictionaries({'from': st.sampled_from(ZONE_NAMES), 'to': st.sampled_from(ZONE_NAMES),
                                  'service': st.sampled_from(sorted(SERVICES))})
    rules = draw(st.lists(rule, max_size=8))
    host_address = draw(st.one_of(st.none(), st.sampled_from(HOST_ADDRESSES), st.lists(st.sampled_from(HOST_ADDRESSES), max_size=2)))
    return addresses, rules, draw(st.sampled_from(HOSTS)), host_address


@settings(max_examples=200, deadline=None)
@given(cases())
def test_allow_list_is_exactly_the_rules_whose_destination_holds_the_host(case):
    addresses, rules, host, host_address = case
    out = fw_host_policy(rules, host, addresses, SERVICES, host_address=host_address)
    own = [host_address] if isinstance(host_address, str) else (host_address or [])
    expected = [index for index, rule in enumerate(rules)
                if host in addresses[rule['to']]['hosts']
                or any(netaddr.IPAddress(address) in netaddr.IPSet(addresses[rule['to']]['v4'] + addresses[rule['to']]['v6']) for address in own)]
    assert [entry['rule'] for entry in out['allow']] == expected
    for entry in out['allow']:
        rule, service = rules[entry['rule']], SERVICES[rules[entry['rule']]['service']]
        assert (entry['from'], entry['service'], entry['proto']) == (rule['from'], rule['service'], service['proto'])
        assert entry['port'] == ('7000' if rule['service'] == 'one' else str(service['port']))
    assert out['zones'] == sorted(set(rules[index]['from'] for index in expected))


# --- through Ansible's templating, by FQCN -------------------------------------------------------------------------------

def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({'firewall_rules': RULES, 'firewall_zone_addresses': ADDRESSES, 'firewall_services': SERVICES}))
    value, output = render("firewall_rules | dealerscope.ops.fw_host_policy(host='app1', zone_addresses=firewall_zone_addresses, "
                           "services=firewall_services, host_address=hostvars['app1'].lab_ip)", str(extra))
    assert value == {'allow': [{'service': 'api', 'proto': 'tcp', 'port': '8000', 'from': 'lb', 'rule': 1}], 'zones': ['lb']}, output
