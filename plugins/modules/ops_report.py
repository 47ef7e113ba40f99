#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ops_report
short_description: Write the report of a runbook run as JSON, Markdown and a self-contained HTML page
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Collects the check results of every host of one runbook run (daily, patching, DR drill, ...) into one report
    and writes it to C(<report_dir>/<runbook>/<YYYYmmddTHHMMSSZ>/) as C(report.json), C(report.md) and C(report.html).
    The directory name is the run's O(started_at) in UTC.
  - Switches the C(<report_dir>/<runbook>/latest) symlink to the new run atomically (a temporary symlink renamed over it),
    then deletes the oldest runs beyond O(keep) (never in check mode).
  - The JSON follows C(docs/report.schema.json); the module validates its output against that schema before writing.
  - Values under secret-looking keys (V(pass), V(secret), V(token), V(key), V(webhook), V(url_with_credentials))
    in O(meta) and in check C(details) are replaced with V(***), and credentials are stripped from URLs everywhere.
  - Fails, after the report is written, when the overall status reaches O(fail_on), so that cron and AWX mark the job failed.
  - "Runs on the controller, once per run (C(delegate_to: localhost), C(run_once: true))."
options:
  runbook:
    description:
      - Name of the runbook, used as a directory name (letters, digits, V(_), V(.), V(-)).
    type: str
    required: true
  report_dir:
    description:
      - Directory that holds the reports of all runbooks. Created when missing.
      - A relative path is relative to the current directory of the controller process; prefer an absolute path.
    type: path
    required: true
  started_at:
    description:
      - When the run started, ISO-8601 (V(2025-01-31T06:00:00Z)); a time without offset is taken as UTC.
      - Names the run's directory, so rendering the same run again overwrites its report.
    type: str
    required: true
  finished_at:
    description:
      - When the run finished, ISO-8601. Defaults to now.
    type: str
  hosts:
    description:
      - Host name to the list of its check results, as built by C(plugins/module_utils/ops_checks.py)
        (C(name), C(status), C(value), C(threshold), C(unit), C(message), C(alert), optional C(details)).
      - A malformed check becomes a critical C(invalid_check); an unknown status becomes critical.
      - A host left without any check (an empty list, and not in O(unreachable) or O(failed)) gets a critical C(results)
        check (alert V(monitoring_gap)), because nothing measured is not fine.
    type: dict
    required: true
  unreachable:
    description:
      - Hosts that could not be reached. Each gets a critical C(reachable) check with alert V(service_down).
    type: list
    elements: str
    default: []
  failed:
    description:
      - Host name to the message of a task that failed on it. Each gets a critical C(runbook_error) check
        (alert V(runbook_error)) carrying the message.
    type: dict
    default: {}
  meta:
    description:
      - Free extra facts shown in the report (fleet size, module executions, inventory name, ...).
      - Values under secret-looking keys are masked.
    type: dict
    default: {}
  keep:
    description:
      - Keep at most this many timestamped runs of this runbook; older ones are deleted.
      - The run C(latest) points to is never deleted.
      - Retention never runs in check mode; RV(pruned) then lists what it would delete.
    type: int
    default: 60
  write_in_check_mode:
    description:
      - In check mode, still write this run's report and switch C(latest) to it (a plan report, for example),
        but never delete anything; retention is skipped and RV(pruned) lists what it would delete.
      - With V(false), check mode writes nothing.
    type: bool
    default: false
  fail_on:
    description:
      - Fail (after writing the report) when the overall status is at least this bad.
      - V(never) only reports.
    type: str
    choices: [critical, warning, never]
    default: critical
attributes:
  check_mode:
    support: full
    description:
      - Deletes nothing. Writes nothing either, unless O(write_in_check_mode=true), which writes the run's own report.
      - Returns the paths, the computed status, summary and problems, and in RV(pruned) what retention would delete.
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: none
    description: Every run writes a report (the same O(started_at) rewrites the same directory) and reports a change.
notes:
  - The module needs nothing beyond the Python standard library on the controller; its schema validator is built in.
  - Run directories other than C(YYYYmmddTHHMMSSZ) names in C(<report_dir>/<runbook>/) are never touched by retention.
seealso:
  - name: Runbook reports
    description: Layout, JSON fields and exit behaviour (docs/reports.md in the collection).
    link: https://example.invalid/dealerscope/ops/docs/reports.md
"""

EXAMPLES = r"""
- name: Write the daily report
  dealerscope.ops.ops_report:
    runbook: daily
    report_dir: /var/lib/dealerscope-ops/reports
    started_at: "{{ ops_daily_started_at }}"
    hosts: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'ops_daily_checks') | list)) }}"
    unreachable: "{{ ansible_play_hosts_all | difference(ansible_play_hosts) }}"
    meta:
      inventory: production
      fleet_size: "{{ ansible_play_hosts_all | length }}"
    fail_on: "{{ ops_report_fail_on | default('critical') }}"
  delegate_to: localhost
  run_once: true
  register: daily_report

