# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from ansible_collections.dealerscope.ops.plugins.module_utils import commit_confirmed as cc


NOW_BOOT = 'boot-now'


def alive_always(claim):  # pylint: disable=unused-argument
    return True


def alive_never(claim):  # pylint: disable=unused-argument
    return False


# --- validation, names, commands --------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['sshd', 'nftables', 'a', 'fw_v4-x', 'a' + 'b' * 40])
def test_valid_names(name):
    assert cc.validate_name(name) is None


@pytest.mark.parametrize('name', ['', 'Sshd', '1abc', '_x', '-x', 'a' + 'b' * 41, 'ssh d', 'a/b', '../x', 'ssh.d', 'x\n', None, 5])
def test_invalid_names(name):
    error = cc.validate_name(name)
    assert error is not None
    assert error.startswith('name must match ')


@pytest.mark.parametrize('timeout', [10, 11, 60, 3599, 3600])
def test_valid_timeouts(timeout):
    assert cc.validate_timeout(timeout) is None


@pytest.mark.parametrize('timeout', [9, 0, -1, 3601, 86400, True, '60', None, 60.0])
def test_invalid_timeouts(timeout):
    assert cc.validate_timeout(timeout) == 'timeout must be between 10 and 3600 seconds, got %r' % (timeout,)


def test_unit_names_and_paths():
    assert cc.unit_names('nftables') == ('dealerscope-revert-nftables.timer', 'dealerscope-revert-nftables.service')
    paths = cc.change_paths('/var/lib/x', 'sshd')
    assert paths == dict(
        dir='/var/lib/x/sshd',
        script='/var/lib/x/sshd/revert.sh',
        wrapper='/var/lib/x/sshd/wrapper.sh',
        claim='/var/lib/x/sshd/claim',
        log='/var/lib/x/sshd/revert.log',
        reverted='/var/lib/x/sshd/reverted.json',
        armed='/var/lib/x/sshd/armed.json',
    )


def test_systemd_run_command():
    argv = cc.systemd_run_command('/usr/bin/systemd-run', 'sshd', 45, '/s/sshd/wrapper.sh')
    assert argv == [
        '/usr/bin/systemd-run',
        '--unit=dealerscope-revert-sshd',
        '--description=dealerscope.ops commit-confirmed revert of sshd',
        '--on-active=45',
        '--timer-property=AccuracySec=1s',
        '/bin/sh', '/s/sshd/wrapper.sh', 'timer',
    ]


def test_systemctl_commands():
    units = ['dealerscope-revert-fw.timer', 'dealerscope-revert-fw.service']
    assert cc.stop_command('/bin/systemctl', 'fw') == ['/bin/systemctl', 'stop'] + units
    assert cc.reset_failed_command('/bin/systemctl', 'fw') == ['/bin/systemctl', 'reset-failed'] + units
    assert cc.show_command('/bin/systemctl', 'fw') == ['/bin/systemctl', 'show', '--property=LoadState,ActiveState,SubState',
                                                       'dealerscope-revert-fw.timer']
    assert cc.wrapper_command('/s/fw/wrapper.sh') == ['/bin/sh', '/s/fw/wrapper.sh', 'manual']


# --- systemctl show -------------------------------------------------------------------------------------------

def test_parse_show():
    props = cc.parse_show('LoadState=loaded\nActiveState=active\nSubState=waiting\nDescription=a=b\n\n')
    assert props == dict(LoadState='loaded', ActiveState='active', SubState='waiting', Description='a=b')
    assert cc.parse_show('') == {}
    assert cc.parse_show(None) == {}


@pytest.mark.parametrize('load, active, sub, is_active, is_waiting', [
    ('loaded', 'active', 'waiting', True, True),
    ('loaded', 'active', 'elapsed', True, False),
    ('loaded', 'active', 'running', True, False),
    ('loaded', 'inactive', 'dead', False, False),
    ('loaded', 'failed', 'failed', False, False),
    ('not-found', 'inactive', 'dead', False, False),
    ('not-found', 'active', 'waiting', False, False),
])
def test_timer_states(load, active, sub, is_active, is_waiting):
    props = dict(LoadState=load, ActiveState=active, SubState=sub)
    assert cc.timer_active(props) is is_active
    assert cc.timer_waiting(props) is is_waiting


