# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import collections
import ipaddress
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import host_health as hh
from ansible_collections.dealerscope.ops.plugins.module_utils.host_health import (
    DEFAULT_EXCLUDE_FSTYPES,
    cgroup_cpu_percent,
    cgroup_cpu_quota,
    cgroup_cpu_usage_seconds,
    cgroup_memory_limit,
    chronyd_options,
    clock_state,
    cpu_percent,
    evaluate,
    listening_ports,
    match_show_blocks,
    memory_usage,
    normalize_unit,
    parse_apt_simulation,
    parse_chronyc_tracking,
    parse_failed_units,
    parse_loadavg,
    parse_meminfo,
    parse_mountinfo,
    parse_proc_mounts,
    parse_proc_net_tcp,
    parse_proc_stat_cpu,
    parse_systemctl_show,
    select_mounts,
    statvfs_usage,
    unit_memory,
    unit_state,
)

# /proc/self/mountinfo of a podman container running systemd (shortened).
CONTAINER_MOUNTINFO = """\
1067 1003 0:95 / / rw,relatime - overlay overlay rw,lowerdir=/l/1:/l/2,upperdir=/u,workdir=/w
1068 1067 0:98 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1069 1067 0:99 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1070 1067 0:100 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
1071 1070 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
1072 1067 254:0 /containers/abc/userdata/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw
1073 1067 254:0 /containers/abc/userdata/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
1074 1067 254:0 /containers/abc/userdata/resolv.conf /etc/resolv.conf ro,relatime - ext4 /dev/vda rw
1075 1067 254:0 /volumes/pgdata/_data /var/lib/postgresql rw,relatime shared:1 - ext4 /dev/vda rw
1076 1067 254:0 /volumes/backup/_data /srv/backup\\040dir rw,relatime - ext4 /dev/vda rw
1077 1067 0:101 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=100k
1078 1069 0:102 / /dev/mqueue rw - mqueue mqueue rw
1079 1067 259:1 / /data rw,relatime master:3 - xfs /dev/nvme0n1p1 rw
1080 1067 259:1 /sub /data-bind rw,relatime - xfs /dev/nvme0n1p1 rw
"""

FILES = {'/etc/hostname', '/etc/hosts', '/etc/resolv.conf'}


def fake_isdir(path):
    return path not in FILES


StatVfs = collections.namedtuple('StatVfs', 'f_bsize f_frsize f_blocks f_bfree f_bavail f_files f_ffree f_favail f_flag f_namemax')


def vfs(blocks=1000, bfree=400, bavail=350, files=100, ffree=75, frsize=4096):
    return StatVfs(frsize, frsize, blocks, bfree, bavail, files, ffree, ffree, 0, 255)


PARAMS = dict(
    services=[], memory_services=[], service_memory_limit_mb=512, service_memory_warn_percent=80,
    disk_mounts=[], disk_exclude_fstypes=list(DEFAULT_EXCLUDE_FSTYPES), disk_warn_percent=80, disk_crit_percent=90,
    inode_warn_percent=80, inode_crit_percent=90, memory_warn_percent=85, memory_crit_percent=95,
    cpu_sample_seconds=0.5, cpu_limit_percent=70, cpu_crit_percent=90, check_updates=True,
    security_updates_status='warning', clock_max_offset_ms=100, expected_ports=[],
)


def by_name(checks):
    return dict((check['name'], check) for check in checks)


# --------------------------------------------------------------------------- mounts

def test_parse_mountinfo_fields_and_escapes():
    mounts = parse_mountinfo(CONTAINER_MOUNTINFO)
    assert len(mounts) == 14
    root = mounts[0]
    assert root == {'mount': '/', 'root': '/', 'device': '0:95', 'options': ['rw', 'relatime'], 'fstype': 'overlay', 'source': 'overlay'}
    pg = [m for m in mounts if m['mount'] == '/var/lib/postgresql'][0]  # optional field "shared:1" before the separator
    assert pg['fstype'] == 'ext4' and pg['root'] == '/volumes/pgdata/_data' and pg['device'] == '254:0'
    assert any(m['mount'] == '/srv/backup dir' for m in mounts)


def test_select_mounts_container():
    selected = select_mounts(parse_mountinfo(CONTAINER_MOUNTINFO), DEFAULT_EXCLUDE_FSTYPES, isdir=fake_isdir)
    # overlay root kept; pseudo filesystems and /etc/hosts-style file binds dropped; the two volumes of /dev/vda
    # are one filesystem, checked once; the xfs bind of a subdirectory folds into /data.
    assert [m['mount'] for m in selected] == ['/', '/var/lib/postgresql', '/data']


