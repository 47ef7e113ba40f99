#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: commit_confirmed
short_description: Arm a host-side revert before a risky change, then confirm it, or revert it
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Like a router's C(commit confirmed), for changes that can lock the operator out (an sshd configuration, an nftables
    ruleset). Before the change, O(state=armed) makes the host arm its own revert - a transient systemd timer
    C(dealerscope-revert-<name>.timer) that runs O(revert_script) after O(timeout) seconds. After the change the
    controller proves it can still get in (for example M(ansible.builtin.meta) C(reset_connection) and
    M(ansible.builtin.wait_for_connection), so a new SSH connection is made) and then runs O(state=confirmed), which
    disarms the timer. If the controller cannot get back in time, the host reverts by itself.
  - O(state=armed) stops and forgets any earlier timer of the same O(name), writes O(revert_script) to
    C(<state_dir>/<name>/revert.sh) (mode 0700) next to a generated C(wrapper.sh), removes an earlier
    C(reverted.json), starts C(systemd-run --unit=dealerscope-revert-<name> --on-active=<timeout>
    --timer-property=AccuracySec=1s /bin/sh <state_dir>/<name>/wrapper.sh timer) and then checks with
    C(systemctl show) that the timer is loaded, active and waiting. If it is not, the module removes what it
    wrote and fails - a revert that is not armed is never reported as armed, so the risky change must not follow.
  - >-
    The wrapper runs the revert script with C(/bin/sh), keeps its output in C(revert.log) (and prints it, so it
    reaches the journal), records C(<state_dir>/<name>/reverted.json) (V({"at": "<UTC ISO 8601>", "rc": <exit code>,
    "by": "timer"})), logs through C(logger -t dealerscope-commit-confirmed) and exits with the script's exit code.
  - >-
    O(state=confirmed) disarms the timer (stops the timer and its service, resets their failed state) and removes the
    state directory. If the timer already fired, the module fails with
    C(<name>: the change was already reverted by the host at <time> (timer fired before the confirmation)) and
    RV(result=reverted): a change the host reverted is never reported as confirmed. When nothing is armed it reports
    RV(result=nothing_armed) and V(changed=false).
  - O(state=reverted) stops the timer and runs the wrapper at once, synchronously, and reports the revert script's exit
    code and the end of its output. It fails when the script fails. When the timer already reverted the change it
    reports RV(result=reverted) with V(changed=false); when nothing is armed, RV(result=nothing_armed).
  - The race between the timer firing and the confirmation is settled by a claim, the symbolic link
    C(<state_dir>/<name>/claim), created atomically by whichever comes first - the wrapper before it reverts, the
    module before it confirms or reverts. The loser does nothing, so the change is either reverted or confirmed, never
    both. When the module finds a revert running, it waits up to two minutes for it to finish, then reports it.
options:
  name:
    description:
      - Id of the change, for example V(sshd) or V(nftables). It names the units
        C(dealerscope-revert-<name>.timer) and C(dealerscope-revert-<name>.service) and the directory
        C(<state_dir>/<name>).
      - A lower-case letter followed by at most 40 lower-case letters, digits, V(_) or V(-).
    type: str
    required: true
  state:
    description:
      - V(armed) arms the revert timer (before the change), V(confirmed) disarms it (after the controller proved it
        can still connect), V(reverted) reverts now (for example in a C(rescue) block).
    type: str
    choices: [armed, confirmed, reverted]
    required: true
  revert_script:
    description:
      - Shell script (run by C(/bin/sh), as root) that restores the state from before the change, for example
        copying a saved sshd drop-in back and reloading sshd, or C(nft -f /var/lib/.../saved.nft).
      - It runs unattended while the operator may be locked out, so it must not need input and should be quick.
        Anything it needs (saved files) must exist before the module arms the timer.
      - The environment variable C(DEALERSCOPE_REVERT_BY) tells the script who reverts - V(timer) (the change was not
        confirmed in time) or V(manual) (O(state=reverted)).
      - Required with O(state=armed); ignored otherwise.
    type: str
  timeout:
    description:
      - Seconds after arming until the host reverts, from V(10) to V(3600). Used with O(state=armed).
      - Allow for the change, the reconnection and the confirmation. systemd fires the timer within about a second
        (C(AccuracySec=1s)), a few seconds later on a busy host; never earlier.
    type: int
    default: 60
  state_dir:
    description:
      - Directory holding one subdirectory (mode 0700) per change, with the revert script, the wrapper and the
        result of a revert. Must be an absolute path, and the same for all states of one change.
    type: path
    default: /var/lib/dealerscope-ops/commit-confirmed
