# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fw_rules_check
short_description: Validate the firewall rule matrix and find duplicate and shadowed rules
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Checks every rule of C(firewall_rules) and every service of C(firewall_services). An error names the rule by index
    and content, for example C(firewall_rules[2] (app -> db postgres)) - a rule that is not a dict, a missing or unknown
    key, a zone that is not in C(firewall_zones), a service that is not in C(firewall_services), and for the rule's
    service a port outside 1-65535, a range C(a-b) with a greater than b, or a proto other than C(tcp) or C(udp).
    Services no rule uses are checked too; their errors name C(firewall_services.<name>).
  - When every rule is valid, returns the rules that add nothing (the shadowed ones only when O(zone_addresses) is
    given). A duplicate repeats an earlier rule (same C(from), C(to) and C(service)). A rule is shadowed when an earlier
    rule has the same C(to) and C(service) and its C(from) zone's addresses contain every address of this rule's C(from)
    zone. Each rule is reported at most once, against the first earlier rule that makes it redundant; a duplicate is not
    also reported as shadowed.
  - Requires the Python library C(netaddr) on the controller.
positional: _input
options:
  _input:
    description:
      - The rules (C(firewall_rules)), in order, each a dict with C(from) and C(to) (zone names), C(service) (a service name)
        and optionally C(comment).
    type: list
    elements: dict
    required: true
  zones:
    description: The zones (C(firewall_zones)); only their names are used here.
    type: dict
    required: true
  services:
    description:
      - The services (C(firewall_services)), name to C({port, proto}) (and optionally C(comment), C(description)).
        C(port) is a number 1-65535 or a range string V(8000-8100); C(proto) is V(tcp) or V(udp).
    type: dict
    required: true
  zone_addresses:
    description:
      - The zones' addresses, the result of P(dealerscope.ops.fw_zone_addresses#filter) for the same O(zones). Used to
        decide whether a rule is shadowed.
      - Omitted (a syntax check before the addresses are known) - the rules and services are validated and duplicates
        found; RV(_value.shadowed) is then always empty.
    type: dict
"""

EXAMPLES = r"""
- name: Check the rule matrix
  ansible.builtin.set_fact:
    firewall_findings: >-
      {{ firewall_rules | dealerscope.ops.fw_rules_check(zones=firewall_zones, services=firewall_services,
                                                         zone_addresses=firewall_zone_addresses) }}

- name: Refuse redundant rules
  ansible.builtin.assert:
    that: firewall_findings.duplicates + firewall_findings.shadowed == []
    fail_msg: "{{ (firewall_findings.duplicates + firewall_findings.shadowed) | map(attribute='message') | list }}"

# With rules [{from: public, to: lb, service: https}, {from: mgmt, to: lb, service: https}] and a catch-all public zone:
# -> duplicates: []
#    shadowed: [{rule: 1, shadowed_by: 0, message: "firewall_rules[1] (mgmt -> lb https) is shadowed by
#               firewall_rules[0] (public -> lb https): every address of zone mgmt is in zone public"}]
"""

RETURN = r"""
_value:
  description: The redundant rules.
  type: dict
  contains:
    duplicates:
      description:
        - One entry per rule that repeats an earlier one, in rule order - C(rule) (its index), C(duplicate_of) (the index of
          the first earlier identical rule) and C(message).
      type: list
      elements: dict
    shadowed:
      description:
        - One entry per rule that an earlier rule makes redundant, in rule order - C(rule) (its index), C(shadowed_by) (the
          index of the first such earlier rule) and C(message). Always empty without O(zone_addresses).
      type: list
      elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.plugin_utils import fw_net


def fw_rules_check(rules, zones, services, zone_addresses=None):
    """Validate the rules; return their duplicates and shadowed rules (see DOCUMENTATION)."""
    fw_net.require_netaddr('fw_rules_check')
    fw_net.check_inputs(rules, services, 'fw_rules_check')
    if not fw_net.is_mapping(zones):
        raise AnsibleFilterError('fw_rules_check: firewall_zones must be a dict of zone name: {cidrs, groups}, got %s %r' % (type(zones).__name__, zones))
    sets = fw_net.zone_sets(zone_addresses, 'fw_rules_check') if zone_addresses is not None else None
    parsed = [fw_net.parse_rule(index, rule, zones, services) for index, rule in enumerate(rules)]
    for name in services:
        fw_net.parse_service(str(name), services[name], None)
    for rule in parsed:
        for key in ('from', 'to'):
            if sets is not None and rule[key] not in sets:
                raise AnsibleFilterError("%s: zone_addresses has no entry for zone '%s'; compute it with dealerscope.ops.fw_zone_addresses "
                                         "from the same firewall_zones" % (rule['label'], rule[key]))

    duplicates, shadowed = [], []
    for index, rule in enumerate(parsed):
        earlier = [(position, other) for position, other in enumerate(parsed[:index])
                   if other['to'] == rule['to'] and other['service'] == rule['service']]
        same = [position for position, other in earlier if other['from'] == rule['from']]
        if same:
            duplicates.append({'rule': index, 'duplicate_of': same[0],
                               'message': '%s is a duplicate of %s' % (rule['label'], parsed[same[0]]['label'])})
            continue
        if sets is None:
            continue
        covering = [position for position, other in earlier if sets[rule['from']].issubset(sets[other['from']])]
        if covering:
            by = parsed[covering[0]]
            if sets[rule['from']]:
                why = 'every address of zone %s is in zone %s' % (rule['from'], by['from'])
            else:
                why = 'zone %s has no addresses at all' % rule['from']
            shadowed.append({'rule': index, 'shadowed_by': covering[0],
                             'message': '%s is shadowed by %s: %s' % (rule['label'], by['label'], why)})
    return {'duplicates': duplicates, 'shadowed': shadowed}


class FilterModule(object):
    """dealerscope.ops.fw_rules_check"""

    def filters(self):
        return {'fw_rules_check': fw_rules_check}
