# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.backup_retention filter."""

from __future__ import annotations

import calendar
import datetime
import json
import random
import re
import time

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter import backup_retention as plugin
from ansible_collections.dealerscope.ops.plugins.filter.backup_retention import FilterModule, backup_retention

from .ansible_render import render

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 3600
DAY = 24 * HOUR
NOW = '2026-11-27T09:00:00Z'   # a Friday, ISO week 2026-W48
KEYS = {'keep', 'delete', 'reasons', 'warnings', 'newest'}


def utc(text):
    """An ISO 8601 UTC time written ``2026-11-27T09:00:00Z`` as an aware datetime (the test's own parser)."""
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=UTC)


def epoch(moment):
    if isinstance(moment, str):
        moment = utc(moment)
    return int((moment - EPOCH).total_seconds())


NOW_EPOCH = epoch(NOW)


def label_of(moment):
    """A pgBackRest-like label of a full backup finished at ``moment``."""
    return moment.strftime('%Y%m%d-%H%M%SF')


def run(backups, **kwargs):
    kwargs.setdefault('now', NOW)
    return backup_retention(backups, **kwargs)


def problems(*args, **kwargs):
    """The error's lines; fails the test when no error is raised."""
    kwargs.setdefault('now', NOW)
    with pytest.raises(AnsibleFilterError) as error:
        backup_retention(*args, **kwargs)
    return str(error.value).splitlines()


def one_problem(*args, **kwargs):
    lines = problems(*args, **kwargs)
    assert len(lines) == 1, lines
    return lines[0]


def ago(**delta):
    """Epoch seconds ``delta`` before NOW."""
    return NOW_EPOCH - int(datetime.timedelta(**delta).total_seconds())


# --- basics ---------------------------------------------------------------------------------------------------------------

def test_no_backups():
    assert run([]) == {'keep': [], 'delete': [], 'reasons': {}, 'warnings': [], 'newest': None}


def test_result_keys_and_oldest_first_whatever_the_input_order():
    backups = [{'label': 'c', 'time': ago(days=400)}, {'label': 'a', 'time': ago(days=500)}, {'label': 'new', 'time': ago(hours=1)},
               {'label': 'b', 'time': ago(days=450)}, {'label': 'd', 'time': ago(days=2)}]
    out = run(backups)
    assert set(out) == KEYS
    assert out['delete'] == ['a', 'b', 'c'] and out['keep'] == ['d', 'new']
    assert out['reasons'] == {'d': ['daily'], 'new': ['daily', 'newest']} and list(out['reasons']) == ['d', 'new']
    assert out['newest'] == 'new' and out['warnings'] == []


def test_pgbackrest_dicts_go_in_as_they_are():
    """Extra keys are ignored; without time, timestamp.stop is used."""
    full = {'label': '20261127-060001F', 'type': 'full', 'prior': None, 'reference': None, 'archive': {'start': '0000000100000000000000A1'},
            'backup': {'error': False}, 'database': {'id': 1}, 'timestamp': {'start': ago(hours=3) - 60, 'stop': ago(hours=3)}}
    diff = dict(full, label='20261127-060001F_20261127-080001D', type='diff', prior='20261127-060001F', reference=['20261127-060001F'],
                timestamp={'start': ago(hours=1) - 60, 'stop': ago(hours=1)})
    old = dict(full, label='20251001-060001F', timestamp={'start': 0, 'stop': ago(days=420)})
    out = run([old, full, diff])
    assert out['keep'] == ['20261127-060001F', '20261127-060001F_20261127-080001D'] and out['delete'] == ['20251001-060001F']
    assert out['reasons']['20261127-060001F'] == ['daily', 'prior of 20261127-060001F_20261127-080001D']
    # time wins over timestamp.stop
    assert run([dict(old, time=ago(days=1))])['reasons'] == {'20251001-060001F': ['daily', 'newest']}


# --- daily ----------------------------------------------------------------------------------------------------------------

def test_daily_keeps_everything_of_the_last_days_including_the_boundary():
    backups = [{'label': 'k%03d' % step, 'time': ago(hours=6 * step)} for step in range(1, 140)]
    backups.append({'label': 'edge-1s', 'time': ago(days=30, seconds=1)})   # same ISO week (2026-W44) as 'k120'
    out = run(backups)
    daily = ['k%03d' % step for step in range(120, 0, -1)]   # 6 h * 120 = exactly 30 days
    assert [label for label in out['keep'] if 'daily' in out['reasons'][label]] == daily
    assert 'edge-1s' in out['delete'] and 'k121' in out['delete']


def test_daily_days_changes_the_window():
    backups = [{'label': 'd%d' % days, 'time': ago(days=days)} for days in (1, 3, 7, 8, 12)]
    out = run(backups, daily_days=7, weekly_months=1)
    assert out['keep'] == ['d12', 'd7', 'd3', 'd1'] and out['delete'] == ['d8']
    assert out['reasons']['d7'] == ['daily']             # Friday 2026-11-20, the newest of 2026-W47: covers d8 (Thursday)
    assert out['reasons']['d12'] == ['weekly 2026-W46']  # Sunday 2026-11-15


