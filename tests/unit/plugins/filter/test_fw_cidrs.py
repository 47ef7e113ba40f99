# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.fw_cidrs filter."""

from __future__ import annotations

import json
import re

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.fw_cidrs import FilterModule, fw_cidrs

from .ansible_render import render

MAX_PREFIX = {4: 32, 6: 128}


def test_merges_sorts_and_keeps_ipv4_first():
    out = fw_cidrs(['2001:db8:1::/48', '10.213.1.0/24', '2001:db8::/48', '10.213.0.0/24', '192.0.2.7', '10.213.0.7'], name='zone mgmt')
    assert out == ['10.213.0.0/23', '192.0.2.7/32', '2001:db8::/47']


def test_bare_addresses_become_single_address_networks():
    assert fw_cidrs(['192.0.2.7']) == ['192.0.2.7/32']
    assert fw_cidrs(['2001:DB8:0:0::1']) == ['2001:db8::1/128']   # IPv6 is written in its canonical form
    assert fw_cidrs(['::ffff:192.0.2.7']) == ['::ffff:192.0.2.7/128']   # an IPv4-mapped address is IPv6


def test_duplicates_covered_networks_and_catch_alls():
    assert fw_cidrs(['10.0.0.0/8', '10.1.0.0/16', '10.0.0.0/8', '10.9.9.9']) == ['10.0.0.0/8']
    assert fw_cidrs(['::/0', '0.0.0.0/0', '10.0.0.0/8', '2001:db8::/32']) == ['0.0.0.0/0', '::/0']
    assert fw_cidrs(['0.0.0.0/1', '128.0.0.0/1']) == ['0.0.0.0/0']


def test_empty_list_and_surrounding_spaces():
    assert fw_cidrs([]) == []
    assert fw_cidrs([' 10.0.0.0/8 ', '10.0.0.0/ 8']) == ['10.0.0.0/8']


@pytest.mark.parametrize('entry, network', [
    ('10.0.0.1/8', '10.0.0.0/8'),
    ('192.168.1.77/24', '192.168.1.0/24'),
    ('2001:db8::1/32', '2001:db8::/32'),
    ('0.0.0.1/0', '0.0.0.0/0'),
])
def test_host_bits_are_refused_with_the_network_suggested(entry, network):
    with pytest.raises(AnsibleFilterError) as error:
        fw_cidrs(['10.213.0.0/16', entry], name='zone mgmt')
    message = str(error.value)
    assert message.startswith("zone mgmt: entry 1 '%s' has host bits set; write the network %s, or " % (entry, network)), message
    assert '%s/%d' % (entry.split('/')[0], MAX_PREFIX[netaddr.IPAddress(entry.split('/')[0]).version]) in message


