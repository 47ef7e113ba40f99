# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.patch_batches filter."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.patch_batches import patch_batches, serial_size

from .ansible_render import render

# the lab fleet, in inventory order
LAB = {'lb1': ['loadbalancers'], 'app1': ['app'], 'app2': ['app'], 'db1': ['db', 'db_primary'], 'db2': ['db', 'db_standby']}
LAB_TARGETS = ['lb1', 'app1', 'app2', 'db1', 'db2']
ORDER = ['db_standby', 'db_primary', 'db', 'app', 'loadbalancers']
APP_POOL = [{'group': 'app', 'min_healthy': 1, 'max_parallel': 1}]


def fleet(app=4, db=2, web=0):
    groups = {}
    for index in range(1, db + 1):
        groups['db%d' % index] = ['db', 'db_primary' if index == 1 else 'db_standby']
    for index in range(1, app + 1):
        groups['app%d' % index] = ['app']
    for index in range(1, web + 1):
        groups['web%d' % index] = ['web']
    return groups


def test_lab_fleet_plan():
    out = patch_batches(LAB_TARGETS, LAB, order=ORDER, serial=2, canary=True, pools=APP_POOL)
    assert out == {
        'order': ['db2', 'db1', 'app1', 'app2', 'lb1'],
        'batches': [['db2'], ['db1'], ['app1'], ['app2'], ['lb1']],
        'sizes': [1, 1, 1, 1, 1],
        'batch_groups': ['db_standby', 'db_primary', 'app', 'app', 'loadbalancers'],
        'group_of': {'lb1': 'loadbalancers', 'app1': 'app', 'app2': 'app', 'db1': 'db_primary', 'db2': 'db_standby'},
        'canary': 'db2',
    }


def test_defaults_are_one_host_at_a_time_without_canary():
    out = patch_batches(['app1', 'app2', 'lb1'], LAB)
    assert out['batches'] == [['app1'], ['app2'], ['lb1']] and out['canary'] is None
    assert out['group_of'] == {'app1': 'other', 'app2': 'other', 'lb1': 'other'}


def test_host_in_several_listed_groups_belongs_to_the_first_listed():
    out = patch_batches(LAB_TARGETS, LAB, order=['db', 'db_standby', 'app'], serial=5)
    assert out['group_of'] == {'lb1': 'other', 'app1': 'app', 'app2': 'app', 'db1': 'db', 'db2': 'db'}
    assert out['batches'] == [['db1', 'db2'], ['app1', 'app2'], ['lb1']]


def test_unlisted_and_unknown_groups():
    out = patch_batches(LAB_TARGETS, LAB, order=['nosuchgroup', 'app'], serial=10)
    assert out['batches'] == [['app1', 'app2'], ['lb1', 'db1', 'db2']]   # the rest goes last, as 'other', in target order
    assert out['batch_groups'] == ['app', 'other']
    out = patch_batches(LAB_TARGETS, LAB, order=['app', 'other', 'db'], serial=10)   # 'other' can be placed explicitly
    assert out['batches'] == [['app1', 'app2'], ['lb1'], ['db1', 'db2']]


def test_batches_never_mix_groups_and_keep_target_order():
    groups = fleet(app=5, db=3)
    targets = ['app3', 'db2', 'app1', 'db1', 'app5', 'app2', 'db3', 'app4']
    out = patch_batches(targets, groups, order=['db', 'app'], serial=3)
    assert out['batches'] == [['db2', 'db1', 'db3'], ['app3', 'app1', 'app5'], ['app2', 'app4']]
    assert out['sizes'] == [3, 3, 2]


@pytest.mark.parametrize('serial,total,size', [
    (1, 10, 1), (3, 10, 3), ('3', 10, 3), (' 4 ', 10, 4), (25, 10, 25),
    ('50%', 10, 5), ('25%', 10, 2), ('10%', 5, 1), ('1%', 3, 1), ('100%', 7, 7), ('34%', 3, 1), ('67%', 3, 2),
])
def test_serial_sizes_like_ansible(serial, total, size):
    assert serial_size(serial, total) == size


def test_percentage_serial_in_a_plan():
    groups = fleet(app=8, db=0)
    out = patch_batches(sorted(groups), groups, order=['app'], serial='25%')
    assert out['sizes'] == [2, 2, 2, 2]


def test_named_canary_moves_to_the_front_alone():
    out = patch_batches(LAB_TARGETS, LAB, order=ORDER, serial=5, canary='app2')
    assert out['batches'] == [['app2'], ['db2'], ['db1'], ['app1'], ['lb1']]
    assert out['canary'] == 'app2' and out['group_of']['app2'] == 'app'
    assert out['batch_groups'] == ['app', 'db_standby', 'db_primary', 'app', 'loadbalancers']


