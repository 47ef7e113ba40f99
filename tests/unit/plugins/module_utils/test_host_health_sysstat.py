# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""host_health's CPU history from sysstat: parsing real ``sadf -j`` output, the 24 h window, what is judged."""

from __future__ import annotations

import calendar
import copy
import json
import os
import time

import pytest

from ansible_collections.dealerscope.ops.plugins.module_utils import host_health as hh

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'sadf')

PARAMS = dict(
    services=[], memory_services=[], service_memory_limit_mb=512, service_memory_warn_percent=80,
    disk_mounts=[], disk_exclude_fstypes=list(hh.DEFAULT_EXCLUDE_FSTYPES), disk_warn_percent=80, disk_crit_percent=90,
    inode_warn_percent=80, inode_crit_percent=90, memory_warn_percent=85, memory_crit_percent=95,
    cpu_sample_seconds=0.5, cpu_limit_percent=70, cpu_crit_percent=90, cpu_average_hours=24, check_updates=True,
    security_updates_status='warning', clock_max_offset_ms=100, expected_ports=[],
)


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def epoch(text):
    return calendar.timegm(time.strptime(text, '%Y-%m-%d %H:%M:%S'))


def day_of_records(end, busy_by_index, interval=600, count=144):
    """sadf -j output of ``count`` records ``interval`` apart ending at ``end``, in the shape of the real fixtures."""
    data = json.loads(fixture('debian12_sadc_1_3.json'))
    template = data['sysstat']['hosts'][0]['statistics'][0]
    statistics = []
    for index in range(count):
        stamp = end - (count - 1 - index) * interval
        busy = busy_by_index(index)
        entry = copy.deepcopy(template)
        entry['timestamp'].update(date=time.strftime('%Y-%m-%d', time.gmtime(stamp)), time=time.strftime('%H:%M:%S', time.gmtime(stamp)),
                                  interval=interval)
        entry['cpu-load'][0].update(user=round(busy * 0.8, 2), system=round(busy * 0.2, 2), iowait=0.0, idle=round(100.0 - busy, 2))
        statistics.append(entry)
    data['sysstat']['hosts'][0]['statistics'] = statistics
    return json.dumps(data)


# --------------------------------------------------------------------------- parse_sadf_cpu (real sadf output)

def test_parse_real_sadf_output():
    records = hh.parse_sadf_cpu(fixture('debian12_sadc_1_3.json'))
    assert records == [
        {'end': epoch('2026-11-27 05:33:33'), 'interval': 1, 'busy': pytest.approx(0.5)},
        {'end': epoch('2026-11-27 05:33:34'), 'interval': 1, 'busy': pytest.approx(38.69)},
    ]


def test_parse_busy_counts_iowait_as_idle():
    records = hh.parse_sadf_cpu(fixture('debian12_busy.json'))
    assert [record['interval'] for record in records] == [2, 2]
    assert records[0]['busy'] == pytest.approx(100 - 17.88)
    assert records[1]['busy'] == pytest.approx(100 - 1.25 - 0.25)  # idle 1.25, iowait 0.25


def test_parse_restarts_comments_and_per_cpu_rows():
    restarts = hh.parse_sadf_cpu(fixture('debian12_restarts_comment.json'))
    assert [(record['end'], record['interval']) for record in restarts] == [(epoch('2026-11-27 05:33:50'), 2), (epoch('2026-11-27 05:33:54'), 2)]
    # -P ALL adds a row per CPU: only the "all" row is the machine's utilisation
    per_cpu = hh.parse_sadf_cpu(fixture('debian12_per_cpu.json'))
    assert [record['busy'] for record in per_cpu] == [pytest.approx(100 - 96.73), pytest.approx(100 - 95.02)]


def test_parse_file_with_only_a_boot_record_has_no_records():
    assert hh.parse_sadf_cpu(fixture('debian12_boot_only.json')) == []


def test_parse_local_time_stamps():
    text = fixture('debian12_sadc_1_3.json').replace('"utc": 1', '"utc": 0')
    records = hh.parse_sadf_cpu(text)
    assert records[0]['end'] == time.mktime(time.strptime('2026-11-27 05:33:33', '%Y-%m-%d %H:%M:%S'))


@pytest.mark.parametrize('text', ['', 'Invalid system activity file: /var/log/sysstat/sa27', '{"sysstat": {}}', '[]'])
def test_parse_rejects_what_is_not_sadf_json(text):
    with pytest.raises(ValueError, match='not sadf JSON'):
        hh.parse_sadf_cpu(text)


# --------------------------------------------------------------------------- cpu_history

def test_history_is_time_weighted_over_the_window():
    now = epoch('2026-11-27 06:00:00')
    records = [
        {'end': now - 25 * 3600, 'interval': 600, 'busy': 100.0},  # older than 24 h: not counted
        {'end': now - 3000, 'interval': 3000, 'busy': 10.0},
        {'end': now - 600, 'interval': 600, 'busy': 70.0},
        {'end': now - 600, 'interval': 600, 'busy': 70.0},  # the same record from a file read twice
    ]
    history = hh.cpu_history(records, now, 24)
    assert history['avg_percent'] == 20.0  # (10 * 3000 + 70 * 600) / 3600
    assert history['peak_percent'] == 70.0 and history['peak_at'] == '2026-11-27T05:50:00Z' and history['peak_interval_seconds'] == 600
    assert history['covered_seconds'] == 3600 and history['samples'] == 2
    assert history['first'] == '2026-11-27T04:20:00Z' and history['last'] == '2026-11-27T05:50:00Z'


