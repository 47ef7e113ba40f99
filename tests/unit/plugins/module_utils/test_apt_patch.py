# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

from hypothesis import given, strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import apt_patch as ap

STATUS = """Package: libssl3
Status: install ok installed
Version: 3.0.11-1~deb12u1
Description: ssl
 continuation line: not a field

Package: dslab-tools
Status: hold ok installed
Version: 1.0

Package: removed-pkg
Status: deinstall ok config-files
Version: 0.9
"""

SIMULATION = """NOTE: This is only a simulation!
Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])
Inst linux-image-6.1.0-37-amd64 (6.1.140-1 Debian-Security:12/stable-security [amd64])
Inst dslab-libdemo [1.0] (1.1 DealerScope Lab:1.1/dslab-security [all])
Remv old-thing [1.2]
Conf libssl3 (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
"""

POLICY = """dslab-tools:
  Installed: 1.0
  Candidate: 1.1
  Version table:
     1.1 500
dslab-other:
  Installed: 2.0
  Candidate: 2.0
"""


def test_dpkg_status_versions_and_holds():
    status = ap.parse_dpkg_status(STATUS)
    assert status['libssl3'] == {'version': '3.0.11-1~deb12u1', 'hold': False, 'installed': True}
    assert status['dslab-tools']['hold'] is True
    assert status['removed-pkg']['installed'] is False
    assert ap.installed_versions(status) == {'libssl3': '3.0.11-1~deb12u1', 'dslab-tools': '1.0'}


def test_simulation_classifies_security_and_new_packages():
    upgrades, removals = ap.parse_simulation(SIMULATION)
    by_name = dict((u['name'], u) for u in upgrades)
    assert sorted(by_name) == ['dslab-libdemo', 'libssl3', 'linux-image-6.1.0-37-amd64', 'tzdata']
    assert by_name['libssl3']['security'] is True and by_name['libssl3']['current'] == '3.0.11-1~deb12u1'
    assert by_name['tzdata']['security'] is False
    assert by_name['dslab-libdemo']['security'] is True and by_name['dslab-libdemo']['candidate'] == '1.1'
    assert by_name['linux-image-6.1.0-37-amd64']['new'] is True
    assert removals == [{'name': 'old-thing', 'current': '1.2'}]


def test_custom_security_pattern():
    upgrades = ap.parse_simulation(SIMULATION, security_pattern=r'stable \[all\]')[0]
    assert [u['name'] for u in upgrades if u['security']] == ['tzdata']


def test_policy_candidates():
    assert ap.parse_policy_candidates(POLICY) == {'dslab-tools': {'installed': '1.0', 'candidate': '1.1'},
                                                  'dslab-other': {'installed': '2.0', 'candidate': '2.0'}}


def test_plan_security_mode_holds_excludes_and_reboot():
    upgrades = ap.parse_simulation(SIMULATION)[0]
    held = ap.parse_policy_candidates(POLICY)
    plan = ap.build_plan(upgrades, held, 'security', ['tzdata*'], ['linux-image-*', '*kernel*'])
    by_name = dict((e['name'], e) for e in plan)
    assert by_name['libssl3']['action'] == 'upgrade'
    assert by_name['tzdata']['action'] == 'skip' and 'excluded by pattern tzdata*' == by_name['tzdata']['skip_reason']
    assert by_name['linux-image-6.1.0-37-amd64']['action'] == 'dependency'
    assert by_name['linux-image-6.1.0-37-amd64']['reboot'] is True
    assert by_name['dslab-tools']['held'] is True and by_name['dslab-tools']['action'] == 'skip'
    assert 'dslab-other' not in by_name  # held but nothing newer
    assert ap.to_upgrade(plan) == ['dslab-libdemo', 'libssl3']


def test_plan_full_mode_upgrades_non_security():
    plan = ap.build_plan(ap.parse_simulation(SIMULATION)[0], {}, 'full', [], [])
    assert ap.to_upgrade(plan) == ['dslab-libdemo', 'libssl3', 'linux-image-6.1.0-37-amd64', 'tzdata']


def test_plan_security_mode_skips_non_security_with_reason():
    plan = ap.build_plan(ap.parse_simulation(SIMULATION)[0], {}, 'security', [], [])
    tz = [e for e in plan if e['name'] == 'tzdata'][0]
    assert tz['action'] == 'skip' and tz['skip_reason'] == 'not a security update (mode security)' and tz['reboot'] is False


