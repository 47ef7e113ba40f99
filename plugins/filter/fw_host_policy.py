# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fw_host_policy
short_description: The inbound allow list of one host, from the firewall rule matrix
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Selects the rules of C(firewall_rules) whose C(to) zone contains O(host) - the host is one of the zone's C(hosts)
    (it is in one of the zone's groups), or one of O(host_address) lies in the zone's addresses - and returns, for each,
    the service's protocol and port and the source zone, ready for an nftables template.
  - A catch-all C(to) zone (V(0.0.0.0/0), V(::/0)) contains every host that has an address in it, so such a rule applies
    to every host for which O(host_address) is given.
  - Every rule is validated as by P(dealerscope.ops.fw_rules_check#filter) (zones, service, port, proto); an error names
    the rule, for example C(firewall_rules[2] (app -> db postgres)).
  - Requires the Python library C(netaddr) on the controller.
positional: _input
options:
  _input:
    description: The rules (C(firewall_rules)), in order, each a dict with C(from), C(to), C(service) and optionally C(comment).
    type: list
    elements: dict
    required: true
  host:
    description: The inventory name of the host (C(inventory_hostname)).
    type: str
    required: true
  zone_addresses:
    description: The zones' addresses, the result of P(dealerscope.ops.fw_zone_addresses#filter).
    type: dict
    required: true
  services:
    description: The services (C(firewall_services)), name to C({port, proto}).
    type: dict
    required: true
  host_address:
    description:
      - The host's own IP address, or a list of its addresses (IPv4 and IPv6), for zones given by C(cidrs).
        Must be IP addresses; host names are refused, not resolved, and so are loopback and unspecified addresses.
      - Omitted or empty - only zone membership through inventory groups counts.
    type: raw
"""

EXAMPLES = r"""
- name: Inbound policy of this host
  ansible.builtin.set_fact:
    firewall_host_policy: >-
      {{ firewall_rules | dealerscope.ops.fw_host_policy(host=inventory_hostname, zone_addresses=firewall_zone_addresses,
                                                         services=firewall_services, host_address=lab_ip) }}
# On app1 with rules [{from: public, to: lb, service: https}, {from: lb, to: app, service: api}]:
# -> allow: [{service: api, proto: tcp, port: '8000', from: lb, rule: 1}]
#    zones: [lb]
"""

RETURN = r"""
_value:
  description: What the host accepts.
  type: dict
  contains:
    allow:
      description:
        - One entry per rule whose C(to) zone contains the host, in rule order - C(service) (its name), C(proto) (V(tcp) or
          V(udp)), C(port) (a string in nftables syntax, V(8000) or V(8000-8100)), C(from) (the source zone) and C(rule)
          (the rule's index in C(firewall_rules)).
      type: list
      elements: dict
    zones:
      description: The source zones of RV(_value.allow), sorted, each once - the nftables sets the host's policy needs.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.dealerscope.ops.plugins.plugin_utils import fw_net


def _host_addresses(host, value):
    if value is None or (isinstance(value, string_types) and not value.strip()):
        return []
    values = value if fw_net.is_list(value) else [value]
    addresses = []
    for item in values:
        address = fw_net.ip_address(item)
        if address is None:
            raise AnsibleFilterError('fw_host_policy: host %s: host_address %r is not an IP address (host names are not resolved); '
                                     'pass the IP address of %s, or a list of its addresses' % (host, item, host))
        if fw_net.is_loopback_or_unspecified(address):
            raise AnsibleFilterError('fw_host_policy: host %s: host_address %s is a loopback or unspecified address, not the address '
                                     'its traffic arrives at; pass the own IP address of %s' % (host, address, host))
        addresses.append(address)
    return addresses


def fw_host_policy(rules, host, zone_addresses, services, host_address=None):
    """The inbound allow list of ``host`` (see DOCUMENTATION)."""
    fw_net.require_netaddr('fw_host_policy')
    if not isinstance(host, string_types) or not host.strip():
        raise AnsibleFilterError('fw_host_policy: host must be the inventory name of the host (inventory_hostname), got %r' % (host,))
    host = str(host)
    fw_net.check_inputs(rules, services, 'fw_host_policy (host %s)' % host)
    sets = fw_net.zone_sets(zone_addresses, 'fw_host_policy (host %s)' % host)
    addresses = _host_addresses(host, host_address)
    contains = {}
    allow = []
    for index, raw in enumerate(rules):
        rule = fw_net.parse_rule(index, raw, sets, services, zones_var='zone_addresses (firewall_zones)')
        zone = rule['to']
        if zone not in contains:
            contains[zone] = host in fw_net.zone_hosts(zone_addresses, zone) or any(address in sets[zone] for address in addresses)
        if contains[zone]:
            allow.append({'service': rule['service'], 'proto': rule['proto'], 'port': rule['port'], 'from': rule['from'], 'rule': index})
    return {'allow': allow, 'zones': sorted(set(entry['from'] for entry in allow))}


class FilterModule(object):
    """dealerscope.ops.fw_host_policy"""

    def filters(self):
        return {'fw_host_policy': fw_host_policy}
