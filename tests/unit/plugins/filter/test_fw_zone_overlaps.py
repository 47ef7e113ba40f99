# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.fw_zone_overlaps filter."""

from __future__ import annotations

import json
import re

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.fw_zone_overlaps import FilterModule, fw_zone_overlaps

from .ansible_render import render


def zone(v4=(), v6=(), hosts=()):
    return {'v4': list(v4), 'v6': list(v6), 'hosts': list(hosts)}


# The role's data model resolved for the lab: mgmt (10.213.0.0/16) holds every lab host.
LAB = {
    'mgmt': zone(['10.213.0.0/16']),
    'public': zone(['0.0.0.0/0'], ['::/0']),
    'lb': zone(['10.213.47.10/32'], hosts=['lb1']),
    'app': zone(['10.213.47.21/32', '10.213.47.22/32'], ['2001:db8:47::22/128'], hosts=['app1', 'app2']),
    'db': zone(['10.9.0.0/24', '10.213.47.31/32'], hosts=['db1', 'db2']),
}


def test_pairs_that_share_addresses():
    assert fw_zone_overlaps(LAB) == [
        {'zones': ['app', 'mgmt'], 'overlap': ['10.213.47.21/32', '10.213.47.22/32']},
        {'zones': ['db', 'mgmt'], 'overlap': ['10.213.47.31/32']},
        {'zones': ['lb', 'mgmt'], 'overlap': ['10.213.47.10/32']},
    ]


def test_allowed_pairs_in_either_order():
    assert fw_zone_overlaps(LAB, allowed=[['mgmt', 'app'], ['db', 'mgmt']]) == [{'zones': ['lb', 'mgmt'], 'overlap': ['10.213.47.10/32']}]
    assert fw_zone_overlaps(LAB, allowed=[['app', 'mgmt'], ('lb', 'mgmt'), ['mgmt', 'db']]) == []
    assert fw_zone_overlaps(LAB, allowed=None) == fw_zone_overlaps(LAB, allowed=[])


def test_a_host_in_two_zones_and_ipv6_overlaps():
    zones = {
        'app': zone(['10.213.47.21/32'], ['2001:db8:47::/64'], hosts=['app1']),
        'db': zone(['10.213.47.21/32'], ['2001:db8:47::31/128'], hosts=['app1', 'db1']),
        'ops': zone([], ['2001:db8::/32']),
    }
    assert fw_zone_overlaps(zones) == [
        {'zones': ['app', 'db'], 'overlap': ['10.213.47.21/32', '2001:db8:47::31/128']},
        {'zones': ['app', 'ops'], 'overlap': ['2001:db8:47::/64']},
        {'zones': ['db', 'ops'], 'overlap': ['2001:db8:47::31/128']},
    ]


@pytest.mark.parametrize('catch_all', [zone(['0.0.0.0/0']), zone([], ['::/0']), zone(['0.0.0.0/0'], ['2001:db8::/32']),
                                       zone(['0.0.0.0/1', '128.0.0.0/1'])])
def test_a_catch_all_zone_may_overlap_everything(catch_all):
    zones = {'any': catch_all, 'app': zone(['10.213.47.21/32'], ['2001:db8::21/128']), 'ops': zone(['10.213.0.0/16'])}
    assert fw_zone_overlaps(zones) == [{'zones': ['app', 'ops'], 'overlap': ['10.213.47.21/32']}]


def test_half_of_ipv4_is_not_a_catch_all():
    zones = {'half': zone(['0.0.0.0/1']), 'app': zone(['10.213.47.21/32'])}
    assert fw_zone_overlaps(zones) == [{'zones': ['app', 'half'], 'overlap': ['10.213.47.21/32']}]


def test_no_overlap_and_empty_zones():
    assert fw_zone_overlaps({'a': zone(['10.0.0.0/24']), 'b': zone(['10.0.1.0/24']), 'c': zone()}) == []
    assert fw_zone_overlaps({}) == []


def test_the_result_does_not_depend_on_zone_order():
    assert fw_zone_overlaps(dict(reversed(list(LAB.items())))) == fw_zone_overlaps(LAB)


