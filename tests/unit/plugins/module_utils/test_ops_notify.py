# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible.module_utils.urls import SSLValidationError
from ansible_collections.dealerscope.ops.plugins.module_utils import ops_notify as n

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
T0 = 1_700_000_000.0
HOUR = 3600.0
DAY = 24 * HOUR


def load_receiver_module():
    spec = importlib.util.spec_from_file_location('ds_webhook_receiver', os.path.join(REPO_ROOT, 'lab', 'webhook_receiver.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Receiver:
    def __init__(self, path):
        self.server = load_receiver_module().WebhookReceiver(0, str(path))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def messages(self, path=None):
        with urllib.request.urlopen(self.url('/messages'), timeout=5) as response:
            items = json.loads(response.read())
        return [item for item in items if path is None or item['path'] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(tmp_path):
    server = Receiver(tmp_path / 'hooks.jsonl')
    yield server
    server.close()


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def channels_for(receiver):
    return n.validate_channels([
        {'name': 'pager', 'kind': 'pager', 'url': receiver.url('/pager'), 'severities': ['critical'], 'routing_key': 'rk-secret-1234'},
        {'name': 'slack', 'kind': 'slack', 'url': receiver.url('/slack'), 'severities': ['critical', 'high']},
        {'name': 'team', 'kind': 'webhook', 'url': receiver.url('/team'), 'severities': [], 'team': True},
    ])


def alert(host, check, alert_class, status='critical', message='boom', **extra):
    return dict(host=host, check=check, alert=alert_class, status=status, message=message, **extra)


ALERTS = [
    alert('app1', 'api_health', 'service_down'),
    alert('app2', 'api_latency', 'high_latency', 'warning', 'p95 800 ms'),
    alert('db1', 'disk:/var', 'resource_exhaustion', 'warning', '/var 83 % used'),
    alert('lb1', 'headers', 'security_headers', 'warning', 'missing HSTS'),
    alert('db2', 'replication', 'ok_class', 'ok', 'fine'),
]


def run(alerts, channels, state, now, send, **kwargs):
    normalized = n.normalize_alerts(alerts, n.validate_severity_map(kwargs.get('severity_map')))
    plan = n.plan_run(normalized, channels, state, now, **kwargs)
    return n.execute(plan, state, channels, send)


def fast_sender(retries=0):
    return n.make_sender(timeout_s=5, retries=retries, sleep=lambda _s: None)


def by_type(result, kind):
    return dict(((item['channel'], item['severity']), item) for item in result['sent'] if item['type'] == kind)


# ---------------------------------------------------------------------------------------------
# classification and validation


@pytest.mark.parametrize('alert_class, status, override, expected', [
    ('service_down', 'critical', None, 'critical'),
    ('high_error_rate', 'warning', None, 'critical'),
    ('high_latency', 'warning', None, 'high'),
    ('resource_exhaustion', 'critical', None, 'medium'),
    ('backup_success', 'warning', None, 'low'),
    ('deployment_complete', 'warning', None, 'low'),
    ('something_new', 'critical', None, 'critical'),
    ('something_new', 'warning', None, 'medium'),
    ('service_down', 'critical', 'low', 'low'),
])
def test_classify(alert_class, status, override, expected):
    assert n.classify(alert_class, status, n.DEFAULT_SEVERITY_MAP, override) == expected


def test_invalid_severity_in_map_is_rejected_naming_the_key():
    with pytest.raises(ValueError, match=r'severity_map\.high_latency: invalid severity .urgent.'):
        n.validate_severity_map({'service_down': 'critical', 'high_latency': 'urgent'})


def test_invalid_severity_override_is_rejected_naming_the_alert():
    with pytest.raises(ValueError, match=r'alerts\[1\]\.severity'):
        n.normalize_alerts([ALERTS[0], dict(ALERTS[1], severity='sev1')], n.DEFAULT_SEVERITY_MAP)


def test_invalid_channel_severity_and_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match=r'channels\[0\]\.severities'):
        n.validate_channels([{'name': 'a', 'kind': 'slack', 'url': 'http://x/', 'severities': ['warning']}])
    with pytest.raises(ValueError, match='duplicate channel name'):
        n.validate_channels([{'name': 'a', 'kind': 'slack', 'url': 'http://x/'}, {'name': 'a', 'kind': 'pager', 'url': 'http://y/'}])
    with pytest.raises(ValueError, match='must not start|does not start'):
        n.validate_channels([{'name': '@digest-medium', 'kind': 'slack', 'url': 'http://x/'}])


def test_normalize_skips_ok_accepts_check_results_and_merges_duplicates():
    alerts = n.normalize_alerts([
        {'host': 'app1', 'name': 'disk:/', 'status': 'warning', 'alert': 'resource_exhaustion', 'value': 81, 'unit': '%'},
        {'host': 'app1', 'check': 'disk:/', 'status': 'critical', 'alert': 'resource_exhaustion', 'message': 'full'},
        {'host': 'app1', 'check': 'api', 'status': 'ok', 'alert': None},
        {'host': 'app2', 'check': 'mystery', 'status': 'critical'},
    ], n.DEFAULT_SEVERITY_MAP)
    assert [a['key'] for a in alerts] == ['resource_exhaustion|app1|disk:/', 'mystery|app2|mystery']
    assert alerts[0]['status'] == 'critical' and alerts[0]['message'] == 'full'
    assert alerts[1]['severity'] == 'critical'


# ---------------------------------------------------------------------------------------------
# routing


def test_routing_table_per_severity(receiver):
    channels = channels_for(receiver)
    result, state = run(ALERTS, channels, n.empty_state(), T0, fast_sender(), status_summary='2 critical, 3 warning')
    immediate = by_type(result, 'immediate')
    assert set(immediate) == {('pager', 'critical'), ('slack', 'critical'), ('slack', 'high')}
    assert immediate[('pager', 'critical')]['keys'] == ['service_down|app1|api_health']
    assert immediate[('slack', 'high')]['keys'] == ['high_latency|app2|api_latency']
    assert result['classified']['medium'] == ['resource_exhaustion|db1|disk:/var']
    assert result['classified']['low'] == ['security_headers|lb1|headers']
    assert result['queued'] == {'medium': 1, 'low': 1}
    # first run ever: both digests are due, flushed to the team channel only
    assert result['flushed'] == {'medium': 1, 'low': 1}
    assert set(by_type(result, 'digest')) == {('team', 'medium'), ('team', 'low')}
    assert set(by_type(result, 'summary')) == {('team', 'info')}
    assert result['failed_deliveries'] == [] and result['changed'] is True
    assert state['queues'] == {'medium': [], 'low': []}

    pager = receiver.messages('/pager')
    assert len(pager) == 1
    body = pager[0]['body']
    assert body['event_action'] == 'trigger' and body['dedup_key'] == 'service_down|app1|api_health'
    assert body['payload']['severity'] == 'critical' and body['payload']['source'] == 'app1'
    assert body['routing_key'] == 'rk-secret-1234'
    slack = [m['body']['text'] for m in receiver.messages('/slack')]
    assert len(slack) == 2
    assert any(t.startswith('[CRITICAL]') and 'app1 api_health' in t for t in slack)
    assert any(t.startswith('[HIGH]') and 'p95 800 ms' in t for t in slack)
    team = [m['body']['text'] for m in receiver.messages('/team')]
    assert len(team) == 3
    assert any('daily digest' in t and '/var 83 % used' in t for t in team)
    assert any('weekly summary' in t and 'missing HSTS' in t for t in team)
    assert any(t == '[daily runbook] 2 critical, 3 warning' for t in team)


def test_unrouted_high_alert_is_reported():
    channels = n.validate_channels([{'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:1/p', 'severities': ['critical']}])
    result, _state = run([ALERTS[1]], channels, n.empty_state(), T0, None)
    assert result['unrouted'] == ['high_latency|app2|api_latency']
    assert result['sent'] == []


# ---------------------------------------------------------------------------------------------
# dedupe and recovery, state persisted on disk


def persisted_run(state_dir, alerts, channels, now, send, **kwargs):
    state = n.load_state(str(state_dir))
    result, new = run(alerts, channels, state, now, send, **kwargs)
    if send is not None:
        n.ensure_state_dir(str(state_dir))
        n.save_state(str(state_dir), new)
    return result


def test_dedupe_across_runs(receiver, tmp_path):
    state_dir = tmp_path / 'state'
    channels = channels_for(receiver)
    first = persisted_run(state_dir, ALERTS[:2], channels, T0, fast_sender())
    assert len(first['sent']) == 3
    assert oct(os.stat(state_dir).st_mode & 0o777) == '0o700'
    ledger = json.loads((state_dir / 'sent.json').read_text())
    assert ledger['service_down|app1|api_health'] == {'pager': T0, 'slack': T0}

    second = persisted_run(state_dir, ALERTS[:2], channels, T0 + 2 * HOUR, fast_sender())
    assert second['sent'] == []
    assert second['suppressed'] == {'count': 2, 'keys': ['high_latency|app2|api_latency', 'service_down|app1|api_health']}
    assert second['changed'] is False
    assert len(receiver.messages('/pager')) == 1 and len(receiver.messages('/slack')) == 2

    # after repeat_after_hours the still-failing alerts are sent again
    third = persisted_run(state_dir, ALERTS[:2], channels, T0 + 24 * HOUR, fast_sender())
    assert {(s['channel'], s['severity']) for s in third['sent']} == {('pager', 'critical'), ('slack', 'critical'), ('slack', 'high')}
    assert len(receiver.messages('/pager')) == 2


def test_recovery_rearms(receiver, tmp_path):
    state_dir = tmp_path / 'state'
    channels = channels_for(receiver)
    persisted_run(state_dir, ALERTS[:1], channels, T0, fast_sender())
    recovered = persisted_run(state_dir, [], channels, T0 + HOUR, fast_sender())
    assert recovered['recovered'] == ['service_down|app1|api_health']
    assert 'service_down|app1|api_health' not in json.loads((state_dir / 'sent.json').read_text())
    again = persisted_run(state_dir, ALERTS[:1], channels, T0 + 2 * HOUR, fast_sender())
    assert again['suppressed']['count'] == 0
    assert {s['channel'] for s in again['sent']} == {'pager', 'slack'}
    assert len(receiver.messages('/pager')) == 2


def test_repeat_after_zero_disables_dedupe():
    channels = n.validate_channels([{'name': 's', 'kind': 'slack', 'url': 'http://127.0.0.1:1/', 'severities': ['critical']}])
    state = n.empty_state()
    state['sent']['service_down|app1|api_health'] = {'s': T0}
    result, _new = run(ALERTS[:1], channels, state, T0 + 1, None, repeat_after_hours=0)
    assert [s['channel'] for s in result['sent']] == ['s']


# ---------------------------------------------------------------------------------------------
# digests


MEDIUM_A = alert('db1', 'disk:/var', 'resource_exhaustion', 'warning', 'A')
MEDIUM_B = alert('app1', 'disk:/', 'resource_exhaustion', 'warning', 'B')
LOW_A = alert('lb1', 'headers', 'security_headers', 'warning', 'hsts')


def test_daily_digest_schedule(receiver, tmp_path):
    state_dir = tmp_path / 'state'
    channels = channels_for(receiver)
    # first run: nothing flushed yet, so the digest is due right away
    first = persisted_run(state_dir, [MEDIUM_A], channels, T0, fast_sender())
    assert first['queued']['medium'] == 1 and first['flushed']['medium'] == 1
    assert json.loads((state_dir / 'last-flush.json').read_text())['medium'] == T0

    # later that day: queued, not flushed; the persisting alert A is not queued twice
    second = persisted_run(state_dir, [MEDIUM_A, MEDIUM_B], channels, T0 + 6 * HOUR, fast_sender())
    assert second['queued'] == {'medium': 1, 'low': 0}
    assert second['flushed'] == {'medium': 0, 'low': 0}
    assert second['suppressed']['keys'] == ['resource_exhaustion|db1|disk:/var']
    queue = [json.loads(line) for line in (state_dir / 'digest-medium.jsonl').read_text().splitlines()]
    assert [e['key'] for e in queue] == ['resource_exhaustion|app1|disk:/']
    assert second['changed'] is True

    # a day after the last flush (minus a little scheduler jitter): ONE digest message with B and the still
    # persisting A (its repeat window is over too), then the queue is empty
    receiver.server.clear()
    third = persisted_run(state_dir, [MEDIUM_A, MEDIUM_B], channels, T0 + 24 * HOUR - 60, fast_sender())
    assert third['queued']['medium'] == 1 and third['flushed']['medium'] == 2
    digests = receiver.messages('/team')
    assert len(digests) == 1
    text = digests[0]['body']['text']
    assert '2 alerts' in text and ': A' in text and ': B' in text
    assert (state_dir / 'digest-medium.jsonl').read_text() == ''

    # flushed once: nothing more until the next period, even with flush=auto
    fourth = persisted_run(state_dir, [MEDIUM_A, MEDIUM_B], channels, T0 + 25 * HOUR, fast_sender())
    assert fourth['flushed']['medium'] == 0 and len(receiver.messages('/team')) == 1


def test_weekly_digest_and_flush_modes(receiver, tmp_path):
    state_dir = tmp_path / 'state'
    channels = channels_for(receiver)
    persisted_run(state_dir, [], channels, T0, fast_sender(), flush='now')  # nothing queued: nothing flushed, nothing sent
    assert receiver.messages() == []
    never = persisted_run(state_dir, [LOW_A], channels, T0, fast_sender(), flush='never')
    assert never['queued']['low'] == 1 and never['flushed']['low'] == 0
    auto = persisted_run(state_dir, [], channels, T0 + DAY, fast_sender())
    assert auto['flushed']['low'] == 1  # never flushed before -> due
    low_b = dict(LOW_A, host='lb2')
    mid_week = persisted_run(state_dir, [low_b], channels, T0 + 3 * DAY, fast_sender())
    assert mid_week['queued']['low'] == 1 and mid_week['flushed']['low'] == 0
    week_later = persisted_run(state_dir, [], channels, T0 + 8 * DAY, fast_sender())
    assert week_later['flushed']['low'] == 1
    now = persisted_run(state_dir, [dict(LOW_A, host='lb3')], channels, T0 + 8 * DAY + HOUR, fast_sender(), flush='now')
    assert now['flushed']['low'] == 1
    texts = [m['body']['text'] for m in receiver.messages('/team')]
    assert len(texts) == 3 and all('weekly summary' in t for t in texts)


def test_digest_partial_failure_retries_only_the_failed_channel(receiver):
    channels = n.validate_channels([
        {'name': 'team-ok', 'kind': 'slack', 'url': receiver.url('/team-ok'), 'team': True},
        {'name': 'team-bad', 'kind': 'webhook', 'url': receiver.url('/status/500/team'), 'team': True},
    ])
    result, state = run([MEDIUM_A], channels, n.empty_state(), T0, fast_sender())
    assert result['flushed']['medium'] == 0
    assert [f['channel'] for f in result['failed_deliveries']] == ['team-bad']
    assert result['failed_deliveries'][0]['error'].startswith('HTTP 500')
    assert state['queues']['medium'][0]['flushed_to'] == ['team-ok']
    assert 'medium' not in state['last_flush']

    channels[1]['url'] = receiver.url('/team-bad')
    retry, state = run([MEDIUM_A], channels, state, T0 + HOUR, fast_sender())
    assert [(s['channel'], s['type']) for s in retry['sent']] == [('team-bad', 'digest')]
    assert retry['flushed']['medium'] == 1 and state['queues']['medium'] == []
    assert len(receiver.messages('/team-ok')) == 1


# ---------------------------------------------------------------------------------------------
# check mode and failures


def test_check_mode_sends_nothing(receiver):
    channels = channels_for(receiver)
    state = n.empty_state()
    result, new = run(ALERTS, channels, state, T0, None, status_summary='all bad')
    assert receiver.messages() == []
    assert state == n.empty_state()  # input untouched
    # but it reports exactly what a real run would do, changed included
    real, _state = run(ALERTS, channels, n.empty_state(), T0, fast_sender(), status_summary='all bad')
    assert result['changed'] is True and real['changed'] is True
    assert result['sent'] == real['sent'] and result['queued'] == real['queued'] and result['flushed'] == real['flushed']
    assert new['sent'].keys() == _state['sent'].keys()


def test_check_mode_predicts_changed_exactly_as_a_real_run():
    channels = n.validate_channels([{'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:9/p', 'severities': ['critical']}])

    def ok_sender(_url, _body):
        return True

    state = n.empty_state()
    for alerts, when in ((ALERTS[:1], T0), (ALERTS[:1], T0 + HOUR), ([], T0 + 2 * HOUR), ([], T0 + 3 * HOUR)):
        predicted, _unused = run(alerts, channels, state, when, None)
        real, state = run(alerts, channels, state, when, ok_sender)
        assert predicted['changed'] == real['changed'], (alerts, when, predicted, real)
    # sent / suppressed (nothing to do) / recovered (the ledger entry is forgotten) / nothing at all
    assert [run(a, channels, s, t, None)[0]['changed'] for a, s, t in (
        (ALERTS[:1], n.empty_state(), T0),
        (ALERTS[:1], {'sent': {'service_down|app1|api_health': {'pager': T0}}, 'queues': {'medium': [], 'low': []}, 'last_flush': {}}, T0 + HOUR),
        ([], {'sent': {'service_down|app1|api_health': {'pager': T0}}, 'queues': {'medium': [], 'low': []}, 'last_flush': {}}, T0 + HOUR),
        ([], n.empty_state(), T0))] == [True, False, True, False]


def test_delivery_check_pages_on_a_failed_pager_or_critical_alert():
    def result(*failed, sent=2):
        failures = [dict(channel=c, kind=k, type=t, severity=sev, keys=keys, error='URLError: refused') for c, k, t, sev, keys in failed]
        return {'sent': [{}] * sent, 'failed_deliveries': failures}
    ok = n.delivery_check(result())
    assert ok['status'] == 'ok' and ok['alert'] is None and ok['message'] == '2 message(s) delivered'
    assert n.delivery_check(result(), check_mode=True)['message'] == '2 message(s) would be delivered (check mode: nothing sent)'
    pager = n.delivery_check(result(('pager', 'pager', 'immediate', 'critical', ['service_down|app1|reachable'])))
    assert pager['status'] == 'critical' and pager['alert'] == 'notification_failure' and pager['value'] == 1
    assert pager['details']['severity'] == 'critical' and pager['details']['retried_next_run'] == ['service_down|app1|reachable']
    assert pager['details']['failed'][0]['alerts'] == ['service_down|app1|reachable'] and 'keys' not in pager['details']['failed'][0]
    assert pager['message'] == ('alert delivery failed for 1 message(s): pager (pager immediate critical, 1 alert(s)): URLError: refused; '
                                '1 undelivered alert(s) are retried on the next run; 2 message(s) delivered')
    # a critical alert that did not reach Slack is a page that did not go out either
    assert n.delivery_check(result(('slack', 'slack', 'immediate', 'critical', ['k'])))['status'] == 'critical'
    # a pager channel failing even a digest or summary: the pager is down
    assert n.delivery_check(result(('pd', 'pager', 'summary', 'info', [])))['status'] == 'critical'
    # anything else (high alerts, digests, the status summary to Slack) is a warning of severity high
    high = n.delivery_check(result(('slack', 'slack', 'immediate', 'high', ['a', 'b']), ('slack', 'slack', 'summary', 'info', [])))
    assert high['status'] == 'warning' and high['details']['severity'] == 'high' and high['alert'] == 'notification_failure'
    assert high['details']['retried_next_run'] == ['a', 'b'] and 'slack (slack summary info): URLError' in high['message']


def test_pagerduty_url_needs_a_routing_key():
    with pytest.raises(ValueError, match=r'channels\[0\]\.routing_key is required for a PagerDuty Events API v2 URL \(channel pd\)'):
        n.validate_channels([{'name': 'pd', 'kind': 'pager', 'url': 'https://events.pagerduty.com/v2/enqueue', 'severities': ['critical']}])
    with pytest.raises(ValueError, match='routing_key is required'):
        n.validate_channels([{'name': 'pd', 'kind': 'pager', 'url': 'https://events.eu.pagerduty.com/v2/enqueue'}])
    channel = n.validate_channels([{'name': 'pd', 'kind': 'pager', 'url': 'https://events.pagerduty.com/v2/enqueue', 'routing_key': 'R0123'}])[0]
    assert channel['routing_key'] == 'R0123'
    body = n.pager_body(n.normalize_alerts([alert('app1', 'reachable', 'service_down')], {})[0], channel, 'daily', '')
    assert body['routing_key'] == 'R0123' and body['event_action'] == 'trigger'
    # other pager receivers (the lab's, an adapter) may not need one
    assert n.validate_channels([{'name': 'p', 'kind': 'pager', 'url': 'http://127.0.0.1:8765/pager'}])[0]['routing_key'] is None
    assert n.validate_channels([{'name': 'p', 'kind': 'pager', 'url': 'https://notpagerduty.com.example/x'}])[0]['routing_key'] is None


def test_delivery_failure_is_reported_and_retried_next_run(receiver, tmp_path):
    state_dir = tmp_path / 'state'
    dead = 'http://127.0.0.1:%d/slack' % closed_port()
    channels = n.validate_channels([{'name': 'slack', 'kind': 'slack', 'url': dead, 'severities': ['critical']}])
    first = persisted_run(state_dir, ALERTS[:1], channels, T0, fast_sender(retries=1))
    assert first['sent'] == []
    assert len(first['failed_deliveries']) == 1
    failure = first['failed_deliveries'][0]
    assert failure['channel'] == 'slack' and failure['keys'] == ['service_down|app1|api_health']
    assert 'after 2 attempts' in failure['error'] and dead not in failure['error']
    assert json.loads((state_dir / 'sent.json').read_text()) == {}

    channels[0]['url'] = receiver.url('/slack')  # the endpoint is back
    second = persisted_run(state_dir, ALERTS[:1], channels, T0 + 600, fast_sender())
    assert second['failed_deliveries'] == [] and second['sent'][0]['keys'] == ['service_down|app1|api_health']
    assert len(receiver.messages('/slack')) == 1


EVENT = alert('db2', 'new_accounts', 'security_event', 'warning', 'new user(s): mallory since the last run', severity='critical')


def test_failed_page_for_an_event_is_retried_although_it_is_no_longer_raised(receiver, tmp_path):
    # an event "since the last run" is raised by one run only: its failed page must not be lost with it
    state_dir = tmp_path / 'state'
    channels = channels_for(receiver)
    channels[0]['url'] = 'http://127.0.0.1:%d/pager' % closed_port()
    first = persisted_run(state_dir, [EVENT], channels, T0, fast_sender())
    assert [f['channel'] for f in first['failed_deliveries']] == ['pager'] and first['retry']['pending'] == ['security_event|db2|new_accounts']
    assert len(receiver.messages('/slack')) == 1  # Slack got it; only the pager is retried
    retry = json.loads((state_dir / 'retry.json').read_text())
    assert list(retry) == ['pager'] and retry['pager']['security_event|db2|new_accounts']['failed_at'] == T0

    # next run: the event is not raised any more, the pager still does not answer - still pending, first failure kept
    second = persisted_run(state_dir, [], channels, T0 + HOUR, fast_sender())
    assert second['failed_deliveries'][0]['keys'] == ['security_event|db2|new_accounts']
    assert json.loads((state_dir / 'retry.json').read_text())['pager']['security_event|db2|new_accounts']['failed_at'] == T0

    channels[0]['url'] = receiver.url('/pager')  # the pager is back
    third = persisted_run(state_dir, [], channels, T0 + 2 * HOUR, fast_sender())
    assert third['failed_deliveries'] == [] and third['retry'] == {'sent': ['security_event|db2|new_accounts'], 'pending': [], 'dropped': []}
    assert third['changed'] is True
    pages = receiver.messages('/pager')
    assert len(pages) == 1 and pages[0]['body']['dedup_key'] == 'security_event|db2|new_accounts'
    assert pages[0]['body']['routing_key'] == 'rk-secret-1234'
    assert pages[0]['body']['payload']['summary'].startswith(
        '[daily] db2 new_accounts (security_event, warning): undelivered since 2023-11-14T22:13:20Z: new user')
    assert n.delivery_check(third)['message'].endswith('delivered, with 1 alert(s) an earlier run could not deliver')
    assert len(receiver.messages('/slack')) == 1  # not repeated where it was delivered
    assert json.loads((state_dir / 'retry.json').read_text()) == {}
    assert json.loads((state_dir / 'sent.json').read_text()) == {}  # a retried event is not a raised alert: no ledger entry
    fourth = persisted_run(state_dir, [], channels, T0 + 3 * HOUR, fast_sender())
    assert fourth['sent'] == [] and fourth['changed'] is False


def test_still_raised_alert_is_sent_once_not_twice():
    channels = n.validate_channels([{'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:9/p', 'severities': ['critical']}])
    state = n.empty_state()
    entry = dict(key='service_down|app1|api_health', host='app1', check='api_health', alert='service_down', status='critical',
                 message='boom', severity='critical', runbook='daily', failed_at=T0)
    state['retry'] = {'pager': {'service_down|app1|api_health': entry}}
    plan = n.plan_run(n.normalize_alerts(ALERTS[:1], {}), channels, state, T0 + HOUR)
    assert [len(d['requests']) for d in plan['deliveries']] == [1] and plan['retry_due'] == []
    calls = []
    result, new = n.execute(plan, state, channels, lambda url, body: calls.append(body))
    assert len(calls) == 1 and not calls[0]['payload']['summary'].startswith('[daily] app1 api_health (service_down, critical): undelivered')
    assert new['retry'] == {} and 'pager' in new['sent']['service_down|app1|api_health']


def test_retry_queue_drops_old_entries_and_gone_channels():
    channels = n.validate_channels([{'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:9/p', 'severities': ['critical']}])
    entry = dict(key='k|h|c', host='h', check='c', alert='k', status='critical', message='m', severity='critical', runbook='daily', failed_at=T0)
    state = n.empty_state()
    state['retry'] = {'pager': {'k|h|c': entry}, 'old-slack': {'k|h|c': entry}}
    plan = n.plan_run([], channels, state, T0 + 73 * HOUR, retry_max_hours=72)
    assert plan['deliveries'] == []
    assert sorted((d['channel'], d['reason']) for d in plan['retry_dropped']) == [
        ('old-slack', 'channel gone or no longer takes critical'), ('pager', 'older than 72 h')]
    result, new = n.execute(plan, state, channels, None)
    assert new['retry'] == {} and result['changed'] is True and len(result['retry']['dropped']) == 2
    plan = n.plan_run([], channels, state, T0 + 71 * HOUR, retry_max_hours=72)
    assert plan['retry_due'] == ['k|h|c'] and [d['channel'] for d in plan['retry_dropped']] == ['old-slack']


def test_load_state_ignores_a_damaged_retry_queue(tmp_path):
    (tmp_path / 'retry.json').write_text(json.dumps({'pager': {'a|b|c': {'key': 'a|b|c', 'severity': 'critical', 'failed_at': T0},
                                                               'x|y|z': {'key': 'other', 'severity': 'critical', 'failed_at': T0},
                                                               'bad|sev|x': {'key': 'bad|sev|x', 'severity': 'p1', 'failed_at': T0}},
                                                     'slack': 'nonsense'}))
    assert list(n.load_state(str(tmp_path))['retry']) == ['pager']
    assert list(n.load_state(str(tmp_path))['retry']['pager']) == ['a|b|c']
    (tmp_path / 'retry.json').write_text('{broken')
    warnings = []
    assert n.load_state(str(tmp_path), warnings)['retry'] == {} and len(warnings) == 1


def test_sender_retries_then_succeeds():
    calls = []

    class Response:
        def getcode(self):
            return 200

        def read(self):
            return b'{}'

    def opener(url, **kwargs):
        calls.append((url, kwargs['method'], json.loads(kwargs['data'])))
        if len(calls) < 3:
            raise urllib.error.URLError('temporary failure for %s' % url)
        return Response()

    sleeps = []
    send = n.make_sender(timeout_s=3, retries=2, opener=opener, sleep=sleeps.append)
    assert send('https://hooks.example/T/B/X', {'text': 'hi'}) is True
    assert len(calls) == 3 and calls[0][1] == 'POST' and calls[0][2] == {'text': 'hi'}
    assert sleeps == [0.25, 0.5]

    def refusing(url, **kwargs):
        raise OSError('nope')

    with pytest.raises(n.DeliveryError, match='after 1 attempt'):
        n.make_sender(retries=0, opener=refusing, sleep=sleeps.append)('http://x/', {})


@pytest.mark.parametrize('error', [
    urllib.error.URLError('[Errno 111] Connection refused'),
    urllib.error.HTTPError('http://x/', 503, 'Service Unavailable', {}, None),
    ConnectionResetError(104, 'Connection reset by peer'),
    socket.timeout('timed out'),
    ssl.SSLError(1, 'record layer failure'),
    http.client.RemoteDisconnected('Remote end closed connection without response'),
    SSLValidationError('Failed to validate the SSL certificate'),
])
def test_sender_network_tls_and_protocol_errors_are_delivery_errors(error):
    calls = []

    def opener(url, **kwargs):
        calls.append(url)
        raise error

    with pytest.raises(n.DeliveryError, match='after 2 attempts'):
        n.make_sender(retries=1, opener=opener, sleep=lambda _s: None)('http://x/', {})
    assert len(calls) == 2  # retried like any delivery failure


@pytest.mark.parametrize('error', [AttributeError("'NoneType' object has no attribute 'getcode'"), TypeError('bad operand'),
                                   KeyError('text'), ValueError('a bug, not the network')])
def test_sender_raises_bugs_instead_of_calling_them_delivery_failures(error):
    calls = []

    def opener(url, **kwargs):
        calls.append(url)
        raise error

    with pytest.raises(type(error)) as excinfo:
        n.make_sender(retries=2, opener=opener, sleep=lambda _s: None)('http://x/', {})
    assert excinfo.type is type(error)  # not DeliveryError
    assert len(calls) == 1  # a bug is not retried


def test_execute_raises_a_bug_in_send_instead_of_recording_a_failed_delivery(receiver):
    channels = channels_for(receiver)

    def send(url, body):
        raise AttributeError("'dict' object has no attribute 'encode'")

    with pytest.raises(AttributeError):
        run(ALERTS, channels, n.empty_state(), T0, send, status_summary='s')


@pytest.mark.parametrize('url', ['hooks.example.com/T/B/Zqsecret', 'ftp://hooks.example.com/Zqsecret', 'https:///Zqsecret', 'not a url Zqsecret'])
def test_channel_url_must_be_http_with_a_host_and_is_not_echoed(url):
    with pytest.raises(ValueError) as excinfo:
        n.validate_channels([{'name': 'slack', 'kind': 'slack', 'url': url, 'severities': ['critical']}])
    assert str(excinfo.value) == 'channels[0].url must be an http:// or https:// URL with a host (channel slack)'
    assert 'Zqsecret' not in str(excinfo.value)


# 'Zq' makes a generated secret distinct from words that legitimately appear in results ('critical', ...)
SECRET = st.text(alphabet='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_', min_size=6, max_size=40).map(lambda s: 'Zq' + s)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRET, token=SECRET, routing=SECRET, host_in_error=st.booleans())
def test_no_url_in_returned_values(receiver, secret, token, routing, host_in_error):
    dead = 'http://127.0.0.1:%d/services/%s/%s' % (closed_port(), secret, token)
    live = receiver.url('/hooks/%s?token=%s' % (secret, token))
    channels = n.validate_channels([
        {'name': 'dead', 'kind': 'slack', 'url': dead, 'severities': ['critical', 'high'], 'team': True},
        {'name': 'live', 'kind': 'pager', 'url': live, 'severities': ['critical'], 'routing_key': routing, 'team': True},
        {'name': 'raising', 'kind': 'webhook', 'url': 'https://hooks.example.com/%s/%s' % (secret, token), 'severities': ['critical']},
    ])
    real = fast_sender()

    def send(url, body):
        if 'hooks.example.com' in url:
            text = ('cannot reach %s' % url) if host_in_error else ('token %s rejected (routing %s)' % (token, routing))
            raise n.DeliveryError(text)
        return real(url, body)

    result, _state = run(ALERTS, channels, n.empty_state(), T0, send, status_summary='s', report_url='reports/daily.json')
    assert {f['channel'] for f in result['failed_deliveries']} == {'dead', 'raising'}
    dumped = json.dumps(result)
    for value in (secret, token, routing, dead, live):
        assert value not in dumped


# ---------------------------------------------------------------------------------------------
# state files and the lab receiver


def test_load_state_tolerates_damaged_files(tmp_path):
    (tmp_path / 'sent.json').write_text('{not json')
    (tmp_path / 'digest-medium.jsonl').write_text('{"key": "a|b|c", "host": "b"}\ngarbage\n')
    warnings = []
    state = n.load_state(str(tmp_path), warnings)
    assert state['sent'] == {}
    assert [e['key'] for e in state['queues']['medium']] == ['a|b|c']
    assert len(warnings) == 2


def test_save_state_is_atomic_and_private(tmp_path):
    state = n.empty_state()
    state['sent']['k|h|c'] = {'slack': T0}
    n.save_state(str(tmp_path), state)
    assert sorted(os.listdir(tmp_path)) == ['digest-low.jsonl', 'digest-medium.jsonl', 'last-flush.json', 'retry.json', 'sent.json']
    assert os.stat(tmp_path / 'sent.json').st_mode & 0o777 == 0o600
    assert n.load_state(str(tmp_path))['sent'] == state['sent']


def test_receiver_refuses_non_loopback(tmp_path):
    module = load_receiver_module()
    for host in ('0.0.0.0', '192.0.2.1', 'example.com', '::'):
        with pytest.raises(ValueError, match='loopback'):
            module.WebhookReceiver(0, str(tmp_path / 'x.jsonl'), host=host)


def test_receiver_records_lists_and_clears(receiver):
    request = urllib.request.Request(receiver.url('/team'), data=b'{"text": "hello"}', method='POST',
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {'ok': True}
    plain = urllib.request.Request(receiver.url('/raw'), data=b'not json', method='POST')
    urllib.request.urlopen(plain, timeout=5).close()
    messages = receiver.messages()
    assert [(m['path'], m['body']) for m in messages] == [('/team', {'text': 'hello'}), ('/raw', 'not json')]
    urllib.request.urlopen(urllib.request.Request(receiver.url('/messages'), method='DELETE'), timeout=5).close()
    assert receiver.messages() == []
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(urllib.request.Request(receiver.url('/status/503/x'), data=b'{}', method='POST'), timeout=5)
    assert excinfo.value.code == 503


# ---------------------------------------------------------------------------------------------
# overlapping runs (two cron firings, two AWX jobs on one shared state volume)


OVERLAPPING_RUN = """
import json, sys, time
from ansible_collections.dealerscope.ops.plugins.module_utils import ops_notify as n
state_dir, url, out, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
channels = n.validate_channels([{'name': 'pager', 'kind': 'pager', 'url': url, 'severities': ['critical'],
                                 'routing_key': 'rk-secret-1234'}])
real = n.make_sender(timeout_s=5, retries=0, sleep=lambda _s: None)

def slow(url, body):
    time.sleep(0.6)  # the other run reads the ledger while this one is still delivering
    return real(url, body)

time.sleep(max(0.0, start_at - time.time()))
alerts = [dict(host='app1', check='api_health', alert='service_down', status='critical', message='boom')]
result, _warnings = n.notify_once(alerts, channels, state_dir, 'daily', sender=slow)
with open(out, 'w', encoding='utf-8') as handle:
    json.dump(result['sent'], handle)
"""


def test_overlapping_runs_page_once_the_second_waits_for_the_first_ledger(receiver, tmp_path):
    """Two processes (two cron firings) start the same run at the same moment on one state directory."""
    outs = [tmp_path / ('run%d.json' % i) for i in range(2)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    start_at = time.time() + 1.5
    runs = [subprocess.Popen([sys.executable, '-c', OVERLAPPING_RUN, str(tmp_path / 'state'), receiver.url('/pager'), str(out),
                              str(start_at)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for out in outs]
    output = [process.communicate(timeout=60)[0] for process in runs]
    assert [process.returncode for process in runs] == [0, 0], output
    assert len(receiver.messages('/pager')) == 1, 'two overlapping runs paged twice: the ledger was read before it was written'
    assert sorted(len(json.loads(out.read_text())) for out in outs) == [0, 1]
    assert json.loads((tmp_path / 'state' / n.SENT_FILE).read_text()), 'the ledger lost the page'


def test_a_held_state_lock_stops_the_run_before_anything_is_sent(receiver, tmp_path):
    state_dir = tmp_path / 'state'
    held = []
    with n.state_lock(str(state_dir)):
        with pytest.raises(n.NotifyError, match='another run has held the notification state'):
            n.notify_once([alert('app1', 'api_health', 'service_down')], channels_for(receiver), str(state_dir), 'daily',
                          sender=lambda url, body: held.append(url), lock_timeout_s=1)
    assert held == [] and receiver.messages() == []
    # released: the next run goes ahead
    result, _warnings = n.notify_once([alert('app1', 'api_health', 'service_down')], channels_for(receiver), str(state_dir), 'daily',
                                      sender=fast_sender())
    assert len(result['sent']) >= 1
    assert oct(os.stat(state_dir / n.LOCK_FILE).st_mode & 0o777) == '0o600'


def test_check_mode_does_not_wait_for_the_lock(receiver, tmp_path):
    state_dir = tmp_path / 'state'
    with n.state_lock(str(state_dir)):
        result, _warnings = n.notify_once([alert('app1', 'api_health', 'service_down')], channels_for(receiver), str(state_dir),
                                          'daily', check_mode=True, lock_timeout_s=1)
    assert result['sent'] and receiver.messages() == []  # predicted, not sent, and not refused for the held lock
