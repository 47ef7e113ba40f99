# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.patch_window filter."""

from __future__ import annotations

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.patch_window import patch_window

from .ansible_render import render

UTC = datetime.timezone.utc
TZ = 'Europe/Berlin'
SAT = {'days': ['sat'], 'start': '02:00', 'end': '05:00'}
SUN = {'days': ['sun'], 'start': '02:00', 'end': '05:00'}
HOLIDAY = {'start': '2026-12-20', 'end': '2027-01-03', 'reason': 'holiday freeze'}
HOLIDAY_NORMALISED = {'index': 0, 'start': '2026-12-20', 'end': '2027-01-03', 'reason': 'holiday freeze',
                      'start_utc': '2026-12-19T23:00:00Z', 'end_utc': '2027-01-03T23:00:00Z'}


def at(text):
    return datetime.datetime.fromisoformat(text)


# --- windows -------------------------------------------------------------------------------------------------------------

def test_inside_window_says_until_when():
    assert patch_window('2026-11-28T03:10:00Z', [SAT], TZ, []) == {
        'allowed': True,
        'reason': "inside window 'sat 02:00-05:00 Europe/Berlin' until 2026-11-28T04:00:00Z",
        'overridden': False,
        'in_window': True,
        'window': {'index': 0, 'days': ['sat'], 'start': '02:00', 'end': '05:00', 'label': 'sat 02:00-05:00 Europe/Berlin'},
        'window_closes_at': '2026-11-28T04:00:00Z',
        'next_window_opens_at': None,
        'freeze': None,
        'allowed_until': '2026-11-28T04:00:00Z',
        'local_time': '2026-11-28T04:10:00+01:00',
        'now': '2026-11-28T03:10:00Z',
    }


def test_outside_window_names_the_next_opening():
    out = patch_window('2026-11-25T03:10:00Z', [SAT], TZ, [])
    assert out['reason'] == 'outside every maintenance window; next window opens 2026-11-28T01:00:00Z (sat 02:00 Europe/Berlin)'
    assert (out['allowed'], out['in_window'], out['window'], out['window_closes_at']) == (False, False, None, None)
    assert out['next_window_opens_at'] == '2026-11-28T01:00:00Z'
    assert out['allowed_until'] is None and out['overridden'] is False


@pytest.mark.parametrize('now,in_window,closes,next_open', [
    ('2026-11-28T00:59:59Z', False, None, '2026-11-28T01:00:00Z'),   # start is inclusive
    ('2026-11-28T01:00:00Z', True, '2026-11-28T04:00:00Z', None),
    ('2026-11-28T03:59:59Z', True, '2026-11-28T04:00:00Z', None),
    ('2026-11-28T04:00:00Z', False, None, '2026-12-05T01:00:00Z'),   # end is exclusive; next is a week later
])
def test_window_bounds(now, in_window, closes, next_open):
    out = patch_window(now, [SAT], TZ, [])
    assert (out['in_window'], out['window_closes_at'], out['next_window_opens_at']) == (in_window, closes, next_open)


def test_next_window_across_the_week_boundary():
    monday = {'days': ['mon'], 'start': '01:00', 'end': '03:00'}
    out = patch_window('2026-11-28T12:00:00Z', [monday], TZ, [])   # saturday -> the coming monday
    assert out['next_window_opens_at'] == '2026-11-30T00:00:00Z'
    assert out['reason'].endswith('(mon 01:00 Europe/Berlin)')
    out = patch_window('2026-11-30T02:00:00Z', [monday], TZ, [])   # monday, just after it closed -> next monday
    assert out['next_window_opens_at'] == '2026-12-07T00:00:00Z'


def test_earliest_of_several_windows_is_next():
    out = patch_window('2026-11-25T03:10:00Z', [SAT, {'days': ['thursday'], 'start': '23:00', 'end': '24:00'}], TZ, [])
    assert out['next_window_opens_at'] == '2026-11-26T22:00:00Z'
    assert out['reason'].endswith('next window opens 2026-11-26T22:00:00Z (thu 23:00 Europe/Berlin)')


