# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fw_cidrs
short_description: Validate, normalise and collapse a list of IPv4/IPv6 addresses and CIDRs
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Checks every entry of O(_input) and returns the smallest equivalent list of CIDRs (C(netaddr.cidr_merge)), IPv4 first,
    then IPv6, each in address order. The result covers exactly the same addresses as the input.
  - A bare address becomes a single-address network (V(192.0.2.7) becomes V(192.0.2.7/32), V(2001:db8::1) becomes
    V(2001:db8::1/128)).
  - Refused, with an error naming O(name) and the entry's position - a CIDR with host bits set (V(10.0.0.1/8); the
    message suggests V(10.0.0.0/8)), a netmask instead of a prefix length, a host name (names are never resolved),
    an empty string, and anything that is not a string.
  - Requires the Python library C(netaddr) on the controller.
positional: _input
options:
  _input:
    description: Addresses and CIDRs, IPv4 and/or IPv6. An empty list gives an empty list.
    type: list
    elements: str
    required: true
  name:
    description: What the list is, for error messages, for example V(zone mgmt) or V(firewall_zones.mgmt.cidrs).
    type: str
    default: fw_cidrs
"""

EXAMPLES = r"""
- name: Normalise the management networks
  ansible.builtin.set_fact:
    mgmt_cidrs: "{{ ['10.213.1.0/24', '10.213.0.0/24', '2001:db8::1', '10.213.0.7'] | dealerscope.ops.fw_cidrs(name='zone mgmt') }}"
# -> ['10.213.0.0/23', '2001:db8::1/128']

# ['10.0.0.1/8'] | dealerscope.ops.fw_cidrs(name='zone mgmt')
# -> error: zone mgmt: entry 0 '10.0.0.1/8' has host bits set; write the network 10.0.0.0/8, or 10.0.0.1/32 for the single address 10.0.0.1
"""

RETURN = r"""
_value:
  description: The collapsed CIDRs as strings, IPv4 first, then IPv6, each in address order.
  type: list
  elements: str
"""

from ansible_collections.dealerscope.ops.plugins.plugin_utils import fw_net


def fw_cidrs(cidrs, name='fw_cidrs'):
    """Validated, collapsed and sorted CIDR strings covering exactly the addresses of ``cidrs`` (see DOCUMENTATION)."""
    fw_net.require_netaddr('fw_cidrs')
    return fw_net.strings(fw_net.normalise(cidrs, str(name)))


class FilterModule(object):
    """dealerscope.ops.fw_cidrs"""

    def filters(self):
        return {'fw_cidrs': fw_cidrs}
