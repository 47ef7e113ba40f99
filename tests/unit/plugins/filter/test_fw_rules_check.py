# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.fw_rules_check filter."""

from __future__ import annotations

import copy
import json
import re

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.fw_rules_check import FilterModule, fw_rules_check

from .ansible_render import render

ZONES = {
    'mgmt': {'cidrs': ['10.213.0.0/16']},
    'public': {'cidrs': ['0.0.0.0/0', '::/0']},
    'lb': {'groups': ['loadbalancers']},
    'app': {'groups': ['app']},
    'db': {'groups': ['databases'], 'cidrs': ['10.9.0.0/24']},
    'spare': {'groups': ['empty']},
}
ADDRESSES = {
    'mgmt': {'v4': ['10.213.0.0/16'], 'v6': [], 'hosts': []},
    'public': {'v4': ['0.0.0.0/0'], 'v6': ['::/0'], 'hosts': []},
    'lb': {'v4': ['10.213.47.10/32'], 'v6': [], 'hosts': ['lb1']},
    'app': {'v4': ['10.213.47.21/32', '10.213.47.22/32'], 'v6': ['2001:db8:47::22/128'], 'hosts': ['app1', 'app2']},
    'db': {'v4': ['10.9.0.0/24', '10.213.47.31/32'], 'v6': [], 'hosts': ['db1', 'db2']},
    'spare': {'v4': [], 'v6': [], 'hosts': []},
}
SERVICES = {
    'ssh': {'port': 22, 'proto': 'tcp'},
    'https': {'port': 443, 'proto': 'tcp'},
    'api': {'port': 8000, 'proto': 'tcp'},
    'postgres': {'port': 5432, 'proto': 'tcp'},
    'metrics': {'port': '9100-9187', 'proto': 'tcp', 'description': 'exporters'},
}
RULES = [
    {'from': 'public', 'to': 'lb', 'service': 'https'},
    {'from': 'lb', 'to': 'app', 'service': 'api'},
    {'from': 'app', 'to': 'db', 'service': 'postgres'},
]


def check(rules, services=None, zone_addresses=None):
    return fw_rules_check(rules, zones=ZONES, services=SERVICES if services is None else services,
                          zone_addresses=ADDRESSES if zone_addresses is None else zone_addresses)


def services_with(**changes):
    services = copy.deepcopy(SERVICES)
    services.update(changes)
    return services


def test_the_role_matrix_is_clean():
    assert check(RULES) == {'duplicates': [], 'shadowed': []}
    assert check([]) == {'duplicates': [], 'shadowed': []}


def test_a_duplicate_names_both_rules():
    rules = RULES + [{'from': 'lb', 'to': 'app', 'service': 'api', 'comment': 'again'}, RULES[1]]
    assert check(rules) == {
        'duplicates': [
            {'rule': 3, 'duplicate_of': 1, 'message': 'firewall_rules[3] (lb -> app api) is a duplicate of firewall_rules[1] (lb -> app api)'},
            {'rule': 4, 'duplicate_of': 1, 'message': 'firewall_rules[4] (lb -> app api) is a duplicate of firewall_rules[1] (lb -> app api)'},
        ],
        'shadowed': [],
    }


def test_a_rule_from_a_zone_inside_an_earlier_rules_zone_is_shadowed():
    rules = RULES + [{'from': 'mgmt', 'to': 'lb', 'service': 'https'}, {'from': 'lb', 'to': 'app', 'service': 'ssh'},
                     {'from': 'app', 'to': 'app', 'service': 'ssh'}]
    addresses = copy.deepcopy(ADDRESSES)
    addresses['lb'].update(v4=['10.213.47.0/24'], v6=['2001:db8:47::/64'])   # the load balancer zone holds the app hosts' addresses
    assert check(rules, zone_addresses=addresses) == {'duplicates': [], 'shadowed': [
        {'rule': 3, 'shadowed_by': 0,
         'message': 'firewall_rules[3] (mgmt -> lb https) is shadowed by firewall_rules[0] (public -> lb https): '
                    'every address of zone mgmt is in zone public'},
        {'rule': 5, 'shadowed_by': 4,
         'message': 'firewall_rules[5] (app -> app ssh) is shadowed by firewall_rules[4] (lb -> app ssh): every address of zone app is in zone lb'},
    ]}


