# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: schedule_runbooks
short_description: Validate the runbooks a runner host schedules and fill in their defaults
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Checks the runbooks of the C(dealerscope.ops.schedule) role (C(schedule_runbooks)), each run by a systemd timer through
    C(ansible-runner), and returns them complete, so the role writes units and run configurations from one checked list.
  - 'Each runbook is a dict: C(name) (lower-case letters, digits, C(-) and C(_), starting with a letter; it names the timer
    C(dealerscope-runbook-<name>.timer) and the run directory), C(playbook) (a collection playbook such as
    V(dealerscope.ops.daily), or a C(.yml)/C(.yaml) path relative to the project), C(on_calendar) (a systemd calendar
    expression such as V(*-*-* 06:00:00); its syntax is checked on the host with C(systemd-analyze calendar)), and optionally
    C(extravars) (a dict; values are passed as given), C(tags), C(skip_tags) (a list or a comma-separated string), C(limit),
    C(timeout_s) (a positive whole number of seconds, the run is stopped and reported incomplete after it), C(blackout)
    (dates the runbook does not run on, see below) and C(enabled) (a boolean; V("false") from C(-e) is false).'
  - 'Blackout entries are V(YYYY-MM-DD) or a range V(YYYY-MM-DD..YYYY-MM-DD) (both ends included). The global
    O(blackout) applies to every runbook, in addition to the runbook''s own.'
  - An unknown key is refused (a typo such as C(oncalendar) would otherwise be silently ignored).
  - All problems are collected and reported together in one error, one per line, each naming the runbook by its position,
    for example C(schedule_runbooks[1]).
positional: _input
options:
  _input:
    description: The runbooks to schedule.
    type: list
    elements: dict
    required: true
  timeout_s:
    description: The run time limit of a runbook that sets no C(timeout_s).
    type: int
    default: 7200
  blackout:
    description: Blackout dates or ranges of every runbook.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The runbooks, checked and complete
  ansible.builtin.set_fact:
    __schedule_plan: "{{ schedule_runbooks | dealerscope.ops.schedule_runbooks(timeout_s=7200, blackout=['2026-12-24..2026-12-26']) }}"
  vars:
    schedule_runbooks:
      - name: daily
        playbook: dealerscope.ops.daily
        on_calendar: "*-*-* 06:00:00"
      - name: restore-test
        playbook: dealerscope.ops.restore_test
        on_calendar: "Sun *-*-* 03:00:00"
        timeout_s: "14400"
        enabled: "false"
# -> [{name: daily, playbook: dealerscope.ops.daily, on_calendar: '*-*-* 06:00:00', extravars: {}, tags: '', skip_tags: '',
#      limit: '', timeout_s: 7200, blackout: [['2026-12-24', '2026-12-26']], enabled: true,
#      timer: dealerscope-runbook-daily.timer, service: dealerscope-runbook@daily.service},
#     {name: restore-test, ..., timeout_s: 14400, enabled: false, ...}]
"""

RETURN = r"""
_value:
  description: One dict per runbook, in order, with every key present.
  type: list
  elements: dict
  contains:
    name:
      description: The runbook's name.
      type: str
    playbook:
      description: The playbook run.
      type: str
    on_calendar:
      description: The systemd calendar expression, stripped.
      type: str
    extravars:
      description: The extra variables of every run (empty dict when none).
      type: dict
    tags:
      description: Tags to run, comma-separated (empty for all).
      type: str
    skip_tags:
      description: Tags to skip, comma-separated.
      type: str
    limit:
      description: The host pattern the run is limited to (empty for the whole inventory).
      type: str
    timeout_s:
      description: The run's time limit in seconds.
      type: int
    blackout:
      description: The blackout ranges (global ones first), each a two-item list of ISO dates, start and end included.
      type: list
      elements: list
    enabled:
      description: Whether the timer is enabled and started.
      type: bool
    timer:
      description: The timer unit's name.
      type: str
    service:
      description: The service unit's name (an instance of the role's template unit).
      type: str