@pytest.mark.parametrize('allowed, message', [
    ([['mgmt', 'apps']], "fw_zone_overlaps: allowed[0] ['mgmt', 'apps']: zone 'apps' is not a zone (known zones: app, db, lb, mgmt, public); "
                         "did you mean 'app'?"),
    ([['app', 'mgmt'], ['dbs', 'mgmt']], "fw_zone_overlaps: allowed[1] ['dbs', 'mgmt']: zone 'dbs' is not a zone"),
    ([['app', 'app']], "fw_zone_overlaps: allowed[0] names zone 'app' twice; a pair needs two different zones"),
    ([['app']], "fw_zone_overlaps: allowed[0] must be a list of two zone names such as [mgmt, app], got ['app']"),
    ([['app', 'db', 'lb']], 'fw_zone_overlaps: allowed[0] must be a list of two zone names'),
    (['app,db'], "fw_zone_overlaps: allowed[0] must be a list of two zone names such as [mgmt, app], got 'app,db'"),
    ([['app', 3]], 'fw_zone_overlaps: allowed[0] must be a list of two zone names'),
    ('app,db', "fw_zone_overlaps: allowed must be a list of zone pairs such as [[mgmt, app]], got 'app,db'"),
])
def test_bad_allowed_pairs(allowed, message):
    with pytest.raises(AnsibleFilterError) as error:
        fw_zone_overlaps(LAB, allowed=allowed)
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize('zones, message', [
    ({'mgmt': {'cidrs': ['10.213.0.0/16']}}, "fw_zone_overlaps: zone_addresses['mgmt'] has no v4/v6 lists (got {'cidrs': ['10.213.0.0/16']}); "
                                             "pass the output of dealerscope.ops.fw_zone_addresses, not firewall_zones itself"),
    ({'mgmt': zone(['10.213.0.1/16'])}, "zone mgmt (zone_addresses['mgmt'].v4): entry 0 '10.213.0.1/16' has host bits set"),
    ({'mgmt': zone([], ['mgmt.example.com'])}, "zone mgmt (zone_addresses['mgmt'].v6): entry 0 'mgmt.example.com' is not an IPv4/IPv6 address"),
    ({'mgmt': {'v4': '10.213.0.0/16', 'v6': []}}, "zone mgmt (zone_addresses['mgmt'].v4): must be a list of addresses or CIDRs, got the string"),
    ([LAB], 'fw_zone_overlaps: zone_addresses must be the dict returned by dealerscope.ops.fw_zone_addresses, got list'),
])
def test_bad_zone_addresses(zones, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        fw_zone_overlaps(zones)


def test_registered():
    assert FilterModule().filters() == {'fw_zone_overlaps': fw_zone_overlaps}


# --- properties ---------------------------------------------------------------------------------------------------------

BLOCK = {4: netaddr.IPNetwork('10.40.0.0/24'), 6: netaddr.IPNetwork('2001:db8:40::/120')}


@st.composite
def networks(draw):
    version = draw(st.sampled_from([4, 6]))
    block = BLOCK[version]
    longest = 32 if version == 4 else 128
    prefix = draw(st.integers(block.prefixlen, longest))
    return netaddr.IPNetwork('%s/%d' % (netaddr.IPAddress(block.first + draw(st.integers(0, block.size - 1)), version), prefix)).cidr


@st.composite
def zone_maps(draw):
    names = draw(st.lists(st.sampled_from(['app', 'db', 'lb', 'mgmt', 'ops', 'edge']), min_size=1, max_size=5, unique=True))
    zones = {}
    for name in names:
        found = netaddr.cidr_merge(draw(st.lists(networks(), max_size=4)))
        if draw(st.integers(0, 9)) == 0:
            found = netaddr.cidr_merge(found + [netaddr.IPNetwork(draw(st.sampled_from(['0.0.0.0/0', '::/0'])))])
        zones[name] = zone([str(net) for net in found if net.version == 4], [str(net) for net in found if net.version == 6])
    return zones


def _ipset(entry):
    return netaddr.IPSet(entry['v4'] + entry['v6'])


@settings(max_examples=200, deadline=None)
@given(zone_maps(), st.data())
def test_overlaps_are_exactly_the_intersections_and_symmetric(zones, data):
    out = fw_zone_overlaps(zones)
    reported = dict((tuple(item['zones']), item['overlap']) for item in out)
    assert [item['zones'] for item in out] == sorted(item['zones'] for item in out)
    catch_all = set(name for name, entry in zones.items()
                    if netaddr.IPNetwork('0.0.0.0/0') in _ipset(entry) or netaddr.IPNetwork('::/0') in _ipset(entry))
    names = sorted(zones)
    for first in names:
        for second in names:
            if first >= second:
                continue
            shared = _ipset(zones[first]) & _ipset(zones[second])
            expected = bool(shared) and not ({first, second} & catch_all)
            assert ((first, second) in reported) == expected
            if expected:
                assert netaddr.IPSet(reported[(first, second)]) == shared
    # symmetric: neither the order of the zones nor the order inside an allowed pair matters
    assert fw_zone_overlaps(dict(reversed(list(zones.items())))) == out
    if out:
        pair = data.draw(st.sampled_from([item['zones'] for item in out]))
        rest = [item for item in out if item['zones'] != pair]
        assert fw_zone_overlaps(zones, allowed=[pair]) == rest
        assert fw_zone_overlaps(zones, allowed=[list(reversed(pair))]) == rest


# --- through Ansible's templating, by FQCN -------------------------------------------------------------------------------

def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({'firewall_zone_addresses': LAB}))
    value, output = render("firewall_zone_addresses | dealerscope.ops.fw_zone_overlaps(allowed=[['mgmt', 'app'], ['db', 'mgmt']])", str(extra))
    assert value == [{'zones': ['lb', 'mgmt'], 'overlap': ['10.213.47.10/32']}], output