# --- weekly ---------------------------------------------------------------------------------------------------------------

def test_weekly_keeps_the_newest_backup_of_each_iso_week():
    backups = [{'label': label, 'time': epoch(text)} for label, text in [
        ('w23-mon', '2026-06-01T00:00:00Z'), ('w23-wed', '2026-06-03T12:00:00Z'), ('w23-sun', '2026-06-07T23:59:59Z'),
        ('w24-mon', '2026-06-08T00:00:00Z'), ('w24-tue', '2026-06-09T06:00:00Z'), ('w26-fri', '2026-06-26T18:00:00Z'),
        ('new', '2026-11-27T06:00:00Z')]]
    out = run(backups)
    assert out['delete'] == ['w23-mon', 'w23-wed', 'w24-mon']
    assert out['reasons'] == {'w23-sun': ['weekly 2026-W23'], 'w24-tue': ['weekly 2026-W24'], 'w26-fri': ['weekly 2026-W26'],
                              'new': ['daily', 'newest']}


def test_iso_weeks_are_utc_weeks_starting_on_monday():
    backups = [{'label': 'sun-utc', 'time': '2026-06-07T23:30:00Z'},
               {'label': 'mon-in-paris', 'time': '2026-06-08T01:45:00+02:00'},   # Sunday 23:45 UTC: same week, newer
               {'label': 'mon-utc', 'time': '2026-06-08T00:00:00Z'},
               {'label': 'new', 'time': NOW}]
    out = run(backups)
    assert out['delete'] == ['sun-utc']
    assert out['reasons']['mon-in-paris'] == ['weekly 2026-W23'] and out['reasons']['mon-utc'] == ['weekly 2026-W24']


def test_iso_week_year_boundary():
    backups = [{'label': 'mon', 'time': '2026-12-28T10:00:00Z'}, {'label': 'sun', 'time': '2027-01-03T20:00:00Z'},
               {'label': 'mon-next', 'time': '2027-01-04T00:00:00Z'}, {'label': 'new', 'time': '2027-06-01T00:00:00Z'}]
    out = run(backups, now='2027-06-01T01:00:00Z')
    assert out['delete'] == ['mon']
    assert out['reasons']['sun'] == ['weekly 2026-W53'] and out['reasons']['mon-next'] == ['weekly 2027-W01']


def test_a_week_whose_newest_backup_is_daily_is_covered_by_it():
    """2026-W44 runs from Monday 10-26 to Sunday 11-01; the daily window starts Wednesday 10-28 09:00."""
    backups = [{'label': 'mon', 'time': '2026-10-26T12:00:00Z'}, {'label': 'tue', 'time': '2026-10-27T12:00:00Z'},
               {'label': 'sun', 'time': '2026-11-01T12:00:00Z'}, {'label': 'w43', 'time': '2026-10-22T12:00:00Z'}]
    out = run(backups)
    assert out['delete'] == ['mon', 'tue']
    assert out['reasons'] == {'w43': ['weekly 2026-W43'], 'sun': ['daily', 'newest']}


@pytest.mark.parametrize('now, months, start', [
    ('2026-11-27T09:00:00Z', 12, '2025-11-27T09:00:00Z'),   # 365 days, not 12 * 30 = 360
    ('2027-03-31T12:00:00Z', 1, '2027-02-28T12:00:00Z'),    # February is shorter: its last day
    ('2028-03-31T12:00:00Z', 1, '2028-02-29T12:00:00Z'),    # leap year
    ('2028-02-29T06:00:00Z', 12, '2027-02-28T06:00:00Z'),
    ('2026-01-15T00:00:00Z', 13, '2024-12-15T00:00:00Z'),
    ('2026-05-31T23:59:59Z', 3, '2026-02-28T23:59:59Z'),
])
def test_weekly_months_are_calendar_months_in_utc(now, months, start):
    newest = {'label': 'newest', 'time': now}
    inside = run([{'label': 'start', 'time': start}, newest], now=now, daily_days=1, weekly_months=months)
    assert inside['keep'] == ['start', 'newest'] and inside['reasons']['start'][0].startswith('weekly '), inside
    outside = run([{'label': 'before', 'time': epoch(start) - 1}, newest], now=now, daily_days=1, weekly_months=months)
    assert outside['delete'] == ['before'], outside


def test_twelve_months_are_a_year_not_360_days():
    out = run([{'label': 'd362', 'time': ago(days=362)}, {'label': 'd366', 'time': ago(days=366)}, {'label': 'new', 'time': NOW}])
    assert out['reasons']['d362'] == ['weekly 2025-W48'] and out['delete'] == ['d366']


