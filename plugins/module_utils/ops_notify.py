# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic used by the ``dealerscope.ops.ops_notify`` module.

Alert routing by severity, deduplication across runbook runs and medium/low digests.

The flow of one run is ``validate_*`` -> ``load_state`` -> ``plan_run`` -> ``execute`` -> ``save_state``:

* ``plan_run`` decides, from the alerts of this run, the channels and the persisted state, which
  messages would be sent (immediate alerts, digests, the status summary), which alerts are
  suppressed as duplicates and which are queued for a digest. It does no I/O.
* ``execute`` performs the deliveries through an injected ``send(url, body)`` callable (``None`` in
  check mode: everything is reported as it would happen, nothing is sent) and returns the result
  plus the new state. A failed delivery is never recorded as sent, so it is retried next run.

Nothing in here imports AnsibleModule. The returned values never contain a channel URL or a
routing key: channels are referred to by name and error texts are redacted.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import http.client
import json
import os
import time
import urllib.parse

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import atomic_write_text, ensure_private_dir

SEVERITIES = ('critical', 'high', 'medium', 'low')
DIGEST_SEVERITIES = ('medium', 'low')
STATUSES = ('ok', 'warning', 'critical')
CHANNEL_KINDS = ('slack', 'pager', 'webhook')
FLUSH_MODES = ('auto', 'now', 'never')

# The one severity map of the collection: alert class -> severity. Runbooks and the ops_notify module
# merge a user's map over it (roles: runbook_end_severity_map).
DEFAULT_SEVERITY_MAP = {
    'service_down': 'critical',
    'high_error_rate': 'critical',
    'high_latency': 'high',
    'resource_exhaustion': 'medium',
    'security_event': 'high',
    'pii_exposure': 'high',
    'tls_expiry': 'medium',
    'tls_expired': 'critical',
    'tls_invalid': 'high',
    'tls_renewal_failed': 'high',
    'security_headers': 'low',
    'backup_stale': 'critical',
    'backup_invalid': 'critical',
    'rpo_at_risk': 'critical',
    'backup_failed': 'high',
    'backup_region_unreachable': 'medium',
    'wal_archive_lag': 'medium',
    'backup_retention': 'medium',
    'restore_failed': 'critical',
    'restore_invalid': 'critical',
    'rto_at_risk': 'critical',
    'backup_success': 'low',
    'deployment_complete': 'low',
    'deployment_failed': 'high',
    'replication_lag': 'medium',
    'monitoring_gap': 'medium',
    'patch_failed': 'critical',
    'patch_halted': 'high',
    'traffic_interrupted': 'high',
    'reboot_pending': 'medium',
    'restart_pending': 'medium',
    'patch_not_reached': 'medium',
    'runbook_incomplete': 'high',
}

# PagerDuty Events v2 knows critical, error, warning and info.
PAGER_SEVERITY = {'critical': 'critical', 'high': 'error', 'medium': 'warning', 'low': 'info'}

SENT_FILE = 'sent.json'
LAST_FLUSH_FILE = 'last-flush.json'
# Immediate alerts whose delivery failed, per channel: re-sent by the next runs until delivered, even when the
# alert is no longer raised (an event "since the last run" is raised once; its failed page must not be lost).
RETRY_FILE = 'retry.json'
RETRY_FIELDS = ('key', 'host', 'check', 'alert', 'status', 'message', 'severity', 'runbook', 'failed_at')
QUEUE_FILES = {'medium': 'digest-medium.jsonl', 'low': 'digest-low.jsonl'}
# Ledger pseudo-channels recording that a key was queued for a digest (real channel names cannot start with '@').
QUEUE_MARKERS = {'medium': '@digest-medium', 'low': '@digest-low'}

MAX_GRACE_S = 900          # scheduler jitter absorbed by "older than the period" comparisons
MAX_LINES = 50             # alert lines in one Slack-style message before "... and N more"
PAGER_SUMMARY_MAX = 1024   # PagerDuty's payload.summary limit
DEDUP_KEY_MAX = 255        # PagerDuty's dedup_key limit
REDACTED = '<redacted>'


class DeliveryError(Exception):
    """A POST failed; the message never contains the URL."""


# What a POST to a dead or sick endpoint raises: connection, DNS, timeout, TLS and HTTP status errors are OSErrors
# (socket.timeout, ssl.SSLError, urllib.error.URLError/HTTPError), malformed responses http.client.HTTPExceptions,
# certificate and proxy failures of open_url its ConnectionError. Only these are failed deliveries (retried next run);
# anything else is a bug and is raised, so that it fails the module instead of passing for a dead webhook.
SEND_ERRORS = (OSError, http.client.HTTPException, UrlsConnectionError)


# ---------------------------------------------------------------------------------------------
# validation