def test_timer_states_without_props():
    assert cc.timer_active(None) is False
    assert cc.timer_waiting({}) is False
    assert cc.describe_timer(None) == 'LoadState=? ActiveState=? SubState=?'


# --- state files ----------------------------------------------------------------------------------------------

def test_parse_reverted():
    assert cc.parse_reverted(None) is None
    assert cc.parse_reverted('{"at": "2026-01-01T00:01:01Z", "rc": 0, "by": "timer"}\n') == dict(
        at='2026-01-01T00:01:01Z', rc=0, by='timer')
    assert cc.parse_reverted('{"at": "x", "rc": 3}') == dict(at='x', rc=3, by=None)
    # an existing but broken file still means "reverted"
    assert cc.parse_reverted('') == dict(at=None, rc=None, by=None)
    assert cc.parse_reverted('[1, 2]') == dict(at=None, rc=None, by=None)
    assert cc.parse_reverted('{"at": 5, "rc": true}') == dict(at=None, rc=None, by=None)


def test_armed_record_round_trip():
    text = cc.armed_record(1767225600.9, 60)
    assert json.loads(text) == dict(armed_at=1767225600, timeout=60, armed_until=1767225660)
    assert cc.parse_armed(text) == dict(armed_until=dict(epoch=1767225660, iso='2026-01-01T00:01:00Z'))
    assert cc.parse_armed(None) is None
    assert cc.parse_armed('{') is None
    assert cc.parse_armed('{"timeout": 5}') is None


def test_armed_until_and_iso():
    assert cc.armed_until(1767225600, 3600) == dict(epoch=1767229200, iso='2026-01-01T01:00:00Z')
    assert cc.iso_utc(0) == '1970-01-01T00:00:00Z'


def test_output_tail():
    text = ''.join('line %d\n' % i for i in range(30))
    tail = cc.output_tail(text)
    assert tail.splitlines() == ['line %d' % i for i in range(10, 30)]
    assert cc.output_tail('x' * 5000, max_chars=100) == 'x' * 100
    assert cc.output_tail(None) == ''


def test_reverted_message_is_the_documented_one():
    msg = cc.reverted_message('sshd', dict(at='2026-01-01T00:01:01Z', rc=0, by='timer'))
    assert msg == 'sshd: the change was already reverted by the host at 2026-01-01T00:01:01Z (timer fired before the confirmation)'
    assert cc.reverted_message('fw', dict(at=None, rc=None, by=None)) == (
        'fw: the change was already reverted by the host at an unknown time (timer fired before the confirmation)')
    assert cc.reverted_message('fw', dict(at='T', rc=4, by='timer')).endswith('; the revert script exited with 4')
    assert '(reverted on request (state=reverted) before the confirmation)' in cc.reverted_message('fw', dict(at='T', rc=0, by='manual'))


# --- claims ---------------------------------------------------------------------------------------------------

def test_parse_claim():
    assert cc.parse_claim(None) is None
    assert cc.parse_claim('timer:123:abc-def') == dict(by='timer', pid=123, boot_id='abc-def')
    assert cc.parse_claim('confirm:77:') == dict(by='confirm', pid=77, boot_id=None)
    assert cc.parse_claim('timer') == dict(by='timer', pid=None, boot_id=None)
    assert cc.parse_claim('') == dict(by='unknown', pid=None, boot_id=None)
    assert cc.claim_target('manual', 42, 'b') == 'manual:42:b'
    assert cc.parse_claim(cc.claim_target('manual', 42, None)) == dict(by='manual', pid=42, boot_id=None)


def test_claim_alive():
    pids = {10}
    exists = pids.__contains__
    assert cc.claim_alive(None, NOW_BOOT, exists) is False
    assert cc.claim_alive(dict(by='timer', pid=10, boot_id=NOW_BOOT), NOW_BOOT, exists) is True
    assert cc.claim_alive(dict(by='timer', pid=11, boot_id=NOW_BOOT), NOW_BOOT, exists) is False
    # same pid, but from before a reboot
    assert cc.claim_alive(dict(by='timer', pid=10, boot_id='old-boot'), NOW_BOOT, exists) is False
    # no pid (written by hand): waited for, never overridden as dead
    assert cc.claim_alive(dict(by='timer', pid=None, boot_id=None), NOW_BOOT, exists) is True


