# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Address and rule helpers shared by the ``fw_*`` filters of the firewall role (controller side, ``netaddr``).

Parsing is strict on purpose: a CIDR with host bits set, a netmask, a host name or an empty string is refused
with a message that names where it came from, rather than guessed at. Nothing here resolves DNS.
"""

from __future__ import annotations

import difflib
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

try:
    import netaddr
except ImportError:  # pragma: no cover - exercised by the error message only
    netaddr = None

ZONE_NAME_RE = re.compile(r'^[a-z][a-z0-9_]{0,30}$')
PREFIX_RE = re.compile(r'^[0-9]{1,3}$')
PORT_RE = re.compile(r'^[0-9]{1,5}$')
RANGE_RE = re.compile(r'^([0-9]{1,5})\s*-\s*([0-9]{1,5})$')
PROTOS = ('tcp', 'udp')
RULE_KEYS = ('from', 'to', 'service')
RULE_OPTIONAL_KEYS = ('comment',)
SERVICE_KEYS = ('port', 'proto')
SERVICE_OPTIONAL_KEYS = ('comment', 'description')
MAX_PREFIX = {4: 32, 6: 128}
EXAMPLE_CIDRS = 'e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32'


def require_netaddr(filter_name):
    if netaddr is None:
        raise AnsibleFilterError('%s: the Python library netaddr is required on the controller: pip install netaddr' % filter_name)


def is_list(value):
    return not isinstance(value, string_types) and not isinstance(value, Mapping) and is_sequence(value)


def is_mapping(value):
    return isinstance(value, Mapping)


def did_you_mean(name, known):
    """'; did you mean 'x'?' for a close match of ``name`` among ``known``, else ''."""
    close = difflib.get_close_matches(str(name), [str(item) for item in known], n=2)
    return ('; did you mean %s?' % ' or '.join("'%s'" % item for item in close)) if close else ''


def known_list(known):
    return ', '.join(sorted(str(item) for item in known)) or 'none'


# --- addresses -------------------------------------------------------------------------------------------------------

def ip_address(value):
    """The ``netaddr.IPAddress`` for a string holding exactly one IPv4/IPv6 address (no prefix), else None."""
    if not isinstance(value, string_types):
        return None
    text = value.strip()
    if not text or '/' in text:
        return None
    try:
        return netaddr.IPAddress(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def is_loopback_or_unspecified(address):
    if address.version == 6 and address.is_ipv4_mapped():
        address = address.ipv4()
    return address.is_loopback() or address.value == 0


def parse_network(entry, name, index):
    """One CIDR or bare address (-> /32 or /128) as a ``netaddr.IPNetwork``; refuses host bits, netmasks and garbage."""
    where = '%s: entry %d' % (name, index)
    if not isinstance(entry, string_types):
        raise AnsibleFilterError('%s is %s %r, not a string; write an address or CIDR (%s)'
                                 % (where, type(entry).__name__, entry, EXAMPLE_CIDRS))
    text = entry.strip()
    if not text:
        raise AnsibleFilterError('%s is an empty string; remove it or write an address or CIDR (%s)' % (where, EXAMPLE_CIDRS))
    address_text, slash, prefix_text = text.partition('/')
    address = ip_address(address_text)
    if address is None:
        raise AnsibleFilterError('%s %r is not an IPv4/IPv6 address or CIDR (%s); host names are not resolved here'
                                 % (where, str(entry), EXAMPLE_CIDRS))
    longest = MAX_PREFIX[address.version]
    if not slash:
        prefix = longest
    elif PREFIX_RE.match(prefix_text.strip()) and int(prefix_text) <= longest:
        prefix = int(prefix_text)
    else:
        hint = ''
        if not PREFIX_RE.match(prefix_text.strip()):
            try:
                hint = '; write a prefix length instead of a netmask: %s' % netaddr.IPNetwork(text).cidr   # 10.0.0.0/255.0.0.0
            except (netaddr.AddrFormatError, ValueError, TypeError):
                pass
        raise AnsibleFilterError('%s %r: the prefix length must be a number from 0 to %d%s' % (where, str(entry), longest, hint))
    network = netaddr.IPNetwork('%s/%d' % (address, prefix))
    if network.ip != network.network:
        raise AnsibleFilterError('%s %r has host bits set; write the network %s, or %s/%d for the single address %s'
                                 % (where, str(entry), network.cidr, address, longest, address))
    return network


def collapse(networks):
    """Merge ``networks`` (``netaddr.cidr_merge``), IPv4 first, then IPv6, each by address."""
    return sorted(netaddr.cidr_merge(list(networks)), key=lambda net: (net.version, net.first, net.prefixlen))


def normalise(values, name):
    """Validate a list of CIDR strings (see ``parse_network``) and return the collapsed ``IPNetwork`` list."""
    if isinstance(values, string_types):
        raise AnsibleFilterError('%s: must be a list of addresses or CIDRs, got the string %r; write it as a list: [%s]'
                                 % (name, str(values), str(values)))
    if not is_list(values):
        raise AnsibleFilterError('%s: must be a list of addresses or CIDRs (%s), got %s %r'
                                 % (name, EXAMPLE_CIDRS, type(values).__name__, values))
    return collapse(parse_network(entry, name, index) for index, entry in enumerate(values))


def strings(networks):
    return [str(net) for net in networks]


def split_versions(networks):
    """(IPv4 CIDR strings, IPv6 CIDR strings) of collapsed ``networks``."""
    return ([str(net) for net in networks if net.version == 4], [str(net) for net in networks if net.version == 6])


def ipset_cidrs(ipset):
    """The CIDR strings of a ``netaddr.IPSet``, IPv4 first."""
    return strings(collapse(ipset.iter_cidrs()))


def is_catch_all(ipset):
    """True when the set covers all of IPv4 or all of IPv6 (0.0.0.0/0 or ::/0)."""
    return netaddr.IPNetwork('0.0.0.0/0') in ipset or netaddr.IPNetwork('::/0') in ipset


# --- zone addresses (the output of fw_zone_addresses) ----------------------------------------------------------------

def zone_sets(zone_addresses, what):
    """{zone: netaddr.IPSet} from the result of ``fw_zone_addresses``, validated."""
    if not is_mapping(zone_addresses):
        raise AnsibleFilterError('%s: zone_addresses must be the dict returned by dealerscope.ops.fw_zone_addresses, got %s %r'
                                 % (what, type(zone_addresses).__name__, zone_addresses))
    sets = {}
    for zone, entry in zone_addresses.items():
        if not is_mapping(entry) or 'v4' not in entry or 'v6' not in entry:
            raise AnsibleFilterError("%s: zone_addresses['%s'] has no v4/v6 lists (got %r); pass the output of dealerscope.ops.fw_zone_addresses, "
                                     "not firewall_zones itself" % (what, zone, entry))
        networks = []
        for key in ('v4', 'v6'):
            networks.extend(normalise(entry[key], "zone %s (zone_addresses['%s'].%s)" % (zone, zone, key)))
        sets[str(zone)] = netaddr.IPSet(networks)
    return sets


def zone_hosts(zone_addresses, zone):
    hosts = zone_addresses[zone].get('hosts') or []
    return [str(host) for host in hosts] if is_list(hosts) else []


# --- services and rules ----------------------------------------------------------------------------------------------

def _port_number(text, where):
    number = int(text)
    if not 1 <= number <= 65535:
        raise AnsibleFilterError('%s: port %d is out of range 1-65535' % (where, number))
    return number


def parse_service(name, spec, where):
    """{'proto': 'tcp', 'port': '8000' or '8000-8100' (nft syntax), 'first': int, 'last': int} for one service."""
    where = '%s: service %s (firewall_services.%s)' % (where, name, name) if where else 'firewall_services.%s' % name
    if not is_mapping(spec):
        raise AnsibleFilterError('%s: must be a dict {port: 443, proto: tcp}, got %r' % (where, spec))
    unknown = sorted(str(key) for key in spec.keys() if key not in SERVICE_KEYS + SERVICE_OPTIONAL_KEYS)
    if unknown:
        raise AnsibleFilterError('%s: unknown key(s) %s; allowed keys are %s' % (where, ', '.join(unknown), ', '.join(SERVICE_KEYS + SERVICE_OPTIONAL_KEYS)))
    if spec.get('port') is None:
        raise AnsibleFilterError('%s: missing port (a number 1-65535 or a range such as "8000-8100")' % where)
    if spec.get('proto') is None:
        raise AnsibleFilterError('%s: missing proto (tcp or udp)' % where)
    port = spec['port']
    if isinstance(port, bool) or not isinstance(port, (int, string_types)):
        raise AnsibleFilterError('%s: port must be a number 1-65535 or a range such as "8000-8100", got %s %r' % (where, type(port).__name__, port))
    text = str(port).strip()
    match = RANGE_RE.match(text)
    if isinstance(port, int) or PORT_RE.match(text):
        first = last = _port_number(port if isinstance(port, int) else text, where)
    elif match:
        first, last = _port_number(match.group(1), where), _port_number(match.group(2), where)
        if first > last:
            raise AnsibleFilterError('%s: bad port range %s: the first port is greater than the last; write %d-%d' % (where, text, last, first))
    else:
        raise AnsibleFilterError('%s: port %r is not a number 1-65535 or a range such as "8000-8100"' % (where, port))
    proto = spec['proto']
    if proto not in PROTOS:
        hint = " (write it in lowercase: '%s')" % proto.lower() if isinstance(proto, string_types) and proto.strip().lower() in PROTOS else ''
        raise AnsibleFilterError('%s: proto %r is not tcp or udp%s' % (where, proto, hint))
    return {'proto': str(proto), 'port': str(first) if first == last else '%d-%d' % (first, last), 'first': first, 'last': last}


def rule_label(index, rule):
    """firewall_rules[2] (app -> db postgres); '?' for what is missing."""
    if not is_mapping(rule):
        return 'firewall_rules[%d]' % index
    parts = [rule.get(key) for key in RULE_KEYS]
    parts = ['?' if part is None or part == '' else str(part) for part in parts]
    return 'firewall_rules[%d] (%s -> %s %s)' % (index, parts[0], parts[1], parts[2])


def parse_rule(index, rule, zones, services, zones_var='firewall_zones'):
    """Validate one rule against the zone names and the services; return {'from', 'to', 'service', 'label', + service fields}."""
    label = rule_label(index, rule)
    if not is_mapping(rule):
        raise AnsibleFilterError('%s: must be a dict {from: zone, to: zone, service: name}, got %r' % (label, rule))
    unknown = sorted(str(key) for key in rule.keys() if key not in RULE_KEYS + RULE_OPTIONAL_KEYS)
    if unknown:
        raise AnsibleFilterError('%s: unknown key(s) %s; allowed keys are %s' % (label, ', '.join(unknown), ', '.join(RULE_KEYS + RULE_OPTIONAL_KEYS)))
    for key, what in (('from', 'the source zone'), ('to', 'the destination zone'), ('service', 'a service of firewall_services')):
        value = rule.get(key)
        if value is None or value == '':
            raise AnsibleFilterError('%s: missing %s (%s)' % (label, key, what))
        if not isinstance(value, string_types):
            raise AnsibleFilterError('%s: %s must be a name, got %s %r' % (label, key, type(value).__name__, value))
    for key in ('from', 'to'):
        if rule[key] not in zones:
            raise AnsibleFilterError("%s: %s zone '%s' is not defined in %s (known zones: %s)%s"
                                     % (label, key, rule[key], zones_var, known_list(zones), did_you_mean(rule[key], zones)))
    if rule['service'] not in services:
        raise AnsibleFilterError("%s: service '%s' is not defined in firewall_services (known services: %s)%s"
                                 % (label, rule['service'], known_list(services), did_you_mean(rule['service'], services)))
    parsed = parse_service(str(rule['service']), services[rule['service']], label)
    parsed.update({'from': str(rule['from']), 'to': str(rule['to']), 'service': str(rule['service']), 'label': label})
    return parsed


def check_inputs(rules, services, what):
    if not is_list(rules):
        raise AnsibleFilterError('%s: firewall_rules must be a list of {from, to, service} dicts, got %s %r' % (what, type(rules).__name__, rules))
    if not is_mapping(services):
        raise AnsibleFilterError('%s: firewall_services must be a dict of name: {port, proto}, got %s %r' % (what, type(services).__name__, services))
