# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: controller_plan
short_description: The AWX/Automation Controller objects of the runbooks, checked, as module parameters
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Turns the settings of the C(dealerscope.ops.controller) role into the parameters of the C(awx.awx) modules that create
    the objects - credential types, credentials, the project, one job template per runbook with a survey generated from
    its role's argument specification (P(dealerscope.ops.controller_survey#filter)), schedules as RRULEs, and the DR drill
    workflow (a check-mode preview, an approval node, then the drill).
  - Every problem is collected and reported in one error, one per line, before the controller is contacted - an unknown
    runbook, a playbook the project does not have, a survey question the role does not accept, a schedule time, day or
    time zone that does not exist, a credential kind no credential is named for, a workflow whose runbook cannot be run in
    check mode.
positional: _input
options:
  _input:
    description:
      - The role's settings, keyed without the C(controller_) prefix - C(organization), C(project_name),
        C(project_scm_url), C(project_scm_branch), C(project_scm_credential), C(inventory), C(execution_environment),
        C(credential_names) (a dict of credential kind to name - C(machine), C(notifications), C(s3)), C(credentials),
        C(job_templates), C(schedules), C(schedules_start), C(timezone), C(dr_workflow_name), C(dr_workflow_runbook),
        C(dr_approval_timeout_s).
    type: dict
    required: true
  argument_specs:
    description: The parsed C(meta/argument_specs.yml) of each role the job templates run, keyed by role name.
    type: dict
    required: true
  playbooks:
    description: The playbooks the project has, as paths relative to its root (V(playbooks/daily.yml)).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The controller objects, checked before the controller is contacted
  ansible.builtin.set_fact:
    __controller_plan: >-
      {{ __controller_settings | dealerscope.ops.controller_plan(argument_specs=__controller_specs,
                                                                 playbooks=__controller_playbooks) }}
# -> {credential_types: [...], credentials: [...], projects: [...], job_templates: [...], schedules: [...], workflows: [...]}
"""

RETURN = r"""
_value:
  description: The parameters of one C(awx.awx) module call per object, grouped by module, in the order they are applied.
  type: dict
  contains:
    credential_types:
      description: C(awx.awx.credential_type) parameters.
      type: list
      elements: dict
    credentials:
      description: C(awx.awx.credential) parameters without the inputs (secrets, which the apply task takes from the settings).
      type: list
      elements: dict
    projects:
      description: C(awx.awx.project) parameters (one project).
      type: list
      elements: dict
    job_templates:
      description: C(awx.awx.job_template) parameters, one per runbook.
      type: list
      elements: dict
    workflows:
      description: C(awx.awx.workflow_job_template) parameters (the DR drill workflow, when it is enabled).
      type: list
      elements: dict
    schedules:
      description: C(awx.awx.schedule) parameters with the RRULE built from each schedule's frequency, time and days.
      type: list
      elements: dict