def test_pid_exists():
    assert cc.pid_exists(os.getpid()) is True
    proc = subprocess.Popen(['true'])
    proc.wait()
    assert cc.pid_exists(proc.pid) is False


@pytest.mark.parametrize('owner, by, alive, expected', [
    ('confirm', 'confirm', True, True),
    ('confirm', 'manual', True, True),
    ('confirm', 'timer', True, False),
    ('timer', 'confirm', False, False),
    ('timer', 'manual', False, True),
    ('timer', 'manual', True, False),
    ('manual', 'manual', True, False),
    ('manual', 'manual', False, True),
    ('manual', 'confirm', False, False),
])
def test_may_take_over(owner, by, alive, expected):
    assert cc.may_take_over(dict(by=owner, pid=1, boot_id='b'), by, alive) is expected


def test_try_claim(tmp_path):
    path = str(tmp_path / 'claim')
    assert cc.try_claim(path, 'confirm', 123, 'b1', alive_always) is None
    assert os.readlink(path) == 'confirm:123:b1'
    # a live revert claim is never taken over
    os.unlink(path)
    os.symlink('timer:55:b1', path)
    assert cc.try_claim(path, 'confirm', 123, 'b1', alive_always) == dict(by='timer', pid=55, boot_id='b1')
    assert cc.try_claim(path, 'manual', 123, 'b1', alive_always) == dict(by='timer', pid=55, boot_id='b1')
    assert os.readlink(path) == 'timer:55:b1'
    # a dead one is taken over by a manual revert, not by a confirmation
    assert cc.try_claim(path, 'confirm', 123, 'b1', alive_never) == dict(by='timer', pid=55, boot_id='b1')
    assert cc.try_claim(path, 'manual', 123, 'b1', alive_never) is None
    assert os.readlink(path) == 'manual:123:b1'
    assert sorted(os.listdir(str(tmp_path))) == ['claim']


# --- decisions ------------------------------------------------------------------------------------------------

WAITING = dict(LoadState='loaded', ActiveState='active', SubState='waiting')
ELAPSED = dict(LoadState='loaded', ActiveState='active', SubState='elapsed')
GONE = dict(LoadState='not-found', ActiveState='inactive', SubState='dead')
REVERTED = dict(at='2026-01-01T00:01:01Z', rc=0, by='timer')
REVERT_FAILED = dict(at='2026-01-01T00:01:01Z', rc=2, by='timer')


def obs(**kwargs):
    return cc.observation(**kwargs)


def decision(state, **kwargs):
    got = cc.decide(state, 'sshd', obs(**kwargs))
    return got['action'], got['changed'], got['result']


@pytest.mark.parametrize('kwargs, expected', [
    # armed: always arms, except while a revert is running
    (dict(script_present=False, timer=None), ('arm', True, 'armed')),
    (dict(script_present=True, reverted=REVERTED, claim='timer'), ('arm', True, 'armed')),
    (dict(script_present=True, claim='timer', claim_alive=True), ('wait', False, None)),
    (dict(script_present=True, claim='timer', claim_alive=True, waited=True), ('fail', False, 'reverted')),
    (dict(script_present=True, claim='timer', claim_alive=False), ('arm', True, 'armed')),
])
def test_decide_armed(kwargs, expected):
    assert decision('armed', **kwargs) == expected


@pytest.mark.parametrize('kwargs, expected', [
    (dict(script_present=True, timer=WAITING), ('confirm', True, 'confirmed')),
    # fired, but nobody claimed yet: the confirmation can still win the claim
    (dict(script_present=True, timer=ELAPSED), ('confirm', True, 'confirmed')),
    (dict(script_present=True, timer=GONE), ('confirm', True, 'confirmed')),
    (dict(script_present=True, timer=WAITING, reverted=REVERTED, claim='timer'), ('fail', False, 'reverted')),
    (dict(script_present=False, timer=GONE, reverted=REVERTED), ('fail', False, 'reverted')),
    (dict(script_present=True, timer=ELAPSED, claim='timer', claim_alive=True), ('wait', False, None)),
    (dict(script_present=True, timer=ELAPSED, claim='timer', claim_alive=True, waited=True), ('fail', False, 'reverted')),
    (dict(script_present=True, timer=ELAPSED, claim='timer', claim_alive=False), ('fail', False, 'reverted')),
    (dict(script_present=True, timer=GONE, claim='manual', claim_alive=False), ('fail', False, 'reverted')),
    (dict(script_present=False, timer=GONE, claim='confirm'), ('confirm', True, 'confirmed')),
    (dict(script_present=False, timer=WAITING), ('fail', False, 'armed')),
    (dict(script_present=False, timer=GONE), ('report', False, 'nothing_armed')),
    (dict(script_present=False, timer=dict(LoadState='loaded', ActiveState='failed', SubState='failed')), ('report', False, 'nothing_armed')),
])
def test_decide_confirmed(kwargs, expected):
    assert decision('confirmed', **kwargs) == expected


