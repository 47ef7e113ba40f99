# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: patch_results
short_description: Turn what a patching run recorded on every host into report checks
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Reads, for each target of a patching run, the plan (the registered M(dealerscope.ops.apt_patch) result
    C(__patching_plan)) and the rollout record (C(__patching_record)) from O(_input) (C(hostvars)), and returns per host
    the check results M(dealerscope.ops.ops_report) expects, the run's alerts and a one-line summary.
  - "Checks per host: C(plan) (what would change), then for a patched host C(upgrade) (packages before and after),
    C(precheck), C(restarts), C(reboot), C(pool) (time out of the load balancer pool) and C(postcheck); a host that failed gets a
    critical C(patch) check (alert V(patch_failed)); a host the rollout never reached a warning C(patch) check
    (alert V(patch_not_reached)) naming where and why the rollout stopped."
  - "A load balancer patched while it was every one of them (C(traffic_interruption) of O(run), allowed by
    C(patching_allow_traffic_interruption)) gets a warning C(traffic) check (alert V(traffic_interrupted)) saying traffic was
    interrupted, and the summary says so; in a plan, the check says the run would interrupt traffic."
options:
  _input:
    description: C(hostvars) (or any mapping of host name to its variables).
    type: dict
    required: true
  run:
    description:
      - The run's shared state set by the role's preflight (C(hostvars.localhost.__patching_run)) - C(targets), C(batches),
        C(mode), C(reboot), C(plan_only), C(window), optional C(refusals) and C(traffic_interruption) (the load balancers a batch
        takes out all at once).
    type: dict
    required: true
  halt:
    description: Why and where the rollout stopped (C(host), C(phase), C(reason)), or V(null) when it did not stop.
    type: dict
    default: null
"""

EXAMPLES = r"""
- name: Checks for the report
  ansible.builtin.set_fact:
    patch_gathered: "{{ hostvars | dealerscope.ops.patch_results(hostvars.localhost.__patching_run, hostvars.localhost.__patching_halt | default(None)) }}"
