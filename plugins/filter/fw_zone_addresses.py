# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fw_zone_addresses
short_description: Resolve firewall zones (CIDRs and inventory groups) to their IPv4/IPv6 addresses and hosts
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Turns the firewall role's C(firewall_zones) into the addresses of each zone, for nftables sets and for the other
    C(fw_*) filters.
  - A zone's C(cidrs) are checked and collapsed as by P(dealerscope.ops.fw_cidrs#filter). Each group of a zone's C(groups)
    adds the address of each of its hosts, read from C(hostvars[host][address_var]); when that is not set, from
    C(ansible_host); when neither is set, the inventory name itself. A group that is in the inventory but has no hosts
    adds nothing (the zone may end up without addresses); a group that is not in the inventory is an error.
  - That value must be an IP address, or a list of them for a dual-stack host. A host name is an error naming the host,
    the zone and the variable to set - names are never resolved here, so the policy cannot change with DNS. A loopback
    or unspecified address (V(127.0.0.1), V(::1), V(0.0.0.0)) is refused too - it is how the controller reaches a
    container with published ports, not an address the host's traffic comes from.
  - Zone names must match C(^[a-z][a-z0-9_]{0,30}$), as they become nftables set names.
  - Requires the Python library C(netaddr) on the controller.
positional: _input, groups, hostvars
options:
  _input:
    description:
      - The zones (C(firewall_zones)), zone name to a dict with C(cidrs) (a list of addresses and CIDRs) and/or C(groups)
        (a list of inventory group names), and optionally C(description). A zone needs at least one of C(cidrs) and C(groups).
    type: dict
    required: true
  groups:
    description: The inventory groups, group name to host names - pass the magic variable C(groups).
    type: dict
    required: true
  hostvars:
    description: The hosts' variables - pass the magic variable C(hostvars).
    type: dict
    required: true
  address_var:
    description:
      - The host variable that holds a host's IP address (or a list of its addresses), for example V(lab_ip).
      - When a host does not set it, C(ansible_host) is used, then the inventory name.
    type: str
    default: ansible_host
  allow_empty:
    description:
      - Accept a zone with neither C(cidrs) nor C(groups) (or with both empty); its lists are then empty. Without it such a
        zone is an error, since a rule from or to it would match nothing.
      - For a check that runs before the group members' addresses are known, with C(groups) left out of the zones.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Addresses of every firewall zone
  ansible.builtin.set_fact:
    firewall_zone_addresses: "{{ firewall_zones | dealerscope.ops.fw_zone_addresses(groups, hostvars, address_var='lab_ip') }}"
  vars:
    firewall_zones:
      mgmt: {cidrs: [10.213.0.0/16]}
      public: {cidrs: [0.0.0.0/0, "::/0"]}
      lb: {groups: [loadbalancers]}
      db: {groups: [db], cidrs: [10.9.0.0/24]}
# -> mgmt:   {v4: [10.213.0.0/16], v6: [], hosts: []}
#    public: {v4: [0.0.0.0/0], v6: ['::/0'], hosts: []}
#    lb:     {v4: [10.213.47.10/32], v6: [], hosts: [lb1]}
#    db:     {v4: [10.9.0.0/24, 10.213.47.31/32, 10.213.47.32/32], v6: [], hosts: [db1, db2]}
"""

RETURN = r"""
_value:
  description: Zone name to the zone's addresses and hosts, in the order of O(_input).
  type: dict
  contains:
    v4:
      description: The zone's IPv4 CIDRs (its C(cidrs) and its hosts' addresses), collapsed, in address order.
      type: list
      elements: str
    v6:
      description: The zone's IPv6 CIDRs, collapsed, in address order.
      type: list
      elements: str
    hosts:
      description: The inventory names of the hosts of the zone's C(groups), sorted, each once.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.dealerscope.ops.plugins.plugin_utils import fw_net

try:
    from jinja2.runtime import Undefined
except ImportError:  # pragma: no cover - jinja2 comes with ansible-core
    Undefined = ()

ZONE_KEYS = ('cidrs', 'groups', 'description')


def _zone_name_error(name):
    fixed = ''.join(char if char.isalnum() else '_' for char in str(name).lower()).strip('_')
    if fixed and not fixed[0].isalpha():
        fixed = 'z_' + fixed
    fixed = fixed[:31]
    hint = (" (e.g. '%s')" % fixed) if fw_net.ZONE_NAME_RE.match(fixed) else ''
    return AnsibleFilterError("firewall_zones: zone name %r cannot be an nftables set name; use lowercase letters, digits and _, "
                              "starting with a letter, at most 31 characters%s" % (name, hint))


def _is_unset(value):
    return value is None or isinstance(value, Undefined) or (isinstance(value, string_types) and not value.strip())


def _host_value(host, hostvars, var, zone):
    """The host's ``var`` (None when not set); a template that fails names the host, zone and variable."""
    try:
        if host not in hostvars:
            return None
        variables = hostvars[host]
        if not fw_net.is_mapping(variables) or var not in variables:
            return None
        return variables[var]
    except Exception as error:  # an undefined variable in the host's template, for instance
        raise AnsibleFilterError('zone %s: host %s: cannot read %s: %s' % (zone, host, var, error))


def _shown(value):
    if fw_net.is_list(value):
        return [_shown(item) for item in value]
    return str(value) if isinstance(value, string_types) else value


