# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.schedule_runbooks filter."""

from __future__ import annotations

import datetime
import re

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter import schedule_runbooks as plugin
from ansible_collections.dealerscope.ops.plugins.filter.schedule_runbooks import KEYS, NAME, FilterModule, schedule_runbooks

from .ansible_render import render

DAILY = {'name': 'daily', 'playbook': 'dealerscope.ops.daily', 'on_calendar': '*-*-* 06:00:00'}
EXAMPLE = "e.g. {name: daily, playbook: dealerscope.ops.daily, on_calendar: '*-*-* 06:00:00'}"
DATE_HINT = 'write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD'
PLAYBOOK_HINT = 'give a collection playbook (dealerscope.ops.daily) or a .yml path inside the project'
NAME_HINT = 'use lower-case letters, digits, - and _, starting with a letter, e.g. daily'
CALENDAR_HINT = "give a systemd calendar expression, e.g. '*-*-* 06:00:00'"


def daily(**changes):
    """The daily runbook with some keys changed."""
    return dict(DAILY, **changes)


def problems(runbooks, **options):
    """The error's lines; fails the test when no error is raised."""
    with pytest.raises(AnsibleFilterError) as error:
        schedule_runbooks(runbooks, **options)
    return str(error.value).splitlines()


def one_problem(runbooks, **options):
    lines = problems(runbooks, **options)
    assert len(lines) == 1, lines
    return lines[0]


def only(runbook, **options):
    """The one runbook of a one-runbook list, checked."""
    out = schedule_runbooks([runbook], **options)
    assert len(out) == 1
    return out[0]


# --- the documented example ------------------------------------------------------------------------------------------------

EXAMPLE_RESULT = [
    {'name': 'daily', 'playbook': 'dealerscope.ops.daily', 'on_calendar': '*-*-* 06:00:00', 'extravars': {}, 'tags': '', 'skip_tags': '',
     'limit': '', 'timeout_s': 7200, 'blackout': [['2026-12-24', '2026-12-26']], 'enabled': True,
     'timer': 'dealerscope-runbook-daily.timer', 'service': 'dealerscope-runbook@daily.service'},
    {'name': 'restore-test', 'playbook': 'dealerscope.ops.restore_test', 'on_calendar': 'Sun *-*-* 03:00:00', 'extravars': {}, 'tags': '',
     'skip_tags': '', 'limit': '', 'timeout_s': 14400, 'blackout': [['2026-12-24', '2026-12-26']], 'enabled': False,
     'timer': 'dealerscope-runbook-restore-test.timer', 'service': 'dealerscope-runbook@restore-test.service'},
]


def test_the_documented_example():
    task = yaml.safe_load(plugin.EXAMPLES)[0]
    runbooks = task['vars']['schedule_runbooks']
    assert "dealerscope.ops.schedule_runbooks(timeout_s=7200, blackout=['2026-12-24..2026-12-26'])" in task['ansible.builtin.set_fact']['__schedule_plan']
    assert schedule_runbooks(runbooks, timeout_s=7200, blackout=['2026-12-24..2026-12-26']) == EXAMPLE_RESULT


def test_defaults_are_filled_in():
    assert only(DAILY) == {
        'name': 'daily', 'playbook': 'dealerscope.ops.daily', 'on_calendar': '*-*-* 06:00:00', 'extravars': {}, 'tags': '', 'skip_tags': '',
        'limit': '', 'timeout_s': 7200, 'blackout': [], 'enabled': True,
        'timer': 'dealerscope-runbook-daily.timer', 'service': 'dealerscope-runbook@daily.service',
    }
    assert only(DAILY, timeout_s='600')['timeout_s'] == 600
    assert only(daily(timeout_s=60), timeout_s=600)['timeout_s'] == 60