- name: Only report, never fail the job
  dealerscope.ops.ops_report:
    runbook: patching
    report_dir: "{{ playbook_dir }}/reports"
    started_at: "2025-01-31T06:00:00Z"
    hosts:
      db1:
        - name: "disk:/var"
          status: warning
          value: 83.1
          threshold: 80
          unit: "%"
          message: /var 83.1 % used (warning at >= 80 %)
          alert: resource_exhaustion
    fail_on: never
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
report_dir:
  description: The run's directory.
  returned: always
  type: str
  sample: /var/lib/dealerscope-ops/reports/daily/20250131T060000Z
paths:
  description: The files written (or that would be written in check mode).
  returned: always
  type: dict
  contains:
    json:
      description: Path of C(report.json).
      type: str
      sample: /var/lib/dealerscope-ops/reports/daily/20250131T060000Z/report.json
    md:
      description: Path of C(report.md).
      type: str
      sample: /var/lib/dealerscope-ops/reports/daily/20250131T060000Z/report.md
    html:
      description: Path of C(report.html).
      type: str
      sample: /var/lib/dealerscope-ops/reports/daily/20250131T060000Z/report.html
    latest:
      description: Path of the C(latest) symlink of the runbook.
      type: str
      sample: /var/lib/dealerscope-ops/reports/daily/latest
status:
  description: Overall status, the worst of all checks.
  returned: always
  type: str
  sample: warning
summary:
  description: Counts over all hosts and checks, as in the report's C(summary).
  returned: always
  type: dict
  sample:
    hosts: 5
    checks: 110
    ok: 108
    warning: 2
    critical: 0
    by_alert:
      resource_exhaustion: 2
    host_status:
      ok: 3
      warning: 2
      critical: 0
problems:
  description: Every non-ok check, worst first.
  returned: always
  type: list
  elements: dict
  sample:
    - host: db1
      name: "disk:/var"
      status: warning
      message: /var 83.1 % used (warning at >= 80 %)
      alert: resource_exhaustion
pruned:
  description:
    - Old run directories deleted by retention.
    - In check mode, the ones retention would delete; nothing is deleted.
  returned: always
  type: list
  elements: str
  sample:
    - /var/lib/dealerscope-ops/reports/daily/20241101T060000Z
written:
  description: Whether the report files were written (false in check mode unless O(write_in_check_mode=true)).
  returned: always
  type: bool
  sample: true
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import (
    FAIL_ON,
    build_report,
    failure_message,
    parse_time,
    plan_paths,
    prune,
    reaches,
    runs_to_prune,
    validate,
    write_report,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            runbook=dict(type='str', required=True),
            report_dir=dict(type='path', required=True),
            started_at=dict(type='str', required=True),
            finished_at=dict(type='str'),
            hosts=dict(type='dict', required=True),
            unreachable=dict(type='list', elements='str', default=[]),
            failed=dict(type='dict', default={}),
            meta=dict(type='dict', default={}),
            keep=dict(type='int', default=60),
            fail_on=dict(type='str', choices=list(FAIL_ON), default='critical'),
            write_in_check_mode=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['keep'] < 1:
        module.fail_json(msg='keep must be at least 1, got %d' % params['keep'])
    try:
        report = build_report(params['runbook'], params['started_at'], params['finished_at'], params['hosts'],
                              unreachable=params['unreachable'], failed=params['failed'], meta=params['meta'])
    except ValueError as exc:
        module.fail_json(msg='invalid input: %s' % exc)
    errors = validate(report)
    if errors:
        module.fail_json(msg='the report does not match its schema (a bug in ops_report): %s' % '; '.join(errors[:10]))

    runbook_dir, run_dir, paths = plan_paths(params['report_dir'], report['runbook'], parse_time(report['started_at']))
    write = not module.check_mode or params['write_in_check_mode']
    try:
        pruned = runs_to_prune(runbook_dir, params['keep'], new_run=os.path.basename(run_dir))
        if write:
            write_report(report, paths, run_dir, runbook_dir)
        if not module.check_mode:  # a check-mode run never deletes anything: retention is only predicted
            prune(pruned)
    except OSError as exc:
        module.fail_json(msg='cannot write the report to %s: %s' % (run_dir, exc), report_dir=run_dir, paths=paths,
                         status=report['status'], summary=report['summary'], problems=report['problems'])

    result = dict(changed=True, report_dir=run_dir, paths=paths, status=report['status'], summary=report['summary'],
                  problems=report['problems'], pruned=pruned, written=write)
    if reaches(report['status'], params['fail_on']):
        location = paths['html'] + ('' if write else ' (check mode: not written)')
        module.fail_json(msg=failure_message(report, params['fail_on'], location), **result)
    if module.check_mode:
        result['msg'] = 'check mode: report %s; retention skipped, it would delete %d old run(s)%s' % (
            'written' if write else 'not written', len(pruned), (': ' + ', '.join(pruned)) if pruned else '')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
