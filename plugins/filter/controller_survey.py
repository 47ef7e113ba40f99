# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: controller_survey
short_description: An AWX/Automation Controller survey generated from a role's argument specification
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Builds the C(survey_spec) of a job template from the C(meta/argument_specs.yml) of the role the template's playbook runs,
    so a survey offers only what the role accepts - the question's type, its choices, whether it is required and its default
    all come from the variable's specification.
  - 'Types: C(bool) becomes a multiple choice of V(true) and V(false) (answers arrive as strings, which every role reads
    through C(| bool)); C(str) with C(choices) a multiple choice of those; C(list) of C(str) with C(choices) a multiple
    selection; C(int) an integer; C(float) a float; C(str) and C(path) a text, or a password when the variable is C(no_log).'
  - A survey answer is an extra variable - it overrides the inventory on every launch, and AWX releases before 2026 send
    an optional question left empty as an empty string (or null). So every question has a default, the role's unless the
    question sets its own (checked like an answer), and the description says that the survey owns the variable. A role
    default computed from other variables, or none, is refused unless the question gives one or the role requires the
    variable. Secrets (C(no_log)) are password questions without a default.
  - A question may narrow an integer or float with C(min) and C(max), and a text's length with C(max); it may never widen
    what the role accepts (a C(min) above C(max) is refused). C(question_name) and C(required) may be set per question;
    C(required) may make a question required, never optional when the role requires the variable.
  - Refused, with every problem in one error (one per line, naming the question) - a variable the entry point does not
    have, a variable a survey cannot ask for (a list without choices, a dict, a raw value), an unknown key in a question,
    a bound on a type that has none.
positional: _input
options:
  _input:
    description: The parsed C(meta/argument_specs.yml) of the role (a dict with the key C(argument_specs)).
    type: dict
    required: true
  role:
    description: The role's name, for error messages.
    type: str
    required: true
  entry_point:
    description: The role's entry point whose options are asked.
    type: str
    default: main
  questions:
    description:
      - The questions, in order. Each a variable name, or a dict with C(variable) and optionally C(question_name),
        C(required), C(default), C(min) and C(max).
    type: list
    elements: raw
    required: true
  name:
    description: The survey's name.
    type: str
    default: ''
  description:
    description: The survey's description.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: The survey of the daily job template
  ansible.builtin.set_fact:
    __survey: >-
      {{ lookup('ansible.builtin.file', role_path ~ '/../daily/meta/argument_specs.yml') | from_yaml
         | dealerscope.ops.controller_survey(role='daily', questions=['daily_fail_on', 'daily_check_updates',
           {'variable': 'daily_probe_count', 'min': 1, 'max': 200}]) }}
# -> {name: '', description: '', spec: [
#      {variable: daily_fail_on, type: multiplechoice, choices: [critical, warning, never], default: critical, required: false,
#       question_name: daily_fail_on, question_description: "What fails the run ... The survey sets it on every launch (it
#       overrides the inventory); its default here is the role's."},
#      {variable: daily_check_updates, type: multiplechoice, choices: ['true', 'false'], default: 'true', ...},
#      {variable: daily_probe_count, type: integer, min: 1, max: 200, default: 20, ...}]}
"""

RETURN = r"""
_value:
  description: The survey specification, as the C(survey_spec) option of C(awx.awx.job_template) takes it.
  type: dict
  contains:
    name:
      description: The survey's name.
      type: str
    description:
      description: The survey's description.
      type: str
    spec:
      description:
        - One question per entry of O(questions), in order, each with C(variable), C(question_name), C(question_description),
          C(type), C(required), C(default) and, by type, C(choices) (a list of strings) or C(min)/C(max).
      type: list
      elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import (
    describe_given as describe, is_dict, is_list, unknown_keys)


QUESTION_KEYS = ('variable', 'question_name', 'required', 'min', 'max', 'default')
TEXT_MAX = 1024  # the controller's own default length limit of a text answer
NUMBER_LIMIT = 2 ** 31 - 1