def test_every_key_given():
    runbook = {'name': 'nightly_2', 'playbook': 'playbooks/nightly.yaml', 'on_calendar': '  Mon..Fri *-*-* 22:30:00 ',
               'extravars': {'depth': 2, 'hosts': ['a', 'b']}, 'tags': ['db', 'app:logs'], 'skip_tags': 'slow , net.v6',
               'limit': ' app ', 'timeout_s': ' 900 ', 'blackout': ['2027-01-01'], 'enabled': 'yes'}
    assert only(runbook, blackout=['2026-12-24..2026-12-26']) == {
        'name': 'nightly_2', 'playbook': 'playbooks/nightly.yaml', 'on_calendar': 'Mon..Fri *-*-* 22:30:00',
        'extravars': {'depth': 2, 'hosts': ['a', 'b']}, 'tags': 'db,app:logs', 'skip_tags': 'slow,net.v6', 'limit': 'app', 'timeout_s': 900,
        'blackout': [['2026-12-24', '2026-12-26'], ['2027-01-01', '2027-01-01']], 'enabled': True,
        'timer': 'dealerscope-runbook-nightly_2.timer', 'service': 'dealerscope-runbook@nightly_2.service',
    }


def test_the_input_is_not_changed_and_extravars_are_copied():
    extravars = {'a': 1}
    runbook = daily(extravars=extravars, blackout=['2027-01-01'])
    before = dict(runbook)
    out = only(runbook, blackout=['2026-12-24'])
    assert runbook == before
    assert out['extravars'] == extravars and out['extravars'] is not extravars


def test_global_blackout_first_then_the_runbooks_own():
    out = schedule_runbooks([daily(blackout=['2027-01-01..2027-01-02', '2026-12-31']), daily(name='weekly')],
                            blackout=['2026-12-24..2026-12-26', '2026-12-28'])
    assert out[0]['blackout'] == [['2026-12-24', '2026-12-26'], ['2026-12-28', '2026-12-28'], ['2027-01-01', '2027-01-02'],
                                  ['2026-12-31', '2026-12-31']]
    assert out[1]['blackout'] == [['2026-12-24', '2026-12-26'], ['2026-12-28', '2026-12-28']]


def test_an_empty_list_is_no_runbooks():
    assert schedule_runbooks([]) == []
    assert schedule_runbooks(()) == []


def test_playbook_paths_inside_the_project():
    for playbook in ('site.yml', 'playbooks/restore.yaml', 'a/b_c/d-e.yml', '_x.yml', 'dealerscope.ops.restore_test', 'ns.coll.pb_1'):
        assert only(daily(playbook=playbook))['playbook'] == playbook


# --- booleans, tags, None, dates -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('value', ['false', 'False', 'no', '0', 'off', ' NO ', False, 0])
def test_false_strings(value):
    assert only(daily(enabled=value))['enabled'] is False


@pytest.mark.parametrize('value', ['true', 'yes', '1', 'True', 'on', ' Yes ', True, 1])
def test_true_strings(value):
    assert only(daily(enabled=value))['enabled'] is True


@pytest.mark.parametrize('tags, expected', [
    (['db', 'app'], 'db,app'),
    ([' db ', 'app ', ''], 'db,app'),
    (('db', 'app'), 'db,app'),
    ('db,app', 'db,app'),
    (' db , app ', 'db,app'),
    ('db,, app,', 'db,app'),
    ('', ''),
    ([], ''),
    ('single', 'single'),
    (['a.b', 'c:d', 'e-f', 'G_1'], 'a.b,c:d,e-f,G_1'),
])
def test_tags_as_list_or_comma_string(tags, expected):
    out = only(daily(tags=tags, skip_tags=tags))
    assert out['tags'] == expected and out['skip_tags'] == expected


def test_none_values_are_the_defaults():
    out = only(daily(extravars=None, limit=None, tags=None, skip_tags=None, blackout=None, timeout_s=None), blackout=None)
    assert (out['extravars'], out['limit'], out['tags'], out['skip_tags'], out['blackout'], out['timeout_s']) == ({}, '', '', '', [], 7200)
    assert only(daily(blackout=None), blackout=['2026-12-24'])['blackout'] == [['2026-12-24', '2026-12-24']]
    assert only(daily(timeout_s=''), timeout_s=60)['timeout_s'] == 60


def test_date_objects_are_accepted_in_blackout():
    out = only(daily(blackout=[datetime.date(2027, 1, 1), '2027-01-05..2027-01-06']), blackout=[datetime.date(2026, 12, 24)])
    assert out['blackout'] == [['2026-12-24', '2026-12-24'], ['2027-01-01', '2027-01-01'], ['2027-01-05', '2027-01-06']]