def test_canary_true_is_the_first_host_of_the_plan():
    groups = fleet(app=4, db=0)
    out = patch_batches(['app1', 'app2', 'app3', 'app4'], groups, order=['app'], serial=2, canary=True)
    assert out['batches'] == [['app1'], ['app2', 'app3'], ['app4']] and out['canary'] == 'app1'


@pytest.mark.parametrize('canary,expected', [(False, None), (None, None), ('false', None), ('no', None), ('', None),
                                             ('true', 'db1'), ('yes', 'db1'), (True, 'db1')])
def test_canary_booleans_from_the_command_line(canary, expected):
    out = patch_batches(LAB_TARGETS, LAB, order=['db', 'app'], serial=5, canary=canary)
    assert out['canary'] == expected
    if expected:
        assert out['batches'] == [['db1'], ['db2'], ['app1', 'app2'], ['lb1']]
    else:
        assert out['batches'] == [['db1', 'db2'], ['app1', 'app2'], ['lb1']]


def test_pool_limits_batches():
    groups = fleet(app=4, db=0)
    pools = [{'group': 'app', 'min_healthy': 1, 'max_parallel': 2}]
    out = patch_batches(['app1', 'app2', 'app3', 'app4'], groups, order=['app'], serial=10, pools=pools)
    assert out['batches'] == [['app1', 'app2'], ['app3', 'app4']]
    pools = [{'group': 'app', 'min_healthy': 3, 'max_parallel': 5}]   # 4 hosts, 3 must stay healthy -> 1 at a time
    out = patch_batches(['app1', 'app2', 'app3', 'app4'], groups, order=['app'], serial=10, pools=pools)
    assert out['sizes'] == [1, 1, 1, 1]


def test_pool_size_counts_hosts_that_are_not_targets():
    groups = fleet(app=3, db=0)
    pools = [{'group': 'app', 'min_healthy': 1, 'max_parallel': 5}]   # 3 hosts -> 2 at a time, although only 2 are targets
    out = patch_batches(['app1', 'app2'], groups, serial=10, pools=pools)
    assert out['batches'] == [['app1', 'app2']]
    pools = [{'group': 'app', 'min_healthy': 2, 'max_parallel': 5}]
    assert patch_batches(['app1', 'app2'], groups, serial=10, pools=pools)['batches'] == [['app1'], ['app2']]


def test_pool_defaults_and_pools_without_targets():
    groups = fleet(app=3, db=0, web=1)
    out = patch_batches(['app1', 'app2', 'app3'], groups, serial=10, pools=[{'group': 'app'}, {'group': 'web'}, {'group': 'nosuch'}])
    assert out['sizes'] == [1, 1, 1]   # min_healthy 1, max_parallel 1; the web pool (1 host, no target) is not an error


def test_batch_closes_when_the_next_host_would_exceed_a_pool():
    groups = {'a1': ['x', 'poolA'], 'a2': ['x', 'poolA'], 'b1': ['x', 'poolB'], 'b2': ['x', 'poolB'],
              'a3': ['poolA'], 'b3': ['poolB']}
    pools = [{'group': 'poolA', 'min_healthy': 2}, {'group': 'poolB', 'min_healthy': 2}]
    out = patch_batches(['a1', 'b1', 'a2', 'b2'], groups, order=['x'], serial=4, pools=pools)
    assert out['batches'] == [['a1', 'b1'], ['a2', 'b2']]
    out = patch_batches(['a1', 'a2', 'b1', 'b2'], groups, order=['x'], serial=4, pools=pools)
    assert out['batches'] == [['a1'], ['a2', 'b1'], ['b2']]   # greedy in target order; the order within a group is kept


def test_duplicate_targets_are_patched_once():
    out = patch_batches(['app1', 'app2', 'app1'], LAB, serial=5)
    assert out['order'] == ['app1', 'app2'] and out['sizes'] == [2]