@pytest.mark.parametrize('kwargs, expected', [
    (dict(script_present=True, timer=WAITING), ('revert', True, 'reverted')),
    (dict(script_present=True, timer=GONE), ('revert', True, 'reverted')),
    (dict(script_present=True, timer=WAITING, claim='confirm'), ('revert', True, 'reverted')),
    (dict(script_present=True, timer=ELAPSED, reverted=REVERTED, claim='timer'), ('report', False, 'reverted')),
    (dict(script_present=True, timer=ELAPSED, reverted=REVERT_FAILED, claim='timer'), ('fail', False, 'reverted')),
    (dict(script_present=True, timer=ELAPSED, reverted=dict(at=None, rc=None, by=None)), ('fail', False, 'reverted')),
    (dict(script_present=True, timer=ELAPSED, claim='timer', claim_alive=True), ('wait', False, None)),
    (dict(script_present=True, timer=ELAPSED, claim='timer', claim_alive=True, waited=True), ('fail', False, 'reverted')),
    (dict(script_present=True, timer=GONE, claim='timer', claim_alive=False), ('revert', True, 'reverted')),
    (dict(script_present=False, timer=GONE, claim='timer', claim_alive=False), ('fail', False, 'reverted')),
    (dict(script_present=False, timer=WAITING), ('fail', False, 'armed')),
    (dict(script_present=False, timer=GONE), ('report', False, 'nothing_armed')),
])
def test_decide_reverted(kwargs, expected):
    assert decision('reverted', **kwargs) == expected


def test_decide_messages_and_warnings():
    got = cc.decide('confirmed', 'sshd', obs(script_present=True, timer=ELAPSED, reverted=REVERTED, claim='timer'))
    assert got['msg'] == ('sshd: the change was already reverted by the host at 2026-01-01T00:01:01Z '
                          '(timer fired before the confirmation)')
    got = cc.decide('confirmed', 'sshd', obs(script_present=True, timer=GONE))
    assert len(got['warnings']) == 1 and 'no longer active (LoadState=not-found' in got['warnings'][0]
    assert cc.decide('confirmed', 'sshd', obs(script_present=True, timer=WAITING))['warnings'] == []
    got = cc.decide('confirmed', 'sshd', obs(script_present=False, timer=WAITING))
    assert got['msg'].startswith('sshd: dealerscope-revert-sshd.timer is active but there is no revert script')
    got = cc.decide('armed', 'sshd', obs(script_present=True))
    assert got['warnings'] == ['sshd: a previous arm was neither confirmed nor reverted; its revert timer is replaced']
    assert cc.decide('armed', 'sshd', obs(script_present=False))['warnings'] == []
    got = cc.decide('reverted', 'sshd', obs(script_present=True, reverted=REVERT_FAILED))
    assert got['msg'] == 'sshd: the revert script failed with exit code 2; the previous state may not be restored'
    with pytest.raises(ValueError):
        cc.decide('present', 'sshd', obs(script_present=True))


# --- the wrapper, run for real with /bin/sh -----------------------------------------------------------------------

