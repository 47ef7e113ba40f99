#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_health
short_description: Measure every host-health fact of the daily runbook in one module execution
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Measures the health of one host and returns one check result (status V(ok), V(warning) or V(critical), value,
    threshold, message, alert class) per fact, plus the raw measurements.
  - "Covers: expected systemd services, their memory, failed systemd units, expected listening TCP ports,
    disk and inode use per real mount, host (or container) memory, CPU utilisation and load, pending package
    updates, whether a reboot is required and whether the clock is synchronised."
  - Reads C(/proc), C(/sys/fs/cgroup) and C(os.statvfs) directly and runs only a few commands
    (one C(systemctl show) for all units, C(systemctl list-units --state=failed), C(apt-get -s dist-upgrade)
    and C(chronyc -n tracking) or C(timedatectl show)), so that it finishes well under a second plus the CPU sample.
  - The module changes nothing on the host but its own cache of the update simulation (O(updates_cache)) and, with O(logs),
    the log cursor. It never fails because a check is not ok; the checks say so.
  - With O(logs) it also scans the logs written since its previous run, exactly as M(dealerscope.ops.log_scan) does, within the
    same module execution (one round trip per host for the daily runbook's host checks instead of two); the checks of the
    scan follow the host checks in RV(checks).
  - It fails before measuring anything, with a message naming the option(s), when a percentage is not between 0 and 100,
    a warning threshold is above its critical one (O(disk_warn_percent) and O(disk_crit_percent), O(inode_warn_percent) and
    O(inode_crit_percent), O(memory_warn_percent) and O(memory_crit_percent), O(cpu_limit_percent) and O(cpu_crit_percent)),
    O(service_memory_limit_mb) is not positive, O(clock_max_offset_ms) is negative or a port of O(expected_ports) is not a TCP port.
options:
  services:
    description:
      - systemd units expected to be active on this host. A name without a unit type suffix is a service.
      - A unit that is not active (inactive, failed, activating, not found) gives a V(critical) check C(service:<unit>)
        with alert V(service_down).
      - On a Debian host (see O(postgresql_layout)) an expected C(postgresql.service) - Debian's wrapper, which stays active
        whether or not any cluster runs - is judged by the units C(postgresql@<version>-<cluster>.service) of every cluster
        under O(postgresql_etc_dir) that starts automatically (its C(start.conf) says C(auto), or it has none); each gets its own
        check C(service:postgresql@<version>-<cluster>.service). When no such cluster is found, check C(service:postgresql.service)
        is V(critical). Clusters are found the way the patching role's database probe finds them.
    type: list
    elements: str
    default: []
  postgresql_layout:
    description:
      - How an expected C(postgresql.service) in O(services) is judged.
      - V(debian) replaces it with the units of the clusters that start automatically (see O(services)).
      - V(none) judges the unit C(postgresql.service) itself (the real server unit on Red Hat-like hosts).
      - V(auto) is V(debian) when C(/etc/debian_version) or O(postgresql_etc_dir) exists, else V(none).
    type: str
    choices: [auto, debian, none]
    default: auto
    version_added: 0.1.0
  postgresql_etc_dir:
    description:
      - Where the PostgreSQL clusters of a Debian host are configured (C(<dir>/<version>/<cluster>/postgresql.conf) and C(start.conf)).
    type: path
    default: /etc/postgresql
    version_added: 0.1.0
  memory_services:
    description:
      - systemd units whose memory is compared with O(service_memory_limit_mb) in check C(service_memory:<unit>)
        (alert V(resource_exhaustion)).
      - The memory is systemd's C(MemoryCurrent); when systemd does not account it, the summed resident set size of the
        processes in the unit's cgroup, else the resident set size of its main process.
      - A unit that is not running gives a V(warning) (alert V(service_down)), as its memory cannot be measured.
    type: list
    elements: str
    default: []
  service_memory_limit_mb:
    description:
      - Memory limit per service instance in MiB (readiness document, memory < 512 MB per instance).
      - At or above it the C(service_memory:<unit>) check is V(critical).
    type: int
    default: 512
  service_memory_warn_percent:
    description:
      - The C(service_memory:<unit>) check is a V(warning) at this percentage of O(service_memory_limit_mb).
    type: int
    default: 80
  disk_mounts:
    description:
      - Mount points to check disk and inode use of. When empty, every real mount is checked, see O(disk_exclude_fstypes).
      - Listed mount points are checked whatever their filesystem type; mount points that are not mounted are ignored.
    type: list
    elements: str
    default: []
  disk_exclude_fstypes:
    description:
      - Filesystem types that are not checked when O(disk_mounts) is empty (pseudo and image filesystems).
      - Besides these, bind mounts of single files (C(/etc/hosts), C(/etc/hostname), C(/etc/resolv.conf) in containers)
        are skipped, and a device mounted several times (bind mounts) is checked once.
      - C(overlay) is not excluded by default, as it is the root filesystem of containers.
    type: list
    elements: str
    default: [proc, sysfs, tmpfs, devtmpfs, devpts, cgroup, cgroup2, mqueue, securityfs, debugfs, tracefs, fusectl, configfs,
              pstore, bpf, autofs, hugetlbfs, nsfs, ramfs, binfmt_misc, fuse.lxcfs, squashfs]
  disk_warn_percent:
    description: Disk use (as C(df) computes it) at which check C(disk:<mount>) is a V(warning).
    type: int
    default: 80
  disk_crit_percent:
    description: Disk use at which check C(disk:<mount>) is V(critical).
    type: int
    default: 90
  inode_warn_percent:
    description: Inode use at which check C(inodes:<mount>) is a V(warning).
    type: int
    default: 80
  inode_crit_percent:
    description: Inode use at which check C(inodes:<mount>) is V(critical).
    type: int
    default: 90
  memory_warn_percent:
    description:
      - Memory use at which check C(memory) is a V(warning).
      - Memory use is C(MemTotal - MemAvailable) of C(/proc/meminfo) in percent of C(MemTotal); in a container whose
        cgroup memory limit is lower than C(MemTotal), the container's use (without inactive file cache) in percent
        of that limit, or the host figure when that is worse.
    type: int
    default: 85
  memory_crit_percent:
    description: Memory use at which check C(memory) is V(critical).
    type: int
    default: 95
  cpu_sample_seconds:
    description:
      - Length of the C(/proc/stat) sample the CPU utilisation is measured over.
      - The module gathers its other facts during the sample and subtracts its own CPU time (and its commands')
        from the measurement, so the sample costs at most this long.
    type: float
    default: 0.5
  cpu_limit_percent:
    description:
      - CPU utilisation at which check C(cpu) is a V(warning) (readiness document, CPU < 70 % average).
      - The utilisation compared is the average of the last O(cpu_average_hours) from sysstat's data when there is any,
        else the sample of O(cpu_sample_seconds); the check's message says which.
    type: int
    default: 70
  cpu_crit_percent:
    description: CPU utilisation at which check C(cpu) is V(critical) (compared like O(cpu_limit_percent)).
    type: int
    default: 90
  cpu_average_hours:
    description:
      - Hours of sysstat history the C(cpu) check averages (time-weighted, C(100 - %idle - %iowait) of C(sadf -j <file> -- -u))
        over the daily data files of that period in O(sysstat_dir); the peak is the busiest collection interval.
      - Without sysstat data in that period (sysstat not installed, collection disabled, a host younger than one collection
        interval), the check is judged on the sample of O(cpu_sample_seconds), its message starts the explanation with
        C(no sysstat data) and the module returns a warning saying so.
      - V(0) judges the sample without reading sysstat's data (for quick pre-checks). At most 168 (7 days, Debian's sysstat C(HISTORY)).
      - In a container sysstat's data is host-wide (C(sadc) reads C(/proc/stat), which is the host's unless lxcfs replaces it), so the
        container's own cgroup sample is judged and the host-wide average is only reported, see RV(health.cpu).
    type: float
    default: 24
  sysstat_dir:
    description:
      - Directory of sysstat's daily data files (C(saDD) or C(saYYYYMMDD)).
      - When not set, C(/var/log/sysstat) (Debian) or C(/var/log/sa) (Red Hat), whichever exists.
    type: path
  check_updates:
    description:
      - Whether to look for pending package updates with C(apt-get -s -o Debug::NoLocking=1 dist-upgrade).
      - This only simulates an upgrade with the package lists as they are; it never refreshes them.
      - When V(false), there is no C(updates) check and RV(health.updates) is V(null).
      - The simulation costs about a quarter of a second of CPU per host; its answer is kept in O(updates_cache).
    type: bool
    default: true
  updates_cache:
    description:
      - File on the managed host that keeps the last simulation's answer with a fingerprint of everything C(apt-get) reads
        to make it (inode, size and modification time of dpkg's status, apt's package lists, sources, preferences, configuration
        and keyrings).
      - The answer is reused only while that fingerprint is unchanged and it is younger than O(updates_cache_max_age_hours), so
        C(apt-get update), an installed or held package or a new pin makes the next run simulate again.
      - Written atomically (mode 0644, the directory is created), never in check mode and never after a failed simulation; when it
        cannot be written the module warns and the run goes on. An empty string disables the cache.
    type: path
    default: /var/cache/dealerscope-ops/updates.json
    version_added: 0.2.0
  updates_cache_max_age_hours:
    description:
      - Oldest answer of O(updates_cache) that is used, in hours (0 disables the cache, at most 720).
    type: float
    default: 24
    version_added: 0.2.0
  security_updates_status:
    description: Status of check C(updates) when security updates are pending.
    type: str
    choices: [warning, critical]
    default: warning
  clock_max_offset_ms:
    description:
      - Largest absolute offset of the system clock from NTP time (as C(chronyc tracking) reports it) for check
        C(clock_sync) to be V(ok).
    type: int
    default: 100
  expected_ports:
    description:
      - TCP ports something must listen on (IPv4 or IPv6, any address). A missing one gives a V(critical) check
        C(listening:<port>) with alert V(service_down).
    type: list
    elements: int
    default: []
  logs:
    description:
      - Scan the logs since the previous run too, with these options of M(dealerscope.ops.log_scan) (the same names,
        defaults and meaning; see that module for the checks it adds).
      - When not set, no log is read and nothing is written but the updates cache.
    type: dict
    version_added: 0.2.0
    suboptions:
      state_file:
        description: Cursor file on the host (mode 0600), see M(dealerscope.ops.log_scan).
        type: path
        default: /var/lib/dealerscope-ops/log_scan.json
      first_run_lookback_hours:
        description: How far back to read when there is no cursor yet.
        type: int
        default: 24
      max_journal_entries:
        description: Upper bound of journal entries read in one run; the rest is read by the next run.
        type: int
        default: 200000
      access_logs:
        description: JSON-lines access logs with a C(status) field (check C(app_5xx_rate)).
        type: list
        elements: path
        default: [/var/log/dealerscope/access.log]
      pii_paths:
        description: Files scanned for email addresses and card numbers (check C(pii_in_logs)); O(logs.access_logs) when empty.
        type: list
        elements: path
        default: []
      ssh_failures_warn:
        description: SSH authentication failures since the cursor that make C(ssh_auth_failures) a V(warning).
        type: int
        default: 10
      ssh_failures_crit:
        description: SSH authentication failures since the cursor that make C(ssh_auth_failures) V(critical).
        type: int
        default: 100
      error_rate_percent:
        description: Share of 5xx responses, in percent, above which C(app_5xx_rate) is V(critical).
        type: float
        default: 0.1
      min_requests:
        description: Fewest requests for C(app_5xx_rate) to judge a rate.
        type: int
        default: 20
      scan_journal:
        description: Whether to read the systemd journal (checks C(ssh_auth_failures), C(sudo_use), C(new_accounts)).
        type: bool
        default: true
      fail2ban:
        description: Whether fail2ban's bans are read (C(auto) when installed), required, or not read.
        type: str
        choices: [auto, required, disabled]
        default: auto
