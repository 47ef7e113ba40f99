# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import importlib.util
import json
import os
import socket
import threading
import urllib.request

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.module_utils import ops_notify as ops_notify_utils
from ansible_collections.dealerscope.ops.plugins.modules import ops_notify
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SLACK_SECRET = 'T0SECRET/B0SECRET/xoxbSecretToken123'


class Receiver:
    def __init__(self, path):
        spec = importlib.util.spec_from_file_location('ds_webhook_receiver', os.path.join(REPO_ROOT, 'lab', 'webhook_receiver.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.server = module.WebhookReceiver(0, str(path))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def messages(self, path=None):
        with urllib.request.urlopen(self.url('/messages'), timeout=5) as response:
            return [m for m in json.loads(response.read()) if path is None or m['path'] == path]


@pytest.fixture
def receiver(tmp_path):
    server = Receiver(tmp_path / 'hooks.jsonl')
    yield server
    server.server.shutdown()
    server.server.server_close()


class Harness:
    def __init__(self, monkeypatch, tmp_path, receiver):
        self.receiver = receiver
        self.state_dir = tmp_path / 'state'
        self.warnings = []
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda _self, warning, **kw: self.warnings.append(warning))

    def channels(self):
        return [
            {'name': 'pager', 'kind': 'pager', 'url': self.receiver.url('/pager'), 'severities': ['critical']},
            {'name': 'slack', 'kind': 'slack', 'url': self.receiver.url('/slack/' + SLACK_SECRET), 'severities': ['critical', 'high'],
             'team': True},
        ]

    def run(self, **args):
        args.setdefault('channels', self.channels())
        args.setdefault('state_dir', str(self.state_dir))
        args.setdefault('retries', 0)
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                ops_notify.main()
        return excinfo.type is AnsibleFailJson, excinfo.value.result


@pytest.fixture
def harness(monkeypatch, tmp_path, receiver):
    return Harness(monkeypatch, tmp_path, receiver)


ALERTS = [
    {'host': 'app1', 'check': 'api_health', 'alert': 'service_down', 'status': 'critical', 'message': 'API down'},
    {'host': 'app2', 'check': 'api_latency', 'alert': 'high_latency', 'status': 'warning', 'message': 'p95 900 ms'},
    {'host': 'db1', 'check': 'disk:/var', 'alert': 'resource_exhaustion', 'status': 'warning', 'message': '/var 85 %'},
]


def test_two_runs_second_suppresses_duplicates(harness):
    failed, first = harness.run(alerts=ALERTS, status_summary='1 critical, 2 warning')
    assert not failed
    assert first['changed'] is True
    assert {(s['channel'], s['type'], s['severity']) for s in first['sent']} == {
        ('pager', 'immediate', 'critical'), ('slack', 'immediate', 'critical'), ('slack', 'immediate', 'high'),
        ('slack', 'digest', 'medium'), ('slack', 'summary', 'info')}
    assert first['queued'] == {'medium': 1, 'low': 0} and first['flushed'] == {'medium': 1, 'low': 0}
    assert first['checks'][0]['name'] == 'notify:delivery' and first['checks'][0]['status'] == 'ok'
    assert sorted(os.listdir(harness.state_dir)) == ['.lock', 'digest-low.jsonl', 'digest-medium.jsonl', 'last-flush.json', 'retry.json', 'sent.json']
    assert os.stat(harness.state_dir).st_mode & 0o777 == 0o700

    failed, second = harness.run(alerts=ALERTS, status_summary='1 critical, 2 warning')
    assert not failed
    assert [(s['channel'], s['type']) for s in second['sent']] == [('slack', 'summary')]  # the summary is never deduplicated
    assert second['suppressed']['keys'] == ['high_latency|app2|api_latency', 'resource_exhaustion|db1|disk:/var',
                                            'service_down|app1|api_health']
    assert len(harness.receiver.messages('/pager')) == 1


def test_check_mode_sends_and_writes_nothing(harness):
    failed, result = harness.run(alerts=ALERTS, status_summary='x', _ansible_check_mode=True)
    assert not failed
    assert result['changed'] is True  # a real run would send: check mode says so
    assert len(result['sent']) == 5  # what would be sent
    assert result['checks'][0]['message'] == '5 message(s) would be delivered (check mode: nothing sent)'
    assert harness.receiver.messages() == []
    assert not harness.state_dir.exists()
    # after a real run, the same alerts again: only the status summary would go out (changed); without it, nothing
    harness.run(alerts=ALERTS, status_summary='x')
    failed, result = harness.run(alerts=ALERTS, status_summary='x', _ansible_check_mode=True)
    assert result['changed'] is True and [s['type'] for s in result['sent']] == ['summary']
    failed, result = harness.run(alerts=ALERTS, _ansible_check_mode=True)
    assert result['changed'] is False and result['sent'] == []
    failed, real = harness.run(alerts=ALERTS)
    assert real['changed'] is False


def test_invalid_severity_map_is_rejected(harness):
    failed, result = harness.run(alerts=ALERTS, severity_map={'service_down': 'p1'})
    assert failed
    assert 'severity_map.service_down' in result['msg']
    failed, result = harness.run(alerts=[dict(ALERTS[0], severity='urgent')])
    assert failed and 'alerts[0].severity' in result['msg']
    failed, result = harness.run(alerts=ALERTS, channels=[{'name': 'x', 'kind': 'slack', 'url': 'http://127.0.0.1:1/', 'severities': ['p1']}])
    assert failed and 'severities' in result['msg']


def test_bounds_are_enforced(harness):
    failed, result = harness.run(timeout_s=0)
    assert failed and 'timeout_s must be an integer between 1 and 60, got 0' in result['msg']
    failed, result = harness.run(retries=9)
    assert failed and 'retries' in result['msg']
    failed, result = harness.run(retry_max_hours=0)
    assert failed and 'retry_max_hours must be an integer between 1 and 744' in result['msg']


def test_delivery_failure_reported_without_url_and_optionally_fatal(harness):
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    dead = 'http://127.0.0.1:%d/hooks/%s' % (sock.getsockname()[1], SLACK_SECRET)
    sock.close()
    channels = [{'name': 'slack', 'kind': 'slack', 'url': dead, 'severities': ['critical']}]
    failed, result = harness.run(alerts=ALERTS[:1], channels=channels)
    assert not failed
    assert result['failed_deliveries'][0]['channel'] == 'slack' and result['failed_deliveries'][0]['keys'] == ['service_down|app1|api_health']
    assert result['checks'][0]['status'] == 'critical' and result['checks'][0]['alert'] == 'notification_failure'
    assert 'SECRET' not in json.dumps(result) and dead not in json.dumps(result)
    failed, result = harness.run(alerts=ALERTS[:1], channels=channels, fail_on_delivery_error=True)
    assert failed and result['msg'] == 'delivery failed for slack'
    assert 'SECRET' not in json.dumps(result)


def test_a_bug_fails_the_module_instead_of_a_retried_delivery_failure(harness, monkeypatch):
    def buggy_sender(timeout_s, retries):
        def send(url, body):
            raise AttributeError("'NoneType' object has no attribute 'getcode' (%s)" % url)
        return send

    monkeypatch.setattr(ops_notify_utils, 'make_sender', buggy_sender)
    failed, result = harness.run(alerts=ALERTS[:1])
    assert failed
    assert result['msg'].startswith("ops_notify failed: internal error while delivering: AttributeError: 'NoneType' object has no attribute")
    assert 'failed_deliveries' not in result and 'checks' not in result
    assert SLACK_SECRET not in json.dumps(result) and 'T0SECRET' not in json.dumps(result)
    assert not [p for p in harness.state_dir.iterdir() if p.name != '.lock']  # nothing recorded: neither sent nor queued for a retry


def closed_url(path):
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return 'http://127.0.0.1:%d%s' % (port, path)


def test_dead_pager_is_a_critical_delivery_check_and_the_page_is_retried_next_run(harness):
    channels = harness.channels()
    channels[0]['url'] = closed_url('/pager')
    channels[0]['routing_key'] = 'rk-lab-0001'
    failed, first = harness.run(alerts=ALERTS, channels=channels)
    assert not failed  # the module reports; the runbook turns the check into the run's status
    check = first['checks'][0]
    assert check['name'] == 'notify:delivery' and check['status'] == 'critical' and check['alert'] == 'notification_failure'
    assert check['details']['retried_next_run'] == ['service_down|app1|api_health']
    assert 'rk-lab-0001' not in json.dumps(first)
    assert harness.receiver.messages('/pager') == []
    # the pager is back: the page that did not go out is sent now; Slack's copy is not repeated
    failed, second = harness.run(alerts=ALERTS)
    assert second['checks'][0]['status'] == 'ok'
    assert [(s['channel'], s['keys']) for s in second['sent'] if s['type'] == 'immediate'] == [('pager', ['service_down|app1|api_health'])]
    pages = harness.receiver.messages('/pager')
    assert len(pages) == 1 and pages[0]['body']['dedup_key'] == 'service_down|app1|api_health'


def test_dead_slack_for_high_alerts_is_a_warning(harness):
    channels = harness.channels()
    channels[1]['url'] = closed_url('/slack')
    failed, result = harness.run(alerts=ALERTS[1:2], channels=channels)
    check = result['checks'][0]
    assert check['status'] == 'warning' and check['details']['severity'] == 'high' and check['alert'] == 'notification_failure'
    assert check['details']['retried_next_run'] == ['high_latency|app2|api_latency']


def test_pagerduty_channel_without_routing_key_is_refused(harness):
    channels = [{'name': 'pd', 'kind': 'pager', 'url': 'https://events.pagerduty.com/v2/enqueue', 'severities': ['critical']}]
    failed, result = harness.run(alerts=ALERTS, channels=channels)
    assert failed and 'channels[0].routing_key is required for a PagerDuty Events API v2 URL (channel pd)' in result['msg']


def test_unrouted_alert_warns(harness):
    channels = [{'name': 'pager', 'kind': 'pager', 'url': harness.receiver.url('/pager'), 'severities': ['critical']}]
    failed, result = harness.run(alerts=ALERTS, channels=channels)
    assert not failed
    assert result['unrouted'] == ['high_latency|app2|api_latency']
    assert any('no channel takes these alerts' in w for w in harness.warnings)
    assert any('no channel has team=true' in w for w in harness.warnings)
