# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic used by the ``dealerscope.ops.host_health`` module.

Parsers for what the module reads from the host (``/proc/self/mountinfo``, ``/proc/meminfo``,
``/proc/stat``, ``/proc/net/tcp``, cgroup files, ``systemctl``, ``apt-get -s``, ``chronyc`` and
``timedatectl`` output), small readers that take the ``/proc`` and ``/sys/fs/cgroup`` roots as
arguments (so tests can point them at a temporary directory), and ``evaluate()``, which turns the
raw measurements into check results with ``ops_checks``. No AnsibleModule import here.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import socket
import time

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import (
    make_check,
    threshold_check,
)
from ansible_collections.dealerscope.ops.plugins.module_utils.pg_clusters import (
    auto_cluster_units,
    is_wrapper_unit,
    read_text as _read,
)

DEFAULT_EXCLUDE_FSTYPES = [
    'proc', 'sysfs', 'tmpfs', 'devtmpfs', 'devpts', 'cgroup', 'cgroup2', 'mqueue', 'securityfs', 'debugfs',
    'tracefs', 'fusectl', 'configfs', 'pstore', 'bpf', 'autofs', 'hugetlbfs', 'nsfs', 'ramfs', 'binfmt_misc',
    'fuse.lxcfs', 'squashfs',
]

# Files container engines bind-mount into the container; never a filesystem worth watching.
CONTAINER_FILE_MOUNTS = frozenset((
    '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/run/.containerenv', '/.dockerenv', '/etc/mtab',
))

# cgroup v1 reports "no limit" as a huge page-aligned number; anything this large is unlimited.
_UNLIMITED = 1 << 60
_MAX_U64 = (1 << 64) - 1

RESOURCE = 'resource_exhaustion'
SERVICE_DOWN = 'service_down'

_OCTAL_ESCAPE = re.compile(r'\\([0-7]{3})')