def test_day_names_are_normalised_and_missing_days_mean_every_day():
    out = patch_window('2026-11-29T01:30:00Z', [{'days': ['Saturday', 'SUN', ' sat '], 'start': '2:00', 'end': '24:00'}], TZ, [])
    assert out['window'] == {'index': 0, 'days': ['sat', 'sun'], 'start': '02:00', 'end': '24:00', 'label': 'sat,sun 02:00-24:00 Europe/Berlin'}
    assert out['window_closes_at'] == '2026-11-29T23:00:00Z'
    out = patch_window('2026-11-25T01:30:00Z', [{'start': '02:00', 'end': '05:00'}], TZ, [])   # a wednesday
    assert out['window']['label'] == 'daily 02:00-05:00 Europe/Berlin' and out['window']['days'] == []
    assert patch_window('2026-11-25T01:30:00Z', [{'days': [], 'start': '02:00', 'end': '05:00'}], TZ, [])['in_window'] is True


def test_windows_that_touch_count_as_one():
    windows = [{'days': ['fri'], 'start': '22:00', 'end': '24:00'}, {'days': ['sat'], 'start': '00:00', 'end': '02:00'}]
    out = patch_window('2026-11-27T21:30:00Z', windows, TZ, [])
    assert out['window']['index'] == 0
    assert out['window_closes_at'] == '2026-11-28T01:00:00Z'
    assert out['reason'] == ("inside window 'fri 22:00-24:00 Europe/Berlin' until 2026-11-28T01:00:00Z "
                             "(windows that follow without a gap included)")


def test_of_overlapping_windows_the_one_closing_last_is_reported():
    windows = [{'start': '01:00', 'end': '03:00'}, SAT, {'days': ['sat'], 'start': '02:30', 'end': '04:00'}]
    out = patch_window('2026-11-28T01:45:00Z', windows, TZ, [])
    assert out['window']['index'] == 1 and out['window_closes_at'] == '2026-11-28T04:00:00Z'


def test_windows_without_a_gap_never_close_within_the_horizon():
    out = patch_window('2026-11-28T01:45:00Z', [{'start': '00:00', 'end': '24:00'}], TZ, [])
    assert out['in_window'] is True and out['window_closes_at'] is None and out['allowed_until'] is None
    assert out['reason'] == "inside window 'daily 00:00-24:00 Europe/Berlin'; the windows leave no gap in the next 14 days"


def test_no_windows_means_always_in_window():
    out = patch_window('2026-11-25T03:10:00Z', [], TZ, [])
    assert out['allowed'] is True and out['in_window'] is True
    assert (out['window'], out['window_closes_at'], out['next_window_opens_at'], out['allowed_until']) == (None, None, None, None)
    assert out['reason'] == 'no maintenance windows are configured (patching_windows is empty) and no change freeze is in effect'
    assert patch_window('2026-11-25T03:10:00Z', None, 'UTC')['in_window'] is True


# --- daylight saving time (Europe/Berlin: last Sunday of March 02:00 CET -> 03:00 CEST, last Sunday of October 03:00 CEST -> 02:00 CET)

def test_spring_forward_skipped_hour_has_no_window():
    window = {'days': ['sun'], 'start': '02:00', 'end': '03:00'}
    out = patch_window('2026-03-29T00:59:00Z', [window], TZ, [])     # 01:59 CET, one minute before the jump
    assert out['in_window'] is False
    assert out['next_window_opens_at'] == '2026-04-05T00:00:00Z'      # not today: 02:00-03:00 does not exist; next sunday 02:00 CEST
    assert patch_window('2026-03-29T01:00:00Z', [window], TZ, [])['in_window'] is False


def test_spring_forward_window_starting_in_the_gap_opens_at_the_jump():
    window = {'days': ['sun'], 'start': '02:30', 'end': '05:00'}
    before = patch_window('2026-03-29T00:59:59Z', [window], TZ, [])
    assert before['next_window_opens_at'] == '2026-03-29T01:00:00Z' and before['local_time'] == '2026-03-29T01:59:59+01:00'
    out = patch_window('2026-03-29T01:00:00Z', [window], TZ, [])
    assert out['in_window'] is True and out['local_time'] == '2026-03-29T03:00:00+02:00'
    assert out['window_closes_at'] == '2026-03-29T03:00:00Z'            # 05:00 CEST


