# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.deploy_canary_steps filter."""

from __future__ import annotations

import json
import math
import re

from fractions import Fraction

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter import deploy_canary_steps as plugin
from ansible_collections.dealerscope.ops.plugins.filter.deploy_canary_steps import FilterModule, deploy_canary_steps

from .ansible_render import render


def problems(steps):
    """The error's lines; fails the test when no error is raised."""
    with pytest.raises(AnsibleFilterError) as error:
        deploy_canary_steps(steps)
    return str(error.value).splitlines()


def one_problem(steps):
    lines = problems(steps)
    assert len(lines) == 1, lines
    return lines[0]


def test_the_documented_example():
    assert deploy_canary_steps([10, 50, 100]) == [
        {'percent': 10, 'new_weight': 1, 'old_weight': 9},
        {'percent': 50, 'new_weight': 1, 'old_weight': 1},
        {'percent': 100, 'new_weight': 1, 'old_weight': 0},
    ]


def test_weights_are_the_smallest_integers():
    assert deploy_canary_steps([1, 25, 33, 60, 100]) == [
        {'percent': 1, 'new_weight': 1, 'old_weight': 99},
        {'percent': 25, 'new_weight': 1, 'old_weight': 3},
        {'percent': 33, 'new_weight': 33, 'old_weight': 67},
        {'percent': 60, 'new_weight': 3, 'old_weight': 2},
        {'percent': 100, 'new_weight': 1, 'old_weight': 0},
    ]


def test_a_single_step_of_100_is_a_direct_switch():
    assert deploy_canary_steps([100]) == [{'percent': 100, 'new_weight': 1, 'old_weight': 0}]


@pytest.mark.parametrize('steps', [['10', '50', '100'], [' 10 ', 50.0, '100.0'], (10, 50, 100)])
def test_strings_integral_floats_and_tuples_are_accepted(steps):
    assert [step['percent'] for step in deploy_canary_steps(steps)] == [10, 50, 100]
    assert all(isinstance(step['percent'], int) and not isinstance(step['percent'], bool) for step in deploy_canary_steps(steps))


def test_steps_must_increase():
    assert one_problem([10, 5, 100]) == 'deploy_canary_steps[1] is 5, not more than the step before (10): steps must increase'
    assert one_problem([10, 10, 100]) == 'deploy_canary_steps[1] is 10, not more than the step before (10): steps must increase'
    assert problems([10, 50, 20, 30, 100]) == [
        'deploy_canary_steps[2] is 20, not more than the step before (50): steps must increase',
        'deploy_canary_steps[3] is 30, not more than deploy_canary_steps[1] (50): steps must increase',
    ]


def test_the_last_step_must_be_100():
    assert one_problem([10, 50]) == ('deploy_canary_steps ends at 50; the last step must be 100 (all traffic on the new colour), '
                                     'e.g. [10, 50, 100]')


@pytest.mark.parametrize('value, message', [
    (0, 'deploy_canary_steps[0] is 0, out of range; write a whole number of percent from 1 to 100'),
    (-5, 'deploy_canary_steps[0] is -5, out of range'),
    ('0', "deploy_canary_steps[0] is '0', out of range"),
    (101, 'deploy_canary_steps[0] is 101, out of range'),
    (10.5, 'deploy_canary_steps[0] is 10.5, not a whole number'),
    ('10.5', "deploy_canary_steps[0] is '10.5', not a whole number"),
    (float('nan'), 'deploy_canary_steps[0] is nan, not a whole number'),
    (float('inf'), 'deploy_canary_steps[0] is inf, not a whole number'),
    ('10%', "deploy_canary_steps[0] '10%' has a percent sign"),
    ('ten', "deploy_canary_steps[0] 'ten' is not a number"),
    ('', "deploy_canary_steps[0] '' is not a number"),
    (True, 'deploy_canary_steps[0] is bool True, not a number'),
    (None, 'deploy_canary_steps[0] is NoneType None, not a number'),
    ([10], 'deploy_canary_steps[0] is list [10], not a number'),
])
def test_each_step_must_be_a_whole_number_from_1_to_100(value, message):
    line = one_problem([value, 100])
    assert line.startswith(message), line