def _unescape(text):
    """Undo the octal escapes (``\\040`` for a space) of mountinfo / mounts fields."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def _fields(line):
    """Split on the spaces the kernel separates fields with (names may hold other whitespace characters)."""
    return [field for field in line.split(' ') if field]


def _round(number, digits=1):
    return None if number is None else round(float(number), digits)


# --------------------------------------------------------------------------- mounts

def parse_mountinfo(text):
    """Parse ``/proc/<pid>/mountinfo`` into a list of dicts (mount, root, device, fstype, source, options)."""
    mounts = []
    for line in (text or '').splitlines():
        left, sep, right = line.partition(' - ')
        if not sep:
            continue
        fields = _fields(left)
        rest = _fields(right)
        if len(fields) < 6 or len(rest) < 2:
            continue
        mounts.append({
            'mount': _unescape(fields[4]),
            'root': _unescape(fields[3]),
            'device': fields[2],
            'options': fields[5].split(','),
            'fstype': rest[0],
            'source': _unescape(rest[1]),
        })
    return mounts


def parse_proc_mounts(text):
    """Parse ``/proc/mounts`` (fallback when mountinfo is unreadable); ``device`` and ``root`` are None."""
    mounts = []
    for line in (text or '').splitlines():
        fields = _fields(line)
        if len(fields) < 4:
            continue
        mounts.append({
            'mount': _unescape(fields[1]),
            'root': None,
            'device': None,
            'options': fields[3].split(','),
            'fstype': fields[2],
            'source': _unescape(fields[0]),
        })
    return mounts


def _is_file_mount(entry, isdir):
    if entry['mount'] in CONTAINER_FILE_MOUNTS:
        return True
    return isdir is not None and not isdir(entry['mount'])


def select_mounts(mounts, exclude_fstypes, only=None, isdir=None):
    """The mounts to check.

    Drops excluded filesystem types and bind mounts of single files (``/etc/hosts`` & co. in
    containers, or anything ``isdir`` says is not a directory). When ``only`` is non-empty, the
    mount points listed there are kept (in mountinfo order) and nothing is de-duplicated; otherwise
    a device mounted several times (bind mounts) is checked once, at the mount point of its root
    (``root == '/'``) when there is one, else at its first mount point. When the same mount
    point is stacked, the last (visible) mount wins.
    """
    exclude = set(exclude_fstypes or [])
    visible = {}
    for entry in mounts:
        visible[entry['mount']] = entry  # the last mount on a mount point hides the others
    candidates = [entry for entry in mounts if visible[entry['mount']] is entry]
    if only:
        wanted = set(only)
        return [entry for entry in candidates if entry['mount'] in wanted]
    kept = {}
    order = []
    for entry in candidates:
        if entry['fstype'] in exclude or _is_file_mount(entry, isdir):
            continue
        key = entry['device'] or ('mount', entry['mount'])
        current = kept.get(key)
        if current is None:
            kept[key] = entry
            order.append(key)
        elif _mount_preference(entry) < _mount_preference(current):
            kept[key] = entry
    return [kept[key] for key in order]


def _mount_preference(entry):
    return 0 if entry['root'] in (None, '/') else 1


def statvfs_usage(mount, st):
    """Disk and inode use of a mount from an ``os.statvfs`` result, the way ``df`` computes it."""
    frsize = st.f_frsize or st.f_bsize
    size = st.f_blocks * frsize
    free = st.f_bfree * frsize
    avail = st.f_bavail * frsize
    used = size - free
    # df: used / (used + available to unprivileged users); the root reserve counts as used
    denominator = used + avail
    used_percent = _round(100.0 * used / denominator) if denominator > 0 else None
    inodes_total = st.f_files
    inodes_used = st.f_files - st.f_ffree if st.f_files else 0
    inodes_percent = _round(100.0 * inodes_used / inodes_total) if inodes_total else None
    return {
        'mount': mount,
        'size_bytes': size,
        'used_bytes': used,
        'avail_bytes': avail,
        'used_percent': used_percent,
        'inodes_total': inodes_total,
        'inodes_used': inodes_used,
        'inodes_percent': inodes_percent,
    }


# --------------------------------------------------------------------------- memory

def parse_meminfo(text):
    """``/proc/meminfo`` as a dict of byte counts."""
    values = {}
    for line in (text or '').splitlines():
        key, sep, rest = line.partition(':')
        if not sep:
            continue
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        number = int(parts[0])
        if len(parts) > 1 and parts[1].lower() == 'kb':
            number *= 1024
        values[key.strip()] = number
    return values


def parse_cgroup_file(text):
    """``/proc/self/cgroup`` as a list of ``(controllers, path)``; cgroup v2 has controllers ``''``."""
    result = []
    for line in (text or '').splitlines():
        parts = line.split(':', 2)
        if len(parts) == 3:
            result.append((parts[1], parts[2]))
    return result


def _read_int(path):
    text = _read(path)
    if text is None:
        return None
    text = text.strip()
    if text == 'max':
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


def _stat_value(text, key):
    for line in (text or '').splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def _ancestors(path):
    """``/a/b/c`` -> ``['/a/b/c', '/a/b', '/a', '/']``."""
    path = '/' + path.strip('/') if path.strip('/') else '/'
    result = [path]
    while path != '/':
        path = os.path.dirname(path)
        result.append(path)
    return result


def cgroup_memory_limit(cgroup_text, cgroup_root='/sys/fs/cgroup'):
    """The tightest memory limit of the cgroups this process is in, with that cgroup's usage.

    Walks from the process' own cgroup up to the (namespace) root, because any ancestor's limit
    applies. Usage is ``memory.current`` (v2) or ``memory.usage_in_bytes`` (v1) minus the inactive
    file cache, which the kernel reclaims before it runs out of memory (what ``docker stats`` shows).
    Returns None when no limit is set.
    """
    best = None
    for controllers, path in parse_cgroup_file(cgroup_text):
        if controllers == '':
            base, limit_file, usage_file, inactive_key = cgroup_root, 'memory.max', 'memory.current', 'inactive_file'
        elif 'memory' in controllers.split(','):
            base, limit_file, usage_file, inactive_key = (os.path.join(cgroup_root, 'memory'), 'memory.limit_in_bytes',
                                                          'memory.usage_in_bytes', 'total_inactive_file')
        else:
            continue
        for ancestor in _ancestors(path):
            directory = base + (ancestor if ancestor != '/' else '')
            limit = _read_int(os.path.join(directory, limit_file))
            if limit is None or (best is not None and limit >= best['limit_bytes']):
                continue
            usage = _read_int(os.path.join(directory, usage_file))
            if usage is not None:
                usage = max(0, usage - _stat_value(_read(os.path.join(directory, 'memory.stat')), inactive_key))
            best = {'limit_bytes': limit, 'used_bytes': usage, 'cgroup': directory}
    return best


def memory_usage(meminfo, cgroup=None):
    """Host memory use, and the container's when its cgroup limit is below MemTotal.

    ``percent`` is measured against the real ceiling: the cgroup limit when it is lower than
    MemTotal (then the worse of the cgroup and the host figure, since the host can run out first),
    else MemTotal.
    """
    total = meminfo.get('MemTotal')
    available = meminfo.get('MemAvailable')
    if available is None and total is not None:  # kernels before 3.14
        available = meminfo.get('MemFree', 0) + meminfo.get('Buffers', 0) + meminfo.get('Cached', 0)
    result = {
        'total_bytes': total,
        'available_bytes': available,
        'used_bytes': None,
        'host_percent': None,
        'cgroup_limit_bytes': None,
        'cgroup_used_bytes': None,
        'cgroup_percent': None,
        'ceiling': 'host',
        'percent': None,
    }
    if total:
        result['used_bytes'] = total - available
        result['host_percent'] = _round(100.0 * (total - available) / total)
        result['percent'] = result['host_percent']
    if cgroup and cgroup.get('limit_bytes') and (not total or cgroup['limit_bytes'] < total):
        result['cgroup_limit_bytes'] = cgroup['limit_bytes']
        result['cgroup_used_bytes'] = cgroup.get('used_bytes')
        if cgroup.get('used_bytes') is not None:
            result['cgroup_percent'] = _round(100.0 * cgroup['used_bytes'] / cgroup['limit_bytes'])
            result['ceiling'] = 'cgroup'
            if result['percent'] is None or result['cgroup_percent'] >= result['percent']:
                result['percent'] = result['cgroup_percent']
            else:
                result['ceiling'] = 'host'
    return result


# --------------------------------------------------------------------------- cpu

def parse_proc_stat_cpu(text):
    """``(busy, total)`` jiffies of the aggregate ``cpu`` line of ``/proc/stat``.

    Idle time is idle + iowait; guest time is already counted in user/nice, so it is left out.
    """
    for line in (text or '').splitlines():
        parts = line.split()
        if parts and parts[0] == 'cpu':
            numbers = [int(x) for x in parts[1:11] if x.isdigit()]
            numbers += [0] * (10 - len(numbers))
            total = sum(numbers[:8])
            idle = numbers[3] + numbers[4]
            return total - idle, total
    return None


def cpu_percent(first, second, own_jiffies=0):
    """CPU utilisation in % between two ``parse_proc_stat_cpu`` samples.

    ``own_jiffies`` (the CPU time the module itself and its children used in between) is
    subtracted from the busy time, so the measurement does not count its own work.
    """
    if not first or not second:
        return None
    busy = second[0] - first[0] - max(0, own_jiffies)
    total = second[1] - first[1]
    if total <= 0:
        return None
    return _round(min(100.0, max(0.0, 100.0 * busy / total)))


CONTAINER_MARKERS = ('/run/.containerenv', '/.dockerenv')


def cgroup_cpu_usage_seconds(cgroup_root='/sys/fs/cgroup'):
    """CPU time used by the top cgroup visible here (the container inside one, the host otherwise), in seconds."""
    text = _read(os.path.join(cgroup_root, 'cpu.stat'))  # cgroup v2
    if text is not None:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == 'usage_usec' and parts[1].isdigit():
                return int(parts[1]) / 1e6
    for directory in ('cpuacct', 'cpu,cpuacct', 'cpuacct,cpu'):  # cgroup v1
        value = _read_int(os.path.join(cgroup_root, directory, 'cpuacct.usage'))
        if value is not None:
            return value / 1e9
    return None


def cgroup_cpu_quota(cgroup_root='/sys/fs/cgroup'):
    """CPUs the top cgroup may use according to its CFS quota, or None when unlimited."""
    text = _read(os.path.join(cgroup_root, 'cpu.max'))
    if text is not None:
        parts = text.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit() and int(parts[1]):
            return int(parts[0]) / float(parts[1])
        return None
    for directory in ('cpu', 'cpu,cpuacct', 'cpuacct,cpu'):
        quota = _read(os.path.join(cgroup_root, directory, 'cpu.cfs_quota_us'))
        period = _read_int(os.path.join(cgroup_root, directory, 'cpu.cfs_period_us'))
        if quota is not None and period:
            quota = quota.strip()
            return int(quota) / float(period) if quota.isdigit() and int(quota) > 0 else None
    return None


def cgroup_cpu_percent(first, second, elapsed, cpus, own_seconds=0.0):
    """The container's CPU utilisation in % of the CPUs it may use, without the module's own CPU time."""
    if first is None or second is None or not elapsed or elapsed <= 0 or not cpus:
        return None
    used = second - first - max(0.0, own_seconds)
    return _round(min(100.0, max(0.0, 100.0 * used / (elapsed * cpus))))


def parse_loadavg(text):
    """The three load averages of ``/proc/loadavg``."""
    parts = (text or '').split()
    try:
        return [float(x) for x in parts[:3]] if len(parts) >= 3 else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- cpu history (sysstat)

SYSSTAT_DIRS = ('/var/log/sysstat', '/var/log/sa')  # Debian, RHEL


def sysstat_files(directory, now, hours, exists=os.path.exists):
    """The sysstat daily data files that may hold records of the ``hours`` before ``now``, oldest first.

    sadc names its files after the day (``saDD``, or ``saYYYYMMDD`` with a long history); the day of a
    file is the local one, but the UTC day is tried too, so a time zone never hides a file. Records
    outside the window are dropped later, so an older file with the same ``saDD`` name does no harm.
    """
    names = []
    start = now - hours * 3600.0
    points = [start + step * 21600.0 for step in range(int(hours * 3600.0 // 21600.0) + 1)] + [now]
    for point in points:
        for moment in (time.localtime(point), time.gmtime(point)):
            for name in ('sa' + time.strftime('%Y%m%d', moment), 'sa' + time.strftime('%d', moment)):
                if name not in names:
                    names.append(name)
    paths = [os.path.join(directory, name) for name in names]
    return [path for path in paths if exists(path)]


def _sadf_epoch(stamp):
    text = '%s %s' % (stamp.get('date'), stamp.get('time'))
    parsed = time.strptime(text, '%Y-%m-%d %H:%M:%S')
    return calendar.timegm(parsed) if stamp.get('utc', 1) else time.mktime(parsed)


def parse_sadf_cpu(text):
    """CPU records of ``sadf -j <file> -- -u``: a list of ``{'end', 'interval', 'busy'}``, oldest first.

    ``end`` is the epoch the interval ended at, ``interval`` its length in seconds and ``busy`` the
    utilisation of all CPUs in % (100 - idle - iowait, as the ``/proc/stat`` sample counts it).
    Raises ValueError when the text is not sadf's JSON.
    """
    try:
        data = json.loads(text)
        hosts = data['sysstat']['hosts']
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError('not sadf JSON output (%s)' % exc)
    records = []
    for host in hosts or []:
        for entry in host.get('statistics') or []:
            stamp = entry.get('timestamp') or {}
            loads = [load for load in entry.get('cpu-load') or entry.get('cpu-load-all') or [] if str(load.get('cpu')) in ('all', '-1')]
            if not loads or not stamp.get('interval'):
                continue
            load = loads[0]
            idle = load.get('idle')
            if idle is None:
                continue
            busy = 100.0 - float(idle) - float(load.get('iowait') or 0.0)
            try:
                end = _sadf_epoch(stamp)
            except (ValueError, OverflowError):
                continue
            records.append({'end': end, 'interval': int(stamp['interval']), 'busy': min(100.0, max(0.0, busy))})
    records.sort(key=lambda record: record['end'])
    return records


def cpu_history(records, now, hours):
    """Time-weighted average and peak CPU utilisation of the records that ended in the last ``hours``.

    Returns None when no record falls in the window. ``covered_seconds`` is the time the records
    account for (less than the window on a young host, or when collection stopped for a while).
    """
    start = now - hours * 3600.0
    seen = set()
    window = []
    for record in records:
        if start < record['end'] <= now + 60 and record['end'] not in seen:  # a file read twice counts once
            seen.add(record['end'])
            window.append(record)
    covered = sum(record['interval'] for record in window)
    if not window or covered <= 0:
        return None
    peak = max(window, key=lambda record: record['busy'])
    return {
        'avg_percent': _round(sum(record['busy'] * record['interval'] for record in window) / covered),
        'peak_percent': _round(peak['busy']),
        'peak_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(peak['end'])),
        'peak_interval_seconds': peak['interval'],
        'covered_seconds': covered,
        'samples': len(window),
        'first': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(window[0]['end'] - window[0]['interval'])),
        'last': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(window[-1]['end'])),
    }


def proc_stat_is_virtual(mounts):
    """Whether ``/proc/stat`` is a container's own (lxcfs mounts its per-container view over it)."""
    return any(entry['mount'] == '/proc/stat' and ('lxcfs' in entry['fstype'] or entry['source'] == 'lxcfs') for entry in mounts or [])