# --- errors name the role variable -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('targets,host_groups,options,message', [
    ([], LAB, {}, 'patching_targets matched no hosts: there is nothing to patch; check the host pattern (patching_group) and --limit'),
    ('app1', LAB, {}, "patching_targets: must be a list of host names, got 'app1'"),
    (['app1', 3], LAB, {}, 'patching_targets: every entry must be a host name, got 3'),
    (['app1'], ['app1'], {}, "patch_batches: host_groups must be a dict host -> list of group names (hostvars[host].group_names), got ['app1']"),
    (['app1', 'web1', 'web2'], LAB, {}, 'patch_batches: host_groups has no entry for target(s) web1, web2; give the group_names of every target'),
    (['app1'], {'app1': 'app'}, {}, "patch_batches: host_groups['app1'] must be a list of group names, got 'app'"),
    (['app1'], LAB, {'order': 'db,app'}, "patching_order: must be a list of group names in patching order (e.g. [db_standby, db_primary, app]), "
                                         "got 'db,app'"),
    (['app1'], LAB, {'order': ['db', None]}, 'patching_order[1]: must be a group name, got None'),
    (['app1'], LAB, {'canary': 'web9'}, "patching_canary: 'web9' is not one of the hosts to patch (app1); use false, true (the first host of the "
                                        "plan) or one of those host names"),
    (['app1'], LAB, {'canary': 'lb1'}, "patching_canary: 'lb1' is not one of the hosts to patch (app1)"),
    (['app1'], LAB, {'canary': 1}, 'patching_canary: must be false, true or a host name, got 1'),
    (['app1'], LAB, {'pools': {'group': 'app'}}, 'patching_pools: must be a list of {group, min_healthy, max_parallel} dicts'),
    (['app1'], LAB, {'pools': ['app']}, "patching_pools[0]: must be a dict {group: app, min_healthy: 1, max_parallel: 1}, got 'app'"),
    (['app1'], LAB, {'pools': [{'group': 'app', 'min_healthy': 0}, {'group': 'app', 'max_paralel': 2}]},
     'patching_pools[1]: unknown key(s) max_paralel; allowed keys are group, min_healthy, max_parallel'),
    (['app1'], LAB, {'pools': [{'min_healthy': 1}]}, 'patching_pools[0].group: must be a group name, got None'),
    (['app1'], LAB, {'pools': [{'group': 'app', 'min_healthy': -1}]}, 'patching_pools[0].min_healthy: must be a whole number >= 0, got -1'),
    (['app1'], LAB, {'pools': [{'group': 'app', 'min_healthy': True}]}, 'patching_pools[0].min_healthy: must be a whole number >= 0, got True'),
    (['app1'], LAB, {'pools': [{'group': 'app', 'min_healthy': 'one'}]}, "patching_pools[0].min_healthy: must be a whole number >= 0, got 'one'"),
    (['app1'], LAB, {'pools': [{'group': 'app', 'min_healthy': 0, 'max_parallel': 0}]},
     'patching_pools[0].max_parallel: must be a whole number >= 1, got 0'),
    (['app1', 'lb1'], LAB, {'pools': [{'group': 'app', 'min_healthy': 0}, {'group': 'loadbalancers'}]},
     'patching_pools[1]: group loadbalancers has 1 host(s) and min_healthy 1: patching any of them would leave fewer than 1 healthy; '
     'lower min_healthy or add hosts'),
    (['app1'], LAB, {'pools': [{'group': 'app', 'min_healthy': 2}]},
     'patching_pools[0]: group app has 2 host(s) and min_healthy 2: patching any of them would leave fewer than 2 healthy; '
     'lower min_healthy or add hosts'),
])
def test_errors(targets, host_groups, options, message):
    with pytest.raises(AnsibleFilterError, match='^' + re.escape(message)):
        patch_batches(targets, host_groups, **options)


@pytest.mark.parametrize('serial', [0, -1, '0', '-2', '0%', '150%', '101%', 'abc', '', '2 hosts', True, False, 1.5, None, [1, 2]])
def test_serial_errors(serial):
    message = ("patching_serial: %r is not allowed; use a whole number of hosts >= 1 (e.g. 2 or '2') or a percentage of the targets "
               "from '1%%' to '100%%' (e.g. '25%%')" % (serial,))
    with pytest.raises(AnsibleFilterError, match='^' + re.escape(message) + '$'):
        patch_batches(LAB_TARGETS, LAB, serial=serial)


def test_canary_list_in_error_is_shortened():
    groups = dict(('h%02d' % index, ['g']) for index in range(30))
    with pytest.raises(AnsibleFilterError, match=re.escape("(h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, ... (30 hosts))")):
        patch_batches(sorted(groups), groups, canary='h99')


# --- properties ----------------------------------------------------------------------------------------------------------

GROUP_NAMES = ['a', 'b', 'c', 'd']


@st.composite
def plans(draw):
    hosts = ['h%d' % index for index in range(draw(st.integers(1, 12)))]
    host_groups = dict((host, draw(st.lists(st.sampled_from(GROUP_NAMES), max_size=3, unique=True))) for host in hosts)
    targets = draw(st.lists(st.sampled_from(hosts), min_size=1, unique=True))
    order = draw(st.lists(st.sampled_from(GROUP_NAMES + ['unknown']), max_size=5, unique=True))
    serial = draw(st.one_of(st.integers(1, 6), st.integers(1, 6).map(str), st.integers(1, 100).map(lambda pct: '%d%%' % pct)))
    canary = draw(st.one_of(st.booleans(), st.sampled_from(targets)))
    pools = draw(st.lists(st.fixed_dictionaries({'group': st.sampled_from(GROUP_NAMES)},
                                                optional={'min_healthy': st.integers(0, 3), 'max_parallel': st.integers(1, 3)}), max_size=3))
    return targets, host_groups, order, serial, canary, pools