attributes:
  check_mode:
    support: full
    description:
      - Changes nothing and reports what a real run would report. O(state=armed) runs no command and predicts
        V(changed=true); O(state=confirmed) and O(state=reverted) read the state directory and run only
        C(systemctl show), so they predict the same result, changed status and failure as a real run.
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: partial
    description:
      - O(state=armed) always re-arms (a new timer and deadline) and always reports a change.
      - O(state=confirmed) and O(state=reverted) report a change only the first time; run again they report
        RV(result=nothing_armed) or RV(result=reverted) with V(changed=false).
requirements:
  - systemd as the init system (C(systemctl), C(systemd-run)); root.
notes:
  - Transient units do not survive a reboot. If the host reboots while armed, nothing reverts the change;
    O(state=confirmed) then still confirms it, with a warning that the timer was gone.
  - Use one O(name) per kind of change; arming a name again replaces its earlier timer, with a warning when that one
    was never confirmed.
  - The module must run as root (C(become)).
seealso:
  - module: dealerscope.ops.sshd_access_check
  - module: ansible.builtin.wait_for_connection
  - name: systemd-run manual page
    description: Transient timer and service units.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd-run.html
"""

EXAMPLES = r"""
- name: SSH change is applied, confirmed by a fresh login, or reverted
  block:
    - name: Host reverts the sshd drop-in by itself unless confirmed within 60 seconds
      dealerscope.ops.commit_confirmed:
        name: sshd
        state: armed
        timeout: 60
        revert_script: |
          if [ -f /etc/ssh/sshd_config.d/50-dealerscope.conf.confirmed ]; then
            cp -p /etc/ssh/sshd_config.d/50-dealerscope.conf.confirmed /etc/ssh/sshd_config.d/50-dealerscope.conf
          else
            rm -f /etc/ssh/sshd_config.d/50-dealerscope.conf
          fi
          systemctl reload ssh

    - name: SSH drop-in is written and sshd reloaded
      ansible.builtin.include_tasks: sshd_change.yml

    - name: Connection is reset so the next task logs in afresh
      ansible.builtin.meta: reset_connection

    - name: A fresh SSH login succeeds
      ansible.builtin.wait_for_connection:
        timeout: 20

    - name: The change is confirmed and the timer disarmed
      dealerscope.ops.commit_confirmed:
        name: sshd
        state: confirmed
  rescue:
    - name: Previous SSH configuration is restored at once
      dealerscope.ops.commit_confirmed:
        name: sshd
        state: reverted

- name: Host restores the saved nftables ruleset unless confirmed within 90 seconds
  dealerscope.ops.commit_confirmed:
    name: nftables
    state: armed
    timeout: 90
    revert_script: nft -f /var/lib/dealerscope-ops/firewall/saved.nft
  register: armed

- name: Show the deadline
  ansible.builtin.debug:
    msg: "Confirm before {{ armed.armed_until.iso }}"
"""

RETURN = r"""
result:
  description:
    - V(armed) - the timer is armed (O(state=armed)).
    - V(confirmed) - the timer was disarmed and the change is kept.
    - V(reverted) - the change was reverted, by this run (O(state=reverted)) or earlier by the host; with
      O(state=confirmed) the module then fails.
    - V(nothing_armed) - there was nothing to confirm or revert.
    - On a failure it says where the change stands (for example V(reverted) when a confirmation came too late).
  returned: always
  type: str
  sample: confirmed
timer_unit:
  description: Name of the revert timer unit.
  returned: always
  type: str
  sample: dealerscope-revert-sshd.timer
service_unit:
  description: Name of the service unit the timer starts.
  returned: always
  type: str
  sample: dealerscope-revert-sshd.service
script_path:
  description: Where the revert script is (or was) kept.
  returned: always
  type: str
  sample: /var/lib/dealerscope-ops/commit-confirmed/sshd/revert.sh
wrapper_path:
  description: Where the wrapper the timer runs is (or was) kept.
  returned: always
  type: str
  sample: /var/lib/dealerscope-ops/commit-confirmed/sshd/wrapper.sh
armed_until:
  description:
    - The earliest time the host reverts unless confirmed (the timer fires within about a second of it, later on a busy host).
    - With O(state=armed) (predicted in check mode), and with O(state=confirmed) when the arming time is known.
  returned: when known
  type: dict
  contains:
    epoch:
      description: Seconds since the epoch.
      type: int
      sample: 1767225660
    iso:
      description: UTC ISO 8601 time.
      type: str
      sample: "2026-01-01T00:01:00Z"