def test_history_of_a_real_day():
    now = epoch('2026-11-27 06:00:00')
    # 10-minute records (Debian's default), busy 95 % for two hours of the night, 40 % otherwise
    text = day_of_records(now, lambda index: 95.0 if 60 <= index < 72 else 40.0)
    history = hh.cpu_history(hh.parse_sadf_cpu(text), now, 24)
    assert history['samples'] == 144 and history['covered_seconds'] == 86400
    assert history['avg_percent'] == pytest.approx((12 * 95.0 + 132 * 40.0) / 144, abs=0.05)
    assert history['peak_percent'] == 95.0
    assert hh.cpu_history(hh.parse_sadf_cpu(text), now + 48 * 3600, 24) is None  # all of it too old


def test_history_none_without_records():
    assert hh.cpu_history([], 1000.0, 24) is None


def test_sysstat_files_today_and_yesterday(monkeypatch):
    monkeypatch.setenv('TZ', 'UTC')
    time.tzset()
    try:
        now = epoch('2026-11-27 06:00:00')
        present = {'/var/log/sysstat/sa26', '/var/log/sysstat/sa27', '/var/log/sysstat/sa20261127', '/var/log/sysstat/sa25'}
        files = hh.sysstat_files('/var/log/sysstat', now, 24, exists=present.__contains__)
        assert files == ['/var/log/sysstat/sa26', '/var/log/sysstat/sa20261127', '/var/log/sysstat/sa27']
        assert hh.sysstat_files('/var/log/sysstat', now, 72, exists=present.__contains__)[0] == '/var/log/sysstat/sa25'
    finally:
        monkeypatch.delenv('TZ')
        time.tzset()


# --------------------------------------------------------------------------- what is judged

@pytest.mark.parametrize('in_container,virtual,container_percent,expected', [
    (False, False, None, ('average', 'host')),
    (True, False, 3.0, ('sample', 'host')),  # sadc's /proc/stat is the host's: the container's own sample is judged
    (True, True, 3.0, ('average', 'container')),  # lxcfs gives the container its own /proc/stat
    (True, False, None, ('average', 'host')),  # no cgroup sample: the host-wide average beats a host-wide sample
])
def test_cpu_basis(in_container, virtual, container_percent, expected):
    assert hh.cpu_basis({'avg_percent': 50.0}, container_percent, in_container, virtual) == expected
    assert hh.cpu_basis({'avg_percent': None}, container_percent, in_container, virtual)[0] == 'sample'


def test_proc_stat_is_virtual_under_lxcfs():
    mounts = hh.parse_mountinfo('200 100 0:70 /proc/stat /proc/stat rw,nosuid - fuse.lxcfs lxcfs rw\n')
    assert hh.proc_stat_is_virtual(mounts)
    assert not hh.proc_stat_is_virtual(hh.parse_mountinfo('124 123 0:59 / /proc rw - proc proc rw\n'))


def _cpu(**overrides):
    cpu = {'percent': 20.0, 'basis': 'average', 'scope': 'host', 'sample_percent': 95.0, 'host_percent': 95.0, 'cpus': 2,
           'sample_seconds': 0.5,
           'history': {'hours': 24, 'avg_percent': 20.0, 'peak_percent': 97.5, 'peak_at': '2026-11-27T03:10:00Z',
                       'peak_interval_seconds': 600, 'covered_seconds': 85800, 'scope': 'host', 'error': None}}
    cpu.update(overrides)
    return cpu


def _check(cpu):
    checks = hh.evaluate(PARAMS, {'cpu': cpu, 'loadavg': [1.0, 1.0, 1.0], 'memory': {}, 'clock': {}})
    return [check for check in checks if check['name'] == 'cpu'][0]


def test_check_judges_the_average_and_names_it():
    check = _check(_cpu())
    assert check['status'] == 'ok' and check['value'] == 20.0  # the 95 % sample is not what is judged
    assert check['message'].startswith('CPU utilisation (24 h average, sysstat) is 20 %')
    assert 'peak 97.5 % (10 min to 03:10 UTC), 23.8 h of data in the last 24 h' in check['message']
    assert check['details']['basis'] == 'average' and check['details']['sample_percent'] == 95.0
    assert check['details']['peak_percent'] == 97.5
    busy = _check(_cpu(percent=75.0, history=dict(_cpu()['history'], avg_percent=75.0)))
    assert busy['status'] == 'warning' and busy['alert'] == 'resource_exhaustion'


def test_check_without_history_says_it_is_a_sample():
    check = _check(_cpu(percent=95.0, basis='sample', history={'hours': 24, 'avg_percent': None,
                                                               'error': 'sadf not found, sysstat is not installed'}))
    assert check['status'] == 'critical' and check['value'] == 95.0
    assert 'no sysstat data: judged on a 0.5 s sample (sadf not found, sysstat is not installed)' in check['message']
    assert check['details']['basis'] == 'sample' and check['details']['average_percent'] is None


def test_check_in_a_container_reports_the_host_wide_average():
    check = _check(_cpu(percent=3.0, basis='sample', scope='container', sample_percent=3.0))
    assert check['status'] == 'ok' and check['value'] == 3.0 and 'of the container' in check['message']
    assert "judged on a 0.5 s sample of the container's cgroup: sysstat's 24 h average (20.0 %, peak 97.5 %)" in check['message']
    assert 'host-wide in a container' in check['message']
    assert check['details']['average_percent'] == 20.0 and check['details']['history_scope'] == 'host'


def test_check_with_history_disabled():
    check = _check(_cpu(percent=10.0, basis='sample', history={'hours': 0, 'avg_percent': None, 'disabled': True}))
    assert 'judged on a 0.5 s sample (cpu_average_hours=0)' in check['message'] and 'no sysstat data' not in check['message']
