# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fw_zone_overlaps
short_description: Find firewall zones whose addresses intersect
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Compares the addresses of every pair of zones (the result of P(dealerscope.ops.fw_zone_addresses#filter)) and returns
    the pairs that share addresses, with the shared CIDRs. An address in two zones gets the rules of both, which is
    rarely meant - a host in two groups, a CIDR that covers another zone's hosts, or hosts that all report the same address.
  - Not reported - pairs listed in O(allowed) (in either order), and every pair with a catch-all zone, one whose addresses
    include all of IPv4 (V(0.0.0.0/0)) or all of IPv6 (V(::/0)); such a zone overlaps everything on purpose.
  - The result is sorted by zone names, and each pair's names are sorted, so it does not depend on the order of the zones.
  - Requires the Python library C(netaddr) on the controller.
positional: _input
options:
  _input:
    description: Zone name to C({v4, v6, hosts}), the result of P(dealerscope.ops.fw_zone_addresses#filter).
    type: dict
    required: true
  allowed:
    description:
      - Pairs of zone names that may overlap, each a list of two names in any order, for example V([[mgmt, app]]).
      - A name that is not a zone of O(_input) is an error.
    type: list
    elements: list
    default: []
"""

EXAMPLES = r"""
- name: Zones must not share addresses
  ansible.builtin.assert:
    that: overlaps | length == 0
    fail_msg: "Zones share addresses: {{ overlaps | to_json }}"
  vars:
    overlaps: "{{ firewall_zone_addresses | dealerscope.ops.fw_zone_overlaps(allowed=[['mgmt', 'app']]) }}"

# {'app': {'v4': ['10.213.47.0/24'], 'v6': [], 'hosts': []}, 'db': {'v4': ['10.213.47.31/32'], 'v6': [], 'hosts': ['db1']},
#  'public': {'v4': ['0.0.0.0/0'], 'v6': ['::/0'], 'hosts': []}} | dealerscope.ops.fw_zone_overlaps
# -> [{'zones': ['app', 'db'], 'overlap': ['10.213.47.31/32']}]
"""

RETURN = r"""
_value:
  description: One entry per pair of zones that share addresses, sorted by C(zones).
  type: list
  elements: dict
  contains:
    zones:
      description: The two zone names, sorted.
      type: list
      elements: str
    overlap:
      description: The shared addresses as collapsed CIDRs, IPv4 first.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.dealerscope.ops.plugins.plugin_utils import fw_net


def _allowed_pairs(allowed, zones):
    if allowed is None:
        return set()
    if not fw_net.is_list(allowed):
        raise AnsibleFilterError('fw_zone_overlaps: allowed must be a list of zone pairs such as [[mgmt, app]], got %r' % (allowed,))
    pairs = set()
    for index, pair in enumerate(allowed):
        if not fw_net.is_list(pair) or len(pair) != 2 or not all(isinstance(name, string_types) for name in pair):
            raise AnsibleFilterError('fw_zone_overlaps: allowed[%d] must be a list of two zone names such as [mgmt, app], got %r' % (index, pair))
        for name in pair:
            if name not in zones:
                raise AnsibleFilterError("fw_zone_overlaps: allowed[%d] %s: zone '%s' is not a zone (known zones: %s)%s"
                                         % (index, [str(item) for item in pair], name, fw_net.known_list(zones), fw_net.did_you_mean(name, zones)))
        if pair[0] == pair[1]:
            raise AnsibleFilterError("fw_zone_overlaps: allowed[%d] names zone '%s' twice; a pair needs two different zones" % (index, pair[0]))
        pairs.add(frozenset(str(name) for name in pair))
    return pairs


def fw_zone_overlaps(zone_addresses, allowed=None):
    """Pairs of zones that share addresses (see DOCUMENTATION)."""
    fw_net.require_netaddr('fw_zone_overlaps')
    sets = fw_net.zone_sets(zone_addresses, 'fw_zone_overlaps')
    pairs = _allowed_pairs(allowed, sets)
    names = sorted(name for name, ipset in sets.items() if not fw_net.is_catch_all(ipset))
    found = []
    for position, first in enumerate(names):
        for second in names[position + 1:]:
            if frozenset((first, second)) in pairs:
                continue
            shared = sets[first] & sets[second]
            if shared:
                found.append({'zones': [first, second], 'overlap': fw_net.ipset_cidrs(shared)})
    return found


class FilterModule(object):
    """dealerscope.ops.fw_zone_overlaps"""

    def filters(self):
        return {'fw_zone_overlaps': fw_zone_overlaps}