timeout:
  description: Seconds the timer was armed for.
  returned: with O(state=armed)
  type: int
  sample: 60
reverted_at:
  description: UTC ISO 8601 time the revert finished, from C(reverted.json).
  returned: when the change was reverted and the time is known
  type: str
  sample: "2026-01-01T00:01:01Z"
reverted_by:
  description: Who reverted the change - V(timer) (the host, unconfirmed) or V(manual) (O(state=reverted)).
  returned: when the change was reverted and this is known
  type: str
  sample: timer
revert_rc:
  description: Exit code of the revert script.
  returned: when the change was reverted and the exit code is known
  type: int
  sample: 0
revert_output:
  description: The last lines (at most 20) of the revert script's output, stdout and stderr together.
  returned: when the change was reverted and the output was kept
  type: str
  sample: ""
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.commit_confirmed import (
    DEFAULT_STATE_DIR,
    armed_record,
    armed_until,
    change_paths,
    claim_alive,
    current_boot_id,
    decide,
    describe_timer,
    observe_files,
    output_tail,
    parse_reverted,
    parse_show,
    pid_exists,
    read_text,
    remove_state_files,
    reset_failed_command,
    script_text,
    show_command,
    stop_command,
    systemd_run_command,
    timer_waiting,
    try_claim,
    unit_names,
    validate_name,
    validate_timeout,
    wait_for_revert,
    wrapper_command,
    wrapper_script,
)
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import ensure_private_dir, replace_atomically

#: Longest wait for a revert that is already running before the module reports it.
REVERT_WAIT_SECONDS = 120
#: Decision rounds; a lost claim race starts a new round.
MAX_ROUNDS = 3