def test_version_changes_and_render():
    changes = ap.version_changes({'a': '1', 'b': '2', 'c': '1'}, {'a': '1', 'b': '3', 'd': '1'})
    assert changes == [{'name': 'b', 'before': '2', 'after': '3'}, {'name': 'c', 'before': '1', 'after': None},
                       {'name': 'd', 'before': None, 'after': '1'}]
    assert ap.render_versions(changes, 'after') == 'b 3\nc (not installed)\nd 1\n'


MAPS = """55d0c0a00000-55d0c0a01000 r--p 00000000 00:2a 123 /usr/bin/python3.11
7f00-7f01 r--s 00000000 00:2a 456 /usr/lib/dslab/libdemo.so.1 (deleted)
7f01-7f02 rw-s 00000000 00:05 789 /dev/shm/something (deleted)
7f02-7f03 r-xp 00000000 00:2a 111 /memfd:x (deleted)
7f03-7f04 rw-p 00000000 00:00 0 [heap]
"""


def test_maps_deleted_only_package_trees():
    assert ap.parse_maps_deleted(MAPS) == {'/usr/lib/dslab/libdemo.so.1'}


def test_unit_of_v2_and_v1():
    assert ap.unit_of('0::/system.slice/dealerscope-api.service\n') == 'dealerscope-api.service'
    assert ap.unit_of('1:name=systemd:/system.slice/nginx.service\n2:cpu:/\n') == 'nginx.service'
    assert ap.unit_of('0::/user.slice/user-0.slice/session-3.scope\n') == 'session-3.scope'
    assert ap.unit_of('0::/\n') is None


def _proc(tmp_path, pid, maps, cgroup, comm='x', exe=None):
    base = tmp_path / str(pid)
    base.mkdir()
    (base / 'maps').write_text(maps)
    (base / 'cgroup').write_text(cgroup)
    (base / 'comm').write_text(comm + '\n')
    if exe:
        os.symlink(exe, str(base / 'exe'))


def test_stale_processes_and_restart_targets(tmp_path):
    _proc(tmp_path, 1, MAPS, '0::/init.scope\n', 'systemd')
    _proc(tmp_path, 200, MAPS, '0::/system.slice/dealerscope-api.service\n', 'python3')
    _proc(tmp_path, 300, '', '0::/system.slice/cron.service\n', 'cron', exe='/usr/sbin/cron (deleted)')
    _proc(tmp_path, 400, MAPS, '0::/system.slice/dbus.service\n', 'dbus-daemon')
    _proc(tmp_path, 500, MAPS, '0::/user.slice/user-0.slice/session-1.scope\n', 'bash')
    _proc(tmp_path, 600, 'x r--p 0 0 0 /usr/lib/ok.so\n', '0::/system.slice/nginx.service\n', 'nginx')
    procs = ap.stale_processes(str(tmp_path), own_pid=999)
    assert [p['pid'] for p in procs] == [1, 200, 300, 400, 500]
    assert procs[2]['files'] == ['/usr/sbin/cron']
    restart, skipped = ap.restart_targets(procs, ap.DEFAULT_RESTART_EXCLUDE)
    assert restart == ['cron.service', 'dealerscope-api.service']
    assert skipped == ['dbus.service', 'session-1.scope']
    assert ap.stale_processes(str(tmp_path), own_pid=200)[1]['pid'] == 300


def test_predict_restarts_from_dpkg_lists(tmp_path):
    info = tmp_path / 'info'
    info.mkdir()
    (info / 'dslab-libdemo.list').write_text('/.\n/usr\n/usr/lib/dslab/libdemo.so.1\n')
    (info / 'libssl3:amd64.list').write_text('/usr/lib/x86_64-linux-gnu/libssl.so.3\n')
    (info / 'other.list').write_text('/usr/bin/other\n')
    files = ap.dpkg_list_files(['dslab-libdemo', 'libssl3'], str(info))
    assert sorted(files) == ['dslab-libdemo', 'libssl3']
    procs = tmp_path / 'proc'
    procs.mkdir()
    _proc(procs, 1, '', '0::/init.scope\n')
    _proc(procs, 20, 'a r--s 0 0 0 /usr/lib/dslab/libdemo.so.1\n', '0::/system.slice/dealerscope-api.service\n')
    _proc(procs, 30, 'a r--p 0 0 0 /usr/lib/x86_64-linux-gnu/libssl.so.3\n', '0::/system.slice/nginx.service\n')
    _proc(procs, 40, 'a r--p 0 0 0 /usr/bin/other\n', '0::/system.slice/other.service\n')
    mapped = ap.mapped_package_files(str(procs))
    assert ap.predict_restarts(['dslab-libdemo', 'libssl3'], files, mapped) == ['dealerscope-api.service', 'nginx.service']
    assert ap.predict_restarts(['dslab-libdemo'], files, mapped) == ['dealerscope-api.service']


