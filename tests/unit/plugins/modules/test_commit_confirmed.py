# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.module_utils import commit_confirmed as cc
from ansible_collections.dealerscope.ops.plugins.modules import commit_confirmed
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401

SYSTEMCTL = '/bin/systemctl'
SYSTEMD_RUN = '/usr/bin/systemd-run'
TIMER = 'dealerscope-revert-sshd.timer'
SERVICE = 'dealerscope-revert-sshd.service'
UNITS = [TIMER, SERVICE]
SHOW = [SYSTEMCTL, 'show', '--property=LoadState,ActiveState,SubState', TIMER]
STOP = [SYSTEMCTL, 'stop'] + UNITS
RESET = [SYSTEMCTL, 'reset-failed'] + UNITS

TIMER_STATES = {
    'waiting': 'LoadState=loaded\nActiveState=active\nSubState=waiting\n',
    'elapsed': 'LoadState=loaded\nActiveState=active\nSubState=elapsed\n',
    'gone': 'LoadState=not-found\nActiveState=inactive\nSubState=dead\n',
}


class FakeHost(object):
    """Stands in for systemd: records every argv and answers from a small model of the revert timer.

    The wrapper itself (``/bin/sh wrapper.sh manual``) is run for real, with a fake ``logger`` on PATH."""

    def __init__(self, monkeypatch, tmp_path):
        self.tmp_path = tmp_path
        self.state_dir = str(tmp_path / 'state')
        self.paths = cc.change_paths(self.state_dir, 'sshd')
        self.commands = []
        self.warnings = []
        self.timer = 'gone'
        self.timer_after_run = 'waiting'  # what systemd-run leaves behind
        self.systemd_run_rc = 0
        self.on_show = None  # callable run at each ``systemctl show``, to simulate the timer firing meanwhile
        bin_dir = tmp_path / 'bin'
        bin_dir.mkdir()
        self.logger_file = tmp_path / 'logger.txt'
        (bin_dir / 'logger').write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\n' % self.logger_file)
        (bin_dir / 'logger').chmod(0o755)
        self.env = dict(os.environ, PATH='%s:%s' % (bin_dir, os.environ.get('PATH', '/usr/bin:/bin')))
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', self.run_command)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', self.get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda _self, warning, **kw: self.warnings.append(warning))
        monkeypatch.setattr(commit_confirmed, 'REVERT_WAIT_SECONDS', 2)

    @staticmethod
    def get_bin_path(_self, name, required=False, opt_dirs=None):  # pylint: disable=unused-argument
        return {'systemctl': SYSTEMCTL, 'systemd-run': SYSTEMD_RUN}[name]

    def run_command(self, args, **kwargs):  # pylint: disable=unused-argument
        args = list(args)
        self.commands.append(args)
        if args == SHOW:
            if self.on_show:
                self.on_show()
            return 0, TIMER_STATES[self.timer], ''
        if args == STOP:
            was = self.timer
            self.timer = 'gone'
            return (0, '', '') if was != 'gone' else (5, '', 'Failed to stop %s: Unit %s not loaded.\n' % (TIMER, TIMER))
        if args == RESET:
            return 0, '', ''
        if args[0] == SYSTEMD_RUN:
            if self.systemd_run_rc:
                return self.systemd_run_rc, '', 'Failed to start transient timer unit: Unit %s already exists.\n' % TIMER
            self.timer = self.timer_after_run
            return 0, 'Running timer as unit: %s\nWill run service as unit: %s\n' % (TIMER, SERVICE), ''
        if args[:1] == ['/bin/sh'] and args[-1] == 'manual':
            proc = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30, check=False)
            return proc.returncode, proc.stdout, proc.stderr
        raise AssertionError('unexpected command %r' % (args,))

    def fire(self, leaves='gone'):
        """The timer elapses: its service runs the wrapper in timer mode (for real). systemd-run's transient timer
        has RemainAfterElapse=no, so on a real host both units are gone afterwards (seen on systemd 257)."""
        self.timer = leaves
        return subprocess.run(['/bin/sh', self.paths['wrapper'], 'timer'], env=self.env, capture_output=True, text=True,
                              timeout=30, check=False)

    def run(self, **args):
        args.setdefault('name', 'sshd')
        args.setdefault('state_dir', self.state_dir)
        self.commands = []
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                commit_confirmed.main()
        return excinfo.type is AnsibleFailJson, excinfo.value.result

    def arm(self, script='true', **args):
        failed, result = self.run(state='armed', revert_script=script, **args)
        assert not failed, result
        return result


