# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
from html.parser import HTMLParser

import jsonschema
import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, threshold_check
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import REPORT_SCHEMA
from ansible_collections.dealerscope.ops.plugins.modules import ops_report
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401


STARTED = '2025-01-31T06:00:00Z'
RUN = '20250131T060000Z'


@pytest.fixture(autouse=True)
def patched(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)


def run(**args):
    with set_module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
            ops_report.main()
    return excinfo.type is AnsibleFailJson, excinfo.value.result


def fleet(disk_var=41.0, db_backup_h=2.0):
    def base(cpu):
        return [
            threshold_check('cpu', cpu, warn=70, crit=90, unit='%', alert='resource_exhaustion'),
            threshold_check('memory', 40.0, warn=80, crit=95, unit='%', alert='resource_exhaustion'),
            threshold_check('disk:/', 30.0, warn=80, crit=90, unit='%', alert='resource_exhaustion'),
            threshold_check('disk:/var', disk_var, warn=80, crit=90, unit='%', alert='resource_exhaustion'),
            make_check('failed_units', 'ok', 0, 0, 'no failed systemd units', details={'units': []}),
        ]
    return {
        'lb1': base(5.0) + [make_check('service:nginx.service', 'ok', 'active', 'active', 'nginx.service is active')],
        'app1': base(20.0) + [threshold_check('api:latency_p95', 180.0, warn=500, crit=1000, unit='ms', alert='high_latency')],
        'app2': base(22.0) + [threshold_check('api:latency_p95', 210.0, warn=500, crit=1000, unit='ms', alert='high_latency')],
        'db1': base(8.0) + [threshold_check('backup_age', db_backup_h, crit=6, unit='h', alert='backup_stale')],
        'db2': base(7.0) + [threshold_check('replication_lag', 0.1, warn=30, crit=300, unit='s', alert='replication_lag')],
    }


def args(tmp_path, **overrides):
    result = dict(runbook='daily', report_dir=str(tmp_path / 'reports'), started_at=STARTED, finished_at='2025-01-31T06:00:08Z',
                  hosts=fleet(), meta={'inventory': 'lab', 'fleet_size': 5})
    result.update(overrides)
    return result