def test_select_mounts_without_isdir_still_drops_known_container_files():
    selected = select_mounts(parse_mountinfo(CONTAINER_MOUNTINFO), DEFAULT_EXCLUDE_FSTYPES)
    assert '/etc/hosts' not in [m['mount'] for m in selected]
    assert '/etc/resolv.conf' not in [m['mount'] for m in selected]


def test_select_mounts_only_keeps_listed_mounts_without_dedupe():
    selected = select_mounts(parse_mountinfo(CONTAINER_MOUNTINFO), DEFAULT_EXCLUDE_FSTYPES, only=['/data-bind', '/data', '/run', '/nope'],
                             isdir=fake_isdir)
    assert [m['mount'] for m in selected] == ['/run', '/data', '/data-bind']


def test_select_mounts_stacked_mount_point_uses_top_mount():
    text = ('30 1 8:1 / / rw - ext4 /dev/sda1 rw\n'
            '31 30 8:2 / /var rw - ext4 /dev/sda2 rw\n'
            '32 30 8:3 / /var rw - xfs /dev/sdb1 rw\n')
    selected = select_mounts(parse_mountinfo(text), DEFAULT_EXCLUDE_FSTYPES)
    assert [(m['mount'], m['device']) for m in selected] == [('/', '8:1'), ('/var', '8:3')]


def test_select_mounts_prefers_the_filesystem_root_of_a_device():
    text = ('30 1 8:1 /srv/x /srv/x-bind rw - ext4 /dev/sda1 rw\n'
            '31 1 8:1 / /srv rw - ext4 /dev/sda1 rw\n')
    assert [m['mount'] for m in select_mounts(parse_mountinfo(text), [])] == ['/srv']


def test_parse_proc_mounts():
    mounts = parse_proc_mounts('overlay / overlay rw,relatime 0 0\nproc /proc proc rw 0 0\n/dev/sda1 /my\\040data ext4 rw 0 0\n')
    assert [(m['mount'], m['fstype']) for m in mounts] == [('/', 'overlay'), ('/proc', 'proc'), ('/my data', 'ext4')]
    assert mounts[0]['device'] is None


def test_statvfs_usage_like_df():
    usage = statvfs_usage('/', vfs(blocks=1000, bfree=400, bavail=350, files=100, ffree=75))
    assert usage['size_bytes'] == 1000 * 4096
    assert usage['used_bytes'] == 600 * 4096
    assert usage['avail_bytes'] == 350 * 4096
    assert usage['used_percent'] == round(100.0 * 600 / 950, 1)  # reserved blocks count as used
    assert usage['inodes_used'] == 25 and usage['inodes_percent'] == 25.0


def test_statvfs_usage_without_inodes_or_blocks():
    usage = statvfs_usage('/x', vfs(blocks=0, bfree=0, bavail=0, files=0, ffree=0))
    assert usage['used_percent'] is None
    assert usage['inodes_percent'] is None


@given(st.integers(0, 10 ** 9), st.integers(0, 10 ** 9), st.integers(0, 10 ** 9), st.integers(0, 10 ** 7), st.integers(0, 10 ** 7))
def test_statvfs_percentages_are_bounded(blocks, bfree, bavail, files, ffree):
    bfree = min(bfree, blocks)
    bavail = min(bavail, bfree)
    ffree = min(ffree, files)
    usage = statvfs_usage('/', vfs(blocks=blocks, bfree=bfree, bavail=bavail, files=files, ffree=ffree))
    for key in ('used_percent', 'inodes_percent'):
        assert usage[key] is None or 0.0 <= usage[key] <= 100.0
    assert usage['used_bytes'] >= 0


@given(st.text(alphabet=st.characters(blacklist_categories=('Cs', 'Cc'), blacklist_characters='\\'), min_size=1, max_size=30))
def test_mountinfo_escaped_mount_point_roundtrip(name):
    path = '/' + name
    escaped = ''.join('\\%03o' % ord(c) if c in ' \t\n' else c for c in path)
    line = '40 1 8:1 / %s rw - ext4 /dev/sda1 rw' % escaped
    assert parse_mountinfo(line)[0]['mount'] == path


# --------------------------------------------------------------------------- memory

MEMINFO = """\
MemTotal:        4000000 kB
MemFree:          500000 kB
MemAvailable:    1000000 kB
Buffers:          100000 kB
Cached:          1500000 kB
HugePages_Total:       0
"""


def test_parse_meminfo():
    info = parse_meminfo(MEMINFO)
    assert info['MemTotal'] == 4000000 * 1024
    assert info['HugePages_Total'] == 0


def test_memory_usage_host():
    usage = memory_usage(parse_meminfo(MEMINFO))
    assert usage['ceiling'] == 'host'
    assert usage['percent'] == 75.0
    assert usage['used_bytes'] == 3000000 * 1024