@pytest.fixture
def host(monkeypatch, tmp_path):
    return FakeHost(monkeypatch, tmp_path)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- armed ----------------------------------------------------------------------------------------------------

def test_armed_writes_the_script_and_starts_the_timer(host):
    old = os.path.join(host.paths['dir'])
    os.makedirs(old)
    with open(host.paths['reverted'], 'w') as handle:
        handle.write('{"at": "old", "rc": 0, "by": "timer"}')
    before = int(time.time())
    failed, result = host.run(state='armed', revert_script='cp -p /etc/a.saved /etc/a\nsystemctl reload ssh', timeout=45)
    assert not failed, result
    assert result['changed'] is True
    assert result['result'] == 'armed'
    assert result['timer_unit'] == TIMER and result['service_unit'] == SERVICE
    assert result['script_path'] == host.paths['script']
    assert result['timeout'] == 45
    assert before + 45 <= result['armed_until']['epoch'] <= int(time.time()) + 45
    assert result['armed_until']['iso'] == cc.iso_utc(result['armed_until']['epoch'])
    # the script, 0700, in a 0700 directory, next to the wrapper
    with open(host.paths['script']) as handle:
        assert handle.read() == 'cp -p /etc/a.saved /etc/a\nsystemctl reload ssh\n'
    assert mode_of(host.paths['script']) == 0o700
    assert mode_of(host.paths['wrapper']) == 0o700
    assert mode_of(host.paths['dir']) == 0o700
    assert cc.read_text(host.paths['wrapper']) == cc.wrapper_script('sshd', host.paths['dir'])
    assert not os.path.exists(host.paths['reverted'])
    assert json.loads(cc.read_text(host.paths['armed']))['armed_until'] == result['armed_until']['epoch']
    # old units stopped and reset first, then systemd-run, then the timer is checked
    assert host.commands == [
        STOP,
        RESET,
        [SYSTEMD_RUN, '--unit=dealerscope-revert-sshd', '--description=dealerscope.ops commit-confirmed revert of sshd',
         '--on-active=45', '--timer-property=AccuracySec=1s', '/bin/sh', host.paths['wrapper'], 'timer'],
        SHOW,
    ]
    assert host.warnings == []


def test_armed_default_timeout_is_60(host):
    host.arm()
    run = [c for c in host.commands if c[0] == SYSTEMD_RUN][0]
    assert '--on-active=60' in run


@pytest.mark.parametrize('after', ['gone', 'elapsed'])
def test_armed_fails_when_the_timer_is_not_waiting_afterwards(host, after):
    host.timer_after_run = after
    failed, result = host.run(state='armed', revert_script='true')
    assert failed
    assert result['changed'] is False
    assert result['result'] == 'nothing_armed'
    assert 'dealerscope-revert-sshd.timer is not active and waiting after systemd-run' in result['msg']
    assert 'the change must not be applied' in result['msg']
    assert 'armed_until' not in result
    # what was written is taken back, and the units are stopped again
    assert not os.path.exists(host.paths['dir'])
    assert host.commands[-2:] == [STOP, RESET]


def test_armed_fails_when_systemd_run_fails(host):
    host.systemd_run_rc = 1
    failed, result = host.run(state='armed', revert_script='true')
    assert failed
    assert result['result'] == 'nothing_armed'
    assert result['msg'].startswith('sshd: systemd-run could not arm the revert timer (rc=1): Failed to start transient timer unit')
    assert not os.path.exists(host.paths['dir'])
    assert SHOW not in host.commands