def read(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def test_writes_the_three_files_and_latest(tmp_path):
    failed, result = run(**args(tmp_path))
    assert not failed
    assert result['changed'] is True
    run_dir = str(tmp_path / 'reports' / 'daily' / RUN)
    assert result['report_dir'] == run_dir
    assert result['paths'] == {'json': run_dir + '/report.json', 'md': run_dir + '/report.md', 'html': run_dir + '/report.html',
                               'latest': str(tmp_path / 'reports' / 'daily' / 'latest')}
    assert result['status'] == 'ok' and result['problems'] == [] and result['pruned'] == []
    assert result['summary']['hosts'] == 5 and result['summary']['checks'] == 30 and result['summary']['ok'] == 30
    report = json.loads(read(result['paths']['json']))
    jsonschema.validate(report, REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report['duration_s'] == 8 and report['summary'] == result['summary']
    assert read(result['paths']['md']).startswith('# daily runbook report\n')
    assert read(result['paths']['html']).startswith('<!DOCTYPE html>')
    assert os.readlink(result['paths']['latest']) == RUN
    assert sorted(os.listdir(run_dir)) == ['report.html', 'report.json', 'report.md']  # no temporary files left
    parser = HTMLParser()
    parser.feed(read(result['paths']['html']))
    parser.close()


def test_check_mode_writes_nothing(tmp_path):
    failed, result = run(_ansible_check_mode=True, **args(tmp_path, hosts=fleet(disk_var=85.0)))
    assert not failed
    assert result['changed'] is True
    assert result['status'] == 'warning'
    assert result['summary']['warning'] == 5
    assert result['paths']['html'].endswith('/daily/%s/report.html' % RUN)
    assert [p['name'] for p in result['problems']] == ['disk:/var'] * 5
    assert not (tmp_path / 'reports').exists()


def test_second_run_switches_latest_and_keeps_the_first(tmp_path):
    run(**args(tmp_path))
    failed, result = run(**args(tmp_path, started_at='2025-02-01T06:00:00+00:00', finished_at='2025-02-01T06:00:09Z'))
    assert not failed
    daily = tmp_path / 'reports' / 'daily'
    assert os.readlink(daily / 'latest') == '20250201T060000Z'
    assert sorted(os.listdir(daily)) == [RUN, '20250201T060000Z', 'latest']
    assert json.loads((daily / 'latest' / 'report.json').read_text())['started_at'] == '2025-02-01T06:00:00Z'


def test_retention_keep(tmp_path):
    daily = tmp_path / 'reports' / 'daily'
    old = ['20250101T060000Z', '20250102T060000Z', '20250103T060000Z', '20250104T060000Z']
    for name in old:
        (daily / name).mkdir(parents=True)
        (daily / name / 'report.json').write_text('{}')
    (daily / 'keep-me').mkdir()
    os.symlink('20250104T060000Z', daily / 'latest')
    failed, result = run(_ansible_check_mode=True, **args(tmp_path, keep=3))
    assert not failed
    assert result['pruned'] == [str(daily / '20250102T060000Z'), str(daily / '20250101T060000Z')]
    assert sorted(os.listdir(daily)) == sorted(old + ['keep-me', 'latest'])  # check mode deleted nothing
    failed, result = run(**args(tmp_path, keep=3))
    assert not failed
    assert sorted(os.listdir(daily)) == ['20250103T060000Z', '20250104T060000Z', RUN, 'keep-me', 'latest']
    assert os.readlink(daily / 'latest') == RUN


def old_runs(tmp_path, names):
    daily = tmp_path / 'reports' / 'daily'
    for name in names:
        (daily / name).mkdir(parents=True)
        (daily / name / 'report.json').write_text('{}')
    os.symlink(names[-1], daily / 'latest')
    return daily


def test_check_mode_plan_report_is_written_but_retention_deletes_nothing(tmp_path):
    # a --check run may write its own (plan) report, but never deletes anything: retention is only predicted
    old = ['20250101T060000Z', '20250102T060000Z', '20250103T060000Z']
    daily = old_runs(tmp_path, old)
    failed, result = run(_ansible_check_mode=True, **args(tmp_path, keep=1, write_in_check_mode='true'))
    assert not failed
    assert result['changed'] is True and result['written'] is True
    assert sorted(os.listdir(daily)) == sorted(old + [RUN, 'latest'])  # nothing deleted
    assert result['pruned'] == [str(daily / name) for name in reversed(old)]  # what retention would delete
    assert 'retention skipped, it would delete 3 old run(s)' in result['msg']
    assert os.readlink(daily / 'latest') == RUN
    assert json.loads((daily / RUN / 'report.json').read_text())['status'] == 'ok'


def test_check_mode_without_write_in_check_mode_writes_and_deletes_nothing(tmp_path):
    old = ['20250101T060000Z', '20250102T060000Z']
    daily = old_runs(tmp_path, old)
    failed, result = run(_ansible_check_mode=True, **args(tmp_path, keep=1, write_in_check_mode='false'))
    assert not failed
    assert result['written'] is False and len(result['pruned']) == 2
    assert sorted(os.listdir(daily)) == sorted(old + ['latest']) and os.readlink(daily / 'latest') == old[-1]


def test_keep_must_be_positive(tmp_path):
    failed, result = run(**args(tmp_path, keep=0))
    assert failed and 'keep must be at least 1' in result['msg']
    assert not (tmp_path / 'reports').exists()


def test_fail_on_critical_fails_after_writing(tmp_path):
    failed, result = run(**args(tmp_path, hosts=fleet(db_backup_h=9.0), unreachable=['db2'],
                                failed={'app1': 'Failed to connect to the host via ssh'}))
    assert failed
    assert result['status'] == 'critical'
    assert result['msg'].startswith('daily runbook status is critical (fail_on=critical): ')
    assert 'app1 runbook_error (critical), db1 backup_age (critical), db2 reachable (critical)' in result['msg']
    assert result['msg'].endswith('report: %s' % result['paths']['html'])
    assert os.path.isfile(result['paths']['html']) and os.path.isfile(result['paths']['json'])
    report = json.loads(read(result['paths']['json']))
    assert report['hosts']['db2']['checks'][0]['name'] == 'reachable'
    assert report['hosts']['app1']['checks'][0]['message'] == 'runbook task failed on app1: Failed to connect to the host via ssh'
    assert result['summary']['by_alert'] == {'backup_stale': 1, 'runbook_error': 1, 'service_down': 1}


def test_fail_on_levels(tmp_path):
    warning = fleet(disk_var=85.0)
    failed, result = run(**args(tmp_path, hosts=warning))
    assert not failed and result['status'] == 'warning'
    failed, result = run(**args(tmp_path, hosts=warning, fail_on='warning'))
    assert failed and 'lb1 disk:/var (warning)' in result['msg']
    failed, result = run(**args(tmp_path, hosts=fleet(db_backup_h=9.0), fail_on='never'))
    assert not failed and result['status'] == 'critical'


def test_fail_in_check_mode_says_nothing_was_written(tmp_path):
    failed, result = run(_ansible_check_mode=True, **args(tmp_path, unreachable=['db2']))
    assert failed
    assert result['msg'].endswith('(check mode: not written)')
    assert not (tmp_path / 'reports').exists()


@pytest.mark.parametrize('override, message', [
    (dict(started_at='last tuesday'), 'not an ISO-8601 timestamp'),
    (dict(finished_at='2025-01-31T05:00:00Z'), 'is before started_at'),
    (dict(runbook='../etc'), 'runbook must be a simple name'),
])
def test_invalid_input(tmp_path, override, message):
    failed, result = run(**args(tmp_path, **override))
    assert failed and message in result['msg']
    assert not (tmp_path / 'reports').exists() and not (tmp_path / 'etc').exists()


def test_secrets_do_not_reach_files_or_result(tmp_path):
    hosts = fleet()
    hosts['app1'][0] = dict(hosts['app1'][0], details={'webhook': 'https://hooks.example/T0/B0/Xs3cr3tWebhookValue'})
    hosts['lb1'][0] = dict(hosts['lb1'][0], status='critical', alert='service_down',
                           message='probe https://ops:Pr0beSecretPw@lb1/health failed')
    failed, result = run(**args(tmp_path, hosts=hosts, fail_on='never',
                                meta={'inventory': 'lab', 'db_password': 'Hunter2Secret', 'notify': {'api_token': 'TokVal123'}}))
    assert not failed
    texts = [read(result['paths'][kind]) for kind in ('json', 'md', 'html')] + [json.dumps(result)]
    for text in texts:
        for secret in ('Xs3cr3tWebhookValue', 'Pr0beSecretPw', 'Hunter2Secret', 'TokVal123'):
            assert secret not in text
    report = json.loads(texts[0])
    assert report['meta'] == {'inventory': 'lab', 'db_password': '***', 'notify': {'api_token': '***'}}
    assert result['problems'][0]['message'] == 'probe https://***@lb1/health failed'


def test_latest_that_is_a_directory_fails_cleanly(tmp_path):
    (tmp_path / 'reports' / 'daily' / 'latest').mkdir(parents=True)
    failed, result = run(**args(tmp_path))
    assert failed
    assert 'cannot write the report' in result['msg'] and 'not a symlink' in result['msg']
    assert result['status'] == 'ok'
