# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import calendar
import collections
import json
import os
import time
from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.modules import host_health
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401


StatVfs = collections.namedtuple('StatVfs', 'f_bsize f_frsize f_blocks f_bfree f_bavail f_files f_ffree f_favail f_flag f_namemax')

MOUNTINFO = """\
123 66 0:56 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
124 123 0:59 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
127 123 0:61 / /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw
130 123 254:0 /run/containers/storage/x/userdata/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw
131 123 254:0 /run/containers/storage/x/userdata/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
140 123 254:0 /volumes/pg /var/lib/postgresql rw,relatime - ext4 /dev/vda rw
"""

SHOW = """\
MainPID=412
ControlGroup=/system.slice/dealerscope-api.service
MemoryCurrent=104857600
Id=dealerscope-api.service
LoadState=loaded
ActiveState=active
SubState=running

MainPID=44
ControlGroup=/system.slice/ssh.service
MemoryCurrent=[not set]
Id=ssh.service
LoadState=loaded
ActiveState=active
SubState=running
"""

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 2 1 0 100 0 0 10 0
"""

APT = """\
Reading package lists...
Inst libssl3 [3.0.15-1~deb12u1] (3.0.16-1~deb12u1 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])
Conf libssl3 (3.0.16-1~deb12u1 Debian-Security:12/stable-security [amd64])
"""

CHRONY_UNSYNCED = """\
Reference ID    : 00000000 ()
Stratum         : 0
System time     : 0.000000000 seconds fast of NTP time
Leap status     : Not synchronised
"""


class Harness:
    """Fakes the host: files under /proc, statvfs, commands; records the commands run."""

    def __init__(self, monkeypatch, tmp_path):
        self.updates_cache = str(tmp_path / 'cache' / 'updates.json')
        self.apt_key = 'apt-state-1'
        self.files = {
            '/proc/self/mountinfo': MOUNTINFO,
            '/proc/meminfo': 'MemTotal: 4000000 kB\nMemFree: 100000 kB\nMemAvailable: 2000000 kB\n',
            '/proc/self/cgroup': '0::/host-health-test-no-such-cgroup\n',
            '/proc/stat': 'cpu  100 0 100 800 0 0 0 0 0 0\n',
            '/proc/loadavg': '0.50 1.00 1.50 1/100 42\n',
            '/proc/net/tcp': TCP,
            '/proc/net/tcp6': '  sl  local_address\n',
        }
        self.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
        self.statvfs = {'/': StatVfs(4096, 4096, 1000, 500, 450, 1000, 900, 900, 0, 255),
                        '/var/lib/postgresql': StatVfs(4096, 4096, 1000, 50, 50, 1000, 100, 100, 0, 255)}
        self.exists = set()
        self.missing_bins = set()
        self.outputs = {
            'show': (0, SHOW, ''),
            'list-units': (0, 'logrotate.service loaded failed failed Rotate log files\n', ''),
            'apt-get': (0, APT, ''),
            'chronyc': (0, CHRONY_UNSYNCED, ''),
            'timedatectl': (0, 'yes\n', ''),
        }
        self.commands = []
        self.sadf = {}  # data file -> (rc, stdout, stderr) of sadf -j
        self.warnings = []
        self.now = calendar.timegm(time.strptime('2026-11-27 06:00:00', '%Y-%m-%d %H:%M:%S'))
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda module, warning: self.warnings.append(warning))
        monkeypatch.setattr(host_health, 'wall_clock', lambda: self.now, raising=False)
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', self.run_command)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', self.get_bin_path)
        monkeypatch.setattr(host_health, 'read_text', self.read_text)
        monkeypatch.setattr(host_health, 'fs_stat', self.fs_stat)
        monkeypatch.setattr(host_health, 'is_directory', lambda path: path not in ('/etc/hosts', '/etc/resolv.conf'))
        monkeypatch.setattr(host_health, 'path_exists', lambda path: path in self.exists)
        monkeypatch.setattr(host_health, 'chronyd_options', lambda: ['-F', '1', '-x'])
        monkeypatch.setattr(host_health, 'apt_fingerprint', lambda: self.apt_key)

    def read_text(self, path):
        if path == '/proc/stat':
            return self.stat_samples.pop(0)
        return self.files.get(path)

    def fs_stat(self, path):
        try:
            return self.statvfs[path]
        except KeyError:
            raise OSError(2, 'No such file or directory: %r' % path)

    def get_bin_path(self, name, required=False, opt_dirs=None):  # pylint: disable=unused-argument
        return None if name in self.missing_bins else '/usr/bin/' + name

    def run_command(self, args, **kwargs):  # pylint: disable=unused-argument
        self.commands.append(list(args))
        name = os.path.basename(args[0])
        if name == 'sadf':
            return self.sadf.get(args[2], (2, '', 'Cannot open %s: No such file or directory\n' % args[2]))
        key = args[1] if name == 'systemctl' else name
        return self.outputs[key]

    def run(self, **args):
        args.setdefault('cpu_sample_seconds', 0.01)
        args.setdefault('updates_cache', self.updates_cache)
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                host_health.main()
        return excinfo.type is AnsibleFailJson, excinfo.value.result


@pytest.fixture
def harness(monkeypatch, tmp_path):
    return Harness(monkeypatch, tmp_path)


def by_name(result):
    return dict((check['name'], check) for check in result['checks'])


def test_full_run(harness):
    failed, result = harness.run(services=['dealerscope-api.service', 'ssh.service'], memory_services=['dealerscope-api.service'],
                                 expected_ports=[8000, 22, 443])
    assert not failed
    assert result['changed'] is False
    checks = by_name(result)
    assert checks['service:dealerscope-api.service']['status'] == 'ok'
    assert checks['service:ssh.service']['status'] == 'ok'
    assert checks['service_memory:dealerscope-api.service']['value'] == 100.0
    assert checks['service_memory:dealerscope-api.service']['status'] == 'ok'
    assert checks['failed_units']['status'] == 'warning' and checks['failed_units']['details']['units'] == ['logrotate.service']
    assert checks['listening:8000']['status'] == 'ok' and checks['listening:22']['status'] == 'ok'
    assert checks['listening:443']['status'] == 'critical'
    assert checks['disk:/']['status'] == 'ok'
    assert checks['disk:/var/lib/postgresql']['status'] == 'critical'
    assert checks['inodes:/var/lib/postgresql']['status'] == 'critical' and checks['inodes:/var/lib/postgresql']['value'] == 90.0
    assert 'disk:/etc/hosts' not in checks and 'disk:/tmp' not in checks and 'disk:/proc' not in checks
    assert checks['memory']['value'] == 50.0 and checks['memory']['status'] == 'ok'
    # 100 busy jiffies of 200 in the sample, minus whatever the test process itself used
    assert 0.0 <= checks['cpu']['value'] <= 50.0
    assert result['health']['loadavg'] == [0.5, 1.0, 1.5]
    assert checks['updates']['status'] == 'warning' and checks['updates']['details'] == {'security': ['libssl3'], 'other_count': 1}
    assert checks['reboot_required']['status'] == 'ok'
    assert checks['clock_sync']['status'] == 'warning' and 'does not control the clock' in checks['clock_sync']['message']
    health = result['health']
    assert health['services']['dealerscope-api.service']['memory_source'] == 'MemoryCurrent'
    assert health['services']['ssh.service']['main_pid'] == 44
    assert 'memory_bytes' not in health['services']['ssh.service']
    assert [m['mount'] for m in health['mounts']] == ['/', '/var/lib/postgresql']
    assert health['mounts'][0]['fstype'] == 'overlay'
    assert [(s['port'], s['address']) for s in health['listening']] == [(22, '0.0.0.0'), (8000, '0.0.0.0')]
    assert health['updates']['total'] == 2
    assert isinstance(health['elapsed_ms'], int) and health['elapsed_ms'] >= 0
    # exactly one systemctl show call, for all units
    shows = [c for c in harness.commands if c[1:2] == ['show']]
    assert shows == [['/usr/bin/systemctl', 'show', '--no-pager', '-p', 'Id,LoadState,ActiveState,SubState,MainPID,MemoryCurrent,ControlGroup',
                      'dealerscope-api.service', 'ssh.service']]
    assert ['/usr/bin/apt-get', '-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'] in harness.commands
    assert ['/usr/bin/chronyc', '-n', 'tracking'] in harness.commands
    assert not any('timedatectl' in c[0] for c in harness.commands)


def test_no_units_no_show_call_and_check_mode(harness):
    failed, result = harness.run(_ansible_check_mode=True, check_updates=False)
    assert not failed
    assert not any(c[1:2] == ['show'] for c in harness.commands)
    assert not any('apt-get' in c[0] for c in harness.commands)
    assert result['health']['updates'] is None
    assert 'updates' not in by_name(result)
    assert result['health']['services'] == {}


def test_service_down_and_memory_not_measurable(harness):
    # Not measurable on any machine: the module falls back to the unit's cgroup and main PID on the real system, so
    # the cgroup is one no host has and the PID is above the kernel's largest (pid_max <= 2**22); PID 412 existed on
    # CI's machine once and made the memory measurable.
    harness.outputs['show'] = (0, SHOW.replace('ActiveState=active\nSubState=running\n\nMainPID=44', 'ActiveState=failed\nSubState=failed\n\nMainPID=44')
                               .replace('MemoryCurrent=104857600', 'MemoryCurrent=[not set]')
                               .replace('MainPID=412', 'MainPID=%d' % (2 ** 22 + 1))
                               .replace('ControlGroup=/system.slice/dealerscope-api.service',
                                        'ControlGroup=/system.slice/dealerscope-absent-7f3c9e.service'), '')
    harness.outputs['list-units'] = (0, 'dealerscope-api.service loaded failed failed DealerScope API\n', '')
    failed, result = harness.run(services=['dealerscope-api.service'], memory_services=['dealerscope-api.service'])
    assert not failed
    checks = by_name(result)
    assert checks['service:dealerscope-api.service']['status'] == 'critical'
    assert checks['service:dealerscope-api.service']['alert'] == 'service_down'
    assert checks['failed_units']['status'] == 'critical'
    assert checks['service_memory:dealerscope-api.service']['status'] == 'warning'


def test_systemctl_missing(harness):
    harness.missing_bins.update({'systemctl', 'chronyc'})
    failed, result = harness.run(services=['ssh.service'])
    assert not failed
    checks = by_name(result)
    assert checks['service:ssh.service']['status'] == 'critical' and 'systemctl not found' in checks['service:ssh.service']['message']
    assert 'failed_units' not in checks and result['health']['failed_units'] is None
    assert checks['clock_sync']['status'] == 'ok' and result['health']['clock']['source'] == 'timedatectl'


def test_systemctl_show_fails(harness):
    harness.outputs['show'] = (1, '', 'Failed to connect to bus: Host is down\nsecond line\n')
    failed, result = harness.run(services=['ssh.service'])
    assert not failed
    message = by_name(result)['service:ssh.service']['message']
    assert 'Failed to connect to bus: Host is down; second line' in message


def test_non_apt_host_and_reboot_required(harness):
    harness.missing_bins.add('apt-get')
    harness.exists.add('/run/reboot-required')
    harness.files['/run/reboot-required.pkgs'] = 'linux-image-6.1.0-37-amd64\nlinux-image-6.1.0-37-amd64\nlibc6\n'
    failed, result = harness.run()
    assert not failed
    checks = by_name(result)
    assert checks['updates']['status'] == 'ok' and 'not supported' in checks['updates']['message']
    assert result['health']['updates']['supported'] is False
    assert checks['reboot_required']['status'] == 'warning'
    assert result['health']['reboot_required'] == {'required': True, 'packages': ['linux-image-6.1.0-37-amd64', 'libc6']}


def test_apt_failure_is_a_warning(harness):
    harness.outputs['apt-get'] = (100, '', 'E: Could not open lock file\nE: Unable to lock\n')
    failed, result = harness.run(security_updates_status='critical')
    assert not failed
    check = by_name(result)['updates']
    assert check['status'] == 'warning' and 'rc=100' in check['message'] and 'Unable to lock' in check['message']


def test_chronyc_unavailable_falls_back_to_timedatectl(harness):
    harness.outputs['chronyc'] = (1, '', '506 Cannot talk to daemon\n')
    harness.outputs['timedatectl'] = (0, 'no\n', '')
    failed, result = harness.run()
    assert not failed
    check = by_name(result)['clock_sync']
    assert check['status'] == 'warning' and 'timedatectl' in check['message']
    assert result['health']['clock']['error'] == 'chronyc tracking: 506 Cannot talk to daemon'


def test_disk_mounts_restricts_and_reports_unmeasurable(harness):
    harness.files['/proc/self/mountinfo'] = MOUNTINFO + '150 123 0:80 / /srv/gone rw - xfs /dev/sdz rw\n'
    harness.statvfs['/tmp'] = StatVfs(4096, 4096, 100, 90, 90, 100, 99, 99, 0, 255)
    failed, result = harness.run(disk_mounts=['/srv/gone', '/tmp'], disk_warn_percent=1)
    assert not failed
    checks = by_name(result)
    assert sorted(name for name in checks if name.startswith(('disk:', 'inodes:'))) == ['disk:/srv/gone', 'disk:/tmp', 'inodes:/tmp']
    assert checks['disk:/srv/gone']['status'] == 'critical'
    assert checks['disk:/tmp']['status'] == 'warning' and checks['disk:/tmp']['value'] == 10.0


def test_proc_mounts_fallback(harness, monkeypatch):
    harness.files['/proc/self/mountinfo'] = None
    harness.files['/proc/mounts'] = 'overlay / overlay rw 0 0\nproc /proc proc rw 0 0\n'
    monkeypatch.setattr(host_health.os, 'stat', lambda path: collections.namedtuple('S', 'st_dev')(66))
    failed, result = harness.run(updates_cache='')  # os.stat is faked for every caller
    assert not failed
    assert [(m['mount'], m['device']) for m in result['health']['mounts']] == [('/', '66')]


def test_container_cpu_scope(harness, monkeypatch):
    harness.exists.add('/run/.containerenv')
    usage = [100.0, 100.01]
    monkeypatch.setattr(host_health, 'cgroup_cpu_usage_seconds', lambda: usage.pop(0))
    monkeypatch.setattr(host_health, 'cgroup_cpu_quota', lambda: 0.5)
    failed, result = harness.run()
    assert not failed
    cpu = result['health']['cpu']
    assert cpu['scope'] == 'container' and cpu['container_cpus'] == 0.5
    assert cpu['percent'] == cpu['container_percent'] and 0.0 <= cpu['percent'] <= 100.0
    assert cpu['host_percent'] is not None
    assert usage == []  # sampled twice
    assert 'of the container' in by_name(result)['cpu']['message']


def test_host_cpu_scope(harness):
    failed, result = harness.run()
    assert not failed
    assert result['health']['cpu']['scope'] == 'host' and result['health']['cpu']['container_cpus'] is None


def test_invalid_sample_seconds(harness):
    failed, result = harness.run(cpu_sample_seconds=0)
    assert failed
    assert 'cpu_sample_seconds' in result['msg']


@pytest.mark.parametrize('args, needles', [
    (dict(disk_warn_percent='95', disk_crit_percent='90'), ['disk_warn_percent (95) must not be greater than disk_crit_percent (90)']),
    (dict(inode_warn_percent=91), ['inode_warn_percent (91) must not be greater than inode_crit_percent (90)']),
    (dict(memory_warn_percent=96), ['memory_warn_percent (96) must not be greater than memory_crit_percent (95)']),
    (dict(cpu_limit_percent=95, cpu_crit_percent=90), ['cpu_limit_percent (95) must not be greater than cpu_crit_percent (90)']),
    (dict(disk_crit_percent=150), ['disk_crit_percent must be a percentage between 0 and 100, got 150']),
    (dict(memory_warn_percent=-5), ['memory_warn_percent must be a percentage between 0 and 100, got -5']),
    (dict(service_memory_warn_percent=120), ['service_memory_warn_percent must be a percentage between 0 and 100, got 120']),
    (dict(cpu_limit_percent='-1'), ['cpu_limit_percent must be a percentage between 0 and 100, got -1']),
    (dict(service_memory_limit_mb=-512), ['service_memory_limit_mb must be greater than 0, got -512']),
    (dict(clock_max_offset_ms=-100), ['clock_max_offset_ms must not be negative, got -100']),
    (dict(expected_ports=[8000, 0, 70000]), ['expected_ports[1] must be a TCP port', 'expected_ports[2] must be a TCP port']),
    (dict(disk_warn_percent=101, disk_crit_percent=100), ['disk_warn_percent must be a percentage between 0 and 100, got 101',
                                                          'disk_warn_percent (101) must not be greater than disk_crit_percent (100)']),
])
def test_nonsense_thresholds_fail_naming_the_options_before_measuring(harness, args, needles):
    failed, result = harness.run(**args)
    assert failed
    assert result['msg'].startswith('invalid options: ')
    for needle in needles:
        assert needle in result['msg']
    assert harness.commands == []  # nothing was measured


def test_sensible_edge_thresholds_are_accepted(harness):
    failed, result = harness.run(disk_warn_percent=90, disk_crit_percent=90, memory_warn_percent=0, memory_crit_percent=100,
                                 cpu_limit_percent='70', cpu_crit_percent='70', clock_max_offset_ms=0, expected_ports=[1, 65535])
    assert not failed, result.get('msg')


# --------------------------------------------------------------------------- the updates cache

def apt_runs(harness):
    return sum(1 for command in harness.commands if os.path.basename(command[0]) == 'apt-get')


def test_updates_cache_answers_the_next_run_while_apt_state_is_unchanged(harness):
    _failed, first = harness.run()
    assert apt_runs(harness) == 1
    assert first['health']['updates']['cache'] == {'path': harness.updates_cache, 'used': False, 'computed_at': '2026-11-27T06:00:00Z',
                                                   'written': True, 'reason': 'no cache yet', 'error': None}
    harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
    harness.now += 3600
    _failed, second = harness.run()
    assert apt_runs(harness) == 1  # no second simulation
    assert second['health']['updates']['cache']['used'] is True
    assert second['health']['updates']['cache']['computed_at'] == '2026-11-27T06:00:00Z'
    assert by_name(second)['updates'] == by_name(first)['updates']
    assert second['changed'] is False and first['changed'] is False


@pytest.mark.parametrize('change, reason', [('key', 'apt state changed'), ('age', 'expired'), ('corrupt', 'unreadable cache')])
def test_updates_cache_is_not_used_after_apt_state_changes_or_it_expires(harness, change, reason):
    harness.run()
    harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
    harness.outputs['apt-get'] = (0, 'Reading package lists...\n', '')  # apt-get update ran, the host was upgraded since
    if change == 'key':
        harness.apt_key = 'apt-state-2'
    elif change == 'age':
        harness.now += 24 * 3600 + 1
    else:
        with open(harness.updates_cache, 'w') as handle:
            handle.write('{"version": 1, "key": "apt-')
    _failed, result = harness.run()
    assert apt_runs(harness) == 2
    assert result['health']['updates']['cache']['reason'] == reason and result['health']['updates']['cache']['written'] is True
    assert result['health']['updates']['total'] == 0 and by_name(result)['updates']['status'] == 'ok'


def test_updates_cache_is_not_written_in_check_mode_nor_after_a_failed_simulation(harness):
    _failed, result = harness.run(_ansible_check_mode=True)
    assert result['health']['updates']['cache']['written'] is False and not os.path.exists(harness.updates_cache)
    harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
    harness.outputs['apt-get'] = (100, '', 'E: Could not open lock file\n')
    _failed, result = harness.run()
    assert result['health']['updates']['error'] and not os.path.exists(harness.updates_cache)
    assert by_name(result)['updates']['status'] == 'warning'


def test_updates_cache_disabled_simulates_every_time(harness):
    for _run in range(2):
        harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
        _failed, result = harness.run(updates_cache='')
        assert result['health']['updates']['cache']['reason'] == 'disabled'
    assert apt_runs(harness) == 2
    harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
    harness.run(updates_cache_max_age_hours=0)
    harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
    harness.run(updates_cache_max_age_hours=0)
    assert apt_runs(harness) == 4 and not os.path.exists(harness.updates_cache)


def test_unwritable_updates_cache_warns_and_the_check_still_answers(harness, tmp_path):
    blocker = tmp_path / 'not-a-directory'
    blocker.write_text('')
    _failed, result = harness.run(updates_cache=str(blocker / 'updates.json'))
    assert 'cannot write the updates cache' in result['health']['updates']['cache']['error']
    assert any('updates_cache' in warning for warning in harness.warnings)
    assert by_name(result)['updates']['value'] == 1


@pytest.mark.parametrize('hours', [-1, 721])
def test_invalid_updates_cache_max_age_fails_before_measuring(harness, hours):
    failed, result = harness.run(updates_cache_max_age_hours=hours)
    assert failed and 'updates_cache_max_age_hours' in result['msg'] and harness.commands == []


# --------------------------------------------------------------------------- logs in the same module execution

def access_log(tmp_path, statuses):
    path = tmp_path / 'access.log'
    with open(str(path), 'a') as handle:
        for status in statuses:
            # the scan reads the real clock: lines of the last minute are within any look-back
            stamp = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() - 60))
            handle.write(json.dumps({'ts': stamp, 'status': status, 'path': '/v1/price'}) + '\n')
    return str(path)


def logs_options(tmp_path, **extra):
    options = {'state_file': str(tmp_path / 'state' / 'log_scan.json'), 'access_logs': [access_log(tmp_path, [])],
               'scan_journal': False, 'fail2ban': 'disabled', 'min_requests': 5}
    options.update(extra)
    return options


def fresh_sample(harness):
    harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']


def test_logs_are_scanned_in_the_same_execution_and_their_checks_follow_the_host_checks(harness, tmp_path):
    access_log(tmp_path, [200] * 18 + [502, 503])
    failed, result = harness.run(logs=logs_options(tmp_path))
    assert not failed
    names = [check['name'] for check in result['checks']]
    assert names[names.index('clock_sync') + 1:] == ['app_5xx_rate', 'pii_in_logs']
    assert by_name(result)['app_5xx_rate']['status'] == 'critical' and by_name(result)['app_5xx_rate']['value'] == 10.0
    assert result['changed'] is True and result['logs']['cursor']['written'] is True
    assert result['logs']['counts']['requests'] == 20 and result['logs']['summary']['status'] == 'critical'
    assert os.path.exists(str(tmp_path / 'state' / 'log_scan.json'))
    # nothing logged since: the cursor stays, nothing changed, nothing counted twice
    fresh_sample(harness)
    _failed, again = harness.run(logs=logs_options(tmp_path))
    assert again['changed'] is False and again['logs']['counts']['requests'] == 0
    assert by_name(again)['app_5xx_rate']['status'] == 'ok'


def test_the_log_scan_runs_after_the_cpu_sample(harness, tmp_path, monkeypatch):
    # What the scan makes other processes do (fail2ban-server answering it) is not the module's own CPU: inside the
    # sample it would count as the host's load (a database standby was judged critical that way).
    samples_left = []
    real_scan = host_health.scan

    def spy(module, params):
        samples_left.append(len(harness.stat_samples))
        return real_scan(module, params)

    monkeypatch.setattr(host_health, 'scan', spy)
    failed, _result = harness.run(logs=logs_options(tmp_path))
    assert not failed and samples_left == [0]  # both /proc/stat readings were taken before the scan


def test_logs_in_check_mode_predict_the_change_and_write_no_cursor(harness, tmp_path):
    access_log(tmp_path, [200] * 3)
    _failed, result = harness.run(logs=logs_options(tmp_path), _ansible_check_mode=True)
    assert result['changed'] is True and result['logs']['cursor']['written'] is False
    assert not os.path.exists(str(tmp_path / 'state'))


def test_without_logs_nothing_is_read_and_nothing_changes(harness):
    _failed, result = harness.run()
    assert result['logs'] is None and result['changed'] is False
    assert not any(check['name'] in ('app_5xx_rate', 'pii_in_logs') for check in result['checks'])


def test_invalid_logs_options_fail_before_measuring(harness, tmp_path):
    failed, result = harness.run(logs=logs_options(tmp_path, first_run_lookback_hours=-1))
    assert failed and 'invalid logs options' in result['msg'] and 'first_run_lookback_hours' in result['msg']
    assert harness.commands == []


def test_an_unwritable_log_cursor_fails_the_host_with_its_checks(harness, tmp_path):
    blocker = tmp_path / 'blocker'
    blocker.write_text('')
    access_log(tmp_path, [200])
    failed, result = harness.run(logs=logs_options(tmp_path, state_file=str(blocker / 'log_scan.json')))
    assert failed and result['msg'].startswith('logs: cannot write the cursor file')
    assert by_name(result)['memory']['status'] in ('ok', 'warning', 'critical') and 'app_5xx_rate' in by_name(result)


def test_real_host_smoke():
    """Run the module for real on this machine: it must finish and return sane, well-formed checks."""
    with set_module_args({'cpu_sample_seconds': 0.05, 'check_updates': False, 'expected_ports': []}):
        with mock.patch.object(basic.AnsibleModule, 'exit_json', exit_json):
            with pytest.raises(AnsibleExitJson) as excinfo:
                host_health.main()
    result = excinfo.value.result
    assert result['changed'] is False
    assert all(check['status'] in ('ok', 'warning', 'critical') for check in result['checks'])
    names = [check['name'] for check in result['checks']]
    assert 'memory' in names and 'cpu' in names and any(name.startswith('disk:') for name in names)
    assert result['health']['memory']['total_bytes'] > 0
    assert 0.0 <= result['health']['cpu']['percent'] <= 100.0


# --------------------------------------------------------------------------- CPU average from sysstat

SADF_FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'module_utils', 'fixtures', 'sadf')


def sadf_day(end, busy, interval=600, count=144):
    """sadf -j output (the shape of sysstat 12.6's, see the fixtures) of ``count`` records ending at ``end``."""
    with open(os.path.join(SADF_FIXTURES, 'debian12_sadc_1_3.json')) as handle:
        data = json.load(handle)
    template = data['sysstat']['hosts'][0]['statistics'][0]
    statistics = []
    for index in range(count):
        stamp = end - (count - 1 - index) * interval
        entry = json.loads(json.dumps(template))
        entry['timestamp'].update(date=time.strftime('%Y-%m-%d', time.gmtime(stamp)), time=time.strftime('%H:%M:%S', time.gmtime(stamp)),
                                  interval=interval)
        entry['cpu-load'][0].update(user=busy, system=0.0, iowait=0.0, idle=round(100.0 - busy, 2))
        statistics.append(entry)
    data['sysstat']['hosts'][0]['statistics'] = statistics
    return json.dumps(data)


def with_sysstat(harness, busy_today, busy_yesterday=None):
    """Today's and yesterday's data files in /var/log/sysstat (both saDD names, as sadc writes them)."""
    harness.exists.add('/var/log/sysstat')
    today = time.strftime('%d', time.localtime(harness.now))
    yesterday = time.strftime('%d', time.localtime(harness.now - 86400))
    start_of_today = harness.now - harness.now % 86400
    harness.exists.update({'/var/log/sysstat/sa' + today, '/var/log/sysstat/sa' + yesterday})
    # the records of today up to now, and the whole of yesterday
    harness.sadf['/var/log/sysstat/sa' + today] = (0, sadf_day(harness.now, busy_today, count=int((harness.now - start_of_today) // 600)), '')
    harness.sadf['/var/log/sysstat/sa' + yesterday] = (0, sadf_day(start_of_today, busy_yesterday if busy_yesterday is not None else busy_today), '')


def test_cpu_is_judged_on_the_sysstat_average_not_the_sample(harness):
    # the sample is 95 % busy (a burst), the last 24 h averaged 20 %: the readiness limit is about the average
    harness.stat_samples = ['cpu  0 0 0 1000 0 0 0 0 0 0\n', 'cpu  950 0 0 1050 0 0 0 0 0 0\n']
    with_sysstat(harness, busy_today=20.0)
    failed, result = harness.run()
    assert not failed
    check = by_name(result)['cpu']
    assert check['status'] == 'ok' and check['value'] == 20.0
    assert check['message'].startswith('CPU utilisation (24 h average, sysstat) is 20 %')
    cpu = result['health']['cpu']
    assert cpu['basis'] == 'average' and cpu['percent'] == 20.0 and cpu['sample_percent'] > 70.0
    assert cpu['history']['covered_seconds'] == 86400 and cpu['history']['samples'] == 144
    assert harness.warnings == []
    sadf_calls = [c for c in harness.commands if c[0].endswith('sadf')]
    assert sadf_calls and all(c[1] == '-j' and c[3:] == ['--', '-u'] for c in sadf_calls)


def test_cpu_average_over_the_limit_warns_although_the_sample_is_idle(harness):
    harness.stat_samples = ['cpu  0 0 0 1000 0 0 0 0 0 0\n', 'cpu  0 0 0 2000 0 0 0 0 0 0\n']
    with_sysstat(harness, busy_today=40.0, busy_yesterday=90.0)
    failed, result = harness.run()
    assert not failed
    check = by_name(result)['cpu']
    # 6 h today at 40 %, 18 h of yesterday (the part within the last 24 h) at 90 %
    assert check['value'] == 77.5 and check['status'] == 'warning' and check['alert'] == 'resource_exhaustion'
    assert 'peak 90.0 %' in check['message'] and check['details']['peak_percent'] == 90.0


def test_no_sysstat_data_falls_back_to_the_sample_and_says_so(harness):
    failed, result = harness.run()
    assert not failed
    check = by_name(result)['cpu']
    assert result['health']['cpu']['basis'] == 'sample' and check['value'] == result['health']['cpu']['sample_percent']
    assert 'no sysstat data: judged on a 0.01 s sample (no sysstat data directory (/var/log/sysstat, /var/log/sa))' in check['message']
    assert len(harness.warnings) == 1 and harness.warnings[0].startswith('host_health: no sysstat data')
    assert 'judged on a 0.01 s sample, not on the 24 h average' in harness.warnings[0]


def test_sysstat_not_installed_or_not_collecting(harness):
    harness.missing_bins.add('sadf')
    failed, result = harness.run()
    assert not failed and 'sadf not found, sysstat is not installed' in by_name(result)['cpu']['message']
    harness.missing_bins.discard('sadf')
    harness.exists.add('/var/log/sysstat')
    today = '/var/log/sysstat/sa' + time.strftime('%d', time.localtime(harness.now))
    harness.exists.add(today)
    with open(os.path.join(SADF_FIXTURES, 'debian12_boot_only.json')) as handle:
        harness.sadf[today] = (0, handle.read(), '')
    harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
    failed, result = harness.run()
    assert not failed
    message = by_name(result)['cpu']['message']
    assert 'no sysstat data: judged on a 0.01 s sample (no CPU record of the last 24 h in %s' % today in message


def test_unreadable_sysstat_file_is_named(harness):
    harness.exists.add('/var/log/sysstat')
    today = '/var/log/sysstat/sa' + time.strftime('%d', time.localtime(harness.now))
    harness.exists.add(today)
    harness.sadf[today] = (2, '', 'Invalid system activity file: %s\n' % today)
    failed, result = harness.run()
    assert not failed
    assert 'sadf -j %s failed (rc=2): Invalid system activity file' % today in by_name(result)['cpu']['message']
    assert result['health']['cpu']['basis'] == 'sample' and len(harness.warnings) == 1


def test_container_is_judged_on_its_cgroup_and_reports_the_host_wide_average(harness, monkeypatch):
    harness.exists.add('/run/.containerenv')
    usage = [100.0, 100.0]
    monkeypatch.setattr(host_health, 'cgroup_cpu_usage_seconds', lambda: usage.pop(0))
    monkeypatch.setattr(host_health, 'cgroup_cpu_quota', lambda: None)
    with_sysstat(harness, busy_today=95.0)
    failed, result = harness.run()
    assert not failed
    cpu = result['health']['cpu']
    assert cpu['basis'] == 'sample' and cpu['scope'] == 'container' and cpu['percent'] == 0.0
    assert cpu['history']['avg_percent'] == 95.0 and cpu['history']['scope'] == 'host'
    check = by_name(result)['cpu']
    assert check['status'] == 'ok' and "sysstat's 24 h average (95.0 %, peak 95.0 %)" in check['message']
    assert harness.warnings == []  # by design, not for want of data


def test_container_with_lxcfs_is_judged_on_the_average(harness, monkeypatch):
    harness.exists.add('/run/.containerenv')
    harness.files['/proc/self/mountinfo'] = MOUNTINFO + '160 123 0:70 /proc/stat /proc/stat rw,nosuid - fuse.lxcfs lxcfs rw\n'
    usage = [100.0, 100.0]
    monkeypatch.setattr(host_health, 'cgroup_cpu_usage_seconds', lambda: usage.pop(0))
    monkeypatch.setattr(host_health, 'cgroup_cpu_quota', lambda: None)
    with_sysstat(harness, busy_today=80.0)
    failed, result = harness.run()
    assert not failed
    cpu = result['health']['cpu']
    assert cpu['basis'] == 'average' and cpu['scope'] == 'container' and cpu['percent'] == 80.0
    assert by_name(result)['cpu']['status'] == 'warning'
    assert 'CPU utilisation of the container (24 h average, sysstat) is 80 %' in by_name(result)['cpu']['message']


def test_cpu_average_hours_zero_reads_no_history(harness):
    with_sysstat(harness, busy_today=95.0)
    failed, result = harness.run(cpu_average_hours=0)
    assert not failed
    assert not any(c[0].endswith('sadf') for c in harness.commands)
    assert result['health']['cpu']['basis'] == 'sample' and harness.warnings == []
    assert 'judged on a 0.01 s sample (cpu_average_hours=0)' in by_name(result)['cpu']['message']


@pytest.mark.parametrize('hours', [-1, 169])
def test_invalid_cpu_average_hours(harness, hours):
    failed, result = harness.run(cpu_average_hours=hours)
    assert failed and 'cpu_average_hours must be between 0 (sample only) and 168' in result['msg']


def test_sysstat_dir_option(harness):
    harness.exists.add('/srv/sa')
    today = time.strftime('%d', time.localtime(harness.now))
    harness.exists.add('/srv/sa/sa' + today)
    harness.sadf['/srv/sa/sa' + today] = (0, sadf_day(harness.now, 30.0, count=6), '')
    failed, result = harness.run(sysstat_dir='/srv/sa')
    assert not failed
    assert result['health']['cpu']['history']['files'] == ['/srv/sa/sa' + today]
    assert by_name(result)['cpu']['value'] == 30.0 and '1 h of data in the last 24 h' in by_name(result)['cpu']['message']


# ---------------------------------------------------------------------------------------------------- postgresql.service on Debian

def show_block(unit, active, sub):
    return 'Id=%s\nLoadState=loaded\nActiveState=%s\nSubState=%s\nMainPID=0\nMemoryCurrent=[not set]\nControlGroup=\n' % (unit, active, sub)


def pg_etc(tmp_path, *clusters):
    """A fake /etc/postgresql: (version, cluster, start.conf text or None)."""
    root = tmp_path / 'etc-postgresql'
    root.mkdir()
    for version, name, start in clusters:
        directory = root / version / name
        directory.mkdir(parents=True)
        (directory / 'postgresql.conf').write_text('# postgresql.conf\n')
        if start is not None:
            (directory / 'start.conf').write_text('# Automatic startup configuration\n%s\n' % start)
    return str(root)


def show_commands(harness):
    return [command for command in harness.commands if command[1:2] == ['show']]


def test_debian_postgresql_service_is_judged_by_its_stopped_cluster(harness, tmp_path):
    """The cluster is stopped (pg_ctlcluster 15 main stop), the wrapper postgresql.service stays active: critical."""
    etc = pg_etc(tmp_path, ('15', 'main', 'auto'), ('16', 'scratch', 'manual'))
    harness.exists.add('/etc/debian_version')
    harness.outputs['show'] = (0, '\n'.join([show_block('ssh.service', 'active', 'running'),
                                             show_block('postgresql@15-main.service', 'inactive', 'dead')]), '')
    harness.outputs['list-units'] = (0, '', '')
    failed, result = harness.run(services=['ssh.service', 'postgresql.service'], postgresql_etc_dir=etc)
    assert not failed
    assert show_commands(harness)[0][-2:] == ['ssh.service', 'postgresql@15-main.service']
    checks = by_name(result)
    assert 'service:postgresql.service' not in checks and 'service:postgresql@16-scratch.service' not in checks
    check = checks['service:postgresql@15-main.service']
    assert check['status'] == 'critical' and check['alert'] == 'service_down'
    assert check['message'] == 'postgresql@15-main.service is inactive (dead) (PostgreSQL cluster 15/main, judged for postgresql.service)'
    assert check['details']['expanded_from'] == 'postgresql.service' and check['details']['cluster'] == '15/main'
    assert [c['unit'] for c in result['health']['postgresql']['clusters']] == ['postgresql@15-main.service', 'postgresql@16-scratch.service']
    assert list(result['health']['services']) == ['ssh.service', 'postgresql@15-main.service']


def test_debian_postgresql_service_every_automatic_cluster_must_be_active(harness, tmp_path):
    etc = pg_etc(tmp_path, ('15', 'main', None), ('16', 'reports', 'auto'))
    harness.outputs['show'] = (0, '\n'.join([show_block('postgresql@15-main.service', 'active', 'running'),
                                             show_block('postgresql@16-reports.service', 'failed', 'failed')]), '')
    harness.outputs['list-units'] = (0, 'postgresql@16-reports.service loaded failed failed PostgreSQL Cluster 16-reports\n', '')
    # no /etc/debian_version: the cluster tree alone makes the layout Debian's
    harness.exists.add(etc)
    failed, result = harness.run(services=['postgresql'], postgresql_etc_dir=etc)
    assert not failed
    checks = by_name(result)
    assert checks['service:postgresql@15-main.service']['status'] == 'ok'
    assert checks['service:postgresql@16-reports.service']['status'] == 'critical'
    # the failed cluster unit is one of the expected services
    assert checks['failed_units']['status'] == 'critical'
    assert 'expected services among them: postgresql@16-reports.service' in checks['failed_units']['message']


@pytest.mark.parametrize('clusters, found', [
    ((), 'none'),
    ((('15', 'main', 'manual'),), '15/main (start.conf: manual)'),
])
def test_debian_db_host_without_an_automatic_cluster_is_critical(harness, tmp_path, clusters, found):
    etc = pg_etc(tmp_path, *clusters)
    harness.exists.add('/etc/debian_version')
    harness.outputs['show'] = (0, show_block('postgresql.service', 'active', 'exited'), '')
    failed, result = harness.run(services=['postgresql.service'], postgresql_etc_dir=etc)
    assert not failed
    check = by_name(result)['service:postgresql.service']
    assert check['status'] == 'critical' and check['alert'] == 'service_down'
    assert 'no PostgreSQL cluster set to start automatically was found under %s (clusters found: %s)' % (etc, found) in check['message']


def test_debian_host_without_any_postgresql_tree_is_critical(harness, tmp_path):
    harness.exists.add('/etc/debian_version')
    harness.outputs['show'] = (0, show_block('postgresql.service', 'active', 'exited'), '')
    failed, result = harness.run(services=['postgresql.service'], postgresql_etc_dir=str(tmp_path / 'absent'))
    assert not failed and by_name(result)['service:postgresql.service']['status'] == 'critical'


def test_postgresql_service_judged_itself_elsewhere(harness, tmp_path):
    """Not Debian (no /etc/debian_version, no cluster tree) or postgresql_layout=none: postgresql.service is the server unit."""
    etc = pg_etc(tmp_path, ('15', 'main', 'auto'))
    harness.outputs['show'] = (0, show_block('postgresql.service', 'active', 'running'), '')
    for args in ({'postgresql_etc_dir': str(tmp_path / 'absent')}, {'postgresql_etc_dir': etc, 'postgresql_layout': 'none'}):
        if args.get('postgresql_layout') == 'none':
            harness.exists.add('/etc/debian_version')
        harness.stat_samples = ['cpu  100 0 100 800 0 0 0 0 0 0\n', 'cpu  150 0 150 900 0 0 0 0 0 0\n']
        failed, result = harness.run(services=['postgresql.service'], **args)
        assert not failed and result['health']['postgresql'] is None
        assert by_name(result)['service:postgresql.service']['status'] == 'ok'
        assert show_commands(harness)[-1][-1] == 'postgresql.service'


def test_postgresql_layout_debian_forced(harness, tmp_path):
    etc = pg_etc(tmp_path, ('15', 'main', 'auto'))
    harness.outputs['show'] = (0, show_block('postgresql@15-main.service', 'active', 'running'), '')
    failed, result = harness.run(services=['postgresql.service'], postgresql_etc_dir=etc, postgresql_layout='debian')
    assert not failed and by_name(result)['service:postgresql@15-main.service']['status'] == 'ok'


def test_invalid_postgresql_layout(harness):
    failed, result = harness.run(services=['postgresql.service'], postgresql_layout='rhel')
    assert failed and 'postgresql_layout' in result['msg']
