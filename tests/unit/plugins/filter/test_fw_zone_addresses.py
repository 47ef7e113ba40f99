# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.fw_zone_addresses filter."""

from __future__ import annotations

import copy
import re
import socket
from collections.abc import Mapping

import netaddr
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.fw_zone_addresses import FilterModule, fw_zone_addresses

from .ansible_render import render

ZONES = {
    'mgmt': {'cidrs': ['10.213.0.0/16']},
    'public': {'cidrs': ['0.0.0.0/0', '::/0']},
    'lb': {'groups': ['loadbalancers']},
    'app': {'groups': ['app']},
    'db': {'groups': ['databases'], 'cidrs': ['10.9.0.0/24']},
}
GROUPS = {
    'all': ['lb1', 'app1', 'app2', 'db1', 'db2'],
    'ungrouped': [],
    'loadbalancers': ['lb1'],
    'app': ['app1', 'app2'],
    'databases': ['db1', 'db2'],
    'empty': [],
}
HOSTVARS = {
    'lb1': {'ansible_host': '127.0.0.1', 'lab_ip': '10.213.47.10'},
    'app1': {'ansible_host': '127.0.0.1', 'lab_ip': '10.213.47.21'},
    'app2': {'ansible_host': '127.0.0.1', 'lab_ip': ['10.213.47.22', '2001:db8:47::22']},
    'db1': {'ansible_host': '127.0.0.1', 'lab_ip': '10.213.47.31'},
    'db2': {'ansible_host': '127.0.0.1', 'lab_ip': '10.9.0.32'},
}


def zones_with(**changes):
    zones = copy.deepcopy(ZONES)
    zones.update(changes)
    return zones


def hostvars_with(host, **variables):
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars[host] = variables
    return hostvars


def test_the_role_data_model():
    assert fw_zone_addresses(ZONES, GROUPS, HOSTVARS, address_var='lab_ip') == {
        'mgmt': {'v4': ['10.213.0.0/16'], 'v6': [], 'hosts': []},
        'public': {'v4': ['0.0.0.0/0'], 'v6': ['::/0'], 'hosts': []},
        'lb': {'v4': ['10.213.47.10/32'], 'v6': [], 'hosts': ['lb1']},
        'app': {'v4': ['10.213.47.21/32', '10.213.47.22/32'], 'v6': ['2001:db8:47::22/128'], 'hosts': ['app1', 'app2']},
        'db': {'v4': ['10.9.0.0/24', '10.213.47.31/32'], 'v6': [], 'hosts': ['db1', 'db2']},   # db2's 10.9.0.32 is inside 10.9.0.0/24
    }


def test_zone_order_is_kept():
    assert list(fw_zone_addresses(ZONES, GROUPS, HOSTVARS, 'lab_ip')) == ['mgmt', 'public', 'lb', 'app', 'db']
    reordered = dict(reversed(list(ZONES.items())))
    assert list(fw_zone_addresses(reordered, GROUPS, HOSTVARS, 'lab_ip')) == ['db', 'app', 'lb', 'public', 'mgmt']


def test_hosts_in_several_groups_count_once_and_are_sorted():
    zones = {'web': {'groups': ['app', 'all', 'loadbalancers']}}
    out = fw_zone_addresses(zones, GROUPS, HOSTVARS, 'lab_ip')['web']
    assert out['hosts'] == ['app1', 'app2', 'db1', 'db2', 'lb1']
    assert out['v4'] == ['10.9.0.32/32', '10.213.47.10/32', '10.213.47.21/32', '10.213.47.22/32', '10.213.47.31/32']
    assert out['v6'] == ['2001:db8:47::22/128']


