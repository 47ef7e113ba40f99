# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.controller_plan filter, on the role's real defaults and the roles' real argument specs."""

from __future__ import annotations

import copy
import datetime
import pathlib

import pytest
import yaml
from dateutil import rrule as dateutil_rrule

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter import controller_plan as plugin
from ansible_collections.dealerscope.ops.plugins.filter.controller_plan import FilterModule, controller_plan

ROOT = pathlib.Path(__file__).resolve().parents[4]
DEFAULTS = yaml.safe_load((ROOT / 'roles' / 'controller' / 'defaults' / 'main.yml').read_text())
SPECS = {p.parent.parent.name: yaml.safe_load(p.read_text()) for p in (ROOT / 'roles').glob('*/meta/argument_specs.yml')}
PLAYBOOKS = sorted('playbooks/%s' % p.name for p in (ROOT / 'playbooks').glob('*.yml'))


def settings(**changes):
    base = {key[len('controller_'):]: value for key, value in DEFAULTS.items()}
    base.update(project_scm_url='https://git.example.com/ops.git', inventory='Production',
                credential_names={'machine': 'SSH', 'notifications': 'Notify', 's3': 'S3'})
    base.update(copy.deepcopy(changes))
    return base


def plan(**changes):
    return controller_plan(settings(**changes), argument_specs=SPECS, playbooks=PLAYBOOKS)


def problems(**changes):
    with pytest.raises(AnsibleFilterError) as error:
        plan(**changes)
    text = str(error.value)
    assert 'nothing was sent to the controller' in text.splitlines()[0]
    return text.splitlines()[1:]


def test_the_defaults_make_one_template_per_runbook_with_a_survey_from_its_role():
    result = plan()
    names = [t['name'] for t in result['job_templates']]
    assert names == ['DealerScope daily', 'DealerScope patch', 'DealerScope firewall', 'DealerScope TLS', 'DealerScope backup',
                     'DealerScope restore test', 'DealerScope DR drill', 'DealerScope deploy', 'DealerScope rollback']
    daily = result['job_templates'][0]
    assert daily['playbook'] == 'playbooks/daily.yml' and daily['credentials'] == ['SSH', 'Notify']
    assert [q['variable'] for q in daily['survey_spec']['spec']] == DEFAULTS['controller_job_templates'][0]['questions']
    assert all(t['allow_simultaneous'] is False for t in result['job_templates']), 'two jobs of one runbook could overlap'
    assert result['job_templates'][4]['credentials'] == ['SSH', 'Notify', 'S3']
    assert [p['scm_url'] for p in result['projects']] == ['https://git.example.com/ops.git']


def test_the_dr_workflow_previews_in_check_mode_then_waits_for_approval():
    workflow = plan()['workflows'][0]
    nodes = {n['identifier']: n for n in workflow['workflow_nodes']}
    assert nodes['preview']['job_type'] == 'check' and nodes['drill']['job_type'] == 'run'
    assert nodes['preview']['related']['success_nodes'] == [{'identifier': 'approve'}]
    assert nodes['approve']['unified_job_template']['type'] == 'workflow_approval'
    assert nodes['approve']['unified_job_template']['timeout'] == 14400
    assert nodes['approve']['related']['success_nodes'] == [{'identifier': 'drill'}]
    assert 'failure_nodes' not in nodes['preview']['related'], 'a failed preview must not lead to the drill'
    assert [q['variable'] for q in workflow['survey_spec']['spec']][0] == 'dr_drill_confirm'
    assert plan(dr_workflow_name='', schedules=DEFAULTS['controller_schedules'][:5])['workflows'] == []
    assert any("runs 'dr_workflow'" in line for line in problems(dr_workflow_name='')), 'a schedule of a workflow that is not made'


@pytest.mark.parametrize('name,weekday,hour', [
    ('DealerScope daily 06:00', None, 6),
    ('DealerScope weekly security patching', 1, 2),
    ('DealerScope monthly full patching', 1, 2),
    ('DealerScope monthly DR drill', 6, 4),
])
def test_schedules_are_rrules_the_controller_parses_at_the_local_time_asked(name, weekday, hour):
    schedule = [s for s in plan(timezone='Europe/Berlin')['schedules'] if s['name'] == name][0]
    assert schedule['rrule'].startswith('DTSTART;TZID=Europe/Berlin:20260101T')
    dtstart, rule = schedule['rrule'].split(' ')
    start = datetime.datetime.strptime(dtstart.split(':')[1], '%Y%m%dT%H%M%S')
    runs = list(dateutil_rrule.rrulestr(rule.replace('RRULE:', ''), dtstart=start).xafter(datetime.datetime(2026, 11, 28), count=3))
    assert len(runs) == 3 and all(run.hour == hour and run.minute == 0 for run in runs)
    if weekday is not None:
        assert all(run.weekday() == weekday for run in runs)
    if 'monthly' in name:
        assert all(run.day <= 7 for run in runs), 'the first %s of the month' % ['Mon', 'Tue', '', '', '', '', 'Sun'][weekday]
        assert len({run.month for run in runs}) == 3