def history_is_judged(in_container, virtual_proc_stat, container_percent):
    """Whether sysstat's history, when there is some, is what the ``cpu`` check judges.

    sadc reads ``/proc/stat``, which in a container is the host's (unless lxcfs replaces it). There its
    figures count the other containers, so a container whose own cgroup CPU time was sampled is judged
    on that sample and the host-wide history is only reported; without a cgroup sample the history is
    still better than a host-wide sample.
    """
    return not (in_container and not virtual_proc_stat and container_percent is not None)


def cpu_basis(history, container_percent, in_container, virtual_proc_stat):
    """What the ``cpu`` check judges, ``'average'`` (sysstat's history) or ``'sample'``, and the history's scope."""
    scope = 'container' if in_container and virtual_proc_stat else 'host'
    if history and history.get('avg_percent') is not None and history_is_judged(in_container, virtual_proc_stat, container_percent):
        return 'average', scope
    return 'sample', scope


# --------------------------------------------------------------------------- listening sockets

def _decode_address(hex_addr):
    """Decode a ``/proc/net/tcp{,6}`` address (32-bit words in host byte order) to text."""
    raw = bytes.fromhex(hex_addr)
    little = socket.htonl(1) != 1
    if little:
        raw = b''.join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw)


def parse_proc_net_tcp(text, family='tcp'):
    """Listening sockets (state ``0A``) of ``/proc/net/tcp`` or ``/proc/net/tcp6``."""
    sockets = []
    for line in (text or '').splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4 or parts[3] != '0A':
            continue
        addr, _sep, port = parts[1].partition(':')
        try:
            sockets.append({'address': _decode_address(addr), 'port': int(port, 16), 'family': family})
        except ValueError:
            continue
    return sockets


