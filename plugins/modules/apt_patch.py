#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apt_patch
short_description: Plan and apply OS package updates on Debian hosts, restart what they touched, report reboot need
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - One execution per host for one step of a patch run. With O(state=plan) it only reports what an upgrade would do
    (packages with current and candidate versions, security or not, held or excluded, which services would need a restart
    and whether a reboot would follow). With O(state=upgraded) it upgrades the planned packages, then restarts the
    services whose processes still map files the upgrade replaced (what C(needrestart) does) and reports the reboot-required state.
  - The plan comes from C(apt-get -s dist-upgrade) (nothing locked, nothing changed). An upgrade is a security update when
    the archive apt names for its candidate matches O(security_pattern) (Debian's C(bookworm-security), C(Debian-Security)).
  - Packages on hold (C(apt-mark hold)) are never upgraded and are listed with their candidate version; O(exclude) patterns
    leave packages out as well. Upgrades use C(apt-get install --only-upgrade <planned packages>), so nothing is removed
    and nothing new is installed except dependencies of what is upgraded.
  - Service restart prediction reads dpkg's file lists of the planned packages and compares them with the files the running
    processes map; after the upgrade, processes mapping deleted package files are found in C(/proc/*/maps) and C(/proc/*/exe)
    and their systemd service units restarted (PID 1 is re-executed with C(systemctl daemon-reexec) instead).
  - Reboot need is Debian's and Ubuntu's C(/run/reboot-required) file (written by kernel and similar packages);
    the plan predicts it when a planned package matches O(reboot_packages).
options:
  state:
    description:
      - V(plan) reports and changes nothing. V(upgraded) applies the plan.
    type: str
    choices: [plan, upgraded]
    default: plan
  mode:
    description:
      - V(security) upgrades only security updates (and the dependencies apt pulls in for them); V(full) upgrades everything pending.
    type: str
    choices: [security, full]
    default: security
  exclude:
    description:
      - Shell-style patterns (V(postgresql-*)) of package names never upgraded by this run.
    type: list
    elements: str
    default: []
  security_pattern:
    description:
      - Regular expression matched against the archive apt prints for a candidate version (for example
        V(Debian-Security:12/stable-security [amd64])); a match makes the upgrade a security update.
    type: str
    default: '(?i)(-security\b|debian-security)'
  reboot_packages:
    description:
      - Shell-style patterns of packages whose upgrade is expected to require a reboot (used by the plan only; after an
        upgrade the real C(/run/reboot-required) state is reported).
    type: list
    elements: str
    default: ['linux-image-*', '*kernel*']
  update_cache:
    description:
      - Run C(apt-get update) first (not in check mode, which plans from the lists already on the host).
    type: bool
    default: true
  restart_services:
    description:
      - After an upgrade, restart the service units whose processes still use replaced files.
      - When V(false) they are only reported in RV(restart_pending).
    type: bool
    default: true
  restart_exclude:
    description:
      - Shell-style patterns of units never restarted automatically (they are reported in RV(restart_skipped)).
    type: list
    elements: str
    default: [dbus.service, dbus-broker.service, systemd-logind.service, user@*.service, getty@*.service,
              serial-getty@*.service, emergency.service, rescue.service]
  lock_timeout:
    description:
      - Seconds to wait for another apt or dpkg process to release the package lock.
    type: int
    default: 120
attributes:
  check_mode:
    support: full
    description: Plans from the package lists on the host without updating them; predicts C(changed) for O(state=upgraded).
  diff_mode:
    support: full
    description: Package versions before and after (one C(name version) line per package).
  idempotent:
    support: full
    description: Once everything planned is upgraded, another run upgrades nothing and reports no change.
notes:
  - Debian and Ubuntu (apt/dpkg) hosts only. Needs root.
  - C(needrestart), when installed, is told to stay out of the way (C(NEEDRESTART_SUSPEND=1)); this module restarts services itself.
  - Configuration files keep the local version on conflicts (C(--force-confdef --force-confold)).
seealso:
  - module: dealerscope.ops.lb_member
  - module: dealerscope.ops.host_health
"""

EXAMPLES = r"""
- name: What would a security patch change?
  dealerscope.ops.apt_patch:
    state: plan
    mode: security
  register: patch_plan

- name: Apply every pending update except the database server, restart what it touched
  dealerscope.ops.apt_patch:
    state: upgraded
    mode: full
    exclude: ['postgresql-*']
  register: patched

- name: Reboot only when the upgrade asks for it
  ansible.builtin.reboot:
  when: patched.reboot_required
"""

RETURN = r"""
plan:
  description: Every pending upgrade, held or excluded packages included, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Package name., type: str}
    current: {description: Installed version (null for a new dependency)., type: str}
    candidate: {description: Version apt would install., type: str}
    origin: {description: Archive apt names for the candidate., type: str}
    security: {description: Whether it is a security update (null for held packages)., type: bool}
    new: {description: Whether the package is not installed yet (a new dependency)., type: bool}
    held: {description: On hold (apt-mark hold)., type: bool}
    excluded: {description: Matched O(exclude)., type: bool}
    action: {description: "V(upgrade), V(dependency) (pulled in by apt only if needed) or V(skip).", type: str}
    skip_reason: {description: Why it is skipped (null unless skipped)., type: str}
    reboot: {description: Matches O(reboot_packages)., type: bool}
  sample:
    - {name: libssl3, current: 3.0.11-1~deb12u1, candidate: 3.0.11-1~deb12u2, origin: "Debian-Security:12/stable-security [amd64]",
       security: true, new: false, held: false, excluded: false, action: upgrade, skip_reason: null, reboot: false}
