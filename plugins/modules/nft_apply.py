#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nft_apply
short_description: Inspect, plan, load and record one nftables table of our own (the firewall role's apply step)
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Owns one table, C(inet <table>), and a state directory on the host; every other table (a container runtime's,
    fail2ban's) is never read into or changed.
  - O(state=inspected) returns in one round trip what the firewall role needs before any change - the host's source
    addresses for the default route (IPv4, IPv6), the client address of Ansible's SSH connection as the host sees it,
    whether nftables is installed, the live table, whether a confirmed ruleset exists, and drift (the live table is not
    what was last confirmed).
  - O(state=planned) checks O(content) with C(nft -c), decides whether it must be loaded (new, changed, the table
    missing, or drift), returns the diff against the confirmed ruleset and, unless in check mode, writes the candidate
    and the ruleset that restores the current table (C(previous.nft)); RV(revert_script) is what
    M(dealerscope.ops.commit_confirmed) arms before the load.
  - O(state=loaded) loads the candidate in one C(nft -f) transaction (the table is replaced atomically).
  - O(state=recorded) makes the candidate the confirmed ruleset (loaded at boot by the role's unit) and records the
    live listing, against which later runs detect drift.
options:
  state:
    description: What to do.
    type: str
    required: true
    choices: [inspected, planned, loaded, recorded]
  table:
    description: Name of the table (family C(inet)); lower-case letters, digits and C(_).
    type: str
    default: dealerscope
  content:
    description:
      - The complete ruleset file for O(state=planned); it must replace only C(inet <table>) (the role's template starts
        with C(table inet <table>), C(delete table inet <table>)).
    type: str
  state_dir:
    description: Directory for the candidate, previous and confirmed rulesets (created 0700).
    type: path
    default: /etc/dealerscope-ops/firewall
attributes:
  check_mode:
    support: full
    description: O(state=planned) checks the ruleset and predicts C(changed) exactly; nothing is written or loaded.
  diff_mode:
    support: full
    description: O(state=planned) returns the confirmed ruleset (or the live listing when it drifted) and the new one.
  idempotent:
    support: full
    description: O(state=planned) reports a change only when the ruleset changed, the table is missing or drifted.
notes:
  - Needs C(nft) (Debian package nftables) and C(ip) on the host; in a container the NET_ADMIN capability.
seealso:
  - module: dealerscope.ops.commit_confirmed
"""

EXAMPLES = r"""
- name: Plan the new ruleset
  dealerscope.ops.nft_apply:
    state: planned
    content: "{{ lookup('ansible.builtin.template', 'firewall.nft.j2') }}"
  register: plan

- name: Arm the host's own revert
  dealerscope.ops.commit_confirmed:
    name: firewall
    state: armed
    revert_script: "{{ plan.revert_script }}"
    timeout: 60
  when: plan.changed

- name: Load it
  dealerscope.ops.nft_apply:
    state: loaded
  when: plan.changed
"""

RETURN = r"""
addresses:
  description: Source addresses of the default routes (O(state=inspected)); empty when the host has none for a family.
  returned: state is inspected
  type: dict
  sample: {v4: 10.213.47.21, v6: ""}
ssh_client:
  description: Client address of the SSH connection the module runs under, as the host sees it ('' when unknown).
  returned: state is inspected
  type: str
  sample: 10.213.47.1
nftables:
  description: Whether C(nft) is installed.
  returned: state is inspected
  type: bool
table_present:
  description: Whether the table exists in the live ruleset.
  returned: always
  type: bool
confirmed:
  description: Whether a confirmed ruleset exists on the host.
  returned: always
  type: bool
drift:
  description: The live table is not what was last confirmed (removed, or changed outside Ansible).
  returned: always
  type: bool
rules:
  description: Rules in the live table (O(state=inspected)), or in O(content) (O(state=planned)).
  returned: always
  type: int
reason:
  description: Why the ruleset is (or is not) loaded - V(new), V(changed), V(missing), V(drift), V(unchanged).
  returned: state is planned
  type: str
added:
  description: Rules in the new ruleset that the confirmed one lacks.
  returned: state is planned
  type: int
removed:
  description: Rules of the confirmed ruleset the new one lacks.
  returned: state is planned
  type: int
revert_script:
  description: Shell script that restores the table as it was before this change (for M(dealerscope.ops.commit_confirmed)).
  returned: state is planned
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils import nft


class Host(object):
    def __init__(self, module, table, state_dir):
        self.module = module
        self.table = table
        self.state_dir = state_dir
        self.paths = dict((key, os.path.join(state_dir, name)) for key, name in nft.FILES.items())
        self.nft = module.get_bin_path('nft')

    def read(self, key):
        try:
            with open(self.paths[key], 'r', encoding='utf-8') as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def write(self, key, text):
        if not os.path.isdir(self.state_dir):
            os.makedirs(self.state_dir, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix='.%s.' % key)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.paths[key])

    def require_nft(self):
        if not self.nft:
            self.module.fail_json(msg='nft is not installed on this host (Debian package nftables)')

    def live(self):
        """(present, listing) of the table."""
        if not self.nft:
            return False, ''
        rc, out, err = self.module.run_command([self.nft, 'list', 'table', 'inet', self.table])
        if rc == 0:
            return True, out
        if 'No such file or directory' in err or 'does not exist' in err:
            return False, ''
        self.module.fail_json(msg='nft list table inet %s failed: %s' % (self.table, err.strip()))
        return False, ''  # not reached

    def run_nft(self, argv, what):
        rc, out, err = self.module.run_command([self.nft] + argv)
        if rc != 0:
            self.module.fail_json(msg='%s: %s' % (what, (err or out).strip()), rc=rc)
        return out


def inspect_addresses(module):
    ip = module.get_bin_path('ip')
    found = {}
    for family, probe in (('v4', ['-4', '-j', 'route', 'get', '192.0.2.1']), ('v6', ['-6', '-j', 'route', 'get', '2001:db8::1'])):
        found[family] = ''
        if ip:
            rc, out, dummy = module.run_command([ip] + probe)
            found[family] = nft.route_source(out) if rc == 0 else ''
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', required=True, choices=['inspected', 'planned', 'loaded', 'recorded']),
            table=dict(type='str', default='dealerscope'),
            content=dict(type='str'),
            state_dir=dict(type='path', default='/etc/dealerscope-ops/firewall'),
        ),
        required_if=[('state', 'planned', ['content'])],
        supports_check_mode=True,
    )
    params = module.params
    try:
        table = nft.validate_table(params['table'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    host = Host(module, table, params['state_dir'])
    state = params['state']
    confirmed = host.read('confirmed')
    present, listing = host.live()
    drift = nft.detect_drift(confirmed, listing, host.read('listing'), present)
    result = dict(changed=False, table_present=present, confirmed=confirmed is not None, drift=drift)

    if state == 'inspected':
        result.update(addresses=inspect_addresses(module), ssh_client=nft.ssh_source(os.environ.get('SSH_CONNECTION')),
                      nftables=bool(host.nft), rules=len(nft.rule_lines(listing)))
        module.exit_json(**result)

    host.require_nft()
    if state == 'planned':
        content = params['content']
        if 'table inet %s' % table not in content:
            module.fail_json(msg='content does not define table inet %s (only that table may be replaced)' % table)
        fd, check_path = tempfile.mkstemp(prefix='.dealerscope-nft-check.')
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                handle.write(content)
            host.run_nft(['-c', '-f', check_path], 'the new ruleset does not pass nft -c (nothing was changed)')
        finally:
            os.unlink(check_path)
        changed, reason, drift = nft.plan(content, confirmed, listing, host.read('listing'), present)
        before = listing if drift else (confirmed or '')
        added, removed = nft.rule_changes(before, content)
        restore = nft.restore_text(table, listing if present else '')
        revert_script = 'exec %s -f %s\n' % (host.nft, host.paths['previous'])
        if changed and not module.check_mode:
            host.write('candidate', content)
            host.write('previous', restore)
        result.update(changed=changed, reason=reason, drift=drift, added=added, removed=removed, rules=len(nft.rule_lines(content)),
                      revert_script=revert_script,
                      diff=dict(before=before, after=content,
                                before_header='live table inet %s (drift)' % table if drift else '%s (confirmed)' % host.paths['confirmed'],
                                after_header='new ruleset'))
        module.exit_json(**result)

    if state == 'loaded':
        if host.read('candidate') is None:
            module.fail_json(msg='no candidate ruleset in %s: run state=planned first' % host.state_dir)
        if not module.check_mode:
            host.run_nft(['-f', host.paths['candidate']], 'loading the candidate ruleset failed (the table is unchanged)')
            present, listing = host.live()
        result.update(changed=True, table_present=present, rules=len(nft.rule_lines(listing)))
        module.exit_json(**result)

    # recorded
    candidate = host.read('candidate')
    if candidate is None:
        module.fail_json(msg='no candidate ruleset in %s: nothing to record' % host.state_dir)
    changed = candidate != confirmed or nft.normalize_listing(listing) != nft.normalize_listing(host.read('listing'))
    if changed and not module.check_mode:
        host.write('confirmed', candidate)
        host.write('listing', nft.normalize_listing(listing))
    result.update(changed=changed, confirmed=True, drift=False, rules=len(nft.rule_lines(listing)))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
