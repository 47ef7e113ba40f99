# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.deploy_releases filter."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter import deploy_releases as plugin
from ansible_collections.dealerscope.ops.plugins.filter.deploy_releases import FilterModule, deploy_releases

from .ansible_render import render

FOUR = ['v1.4.0', 'v1.4.1', 'v1.4.2', 'v1.4.3']
KEYS = {'ordered', 'live', 'previous', 'rollback_target', 'can_rollback', 'refusal', 'delete', 'keep'}


def problems(*args, **kwargs):
    """The error's lines; fails the test when no error is raised."""
    with pytest.raises(AnsibleFilterError) as error:
        deploy_releases(*args, **kwargs)
    return str(error.value).splitlines()


def one_problem(*args, **kwargs):
    lines = problems(*args, **kwargs)
    assert len(lines) == 1, lines
    return lines[0]


# --- ordering -------------------------------------------------------------------------------------------------------------

def test_names_keep_the_given_order():
    out = deploy_releases(['b', 'a', 'c'], live='c')
    assert out['ordered'] == ['b', 'a', 'c']
    assert out['previous'] == 'a'


def test_dicts_are_ordered_by_mtime_then_name_and_extra_keys_are_ignored():
    releases = [{'name': 'v3', 'mtime': 300.5, 'path': '/srv/app/releases/v3'}, {'name': 'v1', 'mtime': 100},
                {'name': 'b-tie', 'mtime': '200'}, {'name': 'a-tie', 'mtime': 200.0}]
    out = deploy_releases(releases, live='v3')
    assert out['ordered'] == ['v1', 'a-tie', 'b-tie', 'v3']
    assert out['previous'] == 'b-tie'


def test_result_keys_and_an_empty_release_list():
    out = deploy_releases([])
    assert set(out) == KEYS
    assert out == {'ordered': [], 'live': None, 'previous': None, 'rollback_target': None, 'can_rollback': False,
                   'refusal': out['refusal'], 'delete': [], 'keep': []}
    assert out['refusal'].startswith('nothing is live')


# --- previous / rollback target / refusal --------------------------------------------------------------------------------

def test_previous_is_the_newest_good_release_before_live():
    out = deploy_releases(FOUR, live='v1.4.3', bad=['v1.4.2'])
    assert out['previous'] == 'v1.4.1' and out['rollback_target'] == 'v1.4.1'
    assert out['can_rollback'] is True and out['refusal'] is None


def test_previous_is_older_than_live_not_newer():
    out = deploy_releases(FOUR, live='v1.4.1')
    assert out['previous'] == 'v1.4.0'


def test_a_bad_live_release_still_has_a_previous():
    assert deploy_releases(FOUR, live='v1.4.3', bad=['v1.4.3'])['previous'] == 'v1.4.2'


def test_no_good_release_before_live_is_a_refusal_not_an_error():
    out = deploy_releases(FOUR, live='v1.4.2', bad=['v1.4.0', 'v1.4.1'])
    assert out['previous'] is None and out['rollback_target'] is None and out['can_rollback'] is False
    assert out['refusal'].startswith("no release before 'v1.4.2' that is not marked bad"), out['refusal']
    out = deploy_releases(FOUR, live='v1.4.0')
    assert out['refusal'].startswith("no release before 'v1.4.0' that is not marked bad")


def test_nothing_live_is_a_refusal():
    out = deploy_releases(FOUR)
    assert out['live'] is None and out['previous'] is None and out['can_rollback'] is False
    assert out['refusal'].startswith('nothing is live'), out['refusal']


def test_rollback_to_overrides_previous():
    out = deploy_releases(FOUR, live='v1.4.3', rollback_to='v1.4.0')
    assert out['previous'] == 'v1.4.2' and out['rollback_target'] == 'v1.4.0' and out['can_rollback'] is True


def test_rollback_to_may_be_newer_than_live_and_works_when_nothing_is_live():
    assert deploy_releases(FOUR, live='v1.4.1', rollback_to='v1.4.3')['rollback_target'] == 'v1.4.3'
    out = deploy_releases(FOUR, rollback_to='v1.4.2')
    assert out['rollback_target'] == 'v1.4.2' and out['can_rollback'] is True and out['refusal'] is None


def test_rollback_to_lifts_the_refusal():
    out = deploy_releases(FOUR, live='v1.4.0', rollback_to='v1.4.1')
    assert out['refusal'] is None and out['rollback_target'] == 'v1.4.1'


@pytest.mark.parametrize('empty', [None, '', '  '])
def test_empty_rollback_to_means_automatic(empty):
    assert deploy_releases(FOUR, live='v1.4.3', rollback_to=empty)['rollback_target'] == 'v1.4.2'


