# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The patching role's report path (roles/patching/tasks/report.yml) through the real CLI, without a lab.

The fleet is one host on a closed port: the plan finds it unreachable and refuses the run, which writes the
(plan) report and tells the team. What is proven: --check writes its own plan report but deletes no old run
(retention is only predicted) and sends nothing; a notification that cannot be delivered is a critical
`alert delivery` row of the report and fails the run with a message that says so.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from .test_daily_report import free_port, messages, start_receiver

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
OLD_RUNS = ('20200101T000000Z', '20200102T000000Z', '20200103T000000Z')


class Fleet:
    def __init__(self, root, port):
        self.inventory = root / 'hosts.yml'
        self.inventory.write_text('all:\n  children:\n    dealerscope:\n      children:\n        app:\n          hosts:\n'
                                  '            ghost1: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}\n')
        self.reports = root / 'reports'
        self.notify = root / 'notify'
        self.port = port
        for name in OLD_RUNS:
            (self.reports / 'patch' / name).mkdir(parents=True)
            (self.reports / 'patch' / name / 'report.json').write_text('{}')

    def run(self, *args, **extra):
        extra_vars = {
            'patching_report_dir': str(self.reports),
            'patching_report_keep': 1,
            'patching_notify_state_dir': str(self.notify),
            'patching_lb_backend': 'none',
            'patching_pools': [],
            'patching_override_window': 'true',
            'patching_override_reason': 'role test',
            'patching_notify_channels': [
                {'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:%d/pager' % self.port, 'severities': ['critical']},
                {'name': 'slack', 'kind': 'slack', 'url': 'http://127.0.0.1:%d/slack' % self.port, 'severities': ['critical', 'high'],
                 'team': True},
            ],
        }
        extra_vars.update(extra)
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0', NO_COLOR='1')
        return subprocess.run([PLAYBOOK, '-i', str(self.inventory), 'dealerscope.ops.patch', '-e', json.dumps(extra_vars), *args],
                              cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300, check=False)

    def runs(self):
        return sorted(path.name for path in (self.reports / 'patch').iterdir())

    def report(self):
        return json.loads((self.reports / 'patch' / 'latest' / 'report.json').read_text())


def test_check_mode_writes_its_plan_report_and_deletes_nothing(tmp_path):
    fleet = Fleet(tmp_path, free_port())
    receiver = start_receiver(fleet.port, tmp_path / 'hooks.jsonl')
    try:
        result = fleet.run('--check')
        output = result.stdout + result.stderr
        runs = fleet.runs()
        assert set(OLD_RUNS) <= set(runs), runs  # keep=1, yet --check deleted no old run
        assert len(runs) == len(OLD_RUNS) + 2 and 'latest' in runs  # its own plan report and the latest link
        report = fleet.report()
        assert report['meta']['kind'] == 'plan' and report['meta']['check_mode'] is True
        assert '(check mode: retention would delete 3 old run(s), nothing was deleted)' in output, output[-3000:]
        assert messages(fleet.port) == [] and not fleet.notify.exists()  # nothing sent, no notification state
        assert 'alert delivery' not in report['hosts']
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_undelivered_notification_is_a_critical_row_and_fails_the_run(tmp_path):
    fleet = Fleet(tmp_path, free_port())  # nothing listens: every delivery fails
    result = fleet.run()
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ' - ALERT DELIVERY FAILED: alert delivery failed for ' in output, output[-3000:]
    row = fleet.report()['hosts']['alert delivery']
    assert row['status'] == 'critical' and row['checks'][0]['name'] == 'notify:delivery'
    assert row['checks'][0]['details']['failed'][0]['channel'] == 'pager'
    assert OLD_RUNS[0] not in fleet.runs()  # a real run applies retention


# ---------------------------------------------------------------------------------------------------- the rollout-start notification

# A host whose "Python" answers every module with canned JSON: apt_patch plans one upgrade, setup finds no local facts,
# anything else (the rollout's pre-check) fails - so the run reaches plan.yml's start notification and then the report.
FAKE_PYTHON = r'''#!/bin/sh
payload=$(cat; printf '%s' "$*")
case "$payload" in
  *apt_patch*) echo '{"changed": false, "to_upgrade": [{"name": "libdemo", "from": "1.0", "to": "1.1", "security": true}],
                       "held": [], "restarts": [], "reboot_required": false, "free_mb": 100000}' ;;
  *setup*) echo '{"changed": false, "ansible_facts": {}}' ;;
  *) echo '{"failed": true, "msg": "fake host: this module is not faked"}' ;;
esac
'''


def fake_host(fleet, root):
    python = root / 'fake-python'
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    fleet.inventory.write_text('all:\n  children:\n    dealerscope:\n      children:\n        app:\n          hosts:\n'
                               '            fake1: {ansible_connection: local, ansible_python_interpreter: %s}\n' % python)


def start_row(report):
    row = report['hosts']['alert delivery']
    return dict((check['name'], check) for check in row['checks'])


def test_rollout_start_notification_is_delivered_and_its_delivery_is_a_row(tmp_path):
    fleet = Fleet(tmp_path, free_port())
    fake_host(fleet, tmp_path)
    receiver = start_receiver(fleet.port, tmp_path / 'hooks.jsonl')
    try:
        result = fleet.run()
        output = result.stdout + result.stderr
        summaries = [m for m in messages(fleet.port) if 'DealerScope patching started' in json.dumps(m)]
        assert len(summaries) == 1, messages(fleet.port)
        report = fleet.report()
        assert report['meta']['kind'] == 'rollout', output[-3000:]
        check = start_row(report)['notify:rollout_start']
        assert check['status'] == 'ok' and check['message'] == 'rollout start notification: 1 message(s) delivered', check
    finally:
        receiver.shutdown()
        receiver.server_close()


@pytest.mark.parametrize('pager_is_team, status', [(False, 'warning'), (True, 'critical')])
def test_undelivered_rollout_start_notification_is_a_row_of_the_report(tmp_path, pager_is_team, status):
    """Nothing listens: the start summary to the team channel (slack; and the pager when it is a team channel) fails.
    Before, plan.yml ignored that result and the report said nothing about it."""
    fleet = Fleet(tmp_path, free_port())
    fake_host(fleet, tmp_path)
    channels = [
        {'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:%d/pager' % fleet.port, 'severities': ['critical'], 'team': pager_is_team},
        {'name': 'slack', 'kind': 'slack', 'url': 'http://127.0.0.1:%d/slack' % fleet.port, 'severities': ['critical', 'high'], 'team': True},
    ]
    result = fleet.run(patching_notify_channels=channels)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    report = fleet.report()
    assert report['meta']['kind'] == 'rollout', output[-3000:]
    check = start_row(report)['notify:rollout_start']
    assert check['status'] == status and check['alert'] == 'notification_failure', check
    assert check['message'].startswith('rollout start notification: alert delivery failed for '), check
    assert sorted(item['channel'] for item in check['details']['failed']) == (['pager', 'slack'] if pager_is_team else ['slack'])
    assert any(p['host'] == 'alert delivery' and p['name'] == 'notify:rollout_start' for p in report['problems'])
    if status == 'critical':
        assert 'rollout start notification: alert delivery failed' in ' '.join(output.split()), output[-3000:]