@pytest.mark.parametrize('variables, address', [
    ({'lab_ip': '10.1.1.1', 'ansible_host': '10.2.2.2'}, '10.1.1.1/32'),      # address_var first
    ({'ansible_host': '10.2.2.2'}, '10.2.2.2/32'),                            # then ansible_host
    ({'lab_ip': None, 'ansible_host': '10.2.2.2'}, '10.2.2.2/32'),            # an unset (null or empty) address_var falls back
    ({'lab_ip': '', 'ansible_host': '10.2.2.2'}, '10.2.2.2/32'),
    ({'lab_ip': ' 10.1.1.1 '}, '10.1.1.1/32'),
    ({'lab_ip': '2001:DB8::1'}, '2001:db8::1/128'),
])
def test_where_the_address_comes_from(variables, address):
    out = fw_zone_addresses({'lb': {'groups': ['loadbalancers']}}, GROUPS, hostvars_with('lb1', **variables), 'lab_ip')
    assert out['lb']['v4'] + out['lb']['v6'] == [address]


def test_an_inventory_name_that_is_an_address_is_used_last():
    groups = {'edge': ['192.0.2.10', '2001:db8::10']}
    out = fw_zone_addresses({'edge': {'groups': ['edge']}}, groups, {'192.0.2.10': {}})   # the second host has no hostvars entry
    assert out == {'edge': {'v4': ['192.0.2.10/32'], 'v6': ['2001:db8::10/128'], 'hosts': ['192.0.2.10', '2001:db8::10']}}


def test_default_address_var_is_ansible_host():
    hostvars = hostvars_with('lb1', ansible_host='10.213.47.10', lab_ip='10.99.99.99')
    assert fw_zone_addresses({'lb': {'groups': ['loadbalancers']}}, GROUPS, hostvars)['lb']['v4'] == ['10.213.47.10/32']


def test_a_group_without_hosts_adds_nothing():
    assert fw_zone_addresses({'spare': {'groups': ['empty']}}, GROUPS, HOSTVARS) == {'spare': {'v4': [], 'v6': [], 'hosts': []}}
    out = fw_zone_addresses({'spare': {'groups': ['empty'], 'cidrs': ['10.5.0.0/16'], 'description': 'spare pool'}}, GROUPS, HOSTVARS)
    assert out == {'spare': {'v4': ['10.5.0.0/16'], 'v6': [], 'hosts': []}}


def test_allow_empty_accepts_a_zone_without_cidrs_and_groups():
    zones = {'mgmt': {'cidrs': []}, 'fleet': {}, 'public': {'cidrs': ['0.0.0.0/0']}}
    assert fw_zone_addresses(zones, GROUPS, HOSTVARS, allow_empty=True) == {
        'mgmt': {'v4': [], 'v6': [], 'hosts': []},
        'fleet': {'v4': [], 'v6': [], 'hosts': []},
        'public': {'v4': ['0.0.0.0/0'], 'v6': [], 'hosts': []},
    }
    with pytest.raises(AnsibleFilterError, match=re.escape('zone mgmt (firewall_zones.mgmt): has neither cidrs nor groups')):
        fw_zone_addresses(zones, GROUPS, HOSTVARS, allow_empty=False)
    with pytest.raises(AnsibleFilterError, match=re.escape("fw_zone_addresses: allow_empty must be true or false, got 'yes'")):
        fw_zone_addresses(zones, GROUPS, HOSTVARS, allow_empty='yes')