attributes:
  check_mode:
    support: full
    description:
      - Measures everything as a real run does, but writes neither the updates cache nor the log cursor of O(logs).
      - Reports V(changed) exactly as a real run would (only the log cursor's content changing counts).
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: partial
    description:
      - Without O(logs) nothing is ever reported changed (the updates cache is not a change of the host).
      - With O(logs), as M(dealerscope.ops.log_scan) - the cursor moves when new log entries were read.
notes:
  - "Checks and their alert classes: C(service:<unit>) (V(service_down)), C(service_memory:<unit>) (V(resource_exhaustion)),
    C(failed_units) (V(warning) when any unit failed, V(critical) with alert V(service_down) when one of O(services) did),
    C(listening:<port>) (V(service_down)), C(disk:<mount>), C(inodes:<mount>), C(memory), C(cpu) (all V(resource_exhaustion)),
    C(updates) (O(security_updates_status) when security updates are pending), C(reboot_required) (V(warning) when
    C(/run/reboot-required) exists) and C(clock_sync) (V(warning) when not synchronised or the offset is too large)."
  - C(cpu) judges the average the readiness document names (CPU < 70 % average) from sysstat's history, see O(cpu_average_hours);
    the role M(dealerscope.ops.baseline) installs sysstat and enables its collection.
  - A fact that cannot be measured is V(critical) for disk, memory and CPU, and a V(warning) for the clock.
  - C(updates) is V(ok) with a message saying so on hosts without C(apt-get). An upgrade is a security update when its
    origin mentions C(-security) or C(Debian-Security).
  - The clock is read from C(chronyc -n tracking) when chrony is installed and its daemon answers, else from
    C(timedatectl show -p NTPSynchronized). In containers chronyd usually runs with C(-x) (it does not set the clock)
    and may have no reachable server; the check then is a V(warning) that says so.
  - In a container, CPU utilisation is the container's own (from its cgroup), because C(/proc/stat) and C(/proc/loadavg)
    are host-wide there (without lxcfs) and would count the other containers; the load average stays host-wide and the
    load per CPU divides it by the CPUs this process may run on. For the same reason sysstat's history, which C(sadc)
    takes from C(/proc/stat), is judged in a container only when lxcfs provides the container's own C(/proc/stat).
  - Listening sockets are read from C(/proc/net/tcp) and C(/proc/net/tcp6) of the module's network namespace.
seealso:
  - module: dealerscope.ops.sshd_access_check
"""

EXAMPLES = r"""
- name: Host health of an API host
  dealerscope.ops.host_health:
    services: [dealerscope-api.service, ssh.service]
    memory_services: [dealerscope-api.service]
    service_memory_limit_mb: "{{ ops_limit_memory_mb_per_instance }}"
    cpu_limit_percent: "{{ ops_limit_cpu_avg_percent }}"
    expected_ports: [8000, 22]
  register: host_health

- name: Host health of the database primary (on Debian its clusters' units are judged), only its data mount
  dealerscope.ops.host_health:
    services: [postgresql.service]
    disk_mounts: [/, /var/lib/postgresql]
    security_updates_status: critical

- name: Show what is not fine
  ansible.builtin.debug:
    msg: "{{ host_health.checks | rejectattr('status', 'equalto', 'ok') | map(attribute='message') | list }}"
"""

RETURN = r"""
checks:
  description:
    - One check result per fact, in the order services, service memory, failed units, listening ports, disk and inodes
      per mount, memory, cpu, updates, reboot required, clock.
    - Each has C(name), C(status) (V(ok), V(warning) or V(critical)), C(value), C(threshold), C(unit), C(message),
      C(alert) (V(null) when ok) and, for some, C(details).
  returned: always
  type: list
  elements: dict
  sample:
    - name: service:dealerscope-api.service
      status: ok
      value: active
      threshold: active
      unit: ""
      message: dealerscope-api.service is active (running)
      alert: null
      details: {sub_state: running, load_state: loaded, main_pid: 412}
    - name: disk:/
      status: warning
      value: 83.1
      threshold: 80
      unit: "%"
      message: / disk use is 83.1 % (warning at >= 80 %)
      alert: resource_exhaustion
    - name: updates
      status: warning
      value: 2
      threshold: 0
      unit: ""
      message: 2 security update(s) pending (libssl3, openssl), 14 other
      alert: null
      details: {security: [libssl3, openssl], other_count: 14}
health:
  description: The raw measurements the checks were made from.
  returned: always
  type: dict
  contains:
    mounts:
      description: Disk and inode use of each checked mount.
      type: list
      elements: dict
      sample:
        - mount: /
          device: "0:52"
          fstype: overlay
          source: overlay
          size_bytes: 53660876800
          used_bytes: 21464350720
          avail_bytes: 29437411328
          used_percent: 42.2
          inodes_total: 3276800
          inodes_used: 412345
          inodes_percent: 12.6
    memory:
      description:
        - Memory use. C(percent) is what check C(memory) compares; C(ceiling) says whether it is measured against the
          host (V(host)) or the container's cgroup limit (V(cgroup)).
      type: dict
      sample:
        total_bytes: 25276502016
        available_bytes: 24764784640
        used_bytes: 511717376
        host_percent: 2.0
        cgroup_limit_bytes: 1073741824
        cgroup_used_bytes: 212254720
        cgroup_percent: 19.8
        ceiling: cgroup
        percent: 19.8
    cpu:
      description:
        - C(percent) is what check C(cpu) compares, C(basis) says what it is - V(average) (sysstat's average over
          C(history.hours)) or V(sample) (the sample of O(cpu_sample_seconds), C(sample_percent)).
        - The sample is taken without the module's own CPU time (and its commands'). In a container (C(/run/.containerenv) or
          C(/.dockerenv) exists) it is the container's cgroup CPU time in percent of the CPUs it may use (C(container_cpus),
          the usable CPUs or its CFS quota, whichever is lower) and C(scope) is V(container); otherwise, and when the cgroup
          cannot be read, the host-wide C(/proc/stat) figure (C(host_percent)) and C(scope) is V(host).
        - C(history) is what sysstat recorded in the last C(hours) - time-weighted C(avg_percent), C(peak_percent) of the
          busiest interval (C(peak_interval_seconds) long, ending at C(peak_at)), C(covered_seconds) of data in C(samples)
          records from C(first) to C(last), the C(files) read, its C(scope) (V(host), or V(container) under lxcfs) and the
          C(error) that left it (partly) empty; C(disabled) when O(cpu_average_hours=0).
      type: dict
      sample:
        percent: 3.2
        basis: sample
        scope: container
        sample_percent: 3.2
        host_percent: 41.7
        container_percent: 3.2
        container_cpus: 2
        cpus: 2
        sample_seconds: 0.51
        own_cpu_seconds: 0.12
        history:
          source: sysstat
          hours: 24
          avg_percent: 38.4
          peak_percent: 91.2
          peak_at: "2026-11-27T03:10:00Z"
          peak_interval_seconds: 600
          covered_seconds: 86400
          samples: 144
          first: "2026-11-26T05:40:00Z"
          last: "2026-11-27T05:40:00Z"
          scope: host
          files: [/var/log/sysstat/sa26, /var/log/sysstat/sa27]
          error: null
          disabled: false
    loadavg:
      description: The 1, 5 and 15 minute load averages.
      type: list
      elements: float
      sample: [0.12, 0.2, 0.18]
    postgresql:
      description:
        - The PostgreSQL clusters an expected C(postgresql.service) is judged by (see O(services)); V(null) when
          O(services) does not name it or it is judged itself (O(postgresql_layout)).
        - C(clusters) lists every cluster under C(etc_dir) with its C(start) mode; only those with C(auto) are expected active.
      type: dict
      sample:
        layout: debian
        etc_dir: /etc/postgresql
        clusters:
          - {version: "15", cluster: main, start: auto, auto: true, unit: postgresql@15-main.service, conf_dir: /etc/postgresql/15/main}
    services:
      description:
        - State of each unit of O(services) (with C(postgresql.service) replaced by its cluster units, see O(services)) and
          O(memory_services), by the name given.
        - C(memory_bytes), C(memory_mb) and C(memory_source) (V(MemoryCurrent), V(cgroup_rss) or V(main_pid_rss))
          are set for O(memory_services).
      type: dict
      sample:
        dealerscope-api.service:
          id: dealerscope-api.service
          load_state: loaded
          active_state: active
          sub_state: running
          main_pid: 412
          memory_current_bytes: 58720256
          control_group: /system.slice/dealerscope-api.service
          memory_bytes: 58720256
          memory_mb: 56.0
          memory_source: MemoryCurrent
    listening:
      description: Listening TCP sockets (IPv4 and IPv6), sorted by port.
      type: list
      elements: dict
      sample:
        - {port: 22, address: 0.0.0.0, family: tcp}
        - {port: 22, address: "::", family: tcp6}
        - {port: 8000, address: 127.0.0.1, family: tcp}
    updates:
      description:
        - Pending upgrades from C(apt-get -s dist-upgrade); V(null) when O(check_updates=false).
        - C(supported) is V(false) on hosts without C(apt-get); C(error) is set when the simulation failed.
        - C(cache) says whether the answer came from O(updates_cache) (C(used)), when it was computed (C(computed_at), UTC), whether
          this run wrote it (C(written)), why the cache was not used (C(reason), for example C(apt state changed)) and a write
          error (C(error)).
      type: dict
      sample:
        supported: true
        total: 16
        security: [libssl3, openssl]
        other_count: 14
        packages:
          - {name: libssl3, old: 3.0.15-1~deb12u1, new: 3.0.16-1~deb12u1, origin: "Debian-Security:12/stable-security [amd64]", security: true}
        error: null
        cache: {path: /var/cache/dealerscope-ops/updates.json, used: true, computed_at: "2026-11-28T06:00:03Z", written: false,
                reason: null, error: null}
    reboot_required:
      description: Whether C(/run/reboot-required) exists, and the packages listed in C(/run/reboot-required.pkgs).
      type: dict
      sample: {required: false, packages: []}
    clock:
      description:
        - Clock synchronisation as reported by C(chronyc) or C(timedatectl) (C(source)); C(offset_ms) is positive when
          the system clock is ahead of NTP time.
      type: dict
      sample:
        source: chronyc
        synchronized: true
        offset_ms: 0.412
        leap_status: Normal
        reference: A29FC87B (162.159.200.123)
        chronyd_no_clock_control: false
        error: null
    failed_units:
      description: Names of the failed systemd units; V(null) when systemctl is not available.
      type: list
      elements: str
      sample: [logrotate.service]
    elapsed_ms:
      description: Runtime of the module itself in milliseconds, from argument parsing to the result (without Python start-up).
      type: int
      sample: 540