def test_a_zone_without_addresses_is_shadowed_by_any_earlier_rule():
    rules = [{'from': 'mgmt', 'to': 'db', 'service': 'ssh'}, {'from': 'spare', 'to': 'db', 'service': 'ssh'}]
    assert check(rules)['shadowed'] == [{'rule': 1, 'shadowed_by': 0, 'message': 'firewall_rules[1] (spare -> db ssh) is shadowed by '
                                         'firewall_rules[0] (mgmt -> db ssh): zone spare has no addresses at all'}]


@pytest.mark.parametrize('rules', [
    [{'from': 'mgmt', 'to': 'lb', 'service': 'https'}, {'from': 'public', 'to': 'lb', 'service': 'https'}],   # the wider rule comes later
    [{'from': 'public', 'to': 'lb', 'service': 'https'}, {'from': 'mgmt', 'to': 'app', 'service': 'https'}],  # another destination
    [{'from': 'public', 'to': 'lb', 'service': 'https'}, {'from': 'mgmt', 'to': 'lb', 'service': 'ssh'}],     # another service
    [{'from': 'app', 'to': 'db', 'service': 'postgres'}, {'from': 'lb', 'to': 'db', 'service': 'postgres'}],  # disjoint sources
    [{'from': 'app', 'to': 'db', 'service': 'postgres'}, {'from': 'mgmt', 'to': 'db', 'service': 'postgres'}],  # only partly covered
])
def test_not_redundant(rules):
    assert check(rules) == {'duplicates': [], 'shadowed': []}


def test_the_first_earlier_rule_is_named_and_a_duplicate_is_not_also_shadowed():
    rules = [{'from': 'public', 'to': 'lb', 'service': 'https'}, {'from': 'mgmt', 'to': 'lb', 'service': 'https'},
             {'from': 'mgmt', 'to': 'lb', 'service': 'https'}]
    out = check(rules)
    assert [(item['rule'], item['shadowed_by']) for item in out['shadowed']] == [(1, 0)]
    assert [(item['rule'], item['duplicate_of']) for item in out['duplicates']] == [(2, 1)]


def test_without_zone_addresses_rules_are_validated_and_duplicates_found_but_nothing_is_shadowed():
    rules = RULES + [{'from': 'mgmt', 'to': 'lb', 'service': 'https'}, RULES[1]]
    assert fw_rules_check(rules, zones=ZONES, services=SERVICES) == {'duplicates': [
        {'rule': 4, 'duplicate_of': 1, 'message': 'firewall_rules[4] (lb -> app api) is a duplicate of firewall_rules[1] (lb -> app api)'},
    ], 'shadowed': []}
    with pytest.raises(AnsibleFilterError, match=re.escape("firewall_rules[1] (lb -> app telnet): service 'telnet' is not defined")):
        fw_rules_check([RULES[0], {'from': 'lb', 'to': 'app', 'service': 'telnet'}], zones=ZONES, services=SERVICES)


