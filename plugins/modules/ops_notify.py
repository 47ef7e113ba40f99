#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ops_notify
short_description: Route runbook alerts to Slack, pager and webhook channels by severity, with digests and deduplication
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Sends the alerts of a runbook run to notification channels according to their severity, following the alerting
    strategy of the DealerScope readiness document.
  - V(critical) alerts go immediately to every channel whose O(channels[].severities) lists V(critical) (typically the
    pager and Slack); V(high) alerts go immediately to the channels listing V(high).
  - V(medium) alerts are queued and sent as one daily digest to the O(channels[].team) channels;
    V(low) alerts likewise as a weekly summary.
  - The same alert (alert class + host + check) is not sent twice to the same channel within O(repeat_after_hours).
    An alert that is no longer raised is forgotten, so that a new occurrence is sent again.
  - When O(status_summary) is set it is posted to every team channel on every run.
  - Runs on the controller, once per runbook run (C(delegate_to=localhost), C(run_once=true)).
    The state (dedupe ledger, digest queues, last flush times) lives in O(state_dir).
  - A failed delivery does not fail the task (unless O(fail_on_delivery_error)); it is reported in RV(failed_deliveries)
    and as the C(notify:delivery) check in RV(checks), and the alert is not recorded as sent but kept in the retry queue,
    so the next runs send it again until it is delivered (see O(retry_max_hours)).
    The check is V(critical) when a pager channel or a critical alert was not delivered (alerting is not functional),
    V(warning) for any other failed delivery. Runbooks put it in their report, so the run's status reflects it.
