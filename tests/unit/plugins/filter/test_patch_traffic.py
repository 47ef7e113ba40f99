# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.filter.patch_traffic import FilterModule, patch_traffic

LAB = [['db2'], ['db1'], ['app1'], ['app2'], ['lb1']]


def test_the_only_load_balancer_is_an_interruption():
    assert patch_traffic(LAB, ['lb1']) == [{'batch': 5, 'hosts': ['lb1']}]


def test_a_second_load_balancer_keeps_serving():
    assert patch_traffic(LAB + [['lb2']], ['lb1', 'lb2']) == []


def test_every_load_balancer_in_one_batch_is_an_interruption():
    assert patch_traffic([['app1'], ['lb2', 'lb1']], ['lb1', 'lb2']) == [{'batch': 2, 'hosts': ['lb2', 'lb1']}]


@pytest.mark.parametrize('batches, lbs', [
    ([['app1'], ['app2']], ['lb1']),  # the load balancer is not patched: it keeps serving
    (LAB, []),                          # no load balancer: nothing to interrupt
    ([], ['lb1']),
])
def test_nothing_to_interrupt(batches, lbs):
    assert patch_traffic(batches, lbs) == []


@pytest.mark.parametrize('batches, lbs, message', [
    ('lb1', ['lb1'], 'patch_traffic: the batches must be a list'),
    ([['lb1']], 'lb1', 'patching_lb_hosts: must be a list of host names'),
    (['lb1'], ['lb1'], 'patch_traffic: batch 1: must be a list of host names'),
])
def test_bad_input(batches, lbs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        patch_traffic(batches, lbs)


def test_registered():
    assert FilterModule().filters() == {'patch_traffic': patch_traffic}