def test_spring_forward_day_window_is_shorter_and_offsets_change_between_weeks():
    out = patch_window('2026-03-29T01:30:00Z', [SUN], TZ, [])
    assert out['in_window'] is True and out['window_closes_at'] == '2026-03-29T03:00:00Z'   # 03:00-05:00 CEST: two hours
    assert patch_window('2026-03-29T00:59:00Z', [SUN], TZ, [])['next_window_opens_at'] == '2026-03-29T01:00:00Z'
    # saturday before the change opens 02:00 CET = 01:00Z; the saturday after opens 02:00 CEST = 00:00Z
    assert patch_window('2026-03-27T12:00:00Z', [SAT], TZ, [])['next_window_opens_at'] == '2026-03-28T01:00:00Z'
    assert patch_window('2026-03-28T06:00:00Z', [SAT], TZ, [])['next_window_opens_at'] == '2026-04-04T00:00:00Z'


def test_fall_back_day_window_is_longer():
    out = patch_window('2026-10-25T00:00:00Z', [SUN], TZ, [])
    assert out['in_window'] is True and out['local_time'] == '2026-10-25T02:00:00+02:00'
    assert out['window_closes_at'] == '2026-10-25T04:00:00Z'            # 02:00 CEST to 05:00 CET: four hours
    late = patch_window('2026-10-25T03:59:59Z', [SUN], TZ, [])
    assert late['in_window'] is True and late['local_time'] == '2026-10-25T04:59:59+01:00'
    assert patch_window('2026-10-24T12:00:00Z', [SAT], TZ, [])['in_window'] is False
    assert patch_window('2026-10-24T00:00:00Z', [SAT], TZ, [])['window_closes_at'] == '2026-10-24T03:00:00Z'
    assert patch_window('2026-10-25T12:00:00Z', [SAT], TZ, [])['next_window_opens_at'] == '2026-10-31T01:00:00Z'


def test_fall_back_repeated_hour_means_its_first_occurrence():
    window = {'days': ['sun'], 'start': '02:00', 'end': '02:30'}
    first = patch_window('2026-10-25T00:15:00Z', [window], TZ, [])
    assert first['in_window'] is True and first['local_time'] == '2026-10-25T02:15:00+02:00'
    assert first['window_closes_at'] == '2026-10-25T00:30:00Z'
    second = patch_window('2026-10-25T01:15:00Z', [window], TZ, [])
    assert second['in_window'] is False and second['local_time'] == '2026-10-25T02:15:00+01:00'
    assert second['next_window_opens_at'] == '2026-11-01T01:00:00Z'


# --- freezes -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('now,frozen', [
    ('2026-12-19T22:59:59Z', False),   # 23:59:59 on the 19th in Berlin
    ('2026-12-19T23:00:00Z', True),    # 00:00 on the 20th
    ('2027-01-03T22:59:59Z', True),    # 23:59:59 on the 3rd: the end date is inclusive
    ('2027-01-03T23:00:00Z', False),   # 00:00 on the 4th
])
def test_freeze_dates_are_inclusive_local_days(now, frozen):
    out = patch_window(now, [], TZ, [HOLIDAY])
    assert out['allowed'] is not frozen
    assert out['freeze'] == (HOLIDAY_NORMALISED if frozen else None)
    if frozen:
        assert out['reason'] == "inside change freeze 'holiday freeze' (2026-12-20 to 2027-01-03) until 2027-01-03T23:00:00Z"


def test_allowed_until_the_freeze_starts():
    out = patch_window('2026-12-19T22:00:00Z', [], TZ, [HOLIDAY])
    assert out['allowed_until'] == '2026-12-19T23:00:00Z'
    assert out['reason'].endswith('; a change freeze starts 2026-12-19T23:00:00Z')
    freeze = {'start': '2026-11-28T03:30:00Z', 'end': '2026-11-28T06:00:00Z', 'reason': 'db migration'}
    out = patch_window('2026-11-28T03:10:00Z', [SAT], TZ, [freeze])
    assert out['allowed'] is True and out['window_closes_at'] == '2026-11-28T04:00:00Z'
    assert out['allowed_until'] == '2026-11-28T03:30:00Z'
    assert out['reason'] == ("inside window 'sat 02:00-05:00 Europe/Berlin' until 2026-11-28T04:00:00Z; "
                             "a change freeze starts 2026-11-28T03:30:00Z")


