# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugin_utils/report_slices: the parts of a sliced run merge into what the unsliced run reports."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import ops_report
from ansible_collections.dealerscope.ops.plugins.plugin_utils import report_slices

STATUSES = ('ok', 'warning', 'critical')


def check(name, status, message='m'):
    return {'name': name, 'status': status, 'value': 1, 'threshold': 0, 'unit': '', 'message': message,
            'alert': None if status == 'ok' else 'resource_exhaustion'}


def part(hosts, play_hosts, started='2026-11-27T06:00:00Z', meta=None, failed=None, unreachable=None, job=None, slices=3):
    return report_slices.make_part('daily', '77', slices, started, play_hosts, job or {},
                                   dict(hosts=hosts, failed=failed or {}, unreachable=unreachable or [], meta=meta or {},
                                        events=[], delivery_checks=[]))


def test_the_part_key_is_the_slice_hosts_whatever_their_order():
    assert report_slices.part_key(['b', 'a']) == report_slices.part_key(['a', 'b'])
    assert report_slices.part_key(['a']) != report_slices.part_key(['a', 'b'])


@pytest.mark.parametrize('run', ['', '../x', 'a/b', '.hidden', 'x' * 65, None, 12])
def test_a_run_id_that_is_no_name_is_refused(run):
    with pytest.raises(ValueError, match='is not a name'):
        report_slices.check_run_id(run)


def test_a_row_every_slice_reports_is_one_row_with_the_worst_result():
    parts = [part({'h1': [check('disk', 'ok')], 'service': [check('latency', 'ok', 'p95 80 ms'), check('errors', 'ok')]}, ['h1']),
             part({'h2': [check('disk', 'warning')], 'service': [check('latency', 'critical', 'p95 900 ms'), check('errors', 'ok')]},
                  ['h2'], started='2026-11-27T05:59:58Z')]
    merged = report_slices.merge_parts(parts)
    assert sorted(merged['hosts']) == ['h1', 'h2', 'service']
    assert [(c['name'], c['status'], c['message']) for c in merged['hosts']['service']] == [
        ('latency', 'critical', 'p95 900 ms'), ('errors', 'ok', 'm')]
    assert merged['started_at'] == '2026-11-27T05:59:58Z'  # the earliest slice
    assert merged['play_hosts'] == ['h1', 'h2']


def test_meta_counts_add_up_equal_values_stay_and_differing_ones_are_listed():
    merged = report_slices.merge_values([
        {'hosts': 2, 'module_executions': {'h1': 3}, 'check_mode': False, 'lb_url': 'https://lb', 'tag': 'a'},
        {'hosts': 3, 'module_executions': {'h2': 4}, 'check_mode': False, 'lb_url': 'https://lb', 'tag': 'b'},
    ])
    assert merged == {'hosts': 5, 'module_executions': {'h1': 3, 'h2': 4}, 'check_mode': False, 'lb_url': 'https://lb',
                      'tag': ['a', 'b']}
    assert report_slices.merge_values([True, False]) == [True, False]  # booleans are no counts
    assert report_slices.merge_values([None, None]) is None


def test_failed_and_unreachable_hosts_of_every_slice_are_kept():
    merged = report_slices.merge_parts([part({}, ['h1', 'h3'], failed={'h1': 'boom'}, unreachable=['h3']),
                                        part({'h2': [check('disk', 'ok')]}, ['h2'], unreachable=['h4'])])
    assert merged['failed'] == {'h1': 'boom'} and merged['unreachable'] == ['h3', 'h4']


def test_parts_are_written_private_and_read_back(tmp_path):
    run_dir = tmp_path / 'daily' / '.slices' / '77'
    path = report_slices.write_part(str(run_dir), part({'h1': [check('disk', 'ok')]}, ['h1']))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
    assert [p['play_hosts'] for p in report_slices.read_parts(str(run_dir))] == [['h1']]


def test_a_part_holding_a_secret_is_scrubbed_before_it_is_written(tmp_path):
    written = part({'h1': [dict(check('disk', 'ok'), details={'password': 'hunter2'})]}, ['h1'])
    report_slices.write_part(str(tmp_path / 'r'), written)
    assert 'hunter2' not in (tmp_path / 'r' / (report_slices.part_key(['h1']) + report_slices.PART_SUFFIX)).read_text()


def test_slices_of_different_hosts_never_share_a_file(tmp_path):
    for hosts in (['h1', 'h4'], ['h2', 'h5'], ['h3', 'h6']):
        report_slices.write_part(str(tmp_path), part({}, hosts))
    assert len(report_slices.read_parts(str(tmp_path))) == 3


def test_an_unreadable_part_is_an_error_not_a_missing_slice(tmp_path):
    (tmp_path / 'bad.part.json').write_text('{not json')
    with pytest.raises(ValueError, match='cannot be read'):
        report_slices.read_parts(str(tmp_path))
    (tmp_path / 'bad.part.json').write_text(json.dumps({'version': 99}))
    with pytest.raises(ValueError, match='not a part this collection wrote'):
        report_slices.read_parts(str(tmp_path))


def test_only_incomplete_runs_older_than_the_limit_are_stale(tmp_path):
    root = tmp_path / '.slices'
    now = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.timezone.utc)
    for run, age_h in (('old', 7), ('young', 1), ('current', 9)):
        path = report_slices.write_part(str(root / run), part({'h1': [check('disk', 'critical')]}, ['h1']))
        stamp = (now - datetime.timedelta(hours=age_h)).timestamp()
        os.utime(path, (stamp, stamp))
    found = report_slices.stale_runs(str(root), 'current', now, 6)
    assert [(run, len(parts)) for run, dummy, parts in found] == [('old', 1)]
    row = report_slices.stale_check('old', found[0][2])
    assert row['status'] == 'critical' and row['alert'] == 'monitoring_gap'
    assert row['message'].startswith('sliced run old never completed: 1 of 3 slices recorded their results (1 hosts: h1)')
    assert '1 critical checks' in row['message']
    assert report_slices.stale_runs(str(tmp_path / 'none'), None, now, 6) == []


NAMES = st.text(alphabet='abcdefgh', min_size=1, max_size=4)
CHECKS = st.lists(st.tuples(st.sampled_from(['disk', 'load', 'mem', 'svc']), st.sampled_from(STATUSES)), max_size=4)


@settings(max_examples=60, deadline=None)
@given(fleet=st.dictionaries(NAMES, CHECKS, min_size=1, max_size=9), slices=st.integers(min_value=1, max_value=4),
       service=st.lists(st.sampled_from(STATUSES), min_size=1, max_size=1))
def test_merging_the_slices_of_any_fleet_reports_what_the_unsliced_run_reports(fleet, slices, service):
    hosts = dict((host, [check(name, status) for name, status in dict(checks).items()]) for host, checks in fleet.items())
    names = sorted(hosts)
    row = [check('p95', service[0])]
    whole = ops_report.build_report('daily', '2026-11-27T06:00:00Z', '2026-11-27T06:01:00Z', dict(hosts, service=row))
    parts = []
    for index in range(slices):  # AWX's split: every slices-th host of the inventory
        own = names[index::slices]
        if own:
            parts.append(part(dict(dict((h, hosts[h]) for h in own), service=row), own, slices=slices))
    merged = report_slices.merge_parts(parts)
    again = ops_report.build_report('daily', merged['started_at'], '2026-11-27T06:01:00Z', merged['hosts'],
                                    unreachable=merged['unreachable'], failed=merged['failed'])
    assert again == whole
