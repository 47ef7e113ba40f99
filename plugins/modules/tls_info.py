#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tls_info
short_description: Inventory the TLS certificates of a host, their keys, chains and what the endpoints serve
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Reads the PEM certificate files named in O(certificates) (a file may hold the leaf followed by its chain) and
    returns, per file, the subject, the subject alternative names, the issuer, the serial, the validity window,
    the days left and the share of the lifetime used.
  - "When O(certificates[].key_path) is given, the public key of the private key file is compared with the certificate's
    (RSA, EC, Ed25519 and Ed448 keys, unencrypted PEM). Only the result, the key type, the file mode and its owner are
    returned, never key material."
  - "The chain is valid when each certificate of the file is signed by the next one and the last one is either
    self-signed or signed by a trust anchor of O(ca_path) (default: the system bundle
    C(/etc/ssl/certs/ca-certificates.crt) when present)."
  - "When O(certificates[].endpoint) is given, the module connects to it without verifying the certificate, to read
    what is actually served: its serial, days left and the negotiated protocol. A serial that differs from the file's
    means the service was not reloaded after the renewal."
  - "Each certificate gives one check C(tls:<name>) (see C(plugins/module_utils/ops_checks.py)) whose message lists
    every problem found, the worst first."
  - The module only reads; it never changes anything on the host.
options:
  certificates:
    description:
      - The certificates to inventory, in the order the results are returned.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Short unique name of the certificate, used in the check name C(tls:<name>) and its message.
        type: str
        required: true
      cert_path:
        description:
          - PEM file holding the certificate, optionally followed by its intermediates (leaf first).
          - "Without it the entry is endpoint only: what O(certificates[].endpoint) serves is read and judged by its days
            left (for example to probe a load balancer from another host after a deploy). Give O(certificates[].cert_path),
            O(certificates[].endpoint) or both."
        type: path
      key_path:
        description:
          - Unencrypted PEM private key file of the certificate. Its public key must match the certificate's and it
            must not have group or other permission bits.
        type: path
      endpoint:
        description:
          - "C(host:port) (or C([address]:port) for IPv6) of the service that serves the certificate, for example
            C(127.0.0.1:443)."
        type: str
      server_name:
        description:
          - Name sent as SNI to O(certificates[].endpoint).
          - Defaults to the first DNS name of the certificate (else its common name, else the endpoint's host name).
        type: str
      starttls:
        description:
          - V(postgres) - the endpoint is a PostgreSQL server; the probe sends PostgreSQL's SSLRequest before the TLS
            handshake (a server with C(ssl = off) is reported as not offering TLS).
        type: str
        choices: [postgres]
  ca_path:
    description:
      - PEM bundle of trust anchors for the chain validation.
      - When not set, C(/etc/ssl/certs/ca-certificates.crt) is used when present; without trust anchors a chain is
        only valid when it ends with a self-signed certificate.
    type: path
  warn_days:
    description: A certificate expiring in this many days or fewer is a V(warning).
    type: int
    default: 21
  crit_days:
    description: A certificate expiring in this many days or fewer is V(critical). Must not be greater than O(warn_days).
    type: int
    default: 7
  lifetime_warn_percent:
    description:
      - A certificate that has used this share of its validity period (in percent) is a V(warning), even with more
        than O(warn_days) left (short-lived certificates renewed by ACME should be renewed at two thirds of their life).
    type: float
    default: 90
  timeout:
    description: Seconds to wait for the connection and the TLS handshake of each endpoint.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode runs it exactly as a real run.
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: full
    description: The module never changes anything; C(changed) is always V(false).
notes:
  - "Check statuses, worst first in the message: a missing or unparsable certificate file, an expired certificate (alert
    C(tls_expired), also for an expired intermediate or an expired certificate served by the endpoint), a
    certificate not valid yet, at most O(crit_days) left (alert C(tls_expiry)), a key that does not match, a chain that
    does not validate (alert C(tls_invalid)) and a key file readable by group or others (alert C(security_event)) are
    V(critical); at most O(warn_days) left or O(lifetime_warn_percent) of the lifetime used (alert C(tls_expiry)), an
    endpoint serving another serial than the file (alert C(tls_invalid)) and an unreachable endpoint (alert
    C(service_down)) are V(warning)."
  - "The alert of a check is the one of its worst problem (the first one listed in its message)."
  - "An intermediate that expires before the leaf raises C(tls_expiry) like the leaf. Roots and trust anchors are left
    out of RV(certificates[].earliest_expiry): their expiry is not the service's problem (monitoring that follows the
    whole presented chain raises false alerts for roots and alternate chains)."
  - "When the endpoint serves another certificate than the file, the served certificate's own expiry is judged too
    with O(warn_days) and O(crit_days): that is the certificate clients see until the service is reloaded."
  - "Key files with mode C(0640) and group C(ssl-cert), as Debian's ssl-cert package sets up, are reported as readable
    by group: give the service its own copy of the key instead of the group."
  - "Reading private keys usually needs C(become); a key that cannot be read is a V(warning) and its match is V(null)."
  - Serials are written in uppercase hexadecimal without colons, padded to an even number of digits like
    C(openssl x509 -noout -serial).