def listening_ports(sockets):
    """De-duplicated, sorted list of listening sockets."""
    seen = set()
    result = []
    for item in sorted(sockets, key=lambda s: (s['port'], s['family'], s['address'])):
        key = (item['port'], item['family'], item['address'])
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


# --------------------------------------------------------------------------- systemd

SHOW_PROPERTIES = ('Id', 'LoadState', 'ActiveState', 'SubState', 'MainPID', 'MemoryCurrent', 'ControlGroup')


def normalize_unit(name):
    """systemctl treats a name without a unit type suffix as a service."""
    return name if re.search(r'\.[a-z]+$', name) else name + '.service'


def parse_systemctl_show(text):
    """Blocks of ``systemctl show`` output (separated by blank lines) as a list of dicts."""
    blocks = []
    current = {}
    for line in (text or '').splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition('=')
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks


def match_show_blocks(units, blocks):
    """Map the requested unit names to their ``systemctl show`` blocks.

    systemctl prints one block per argument, in order, so they are matched by position; if the
    counts differ, by ``Id`` (aliases then go unmatched and count as missing).
    """
    if len(blocks) == len(units):
        return dict(zip(units, blocks))
    by_id = dict((block.get('Id'), block) for block in blocks)
    return dict((unit, by_id.get(normalize_unit(unit), {})) for unit in units)


