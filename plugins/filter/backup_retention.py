# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_retention
short_description: Decide which backups of a pgBackRest catalog to keep and which to expire (grandfather-father-son)
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Applies the readiness document's backup retention to the backups of one repository (one stanza in one region) and
    returns the labels to keep and to delete, with the reasons each kept backup is kept.
  - 'Daily: every backup that finished at or after O(now) minus O(daily_days) days (a day is 86400 seconds) is kept,
    including any that finished after O(now). With backups every 6 hours this keeps all of them for O(daily_days) days.'
  - 'Weekly: beyond that, the newest backup of each ISO week (UTC, weeks start on Monday at 00:00 UTC) is kept when it
    finished within the last O(weekly_months) months and before the daily window. A week whose newest backup is still in
    the daily window is covered by it, so its older backups outside the daily window are not kept as weekly.'
  - 'Months are calendar months in UTC: the weekly window starts O(weekly_months) months before O(now) on the same day
    of the month at the same time of day, or on the last day of that month when it is shorter, and includes that moment.
    For example 12 months before V(2026-11-27T09:00:00Z) is V(2025-11-27T09:00:00Z), 1 month before V(2027-03-31T12:00:00Z)
    is V(2027-02-28T12:00:00Z) and 12 months before V(2028-02-29T06:00:00Z) is V(2027-02-28T06:00:00Z).'
  - Never deleted, whatever their age - the newest backup (latest C(time), then the greater label), even when it is older
    than both windows, a pinned backup and a backup in use (by a running restore or drill).
  - 'Dependencies: the whole C(prior) chain of a kept backup is kept too (a differential backup is useless without its
    full backup, an incremental one without the backups before it). A C(prior) that names no backup of the input is not
    an error (the start of the chain may have expired already); it is reported in RV(warnings) when the backup is kept,
    as is a kept C(diff) or C(incr) backup without a C(prior).'
  - A backup that finished more than one hour after O(now) is kept (it is in the daily window) and reported in
    RV(warnings) as clock skew.
  - Applying the filter again to exactly the kept backups with the same O(now) deletes nothing and gives the same reasons.
  - All problems with the input are collected and reported together in one error, one per line, naming the backup
    (C(backups[3].time)) or the role variable (C(backup_retention_daily_days), C(backup_retention_weekly_months)).
