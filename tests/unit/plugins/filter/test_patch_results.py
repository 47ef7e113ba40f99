# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.filter.patch_results import patch_results, FilterModule

PLAN = {'changed': False, 'plan': [
    {'name': 'dslab-libdemo', 'current': '1.0', 'candidate': '1.1', 'security': True, 'action': 'upgrade', 'skip_reason': None},
    {'name': 'dslab-tools', 'current': '1.0', 'candidate': '1.1', 'security': None, 'action': 'skip', 'skip_reason': 'held (apt-mark hold)'}],
    'to_upgrade': ['dslab-libdemo'], 'held': ['dslab-tools'], 'restarts_predicted': ['dealerscope-api.service'],
    'reboot_predicted': True, 'free_mb': 5000}
RUN = {'targets': ['app1', 'app2', 'db1'], 'batches': [['app1'], ['app2'], ['db1']], 'plan_only': False}
OK = {'status': 'ok', 'phase': 'done', 'drained': True, 'drain_wait_s': 0.2, 'out_of_pool_s': 14.2, 'duration_s': 20.5,
      'upgrades': [{'name': 'dslab-libdemo', 'before': '1.0', 'after': '1.1'}], 'restarted': ['dealerscope-api.service'],
      'restart_pending': [], 'apt_seconds': 3.5, 'rebooted': True, 'reboot_seconds': 9, 'reboot_required': False,
      'postchecks': [{'name': 'service:dealerscope-api.service', 'status': 'ok', 'message': 'active'}],
      'prechecks': [{'name': 'service:dealerscope-api.service', 'status': 'ok', 'message': 'active'},
                    {'name': 'failed_units', 'status': 'ok', 'message': 'no failed systemd units'}]}
FAILED = {'status': 'failed', 'phase': 'enable', 'drained': True, 'failed_task': 'Post-check - the host is healthy',
          'message': 'post-check failed on app1: error rate 100 %', 'upgrades': [{'name': 'dslab-hookbreak', 'before': '1.0', 'after': '1.1'}],
          'restarted': [], 'restart_pending': [], 'apt_seconds': 2.0, 'rebooted': False, 'reboot_required': False,
          'postchecks': [{'name': 'error_rate:api_direct', 'status': 'critical', 'message': 'api_direct: 100 % errors'}]}


def by_name(checks):
    return dict((c['name'], c) for c in checks)


def test_rollout_ok_and_not_reached_after_halt():
    hostvars = {'app1': {'__patching_plan': PLAN, '__patching_record': FAILED}, 'app2': {'__patching_plan': PLAN},
                'db1': {'__patching_plan': PLAN, '__patching_record': None}}
    halt = {'host': 'app1', 'phase': 'enable', 'reason': 'post-check failed on app1: error rate 100 %'}
    result = patch_results(hostvars, RUN, halt)
    app1 = by_name(result['hosts']['app1'])
    assert app1['patch']['status'] == 'critical' and app1['patch']['alert'] == 'patch_failed'
    assert 'left out of the pool and marked failed' in app1['patch']['message']
    assert app1['postcheck']['status'] == 'critical' and 'api_direct: 100 % errors' in app1['postcheck']['message']
    app2 = by_name(result['hosts']['app2'])
    assert app2['patch']['status'] == 'warning' and app2['patch']['alert'] == 'patch_not_reached'
    assert 'rollout stopped at app1 (enable)' in app2['patch']['message']
    assert result['counts'] == {'targets': 3, 'patched': 0, 'failed': 1, 'not_reached': 2, 'nothing_to_do': 0, 'packages': 1, 'reboots': 0}
    assert 'stopped at app1' in result['summary']


def test_rollout_success_checks():
    hostvars = {'app1': {'__patching_plan': PLAN, '__patching_record': OK},
                'app2': {'__patching_plan': PLAN, '__patching_record': {'status': 'nothing_to_do'}},
                'db1': {'__patching_plan': PLAN, '__patching_record': dict(OK, drained=False, rebooted=False, reboot_required=True)}}
    result = patch_results(hostvars, RUN)
    app1 = by_name(result['hosts']['app1'])
    assert app1['upgrade']['value'] == 1 and 'dslab-libdemo 1.0 → 1.1' in app1['upgrade']['message']
    assert app1['restarts']['message'] == 'restarted: dealerscope-api.service'
    assert app1['reboot']['message'] == 'rebooted, back after 9 s'
    assert app1['pool']['value'] == 14.2
    assert app1['precheck']['status'] == 'ok' and app1['precheck']['message'].startswith('2 check(s) ok before patching')
    assert app1['plan']['value'] == 1 and 'left alone: dslab-tools (held (apt-mark hold))' in app1['plan']['message']
    assert by_name(result['hosts']['app2'])['patch']['message'].startswith('nothing to upgrade')
    db1 = by_name(result['hosts']['db1'])
    assert db1['reboot']['status'] == 'warning' and db1['reboot']['alert'] == 'reboot_pending' and 'pool' not in db1
    assert result['counts']['patched'] == 2 and result['counts']['reboots'] == 1 and result['apt_seconds'] == 7.0


