# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.module_utils import apt_patch as ap
from ansible_collections.dealerscope.ops.plugins.modules import apt_patch
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args

SIM = """Inst dslab-libdemo [1.0] (1.1 DealerScope Lab:1.1/dslab-security [all])
Inst dslab-tools [1.0] (1.1 DealerScope Lab:1.1/dslab-updates [all])
"""
BEFORE = {'dslab-libdemo': {'version': '1.0', 'hold': False, 'installed': True},
          'dslab-tools': {'version': '1.0', 'hold': False, 'installed': True},
          'dslab-kernel-stub': {'version': '1.0', 'hold': True, 'installed': True}}
POLICY = 'dslab-kernel-stub:\n  Installed: 1.0\n  Candidate: 1.1\n'


class Host(object):
    """A fake Debian host: apt-get and systemctl calls recorded, dpkg status switched by the install."""

    def __init__(self, install_rc=0, restart_rc=0):
        self.calls = []
        self.status = dict((k, dict(v)) for k, v in BEFORE.items())
        self.install_rc = install_rc
        self.restart_rc = restart_rc
        self.stale = [{'pid': 200, 'unit': 'dealerscope-api.service', 'comm': 'python3', 'files': ['/usr/lib/dslab/libdemo.so.1']}]
        self.reboot = (False, [])

    def run_command(self, args, **kwargs):  # pylint: disable=unused-argument
        self.calls.append(list(args))
        cmd = args[1:]
        if cmd[:1] == ['update']:
            return 0, '', ''
        if cmd[:1] == ['-s']:
            return 0, SIM, ''
        if cmd[:1] == ['policy']:
            return 0, POLICY, ''
        if cmd[:1] == ['install']:
            if self.install_rc == 0:
                for name in cmd:
                    if name in self.status:
                        self.status[name]['version'] = '1.1'
            return self.install_rc, '', 'E: dpkg was interrupted' if self.install_rc else ''
        if cmd[:1] == ['restart']:
            if self.restart_rc == 0:
                self.stale = []
            return self.restart_rc, '', 'Job failed' if self.restart_rc else ''
        if cmd[:1] == ['daemon-reexec']:
            return 0, '', ''
        raise AssertionError('unexpected command %r' % (args,))


@pytest.fixture
def host(monkeypatch):
    fake = Host()
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, args, **kw: fake.run_command(args, **kw))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, required=False, opt_dirs=None: '/usr/bin/' + name)
    monkeypatch.setattr(apt_patch, 'read_status', lambda: dict((k, dict(v)) for k, v in fake.status.items()))
    monkeypatch.setattr(apt_patch, 'free_mb', lambda path='/var/cache/apt': 5000)
    monkeypatch.setattr(ap, 'stale_processes', lambda proc_root='/proc', own_pid=None, unreadable=None: list(fake.stale))
    monkeypatch.setattr(ap, 'mapped_package_files', lambda proc_root='/proc': {'dealerscope-api.service': {'/usr/lib/dslab/libdemo.so.1'}})
    monkeypatch.setattr(ap, 'dpkg_list_files', lambda names, info_dir=None: {'dslab-libdemo': {'/usr/lib/dslab/libdemo.so.1'}})
    monkeypatch.setattr(ap, 'reboot_state', lambda run_dir='/run': fake.reboot)
    return fake


def run(args, check=False, diff=False):
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with set_module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
            apt_patch.main()
    return excinfo.value.result


def commands(fake, word):
    return [c for c in fake.calls if word in c]


def test_plan_changes_nothing_and_predicts(host):
    result = run({'state': 'plan', 'mode': 'security'})
    assert result['changed'] is False
    assert result['to_upgrade'] == ['dslab-libdemo']
    assert [e['name'] for e in result['plan'] if e['action'] == 'skip'] == ['dslab-kernel-stub', 'dslab-tools']
    assert result['held'] == ['dslab-kernel-stub']
    assert result['restarts_predicted'] == ['dealerscope-api.service']
    assert result['cache_updated'] is True and commands(host, 'update')
    assert not commands(host, 'install') and not commands(host, 'restart')
    assert result['counts'] == {'pending': 3, 'to_upgrade': 1, 'skipped': 2, 'security': 1}


def test_check_mode_predicts_change_without_touching(host):
    result = run({'state': 'upgraded', 'mode': 'full'}, check=True, diff=True)
    assert result['changed'] is True
    assert result['diff'] == {'before': 'dslab-libdemo 1.0\ndslab-tools 1.0\n', 'after': 'dslab-libdemo 1.1\ndslab-tools 1.1\n'}
    assert result['cache_updated'] is False
    assert not commands(host, 'update') and not commands(host, 'install') and not commands(host, 'restart')


def test_upgrade_installs_only_planned_and_restarts(host):
    host.reboot = (True, ['dslab-kernel-stub'])
    result = run({'state': 'upgraded', 'mode': 'full', 'exclude': ['dslab-tools']}, diff=True)
    install = commands(host, 'install')[0]
    assert install[-1] == 'dslab-libdemo' and 'dslab-tools' not in install and '--only-upgrade' in install
    assert 'DPkg::Lock::Timeout=120' in install
    assert result['changed'] is True
    assert result['upgrades'] == [{'name': 'dslab-libdemo', 'before': '1.0', 'after': '1.1'}]
    assert result['restarted'] == ['dealerscope-api.service'] and result['restart_pending'] == []
    assert result['reboot_required'] is True and result['reboot_required_pkgs'] == ['dslab-kernel-stub']
    assert result['diff']['after'] == 'dslab-libdemo 1.1\n'


def test_nothing_to_do_is_unchanged(host):
    host.status['dslab-libdemo']['version'] = '1.1'
    host.stale = []
    result = run({'state': 'upgraded', 'mode': 'security', 'exclude': ['dslab-libdemo']})
    assert result['changed'] is False and result['upgrades'] == [] and not commands(host, 'install')


def test_restart_disabled_reports_pending(host):
    result = run({'state': 'upgraded', 'mode': 'security', 'restart_services': False})
    assert result['restarted'] == [] and result['restart_pending'] == ['dealerscope-api.service']
    assert not commands(host, 'restart')


def test_install_failure_fails_with_partial_state(host):
    host.install_rc = 100
    result = run({'state': 'upgraded', 'mode': 'security'})
    assert result['failed'] is True and 'rc 100' in result['msg'] and 'dpkg was interrupted' in result['msg']
    assert result['upgrades'] == []


def test_failed_restart_fails_the_module(host):
    host.restart_rc = 1
    result = run({'state': 'upgraded', 'mode': 'security'})
    assert result['failed'] is True and 'dealerscope-api.service: Job failed' in result['msg']
    assert result['upgrades'] == [{'name': 'dslab-libdemo', 'before': '1.0', 'after': '1.1'}]


def test_pending_kernel_means_reboot_required(host):
    running = apt_patch.os.uname().release
    host.status['linux-image-%s' % running] = {'version': '1', 'hold': False, 'installed': True}
    host.status['linux-image-99.0.0-1-amd64'] = {'version': '2', 'hold': False, 'installed': True}
    result = run({'state': 'plan'})
    assert result['reboot_required'] is True and result['reboot_predicted'] is True
    assert result['reboot_required_pkgs'] == ['linux-image-99.0.0-1-amd64']