def test_a_weekly_window_shorter_than_the_daily_one_keeps_no_weekly_backup():
    backups = [{'label': 'd%d' % days, 'time': ago(days=days)} for days in (1, 20, 40, 61, 90)]
    out = run(backups, daily_days=60, weekly_months=1)
    assert out['keep'] == ['d40', 'd20', 'd1'] and out['delete'] == ['d90', 'd61']


# --- the GFS scenario -----------------------------------------------------------------------------------------------------

def next_monday(moment):
    """Midnight UTC of the Monday after ``moment`` (a Monday 00:00 itself is the start of its own week)."""
    day = moment.date() + datetime.timedelta(days=7 - moment.weekday())
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.mark.parametrize('now', [datetime.datetime(2026, 11, 27, 9, 0, tzinfo=UTC),     # Friday
                                 datetime.datetime(2027, 1, 4, 0, 0, tzinfo=UTC),       # Monday midnight, ISO year 2026 has 53 weeks
                                 datetime.datetime(2026, 3, 1, 2, 30, tzinfo=UTC)])     # a Sunday; the year before has no Feb 29
def test_retention_over_a_year_of_synthetic_backup_dates_keeps_exactly_the_gfs_set(now):
    """A full backup every 6 hours for 400 days before now: the last 30 days and the newest of each older week of the year."""
    moments = [now - datetime.timedelta(hours=6 * step) for step in range(1, 400 * 4 + 1)]
    backups = [{'label': label_of(moment), 'time': epoch(moment)} for moment in moments]
    random.Random(4).shuffle(backups)
    year_before = now.replace(year=now.year - 1)   # 12 calendar months; none of the dates is a 29 February
    daily = set(moment for moment in moments if now - moment <= datetime.timedelta(days=30))
    # with a backup every 6 hours, a backup is its ISO week's newest when the week ends less than 6 hours after it
    weekly = set(moment for moment in moments
                 if year_before <= moment and next_monday(moment) - moment <= datetime.timedelta(hours=6) and moment not in daily)
    newest_of_daily_weeks = [moment for moment in daily if next_monday(moment) - moment <= datetime.timedelta(hours=6)]

    out = backup_retention(backups, now=now.strftime('%Y-%m-%dT%H:%M:%SZ'))

    assert len(daily) == 120 and 46 <= len(weekly) <= 49 and newest_of_daily_weeks
    assert out['keep'] == [label_of(moment) for moment in sorted(daily | weekly)]
    assert out['delete'] == [label_of(moment) for moment in sorted(set(moments) - daily - weekly)]
    assert out['newest'] == label_of(moments[0]) and out['warnings'] == []
    for moment in weekly:
        year, week = moment.isocalendar()[:2]
        assert out['reasons'][label_of(moment)] == ['weekly %d-W%02d' % (year, week)]
    for moment in daily - {moments[0]}:
        assert out['reasons'][label_of(moment)] == ['daily']
    assert out['reasons'][label_of(moments[0])] == ['daily', 'newest']

    again = backup_retention([backup for backup in backups if backup['label'] in set(out['keep'])], now=now.strftime('%Y-%m-%dT%H:%M:%SZ'))
    assert again['delete'] == [] and again['keep'] == out['keep'] and again['reasons'] == out['reasons']


# --- never deleted --------------------------------------------------------------------------------------------------------

def test_the_newest_backup_is_kept_even_when_older_than_every_window():
    backups = [{'label': 'old-full', 'time': ago(days=800)},
               {'label': 'old-diff', 'time': ago(days=799), 'type': 'diff', 'prior': 'old-full'},
               {'label': 'older', 'time': ago(days=900)}]
    out = run(backups)
    assert out['newest'] == 'old-diff' and out['delete'] == ['older']
    assert out['reasons'] == {'old-full': ['prior of old-diff'], 'old-diff': ['newest']}


def test_equal_times_the_greater_label_is_the_newest():
    out = run([{'label': 'b', 'time': ago(days=800)}, {'label': 'a', 'time': ago(days=800)}])
    assert out['newest'] == 'b' and out['keep'] == ['b'] and out['delete'] == ['a']


@pytest.mark.parametrize('true, false', [(True, False), ('true', 'false'), ('True', 'FALSE'), (' true ', ' false'), (True, None)])
def test_pinned_and_in_use_backups_are_never_deleted(true, false):
    backups = [{'label': 'pinned', 'time': ago(days=700), 'pinned': true, 'in_use': false},
               {'label': 'in-use', 'time': ago(days=600), 'in_use': true, 'pinned': false},
               {'label': 'both', 'time': ago(days=500), 'in_use': true, 'pinned': true},
               {'label': 'neither', 'time': ago(days=400), 'in_use': false, 'pinned': false},
               {'label': 'new', 'time': ago(hours=2)}]
    out = run(backups)
    assert out['delete'] == ['neither']
    assert out['reasons'] == {'pinned': ['pinned'], 'in-use': ['in_use'], 'both': ['pinned', 'in_use'], 'new': ['daily', 'newest']}


