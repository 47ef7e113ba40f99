# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: patch_window
short_description: Decide whether patching may run now, from maintenance windows, change freezes and an override
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Validates the patching schedule (O(windows), O(timezone), O(freezes)) and says whether patching is allowed at the time
    given as O(_input), why, when the current window closes or when the next one opens.
  - Windows are wall-clock times in O(timezone). For every day the local start and end are converted to UTC with that day's
    offset, so a window keeps its local times across daylight saving changes. A local time that does not exist (the hour
    skipped in spring) maps to the instant of the jump; a local time that occurs twice (the hour repeated in autumn)
    means its first occurrence, so each window is one continuous interval per day. In C(Europe/Berlin) a window of
    C(02:00-03:00) therefore does not happen at all on the spring-forward Sunday, one of C(02:30-05:00) runs from 03:00 to
    05:00 that day, and one of C(02:00-05:00) lasts four hours on the fall-back Sunday.
  - A change freeze beats a window. O(override=true) allows patching anyway; the result then says what would have blocked it.
  - Everything is validated on every call, so the filter also serves as the schedule's input check. Errors name the role
    variables C(patching_windows[i]), C(patching_freeze[i]), C(patching_timezone) and C(patching_override_window).
options:
  _input:
    description:
      - The time to evaluate. An ISO-8601 string (V(2026-11-25T03:10:00Z), V(2026-11-25T04:10:00+01:00)) or a datetime.
        A time without offset is UTC.
      - An empty string or V(null) means the current time.
    type: raw
    required: true
  windows:
    description:
      - Allowed maintenance windows, in local time of O(timezone). An empty list means no window restriction.
      - A window cannot cross midnight; write two windows (C(22:00-24:00) and C(00:00-02:00) on the next day). Windows that
        touch or overlap are treated as one continuous window for RV(_value.window_closes_at).
      - Quote the times in YAML. Unquoted C(22:00) is read by YAML as the number 1320 and is refused.
    type: list
    elements: dict
    required: true
    suboptions:
      days:
        description:
          - Days the window applies to. Three-letter (V(mon) ... V(sun)) or full (V(monday) ... V(sunday)) names, case-insensitive.
          - Missing or empty means every day.
        type: list
        elements: str
      start:
        description: Start, C(HH:MM) (V(00:00) to V(23:59)).
        type: str
        required: true
      end:
        description: End, C(HH:MM), strictly after O(windows[].start); V(24:00) is the end of the day.
        type: str
        required: true
  timezone:
    description: IANA time zone name of the windows and of freeze dates, for example V(Europe/Berlin) or V(UTC).
    type: str
    required: true
  freezes:
    description: Change-freeze ranges. Patching is refused inside any of them.
    type: list
    elements: dict
    default: []
    suboptions:
      start:
        description:
          - A date C(YYYY-MM-DD) (the freeze starts at 00:00 of that day in O(timezone)) or an ISO-8601 datetime
            (without offset it is in O(timezone)).
        type: raw
        required: true
      end:
        description:
          - A date C(YYYY-MM-DD), inclusive (the freeze lasts through the end of that day in O(timezone)), or an ISO-8601
            datetime, exclusive (without offset it is in O(timezone)). Must not be before O(freezes[].start).
        type: raw
        required: true
      reason:
        description: Why the freeze is in effect; shown in RV(_value.reason).
        type: str
  override:
    description:
      - Allow patching even outside every window or inside a freeze. RV(_value.overridden) and RV(_value.reason) then say
        what would have blocked it.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: May we patch now?
  ansible.builtin.set_fact:
    patch_gate: >-
      {{ '' | dealerscope.ops.patch_window(patching_windows, patching_timezone, patching_freeze,
                                           override=patching_override_window) }}
  vars:
    patching_timezone: Europe/Berlin
    patching_windows:
      - {days: [sat, sun], start: "02:00", end: "05:00"}
      - {days: [fri], start: "22:00", end: "24:00"}
      - {days: [sat], start: "00:00", end: "02:00"}
    patching_freeze:
      - {start: 2026-12-20, end: 2027-01-03, reason: holiday freeze}
    patching_override_window: false

- name: Refuse outside the window
  ansible.builtin.assert:
    that: patch_gate.allowed
    fail_msg: "Not patching: {{ patch_gate.reason }}"
    success_msg: "{{ patch_gate.reason }}"