positional: _input
options:
  _input:
    description:
      - The backups, as dicts in any order. Keys other than those below are ignored, so the entries of the C(backup) list
        of C(pgbackrest info --output=json) can be passed in as they are.
      - C(label) (required) - the backup's unique label, for example V(20261127-060001F) or V(20261127-120001F_20261127-180002D).
      - C(time) (required) - when the backup finished, as seconds since the epoch (an int or a float, or such a number in a
        string) or as an ISO 8601 time with V(Z) or an offset (V(2026-11-27T06:00:01Z), V(2026-11-27T07:00:01+01:00)).
        Without C(time), C(timestamp.stop) (pgBackRest's epoch seconds) is used.
      - C(type) - V(full) (the default), V(diff) or V(incr).
      - C(prior) - the label of the backup this one depends on (pgBackRest's C(prior)), or V(null).
      - C(pinned) - V(true) never deletes the backup. V(false) (the default), or the strings V("true") and V("false") as
        Ansible extra vars arrive. Anything else is an error.
      - C(in_use) - V(true) when a running restore or drill uses the backup; it is then never deleted. Same values as C(pinned).
    type: list
    elements: dict
    required: true
  daily_days:
    description:
      - How many days every backup is kept (C(backup_retention_daily_days)). A whole number of at least 1; digits in a
        string (V("30"), as Ansible extra vars arrive) are accepted.
    type: raw
    default: 30
  weekly_months:
    description:
      - How many calendar months (see above) the newest backup of each ISO week is kept (C(backup_retention_weekly_months)).
        A whole number of at least 1; digits in a string (V("12")) are accepted.
    type: raw
    default: 12
  now:
    description:
      - The time the retention is computed for, in the same forms as C(time) (seconds since the epoch or ISO 8601 with V(Z)
        or an offset). V(null) or an empty string for the current time.
    type: raw
"""

EXAMPLES = r"""
- name: Describe the stanza's backups (pgbackrest info --output=json gives a list with one entry per stanza)
  ansible.builtin.set_fact:
    backup_catalog: "{{ (backup_info.stdout | from_json)[0].backup }}"

- name: Plan the expiry
  ansible.builtin.set_fact:
    backup_plan: >-
      {{ backup_catalog | dealerscope.ops.backup_retention(daily_days=backup_retention_daily_days,
                                                           weekly_months=backup_retention_weekly_months) }}

- name: A pinned diff backup keeps its full backup
  ansible.builtin.debug:
    msg: >-
      {{ [{'label': '20250105-200001F', 'time': '2025-01-05T20:00:01Z'},
          {'label': '20250105-200001F_20250106-020001D', 'time': 1736128801, 'type': 'diff', 'prior': '20250105-200001F',
           'pinned': 'true'},
          {'label': '20260104-200001F', 'time': '2026-01-04T20:00:01Z'},
          {'label': '20261127-060001F', 'time': '2026-11-27T06:00:01Z'}]
         | dealerscope.ops.backup_retention(now='2026-11-27T09:00:00Z') }}
# -> {keep: [20250105-200001F, 20250105-200001F_20250106-020001D, 20260104-200001F, 20261127-060001F], delete: [],
#     reasons: {20250105-200001F: ['prior of 20250105-200001F_20250106-020001D'], 20250105-200001F_20250106-020001D: [pinned],
#               20260104-200001F: [weekly 2026-W01], 20261127-060001F: [daily, newest]},
#     warnings: [], newest: 20261127-060001F}
# Without the pin, the two 2025 backups (older than 12 months) are in delete.

# [{'label': 'a', 'time': 'yesterday', 'type': 'ful'}] | dealerscope.ops.backup_retention(daily_days='0')
# -> error, all problems at once:
#    backups[0].time: str 'yesterday' is not a time; give seconds since the epoch (pgBackRest timestamp.stop) or ...
#    backups[0].type: 'ful' is not full, diff or incr
#    backup_retention_daily_days '0' is too small; write a whole number of days >= 1, e.g. 30
"""

RETURN = r"""
_value:
  description: The retention plan.
  type: dict
  contains:
    keep:
      description: The labels of the backups to keep, oldest first (by C(time), then label).
      type: list
      elements: str
    delete:
      description: The labels of the backups to expire, oldest first. Everything not in RV(keep).
      type: list
      elements: str
    reasons:
      description:
        - For each label in RV(keep), why it is kept, in this order - V(daily), V(weekly <ISO year>-W<week>) (for example
          V(weekly 2026-W48)), V(newest), V(pinned), V(in_use), then V(prior of <label>) for each kept backup that depends
          on it directly, oldest first.
      type: dict
    warnings:
      description:
        - Problems that do not stop the retention, about kept backups - clock skew, a C(prior) that names no backup of the
          input, a C(diff) or C(incr) backup without a C(prior). Oldest backup first.
      type: list
      elements: str
    newest:
      description: The label of the newest backup, or V(null) when there are no backups.
      type: str
"""

import calendar
import datetime
import math
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import describe, is_dict, is_list

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
DAY = 86400
SKEW = 3600
TYPES = ('full', 'diff', 'incr')
# a day of margin at both ends of datetime's range, so that any accepted time has an ISO week and a UTC date
MIN_EPOCH = (datetime.datetime(1, 1, 2, tzinfo=UTC) - EPOCH).total_seconds()
MAX_EPOCH = (datetime.datetime(9999, 12, 30, tzinfo=UTC) - EPOCH).total_seconds()
INTEGER_RE = re.compile(r'[+-]?[0-9]+')
NUMBER_RE = re.compile(r'[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)')
ISO_RE = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)? ?'
                    r'(?:[Zz]|([+-])([0-9]{2})(?::?([0-9]{2}))?)')
TIME_HINT = ('give seconds since the epoch (pgBackRest timestamp.stop) or an ISO 8601 time with Z or an offset, '
             'e.g. 2026-11-27T06:00:01Z')


class _Backup(object):
    """One valid backup of the input."""

    __slots__ = ('index', 'label', 'time', 'kind', 'prior', 'pinned', 'in_use')

    def __init__(self, index, label, time, kind, prior, pinned, in_use):
        self.index, self.label, self.time, self.kind = index, label, time, kind
        self.prior, self.pinned, self.in_use = prior, pinned, in_use


def _iso(epoch):
    return (EPOCH + datetime.timedelta(seconds=epoch)).strftime('%Y-%m-%dT%H:%M:%SZ')


def _from_iso(match):
    """The epoch seconds of an ISO_RE match, or None when a field is out of range (month 13, hour 25, ...)."""
    year, month, day, hour, minute, second, fraction, sign, offset_hours, offset_minutes = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                                   int((fraction or '0')[:6].ljust(6, '0')), tzinfo=UTC)
        if int(offset_hours or 0) > 23 or int(offset_minutes or 0) > 59:
            return None
        offset = datetime.timedelta(hours=int(offset_hours or 0), minutes=int(offset_minutes or 0))
    except ValueError:
        return None
    epoch = (moment - EPOCH).total_seconds()
    return epoch + offset.total_seconds() if sign == '-' else epoch - offset.total_seconds()


def _moment(value):
    """(epoch seconds, None), or (None, why ``value`` is not a time)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return None, 'datetime %s has no time zone' % value.isoformat()
        epoch = (value - EPOCH).total_seconds()
    elif isinstance(value, str):
        text = value.strip()
        if NUMBER_RE.fullmatch(text):
            epoch = float(text)
        else:
            match = ISO_RE.fullmatch(text)
            epoch = _from_iso(match) if match else None
            if epoch is None:
                return None, '%s is not a time' % describe(str(value))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        epoch = value
    else:
        return None, '%s is not a time' % describe(value)
    if math.isnan(epoch) or not MIN_EPOCH <= epoch <= MAX_EPOCH:
        return None, '%r is out of range (years 1 to 9999)' % (value,)
    return float(epoch), None


def _flag(where, value, problems):
    """``value`` as a bool (None and the strings true/false accepted), or False after recording a problem."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ('true', 'false'):
        return value.strip().lower() == 'true'
    problems.append('%s is %s, not a boolean; write true or false' % (where, describe(value)))
    return False


def _count(value, variable, unit, example, problems):
    """``value`` as an int >= 1, or None after recording a problem."""
    hint = 'write a whole number of %s >= 1, e.g. %d' % (unit, example)
    number = value
    if isinstance(value, str):
        if not INTEGER_RE.fullmatch(value.strip()):
            problems.append('%s %r is not a whole number; %s' % (variable, str(value), hint))
            return None
        number = int(value.strip())
    if isinstance(number, bool) or not isinstance(number, int):
        problems.append('%s is %s, not a whole number; %s' % (variable, describe(value), hint))
        return None
    if number < 1:
        problems.append("%s '%s' is too small; %s" % (variable, value, hint))
        return None
    return number


def _entry(index, item, labels, problems):
    """The backup described by ``item``, or None after recording its problems."""
    where = 'backups[%d]' % index
    if not is_dict(item):
        problems.append('%s is %s, not a dict with label and time' % (where, describe(item)))
        return None
    before = len(problems)

    label = item.get('label')
    if label is None or (isinstance(label, str) and not label.strip()):
        problems.append('%s.label: missing; every backup needs its label, e.g. 20261127-060001F' % where)
    elif not isinstance(label, str):
        problems.append('%s.label is %s, not a string' % (where, describe(label)))
    elif label in labels:
        problems.append("%s.label: '%s' is listed twice (also backups[%d]); labels are unique" % (where, label, labels[label]))
    else:
        labels[label] = index

    value = item.get('time')
    timestamp = item.get('timestamp')
    if value is None and is_dict(timestamp):
        value = timestamp.get('stop')
    epoch = None
    if value is None:
        problems.append('%s.time: missing; %s' % (where, TIME_HINT))
    else:
        epoch, why = _moment(value)
        if why is not None:
            problems.append('%s.time: %s; %s' % (where, why, TIME_HINT))

    kind = item.get('type')
    if kind is None:
        kind = 'full'
    elif not isinstance(kind, str) or kind.strip().lower() not in TYPES:
        shown = repr(str(kind)) if isinstance(kind, str) else describe(kind)
        problems.append('%s.type: %s is not full, diff or incr' % (where, shown))
    else:
        kind = kind.strip().lower()

    prior = item.get('prior')
    if isinstance(prior, str) and not prior.strip():
        prior = None
    elif prior is not None and not isinstance(prior, str):
        problems.append('%s.prior is %s, not the label of a backup' % (where, describe(prior)))

    pinned = _flag('%s.pinned' % where, item.get('pinned'), problems)
    in_use = _flag('%s.in_use' % where, item.get('in_use'), problems)
    if len(problems) > before:
        return None
    return _Backup(index, str(label), epoch, kind, None if prior is None else str(prior), pinned, in_use)


def _backups(backups, problems):
    """The valid backups of the input; problems recorded (the list may then be incomplete)."""
    if not is_list(backups):
        problems.append('backups must be a list of dicts with label and time (the backup list of pgbackrest info --output=json), got %s'
                        % describe(backups))
        return []
    labels = {}
    entries = [_entry(index, item, labels, problems) for index, item in enumerate(backups)]
    return [entry for entry in entries if entry is not None]


def _loops(by_label, problems):
    """Record every loop of prior references once, at the backup where the walk entered it."""
    finished = set()
    for start in sorted(by_label.values(), key=lambda backup: backup.index):
        path, position, label = [], {}, start.label
        while label in by_label and label not in finished and label not in position:
            position[label] = len(path)
            path.append(label)
            label = by_label[label].prior
        if label in position:
            loop = path[position[label]:] + [label]
            problems.append('backups[%d].prior: the prior chain loops (%s); a backup cannot depend on itself, check the catalog'
                            % (by_label[label].index, ' -> '.join(loop)))
        finished.update(path)


def _months_before(epoch, months):
    """The epoch seconds ``months`` calendar months before ``epoch`` (see DOCUMENTATION), or -inf before year 1."""
    moment = EPOCH + datetime.timedelta(seconds=epoch)
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    if year < 1:
        return -math.inf
    moment = moment.replace(year=year, month=month + 1, day=min(moment.day, calendar.monthrange(year, month + 1)[1]))
    return (moment - EPOCH).total_seconds()


def _week(epoch):
    year, week = (EPOCH + datetime.timedelta(seconds=epoch)).isocalendar()[:2]
    return '%04d-W%02d' % (year, week)


def backup_retention(backups, daily_days=30, weekly_months=12, now=None):
    """The backups to keep and to delete (see DOCUMENTATION)."""
    problems = []
    entries = _backups(backups, problems)
    days = _count(daily_days, 'backup_retention_daily_days', 'days', 30, problems)
    months = _count(weekly_months, 'backup_retention_weekly_months', 'months', 12, problems)
    if now is None or (isinstance(now, str) and not now.strip()):
        now_epoch = (datetime.datetime.now(UTC) - EPOCH).total_seconds()
    else:
        now_epoch, why = _moment(now)
        if why is not None:
            problems.append('now: %s; %s, or leave it empty for the current time' % (why, TIME_HINT))
    by_label = dict((backup.label, backup) for backup in entries)
    _loops(by_label, problems)
    if problems:
        raise AnsibleFilterError('\n'.join(problems))

    ordered = sorted(entries, key=lambda backup: (backup.time, backup.label))
    newest = ordered[-1] if ordered else None
    weekly_start = _months_before(now_epoch, months)

    def is_daily(backup):
        return now_epoch - backup.time <= days * DAY

    week_newest = {}
    for backup in ordered:
        week_newest[_week(backup.time)] = backup   # ordered oldest first: the last one written is the week's newest
    weekly = dict((backup.label, week) for week, backup in week_newest.items() if backup.time >= weekly_start and not is_daily(backup))

    reasons = {}
    for backup in ordered:
        why = []
        if is_daily(backup):
            why.append('daily')
        if backup.label in weekly:
            why.append('weekly %s' % weekly[backup.label])
        if backup is newest:
            why.append('newest')
        if backup.pinned:
            why.append('pinned')
        if backup.in_use:
            why.append('in_use')
        if why:
            reasons[backup.label] = why

    pending = list(reasons)
    kept = set(reasons)
    while pending:
        prior = by_label[pending.pop()].prior
        if prior in by_label and prior not in kept:
            kept.add(prior)
            pending.append(prior)
    for backup in ordered:
        if backup.label in kept and backup.prior in by_label:
            reasons.setdefault(backup.prior, []).append('prior of %s' % backup.label)

    warnings = []
    for backup in ordered:
        if backup.label not in kept:
            continue
        if backup.time - now_epoch > SKEW:
            warnings.append("backup '%s' finished at %s, %.1f hours after now (%s); is a clock wrong? It is kept"
                            % (backup.label, _iso(backup.time), (backup.time - now_epoch) / 3600.0, _iso(now_epoch)))
        if backup.prior is not None and backup.prior not in by_label:
            warnings.append("backup '%s' is kept but its prior '%s' is not among the backups (expired already?); '%s' may not be "
                            "restorable" % (backup.label, backup.prior, backup.label))
        elif backup.prior is None and backup.kind != 'full':
            warnings.append("backup '%s' (type %s) has no prior; the backups it depends on cannot be protected"
                            % (backup.label, backup.kind))

    keep = [backup.label for backup in ordered if backup.label in kept]
    return {
        'keep': keep,
        'delete': [backup.label for backup in ordered if backup.label not in kept],
        'reasons': dict((label, reasons[label]) for label in keep),
        'warnings': warnings,
        'newest': newest.label if newest is not None else None,
    }


class FilterModule(object):
    """dealerscope.ops.backup_retention"""

    def filters(self):
        return {'backup_retention': backup_retention}