to_upgrade:
  description: Names of the packages this run upgrades (or would upgrade).
  returned: always
  type: list
  elements: str
held:
  description: Installed packages on hold.
  returned: always
  type: list
  elements: str
counts:
  description: Plan totals.
  returned: always
  type: dict
  sample: {pending: 4, to_upgrade: 2, skipped: 2, security: 2}
upgrades:
  description: Packages whose installed version changed, C(before) and C(after) (dependencies included). Empty in plan and check mode.
  returned: always
  type: list
  elements: dict
  sample: [{name: libssl3, before: 3.0.11-1~deb12u1, after: 3.0.11-1~deb12u2}]
restarts_predicted:
  description: Service units that map files of the planned packages, so would need a restart.
  returned: always
  type: list
  elements: str
restarted:
  description: Service units restarted because they still used replaced files.
  returned: always
  type: list
  elements: str
restart_skipped:
  description: Units (or processes outside a unit) using replaced files that were not restarted (matched O(restart_exclude), or not a service).
  returned: always
  type: list
  elements: str
restart_pending:
  description: Units still using replaced files after this run (restart disabled, skipped or the restart did not help).
  returned: always
  type: list
  elements: str
reexecuted_init:
  description: Whether PID 1 (systemd) was re-executed because it used replaced files.
  returned: always
  type: bool