"""

RETURN = r"""
_value:
  description: The run's results.
  type: dict
  contains:
    hosts:
      description: Host name to its list of checks (dicts as built by C(module_utils/ops_checks.py)).
      type: dict
    unreachable:
      description: Targets whose plan could not be made because they were unreachable.
      type: list
      elements: str
    counts:
      description: C(targets), C(patched), C(failed), C(not_reached), C(nothing_to_do), C(packages) (upgraded), C(reboots).
      type: dict
    apt_seconds:
      description: Sum of the time spent in apt on every host (the floor of the run's duration when hosts go one by one).
      type: float
    summary:
      description: One line for notifications and the job log.
      type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check


def _get(mapping, key, default=None):
    try:
        value = mapping[key]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


def _versions(items, old='current', new='candidate'):
    return ', '.join('%s %s → %s' % (i.get('name'), i.get(old) or '(new)', i.get(new) or '(removed)') for i in items)


def plan_check(plan, refusal=None):
    """The ``plan`` check of one host from its apt_patch result."""
    if _get(plan, 'unreachable'):
        return make_check('plan', 'critical', None, None, 'unreachable: %s' % _get(plan, 'msg', ''), alert='patch_failed')
    if _get(plan, 'failed'):
        return make_check('plan', 'critical', None, None, 'planning failed: %s' % _get(plan, 'msg', ''), alert='patch_failed')
    entries = _get(plan, 'plan', [])
    upgrade = [e for e in entries if e.get('action') == 'upgrade']
    skipped = [e for e in entries if e.get('action') == 'skip']
    parts = ['%d to upgrade (%d security)' % (len(upgrade), sum(1 for e in upgrade if e.get('security')))]
    if upgrade:
        parts.append(_versions(upgrade[:8]) + (', ...' if len(upgrade) > 8 else ''))
    if skipped:
        parts.append('left alone: ' + ', '.join('%s (%s)' % (e['name'], e.get('skip_reason')) for e in skipped[:6]))
    if _get(plan, 'restarts_predicted'):
        parts.append('restarts: ' + ', '.join(plan['restarts_predicted']))
    if _get(plan, 'reboot_predicted'):
        parts.append('a reboot would follow')
    details = {'packages': entries, 'restarts_predicted': _get(plan, 'restarts_predicted', []),
               'reboot_predicted': bool(_get(plan, 'reboot_predicted', False)), 'held': _get(plan, 'held', []),
               'free_mb': _get(plan, 'free_mb')}
    if refusal:
        return make_check('plan', 'critical', len(upgrade), None, 'refused: %s; %s' % (refusal, '; '.join(parts)),
                          alert='patch_failed', unit='packages', details=details)
    return make_check('plan', 'ok', len(upgrade), None, '; '.join(parts), unit='packages', details=details)


def rollout_checks(record):
    """Checks of a host the rollout reached, from its ``__patching_record``."""
    checks = []
    status = record.get('status')
    if status == 'nothing_to_do':
        return [make_check('patch', 'ok', 0, None, 'nothing to upgrade, no reboot pending - untouched')]
    pre = _get(record, 'prechecks', [])
    if pre:
        bad = [c for c in pre if c.get('status') == 'critical']
        checks.append(make_check('precheck', 'critical' if bad else 'ok', len(bad), 0,
                                 ('failed: ' + '; '.join(c.get('message', c.get('name', '?')) for c in bad)) if bad
                                 else '%d check(s) ok before patching (services, failed units, disk)' % len(pre),
                                 details={'checks': pre}))
    upgrades = _get(record, 'upgrades', [])
    if 'upgrades' in record:
        checks.append(make_check('upgrade', 'ok', len(upgrades), None,
                                 '%d package(s) upgraded: %s' % (len(upgrades), _versions(upgrades, 'before', 'after') or '-'),
                                 unit='packages', details={'packages': upgrades, 'apt_seconds': _get(record, 'apt_seconds', 0)}))
        pending = _get(record, 'restart_pending', [])
        restarted = _get(record, 'restarted', [])
        if pending:
            checks.append(make_check('restarts', 'warning', len(pending), 0, 'still using replaced files: %s' % ', '.join(pending),
                                     alert='restart_pending', details={'restarted': restarted, 'pending': pending}))
        else:
            checks.append(make_check('restarts', 'ok', len(restarted), None,
                                     'restarted: %s' % ', '.join(restarted) if restarted else 'no service needed a restart',
                                     details={'restarted': restarted, 'pending': []}))
    if 'rebooted' in record:
        if record.get('rebooted'):
            checks.append(make_check('reboot', 'ok', record.get('reboot_seconds'), None,
                                     'rebooted, back after %s s' % record.get('reboot_seconds'), unit='s'))
        elif record.get('reboot_required'):
            checks.append(make_check('reboot', 'warning', 0, None, 'reboot required but not done (patching_reboot)',
                                     alert='reboot_pending'))
        else:
            checks.append(make_check('reboot', 'ok', 0, None, 'no reboot needed', unit='s'))
    if record.get('drained') and status == 'ok':
        checks.append(make_check('pool', 'ok', record.get('out_of_pool_s'), None,
                                 'out of the load balancer pool %s s (in-flight requests drained in %s s)' % (
                                     record.get('out_of_pool_s'), record.get('drain_wait_s', 0)), unit='s'))
    post = _get(record, 'postchecks', [])
    bad = [c for c in post if c.get('status') == 'critical']
    if post:
        checks.append(make_check('postcheck', 'critical' if bad else 'ok', len(bad), 0,
                                 ('failed: ' + '; '.join(c.get('message', c.get('name', '?')) for c in bad)) if bad
                                 else '%d check(s) ok (services, HTTP within SLA)' % len(post),
                                 alert='patch_failed' if bad else None, details={'checks': post}))
    if status == 'failed':
        aftermath = ('left out of the pool and marked failed' if record.get('drained') else
                     'untouched (failed before any change)' if record.get('phase') == 'precheck' else 'marked failed')
        checks.append(make_check('patch', 'critical', None, None,
                                 'failed at %s (%s): %s - %s' % (
                                     record.get('phase'), record.get('failed_task', '?'), record.get('message', ''), aftermath),
                                 alert='patch_failed', details={'phase': record.get('phase'), 'task': record.get('failed_task')}))
    elif status == 'ok':
        checks.append(make_check('patch', 'ok', None, None, 'patched in %s s' % record.get('duration_s')))
    return checks


def traffic_check(host, record=None, plan=False):
    """The ``traffic`` check of a load balancer that is (or would be) patched while it is every load balancer."""
    if plan:
        return make_check('traffic', 'warning', None, None,
                          'patching %s would interrupt all traffic: it is every load balancer (patching_lb_hosts) of its batch; '
                          'a real run is refused unless patching_allow_traffic_interruption=true' % host, alert='traffic_interrupted')
    how = []
    if record.get('rebooted'):
        how.append('rebooted')
    if _get(record, 'restarted', []):
        how.append('restarted %s' % ', '.join(record['restarted']))
    return make_check('traffic', 'warning', None, None,
                      'traffic was interrupted: %s is every load balancer (patching_lb_hosts) and was patched (%s) with '
                      'patching_allow_traffic_interruption=true' % (host, '; '.join(how) or 'packages upgraded'),
                      alert='traffic_interrupted', details={'rebooted': bool(record.get('rebooted')),
                                                            'restarted': _get(record, 'restarted', [])})


def _touched(record):
    return bool(record) and (record.get('status') == 'ok' or (record.get('status') == 'failed' and record.get('phase') != 'precheck'))


def patch_results(hostvars, run, halt=None):
    if not isinstance(run, dict) or not is_sequence(run.get('targets')):
        raise AnsibleFilterError('patch_results: run must be the role\'s __patching_run (with targets); got %r' % (type(run).__name__,))
    refusals = dict(item.split(': ', 1) for item in run.get('refusals') or [] if ': ' in item)
    lbs_out = [str(host) for host in run.get('traffic_interruption') or []]
    interrupted = []
    hosts, unreachable = {}, []
    counts = dict(targets=len(run['targets']), patched=0, failed=0, not_reached=0, nothing_to_do=0, packages=0, reboots=0)
    apt_seconds = 0.0
    for host in run['targets']:
        hv = _get(hostvars, host, {})
        plan = _get(hv, '__patching_plan', {})
        record = _get(hv, '__patching_record')
        if _get(plan, 'unreachable'):
            unreachable.append(host)
        checks = [plan_check(plan, refusals.get(host))] if plan else []
        if run.get('plan_only') or run.get('refusals'):
            if host in lbs_out:
                checks.append(traffic_check(host, plan=True))
            hosts[host] = checks
            continue
        if record:
            checks.extend(rollout_checks(record))
            if host in lbs_out and _touched(record):
                checks.append(traffic_check(host, record))
                interrupted.append(host)
            status = record.get('status')
            counts['patched'] += status == 'ok'
            counts['failed'] += status == 'failed'
            counts['nothing_to_do'] += status == 'nothing_to_do'
            counts['packages'] += len(_get(record, 'upgrades', []))
            counts['reboots'] += bool(record.get('rebooted'))
            apt_seconds += float(_get(record, 'apt_seconds', 0) or 0)
        else:
            counts['not_reached'] += 1
            why = ('rollout stopped at %s (%s): %s' % (halt.get('host'), halt.get('phase'), halt.get('reason'))
                   if halt else 'the rollout did not reach it')
            checks.append(make_check('patch', 'warning', None, None, 'not patched, untouched - %s' % why, alert='patch_not_reached'))
        hosts[host] = checks
    if run.get('plan_only') or run.get('refusals'):
        planned = sum((c.get('value') or 0) for checks in hosts.values() for c in checks if c['name'] == 'plan')
        summary = 'plan: %d package upgrade(s) on %d host(s)%s' % (
            planned, len(hosts), (' - refused: ' + '; '.join(run['refusals'])) if run.get('refusals') else '')
    else:
        summary = '%d/%d host(s) patched, %d already up to date, %d package(s), %d reboot(s), %d failed, %d not reached%s' % (
            counts['patched'], counts['targets'], counts['nothing_to_do'], counts['packages'], counts['reboots'], counts['failed'],
            counts['not_reached'],
            (' - stopped at %s (%s): %s' % (halt.get('host'), halt.get('phase'), halt.get('reason'))) if halt else '')
        if interrupted:
            summary += ' - traffic interrupted: %s patched while %s every load balancer (patching_allow_traffic_interruption)' % (
                ', '.join(interrupted), 'it was' if len(interrupted) == 1 else 'they were')
    return dict(hosts=hosts, unreachable=unreachable, counts=counts, apt_seconds=round(apt_seconds, 2), summary=summary)


class FilterModule(object):
    def filters(self):
        return {'patch_results': patch_results}