def test_yaml_dates_and_datetimes_are_accepted():
    as_yaml = {'start': datetime.date(2026, 12, 20), 'end': datetime.date(2027, 1, 3), 'reason': 'holiday freeze'}
    assert patch_window('2026-12-19T23:00:00Z', [], TZ, [as_yaml])['freeze'] == HOLIDAY_NORMALISED
    mixed = {'start': '2026-12-20T18:00', 'end': '2026-12-21T06:00:00+01:00'}   # naive = Europe/Berlin
    out = patch_window('2026-12-20T17:00:00Z', [], TZ, [mixed])
    assert out['freeze'] == {'index': 0, 'start': '2026-12-20T18:00', 'end': '2026-12-21T06:00:00+01:00', 'reason': '',
                             'start_utc': '2026-12-20T17:00:00Z', 'end_utc': '2026-12-21T05:00:00Z'}
    assert out['reason'] == "inside change freeze 'patching_freeze[0]' (2026-12-20T18:00 to 2026-12-21T06:00:00+01:00) until 2026-12-21T05:00:00Z"
    naive = {'start': datetime.datetime(2026, 12, 20, 18, 0), 'end': datetime.datetime(2026, 12, 20, 19, 0, tzinfo=UTC)}
    assert patch_window('2026-12-20T17:30:00Z', [], TZ, [naive])['freeze']['end_utc'] == '2026-12-20T19:00:00Z'


def test_one_day_freeze_follows_the_summer_offset():
    out = patch_window('2026-07-01T12:00:00Z', [], TZ, [{'start': '2026-07-01', 'end': '2026-07-01', 'reason': 'release'}])
    assert (out['freeze']['start_utc'], out['freeze']['end_utc']) == ('2026-06-30T22:00:00Z', '2026-07-01T22:00:00Z')


def test_freeze_beats_window():
    out = patch_window('2026-12-26T03:10:00Z', [SAT], TZ, [HOLIDAY])
    assert out['allowed'] is False and out['in_window'] is True
    assert out['window']['label'] == 'sat 02:00-05:00 Europe/Berlin' and out['window_closes_at'] == '2026-12-26T04:00:00Z'
    assert out['freeze'] == HOLIDAY_NORMALISED
    assert out['reason'].startswith("inside change freeze 'holiday freeze'")


def test_back_to_back_freezes_extend_until():
    freezes = [{'start': '2026-12-01', 'end': '2026-12-10', 'reason': 'audit'}, {'start': '2026-12-11', 'end': '2026-12-12', 'reason': 'x'}]
    out = patch_window('2026-12-05T00:00:00Z', [], TZ, freezes)
    assert out['freeze']['reason'] == 'audit'
    assert out['reason'] == "inside change freeze 'audit' (2026-12-01 to 2026-12-10) until 2026-12-12T23:00:00Z"


# --- override ------------------------------------------------------------------------------------------------------------

def test_override_outside_window():
    out = patch_window('2026-11-25T03:10:00Z', [SAT], TZ, [], override=True)
    assert out['allowed'] is True and out['overridden'] is True and out['in_window'] is False
    assert out['reason'] == ('overridden: would be refused because outside every maintenance window; '
                             'next window opens 2026-11-28T01:00:00Z (sat 02:00 Europe/Berlin)')
    assert out['next_window_opens_at'] == '2026-11-28T01:00:00Z' and out['allowed_until'] is None


def test_override_inside_freeze():
    out = patch_window('2026-12-26T03:10:00Z', [SAT], TZ, [HOLIDAY], override='yes')
    assert out['allowed'] is True and out['overridden'] is True and out['freeze'] == HOLIDAY_NORMALISED
    assert out['reason'] == ("overridden: would be refused because inside change freeze 'holiday freeze' (2026-12-20 to 2027-01-03) "
                             "until 2027-01-03T23:00:00Z")