# '2026-11-28T03:10:00Z' | dealerscope.ops.patch_window([{'days': ['sat'], 'start': '02:00', 'end': '05:00'}], 'Europe/Berlin', [])
# -> allowed: true, reason: "inside window 'sat 02:00-05:00 Europe/Berlin' until 2026-11-28T04:00:00Z",
#    window_closes_at: '2026-11-28T04:00:00Z', local_time: '2026-11-28T04:10:00+01:00'
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    allowed:
      description: Whether patching may run now (also true when RV(_value.overridden)).
      type: bool
    reason:
      description:
        - One sentence explaining the decision.
        - 'Inside a window: "inside window ''sat 02:00-05:00 Europe/Berlin'' until 2026-11-28T04:00:00Z".'
        - 'Outside: "outside every maintenance window; next window opens 2026-11-28T01:00:00Z (sat 02:00 Europe/Berlin)".'
        - 'In a freeze: "inside change freeze ''holiday freeze'' (2026-12-20 to 2027-01-03) until 2027-01-03T23:00:00Z".'
        - 'Overridden: "overridden: would be refused because " followed by one of the two above.'
        - 'No windows: "no maintenance windows are configured (patching_windows is empty) and no change freeze is in effect".'
        - 'When allowed and a freeze starts before the window closes, "; a change freeze starts <UTC time>" is appended.'
      type: str
    overridden:
      description: True when O(override) turned a refusal into an allowance (false when patching was allowed anyway).
      type: bool
    in_window:
      description: Whether the time is inside a maintenance window (true when O(windows) is empty).
      type: bool
    window:
      description:
        - The window the time is in, normalised (C(index) in O(windows), C(days) as three-letter names in week order,
          C(start), C(end), C(label)). If several windows contain the time, the one that closes last. Null when outside
          every window or when O(windows) is empty.
      type: dict
    window_closes_at:
      description:
        - UTC time (C(YYYY-MM-DDTHH:MM:SSZ)) at which the window ends; windows that touch or overlap count as one.
          Null when outside every window, when O(windows) is empty, or when the windows leave no gap in the next 14 days.
      type: str
    next_window_opens_at:
      description: UTC time at which the next window opens, within the next 14 days. Null when inside a window or when O(windows) is empty.
      type: str
    freeze:
      description:
        - The change freeze in effect, normalised (C(index) in O(freezes), C(start), C(end), C(reason), and the exact range
          C(start_utc) inclusive to C(end_utc) exclusive). Null when none applies.
      type: dict
    allowed_until:
      description:
        - When patching is allowed and not overridden, the UTC time at which that stops (the window closes or a freeze starts,
          whichever is first). Null when not allowed, when overridden, or when nothing limits it.
      type: str
    local_time:
      description: The evaluated time in O(timezone), ISO-8601 with offset.
      type: str
    now:
      description: The evaluated time in UTC, C(YYYY-MM-DDTHH:MM:SSZ).
      type: str
