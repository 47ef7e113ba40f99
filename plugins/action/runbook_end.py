# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ``dealerscope.ops.runbook_end``: the one ending every runbook calls.

Runs in the controller process (no module is sent to any host): results -> report -> notifications ->
report written with the alert delivery as a row -> ``ansible_stats`` (what ``set_stats`` would set) and
the verdict per host. Documentation: plugins/modules/runbook_end.py.
"""

from __future__ import annotations

import datetime
import os
import posixpath
import re
import urllib.parse

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.dealerscope.ops.plugins.module_utils import ops_notify, ops_report
from ansible_collections.dealerscope.ops.plugins.plugin_utils import report_render, report_schema, report_slices

DELIVERY_ROW = 'alert delivery'
SEVERITIES = list(ops_notify.SEVERITIES)

ARGUMENT_SPEC = dict(
    runbook=dict(type='str', required=True),
    started_at=dict(type='str'),
    hosts=dict(type='dict', default={}),
    failed=dict(type='dict', default={}),
    unreachable=dict(type='list', elements='str', default=[]),
    meta=dict(type='dict', default={}),
    report_dir=dict(type='path', required=True),
    report_keep=dict(type='int', default=60),
    report_templates=dict(type='path'),
    report_base_url=dict(type='str', default=''),
    write_in_check_mode=dict(type='bool', default=False),
    channels=dict(
        type='list', elements='dict', default=[],
        options=dict(
            name=dict(type='str', required=True),
            kind=dict(type='str', required=True, choices=list(ops_notify.CHANNEL_KINDS)),
            url=dict(type='str', required=True, no_log=True),
            routing_key=dict(type='str', no_log=True),
            severities=dict(type='list', elements='str', choices=SEVERITIES, default=[]),
            team=dict(type='bool', default=False),
        ),
    ),
    notify_state_dir=dict(type='path'),
    severity_map=dict(type='dict', default={}),
    flush=dict(type='str', choices=list(ops_notify.FLUSH_MODES), default='auto'),
    repeat_after_hours=dict(type='int', default=24),
    status_summary=dict(type='str', default=''),
    delivery_checks=dict(type='list', elements='dict', default=[]),
    events=dict(type='list', elements='dict', default=[]),
    fail_on=dict(type='str', choices=list(ops_report.FAIL_ON), default='critical'),
    stats=dict(type='dict', default={}),
    slices=dict(type='int', default=1),
    slice_run=dict(type='str', default=''),
    slice_stale_hours=dict(type='int', default=6),
    validate_only=dict(type='bool', default=False),
)

# Variables AWX/Tower sets on every job (both prefixes exist); recorded in the report's meta when present.
JOB_VARS = (('id', ('awx_job_id', 'tower_job_id')),
            ('template', ('awx_job_template_name', 'tower_job_template_name')),
            ('launched_by', ('awx_user_name', 'tower_user_name')),
            ('workflow_job_id', ('awx_workflow_job_id', 'tower_workflow_job_id')),
            ('schedule', ('awx_schedule_name', 'tower_schedule_name')))
# What the slices of one AWX sliced job share: the workflow job AWX runs them in.
SLICE_RUN_VARS = ('awx_workflow_job_id', 'tower_workflow_job_id')


def job_meta(task_vars):
    """The AWX/Tower job that runs this (id, template, launching user, workflow, schedule), when there is one."""
    job = {}
    for key, names in JOB_VARS:
        for name in names:
            value = task_vars.get(name)
            if value not in (None, ''):
                job[key] = value if isinstance(value, int) else str(value)
                break
    return job


def report_link(base_url, paths, report_dir):
    """What people open: ``base_url`` + the report's path below ``report_dir``, else the file's path."""
    if not base_url:
        return paths['html']
    relative = os.path.relpath(paths['html'], report_dir).replace(os.sep, '/')
    return base_url.rstrip('/') + '/' + urllib.parse.quote(posixpath.normpath(relative))


def slice_run(args, task_vars):
    """The id the slices of one sliced run share (``slice_run``, else AWX's workflow job), or None when not sliced."""
    if args['slices'] < 1:
        raise AnsibleActionFail('slices must be at least 1, got %d' % args['slices'])
    if args['slice_stale_hours'] < 1:
        raise AnsibleActionFail('slice_stale_hours must be at least 1, got %d' % args['slice_stale_hours'])
    if args['slices'] == 1:
        return None
    run = args['slice_run'] or next((str(task_vars[name]) for name in SLICE_RUN_VARS if task_vars.get(name) not in (None, '')), '')
    if not run:
        raise AnsibleActionFail(
            'slices is %d but this run has no sliced-run id: AWX gives the slices of a sliced job one workflow job '
            '(awx_workflow_job_id); elsewhere set runbook_end_slice_run to one id all %d slices share, and new for '
            'every run' % (args['slices'], args['slices']))
    try:
        return report_slices.check_run_id(run)
    except ValueError as exc:
        raise AnsibleActionFail(str(exc))


def run_outcome(runbook, report, url, failed_hosts, run_problems, unreachable, check_mode, stats, progress=None):
    """What is set as stats for AWX workflows: the report's status and counts, the link, who failed, a slice's progress."""
    outcome = {
        'runbook': runbook,
        'status': report['status'],
        'hosts': report['summary']['hosts'],
        'ok': report['summary']['ok'],
        'warning': report['summary']['warning'],
        'critical': report['summary']['critical'],
        'report_url': url,
        'failed_hosts': failed_hosts,
        'unreachable_hosts': sorted(unreachable),
        'run_failures': sorted(set(problem['host'] for problem in run_problems)),
        'check_mode': check_mode,
    }
    if progress:
        outcome['slice'] = progress
    outcome.update(stats)
    return outcome


def default_summary(runbook, report):
    summary = report['summary']
    worst = [problem['message'] for problem in report['problems'][:3]]
    return 'DealerScope %s: %s - %d hosts, %d ok, %d warning, %d critical%s' % (
        runbook, report['status'].upper(), summary['hosts'], summary['ok'], summary['warning'], summary['critical'],
        (' - worst: ' + '; '.join(worst)) if worst else '')


def verdict(report, fail_on, play_hosts):
    """Hosts whose own rows reach ``fail_on``, and the problems of rows that are no host (service, alert delivery)."""
    failed_hosts = [host for host, entry in report['hosts'].items()
                    if host in play_hosts and ops_report.reaches(entry['status'], fail_on)]
    run_problems = [problem for problem in report['problems']
                    if problem['host'] not in play_hosts and ops_report.reaches(problem['status'], fail_on)]
    return failed_hosts, run_problems


def writable_problem(path):
    """Why ``path`` (a directory, created when missing) cannot be written, or None."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return '%s is not a directory' % probe
    if not os.access(probe, os.W_OK | os.X_OK):
        return '%s is not writable by uid %d' % (probe, os.getuid()) if probe == path else \
            '%s does not exist and %s is not writable by uid %d' % (path, probe, os.getuid())
    return None


def summary_message(runbook, report, url, written, check_mode, pruned):
    """One line for the job log: status, report link, what check mode did not do, and a failed alert delivery."""
    text = '%s: %s - report %s' % (runbook, report['status'].upper(), url)
    if check_mode:
        text += (' (check mode: retention would delete %d old run(s), nothing was deleted)' if written
                 else ' (check mode: not written; retention would delete %d old run(s))') % len(pruned)
    undelivered = [check['message'] for check in report['hosts'].get(DELIVERY_ROW, {}).get('checks', []) if check['status'] != 'ok']
    if undelivered:
        text += ' - ALERT DELIVERY FAILED: ' + '; '.join(undelivered)
    return text


def run_events(events):
    """The run's events (``deployment_complete``, ...) as alerts for the notification run.

    An event is news, not a problem: it never changes the report's status, and it is routed by its alert class's
    severity like an alert (``deployment_complete`` is low: the channels taking low, or the weekly summary). Its
    name should be unique per occurrence (the deduplication key is alert class + host + name).
    """
    alerts = []
    for index, event in enumerate(events):
        missing = [key for key in ('name', 'alert', 'message') if not event.get(key) or not isinstance(event.get(key), str)]
        if missing:
            raise ValueError('events[%d] needs %s (strings)' % (index, ', '.join(missing)))
        alerts.append(dict(host=event.get('host') or 'fleet', name=event['name'], status='warning',
                           message=event['message'], alert=event['alert']))
    return alerts


def stats_key(runbook, progress=None):
    """The stats key of a run's outcome. A slice that does not complete its run sets a key of its own: AWX merges the
    artifacts of a sliced job's jobs key by key, the last job to finish winning, so the run's key must come only from
    the slice that merged the run, whichever slice finishes last."""
    key = 'dealerscope_' + re.sub(r'[^A-Za-z0-9_]', '_', runbook)
    return key if progress is None else '%s_slice_%d' % (key, progress['recorded'])


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        check_mode = bool(self._task.check_mode)
        if args['report_keep'] < 1:
            raise AnsibleActionFail('report_keep must be at least 1, got %d' % args['report_keep'])
        if args['channels'] and not args['notify_state_dir']:
            raise AnsibleActionFail('notify_state_dir is required when channels are given: it holds what was sent '
                                    '(deduplication), the digest queues and the retry queue')
        severity_map = dict(ops_notify.DEFAULT_SEVERITY_MAP, **args['severity_map'])
        try:
            ops_notify.validate_severity_map(severity_map)
            ops_notify.validate_bounds({'repeat_after_hours': args['repeat_after_hours']})
            ops_notify.validate_channels(args['channels'])
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        if args['report_templates'] and not os.path.isdir(args['report_templates']):
            raise AnsibleActionFail('report_templates %s is not a directory (it holds report.html.j2 and/or report.md.j2 '
                                    'overriding the built-in templates)' % args['report_templates'])

        runbook = args['runbook']
        if not re.match(ops_report.RUNBOOK_PATTERN, runbook):
            raise AnsibleActionFail('runbook %r is not a name (letters, digits, _, ., - ; it names a directory)' % runbook)
        report_dir = os.path.realpath(args['report_dir'])
        run = slice_run(args, task_vars)
        if args['validate_only']:
            return self._validate_only(result, args, report_dir)
        if not args['started_at']:
            raise AnsibleActionFail('started_at is required (when the run started, ISO-8601)')
        meta = dict(args['meta'])
        job = job_meta(task_vars)
        if job:
            meta['job'] = job
        play_hosts = list(task_vars.get('ansible_play_hosts_all') or [])
        write = not check_mode or args['write_in_check_mode']
        inputs = dict(started_at=args['started_at'], hosts=dict(args['hosts']), failed=dict(args['failed']),
                      unreachable=list(args['unreachable']), meta=meta, events=list(args['events']),
                      delivery_checks=list(args['delivery_checks']))

        # 0. A slice of a sliced run records its results; the slice that completes the set merges them and goes on
        #    as the whole run (one report, one set of alerts). The others end here with their own hosts' verdict.
        slice_state = None
        if run:
            own = self._checked_report(runbook, inputs, args['report_templates'])
            if not check_mode:  # check mode records nothing: each slice predicts for its own hosts
                slice_state, parts = self._record_slice(runbook, run, args['slices'], report_dir, play_hosts, job, inputs)
                if not slice_state['progress']['merged']:
                    return self._partial(result, args, runbook, own, slice_state, play_hosts, report_dir)
                inputs = report_slices.merge_parts(parts)
                play_hosts = sorted(set(play_hosts) | set(inputs.pop('play_hosts')))
                jobs = inputs.pop('jobs')
                inputs['meta'].pop('job', None)
                if job:
                    inputs['meta']['job'] = job
                inputs['meta']['slices'] = dict(run=run, count=args['slices'], jobs=[entry.get('id') for entry in jobs if entry.get('id')])

        # A sliced run that never completed (a slice died before its ending) is a failed row of this run.
        stale = self._stale_slices(report_dir, runbook, run, args['slice_stale_hours'])
        for stale_run, dummy, stale_parts in stale:
            inputs['hosts']['sliced run %s' % stale_run] = [report_slices.stale_check(stale_run, stale_parts)]

        # 1. The report as it stands before any notification; rendered once so that a broken template or an
        #    invalid input fails here, before anyone is notified and before anything is written.
        first = self._checked_report(runbook, inputs, args['report_templates'])
        dummy, run_dir, paths = ops_report.plan_paths(report_dir, first['runbook'], ops_report.parse_time(first['started_at']))
        url = report_link(args['report_base_url'], paths, report_dir)

        # 2. Notifications: a failed delivery, or a run that could not be processed, is a row of the report.
        hosts = dict(inputs['hosts'])
        failed = dict(inputs['failed'])
        delivery = list(inputs['delivery_checks'])
        notify = None
        try:
            events = run_events(inputs['events'])
        except ValueError as exc:
            raise AnsibleActionFail('events: %s' % exc)
        if args['channels']:
            try:
                notify, warnings = ops_notify.notify_once(
                    first['problems'] + events, args['channels'], args['notify_state_dir'], runbook, check_mode=check_mode,
                    severity_map=severity_map, flush=args['flush'], repeat_after_hours=args['repeat_after_hours'],
                    status_summary=args['status_summary'] or default_summary(runbook, first), report_url=url)
                delivery.extend(notify['checks'])
                result.setdefault('warnings', []).extend(warnings)
            except ops_notify.NotifyError as exc:
                failed[DELIVERY_ROW] = 'notifications could not be processed: %s' % exc
            except ValueError as exc:  # validated above; kept so that nothing passes for a delivered alert
                raise AnsibleActionFail(str(exc))
        if delivery:
            hosts[DELIVERY_ROW] = delivery

        # 3. The report, alert delivery included, written (JSON, Markdown, HTML) and old runs pruned.
        report = ops_report.build_report(runbook, inputs['started_at'], None, hosts, unreachable=inputs['unreachable'],
                                         failed=failed, meta=inputs['meta'])
        self._validated(report)
        rendered = report_render.render_all(report, args['report_templates'])
        try:
            pruned = ops_report.runs_to_prune(os.path.dirname(run_dir), args['report_keep'], new_run=os.path.basename(run_dir))
            if write:
                ops_report.write_report(report, paths, run_dir, os.path.dirname(run_dir), rendered)
            if not check_mode:  # check mode never deletes: retention is only predicted
                ops_report.prune(pruned)
                for dummy, stale_dir, dummy_parts in stale:
                    report_slices.remove(stale_dir)
                if slice_state:
                    report_slices.remove(slice_state['dir'])
        except OSError as exc:
            raise AnsibleActionFail('cannot write the %s report to %s: %s' % (runbook, run_dir, exc))

        # 4. The outcome: hosts that fail, the run's own failures, and the stats AWX workflows branch on.
        failed_hosts, run_problems = verdict(report, args['fail_on'], play_hosts)
        outcome = run_outcome(runbook, report, url, failed_hosts, run_problems, inputs['unreachable'], check_mode, args['stats'],
                              progress=slice_state['progress'] if slice_state else None)
        result.update(
            changed=True,
            status=report['status'],
            summary=report['summary'],
            problems=report['problems'],
            report_dir=run_dir,
            paths=paths,
            report_url=url,
            written=write,
            pruned=pruned,
            delivery=delivery,
            sent=len(notify['sent']) if notify else 0,
            failed_hosts=failed_hosts,
            run_problems=run_problems,
            fail_on=args['fail_on'],
            outcome=outcome,
            ansible_stats={'data': {stats_key(runbook): outcome}, 'per_host': False, 'aggregate': False},
            msg=summary_message(runbook, report, url, write, check_mode, pruned),
        )
        return result

    def _checked_report(self, runbook, inputs, templates):
        """The report of ``inputs`` as it stands, validated and rendered once (a bad input or template fails here)."""
        try:
            report = ops_report.build_report(runbook, inputs['started_at'], None, inputs['hosts'], unreachable=inputs['unreachable'],
                                             failed=inputs['failed'], meta=inputs['meta'])
        except ValueError as exc:
            raise AnsibleActionFail('invalid input: %s' % exc)
        self._validated(report)
        report_render.render_all(report, templates)
        return report

    @staticmethod
    def _record_slice(runbook, run, slices, report_dir, play_hosts, job, inputs):
        """Record this slice's results under the run's directory (locked: slices end at the same moment); the
        parts recorded so far, and whether this slice completed the set (then it merges)."""
        root = report_slices.slices_root(report_dir, runbook)
        run_dir = os.path.join(root, run)
        part = report_slices.make_part(runbook, run, slices, inputs['started_at'], play_hosts, job, inputs)
        try:
            with ops_notify.state_lock(root):
                report_slices.write_part(run_dir, part)
                parts = report_slices.read_parts(run_dir)
        except (OSError, ops_notify.NotifyError, ValueError) as exc:
            raise AnsibleActionFail('cannot record the results of this slice of %s run %s under %s: %s' % (runbook, run, run_dir, exc))
        recorded = len(parts)
        if recorded > slices:
            raise AnsibleActionFail('%s run %s: %d slices recorded results under %s, but slices is %d - every slice of a run '
                                    'must be given the same slices (the job template\'s job_slice_count)'
                                    % (runbook, run, recorded, run_dir, slices))
        progress = dict(run=run, recorded=recorded, of=slices, merged=recorded == slices)
        return dict(dir=run_dir, progress=progress), parts

    @staticmethod
    def _stale_slices(report_dir, runbook, run, stale_hours):
        root = report_slices.slices_root(report_dir, runbook)
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            return report_slices.stale_runs(root, run, now, stale_hours)
        except OSError as exc:
            raise AnsibleActionFail('cannot look for unfinished sliced runs under %s: %s' % (root, exc))

    @staticmethod
    def _partial(result, args, runbook, own, slice_state, play_hosts, report_dir):
        """A slice that did not complete its run: its own hosts' verdict, no report and no alert (the last slice
        sends them for the whole run), and stats that say so."""
        failed_hosts, run_problems = verdict(own, args['fail_on'], play_hosts)
        url = report_link(args['report_base_url'], {'html': os.path.join(report_dir, runbook, ops_report.LATEST, 'report.html')}, report_dir)
        progress = slice_state['progress']
        outcome = run_outcome(runbook, own, url, failed_hosts, run_problems, args['unreachable'], False, args['stats'], progress=progress)
        result.update(
            changed=True, status=own['status'], summary=own['summary'], problems=own['problems'], report_dir='',
            paths={}, report_url=url, written=False, pruned=[], delivery=[], sent=0, failed_hosts=failed_hosts,
            run_problems=run_problems, fail_on=args['fail_on'], outcome=outcome, slice=progress,
            ansible_stats={'data': {stats_key(runbook, progress): outcome}, 'per_host': False, 'aggregate': False},
            msg='%s: slice %d of %d of run %s recorded (%s for its %d hosts); the slice that completes the run writes the '
                'report %s and sends the alerts' % (runbook, progress['recorded'], progress['of'], progress['run'],
                                                    own['status'].upper(), len(play_hosts), url))
        return result

    @staticmethod
    def _validate_only(result, args, report_dir):
        """The preflight of a runbook: the ending's inputs are usable (templates render, directories writable)."""
        sample = ops_report.build_report(args['runbook'], '2025-01-31T06:00:00Z', '2025-01-31T06:01:00Z',
                                         {'sample-host': [{'name': 'sample', 'status': 'warning', 'value': 1, 'threshold': 0,
                                                           'message': 'template check', 'alert': 'monitoring_gap'}]})
        report_render.render_all(sample, args['report_templates'])
        locations = [('report_dir', report_dir)]
        if args['channels']:
            locations.append(('notify_state_dir', os.path.realpath(args['notify_state_dir'])))
        for option, path in locations:
            problem = writable_problem(path)
            if problem:
                raise AnsibleActionFail('%s %s cannot hold the %s run\'s files: %s' % (option, path, args['runbook'], problem))
        result.update(changed=False, msg='%s: the ending\'s inputs are valid (templates render, %s writable)'
                      % (args['runbook'], ' and '.join(option for option, dummy in locations)))
        return result

    @staticmethod
    def _validated(report):
        try:
            errors = report_schema.validate(report)
        except AnsibleError as exc:
            raise AnsibleActionFail(str(exc))
        if errors:
            raise AnsibleActionFail('the report does not match its schema (a bug in dealerscope.ops): %s' % '; '.join(errors[:10]))