# --- dependencies ---------------------------------------------------------------------------------------------------------

def test_the_prior_chain_of_a_kept_backup_is_kept():
    backups = [{'label': 'F', 'time': ago(days=100), 'type': 'full'},
               {'label': 'F_D', 'time': ago(days=60), 'type': 'diff', 'prior': 'F'},
               {'label': 'F_I1', 'time': ago(days=45), 'type': 'incr', 'prior': 'F_D'},
               {'label': 'F_I2', 'time': ago(days=1), 'type': 'incr', 'prior': 'F_I1'},
               {'label': 'G', 'time': ago(days=500), 'type': 'full'},
               {'label': 'G_D', 'time': ago(days=499), 'type': 'diff', 'prior': 'G'}]
    out = run(backups)
    assert out['delete'] == ['G', 'G_D'] and out['keep'] == ['F', 'F_D', 'F_I1', 'F_I2']
    assert out['reasons'] == {'F': ['weekly 2026-W34', 'prior of F_D'], 'F_D': ['weekly 2026-W40', 'prior of F_I1'],
                              'F_I1': ['weekly 2026-W42', 'prior of F_I2'], 'F_I2': ['daily', 'newest']}


def test_a_backup_lists_every_kept_backup_that_depends_on_it():
    backups = [{'label': 'F', 'time': ago(days=500)},
               {'label': 'F_D1', 'time': ago(days=499), 'type': 'diff', 'prior': 'F', 'pinned': True},
               {'label': 'F_D2', 'time': ago(days=498), 'type': 'diff', 'prior': 'F', 'in_use': 'true'},
               {'label': 'F_D3', 'time': ago(days=497), 'type': 'diff', 'prior': 'F'},
               {'label': 'new', 'time': NOW}]
    out = run(backups)
    assert out['delete'] == ['F_D3']
    assert out['reasons']['F'] == ['prior of F_D1', 'prior of F_D2']


def test_a_prior_that_is_not_in_the_input_is_a_warning_for_kept_backups():
    backups = [{'label': 'gone_D', 'time': ago(hours=3), 'type': 'diff', 'prior': 'gone'},
               {'label': 'old_D', 'time': ago(days=500), 'type': 'diff', 'prior': 'also-gone'},
               {'label': 'lone_I', 'time': ago(hours=2), 'type': 'incr'},
               {'label': 'lone_F', 'time': ago(hours=1), 'type': 'full', 'prior': ''}]
    out = run(backups)
    assert out['delete'] == ['old_D'] and out['keep'] == ['gone_D', 'lone_I', 'lone_F']
    assert out['warnings'] == [
        "backup 'gone_D' is kept but its prior 'gone' is not among the backups (expired already?); 'gone_D' may not be restorable",
        "backup 'lone_I' (type incr) has no prior; the backups it depends on cannot be protected",
    ]


# --- clock skew -----------------------------------------------------------------------------------------------------------

def test_a_backup_from_the_future_is_kept_with_a_warning():
    backups = [{'label': 'soon', 'time': NOW_EPOCH + HOUR}, {'label': 'skewed', 'time': '2026-11-27T12:00:00Z'},
               {'label': 'old', 'time': ago(days=900)}]
    out = run(backups)
    assert out['keep'] == ['soon', 'skewed'] and out['delete'] == ['old']
    assert out['reasons'] == {'soon': ['daily'], 'skewed': ['daily', 'newest']}
    assert out['warnings'] == ["backup 'skewed' finished at 2026-11-27T12:00:00Z, 3.0 hours after now (2026-11-27T09:00:00Z); "
                               "is a clock wrong? It is kept"]


# --- times ----------------------------------------------------------------------------------------------------------------

ELEVEN = epoch('2026-11-27T11:00:00Z')   # two hours after NOW: the skew warning shows how the time was read


@pytest.mark.parametrize('value', [
    ELEVEN, float(ELEVEN), str(ELEVEN), ' %d.0 ' % ELEVEN, '2026-11-27T11:00:00Z', '2026-11-27t11:00:00z', '2026-11-27 11:00:00Z',
    '2026-11-27T11:00Z', '2026-11-27T11:00:00.000000Z', '2026-11-27T11:00:00,4Z', '2026-11-27T12:00:00+01:00',
    '2026-11-27T06:00:00-05:00', '2026-11-27T13:00:00+0200', '2026-11-27T12:00:00+01', '2026-11-27T16:30:00+05:30',
    datetime.datetime(2026, 11, 27, 11, 0, tzinfo=UTC), datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
])
def test_time_forms(value):
    out = run([{'label': 'x', 'time': value}])
    assert out['warnings'] == ["backup 'x' finished at 2026-11-27T11:00:00Z, 2.0 hours after now (2026-11-27T09:00:00Z); "
                               "is a clock wrong? It is kept"]