def test_reboot_state(tmp_path):
    assert ap.reboot_state(str(tmp_path)) == (False, [])
    (tmp_path / 'reboot-required.pkgs').write_text('dslab-kernel-stub\n')
    assert ap.reboot_state(str(tmp_path)) == (False, [])
    (tmp_path / 'reboot-required').write_text('')
    (tmp_path / 'reboot-required.pkgs').write_text('dslab-kernel-stub\nlinux-image-amd64\ndslab-kernel-stub\n')
    assert ap.reboot_state(str(tmp_path)) == (True, ['dslab-kernel-stub', 'linux-image-amd64'])


NAME = st.from_regex(r'[a-z][a-z0-9.+-]{0,15}', fullmatch=True)
VERSION = st.from_regex(r'[0-9][0-9a-z.~+-]{0,10}', fullmatch=True)


@given(st.lists(st.tuples(NAME, st.one_of(st.none(), VERSION), VERSION, st.booleans()), max_size=12, unique_by=lambda t: t[0]),
       st.sampled_from(['security', 'full']), st.lists(st.sampled_from(['a*', 'b*', 'lib*', 'x?z']), max_size=3))
def test_plan_properties(items, mode, exclude):
    text = '\n'.join('Inst %s%s (%s %s [all])' % (name, (' [%s]' % cur) if cur else '', new,
                                                  'Debian-Security:12/stable-security' if sec else 'Debian:12/stable')
                     for name, cur, new, sec in items)
    upgrades = ap.parse_simulation(text)[0]
    assert [u['name'] for u in upgrades] == [i[0] for i in items]
    plan = ap.build_plan(upgrades, {}, mode, exclude, [])
    assert sorted(e['name'] for e in plan) == sorted(i[0] for i in items)
    for entry in plan:
        if ap.matches_any(entry['name'], exclude):
            assert entry['action'] == 'skip'
        elif mode == 'security' and not entry['security'] and not entry['new']:
            assert entry['action'] == 'skip'
    # Nothing excluded is ever upgraded; in security mode nothing non-security that is installed.
    for name in ap.to_upgrade(plan):
        entry = [e for e in plan if e['name'] == name][0]
        assert not ap.matches_any(name, exclude)
        assert mode == 'full' or entry['security']


def test_unreadable_maps_are_reported(tmp_path):
    _proc(tmp_path, 10, MAPS, '0::/system.slice/a.service\n')
    _proc(tmp_path, 11, '', '0::/system.slice/b.service\n')
    os.remove(str(tmp_path / '11' / 'maps'))  # what root sees without CAP_SYS_PTRACE: no readable maps
    unreadable = []
    procs = ap.stale_processes(str(tmp_path), unreadable=unreadable)
    assert [p['pid'] for p in procs] == [10] and unreadable == [11]


def test_newer_kernel_is_needrestarts_kernel_check():
    installed = {'linux-image-6.1.0-37-amd64': '6.1.140-1', 'linux-image-6.1.0-9-amd64': '6.1.27-1', 'linux-image-amd64': '6.1.140-1'}
    assert ap.newer_kernel('6.1.0-9-amd64', installed) == '6.1.0-37-amd64'  # 37 > 9 numerically, not as text
    assert ap.newer_kernel('6.1.0-37-amd64', installed) is None
    assert ap.newer_kernel('6.8.0-1-generic', installed) is None  # a container: the running kernel is not ours
    assert ap.newer_kernel('6.1.0-9-amd64', {'linux-image-amd64': '6.1.140-1'}) is None