logs:
  description:
    - With O(logs), what the log scan read (C(summary), C(cursor), C(counts)), as M(dealerscope.ops.log_scan) returns them; its
      checks are in RV(checks). V(null) without O(logs).
  returned: always
  type: dict
  version_added: 0.2.0
  sample:
    summary: {ok: 5, warning: 0, critical: 0, status: ok}
    cursor: {state_file: /var/lib/dealerscope-ops/log_scan.json, first_run: false, written: true}
    counts: {journal_entries: 12, ssh_failures: 0, requests: 0, errors_5xx: 0}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.pg_clusters import (
    discover_clusters,
    is_wrapper_unit,
)
from ansible_collections.dealerscope.ops.plugins.module_utils.host_health import (
    CONTAINER_MARKERS,
    DEFAULT_EXCLUDE_FSTYPES,
    SHOW_PROPERTIES,
    SYSSTAT_DIRS,
    cgroup_cpu_percent,
    cgroup_cpu_quota,
    cgroup_cpu_usage_seconds,
    cgroup_memory_limit,
    chronyd_options,
    clock_state,
    cpu_basis,
    cpu_history,
    cpu_percent,
    history_is_judged,
    listening_ports,
    match_show_blocks,
    memory_usage,
    parse_apt_simulation,
    parse_chronyc_tracking,
    parse_failed_units,
    parse_loadavg,
    parse_meminfo,
    parse_mountinfo,
    parse_proc_mounts,
    parse_proc_net_tcp,
    parse_proc_stat_cpu,
    parse_sadf_cpu,
    parse_systemctl_show,
    proc_stat_is_virtual,
    select_mounts,
    statvfs_usage,
    sysstat_files,
    unit_memory,
    unit_state,
    evaluate,
    expected_services,
    validate_thresholds,
)