def test_schedule_answers_are_survey_answers():
    patch = [s for s in plan()['schedules'] if s['name'] == 'DealerScope monthly full patching'][0]
    assert patch['extra_data'] == {'patching_mode': 'full'} and patch['unified_job_template'] == 'DealerScope patch'
    drill = [s for s in plan()['schedules'] if s['name'] == 'DealerScope monthly DR drill'][0]
    assert drill['unified_job_template'] == DEFAULTS['controller_dr_workflow_name']


def test_credentials_leave_their_secret_inputs_out_and_types_are_the_collections():
    result = plan(credentials=[{'name': 'Notify', 'credential_type': 'DealerScope notifications',
                                'inputs': {'slack_webhook_url': 'https://hooks.example/x'}}])
    assert result['credentials'] == [{'name': 'Notify', 'organization': 'Default', 'credential_type': 'DealerScope notifications'}]
    assert 'hooks.example' not in str(result), 'the plan is shown: a secret input must stay out of it'
    injected = {k for t in result['credential_types'] for k in t['injectors']['extra_vars']}
    assert injected == {'vault_slack_webhook_url', 'vault_pager_routing_key', 'backup_s3_key', 'backup_s3_key_secret', 'backup_cipher_pass'}
    for kind in result['credential_types']:
        fields = {f['id']: f for f in kind['inputs']['fields']}
        assert all(fields[name].get('secret') for name in fields if name != 'access_key'), 'a secret field is shown'


def test_injected_variables_are_ones_the_roles_or_the_example_inventory_read():
    options = {name for spec in SPECS.values() for entry in spec['argument_specs'].values() for name in (entry.get('options') or {})}
    vault = yaml.safe_load((ROOT / 'inventories' / 'production.example' / 'group_vars' / 'all' / 'vault.yml').read_text())
    for kind in plan()['credential_types']:
        for variable in kind['injectors']['extra_vars']:
            assert variable in options or variable in vault, '%s is injected but nothing reads it' % variable


@pytest.mark.parametrize('changes,needle', [
    ({'project_scm_url': ''}, 'controller_project_scm_url is empty'),
    ({'inventory': ' '}, 'controller_inventory is empty'),
    ({'timezone': 'Mars/Olympus'}, 'controller_timezone Mars/Olympus is not a time zone'),
    ({'schedules_start': '2026-13-01'}, "controller_schedules_start is '2026-13-01'; give a date as YYYY-MM-DD"),
    ({'credential_names': {'machine': ''}}, 'needs a machine credential; name it in controller_credential_names.machine'),
    ({'credential_names': {'ssh': 'x'}}, 'controller_credential_names is'),
    ({'job_templates': []}, 'give a non-empty list of runbooks'),
    ({'job_templates': [{'key': 'daily', 'name': 'D', 'playbook': 'playbooks/nope.yml', 'role': 'daily', 'questions': ['daily_fail_on']}]},
     "playbook 'playbooks/nope.yml' is not in the project"),
    ({'job_templates': [{'key': 'daily', 'name': 'D', 'playbook': 'playbooks/daily.yml', 'role': 'nope', 'questions': ['x']}]},
     "role 'nope' has no argument specification here"),
    ({'job_templates': [{'key': 'daily', 'name': 'D', 'playbook': 'playbooks/daily.yml', 'role': 'daily', 'questions': ['daily_nope']}]},
     'role daily (entry point main) has no option daily_nope'),
    ({'job_templates': [{'key': 'Daily!', 'name': 'D'}]}, "key is 'Daily!'"),
    ({'job_templates': [{'key': 'd', 'name': 'D', 'playbook': 'playbooks/daily.yml', 'role': 'daily', 'questions': ['daily_fail_on'],
                         'colour': 1}]}, 'unknown key(s) colour'),
    ({'job_templates': [{'key': 'd', 'name': 'D', 'playbook': 'playbooks/daily.yml', 'role': 'daily', 'questions': ['daily_fail_on'],
                         'credentials': ['notifications']}]}, 'machine included'),
    ({'job_templates': [{'key': 'd', 'name': 'D', 'playbook': 'playbooks/daily.yml', 'role': 'daily', 'questions': ['daily_fail_on'],
                         'slices': '0'}]}, "slices is '0'; give a whole number >= 1"),
    ({'job_templates': [{'key': 'd', 'name': 'D', 'playbook': 'playbooks/daily.yml', 'role': 'daily', 'questions': ['daily_fail_on'],
                         'ask_job_type': 'perhaps'}]}, "ask_job_type is 'perhaps'; give true or false"),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'hourly', 'at': '06:00'}]}, 'give daily, weekly or monthly'),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'daily', 'at': '25:00'}]}, 'give the local time as HH:MM'),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'weekly', 'at': '06:00'}]}, 'a weekly schedule needs days'),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'weekly', 'days': ['tuesday'], 'at': '06:00'}]}, 'give days among mo'),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'monthly', 'days': ['tu', 'th'], 'at': '06:00'}]},
     'a monthly schedule needs one day'),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'daily', 'days': ['tu'], 'at': '06:00'}]}, 'a daily schedule takes no days'),
    ({'schedules': [{'name': 'S', 'runs': 'nightly', 'frequency': 'daily', 'at': '06:00'}]}, "runs 'nightly', which is neither"),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'daily', 'at': '06:00', 'extra_data': {'daily_nope': 1}}]},
     'extra_data daily_nope is not a survey question of DealerScope daily'),
    ({'schedules': [{'name': 'S', 'runs': 'patch', 'frequency': 'daily', 'at': '06:00', 'extra_data': {'patching_mode': 'yolo'}}]},
     "extra_data patching_mode is 'yolo'; the survey offers security, full"),
    ({'schedules': [{'name': 'S', 'runs': 'daily', 'frequency': 'daily', 'at': '06:00'},
                    {'name': 'S', 'runs': 'daily', 'frequency': 'daily', 'at': '07:00'}]}, 'give each schedule a name of its own'),
    ({'dr_workflow_runbook': 'drill'}, "controller_dr_workflow_runbook is 'drill', which is not a job template key"),
    ({'dr_approval_timeout_s': '30'}, "controller_dr_approval_timeout_s is '30'; give a whole number >= 60"),
    ({'credentials': [{'name': 'X', 'credential_type': 'Vault', 'inputs': {}}]}, "credential_type 'Vault' is not one of"),
])
def test_bad_settings_are_refused_before_the_controller_is_contacted(changes, needle):
    found = problems(**changes)
    assert any(needle in line for line in found), found


