# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of the runbook report, used by the ``dealerscope.ops.runbook_end`` action plugin.

Builds the runbook report (a dict) from the per-host check results, scrubs secrets out of it,
renders it as JSON and manages the report directory (atomic writes, the ``latest`` symlink,
retention). The Markdown and HTML come from Jinja2 templates (``plugins/plugin_utils/report_render.py``,
``roles/runbook_end/templates/``); the JSON is validated against ``REPORT_SCHEMA`` with ``jsonschema``
(``plugins/plugin_utils/report_schema.py``).

``REPORT_SCHEMA`` is the single source of the report's JSON Schema; ``docs/report.schema.json``
is a copy of ``schema_json()`` and a unit test asserts they are identical. Regenerate it with::

    python -c 'from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import schema_json; \\
print(schema_json(), end="")' > docs/report.schema.json

No AnsibleModule import here.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import shutil
import uuid

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import replace_atomically
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import (
    STATUSES,
    make_check,
    rank,
    summarize,
    worst,
)

SCHEMA_VERSION = 1
RUNBOOK_PATTERN = r'^[A-Za-z0-9][A-Za-z0-9_.-]*$'
TIMESTAMP_PATTERN = r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'
RUN_DIR_PATTERN = re.compile(r'^[0-9]{8}T[0-9]{6}Z$')
RUN_DIR_FORMAT = '%Y%m%dT%H%M%SZ'
FILE_NAMES = {'json': 'report.json', 'md': 'report.md', 'html': 'report.html'}
LATEST = 'latest'
FAIL_ON = ('critical', 'warning', 'never')
MASK = '***'

REACHABLE_CHECK = 'reachable'
RUNBOOK_ERROR_CHECK = 'runbook_error'
NO_RESULTS_CHECK = 'results'
SERVICE_DOWN = 'service_down'
RUNBOOK_ERROR_ALERT = 'runbook_error'
MONITORING_GAP = 'monitoring_gap'

_ANY_JSON = ['number', 'string', 'boolean', 'null', 'array', 'object']