@pytest.mark.parametrize('entry, message', [
    ('garbage', "zone mgmt: entry 1 'garbage' is not an IPv4/IPv6 address or CIDR"),
    ('db1.example.com', "zone mgmt: entry 1 'db1.example.com' is not an IPv4/IPv6 address or CIDR (e.g. 10.0.0.0/8, 192.0.2.7, "
                        "2001:db8::/32); host names are not resolved here"),
    ('', 'zone mgmt: entry 1 is an empty string; remove it or write an address or CIDR'),
    ('   ', 'zone mgmt: entry 1 is an empty string'),
    (42, 'zone mgmt: entry 1 is int 42, not a string'),
    (None, 'zone mgmt: entry 1 is NoneType None, not a string'),
    (True, 'zone mgmt: entry 1 is bool True, not a string'),
    ({'cidr': '10.0.0.0/8'}, 'zone mgmt: entry 1 is dict '),
    (['10.0.0.0/8'], 'zone mgmt: entry 1 is list '),
    ('10/8', "zone mgmt: entry 1 '10/8' is not an IPv4/IPv6 address or CIDR"),
    ('010.0.0.1', "zone mgmt: entry 1 '010.0.0.1' is not an IPv4/IPv6 address or CIDR"),
    ('1.2.3', "zone mgmt: entry 1 '1.2.3' is not an IPv4/IPv6 address or CIDR"),
    ('fe80::1%eth0', "zone mgmt: entry 1 'fe80::1%eth0' is not an IPv4/IPv6 address or CIDR"),
    ('10.0.0.0/33', "zone mgmt: entry 1 '10.0.0.0/33': the prefix length must be a number from 0 to 32"),
    ('2001:db8::/129', "zone mgmt: entry 1 '2001:db8::/129': the prefix length must be a number from 0 to 128"),
    ('10.0.0.0/-1', "zone mgmt: entry 1 '10.0.0.0/-1': the prefix length must be a number from 0 to 32"),
    ('10.0.0.0/', "zone mgmt: entry 1 '10.0.0.0/': the prefix length must be a number from 0 to 32"),
    ('10.0.0.0/8/8', "zone mgmt: entry 1 '10.0.0.0/8/8': the prefix length must be a number from 0 to 32"),
    ('10.0.0.0/255.0.0.0', "zone mgmt: entry 1 '10.0.0.0/255.0.0.0': the prefix length must be a number from 0 to 32; "
                           "write a prefix length instead of a netmask: 10.0.0.0/8"),
])
def test_bad_entries_name_the_list_and_the_entry(entry, message):
    with pytest.raises(AnsibleFilterError) as error:
        fw_cidrs(['10.213.0.0/16', entry], name='zone mgmt')
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize('value, message', [
    ('10.0.0.0/8', "zone mgmt: must be a list of addresses or CIDRs, got the string '10.0.0.0/8'; write it as a list: [10.0.0.0/8]"),
    (None, 'zone mgmt: must be a list of addresses or CIDRs (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32), got NoneType None'),
    ({'cidrs': []}, 'zone mgmt: must be a list of addresses or CIDRs'),
    (8, 'zone mgmt: must be a list of addresses or CIDRs'),
])
def test_the_input_must_be_a_list(value, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        fw_cidrs(value, name='zone mgmt')


def test_default_name_in_messages():
    with pytest.raises(AnsibleFilterError, match=re.escape("fw_cidrs: entry 0 'nope' is not")):
        fw_cidrs(['nope'])


def test_registered():
    assert FilterModule().filters() == {'fw_cidrs': fw_cidrs}


# --- properties ---------------------------------------------------------------------------------------------------------

@st.composite
def network_texts(draw):
    """A random IPv4/IPv6 network (host bits clear) as text; half of them inside a small block so that they overlap."""
    version = draw(st.sampled_from([4, 6]))
    longest = MAX_PREFIX[version]
    if draw(st.booleans()):
        block = netaddr.IPNetwork('10.20.0.0/20' if version == 4 else '2001:db8::/116')
        prefix = draw(st.integers(block.prefixlen, longest))
        value = block.first + draw(st.integers(0, block.size - 1))
    else:
        prefix = draw(st.integers(0, longest))
        value = draw(st.integers(0, 2 ** longest - 1))
    network = netaddr.IPNetwork('%s/%d' % (netaddr.IPAddress(value, version), prefix)).cidr
    form = draw(st.sampled_from(['cidr', 'bare', 'upper']))
    if form == 'bare' and prefix == longest:
        return str(network.ip)
    if form == 'upper':
        return str(network).upper()
    return str(network)


@settings(max_examples=300, deadline=None)
@given(st.lists(network_texts(), max_size=10))
def test_same_addresses_collapsed_sorted_and_idempotent(entries):
    out = fw_cidrs(entries, name='random')
    assert netaddr.IPSet(out) == netaddr.IPSet(netaddr.IPNetwork(entry) for entry in entries)
    assert fw_cidrs(out, name='again') == out
    assert fw_cidrs(list(reversed(entries))) == out
    networks = [netaddr.IPNetwork(cidr) for cidr in out]
    assert [str(net) for net in networks] == out   # canonical text
    assert networks == sorted(networks, key=lambda net: (net.version, net.first))   # IPv4 first, then by address
    assert all(left.last < right.first for left, right in zip(networks, networks[1:]) if left.version == right.version)   # disjoint
    assert netaddr.cidr_merge(networks) == networks   # nothing left to merge


# --- through Ansible's templating, by FQCN -------------------------------------------------------------------------------

def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({'mgmt_cidrs': ['10.213.1.0/24', '10.213.0.0/24', '2001:db8::1']}))
    value, output = render("mgmt_cidrs | dealerscope.ops.fw_cidrs(name='zone mgmt')", str(extra))
    assert value == ['10.213.0.0/23', '2001:db8::1/128'], output
