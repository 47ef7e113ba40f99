#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_access_check
short_description: Prove that a user can still log in with a public key under a candidate sshd configuration
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Evaluates a candidate OpenSSH server configuration with C(sshd -T -C) for a given user and connection,
    and decides whether that user could still log in with public key authentication.
  - Checks C(PubkeyAuthentication), C(PermitRootLogin) (for uid 0), C(DenyUsers), C(AllowUsers), C(DenyGroups),
    C(AllowGroups), C(AuthenticationMethods), C(PubkeyAcceptedAlgorithms) and the C(AuthorizedKeysFile) files,
    including whether sshd would ignore them because of their ownership or modes (C(StrictModes)).
  - When O(public_keys) is given, at least one of those keys must be present and usable in the authorized keys files.
  - Intended to run before sshd is reloaded with a hardened configuration, so that the key Ansible connects with
    is never locked out.
  - The module only reads; it never changes anything on the host.
options:
  user:
    description:
      - Name of the user that must keep public key access.
      - Must exist in the passwd database of the host.
    type: str
    required: true
  public_keys:
    description:
      - OpenSSH public key lines (V(ssh-ed25519 AAAA... comment)) that the user must be able to log in with.
      - At least one of them must be present and usable in the user's authorized keys files.
      - When empty, any usable key in the authorized keys files is enough.
    type: list
    elements: str
    default: []
  config_file:
    description:
      - The candidate sshd configuration file to evaluate (passed to C(sshd -T -f)). It may C(Include) drop-in files.
    type: path
    default: /etc/ssh/sshd_config
  sshd_path:
    description:
      - Path of the sshd binary.
      - By default it is searched in E(PATH), C(/usr/sbin) and C(/sbin).
    type: path
  connection:
    description:
      - The connection to evaluate C(Match) blocks and C(user@host) patterns for (passed to C(sshd -T -C)).
      - When O(connection.addr) is not given, the client address, local address and local port are taken from the
        E(SSH_CONNECTION) environment variable of the module, if it is set (it is when Ansible connects over SSH).
    type: dict
    suboptions:
      host:
        description:
          - Host name of the client. Defaults to the client address.
        type: str
      addr:
        description:
          - IP address of the client.
        type: str
      laddr:
        description:
          - Local (server) address the client connects to.
        type: str
      lport:
        description:
          - Local (server) port the client connects to.
        type: int
  fail_on_denied:
    description:
      - Fail when the user would be locked out.
      - When V(false), the module succeeds and reports RV(can_login=false) instead.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return the same result as without it, because the module only reads.
  diff_mode:
    support: none
    description: Will not return details on what has changed (nothing ever changes).
  idempotent:
    support: full
    description: The module never changes anything, so running it again gives the same result.
notes:
  - C(sshd -T) needs the host keys to exist and, on Debian and Ubuntu, the privilege separation directory C(/run/sshd).
    If C(sshd -T) fails, the module fails with sshd's error message.
  - When the client address is unknown (no O(connection.addr) and no E(SSH_CONNECTION)), C(sshd -T -C) is run
    without C(host=) and C(addr=), so C(Match Address) and C(Match Host) blocks are not applied,
    C(DenyUsers user@host) entries are treated as denying and C(AllowUsers user@host) entries as allowing, with a warning.
  - Keys served by C(AuthorizedKeysCommand) and certificates signed by a C(TrustedUserCAKeys) CA are not checked.
    If C(AuthorizedKeysCommand) is set, missing keys in the files only produce a warning.
  - Findings that do not lock the user out (for example C(PermitRootLogin forced-commands-only) or a key with a
    C(command=) option) are reported as warnings.
  - Reasons and warnings identify keys by their SHA256 fingerprint, never by key material.
seealso:
  - name: sshd_config manual page
    description: The OpenSSH server configuration keywords evaluated by this module.
    link: https://man.openbsd.org/sshd_config
"""

EXAMPLES = r"""
- name: Make sure the deploy key still works with the candidate configuration
  dealerscope.ops.sshd_access_check:
    user: "{{ ansible_user }}"
    public_keys:
      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPq7nJ5PCxGuUYQTo0mnWrGzs0vLzBaGnSpc1QZIgJbU ansible@controller"
    config_file: /etc/ssh/sshd_config.candidate

- name: Only report, do not fail
  dealerscope.ops.sshd_access_check:
    user: deploy
    fail_on_denied: false
    connection:
      addr: 192.0.2.10
      host: bastion.example.com
  register: ssh_access

- name: Show why the user would be locked out
  ansible.builtin.debug:
    var: ssh_access.reasons
  when: not ssh_access.can_login
"""

RETURN = r"""
can_login:
  description: Whether the user can log in with a public key under the evaluated configuration.
  returned: always
  type: bool
  sample: true