REPORT_SCHEMA = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    '$id': 'https://example.invalid/dealerscope/ops/docs/report.schema.json',
    'title': 'DealerScope ops runbook report',
    'description': ('report.json written by dealerscope.ops.runbook_end once per runbook run (daily, patching, DR, ...). '
                    'Generated from REPORT_SCHEMA in plugins/module_utils/ops_report.py; do not edit by hand.'),
    'type': 'object',
    'required': ['schema_version', 'runbook', 'started_at', 'finished_at', 'duration_s', 'status', 'hosts', 'summary',
                 'problems', 'meta'],
    'additionalProperties': False,
    'properties': {
        'schema_version': {'description': 'Version of this report format; bumped on incompatible changes.',
                           'type': 'integer', 'const': SCHEMA_VERSION},
        'runbook': {'description': 'Name of the runbook that produced the report (daily, patching, dr, ...).',
                    'type': 'string', 'pattern': RUNBOOK_PATTERN},
        'started_at': {'description': 'When the runbook run started, ISO-8601 UTC.', '$ref': '#/$defs/timestamp'},
        'finished_at': {'description': 'When the runbook run finished (when the report was made, by default), ISO-8601 UTC.',
                        '$ref': '#/$defs/timestamp'},
        'duration_s': {'description': 'finished_at minus started_at, in seconds.', 'type': 'number', 'minimum': 0},
        'status': {'description': 'Overall status: the worst status of all checks of all hosts (ok when there are none).',
                   '$ref': '#/$defs/status'},
        'hosts': {'description': 'Per host name, the host status and its checks.', 'type': 'object',
                  'additionalProperties': {'$ref': '#/$defs/host'}},
        'summary': {'$ref': '#/$defs/summary'},
        'problems': {'description': 'Every check that is not ok, worst first (then by host and check name).',
                     'type': 'array', 'items': {'$ref': '#/$defs/problem'}},
        'meta': {'description': ('Free extra facts passed by the runbook (fleet size, module executions, inventory name, ...). '
                                 'Values under secret-looking keys are replaced with "***". A list under timeline is rendered as '
                                 "the report's Timeline section."),
                 'type': 'object',
                 'properties': {
                     'timeline': {
                         'description': "Events of the run in order (the DR drill's): seconds since the run's start and what happened.",
                         'type': 'array',
                         'items': {'type': 'object', 'required': ['offset_s', 'event'],
                                   'properties': {'offset_s': {'type': 'number'}, 'event': {'type': 'string'}}}}}},
    },
    '$defs': {
        'timestamp': {'type': 'string', 'pattern': TIMESTAMP_PATTERN},
        'status': {'type': 'string', 'enum': list(STATUSES)},
        'count': {'type': 'integer', 'minimum': 0},
        'host': {
            'description': 'One host of the run.',
            'type': 'object',
            'required': ['status', 'checks'],
            'additionalProperties': False,
            'properties': {
                'status': {'description': 'Worst status of the host checks; a host without any result gets a critical "results" check.',
                           '$ref': '#/$defs/status'},
                'checks': {'description': 'The host checks in the order the runbook produced them.', 'type': 'array',
                           'items': {'$ref': '#/$defs/check'}},
            },
        },
        'check': {
            'description': 'One check result, as built by plugins/module_utils/ops_checks.py.',
            'type': 'object',
            'required': ['name', 'status', 'value', 'threshold', 'unit', 'message', 'alert'],
            'additionalProperties': False,
            'properties': {
                'name': {'description': 'Check name, optionally prefix:subject (disk:/var).', 'type': 'string', 'minLength': 1},
                'status': {'$ref': '#/$defs/status'},
                'value': {'description': 'Measured value (null when it could not be measured).', 'type': _ANY_JSON},
                'threshold': {'description': 'The limit the value was compared with (null when none).', 'type': _ANY_JSON},
                'unit': {'description': 'Unit of value and threshold (empty when none).', 'type': 'string'},
                'message': {'description': 'One-line human readable result.', 'type': 'string'},
                'alert': {'description': 'Alert class raised by a non-ok status (service_down, resource_exhaustion, ...); null when ok.',
                          'type': ['string', 'null']},
                'details': {'description': 'Optional extra data of the check; secret-looking keys are masked.', 'type': _ANY_JSON},
            },
        },
        'summary': {
            'description': 'Counts over all hosts and checks.',
            'type': 'object',
            'required': ['hosts', 'checks', 'ok', 'warning', 'critical', 'by_alert', 'host_status'],
            'additionalProperties': False,
            'properties': {
                'hosts': {'description': 'Number of hosts in the report.', '$ref': '#/$defs/count'},
                'checks': {'description': 'Number of checks over all hosts.', '$ref': '#/$defs/count'},
                'ok': {'description': 'Checks with status ok.', '$ref': '#/$defs/count'},
                'warning': {'description': 'Checks with status warning.', '$ref': '#/$defs/count'},
                'critical': {'description': 'Checks with status critical.', '$ref': '#/$defs/count'},
                'by_alert': {'description': 'Number of non-ok checks per alert class (checks without an alert are not counted).',
                             'type': 'object', 'additionalProperties': {'$ref': '#/$defs/count'}},
                'host_status': {
                    'description': 'Number of hosts per host status.',
                    'type': 'object',
                    'required': list(STATUSES),
                    'additionalProperties': False,
                    'properties': dict((status, {'$ref': '#/$defs/count'}) for status in STATUSES),
                },
            },
        },
        'problem': {
            'description': 'A check that is not ok.',
            'type': 'object',
            'required': ['host', 'name', 'status', 'message', 'alert'],
            'additionalProperties': False,
            'properties': {
                'host': {'type': 'string'},
                'name': {'type': 'string'},
                'status': {'type': 'string', 'enum': ['warning', 'critical']},
                'message': {'type': 'string'},
                'alert': {'type': ['string', 'null']},
            },
        },
    },
}