"""

import datetime
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE

from ansible_collections.dealerscope.ops.plugins.filter.controller_survey import controller_survey
from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import (
    describe_given as describe, is_dict, is_list, unknown_keys)


try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9
    zoneinfo = None

CREDENTIAL_KINDS = ('machine', 'notifications', 's3')
TEMPLATE_KEYS = ('key', 'name', 'description', 'playbook', 'role', 'entry_point', 'questions', 'credentials', 'ask_job_type',
                 'slices', 'timeout_s')
SCHEDULE_KEYS = ('name', 'runs', 'frequency', 'at', 'days', 'week', 'extra_data', 'enabled')
DAYS = ('mo', 'tu', 'we', 'th', 'fr', 'sa', 'su')
KEY_RE = re.compile(r'^[a-z][a-z0-9_]*$')
AT_RE = re.compile(r'^([01][0-9]|2[0-3]):([0-5][0-9])$')
WORKFLOW = 'dr_workflow'
# Roles whose runbook may be sliced (AWX job slicing: each slice sees only its share of the inventory): the checks of
# one host need no other host, and the runbook ending merges the slices' results (runbook_end_slices). The others
# orchestrate across hosts - patch batches and drains, firewall zones built from every host's address, blue/green
# traffic, DR across primary and standby - and would act on a partial fleet.
SLICEABLE_ROLES = ('daily',)

# The credential types the collection defines: secrets reach the runbooks as the extra variables the example
# inventory's vault file names, and the controller never shows them.
CREDENTIAL_TYPES = [
    {
        'name': 'DealerScope notifications',
        'description': 'Slack webhook URL and PagerDuty routing key of the runbooks\' notifications (vault_* extra variables).',
        'kind': 'cloud',
        'inputs': {
            'fields': [
                {'id': 'slack_webhook_url', 'label': 'Slack incoming webhook URL', 'type': 'string', 'secret': True},
                {'id': 'pager_routing_key', 'label': 'PagerDuty Events v2 routing key', 'type': 'string', 'secret': True},
            ],
            'required': ['slack_webhook_url'],
        },
        'injectors': {'extra_vars': {'vault_slack_webhook_url': '{{ slack_webhook_url }}',
                                     'vault_pager_routing_key': '{{ pager_routing_key }}'}},
    },
    {
        'name': 'DealerScope S3 backup',
        'description': 'S3 key of the pgBackRest repositories and the repository cipher passphrase (backup_* extra variables).',
        'kind': 'cloud',
        'inputs': {
            'fields': [
                {'id': 'access_key', 'label': 'S3 access key', 'type': 'string'},
                {'id': 'secret_key', 'label': 'S3 secret key', 'type': 'string', 'secret': True},
                {'id': 'cipher_pass', 'label': 'Repository cipher passphrase', 'type': 'string', 'secret': True},
            ],
            'required': ['access_key', 'secret_key'],
        },
        'injectors': {'extra_vars': {'backup_s3_key': '{{ access_key }}', 'backup_s3_key_secret': '{{ secret_key }}',
                                     'backup_cipher_pass': '{{ cipher_pass }}'}},
    },
]


def _bool(value, where, problems):
    text = str(value).strip().lower()
    if isinstance(value, bool):
        return value
    if text in [str(b).lower() for b in BOOLEANS_TRUE]:
        return True
    if text in [str(b).lower() for b in BOOLEANS_FALSE]:
        return False
    problems.append('%s is %s; give true or false' % (where, describe(value)))
    return None


def _whole(value, where, problems, low=0):
    text = str(value).strip()
    if isinstance(value, bool) or not re.match(r'^[0-9]+$', text) or int(text) < low:
        problems.append('%s is %s; give a whole number >= %d' % (where, describe(value), low))
        return None
    return int(text)


def _text(settings, key, problems, required=True):
    value = settings.get(key, '')
    value = '' if value is None else value
    if not isinstance(value, str):
        problems.append('controller_%s is %s; give a string' % (key, describe(value)))
        return ''
    if required and not value.strip():
        problems.append('controller_%s is empty; set it (see roles/controller/README.md)' % key)
    return value.strip()


def _templates(settings, argument_specs, playbooks, credential_names, common, problems):
    templates, by_key = [], {}
    entries = settings.get('job_templates')
    if not is_list(entries) or not entries:
        problems.append('controller_job_templates is %s; give a non-empty list of runbooks' % describe(entries))
        return templates, by_key
    for index, entry in enumerate(entries):
        where = 'controller_job_templates[%d]' % index
        if not is_dict(entry):
            problems.append('%s is %s; give a dict with key, name, playbook, role and questions' % (where, describe(entry)))
            continue
        unknown_keys(where, entry, TEMPLATE_KEYS, problems)
        key = entry.get('key')
        if not isinstance(key, str) or not KEY_RE.match(key):
            problems.append('%s: key is %s; give a short id of lower-case letters, digits and _, e.g. daily' % (where, describe(key)))
            continue
        where = '%s (%s)' % (where, key)
        if key in by_key or key == WORKFLOW:
            problems.append('%s: key %s is used twice' % (where, key))
            continue
        name, playbook, role = entry.get('name'), entry.get('playbook'), entry.get('role')
        if not isinstance(name, str) or not name.strip():
            problems.append('%s: name is %s; give the job template\'s name' % (where, describe(name)))
            continue
        if playbook not in playbooks:
            problems.append('%s: playbook %s is not in the project; it has %s' % (where, describe(playbook), ', '.join(sorted(playbooks))))
        if role not in argument_specs:
            problems.append('%s: role %s has no argument specification here; known roles: %s'
                            % (where, describe(role), ', '.join(sorted(argument_specs))))
            continue
        survey = None
        try:
            survey = controller_survey(argument_specs[role], role=role, entry_point=entry.get('entry_point', 'main'),
                                       questions=entry.get('questions'), name=name.strip(),
                                       description='Generated from roles/%s/meta/argument_specs.yml' % role)
        except AnsibleFilterError as error:
            problems.append('%s: %s' % (where, str(error).replace('\n', '\n  ')))
        kinds = entry.get('credentials', ['machine'])
        names = []
        if not is_list(kinds) or 'machine' not in kinds:
            problems.append('%s: credentials is %s; give a list of kinds among %s, machine included'
                            % (where, describe(kinds), ', '.join(CREDENTIAL_KINDS)))
            kinds = []
        for kind in kinds:
            if kind not in CREDENTIAL_KINDS:
                problems.append('%s: credential kind %s is unknown; known: %s' % (where, describe(kind), ', '.join(CREDENTIAL_KINDS)))
            elif not credential_names.get(kind):
                problems.append('%s: needs a %s credential; name it in controller_credential_names.%s' % (where, kind, kind))
            else:
                names.append(credential_names[kind])
        ask_job_type = _bool(entry.get('ask_job_type', False), '%s: ask_job_type' % where, problems)
        slices = _whole(entry.get('slices', 1), '%s: slices' % where, problems, low=1)
        if slices and slices > 1 and role not in SLICEABLE_ROLES:
            problems.append('%s: slices is %d, but the %s runbook cannot be sliced: it works across hosts and a slice sees '
                            'only its share of the inventory (sliceable: %s)' % (where, slices, role, ', '.join(SLICEABLE_ROLES)))
        timeout = _whole(entry.get('timeout_s', 0), '%s: timeout_s' % where, problems)
        template = dict(common, name=name.strip(), description=str(entry.get('description', '')), playbook=playbook,
                        credentials=names, job_type='run', survey_enabled=True, survey_spec=survey or {},
                        ask_job_type_on_launch=bool(ask_job_type), ask_limit_on_launch=True, ask_tags_on_launch=True,
                        ask_skip_tags_on_launch=True, ask_diff_mode_on_launch=True, allow_simultaneous=False,
                        job_slice_count=slices or 1, timeout=timeout or 0)
        if slices and slices > 1:
            # The slices' ending merges their results into one report and one set of alerts (runbook_end role).
            template['extra_vars'] = {'runbook_end_slices': slices}
        by_key[key] = template
        templates.append(template)
    return templates, by_key


def _rrule(entry, where, start, timezone, problems):
    frequency = entry.get('frequency')
    at = entry.get('at')
    match = AT_RE.match(str(at)) if isinstance(at, str) else None
    if frequency not in ('daily', 'weekly', 'monthly'):
        problems.append('%s: frequency is %s; give daily, weekly or monthly' % (where, describe(frequency)))
        return None
    if not match:
        problems.append('%s: at is %s; give the local time as HH:MM, e.g. "06:00"' % (where, describe(at)))
        return None
    days = entry.get('days', [])
    days = [days] if isinstance(days, str) else days
    if not is_list(days) or any(str(d).lower() not in DAYS for d in days):
        problems.append('%s: days is %s; give days among %s' % (where, describe(days), ', '.join(DAYS)))
        return None
    days = [str(d).lower() for d in days]
    rule = 'FREQ=%s;INTERVAL=1' % frequency.upper()
    if frequency == 'daily' and days:
        problems.append('%s: a daily schedule takes no days (give frequency weekly to run on some days)' % where)
        return None
    if frequency == 'weekly':
        if not days:
            problems.append('%s: a weekly schedule needs days, e.g. [tu]' % where)
            return None
        rule += ';BYDAY=%s' % ','.join(d.upper() for d in days)
    if frequency == 'monthly':
        week = entry.get('week', 1)
        if len(days) != 1 or str(week) not in ('1', '2', '3', '4', '-1'):
            problems.append('%s: a monthly schedule needs one day and week 1, 2, 3, 4 or -1 (the last), e.g. days: [tu], week: 1'
                            % where)
            return None
        rule += ';BYDAY=%s;BYSETPOS=%s' % (days[0].upper(), week)
    elif entry.get('week') is not None:
        problems.append('%s: week applies to monthly schedules only' % where)
        return None
    return 'DTSTART;TZID=%s:%sT%s%s00 RRULE:%s' % (timezone, start, match.group(1), match.group(2), rule)


def _schedules(settings, targets, start, timezone, problems):
    schedules = []
    entries = settings.get('schedules', [])
    if not is_list(entries):
        problems.append('controller_schedules is %s; give a list' % describe(entries))
        return schedules
    names = set()
    for index, entry in enumerate(entries):
        where = 'controller_schedules[%d]' % index
        if not is_dict(entry):
            problems.append('%s is %s; give a dict with name, runs, frequency and at' % (where, describe(entry)))
            continue
        unknown_keys(where, entry, SCHEDULE_KEYS, problems)
        name = entry.get('name')
        if not isinstance(name, str) or not name.strip() or name.strip() in names:
            problems.append('%s: name is %s; give each schedule a name of its own' % (where, describe(name)))
            continue
        names.add(name.strip())
        where = '%s (%s)' % (where, name.strip())
        runs = entry.get('runs')
        if runs not in targets:
            problems.append('%s: runs %s, which is neither a job template key nor %s; known: %s'
                            % (where, describe(runs), WORKFLOW, ', '.join(sorted(targets))))
            continue
        extra = entry.get('extra_data', {})
        if not is_dict(extra):
            problems.append('%s: extra_data is %s; give a dict' % (where, describe(extra)))
            continue
        questions = {q['variable']: q for q in targets[runs].get('survey_spec', {}).get('spec', [])}
        for variable, value in sorted(extra.items()):
            question = questions.get(variable)
            if question is None:
                problems.append('%s: extra_data %s is not a survey question of %s; the controller would refuse it'
                                % (where, variable, targets[runs]['name']))
            elif question.get('choices') and str(value).lower() not in question['choices']:
                problems.append('%s: extra_data %s is %s; the survey offers %s' % (where, variable, describe(value), ', '.join(question['choices'])))
        rrule = _rrule(entry, where, start, timezone, problems)
        enabled = _bool(entry.get('enabled', True), '%s: enabled' % where, problems)
        if rrule is None:
            continue
        schedules.append({'name': name.strip(), 'unified_job_template': targets[runs]['name'],
                          'organization': targets[runs].get('organization', ''), 'rrule': rrule,
                          'extra_data': dict((k, str(v).lower() if isinstance(v, bool) else v) for k, v in extra.items()),
                          'enabled': bool(enabled)})
    return schedules


def _workflow(settings, by_key, common, problems):
    name = settings.get('dr_workflow_name', '')
    if not name:
        return []
    runbook = settings.get('dr_workflow_runbook', 'dr_drill')
    template = by_key.get(runbook)
    if template is None:
        problems.append('controller_dr_workflow_runbook is %s, which is not a job template key; known: %s'
                        % (describe(runbook), ', '.join(sorted(by_key))))
        return []
    if not template['ask_job_type_on_launch']:
        problems.append('controller_job_templates (%s): the DR workflow previews the drill in check mode; give it ask_job_type: true'
                        % runbook)
    timeout = _whole(settings.get('dr_approval_timeout_s', 14400), 'controller_dr_approval_timeout_s', problems, low=60)
    jt = {'name': template['name'], 'type': 'job_template', 'organization': {'name': common['organization']}}
    nodes = [
        {'identifier': 'preview', 'unified_job_template': jt, 'job_type': 'check',
         'related': {'success_nodes': [{'identifier': 'approve'}]}},
        {'identifier': 'approve',
         'unified_job_template': {'name': 'Approve the DR drill (read the preview job\'s report first)', 'type': 'workflow_approval',
                                  'description': 'The preview ran the drill in check mode: approve to run it for real.',
                                  'timeout': timeout or 14400},
         'related': {'success_nodes': [{'identifier': 'drill'}]}},
        {'identifier': 'drill', 'unified_job_template': jt, 'job_type': 'run', 'related': {}},
    ]
    survey = dict(template['survey_spec'], name=str(name))
    return [{'name': str(name), 'description': 'Check-mode preview, approval, then the DR drill (%s)' % template['playbook'],
             'organization': common['organization'], 'inventory': common['inventory'], 'survey_enabled': True,
             'survey_spec': survey, 'allow_simultaneous': False, 'ask_limit_on_launch': False,
             'workflow_nodes': nodes, 'destroy_current_nodes': True}]


def controller_plan(settings, argument_specs=None, playbooks=None):
    """The awx.awx module parameters of every controller object, or one error naming every problem."""
    if not is_dict(settings):
        raise AnsibleFilterError('controller_plan: the settings are %s; give a dict of the controller_* settings' % describe(settings))
    if not is_dict(argument_specs) or not is_list(playbooks):
        raise AnsibleFilterError('controller_plan: give argument_specs (a dict of role name to parsed meta/argument_specs.yml) '
                                 'and playbooks (the project\'s playbook paths)')
    problems = []
    organization = _text(settings, 'organization', problems)
    project = _text(settings, 'project_name', problems)
    scm_url = _text(settings, 'project_scm_url', problems)
    inventory = _text(settings, 'inventory', problems)
    environment = _text(settings, 'execution_environment', problems, required=False)
    timezone = _text(settings, 'timezone', problems)
    if timezone and zoneinfo is not None:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            problems.append('controller_timezone %s is not a time zone; give an IANA name such as Europe/Berlin or UTC' % timezone)
    start = str(settings.get('schedules_start', ''))
    try:
        start = datetime.date.fromisoformat(start).strftime('%Y%m%d')
    except ValueError:
        problems.append('controller_schedules_start is %s; give a date as YYYY-MM-DD' % describe(settings.get('schedules_start')))
        start = '20260101'
    credential_names = settings.get('credential_names', {})
    if not is_dict(credential_names) or set(credential_names) - set(CREDENTIAL_KINDS):
        problems.append('controller_credential_names is %s; give a dict with keys among %s'
                        % (describe(credential_names), ', '.join(CREDENTIAL_KINDS)))
        credential_names = {}
    credentials = settings.get('credentials', [])
    if not is_list(credentials):
        problems.append('controller_credentials is %s; give a list' % describe(credentials))
        credentials = []
    type_names = [t['name'] for t in CREDENTIAL_TYPES] + ['Machine', 'Source Control']
    plan_credentials = []
    for index, credential in enumerate(credentials):
        where = 'controller_credentials[%d]' % index
        if not is_dict(credential) or set(credential) - {'name', 'credential_type', 'inputs'} or not credential.get('name'):
            problems.append('%s: give a dict with name, credential_type and inputs (inputs are never shown)' % where)
            continue
        if credential.get('credential_type') not in type_names:
            problems.append('%s (%s): credential_type %s is not one of %s'
                            % (where, credential['name'], describe(credential.get('credential_type')), ', '.join(type_names)))
            continue
        if not is_dict(credential.get('inputs', {})):
            problems.append('%s (%s): inputs must be a dict (its values are never shown)' % (where, credential['name']))
            continue
        # The inputs are secrets: they stay out of the plan (which is shown); the apply task reads them itself.
        plan_credentials.append({'name': credential['name'], 'organization': organization,
                                 'credential_type': credential['credential_type']})
    common = {'organization': organization, 'project': project, 'inventory': inventory}
    if environment:
        common['execution_environment'] = environment
    templates, by_key = _templates(settings, argument_specs, playbooks, credential_names, common, problems)
    workflows = _workflow(settings, by_key, common, problems)
    targets = dict(by_key)
    if workflows:
        targets[WORKFLOW] = workflows[0]
    schedules = _schedules(settings, targets, start, timezone or 'UTC', problems)
    if problems:
        raise AnsibleFilterError('controller_plan: %d problem(s), nothing was sent to the controller:\n%s'
                                 % (len(problems), '\n'.join(problems)))
    project_params = {'name': project, 'organization': organization, 'scm_type': 'git', 'scm_url': scm_url,
                      'scm_branch': _text(settings, 'project_scm_branch', problems, required=False) or 'main',
                      'scm_update_on_launch': True, 'scm_clean': True}
    if settings.get('project_scm_credential'):
        project_params['credential'] = str(settings['project_scm_credential'])
    if environment:
        project_params['default_environment'] = environment
    return {'credential_types': [dict(t) for t in CREDENTIAL_TYPES], 'credentials': plan_credentials,
            'projects': [project_params], 'job_templates': templates, 'workflows': workflows, 'schedules': schedules}


class FilterModule:
    """dealerscope.ops.controller_plan"""

    def filters(self):
        return {'controller_plan': controller_plan}