def test_the_drill_workflow_needs_a_runbook_that_takes_check_mode():
    templates = copy.deepcopy(DEFAULTS['controller_job_templates'])
    for template in templates:
        template.pop('ask_job_type', None)
    assert any('give it ask_job_type: true' in line for line in problems(job_templates=templates))


def test_every_problem_is_reported_at_once_and_no_secret_is_shown():
    found = problems(project_scm_url='', timezone='Nowhere', credentials=[{'name': 'N', 'credential_type': 'Bad', 'inputs': {'k': 'hunter2'}}])
    assert len(found) == 3 and 'hunter2' not in '\n'.join(found)


def test_strings_from_extra_vars_are_read_as_the_values_they_spell():
    templates = copy.deepcopy(DEFAULTS['controller_job_templates'])
    templates[6].update(ask_job_type='true', timeout_s='3600')
    templates[0].update(slices='3')
    planned = plan(job_templates=templates, dr_approval_timeout_s='600')['job_templates']
    assert (planned[6]['ask_job_type_on_launch'], planned[6]['timeout']) == (True, 3600)
    assert (planned[0]['job_slice_count'], planned[0]['extra_vars']) == (3, {'runbook_end_slices': 3})
    assert 'extra_vars' not in planned[6] and planned[6]['job_slice_count'] == 1


def test_only_a_runbook_whose_hosts_are_independent_can_be_sliced():
    templates = copy.deepcopy(DEFAULTS['controller_job_templates'])
    for index in range(1, len(templates)):
        templates[index]['slices'] = 2
    found = problems(job_templates=templates)
    assert len(found) == len(templates) - 1 and all('cannot be sliced' in line for line in found), found
    assert any('the patching runbook cannot be sliced' in line for line in found)
    schedules = copy.deepcopy(DEFAULTS['controller_schedules'])
    schedules[0]['enabled'] = 'false'
    assert plan(schedules=schedules)['schedules'][0]['enabled'] is False


def test_bad_arguments_are_refused():
    with pytest.raises(AnsibleFilterError, match='give a dict of the controller_'):
        controller_plan('x', argument_specs=SPECS, playbooks=PLAYBOOKS)
    with pytest.raises(AnsibleFilterError, match='give argument_specs'):
        controller_plan(settings(), argument_specs=None, playbooks=PLAYBOOKS)


def test_documentation_parses_and_names_the_filter():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'controller_plan' and set(doc['options']) == {'_input', 'argument_specs', 'playbooks'}
    yaml.safe_load(plugin.EXAMPLES)
    assert set(yaml.safe_load(plugin.RETURN)['_value']['contains']) == set(plan())
    assert FilterModule().filters() == {'controller_plan': controller_plan}