def test_rollback_to_a_bad_release_is_refused():
    assert one_problem(FOUR, live='v1.4.3', bad=['v1.4.1'], rollback_to='v1.4.1') == \
        "deploy_rollback_to: release 'v1.4.1' is marked bad; rollback never picks it (unmark it first)"


def test_rollback_to_the_live_release_is_refused():
    assert one_problem(FOUR, live='v1.4.3', rollback_to='v1.4.3').startswith(
        "deploy_rollback_to: release 'v1.4.3' is the live release already; pick another release")


def test_rollback_to_an_unknown_release_is_refused():
    assert one_problem(FOUR, live='v1.4.3', rollback_to='v1.3.9') == (
        "deploy_rollback_to: release 'v1.3.9' does not exist (releases, newest first: v1.4.3, v1.4.2, v1.4.1, v1.4.0); "
        "it may have been pruned")


@pytest.mark.parametrize('value', ['../v1', 42, ['v1.4.0']])
def test_rollback_to_must_be_a_release_name(value):
    assert one_problem(FOUR, live='v1.4.3', rollback_to=value).startswith('deploy_rollback_to ')


# --- bad ------------------------------------------------------------------------------------------------------------------

def test_unknown_bad_names_are_ignored_and_none_is_empty():
    assert deploy_releases(FOUR, live='v1.4.3', bad=['v0.9', 'not a name'])['previous'] == 'v1.4.2'
    assert deploy_releases(FOUR, live='v1.4.3', bad=None)['previous'] == 'v1.4.2'
    assert deploy_releases(FOUR, live='v1.4.3', bad=('v1.4.2',))['previous'] == 'v1.4.1'


def test_bad_must_be_a_list_of_strings():
    assert one_problem(FOUR, live='v1.4.3', bad='v1.4.2') == (
        "deploy_bad_releases must be a list of release names, got str 'v1.4.2'; write it as a list: ['v1.4.2']")
    assert one_problem(FOUR, live='v1.4.3', bad=['v1.4.2', 7]) == 'deploy_bad_releases[1] is int 7, not a release name'


# --- pruning --------------------------------------------------------------------------------------------------------------

def test_oldest_releases_are_deleted_down_to_keep():
    names = ['r%d' % number for number in range(8)]
    out = deploy_releases(names, live='r7', keep=3)
    assert out['delete'] == ['r0', 'r1', 'r2', 'r3', 'r4'] and out['keep'] == ['r5', 'r6', 'r7']


def test_nothing_is_deleted_at_or_below_keep():
    assert deploy_releases(FOUR, live='v1.4.3', keep=4)['delete'] == []
    assert deploy_releases(FOUR, live='v1.4.3')['delete'] == []   # default keep is 5


def test_the_live_release_is_never_deleted_even_when_oldest():
    out = deploy_releases(FOUR, live='v1.4.0', keep=2)
    assert 'v1.4.0' not in out['delete'] and out['keep'] == ['v1.4.0', 'v1.4.3']


def test_previous_is_never_deleted_even_when_old():
    out = deploy_releases(FOUR, live='v1.4.3', keep=2, bad=['v1.4.1', 'v1.4.2'])
    assert out['previous'] == 'v1.4.0'
    assert out['delete'] == ['v1.4.1', 'v1.4.2'] and out['keep'] == ['v1.4.0', 'v1.4.3']


def test_the_explicit_rollback_target_is_never_deleted_and_protected_ones_may_exceed_keep():
    out = deploy_releases(FOUR, live='v1.4.3', keep=2, rollback_to='v1.4.0')
    assert out['delete'] == ['v1.4.1'] and out['keep'] == ['v1.4.0', 'v1.4.2', 'v1.4.3']


def test_with_nothing_live_the_newest_are_kept():
    assert deploy_releases(FOUR, keep=2)['delete'] == ['v1.4.0', 'v1.4.1']


def test_bad_releases_are_pruned_by_age_like_the_others():
    out = deploy_releases(FOUR, live='v1.4.3', keep=3, bad=['v1.4.2'])
    assert out['delete'] == ['v1.4.0'] and out['keep'] == ['v1.4.1', 'v1.4.2', 'v1.4.3']


# --- keep -----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('keep, count', [(2, 2), ('3', 3), (' 4 ', 4), ('02', 2)])
def test_keep_accepts_ints_and_digit_strings(keep, count):
    names = ['r%d' % number for number in range(8)]
    assert len(deploy_releases(names, live='r7', keep=keep)['keep']) == count


