# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The check result contract shared by every runbook module (daily, patching, ...).

A check is a dict::

    {"name": "disk:/var", "status": "warning", "value": 83.1, "threshold": 80, "unit": "%",
     "message": "/var 83.1 % used (warning at 80 %)", "alert": "resource_exhaustion"}

``status`` is one of ``ok``, ``warning``, ``critical``; ``alert`` names the readiness document's
alert class (``service_down``, ``high_error_rate``, ``high_latency``, ``resource_exhaustion``, ...)
that a non-ok status raises, or None. Pure logic only: no AnsibleModule import.
"""

from __future__ import annotations

STATUSES = ('ok', 'warning', 'critical')
_RANK = {'ok': 0, 'warning': 1, 'critical': 2, 'unknown': 2}


def rank(status):
    """Numeric rank of a status (unknown counts as critical: nothing measured is not fine)."""
    return _RANK.get(status, 2)


def worst(statuses, default='ok'):
    """The worst of several statuses."""
    result = default
    for status in statuses:
        if rank(status) > rank(result):
            result = status
    return result


def make_check(name, status, value, threshold, message, alert=None, unit='', details=None):
    """Build one check result; ``alert`` is dropped when the status is ok."""
    if status not in STATUSES:
        raise ValueError('status must be one of %s, got %r' % (', '.join(STATUSES), status))
    result = {
        'name': name,
        'status': status,
        'value': value,
        'threshold': threshold,
        'unit': unit,
        'message': message,
        'alert': alert if status != 'ok' else None,
    }
    if details is not None:
        result['details'] = details
    return result


def _fmt(number, unit):
    if isinstance(number, float):
        text = ('%.1f' % number).rstrip('0').rstrip('.') if abs(number) < 1000 else '%d' % round(number)
    else:
        text = str(number)
    if not unit:
        return text
    return text + ' ' + unit


def threshold_check(name, value, warn=None, crit=None, higher_is_worse=True, unit='', alert=None, label=None):
    """Compare ``value`` with a warning and/or critical threshold.

    With ``higher_is_worse`` (the default), value >= crit is critical and value >= warn a warning;
    otherwise value <= crit / value <= warn. ``threshold`` in the result is the tightest limit that
    applies (the warning limit when given, else the critical one).
    """
    label = label or name
    if value is None:
        return make_check(name, 'critical', None, crit if warn is None else warn,
                          '%s could not be measured' % label, alert=alert, unit=unit)

    def breached(limit):
        if limit is None:
            return False
        return value >= limit if higher_is_worse else value <= limit

    if breached(crit):
        status, limit = 'critical', crit
    elif breached(warn):
        status, limit = 'warning', warn
    else:
        status, limit = 'ok', warn if warn is not None else crit
    if status == 'ok':
        message = '%s is %s (limit %s)' % (label, _fmt(value, unit), _fmt(limit, unit))
    else:
        message = '%s is %s (%s at %s %s)' % (label, _fmt(value, unit), status, '>=' if higher_is_worse else '<=', _fmt(limit, unit))
    return make_check(name, status, value, warn if warn is not None else crit, message, alert=alert, unit=unit)


def summarize(checks):
    """Counts per status plus the worst status of a list of checks."""
    counts = dict((status, 0) for status in STATUSES)
    for check in checks:
        counts[check['status']] = counts.get(check['status'], 0) + 1
    counts['status'] = worst(check['status'] for check in checks)
    return counts