def _host_addresses(host, hostvars, address_var, zone, group):
    """The IPAddress list of one host, from address_var, else ansible_host, else the inventory name."""
    where = 'zone %s: host %s (group %s)' % (zone, host, group)
    fix = 'set %s for %s to its IP address, or a list of its addresses' % (address_var, host)
    if address_var == 'ansible_host':
        fix += ', or pass address_var naming the host variable that holds its address'
    source, value = None, None
    for var in (address_var, 'ansible_host'):
        value = _host_value(host, hostvars, var, zone)
        if not _is_unset(value):
            source = var
            break
    if source is None:
        value = host
        origin = 'neither %s nor ansible_host is set, and its inventory name %r' % (address_var, str(host))
    else:
        origin = '%s = %r' % (source, _shown(value))
    values = value if fw_net.is_list(value) else [value]
    if not values:
        raise AnsibleFilterError('%s: %s is an empty list; %s' % (where, origin, fix))
    addresses = []
    for item in values:
        what = origin if item is value else '%s: item %r' % (origin, _shown(item))
        address = fw_net.ip_address(item)
        if address is None:
            raise AnsibleFilterError('%s: %s is not an IP address (host names are not resolved here); %s' % (where, what, fix))
        if fw_net.is_loopback_or_unspecified(address):
            raise AnsibleFilterError('%s: %s is a loopback or unspecified address - how the controller reaches the host, '
                                     'not an address its traffic comes from; %s' % (where, what, fix))
        addresses.append(address)
    return addresses


def fw_zone_addresses(zones, groups, hostvars, address_var='ansible_host', allow_empty=False):
    """Each zone's IPv4/IPv6 CIDRs and hosts (see DOCUMENTATION)."""
    fw_net.require_netaddr('fw_zone_addresses')
    if not fw_net.is_mapping(zones):
        raise AnsibleFilterError('firewall_zones: must be a dict of zone name: {cidrs: [...], groups: [...]}, got %s %r'
                                 % (type(zones).__name__, zones))
    if not fw_net.is_mapping(groups):
        raise AnsibleFilterError('fw_zone_addresses: groups must be the dict of inventory groups (pass the magic variable groups), got %r' % (groups,))
    if not fw_net.is_mapping(hostvars):
        raise AnsibleFilterError('fw_zone_addresses: hostvars must be the hosts\' variables (pass the magic variable hostvars), got %s'
                                 % type(hostvars).__name__)
    if not isinstance(address_var, string_types) or not address_var.strip():
        raise AnsibleFilterError('fw_zone_addresses: address_var must be the name of a host variable, such as ansible_host, got %r' % (address_var,))
    address_var = str(address_var).strip()
    if not isinstance(allow_empty, bool):
        raise AnsibleFilterError('fw_zone_addresses: allow_empty must be true or false, got %r' % (allow_empty,))
    result = {}
    for zone, spec in zones.items():
        if not isinstance(zone, string_types) or not fw_net.ZONE_NAME_RE.match(zone):
            raise _zone_name_error(zone)
        zone = str(zone)
        if not fw_net.is_mapping(spec):
            raise AnsibleFilterError('zone %s (firewall_zones.%s): must be a dict with cidrs and/or groups, got %r' % (zone, zone, spec))
        unknown = sorted(str(key) for key in spec.keys() if key not in ZONE_KEYS)
        if unknown:
            raise AnsibleFilterError('zone %s (firewall_zones.%s): unknown key(s) %s; allowed keys are %s'
                                     % (zone, zone, ', '.join(unknown), ', '.join(ZONE_KEYS)))
        cidrs = spec.get('cidrs')
        zone_groups = spec.get('groups')
        if not cidrs and not zone_groups and not allow_empty:
            raise AnsibleFilterError('zone %s (firewall_zones.%s): has neither cidrs nor groups; give it a list of CIDRs, '
                                     'a list of inventory groups, or both' % (zone, zone))
        networks = list(fw_net.normalise(cidrs, 'zone %s (firewall_zones.%s.cidrs)' % (zone, zone))) if cidrs else []
        hosts = set()
        if zone_groups:
            if isinstance(zone_groups, string_types) or not fw_net.is_list(zone_groups):
                raise AnsibleFilterError('zone %s (firewall_zones.%s.groups): must be a list of inventory group names, got %r; write [%s]'
                                         % (zone, zone, zone_groups, zone_groups))
            for group in zone_groups:
                if not isinstance(group, string_types) or group not in groups:
                    raise AnsibleFilterError("zone %s (firewall_zones.%s.groups): group %r is not in the inventory (known groups: %s)%s"
                                             % (zone, zone, group, fw_net.known_list(groups), fw_net.did_you_mean(group, groups)))
                members = groups[group] or []
                for host in members:
                    host = str(host)
                    if host not in hosts:
                        hosts.add(host)
                        networks.extend(_host_networks(host, hostvars, address_var, zone, group))
        v4, v6 = fw_net.split_versions(fw_net.collapse(networks))
        result[zone] = {'v4': v4, 'v6': v6, 'hosts': sorted(hosts)}
    return result


def _host_networks(host, hostvars, address_var, zone, group):
    return [fw_net.netaddr.IPNetwork(address) for address in _host_addresses(host, hostvars, address_var, zone, group)]


class FilterModule(object):
    """dealerscope.ops.fw_zone_addresses"""

    def filters(self):
        return {'fw_zone_addresses': fw_zone_addresses}