def test_plan_only_and_refusals():
    hostvars = {'app1': {'__patching_plan': PLAN}, 'app2': {'__patching_plan': {'unreachable': True, 'msg': 'ssh refused'}},
                'db1': {'__patching_plan': PLAN}}
    result = patch_results(hostvars, dict(RUN, refusals=['app2: unreachable']))
    assert result['unreachable'] == ['app2']
    assert by_name(result['hosts']['app2'])['plan']['status'] == 'critical'
    assert set(by_name(result['hosts']['app1'])) == {'plan'}
    assert 'refused: app2: unreachable' in result['summary']
    plan_only = patch_results({'app1': {'__patching_plan': PLAN}}, dict(RUN, targets=['app1'], plan_only=True))
    assert plan_only['summary'] == 'plan: 1 package upgrade(s) on 1 host(s)'


LB_RUN = {'targets': ['app1', 'lb1'], 'batches': [['app1'], ['lb1']], 'plan_only': False, 'traffic_interruption': ['lb1']}


def test_a_patched_only_load_balancer_says_traffic_was_interrupted():
    lb_ok = dict(OK, drained=False, restarted=['nginx.service'])
    result = patch_results({'app1': {'__patching_plan': PLAN, '__patching_record': OK},
                            'lb1': {'__patching_plan': PLAN, '__patching_record': lb_ok}}, LB_RUN)
    traffic = by_name(result['hosts']['lb1'])['traffic']
    assert traffic['status'] == 'warning' and traffic['alert'] == 'traffic_interrupted'
    assert traffic['message'] == ('traffic was interrupted: lb1 is every load balancer (patching_lb_hosts) and was patched (rebooted; '
                                  'restarted nginx.service) with patching_allow_traffic_interruption=true')
    assert 'traffic' not in by_name(result['hosts']['app1'])
    assert result['summary'].endswith(' - traffic interrupted: lb1 patched while it was every load balancer '
                                      '(patching_allow_traffic_interruption)')


@pytest.mark.parametrize('record', [None, {'status': 'nothing_to_do'},
                                    {'status': 'failed', 'phase': 'precheck', 'message': 'pre-check failed on lb1: nginx.service is failed'}])
def test_a_load_balancer_left_alone_interrupted_nothing(record):
    result = patch_results({'app1': {'__patching_plan': PLAN, '__patching_record': OK},
                            'lb1': {'__patching_plan': PLAN, '__patching_record': record}}, LB_RUN)
    assert 'traffic' not in by_name(result['hosts']['lb1']) and 'traffic interrupted' not in result['summary']


def test_a_load_balancer_that_failed_after_a_change_did_interrupt_traffic():
    failed = dict(FAILED, phase='postcheck', drained=False)
    result = patch_results({'app1': {'__patching_plan': PLAN, '__patching_record': OK},
                            'lb1': {'__patching_plan': PLAN, '__patching_record': failed}}, LB_RUN)
    assert by_name(result['hosts']['lb1'])['traffic']['message'].startswith('traffic was interrupted: lb1')
    assert 'traffic interrupted: lb1' in result['summary']


def test_a_plan_says_the_run_would_interrupt_traffic():
    result = patch_results({'app1': {'__patching_plan': PLAN}, 'lb1': {'__patching_plan': PLAN}}, dict(LB_RUN, plan_only=True))
    traffic = by_name(result['hosts']['lb1'])['traffic']
    assert traffic['status'] == 'warning' and 'would interrupt all traffic' in traffic['message']
    assert 'patching_allow_traffic_interruption=true' in traffic['message']


def test_bad_run_is_explained():
    with pytest.raises(AnsibleFilterError, match='__patching_run'):
        patch_results({}, {'no': 'targets'})
    assert FilterModule().filters()['patch_results'] is patch_results
