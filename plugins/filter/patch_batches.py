# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: patch_batches
short_description: Plan the batches of a rolling patch run from group order, batch size, canary and pool limits
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Orders the hosts to patch group by group (O(order)), puts an optional canary alone in the first batch, and cuts the rest into
    batches of at most O(serial) hosts that never mix two order-groups and never take more hosts of a pool out of service than
    the pool allows (O(pools)).
  - Each target belongs to the first group of O(order) it is a member of; targets in none of them form the group C(other),
    patched last (or where O(order) lists C(other)). Within a group the order of O(_input) is kept. Batches are filled
    greedily in that order; a batch is closed as soon as the next host would exceed O(serial) or a pool limit.
  - Pool limits assume every host of the pool is healthy when the run starts; hosts that are not targets count towards the pool size.
  - Errors name the role variables C(patching_targets), C(patching_order), C(patching_serial), C(patching_canary) and C(patching_pools[i]).
options:
  _input:
    description: The host names to patch, in inventory order (for example C(ansible_play_hosts_all)). Duplicates are ignored.
    type: list
    elements: str
    required: true
  host_groups:
    description:
      - Host name -> list of its group names (from C(hostvars[host].group_names)). Must have an entry for every target; entries
        for other hosts count towards the pool sizes of O(pools).
    type: dict
    required: true
  order:
    description: Group names in patching order, for example V([db_standby, db_primary, app, loadbalancers]). Unknown names are skipped.
    type: list
    elements: str
    default: []
  serial:
    description:
      - Maximum batch size. A whole number of hosts (V(2) or V('2')), or a percentage of the number of targets from V('1%') to
        V('100%') (rounded down, at least 1, as Ansible's C(serial) does).
    type: raw
    default: 1
  canary:
    description:
      - V(false) for no canary, V(true) for the first host of the planned order, or the name of a target.
      - The canary is patched alone in the first batch; the other hosts keep their order.
    type: raw
    default: false
  pools:
    description: Capacity pools that must keep enough healthy hosts while patching.
    type: list
    elements: dict
    default: []
    suboptions:
      group:
        description: Group whose members form the pool.
        type: str
        required: true
      min_healthy:
        description: Hosts of the pool that must stay in service during every batch.
        type: int
        default: 1
      max_parallel:
        description: Maximum hosts of the pool in one batch. The effective limit is C(min(max_parallel, pool size - min_healthy)).
        type: int
        default: 1
"""

EXAMPLES = r"""
- name: Plan the rolling patch run
  ansible.builtin.set_fact:
    patch_plan: >-
      {{ patching_targets | dealerscope.ops.patch_batches(
           dict(groups['all'] | zip(groups['all'] | map('extract', hostvars, 'group_names'))),
           order=['db_standby', 'db_primary', 'app', 'loadbalancers'], serial=2, canary=true,
           pools=[{'group': 'app', 'min_healthy': 1, 'max_parallel': 1}]) }}

# With the lab fleet (lb1, app1, app2, db1 in db_primary, db2 in db_standby), serial=2, canary=true and the app pool above:
#   order:   [db2, db1, app1, app2, lb1]
#   batches: [[db2], [db1], [app1], [app2], [lb1]]
#   sizes:   [1, 1, 1, 1, 1]
#   canary:  db2
#   group_of: {db2: db_standby, db1: db_primary, app1: app, app2: app, lb1: loadbalancers}
# A play that lists its hosts in patch_plan.order can use "serial: '{{ patch_plan.sizes }}'".
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    order:
      description: Every target exactly once, in patching order (the batches concatenated).
      type: list
      elements: str
    batches:
      description: The batches, each a list of host names.
      type: list
      elements: list
    sizes:
      description: The size of each batch; they add up to the number of targets (usable as a play's C(serial) list).
      type: list
      elements: int
    batch_groups:
      description: The order-group of each batch (the canary batch has its host's group).
      type: list
      elements: str
    group_of:
      description: Host name -> the order-group it is patched with (a name from O(order), or C(other)).
      type: dict
    canary:
      description: The canary host, or null.
      type: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import is_list

OTHER = 'other'
POOL_KEYS = ('group', 'min_healthy', 'max_parallel')
TRUE_STRINGS = ('true', 'yes', 'on')
FALSE_STRINGS = ('false', 'no', 'off', '')


def _targets(value):
    if not is_list(value):
        raise AnsibleFilterError('patching_targets: must be a list of host names, got %r' % (value,))
    targets = []
    for host in value:
        if not isinstance(host, string_types) or not host:
            raise AnsibleFilterError('patching_targets: every entry must be a host name, got %r' % (host,))
        if host not in targets:
            targets.append(str(host))
    if not targets:
        raise AnsibleFilterError('patching_targets matched no hosts: there is nothing to patch; check the host pattern (patching_group) and --limit')
    return targets


def _host_groups(value, targets):
    if not hasattr(value, 'keys'):
        raise AnsibleFilterError('patch_batches: host_groups must be a dict host -> list of group names (hostvars[host].group_names), got %r'
                                 % (value,))
    groups = {}
    for host in value.keys():
        names = value[host]
        if not is_list(names) or not all(isinstance(name, string_types) for name in names):
            raise AnsibleFilterError('patch_batches: host_groups[%r] must be a list of group names, got %r' % (host, names))
        groups[str(host)] = [str(name) for name in names]
    missing = [host for host in targets if host not in groups]
    if missing:
        raise AnsibleFilterError('patch_batches: host_groups has no entry for target(s) %s; give the group_names of every target'
                                 % ', '.join(missing))
    return groups


def _order(value):
    if value is None:
        return []
    if not is_list(value):
        raise AnsibleFilterError('patching_order: must be a list of group names in patching order (e.g. [db_standby, db_primary, app]), got %r'
                                 % (value,))
    order = []
    for position, name in enumerate(value):
        if not isinstance(name, string_types) or not name:
            raise AnsibleFilterError('patching_order[%d]: must be a group name, got %r' % (position, name))
        if name not in order:
            order.append(str(name))
    return order


def serial_size(value, total):
    """Maximum batch size from a serial value (int, 'N' or 'N%') for `total` targets."""
    allowed = ("a whole number of hosts >= 1 (e.g. 2 or '2') or a percentage of the targets from '1%' to '100%' (e.g. '25%')")
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, string_types):
        text = value.strip()
        percent = re.match(r'^(\d+)\s*%$', text)
        if percent and 1 <= int(percent.group(1)) <= 100:
            return max(int(total * int(percent.group(1)) / 100), 1)
        if re.match(r'^\d+$', text):
            number = int(text)
    if number is None or number < 1:
        raise AnsibleFilterError('patching_serial: %r is not allowed; use %s' % (value, allowed))
    return number


def _count(value, where, name, default, minimum):
    if value is None:
        return default
    if isinstance(value, string_types) and re.match(r'^\s*\d+\s*$', value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AnsibleFilterError('%s.%s: must be a whole number >= %d, got %r' % (where, name, minimum, value))
    return value


def _pools(value):
    if value is None:
        return []
    if not is_list(value):
        raise AnsibleFilterError('patching_pools: must be a list of {group, min_healthy, max_parallel} dicts, got %r' % (value,))
    pools = []
    for index, raw in enumerate(value):
        where = 'patching_pools[%d]' % index
        if not hasattr(raw, 'keys'):
            raise AnsibleFilterError('%s: must be a dict {group: app, min_healthy: 1, max_parallel: 1}, got %r' % (where, raw))
        unknown = sorted(str(key) for key in raw.keys() if key not in POOL_KEYS)
        if unknown:
            raise AnsibleFilterError('%s: unknown key(s) %s; allowed keys are group, min_healthy, max_parallel' % (where, ', '.join(unknown)))
        group = raw.get('group')
        if not isinstance(group, string_types) or not group:
            raise AnsibleFilterError('%s.group: must be a group name, got %r' % (where, group))
        pools.append({'index': index, 'where': where, 'group': str(group),
                      'min_healthy': _count(raw.get('min_healthy'), where, 'min_healthy', 1, 0),
                      'max_parallel': _count(raw.get('max_parallel'), where, 'max_parallel', 1, 1)})
    return pools


def _canary(value, targets):
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, string_types):
        if value in targets:
            return str(value)
        if value.strip().lower() in TRUE_STRINGS + FALSE_STRINGS:
            return value.strip().lower() in TRUE_STRINGS
        shown = ', '.join(targets[:10]) + (', ... (%d hosts)' % len(targets) if len(targets) > 10 else '')
        raise AnsibleFilterError('patching_canary: %r is not one of the hosts to patch (%s); use false, true (the first host of the plan) '
                                 'or one of those host names' % (value, shown))
    raise AnsibleFilterError('patching_canary: must be false, true or a host name, got %r' % (value,))


def patch_batches(targets, host_groups, order=None, serial=1, canary=False, pools=None):
    """Plan the batches of a rolling patch run."""
    targets = _targets(targets)
    groups = _host_groups(host_groups, targets)
    order = _order(order)
    size = serial_size(serial, len(targets))
    canary = _canary(canary, targets)
    pools = _pools(pools)

    limits = {}
    for pool in pools:
        members = [host for host, names in groups.items() if pool['group'] in names]
        limit = min(pool['max_parallel'], len(members) - pool['min_healthy'])
        if limit < 1 and any(host in members for host in targets):
            raise AnsibleFilterError('%s: group %s has %d host(s) and min_healthy %d: patching any of them would leave fewer than %d healthy; '
                                     'lower min_healthy or add hosts' % (pool['where'], pool['group'], len(members), pool['min_healthy'],
                                                                         pool['min_healthy']))
        limits[pool['index']] = limit
    pools_of = dict((host, [pool['index'] for pool in pools if pool['group'] in groups[host]]) for host in targets)

    group_of = {}
    for host in targets:
        group_of[host] = next((name for name in order if name in groups[host]), OTHER)
    sequence = [name for name in order if name in group_of.values()] + ([OTHER] if OTHER not in order and OTHER in group_of.values() else [])
    planned = [host for name in sequence for host in targets if group_of[host] == name]

    batches = []
    if canary is True:
        canary = planned[0]
    if canary:
        batches.append([canary])
    for name in sequence:
        batch, counts = [], {}
        for host in planned:
            if group_of[host] != name or host == canary:
                continue
            full = len(batch) >= size or any(counts.get(pool, 0) + 1 > limits[pool] for pool in pools_of[host])
            if batch and full:
                batches.append(batch)
                batch, counts = [], {}
            batch.append(host)
            for pool in pools_of[host]:
                counts[pool] = counts.get(pool, 0) + 1
        if batch:
            batches.append(batch)

    return {'order': [host for batch in batches for host in batch], 'batches': batches, 'sizes': [len(batch) for batch in batches],
            'batch_groups': [group_of[batch[0]] for batch in batches], 'group_of': group_of, 'canary': canary or None}


class FilterModule(object):
    """dealerscope.ops.patch_batches"""

    def filters(self):
        return {'patch_batches': patch_batches}