@pytest.mark.parametrize('now', [NOW_EPOCH, str(NOW_EPOCH), NOW, '2026-11-27T10:00:00+01:00', utc(NOW)])
def test_now_forms(now):
    out = backup_retention([{'label': 'x', 'time': ELEVEN}], now=now)
    assert out['warnings'][0].endswith('2.0 hours after now (2026-11-27T09:00:00Z); is a clock wrong? It is kept')


@pytest.mark.parametrize('now', [None, '', '  '])
def test_now_defaults_to_the_current_time(now):
    current = int(time.time())
    backups = [{'label': 'old', 'time': current - 800 * DAY}, {'label': 'recent', 'time': current - 29 * DAY},
               {'label': 'latest', 'time': current - HOUR}]
    out = backup_retention(backups, now=now)
    assert out['delete'] == ['old'] and out['reasons'] == {'recent': ['daily'], 'latest': ['daily', 'newest']}
    assert backup_retention(backups)['delete'] == ['old']


# --- counts ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('days, months', [(7, 1), ('7', '1'), (' 7 ', '+1'), ('07', '01')])
def test_counts_accept_ints_and_digit_strings(days, months):
    backups = [{'label': 'd%d' % age, 'time': ago(days=age)} for age in (1, 7, 8, 20, 40)]
    out = run(backups, daily_days=days, weekly_months=months)
    assert out['keep'] == ['d20', 'd7', 'd1'] and out['delete'] == ['d40', 'd8']


@pytest.mark.parametrize('value, start', [
    (0, "'0' is too small; write a whole number of %s >= 1, e.g. %d"),
    ('0', "'0' is too small"),
    (-1, "'-1' is too small"),
    ('-3', "'-3' is too small"),
    ('abc', "'abc' is not a whole number; write a whole number of %s >= 1, e.g. %d"),
    ('', "'' is not a whole number"),
    ('1.5', "'1.5' is not a whole number"),
    (1.5, 'is float 1.5, not a whole number'),
    (30.0, 'is float 30.0, not a whole number'),
    (True, 'is bool True, not a whole number'),
    (False, 'is bool False, not a whole number'),
    (None, 'is NoneType None, not a whole number'),
    ([30], 'is list [30], not a whole number'),
])
@pytest.mark.parametrize('option, variable, unit, example', [('daily_days', 'backup_retention_daily_days', 'days', 30),
                                                             ('weekly_months', 'backup_retention_weekly_months', 'months', 12)])
def test_counts_must_be_whole_numbers_of_at_least_one(value, start, option, variable, unit, example):
    line = one_problem([], **{option: value})
    expected = start % (unit, example) if '%' in start else start
    assert line.startswith(variable + ' ') and expected in line, line


# --- errors ---------------------------------------------------------------------------------------------------------------

TIME_HINT = ('give seconds since the epoch (pgBackRest timestamp.stop) or an ISO 8601 time with Z or an offset, '
             'e.g. 2026-11-27T06:00:01Z')


@pytest.mark.parametrize('value', ['x', {'label': 'a', 'time': 1}, 42, None])
def test_backups_must_be_a_list(value):
    assert one_problem(value).startswith('backups must be a list of dicts with label and time (the backup list of pgbackrest info')