def test_override_when_allowed_anyway_is_not_reported_as_overridden():
    out = patch_window('2026-11-28T03:10:00Z', [SAT], TZ, [], override=True)
    assert out['allowed'] is True and out['overridden'] is False
    assert out['reason'] == "inside window 'sat 02:00-05:00 Europe/Berlin' until 2026-11-28T04:00:00Z"
    assert patch_window('2026-11-25T03:10:00Z', [SAT], TZ, [], override='false')['allowed'] is False


# --- the evaluated time ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('now', [
    '2026-11-28T03:10:00Z', '2026-11-28T03:10:00', '2026-11-28T04:10:00+01:00', ' 2026-11-28 03:10:00.750+00:00 ',
    datetime.datetime(2026, 11, 28, 3, 10), datetime.datetime(2026, 11, 28, 4, 10, tzinfo=ZoneInfo(TZ)),
])
def test_now_forms(now):
    out = patch_window(now, [SAT], TZ, [])
    assert out['now'] == '2026-11-28T03:10:00Z' and out['local_time'] == '2026-11-28T04:10:00+01:00' and out['in_window'] is True


@pytest.mark.parametrize('now', ['', None, '   '])
def test_empty_now_is_the_current_time(now):
    before = datetime.datetime.now(UTC).replace(microsecond=0)
    out = patch_window(now, [], 'UTC', [])
    after = datetime.datetime.now(UTC)
    assert before <= at(out['now']) <= after
    assert out['local_time'] == out['now'].replace('Z', '+00:00')


# --- errors name the role variable -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('windows,message', [
    ('sat 02:00-05:00', "patching_windows: must be a list of {days, start, end} dicts (an empty list means no restriction), got 'sat 02:00-05:00'"),
    ({'start': '02:00'}, 'patching_windows: must be a list'),
    (['sat'], "patching_windows[0]: must be a dict {days: [sat, sun], start: \"02:00\", end: \"05:00\"}, got 'sat'"),
    ([SAT, {'day': ['sun'], 'start': '02:00', 'end': '05:00'}], 'patching_windows[1]: unknown key(s) day; allowed keys are days, start, end'),
    ([{'days': ['sat'], 'end': '05:00'}], 'patching_windows[0]: missing start (HH:MM, quoted in YAML)'),
    ([{'days': ['sat'], 'start': '02:00'}], 'patching_windows[0]: missing end (HH:MM, quoted in YAML)'),
    ([{'days': 'sat', 'start': '02:00', 'end': '05:00'}], "patching_windows[0].days: must be a list of day names, e.g. [sat, sun], got 'sat'"),
    ([{'days': ['sat', 'sundy'], 'start': '02:00', 'end': '05:00'}],
     "patching_windows[0].days[1]: 'sundy' is not a day name; allowed: mon, tue, wed, thu, fri, sat, sun (or the full names monday ... sunday)"),
    ([{'days': ['daily'], 'start': '02:00', 'end': '05:00'}], "patching_windows[0].days[0]: 'daily' is not a day name"),
    ([{'start': '25:00', 'end': '26:00'}], "patching_windows[0].start: '25:00' is not a time HH:MM from 00:00 to 23:59"),
    ([{'start': '24:00', 'end': '24:00'}], "patching_windows[0].start: '24:00' is not a time HH:MM from 00:00 to 23:59"),
    ([{'start': '02:00', 'end': '12:60'}], "patching_windows[0].end: '12:60' is not a time HH:MM from 00:00 to 24:00 (24:00 = end of day)"),
    ([{'start': '2am', 'end': '05:00'}], "patching_windows[0].start: '2am' is not a time HH:MM from 00:00 to 23:59"),
    ([{'start': 1320, 'end': '23:00'}],
     "patching_windows[0].start: got the number 1320, expected a time HH:MM as a string; YAML reads an unquoted time such as 22:00 "
     "as a base-60 number, quote it: '22:00'"),
    ([{'start': True, 'end': '23:00'}], 'patching_windows[0].start: must be a time HH:MM as a string, got bool True'),
    ([SAT, {'start': '22:00', 'end': '02:00'}],
     'patching_windows[1]: end 02:00 is not after start 22:00; a window cannot cross midnight, split it into two windows '
     '(22:00-24:00 and 00:00-02:00 on the next day)'),
    ([{'days': ['fri', 'sun'], 'start': '22:00', 'end': '02:00'}],
     'patching_windows[0]: end 02:00 is not after start 22:00; a window cannot cross midnight, split it into two windows '
     '(22:00-24:00 on fri, sun and 00:00-02:00 on sat, mon)'),
    ([{'start': '03:00', 'end': '03:00'}], 'patching_windows[0]: end 03:00 is not after start 03:00; a window must last at least one minute'),
])
def test_window_errors(windows, message):
    with pytest.raises(AnsibleFilterError, match='^' + re.escape(message)):
        patch_window('2026-11-28T03:10:00Z', windows, TZ, [])