def validate_severity_map(severity_map):
    """Return the severity map as a plain dict; ValueError names the offending key."""
    if severity_map is None:
        return dict(DEFAULT_SEVERITY_MAP)
    if not isinstance(severity_map, dict):
        raise ValueError('severity_map must be a dict of alert class -> severity')
    result = {}
    for key, value in severity_map.items():
        if value not in SEVERITIES:
            raise ValueError('severity_map.%s: invalid severity %r, valid severities are %s' % (key, value, ', '.join(SEVERITIES)))
        result[str(key)] = value
    return result


def validate_channels(channels):
    """Check names (unique, not starting with '@'), kinds and severities; return normalized copies."""
    result = []
    names = set()
    for index, channel in enumerate(channels or []):
        name = channel.get('name')
        if not isinstance(name, str) or not name.strip() or name.startswith('@'):
            raise ValueError('channels[%d].name must be a non-empty string that does not start with "@"' % index)
        if name in names:
            raise ValueError('channels[%d].name: duplicate channel name %r' % (index, name))
        names.add(name)
        kind = channel.get('kind')
        if kind not in CHANNEL_KINDS:
            raise ValueError('channels[%d].kind: invalid kind %r, valid kinds are %s' % (index, kind, ', '.join(CHANNEL_KINDS)))
        if not channel.get('url'):
            raise ValueError('channels[%d].url is required (channel %s)' % (index, name))
        url = urllib.parse.urlsplit(str(channel['url']))
        if url.scheme not in ('http', 'https') or not url.netloc:  # the URL is a secret: never in the message
            raise ValueError('channels[%d].url must be an http:// or https:// URL with a host (channel %s)' % (index, name))
        if kind == 'pager' and not channel.get('routing_key') and is_pagerduty(url.hostname):
            # PagerDuty Events v2 rejects every event without one: the pager would never page
            raise ValueError('channels[%d].routing_key is required for a PagerDuty Events API v2 URL (channel %s): '
                             'the integration key of the service' % (index, name))
        severities = list(channel.get('severities') or [])
        for severity in severities:
            if severity not in SEVERITIES:
                raise ValueError('channels[%d].severities: invalid severity %r, valid severities are %s'
                                 % (index, severity, ', '.join(SEVERITIES)))
        result.append({
            'name': name,
            'kind': kind,
            'url': channel['url'],
            'severities': severities,
            'team': bool(channel.get('team')),
            'routing_key': channel.get('routing_key') or None,
        })
    return result


def is_pagerduty(hostname):
    """Whether a channel host is PagerDuty's (events.pagerduty.com, events.eu.pagerduty.com, ...)."""
    hostname = (hostname or '').lower().rstrip('.')
    return hostname == 'pagerduty.com' or hostname.endswith('.pagerduty.com')


def alert_key(alert_class, host, check):
    """The dedupe key of an alert: alert class + host + check."""
    return '%s|%s|%s' % (alert_class, host, check)


def classify(alert_class, status, severity_map, override=None):
    """Severity of one alert: explicit override, else the map, else critical/medium by status."""
    if override:
        return override
    if alert_class in severity_map:
        return severity_map[alert_class]
    return 'critical' if status == 'critical' else 'medium'


def normalize_alerts(alerts, severity_map):
    """Validate the alerts and return the active (non-ok) ones, one per key, each with its severity.

    ``check`` may also be given as ``name`` (the key check results use), so the non-ok checks of a
    report can be passed with a ``host`` added; unknown keys are ignored. When ``alert`` is empty
    the check name is used as the alert class. The same key twice keeps the worst status.
    """
    order = []
    by_key = {}
    for index, alert in enumerate(alerts or []):
        if not isinstance(alert, dict):
            raise ValueError('alerts[%d] must be a dict' % index)
        host = alert.get('host')
        check = alert.get('check') or alert.get('name')
        if not host or not isinstance(host, str):
            raise ValueError('alerts[%d].host is required' % index)
        if not check or not isinstance(check, str):
            raise ValueError('alerts[%d].check is required (or name)' % index)
        status = alert.get('status', 'critical')
        if status not in STATUSES:
            raise ValueError('alerts[%d].status: invalid status %r, valid statuses are %s' % (index, status, ', '.join(STATUSES)))
        override = alert.get('severity')
        if override is not None and override not in SEVERITIES:
            raise ValueError('alerts[%d].severity: invalid severity %r, valid severities are %s' % (index, override, ', '.join(SEVERITIES)))
        if status == 'ok':
            continue
        alert_class = alert.get('alert') or check
        key = alert_key(alert_class, host, check)
        item = {
            'key': key,
            'host': host,
            'check': check,
            'alert': alert_class,
            'status': status,
            'message': str(alert.get('message') or ''),
            'severity': classify(alert_class, status, severity_map, override),
        }
        previous = by_key.get(key)
        if previous is None:
            order.append(key)
            by_key[key] = item
        elif STATUSES.index(status) > STATUSES.index(previous['status']) or \
                SEVERITIES.index(item['severity']) < SEVERITIES.index(previous['severity']):
            by_key[key] = item
    return [by_key[key] for key in order]