@pytest.mark.parametrize('item, expected', [
    ('20261127-060001F', "backups[1] is str '20261127-060001F', not a dict with label and time"),
    (['a', 1], "backups[1] is list ['a', 1], not a dict with label and time"),
    ({'time': 1}, 'backups[1].label: missing; every backup needs its label, e.g. 20261127-060001F'),
    ({'label': ' ', 'time': 1}, 'backups[1].label: missing; every backup needs its label, e.g. 20261127-060001F'),
    ({'label': 20261127, 'time': 1}, 'backups[1].label is int 20261127, not a string'),
    ({'label': 'a', 'time': 1}, "backups[1].label: 'a' is listed twice (also backups[0]); labels are unique"),
    ({'label': 'b'}, 'backups[1].time: missing; ' + TIME_HINT),
    ({'label': 'b', 'time': None, 'timestamp': {'start': 1}}, 'backups[1].time: missing; ' + TIME_HINT),
    ({'label': 'b', 'time': 'yesterday'}, "backups[1].time: str 'yesterday' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': '2026-11-27'}, "backups[1].time: str '2026-11-27' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': '2026-11-27T06:00:01'}, "backups[1].time: str '2026-11-27T06:00:01' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': '2026-13-01T00:00:00Z'}, "backups[1].time: str '2026-13-01T00:00:00Z' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': '2026-11-27T24:00:00Z'}, "backups[1].time: str '2026-11-27T24:00:00Z' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': '2026-11-27T06:00:01+25:00'}, "backups[1].time: str '2026-11-27T06:00:01+25:00' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': '2026-11-27T06:00:01+01:60'}, "backups[1].time: str '2026-11-27T06:00:01+01:60' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': 'nan'}, "backups[1].time: str 'nan' is not a time; " + TIME_HINT),
    ({'label': 'b', 'time': True}, 'backups[1].time: bool True is not a time; ' + TIME_HINT),
    ({'label': 'b', 'time': [1]}, 'backups[1].time: list [1] is not a time; ' + TIME_HINT),
    ({'label': 'b', 'time': datetime.date(2026, 11, 27)}, 'backups[1].time: date datetime.date(2026, 11, 27) is not a time; ' + TIME_HINT),
    ({'label': 'b', 'time': datetime.datetime(2026, 11, 27, 6)}, 'backups[1].time: datetime 2026-11-27T06:00:00 has no time zone; ' + TIME_HINT),
    ({'label': 'b', 'time': float('nan')}, 'backups[1].time: nan is out of range (years 1 to 9999); ' + TIME_HINT),
    ({'label': 'b', 'time': float('inf')}, 'backups[1].time: inf is out of range (years 1 to 9999); ' + TIME_HINT),
    ({'label': 'b', 'time': 10 ** 20}, 'backups[1].time: 100000000000000000000 is out of range (years 1 to 9999); ' + TIME_HINT),
    ({'label': 'b', 'time': '9' * 400}, "backups[1].time: '%s' is out of range (years 1 to 9999); %s" % ('9' * 400, TIME_HINT)),
    ({'label': 'b', 'time': '0001-01-01T00:00:00+01:00'}, "backups[1].time: '0001-01-01T00:00:00+01:00' is out of range (years 1 to 9999); "
     + TIME_HINT),
    ({'label': 'b', 'time': 1, 'type': 'ful'}, "backups[1].type: 'ful' is not full, diff or incr"),
    ({'label': 'b', 'time': 1, 'type': 'incremental'}, "backups[1].type: 'incremental' is not full, diff or incr"),
    ({'label': 'b', 'time': 1, 'type': 3}, 'backups[1].type: int 3 is not full, diff or incr'),
    ({'label': 'b', 'time': 1, 'prior': 7}, 'backups[1].prior is int 7, not the label of a backup'),
    ({'label': 'b', 'time': 1, 'pinned': 'yes'}, "backups[1].pinned is str 'yes', not a boolean; write true or false"),
    ({'label': 'b', 'time': 1, 'pinned': 1}, 'backups[1].pinned is int 1, not a boolean; write true or false'),
    ({'label': 'b', 'time': 1, 'in_use': 0}, 'backups[1].in_use is int 0, not a boolean; write true or false'),
    ({'label': 'b', 'time': 1, 'in_use': ''}, "backups[1].in_use is str '', not a boolean; write true or false"),
])
def test_a_bad_backup_is_refused(item, expected):
    assert one_problem([{'label': 'a', 'time': ago(days=1)}, item]) == expected


@pytest.mark.parametrize('value, expected', [
    ('tomorrow', "now: str 'tomorrow' is not a time; %s, or leave it empty for the current time" % TIME_HINT),
    (False, 'now: bool False is not a time; %s, or leave it empty for the current time' % TIME_HINT),
    ('2026-11-27T09:00:00', "now: str '2026-11-27T09:00:00' is not a time; %s, or leave it empty for the current time" % TIME_HINT),
])
def test_a_bad_now_is_refused(value, expected):
    assert one_problem([{'label': 'a', 'time': 1}], now=value) == expected


def test_types_are_read_case_insensitively_and_default_to_full():
    out = run([{'label': 'a', 'time': ago(days=1), 'type': ' DIFF ', 'prior': 'gone'}, {'label': 'b', 'time': ago(hours=1), 'type': None}])
    assert out['keep'] == ['a', 'b'] and len(out['warnings']) == 1


def test_prior_loops_are_refused():
    backups = [{'label': 'a', 'time': 1, 'prior': 'b'}, {'label': 'b', 'time': 2, 'prior': 'c'}, {'label': 'c', 'time': 3, 'prior': 'a'},
               {'label': 'd', 'time': 4, 'prior': 'a'}, {'label': 'self', 'time': 5, 'prior': 'self'}]
    assert problems(backups) == [
        'backups[0].prior: the prior chain loops (a -> b -> c -> a); a backup cannot depend on itself, check the catalog',
        'backups[4].prior: the prior chain loops (self -> self); a backup cannot depend on itself, check the catalog',
    ]


def test_all_problems_are_reported_at_once():
    backups = [{'label': 'a', 'time': 'yesterday', 'type': 'ful', 'pinned': 'yes'},
               'not a dict',
               {'time': 1},
               {'label': 'a', 'time': 1, 'in_use': 'no'},
               {'label': 'x', 'time': 1, 'prior': 'x'}]
    lines = problems(backups, daily_days='0', weekly_months='abc', now='later')
    assert lines == [
        "backups[0].time: str 'yesterday' is not a time; " + TIME_HINT,
        "backups[0].type: 'ful' is not full, diff or incr",
        "backups[0].pinned is str 'yes', not a boolean; write true or false",
        "backups[1] is str 'not a dict', not a dict with label and time",
        'backups[2].label: missing; every backup needs its label, e.g. 20261127-060001F',
        "backups[3].label: 'a' is listed twice (also backups[0]); labels are unique",
        "backups[3].in_use is str 'no', not a boolean; write true or false",
        "backup_retention_daily_days '0' is too small; write a whole number of days >= 1, e.g. 30",
        "backup_retention_weekly_months 'abc' is not a whole number; write a whole number of months >= 1, e.g. 12",
        "now: str 'later' is not a time; %s, or leave it empty for the current time" % TIME_HINT,
        'backups[4].prior: the prior chain loops (x -> x); a backup cannot depend on itself, check the catalog',
    ]