requirements:
  - cryptography >= 3.0 (Debian 12 C(python3-cryptography))
seealso:
  - module: dealerscope.ops.http_probe
"""

EXAMPLES = r"""
- name: Inventory the load balancer and API certificates
  dealerscope.ops.tls_info:
    certificates:
      - name: lb
        cert_path: /etc/ssl/dealerscope/lb.fullchain.pem
        key_path: /etc/ssl/private/lb.key
        endpoint: 127.0.0.1:443
        server_name: api.dealerscope.lab
      - name: postgres
        cert_path: /etc/postgresql/15/main/server.crt
        key_path: /etc/postgresql/15/main/server.key
  become: true
  register: tls

- name: Certificates signed by the internal CA, with tighter thresholds
  dealerscope.ops.tls_info:
    certificates:
      - name: internal-api
        cert_path: /etc/ssl/dealerscope/internal.pem
        endpoint: "[::1]:8443"
    ca_path: /usr/local/share/ca-certificates/dealerscope-root.crt
    warn_days: 30
    crit_days: 10
    lifetime_warn_percent: 66.6
  become: true

- name: Fail when a certificate needs attention
  ansible.builtin.assert:
    that: tls.summary.status == 'ok'
    fail_msg: "{{ tls.checks | rejectattr('status', 'eq', 'ok') | map(attribute='message') | join('\n') }}"
"""

RETURN = r"""
certificates:
  description:
    - One dictionary per entry of O(certificates), in the same order. Without a parsable certificate file only
      C(name), C(cert_path), C(error), C(key) and C(endpoint) are set.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The O(certificates[].name).
      type: str
      sample: lb
    cert_path:
      description: The O(certificates[].cert_path).
      type: str
      sample: /etc/ssl/dealerscope/lb.fullchain.pem
    error:
      description: Why the certificate file could not be used, or V(null).
      type: str
      sample: certificate file /etc/ssl/dealerscope/lb.fullchain.pem is missing
    subject:
      description: Subject of the leaf certificate (RFC 4514).
      type: str
      sample: CN=api.dealerscope.lab
    subject_cn:
      description: Common name of the leaf certificate, or V(null).
      type: str
      sample: api.dealerscope.lab
    sans:
      description: Subject alternative names of the leaf, C(dns) and C(ip) lists.
      type: dict
      sample: {"dns": ["api.dealerscope.lab"], "ip": ["192.0.2.10"]}
    issuer:
      description: Issuer of the leaf certificate (RFC 4514).
      type: str
      sample: CN=DealerScope Intermediate CA,O=DealerScope
    serial:
      description: Serial of the leaf, uppercase hexadecimal without colons.
      type: str
      sample: 0A1B2C3D4E5F
    not_before:
      description: Start of the validity period (UTC).
      type: str
      sample: "2026-09-03T10:00:00Z"
    not_after:
      description: End of the validity period (UTC).
      type: str
      sample: "2026-12-02T10:00:00Z"
    days_left:
      description: Days until C(not_after), one decimal; negative when expired.
      type: float
      sample: 5.2
    lifetime_percent_used:
      description: Share of the validity period elapsed, in percent, one decimal.
      type: float
      sample: 94.2
    expired:
      description: Whether C(not_after) has passed.
      type: bool
      sample: false
    not_yet_valid:
      description: Whether C(not_before) is still in the future.
      type: bool
      sample: false
    self_signed:
      description: Whether the leaf is self-signed.
      type: bool
      sample: false
    leaf_days_left:
      description: Days left of the leaf (the same as C(days_left)).
      type: float
      sample: 5.2
    earliest_expiry:
      description:
        - The certificate of the file (leaf or intermediate, not a root or trust anchor) that expires first, with its
          C(index) in the file (0 is the leaf), C(subject), C(not_after) and C(days_left).
      type: dict
      sample: {"index": 0, "subject": "CN=api.dealerscope.lab", "not_after": "2026-12-02T10:00:00Z", "days_left": 5.2}
    chain:
      description:
        - "Chain validation: C(valid), C(reason), C(length) (certificates in the file), C(anchor) (the self-signed root
          or trust anchor that ends the chain), C(anchor_source) (the CA bundle used) and C(certificates) (C(subject),
          C(issuer), C(serial), C(not_after), C(days_left) and C(self_signed) of each certificate of the file)."
      type: dict
      sample:
        valid: true
        reason: signed by the trust anchor CN=DealerScope Root CA
        length: 2
        anchor: CN=DealerScope Root CA
        anchor_source: /etc/ssl/certs/ca-certificates.crt
        certificates: []
    key:
      description:
        - "V(null) without O(certificates[].key_path); otherwise C(path), C(exists), C(readable), C(type) (for example
          C(RSA 2048), C(EC secp256r1), C(Ed25519)), C(match) (V(null) when it could not be compared), C(mode)
          (octal string), C(owner), C(group), C(private) (no group or other permission bits), C(encrypted),
          C(permission_denied) and C(error)."
      type: dict
      sample: {"path": "/etc/ssl/private/lb.key", "exists": true, "readable": true, "type": "EC secp256r1", "match": true,
               "mode": "0600", "owner": "root", "group": "root", "private": true, "encrypted": false,
               "permission_denied": false, "error": null}
    endpoint:
      description:
        - "V(null) without O(certificates[].endpoint); otherwise C(endpoint), C(server_name) (the SNI sent),
          C(reachable), C(serial), C(subject_cn), C(not_after) and C(days_left) of the certificate served, C(protocol)
          (for example C(TLSv1.3)), C(matches_file) (V(null) when nothing could be compared) and C(error)."
      type: dict
      sample: {"endpoint": "127.0.0.1:443", "server_name": "api.dealerscope.lab", "reachable": true, "serial": "0A1B2C3D4E5F",
               "subject_cn": "api.dealerscope.lab", "not_after": "2026-12-02T10:00:00Z", "days_left": 5.2,
               "protocol": "TLSv1.3", "matches_file": true, "error": null}