from ansible_collections.dealerscope.ops.plugins.module_utils import updates_cache
from ansible_collections.dealerscope.ops.plugins.module_utils.log_scan import epoch_to_iso
from ansible_collections.dealerscope.ops.plugins.module_utils.log_scan_run import ARGUMENT_SPEC as LOG_SCAN_SPEC, scan, validate as validate_logs

C_ENV = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C', 'SYSTEMD_PAGER': '', 'SYSTEMD_COLORS': '0'}


def read_text(path):
    """Return the file's text, or None when it is missing or unreadable."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', errors='replace')
    except (IOError, OSError):
        return None


def is_directory(path):
    return os.path.isdir(path)


def fs_stat(path):
    return os.statvfs(path)


def path_exists(path):
    return os.path.exists(path)


def wall_clock():
    return time.time()


def own_cpu_seconds():
    """CPU time of this process and its waited-for children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0)) or os.cpu_count()
    except (AttributeError, OSError):
        return os.cpu_count()


def apt_fingerprint():
    return updates_cache.fingerprint()


def one_line(text):
    """Command output as one line, for messages."""
    return '; '.join(line.strip() for line in (text or '').splitlines() if line.strip())


def unique(items):
    result = []
    for item in items:
        if item not in result:
            result.append(item)
    return result