def test_armed_check_mode_runs_nothing(host):
    failed, result = host.run(state='armed', revert_script='true', timeout=30, _ansible_check_mode=True)
    assert not failed
    assert result['changed'] is True
    assert result['result'] == 'armed'
    assert abs(result['armed_until']['epoch'] - (time.time() + 30)) < 5
    assert host.commands == []
    assert not os.path.exists(host.state_dir)


def test_armed_again_warns_about_the_pending_arm(host):
    host.arm()
    host.arm(script='echo second')
    assert host.warnings == ['sshd: a previous arm was neither confirmed nor reverted; its revert timer is replaced']
    assert cc.read_text(host.paths['script']) == 'echo second\n'
    assert host.timer == 'waiting'


def test_armed_after_a_revert_starts_afresh(host):
    host.arm()
    assert host.fire().returncode == 0
    result = host.arm()
    assert result['result'] == 'armed'
    assert host.warnings == []
    assert not os.path.exists(host.paths['reverted'])
    assert not os.path.lexists(host.paths['claim'])


# --- confirmed ------------------------------------------------------------------------------------------------

def test_confirmed_disarms(host):
    armed = host.arm()
    failed, result = host.run(state='confirmed')
    assert not failed, result
    assert result['changed'] is True
    assert result['result'] == 'confirmed'
    assert result['armed_until'] == armed['armed_until']
    assert host.commands == [SHOW, STOP, RESET]
    assert host.timer == 'gone'
    assert not os.path.exists(host.paths['dir'])
    # once more: nothing left
    failed, result = host.run(state='confirmed')
    assert not failed
    assert result['changed'] is False
    assert result['result'] == 'nothing_armed'


@pytest.mark.parametrize('leaves', ['gone', 'elapsed'])
def test_confirmed_after_the_timer_fired_fails(host, leaves):
    host.arm(script='echo restored')
    assert host.fire(leaves).returncode == 0
    reverted = cc.parse_reverted(cc.read_text(host.paths['reverted']))
    failed, result = host.run(state='confirmed')
    assert failed
    assert result['msg'] == 'sshd: the change was already reverted by the host at %s (timer fired before the confirmation)' % reverted['at']
    assert result['result'] == 'reverted'
    assert result['changed'] is False
    assert result['reverted_at'] == reverted['at']
    assert result['reverted_by'] == 'timer'
    assert result['revert_rc'] == 0
    assert result['revert_output'] == 'restored'
    # nothing is touched: only the timer was looked at
    assert host.commands == [SHOW]
    assert os.path.exists(host.paths['reverted'])


def test_confirmed_after_the_timer_fired_fails_in_check_mode_too(host):
    host.arm()
    host.fire()
    failed, result = host.run(state='confirmed', _ansible_check_mode=True)
    assert failed
    assert result['result'] == 'reverted'
    assert 'timer fired before the confirmation' in result['msg']


def test_confirmed_loses_the_race_against_the_timer(host):
    """The timer fires between the module's look at the state and its claim: the revert wins, the module fails."""
    host.arm()
    fired = []

    def fire_once():
        if not fired:
            fired.append(host.fire())
    host.on_show = fire_once
    failed, result = host.run(state='confirmed')
    assert fired and fired[0].returncode == 0
    assert failed
    assert result['result'] == 'reverted'
    assert 'timer fired before the confirmation' in result['msg']
    assert STOP not in host.commands
    assert os.readlink(host.paths['claim']).startswith('timer:')


