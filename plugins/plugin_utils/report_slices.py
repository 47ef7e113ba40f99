# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The slices of one sliced run (AWX job slicing) merged into one report (controller side).

AWX runs a job template with ``job_slice_count`` N as N jobs, each on 1/N of the inventory, that share nothing but
the extra variables and the workflow job that holds them (``awx_workflow_job_id``). Each slice's runbook ending
records its results as a *part* under ``<report_dir>/<runbook>/.slices/<run>/``; the slice that completes the set
merges the parts into the one report, and only it notifies. A set that is never completed (a slice died before its
ending) is reported by the next run of the runbook as a failed row, so a lost slice never goes unseen.

Pure logic and file helpers; the action plugin ``dealerscope.ops.runbook_end`` holds the lock and decides.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil

from ansible_collections.dealerscope.ops.plugins.module_utils import ops_checks, ops_report
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import ensure_private_dir, replace_atomically

SLICES_DIR = '.slices'
PART_SUFFIX = '.part.json'
PART_VERSION = 1
RUN_ID_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')
STALE_CHECK = 'slices'


def slices_root(report_dir, runbook):
    return os.path.join(report_dir, runbook, SLICES_DIR)


def part_key(play_hosts):
    """A slice is named by its hosts: a relaunched slice replaces its own part instead of counting twice."""
    digest = hashlib.sha256('\n'.join(sorted(str(host) for host in play_hosts)).encode('utf-8')).hexdigest()
    return digest[:16]


def check_run_id(run):
    if not isinstance(run, str) or not RUN_ID_PATTERN.match(run):
        raise ValueError('the sliced run id %r is not a name (letters, digits, _ . -, at most 64): it names the directory '
                         'that collects the slices\' results' % (run,))
    return run


def make_part(runbook, run, slices, started_at, play_hosts, job, inputs):
    """What one slice records: its own inputs to the ending, scrubbed like a report."""
    part = {
        'version': PART_VERSION,
        'runbook': runbook,
        'run': run,
        'slices': slices,
        'slice': part_key(play_hosts),  # not named "key": the scrubber masks values under secret-looking names
        'job': job,
        'started_at': ops_report.format_time(ops_report.parse_time(started_at)),
        'recorded_at': ops_report.format_time(datetime.datetime.now(datetime.timezone.utc)),
        'play_hosts': sorted(str(host) for host in play_hosts),
    }
    for name in ('hosts', 'failed', 'unreachable', 'meta', 'events', 'delivery_checks'):
        part[name] = inputs.get(name)
    return ops_report.scrub(json.loads(json.dumps(part, default=str)))


def write_part(run_dir, part):
    ensure_private_dir(os.path.dirname(run_dir))
    ensure_private_dir(run_dir)
    path = os.path.join(run_dir, part_key(part['play_hosts']) + PART_SUFFIX)
    replace_atomically(path, json.dumps(part, indent=1, sort_keys=True) + '\n')
    os.chmod(path, 0o600)
    return path


def read_parts(run_dir):
    """The parts recorded for one run, in a stable order; an unreadable part is an error, never skipped."""
    parts = []
    if not os.path.isdir(run_dir):
        return parts
    for name in sorted(os.listdir(run_dir)):
        if not name.endswith(PART_SUFFIX):
            continue
        path = os.path.join(run_dir, name)
        try:
            with open(path, encoding='utf-8') as handle:
                part = json.load(handle)
        except (OSError, ValueError) as exc:
            raise ValueError('the slice results %s cannot be read: %s' % (path, exc))
        if not isinstance(part, dict) or part.get('version') != PART_VERSION:
            raise ValueError('the slice results %s are not a part this collection wrote (version %r)'
                             % (path, part.get('version') if isinstance(part, dict) else None))
        parts.append(part)
    return parts


def _merge_checks(first, second):
    """Two slices reported the same row (a check run once per slice, e.g. the service through the load balancer):
    one entry per check name, the worse result kept."""
    merged = []
    index = {}
    for check in list(first) + list(second):
        name = check.get('name') if isinstance(check, dict) else None
        if name is None or name not in index:
            index[name] = len(merged)
            merged.append(check)
            continue
        kept = merged[index[name]]
        if ops_checks.rank(check.get('status', 'critical')) > ops_checks.rank(kept.get('status', 'critical')):
            merged[index[name]] = check
    return merged