@pytest.mark.parametrize('timezone,message', [
    ('Europe/Berln', "patching_timezone: 'Europe/Berln' is not a known IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York); "
                     "did you mean Europe/Berlin"),
    ('europe/berlin', "patching_timezone: 'europe/berlin' is not a known IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York); "
                      "did you mean Europe/Berlin?"),
    ('CEST+2', "patching_timezone: 'CEST+2' is not a known IANA time zone name"),
    ('../../etc/passwd', "patching_timezone: '../../etc/passwd' is not a known IANA time zone name"),
    ('', "patching_timezone: must be an IANA time zone name such as UTC or Europe/Berlin, got ''"),
    (None, 'patching_timezone: must be an IANA time zone name such as UTC or Europe/Berlin, got None'),
    (1, 'patching_timezone: must be an IANA time zone name'),
])
def test_timezone_errors(timezone, message):
    with pytest.raises(AnsibleFilterError, match='^' + re.escape(message)):
        patch_window('2026-11-28T03:10:00Z', [SAT], timezone, [])


@pytest.mark.parametrize('freezes,message', [
    ({'start': '2026-12-20', 'end': '2027-01-03'}, 'patching_freeze: must be a list of {start, end, reason} dicts'),
    ('2026-12-20', "patching_freeze: must be a list of {start, end, reason} dicts, got '2026-12-20'"),
    (['2026-12-20'], "patching_freeze[0]: must be a dict {start: YYYY-MM-DD, end: YYYY-MM-DD, reason: ...}, got '2026-12-20'"),
    ([HOLIDAY, {'start': '2026-12-20', 'ends': '2027-01-03'}], 'patching_freeze[1]: unknown key(s) ends; allowed keys are start, end, reason'),
    ([{'end': '2027-01-03'}], 'patching_freeze[0]: missing start (a date YYYY-MM-DD or an ISO-8601 datetime)'),
    ([{'start': '2026-12-20'}], 'patching_freeze[0]: missing end (a date YYYY-MM-DD or an ISO-8601 datetime)'),
    ([{'start': '2026-13-40', 'end': '2027-01-03'}], "patching_freeze[0].start: '2026-13-40' is not a date (YYYY-MM-DD) or ISO-8601 datetime"),
    ([{'start': '2026-12-20', 'end': 'next week'}], "patching_freeze[0].end: 'next week' is not a date (YYYY-MM-DD) or ISO-8601 datetime"),
    ([{'start': '2026-12-20', 'end': ''}], "patching_freeze[0].end: '' is not a date (YYYY-MM-DD) or ISO-8601 datetime"),
    ([{'start': 20261220, 'end': '2027-01-03'}], 'patching_freeze[0].start: 20261220 is not a date (YYYY-MM-DD) or ISO-8601 datetime'),
    ([{'start': '2027-01-03', 'end': '2026-12-20'}],
     'patching_freeze[0]: end 2026-12-20 is before start 2027-01-03 (an end date is inclusive: a one-day freeze has the same start and end date)'),
    ([{'start': '2026-12-20', 'end': '2026-12-19'}], 'patching_freeze[0]: end 2026-12-19 is before start 2026-12-20'),
    ([{'start': '2026-12-20T10:00:00Z', 'end': '2026-12-20T09:00:00Z'}], 'patching_freeze[0]: end 2026-12-20T09:00:00Z is before start'),
    ([{'start': '2026-12-20T10:00:00Z', 'end': '2026-12-20T11:00:00+01:00'}],
     'patching_freeze[0]: end 2026-12-20T11:00:00+01:00 is not after start 2026-12-20T10:00:00Z; the freeze would last no time at all'),
])
def test_freeze_errors(freezes, message):
    with pytest.raises(AnsibleFilterError, match='^' + re.escape(message)):
        patch_window('2026-11-28T03:10:00Z', [SAT], TZ, freezes)