def test_confirmed_wins_the_race_and_the_late_timer_does_nothing(host, tmp_path, monkeypatch):
    marker = tmp_path / 'reverted-marker'
    host.arm(script='touch "%s"' % marker)
    # the module claims, then the timer's wrapper starts just before the units are stopped
    late = []
    real_run_command = host.run_command

    def run_command(args, **kwargs):
        if args == STOP and not late:
            late.append(subprocess.run(['/bin/sh', host.paths['wrapper'], 'timer'], env=host.env, capture_output=True,
                                       text=True, timeout=30, check=False))
        return real_run_command(args, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda _self, args, **kw: run_command(args, **kw))
    failed, result = host.run(state='confirmed')
    assert not failed, result
    assert result['result'] == 'confirmed'
    assert late and late[0].returncode == 0
    assert not marker.exists()
    assert 'already claimed by confirm:' in host.logger_file.read_text()


def test_confirmed_nothing_armed(host):
    failed, result = host.run(state='confirmed')
    assert not failed
    assert result['changed'] is False
    assert result['result'] == 'nothing_armed'
    assert host.commands == [SHOW]
    assert 'reverted_at' not in result


def test_confirmed_check_mode_predicts_and_changes_nothing(host):
    host.arm()
    failed, result = host.run(state='confirmed', _ansible_check_mode=True)
    assert not failed
    assert result['changed'] is True
    assert result['result'] == 'confirmed'
    assert host.commands == [SHOW]
    assert host.timer == 'waiting'
    assert os.path.exists(host.paths['script'])
    assert not os.path.lexists(host.paths['claim'])
    # and the real run reports the same
    failed, real = host.run(state='confirmed')
    assert (real['changed'], real['result']) == (result['changed'], result['result'])


def test_confirmed_when_the_timer_vanished_warns(host):
    host.arm()
    host.timer = 'gone'  # e.g. the host rebooted
    failed, result = host.run(state='confirmed')
    assert not failed
    assert result['result'] == 'confirmed'
    assert len(host.warnings) == 1 and 'was no longer active' in host.warnings[0]


def test_confirmed_with_a_timer_but_no_script_fails(host):
    host.timer = 'waiting'  # armed with another state_dir
    failed, result = host.run(state='confirmed')
    assert failed
    assert result['result'] == 'armed'
    assert 'was it armed with another state_dir?' in result['msg']
    assert host.commands == [SHOW]


def test_confirmed_waits_for_a_running_revert(host, monkeypatch):
    host.arm()
    host.timer = 'elapsed'
    # a revert claimed by a live process (this test) that finishes while the module waits
    os.symlink(cc.claim_target('timer', os.getpid(), cc.current_boot_id()), host.paths['claim'])
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        with open(host.paths['reverted'], 'w') as handle:
            handle.write('{"at": "2026-01-01T00:00:09Z", "rc": 0, "by": "timer"}\n')
    monkeypatch.setattr(cc.time, 'sleep', sleep)
    failed, result = host.run(state='confirmed')
    assert sleeps
    assert failed
    assert result['msg'] == ('sshd: the change was already reverted by the host at 2026-01-01T00:00:09Z '
                             '(timer fired before the confirmation)')


def test_confirmed_reports_a_revert_that_does_not_finish(host, monkeypatch):
    host.arm()
    os.symlink(cc.claim_target('timer', os.getpid(), cc.current_boot_id()), host.paths['claim'])
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds
    monkeypatch.setattr(cc.time, 'sleep', sleep)
    monkeypatch.setattr(cc.time, 'monotonic', lambda: clock[0])
    failed, result = host.run(state='confirmed')
    assert clock[0] >= commit_confirmed.REVERT_WAIT_SECONDS
    assert failed
    assert result['result'] == 'reverted'
    assert 'the host is reverting the change' in result['msg']
    assert STOP not in host.commands


# --- reverted -------------------------------------------------------------------------------------------------