def test_unquoted_yaml_dates_are_accepted_in_blackout():
    runbook = yaml.safe_load("{name: daily, playbook: dealerscope.ops.daily, on_calendar: '*-*-* 06:00:00', "
                             "blackout: [2026-12-24, 2026-12-30..2027-01-02, ' 2027-02-01 .. 2027-02-03 ']}")
    assert runbook['blackout'][0] == datetime.date(2026, 12, 24)
    assert only(runbook)['blackout'] == [['2026-12-24', '2026-12-24'], ['2026-12-30', '2027-01-02'], ['2027-02-01', '2027-02-03']]


# --- refusals --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['Daily', '1st', '-daily', 'dai ly', 'daily.x', 'daily\n', '\ndaily', ' daily', '', 'a' * 65, 'däily', None, 7, True])
def test_bad_names(name):
    assert one_problem([daily(name=name)]) == 'schedule_runbooks[0] name is %s %r; %s' % (type(name).__name__, name, NAME_HINT)


def test_a_missing_name():
    runbook = dict(DAILY)
    del runbook['name']
    assert one_problem([runbook]) == 'schedule_runbooks[0] name is NoneType None; ' + NAME_HINT


def test_names_of_64_characters_are_allowed():
    assert only(daily(name='a' * 64))['timer'] == 'dealerscope-runbook-%s.timer' % ('a' * 64)


def test_duplicate_names():
    assert problems([DAILY, daily(name='weekly'), daily(), daily(name='weekly')]) == [
        "schedule_runbooks[2] name 'daily' is also the name of schedule_runbooks[0]; names must be unique",
        "schedule_runbooks[3] name 'weekly' is also the name of schedule_runbooks[1]; names must be unique",
    ]


@pytest.mark.parametrize('playbook', ['../x.yml', '/x.yml', '/etc/ansible/site.yml', 'playbooks/../../x.yml', 'a/../x.yml', './x.yml',
                                      'daily', 'dealerscope.ops', 'dealerscope.ops.daily.x', 'Dealerscope.ops.daily', 'site.json', 'site.YML',
                                      'site.yml\n', 'dealerscope.ops.daily\n', 'site yml.yml', '', None, ['site.yml']])
def test_bad_playbooks(playbook):
    assert one_problem([daily(playbook=playbook)]) == "schedule_runbooks[0] ('daily') playbook is %s %r; %s" % (
        type(playbook).__name__, playbook, PLAYBOOK_HINT)


@pytest.mark.parametrize('calendar', ['', '   ', '*-*-* 06:00:00\n*-*-* 07:00:00', 'daily\n', None, 6, ['daily']])
def test_bad_on_calendar(calendar):
    assert one_problem([daily(on_calendar=calendar)]) == "schedule_runbooks[0] ('daily') on_calendar is %s %r; %s" % (
        type(calendar).__name__, calendar, CALENDAR_HINT)


@pytest.mark.parametrize('extravars', [[], ['a=1'], 'a=1', 1, True])
def test_extravars_must_be_a_dict(extravars):
    assert one_problem([daily(extravars=extravars)]) == "schedule_runbooks[0] ('daily') extravars is %s %r, not a dict of variables" % (
        type(extravars).__name__, extravars)


@pytest.mark.parametrize('limit', [5, ['app'], True, {'app': 1}, 'app\ndb'])
def test_limit_must_be_a_string(limit):
    assert one_problem([daily(limit=limit)]) == "schedule_runbooks[0] ('daily') limit is %s %r; give a host pattern string, e.g. app" % (
        type(limit).__name__, limit)


@pytest.mark.parametrize('timeout, message', [
    ('0', 'timeout_s is 0; a run needs a positive time limit in seconds, e.g. 7200'),
    (0, 'timeout_s is 0; a run needs a positive time limit in seconds, e.g. 7200'),
    ('-5', 'timeout_s is -5; a run needs a positive time limit in seconds, e.g. 7200'),
    (-5, 'timeout_s is -5; a run needs a positive time limit in seconds, e.g. 7200'),
    ('abc', "timeout_s 'abc' is not a whole number of seconds"),
    ('1.5', "timeout_s '1.5' is not a whole number of seconds"),
    ('   ', "timeout_s '   ' is not a whole number of seconds"),
    (True, 'timeout_s is bool True, not a whole number of seconds'),
    (False, 'timeout_s is bool False, not a whole number of seconds'),
    (1.5, 'timeout_s is float 1.5, not a whole number of seconds'),
    (7200.0, 'timeout_s is float 7200.0, not a whole number of seconds'),
    ([60], 'timeout_s is list [60], not a whole number of seconds'),
])
def test_bad_timeouts(timeout, message):
    assert one_problem([daily(timeout_s=timeout)]) == "schedule_runbooks[0] ('daily') " + message
    assert one_problem([DAILY], timeout_s=timeout) == message