def _pool_limits(host_groups, pools):
    limits = []
    for pool in pools:
        members = set(host for host, names in host_groups.items() if pool['group'] in names)
        limits.append((members, min(pool.get('max_parallel', 1), len(members) - pool.get('min_healthy', 1))))
    return limits


@settings(max_examples=400, deadline=None)
@given(plans())
def test_plan_properties(plan):
    targets, host_groups, order, serial, canary, pools = plan
    limits = _pool_limits(host_groups, pools)
    impossible = [index for index, (members, limit) in enumerate(limits) if limit < 1 and members & set(targets)]
    if impossible:
        with pytest.raises(AnsibleFilterError, match=re.escape('patching_pools[%d]: group ' % impossible[0])):
            patch_batches(targets, host_groups, order=order, serial=serial, canary=canary, pools=pools)
        return
    limits = [(members, limit) for members, limit in limits if members & set(targets)]   # pools without targets constrain nothing
    out = patch_batches(targets, host_groups, order=order, serial=serial, canary=canary, pools=pools)
    assert out == patch_batches(list(targets), dict(host_groups), order=list(order), serial=serial, canary=canary, pools=list(pools))

    # every target exactly once; sizes add up
    assert out['order'] == [host for batch in out['batches'] for host in batch]
    assert sorted(out['order']) == sorted(targets) and len(out['order']) == len(targets)
    assert out['sizes'] == [len(batch) for batch in out['batches']] and sum(out['sizes']) == len(targets)
    assert all(size >= 1 for size in out['sizes'])

    # order-groups: the first listed group a host is in, else 'other'
    rank = dict((name, position) for position, name in enumerate(order))
    for host in targets:
        listed = [name for name in order if name in host_groups[host]]
        assert out['group_of'][host] == (listed[0] if listed else 'other')
    assert out['batch_groups'] == [out['group_of'][batch[0]] for batch in out['batches']]

    # canary alone in the first batch
    expected_canary = None
    if canary is True:
        expected_canary = sorted(targets, key=lambda host: rank.get(out['group_of'][host], len(order)))[0]
    elif canary:
        expected_canary = canary
    assert out['canary'] == expected_canary
    rest = out['batches']
    if expected_canary:
        assert out['batches'][0] == [expected_canary] and out['order'].count(expected_canary) == 1
        rest = out['batches'][1:]

    # batch size, one order-group per batch, group order, target order within a group, pool limits
    size = serial_size(serial, len(targets))
    flat = [host for batch in rest for host in batch]
    assert [rank.get(out['group_of'][host], len(order)) for host in flat] == sorted(rank.get(out['group_of'][host], len(order)) for host in flat)
    assert flat == sorted(flat, key=lambda host: (rank.get(out['group_of'][host], len(order)), targets.index(host)))
    for batch in out['batches']:
        assert len(batch) <= size
        assert len(set(out['group_of'][host] for host in batch)) == 1
        for members, limit in limits:
            assert len(members & set(batch)) <= limit

    # greedy: a batch was only closed because its group ended or the next host did not fit
    for batch, following in zip(rest, rest[1:]):
        if out['group_of'][batch[0]] != out['group_of'][following[0]]:
            continue
        grown = batch + following[:1]
        assert len(grown) > size or any(len(members & set(grown)) > limit for members, limit in limits)


# --- through Ansible's templating, by FQCN -------------------------------------------------------------------------------------

def test_filter_loads_by_fqcn_in_jinja():
    # the role's own expression: host_groups from every inventory host's group_names (the lab inventory)
    expression = ("['lb1', 'app1', 'app2', 'db1', 'db2'] | dealerscope.ops.patch_batches("
                  "dict(groups['all'] | zip(groups['all'] | map('extract', hostvars, 'group_names'))), "
                  "order=['db_standby', 'db_primary', 'db', 'app', 'loadbalancers'], serial='100%%', canary=true, pools=%s)")
    value, output = render(expression % "[{'group': 'app'}]")
    assert value is not None, output
    assert value['batches'] == [['db2'], ['db1'], ['app1'], ['app2'], ['lb1']], output
    assert value['canary'] == 'db2' and value['sizes'] == [1, 1, 1, 1, 1]
    value, output = render(expression % "[{'group': 'loadbalancers'}]")
    assert value is None
    assert 'patching_pools[0]: group loadbalancers has 1 host(s) and min_healthy 1' in output, output