reasons:
  description:
    - Why the user would be locked out; empty when RV(can_login=true).
    - Each message names the sshd keyword involved.
  returned: always
  type: list
  elements: str
  sample:
    - "AllowUsers is set (allowusers: alice) and no entry matches user deploy"
access_warnings:
  description:
    - Findings that do not prevent the login but deserve attention. They are also emitted as regular Ansible warnings.
  returned: always
  type: list
  elements: str
  sample:
    - "PermitRootLogin is 'forced-commands-only' (permitrootlogin): root can only log in with keys that have a command= option"
authorized_key_files:
  description: The authorized keys files sshd would read for the user, after expanding C(AuthorizedKeysFile).
  returned: always
  type: list
  elements: str
  sample:
    - /home/deploy/.ssh/authorized_keys
    - /home/deploy/.ssh/authorized_keys2
matched_fingerprints:
  description:
    - SHA256 fingerprints of the keys that would be accepted.
    - When O(public_keys) is given, only the expected keys that were found; otherwise every usable key in the files.
  returned: always
  type: list
  elements: str
  sample:
    - "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
effective:
  description:
    - Subset of the effective sshd configuration for this user and connection, as printed by C(sshd -T).
    - Keywords missing from the output are V(null) (or an empty list for list keywords).
  returned: always
  type: dict
  contains:
    pubkeyauthentication:
      description: Effective C(PubkeyAuthentication).
      type: str
      sample: "yes"
    passwordauthentication:
      description: Effective C(PasswordAuthentication).
      type: str
      sample: "no"
    kbdinteractiveauthentication:
      description: Effective C(KbdInteractiveAuthentication).
      type: str
      sample: "no"
    permitrootlogin:
      description: Effective C(PermitRootLogin) (sshd prints V(without-password) for V(prohibit-password)).
      type: str
      sample: without-password
    authenticationmethods:
      description: Effective C(AuthenticationMethods), one item per method list.
      type: list
      elements: str
      sample: ["any"]
    allowusers:
      description: Effective C(AllowUsers) entries.
      type: list
      elements: str
      sample: ["deploy", "admin@192.0.2.0/24"]
    denyusers:
      description: Effective C(DenyUsers) entries.
      type: list
      elements: str
      sample: []
    allowgroups:
      description: Effective C(AllowGroups) entries.
      type: list
      elements: str
      sample: ["ssh-users"]
    denygroups:
      description: Effective C(DenyGroups) entries.
      type: list
      elements: str
      sample: []
    authorizedkeysfile:
      description: Effective C(AuthorizedKeysFile) tokens, before expansion.
      type: list
      elements: str
      sample: [".ssh/authorized_keys", ".ssh/authorized_keys2"]
    port:
      description: Effective C(Port) values.
      type: list
      elements: str
      sample: ["22"]
    maxauthtries:
      description: Effective C(MaxAuthTries).
      type: str
      sample: "6"
  sample:
    pubkeyauthentication: "yes"
    passwordauthentication: "no"
    kbdinteractiveauthentication: "no"
    permitrootlogin: without-password
    authenticationmethods: ["any"]
    allowusers: []
    denyusers: []
    allowgroups: []
    denygroups: []
    authorizedkeysfile: [".ssh/authorized_keys", ".ssh/authorized_keys2"]
    port: ["22"]
    maxauthtries: "6"
sshd_command:
  description: The C(sshd -T) command that was run.
  returned: always
  type: list
  elements: str
  sample: ["/usr/sbin/sshd", "-T", "-f", "/etc/ssh/sshd_config", "-C", "user=deploy,host=192.0.2.10,addr=192.0.2.10"]
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.sshd import (
    authorized_keys_paths,
    evaluate_access,
    key_file_problem,
    parse_sshd_t,
)

EFFECTIVE_KEYS = (
    'pubkeyauthentication',
    'passwordauthentication',
    'kbdinteractiveauthentication',
    'permitrootlogin',
    'authenticationmethods',
    'allowusers',
    'denyusers',
    'allowgroups',
    'denygroups',
    'authorizedkeysfile',
    'port',
    'maxauthtries',
)
EFFECTIVE_LIST_KEYS = ('authenticationmethods', 'allowusers', 'denyusers', 'allowgroups', 'denygroups', 'authorizedkeysfile', 'port')


def connection_info(connection, environ):
    """Return ``(host, addr, laddr, lport)``; fill from SSH_CONNECTION when no address was given."""
    connection = connection or {}
    host = connection.get('host')
    addr = connection.get('addr')
    laddr = connection.get('laddr')
    lport = connection.get('lport')
    if not addr:
        parts = (environ.get('SSH_CONNECTION') or '').split()
        if len(parts) == 4:
            addr = parts[0]
            laddr = laddr or parts[2]
            if lport is None and parts[3].isdigit():
                lport = int(parts[3])
    return host or None, addr or None, laddr or None, lport