@pytest.mark.parametrize('now,override,message', [
    ('2026-11-28T03:10:00Z', 'maybe', "patching_override_window: must be a boolean (true/false), got 'maybe'"),
    ('2026-11-28T03:10:00Z', 2, 'patching_override_window: must be a boolean (true/false), got 2'),
    ('tomorrow', False, "patch_window: the input time 'tomorrow' is not an ISO-8601 datetime (e.g. 2026-11-25T03:10:00Z); "
                        "pass an empty string for the current time"),
    (1764299400, False, 'patch_window: the input time must be an ISO-8601 string or a datetime, got int 1764299400'),
])
def test_now_and_override_errors(now, override, message):
    with pytest.raises(AnsibleFilterError, match='^' + re.escape(message)):
        patch_window(now, [SAT], TZ, [], override=override)


def test_validation_comes_before_evaluation():
    # a bad freeze far in the past still fails the call, even though it could never match
    with pytest.raises(AnsibleFilterError, match=re.escape('patching_freeze[1].end')):
        patch_window('2026-11-28T03:10:00Z', [SAT], TZ, [HOLIDAY, {'start': '2001-01-01', 'end': '2001-02-30'}])


# --- properties ----------------------------------------------------------------------------------------------------------

DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']


# wall-clock minutes at or near daylight saving changes (00:00 Santiago, 02:00/02:30/03:00 Europe and America, 02:00 Lord Howe)
DST_MINUTES = [0, 30, 60, 90, 120, 135, 150, 165, 180, 210, 240, 1380, 1410]


@st.composite
def window_strategy(draw):
    start = draw(st.one_of(st.integers(0, 24 * 60 - 1), st.sampled_from(DST_MINUTES)))
    end = draw(st.one_of(st.integers(start + 1, 24 * 60), st.sampled_from([m for m in DST_MINUTES + [24 * 60] if m > start] or [24 * 60])))
    days = draw(st.lists(st.sampled_from(DAY_NAMES), max_size=3, unique=True))
    return {'days': days, 'start': '%02d:%02d' % divmod(start, 60), 'end': '%02d:%02d' % divmod(end, 60)}


windows_strategy = st.lists(window_strategy(), min_size=1, max_size=3)


def _transitions(tz):
    """Exact UTC instants (to the minute) at which the zone's offset changes, 2026-2028."""
    zone = ZoneInfo(tz)
    found = []
    noon = datetime.datetime(2026, 1, 1, 12, tzinfo=UTC)
    while noon.year < 2029:
        low, high = noon, noon + datetime.timedelta(days=1)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > datetime.timedelta(minutes=1):
                middle = low + (high - low) // 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        noon += datetime.timedelta(days=1)
    return found


ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kolkata', 'UTC']
TRANSITIONS = dict((tz, _transitions(tz)) for tz in ZONES)
uniform_moments = st.datetimes(min_value=datetime.datetime(2026, 1, 1), max_value=datetime.datetime(2028, 12, 31),
                               timezones=st.just(UTC)).map(lambda moment: moment.replace(microsecond=0))


@st.composite
def zone_and_moment(draw):
    """A zone and a time in 2026-2028; half the time within six hours of one of that zone's daylight saving changes."""
    tz = draw(st.sampled_from(ZONES))
    if TRANSITIONS[tz] and draw(st.booleans()):
        return tz, draw(st.sampled_from(TRANSITIONS[tz])) + datetime.timedelta(minutes=draw(st.integers(-6 * 60, 6 * 60)))
    return tz, draw(uniform_moments)


def _minutes(text):
    hours, minutes = text.split(':')
    return int(hours) * 60 + int(minutes)