def gather_services(module, units, memory_units):
    services = dict((unit, unit_state({})) for unit in units)
    if not units:
        return services
    systemctl = module.get_bin_path('systemctl')
    if not systemctl:
        for unit in units:
            services[unit]['error'] = 'systemctl not found'
        return services
    rc, out, err = module.run_command([systemctl, 'show', '--no-pager', '-p', ','.join(SHOW_PROPERTIES)] + units,
                                      environ_update=C_ENV)
    blocks = parse_systemctl_show(out)
    if rc != 0 and not blocks:
        for unit in units:
            services[unit]['error'] = 'systemctl show failed (rc=%s): %s' % (rc, one_line(err or out))
        return services
    for unit, block in match_show_blocks(units, blocks).items():
        services[unit] = unit_state(block)
    for unit in memory_units:
        memory, source = unit_memory(services[unit])
        services[unit].update(memory_bytes=memory, memory_mb=None if memory is None else round(memory / 1048576.0, 1),
                              memory_source=source)
    return services


def gather_postgresql(params):
    """The PostgreSQL clusters an expected postgresql.service stands for on a Debian host; None when it is judged itself."""
    if not any(is_wrapper_unit(unit) for unit in params['services']):
        return None
    layout = params['postgresql_layout']
    etc_dir = params['postgresql_etc_dir']
    if layout == 'auto':
        layout = 'debian' if path_exists('/etc/debian_version') or path_exists(etc_dir) else 'none'
    if layout != 'debian':
        return None
    return {'layout': layout, 'etc_dir': etc_dir, 'clusters': discover_clusters(etc_dir)}