# --- properties -----------------------------------------------------------------------------------------------------------

def months_before(moment, months):
    """The test's own calendar-month step: one month at a time, clamped to the month's last day."""
    year, month = moment.year, moment.month
    while months > 0:
        months -= 1
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def expected_keep(catalog, days, months, now):
    """An independent statement of the rules: the set of labels to keep."""
    moments = dict((item['label'], EPOCH + datetime.timedelta(seconds=item['seconds'])) for item in catalog)
    order = sorted(moments, key=lambda label: (moments[label], label))
    keep = set(order[-1:])
    start = months_before(now, months)
    newest_of_week = {}
    for label in order:
        newest_of_week[moments[label].isocalendar()[:2]] = label
    for label in order:
        item = next(entry for entry in catalog if entry['label'] == label)
        if now - moments[label] <= datetime.timedelta(days=days):
            keep.add(label)
        if newest_of_week[moments[label].isocalendar()[:2]] == label and moments[label] >= start:
            keep.add(label)
        if str(item.get('pinned')).strip().lower() == 'true' or str(item.get('in_use')).strip().lower() == 'true':
            keep.add(label)
    priors = dict((item['label'], item.get('prior')) for item in catalog)
    changed = True
    while changed:
        changed = False
        for label in list(keep):
            if priors[label] in moments and priors[label] not in keep:
                keep.add(priors[label])
                changed = True
    return keep


FLAGS = st.sampled_from([None, True, False, 'true', 'false', 'TRUE', ' False '])
AGES = st.one_of(st.integers(-2 * DAY, 500 * DAY),                      # anywhere, including the future
                 st.integers(-8, 2000).map(lambda step: step * 6 * HOUR),   # on a 6-hour grid: weeks with several backups, ties
                 st.integers(25 * DAY, 40 * DAY),                        # around the daily boundary
                 st.integers(360 * DAY, 370 * DAY))                       # around the weekly boundary


@st.composite
def catalogs(draw):
    count = draw(st.integers(0, 16))
    catalog = []
    for index in range(count):
        seconds = NOW_EPOCH - draw(AGES)
        item = {'label': 'b%02d' % index, 'seconds': seconds}
        item['time'] = draw(st.sampled_from([seconds, float(seconds), str(seconds),
                                             (EPOCH + datetime.timedelta(seconds=seconds)).strftime('%Y-%m-%dT%H:%M:%SZ')]))
        kind = draw(st.sampled_from([None, 'full', 'diff', 'incr']))
        if kind is not None:
            item['type'] = kind
        if kind in ('diff', 'incr') or draw(st.integers(0, 4)) == 0:
            item['prior'] = draw(st.sampled_from(['b%02d' % earlier for earlier in range(index)] + ['gone', None]))
        for flag in ('pinned', 'in_use'):
            value = draw(FLAGS)
            if value is not None:
                item[flag] = value
        catalog.append(item)
    draw(st.randoms()).shuffle(catalog)
    days = draw(st.one_of(st.integers(1, 45), st.integers(1, 45).map(str)))
    months = draw(st.one_of(st.integers(1, 14), st.integers(1, 14).map(str)))
    return catalog, days, months


@settings(max_examples=400, deadline=None)
@given(catalogs())
def test_properties(scenario):
    catalog, days, months = scenario
    out = backup_retention(catalog, daily_days=days, weekly_months=months, now=NOW)
    seconds = dict((item['label'], item['seconds']) for item in catalog)
    labels = sorted(seconds, key=lambda label: (seconds[label], label))
    keep, delete, reasons = out['keep'], out['delete'], out['reasons']

    # keep and delete partition the labels, both oldest first
    assert keep == [label for label in labels if label in set(keep)]
    assert delete == [label for label in labels if label in set(delete)]
    assert not set(keep) & set(delete) and len(keep) + len(delete) == len(labels)
    assert set(reasons) == set(keep) and all(reasons[label] for label in keep)
    assert set(keep) == expected_keep(catalog, int(days), int(months), utc(NOW))

    # never deleted: the newest, pinned and in_use backups, and the daily ones
    assert out['newest'] == (labels[-1] if labels else None)
    if labels:
        assert labels[-1] in keep and 'newest' in reasons[labels[-1]]
    for item in catalog:
        label = item['label']
        for flag in ('pinned', 'in_use'):
            if str(item.get(flag)).strip().lower() == 'true':
                assert label in keep and flag in reasons[label]
        if NOW_EPOCH - item['seconds'] <= int(days) * DAY:
            assert reasons[label][0] == 'daily'
        # a kept backup's prior chain (within the input) is kept, naming it
        if label in keep and item.get('prior') in seconds:
            assert 'prior of %s' % label in reasons[item['prior']]
        for reason in reasons.get(label, []):
            assert re.fullmatch(r'daily|weekly [0-9]{4}-W[0-9]{2}|newest|pinned|in_use|prior of b[0-9]{2}', reason), reason

    # idempotent: the kept backups again, with the same now, lose nothing
    again = backup_retention([item for item in catalog if item['label'] in set(keep)], daily_days=days, weekly_months=months, now=NOW)
    assert again['delete'] == [] and again['keep'] == keep and again['reasons'] == reasons and again['newest'] == out['newest']


