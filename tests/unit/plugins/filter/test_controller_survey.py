# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.controller_survey filter."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter import controller_survey as plugin
from ansible_collections.dealerscope.ops.plugins.filter.controller_survey import NUMBER_LIMIT, TEXT_MAX, FilterModule, controller_survey

from .ansible_render import render

ROLES = pathlib.Path(__file__).resolve().parents[4] / 'roles'
SPECS = {'argument_specs': {'main': {'options': {
    'x_mode': {'type': 'str', 'choices': ['apply', 'audit'], 'default': 'apply', 'description': ['How.', 'Really.']},
    'x_on': {'type': 'bool', 'default': False, 'description': 'Switch.'},
    'x_count': {'type': 'int', 'default': 5},
    'x_ratio': {'type': 'float', 'default': 0.5},
    'x_none': {'type': 'float'},
    'x_computed': {'type': 'int', 'default': '{{ ops_limit | default(3) }}'},
    'x_name': {'type': 'str', 'default': 'db', 'required': True},
    'x_dir': {'type': 'path', 'default': '/var/x'},
    'x_secret': {'type': 'str', 'no_log': True, 'default': 'hunter2'},
    'x_days': {'type': 'list', 'elements': 'str', 'choices': ['mo', 'tu'], 'default': ['tu']},
    'x_hosts': {'type': 'list', 'elements': 'str', 'default': []},
    'x_map': {'type': 'dict', 'default': {}},
}}, 'other': {'options': {'y_only': {'type': 'bool', 'default': True}}}}}


def survey(*questions, **options):
    return controller_survey(SPECS, role='x', questions=list(questions), **options)


def question(*questions, **options):
    return survey(*questions, **options)['spec'][0]


def problems(*questions, **options):
    with pytest.raises(AnsibleFilterError) as error:
        controller_survey(SPECS, role='x', questions=list(questions), **options)
    return str(error.value).splitlines()[1:]


def test_a_boolean_is_a_choice_of_the_strings_true_and_false():
    assert question('x_on') == {'variable': 'x_on', 'question_name': 'x_on', 'required': False, 'type': 'multiplechoice',
                                'question_description': "Switch. The survey sets it on every launch (it overrides the inventory);"
                                                        " its default here is the role's.",
                                'choices': ['true', 'false'], 'default': 'false'}


def test_every_question_has_the_role_default_unless_it_sets_its_own():
    defaults = {q['variable']: q['default'] for q in survey('x_mode', 'x_on', 'x_count', 'x_name', 'x_dir', 'x_days')['spec']}
    assert defaults == {'x_mode': 'apply', 'x_on': 'false', 'x_count': 5, 'x_name': 'db', 'x_dir': '/var/x', 'x_days': 'tu'}
    own = survey({'variable': 'x_mode', 'default': 'audit'}, {'variable': 'x_on', 'default': 'yes'}, {'variable': 'x_count', 'default': '7'},
                 {'variable': 'x_computed', 'default': 4}, {'variable': 'x_days', 'default': ['mo', 'tu']})['spec']
    assert [q['default'] for q in own] == ['audit', 'true', 7, 4, 'mo\ntu']
    assert "its default here is this template's" in own[0]['question_description']


def test_choices_become_a_multiple_choice_with_the_role_default():
    q = question('x_mode')
    assert (q['type'], q['choices'], q['default']) == ('multiplechoice', ['apply', 'audit'], 'apply')
    assert q['question_description'].startswith('How. Really. The survey sets it on every launch')


def test_a_list_with_choices_is_a_multiple_selection():
    q = question('x_days')
    assert (q['type'], q['choices'], q['default']) == ('multiselect', ['mo', 'tu'], 'tu')