@pytest.fixture
def shell_env(tmp_path):
    """PATH with a fake ``logger`` that appends its arguments to a file (nothing reaches the real syslog)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log_file = tmp_path / 'logger.txt'
    logger = bin_dir / 'logger'
    logger.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\n' % log_file)
    logger.chmod(0o755)
    env = dict(os.environ, PATH='%s:%s' % (bin_dir, os.environ.get('PATH', '/usr/bin:/bin')))
    return env, log_file


def make_change(tmp_path, script, name='sshd', state_dir_name="state dir's"):
    paths = cc.change_paths(str(tmp_path / state_dir_name), name)
    os.makedirs(paths['dir'])
    with open(paths['script'], 'w') as handle:
        handle.write(cc.script_text(script))
    with open(paths['wrapper'], 'w') as handle:
        handle.write(cc.wrapper_script(name, paths['dir']))
    return paths


def run_wrapper(paths, env, mode):
    return subprocess.run(['/bin/sh', paths['wrapper'], mode], env=env, capture_output=True, text=True, timeout=30, check=False)


def test_wrapper_timer_reverts_and_records(tmp_path, shell_env):
    env, log_file = shell_env
    marker = tmp_path / 'restored'
    paths = make_change(tmp_path, 'echo restoring\necho oops >&2\ntouch "%s"' % marker)
    proc = run_wrapper(paths, env, 'timer')
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    assert proc.stdout == 'restoring\noops\n'
    with open(paths['log']) as handle:
        assert handle.read() == 'restoring\noops\n'
    with open(paths['reverted']) as handle:
        record = json.load(handle)
    assert record['rc'] == 0 and record['by'] == 'timer'
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', record['at'])
    claim = cc.read_claim(paths['claim'])
    assert claim['by'] == 'timer' and claim['pid'] > 0
    assert claim['boot_id'] == cc.current_boot_id()
    assert log_file.read_text() == ('-t dealerscope-commit-confirmed sshd: change not confirmed in time - reverting\n'
                                    '-t dealerscope-commit-confirmed sshd: reverted (by timer)\n')
    assert not os.path.exists(paths['reverted'] + '.tmp')


def test_wrapper_passes_the_script_exit_code_on(tmp_path, shell_env):
    env, log_file = shell_env
    paths = make_change(tmp_path, 'echo failing\nexit 3')
    proc = run_wrapper(paths, env, 'timer')
    assert proc.returncode == 3
    assert cc.parse_reverted(cc.read_text(paths['reverted']))['rc'] == 3
    assert 'sshd: revert script failed with exit code 3 (by timer)' in log_file.read_text()


def test_wrapper_does_nothing_when_the_change_is_claimed(tmp_path, shell_env):
    env, log_file = shell_env
    marker = tmp_path / 'restored'
    paths = make_change(tmp_path, 'touch "%s"' % marker)
    assert cc.try_claim(paths['claim'], 'confirm', os.getpid(), cc.current_boot_id(), alive_always) is None
    proc = run_wrapper(paths, env, 'timer')
    assert proc.returncode == 0
    assert not marker.exists()
    assert not os.path.exists(paths['reverted'])
    assert os.readlink(paths['claim']).startswith('confirm:%d:' % os.getpid())
    assert 'sshd: revert timer fired, but the change was already claimed by confirm:%d:' % os.getpid() in log_file.read_text()


def test_wrapper_manual_does_not_claim(tmp_path, shell_env):
    env, log_file = shell_env
    paths = make_change(tmp_path, 'echo manual-run', name='nftables')
    assert cc.try_claim(paths['claim'], 'manual', os.getpid(), 'b', alive_always) is None
    proc = run_wrapper(paths, env, 'manual')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'manual-run\n'
    assert cc.parse_reverted(cc.read_text(paths['reverted']))['by'] == 'manual'
    assert os.readlink(paths['claim']) == 'manual:%d:b' % os.getpid()
    assert 'nftables: reverting on request (state=reverted)' in log_file.read_text()


@pytest.mark.parametrize('mode', ['timer', 'manual'])
def test_the_script_is_told_who_reverts(tmp_path, shell_env, mode):
    """DEALERSCOPE_REVERT_BY: the baseline role logs "not confirmed in time" only when the timer reverted."""
    env, dummy = shell_env
    paths = make_change(tmp_path, 'echo "by=$DEALERSCOPE_REVERT_BY"')
    if mode == 'manual':
        assert cc.try_claim(paths['claim'], 'manual', os.getpid(), 'b', alive_always) is None
    proc = run_wrapper(paths, env, mode)
    assert proc.returncode == 0 and proc.stdout == 'by=%s\n' % mode, proc.stdout


def test_wrapper_reverts_even_when_the_log_cannot_be_written(tmp_path, shell_env):
    env, dummy = shell_env
    marker = tmp_path / 'restored'
    paths = make_change(tmp_path, 'touch "%s"' % marker)
    os.mkdir(paths['log'])  # "revert.log" cannot be opened for writing
    proc = run_wrapper(paths, env, 'timer')
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    assert cc.parse_reverted(cc.read_text(paths['reverted']))['rc'] == 0


def test_wrapper_without_logger_still_reverts(tmp_path):
    marker = tmp_path / 'restored'
    paths = make_change(tmp_path, 'touch "%s"' % marker)
    empty_bin = tmp_path / 'nobin'
    empty_bin.mkdir()
    for tool in ('cat', 'date', 'ln', 'mv', 'readlink', 'touch'):
        found = [os.path.join(d, tool) for d in ('/usr/bin', '/bin') if os.path.exists(os.path.join(d, tool))]
        os.symlink(found[0], str(empty_bin / tool))
    proc = run_wrapper(paths, dict(os.environ, PATH=str(empty_bin)), 'timer')
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()


def test_wrapper_rejects_a_bad_name():
    with pytest.raises(ValueError):
        cc.wrapper_script('x; rm -rf /', '/tmp')


def test_script_text():
    assert cc.script_text('true') == 'true\n'
    assert cc.script_text('true\n') == 'true\n'


# --- file helpers -------------------------------------------------------------------------------------------------

def test_observe_files(tmp_path):
    paths = make_change(tmp_path, 'true')
    seen = cc.observe_files(paths, alive_always)
    assert seen == dict(script_present=True, claim=None, claim_alive=False, reverted=None, armed=None)
    os.symlink('timer:1:b', paths['claim'])
    with open(paths['reverted'], 'w') as handle:
        handle.write('{"at": "T", "rc": 0, "by": "timer"}')
    with open(paths['armed'], 'w') as handle:
        handle.write(cc.armed_record(0, 60))
    seen = cc.observe_files(paths, alive_always)
    assert seen['claim'] == 'timer' and seen['claim_alive'] is True
    assert seen['reverted'] == dict(at='T', rc=0, by='timer')
    assert seen['armed'] == dict(armed_until=dict(epoch=60, iso='1970-01-01T00:01:00Z'))
    os.unlink(paths['wrapper'])
    assert cc.observe_files(paths, alive_never)['script_present'] is False
    assert cc.observe_files(paths, alive_never)['claim_alive'] is False


def test_remove_state_files(tmp_path):
    paths = make_change(tmp_path, 'true')
    os.symlink('confirm:1:b', paths['claim'])
    for name in ('revert.log', 'reverted.json', 'reverted.json.tmp', 'armed.json'):
        (tmp_path / "state dir's" / 'sshd' / name).write_text('x')
    cc.remove_state_files(paths)
    assert not os.path.lexists(paths['dir'])
    assert os.path.isdir(str(tmp_path / "state dir's"))


def test_remove_state_files_keeps_foreign_files(tmp_path):
    paths = make_change(tmp_path, 'true')
    (tmp_path / "state dir's" / 'sshd' / 'saved.conf').write_text('x')
    cc.remove_state_files(paths)
    assert sorted(os.listdir(paths['dir'])) == ['saved.conf']


class FakeClock(object):
    def __init__(self):
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = None

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps += 1
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self.sleeps)


def test_wait_for_revert_sees_the_result(tmp_path):
    paths = make_change(tmp_path, 'true')
    os.symlink('timer:1:b', paths['claim'])
    clock = FakeClock()

    def finish(count):
        if count == 3:
            with open(paths['reverted'], 'w') as handle:
                handle.write('{}')
    clock.on_sleep = finish
    assert cc.wait_for_revert(paths, 10, alive_always, sleep=clock.sleep, clock=clock.clock) is True
    assert clock.sleeps == 3


def test_wait_for_revert_times_out(tmp_path):
    paths = make_change(tmp_path, 'true')
    os.symlink('timer:1:b', paths['claim'])
    clock = FakeClock()
    assert cc.wait_for_revert(paths, 10, alive_always, interval=0.5, sleep=clock.sleep, clock=clock.clock) is False
    assert clock.sleeps == 20


def test_wait_for_revert_stops_when_the_claimant_died(tmp_path):
    paths = make_change(tmp_path, 'true')
    os.symlink('timer:1:b', paths['claim'])
    clock = FakeClock()
    assert cc.wait_for_revert(paths, 10, alive_never, sleep=clock.sleep, clock=clock.clock) is False
    assert clock.sleeps == 0