# --- registration, documentation, Ansible ---------------------------------------------------------------------------------

def test_registered():
    assert FilterModule().filters() == {'backup_retention': backup_retention}


def test_documentation_parses():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'backup_retention'
    assert set(doc['options']) == {'_input', 'daily_days', 'weekly_months', 'now'}
    assert doc['options']['daily_days']['default'] == 30 and doc['options']['weekly_months']['default'] == 12
    assert isinstance(yaml.safe_load(plugin.EXAMPLES), list)
    assert set(yaml.safe_load(plugin.RETURN)['_value']['contains']) == KEYS


def test_the_documented_example_holds():
    backups = [{'label': '20250105-200001F', 'time': '2025-01-05T20:00:01Z'},
               {'label': '20250105-200001F_20250106-020001D', 'time': 1736128801, 'type': 'diff', 'prior': '20250105-200001F',
                'pinned': 'true'},
               {'label': '20260104-200001F', 'time': '2026-01-04T20:00:01Z'},
               {'label': '20261127-060001F', 'time': '2026-11-27T06:00:01Z'}]
    assert run(backups) == {
        'keep': ['20250105-200001F', '20250105-200001F_20250106-020001D', '20260104-200001F', '20261127-060001F'], 'delete': [],
        'reasons': {'20250105-200001F': ['prior of 20250105-200001F_20250106-020001D'], '20250105-200001F_20250106-020001D': ['pinned'],
                    '20260104-200001F': ['weekly 2026-W01'], '20261127-060001F': ['daily', 'newest']},
        'warnings': [], 'newest': '20261127-060001F'}
    backups[1]['pinned'] = 'false'
    assert run(backups)['delete'] == ['20250105-200001F', '20250105-200001F_20250106-020001D']
    assert problems([{'label': 'a', 'time': 'yesterday', 'type': 'ful'}], daily_days='0') == [
        "backups[0].time: str 'yesterday' is not a time; " + TIME_HINT,
        "backups[0].type: 'ful' is not full, diff or incr",
        "backup_retention_daily_days '0' is too small; write a whole number of days >= 1, e.g. 30",
    ]


def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({
        'backups': [
            {'label': '20250105-200001F', 'time': '2025-01-05T20:00:01Z', 'pinned': 'true'},
            {'label': '20251001-060001F', 'timestamp': {'start': epoch('2025-10-01T05:00:00Z'), 'stop': epoch('2025-10-01T06:00:01Z')}},
            {'label': '20260104-200001F', 'time': str(epoch('2026-01-04T20:00:01Z')), 'in_use': 'false'},
            {'label': '20260104-200001F_20260105-020001D', 'time': '2026-01-05T03:00:01+01:00', 'type': 'diff', 'prior': '20260104-200001F'},
            {'label': '20261127-060001F', 'time': epoch('2026-11-27T06:00:01Z'), 'type': 'full', 'prior': None},
        ],
        'daily_days': '30', 'weekly_months': '12', 'now': NOW}))
    value, output = render('backups | dealerscope.ops.backup_retention(daily_days=daily_days, weekly_months=weekly_months, now=now)',
                           str(extra))
    assert value == {
        'keep': ['20250105-200001F', '20260104-200001F', '20260104-200001F_20260105-020001D', '20261127-060001F'],
        'delete': ['20251001-060001F'],
        'reasons': {'20250105-200001F': ['pinned'], '20260104-200001F': ['weekly 2026-W01', 'prior of 20260104-200001F_20260105-020001D'],
                    '20260104-200001F_20260105-020001D': ['weekly 2026-W02'], '20261127-060001F': ['daily', 'newest']},
        'warnings': [], 'newest': '20261127-060001F'}, output
    value, output = render("backups | dealerscope.ops.backup_retention(daily_days='0', weekly_months='abc', now=now)", str(extra))
    assert value is None, output
    assert "backup_retention_daily_days '0' is too small" in output and "backup_retention_weekly_months 'abc' is not a whole number" in output, output