class CommitConfirmed(object):
    """Runs the decisions of module_utils.commit_confirmed against the host."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.name = params['name']
        self.state = params['state']
        self.timeout = params['timeout']
        self.paths = change_paths(params['state_dir'], self.name)
        self.timer_unit, self.service_unit = unit_names(self.name)
        self.systemctl = module.get_bin_path('systemctl', required=True)
        self.systemd_run = module.get_bin_path('systemd-run', required=True) if self.state == 'armed' else None
        self.boot_id = current_boot_id()
        self.result = dict(
            changed=False,
            result=None,
            timer_unit=self.timer_unit,
            service_unit=self.service_unit,
            script_path=self.paths['script'],
            wrapper_path=self.paths['wrapper'],
        )

    def alive(self, claim):
        return claim_alive(claim, self.boot_id, pid_exists)

    def fail(self, msg, **extra):
        self.result.update(extra)
        self.module.fail_json(msg=msg, **self.result)

    def run(self, argv, check_rc=False, what=None):
        rc, out, err = self.module.run_command(argv)
        if check_rc and rc != 0:
            self.fail('%s: %s failed (rc=%s): %s' % (self.name, what or ' '.join(argv), rc, (err or out or '').strip()),
                      rc=rc, stdout=out, stderr=err)
        return rc, out, err

    def observe(self, waited=False):
        obs = observe_files(self.paths, self.alive)
        obs['waited'] = waited
        obs['timer'] = None
        if self.state != 'armed':
            rc, out, err = self.run(show_command(self.systemctl, self.name), check_rc=True, what='systemctl show')
            obs['timer'] = parse_show(out)
        return obs

    def add_revert_facts(self, reverted):
        if not reverted:
            return
        if reverted.get('at'):
            self.result['reverted_at'] = reverted['at']
        if reverted.get('by'):
            self.result['reverted_by'] = reverted['by']
        if reverted.get('rc') is not None:
            self.result['revert_rc'] = reverted['rc']
        log = read_text(self.paths['log'])
        if log is not None:
            self.result['revert_output'] = output_tail(log)

    def disarm(self):
        """Stop and forget both units; absent units are fine."""
        self.run(stop_command(self.systemctl, self.name))
        self.run(reset_failed_command(self.systemctl, self.name))

    def main(self):
        for dummy in range(MAX_ROUNDS):
            obs = self.observe()
            decision = decide(self.state, self.name, obs)
            if decision['action'] == 'wait':
                wait_for_revert(self.paths, REVERT_WAIT_SECONDS, self.alive)
                obs = self.observe(waited=True)
                decision = decide(self.state, self.name, obs)
            for warning in decision['warnings']:
                self.module.warn(warning)
            self.result['result'] = decision['result']
            self.add_revert_facts(obs['reverted'])
            if obs.get('armed') and self.state == 'confirmed':
                self.result['armed_until'] = obs['armed']['armed_until']
            action = decision['action']
            if action == 'fail':
                self.fail(decision['msg'])
            if action == 'report':
                self.module.exit_json(**self.result)
            self.result['changed'] = True
            if action == 'arm':
                self.arm()
            elif action == 'confirm':
                if self.module.check_mode:
                    self.module.exit_json(**self.result)
                if try_claim(self.paths['claim'], 'confirm', os.getpid(), self.boot_id, self.alive) is None:
                    self.confirm()
            elif action == 'revert':
                if self.module.check_mode:
                    self.module.exit_json(**self.result)
                if try_claim(self.paths['claim'], 'manual', os.getpid(), self.boot_id, self.alive) is None:
                    self.revert()
            self.result['changed'] = False  # lost the claim race: decide again
        self.fail('%s: could not claim the change after %d attempts' % (self.name, MAX_ROUNDS))

    def arm(self):
        self.result['timeout'] = self.timeout
        if self.module.check_mode:
            self.result['armed_until'] = armed_until(time.time(), self.timeout)
            self.module.exit_json(**self.result)
        self.disarm()
        remove_state_files(self.paths)
        ensure_private_dir(self.paths['dir'])
        os.chmod(self.paths['dir'], 0o700)
        replace_atomically(self.paths['script'], script_text(self.module.params['revert_script']), mode=0o700)
        replace_atomically(self.paths['wrapper'], wrapper_script(self.name, self.paths['dir']), mode=0o700)
        armed_at = time.time()
        rc, out, err = self.run(systemd_run_command(self.systemd_run, self.name, self.timeout, self.paths['wrapper']))
        if rc != 0:
            self.undo_arm()
            self.fail('%s: systemd-run could not arm the revert timer (rc=%s): %s; the change must not be applied'
                      % (self.name, rc, (err or out or '').strip()), result='nothing_armed', changed=False,
                      rc=rc, stdout=out, stderr=err)
        rc, out, err = self.run(show_command(self.systemctl, self.name))
        props = parse_show(out)
        if rc != 0 or not timer_waiting(props):
            self.undo_arm()
            self.fail('%s: %s is not active and waiting after systemd-run (%s); the revert is not armed and the change '
                      'must not be applied' % (self.name, self.timer_unit, describe_timer(props) if rc == 0 else (err or out).strip()),
                      result='nothing_armed', changed=False)
        replace_atomically(self.paths['armed'], armed_record(armed_at, self.timeout), mode=0o600)
        self.result['armed_until'] = armed_until(armed_at, self.timeout)
        self.result['result'] = 'armed'
        self.module.exit_json(**self.result)

    def undo_arm(self):
        self.disarm()
        remove_state_files(self.paths)

    def confirm(self):
        # The claim is ours: a timer that fires from now on finds it and does nothing, so stopping is safe.
        self.disarm()
        remove_state_files(self.paths)
        self.result['result'] = 'confirmed'
        self.module.exit_json(**self.result)

    def revert(self):
        self.disarm()
        for stale in (self.paths['reverted'], self.paths['log']):
            if os.path.lexists(stale):
                os.unlink(stale)
        rc, out, err = self.run(wrapper_command(self.paths['wrapper']))
        reverted = parse_reverted(read_text(self.paths['reverted']))
        self.result['result'] = 'reverted'
        self.add_revert_facts(reverted)
        if 'revert_output' not in self.result:
            self.result['revert_output'] = output_tail(out)
        if reverted is None:
            self.fail('%s: the revert wrapper ended (rc=%s) without recording a result: %s'
                      % (self.name, rc, (err or out or '').strip()), stderr=err)
        if reverted.get('rc') != 0:
            self.fail('%s: the revert script failed with exit code %s; the previous state may not be restored'
                      % (self.name, reverted.get('rc')))
        self.module.exit_json(**self.result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', required=True, choices=['armed', 'confirmed', 'reverted']),
            revert_script=dict(type='str'),
            timeout=dict(type='int', default=60),
            state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
        ),
        required_if=[('state', 'armed', ['revert_script'])],
        supports_check_mode=True,
    )
    params = module.params
    for error in (validate_name(params['name']), validate_timeout(params['timeout'])):
        if error:
            module.fail_json(msg=error)
    if not os.path.isabs(params['state_dir']):
        module.fail_json(msg='state_dir must be an absolute path: %r' % params['state_dir'])
    if params['state'] == 'armed' and not params['revert_script'].strip():
        module.fail_json(msg='revert_script must not be empty')
    CommitConfirmed(module).main()


if __name__ == '__main__':
    main()
