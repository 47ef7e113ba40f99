#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runbook_end
short_description: End a runbook run - report, notifications, outcome for AWX, verdict per host
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - The one ending every runbook of the collection calls (through the P(dealerscope.ops.runbook_end#role) role). In order, 1 to 5.
  - 1. The check results of every host become one report (JSON, Markdown, HTML).
  - 2. The report's problems are routed as alerts (pager, Slack, team webhooks, digests, a status summary; see
    M(dealerscope.ops.ops_notify)); a delivery that fails, or a notification run that cannot be processed, becomes the
    C(alert delivery) row of the report, never silent.
  - 3. The report, alert delivery included, is written to C(<report_dir>/<runbook>/<YYYYmmddTHHMMSSZ>/) and C(latest)
    switched to it atomically; runs beyond O(report_keep) are deleted (never in check mode).
  - 4. RV(outcome) is returned as C(ansible_stats) (exactly what M(ansible.builtin.set_stats) sets, not per host), under the
    key C(dealerscope_<runbook>), so AWX workflow nodes and C(ansible-runner) artifacts see the status, counts, report link
    and failed hosts.
  - 5. RV(failed_hosts) names the hosts whose own rows reach O(fail_on) and RV(run_problems) the problems of rows that are no
    host (the service through the load balancer, alert delivery); the role fails exactly those hosts, so AWX's host summary
    and "relaunch on failed hosts" are right.
  - "Runs in the controller process (an action plugin) - nothing is sent to the managed hosts, no C(delegate_to) is needed.
    Use it with C(run_once: true)."
  - The HTML and Markdown render from Jinja2 templates (C(report.html.j2), C(report.md.j2)); O(report_templates) names a
    directory whose templates replace the built-in ones (C(roles/runbook_end/templates/) of the collection).
  - The JSON is validated against C(docs/report.schema.json) with C(jsonschema) before anything is written.
  - When AWX/Tower runs the job (C(awx_job_id) or C(tower_job_id) set), the report's meta records the job id, template,
    launching user, workflow job and schedule.
options:
  runbook:
    description: Name of the runbook, used as a directory name (letters, digits, V(_), V(.), V(-)).
    type: str
    required: true
  started_at:
    description: When the run started, ISO-8601 (V(2025-01-31T06:00:00Z)); names the run's directory. Required unless O(validate_only=true).
    type: str
  hosts:
    description:
      - Row name (a host, or a fleet-level row such as the service through the load balancer) to the list of its check
        results (C(name), C(status), C(value), C(threshold), C(unit), C(message), C(alert), optional C(details)).
      - A host left without any check gets a critical C(results) check (alert V(monitoring_gap)).
    type: dict
    default: {}
  failed:
    description: Row name to the message of a task that failed on it; each becomes a critical C(runbook_error) check.
    type: dict
    default: {}
  unreachable:
    description: Hosts that could not be reached; each gets a critical C(reachable) check (alert V(service_down)).
    type: list
    elements: str
    default: []
  meta:
    description: Extra facts shown in the report; values under secret-looking keys are masked.
    type: dict
    default: {}
  report_dir:
    description: Directory on the controller that holds the reports of all runbooks. Created when missing.
    type: path
    required: true
  report_keep:
    description: Timestamped runs of this runbook to keep; the run C(latest) points to is never deleted.
    type: int
    default: 60
  report_templates:
    description:
      - Directory holding C(report.html.j2) and/or C(report.md.j2) that replace the built-in templates (a missing file
        falls back to the built-in one). The templates receive C(report) (the JSON document) and the filters C(badge),
        C(md), C(format_value), C(format_duration) and the function C(matrix_columns).
      - A template error fails the task before any notification is sent or any file is written, naming the file and line.
    type: path
  report_base_url:
    description:
      - Base URL under which O(report_dir) is served (a web server, an object store); RV(report_url) is this URL plus the
        report's path below O(report_dir). Empty means the HTML file's path on the controller.
    type: str
    default: ''
  write_in_check_mode:
    description: In check mode, still write this run's report (a plan report); nothing is ever deleted in check mode.
    type: bool
    default: false
  channels:
    description:
      - Notification channels, as in M(dealerscope.ops.ops_notify) (O(channels[].url) and O(channels[].routing_key) are
        secrets and never returned). Empty means no notification.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the channel (unique).
        type: str
        required: true
      kind:
        description: Kind of endpoint.
        type: str
        required: true
        choices: [slack, pager, webhook]
      url:
        description: Endpoint URL (secret).
        type: str
        required: true
      routing_key:
        description: PagerDuty Events v2 routing key (secret).
        type: str
      severities:
        description: Severities sent to this channel at once.
        type: list
        elements: str
        choices: [critical, high, medium, low]
        default: []
      team:
        description: This channel gets the status summary and the medium/low digests.
        type: bool
        default: false
  notify_state_dir:
    description: Directory of the notification ledger (deduplication, digest queues, retry queue); required with O(channels).
    type: path
  severity_map:
    description:
      - Alert class to severity, merged over the collection's map (the one map, C(DEFAULT_SEVERITY_MAP) in
        C(plugins/module_utils/ops_notify.py)).
    type: dict
    default: {}
  flush:
    description: When the medium/low digests go out (V(auto) by their period, V(now), V(never)).
    type: str
    choices: [auto, now, never]
    default: auto
  repeat_after_hours:
    description: An alert still raised is sent again after this many hours (V(0) sends it on every run).
    type: int
    default: 24
  status_summary:
    description: Text of the status summary to the team channels; empty builds it from the report (status, counts, worst problems).
    type: str
    default: ''
  delivery_checks:
    description: Checks of earlier deliveries of this run (for example a rollout-start notification), added to the C(alert delivery) row.
    type: list
    elements: dict
    default: []
  events:
    description:
      - Events of the run, sent like alerts but never a problem of the report (for example C(deployment_complete) after
        a deploy). Each has C(name) (unique per occurrence, for example the version and the start of the run), C(alert)
        (its class, which the severity map routes - C(deployment_complete) is V(low)), C(message), and optionally C(host)
        (default V(fleet)). Nothing is sent without O(channels).
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
  fail_on:
    description: Rows whose status reaches this fail (the host, or for a row that is no host, the run); V(never) only reports.
    type: str
    choices: [critical, warning, never]
    default: critical
  stats:
    description: Extra keys of this runbook's RV(outcome) (for example the hosts a stopped rollout never reached).
    type: dict
    default: {}
  slices:
    description:
      - How many slices the run is split into (AWX job slicing - the job template's C(job_slice_count)). Above V(1), each
        slice records its results under O(report_dir)C(/<runbook>/.slices/<run>/) (mode 0600) and ends with its own hosts'
        verdict; the slice that completes the set merges all of them into the one report of the run, sends the one set
        of alerts and returns the run's outcome (stats key C(dealerscope_<runbook>)). A slice that does not complete the
        set sets its own outcome under C(dealerscope_<runbook>_slice_<n>) (n its place in the recording order), because AWX
        merges a sliced job's artifacts key by key with the last job to finish winning, so the run's key is only ever
        the merged one. Rows several slices report (a check every slice runs once, such as the
        service through the load balancer) merge into one, the worst result kept. O(report_dir) must be shared by the
        slices (a volume every execution node mounts), as it is between runs.
      - In check mode nothing is recorded; each slice predicts for its own hosts.
    type: int
    default: 1
    version_added: 0.2.0
  slice_run:
    description:
      - The id the slices of one run share, new for every run. Empty takes AWX's C(awx_workflow_job_id) (the workflow job
        AWX runs a sliced job's slices in); required with O(slices) above V(1) when the run is not an AWX job.
    type: str
    default: ''
    version_added: 0.2.0
  slice_stale_hours:
    description:
      - A sliced run whose newest recorded slice is older than this and that is still incomplete (a slice died before
        its ending) becomes a critical C(slices) row (alert V(monitoring_gap)) of the next run of the runbook, sliced or
        not, which then removes its records (never in check mode).
    type: int
    default: 6
    version_added: 0.2.0
  validate_only:
    description:
      - Only check that the ending can work - channels, severity map, templates (a sample report is rendered),
        O(report_dir) and O(notify_state_dir) writable or creatable - and change nothing. A runbook's preflight calls
        this before any host is contacted. Returns only C(msg) and C(changed=false).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - Sends nothing, saves no notification state and deletes nothing; writes the report only with O(write_in_check_mode=true).
        RV(delivery) says what would be delivered and RV(pruned) what retention would delete.
  diff_mode:
    support: none
    description: Reports are new files each run; no diff is returned.
  idempotent:
    support: none
    description: Every run writes a report and reports a change (check mode predicts the same).
  action:
    support: full
    description: Runs on the controller.
notes:
  - Needs C(jinja2) and C(jsonschema) on the controller (both come with C(ansible-core) installs that follow the
    collection's requirements).
seealso:
  - module: dealerscope.ops.ops_notify
"""

EXAMPLES = r"""
- name: Runbook ending
  dealerscope.ops.runbook_end:
    runbook: daily
    started_at: "{{ daily_started_at }}"
    hosts: "{{ results.hosts }}"
    unreachable: "{{ results.unreachable }}"
    report_dir: /var/lib/dealerscope-ops/reports
    report_base_url: https://ops.example.com/reports
    channels: "{{ ops_channels }}"
    notify_state_dir: /var/lib/dealerscope-ops/notify
  run_once: true
  register: ending

- name: The hosts whose checks failed fail (AWX host summary, relaunch on failed hosts)
  ansible.builtin.fail:
    msg: "{{ ending.problems | selectattr('host', 'equalto', inventory_hostname) | map(attribute='message') | join('; ') }}"
  when: inventory_hostname in ending.failed_hosts
"""

RETURN = r"""
status:
  description: Overall status, the worst of all checks.
  returned: always
  type: str
  sample: warning
summary:
  description: Counts over all rows and checks.
  returned: always
  type: dict
  sample: {hosts: 5, checks: 110, ok: 108, warning: 2, critical: 0, by_alert: {resource_exhaustion: 2},
           host_status: {ok: 3, warning: 2, critical: 0}}
problems:
  description: Every non-ok check (C(host), C(name), C(status), C(message), C(alert)), worst first.
  returned: always
  type: list
  elements: dict
report_dir:
  description: The run's directory.
  returned: always
  type: str
  sample: /var/lib/dealerscope-ops/reports/daily/20250131T060000Z
paths:
  description: Paths of C(json), C(md), C(html) and the C(latest) link.
  returned: always
  type: dict
report_url:
  description: The link people open (O(report_base_url) plus the path, else the HTML file's path).
  returned: always
  type: str
  sample: https://ops.example.com/reports/daily/20250131T060000Z/report.html
written:
  description: Whether the report files were written.
  returned: always
  type: bool
pruned:
  description: Old runs deleted by retention (in check mode, the ones it would delete).
  returned: always
  type: list
  elements: str
delivery:
  description: The C(alert delivery) checks (earlier deliveries and this run's C(notify:delivery)).
  returned: always
  type: list
  elements: dict
sent:
  description: Number of messages delivered (would be delivered in check mode).
  returned: always
  type: int
failed_hosts:
  description: Hosts of the play whose own rows reach O(fail_on).
  returned: always
  type: list
  elements: str
run_problems:
  description: Problems of rows that are no host of the play (service, alert delivery) that reach O(fail_on).
  returned: always
  type: list
  elements: dict
fail_on:
  description: The O(fail_on) used.
  returned: always
  type: str
outcome:
  description: What is set as stats (key C(dealerscope_<runbook>)) for AWX workflows and ansible-runner artifacts.
  returned: always
  type: dict
  sample: {runbook: daily, status: critical, hosts: 6, ok: 104, warning: 1, critical: 2, report_url: /r/daily/20250131T060000Z/report.html,
           failed_hosts: [db1], unreachable_hosts: [], run_failures: [], check_mode: false}
slice:
  description:
    - With O(slices) above V(1), outside check mode, for a slice that did not complete its run - C(run), C(recorded) (slices
      recorded so far), C(of) and C(merged=false); the report, alerts and RV(report_dir) come from the slice that completes
      it (C(slice) in RV(outcome) then has C(merged=true)). RV(report_url) is then the runbook's C(latest) report.
  returned: when a slice's results were recorded and the run is not complete yet
  type: dict
  sample: {run: '4711', recorded: 1, of: 3, merged: false}
  version_added: 0.2.0
"""
