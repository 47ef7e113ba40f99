# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.deploy_traffic filter."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.deploy_traffic import FilterModule, deploy_traffic

COLOURS = {'blue': ['app1:8001', 'app2:8001'], 'green': ['app1:8002', 'app2:8002']}


def member(address, weight=1, down=False, drained=False):
    return {'address': address, 'weight': weight, 'down': down, 'drained': drained}


def share_of(plan, addresses):
    total = sum(item['weight'] for item in plan)
    return Fraction(sum(item['weight'] for item in plan if item['address'] in addresses), total)


def test_blue_live_green_idle():
    pool = [member('app1:8001'), member('app2:8001'), member('app1:8002', down=True), member('app2:8002', down=True)]
    state = deploy_traffic(pool, COLOURS)
    assert (state['live'], state['idle'], state['interrupted']) == ('blue', 'green', False)
    assert state['share'] == {'blue': 100.0, 'green': 0.0, 'other': 0.0}
    assert state['serving']['blue'] == ['app1:8001', 'app2:8001'] and state['other'] == []
    assert 'members' not in state


def test_legacy_members_are_other_and_nothing_is_live():
    pool = [member('app1:8000', max(1, 1)), member('app2:8000')]
    state = deploy_traffic(pool, COLOURS)
    assert state['live'] is None and state['idle'] == 'blue' and state['other'] == ['app1:8000', 'app2:8000']
    plan = deploy_traffic(pool, COLOURS, to='blue', percent=10)['members']
    assert share_of(plan, COLOURS['blue']) == Fraction(1, 10)
    final = deploy_traffic(pool, COLOURS, to='blue', percent='100')['members']
    # the legacy members leave the pool, green is listed down
    assert final == [member_plan for member_plan in final if member_plan['address'] not in ('app1:8000', 'app2:8000')]
    assert {m['address']: m['weight'] for m in final} == {'app1:8001': 1, 'app2:8001': 1, 'app1:8002': 0, 'app2:8002': 0}


def test_split_traffic_is_interrupted():
    pool = [member('app1:8001', 9), member('app1:8002', 1)]
    state = deploy_traffic(pool, COLOURS)
    assert state['interrupted'] is True and state['live'] is None
    assert state['share']['blue'] == 90.0 and state['share']['green'] == 10.0


def test_drained_members_are_listed():
    pool = [member('app1:8001', down=True, drained=True), member('app2:8001')]
    state = deploy_traffic(pool, COLOURS)
    assert state['drained'] == ['app1:8001'] and state['live'] == 'blue' and state['serving']['blue'] == ['app2:8001']


def test_steps_keep_the_old_colour_warm_at_100():
    pool = [member('app1:8001'), member('app2:8001'), member('app1:8002', down=True), member('app2:8002', down=True)]
    ten = deploy_traffic(pool, COLOURS, to='green', percent=10)['members']
    assert {m['address']: m['weight'] for m in ten} == {'app1:8002': 1, 'app2:8002': 1, 'app1:8001': 9, 'app2:8001': 9}
    full = deploy_traffic(pool, COLOURS, to='green', percent=100)['members']
    assert {m['address']: m['weight'] for m in full} == {'app1:8002': 1, 'app2:8002': 1, 'app1:8001': 0, 'app2:8001': 0}


@pytest.mark.parametrize('percent', [0, 101, '10%', 'ten', True, 10.5, None])
def test_bad_percent_is_refused(percent):
    with pytest.raises(AnsibleFilterError, match='whole number from 1 to 100'):
        deploy_traffic([member('app1:8001')], COLOURS, to='green', percent=percent)


def test_bad_inputs_name_the_problem():
    with pytest.raises(AnsibleFilterError, match='is not a colour'):
        deploy_traffic([member('app1:8001')], COLOURS, to='red', percent=10)
    with pytest.raises(AnsibleFilterError, match='in colours blue and green'):
        deploy_traffic([], {'blue': ['a:1'], 'green': ['a:1']})
    with pytest.raises(AnsibleFilterError, match='exactly two colour'):
        deploy_traffic([], {'blue': ['a:1']})
    with pytest.raises(AnsibleFilterError, match='list of pool members'):
        deploy_traffic('app1:8001', COLOURS)
    with pytest.raises(AnsibleFilterError, match='has no address'):
        deploy_traffic([{'weight': 1}], COLOURS)


@settings(max_examples=200, deadline=None)
@given(percent=st.integers(1, 99), new=st.integers(1, 6), old=st.integers(1, 6), other=st.integers(0, 3))
def test_property_the_plan_gives_exactly_the_share(percent, new, old, other):
    colours = {'blue': ['b%d:1' % i for i in range(old)], 'green': ['g%d:2' % i for i in range(new)]}
    pool = [member(a) for a in colours['blue']] + [member('o%d:3' % i, weight=i + 1) for i in range(other)]
    plan = deploy_traffic(pool, colours, to='green', percent=percent)['members']
    assert share_of(plan, colours['green']) == Fraction(percent, 100)
    assert all(item['weight'] >= 1 for item in plan if item['address'] in colours['green'])
    assert len({item['address'] for item in plan}) == len(plan)
    assert FilterModule().filters()['deploy_traffic'] is deploy_traffic