options:
  alerts:
    description:
      - The alerts of this run, typically the non-ok checks of a report with the host added.
      - Each item has C(host), C(check) (C(name) is accepted too, as in check results), C(alert) (the alert class;
        the check name when empty), C(status) (V(ok), V(warning) or V(critical); V(ok) items are ignored),
        C(message) and optionally C(severity) (V(critical), V(high), V(medium) or V(low)) to override the
        O(severity_map). Other keys are ignored.
    type: list
    elements: dict
    default: []
  severity_map:
    description:
      - Severity of alert classes, merged over the collection's one map (C(DEFAULT_SEVERITY_MAP) in
        C(plugins/module_utils/ops_notify.py), listed in C(docs/notifications.md)); give only the classes to change.
      - An alert class that is in neither gets V(critical) when its status is V(critical), else V(medium).
      - Valid severities are V(critical), V(high), V(medium) and V(low).
    type: dict
    default: {}
  channels:
    description:
      - The notification channels. Names identify channels in the state and in the results; URLs never appear there.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Unique name of the channel. Must not start with C(@).
        type: str
        required: true
      kind:
        description:
          - V(slack) and V(webhook) receive a Slack-style JSON body with a single C(text) key (Slack and Mattermost
            incoming webhooks accept it).
          - V(pager) receives one PagerDuty-Events-v2-like trigger event per alert (C(event_action), C(dedup_key),
            C(payload.summary), C(payload.severity), C(payload.source)).
        type: str
        required: true
        choices: [slack, pager, webhook]
      url:
        description:
          - The webhook URL the JSON body is POSTed to. It is a secret and never returned.
        type: str
        required: true
      routing_key:
        description:
          - PagerDuty integration (routing) key, added to the body of every V(pager) event as C(routing_key) when set.
          - Required when a V(pager) channel's URL is a PagerDuty host (C(events.pagerduty.com)), which rejects events without one.
          - A secret, never returned.
        type: str
      severities:
        description:
          - Severities sent to this channel immediately, for example V([critical]) for the pager and
            V([critical, high]) for Slack.
        type: list
        elements: str
        choices: [critical, high, medium, low]
        default: []
      team:
        description:
          - Whether the channel is a team channel, which receives the status summary and the digests.
        type: bool
        default: false
  state_dir:
    description:
      - Controller directory holding the state files C(sent.json), C(digest-medium.jsonl), C(digest-low.jsonl),
        C(last-flush.json) and C(retry.json). Created with mode C(0700) when missing. Files are written atomically.
    type: path
    required: true
  repeat_after_hours:
    description:
      - The same alert is not sent again to the same channel (or queued again for the same digest) within this many hours.
      - V(0) disables the deduplication.
    type: int
    default: 24
  digest_daily_hours:
    description:
      - Period of the V(medium) digest, in hours.
    type: int
    default: 24
  digest_weekly_days:
    description:
      - Period of the V(low) summary, in days.
    type: int
    default: 7
  retry_max_hours:
    description:
      - An immediate alert whose delivery to a channel failed is kept in the retry queue (C(retry.json)) and sent to that
        channel again by the next runs until it is delivered, even when the alert is no longer raised (an event "since the
        last run" is raised only once), with C(undelivered since <time>) in its text.
      - It is dropped when older than this many hours, or when the channel is gone or no longer takes its severity (1 to 744).
    type: int
    default: 72
  lock_timeout_s:
    description:
      - Runs that overlap on one O(state_dir) take turns - each holds an exclusive lock on C(<state_dir>/.lock) from reading
        the state to saving it, so the later run plans from the earlier one's ledger and never sends the same alert again.
      - Seconds to wait for that lock (1 to 3600); when it stays held, nothing is sent and the module fails. Check mode
        reads without the lock.
    type: int
    default: 300
    version_added: 0.2.0
  flush:
    description:
      - V(auto) flushes a digest queue when its last flush is older than its period.
      - V(now) flushes both queues regardless of the schedule (for an end-of-day job and for tests).
      - V(never) only queues.
    type: str
    choices: [auto, now, never]
    default: auto
  status_summary:
    description:
      - Short status summary of the run, posted to every team channel on every run (not deduplicated). Nothing is posted when empty.
    type: str
    default: ''
  runbook:
    description:
      - Name of the runbook, shown in the messages.
    type: str
    default: daily
  report_url:
    description:
      - Link or path of the run's report, included in the messages when set.
    type: str
    default: ''
  timeout_s:
    description:
      - Timeout of one POST, in seconds (1 to 60).
    type: int
    default: 10
  retries:
    description:
      - How many times a failed POST is retried (0 to 5), with a short backoff.
    type: int
    default: 2
  fail_on_delivery_error:
    description:
      - Fail the task when a delivery failed. By default failures are only reported in RV(failed_deliveries).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - Returns exactly what would be sent, queued and flushed, and C(changed) as a real run would report it (every
        delivery assumed to succeed); sends nothing and writes no state.
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: partial
    description:
      - Alerts already sent within O(repeat_after_hours) are not sent again, but O(status_summary) is posted on every run
        and a due digest is flushed once.
notes:
  - A run is one-shot, so V(high) alerts are sent right away. The readiness document's "within 5 minutes" for high
    alerts is met by running the checks often enough (for example an alert-poller job every 5 minutes), not by
    this module.
  - Recovery is judged from O(alerts) alone; when a run covers only some hosts (C(--limit), unreachable hosts), the
    alerts of the other hosts count as recovered and are sent again when they come back.
  - Medium and low alerts are queued even when no team channel is configured, with a warning; they are flushed once
    a team channel exists.
  - Two runs may use the same O(state_dir) at the same time (two cron firings, two AWX jobs on a shared volume); they take
    turns (O(lock_timeout_s)).
  - See C(docs/notifications.md) in the collection for the routing table, the state files and channel setup.
seealso:
  - name: Slack incoming webhooks
    description: How to create the webhook URL of a Slack channel.
    link: https://api.slack.com/messaging/webhooks
  - name: PagerDuty Events API v2
    description: The event format the pager channel kind follows.
    link: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
"""

EXAMPLES = r"""
- name: Notify the on-call and the team about the daily runbook
  dealerscope.ops.ops_notify:
    alerts: "{{ daily_report.checks | rejectattr('status', 'equalto', 'ok') | list }}"
    channels:
      - name: pager
        kind: pager
        url: https://events.pagerduty.com/v2/enqueue
        routing_key: "{{ vault_pagerduty_routing_key }}"
        severities: [critical]
      - name: ops-slack
        kind: slack
        url: "{{ vault_slack_ops_webhook }}"
        severities: [critical, high]
        team: true
    state_dir: "{{ playbook_dir }}/.state/notify"
    status_summary: "{{ daily_summary_line }}"
    report_url: "{{ daily_report_path }}"
  delegate_to: localhost
  run_once: true

- name: End-of-day job - flush the digest queues now
  dealerscope.ops.ops_notify:
    channels:
      - name: team
        kind: webhook
        url: "{{ vault_mattermost_webhook }}"
        team: true
    state_dir: /var/lib/dealerscope-ops/notify
    flush: now
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
sent:
  description:
    - Messages delivered (in check mode, that would be delivered), one item per channel, type and severity.
    - Channels are named, never given by URL.
  returned: always
  type: list
  elements: dict
  contains:
    channel:
      description: Channel name.
      type: str
    kind:
      description: Channel kind.
      type: str
    type:
      description: V(immediate), V(digest) or V(summary).
      type: str
    severity:
      description: Severity of the alerts (V(info) for the status summary).
      type: str
    keys:
      description: Alert keys (C(class|host|check)) in the message(s).
      type: list
      elements: str
    count:
      description: Number of alerts delivered (1 for a summary).
      type: int
  sample:
    - {channel: pager, kind: pager, type: immediate, severity: critical, keys: ["service_down|app1|api_health"], count: 1}
queued:
  description: Number of alerts queued for the daily (medium) and weekly (low) digests by this run.
  returned: always
  type: dict
  sample: {medium: 1, low: 0}
flushed:
  description: Number of queued alerts delivered in a digest and removed from the queue by this run.
  returned: always
  type: dict
  sample: {medium: 3, low: 0}
suppressed:
  description: Alerts not sent or queued again because they were within O(repeat_after_hours).
  returned: always
  type: dict
  contains:
    count:
      description: Number of suppressed alert keys.
      type: int
    keys:
      description: The suppressed alert keys.
      type: list
      elements: str
  sample: {count: 1, keys: ["service_down|app1|api_health"]}
failed_deliveries:
  description:
    - Deliveries that failed (after the retries). Their alerts are retried on the next run.
    - Not called C(failed), which Ansible reserves for the task status.
  returned: always
  type: list
  elements: dict
  contains:
    channel:
      description: Channel name.
      type: str
    kind:
      description: Channel kind.
      type: str
    type:
      description: V(immediate), V(digest) or V(summary).
      type: str
    severity:
      description: Severity of the alerts.
      type: str
    keys:
      description: Alert keys that were not delivered.
      type: list
      elements: str
    error:
      description: Error text, with any URL removed.
      type: str
  sample:
    - {channel: ops-slack, kind: slack, type: immediate, severity: critical, keys: ["service_down|app1|api_health"],
       error: "URLError: [Errno 111] Connection refused (after 3 attempts)"}
unrouted:
  description: Keys of critical or high alerts that no channel takes immediately.
  returned: always
  type: list
  elements: str
  sample: []
recovered:
  description: Keys that were in the dedupe ledger but are no longer raised; they are forgotten.
  returned: always
  type: list
  elements: str
  sample: ["high_latency|app2|api_latency"]
retry:
  description:
    - The retry queue of failed immediate deliveries.
    - C(sent) lists the keys of alerts no longer raised that an earlier run could not deliver and this run delivered
      (would deliver, in check mode); C(pending) the keys still waiting for a channel; C(dropped) the entries given up
      (C(channel), C(key), C(failed_at), C(reason)).
  returned: always
  type: dict
  sample: {sent: ["security_event|db2|new_accounts"], pending: [], dropped: []}
classified:
  description: Keys of this run's alerts by severity.
  returned: always
  type: dict
  sample: {critical: ["service_down|app1|api_health"], high: [], medium: [], low: []}
checks:
  description:
    - One check, C(notify:delivery), with alert class V(notification_failure) when not ok.
    - V(ok) when every delivery succeeded; V(critical) when a pager channel or a critical alert was not delivered;
      V(warning) for any other failed delivery (C(details.severity) V(high)).
    - C(details) has C(delivered), C(failed) (channel, kind, type, severity, C(alerts), error), C(retried_next_run)
      (the alert keys not delivered, retried by the next run) and C(severity).
  returned: always
  type: list
  elements: dict
  sample:
    - name: "notify:delivery"
      status: critical
      value: 1
      threshold: 0
      unit: ""
      message: >-
        alert delivery failed for 1 message(s): pager (pager immediate critical, 1 alert(s)): URLError: [Errno 111] Connection
        refused (after 3 attempts); 1 undelivered alert(s) are retried on the next run; 2 message(s) delivered
      alert: notification_failure
      details:
        severity: critical
        delivered: 2
        failed:
          - {channel: pager, kind: pager, type: immediate, severity: critical, alerts: ["service_down|app1|api_health"],
             error: "URLError: [Errno 111] Connection refused (after 3 attempts)"}
        retried_next_run: ["service_down|app1|api_health"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_notify import (
    DEFAULTS,
    NotifyError,
    notify_once,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            alerts=dict(type='list', elements='dict', default=[]),
            severity_map=dict(type='dict', default={}),
            channels=dict(
                type='list', elements='dict', required=True,
                options=dict(
                    name=dict(type='str', required=True),
                    kind=dict(type='str', required=True, choices=['slack', 'pager', 'webhook']),
                    url=dict(type='str', required=True, no_log=True),
                    routing_key=dict(type='str', no_log=True),
                    severities=dict(type='list', elements='str', choices=['critical', 'high', 'medium', 'low'], default=[]),
                    team=dict(type='bool', default=False),
                ),
            ),
            state_dir=dict(type='path', required=True),
            repeat_after_hours=dict(type='int', default=24),
            digest_daily_hours=dict(type='int', default=24),
            digest_weekly_days=dict(type='int', default=7),
            retry_max_hours=dict(type='int', default=72),
            lock_timeout_s=dict(type='int', default=300),
            flush=dict(type='str', choices=['auto', 'now', 'never'], default='auto'),
            status_summary=dict(type='str', default=''),
            runbook=dict(type='str', default='daily'),
            report_url=dict(type='str', default=''),
            timeout_s=dict(type='int', default=10),
            retries=dict(type='int', default=2),
            fail_on_delivery_error=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    options = dict((name, params[name]) for name in DEFAULTS)
    try:
        result, warnings = notify_once(params['alerts'], params['channels'], params['state_dir'], params['runbook'],
                                       check_mode=module.check_mode, severity_map=params['severity_map'], **options)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except NotifyError as exc:
        module.fail_json(msg='ops_notify failed: %s' % exc, **exc.result)
    for warning in warnings:
        module.warn(warning)
    if result['failed_deliveries'] and params['fail_on_delivery_error']:
        channels_failed = sorted(set(item['channel'] for item in result['failed_deliveries']))
        module.fail_json(msg='delivery failed for %s' % ', '.join(channels_failed), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
