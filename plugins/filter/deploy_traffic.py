# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: deploy_traffic
short_description: Tell from a load balancer pool which colour of a blue/green deploy serves, and plan the weights of a traffic move
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Given the members of the load balancer's pool (RV(dealerscope.ops.lb_pool#module:members) of
    M(dealerscope.ops.lb_pool)) and the members each colour has (C(<address>:<colour port>) of every app host), it
    returns which colour serves (RV(live)), which one is idle, whether traffic is split between both colours (an
    interrupted deploy, RV(interrupted)), the members serving that belong to no colour (RV(other), for example a
    single-instance service the colours replace), each colour's share of the weight, and the members drained for
    maintenance.
  - With O(to) and O(percent) it also returns RV(members), the pool to set with M(dealerscope.ops.lb_pool) so that the
    colour O(to) gets O(percent) of the requests and the members serving now (of the other colour, and of no colour)
    the rest. At 100 the other colour's members stay in the pool with weight 0 (down, warm for an instant rollback)
    and members of no colour leave it.
  - Weights are per member, so the shares hold when the colours have different numbers of members.
positional: _input
options:
  _input:
    description: The pool's members - dicts with C(address), C(weight) (int), C(down) (bool) and optionally C(drained) (bool).
    type: list
    elements: dict
    required: true
  colours:
    description: "Colour name to the list of its member addresses, for example C({blue: [app1:8001], green: [app1:8002]})."
    type: dict
    required: true
  to:
    description: The colour to move traffic to (with O(percent)).
    type: str
  percent:
    description: The share of the requests for O(to), a whole number from 1 to 100 (digits in a string are accepted).
    type: raw
"""

EXAMPLES = r"""
- name: Where the traffic goes now
  ansible.builtin.set_fact:
    traffic: "{{ pool.members | dealerscope.ops.deploy_traffic(colours) }}"
  vars:
    colours: {blue: [app1:8001, app2:8001], green: [app1:8002, app2:8002]}
# -> {live: blue, idle: green, interrupted: false, share: {blue: 100, green: 0, other: 0}, other: [], drained: [], ...}

- name: 10 percent to green
  dealerscope.ops.lb_pool:
    pool: dealerscope_api
    config_path: /etc/nginx/sites-available/dealerscope.conf
    members: "{{ (pool.members | dealerscope.ops.deploy_traffic(colours, to='green', percent=10)).members }}"
"""

RETURN = r"""
_value:
  description: The traffic state, and the plan when O(to) is given.
  type: dict
  contains:
    live:
      description: The colour that serves (has members with traffic), or V(null) when none does or both do.
      type: str
    idle:
      description: The other colour (when nothing is live, the first colour that is not O(to), or the first colour).
      type: str
    interrupted:
      description: Both colours have members with traffic (a traffic move that did not finish).
      type: bool
    serving:
      description: Colour name (and V(other)) to the addresses with traffic.
      type: dict
    share:
      description: Colour name (and V(other)) to its share of the weight in percent, rounded to one decimal.
      type: dict
    other:
      description: Addresses with traffic that belong to no colour.
      type: list
      elements: str
    drained:
      description: Addresses drained for maintenance (C(drained) true).
      type: list
      elements: str
    members:
      description: Only with O(to) - the pool to set, dicts with C(address) and C(weight) (0 - down).
      type: list
      elements: dict
"""

import math
import re

from ansible.errors import AnsibleFilterError

OTHER = 'other'


def _int_percent(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.match(r'^\s*[0-9]+\s*$', value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 1 <= value <= 100:
        return value
    return None


def _check(members, colours):
    problems = []
    if not isinstance(members, list):
        raise AnsibleFilterError('deploy_traffic: the input must be the list of pool members (lb_pool members), got %s'
                                 % type(members).__name__)
    if not isinstance(colours, dict) or len(colours) != 2:
        raise AnsibleFilterError('deploy_traffic: colours must map exactly two colour names to their member addresses, got %r' % (colours,))
    seen = {}
    for name, addresses in colours.items():
        if not isinstance(addresses, list) or not addresses:
            problems.append('colours.%s must be a non-empty list of addresses' % name)
            continue
        for address in addresses:
            if address in seen:
                problems.append('address %s is in colours %s and %s' % (address, seen[address], name))
            seen[address] = name
    for index, member in enumerate(members):
        if not isinstance(member, dict) or not isinstance(member.get('address'), str):
            problems.append('member %d has no address: %r' % (index, member))
    if problems:
        raise AnsibleFilterError('deploy_traffic: ' + '; '.join(problems))
    return seen


def _weight(member):
    try:
        return max(int(member.get('weight', 1)), 0)
    except (TypeError, ValueError):
        return 1


def deploy_traffic(members, colours, to=None, percent=None):
    colour_of = _check(members, colours)
    names = list(colours)
    serving = dict((name, []) for name in names + [OTHER])
    weight = dict((name, 0) for name in names + [OTHER])
    drained = []
    for member in members:
        if member.get('drained'):
            drained.append(member['address'])
        if member.get('down') or _weight(member) == 0:
            continue
        owner = colour_of.get(member['address'], OTHER)
        serving[owner].append(member['address'])
        weight[owner] += _weight(member)
    total = sum(weight.values())
    share = dict((name, round(100.0 * weight[name] / total, 1) if total else 0.0) for name in weight)
    with_traffic = [name for name in names if serving[name]]
    interrupted = len(with_traffic) == 2
    live = with_traffic[0] if len(with_traffic) == 1 else None
    if live:
        idle = [name for name in names if name != live][0]
    elif to in names:
        idle = to
    else:
        idle = names[0]
    result = dict(live=live, idle=idle, interrupted=interrupted, serving=serving, share=share, other=serving[OTHER],
                  drained=drained)
    if to is None:
        return result
    if to not in colours:
        raise AnsibleFilterError('deploy_traffic: to=%r is not a colour (%s)' % (to, ', '.join(names)))
    step = _int_percent(percent)
    if step is None:
        raise AnsibleFilterError('deploy_traffic: percent=%r must be a whole number from 1 to 100' % (percent,))
    new = list(colours[to])
    old = [address for name in names + [OTHER] if name != to for address in serving[name]]
    if step == 100 or not old:
        plan = [dict(address=address, weight=1) for address in new]
        plan += [dict(address=address, weight=0) for name in names if name != to for address in colours[name]]
    else:
        # per member: new gets step * len(old), old (100 - step) * len(new), reduced by their greatest common divisor
        new_w, old_w = step * len(old), (100 - step) * len(new)
        divisor = math.gcd(new_w, old_w)
        plan = [dict(address=address, weight=new_w // divisor) for address in new]
        plan += [dict(address=address, weight=old_w // divisor) for address in old]
        # the other colour's idle members stay in the pool, down
        plan += [dict(address=address, weight=0) for name in names if name != to
                 for address in colours[name] if address not in old]
    result['members'] = plan
    return result


class FilterModule(object):
    def filters(self):
        return {'deploy_traffic': deploy_traffic}
