# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The daily role's report path (roles/daily/tasks/report.yml) through the real CLI, without a lab.

The fleet is one host on a closed port (unreachable, so no host is touched) and the load balancer URL a
closed port; the notification channels point at the lab webhook receiver, run in-process on loopback.
What is proven: a failed delivery is a row of the report (critical for the pager) and the run fails;
the next run with the receiver up delivers the retried page, routing key included; --check changes
no file on the controller (report, notification state) and sends nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')  # the test runner's own virtualenv
ROUTING_KEY = 'rk-unit-0042'


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def start_receiver(port, path):
    spec = importlib.util.spec_from_file_location('ds_webhook_receiver', str(ROOT / 'lab' / 'webhook_receiver.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.WebhookReceiver(port, str(path))
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
    return server


def messages(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/messages' % port, timeout=5) as response:
        return json.loads(response.read())


class Fleet:
    def __init__(self, root, port):
        self.root = root
        self.port = port
        self.inventory = root / 'hosts.yml'
        self.inventory.write_text('all:\n  children:\n    dealerscope:\n      children:\n        app:\n          hosts:\n'
                                  '            ghost1: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}\n')
        self.reports = root / 'reports'
        self.notify = root / 'notify'
        self.lb_url = 'https://127.0.0.1:%d' % free_port()  # closed too; the same in every run, so are the alert keys

    def run(self, *args, **extra):
        extra_vars = {
            'daily_lb_url': self.lb_url,
            'daily_endpoints': [{'name': 'api', 'url': '{{ daily_lb_url }}/api', 'p95_ms': 500}],
            'daily_probe_count': 1,
            'daily_report_dir': str(self.reports),
            'daily_notify_state_dir': str(self.notify),
            'daily_notify_channels': [
                {'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:%d/pager' % self.port, 'routing_key': ROUTING_KEY,
                 'severities': ['critical']},
                {'name': 'slack', 'kind': 'slack', 'url': 'http://127.0.0.1:%d/slack' % self.port, 'severities': ['critical', 'high'],
                 'team': True},
            ],
        }
        extra_vars.update(extra)
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0', NO_COLOR='1')
        return subprocess.run([PLAYBOOK, '-i', str(self.inventory), 'dealerscope.ops.daily', '-e', json.dumps(extra_vars), *args],
                              cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300, check=False)

    def report(self):
        return json.loads((self.reports / 'daily' / 'latest' / 'report.json').read_text())

    def files(self):
        """Every file and link under the report and notification directories, with a digest of its content."""
        state = {}
        for base in (self.reports, self.notify):
            for path in sorted(base.rglob('*')) if base.exists() else []:
                if path.is_symlink():
                    state[str(path)] = 'link:' + os.readlink(path)
                elif path.is_file():
                    state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    state[str(path)] = 'dir'
        return state


def test_dead_pager_is_a_critical_report_row_and_the_page_is_retried_next_run(tmp_path):
    fleet = Fleet(tmp_path, free_port())  # nothing listens there yet: every delivery fails
    first = fleet.run()
    output = first.stdout + first.stderr
    assert first.returncode != 0, output[-3000:]
    report = fleet.report()
    row = report['hosts']['alert delivery']
    assert row['status'] == 'critical', row
    check = row['checks'][0]
    assert check['name'] == 'notify:delivery' and check['alert'] == 'notification_failure'
    assert check['details']['severity'] == 'critical'
    assert [(f['channel'], f['type']) for f in check['details']['failed']] == [('pager', 'immediate'), ('slack', 'immediate'), ('slack', 'summary')]
    assert 'service_down|ghost1|reachable' in check['details']['retried_next_run']
    assert any(p['host'] == 'alert delivery' and p['status'] == 'critical' for p in report['problems'])
    assert 'alert delivery: alert delivery failed' in output
    assert ROUTING_KEY not in output and ROUTING_KEY not in json.dumps(report)
    assert json.loads((fleet.notify / 'sent.json').read_text()) == {}  # nothing recorded as sent

    receiver = start_receiver(fleet.port, tmp_path / 'hooks.jsonl')
    try:
        second = fleet.run()
        report = fleet.report()
        row = report['hosts']['alert delivery']
        assert row['status'] == 'ok' and row['checks'][0]['message'].endswith(' message(s) delivered'), row
        pages = [m['body'] for m in messages(fleet.port) if m['path'] == '/pager']
        retried = [page for page in pages if page['dedup_key'] == 'service_down|ghost1|reachable']
        assert len(retried) == 1 and retried[0]['routing_key'] == ROUTING_KEY, pages
        assert second.returncode != 0  # the fleet itself is still down
        assert 'alert delivery' not in [p['host'] for p in report['problems']]
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_check_mode_changes_no_file_and_sends_nothing(tmp_path):
    fleet = Fleet(tmp_path, free_port())
    receiver = start_receiver(fleet.port, tmp_path / 'hooks.jsonl')
    try:
        fleet.run(daily_fail_on='never')
        before, sent = fleet.files(), len(messages(fleet.port))
        assert sent > 0 and any(path.endswith('sent.json') for path in before)
        result = fleet.run('--check', daily_fail_on='never')
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        assert fleet.files() == before
        assert len(messages(fleet.port)) == sent
        assert '(check mode: not written; retention would delete' in result.stdout
        # the ending predicts what a real run would report: changed (a report, the status summary)
        assert 'changed: [ghost1 -> localhost]' in result.stdout.split('Runbook ending - report, notifications')[1].split('TASK')[0]
    finally:
        receiver.shutdown()
        receiver.server_close()


@pytest.mark.parametrize('key', [{}, {'routing_key': ''}])
def test_pagerduty_pager_without_routing_key_is_refused_before_any_host_is_contacted(tmp_path, key):
    fleet = Fleet(tmp_path, free_port())
    secret = 'https://EVENTS.pagerduty.com/v2/enqueue?SECRET-IN-URL'
    result = fleet.run(daily_notify_channels=[dict({'name': 'oncall', 'kind': 'pager', 'url': secret, 'severities': ['critical']}, **key)])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'kind pager with a PagerDuty URL but no routing_key' in output and ': oncall' in output, output[-3000:]
    assert 'UNREACHABLE' not in output and 'SECRET-IN-URL' not in output
    assert not fleet.reports.exists()


def test_unusable_notification_state_is_refused_before_any_host_is_contacted(tmp_path):
    fleet = Fleet(tmp_path, free_port())
    (tmp_path / 'blocker').write_text('')
    result = fleet.run(daily_notify_state_dir=str(tmp_path / 'blocker' / 'notify'))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "notify_state_dir %s cannot hold the daily run's files: %s is not a directory" % (
        tmp_path / 'blocker' / 'notify', tmp_path / 'blocker') in output, output[-3000:]
    assert 'UNREACHABLE' not in output and not fleet.reports.exists()


def test_failing_notification_run_is_a_critical_row_not_a_crash(tmp_path):
    """The state directory passes the preflight but its ledger cannot be written (sent.json is a directory)."""
    fleet = Fleet(tmp_path, free_port())
    (fleet.notify / 'sent.json').mkdir(parents=True)
    fleet.notify.chmod(0o700)
    receiver = start_receiver(fleet.port, tmp_path / 'hooks.jsonl')
    try:
        result = fleet.run()
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert result.returncode != 0
    checks = fleet.report()['hosts']['alert delivery']['checks']
    assert [(c['name'], c['status'], c['alert']) for c in checks] == [('runbook_error', 'critical', 'runbook_error')], checks
    assert 'notifications could not be processed: cannot write the notification state in ' in checks[0]['message'], checks