def test_bad_global_timeout_is_reported_once():
    assert one_problem([DAILY, daily(name='weekly')], timeout_s='abc') == "timeout_s 'abc' is not a whole number of seconds"
    assert one_problem([], timeout_s=None) == 'timeout_s is NoneType None, not a whole number of seconds'


@pytest.mark.parametrize('entry, message', [
    ('2026-02-30', "blackout[0] '2026-02-30' is not a date; " + DATE_HINT),
    ('24.12.2026', "blackout[0] '24.12.2026' is not a date; " + DATE_HINT),
    ('', "blackout[0] '' is not a date; " + DATE_HINT),
    ('2026-12-24..', "blackout[0] '' is not a date; " + DATE_HINT),
    ('2026-12-24..2026-13-01', "blackout[0] '2026-13-01' is not a date; " + DATE_HINT),
    ('2026-12-26..2026-12-24', "blackout[0] '2026-12-26..2026-12-24' ends before it starts"),
    ('a..b..c', "blackout[0] 'a..b..c' is not a date or range; " + DATE_HINT),
    ('2026-12-24..2026-12-25..2026-12-26', "blackout[0] '2026-12-24..2026-12-25..2026-12-26' is not a date or range; " + DATE_HINT),
    (20261224, 'blackout[0] is int 20261224, not a date or range'),
    (None, 'blackout[0] is NoneType None, not a date or range'),
    (['2026-12-24', '2026-12-26'], "blackout[0] is list ['2026-12-24', '2026-12-26'], not a date or range"),
])
def test_bad_blackout_entries(entry, message):
    assert one_problem([daily(blackout=[entry])]) == "schedule_runbooks[0] ('daily') " + message
    assert one_problem([DAILY], blackout=[entry]) == message


def test_both_ends_of_a_bad_range_are_reported():
    assert problems([daily(blackout=['2026-12-24', 'x..y'])]) == [
        "schedule_runbooks[0] ('daily') blackout[1] 'x' is not a date; " + DATE_HINT,
        "schedule_runbooks[0] ('daily') blackout[1] 'y' is not a date; " + DATE_HINT,
    ]


@pytest.mark.parametrize('blackout', ['2026-12-24', '2026-12-24..2026-12-26', 5, {'2026-12-24': 1}, datetime.date(2026, 12, 24)])
def test_blackout_must_be_a_list(blackout):
    message = 'blackout is %s %r; give a list of dates or ranges, e.g. [2026-12-24..2026-12-26]' % (type(blackout).__name__, blackout)
    assert one_problem([daily(blackout=blackout)]) == "schedule_runbooks[0] ('daily') " + message
    assert one_problem([DAILY], blackout=blackout) == message


def test_a_bad_global_blackout_is_reported_once():
    assert one_problem([DAILY, daily(name='weekly')], blackout=['2026-12-32']) == "blackout[0] '2026-12-32' is not a date; " + DATE_HINT


def test_unknown_keys_are_refused():
    runbook = dict(DAILY)
    runbook['oncalendar'] = runbook.pop('on_calendar')
    assert problems([runbook]) == [
        'schedule_runbooks[0] has the unknown key(s) oncalendar; known keys: '
        'name, playbook, on_calendar, extravars, tags, skip_tags, limit, timeout_s, blackout, enabled',
        "schedule_runbooks[0] ('daily') on_calendar is NoneType None; " + CALENDAR_HINT,
    ]
    assert one_problem([daily(timer='x', Name='y', **{'1': 2})]).startswith('schedule_runbooks[0] has the unknown key(s) 1, Name, timer; known keys: ')
    assert one_problem([dict(DAILY, **{'service': 'x'})]).startswith('schedule_runbooks[0] has the unknown key(s) service; known keys: name, ')


