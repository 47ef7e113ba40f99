# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure logic of the apt_patch module: the dpkg status database, apt's simulation, the patch plan,
and the needrestart-style search for processes that still map files a package upgrade replaced."""

from __future__ import annotations

import fnmatch
import os
import re

DEFAULT_SECURITY_PATTERN = r'(?i)(-security\b|debian-security)'
DEFAULT_REBOOT_PACKAGES = ['linux-image-*', '*kernel*']
# Mapped files outside these trees (memfd, /dev/shm, /tmp, caches, ...) are not package files.
PACKAGE_TREES = ('/usr/', '/lib/', '/lib64/', '/lib32/', '/bin/', '/sbin/', '/opt/')
# Units that must not be restarted blindly (needrestart keeps the same list).
DEFAULT_RESTART_EXCLUDE = ['dbus.service', 'dbus-broker.service', 'systemd-logind.service', 'user@*.service',
                           'getty@*.service', 'serial-getty@*.service', 'emergency.service', 'rescue.service']

_INST = re.compile(r'^Inst (\S+)(?: \[([^\]]*)\])?(?: \((\S+)(.*)\))?')
_REMV = re.compile(r'^Remv (\S+)(?: \[([^\]]*)\])?')
_UNIT = re.compile(r'/([^/]+\.(?:service|scope))$')


# --------------------------------------------------------------------------- dpkg status

def parse_dpkg_status(text):
    """``/var/lib/dpkg/status`` as ``{name: {'version', 'hold', 'installed'}}`` (architecture qualifiers dropped)."""
    packages = {}
    for stanza in re.split(r'\n\s*\n', text or ''):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] in (' ', '\t') or ':' not in line:
                continue
            key, value = line.split(':', 1)
            fields[key.strip().lower()] = value.strip()
        name = fields.get('package')
        if not name:
            continue
        status = fields.get('status', '').split()
        installed = len(status) == 3 and status[2] in ('installed', 'half-configured', 'unpacked', 'triggers-awaited',
                                                       'triggers-pending')
        packages[name] = {'version': fields.get('version'), 'hold': bool(status) and status[0] == 'hold',
                          'installed': installed}
    return packages


def installed_versions(status):
    return dict((name, info['version']) for name, info in status.items() if info['installed'])


def version_changes(before, after):
    """Packages whose installed version differs: list of ``{name, before, after}`` sorted by name."""
    changes = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            changes.append({'name': name, 'before': before.get(name), 'after': after.get(name)})
    return changes


# --------------------------------------------------------------------------- apt simulation

def parse_simulation(text, security_pattern=DEFAULT_SECURITY_PATTERN):
    """``apt-get -s dist-upgrade`` output: (upgrades, removals). Upgrades: ``{name, current, candidate, origin, security, new}``."""
    security = re.compile(security_pattern)
    upgrades, removals = [], []
    for line in (text or '').splitlines():
        match = _INST.match(line)
        if match:
            origin = (match.group(4) or '').strip()
            upgrades.append({'name': match.group(1), 'current': match.group(2), 'candidate': match.group(3),
                             'origin': origin, 'security': bool(security.search(origin)), 'new': match.group(2) is None})
            continue
        match = _REMV.match(line)
        if match:
            removals.append({'name': match.group(1), 'current': match.group(2)})
    return upgrades, removals


def parse_policy_candidates(text):
    """``apt-cache policy <pkg>...`` as ``{name: {'installed', 'candidate'}}``."""
    result, name = {}, None
    for line in (text or '').splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(':'):
            name = line.rstrip()[:-1].split(':')[0]
            result[name] = {'installed': None, 'candidate': None}
        elif name and line.strip().startswith(('Installed:', 'Candidate:')):
            key, value = line.strip().split(':', 1)
            value = value.strip()
            result[name][key.lower()] = None if value == '(none)' else value
    return result


def matches_any(name, patterns):
    for pattern in patterns or []:
        if fnmatch.fnmatchcase(name, pattern):
            return pattern
    return None


def build_plan(upgrades, held_candidates, mode, exclude, reboot_packages):
    """The patch plan: every pending upgrade with ``action`` (upgrade/skip) and ``skip_reason``.

    ``held_candidates``: ``{name: {'installed', 'candidate'}}`` for held packages (apt's simulation omits them).
    """
    plan = []
    for item in upgrades:
        entry = dict(item, held=False, excluded=False, action='upgrade', skip_reason=None, reboot=False)
        pattern = matches_any(item['name'], exclude)
        if pattern:
            entry.update(excluded=True, action='skip', skip_reason='excluded by pattern %s' % pattern)
        elif mode == 'security' and not item['security'] and not item['new']:
            entry.update(action='skip', skip_reason='not a security update (mode security)')
        elif mode == 'security' and item['new']:
            # New packages only arrive as dependencies of what is upgraded; apt pulls them in itself.
            entry.update(action='dependency', skip_reason=None)
        entry['reboot'] = entry['action'] != 'skip' and bool(matches_any(item['name'], reboot_packages))
        plan.append(entry)
    for name in sorted(held_candidates):
        versions = held_candidates[name]
        if versions.get('candidate') and versions.get('installed') and versions['candidate'] != versions['installed']:
            plan.append({'name': name, 'current': versions['installed'], 'candidate': versions['candidate'], 'origin': '',
                         'security': None, 'new': False, 'held': True, 'excluded': False, 'action': 'skip',
                         'skip_reason': 'held (apt-mark hold)', 'reboot': False})
    return sorted(plan, key=lambda entry: entry['name'])


def to_upgrade(plan):
    return [entry['name'] for entry in plan if entry['action'] == 'upgrade']


# --------------------------------------------------------------------------- processes still using replaced files

def parse_maps_deleted(text):
    """Paths of package files a process maps that were deleted (replaced) since it mapped them."""
    paths = set()
    for line in (text or '').splitlines():
        if not line.endswith(' (deleted)'):
            continue
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        path = parts[5][:-len(' (deleted)')]
        if path.startswith(PACKAGE_TREES):
            paths.add(path)
    return paths


def unit_of(cgroup_text):
    """The systemd unit a process belongs to, from ``/proc/<pid>/cgroup`` (cgroup v1 or v2), or None."""
    candidates = []
    for line in (cgroup_text or '').splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1], parts[2]
        if controllers in ('', 'name=systemd'):
            match = _UNIT.search(path.rstrip('/'))
            if match:
                candidates.append((controllers != '', match.group(1)))
    # Prefer the v2 / named systemd hierarchy.
    return sorted(candidates)[0][1] if candidates else None


def _read(path):
    try:
        with open(path, 'r', errors='replace') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def stale_processes(proc_root='/proc', own_pid=None, unreadable=None):
    """Processes that still run replaced package files: list of ``{pid, unit, comm, files}`` (files sorted, max 5).

    PIDs whose maps cannot be read (no CAP_SYS_PTRACE, or gone) are appended to ``unreadable`` when given.
    """
    found = []
    try:
        pids = sorted(int(entry) for entry in os.listdir(proc_root) if entry.isdigit())
    except OSError:
        return found
    for pid in pids:
        if own_pid is not None and pid == own_pid:
            continue
        base = os.path.join(proc_root, str(pid))
        maps = _read(os.path.join(base, 'maps'))
        if maps is None and unreadable is not None and os.path.exists(base):
            unreadable.append(pid)
        files = parse_maps_deleted(maps)
        try:
            exe = os.readlink(os.path.join(base, 'exe'))
        except OSError:
            exe = ''
        if exe.endswith(' (deleted)') and exe.startswith(PACKAGE_TREES):
            files.add(exe[:-len(' (deleted)')])
        if not files:
            continue
        unit = 'init' if pid == 1 else unit_of(_read(os.path.join(base, 'cgroup')))
        found.append({'pid': pid, 'unit': unit, 'comm': (_read(os.path.join(base, 'comm')) or '').strip(),
                      'files': sorted(files)[:5]})
    return found


def restart_targets(processes, exclude):
    """Units to restart for ``processes`` (from stale_processes): (restart, skipped) sorted lists of unit names.

    PID 1 (``init``) is never restarted (it is re-executed instead); processes outside a service unit (sessions,
    scopes) are skipped, as are units matching ``exclude``.
    """
    restart, skipped = set(), set()
    for proc in processes:
        unit = proc['unit']
        if unit == 'init':
            continue
        if not unit or not unit.endswith('.service') or matches_any(unit, exclude):
            skipped.add(unit or 'pid %d (%s)' % (proc['pid'], proc['comm']))
            continue
        restart.add(unit)
    return sorted(restart), sorted(skipped)


def predict_restarts(plan_names, package_files, processes_maps):
    """Services that would need a restart if ``plan_names`` were upgraded.

    ``package_files``: ``{package: set(paths)}`` from dpkg's ``.list`` files; ``processes_maps``: ``{unit: set(mapped paths)}``.
    """
    wanted = set()
    for name in plan_names:
        wanted |= package_files.get(name, set())
    return sorted(unit for unit, paths in processes_maps.items() if unit and paths & wanted)


def mapped_package_files(proc_root='/proc'):
    """``{unit: set(paths)}`` of package-tree files (and executables) mapped by every process, by systemd unit."""
    result = {}
    try:
        pids = [entry for entry in os.listdir(proc_root) if entry.isdigit()]
    except OSError:
        return result
    for pid in pids:
        base = os.path.join(proc_root, pid)
        paths = set()
        for line in (_read(os.path.join(base, 'maps')) or '').splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith(PACKAGE_TREES):
                paths.add(parts[5].replace(' (deleted)', ''))
        if not paths:
            continue
        unit = 'init' if pid == '1' else unit_of(_read(os.path.join(base, 'cgroup')))
        if unit:
            result.setdefault(unit, set()).update(paths)
    return result


def dpkg_list_files(names, info_dir='/var/lib/dpkg/info'):
    """``{package: set(paths)}`` read from dpkg's ``<name>.list`` / ``<name>:<arch>.list`` files."""
    result = {}
    try:
        entries = os.listdir(info_dir)
    except OSError:
        return result
    wanted = set(names)
    for entry in entries:
        if not entry.endswith('.list'):
            continue
        name = entry[:-5].split(':')[0]
        if name in wanted:
            text = _read(os.path.join(info_dir, entry)) or ''
            result.setdefault(name, set()).update(line.strip() for line in text.splitlines() if line.strip())
    return result


def reboot_state(run_dir='/run'):
    """``(required, packages)`` from Debian/Ubuntu's ``/run/reboot-required`` and ``reboot-required.pkgs``."""
    required = os.path.exists(os.path.join(run_dir, 'reboot-required'))
    text = _read(os.path.join(run_dir, 'reboot-required.pkgs')) or ''
    packages = sorted(set(line.strip() for line in text.splitlines() if line.strip()))
    return required, packages if required else []


def _natural_key(text):
    return [(0, int(part), '') if part.isdigit() else (1, 0, part) for part in re.split(r'(\d+)', text) if part]


def newer_kernel(running_release, installed_packages):
    """The release of an installed ``linux-image-<release>`` newer than the running kernel, or None.

    Debian only writes ``/run/reboot-required`` for a new kernel when a hook (unattended-upgrades') does;
    this is needrestart's kernel check: the newest installed image is not the one running. Hosts that run no
    kernel of their own (containers: the running release is not installed at all) never report one.
    """
    releases = [name[len('linux-image-'):] for name in installed_packages
                if name.startswith('linux-image-') and re.match(r'^[0-9]', name[len('linux-image-'):])]
    if not releases or running_release not in releases:
        return None
    newest = max(releases, key=_natural_key)
    return newest if newest != running_release else None


def render_versions(changes, side):
    """One ``name version`` line per package, for ``diff`` before/after."""
    return ''.join('%s %s\n' % (change['name'], change[side] or '(not installed)') for change in changes)