# --- errors name the rule -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('rule, message', [
    ({'from': 'app', 'to': 'dbs', 'service': 'postgres'},
     "firewall_rules[2] (app -> dbs postgres): to zone 'dbs' is not defined in firewall_zones (known zones: app, db, lb, mgmt, public, spare); "
     "did you mean 'db'?"),
    ({'from': 'apps', 'to': 'db', 'service': 'postgres'}, "firewall_rules[2] (apps -> db postgres): from zone 'apps' is not defined in firewall_zones"),
    ({'from': 'app', 'to': 'db', 'service': 'postgresql'},
     "firewall_rules[2] (app -> db postgresql): service 'postgresql' is not defined in firewall_services (known services: api, https, metrics, "
     "postgres, ssh); did you mean 'postgres'?"),
    ({'from': 'app', 'to': 'db'}, 'firewall_rules[2] (app -> db ?): missing service (a service of firewall_services)'),
    ({'to': 'db', 'service': 'postgres'}, 'firewall_rules[2] (? -> db postgres): missing from (the source zone)'),
    ({'from': 'app', 'to': '', 'service': 'postgres'}, 'firewall_rules[2] (app -> ? postgres): missing to (the destination zone)'),
    ({'from': 'app', 'to': 'db', 'service': 'postgres', 'port': 5433},
     'firewall_rules[2] (app -> db postgres): unknown key(s) port; allowed keys are from, to, service, comment'),
    ({'form': 'app', 'to': 'db', 'service': 'postgres'}, 'firewall_rules[2] (? -> db postgres): unknown key(s) form; allowed keys are'),
    ({'from': ['app'], 'to': 'db', 'service': 'postgres'}, "firewall_rules[2] (['app'] -> db postgres): from must be a name, got list ['app']"),
    ('app -> db postgres', "firewall_rules[2]: must be a dict {from: zone, to: zone, service: name}, got 'app -> db postgres'"),
])
def test_bad_rules_are_named(rule, message):
    with pytest.raises(AnsibleFilterError) as error:
        check(RULES[:2] + [rule])
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize('postgres, message', [
    ({'port': 0, 'proto': 'tcp'}, 'port 0 is out of range 1-65535'),
    ({'port': 65536, 'proto': 'tcp'}, 'port 65536 is out of range 1-65535'),
    ({'port': '70000', 'proto': 'tcp'}, 'port 70000 is out of range 1-65535'),
    ({'port': -5, 'proto': 'tcp'}, 'port -5 is out of range 1-65535'),
    ({'port': '5432-5431', 'proto': 'tcp'}, 'bad port range 5432-5431: the first port is greater than the last; write 5431-5432'),
    ({'port': '5432-70000', 'proto': 'tcp'}, 'port 70000 is out of range 1-65535'),
    ({'port': '0-10', 'proto': 'tcp'}, 'port 0 is out of range 1-65535'),
    ({'port': 'postgres', 'proto': 'tcp'}, "port 'postgres' is not a number 1-65535 or a range such as \"8000-8100\""),
    ({'port': '5432,5433', 'proto': 'tcp'}, "port '5432,5433' is not a number 1-65535 or a range such as \"8000-8100\""),
    ({'port': True, 'proto': 'tcp'}, 'port must be a number 1-65535 or a range such as "8000-8100", got bool True'),
    ({'port': 5432.0, 'proto': 'tcp'}, 'port must be a number 1-65535 or a range such as "8000-8100", got float 5432.0'),
    ({'port': [5432], 'proto': 'tcp'}, 'port must be a number 1-65535 or a range such as "8000-8100", got list [5432]'),
    ({'port': 5432, 'proto': 'icmp'}, "proto 'icmp' is not tcp or udp"),
    ({'port': 5432, 'proto': 'TCP'}, "proto 'TCP' is not tcp or udp (write it in lowercase: 'tcp')"),
    ({'port': 5432, 'proto': 6}, 'proto 6 is not tcp or udp'),
    ({'proto': 'tcp'}, 'missing port (a number 1-65535 or a range such as "8000-8100")'),
    ({'port': 5432}, 'missing proto (tcp or udp)'),
    ({'port': 5432, 'proto': 'tcp', 'protocol': 'tcp'}, 'unknown key(s) protocol; allowed keys are port, proto, comment, description'),
    (5432, 'must be a dict {port: 443, proto: tcp}, got 5432'),
])
def test_bad_services_name_the_rule_and_the_service(postgres, message):
    with pytest.raises(AnsibleFilterError) as error:
        check(RULES, services=services_with(postgres=postgres))
    assert str(error.value) == 'firewall_rules[2] (app -> db postgres): service postgres (firewall_services.postgres): ' + message


def test_a_bad_service_no_rule_uses_is_named_too():
    with pytest.raises(AnsibleFilterError, match=re.escape("firewall_services.dns: proto 'tcp/udp' is not tcp or udp")):
        check(RULES, services=services_with(dns={'port': 53, 'proto': 'tcp/udp'}))


@pytest.mark.parametrize('port', [1, 65535, '22', ' 8000 ', '8000-8100', '8000 - 8100', '8000-8000', '1-65535'])
def test_valid_ports(port):
    assert check(RULES, services=services_with(api={'port': port, 'proto': 'udp'})) == {'duplicates': [], 'shadowed': []}