def build_test_spec(user, host, addr, laddr, lport):
    """Build the ``-C`` argument of ``sshd -T``."""
    spec = ['user=%s' % user]
    if host or addr:
        spec.append('host=%s' % (host or addr))
    if addr:
        spec.append('addr=%s' % addr)
    if laddr:
        spec.append('laddr=%s' % laddr)
    if lport is not None:
        spec.append('lport=%s' % lport)
    return ','.join(spec)


def user_groups(user, gid):
    """Names of the primary and supplementary groups of ``user``, as sshd's ga_init() sees them."""
    try:
        gids = os.getgrouplist(user, gid)
    except OSError:
        gids = [gid]
    names = []
    for one in gids:
        try:
            name = grp.getgrgid(one).gr_name
        except KeyError:
            continue
        if name not in names:
            names.append(name)
    return gids, names


def read_text(path):
    """Return the file's text, or None when it is missing or unreadable."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', errors='replace')
    except (IOError, OSError):
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type='str', required=True),
            public_keys=dict(type='list', elements='str', default=[], no_log=False),
            config_file=dict(type='path', default='/etc/ssh/sshd_config'),
            sshd_path=dict(type='path'),
            connection=dict(
                type='dict',
                options=dict(
                    host=dict(type='str'),
                    addr=dict(type='str'),
                    laddr=dict(type='str'),
                    lport=dict(type='int'),
                ),
            ),
            fail_on_denied=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    user = params['user']

    host, addr, laddr, lport = connection_info(params['connection'], os.environ)
    for name, value in (('user', user), ('connection.host', host), ('connection.addr', addr), ('connection.laddr', laddr)):
        if value is not None and (',' in value or any(c.isspace() for c in value) or not value):
            module.fail_json(msg='%s must not be empty or contain commas or whitespace: %r' % (name, value))

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        module.fail_json(msg="user '%s' does not exist on this host (not found in the passwd database)" % user)

    sshd = params['sshd_path'] or module.get_bin_path('sshd', opt_dirs=['/usr/sbin', '/sbin'])
    if not sshd:
        module.fail_json(msg='sshd binary not found in PATH, /usr/sbin or /sbin; install the OpenSSH server or set sshd_path')

    cmd = [sshd, '-T', '-f', params['config_file'], '-C', build_test_spec(user, host, addr, laddr, lport)]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg='sshd -T failed for %s (rc=%s): %s' % (params['config_file'], rc, (err or out or '').strip()),
                         rc=rc, stdout=out, stderr=err, sshd_command=cmd, changed=False)
    effective = parse_sshd_t(out)

    gids, groups = user_groups(user, pw.pw_gid)
    home = pw.pw_dir
    try:
        paths = authorized_keys_paths(effective.get('authorizedkeysfile', ['.ssh/authorized_keys', '.ssh/authorized_keys2']),
                                      user, home, pw.pw_uid)
    except ValueError:
        paths = []  # evaluate_access reports the expansion error
    strict = (effective.get('strictmodes') or 'yes').lower() == 'yes'
    authorized_keys = {}
    problems = {}
    for path in paths:
        authorized_keys[path] = read_text(path)
        if authorized_keys[path] is not None:
            problems[path] = key_file_problem(path, pw.pw_uid, gids, home, strict_modes=strict)

    extra_warnings = []
    if addr is None:
        extra_warnings.append('the client address is unknown (no connection.addr and no SSH_CONNECTION): Match Address/Host '
                              'blocks were not applied and user@host patterns were not checked')
    for line in (err or '').splitlines():
        if line.strip():
            extra_warnings.append('sshd -T: %s' % line.strip())

    try:
        verdict = evaluate_access(effective, user, pw.pw_uid, home, groups, authorized_keys, params['public_keys'],
                                  client_addr=addr, client_host=host, key_file_problems=problems)
    except ValueError as exc:
        module.fail_json(msg='invalid public_keys: %s' % exc, changed=False)

    access_warnings = extra_warnings + verdict['warnings']
    for warning in access_warnings:
        module.warn(warning)

    result = dict(
        changed=False,
        can_login=verdict['can_login'],
        reasons=verdict['reasons'],
        access_warnings=access_warnings,
        authorized_key_files=verdict['authorized_key_files'],
        matched_fingerprints=verdict['matched_fingerprints'],
        effective=dict((key, effective.get(key, [] if key in EFFECTIVE_LIST_KEYS else None)) for key in EFFECTIVE_KEYS),
        sshd_command=cmd,
    )
    if params['fail_on_denied'] and not verdict['can_login']:
        module.fail_json(msg='%s would be locked out: %s' % (user, '; '.join(verdict['reasons'])), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