def test_numbers_keep_their_type_and_take_narrower_bounds():
    q = question({'variable': 'x_count', 'min': 1, 'max': '10'})
    assert (q['type'], q['default'], q['min'], q['max']) == ('integer', 5, 1, 10)
    q = question('x_ratio')
    assert (q['type'], q['default'], q['min'], q['max']) == ('float', 0.5, -NUMBER_LIMIT, NUMBER_LIMIT)


def test_texts_and_paths_are_text_and_a_secret_is_a_password_without_its_default():
    assert (question('x_name')['type'], question('x_name')['required'], question('x_name')['max']) == ('text', True, TEXT_MAX)
    assert question('x_dir')['type'] == 'text'
    secret = question('x_secret')
    assert (secret['type'], secret['default'], secret['question_description']) == ('password', '', 'A secret - never shown.')
    assert 'hunter2' not in str(survey('x_secret', 'x_name')), 'a secret default is shown'


def test_question_name_and_required_may_be_set_and_order_is_kept():
    spec = survey({'variable': 'x_on', 'question_name': 'Really?', 'required': True}, 'x_mode', name='N', description='D')
    assert (spec['name'], spec['description']) == ('N', 'D')
    assert [(q['variable'], q['question_name'], q['required']) for q in spec['spec']] == [('x_on', 'Really?', True), ('x_mode', 'x_mode', False)]


def test_another_entry_point_asks_its_own_options():
    assert controller_survey(SPECS, role='x', entry_point='other', questions=['y_only'])['spec'][0]['variable'] == 'y_only'
    with pytest.raises(AnsibleFilterError, match='has no option x_on'):
        controller_survey(SPECS, role='x', entry_point='other', questions=['x_on'])


@pytest.mark.parametrize('questions,needle', [
    (['x_nope'], "role x (entry point main) has no option x_nope; a survey may only ask for what the role accepts"),
    (['x_hosts'], "a survey cannot ask for a list of str; set x_hosts in the inventory"),
    (['x_map'], "a survey cannot ask for a dict; set x_map"),
    (['x_on', 'x_on'], "(x_on): asked twice"),
    ([{'variable': 'x_on', 'colour': 'red'}], "unknown key(s) colour"),
    ([{'question_name': 'no variable'}], "has no variable"),
    ([3], "is int 3; give a variable name"),
    ([{'variable': 'x_count', 'min': 9, 'max': 2}], "min 9 is above max 2"),
    ([{'variable': 'x_count', 'min': 6}], "the default 5 is outside min 6"),
    ([{'variable': 'x_count', 'default': 'many'}], "default 'many' is not an integer"),
    ([{'variable': 'x_mode', 'default': 'delete'}], "default 'delete' is not one of apply, audit"),
    ([{'variable': 'x_on', 'default': 'maybe'}], "default 'maybe' is not one of true, false"),
    ([{'variable': 'x_days', 'default': ['fr']}], "is not among mo, tu"),
    ([{'variable': 'x_secret', 'default': 'pw'}], "x_secret is a secret; a password question has no default"),
    (['x_computed'], "the role computes the default of x_computed from other variables"),
    (['x_none'], "role x has no default for x_none; give the question a default or required: true"),
    ([{'variable': 'x_count', 'max': 'lots'}], "max is 'lots'; give a number"),
    ([{'variable': 'x_count', 'min': 1.5}], "whole-number bounds"),
    ([{'variable': 'x_count', 'max': 2 ** 40}], "beyond what the controller stores"),
    ([{'variable': 'x_on', 'min': 1}], "min/max apply to numbers and texts, not to a bool"),
    ([{'variable': 'x_name', 'min': 1}], "a text question takes max (its length), not min"),
    ([{'variable': 'x_name', 'max': 1}], "the default is longer than max 1"),
    ([{'variable': 'x_name', 'required': False}], "the role requires x_name; the survey cannot make it optional"),
    ([{'variable': 'x_on', 'required': 'yes'}], "required is 'yes'; give true or false"),
])
def test_what_a_survey_cannot_offer_is_refused_with_every_problem_named(questions, needle):
    found = problems(*questions)
    assert any(needle in line for line in found), found