def test_reverted_runs_the_script_now(host, tmp_path):
    marker = tmp_path / 'restored'
    host.arm(script='echo restoring sshd\ntouch "%s"' % marker)
    failed, result = host.run(state='reverted')
    assert not failed, result
    assert marker.exists()
    assert result['changed'] is True
    assert result['result'] == 'reverted'
    assert result['revert_rc'] == 0
    assert result['reverted_by'] == 'manual'
    assert result['revert_output'] == 'restoring sshd'
    assert result['reverted_at'] == cc.parse_reverted(cc.read_text(host.paths['reverted']))['at']
    assert host.commands == [SHOW, STOP, RESET, ['/bin/sh', host.paths['wrapper'], 'manual']]
    assert host.timer == 'gone'
    # again: already reverted, nothing to do
    failed, again = host.run(state='reverted')
    assert not failed
    assert again['changed'] is False
    assert again['result'] == 'reverted'
    assert host.commands == [SHOW]
    # and a confirmation now must fail
    failed, confirm = host.run(state='confirmed')
    assert failed and confirm['result'] == 'reverted'


def test_reverted_fails_when_the_script_fails(host):
    host.arm(script='echo cannot restore >&2\nexit 3')
    failed, result = host.run(state='reverted')
    assert failed
    assert result['changed'] is True
    assert result['revert_rc'] == 3
    assert result['revert_output'] == 'cannot restore'
    assert result['msg'] == 'sshd: the revert script failed with exit code 3; the previous state may not be restored'


def test_reverted_nothing_armed(host):
    failed, result = host.run(state='reverted')
    assert not failed
    assert result['changed'] is False
    assert result['result'] == 'nothing_armed'
    assert host.commands == [SHOW]


def test_reverted_check_mode_runs_nothing(host, tmp_path):
    marker = tmp_path / 'restored'
    host.arm(script='touch "%s"' % marker)
    failed, result = host.run(state='reverted', _ansible_check_mode=True)
    assert not failed
    assert result['changed'] is True
    assert result['result'] == 'reverted'
    assert host.commands == [SHOW]
    assert not marker.exists()
    assert host.timer == 'waiting'


def test_reverted_after_the_timer_fired_is_unchanged(host):
    host.arm(script='echo by-timer')
    host.fire()
    failed, result = host.run(state='reverted')
    assert not failed
    assert result['changed'] is False
    assert result['result'] == 'reverted'
    assert result['reverted_by'] == 'timer'
    assert result['revert_output'] == 'by-timer'


def test_reverted_reruns_an_interrupted_revert(host, tmp_path):
    marker = tmp_path / 'restored'
    host.arm(script='touch "%s"' % marker)
    # a revert claimed by a process that no longer exists, without a result
    proc = subprocess.Popen(['true'])
    proc.wait()
    os.symlink(cc.claim_target('timer', proc.pid, cc.current_boot_id()), host.paths['claim'])
    failed, result = host.run(state='reverted')
    assert not failed, result
    assert result['changed'] is True
    assert marker.exists()
    assert any('was interrupted' in w for w in host.warnings)


# --- option checks --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('args, message', [
    (dict(name='Sshd', state='confirmed'), 'name must match '),
    (dict(name='9fw', state='confirmed'), 'name must match '),
    (dict(name='a' * 42, state='confirmed'), 'name must match '),
    (dict(name='ssh/../x', state='confirmed'), 'name must match '),
    (dict(state='armed', revert_script='true', timeout=9), 'timeout must be between 10 and 3600 seconds, got 9'),
    (dict(state='armed', revert_script='true', timeout=3601), 'timeout must be between 10 and 3600 seconds, got 3601'),
    (dict(state='armed'), 'state is armed but all of the following are missing: revert_script'),
    (dict(state='armed', revert_script='  \n'), 'revert_script must not be empty'),
    (dict(state='confirmed', state_dir='relative/dir'), 'state_dir must be an absolute path'),
    (dict(state='present'), 'value of state must be one of: armed, confirmed, reverted'),
])
def test_bad_options_are_refused(host, args, message):
    failed, result = host.run(**args)
    assert failed
    assert message in result['msg']
    assert host.commands == []
    assert not os.path.exists(host.state_dir)