@pytest.mark.parametrize('value', ['maybe', '', 2, -1, 1.0, None, ['true'], {'true': 1}])
def test_enabled_must_be_a_boolean(value):
    assert one_problem([daily(enabled=value)]) == "schedule_runbooks[0] ('daily') enabled is %s %r, not a boolean (true or false)" % (
        type(value).__name__, value)


@pytest.mark.parametrize('tags, message', [
    (5, 'is int 5; give a list of tags or a comma-separated string'),
    (True, 'is bool True; give a list of tags or a comma-separated string'),
    ({'db': 1}, "is dict {'db': 1}; give a list of tags or a comma-separated string"),
    ('db app', "has the tag 'db app'; tags are letters, digits and _ . : -"),
    (['db', 'a/b'], "has the tag 'a/b'; tags are letters, digits and _ . : -"),
])
def test_bad_tags(tags, message):
    assert one_problem([daily(tags=tags)]) == "schedule_runbooks[0] ('daily') tags " + message
    assert one_problem([daily(skip_tags=tags)]) == "schedule_runbooks[0] ('daily') skip_tags " + message


@pytest.mark.parametrize('runbook', ['daily', None, 5, ['daily'], ('daily',)])
def test_a_runbook_must_be_a_dict(runbook):
    assert problems([DAILY, runbook]) == ['schedule_runbooks[1] is %s %r, not a dict; %s' % (type(runbook).__name__, runbook, EXAMPLE)]


@pytest.mark.parametrize('runbooks', ['daily', None, 5, DAILY, b'daily'])
def test_the_input_must_be_a_list(runbooks):
    assert one_problem(runbooks) == 'schedule_runbooks must be a list of runbooks, %s; got %s %r' % (EXAMPLE, type(runbooks).__name__, runbooks)


def test_all_problems_are_reported_together_one_per_line():
    runbooks = [
        daily(timeout_s='0', enabled='maybe'),
        'weekly',
        {'name': 'Weekly', 'playbook': '../x.yml', 'on_calendar': '', 'extravars': 'a=1', 'limit': 5, 'tags': 'a b',
         'blackout': ['2026-12-26..2026-12-24'], 'oncalendar': 'x'},
        daily(blackout='2026-12-24'),
    ]
    assert problems(runbooks, blackout=['x'], timeout_s=-1) == [
        'timeout_s is -1; a run needs a positive time limit in seconds, e.g. 7200',
        "blackout[0] 'x' is not a date; " + DATE_HINT,
        "schedule_runbooks[0] ('daily') timeout_s is 0; a run needs a positive time limit in seconds, e.g. 7200",
        "schedule_runbooks[0] ('daily') enabled is str 'maybe', not a boolean (true or false)",
        "schedule_runbooks[1] is str 'weekly', not a dict; " + EXAMPLE,
        'schedule_runbooks[2] has the unknown key(s) oncalendar; known keys: '
        'name, playbook, on_calendar, extravars, tags, skip_tags, limit, timeout_s, blackout, enabled',
        "schedule_runbooks[2] name is str 'Weekly'; " + NAME_HINT,
        "schedule_runbooks[2] playbook is str '../x.yml'; " + PLAYBOOK_HINT,
        "schedule_runbooks[2] on_calendar is str ''; " + CALENDAR_HINT,
        "schedule_runbooks[2] extravars is str 'a=1', not a dict of variables",
        'schedule_runbooks[2] limit is int 5; give a host pattern string, e.g. app',
        "schedule_runbooks[2] tags has the tag 'a b'; tags are letters, digits and _ . : -",
        "schedule_runbooks[2] blackout[0] '2026-12-26..2026-12-24' ends before it starts",
        "schedule_runbooks[3] name 'daily' is also the name of schedule_runbooks[0]; names must be unique",
        "schedule_runbooks[3] blackout is str '2026-12-24'; give a list of dates or ranges, e.g. [2026-12-24..2026-12-26]",
    ]


# --- properties -------------------------------------------------------------------------------------------------------------

NAMES = st.from_regex(r'[a-z][a-z0-9_-]{0,63}', fullmatch=True)
PLAYBOOKS = st.one_of(st.from_regex(r'[a-z0-9_]{1,8}\.[a-z0-9_]{1,8}\.[a-z0-9_]{1,12}', fullmatch=True),
                      st.from_regex(r'[A-Za-z0-9_][A-Za-z0-9_-]{0,8}(/[A-Za-z0-9_-]{1,8}){0,2}\.ya?ml', fullmatch=True))