checks:
  description:
    - "One check C(tls:<name>) per certificate (see C(plugins/module_utils/ops_checks.py)): its value is the days left
      of the leaf (V(null) without a certificate), its threshold O(warn_days), its unit C(days), its details the
      certificate's dictionary of RV(certificates)."
  returned: always
  type: list
  elements: dict
  sample:
    - name: tls:lb
      status: critical
      value: 5.2
      threshold: 21
      unit: days
      message: "lb: api.dealerscope.lab expires in 5.2 days (2026-12-02T10:00:00Z; critical at 7); endpoint 127.0.0.1:443 serves
        serial 0A1B, the file holds 0C2D: the service was not reloaded"
      alert: tls_expiry
      details: {}
summary:
  description: Number of checks per status and the worst status (C(status)).
  returned: always
  type: dict
  sample: {"ok": 1, "warning": 0, "critical": 1, "status": "critical"}
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import summarize
from ansible_collections.dealerscope.ops.plugins.module_utils.tls_certs import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    certificate_check,
    inspect_certificate,
    load_trust_anchors,
    utc_now,
    validate_options,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certificates=dict(
                type='list', elements='dict', required=True,
                options=dict(
                    name=dict(type='str', required=True),
                    cert_path=dict(type='path'),
                    key_path=dict(type='path'),
                    endpoint=dict(type='str'),
                    server_name=dict(type='str'),
                    starttls=dict(type='str', choices=['postgres']),
                ),
            ),
            ca_path=dict(type='path'),
            warn_days=dict(type='int', default=21),
            crit_days=dict(type='int', default=7),
            lifetime_warn_percent=dict(type='float', default=90),
            timeout=dict(type='float', default=5),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'),
                         exception=''.join(traceback.format_exception_only(type(CRYPTOGRAPHY_IMPORT_ERROR), CRYPTOGRAPHY_IMPORT_ERROR)))
    params = module.params
    error = validate_options(params)
    if error:
        module.fail_json(msg=error)

    anchors, anchor_source, anchor_error = load_trust_anchors(params['ca_path'])
    if anchor_error:
        if params['ca_path']:
            module.fail_json(msg=anchor_error)
        module.warn(anchor_error)

    now = utc_now()
    infos, checks = [], []
    for spec in params['certificates']:
        info = inspect_certificate(spec, anchors, anchor_source, timeout=params['timeout'], now=now)
        infos.append(info)
        checks.append(certificate_check(info, params['warn_days'], params['crit_days'], params['lifetime_warn_percent']))
    module.exit_json(changed=False, certificates=infos, checks=checks, summary=summarize(checks))


if __name__ == '__main__':
    main()
