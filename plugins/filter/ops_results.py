# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: ops_results
short_description: Gather the check results a runbook registered on every host into one structure
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Takes C(hostvars) and, for each host, the registered results named in O(_input)'s keys, and returns per host the
    concatenated C(checks), plus which hosts were unreachable and which had a task fail (with its message).
  - A registered result that is skipped contributes nothing; one that is unreachable marks the host unreachable; one that
    failed, or returned no C(checks), marks the host failed with the module's message.
  - Also counts module executions per host (registered results that actually ran), for the runbook's speed budget.
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts of the run, usually C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  results:
    description: Names of the registered variables holding module results (each with a C(checks) list).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Collect every host's checks
  ansible.builtin.set_fact:
    daily_results: "{{ hostvars | dealerscope.ops.ops_results(ansible_play_hosts_all, ['health', 'logs', 'db']) }}"
"""

RETURN = r"""
_value:
  description: The gathered results.
  type: dict
  contains:
    hosts:
      description: Host name -> list of check dicts.
      type: dict
    unreachable:
      description: Hosts that could not be reached.
      type: list
      elements: str
    failed:
      description: Host name -> message of the first failed collection task.
      type: dict
    executions:
      description: Host name -> number of module executions that ran.
      type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types


def ops_results(hostvars, hosts, results):
    """Gather registered check results per host."""
    if not hasattr(hostvars, 'get'):
        raise AnsibleFilterError('ops_results: the input must be hostvars (a mapping of host -> variables), got %s' % type(hostvars).__name__)
    if isinstance(hosts, string_types) or not is_sequence(hosts):
        raise AnsibleFilterError('ops_results: hosts must be a list of host names (e.g. ansible_play_hosts_all), got %r' % (hosts,))
    if isinstance(results, string_types) or not is_sequence(results) or not results:
        raise AnsibleFilterError('ops_results: results must be a non-empty list of registered variable names, got %r' % (results,))
    gathered = {'hosts': {}, 'unreachable': [], 'failed': {}, 'executions': {}}
    for host in hosts:
        host_vars = hostvars.get(host)
        if host_vars is None:
            raise AnsibleFilterError('ops_results: host %r is not in hostvars; pass the play hosts of this inventory' % (host,))
        checks = []
        executions = 0
        for name in results:
            result = host_vars.get(name)
            if not result or not hasattr(result, 'get') or result.get('skipped'):
                continue
            if result.get('unreachable'):
                if host not in gathered['unreachable']:
                    gathered['unreachable'].append(host)
                continue
            executions += 1
            if result.get('failed') or result.get('failed_when_result') or 'checks' not in result:
                message = result.get('msg') or result.get('module_stderr') or 'no checks returned'
                gathered['failed'].setdefault(host, '%s: %s' % (name, str(message).strip()[:500]))
                continue
            checks.extend(result['checks'])
        gathered['hosts'][host] = checks
        gathered['executions'][host] = executions
    return gathered


class FilterModule(object):
    """dealerscope.ops.ops_results"""

    def filters(self):
        return {'ops_results': ops_results}