CALENDARS = st.sampled_from(['*-*-* 06:00:00', 'Sun *-*-* 03:00:00', ' daily ', 'Mon..Fri 22:30', 'hourly', '*:0/15'])
TAG_NAMES = st.from_regex(r'[A-Za-z0-9_.:-]{1,10}', fullmatch=True)
TAGS = st.one_of(st.none(), st.lists(TAG_NAMES, max_size=4), st.lists(TAG_NAMES, max_size=4).map(', '.join))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))
EXTRAVARS = st.one_of(st.none(), st.dictionaries(st.text(max_size=10), st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=4))
LIMITS = st.one_of(st.none(), st.text(st.characters(blacklist_characters='\n'), max_size=20))
TIMEOUTS = st.one_of(st.none(), st.just(''), st.integers(1, 10 ** 6), st.integers(1, 10 ** 6).map(str))
BOOLEANS = st.sampled_from([True, False, 'true', 'false', 'False', 'yes', 'no', 'on', 'off', '1', '0', 1, 0])
DATES = st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2100, 12, 31))


@st.composite
def blackout_entries(draw):
    """A valid blackout entry, and the [start, end] it means."""
    start = draw(DATES)
    end = start + datetime.timedelta(days=draw(st.integers(0, 400)))
    if start == end and draw(st.booleans()):
        return draw(st.sampled_from([start, start.isoformat()])), [start.isoformat(), start.isoformat()]
    return '%s..%s' % (start.isoformat(), end.isoformat()), [start.isoformat(), end.isoformat()]


BLACKOUTS = st.one_of(st.none(), st.lists(blackout_entries(), max_size=3).map(lambda pairs: [entry for entry, dummy in pairs]))
OPTIONAL = {'extravars': EXTRAVARS, 'tags': TAGS, 'skip_tags': TAGS, 'limit': LIMITS, 'timeout_s': TIMEOUTS, 'blackout': BLACKOUTS,
            'enabled': BOOLEANS}


@st.composite
def runbook_lists(draw):
    names = draw(st.lists(NAMES, max_size=5, unique=True))
    return [draw(st.fixed_dictionaries({'name': st.just(name), 'playbook': PLAYBOOKS, 'on_calendar': CALENDARS}, optional=OPTIONAL))
            for name in names]


@settings(max_examples=300, deadline=None)
@given(runbook_lists(), st.one_of(st.none(), st.lists(blackout_entries(), max_size=2)), st.integers(1, 10 ** 6))
def test_valid_runbooks_come_back_complete_and_are_a_fixed_point(runbooks, common, timeout):
    common_entries = None if common is None else [entry for entry, dummy in common]
    out = schedule_runbooks(runbooks, timeout_s=timeout, blackout=common_entries)
    assert [runbook['name'] for runbook in out] == [runbook['name'] for runbook in runbooks]
    for given_runbook, runbook in zip(runbooks, out):
        assert set(runbook) == set(KEYS) | {'timer', 'service'}
        assert runbook['timer'] == 'dealerscope-runbook-%s.timer' % runbook['name']
        assert runbook['service'] == 'dealerscope-runbook@%s.service' % runbook['name']
        assert runbook['playbook'] == given_runbook['playbook'] and runbook['on_calendar'] == given_runbook['on_calendar'].strip()
        assert runbook['extravars'] == (given_runbook.get('extravars') or {})
        assert isinstance(runbook['timeout_s'], int) and not isinstance(runbook['timeout_s'], bool) and runbook['timeout_s'] > 0
        if given_runbook.get('timeout_s') in (None, ''):
            assert runbook['timeout_s'] == timeout
        assert isinstance(runbook['enabled'], bool)
        assert runbook['blackout'][:len(common or [])] == [pair for dummy, pair in common or []]
        assert all(start <= end for start, end in runbook['blackout'])
    # Fed back (its own keys only, no global blackout: the global ranges are already in each runbook's), the output is unchanged.
    # The blackout ranges go back as 'start..end': the output's [start, end] pairs are not an input form the filter accepts.
    again = [dict({key: runbook[key] for key in KEYS}, blackout=['%s..%s' % (start, end) for start, end in runbook['blackout']]) for runbook in out]
    assert schedule_runbooks(again, timeout_s=timeout + 1) == out