# --- a name used as an address ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('variables, message', [
    ({'lab_ip': 'db1.example.com'},
     "zone db: host db1 (group databases): lab_ip = 'db1.example.com' is not an IP address (host names are not resolved here); "
     "set lab_ip for db1 to its IP address, or a list of its addresses"),
    ({'ansible_host': 'db1.example.com'},
     "zone db: host db1 (group databases): ansible_host = 'db1.example.com' is not an IP address (host names are not resolved here); "
     "set lab_ip for db1 to its IP address"),
    ({}, "zone db: host db1 (group databases): neither lab_ip nor ansible_host is set, and its inventory name 'db1' is not an IP address "
         "(host names are not resolved here); set lab_ip for db1 to its IP address"),
    ({'lab_ip': '10.213.47.31/24'}, "zone db: host db1 (group databases): lab_ip = '10.213.47.31/24' is not an IP address"),
    ({'lab_ip': ['10.213.47.31', 'db1.lan']},
     "zone db: host db1 (group databases): lab_ip = ['10.213.47.31', 'db1.lan']: item 'db1.lan' is not an IP address"),
    ({'lab_ip': []}, "zone db: host db1 (group databases): lab_ip = [] is an empty list; set lab_ip for db1 to its IP address"),
    ({'lab_ip': 47}, 'zone db: host db1 (group databases): lab_ip = 47 is not an IP address'),
    ({'lab_ip': '127.0.0.1'}, "zone db: host db1 (group databases): lab_ip = '127.0.0.1' is a loopback or unspecified address - how the "
                              "controller reaches the host, not an address its traffic comes from; set lab_ip for db1 to its IP address"),
    ({'ansible_host': '127.0.0.1'}, "zone db: host db1 (group databases): ansible_host = '127.0.0.1' is a loopback or unspecified address"),
    ({'lab_ip': '::1'}, "zone db: host db1 (group databases): lab_ip = '::1' is a loopback or unspecified address"),
    ({'lab_ip': '::ffff:127.0.0.1'}, "zone db: host db1 (group databases): lab_ip = '::ffff:127.0.0.1' is a loopback or unspecified address"),
    ({'lab_ip': '0.0.0.0'}, "zone db: host db1 (group databases): lab_ip = '0.0.0.0' is a loopback or unspecified address"),
    ({'lab_ip': '::'}, "zone db: host db1 (group databases): lab_ip = '::' is a loopback or unspecified address"),
])
def test_the_address_must_be_an_ip_address_naming_host_zone_and_variable(variables, message):
    with pytest.raises(AnsibleFilterError) as error:
        fw_zone_addresses(ZONES, GROUPS, hostvars_with('db1', **variables), address_var='lab_ip')
    assert str(error.value).startswith(message), str(error.value)


def test_with_the_default_address_var_the_message_says_how_to_choose_another():
    with pytest.raises(AnsibleFilterError) as error:
        fw_zone_addresses({'lb': {'groups': ['loadbalancers']}}, GROUPS, HOSTVARS)
    assert str(error.value) == ("zone lb: host lb1 (group loadbalancers): ansible_host = '127.0.0.1' is a loopback or unspecified address - "
                                "how the controller reaches the host, not an address its traffic comes from; set ansible_host for lb1 to "
                                "its IP address, or a list of its addresses, or pass address_var naming the host variable that holds its address")


def test_names_are_never_resolved(monkeypatch):
    calls = []

    def resolver(*args, **_kwargs):
        calls.append(args)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, '', ('10.213.47.31', 0))]

    monkeypatch.setattr(socket, 'getaddrinfo', resolver)
    monkeypatch.setattr(socket, 'gethostbyname', lambda name: calls.append(name) or '10.213.47.31')
    monkeypatch.setattr(socket, 'gethostbyname_ex', lambda name: calls.append(name) or (name, [], ['10.213.47.31']))
    with pytest.raises(AnsibleFilterError, match=re.escape("zone db: host db1 (group databases): lab_ip = 'localhost' is not an IP address")):
        fw_zone_addresses(ZONES, GROUPS, hostvars_with('db1', lab_ip='localhost'), 'lab_ip')
    assert calls == []


def test_a_host_variable_that_cannot_be_read_names_host_zone_and_variable():
    class Broken(Mapping):
        def __init__(self, data):
            self.data = data

        def __getitem__(self, key):
            if key == 'lab_ip':
                raise KeyError("'lab_network' is undefined")
            return self.data[key]

        def __iter__(self):
            return iter(list(self.data) + ['lab_ip'])

        def __len__(self):
            return len(self.data) + 1

        def __contains__(self, key):
            return key == 'lab_ip' or key in self.data

    hostvars = hostvars_with('db1')
    hostvars['db1'] = Broken({'ansible_host': '127.0.0.1'})
    with pytest.raises(AnsibleFilterError, match=re.escape("zone db: host db1: cannot read lab_ip: \"'lab_network' is undefined\"")):
        fw_zone_addresses(ZONES, GROUPS, hostvars, 'lab_ip')