"""

import datetime
import difflib
import re

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import is_list

UTC = datetime.timezone.utc
DAYS = ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
FULL_DAYS = ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')
DAY_INDEX = dict([(name, i) for i, name in enumerate(DAYS)] + [(name, i) for i, name in enumerate(FULL_DAYS)])
WINDOW_KEYS = ('days', 'start', 'end')
FREEZE_KEYS = ('start', 'end', 'reason')
HORIZON_DAYS = 14
TIME_RE = re.compile(r'^(\d{1,2}):(\d{2})$')
DATE_RE = re.compile(r'^\d{4}-\d{2}-\d{2}$')
TRUE_STRINGS = ('true', 'yes', 'on', '1')
FALSE_STRINGS = ('false', 'no', 'off', '0', '')


def utc_iso(moment):
    """UTC ISO-8601 with a Z suffix, to the second."""
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def _parse_now(value):
    if value is None or (isinstance(value, string_types) and not value.strip()):
        return datetime.datetime.now(UTC)
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, string_types):
        try:
            moment = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise AnsibleFilterError('patch_window: the input time %r is not an ISO-8601 datetime (e.g. 2026-11-25T03:10:00Z); '
                                     'pass an empty string for the current time' % (str(value),))
    else:
        raise AnsibleFilterError('patch_window: the input time must be an ISO-8601 string or a datetime, got %s %r'
                                 % (type(value).__name__, value))
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _parse_timezone(value):
    if not isinstance(value, string_types) or not value.strip():
        raise AnsibleFilterError('patching_timezone: must be an IANA time zone name such as UTC or Europe/Berlin, got %r' % (value,))
    name = value.strip()
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = sorted(available_timezones())
    close = [zone for zone in known if zone.lower() == name.lower()] or difflib.get_close_matches(name, known, n=3)
    hint = ('; did you mean %s?' % ' or '.join(close)) if close else ''
    raise AnsibleFilterError('patching_timezone: %r is not a known IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)%s'
                             % (name, hint))


def _parse_hhmm(value, where, allow_24):
    if isinstance(value, bool) or not isinstance(value, (string_types, int)):
        raise AnsibleFilterError('%s: must be a time HH:MM as a string, got %s %r' % (where, type(value).__name__, value))
    if isinstance(value, int):
        hint = ''
        if 0 <= value <= 24 * 60:
            hint = ("; YAML reads an unquoted time such as %d:%02d as a base-60 number, quote it: '%02d:%02d'"
                    % (value // 60, value % 60, value // 60, value % 60))
        raise AnsibleFilterError('%s: got the number %d, expected a time HH:MM as a string%s' % (where, value, hint))
    match = TIME_RE.match(value.strip())
    hours, minutes = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    valid = 0 <= hours <= 23 and 0 <= minutes <= 59 or (allow_24 and hours == 24 and minutes == 0)
    if not valid:
        allowed = '00:00 to 24:00 (24:00 = end of day)' if allow_24 else '00:00 to 23:59'
        raise AnsibleFilterError('%s: %r is not a time HH:MM from %s' % (where, str(value), allowed))
    return hours * 60 + minutes


def _hhmm(minutes):
    return '%02d:%02d' % (minutes // 60, minutes % 60)


def _parse_window(index, raw):
    where = 'patching_windows[%d]' % index
    if not hasattr(raw, 'keys'):
        raise AnsibleFilterError('%s: must be a dict {days: [sat, sun], start: "02:00", end: "05:00"}, got %r' % (where, raw))
    unknown = sorted(str(key) for key in raw.keys() if key not in WINDOW_KEYS)
    if unknown:
        raise AnsibleFilterError('%s: unknown key(s) %s; allowed keys are days, start, end' % (where, ', '.join(unknown)))
    for key in ('start', 'end'):
        if raw.get(key) is None:
            raise AnsibleFilterError('%s: missing %s (HH:MM, quoted in YAML)' % (where, key))
    days = raw.get('days')
    if days is None:
        days = []
    if not is_list(days):
        raise AnsibleFilterError('%s.days: must be a list of day names, e.g. [sat, sun], got %r' % (where, days))
    day_numbers = set()
    for position, day in enumerate(days):
        number = DAY_INDEX.get(day.strip().lower()) if isinstance(day, string_types) else None
        if number is None:
            raise AnsibleFilterError('%s.days[%d]: %r is not a day name; allowed: %s (or the full names monday ... sunday)'
                                     % (where, position, day, ', '.join(DAYS)))
        day_numbers.add(number)
    start = _parse_hhmm(raw['start'], where + '.start', allow_24=False)
    end = _parse_hhmm(raw['end'], where + '.end', allow_24=True)
    if end <= start:
        if end == start:
            raise AnsibleFilterError('%s: end %s is not after start %s; a window must last at least one minute'
                                     % (where, _hhmm(end), _hhmm(start)))
        if day_numbers:
            first_days = ', '.join(DAYS[d] for d in sorted(day_numbers))
            next_days = ', '.join(DAYS[(d + 1) % 7] for d in sorted(day_numbers))
            split = '%s-24:00 on %s and 00:00-%s on %s' % (_hhmm(start), first_days, _hhmm(end), next_days)
        else:
            split = '%s-24:00 and 00:00-%s on the next day' % (_hhmm(start), _hhmm(end))
        raise AnsibleFilterError('%s: end %s is not after start %s; a window cannot cross midnight, split it into two windows (%s)'
                                 % (where, _hhmm(end), _hhmm(start), split))
    return {'index': index, 'days': [DAYS[d] for d in sorted(day_numbers)], 'start': _hhmm(start), 'end': _hhmm(end),
            '_days': day_numbers or set(range(7)), '_start': start, '_end': end}


def _label(window, tz_name):
    days = ','.join(window['days']) if window['days'] else 'daily'
    return '%s %s-%s %s' % (days, window['start'], window['end'], tz_name)


def _local_instant(day, minutes, zone):
    """UTC instant of wall-clock `minutes` after local midnight on `day` (24:00 = next day's 00:00).

    A wall time that occurs twice (clocks turned back) means its first occurrence. A wall time that does not exist (clocks
    turned forward) means the instant of the jump, so a window covers exactly the instants whose wall time lies inside it.
    """
    day = day + datetime.timedelta(days=minutes // (24 * 60))
    minutes = minutes % (24 * 60)
    wall = datetime.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=zone)
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # In a gap: fold=1 maps the wall time with the offset after the jump, an instant before it; fold=0 one after it.
    low = wall.replace(fold=1).astimezone(UTC)
    high = instant
    before = low.astimezone(zone).utcoffset()
    while high - low > datetime.timedelta(seconds=1):
        middle = low + (high - low) // 2
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def _parse_bound(value, where, zone, is_end):
    """Return (UTC instant, display text) for a freeze start/end."""
    if isinstance(value, datetime.datetime):
        moment, shown = value, value.isoformat()
    elif isinstance(value, datetime.date):
        moment, shown = value, value.isoformat()
    elif isinstance(value, string_types) and value.strip():
        text = value.strip()
        shown = text
        try:
            if DATE_RE.match(text):
                moment = datetime.date.fromisoformat(text)
            else:
                moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is None:
            raise AnsibleFilterError('%s: %r is not a date (YYYY-MM-DD) or ISO-8601 datetime' % (where, text))
    else:
        raise AnsibleFilterError('%s: %r is not a date (YYYY-MM-DD) or ISO-8601 datetime' % (where, value))
    if not isinstance(moment, datetime.datetime):
        # a date: the freeze starts at local midnight, and an end date is inclusive (through the end of that day)
        return _local_instant(moment, 24 * 60 if is_end else 0, zone), shown
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC), shown


def _parse_freeze(index, raw, zone):
    where = 'patching_freeze[%d]' % index
    if not hasattr(raw, 'keys'):
        raise AnsibleFilterError('%s: must be a dict {start: YYYY-MM-DD, end: YYYY-MM-DD, reason: ...}, got %r' % (where, raw))
    unknown = sorted(str(key) for key in raw.keys() if key not in FREEZE_KEYS)
    if unknown:
        raise AnsibleFilterError('%s: unknown key(s) %s; allowed keys are start, end, reason' % (where, ', '.join(unknown)))
    for key in ('start', 'end'):
        if raw.get(key) is None:
            raise AnsibleFilterError('%s: missing %s (a date YYYY-MM-DD or an ISO-8601 datetime)' % (where, key))
    start, start_text = _parse_bound(raw['start'], where + '.start', zone, is_end=False)
    end, end_text = _parse_bound(raw['end'], where + '.end', zone, is_end=True)
    if end < start or (end == start and DATE_RE.match(end_text)):
        raise AnsibleFilterError('%s: end %s is before start %s (an end date is inclusive: a one-day freeze has the same start and end date)'
                                 % (where, end_text, start_text))
    if end == start:
        raise AnsibleFilterError('%s: end %s is not after start %s; the freeze would last no time at all' % (where, end_text, start_text))
    reason = raw.get('reason')
    reason = str(reason).strip() if reason is not None else ''
    return {'index': index, 'start': start_text, 'end': end_text, 'reason': reason,
            'start_utc': utc_iso(start), 'end_utc': utc_iso(end), '_start': start, '_end': end}


def _parse_override(value):
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, string_types) and value.strip().lower() in TRUE_STRINGS + FALSE_STRINGS:
        return value.strip().lower() in TRUE_STRINGS
    raise AnsibleFilterError('patching_override_window: must be a boolean (true/false), got %r' % (value,))


def _occurrences(windows, zone, first_day, last_day):
    """Every (start, end, window, local day) between two local dates, sorted by start; empty occurrences (DST gap) dropped."""
    found = []
    day = first_day
    while day <= last_day:
        for window in windows:
            if day.weekday() in window['_days']:
                start = _local_instant(day, window['_start'], zone)
                end = _local_instant(day, window['_end'], zone)
                if end > start:
                    found.append((start, end, window, day))
        day += datetime.timedelta(days=1)
    found.sort(key=lambda item: (item[0], item[2]['index']))
    return found


def _public(item):
    return dict((key, value) for key, value in item.items() if not key.startswith('_'))


def patch_window(now, windows, timezone, freezes=None, override=False):
    """Decide whether patching may run at `now`."""
    zone, tz_name = _parse_timezone(timezone)
    if windows is None:
        windows = []
    if not is_list(windows):
        raise AnsibleFilterError('patching_windows: must be a list of {days, start, end} dicts (an empty list means no restriction), got %r'
                                 % (windows,))
    parsed_windows = [_parse_window(i, raw) for i, raw in enumerate(windows)]
    for window in parsed_windows:
        window['label'] = _label(window, tz_name)
    if freezes is None:
        freezes = []
    if not is_list(freezes):
        raise AnsibleFilterError('patching_freeze: must be a list of {start, end, reason} dicts, got %r' % (freezes,))
    parsed_freezes = [_parse_freeze(i, raw, zone) for i, raw in enumerate(freezes)]
    override = _parse_override(override)
    moment = _parse_now(now)
    local = moment.astimezone(zone)

    result = {'allowed': False, 'reason': '', 'overridden': False, 'in_window': False, 'window': None, 'window_closes_at': None,
              'next_window_opens_at': None, 'freeze': None, 'allowed_until': None,
              'local_time': local.isoformat(timespec='seconds'), 'now': utc_iso(moment)}

    window_reason = 'no maintenance windows are configured (patching_windows is empty)'
    closes = None
    if not parsed_windows:
        result['in_window'] = True
    else:
        today = local.date()
        occurrences = _occurrences(parsed_windows, zone, today - datetime.timedelta(days=1), today + datetime.timedelta(days=HORIZON_DAYS + 1))
        current = [item for item in occurrences if item[0] <= moment < item[1]]
        if current:
            start, window_end, window, day = max(current, key=lambda item: (item[1], -item[2]['index']))
            closes = window_end
            for other_start, other_end, other_window, other_day in occurrences:   # touching/overlapping windows extend it
                if other_start <= closes < other_end:
                    closes = other_end
            result.update(in_window=True, window=_public(window))
            if closes > moment + datetime.timedelta(days=HORIZON_DAYS):
                closes = None
                window_reason = "inside window '%s'; the windows leave no gap in the next %d days" % (window['label'], HORIZON_DAYS)
            else:
                result['window_closes_at'] = utc_iso(closes)
                window_reason = "inside window '%s' until %s" % (window['label'], utc_iso(closes))
                if closes > window_end:
                    window_reason += ' (windows that follow without a gap included)'
        else:
            horizon = moment + datetime.timedelta(days=HORIZON_DAYS)
            upcoming = [item for item in occurrences if moment < item[0] <= horizon]
            if upcoming:
                start, end, window, day = upcoming[0]
                result['next_window_opens_at'] = utc_iso(start)
                window_reason = ('outside every maintenance window; next window opens %s (%s %s %s)'
                                 % (utc_iso(start), DAYS[day.weekday()], window['start'], tz_name))
            else:
                window_reason = 'outside every maintenance window; no window opens in the next %d days' % HORIZON_DAYS

    active = [freeze for freeze in parsed_freezes if freeze['_start'] <= moment < freeze['_end']]
    refusal = None
    if active:
        freeze = max(active, key=lambda item: (item['_end'], -item['index']))
        result['freeze'] = _public(freeze)
        name = freeze['reason'] or 'patching_freeze[%d]' % freeze['index']
        until = freeze['_end']
        for other in sorted(parsed_freezes, key=lambda item: item['_start']):   # back-to-back freezes extend it
            if other['_start'] <= until < other['_end']:
                until = other['_end']
        refusal = "inside change freeze '%s' (%s to %s) until %s" % (name, freeze['start'], freeze['end'], utc_iso(until))
    elif not result['in_window']:
        refusal = window_reason

    if refusal is None:
        result['allowed'] = True
        result['reason'] = window_reason if parsed_windows else window_reason + ' and no change freeze is in effect'
        later = [freeze['_start'] for freeze in parsed_freezes if freeze['_start'] > moment]
        limits = ([closes] if closes is not None else []) + later
        if limits:
            until = min(limits)
            result['allowed_until'] = utc_iso(until)
            if closes is None or until < closes:
                result['reason'] += '; a change freeze starts %s' % utc_iso(until)
    elif override:
        result.update(allowed=True, overridden=True, reason='overridden: would be refused because ' + refusal)
    else:
        result['reason'] = refusal
    return result


class FilterModule(object):
    """dealerscope.ops.patch_window"""

    def filters(self):
        return {'patch_window': patch_window}