def gather_failed_units(module):
    systemctl = module.get_bin_path('systemctl')
    if not systemctl:
        return None
    rc, out, _err = module.run_command([systemctl, 'list-units', '--state=failed', '--no-legend', '--plain', '--no-pager'],
                                       environ_update=C_ENV)
    if rc != 0 and not out.strip():
        return None
    return parse_failed_units(out)


def gather_cpu_history(module, params, now):
    """sysstat's CPU history of the last ``cpu_average_hours`` (see ``cpu_history``), with what was read and what failed."""
    hours = params['cpu_average_hours']
    result = {'source': 'sysstat', 'hours': hours, 'avg_percent': None, 'peak_percent': None, 'peak_at': None,
              'peak_interval_seconds': None, 'covered_seconds': 0, 'samples': 0, 'first': None, 'last': None,
              'scope': None, 'files': [], 'error': None, 'disabled': not hours}
    if not hours:
        return result
    sadf = module.get_bin_path('sadf')
    if not sadf:
        result['error'] = 'sadf not found, sysstat is not installed'
        return result
    directories = [params['sysstat_dir']] if params['sysstat_dir'] else [path for path in SYSSTAT_DIRS if path_exists(path)]
    if not directories:
        result['error'] = 'no sysstat data directory (%s)' % ', '.join(SYSSTAT_DIRS)
        return result
    result['files'] = sysstat_files(directories[0], now, hours, exists=path_exists)
    if not result['files']:
        result['error'] = 'no sysstat data file of the last %g h in %s' % (hours, directories[0])
        return result
    records = []
    errors = []
    for path in result['files']:
        rc, out, err = module.run_command([sadf, '-j', path, '--', '-u'], environ_update=C_ENV)
        if rc != 0:
            errors.append('sadf -j %s failed (rc=%s): %s' % (path, rc, one_line(err or out)))
            continue
        try:
            records.extend(parse_sadf_cpu(out))
        except ValueError as exc:
            errors.append('sadf -j %s: %s' % (path, exc))
    summary = cpu_history(records, now, hours)
    if summary:
        result.update(summary)
    elif not errors:
        errors.append('no CPU record of the last %g h in %s (collection not enabled, or younger than one interval)'
                      % (hours, ', '.join(result['files'])))
    result['error'] = '; '.join(errors) or None
    return result


def gather_mounts(params):
    text = read_text('/proc/self/mountinfo')
    if text:
        mounts = parse_mountinfo(text)
    else:
        mounts = parse_proc_mounts(read_text('/proc/mounts'))
        for entry in mounts:
            try:
                entry['device'] = str(os.stat(entry['mount']).st_dev)
            except OSError:
                entry['device'] = None
    result = []
    for entry in select_mounts(mounts, params['disk_exclude_fstypes'], only=params['disk_mounts'], isdir=is_directory):
        try:
            usage = statvfs_usage(entry['mount'], fs_stat(entry['mount']))
        except OSError as exc:
            usage = {'mount': entry['mount'], 'error': str(exc)}
        usage.update(device=entry['device'], fstype=entry['fstype'], source=entry['source'])
        result.append(usage)
    return result