# ---------------------------------------------------------------------------------------------
# state


def empty_state():
    return {'sent': {}, 'queues': {'medium': [], 'low': []}, 'last_flush': {}, 'retry': {}}


def _read_json(path, default, warnings):
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        warnings.append('ignoring unreadable state file %s: %s' % (path, exc))
        return default


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_state(state_dir, warnings=None):
    """Read sent.json, the digest queues and last-flush.json; missing files mean empty state."""
    warnings = warnings if warnings is not None else []
    state = empty_state()
    sent = _read_json(os.path.join(state_dir, SENT_FILE), {}, warnings)
    if isinstance(sent, dict):
        for key, per_channel in sent.items():
            if isinstance(per_channel, dict):
                clean = dict((name, ts) for name, ts in per_channel.items() if _number(ts))
                if clean:
                    state['sent'][key] = clean
    last_flush = _read_json(os.path.join(state_dir, LAST_FLUSH_FILE), {}, warnings)
    if isinstance(last_flush, dict):
        state['last_flush'] = dict((sev, ts) for sev, ts in last_flush.items() if sev in DIGEST_SEVERITIES and _number(ts))
    for severity, filename in QUEUE_FILES.items():
        path = os.path.join(state_dir, filename)
        try:
            with open(path, 'r', encoding='utf-8') as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            continue
        except OSError as exc:
            warnings.append('ignoring unreadable digest queue %s: %s' % (path, exc))
            continue
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                warnings.append('skipping malformed line %d of %s' % (number, path))
                continue
            if isinstance(entry, dict) and entry.get('key'):
                entry.setdefault('flushed_to', [])
                state['queues'][severity].append(entry)
    retry = _read_json(os.path.join(state_dir, RETRY_FILE), {}, warnings)
    if isinstance(retry, dict):
        for name, entries in retry.items():
            if not isinstance(entries, dict):
                continue
            clean = dict((key, entry) for key, entry in entries.items()
                         if isinstance(entry, dict) and entry.get('key') == key and entry.get('severity') in SEVERITIES
                         and _number(entry.get('failed_at')))
            if clean:
                state['retry'][name] = clean
    return state


LOCK_FILE = '.lock'
LOCK_TIMEOUT_S = 300