def _wall_clock_in_window(moment, windows, zone):
    local = moment.astimezone(zone)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    return any((not window['days'] or DAY_NAMES[local.weekday()] in window['days'])
               and _minutes(window['start']) * 60 <= seconds < _minutes(window['end']) * 60 for window in windows)


@settings(max_examples=300, deadline=None)
@given(windows_strategy, zone_and_moment())
def test_window_schedule_is_consistent(windows, zone_moment):
    tz, moment = zone_moment
    zone = ZoneInfo(tz)
    out = patch_window(moment, windows, tz, [])
    second = datetime.timedelta(seconds=1)
    assert out['now'] == moment.strftime('%Y-%m-%dT%H:%M:%SZ')
    assert out['allowed'] is out['in_window'] and out['overridden'] is False
    if moment.astimezone(zone).fold == 0:   # not the second pass through a repeated hour: plain wall-clock membership
        assert out['in_window'] is _wall_clock_in_window(moment, windows, zone)
    if out['in_window']:
        assert out['window'] is not None and out['next_window_opens_at'] is None
        if out['window_closes_at'] is not None:
            closes = at(out['window_closes_at'])
            assert closes > moment
            assert patch_window(closes - second, windows, tz, [])['in_window'] is True
            assert patch_window(closes, windows, tz, [])['in_window'] is False
    else:
        assert out['window'] is None and out['window_closes_at'] is None
        opens = at(out['next_window_opens_at'])
        assert moment < opens <= moment + datetime.timedelta(days=8)
        assert patch_window(opens, windows, tz, [])['in_window'] is True
        assert patch_window(opens - second, windows, tz, [])['in_window'] is False


@settings(max_examples=300, deadline=None)
@given(zone_and_moment(), st.integers(-3, 3), st.integers(0, 5), st.booleans(), st.booleans())
def test_freeze_covers_exactly_its_local_days(zone_moment, offset_days, length_days, use_windows, override):
    tz, moment = zone_moment
    zone = ZoneInfo(tz)
    local_day = moment.astimezone(zone).date()
    first = local_day + datetime.timedelta(days=offset_days)
    last = first + datetime.timedelta(days=length_days)
    windows = [SAT, SUN] if use_windows else []
    out = patch_window(moment, windows, tz, [{'start': first.isoformat(), 'end': last, 'reason': 'r'}], override=override)
    frozen = first <= local_day <= last
    assert (out['freeze'] is not None) is frozen
    refused = frozen or not out['in_window']
    assert out['allowed'] is (override or not refused)
    assert out['overridden'] is (override and refused)
    plain = patch_window(moment, windows, tz, [{'start': first.isoformat(), 'end': last, 'reason': 'r'}])
    if out['overridden']:
        assert out['reason'] == 'overridden: would be refused because ' + plain['reason']
    else:
        assert out['reason'] == plain['reason']


# --- through Ansible's templating, by FQCN -------------------------------------------------------------------------------------

def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.yml'
    # unquoted YAML dates arrive as date objects, as they do from group_vars
    extra.write_text('patching_timezone: Europe/Berlin\n'
                     'patching_windows:\n  - {days: [sat], start: "02:00", end: "05:00"}\n'
                     'patching_freeze:\n  - {start: 2026-12-20, end: 2027-01-03, reason: holiday freeze}\n')
    value, output = render("'2026-12-26T03:10:00Z' | dealerscope.ops.patch_window(patching_windows, patching_timezone, patching_freeze)", extra)
    assert value is not None, output
    assert value['allowed'] is False and value['in_window'] is True and value['freeze'] == HOLIDAY_NORMALISED
    value, output = render("'2026-11-28T03:10:00Z' | dealerscope.ops.patch_window(patching_windows, patching_timezone, [], override=true)", extra)
    assert value == patch_window('2026-11-28T03:10:00Z', [SAT], TZ, [], override=True), output
    value, output = render("'' | dealerscope.ops.patch_window([{'start': '22:00', 'end': '02:00'}], 'UTC', [])")
    assert value is None
    assert 'patching_windows[0]: end 02:00 is not after start 22:00; a window cannot cross midnight' in output, output