def simulate_updates(module, apt_get):
    rc, out, err = module.run_command([apt_get, '-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'], environ_update=C_ENV)
    if rc != 0:
        return {'supported': True, 'total': None, 'security': [], 'other_count': None, 'packages': [],
                'error': 'apt-get -s dist-upgrade failed (rc=%s): %s' % (rc, one_line('\n'.join((err or out).strip().splitlines()[-2:])))}
    packages = parse_apt_simulation(out)
    security = [package['name'] for package in packages if package['security']]
    return {'supported': True, 'total': len(packages), 'security': security, 'other_count': len(packages) - len(security),
            'packages': packages, 'error': None}


def gather_updates(module, params):
    """Pending upgrades: the simulation's answer, from the host's cache while apt's inputs are unchanged (see updates_cache)."""
    apt_get = module.get_bin_path('apt-get')
    if not apt_get:
        return {'supported': False, 'reason': 'apt-get not found, not supported on this host', 'total': None, 'security': [],
                'other_count': None, 'packages': [], 'error': None}
    path = params['updates_cache']
    now = wall_clock()
    key = apt_fingerprint() if path else None
    value, detail = updates_cache.load(path, key, now, params['updates_cache_max_age_hours'] * 3600)
    if value is not None:
        value['cache'] = {'path': path, 'used': True, 'computed_at': epoch_to_iso(detail), 'written': False, 'reason': None, 'error': None}
        return value
    value = simulate_updates(module, apt_get)
    cache = {'path': path or None, 'used': False, 'computed_at': epoch_to_iso(now), 'written': False, 'reason': detail, 'error': None}
    # A failed simulation is not cached (the next run tries again); nor is anything written in check mode.
    if path and detail != 'disabled' and value['error'] is None and not module.check_mode:
        try:
            updates_cache.store(path, key, value, now)
            cache['written'] = True
        except (IOError, OSError) as exc:
            cache['error'] = 'cannot write the updates cache %s: %s' % (path, exc)
            module.warn('host_health: %s (the simulation runs again next time; set updates_cache to a writable path, '
                        'or to an empty string to disable the cache)' % cache['error'])
    value['cache'] = cache
    return value


def gather_reboot():
    required = path_exists('/run/reboot-required')
    packages = unique((read_text('/run/reboot-required.pkgs') or '').split()) if required else []
    return {'required': required, 'packages': packages}


def gather_clock(module):
    errors = []
    chronyc = module.get_bin_path('chronyc')
    if chronyc:
        rc, out, err = module.run_command([chronyc, '-n', 'tracking'], environ_update=C_ENV)
        tracking = parse_chronyc_tracking(out) if rc == 0 else None
        if tracking and tracking['leap_status'] is not None:
            return clock_state(tracking=tracking, chronyd_args=chronyd_options(), source='chronyc')
        errors.append('chronyc tracking: %s' % (one_line(err or out) or 'rc=%s' % rc))
    timedatectl = module.get_bin_path('timedatectl')
    if timedatectl:
        rc, out, err = module.run_command([timedatectl, 'show', '-p', 'NTPSynchronized', '--value'], environ_update=C_ENV)
        value = out.strip().lower()
        if rc == 0 and value in ('yes', 'no'):
            return clock_state(ntp_synchronized=value == 'yes', chronyd_args=chronyd_options() if chronyc else None,
                               source='timedatectl', error='; '.join(errors) or None)
        errors.append('timedatectl: %s' % (one_line(err or out) or 'rc=%s' % rc))
    if not chronyc and not timedatectl:
        errors.append('neither chronyc nor timedatectl is installed')
    return clock_state(source=None, error='; '.join(errors))


