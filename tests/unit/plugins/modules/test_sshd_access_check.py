# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import pwd
from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.modules import sshd_access_check
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401


ED25519 = 'AAAAC3NzaC1lZDI1NTE5AAAAICsXoRnf1nQamykUs5ST3PB1aMer/4mbBnT2gNb0u00V'
ED25519_FP = 'SHA256:SGCO/2cXoB+FGc/PnFZklPK1399oChoyneinkD2WLk0'
ED25519_LINE = 'ssh-ed25519 %s ops@controller' % ED25519
RSA = ('AAAAB3NzaC1yc2EAAAADAQABAAAAgQDD8nV8IvHDXoOrDNrQfhYLJqdk3rBJA9JAGTw5kd+TIkBL/AO8VMd7wJV+vYTT/8wtT4MVczgtdb9crcue84DaBIw6H9'
       'qrKdDJ86JCp6XJXMbVIEVXuZbV8OQ3smBLm5Ioa4clqLhzFSSYiAkhCEDAgOshk1ZpwvI+nxpF+nDRCw==')
RSA_FP = 'SHA256:B7vlNkteImxqmXkWMBxsQdzkwIKDVpKMTzeFg+gPe5c'
RSA_LINE = 'ssh-rsa %s rsa-key' % RSA

SSHD = '/usr/sbin/sshd'

BASE_SSHD_T = {
    'port': '22',
    'permitrootlogin': 'without-password',
    'pubkeyauthentication': 'yes',
    'passwordauthentication': 'no',
    'kbdinteractiveauthentication': 'no',
    'maxauthtries': '6',
    'strictmodes': 'yes',
    'usedns': 'no',
    'authorizedkeysfile': '.ssh/authorized_keys .ssh/authorized_keys2',
    'authenticationmethods': 'any',
    'authorizedkeyscommand': 'none',
    'pubkeyacceptedalgorithms': 'ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256',
}


def sshd_t_output(extra_lines=(), **overrides):
    values = dict(BASE_SSHD_T, **overrides)
    lines = ['%s %s' % (key, value) for key, value in values.items() if value is not None]
    lines.extend(extra_lines)
    return '\n'.join(lines) + '\n'


@pytest.fixture
def home(tmp_path):
    """A home directory with a correctly protected ~/.ssh/authorized_keys (StrictModes-clean)."""
    home_dir = tmp_path / 'home'
    ssh_dir = home_dir / '.ssh'
    ssh_dir.mkdir(parents=True)
    home_dir.chmod(0o755)
    ssh_dir.chmod(0o700)
    keys = ssh_dir / 'authorized_keys'
    keys.write_text('# deploy keys\ncommand="echo a b",no-pty %s\n%s\n' % (RSA_LINE, ED25519_LINE))
    keys.chmod(0o600)
    return home_dir


class Harness:
    """Patches AnsibleModule and the host lookups; records what the module did."""

    def __init__(self, monkeypatch, home_dir):
        self.monkeypatch = monkeypatch
        self.home = str(home_dir)
        self.sshd_output = sshd_t_output()
        self.sshd_rc = 0
        self.sshd_err = ''
        self.commands = []
        self.warnings = []
        self.users = {}
        self.add_user('deploy', os.getuid(), os.getgid())
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', self.run_command)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda _self, name, required=False, opt_dirs=None: SSHD)
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda _self, warning, **kw: self.warnings.append(warning))
        monkeypatch.setattr(sshd_access_check.pwd, 'getpwnam', self.getpwnam)
        monkeypatch.setattr(sshd_access_check.os, 'getgrouplist', lambda user, gid: [gid, 4242])
        monkeypatch.setattr(sshd_access_check.grp, 'getgrgid', self.getgrgid)
        monkeypatch.delenv('SSH_CONNECTION', raising=False)

    def add_user(self, name, uid, gid, home=None):
        self.users[name] = pwd.struct_passwd((name, 'x', uid, gid, name, home or self.home, '/bin/bash'))

    def getpwnam(self, name):
        try:
            return self.users[name]
        except KeyError:
            raise KeyError('getpwnam(): name not found: %r' % name)

    @staticmethod
    def getgrgid(gid):
        names = {4242: 'sshusers'}
        return mock.Mock(gr_name=names.get(gid, 'deploy'))

    def run_command(self, args, **kwargs):  # pylint: disable=unused-argument
        self.commands.append(list(args))
        return self.sshd_rc, self.sshd_output, self.sshd_err

    def run(self, **args):
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                sshd_access_check.main()
        return excinfo.type is AnsibleFailJson, excinfo.value.result