def test_all_problems_are_reported_together():
    assert len(problems('x_nope', 'x_map', {'variable': 'x_mode', 'default': 'delete'})) == 3


@pytest.mark.parametrize('specs,options,needle', [
    ({'nope': 1}, {'role': 'x', 'questions': ['a']}, 'not a parsed meta/argument_specs.yml'),
    (SPECS, {'role': 'x', 'entry_point': 'drill', 'questions': ['a']}, 'role x has no entry point drill; it has main, other'),
    (SPECS, {'role': 'x', 'questions': []}, 'give a non-empty list of variable names'),
    (SPECS, {'questions': ['x_on']}, "give role=<the role the template runs>"),
])
def test_bad_arguments_are_refused(specs, options, needle):
    with pytest.raises(AnsibleFilterError, match=None) as error:
        controller_survey(specs, **options)
    assert needle in str(error.value)


ASKABLE = sorted(n for n in SPECS['argument_specs']['main']['options'] if n not in ('x_hosts', 'x_map', 'x_none', 'x_computed'))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(ASKABLE), min_size=1, unique=True))
def test_any_selection_gives_one_valid_question_per_variable(names):
    spec = survey(*names)['spec']
    assert [q['variable'] for q in spec] == names
    for q in spec:
        assert q['type'] in ('multiplechoice', 'multiselect', 'integer', 'float', 'text', 'password')
        if q['type'] == 'multiplechoice':
            assert q['default'] in q['choices'] and all(isinstance(c, str) for c in q['choices'])
        if q['type'] == 'multiselect':
            assert all(d in q['choices'] for d in q['default'].split('\n') if d)
        if q['type'] in ('integer', 'float'):
            assert q['min'] <= q['default'] <= q['max']
        if q['type'] == 'password':
            assert q['default'] == ''


@pytest.mark.parametrize('role', sorted(p.name for p in ROLES.iterdir() if (p / 'meta' / 'argument_specs.yml').is_file()))
def test_every_surveyable_option_of_every_role_makes_a_question(role):
    """The real argument specs: every option a survey can ask for builds, and nothing else does."""
    specs = yaml.safe_load((ROLES / role / 'meta' / 'argument_specs.yml').read_text())
    for entry, spec in specs['argument_specs'].items():
        for name, option in (spec.get('options') or {}).items():
            surveyable = option.get('type', 'str') in ('bool', 'int', 'float', 'str', 'path') or (
                option.get('type') == 'list' and option.get('choices'))
            known = option.get('required') or option.get('no_log') or (
                option.get('default') is not None and '{{' not in str(option.get('default')))
            if surveyable and known:
                assert controller_survey(specs, role=role, entry_point=entry, questions=[name])['spec'][0]['variable'] == name
            else:
                with pytest.raises(AnsibleFilterError):
                    controller_survey(specs, role=role, entry_point=entry, questions=[name])


def test_documentation_parses_and_names_the_filter():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'controller_survey' and set(doc['options']) >= {'_input', 'role', 'entry_point', 'questions'}
    yaml.safe_load(plugin.EXAMPLES)
    yaml.safe_load(plugin.RETURN)
    assert FilterModule().filters() == {'controller_survey': controller_survey}


def test_it_loads_by_its_fqcn_and_takes_what_ansible_passes(tmp_path):
    extra = tmp_path / 'vars.yml'
    extra.write_text(yaml.safe_dump({'specs': SPECS}))
    value, output = render("specs | dealerscope.ops.controller_survey(role='x', questions=['x_on', 'x_mode'])", str(extra))
    assert value is not None, output
    assert [q['type'] for q in value['spec']] == ['multiplechoice', 'multiplechoice'], value
    value, output = render("specs | dealerscope.ops.controller_survey(role='x', questions=['x_nope'])", str(extra))
    assert value is None and 'has no option x_nope' in output, output