def main():
    start = time.monotonic()
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type='list', elements='str', default=[]),
            memory_services=dict(type='list', elements='str', default=[]),
            service_memory_limit_mb=dict(type='int', default=512),
            service_memory_warn_percent=dict(type='int', default=80),
            disk_mounts=dict(type='list', elements='str', default=[]),
            disk_exclude_fstypes=dict(type='list', elements='str', default=list(DEFAULT_EXCLUDE_FSTYPES)),
            disk_warn_percent=dict(type='int', default=80),
            disk_crit_percent=dict(type='int', default=90),
            inode_warn_percent=dict(type='int', default=80),
            inode_crit_percent=dict(type='int', default=90),
            memory_warn_percent=dict(type='int', default=85),
            memory_crit_percent=dict(type='int', default=95),
            cpu_sample_seconds=dict(type='float', default=0.5),
            cpu_limit_percent=dict(type='int', default=70),
            cpu_crit_percent=dict(type='int', default=90),
            cpu_average_hours=dict(type='float', default=24.0),
            sysstat_dir=dict(type='path'),
            check_updates=dict(type='bool', default=True),
            updates_cache=dict(type='path', default='/var/cache/dealerscope-ops/updates.json'),
            updates_cache_max_age_hours=dict(type='float', default=24.0),
            security_updates_status=dict(type='str', default='warning', choices=['warning', 'critical']),
            clock_max_offset_ms=dict(type='int', default=100),
            expected_ports=dict(type='list', elements='int', default=[]),
            postgresql_layout=dict(type='str', default='auto', choices=['auto', 'debian', 'none']),
            postgresql_etc_dir=dict(type='path', default='/etc/postgresql'),
            logs=dict(type='dict', options=LOG_SCAN_SPEC),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problems = validate_thresholds(params)
    if problems:
        module.fail_json(msg='invalid options: %s' % '; '.join(problems))
    if params['cpu_sample_seconds'] <= 0 or params['cpu_sample_seconds'] > 60:
        module.fail_json(msg='cpu_sample_seconds must be greater than 0 and at most 60, got %s' % params['cpu_sample_seconds'])
    logs_problem = validate_logs(params['logs']) if params['logs'] is not None else None
    if logs_problem:
        module.fail_json(msg='invalid logs options: %s' % logs_problem)
    if params['updates_cache_max_age_hours'] < 0 or params['updates_cache_max_age_hours'] > 720:
        module.fail_json(msg='updates_cache_max_age_hours must be between 0 (no cache) and 720, got %s' % params['updates_cache_max_age_hours'])
    if params['cpu_average_hours'] < 0 or params['cpu_average_hours'] > 168:
        module.fail_json(msg='cpu_average_hours must be between 0 (sample only) and 168, got %s' % params['cpu_average_hours'])

    # The CPU sample runs while everything else is gathered; the module's own CPU time is subtracted.
    in_container = any(path_exists(marker) for marker in CONTAINER_MARKERS)
    cpu_first = parse_proc_stat_cpu(read_text('/proc/stat'))
    cgroup_first = cgroup_cpu_usage_seconds() if in_container else None
    own_first = own_cpu_seconds()
    sample_start = time.monotonic()

    postgresql = gather_postgresql(params)
    units = unique(expected_services(params['services'], postgresql) + params['memory_services'])
    health = {
        'postgresql': postgresql,
        'services': gather_services(module, units, unique(params['memory_services'])),
        'failed_units': gather_failed_units(module),
        'listening': listening_ports(parse_proc_net_tcp(read_text('/proc/net/tcp'), 'tcp') +
                                     parse_proc_net_tcp(read_text('/proc/net/tcp6'), 'tcp6')),
        'mounts': gather_mounts(params),
        'memory': memory_usage(parse_meminfo(read_text('/proc/meminfo')), cgroup_memory_limit(read_text('/proc/self/cgroup'))),
        'updates': gather_updates(module, params) if params['check_updates'] else None,
        'reboot_required': gather_reboot(),
        'clock': gather_clock(module),
    }
    history = gather_cpu_history(module, params, wall_clock())

    remaining = params['cpu_sample_seconds'] - (time.monotonic() - sample_start)
    if remaining > 0:
        time.sleep(remaining)
    own = own_cpu_seconds() - own_first
    cpu_second = parse_proc_stat_cpu(read_text('/proc/stat'))
    cgroup_second = cgroup_cpu_usage_seconds() if cgroup_first is not None else None
    elapsed = time.monotonic() - sample_start
    # The log scan (journal, access logs, fail2ban since the cursor) runs after the CPU sample: its own CPU would be
    # subtracted, but not what it makes other processes of the host do (fail2ban-server answering its status queries).
    logs = scan(module, params['logs']) if params['logs'] is not None else None
    clock_ticks = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100
    cpus = usable_cpus()
    quota = cgroup_cpu_quota() if in_container else None
    host_percent = cpu_percent(cpu_first, cpu_second, own_jiffies=int(own * clock_ticks))
    container_cpus = min(cpus, quota) if quota else cpus
    container_percent = cgroup_cpu_percent(cgroup_first, cgroup_second, elapsed, container_cpus, own_seconds=own)
    sample_percent = container_percent if container_percent is not None else host_percent
    virtual_proc_stat = in_container and proc_stat_is_virtual(parse_mountinfo(read_text('/proc/self/mountinfo')))
    basis, history['scope'] = cpu_basis(history, container_percent, in_container, virtual_proc_stat)
    if history['avg_percent'] is None and not history['disabled'] and history_is_judged(in_container, virtual_proc_stat, container_percent):
        module.warn('host_health: no sysstat data (%s): CPU judged on a %g s sample, not on the %g h average'
                    % (history['error'], params['cpu_sample_seconds'], params['cpu_average_hours']))
    health['cpu'] = {
        'percent': history['avg_percent'] if basis == 'average' else sample_percent,
        'basis': basis,
        'scope': history['scope'] if basis == 'average' else ('container' if container_percent is not None else 'host'),
        'sample_percent': sample_percent,
        'host_percent': host_percent,
        'container_percent': container_percent,
        'container_cpus': round(container_cpus, 2) if in_container else None,
        'cpus': cpus,
        'sample_seconds': round(elapsed, 3),
        'own_cpu_seconds': round(own, 3),
        'history': history,
    }
    health['loadavg'] = parse_loadavg(read_text('/proc/loadavg'))

    checks = evaluate(params, health)
    health['elapsed_ms'] = int(round((time.monotonic() - start) * 1000))
    if logs is None:
        module.exit_json(changed=False, checks=checks, health=health, logs=None)
    checks.extend(logs['checks'])
    error = logs.pop('error')
    logs.pop('checks')
    if error:
        module.fail_json(msg='logs: %s' % error, checks=checks, health=health, logs=logs)
    module.exit_json(changed=logs.pop('changed'), checks=checks, health=health, logs=logs)


if __name__ == '__main__':
    main()