@pytest.mark.parametrize('args, message', [
    (('rules', ZONES, SERVICES, ADDRESSES), "fw_rules_check: firewall_rules must be a list of {from, to, service} dicts, got str 'rules'"),
    ((RULES, ZONES, ['ssh'], ADDRESSES), 'fw_rules_check: firewall_services must be a dict of name: {port, proto}, got list'),
    ((RULES, ['app'], SERVICES, ADDRESSES), 'fw_rules_check: firewall_zones must be a dict of zone name: {cidrs, groups}, got list'),
    ((RULES, ZONES, SERVICES, ZONES), "fw_rules_check: zone_addresses['mgmt'] has no v4/v6 lists"),
    ((RULES, ZONES, SERVICES, dict((name, ADDRESSES[name]) for name in ('public', 'lb', 'app'))),
     "firewall_rules[2] (app -> db postgres): zone_addresses has no entry for zone 'db'; compute it with dealerscope.ops.fw_zone_addresses "
     "from the same firewall_zones"),
])
def test_bad_arguments(args, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        fw_rules_check(*args)


def test_registered():
    assert FilterModule().filters() == {'fw_rules_check': fw_rules_check}


# --- properties ---------------------------------------------------------------------------------------------------------

ZONE_NAMES = ['a', 'b', 'c', 'd', 'e']
POOL = ['10.50.0.0/24', '10.50.0.0/25', '10.50.0.128/25', '10.50.0.7/32', '10.51.0.0/16', '2001:db8:50::/64', '2001:db8:50::7/128',
        '0.0.0.0/0', '::/0']


@st.composite
def matrices(draw):
    addresses = {}
    for name in ZONE_NAMES:
        found = [str(net) for net in netaddr.cidr_merge(draw(st.lists(st.sampled_from(POOL), max_size=3)))]
        addresses[name] = {'v4': [net for net in found if ':' not in net], 'v6': [net for net in found if ':' in net], 'hosts': []}
    rule = st.fixed_dictionaries({'from': st.sampled_from(ZONE_NAMES), 'to': st.sampled_from(ZONE_NAMES[:2]),
                                  'service': st.sampled_from(['ssh', 'api'])})
    return addresses, draw(st.lists(rule, max_size=8))


@settings(max_examples=300, deadline=None)
@given(matrices())
def test_redundancy_agrees_with_ipset_subsets(matrix):
    addresses, rules = matrix
    zones = dict((name, {'cidrs': []}) for name in ZONE_NAMES)
    out = fw_rules_check(rules, zones=zones, services=SERVICES, zone_addresses=addresses)
    sets = dict((name, netaddr.IPSet(entry['v4'] + entry['v6'])) for name, entry in addresses.items())
    duplicates = dict((item['rule'], item['duplicate_of']) for item in out['duplicates'])
    shadowed = dict((item['rule'], item['shadowed_by']) for item in out['shadowed'])
    assert not set(duplicates) & set(shadowed)
    for index, rule in enumerate(rules):
        same_target = [position for position in range(index)
                       if (rules[position]['to'], rules[position]['service']) == (rule['to'], rule['service'])]
        identical = [position for position in same_target if rules[position]['from'] == rule['from']]
        covering = [position for position in same_target if sets[rule['from']] <= sets[rules[position]['from']]]
        if identical:
            assert duplicates.get(index) == identical[0]
        else:
            assert index not in duplicates
            assert shadowed.get(index) == (covering[0] if covering else None)
        for finding in out['duplicates'] + out['shadowed']:
            if finding['rule'] == index:
                earlier = finding.get('duplicate_of', finding.get('shadowed_by'))
                assert 'firewall_rules[%d] ' % index in finding['message'] and 'firewall_rules[%d] ' % earlier in finding['message']


# --- through Ansible's templating, by FQCN -------------------------------------------------------------------------------

def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({'firewall_zones': ZONES, 'firewall_services': SERVICES, 'firewall_zone_addresses': ADDRESSES,
                                 'firewall_rules': RULES + [{'from': 'mgmt', 'to': 'lb', 'service': 'https'}]}))
    value, output = render('firewall_rules | dealerscope.ops.fw_rules_check(zones=firewall_zones, services=firewall_services, '
                           'zone_addresses=firewall_zone_addresses)', str(extra))
    assert value is not None, output
    assert value['duplicates'] == [] and [(item['rule'], item['shadowed_by']) for item in value['shadowed']] == [(3, 0)], output