@pytest.fixture
def harness(monkeypatch, home):
    return Harness(monkeypatch, home)


def test_allowed(harness):
    failed, result = harness.run(user='deploy', public_keys=[ED25519_LINE])
    assert not failed
    assert result['changed'] is False
    assert result['can_login'] is True
    assert result['reasons'] == []
    assert result['matched_fingerprints'] == [ED25519_FP]
    assert result['authorized_key_files'] == [harness.home + '/.ssh/authorized_keys', harness.home + '/.ssh/authorized_keys2']
    assert result['effective']['pubkeyauthentication'] == 'yes'
    assert result['effective']['authorizedkeysfile'] == ['.ssh/authorized_keys', '.ssh/authorized_keys2']
    assert result['effective']['port'] == ['22']
    assert result['effective']['allowusers'] == []
    assert set(result['effective']) == set(sshd_access_check.EFFECTIVE_KEYS)
    assert harness.commands == [[SSHD, '-T', '-f', '/etc/ssh/sshd_config', '-C', 'user=deploy']]
    # unknown client address is reported as a warning, both in the result and via module.warn
    assert any('client address is unknown' in w for w in result['access_warnings'])
    assert harness.warnings == result['access_warnings']


def test_allowed_without_expected_keys_lists_all_usable_keys(harness):
    failed, result = harness.run(user='deploy')
    assert not failed
    assert result['matched_fingerprints'] == [RSA_FP, ED25519_FP]


def test_check_mode_runs_fully(harness):
    failed, result = harness.run(user='deploy', public_keys=[ED25519_LINE], _ansible_check_mode=True)
    assert not failed
    assert result['can_login'] is True
    assert len(harness.commands) == 1


def test_denied_password_only_setup(harness):
    harness.sshd_output = sshd_t_output(pubkeyauthentication='no', passwordauthentication='yes')
    failed, result = harness.run(user='deploy', public_keys=[ED25519_LINE])
    assert failed
    assert result['can_login'] is False
    assert result['msg'].startswith('deploy would be locked out: ')
    assert 'PubkeyAuthentication' in result['msg']
    assert result['effective']['passwordauthentication'] == 'yes'
    assert result['changed'] is False


def test_denied_by_allow_users(harness):
    harness.sshd_output = sshd_t_output(extra_lines=['allowusers alice', 'allowusers bob@10.0.0.0/8'])
    failed, result = harness.run(user='deploy')
    assert failed
    assert any('AllowUsers' in r for r in result['reasons'])
    assert result['effective']['allowusers'] == ['alice', 'bob@10.0.0.0/8']


def test_root_with_permitrootlogin_no(harness):
    harness.add_user('root', 0, 0)
    harness.sshd_output = sshd_t_output(permitrootlogin='no', strictmodes='no')
    failed, result = harness.run(user='root')
    assert failed
    assert 'root would be locked out' in result['msg']
    assert any('PermitRootLogin' in r for r in result['reasons'])
    assert result['effective']['permitrootlogin'] == 'no'


def test_expected_key_missing(harness):
    other = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHhAmnI8OI3uhFQJXc2U4ny9UZvl9Ve5Mk1FzuXZHuHc missing@controller'
    failed, result = harness.run(user='deploy', public_keys=[other])
    assert failed
    assert result['matched_fingerprints'] == []
    assert 'SHA256:' in result['msg']
    assert 'AAAAC3NzaC1lZDI1NTE5AAAAIHhAmnI8' not in result['msg']
    assert ED25519 not in result['msg']


def test_forced_command_key_warns(harness):
    failed, result = harness.run(user='deploy', public_keys=[RSA_LINE])
    assert not failed
    assert result['matched_fingerprints'] == [RSA_FP]
    assert any('command=' in w for w in harness.warnings)