def test_steps_must_be_a_non_empty_list():
    assert one_problem([]) == 'deploy_canary_steps is empty; give at least one step, and the last must be 100, e.g. [10, 50, 100] or [100]'
    assert one_problem('10,50,100').startswith("deploy_canary_steps must be a list of percentages ending with 100, e.g. [10, 50, 100], got str")
    assert one_problem(None).startswith('deploy_canary_steps must be a list of percentages')
    assert one_problem({'10': 1}).startswith('deploy_canary_steps must be a list of percentages')
    assert one_problem(100).endswith('got int 100, e.g. [100]')


def test_all_problems_are_reported_at_once():
    assert problems([50, 'x', 20, 150, 60]) == [
        "deploy_canary_steps[1] 'x' is not a number; write a whole number of percent from 1 to 100, e.g. [10, 50, 100]",
        'deploy_canary_steps[3] is 150, out of range; write a whole number of percent from 1 to 100, e.g. [10, 50, 100]',
        'deploy_canary_steps[2] is 20, not more than deploy_canary_steps[0] (50): steps must increase',
        'deploy_canary_steps ends at 60; the last step must be 100 (all traffic on the new colour), e.g. [10, 50, 100]',
    ]


# --- properties -----------------------------------------------------------------------------------------------------------

VALID = st.lists(st.integers(1, 99), unique=True).map(lambda steps: sorted(steps) + [100])


@settings(max_examples=300, deadline=None)
@given(VALID, st.data())
def test_weights_reproduce_the_percentage_exactly(steps, data):
    written = [data.draw(st.sampled_from([step, str(step), float(step)])) for step in steps]
    out = deploy_canary_steps(written)
    assert [step['percent'] for step in out] == steps
    for step in out:
        new, old = step['new_weight'], step['old_weight']
        assert isinstance(new, int) and isinstance(old, int) and new >= 1 and old >= 0
        assert Fraction(new, new + old) == Fraction(step['percent'], 100)
        assert (old == 0) is (step['percent'] == 100)
        assert math.gcd(new, old) == 1   # the smallest such integers


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-20, 130), min_size=1, max_size=8))
def test_any_list_is_either_valid_or_refused_with_positions(steps):
    valid = all(1 <= step <= 100 for step in steps) and all(a < b for a, b in zip(steps, steps[1:])) and steps[-1] == 100
    if valid:
        assert [step['percent'] for step in deploy_canary_steps(steps)] == steps
    else:
        for line in problems(steps):
            assert re.match(r'deploy_canary_steps(\[\d+\] is -?\d+, | ends at \d+; )', line), line


# --- registration, documentation, Ansible ---------------------------------------------------------------------------------

def test_registered():
    assert FilterModule().filters() == {'deploy_canary_steps': deploy_canary_steps}


def test_documentation_parses():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'deploy_canary_steps'
    assert set(doc['options']) == {'_input'}
    assert isinstance(yaml.safe_load(plugin.EXAMPLES), list)
    assert set(yaml.safe_load(plugin.RETURN)['_value']['contains']) == {'percent', 'new_weight', 'old_weight'}


def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({'steps': ['10', '50', '100'], 'broken': [10, 5]}))
    value, output = render('steps | dealerscope.ops.deploy_canary_steps', str(extra))
    assert value == [{'percent': 10, 'new_weight': 1, 'old_weight': 9}, {'percent': 50, 'new_weight': 1, 'old_weight': 1},
                     {'percent': 100, 'new_weight': 1, 'old_weight': 0}], output
    value, output = render('broken | dealerscope.ops.deploy_canary_steps', str(extra))
    assert value is None and re.search(r'deploy_canary_steps\[1\] is 5, not more than the step before \(10\)', output), output