reboot_required:
  description:
    - Whether the host needs a reboot after this run - C(/run/reboot-required) exists, or a newer C(linux-image-<release>)
      than the running kernel is installed (what needrestart checks; Debian writes the file only through hooks such as
      unattended-upgrades').
  returned: always
  type: bool
reboot_required_pkgs:
  description: Packages listed in C(/run/reboot-required.pkgs).
  returned: always
  type: list
  elements: str
reboot_predicted:
  description: Whether the plan (or an already pending C(/run/reboot-required)) means the host will need a reboot.
  returned: always
  type: bool
cache_updated:
  description: Whether C(apt-get update) ran.
  returned: always
  type: bool
apt_seconds:
  description: Seconds spent in C(apt-get update) and C(apt-get install) (the floor of a patch run's time on this host).
  returned: always
  type: float
free_mb:
  description: Free space of the file system holding C(/var/cache/apt), in MiB.
  returned: always
  type: int
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils import apt_patch as ap

APT_ENV = {'LC_ALL': 'C', 'LANG': 'C', 'DEBIAN_FRONTEND': 'noninteractive', 'NEEDRESTART_SUSPEND': '1',
           'APT_LISTCHANGES_FRONTEND': 'none', 'UCF_FORCE_CONFFOLD': '1'}
DPKG_STATUS = '/var/lib/dpkg/status'


def read_status():
    with open(DPKG_STATUS, 'r', errors='replace') as handle:
        return ap.parse_dpkg_status(handle.read())


def free_mb(path='/var/cache/apt'):
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    st = os.statvfs(path or '/')
    return int(st.f_bavail * st.f_frsize / 1048576)


def tail(text, lines=15):
    return '\n'.join((text or '').strip().splitlines()[-lines:])


class Patcher(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.apt_get = module.get_bin_path('apt-get', required=True)
        self.apt_seconds = 0.0
        self.lock = ['-o', 'DPkg::Lock::Timeout=%d' % self.params['lock_timeout']]

    def apt(self, args):
        started = time.monotonic()
        rc, out, err = self.module.run_command([self.apt_get] + args, environ_update=APT_ENV)
        self.apt_seconds += time.monotonic() - started
        return rc, out, err

    def update_cache(self):
        rc, out, err = self.apt(['update', '-q'] + self.lock)
        if rc != 0:
            self.module.fail_json(msg='apt-get update failed (rc %d): %s' % (rc, tail(err or out)), rc=rc)

    def plan(self):
        rc, out, err = self.module.run_command([self.apt_get, '-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'], environ_update=APT_ENV)
        if rc != 0:
            self.module.fail_json(msg='apt-get -s dist-upgrade failed (rc %d): %s' % (rc, tail(err or out)), rc=rc)
        upgrades = ap.parse_simulation(out, self.params['security_pattern'])[0]
        status = read_status()
        held = sorted(name for name, info in status.items() if info['hold'] and info['installed'])
        held_candidates = {}
        if held:
            policy = self.module.get_bin_path('apt-cache', required=True)
            rc, out, err = self.module.run_command([policy, 'policy'] + held, environ_update=APT_ENV)
            if rc == 0:
                held_candidates = ap.parse_policy_candidates(out)
        plan = ap.build_plan(upgrades, held_candidates, self.params['mode'], self.params['exclude'], self.params['reboot_packages'])
        return plan, held, status

    def restart_stale(self):
        systemctl = self.module.get_bin_path('systemctl')
        unreadable = []
        processes = ap.stale_processes(own_pid=os.getpid(), unreadable=unreadable)
        if unreadable:
            self.module.warn('could not read the memory maps of %d process(es) (pids %s): services they belong to may still use '
                             'replaced files; root needs CAP_SYS_PTRACE for /proc/<pid>/maps' % (
                                 len(unreadable), ', '.join(str(pid) for pid in unreadable[:10])))
        reexec = False
        if systemctl and any(proc['unit'] == 'init' for proc in processes) and self.params['restart_services']:
            rc, out, err = self.module.run_command([systemctl, 'daemon-reexec'])
            reexec = rc == 0
        restart, skipped = ap.restart_targets(processes, self.params['restart_exclude'])
        restarted, failed = [], []
        if self.params['restart_services'] and systemctl:
            for unit in restart:
                rc, out, err = self.module.run_command([systemctl, 'restart', unit])
                if rc == 0:
                    restarted.append(unit)
                else:
                    failed.append('%s: %s' % (unit, tail(err or out, 3)))
            pending = ap.restart_targets(ap.stale_processes(own_pid=os.getpid()), self.params['restart_exclude'])[0] if restart else []
        else:
            pending = restart
        return restarted, skipped, pending, failed, reexec


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='plan', choices=['plan', 'upgraded']),
            mode=dict(type='str', default='security', choices=['security', 'full']),
            exclude=dict(type='list', elements='str', default=[]),
            security_pattern=dict(type='str', default=ap.DEFAULT_SECURITY_PATTERN),
            reboot_packages=dict(type='list', elements='str', default=list(ap.DEFAULT_REBOOT_PACKAGES)),
            update_cache=dict(type='bool', default=True),
            restart_services=dict(type='bool', default=True),
            restart_exclude=dict(type='list', elements='str', default=list(ap.DEFAULT_RESTART_EXCLUDE)),
            lock_timeout=dict(type='int', default=120),
        ),
        supports_check_mode=True,
    )
    params = module.params
    patcher = Patcher(module)
    cache_updated = False
    if params['update_cache'] and not module.check_mode:
        patcher.update_cache()
        cache_updated = True
    plan, held, status_before = patcher.plan()
    names = ap.to_upgrade(plan)
    predicted = ap.predict_restarts(names, ap.dpkg_list_files(names), ap.mapped_package_files())
    reboot_now, reboot_pkgs = ap.reboot_state()
    kernel = ap.newer_kernel(os.uname().release, ap.installed_versions(status_before))
    if kernel:
        reboot_now, reboot_pkgs = True, sorted(set(reboot_pkgs) | set(['linux-image-%s' % kernel]))
    result = dict(
        changed=False, plan=plan, to_upgrade=names, held=held,
        counts=dict(pending=len(plan), to_upgrade=len(names), skipped=sum(1 for e in plan if e['action'] == 'skip'),
                    security=sum(1 for e in plan if e['security'])),
        upgrades=[], restarts_predicted=[unit for unit in predicted if unit != 'init'], restarted=[], restart_skipped=[],
        restart_pending=[], reexecuted_init=False, reboot_required=reboot_now, reboot_required_pkgs=reboot_pkgs,
        reboot_predicted=reboot_now or any(e['reboot'] for e in plan), cache_updated=cache_updated, free_mb=free_mb())
    planned = [dict(name=e['name'], before=e['current'], after=e['candidate']) for e in plan if e['action'] == 'upgrade']

    if params['state'] == 'plan' or module.check_mode:
        result['changed'] = params['state'] == 'upgraded' and bool(names)
        if module._diff and result['changed']:
            result['diff'] = dict(before=ap.render_versions(planned, 'before'), after=ap.render_versions(planned, 'after'))
        result['apt_seconds'] = round(patcher.apt_seconds, 2)
        module.exit_json(**result)

    if names:
        rc, out, err = patcher.apt(['install', '-y', '-q', '--only-upgrade', '-o', 'Dpkg::Options::=--force-confdef',
                                    '-o', 'Dpkg::Options::=--force-confold'] + patcher.lock + names)
        after = ap.installed_versions(read_status())
        changes = ap.version_changes(ap.installed_versions(status_before), after)
        if rc != 0:
            module.fail_json(msg='apt-get install --only-upgrade failed (rc %d): %s' % (rc, tail(err or out)), rc=rc,
                             upgrades=changes, to_upgrade=names, apt_seconds=round(patcher.apt_seconds, 2))
        result['upgrades'] = changes
    restarted, skipped, pending, failed, reexec = patcher.restart_stale()
    result.update(restarted=restarted, restart_skipped=skipped, restart_pending=pending, reexecuted_init=reexec)
    result['reboot_required'], result['reboot_required_pkgs'] = ap.reboot_state()
    kernel = ap.newer_kernel(os.uname().release, ap.installed_versions(read_status()))
    if kernel:
        result['reboot_required'] = True
        result['reboot_required_pkgs'] = sorted(set(result['reboot_required_pkgs']) | set(['linux-image-%s' % kernel]))
    result['changed'] = bool(result['upgrades'] or restarted or reexec)
    result['apt_seconds'] = round(patcher.apt_seconds, 2)
    if module._diff and result['upgrades']:
        result['diff'] = dict(before=ap.render_versions(result['upgrades'], 'before'), after=ap.render_versions(result['upgrades'], 'after'))
    if failed:
        module.fail_json(msg='upgraded, but restarting services that used replaced files failed: %s' % '; '.join(failed), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