def test_sshd_t_failure(harness):
    harness.sshd_rc = 255
    harness.sshd_output = ''
    harness.sshd_err = 'Missing privilege separation directory: /run/sshd\n'
    failed, result = harness.run(user='deploy', config_file='/etc/ssh/sshd_config.candidate')
    assert failed
    assert 'Missing privilege separation directory: /run/sshd' in result['msg']
    assert '/etc/ssh/sshd_config.candidate' in result['msg']
    assert result['rc'] == 255
    assert 'can_login' not in result


def test_sshd_t_stderr_becomes_warning(harness):
    harness.sshd_err = '/etc/ssh/sshd_config line 3: Deprecated option RSAAuthentication\n'
    failed, result = harness.run(user='deploy')
    assert not failed
    assert any('Deprecated option RSAAuthentication' in w for w in harness.warnings)


def test_unknown_user(harness):
    failed, result = harness.run(user='nosuchuser')
    assert failed
    assert "user 'nosuchuser' does not exist" in result['msg']
    assert harness.commands == []


def test_fail_on_denied_false(harness):
    harness.sshd_output = sshd_t_output(pubkeyauthentication='no')
    failed, result = harness.run(user='deploy', fail_on_denied=False)
    assert not failed
    assert result['can_login'] is False
    assert result['changed'] is False
    assert any('PubkeyAuthentication' in r for r in result['reasons'])


def test_no_authorized_keys_file(harness, tmp_path):
    empty_home = tmp_path / 'empty'
    empty_home.mkdir()
    harness.add_user('fresh', os.getuid(), os.getgid(), home=str(empty_home))
    failed, result = harness.run(user='fresh')
    assert failed
    assert 'does not exist or is not readable' in result['msg']


def test_strict_modes_violation(harness, home):
    (home / '.ssh').chmod(0o777)
    failed, result = harness.run(user='deploy')
    assert failed
    assert 'StrictModes' in result['msg']
    harness.sshd_output = sshd_t_output(strictmodes='no')
    failed, result = harness.run(user='deploy')
    assert not failed


def test_invalid_public_key(harness):
    failed, result = harness.run(user='deploy', public_keys=['ssh-ed25519 AAAAnotvalid'])
    assert failed
    assert 'invalid public_keys' in result['msg']
    assert 'AAAAnotvalid' not in result['msg']


def test_ssh_connection_environment(harness, monkeypatch):
    monkeypatch.setenv('SSH_CONNECTION', '203.0.113.5 51000 10.0.0.2 22')
    failed, result = harness.run(user='deploy')
    assert not failed
    assert harness.commands[0][-1] == 'user=deploy,host=203.0.113.5,addr=203.0.113.5,laddr=10.0.0.2,lport=22'
    assert not any('client address is unknown' in w for w in harness.warnings)


def test_explicit_connection_wins_and_drives_user_at_host(harness, monkeypatch):
    monkeypatch.setenv('SSH_CONNECTION', '203.0.113.5 51000 10.0.0.2 22')
    harness.sshd_output = sshd_t_output(extra_lines=['allowusers deploy@192.0.2.0/24'])
    failed, result = harness.run(user='deploy', connection={'addr': '192.0.2.7', 'host': 'bastion', 'lport': 2222})
    assert not failed
    assert harness.commands[0][-1] == 'user=deploy,host=bastion,addr=192.0.2.7,lport=2222'
    failed, result = harness.run(user='deploy', connection={'addr': '198.51.100.1'})
    assert failed
    assert any('AllowUsers' in r for r in result['reasons'])


def test_connection_value_with_comma_rejected(harness):
    failed, result = harness.run(user='deploy', connection={'addr': '192.0.2.7,user=root'})
    assert failed
    assert 'connection.addr' in result['msg']
    assert harness.commands == []


def test_sshd_path_parameter(harness):
    failed, result = harness.run(user='deploy', sshd_path='/opt/openssh/sbin/sshd')
    assert not failed
    assert harness.commands[0][0] == '/opt/openssh/sbin/sshd'
    assert result['sshd_command'][0] == '/opt/openssh/sbin/sshd'