def test_memory_usage_container_limit_is_the_ceiling():
    usage = memory_usage(parse_meminfo(MEMINFO), {'limit_bytes': 1024 ** 3, 'used_bytes': 900 * 1024 ** 2})
    assert usage['ceiling'] == 'cgroup'
    assert usage['cgroup_percent'] == round(100.0 * 900 / 1024, 1)
    assert usage['percent'] == usage['cgroup_percent']
    assert usage['host_percent'] == 75.0


def test_memory_usage_host_worse_than_container():
    usage = memory_usage(parse_meminfo(MEMINFO), {'limit_bytes': 1024 ** 3, 'used_bytes': 10 * 1024 ** 2})
    assert usage['ceiling'] == 'host'
    assert usage['percent'] == 75.0
    assert usage['cgroup_percent'] == 1.0


def test_memory_usage_limit_above_memtotal_is_ignored():
    usage = memory_usage(parse_meminfo(MEMINFO), {'limit_bytes': 8 * 1024 ** 3, 'used_bytes': 7 * 1024 ** 3})
    assert usage['ceiling'] == 'host' and usage['cgroup_limit_bytes'] is None and usage['percent'] == 75.0


def test_memory_usage_without_memavailable():
    usage = memory_usage(parse_meminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n'))
    assert usage['percent'] == 50.0


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limit_walks_up_to_tightest_ancestor(tmp_path):
    root = tmp_path / 'cg'
    _write(root / 'memory.max', '2147483648\n')
    _write(root / 'memory.current', '1500000000\n')
    _write(root / 'memory.stat', 'anon 1\ninactive_file 500000000\n')
    _write(root / 'user.slice' / 'memory.max', 'max\n')
    _write(root / 'user.slice' / 'session-1.scope' / 'memory.max', 'max\n')
    result = cgroup_memory_limit('0::/user.slice/session-1.scope\n', str(root))
    assert result == {'limit_bytes': 2147483648, 'used_bytes': 1000000000, 'cgroup': str(root)}


def test_cgroup_v2_inner_limit_wins(tmp_path):
    root = tmp_path / 'cg'
    _write(root / 'memory.max', '2147483648\n')
    _write(root / 'memory.current', '1\n')
    _write(root / 'app' / 'memory.max', '1073741824\n')
    _write(root / 'app' / 'memory.current', '536870912\n')
    result = cgroup_memory_limit('0::/app\n', str(root))
    assert result['limit_bytes'] == 1073741824 and result['used_bytes'] == 536870912


def test_cgroup_unlimited(tmp_path):
    root = tmp_path / 'cg'
    _write(root / 'memory.max', 'max\n')
    assert cgroup_memory_limit('0::/\n', str(root)) is None
    assert cgroup_memory_limit('', str(root)) is None


def test_cgroup_v1_limit(tmp_path):
    root = tmp_path / 'cg'
    _write(root / 'memory' / 'memory.limit_in_bytes', '536870912\n')
    _write(root / 'memory' / 'memory.usage_in_bytes', '300000000\n')
    _write(root / 'memory' / 'memory.stat', 'cache 5\ntotal_inactive_file 100000000\n')
    _write(root / 'cpu' / 'cpu.shares', '1024\n')
    result = cgroup_memory_limit('4:cpu,cpuacct:/\n3:memory:/\n0::/\n', str(root))
    assert result['limit_bytes'] == 536870912 and result['used_bytes'] == 200000000


def test_cgroup_v1_unlimited_is_huge_number(tmp_path):
    root = tmp_path / 'cg'
    _write(root / 'memory' / 'memory.limit_in_bytes', '9223372036854771712\n')
    assert cgroup_memory_limit('3:memory:/\n', str(root)) is None


# --------------------------------------------------------------------------- cpu

def test_parse_proc_stat_cpu():
    text = 'cpu  100 5 50 800 20 1 2 3 40 0\ncpu0 1 1 1 1 1 1 1 1 1 1\nintr 1\n'
    busy, total = parse_proc_stat_cpu(text)
    assert total == 100 + 5 + 50 + 800 + 20 + 1 + 2 + 3
    assert busy == total - 820
    assert parse_proc_stat_cpu('intr 1\n') is None


def test_cpu_percent_subtracts_own_time_and_clamps():
    assert cpu_percent((100, 1000), (300, 1400)) == 50.0
    assert cpu_percent((100, 1000), (300, 1400), own_jiffies=100) == 25.0
    assert cpu_percent((100, 1000), (300, 1400), own_jiffies=1000) == 0.0
    assert cpu_percent((100, 1000), (100, 1000)) is None
    assert cpu_percent(None, (1, 2)) is None


@given(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.integers(0, 10 ** 4))
def test_cpu_percent_bounded(busy0, idle0, delta, own):
    first = (busy0, busy0 + idle0)
    second = (busy0 + delta // 2, busy0 + idle0 + delta)
    value = cpu_percent(first, second, own)
    assert value is None or 0.0 <= value <= 100.0


def test_cgroup_cpu_v2(tmp_path):
    _write(tmp_path / 'cpu.stat', 'usage_usec 2500000\nuser_usec 2000000\n')
    _write(tmp_path / 'cpu.max', '150000 100000\n')
    assert cgroup_cpu_usage_seconds(str(tmp_path)) == 2.5
    assert cgroup_cpu_quota(str(tmp_path)) == 1.5
    _write(tmp_path / 'cpu.max', 'max 100000\n')
    assert cgroup_cpu_quota(str(tmp_path)) is None


def test_cgroup_cpu_v1(tmp_path):
    _write(tmp_path / 'cpuacct' / 'cpuacct.usage', '23079916088\n')
    _write(tmp_path / 'cpu' / 'cpu.cfs_quota_us', '-1\n')
    _write(tmp_path / 'cpu' / 'cpu.cfs_period_us', '100000\n')
    assert cgroup_cpu_usage_seconds(str(tmp_path)) == pytest.approx(23.079916088)
    assert cgroup_cpu_quota(str(tmp_path)) is None
    _write(tmp_path / 'cpu' / 'cpu.cfs_quota_us', '50000\n')
    assert cgroup_cpu_quota(str(tmp_path)) == 0.5
    assert cgroup_cpu_usage_seconds(str(tmp_path / 'missing')) is None


def test_cgroup_cpu_percent():
    assert cgroup_cpu_percent(10.0, 10.5, 0.5, 2) == 50.0
    assert cgroup_cpu_percent(10.0, 10.5, 0.5, 2, own_seconds=0.25) == 25.0
    assert cgroup_cpu_percent(10.0, 10.5, 0.5, 0.5) == 100.0  # clamped
    assert cgroup_cpu_percent(None, 10.5, 0.5, 2) is None
    assert cgroup_cpu_percent(10.0, 10.5, 0, 2) is None


def test_parse_loadavg():
    assert parse_loadavg('0.52 0.58 0.59 2/345 12345\n') == [0.52, 0.58, 0.59]
    assert parse_loadavg('') is None


# --------------------------------------------------------------------------- sockets

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F40 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   999        0 3 1 0 20 4 30 10 -1
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


@pytest.mark.skipif(socket.htonl(1) == 1, reason='fixtures are little-endian /proc/net/tcp lines')
def test_parse_proc_net_tcp_listening_only():
    sockets = listening_ports(parse_proc_net_tcp(TCP, 'tcp') + parse_proc_net_tcp(TCP6, 'tcp6'))
    assert sockets == [
        {'address': '0.0.0.0', 'port': 22, 'family': 'tcp'},
        {'address': '::', 'port': 22, 'family': 'tcp6'},
        {'address': '::1', 'port': 80, 'family': 'tcp6'},
        {'address': '127.0.0.1', 'port': 8000, 'family': 'tcp'},
    ]


def _proc_hex(packed):
    """Encode an address the way the kernel prints it: each 32-bit word in host byte order."""
    words = struct.unpack('!%dI' % (len(packed) // 4), packed)
    return ''.join('%08X' % socket.ntohl(word) if socket.htonl(1) != 1 else '%08X' % word for word in words)


@settings(max_examples=200)
@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.integers(1, 65535), st.booleans())
def test_proc_net_tcp_roundtrip(address, port, listening):
    family = 'tcp' if address.version == 4 else 'tcp6'
    line = '   0: %s:%04X %s:0000 %s 00000000:00000000' % (_proc_hex(address.packed), port, '0' * len(_proc_hex(address.packed)),
                                                           '0A' if listening else '01')
    sockets = parse_proc_net_tcp('header\n' + line + '\n', family)
    if listening:
        assert sockets == [{'address': str(address) if address.version == 4 else socket.inet_ntop(socket.AF_INET6, address.packed),
                            'port': port, 'family': family}]
        assert ipaddress.ip_address(sockets[0]['address']) == address
    else:
        assert sockets == []


# --------------------------------------------------------------------------- systemd

SHOW = """\
Id=dealerscope-api.service
LoadState=loaded
ActiveState=active
SubState=running
MainPID=412
MemoryCurrent=58720256
ControlGroup=/system.slice/dealerscope-api.service

MainPID=0
Id=ssh.service
LoadState=loaded
ActiveState=failed
SubState=failed
MemoryCurrent=[not set]
ControlGroup=

Id=nope.service
LoadState=not-found
ActiveState=inactive
SubState=dead
MainPID=0
MemoryCurrent=18446744073709551615
ControlGroup=
"""


def test_parse_systemctl_show_and_states():
    blocks = parse_systemctl_show(SHOW)
    assert len(blocks) == 3
    matched = match_show_blocks(['dealerscope-api.service', 'sshd', 'nope.service'], blocks)
    api = unit_state(matched['dealerscope-api.service'])
    assert api['active_state'] == 'active' and api['main_pid'] == 412 and api['memory_current_bytes'] == 58720256
    ssh = unit_state(matched['sshd'])  # alias matched by position
    assert ssh['id'] == 'ssh.service' and ssh['active_state'] == 'failed' and ssh['main_pid'] is None
    assert ssh['memory_current_bytes'] is None and ssh['control_group'] is None
    nope = unit_state(matched['nope.service'])
    assert nope['load_state'] == 'not-found' and nope['memory_current_bytes'] is None


def test_match_show_blocks_by_id_when_counts_differ():
    blocks = parse_systemctl_show(SHOW)[:2]
    matched = match_show_blocks(['ssh', 'dealerscope-api.service', 'nope.service'], blocks)
    assert matched['ssh']['Id'] == 'ssh.service'
    assert matched['dealerscope-api.service']['MainPID'] == '412'
    assert matched['nope.service'] == {}


def test_normalize_unit():
    assert normalize_unit('ssh') == 'ssh.service'
    assert normalize_unit('postgresql@15-main') == 'postgresql@15-main.service'
    assert normalize_unit('cron.timer') == 'cron.timer'


def test_parse_failed_units():
    text = 'logrotate.service loaded failed failed Rotate log files\n\u25cf x.mount loaded failed failed X\n\n'
    assert parse_failed_units(text) == ['logrotate.service', 'x.mount']
    assert parse_failed_units('') == []


def test_unit_memory_sources(tmp_path):
    proc = tmp_path / 'proc'
    cg = tmp_path / 'cg'
    _write(proc / '10' / 'status', 'Name:\tgunicorn\nVmRSS:\t   10240 kB\n')
    _write(proc / '11' / 'status', 'Name:\tgunicorn\nVmRSS:\t    2048 kB\n')
    _write(proc / '12' / 'status', 'Name:\tkthread\n')
    _write(cg / 'system.slice' / 'api.service' / 'cgroup.procs', '10\n')
    _write(cg / 'system.slice' / 'api.service' / 'worker' / 'cgroup.procs', '11\n12\n')
    assert unit_memory({'memory_current_bytes': 5}, str(cg), str(proc)) == (5, 'MemoryCurrent')
    state = {'memory_current_bytes': None, 'control_group': '/system.slice/api.service', 'main_pid': 10}
    assert unit_memory(state, str(cg), str(proc)) == (12288 * 1024, 'cgroup_rss')
    state['control_group'] = '/system.slice/gone.service'
    assert unit_memory(state, str(cg), str(proc)) == (10240 * 1024, 'main_pid_rss')
    state['main_pid'] = None
    assert unit_memory(state, str(cg), str(proc)) == (None, None)


def test_unit_memory_cgroup_v1_systemd_hierarchy(tmp_path):
    proc = tmp_path / 'proc'
    cg = tmp_path / 'cg'
    _write(proc / '7' / 'status', 'VmRSS:\t100 kB\n')
    _write(cg / 'systemd' / 'system.slice' / 'a.service' / 'cgroup.procs', '7\n')
    state = {'memory_current_bytes': None, 'control_group': '/system.slice/a.service', 'main_pid': None}
    assert unit_memory(state, str(cg), str(proc)) == (102400, 'cgroup_rss')


# --------------------------------------------------------------------------- updates

APT = """\
NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  libssl3 openssl tzdata
Inst libssl3 [3.0.15-1~deb12u1] (3.0.16-1~deb12u1 Debian-Security:12/stable-security [amd64])
Inst openssl [3.0.15-1~deb12u1] (3.0.16-1~deb12u1 Debian-Security:12/stable-security [amd64]) []
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])
Inst linux-image-6.1.0-37-amd64 (6.1.140-1 Debian:12.11/stable [amd64])
Inst libfoo [1.0] (1.1 Ubuntu:22.04/jammy-security [amd64])
Conf libssl3 (3.0.16-1~deb12u1 Debian-Security:12/stable-security [amd64])
Remv oldthing [1.0]
"""


def test_parse_apt_simulation():
    updates = parse_apt_simulation(APT)
    assert [u['name'] for u in updates] == ['libssl3', 'openssl', 'tzdata', 'linux-image-6.1.0-37-amd64', 'libfoo']
    assert [u['name'] for u in updates if u['security']] == ['libssl3', 'openssl', 'libfoo']
    assert updates[0]['old'] == '3.0.15-1~deb12u1' and updates[0]['new'] == '3.0.16-1~deb12u1'
    assert updates[3]['old'] is None and updates[3]['origin'].startswith('Debian:12.11/stable')
    assert parse_apt_simulation('Reading package lists...\n0 upgraded, 0 newly installed.\n') == []


# --------------------------------------------------------------------------- clock

CHRONY_OK = """\
Reference ID    : A29FC87B (162.159.200.123)
Stratum         : 4
Ref time (UTC)  : Mon Jun 02 10:00:00 2025
System time     : 0.000412000 seconds slow of NTP time
Last offset     : -0.000123 seconds
Leap status     : Normal
"""
CHRONY_UNSYNCED = """\
Reference ID    : 00000000 ()
Stratum         : 0
System time     : 0.000000000 seconds fast of NTP time
Leap status     : Not synchronised
"""


def test_parse_chronyc_tracking():
    tracking = parse_chronyc_tracking(CHRONY_OK)
    assert tracking == {'leap_status': 'Normal', 'offset_ms': -0.412, 'reference': 'A29FC87B (162.159.200.123)'}
    fast = parse_chronyc_tracking('System time     : 1.5 seconds fast of NTP time\n')
    assert fast['offset_ms'] == 1500.0 and fast['leap_status'] is None


def test_chronyd_options(tmp_path):
    _write(tmp_path / '1' / 'cmdline', '/sbin/init\0')
    _write(tmp_path / '55' / 'cmdline', '/usr/sbin/chronyd\0-F\0001\0-x\0')
    _write(tmp_path / 'self' / 'cmdline', 'python\0')
    assert chronyd_options(str(tmp_path)) == ['-F', '1', '-x']
    os.remove(str(tmp_path / '55' / 'cmdline'))
    assert chronyd_options(str(tmp_path)) is None
    assert chronyd_options(str(tmp_path / 'missing')) is None


def test_clock_checks():
    ok = by_name(evaluate(PARAMS, {'clock': clock_state(tracking=parse_chronyc_tracking(CHRONY_OK), source='chronyc')}))['clock_sync']
    assert ok['status'] == 'ok' and ok['value'] == -0.412 and ok['threshold'] == 100
    far = clock_state(tracking=dict(parse_chronyc_tracking(CHRONY_OK), offset_ms=-250.0), source='chronyc')
    check = by_name(evaluate(PARAMS, {'clock': far}))['clock_sync']
    assert check['status'] == 'warning' and 'offset -250.0 ms' in check['message']
    container = clock_state(tracking=parse_chronyc_tracking(CHRONY_UNSYNCED), chronyd_args=['-F', '1', '-x'], source='chronyc')
    check = by_name(evaluate(PARAMS, {'clock': container}))['clock_sync']
    assert check['status'] == 'warning'
    assert 'Not synchronised' in check['message'] and '-x' in check['message']
    assert check['details']['chronyd_no_clock_control'] is True
    timedatectl = by_name(evaluate(PARAMS, {'clock': clock_state(ntp_synchronized=True, source='timedatectl')}))['clock_sync']
    assert timedatectl['status'] == 'ok' and timedatectl['value'] is None
    unknown = by_name(evaluate(PARAMS, {'clock': clock_state(error='neither chronyc nor timedatectl is installed')}))['clock_sync']
    assert unknown['status'] == 'warning' and 'neither chronyc' in unknown['message']


# --------------------------------------------------------------------------- evaluate

def _health(**overrides):
    health = {
        'services': {},
        'failed_units': [],
        'listening': [],
        'mounts': [],
        'memory': memory_usage(parse_meminfo(MEMINFO)),
        'cpu': {'percent': 10.0, 'cpus': 2, 'sample_seconds': 0.5},
        'loadavg': [0.5, 1.0, 4.0],
        'updates': {'supported': True, 'security': [], 'other_count': 0, 'error': None},
        'reboot_required': {'required': False, 'packages': []},
        'clock': clock_state(ntp_synchronized=True, source='timedatectl'),
    }
    health.update(overrides)
    return health


def test_evaluate_all_ok_and_order():
    checks = evaluate(dict(PARAMS, memory_warn_percent=80, memory_crit_percent=90), _health())
    assert [c['name'] for c in checks] == ['failed_units', 'memory', 'cpu', 'updates', 'reboot_required', 'clock_sync']
    assert by_name(checks)['memory']['status'] == 'ok'
    cpu = by_name(checks)['cpu']
    assert cpu['details']['load_per_cpu'] == [0.25, 0.5, 2.0] and 'load per CPU 0.25/0.50/2.00' in cpu['message']


def test_service_checks():
    services = {
        'dealerscope-api.service': dict(unit_state({'Id': 'dealerscope-api.service', 'LoadState': 'loaded', 'ActiveState': 'active',
                                                    'SubState': 'running', 'MainPID': '412'}),
                                        memory_bytes=450 * 1048576, memory_source='MemoryCurrent'),
        'ssh.service': unit_state({'Id': 'ssh.service', 'LoadState': 'loaded', 'ActiveState': 'failed', 'SubState': 'failed'}),
        'nope.service': unit_state({'Id': 'nope.service', 'LoadState': 'not-found', 'ActiveState': 'inactive', 'SubState': 'dead'}),
        'broken.service': dict(unit_state({}), error='systemctl not found'),
    }
    params = dict(PARAMS, services=list(services), memory_services=['dealerscope-api.service', 'ssh.service'])
    checks = by_name(evaluate(params, _health(services=services, failed_units=['ssh.service', 'logrotate.service'])))
    assert checks['service:dealerscope-api.service']['status'] == 'ok'
    assert checks['service:dealerscope-api.service']['alert'] is None
    assert checks['service:ssh.service']['status'] == 'critical' and checks['service:ssh.service']['alert'] == 'service_down'
    assert 'not installed' in checks['service:nope.service']['message']
    assert checks['service:broken.service']['status'] == 'critical' and 'systemctl not found' in checks['service:broken.service']['message']
    memory = checks['service_memory:dealerscope-api.service']
    assert memory['status'] == 'warning' and memory['value'] == 450.0 and memory['threshold'] == 409.6
    assert memory['alert'] == 'resource_exhaustion' and memory['details']['source'] == 'MemoryCurrent'
    assert checks['service_memory:ssh.service']['status'] == 'warning' and checks['service_memory:ssh.service']['value'] is None
    failed = checks['failed_units']
    assert failed['status'] == 'critical' and failed['value'] == 2 and failed['alert'] == 'service_down'
    assert failed['details'] == {'units': ['ssh.service', 'logrotate.service']}


def test_failed_units_not_ours_is_warning():
    checks = by_name(evaluate(dict(PARAMS, services=['ssh']), _health(failed_units=['logrotate.service'])))
    assert checks['failed_units']['status'] == 'warning' and checks['failed_units']['alert'] is None
    checks = by_name(evaluate(dict(PARAMS, services=['ssh']), _health(failed_units=['ssh.service'])))
    assert checks['failed_units']['status'] == 'critical'


@given(st.floats(0, 2000, allow_nan=False), st.integers(1, 4096), st.integers(1, 100))
def test_service_memory_status_matches_thresholds(mb, limit, warn_percent):
    services = {'a.service': dict(unit_state({'ActiveState': 'active'}), memory_bytes=int(mb * 1048576), memory_source='MemoryCurrent')}
    params = dict(PARAMS, memory_services=['a.service'], service_memory_limit_mb=limit, service_memory_warn_percent=warn_percent)
    check = by_name(evaluate(params, _health(services=services)))['service_memory:a.service']
    value = check['value']
    if value >= limit:
        assert check['status'] == 'critical'
    elif value >= round(limit * warn_percent / 100.0, 1):
        assert check['status'] == 'warning'
    else:
        assert check['status'] == 'ok'


def test_listening_checks():
    listening = [{'address': '0.0.0.0', 'port': 22, 'family': 'tcp'}, {'address': '::', 'port': 22, 'family': 'tcp6'}]
    checks = by_name(evaluate(dict(PARAMS, expected_ports=[22, 8000]), _health(listening=listening)))
    assert checks['listening:22']['status'] == 'ok' and checks['listening:22']['details']['addresses'] == ['0.0.0.0', '::']
    assert checks['listening:8000']['status'] == 'critical' and checks['listening:8000']['alert'] == 'service_down'


def test_disk_checks():
    mounts = [dict(statvfs_usage('/', vfs(blocks=100, bfree=15, bavail=15, files=100, ffree=50)), fstype='overlay'),
              dict(statvfs_usage('/var', vfs(blocks=100, bfree=5, bavail=5, files=0, ffree=0)), fstype='btrfs'),
              {'mount': '/gone', 'error': '[Errno 2] No such file or directory'}]
    checks = by_name(evaluate(PARAMS, _health(mounts=mounts)))
    assert checks['disk:/']['status'] == 'warning' and checks['disk:/']['value'] == 85.0 and checks['disk:/']['alert'] == 'resource_exhaustion'
    assert checks['inodes:/']['status'] == 'ok' and checks['inodes:/']['value'] == 50.0
    assert checks['disk:/var']['status'] == 'critical'
    assert checks['inodes:/var']['status'] == 'ok' and checks['inodes:/var']['value'] is None
    assert checks['disk:/gone']['status'] == 'critical' and 'No such file' in checks['disk:/gone']['message']


def test_memory_check_names_the_ceiling():
    memory = memory_usage(parse_meminfo(MEMINFO), {'limit_bytes': 1024 ** 3, 'used_bytes': 1000 * 1024 ** 2})
    check = by_name(evaluate(PARAMS, _health(memory=memory)))['memory']
    assert check['status'] == 'critical' and 'container limit 1024 MB' in check['message']
    assert check['details']['ceiling'] == 'cgroup'
    unmeasured = by_name(evaluate(PARAMS, _health(memory={})))['memory']
    assert unmeasured['status'] == 'critical'


def test_cpu_check_thresholds():
    container = by_name(evaluate(PARAMS, _health(cpu={'percent': 5.0, 'cpus': 2, 'scope': 'container', 'host_percent': 90.0})))['cpu']
    assert container['status'] == 'ok' and 'of the container' in container['message']
    assert container['details']['scope'] == 'container' and container['details']['host_percent'] == 90.0
    assert by_name(evaluate(PARAMS, _health(cpu={'percent': 70.0, 'cpus': 1})))['cpu']['status'] == 'warning'
    assert by_name(evaluate(PARAMS, _health(cpu={'percent': 95.0, 'cpus': 1})))['cpu']['status'] == 'critical'
    assert by_name(evaluate(PARAMS, _health(cpu={'percent': 69.9, 'cpus': 1})))['cpu']['status'] == 'ok'


def test_updates_checks():
    updates = {'supported': True, 'security': ['libssl3', 'openssl'], 'other_count': 3, 'error': None}
    check = by_name(evaluate(PARAMS, _health(updates=updates)))['updates']
    assert check['status'] == 'warning' and check['value'] == 2
    assert check['details'] == {'security': ['libssl3', 'openssl'], 'other_count': 3}
    check = by_name(evaluate(dict(PARAMS, security_updates_status='critical'), _health(updates=updates)))['updates']
    assert check['status'] == 'critical'
    check = by_name(evaluate(PARAMS, _health(updates=dict(updates, security=[]))))['updates']
    assert check['status'] == 'ok' and check['value'] == 0 and check['details']['other_count'] == 3
    check = by_name(evaluate(PARAMS, _health(updates={'supported': False, 'reason': 'apt-get not found'})))['updates']
    assert check['status'] == 'ok' and 'not checked' in check['message']
    check = by_name(evaluate(PARAMS, _health(updates={'supported': True, 'error': 'apt-get failed'})))['updates']
    assert check['status'] == 'warning'
    assert 'updates' not in by_name(evaluate(PARAMS, _health(updates=None)))


def test_reboot_required_check():
    check = by_name(evaluate(PARAMS, _health(reboot_required={'required': True, 'packages': ['linux-image-amd64']})))['reboot_required']
    assert check['status'] == 'warning' and 'linux-image-amd64' in check['message']
    assert by_name(evaluate(PARAMS, _health()))['reboot_required']['status'] == 'ok'


def test_validate_thresholds_defaults_are_fine_and_every_problem_is_named():
    defaults = dict(service_memory_limit_mb=512, service_memory_warn_percent=80, disk_warn_percent=80, disk_crit_percent=90,
                    inode_warn_percent=80, inode_crit_percent=90, memory_warn_percent=85, memory_crit_percent=95,
                    cpu_limit_percent=70, cpu_crit_percent=90, clock_max_offset_ms=100, expected_ports=[22, 8000])
    assert hh.validate_thresholds(defaults) == []
    bad = dict(defaults, disk_warn_percent=95, inode_crit_percent=-1, memory_crit_percent=200, cpu_limit_percent=91,
               service_memory_limit_mb=0, clock_max_offset_ms=-1, expected_ports=[22, 65536])
    assert hh.validate_thresholds(bad) == [
        'inode_crit_percent must be a percentage between 0 and 100, got -1',
        'memory_crit_percent must be a percentage between 0 and 100, got 200',
        'disk_warn_percent (95) must not be greater than disk_crit_percent (90)',
        'inode_warn_percent (80) must not be greater than inode_crit_percent (-1)',
        'cpu_limit_percent (91) must not be greater than cpu_crit_percent (90)',
        'service_memory_limit_mb must be greater than 0, got 0',
        'clock_max_offset_ms must not be negative, got -1',
        'expected_ports[1] must be a TCP port between 1 and 65535, got 65536',
    ]


@given(st.integers(-50, 150), st.integers(-50, 150))
def test_validate_thresholds_accepts_exactly_ordered_percentages(warn, crit):
    problems = hh.validate_thresholds({'disk_warn_percent': warn, 'disk_crit_percent': crit})
    assert (problems == []) == (0 <= warn <= crit <= 100)