"""

import datetime
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import describe, is_dict, is_list

VAR = 'schedule_runbooks'
KEYS = ('name', 'playbook', 'on_calendar', 'extravars', 'tags', 'skip_tags', 'limit', 'timeout_s', 'blackout', 'enabled')
NAME = re.compile(r'^[a-z][a-z0-9_-]{0,63}\Z')
FQCN = re.compile(r'^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+\Z')
PATH = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_./-]*\.ya?ml\Z')
TAG = re.compile(r'^[A-Za-z0-9_.:-]+$')
EXAMPLE = "e.g. {name: daily, playbook: dealerscope.ops.daily, on_calendar: '*-*-* 06:00:00'}"


def _seconds(label, value, problems):
    number = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            problems.append("%s '%s' is not a whole number of seconds" % (label, value))
            return None
    if isinstance(number, bool) or not isinstance(number, int):
        problems.append('%s is %s, not a whole number of seconds' % (label, describe(value)))
        return None
    if number <= 0:
        problems.append('%s is %d; a run needs a positive time limit in seconds, e.g. 7200' % (label, number))
        return None
    return number


def _date(label, text, problems):
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        problems.append("%s '%s' is not a date; write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD" % (label, text))
        return None


def _blackout(label, entries, problems):
    if entries is None:
        return []
    if not is_list(entries):
        problems.append('%s is %s; give a list of dates or ranges, e.g. [2026-12-24..2026-12-26]' % (label, describe(entries)))
        return []
    ranges = []
    for index, entry in enumerate(entries):
        where = '%s[%d]' % (label, index)
        if isinstance(entry, datetime.date):
            entry = entry.isoformat()
        if not isinstance(entry, str):
            problems.append('%s is %s, not a date or range' % (where, describe(entry)))
            continue
        parts = entry.split('..')
        if len(parts) > 2:
            problems.append("%s '%s' is not a date or range; write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD" % (where, entry))
            continue
        dates = [_date(where, part, problems) for part in parts]
        if None in dates:
            continue
        start, end = dates[0], dates[-1]
        if end < start:
            problems.append("%s '%s' ends before it starts" % (where, entry))
            continue
        ranges.append([start.isoformat(), end.isoformat()])
    return ranges


def _tags(label, value, problems):
    if value is None:
        return ''
    items = value.split(',') if isinstance(value, str) else value if is_list(value) else None
    if items is None:
        problems.append('%s is %s; give a list of tags or a comma-separated string' % (label, describe(value)))
        return ''
    tags = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not TAG.match(text):
            problems.append("%s has the tag '%s'; tags are letters, digits and _ . : -" % (label, text))
            continue
        tags.append(text)
    return ','.join(tags)


def _enabled(label, value, problems):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in BOOLEANS_TRUE:
        return True
    if text in BOOLEANS_FALSE:
        return False
    problems.append('%s is %s, not a boolean (true or false)' % (label, describe(value)))
    return True


def schedule_runbooks(runbooks, timeout_s=7200, blackout=None):
    """The runbooks, checked and complete (see DOCUMENTATION)."""
    if not is_list(runbooks):
        raise AnsibleFilterError('%s must be a list of runbooks, %s; got %s' % (VAR, EXAMPLE, describe(runbooks)))
    problems = []
    default_timeout = _seconds('timeout_s', timeout_s, problems)
    common = _blackout('blackout', blackout, problems)
    result = []
    names = {}
    for index, runbook in enumerate(runbooks):
        label = '%s[%d]' % (VAR, index)
        if not is_dict(runbook):
            problems.append('%s is %s, not a dict; %s' % (label, describe(runbook), EXAMPLE))
            continue
        unknown = sorted(str(key) for key in runbook if key not in KEYS)
        if unknown:
            problems.append('%s has the unknown key(s) %s; known keys: %s' % (label, ', '.join(unknown), ', '.join(KEYS)))
        name = runbook.get('name')
        if not isinstance(name, str) or not NAME.match(name):
            problems.append('%s name is %s; use lower-case letters, digits, - and _, starting with a letter, e.g. daily'
                            % (label, describe(name)))
        elif name in names:
            problems.append("%s name '%s' is also the name of %s[%d]; names must be unique" % (label, name, VAR, names[name]))
        else:
            names[name] = index
            label = "%s[%d] ('%s')" % (VAR, index, name)
        playbook = runbook.get('playbook')
        if not isinstance(playbook, str) or not (FQCN.match(playbook) or (PATH.match(playbook) and '..' not in playbook.split('/'))):
            problems.append('%s playbook is %s; give a collection playbook (dealerscope.ops.daily) or a .yml path inside the project'
                            % (label, describe(playbook)))
        calendar = runbook.get('on_calendar')
        if not isinstance(calendar, str) or not calendar.strip() or '\n' in calendar:
            problems.append("%s on_calendar is %s; give a systemd calendar expression, e.g. '*-*-* 06:00:00'" % (label, describe(calendar)))
            calendar = ''
        extravars = runbook.get('extravars', {})
        if extravars is None:
            extravars = {}
        if not is_dict(extravars):
            problems.append('%s extravars is %s, not a dict of variables' % (label, describe(extravars)))
            extravars = {}
        limit = runbook.get('limit', '')
        if limit is None:
            limit = ''
        if not isinstance(limit, str) or '\n' in limit:
            problems.append('%s limit is %s; give a host pattern string, e.g. app' % (label, describe(limit)))
            limit = ''
        timeout = runbook.get('timeout_s')
        timeout = default_timeout if timeout in (None, '') else _seconds('%s timeout_s' % label, timeout, problems)
        result.append({
            'name': name,
            'playbook': playbook,
            'on_calendar': calendar.strip(),
            'extravars': dict(extravars),
            'tags': _tags('%s tags' % label, runbook.get('tags'), problems),
            'skip_tags': _tags('%s skip_tags' % label, runbook.get('skip_tags'), problems),
            'limit': limit.strip(),
            'timeout_s': timeout,
            'blackout': common + _blackout('%s blackout' % label, runbook.get('blackout'), problems),
            'enabled': _enabled('%s enabled' % label, runbook.get('enabled', True), problems),
            'timer': 'dealerscope-runbook-%s.timer' % name,
            'service': 'dealerscope-runbook@%s.service' % name,
        })
    if problems:
        raise AnsibleFilterError('\n'.join(problems))
    return result


class FilterModule(object):
    """dealerscope.ops.schedule_runbooks"""

    def filters(self):
        return {'schedule_runbooks': schedule_runbooks}
