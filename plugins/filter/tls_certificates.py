# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: tls_certificates
short_description: Validate and normalise the TLS role's certificate definitions
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Checks every certificate of O(_input) (C(tls_certificates)) before any host is touched and returns the list, in the
    same order, with every key filled with its default and the certificate's paths on the host added.
  - All problems are collected and reported together in one error, one per line, each naming the certificate (by
    C(name), or by position as C(certificates[2]) when the name itself is unusable), the field and what is allowed.
  - 'A domain is refused when it is not a DNS name (letters, digits and hyphens; labels of at most 63 characters), when it
    contains non-ASCII characters (internationalised names are not supported; write the C(xn--) form), when it is a wildcard
    other than C(*.name.tld) or a wildcard on a certificate whose challenge is not C(dns-01), when it is listed twice, and
    when it does not match O(allowed_domains).'
  - A certificate key the filter does not know is an error (a typo such as C(domain) or C(chalenge) must not be ignored).
  - The thresholds O(renew_days), O(renew_percent), O(warn_days) and O(crit_days) are only validated. Numbers written as
    strings (V("30"), as Ansible extra vars arrive) are accepted.
positional: _input, allowed_domains
options:
  _input:
    description:
      - The certificate definitions, each a dict. An empty list gives an empty list.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Unique name; the certificate's directory under O(base_dir). Lower case letters, digits, C(_) and C(-), starting
            with a letter or digit, at most 40 characters.
        type: str
        required: true
      domains:
        description:
          - The DNS names of the certificate, at least one; the first is the common name. Lower-cased.
          - A wildcard C(*.example.lab) is allowed only with O(_input[].challenge=dns-01).
        type: list
        elements: str
        required: true
      issuer:
        description: Who signs the certificate.
        type: str
        choices: [acme, internal]
        default: acme
      challenge:
        description:
          - The ACME challenge type. Ignored (set to V(null)) for O(_input[].issuer=internal).
        type: str
        choices: [http-01, dns-01]
        default: http-01
      service:
        description: The service that uses the certificate and is reloaded when it changes; V(none) for none.
        type: str
        choices: [nginx, postgresql, none]
        default: nginx
      endpoint:
        description:
          - Where the service presents the certificate, C(host:port) (port 1-65535), for checking it from outside.
            An IPv6 address is written in brackets, V([2001:db8::1]:443).
        type: str
      server_name:
        description: The name the service answers to (nginx C(server_name)). Defaults to the first domain.
        type: str
      key_type:
        description: The private key's algorithm and size.
        type: str
        choices: [ecdsa256, rsa2048, rsa4096]
        default: ecdsa256
      owner:
        description: Owner of the private key and certificate files.
        type: str
        default: root
      group:
        description: Group of the private key and certificate files.
        type: str
        default: root
  allowed_domains:
    description:
      - The domains certificates may be issued for (C(tls_allowed_domains)). Every domain of every certificate must match
        one entry.
      - An exact name (V(lb.dealerscope.lab)) matches only itself.
      - A wildcard V(*.dealerscope.lab) matches names exactly one label deeper (V(lb.dealerscope.lab), and the wildcard
        domain V(*.dealerscope.lab) itself), but not V(dealerscope.lab) or V(a.lb.dealerscope.lab).
      - A suffix V(.dealerscope.lab) matches names any number of labels deeper (including wildcard domains), but not
        V(dealerscope.lab) itself; list that separately.
    type: list
    elements: str
    required: true
  acme_directory:
    description:
      - The ACME directory URL. Required, and must be an C(https://) URL with a host, when any certificate has
        O(_input[].issuer=acme). Validated too whenever it is not empty.
    type: str
    default: ''
  renew_days:
    description: Renew when the certificate expires in fewer than this many days. A number, at least 0.
    type: raw
    default: 30
  renew_percent:
    description:
      - Renew when less than this percentage of the certificate's lifetime remains; V(0) disables it. At least 0 and
        below 100.
    type: raw
    default: 0
  warn_days:
    description: Warn when the certificate expires in fewer than this many days. A number, at least 0.
    type: raw
    default: 21
  crit_days:
    description: Critical when the certificate expires in fewer than this many days. At least 0 and not more than O(warn_days).
    type: raw
    default: 7
  base_dir:
    description: Absolute directory under which each certificate gets its directory O(_input[].name).
    type: str
    default: /etc/dealerscope-ops/tls
"""

EXAMPLES = r"""
- name: Validate the certificate definitions
  ansible.builtin.set_fact:
    tls_certs: >-
      {{ tls_certificates | dealerscope.ops.tls_certificates(tls_allowed_domains, acme_directory=tls_acme_directory,
                                                             renew_days=tls_renew_days, warn_days=tls_warn_days,
                                                             crit_days=tls_crit_days) }}
  vars:
    tls_allowed_domains: ['.dealerscope.lab']
    tls_acme_directory: https://acme.dealerscope.lab/directory
    tls_certificates:
      - name: lb
        domains: [lb.dealerscope.lab, www.dealerscope.lab]
        endpoint: lb.dealerscope.lab:443
      - name: db
        domains: [db.dealerscope.lab]
        issuer: internal
        service: postgresql
        owner: postgres
        group: postgres

# The first certificate becomes:
#   {name: lb, domains: [lb.dealerscope.lab, www.dealerscope.lab], issuer: acme, challenge: http-01, service: nginx,
#    endpoint: 'lb.dealerscope.lab:443', server_name: lb.dealerscope.lab, key_type: ecdsa256, owner: root, group: root,
#    common_name: lb.dealerscope.lab, dir: /etc/dealerscope-ops/tls/lb, live: /etc/dealerscope-ops/tls/lb/live,
#    cert_path: /etc/dealerscope-ops/tls/lb/live/cert.pem, chain_path: .../live/chain.pem,
#    fullchain_path: .../live/fullchain.pem, key_path: .../live/privkey.pem}

# [{name: lb, domains: [evil.example.com]}] | dealerscope.ops.tls_certificates(['.dealerscope.lab'], acme_directory='http://acme')
# -> error, both problems at once:
#    certificate 'lb': domain 'evil.example.com' is not in tls_allowed_domains (.dealerscope.lab)
#    acme_directory 'http://acme' is not an HTTPS URL; write https://host/directory (needed by issuer acme: certificate 'lb')
"""

RETURN = r"""
_value:
  description:
    - The certificates in input order, each with all keys of O(_input) filled (O(_input[].endpoint) is V(null) when not
      given, O(_input[].challenge) is V(null) for O(_input[].issuer=internal)) and the derived keys below.
  type: list
  elements: dict
  contains:
    common_name:
      description: The first domain.
      type: str
    starttls:
      description: V(postgres) for O(_input[].service=postgresql) (the endpoint speaks TLS after PostgreSQL's SSLRequest), else V(null).
      type: str
    dir:
      description: The certificate's directory, O(base_dir)/O(_input[].name).
      type: str
    live:
      description: C(dir)/live, the symlink to the active release.
      type: str
    cert_path:
      description: C(live)/cert.pem, the certificate alone.
      type: str
    chain_path:
      description: C(live)/chain.pem, the intermediate certificates.
      type: str
    fullchain_path:
      description: C(live)/fullchain.pem, the certificate followed by the chain.
      type: str
    key_path:
      description: C(live)/privkey.pem, the private key.
      type: str
"""

import ipaddress
import math
import posixpath
import re

from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import describe, is_dict, is_list

NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]{0,39}$')
LABEL_RE = re.compile(r'^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$')
ACCOUNT_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$')
PORT_RE = re.compile(r'^[0-9]{1,5}$')
BRACKETED_RE = re.compile(r'^\[([^\]]*)\](?::(.*))?$')
ISSUERS = ('acme', 'internal')
CHALLENGES = ('http-01', 'dns-01')
SERVICES = ('nginx', 'postgresql', 'none')
KEY_TYPES = ('ecdsa256', 'rsa2048', 'rsa4096')
KEYS = ('name', 'domains', 'issuer', 'challenge', 'service', 'endpoint', 'server_name', 'key_type', 'owner', 'group')
ALLOWED_VAR = 'tls_allowed_domains'


def _dns_problem(name, wildcard_ok=True):
    """Why ``name`` (already stripped and lower-cased) is not a DNS name, or None."""
    if not name:
        return 'is empty'
    if any(ord(char) > 127 for char in name):
        return 'contains non-ASCII characters; internationalised domain names are not supported (write the xn-- form)'
    if len(name) > 253:
        return 'is longer than 253 characters'
    labels = name.split('.')
    if labels[0] == '*':
        if not wildcard_ok:
            return 'may not be a wildcard here'
        if len(labels) < 3:
            return 'is a wildcard directly under a top-level domain; write *.name.tld'
        labels = labels[1:]
    for label in labels:
        if '*' in label:
            return 'has a misplaced wildcard; only a whole leftmost label is allowed (*.example.lab)'
        if not LABEL_RE.match(label):
            return ('is not a DNS name; labels are 1-63 letters, digits and hyphens, not starting or ending with a hyphen, '
                    'separated by single dots')
    return None


def _matches(domain, pattern):
    """Whether ``domain`` (possibly a wildcard domain) is allowed by one ``tls_allowed_domains`` pattern."""
    if pattern.startswith('*.'):
        suffix = pattern[1:]
        return domain.endswith(suffix) and '.' not in domain[:-len(suffix)]
    if pattern.startswith('.'):
        return domain.endswith(pattern) and len(domain) > len(pattern)
    return domain == pattern


def _allowed_patterns(allowed_domains, problems):
    """The valid, lower-cased patterns; problems with the list go to ``problems``. None when it is not a list."""
    if not is_list(allowed_domains):
        problems.append('%s must be a list of domain names or patterns (lb.example.lab, *.example.lab, .example.lab), got %s'
                        % (ALLOWED_VAR, describe(allowed_domains)))
        return None
    patterns = []
    for index, entry in enumerate(allowed_domains):
        if not isinstance(entry, str):
            problems.append('%s[%d] is %s, not a string' % (ALLOWED_VAR, index, describe(entry)))
            continue
        pattern = entry.strip().lower()
        body = pattern[2:] if pattern.startswith('*.') else pattern[1:] if pattern.startswith('.') else pattern
        why = _dns_problem(body, wildcard_ok=False)
        if why:
            problems.append("%s[%d] '%s' %s; write an exact name (lb.example.lab), *.example.lab (one label deeper) "
                            "or .example.lab (any depth)" % (ALLOWED_VAR, index, entry, why))
            continue
        patterns.append(pattern)
    return patterns


def _number(field, value, problems, maximum=None):
    """``value`` as an int or float >= 0 (and < ``maximum``), accepting numeric strings; None after recording a problem."""
    limit = ' and below %s' % maximum if maximum is not None else ''
    number = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                problems.append("%s '%s' is not a number; write a number >= 0%s, e.g. 30" % (field, value, limit))
                return None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        problems.append('%s is %s, not a number; write a number >= 0%s' % (field, describe(value), limit))
        return None
    if math.isnan(number) or math.isinf(number):
        problems.append("%s '%s' is not a finite number; write a number >= 0%s" % (field, value, limit))
        return None
    if number < 0 or (maximum is not None and number >= maximum):
        problems.append("%s '%s' is out of range; it must be >= 0%s" % (field, value, limit))
        return None
    return number


def _acme_problem(url):
    """Why ``url`` is not a usable ACME directory URL, or None."""
    if not isinstance(url, str):
        return 'acme_directory is %s, not a string; write an https:// URL' % describe(url)
    if not url.strip():
        return 'acme_directory is empty; write the https:// URL of the ACME directory'
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        return "acme_directory '%s' is not a valid URL (%s); write https://host/directory" % (url, error)
    if parts.scheme.lower() != 'https':
        return "acme_directory '%s' is not an HTTPS URL; write https://host/directory" % url
    if not host or any(char.isspace() for char in url.strip()):
        return "acme_directory '%s' has no valid host; write https://host/directory" % url
    return None


def _endpoint(label, value, problems):
    """The normalised ``host:port`` or None (recording a problem) for a given endpoint."""
    hint = "write host:port with a port 1-65535, e.g. lb.example.lab:443, 192.0.2.7:443 or [2001:db8::1]:443"
    if not isinstance(value, str):
        problems.append('%s: endpoint is %s, not a string; %s' % (label, describe(value), hint))
        return None
    text = value.strip().lower()
    if text.startswith('['):
        match = BRACKETED_RE.match(text)
        try:
            address = ipaddress.IPv6Address(match.group(1) if match else '')
        except ValueError:
            problems.append("%s: endpoint '%s' does not hold an IPv6 address in brackets; %s" % (label, value, hint))
            return None
        host, port = '[%s]' % address.compressed, match.group(2)
    else:
        host, sep, port = text.rpartition(':')
        if not sep:
            problems.append("%s: endpoint '%s' has no port; %s" % (label, value, hint))
            return None
        if ':' in host:
            problems.append("%s: endpoint '%s' looks like an IPv6 address without brackets; %s" % (label, value, hint))
            return None
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            why = _dns_problem(host, wildcard_ok=False)
            if why:
                problems.append("%s: endpoint '%s': host '%s' %s; %s" % (label, value, host, why, hint))
                return None
    if port is None or not PORT_RE.match(port) or not 1 <= int(port) <= 65535:
        problems.append("%s: endpoint '%s' has port %s; %s" % (label, value, "'%s'" % port if port else 'missing', hint))
        return None
    return '%s:%d' % (host, int(port))


def _choice(label, cert, key, choices, default, problems):
    value = cert.get(key)
    if value is None:
        return default
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in choices:
        problems.append("%s: %s %s is not allowed; use one of %s" % (
            label, key, "'%s'" % value if isinstance(value, str) else describe(value), ', '.join(choices)))
        return None
    return text


def _certificate(index, cert, patterns, base_dir, problems):
    """One normalised certificate (problems recorded), or None when it is not a dict."""
    if not is_dict(cert):
        problems.append('certificates[%d] is %s, not a dict with name, domains, ...' % (index, describe(cert)))
        return None
    name = cert.get('name')
    label = 'certificates[%d]' % index
    if name is None:
        problems.append('%s: name is required (^[a-z0-9][a-z0-9_-]{0,39}$)' % label)
    elif not isinstance(name, str) or not NAME_RE.match(name):
        problems.append("%s: name %s is not allowed; use 1-40 lower case letters, digits, '_' and '-', starting with a letter or digit"
                        % (label, "'%s'" % name if isinstance(name, str) else describe(name)))
    else:
        label = "certificate '%s'" % name

    for key in cert:
        if key not in KEYS:
            problems.append("%s: unknown key '%s'; allowed keys are %s" % (label, key, ', '.join(KEYS)))

    issuer = _choice(label, cert, 'issuer', ISSUERS, 'acme', problems)
    challenge = None
    if issuer != 'internal':
        challenge = _choice(label, cert, 'challenge', CHALLENGES, 'http-01', problems)
    service = _choice(label, cert, 'service', SERVICES, 'nginx', problems)
    key_type = _choice(label, cert, 'key_type', KEY_TYPES, 'ecdsa256', problems)

    domains = []
    raw_domains = cert.get('domains')
    if raw_domains is None:
        problems.append('%s: domains is required; write a non-empty list of DNS names' % label)
    elif not is_list(raw_domains):
        hint = '; write it as a list: [%s]' % raw_domains if isinstance(raw_domains, str) else ''
        problems.append('%s: domains must be a list of DNS names, got %s%s' % (label, describe(raw_domains), hint))
    elif not raw_domains:
        problems.append('%s: domains is empty; write at least one DNS name' % label)
    else:
        for position, entry in enumerate(raw_domains):
            if not isinstance(entry, str):
                problems.append('%s: domains[%d] is %s, not a string' % (label, position, describe(entry)))
                continue
            domain = entry.strip().lower()
            why = _dns_problem(domain)
            if why:
                problems.append("%s: domain '%s' %s" % (label, entry, why))
                continue
            if domain.startswith('*.') and challenge != 'dns-01':
                how = 'issuer internal has no challenge' if issuer == 'internal' else "the challenge is '%s'" % challenge
                problems.append("%s: wildcard domain '%s' needs issuer acme with challenge dns-01; %s" % (label, entry, how))
                continue
            if domain in domains:
                problems.append("%s: domain '%s' is listed twice; list each domain once" % (label, entry))
                continue
            if patterns is not None and not any(_matches(domain, pattern) for pattern in patterns):
                problems.append("%s: domain '%s' is not in %s (%s)" % (label, entry, ALLOWED_VAR, ', '.join(patterns) or 'empty: no domain is allowed'))
                continue
            domains.append(domain)

    endpoint = cert.get('endpoint')
    if endpoint is not None:
        endpoint = _endpoint(label, endpoint, problems)

    server_name = cert.get('server_name')
    if server_name is None:
        server_name = domains[0] if domains else None
    elif not isinstance(server_name, str):
        problems.append('%s: server_name is %s, not a string; write a DNS name (default: the first domain)' % (label, describe(server_name)))
    elif _dns_problem(server_name.strip().lower()):
        problems.append("%s: server_name '%s' %s; write a DNS name (default: the first domain)"
                        % (label, server_name, _dns_problem(server_name.strip().lower())))
    else:
        server_name = server_name.strip().lower()

    accounts = {}
    for key in ('owner', 'group'):
        value = cert.get(key)
        if value is None:
            value = 'root'
        elif not isinstance(value, str) or not ACCOUNT_RE.match(value):
            problems.append("%s: %s %s is not allowed; write a %s name such as root or postgres (letters, digits, '_', '.', '-')" % (
                label, key, "'%s'" % value if isinstance(value, str) else describe(value), 'user' if key == 'owner' else 'group'))
        accounts[key] = value

    directory = posixpath.join(base_dir, name) if isinstance(name, str) else None
    live = posixpath.join(directory, 'live') if directory else None
    return {
        'name': name, 'domains': domains, 'issuer': issuer, 'challenge': challenge, 'service': service, 'endpoint': endpoint,
        'server_name': server_name, 'key_type': key_type, 'owner': accounts['owner'], 'group': accounts['group'],
        'common_name': domains[0] if domains else None,
        'starttls': 'postgres' if service == 'postgresql' else None,
        'dir': directory, 'live': live,
        'cert_path': posixpath.join(live, 'cert.pem') if live else None,
        'chain_path': posixpath.join(live, 'chain.pem') if live else None,
        'fullchain_path': posixpath.join(live, 'fullchain.pem') if live else None,
        'key_path': posixpath.join(live, 'privkey.pem') if live else None,
    }


def tls_certificates(certificates, allowed_domains, acme_directory='', renew_days=30, renew_percent=0, warn_days=21, crit_days=7,
                     base_dir='/etc/dealerscope-ops/tls'):
    """Validated certificate definitions with defaults and paths filled in (see DOCUMENTATION)."""
    if not is_list(certificates):
        raise AnsibleFilterError('tls_certificates: the certificates (tls_certificates) must be a list of dicts with name, domains, ..., got %s'
                                 % describe(certificates))
    problems = []
    patterns = _allowed_patterns(allowed_domains, problems)

    if not isinstance(base_dir, str) or not base_dir.strip().startswith('/'):
        problems.append('base_dir %s is not allowed; write an absolute path such as /etc/dealerscope-ops/tls' % describe(base_dir))
        base_dir = '/'
    base_dir = posixpath.normpath(base_dir.strip())

    numbers = {}
    for field, value, maximum in (('renew_days', renew_days, None), ('renew_percent', renew_percent, 100),
                                  ('warn_days', warn_days, None), ('crit_days', crit_days, None)):
        numbers[field] = _number(field, value, problems, maximum)
    if numbers['warn_days'] is not None and numbers['crit_days'] is not None and numbers['crit_days'] > numbers['warn_days']:
        problems.append("crit_days '%s' is greater than warn_days '%s'; crit_days must be <= warn_days" % (crit_days, warn_days))

    result = [_certificate(index, cert, patterns, base_dir, problems) for index, cert in enumerate(certificates)]

    seen = {}
    for index, cert in enumerate(result):
        if cert is None or not isinstance(cert['name'], str) or not NAME_RE.match(cert['name']):
            continue
        if cert['name'] in seen:
            problems.append("certificate '%s': name is used twice (certificates[%d] and certificates[%d]); names must be unique"
                            % (cert['name'], seen[cert['name']], index))
        else:
            seen[cert['name']] = index

    acme = []
    for index, cert in enumerate(result):
        if cert is not None and cert['issuer'] == 'acme':
            label = "'%s'" % cert['name'] if cert['name'] in seen else 'certificates[%d]' % index
            if label not in acme:
                acme.append(label)
    given = acme_directory is not None and not (isinstance(acme_directory, str) and not acme_directory.strip())
    if acme or given:
        why = _acme_problem('' if acme_directory is None else acme_directory)
        if why:
            problems.append('%s%s' % (why, ' (needed by issuer acme: certificate %s)' % ', '.join(acme) if acme else ''))

    if problems:
        raise AnsibleFilterError('\n'.join(problems))
    return result


class FilterModule(object):
    """dealerscope.ops.tls_certificates"""

    def filters(self):
        return {'tls_certificates': tls_certificates}
