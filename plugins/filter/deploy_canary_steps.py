# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: deploy_canary_steps
short_description: Validate canary traffic steps and turn them into nginx upstream weights
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Checks the canary traffic steps of a blue/green deploy (C(deploy_canary_steps)), the percentage of requests the new
    colour gets at each step, and returns for each step the nginx upstream weights of the new and the old colour.
  - 'Each step is a whole number from 1 to 100 (V(10), or V("10") as Ansible extra vars arrive; V(10.0) is accepted,
    V(10.5) and V("10%") are not), the steps strictly increase, and the last one is 100 (all traffic on the new colour).'
  - The weights are the smallest whole numbers for which new_weight / (new_weight + old_weight) is exactly percent / 100. At
    100 the old colour's weight is 0, meaning it gets no traffic (leave it out of the upstream, or mark it C(down), since
    nginx does not accept C(weight=0)).
  - All problems are collected and reported together in one error, one per line, each naming the step by its position,
    for example C(deploy_canary_steps[1]).
positional: _input
options:
  _input:
    description: The traffic percentages of the new colour, in order. At least one step.
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: Plan the canary steps
  ansible.builtin.set_fact:
    deploy_canary_plan: "{{ deploy_canary_steps | dealerscope.ops.deploy_canary_steps }}"
  vars:
    deploy_canary_steps: [10, 50, 100]
# -> [{percent: 10, new_weight: 1, old_weight: 9}, {percent: 50, new_weight: 1, old_weight: 1},
#     {percent: 100, new_weight: 1, old_weight: 0}]

# [10, 5, 80] | dealerscope.ops.deploy_canary_steps
# -> error, both problems at once:
#    deploy_canary_steps[1] is 5, not more than the step before (10): steps must increase
#    deploy_canary_steps ends at 80; the last step must be 100 (all traffic on the new colour), e.g. [10, 50, 100]
"""

RETURN = r"""
_value:
  description: One dict per step, in order.
  type: list
  elements: dict
  contains:
    percent:
      description: The step's percentage of requests for the new colour, as an integer.
      type: int
    new_weight:
      description: The nginx upstream weight of the new colour (at least 1).
      type: int
    old_weight:
      description: The nginx upstream weight of the old colour; 0 only at 100 percent (the old colour gets no traffic).
      type: int
"""

import math

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import describe, is_list

VAR = 'deploy_canary_steps'
HINT = 'write a whole number of percent from 1 to 100, e.g. [10, 50, 100]'


def _percent(index, value, problems):
    """``value`` as an int 1..100, or None after recording a problem."""
    label = '%s[%d]' % (VAR, index)
    number = value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith('%'):
            problems.append("%s '%s' has a percent sign; %s" % (label, value, HINT))
            return None
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                problems.append("%s '%s' is not a number; %s" % (label, value, HINT))
                return None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        problems.append('%s is %s, not a number; %s' % (label, describe(value), HINT))
        return None
    if isinstance(number, float):
        if math.isnan(number) or math.isinf(number) or not number.is_integer():
            problems.append('%s is %r, not a whole number; %s' % (label, value, HINT))
            return None
        number = int(number)
    if not 1 <= number <= 100:
        problems.append('%s is %r, out of range; %s' % (label, value, HINT))
        return None
    return number


def deploy_canary_steps(steps):
    """The steps with the nginx upstream weights of the new and the old colour (see DOCUMENTATION)."""
    if not is_list(steps):
        hint = ', e.g. [%s]' % steps if isinstance(steps, (str, int)) and not isinstance(steps, bool) else ''
        raise AnsibleFilterError('%s must be a list of percentages ending with 100, e.g. [10, 50, 100], got %s%s'
                                 % (VAR, describe(steps), hint))
    if not steps:
        raise AnsibleFilterError('%s is empty; give at least one step, and the last must be 100, e.g. [10, 50, 100] or [100]' % VAR)
    problems = []
    percents = [_percent(index, value, problems) for index, value in enumerate(steps)]

    before = None
    for index, percent in enumerate(percents):
        if percent is None:
            continue
        previous = percents[before] if before is not None else None
        if previous is not None and percent <= previous:
            where = 'the step before' if before == index - 1 else '%s[%s]' % (VAR, before)
            problems.append('%s[%d] is %s, not more than %s (%s): steps must increase' % (VAR, index, percent, where, previous))
        else:
            before = index
    if percents[-1] is not None and percents[-1] != 100:
        problems.append('%s ends at %d; the last step must be 100 (all traffic on the new colour), e.g. [10, 50, 100]' % (VAR, percents[-1]))

    if problems:
        raise AnsibleFilterError('\n'.join(problems))
    result = []
    for percent in percents:
        divisor = math.gcd(percent, 100)
        result.append({'percent': percent, 'new_weight': percent // divisor, 'old_weight': (100 - percent) // divisor})
    return result


class FilterModule(object):
    """dealerscope.ops.deploy_canary_steps"""

    def filters(self):
        return {'deploy_canary_steps': deploy_canary_steps}