def _int_or_none(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return None if number >= _MAX_U64 else number


def unit_state(block):
    """Normalise one ``systemctl show`` block."""
    load = block.get('LoadState') or None
    active = block.get('ActiveState') or 'unknown'
    pid = _int_or_none(block.get('MainPID'))
    return {
        'id': block.get('Id') or None,
        'load_state': load,
        'active_state': active,
        'sub_state': block.get('SubState') or None,
        'main_pid': pid or None,
        'memory_current_bytes': _int_or_none(block.get('MemoryCurrent')),
        'control_group': block.get('ControlGroup') or None,
    }


def parse_failed_units(text):
    """Unit names of ``systemctl list-units --state=failed --no-legend --plain``."""
    units = []
    for line in (text or '').splitlines():
        parts = line.replace('\u25cf', ' ').replace('*', ' ', 1).split()
        if parts:
            units.append(parts[0])
    return units


def _process_rss(pid, proc_root):
    text = _read(os.path.join(proc_root, str(pid), 'status'))
    for line in (text or '').splitlines():
        if line.startswith('VmRSS:'):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return 0  # kernel threads and exited processes


def cgroup_pids(control_group, cgroup_root='/sys/fs/cgroup'):
    """PIDs in a unit's cgroup and its children (cgroup v2, else the v1 systemd hierarchy)."""
    if not control_group:
        return None
    for base in (cgroup_root, os.path.join(cgroup_root, 'systemd'), os.path.join(cgroup_root, 'unified')):
        top = base + control_group
        if not os.path.isfile(os.path.join(top, 'cgroup.procs')):
            continue
        pids = []
        for directory, _dirs, files in os.walk(top):
            if 'cgroup.procs' in files:
                for line in (_read(os.path.join(directory, 'cgroup.procs')) or '').split():
                    if line.isdigit():
                        pids.append(int(line))
        return pids
    return None


def unit_memory(state, cgroup_root='/sys/fs/cgroup', proc_root='/proc'):
    """``(bytes, source)`` of a unit's memory: MemoryCurrent, else the RSS sum of its cgroup's processes,
    else the RSS of its main PID; ``(None, None)`` when none is available."""
    if state.get('memory_current_bytes') is not None:
        return state['memory_current_bytes'], 'MemoryCurrent'
    pids = cgroup_pids(state.get('control_group'), cgroup_root)
    if pids:
        return sum(_process_rss(pid, proc_root) for pid in pids), 'cgroup_rss'
    if state.get('main_pid'):
        rss = _process_rss(state['main_pid'], proc_root)
        if rss:
            return rss, 'main_pid_rss'
    return None, None


# --------------------------------------------------------------------------- package updates

_INST = re.compile(r'^Inst (\S+)(?: \[([^\]]*)\])?(?: \((\S+)(.*)\))?')


def parse_apt_simulation(text):
    """Upgrades of ``apt-get -s dist-upgrade``: list of dicts (name, old, new, origin, security)."""
    updates = []
    for line in (text or '').splitlines():
        match = _INST.match(line)
        if not match:
            continue
        origin = (match.group(4) or '').strip()
        updates.append({
            'name': match.group(1),
            'old': match.group(2),
            'new': match.group(3),
            'origin': origin,
            'security': '-security' in origin.lower() or 'debian-security' in origin.lower(),
        })
    return updates


# --------------------------------------------------------------------------- clock

_OFFSET = re.compile(r'^\s*([-+]?[0-9.]+(?:e[-+]?[0-9]+)?) seconds (fast|slow)', re.I)


def parse_chronyc_tracking(text):
    """``chronyc -n tracking`` as ``{'leap_status', 'offset_ms', 'reference'}``."""
    result = {'leap_status': None, 'offset_ms': None, 'reference': None}
    for line in (text or '').splitlines():
        key, sep, value = line.partition(':')
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == 'leap status':
            result['leap_status'] = value
        elif key == 'reference id':
            result['reference'] = value
        elif key == 'system time':
            match = _OFFSET.match(value)
            if match:
                offset = float(match.group(1)) * 1000.0
                # "fast of NTP time" means the system clock is ahead
                result['offset_ms'] = round(offset if match.group(2).lower() == 'fast' else -offset, 3)
    return result


def chronyd_options(proc_root='/proc'):
    """Command line arguments of a running chronyd, or None when none runs."""
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        raw = _read(os.path.join(proc_root, entry, 'cmdline'))
        if not raw:
            continue
        args = raw.rstrip('\0').split('\0')
        if os.path.basename(args[0]) == 'chronyd':
            return args[1:]
    return None


def clock_state(tracking=None, ntp_synchronized=None, chronyd_args=None, source=None, error=None):
    """Combine what was learned about the clock into the raw ``clock`` fact."""
    synced = None
    offset = None
    leap = None
    if tracking is not None:
        leap = tracking.get('leap_status')
        offset = tracking.get('offset_ms')
        synced = leap is not None and leap.lower() != 'not synchronised'
    elif ntp_synchronized is not None:
        synced = ntp_synchronized
    return {
        'source': source,
        'synchronized': synced,
        'offset_ms': offset,
        'leap_status': leap,
        'reference': (tracking or {}).get('reference'),
        'chronyd_no_clock_control': bool(chronyd_args and '-x' in chronyd_args),
        'error': error,
    }


# --------------------------------------------------------------------------- evaluation

def _mb(number):
    return None if number is None else round(number / 1048576.0, 1)


def expected_services(services, postgresql=None):
    """The units the service checks judge, in order, without duplicates.

    ``services`` as given, except that on a Debian host (``postgresql`` is the ``health['postgresql']`` fact, None
    elsewhere) the wrapper ``postgresql.service`` - active whether or not any cluster runs - is replaced by the units
    ``postgresql@<version>-<cluster>.service`` of the clusters that start automatically. When there is no such cluster
    the wrapper stays in the list, and ``_service_checks`` judges it critical.
    """
    result = []
    for unit in services or []:
        if postgresql is not None and is_wrapper_unit(unit):
            units = auto_cluster_units(postgresql.get('clusters') or [])
            result.extend(units or [unit])
        else:
            result.append(unit)
    unique_units = []
    for unit in result:
        if unit not in unique_units:
            unique_units.append(unit)
    return unique_units


def _no_cluster_check(unit, postgresql):
    clusters = postgresql.get('clusters') or []
    found = ', '.join('%s/%s (start.conf: %s)' % (c['version'], c['cluster'], c['start']) for c in clusters) or 'none'
    message = ('%s is expected, but no PostgreSQL cluster set to start automatically was found under %s (clusters found: %s); '
               "%s is Debian's wrapper and stays active whether or not a cluster runs, so the database is judged by its "
               'clusters\' units postgresql@<version>-<cluster>.service' % (unit, postgresql.get('etc_dir'), found, unit))
    return make_check('service:%s' % unit, 'critical', None, 'active', message, alert=SERVICE_DOWN,
                      details={'expanded_from': unit, 'clusters': clusters, 'etc_dir': postgresql.get('etc_dir')})


def _service_checks(params, services, postgresql=None):
    checks = []
    clusters = dict((c['unit'], c) for c in (postgresql or {}).get('clusters') or [])
    wrapper = next((unit for unit in params['services'] if is_wrapper_unit(unit)), None)
    for unit in expected_services(params['services'], postgresql):
        if postgresql is not None and is_wrapper_unit(unit):
            checks.append(_no_cluster_check(unit, postgresql))
            continue
        state = services.get(unit) or {}
        active = state.get('active_state')
        if state.get('load_state') == 'not-found':
            message = '%s is not installed (unit not found)' % unit
            ok = False
        elif state.get('error'):
            ok = False
            message = '%s state unknown: %s' % (unit, state['error'])
        else:
            ok = active in ('active', 'reloading')
            message = '%s is %s (%s)' % (unit, active or 'unknown', state.get('sub_state') or '-')
        details = {'sub_state': state.get('sub_state'), 'load_state': state.get('load_state'), 'main_pid': state.get('main_pid')}
        cluster = clusters.get(unit) if wrapper else None
        if cluster:
            message += ' (PostgreSQL cluster %s/%s, judged for %s)' % (cluster['version'], cluster['cluster'], wrapper)
            details.update(expanded_from=wrapper, cluster='%s/%s' % (cluster['version'], cluster['cluster']))
        checks.append(make_check('service:%s' % unit, 'ok' if ok else 'critical', active, 'active', message,
                                 alert=SERVICE_DOWN, details=details))
    limit = params['service_memory_limit_mb']
    warn = round(limit * params['service_memory_warn_percent'] / 100.0, 1)
    for unit in params['memory_services']:
        state = services.get(unit) or {}
        name = 'service_memory:%s' % unit
        if state.get('active_state') not in ('active', 'reloading') and state.get('memory_bytes') is None:
            checks.append(make_check(name, 'warning', None, warn, '%s is not running (%s); memory not measured'
                                     % (unit, state.get('active_state') or 'unknown'), alert=SERVICE_DOWN, unit='MB'))
            continue
        check = threshold_check(name, _mb(state.get('memory_bytes')), warn=warn, crit=limit, unit='MB', alert=RESOURCE,
                                label='%s memory' % unit)
        check['details'] = {'limit_mb': limit, 'source': state.get('memory_source')}
        checks.append(check)
    return checks


def _failed_units_check(params, failed, postgresql=None):
    expected = set(normalize_unit(unit) for unit in expected_services(params['services'], postgresql))
    ours = [unit for unit in failed if normalize_unit(unit) in expected]
    if not failed:
        return make_check('failed_units', 'ok', 0, 0, 'no failed systemd units', details={'units': []})
    status = 'critical' if ours else 'warning'
    message = '%d failed systemd unit(s): %s' % (len(failed), ', '.join(failed))
    if ours:
        message += ' (expected services among them: %s)' % ', '.join(ours)
    return make_check('failed_units', status, len(failed), 0, message, alert=SERVICE_DOWN if ours else None,
                      details={'units': failed})


def _listening_checks(params, listening):
    checks = []
    for port in params['expected_ports']:
        addresses = sorted(set(s['address'] for s in listening if s['port'] == port))
        if addresses:
            checks.append(make_check('listening:%d' % port, 'ok', port, port, 'port %d is listening on %s' % (port, ', '.join(addresses)),
                                     details={'addresses': addresses}))
        else:
            checks.append(make_check('listening:%d' % port, 'critical', None, port, 'nothing listens on TCP port %d' % port,
                                     alert=SERVICE_DOWN, details={'addresses': []}))
    return checks


def _disk_checks(params, mounts):
    checks = []
    for item in mounts:
        mount = item['mount']
        if item.get('error'):
            checks.append(make_check('disk:%s' % mount, 'critical', None, params['disk_warn_percent'],
                                     '%s could not be measured: %s' % (mount, item['error']), alert=RESOURCE, unit='%'))
            continue
        checks.append(threshold_check('disk:%s' % mount, item['used_percent'], warn=params['disk_warn_percent'],
                                      crit=params['disk_crit_percent'], unit='%', alert=RESOURCE, label='%s disk use' % mount))
        if item.get('inodes_percent') is None:
            checks.append(make_check('inodes:%s' % mount, 'ok', None, params['inode_warn_percent'],
                                     '%s has no fixed inode table (%s)' % (mount, item.get('fstype')), unit='%'))
        else:
            checks.append(threshold_check('inodes:%s' % mount, item['inodes_percent'], warn=params['inode_warn_percent'],
                                          crit=params['inode_crit_percent'], unit='%', alert=RESOURCE, label='%s inode use' % mount))
    return checks


def _memory_check(params, memory):
    ceiling = 'container limit %d MB' % _mb(memory['cgroup_limit_bytes']) if memory.get('ceiling') == 'cgroup' else 'host memory'
    check = threshold_check('memory', memory.get('percent'), warn=params['memory_warn_percent'], crit=params['memory_crit_percent'],
                            unit='%', alert=RESOURCE, label='memory use of %s' % ceiling)
    check['details'] = {'ceiling': memory.get('ceiling'), 'host_percent': memory.get('host_percent'),
                        'cgroup_percent': memory.get('cgroup_percent')}
    return check


def _duration(seconds):
    if seconds < 60:
        return '%d s' % seconds
    return '%d min' % round(seconds / 60.0) if seconds < 3600 else '%s h' % ('%.1f' % (seconds / 3600.0)).rstrip('0').rstrip('.')


def _cpu_basis_note(params, cpu):
    """What the ``cpu`` check was judged on, when that is not sysstat's average (or how much of it there was)."""
    history = cpu.get('history') or {}
    hours = '%g h' % history.get('hours', params.get('cpu_average_hours', 24))
    sample = '%g s sample' % params.get('cpu_sample_seconds', cpu.get('sample_seconds') or 0)
    if cpu.get('basis') == 'average':
        return '; peak %.1f %% (%s to %s UTC), %s of data in the last %s' % (
            history['peak_percent'], _duration(history['peak_interval_seconds']), history['peak_at'][11:16],
            _duration(history['covered_seconds']), hours)
    if history.get('avg_percent') is not None:
        return ("; judged on a %s of the container's cgroup: sysstat's %s average (%.1f %%, peak %.1f %%) reads /proc/stat, "
                "which is host-wide in a container" % (sample, hours, history['avg_percent'], history['peak_percent']))
    if history.get('disabled'):
        return '; judged on a %s (cpu_average_hours=0)' % sample
    reason = history.get('error')
    return '; no sysstat data: judged on a %s' % sample + (' (%s)' % reason if reason else '')


def _cpu_check(params, cpu, loadavg):
    label = 'CPU utilisation of the container' if cpu.get('scope') == 'container' else 'CPU utilisation'
    history = cpu.get('history') or {}
    if cpu.get('basis') == 'average':
        label += ' (%g h average, sysstat)' % history.get('hours', params.get('cpu_average_hours', 24))
    check = threshold_check('cpu', cpu.get('percent'), warn=params['cpu_limit_percent'], crit=params['cpu_crit_percent'],
                            unit='%', alert=RESOURCE, label=label)
    if cpu.get('percent') is not None:
        check['message'] += _cpu_basis_note(params, cpu)
    per_cpu = None
    if loadavg and cpu.get('cpus'):
        per_cpu = [round(value / cpu['cpus'], 2) for value in loadavg]
        check['message'] += '; load per CPU %s' % '/'.join('%.2f' % value for value in per_cpu)
    check['details'] = {'scope': cpu.get('scope') or 'host', 'host_percent': cpu.get('host_percent'), 'cpus': cpu.get('cpus'),
                        'loadavg': loadavg, 'load_per_cpu': per_cpu, 'sample_seconds': cpu.get('sample_seconds'),
                        'basis': cpu.get('basis') or 'sample', 'sample_percent': cpu.get('sample_percent', cpu.get('percent')),
                        'average_percent': history.get('avg_percent'), 'peak_percent': history.get('peak_percent'),
                        'peak_at': history.get('peak_at'), 'covered_seconds': history.get('covered_seconds'),
                        'history_scope': history.get('scope'), 'history_error': history.get('error')}
    return check


def _updates_check(params, updates):
    if not updates.get('supported'):
        return make_check('updates', 'ok', None, 0, 'pending updates not checked: %s' % (updates.get('reason') or 'not supported on this host'))
    if updates.get('error'):
        return make_check('updates', 'warning', None, 0, 'pending updates could not be determined: %s' % updates['error'])
    security = updates['security']
    details = {'security': security, 'other_count': updates['other_count']}
    if security:
        names = ', '.join(security[:10]) + (', ...' if len(security) > 10 else '')
        message = '%d security update(s) pending (%s), %d other' % (len(security), names, updates['other_count'])
        return make_check('updates', params['security_updates_status'], len(security), 0, message, details=details)
    return make_check('updates', 'ok', 0, 0, 'no security updates pending, %d other' % updates['other_count'], details=details)


def _reboot_check(reboot):
    if reboot.get('required'):
        packages = reboot.get('packages') or []
        message = 'reboot required' + (' by %s' % ', '.join(packages) if packages else '')
        return make_check('reboot_required', 'warning', True, False, message, details={'packages': packages})
    return make_check('reboot_required', 'ok', False, False, 'no reboot required')


def _clock_check(params, clock):
    limit = params['clock_max_offset_ms']
    offset = clock.get('offset_ms')
    details = dict((key, clock.get(key)) for key in ('source', 'leap_status', 'reference', 'chronyd_no_clock_control'))
    reasons = []
    if clock.get('synchronized') is None:
        reasons.append('synchronisation state unknown' + (' (%s)' % clock['error'] if clock.get('error') else ''))
    elif not clock['synchronized']:
        reasons.append('clock not synchronised' + (' (%s: %s)' % (clock['source'], clock['leap_status']) if clock.get('leap_status') else
                                                   ' (%s)' % clock.get('source')))
    if offset is not None and abs(offset) >= limit:
        reasons.append('offset %.1f ms (limit %d ms)' % (offset, limit))
    if clock.get('chronyd_no_clock_control') and reasons:
        reasons.append('chronyd runs with -x and does not control the clock (container)')
    if reasons:
        return make_check('clock_sync', 'warning', offset, limit, '; '.join(reasons), unit='ms', details=details)
    message = 'clock synchronised (%s)' % clock.get('source') + (', offset %.1f ms' % offset if offset is not None else '')
    return make_check('clock_sync', 'ok', offset, limit, message, unit='ms', details=details)


def evaluate(params, health):
    """All check results for the raw ``health`` facts, in a stable order."""
    checks = []
    postgresql = health.get('postgresql')
    checks.extend(_service_checks(params, health.get('services') or {}, postgresql))
    if health.get('failed_units') is not None:
        checks.append(_failed_units_check(params, health['failed_units'], postgresql))
    checks.extend(_listening_checks(params, health.get('listening') or []))
    checks.extend(_disk_checks(params, health.get('mounts') or []))
    checks.append(_memory_check(params, health.get('memory') or {}))
    checks.append(_cpu_check(params, health.get('cpu') or {}, health.get('loadavg')))
    if health.get('updates') is not None:
        checks.append(_updates_check(params, health['updates']))
    checks.append(_reboot_check(health.get('reboot_required') or {}))
    checks.append(_clock_check(params, health.get('clock') or {}))
    return checks


# --------------------------------------------------------------------------- option validation

#: Options that are percentages (0 to 100).
PERCENT_OPTIONS = ('service_memory_warn_percent', 'disk_warn_percent', 'disk_crit_percent', 'inode_warn_percent', 'inode_crit_percent',
                   'memory_warn_percent', 'memory_crit_percent', 'cpu_limit_percent', 'cpu_crit_percent')
#: (warning option, critical option): the warning threshold must not be above the critical one.
THRESHOLD_PAIRS = (('disk_warn_percent', 'disk_crit_percent'), ('inode_warn_percent', 'inode_crit_percent'),
                   ('memory_warn_percent', 'memory_crit_percent'), ('cpu_limit_percent', 'cpu_crit_percent'))


def validate_thresholds(params):
    """Every problem with the numeric options, as messages naming the option(s); an empty list when they make sense.

    Percentages lie between 0 and 100, a warning threshold is not above its critical one, the memory limit is
    positive, the clock offset not negative and expected ports are TCP ports.
    """
    problems = []
    for name in PERCENT_OPTIONS:
        value = params.get(name)
        if value is not None and not 0 <= value <= 100:
            problems.append('%s must be a percentage between 0 and 100, got %s' % (name, value))
    for warn, crit in THRESHOLD_PAIRS:
        if params.get(warn) is not None and params.get(crit) is not None and params[warn] > params[crit]:
            problems.append('%s (%s) must not be greater than %s (%s)' % (warn, params[warn], crit, params[crit]))
    if params.get('service_memory_limit_mb') is not None and params['service_memory_limit_mb'] <= 0:
        problems.append('service_memory_limit_mb must be greater than 0, got %s' % params['service_memory_limit_mb'])
    if params.get('clock_max_offset_ms') is not None and params['clock_max_offset_ms'] < 0:
        problems.append('clock_max_offset_ms must not be negative, got %s' % params['clock_max_offset_ms'])
    for index, port in enumerate(params.get('expected_ports') or []):
        if not 1 <= port <= 65535:
            problems.append('expected_ports[%d] must be a TCP port between 1 and 65535, got %s' % (index, port))
    return problems