# --- zones and groups ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('zones, message', [
    (zones_with(app={'groups': ['apps']}),
     "zone app (firewall_zones.app.groups): group 'apps' is not in the inventory (known groups: all, app, databases, empty, "
     "loadbalancers, ungrouped); did you mean 'app'?"),
    (zones_with(app={'groups': ['app', 'webservers']}), "zone app (firewall_zones.app.groups): group 'webservers' is not in the inventory"),
    (zones_with(app={'groups': [7]}), 'zone app (firewall_zones.app.groups): group 7 is not in the inventory'),
    (zones_with(app={'groups': 'app'}), "zone app (firewall_zones.app.groups): must be a list of inventory group names, got 'app'; write [app]"),
    (zones_with(app={}), 'zone app (firewall_zones.app): has neither cidrs nor groups; give it a list of CIDRs, a list of inventory groups, or both'),
    (zones_with(app={'cidrs': [], 'groups': []}), 'zone app (firewall_zones.app): has neither cidrs nor groups'),
    (zones_with(app={'cidrs': None}), 'zone app (firewall_zones.app): has neither cidrs nor groups'),
    (zones_with(app={'cidr': ['10.0.0.0/8']}), 'zone app (firewall_zones.app): unknown key(s) cidr; allowed keys are cidrs, groups, description'),
    (zones_with(app=['app']), "zone app (firewall_zones.app): must be a dict with cidrs and/or groups, got ['app']"),
    (zones_with(mgmt={'cidrs': ['10.213.0.1/16']}),
     "zone mgmt (firewall_zones.mgmt.cidrs): entry 0 '10.213.0.1/16' has host bits set; write the network 10.213.0.0/16"),
    (zones_with(mgmt={'cidrs': ['10.213.0.0/16', 'mgmt.example.com']}),
     "zone mgmt (firewall_zones.mgmt.cidrs): entry 1 'mgmt.example.com' is not an IPv4/IPv6 address or CIDR"),
    (zones_with(mgmt={'cidrs': '10.213.0.0/16'}), "zone mgmt (firewall_zones.mgmt.cidrs): must be a list of addresses or CIDRs, got the string"),
])
def test_bad_zones_are_named(zones, message):
    with pytest.raises(AnsibleFilterError) as error:
        fw_zone_addresses(zones, GROUPS, HOSTVARS, 'lab_ip')
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize('name, suggestion', [
    ('Public', " (e.g. 'public')"),
    ('public-net', " (e.g. 'public_net')"),
    ('1st_floor', " (e.g. 'z_1st_floor')"),
    ('a' * 32, " (e.g. '%s')" % ('a' * 31)),
    ('', ''),
    ('_', ''),
])
def test_zone_names_must_be_usable_as_nftables_set_names(name, suggestion):
    with pytest.raises(AnsibleFilterError) as error:
        fw_zone_addresses({name: {'cidrs': ['10.0.0.0/8']}}, GROUPS, HOSTVARS)
    assert str(error.value) == ("firewall_zones: zone name %r cannot be an nftables set name; use lowercase letters, digits and _, starting "
                                "with a letter, at most 31 characters%s" % (name, suggestion))


@pytest.mark.parametrize('name', ['a', 'public', 'db_2', 'z' + '9' * 30])
def test_valid_zone_names(name):
    assert list(fw_zone_addresses({name: {'cidrs': ['10.0.0.0/8']}}, GROUPS, HOSTVARS)) == [name]