@contextlib.contextmanager
def state_lock(state_dir, timeout_s=LOCK_TIMEOUT_S, sleep=time.sleep, clock=time.monotonic):
    """Hold the notification state of ``state_dir`` for one run: an exclusive lock on ``<state_dir>/.lock``.

    Two runs that overlap (two cron firings, two AWX jobs on a shared volume) would otherwise both read the ledger
    before either wrote it, and both send the same page. The second run waits until the first has saved its state,
    then plans from it. An OS lock (flock) dies with its process, so a killed run never leaves the ledger locked.
    Raises NotifyError when the lock is not free within ``timeout_s`` - nothing is sent then.
    """
    ensure_state_dir(state_dir)
    handle = os.open(os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = clock() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if clock() >= deadline:
                    raise NotifyError('another run has held the notification state in %s for over %d s; nothing was sent '
                                      '(the ledger must not be read while it is being written)' % (state_dir, timeout_s))
                sleep(0.2)
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock


def ensure_state_dir(state_dir):
    """Create the state directory with mode 0700; return True when it was created."""
    return ensure_private_dir(state_dir)


def save_state(state_dir, state):
    """Write every state file atomically (write to a temporary file, fsync, rename)."""
    atomic_write_text(os.path.join(state_dir, SENT_FILE), json.dumps(state['sent'], indent=1, sort_keys=True) + '\n')
    atomic_write_text(os.path.join(state_dir, LAST_FLUSH_FILE), json.dumps(state['last_flush'], indent=1, sort_keys=True) + '\n')
    atomic_write_text(os.path.join(state_dir, RETRY_FILE), json.dumps(state.get('retry', {}), indent=1, sort_keys=True) + '\n')
    for severity, filename in QUEUE_FILES.items():
        text = ''.join(json.dumps(entry, sort_keys=True) + '\n' for entry in state['queues'][severity])
        atomic_write_text(os.path.join(state_dir, filename), text)


# ---------------------------------------------------------------------------------------------
# planning


def grace(period_s):
    """Scheduler jitter tolerated when comparing an age with a period: 5 % of it, at most 15 minutes."""
    return min(MAX_GRACE_S, period_s * 0.05)


def is_older(timestamp, now, period_s):
    """True when ``timestamp`` is missing or at least ``period_s`` (minus the grace) before ``now``."""
    if timestamp is None:
        return True
    return now - timestamp >= period_s - grace(period_s)


def _alert_line(alert):
    text = '%s %s (%s, %s)' % (alert['host'], alert['check'], alert['alert'], alert['status'])
    if alert.get('message'):
        text += ': %s' % alert['message']
    return text


def _bulleted(alerts):
    lines = ['- ' + _alert_line(alert) for alert in alerts[:MAX_LINES]]
    if len(alerts) > MAX_LINES:
        lines.append('... and %d more' % (len(alerts) - MAX_LINES))
    return lines


def _with_report(lines, report_url):
    if report_url:
        lines.append('Report: %s' % report_url)
    return '\n'.join(lines)


def alert_text(severity, alerts, runbook, report_url):
    """Slack-style text of an immediate notification."""
    head = '[%s] DealerScope %s runbook: %d %s alert%s' % (severity.upper(), runbook, len(alerts), severity,
                                                           '' if len(alerts) == 1 else 's')
    return _with_report([head] + _bulleted(alerts), report_url)


def digest_text(severity, entries, runbook, report_url):
    """Slack-style text of a daily (medium) or weekly (low) digest."""
    label = 'daily digest' if severity == 'medium' else 'weekly summary'
    head = 'DealerScope %s (%s alerts, %s runbook): %d alert%s' % (label, severity, runbook, len(entries), '' if len(entries) == 1 else 's')
    return _with_report([head] + _bulleted(entries), report_url)


def summary_text(status_summary, runbook, report_url):
    return _with_report(['[%s runbook] %s' % (runbook, status_summary)], report_url)


def pager_body(alert, channel, runbook, report_url):
    """A PagerDuty-Events-v2-like trigger event for one alert."""
    summary = '[%s] %s' % (runbook, _alert_line(alert))
    if report_url:
        summary += ' (report: %s)' % report_url
    body = {
        'event_action': 'trigger',
        'dedup_key': alert['key'][:DEDUP_KEY_MAX],
        'payload': {
            'summary': summary[:PAGER_SUMMARY_MAX],
            'severity': PAGER_SEVERITY[alert['severity']],
            'source': alert['host'],
            'component': alert['check'],
            'class': alert['alert'],
        },
    }
    if channel.get('routing_key'):
        body['routing_key'] = channel['routing_key']
    return body


def _requests_for(channel, severity, alerts, runbook, report_url):
    if channel['kind'] == 'pager':
        return [{'keys': [alert['key']], 'body': pager_body(alert, channel, runbook, report_url)} for alert in alerts]
    return [{'keys': [alert['key'] for alert in alerts], 'body': {'text': alert_text(severity, alerts, runbook, report_url)}}]


def plan_run(alerts, channels, state, now, severity_map=None, repeat_after_hours=24, digest_daily_hours=24,
             digest_weekly_days=7, flush='auto', status_summary='', runbook='daily', report_url='', retry_max_hours=72):
    """Decide everything this run does, without any I/O.

    ``alerts`` and ``channels`` must already be validated (``normalize_alerts``, ``validate_channels``).
    Returns a plan dict; ``execute`` carries it out. ``state`` is not modified.
    """
    severity_map = validate_severity_map(severity_map)
    if flush not in FLUSH_MODES:
        raise ValueError('flush must be one of %s' % ', '.join(FLUSH_MODES))
    repeat_s = repeat_after_hours * 3600.0
    ledger = state['sent']
    active = set(alert['key'] for alert in alerts)
    deliveries = []
    suppressed = []
    unrouted = []
    classified = dict((severity, []) for severity in SEVERITIES)

    def recently(key, target):
        return not is_older(ledger.get(key, {}).get(target), now, repeat_s) if repeat_s > 0 else False

    for alert in alerts:
        classified[alert['severity']].append(alert['key'])

    # failed immediate deliveries of earlier runs: retried below until delivered (or too old, or the channel is gone)
    retry_due, retry_dropped = {}, []
    by_name = dict((channel['name'], channel) for channel in channels)
    for name, entries in sorted(state.get('retry', {}).items()):
        for key, entry in sorted(entries.items()):
            channel = by_name.get(name)
            if channel is None or entry['severity'] not in channel['severities'] or now - entry['failed_at'] > retry_max_hours * 3600.0:
                retry_dropped.append({'channel': name, 'key': key, 'failed_at': entry['failed_at'],
                                      'reason': 'channel gone or no longer takes %s' % entry['severity'] if channel is None
                                      or entry['severity'] not in channel['severities'] else 'older than %s h' % retry_max_hours})
            elif key not in active:  # a still-raised alert is due anyway (its failed channel has no ledger entry)
                retry_due.setdefault(name, []).append(dict(
                    entry, message='undelivered since %s: %s' % (_utc(entry['failed_at']), entry.get('message') or '')))

    # immediate deliveries: every channel listing the severity
    for channel in channels:
        for severity in SEVERITIES:
            if severity not in channel['severities']:
                continue
            due = []
            for alert in alerts:
                if alert['severity'] != severity:
                    continue
                if recently(alert['key'], channel['name']):
                    suppressed.append(alert['key'])
                else:
                    due.append(alert)
            due.extend(entry for entry in retry_due.get(channel['name'], []) if entry['severity'] == severity)
            if due:
                deliveries.append({'channel': channel['name'], 'kind': channel['kind'], 'type': 'immediate', 'severity': severity,
                                   'requests': _requests_for(channel, severity, due, runbook, report_url),
                                   'alerts': dict((alert['key'], _retry_entry(alert, runbook, now)) for alert in due)})
    for alert in alerts:
        if alert['severity'] in ('critical', 'high') and not any(alert['severity'] in c['severities'] for c in channels):
            unrouted.append(alert['key'])

    # digests: queue medium/low alerts once per repeat window, flush on schedule
    queue_add = {'medium': [], 'low': []}
    queued_keys = dict((sev, set(entry['key'] for entry in state['queues'][sev])) for sev in DIGEST_SEVERITIES)
    for alert in alerts:
        severity = alert['severity']
        if severity not in DIGEST_SEVERITIES:
            continue
        if alert['key'] in queued_keys[severity] or recently(alert['key'], QUEUE_MARKERS[severity]):
            suppressed.append(alert['key'])
            continue
        queued_keys[severity].add(alert['key'])
        queue_add[severity].append({
            'key': alert['key'], 'host': alert['host'], 'check': alert['check'], 'alert': alert['alert'],
            'status': alert['status'], 'message': alert['message'], 'severity': severity,
            'queued_at': now, 'runbook': runbook, 'flushed_to': [],
        })

    team = [channel for channel in channels if channel['team']]
    periods = {'medium': digest_daily_hours * 3600.0, 'low': digest_weekly_days * 86400.0}
    flush_due = {}
    for severity in DIGEST_SEVERITIES:
        queue = state['queues'][severity] + queue_add[severity]
        if flush == 'never' or not queue or not team:
            flush_due[severity] = False
        elif flush == 'now':
            flush_due[severity] = True
        else:
            flush_due[severity] = is_older(state['last_flush'].get(severity), now, periods[severity])
        if not flush_due[severity]:
            continue
        for channel in team:
            entries = [entry for entry in queue if channel['name'] not in entry.get('flushed_to', [])]
            if entries:
                deliveries.append({'channel': channel['name'], 'kind': channel['kind'], 'type': 'digest', 'severity': severity,
                                   'requests': [{'keys': [entry['key'] for entry in entries],
                                                 'body': digest_body(channel, severity, entries, runbook, report_url, now)}]})

    if status_summary:
        for channel in team:
            deliveries.append({'channel': channel['name'], 'kind': channel['kind'], 'type': 'summary', 'severity': 'info',
                               'requests': [{'keys': [], 'body': summary_body(channel, status_summary, runbook, report_url, now)}]})

    return {
        'now': now,
        'active': sorted(active),
        'recovered': sorted(key for key in ledger if key not in active),
        'classified': classified,
        'deliveries': deliveries,
        'suppressed': sorted(set(suppressed)),
        'unrouted': sorted(set(unrouted)),
        'queue_add': queue_add,
        'flush_due': flush_due,
        'team': [channel['name'] for channel in team],
        'no_team_channel': not team and any(state['queues'][sev] or queue_add[sev] for sev in DIGEST_SEVERITIES),
        'retry_due': sorted(entry['key'] for entries in retry_due.values() for entry in entries),
        'retry_dropped': retry_dropped,
    }


def _utc(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def _retry_entry(alert, runbook, now):
    """What the retry queue keeps of an alert (a retried one keeps its first failure time and original message)."""
    entry = dict((field, alert.get(field)) for field in RETRY_FIELDS)
    entry['runbook'] = alert.get('runbook') or runbook
    if not _number(alert.get('failed_at')):
        entry['failed_at'] = now
    else:
        entry['message'] = alert['message'].split(': ', 1)[1] if alert['message'].startswith('undelivered since ') else alert['message']
    return entry


def _pager_event(dedup_key, summary, severity, source):
    return {'event_action': 'trigger', 'dedup_key': dedup_key[:DEDUP_KEY_MAX],
            'payload': {'summary': summary[:PAGER_SUMMARY_MAX], 'severity': severity, 'source': source}}


def digest_body(channel, severity, entries, runbook, report_url, now):
    text = digest_text(severity, entries, runbook, report_url)
    if channel['kind'] != 'pager':
        return {'text': text}
    body = _pager_event('digest-%s-%d' % (severity, int(now)), text, PAGER_SEVERITY[severity], 'dealerscope-%s' % runbook)
    if channel.get('routing_key'):
        body['routing_key'] = channel['routing_key']
    return body


def summary_body(channel, status_summary, runbook, report_url, now):
    text = summary_text(status_summary, runbook, report_url)
    if channel['kind'] != 'pager':
        return {'text': text}
    body = _pager_event('summary-%s-%d' % (runbook, int(now)), text, 'info', 'dealerscope-%s' % runbook)
    if channel.get('routing_key'):
        body['routing_key'] = channel['routing_key']
    return body


# ---------------------------------------------------------------------------------------------
# execution


def redact(text, secrets):
    """Remove every secret (and the secret-bearing parts of URLs) from ``text``."""
    text = str(text)
    pieces = set()
    for secret in secrets:
        if not secret:
            continue
        secret = str(secret)
        pieces.add(secret)
        if '://' in secret:
            rest = secret.split('://', 1)[1]
            pieces.add(rest)
            if '/' in rest:
                path = rest[rest.index('/'):]
                if len(path) > 1:
                    pieces.add(path)
                    pieces.add(path.lstrip('/'))
            if '?' in rest:
                query = rest.split('?', 1)[1]
                pieces.add(query)
                pieces.update(part.split('=', 1)[-1] for part in query.split('&'))
            # path segments and query values long enough to be tokens (Slack: /services/T../B../<token>)
            pieces.update(part for part in rest.split('?', 1)[0].split('/')[1:] if len(part) >= 8)
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= 4:
            text = text.replace(piece, REDACTED)
    return text


def execute(plan, state, channels, send=None):
    """Carry out a plan. ``send(url, body)`` raises DeliveryError on failure; ``None`` means check mode (nothing is sent).

    Any other exception from ``send`` is a bug and propagates: it is never recorded as a failed delivery.

    Returns ``(result, new_state)``; ``state`` is not modified.
    """
    now = plan['now']
    check_mode = send is None
    new = copy.deepcopy(state)
    by_name = dict((channel['name'], channel) for channel in channels)
    secrets = []
    for channel in channels:
        secrets.extend([channel['url'], channel.get('routing_key')])

    # recovery: keys no longer alerting are forgotten, so a new occurrence is sent again
    for key in plan['recovered']:
        new['sent'].pop(key, None)

    for severity in DIGEST_SEVERITIES:
        for entry in plan['queue_add'][severity]:
            new['queues'][severity].append(copy.deepcopy(entry))
            new['sent'].setdefault(entry['key'], {})[QUEUE_MARKERS[severity]] = now

    new.setdefault('retry', {})
    for dropped in plan.get('retry_dropped', []):
        new['retry'].get(dropped['channel'], {}).pop(dropped['key'], None)
    active = set(plan['active'])

    sent = []
    failed = []
    flush_ok = dict((severity, True) for severity in DIGEST_SEVERITIES)
    for delivery in plan['deliveries']:
        channel = by_name[delivery['channel']]
        ok_keys = []
        ok_count = 0
        errors = []
        bad_keys = []
        for request in delivery['requests']:
            try:
                if not check_mode:
                    send(channel['url'], request['body'])
            except DeliveryError as exc:  # anything else is a bug: raised, never recorded as a failed delivery
                errors.append(redact(exc, secrets))
                bad_keys.extend(request['keys'])
                continue
            ok_count += 1
            ok_keys.extend(request['keys'])
        if delivery['type'] == 'immediate':
            retry = new['retry'].setdefault(channel['name'], {})
            for key in ok_keys:
                retry.pop(key, None)
                if key in active:  # a retried alert that is no longer raised stays out of the dedupe ledger
                    new['sent'].setdefault(key, {})[channel['name']] = now
            for key in bad_keys:  # retried by the next runs, even once the alert is no longer raised
                retry[key] = retry.get(key) or delivery['alerts'][key]
        elif delivery['type'] == 'digest':
            severity = delivery['severity']
            if errors:
                flush_ok[severity] = False
            for entry in new['queues'][severity]:
                if entry['key'] in ok_keys and channel['name'] not in entry['flushed_to']:
                    entry['flushed_to'].append(channel['name'])
        if ok_count:
            sent.append({'channel': channel['name'], 'kind': channel['kind'], 'type': delivery['type'], 'severity': delivery['severity'],
                         'keys': ok_keys, 'count': len(ok_keys) if delivery['type'] != 'summary' else 1})
        if errors:
            failed.append({'channel': channel['name'], 'kind': channel['kind'], 'type': delivery['type'], 'severity': delivery['severity'],
                           'keys': bad_keys, 'error': '; '.join(sorted(set(errors)))})

    flushed = {'medium': 0, 'low': 0}
    team = set(plan['team'])
    for severity in DIGEST_SEVERITIES:
        if not plan['flush_due'][severity]:
            continue
        remaining = []
        for entry in new['queues'][severity]:
            if team.issubset(entry['flushed_to']):
                flushed[severity] += 1
            else:
                remaining.append(entry)
        new['queues'][severity] = remaining
        if flush_ok[severity]:
            new['last_flush'][severity] = now

    new['retry'] = dict((name, entries) for name, entries in new['retry'].items() if entries)
    queued = dict((severity, len(plan['queue_add'][severity])) for severity in DIGEST_SEVERITIES)
    result = {
        'sent': sent,
        'queued': queued,
        'flushed': flushed,
        'suppressed': {'count': len(plan['suppressed']), 'keys': plan['suppressed']},
        'failed_deliveries': failed,
        'unrouted': plan['unrouted'],
        'recovered': plan['recovered'],
        'classified': plan['classified'],
        'retry': {
            'sent': sorted(set(key for item in sent if item['type'] == 'immediate' for key in item['keys']) & set(plan.get('retry_due', []))),
            'pending': sorted(set(key for entries in new['retry'].values() for key in entries)),
            'dropped': plan.get('retry_dropped', []),
        },
        # the same rule in check mode (where ``sent`` is what would be delivered): a message goes out, a digest
        # queue changes, recovered keys leave the ledger, or the retry queue changes
        'changed': bool(sent or any(queued.values()) or any(flushed.values()) or plan['recovered']
                        or new['retry'] != state.get('retry', {})),
    }
    return result, new


DELIVERY_CHECK = 'notify:delivery'
DELIVERY_ALERT = 'notification_failure'


def delivery_check(result, check_mode=False):
    """The ``notify:delivery`` check of a run: is alerting functional?

    Critical when a pager channel or a critical alert was not delivered (the on-call was not paged), a warning
    for any other failed delivery (Slack, team webhook, digest, status summary; severity high). Undelivered
    immediate alerts go to the retry queue, so the next runs re-send them, even when they are no longer raised.
    """
    failed = result['failed_deliveries']
    delivered = len(result['sent'])
    late = (result.get('retry') or {}).get('sent') or []
    if not failed:
        text = ('%d message(s) would be delivered (check mode: nothing sent)' if check_mode else '%d message(s) delivered') % delivered
        if late:
            text += ', with %d alert(s) an earlier run could not deliver' % len(late)
        return make_check(DELIVERY_CHECK, 'ok', 0, 0, text, details={'delivered': delivered, 'failed': [], 'delivered_late': late})
    paging = any(item['kind'] == 'pager' or item['severity'] == 'critical' for item in failed)
    retried = sorted(set(key for item in failed for key in item['keys']))
    parts = ['%s (%s %s %s%s): %s' % (item['channel'], item['kind'], item['type'], item['severity'],
                                      ', %d alert(s)' % len(item['keys']) if item['keys'] else '', item['error']) for item in failed]
    text = 'alert delivery failed for %d message(s): %s' % (len(failed), '; '.join(parts))
    text += ('; %d undelivered alert(s) are retried on the next run' % len(retried)) if retried else ''
    text += '; %d message(s) delivered' % delivered
    details = {
        'severity': 'critical' if paging else 'high',
        'delivered': delivered,
        # 'alerts', not 'keys': report scrubbing masks every key that looks like a secret ("key")
        'failed': [{'channel': item['channel'], 'kind': item['kind'], 'type': item['type'], 'severity': item['severity'],
                    'alerts': list(item['keys']), 'error': item['error']} for item in failed],
        'retried_next_run': retried,
        'delivered_late': late,
    }
    return make_check(DELIVERY_CHECK, 'critical' if paging else 'warning', len(failed), 0, text, alert=DELIVERY_ALERT, details=details)


def make_sender(timeout_s=10, retries=2, opener=None, sleep=time.sleep):
    """Return ``send(url, body)``: POST JSON with ``open_url``, retrying ``retries`` times on failure.

    ``send`` raises DeliveryError when every attempt failed with one of SEND_ERRORS or a non-2xx status;
    any other exception is a bug and propagates at once (no retry, not a delivery failure).
    """
    opener = opener or open_url

    def send(url, body):
        data = json.dumps(body).encode('utf-8')
        error = None
        for attempt in range(retries + 1):
            if attempt:
                sleep(min(2.0, 0.25 * 2 ** (attempt - 1)))
            try:
                response = opener(url, data=data, method='POST', timeout=timeout_s, follow_redirects='none',
                                  headers={'Content-Type': 'application/json', 'Accept': 'application/json'},
                                  http_agent='dealerscope-ops-notify')
                code = response.getcode() if hasattr(response, 'getcode') else 200
                response.read()
                if code is not None and not 200 <= int(code) < 300:
                    error = 'HTTP %s' % code
                    continue
                return True
            except SEND_ERRORS as exc:
                error = describe_error(exc)
        raise DeliveryError('%s (after %d attempt%s)' % (error, retries + 1, '' if retries == 0 else 's'))

    return send


def describe_error(exc):
    """A short error text built from the exception type and reason, not from its URL-bearing repr."""
    code = getattr(exc, 'code', None)
    if isinstance(code, int):
        return 'HTTP %d %s' % (code, getattr(exc, 'reason', '') or '')
    reason = getattr(exc, 'reason', None)
    if reason is not None:
        return '%s: %s' % (type(exc).__name__, reason)
    return '%s: %s' % (type(exc).__name__, exc)


# ---------------------------------------------------------------------------------------------
# one notification run (shared by the ops_notify module and the runbook_end action plugin)

BOUNDS = {
    'timeout_s': (1, 60),
    'retries': (0, 5),
    'repeat_after_hours': (0, 24 * 365),
    'digest_daily_hours': (1, 24 * 7),
    'digest_weekly_days': (1, 31),
    'retry_max_hours': (1, 24 * 31),
    'lock_timeout_s': (1, 3600),
}

DEFAULTS = {
    'timeout_s': 10,
    'retries': 2,
    'repeat_after_hours': 24,
    'digest_daily_hours': 24,
    'digest_weekly_days': 7,
    'retry_max_hours': 72,
    'flush': 'auto',
    'status_summary': '',
    'report_url': '',
    'lock_timeout_s': LOCK_TIMEOUT_S,
}


class NotifyError(Exception):
    """The run could not be processed (bad input, internal error, state not writable); ``result`` is what is known."""

    def __init__(self, message, result=None):
        super(NotifyError, self).__init__(message)
        self.result = result or {}


def validate_bounds(params):
    """ValueError naming the first numeric option outside its bounds."""
    for name, (low, high) in BOUNDS.items():
        value = params.get(name, DEFAULTS[name])
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError('%s must be an integer between %d and %d, got %r' % (name, low, high, value))


def notify_once(alerts, channels, state_dir, runbook, check_mode=False, severity_map=None, sender=None, **options):
    """Route one run's alerts: validate, load the state, plan, deliver (or predict), save the state.

    Returns ``(result, warnings)``; ``result`` carries ``checks`` (the ``notify:delivery`` check). Raises
    ValueError for invalid input (before anything is sent) and NotifyError when the run cannot be processed.
    ``sender`` defaults to ``make_sender(timeout_s, retries)``; in check mode nothing is sent or saved.
    """
    params = dict(DEFAULTS, **options)
    validate_bounds(params)
    if params['flush'] not in FLUSH_MODES:
        raise ValueError('flush must be one of %s, got %r' % (', '.join(FLUSH_MODES), params['flush']))
    severity_map = validate_severity_map(dict(DEFAULT_SEVERITY_MAP, **(severity_map or {})))  # merged over the one map
    channels = validate_channels(channels)
    alerts = normalize_alerts(alerts, severity_map)

    warnings = []
    if os.path.exists(state_dir) and not os.path.isdir(state_dir):
        raise ValueError('state_dir %s exists and is not a directory' % state_dir)
    if os.path.isdir(state_dir) and os.stat(state_dir).st_mode & 0o077:
        warnings.append('state_dir %s is accessible by group or others; it should be mode 0700' % state_dir)
    if check_mode:  # reads only: the state files are replaced atomically, never seen half written
        return _notify_locked(alerts, channels, state_dir, runbook, True, severity_map, None, params, warnings)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(state_lock(state_dir, timeout_s=params['lock_timeout_s']))
        except OSError as exc:
            raise NotifyError('cannot lock the notification state in %s: %s' % (state_dir, exc))
        return _notify_locked(alerts, channels, state_dir, runbook, False, severity_map, sender, params, warnings)


def _notify_locked(alerts, channels, state_dir, runbook, check_mode, severity_map, sender, params, warnings):
    """notify_once's read - plan - deliver - save, under the state lock (or read-only in check mode)."""
    state = load_state(state_dir, warnings)

    plan = plan_run(alerts, channels, state, time.time(), severity_map=severity_map,
                    repeat_after_hours=params['repeat_after_hours'], digest_daily_hours=params['digest_daily_hours'],
                    digest_weekly_days=params['digest_weekly_days'], flush=params['flush'],
                    status_summary=params['status_summary'], runbook=runbook, report_url=params['report_url'],
                    retry_max_hours=params['retry_max_hours'])
    for dropped in plan['retry_dropped']:
        warnings.append('alert %s was never delivered to %s and is no longer retried (%s)' % (dropped['key'], dropped['channel'], dropped['reason']))
    if plan['no_team_channel']:
        warnings.append('medium/low alerts are queued but no channel has team=true, so no digest can be sent')
    if plan['unrouted']:
        warnings.append('no channel takes these alerts immediately: %s' % ', '.join(plan['unrouted']))

    if check_mode:
        sender = None
    elif sender is None:
        sender = make_sender(params['timeout_s'], params['retries'])
    try:
        result, new_state = execute(plan, state, channels, sender)
    except Exception as exc:  # pylint: disable=broad-except
        # only DeliveryError is a failed delivery; anything else is a bug and must not pass for a dead webhook
        secrets = [value for channel in channels for value in (channel['url'], channel['routing_key'])]
        raise NotifyError('internal error while delivering: %s: %s (a bug, not a delivery failure; the notification state '
                          'was not updated)' % (type(exc).__name__, redact(exc, secrets)))
    if not check_mode:
        try:
            ensure_state_dir(state_dir)
            save_state(state_dir, new_state)
        except OSError as exc:
            raise NotifyError('cannot write the notification state in %s: %s' % (state_dir, exc), result)
    result['checks'] = [delivery_check(result, check_mode=check_mode)]
    return result, warnings