def merge_values(values):
    """Meta values of the slices as one: equal values stay, numbers add up (counts of hosts), dicts merge key by key,
    lists are joined without repeats, and anything else that differs becomes the list of the distinct values."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    if all(value == present[0] for value in present):
        return present[0]
    if all(isinstance(value, dict) for value in present):
        keys = []
        for value in present:
            keys.extend(key for key in value if key not in keys)
        return dict((key, merge_values([value.get(key) for value in present])) for key in keys)
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present):
        return sum(present)
    distinct = []
    for value in present:
        for item in (value if isinstance(value, list) else [value]):
            if item not in distinct:
                distinct.append(item)
    return distinct


def merge_parts(parts):
    """The ending's inputs of the whole run, from the parts of its slices."""
    if not parts:
        raise ValueError('no slice results to merge')
    hosts, failed, unreachable, events, delivery, play_hosts = {}, {}, [], [], [], []
    seen_events = set()
    for part in parts:
        for host, checks in (part.get('hosts') or {}).items():
            checks = checks if isinstance(checks, list) else [checks]
            hosts[host] = _merge_checks(hosts[host], checks) if host in hosts else list(checks)
        for host, message in (part.get('failed') or {}).items():
            failed.setdefault(host, message)
        for host in part.get('unreachable') or []:
            if host not in unreachable:
                unreachable.append(host)
        for event in part.get('events') or []:
            key = (event.get('name'), event.get('host'))
            if key not in seen_events:
                seen_events.add(key)
                events.append(event)
        delivery.extend(part.get('delivery_checks') or [])
        play_hosts.extend(host for host in part.get('play_hosts') or [] if host not in play_hosts)
    started = min(ops_report.parse_time(part['started_at']) for part in parts)
    meta = merge_values([part.get('meta') or {} for part in parts]) or {}
    return {
        'started_at': ops_report.format_time(started),
        'hosts': hosts,
        'failed': failed,
        'unreachable': sorted(unreachable),
        'events': events,
        'delivery_checks': delivery,
        'meta': meta,
        'play_hosts': sorted(play_hosts),
        'jobs': [part.get('job') or {} for part in parts],
    }


def stale_runs(root, current, now, stale_hours):
    """Sliced runs under ``root`` other than ``current`` whose newest part is older than ``stale_hours``:
    (run id, its directory, the parts it has)."""
    found = []
    if not os.path.isdir(root):
        return found
    limit = now - datetime.timedelta(hours=stale_hours)
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name == current or name.startswith('.') or not os.path.isdir(path):
            continue
        stamps = [os.path.getmtime(os.path.join(path, entry)) for entry in os.listdir(path) if entry.endswith(PART_SUFFIX)]
        newest = datetime.datetime.fromtimestamp(max(stamps) if stamps else os.path.getmtime(path), datetime.timezone.utc)
        if newest < limit:
            try:
                parts = read_parts(path)
            except ValueError:
                parts = []
            found.append((name, path, parts))
    return found


def stale_check(run, parts):
    """The row a run never completed becomes in the next run's report."""
    expected = max([part.get('slices', 0) for part in parts] or [0])
    criticals = sum(1 for part in parts for checks in (part.get('hosts') or {}).values()
                    for check in (checks if isinstance(checks, list) else [checks])
                    if isinstance(check, dict) and check.get('status') == 'critical')
    hosts = sorted(set(host for part in parts for host in part.get('play_hosts') or []))
    message = ('sliced run %s never completed: %d of %s slices recorded their results (%d hosts: %s), the rest never '
               'reached the ending; its report was never written and its alerts (%d critical checks among the recorded) '
               'never sent - look at the job of the missing slice(s)'
               % (run, len(parts), expected or 'its', len(hosts), ', '.join(hosts[:10]) + (' ...' if len(hosts) > 10 else '') or 'none',
                  criticals))
    return ops_checks.make_check(STALE_CHECK, 'critical', len(parts), expected or None, message, alert=ops_report.MONITORING_GAP,
                                 details={'run': run, 'recorded_slices': len(parts), 'expected_slices': expected, 'hosts': hosts})


def remove(path):
    shutil.rmtree(path, ignore_errors=True)