@pytest.mark.parametrize('args, message', [
    ((['mgmt'], GROUPS, HOSTVARS), "firewall_zones: must be a dict of zone name: {cidrs: [...], groups: [...]}, got list ['mgmt']"),
    ((ZONES, ['app'], HOSTVARS), 'fw_zone_addresses: groups must be the dict of inventory groups (pass the magic variable groups)'),
    ((ZONES, GROUPS, 'hostvars'), "fw_zone_addresses: hostvars must be the hosts' variables (pass the magic variable hostvars), got str"),
    ((ZONES, GROUPS, HOSTVARS, ''), 'fw_zone_addresses: address_var must be the name of a host variable, such as ansible_host'),
    ((ZONES, GROUPS, HOSTVARS, None), 'fw_zone_addresses: address_var must be the name of a host variable'),
])
def test_bad_arguments(args, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        fw_zone_addresses(*args)


def test_registered():
    assert FilterModule().filters() == {'fw_zone_addresses': fw_zone_addresses}


# --- properties ---------------------------------------------------------------------------------------------------------

BLOCKS = ['10.30.0.0/28', '10.30.0.64/26', '2001:db8:30::/124', '2001:db8:30::80/121']


def addresses(version):
    block = netaddr.IPNetwork('10.30.0.0/24' if version == 4 else '2001:db8:30::/120')
    return st.integers(block.first + 1, block.last).map(lambda value: str(netaddr.IPAddress(value, version)))


@st.composite
def inventories(draw):
    hosts = ['h%d' % number for number in range(draw(st.integers(1, 6)))]
    hostvars = {}
    for host in hosts:
        found = draw(st.lists(st.one_of(addresses(4), addresses(6)), min_size=1, max_size=2))
        hostvars[host] = {'lab_ip': found if len(found) > 1 else found[0]}
    groups = dict(('g%d' % number, draw(st.lists(st.sampled_from(hosts), unique=True))) for number in range(3))
    zones = {}
    for number in range(draw(st.integers(1, 4))):
        zone = {}
        zone_groups = draw(st.lists(st.sampled_from(sorted(groups)), unique=True, max_size=2))
        cidrs = draw(st.lists(st.one_of(addresses(4), addresses(6), st.sampled_from(BLOCKS)), max_size=2))
        if zone_groups:
            zone['groups'] = zone_groups
        if cidrs or not zone_groups:
            zone['cidrs'] = cidrs or [draw(addresses(4))]
        zones['z%d' % number] = zone
    return zones, groups, hostvars


def _set_of(hostvars, host):
    value = hostvars[host]['lab_ip']
    return value if isinstance(value, list) else [value]


@settings(max_examples=150, deadline=None)
@given(inventories())
def test_zone_addresses_are_the_cidrs_and_the_hosts_addresses(inventory):
    zones, groups, hostvars = inventory
    out = fw_zone_addresses(zones, groups, hostvars, address_var='lab_ip')
    assert list(out) == list(zones)
    for name, zone in zones.items():
        hosts = set(host for group in zone.get('groups', []) for host in groups[group])
        expected = netaddr.IPSet(zone.get('cidrs', []) + [address for host in hosts for address in _set_of(hostvars, host)])
        assert out[name]['hosts'] == sorted(hosts)
        assert netaddr.IPSet(out[name]['v4'] + out[name]['v6']) == expected
        assert all(netaddr.IPNetwork(cidr).version == 4 for cidr in out[name]['v4'])
        assert all(netaddr.IPNetwork(cidr).version == 6 for cidr in out[name]['v6'])
        assert out[name]['v4'] + out[name]['v6'] == [str(net) for net in netaddr.cidr_merge(expected.iter_cidrs())]


# --- through Ansible's templating, by FQCN, with the lab inventory's real groups and hostvars -----------------------------

def test_filter_loads_by_fqcn_with_real_hostvars(tmp_path):
    extra = tmp_path / 'vars.yml'
    zones = {'lb': {'groups': ['loadbalancers']}, 'db': {'groups': ['db'], 'cidrs': ['10.9.0.0/24']}}
    extra.write_text(yaml.safe_dump({'firewall_zones': zones}, sort_keys=False))
    value, output = render("firewall_zones | dealerscope.ops.fw_zone_addresses(groups, hostvars, address_var='lab_ip')", str(extra))
    assert value == {'lb': {'v4': ['10.213.47.10/32'], 'v6': [], 'hosts': ['lb1']},
                     'db': {'v4': ['10.9.0.0/24', '10.213.47.31/32', '10.213.47.32/32'], 'v6': [], 'hosts': ['db1', 'db2']}}, output
    value, output = render('firewall_zones | dealerscope.ops.fw_zone_addresses(groups, hostvars)', str(extra))
    assert value is None
    assert "zone lb: host lb1 (group loadbalancers): ansible_host = '127.0.0.1' is a loopback" in ' '.join(output.split()), output
