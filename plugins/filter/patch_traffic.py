# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: patch_traffic
short_description: Find the batches of a patching plan that take every load balancer out at once
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - All traffic goes through the load balancers (the role's C(patching_lb_hosts)). A batch that holds every one of them - the only one,
    or all of them with a large C(patching_serial) - interrupts all traffic while it is patched (drain, upgrade, restarts, reboot).
  - Returns those batches, so the patching role can refuse the run before any change unless the operator accepts the interruption
    (C(patching_allow_traffic_interruption)), and the report can say traffic was interrupted.
  - Load balancers that are not targets keep serving, so a run that patches only some of them interrupts nothing.
options:
  _input:
    description: The batches of the plan (C(batches) of P(dealerscope.ops.patch_batches#filter)), each a list of host names.
    type: list
    elements: list
    required: true
  lb_hosts:
    description: The hosts all traffic goes through (C(patching_lb_hosts)). Empty - nothing to interrupt.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Batches that would interrupt all traffic
  ansible.builtin.set_fact:
    interruptions: "{{ plan.batches | dealerscope.ops.patch_traffic(groups['loadbalancers']) }}"
# With one load balancer lb1 and batches [[db2], [db1], [app1], [app2], [lb1]]:
#   [{"batch": 5, "hosts": ["lb1"]}]
"""

RETURN = r"""
_value:
  description: One entry per batch that holds every load balancer - C(batch) (its number, from 1) and C(hosts) (the load balancers).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types


def _hosts(value, what):
    if isinstance(value, string_types) or not is_sequence(value):
        raise AnsibleFilterError('%s: must be a list of host names, got %r' % (what, value))
    return [str(host) for host in value]


def patch_traffic(batches, lb_hosts):
    """Batches that hold every host of ``lb_hosts`` (see DOCUMENTATION)."""
    if isinstance(batches, string_types) or not is_sequence(batches):
        raise AnsibleFilterError('patch_traffic: the batches must be a list of lists of host names, got %r' % (batches,))
    lbs = _hosts(lb_hosts, 'patching_lb_hosts')
    if not lbs:
        return []
    found = []
    for number, batch in enumerate(batches, 1):
        members = _hosts(batch, 'patch_traffic: batch %d' % number)
        if all(host in members for host in lbs):
            found.append({'batch': number, 'hosts': [host for host in members if host in lbs]})
    return found


class FilterModule(object):
    """dealerscope.ops.patch_traffic"""

    def filters(self):
        return {'patch_traffic': patch_traffic}