def _text(value):
    """An option's description (a string or a list of lines) as one line."""
    if is_list(value):
        return ' '.join(str(line) for line in value)
    return '' if value is None else str(value)


def _answer(value):
    """A default or a choice as the controller shows it and the role receives it: booleans as 'true'/'false'."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return '' if value is None else str(value)


def _bound(where, question, key, problems):
    value = question.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value) if '.' in str(value) else int(str(value))
        except ValueError:
            problems.append('%s: %s is %s; give a number' % (where, key, describe(value)))
            return None
    if abs(value) > NUMBER_LIMIT:
        problems.append('%s: %s %s is beyond what the controller stores (%d)' % (where, key, value, NUMBER_LIMIT))
        return None
    return value


def _question(role, entry_point, options, index, question, problems):
    where = 'questions[%d]' % index
    if isinstance(question, str):
        question = {'variable': question}
    if not is_dict(question):
        problems.append('%s is %s; give a variable name or a dict with variable' % (where, describe(question)))
        return None
    unknown_keys(where, question, QUESTION_KEYS, problems)
    variable = question.get('variable')
    if not isinstance(variable, str) or not variable:
        problems.append('%s has no variable; name one of the options of %s (%s)' % (where, role, entry_point))
        return None
    where = '%s (%s)' % (where, variable)
    spec = options.get(variable)
    if not is_dict(spec):
        problems.append('%s: role %s (entry point %s) has no option %s; a survey may only ask for what the role accepts'
                        % (where, role, entry_point, variable))
        return None
    kind = spec.get('type', 'str')
    choices = spec.get('choices')
    secret = bool(spec.get('no_log'))
    given = 'default' in question
    default = question['default'] if given else spec.get('default')
    out = {
        'variable': variable,
        'question_name': str(question.get('question_name') or variable),
        'question_description': '',
        'required': bool(spec.get('required', False)),
    }
    if question.get('required') is not None:
        if not isinstance(question['required'], bool):
            problems.append('%s: required is %s; give true or false' % (where, describe(question['required'])))
        elif out['required'] and not question['required']:
            problems.append('%s: the role requires %s; the survey cannot make it optional' % (where, variable))
        else:
            out['required'] = question['required']
    if secret:
        if given:
            problems.append('%s: %s is a secret; a password question has no default' % (where, variable))
        default = ''
    elif isinstance(default, str) and '{{' in default:
        problems.append('%s: the role computes the default of %s from other variables (%s); give the question a default'
                        % (where, variable, default))
        return None
    elif default is None and not out['required']:
        problems.append('%s: role %s has no default for %s; give the question a default or required: true' % (where, role, variable))
        return None
    low, high = _bound(where, question, 'min', problems), _bound(where, question, 'max', problems)
    if kind == 'bool':
        answer = _answer(default) if isinstance(default, bool) or default is None else str(default).strip().lower()
        answer = {'yes': 'true', 'on': 'true', '1': 'true', 'no': 'false', 'off': 'false', '0': 'false'}.get(answer, answer)
        out.update(type='multiplechoice', choices=['true', 'false'], default=answer)
    elif kind in ('str', 'path') and choices:
        out.update(type='multiplechoice', choices=[_answer(c) for c in choices], default=_answer(default))
    elif kind == 'list' and choices and spec.get('elements', 'str') == 'str':
        chosen = [default] if isinstance(default, str) else list(default or [])
        out.update(type='multiselect', choices=[_answer(c) for c in choices], default='\n'.join(_answer(c) for c in chosen))
    elif kind in ('int', 'float'):
        out['type'] = 'integer' if kind == 'int' else 'float'
        number = default
        if isinstance(default, str) and default.strip():
            try:
                number = int(default) if kind == 'int' else float(default)
            except ValueError:
                problems.append('%s: default %s is not a%s' % (where, describe(default), 'n integer' if kind == 'int' else ' number'))
                number = None
        if isinstance(number, bool) or (number is not None and not isinstance(number, (int, float))):
            problems.append('%s: default %s is not a number' % (where, describe(number)))
            number = None
        if low is not None and high is not None and low > high:
            problems.append('%s: min %s is above max %s' % (where, low, high))
        if kind == 'int' and any(isinstance(b, float) for b in (low, high)):
            problems.append('%s: an integer question takes whole-number bounds' % where)
        out['min'] = -NUMBER_LIMIT if low is None else low
        out['max'] = NUMBER_LIMIT if high is None else high
        if number is not None and not out['min'] <= number <= out['max']:
            problems.append('%s: the default %s is outside min %s / max %s; the survey would refuse it' % (where, number, out['min'], out['max']))
        out['default'] = '' if number is None else number
    elif kind in ('str', 'path'):
        if low is not None:
            problems.append('%s: a text question takes max (its length), not min' % where)
        if high is not None and (not isinstance(high, int) or high < 1):
            problems.append('%s: max (the length) must be a positive whole number' % where)
        out.update(type='password' if secret else 'text', min=0, max=TEXT_MAX if high is None else high,
                   default='' if default is None else str(default))
        if isinstance(out['max'], int) and len(out['default']) > out['max']:
            problems.append('%s: the default is longer than max %s' % (where, out['max']))
    else:
        problems.append('%s: a survey cannot ask for a %s%s; set %s in the inventory or the template\'s extra variables'
                        % (where, kind, ' of %s' % spec['elements'] if spec.get('elements') else '', variable))
        return None
    if out['type'] == 'multiplechoice' and out['default'] not in out['choices'] and out['default'] != '':
        problems.append('%s: default %s is not one of %s' % (where, describe(default), ', '.join(out['choices'])))
    if out['type'] == 'multiselect' and any(d not in out['choices'] for d in out['default'].split('\n') if d):
        problems.append('%s: default %s is not among %s' % (where, describe(default), ', '.join(out['choices'])))
    text = _text(spec.get('description')).strip()
    text += (' A secret - never shown.' if secret else
             ' The survey sets it on every launch (it overrides the inventory); its default here is %s.'
             % ('the role\'s' if not given else 'this template\'s'))
    out['question_description'] = text.strip()[:TEXT_MAX]
    if kind not in ('int', 'float', 'str', 'path') and (low is not None or high is not None):
        problems.append('%s: min/max apply to numbers and texts, not to a %s' % (where, kind))
    return out


def controller_survey(argument_specs, role=None, entry_point='main', questions=None, name='', description=''):
    """The survey_spec of a job template from a role's argument specification."""
    if not role or not isinstance(role, str):
        raise AnsibleFilterError('controller_survey: give role=<the role the template runs>, e.g. role=\'daily\'')
    if not is_dict(argument_specs) or not is_dict(argument_specs.get('argument_specs')):
        raise AnsibleFilterError('controller_survey: the input for role %s is %s, not a parsed meta/argument_specs.yml '
                                 '(a dict with the key argument_specs)' % (role, describe(argument_specs)))
    entry = argument_specs['argument_specs'].get(entry_point)
    if not is_dict(entry):
        raise AnsibleFilterError('controller_survey: role %s has no entry point %s; it has %s'
                                 % (role, entry_point, ', '.join(sorted(argument_specs['argument_specs']))))
    if not is_list(questions) or not questions:
        raise AnsibleFilterError('controller_survey: questions for role %s is %s; give a non-empty list of variable names'
                                 % (role, describe(questions)))
    options = entry.get('options') or {}
    problems, spec, seen = [], [], set()
    for index, question in enumerate(questions):
        out = _question(role, entry_point, options, index, question, problems)
        if out is None:
            continue
        if out['variable'] in seen:
            problems.append('questions[%d] (%s): asked twice' % (index, out['variable']))
            continue
        seen.add(out['variable'])
        spec.append(out)
    if problems:
        raise AnsibleFilterError('controller_survey: the survey of role %s (%s) cannot be built:\n%s'
                                 % (role, entry_point, '\n'.join(problems)))
    return {'name': '' if name is None else str(name), 'description': '' if description is None else str(description), 'spec': spec}


class FilterModule:
    """dealerscope.ops.controller_survey"""

    def filters(self):
        return {'controller_survey': controller_survey}