@pytest.mark.parametrize('keep, start', [
    ('1', "deploy_keep '1' is too small; write a whole number >= 2"),
    (1, "deploy_keep '1' is too small"),
    ('0', "deploy_keep '0' is too small"),
    ('-3', "deploy_keep '-3' is too small"),
    (-3, "deploy_keep '-3' is too small"),
    ('x', "deploy_keep 'x' is not a whole number; write a whole number >= 2"),
    ('', "deploy_keep '' is not a whole number"),
    ('2.5', "deploy_keep '2.5' is not a whole number"),
    (2.0, 'deploy_keep is float 2.0, not a whole number'),
    (True, 'deploy_keep is bool True, not a whole number'),
    (None, 'deploy_keep is NoneType None, not a whole number'),
])
def test_keep_must_be_a_whole_number_of_at_least_two(keep, start):
    line = one_problem(FOUR, live='v1.4.3', keep=keep)
    assert line.startswith(start), line
    assert 'deploy_keep' in line


# --- release names and the live release ----------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['v1.4.2', '20261127T120301Z-v1.4.2', '1', 'a' * 100, 'v1.4.2+build.7', 'V_1'])
def test_valid_release_names(name):
    assert deploy_releases([name], live=name)['ordered'] == [name]


@pytest.mark.parametrize('name', ['', '.hidden', '-x', '_x', 'a' * 101, 'v1/2', '..', 'a b', 'v1\n', 'vé', '/srv/app/releases/v1'])
def test_invalid_release_names_are_refused(name):
    line = one_problem(['v0', name])
    assert line.startswith('releases[1]: %r is not a release name; a release name is 1-100 letters' % name), line


def test_a_path_as_release_name_suggests_basename():
    assert 'basename' in one_problem(['/srv/app/releases/v1'])


def test_non_string_names_and_broken_dicts_are_refused():
    assert one_problem(['v0', 7]) == 'releases[1]: the name is int 7, not a string'
    assert one_problem([{'name': 'v0', 'mtime': 1}, {'name': 'v1'}]) == 'releases[1]: a release dict needs name and mtime, got keys name'
    assert one_problem([{'name': 'v0', 'mtime': 'yesterday'}]).startswith("releases[0]: mtime is str 'yesterday', not a number")
    assert one_problem([{'name': 'v0', 'mtime': True}]).startswith('releases[0]: mtime is bool True, not a number')
    assert one_problem([{'name': 'v0', 'mtime': float('nan')}]).startswith('releases[0]: mtime is float nan, not a number')


def test_names_must_be_unique():
    expected = ("releases[2]: release 'v1' is listed twice (also releases[0]); release names are "
                "unique directory names, check how the list was built")
    assert one_problem(['v1', 'v2', 'v1']) == expected
    assert one_problem([{'name': 'v1', 'mtime': 5}, {'name': 'v1', 'mtime': 1}]).startswith("releases[1]: release 'v1' is listed twice")


def test_releases_must_be_a_list_of_one_kind():
    assert one_problem('v1').startswith("releases must be a list of release names (oldest first) or of dicts with name and mtime, got str 'v1'")
    assert one_problem({'name': 'v1', 'mtime': 1}).startswith('releases must be a list')
    assert one_problem(['v1', {'name': 'v2', 'mtime': 1}]).startswith('releases mixes names and dicts')


def test_live_must_be_among_the_releases():
    assert one_problem(FOUR, live='v2.0.0').startswith("the live release 'v2.0.0' is not among the releases (v1.4.3, v1.4.2, v1.4.1, v1.4.0)")


@pytest.mark.parametrize('live', ['', '/srv/app/releases/v1.4.3', 3])
def test_live_must_be_a_release_name(live):
    line = one_problem(FOUR, live=live)
    assert line.startswith('the live release ') and 'is not a release name' in line and 'null when nothing is live' in line, line


def test_all_problems_are_reported_at_once():
    lines = problems(['v1', 'v1', 'bad name'], live='', keep='1', bad='v1', rollback_to='../x')
    assert len(lines) == 6, lines
    assert [line.split(' ')[0] for line in lines] == ['releases[2]:', 'releases[1]:', 'deploy_keep', 'deploy_bad_releases', 'the',
                                                      'deploy_rollback_to']


# --- properties -----------------------------------------------------------------------------------------------------------

NAMES = st.lists(st.from_regex(r'[A-Za-z0-9][A-Za-z0-9._+-]{0,6}', fullmatch=True), unique=True, max_size=12)