def schema_json():
    """The canonical text of ``docs/report.schema.json``."""
    return json.dumps(REPORT_SCHEMA, indent=2) + '\n'


# --------------------------------------------------------------------------- secrets

SECRET_KEY = re.compile(r'pass|secret|token|key|webhook|url_with_credentials', re.IGNORECASE)
# scheme://userinfo@ -> scheme://***@ (userinfo runs to the last @ before the path)
_URL_CREDENTIALS = re.compile(r'(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@')
# password=..., ?token=..., api_key=... inside free text
_INLINE_SECRET = re.compile(r'(?i)\b([\w.-]*(?:pass|secret|token|key|webhook)[\w.-]*=)([^\s&,;\'"]+)')


def scrub_text(text):
    """Strip credentials from URLs and ``secret=value`` pairs in a string."""
    text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + '@', text)
    return _INLINE_SECRET.sub(lambda m: m.group(1) + MASK, text)


def scrub(value):
    """Recursively mask values under secret-looking keys and strip URL credentials from strings."""
    if isinstance(value, dict):
        return dict((str(key), MASK if SECRET_KEY.search(str(key)) else scrub(item)) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(str(value))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_text(str(value))


# --------------------------------------------------------------------------- time

def parse_time(text):
    """Parse an ISO-8601 timestamp; naive values are taken as UTC. Returns an aware UTC datetime."""
    if isinstance(text, datetime.datetime):
        moment = text
    else:
        value = str(text).strip()
        if value.endswith(('Z', 'z')):
            value = value[:-1] + '+00:00'
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError('not an ISO-8601 timestamp: %r' % text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def format_time(moment):
    """ISO-8601 UTC with a Z suffix; milliseconds only when there are any."""
    text = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None).isoformat(
        timespec='milliseconds' if moment.microsecond else 'seconds')
    return text + 'Z'


def run_dir_name(moment):
    """Name of a run's directory: its start time as YYYYmmddTHHMMSSZ."""
    return moment.astimezone(datetime.timezone.utc).strftime(RUN_DIR_FORMAT)


# --------------------------------------------------------------------------- report

def _as_list(value):
    if value is None:
        return []
    if isinstance(value, dict) and 'checks' in value:
        value = value['checks']
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def normalize_check(check):
    """Return a schema-conforming copy of one check; anything malformed becomes a critical check that says so."""
    if not isinstance(check, dict) or not check.get('name'):
        return make_check('invalid_check', 'critical', None, None,
                          'malformed check result: %s' % json.dumps(check, default=str, sort_keys=True)[:200])
    status = check.get('status')
    message = check.get('message')
    message = '' if message is None else str(message)
    if status not in STATUSES:
        message = 'invalid status %r: %s' % (status, message) if message else 'invalid status %r' % (status,)
        status = 'critical'
    unit = check.get('unit')
    result = make_check(str(check['name']), status, _jsonable(check.get('value')), _jsonable(check.get('threshold')), message,
                        alert=None if check.get('alert') is None else str(check.get('alert')),
                        unit='' if unit is None else str(unit),
                        details=_jsonable(check['details']) if 'details' in check else None)
    return result


def _jsonable(value):
    """Make ``value`` plain JSON data (tuples to lists, odd types to strings, NaN/inf to strings)."""
    if isinstance(value, dict):
        return dict((str(key), _jsonable(item)) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def problem_sort_key(problem):
    return (-rank(problem['status']), problem['host'], problem['name'])


def build_report(runbook, started_at, finished_at, hosts, unreachable=None, failed=None, meta=None):
    """Build the report dict (already scrubbed). Raises ValueError on bad input."""
    if not isinstance(runbook, str) or not re.match(RUNBOOK_PATTERN, runbook):
        raise ValueError('runbook must be a simple name (letters, digits, _ . -, not starting with . or -), got %r' % (runbook,))
    started = parse_time(started_at)
    finished = parse_time(finished_at) if finished_at else datetime.datetime.now(datetime.timezone.utc)
    if finished < started:
        raise ValueError('finished_at (%s) is before started_at (%s)' % (format_time(finished), format_time(started)))
    if not isinstance(hosts, dict):
        raise ValueError('hosts must be a dict of host name to a list of checks')
    failed = failed or {}
    unreachable = [str(host) for host in (unreachable or [])]

    checks_by_host = {}
    for host in sorted(set(str(h) for h in hosts) | set(unreachable) | set(str(h) for h in failed)):
        checks_by_host[host] = []
    for host in unreachable:
        if not any(c['name'] == REACHABLE_CHECK for c in checks_by_host[host]):
            checks_by_host[host].append(make_check(REACHABLE_CHECK, 'critical', False, True,
                                                   '%s is unreachable: no checks could run' % host, alert=SERVICE_DOWN))
    for host, message in failed.items():
        text = ' '.join(str(message or 'a task failed').split())
        checks_by_host[str(host)].append(make_check(RUNBOOK_ERROR_CHECK, 'critical', None, None,
                                                    'runbook task failed on %s: %s' % (host, text), alert=RUNBOOK_ERROR_ALERT))
    for host, checks in hosts.items():
        checks_by_host[str(host)].extend(normalize_check(check) for check in _as_list(checks))
    for host, checks in checks_by_host.items():
        if not checks:
            # A host in the run with no result at all: nothing measured is not fine (ops_checks: unknown ranks as critical).
            checks.append(make_check(NO_RESULTS_CHECK, 'critical', 0, None,
                                     'no results: nothing was measured on %s, so its state is unknown' % host, alert=MONITORING_GAP))

    report_hosts = {}
    all_checks = []
    problems = []
    for host, checks in checks_by_host.items():
        checks = scrub(checks)
        report_hosts[host] = {'status': worst(c['status'] for c in checks), 'checks': checks}
        all_checks.extend(checks)
        problems.extend({'host': host, 'name': c['name'], 'status': c['status'], 'message': c['message'], 'alert': c['alert']}
                        for c in checks if c['status'] != 'ok')
    problems.sort(key=problem_sort_key)

    counts = summarize(all_checks)
    by_alert = {}
    for check in all_checks:
        if check['status'] != 'ok' and check['alert']:
            by_alert[check['alert']] = by_alert.get(check['alert'], 0) + 1
    host_status = dict((status, 0) for status in STATUSES)
    for entry in report_hosts.values():
        host_status[entry['status']] += 1

    return {
        'schema_version': SCHEMA_VERSION,
        'runbook': runbook,
        'started_at': format_time(started),
        'finished_at': format_time(finished),
        'duration_s': round((finished - started).total_seconds(), 3),
        'status': counts['status'],
        'hosts': report_hosts,
        'summary': {
            'hosts': len(report_hosts),
            'checks': len(all_checks),
            'ok': counts['ok'],
            'warning': counts['warning'],
            'critical': counts['critical'],
            'by_alert': dict(sorted(by_alert.items(), key=lambda item: (-item[1], item[0]))),
            'host_status': host_status,
        },
        'problems': problems,
        'meta': scrub(_jsonable(meta or {})),
    }


def reaches(status, fail_on):
    """Whether the overall ``status`` reaches the ``fail_on`` level."""
    if fail_on == 'never':
        return False
    return rank(status) >= rank(fail_on)


def failure_message(report, fail_on, location, limit=5):
    """The module's failure message: the status, the worst checks and where the report is."""
    worst_ones = [p for p in report['problems'] if rank(p['status']) >= rank(fail_on)]
    named = ['%s %s (%s)' % (p['host'], p['name'], p['status']) for p in worst_ones[:limit]]
    if len(worst_ones) > limit:
        named.append('and %d more' % (len(worst_ones) - limit))
    return '%s runbook status is %s (fail_on=%s): %s; report: %s' % (
        report['runbook'], report['status'], fail_on, ', '.join(named), location)


# --------------------------------------------------------------------------- rendering helpers

def format_value(value, unit=''):
    """Short human text for a value or threshold."""
    if value is None:
        return 'n/a'
    if isinstance(value, bool):
        text = 'yes' if value else 'no'
    elif isinstance(value, float):
        text = ('%.1f' % value).rstrip('0').rstrip('.') if abs(value) < 1000 else '%d' % round(value)
    elif isinstance(value, (int, str)):
        text = str(value)
    else:
        text = json.dumps(value, sort_keys=True, default=str)
        if len(text) > 60:
            text = text[:57] + '...'
    return '%s %s' % (text, unit) if unit and not isinstance(value, bool) else text


def format_duration(seconds):
    seconds = float(seconds)
    if seconds < 60:
        return '%.1f s' % seconds
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return '%dh %02dm %02ds' % (hours, minutes, secs) if hours else '%dm %02ds' % (minutes, secs)


def render_json(report):
    return json.dumps(report, indent=2, ensure_ascii=False) + '\n'


# --------------------------------------------------------------------------- files

def plan_paths(report_root, runbook, started):
    """The paths a run's report goes to."""
    runbook_dir = os.path.join(report_root, runbook)
    run_dir = os.path.join(runbook_dir, run_dir_name(started))
    paths = dict((kind, os.path.join(run_dir, name)) for kind, name in FILE_NAMES.items())
    paths['latest'] = os.path.join(runbook_dir, LATEST)
    return runbook_dir, run_dir, paths


def _write_atomic(path, text):
    replace_atomically(path, text)


def switch_latest(runbook_dir, run_dir_basename):
    """Point ``<runbook_dir>/latest`` at ``run_dir_basename`` (relative link) atomically."""
    latest = os.path.join(runbook_dir, LATEST)
    if os.path.lexists(latest) and not os.path.islink(latest):
        raise OSError('%s exists and is not a symlink; refusing to replace it' % latest)
    tmp = os.path.join(runbook_dir, '.%s.tmp-%s' % (LATEST, uuid.uuid4().hex[:8]))
    os.symlink(run_dir_basename, tmp)
    try:
        os.replace(tmp, latest)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_report(report, paths, run_dir, runbook_dir, rendered):
    """Write report.json and the rendered Markdown and HTML (``rendered['md']``, ``rendered['html']``)
    atomically, then switch ``latest`` to this run."""
    os.makedirs(run_dir, exist_ok=True)
    _write_atomic(paths['json'], render_json(report))
    _write_atomic(paths['md'], rendered['md'])
    _write_atomic(paths['html'], rendered['html'])
    switch_latest(runbook_dir, os.path.basename(run_dir))


def runs_to_prune(runbook_dir, keep, new_run=None):
    """Timestamped run directories beyond the newest ``keep``, never the one ``latest`` points to.

    ``new_run`` is the run being written: it counts as present and, since ``latest`` is switched to
    it, it is the protected one (otherwise the current target of ``latest`` is).
    """
    if keep < 1:
        raise ValueError('keep must be at least 1, got %d' % keep)
    names = set()
    if os.path.isdir(runbook_dir):
        names = set(name for name in os.listdir(runbook_dir)
                    if RUN_DIR_PATTERN.match(name) and os.path.isdir(os.path.join(runbook_dir, name))
                    and not os.path.islink(os.path.join(runbook_dir, name)))
    protected = set()
    latest = os.path.join(runbook_dir, LATEST)
    if new_run:
        names.add(new_run)
        protected.add(new_run)
    elif os.path.islink(latest):
        protected.add(os.path.basename(os.path.normpath(os.readlink(latest))))
    ordered = sorted(names, reverse=True)
    return [os.path.join(runbook_dir, name) for name in ordered[keep:] if name not in protected]


def prune(paths):
    for path in paths:
        shutil.rmtree(path)