@settings(max_examples=300, deadline=None)
@given(st.dates(), st.dates(), st.sampled_from(['', ' ']), st.data())
def test_any_ordered_blackout_range_round_trips_to_iso_dates(first, second, space, data):
    start, end = min(first, second), max(first, second)
    entry = '%s%s%s..%s%s' % (space, start.isoformat(), space, space, end.isoformat())
    expected = [[start.isoformat(), end.isoformat()]]
    assert only(daily(blackout=[entry]))['blackout'] == expected
    assert only(DAILY, blackout=[entry])['blackout'] == expected
    if start == end:
        single = data.draw(st.sampled_from([start, start.isoformat()]))
        assert only(daily(blackout=[single]))['blackout'] == expected
    else:
        reversed_range = '%s..%s' % (end, start)
        assert one_problem([daily(blackout=[reversed_range])]) == "schedule_runbooks[0] ('daily') blackout[0] '%s' ends before it starts" % reversed_range


def _name_is_valid(name):
    """The documented rule, written independently of the filter's regex."""
    allowed = set('abcdefghijklmnopqrstuvwxyz0123456789-_')
    return 1 <= len(name) <= 64 and 'a' <= name[0] <= 'z' and set(name) <= allowed


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), NAMES, NAMES.map(lambda name: name + '\n'), st.sampled_from(['r0', 'r1', 'r2'])), st.integers(0, 3))
def test_any_name_is_either_valid_or_refused_naming_its_position(name, position):
    runbooks = [daily(name='r%d' % index) for index in range(position)] + [daily(name=name)]
    if _name_is_valid(name) and name not in ['r%d' % index for index in range(position)]:
        assert NAME.match(name)
        out = schedule_runbooks(runbooks)
        assert out[position]['name'] == name and out[position]['timer'] == 'dealerscope-runbook-%s.timer' % name
    else:
        lines = problems(runbooks)
        assert len(lines) == 1, lines
        assert lines[0].startswith('schedule_runbooks[%d] name ' % position), lines
        if not _name_is_valid(name):
            assert not NAME.match(name)
            assert lines[0] == 'schedule_runbooks[%d] name is str %r; %s' % (position, name, NAME_HINT)


# --- registration, documentation, Ansible ---------------------------------------------------------------------------------------

def test_registered():
    assert FilterModule().filters() == {'schedule_runbooks': schedule_runbooks}


def test_documentation_parses():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'schedule_runbooks'
    assert set(doc['options']) == {'_input', 'timeout_s', 'blackout'}
    assert doc['options']['timeout_s']['default'] == 7200 and doc['options']['blackout']['default'] == []
    assert isinstance(yaml.safe_load(plugin.EXAMPLES), list)
    assert set(yaml.safe_load(plugin.RETURN)['_value']['contains']) == set(KEYS) | {'timer', 'service'}


def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.yml'
    # unquoted YAML dates arrive as date objects, as they do from group_vars; "false" as a string, as from -e
    extra.write_text('runbooks:\n'
                     '  - {name: daily, playbook: dealerscope.ops.daily, on_calendar: "*-*-* 06:00:00", blackout: [2027-01-01]}\n'
                     '  - {name: restore-test, playbook: dealerscope.ops.restore_test, on_calendar: "Sun *-*-* 03:00:00",\n'
                     '     timeout_s: "14400", enabled: "false"}\n'
                     'holidays: [2026-12-24..2026-12-26]\n'
                     'broken:\n'
                     '  - {name: daily, playbook: ../x.yml, oncalendar: "*-*-* 06:00:00"}\n')
    value, output = render('runbooks | dealerscope.ops.schedule_runbooks(blackout=holidays)', str(extra))
    expected = [dict(EXAMPLE_RESULT[0], blackout=[['2026-12-24', '2026-12-26'], ['2027-01-01', '2027-01-01']]), EXAMPLE_RESULT[1]]
    assert value == expected, output
    value, output = render('broken | dealerscope.ops.schedule_runbooks', str(extra))
    assert value is None
    assert 'schedule_runbooks[0] has the unknown key(s) oncalendar' in output, output
    # the type is Ansible's tagged str here, so only the value is matched
    assert re.search(r"schedule_runbooks\[0\] \('daily'\) playbook is \w+ '\.\./x\.yml'; give a collection playbook", output), output