@st.composite
def scenarios(draw):
    names = draw(NAMES)
    if draw(st.booleans()):
        mtimes = draw(st.lists(st.integers(0, 5), min_size=len(names), max_size=len(names)))
        releases = [{'name': name, 'mtime': mtime} for name, mtime in zip(names, mtimes)]
    else:
        releases = list(names)
    live = draw(st.sampled_from(names)) if names and draw(st.booleans()) else None
    bad = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    bad = bad + draw(st.lists(st.sampled_from(['gone-1', 'gone-2']), unique=True))
    choices = [name for name in names if name not in bad and name != live]
    rollback_to = draw(st.sampled_from(choices)) if choices and draw(st.booleans()) else None
    keep = draw(st.one_of(st.integers(2, 8), st.integers(2, 8).map(str)))
    return releases, live, bad, keep, rollback_to


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_properties(scenario):
    releases, live, bad, keep, rollback_to = scenario
    out = deploy_releases(releases, live=live, keep=keep, bad=bad, rollback_to=rollback_to)
    names = [entry['name'] if isinstance(entry, dict) else entry for entry in releases]
    ordered, delete, kept = out['ordered'], out['delete'], out['keep']
    protected = set(name for name in (out['live'], out['previous'], out['rollback_target']) if name is not None)

    assert sorted(ordered) == sorted(names)
    if releases and isinstance(releases[0], str):
        assert ordered == names
    else:
        mtimes = dict((entry['name'], entry['mtime']) for entry in releases)
        assert ordered == sorted(names, key=lambda name: (mtimes[name], name))

    assert not protected & set(delete)
    assert set(delete) <= set(names)
    assert not set(delete) & set(kept) and set(delete) | set(kept) == set(names)
    assert kept == [name for name in ordered if name not in delete] and delete == [name for name in ordered if name in delete]
    assert len(kept) <= max(int(keep), len(protected))
    assert len(kept) == min(len(names), max(int(keep), len(protected)))
    for name in set(kept) - protected:   # only protected releases are kept while an older one is deleted
        assert all(ordered.index(gone) < ordered.index(name) for gone in delete)

    if out['previous'] is not None:
        assert out['previous'] not in bad
        assert ordered.index(out['previous']) < ordered.index(live)
        assert all(name in bad for name in ordered[ordered.index(out['previous']) + 1:ordered.index(live)])
    elif live is not None:
        assert all(name in bad for name in ordered[:ordered.index(live)])
    assert out['rollback_target'] == (rollback_to if rollback_to is not None else out['previous'])
    assert out['can_rollback'] is (out['rollback_target'] is not None)
    assert (out['refusal'] is None) is out['can_rollback']

    again = deploy_releases(kept, live=live, keep=keep, bad=bad, rollback_to=rollback_to)
    assert again['delete'] == [] and again['keep'] == kept
    assert (again['previous'], again['rollback_target']) == (out['previous'], out['rollback_target'])


@settings(max_examples=100, deadline=None)
@given(NAMES.filter(bool), st.data())
def test_a_bad_release_is_never_the_rollback_target(names, data):
    live = data.draw(st.sampled_from(names))
    bad = data.draw(st.lists(st.sampled_from(names), unique=True))
    out = deploy_releases(names, live=live, bad=bad)
    assert out['rollback_target'] not in bad
    for name in bad:
        if name != live:
            assert one_problem(names, live=live, bad=bad, rollback_to=name) == (
                "deploy_rollback_to: release '%s' is marked bad; rollback never picks it (unmark it first)" % name)


# --- registration, documentation, Ansible ---------------------------------------------------------------------------------

def test_registered():
    assert FilterModule().filters() == {'deploy_releases': deploy_releases}


def test_documentation_parses():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'deploy_releases'
    assert set(doc['options']) == {'_input', 'live', 'keep', 'bad', 'rollback_to'}
    assert doc['options']['keep']['default'] == 5
    assert isinstance(yaml.safe_load(plugin.EXAMPLES), list)
    assert set(yaml.safe_load(plugin.RETURN)['_value']['contains']) == KEYS


def test_the_documented_example_holds():
    out = deploy_releases(FOUR, live='v1.4.3', keep=2, bad=['v1.4.2'])
    assert out == {'ordered': FOUR, 'live': 'v1.4.3', 'previous': 'v1.4.1', 'rollback_target': 'v1.4.1', 'can_rollback': True,
                   'refusal': None, 'delete': ['v1.4.0', 'v1.4.2'], 'keep': ['v1.4.1', 'v1.4.3']}


def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({'releases': [{'name': name, 'mtime': 1000.0 + index} for index, name in enumerate(FOUR)],
                                 'keep': '2', 'bad': ['v1.4.2'], 'rollback_to': ''}))
    value, output = render("releases | dealerscope.ops.deploy_releases(live='v1.4.3', keep=keep, bad=bad, rollback_to=rollback_to)",
                           str(extra))
    assert value is not None and value['delete'] == ['v1.4.0', 'v1.4.2'] and value['rollback_target'] == 'v1.4.1', output
    value, output = render("releases | dealerscope.ops.deploy_releases(live='v1.4.3', keep='1')", str(extra))
    assert value is None and re.search(r"deploy_keep '1' is too small", output), output
