# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the pure logic behind dealerscope.ops.backup_catalog (module_utils/pgbackrest)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import pgbackrest
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import rank
from ansible_collections.dealerscope.ops.plugins.module_utils.pgbackrest import (
    PgBackRestError,
    StandbyError,
    archive_state,
    build_regions,
    evaluate,
    judge_verify,
    newest_check,
    parse_archiver,
    parse_info,
    rpo_check,
    scrub,
    validate_options,
    wal_distance,
    wal_position,
)

NOW = 1764288000  # 2025-11-28T00:00:00Z
REGIONS = [{'name': 'eu-west-1', 'repo': 1}, {'name': 'eu-central-1', 'repo': 2}, {'name': 'us-east-1', 'repo': 3}]


def _backup(repo, label, kind, prior, start, stop, wal_start, wal_stop, error=False):
    return {
        "archive": {"start": wal_start, "stop": wal_stop},
        "backrest": {"format": 5, "version": "2.45"},
        "database": {"id": 1, "repo-key": repo},
        "error": error,
        "info": {"delta": 24365056 if kind == 'full' else 1212416,
                 "repository": {"delta": 3146801 if kind == 'full' else 164022, "size": 3146801},
                 "size": 24365056},
        "label": label,
        "lsn": {"start": "0/3000028", "stop": "0/3000100"},
        "prior": prior,
        "reference": [prior] if prior else None,
        "timestamp": {"start": start, "stop": stop},
        "type": kind,
    }


# The shape of pgBackRest 2.45's `pgbackrest --stanza=dealerscope --output=json info` with three S3 repositories (one per
# region): a weekly full and a 6-hourly differential backup in each, WAL archived to all three. pgBackRest prints it on one
# line; it is indented here to be read. Replace with the output captured from the lab when it differs.
CATALOG = [{
    "archive": [
        {"database": {"id": 1, "repo-key": 1}, "id": "15-1", "max": "00000001000000000000000B", "min": "000000010000000000000003"},
        {"database": {"id": 1, "repo-key": 2}, "id": "15-1", "max": "00000001000000000000000B", "min": "000000010000000000000004"},
        {"database": {"id": 1, "repo-key": 3}, "id": "15-1", "max": "00000001000000000000000B", "min": "000000010000000000000005"},
    ],
    "backup": [
        _backup(1, "20251127-000002F", "full", None, 1764201602, 1764202805, "000000010000000000000003", "000000010000000000000003"),
        _backup(2, "20251127-002107F", "full", None, 1764202867, 1764204010, "000000010000000000000004", "000000010000000000000004"),
        _backup(3, "20251127-004012F", "full", None, 1764204012, 1764205300, "000000010000000000000005", "000000010000000000000005"),
        _backup(1, "20251127-000002F_20251127-180002D", "diff", "20251127-000002F", 1764266402, 1764266521,
                "000000010000000000000009", "000000010000000000000009"),
        _backup(2, "20251127-002107F_20251127-180203D", "diff", "20251127-002107F", 1764266523, 1764266640,
                "00000001000000000000000A", "00000001000000000000000A"),
        _backup(3, "20251127-004012F_20251127-180401D", "diff", "20251127-004012F", 1764266641, 1764266760,
                "00000001000000000000000B", "00000001000000000000000B"),
    ],
    "cipher": "aes-256-cbc",
    "db": [
        {"id": 1, "repo-key": 1, "system-id": 7441234567890123456, "version": "15"},
        {"id": 1, "repo-key": 2, "system-id": 7441234567890123456, "version": "15"},
        {"id": 1, "repo-key": 3, "system-id": 7441234567890123456, "version": "15"},
    ],
    "name": "dealerscope",
    "repo": [
        {"cipher": "aes-256-cbc", "key": 1, "status": {"code": 0, "message": "ok"}},
        {"cipher": "aes-256-cbc", "key": 2, "status": {"code": 0, "message": "ok"}},
        {"cipher": "aes-256-cbc", "key": 3, "status": {"code": 0, "message": "ok"}},
    ],
    "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"},
}]

CONNECTION_REFUSED = "[HostConnectError] unable to connect to '10.213.48.1:9443': [111] Connection refused"

# The example of the brief (pgBackRest 2.45 shape): repo 2 has WAL but is not listed under "repo", repo 3 is unreachable.
BRIEF_EXAMPLE = r"""[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000007","min":"000000010000000000000003"},
{"database":{"id":1,"repo-key":2},"id":"15-1","max":"000000010000000000000005","min":"000000010000000000000003"}],
"backup":[{"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},
"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":23000000,"repository":{"delta":3000000,"size":3000000},"size":23000000},
"label":"20251127-181000F","lsn":{"start":"0/3000028","stop":"0/3000100"},"prior":null,"reference":null,
"timestamp":{"start":1764267000,"stop":1764267005},"type":"full"}],
"cipher":"aes-256-cbc","db":[{"id":1,"repo-key":1,"system-id":7441234567890123456,"version":"15"}],
"name":"dealerscope",
"repo":[{"cipher":"aes-256-cbc","key":1,"status":{"code":0,"message":"ok"}},
{"cipher":"aes-256-cbc","key":3,"status":{"code":99,"message":"[HostConnectError] unable to connect to '10.213.48.1:9443': [111] Connection refused"}}],
"status":{"code":4,"lock":{"backup":{"held":false}},"message":"different across repos"}}]"""


def catalog(unreachable=(), drop_backups=(), errors=(), wal_max=None, stanza_status=None):
    """CATALOG as pgBackRest would print it with the given repositories unreachable (no backups, no archive, status 99),
    backups dropped or marked with errors (by label), and other newest WAL per repository (``{repo: name}``)."""
    data = copy.deepcopy(CATALOG)
    entry = data[0]
    entry['backup'] = [b for b in entry['backup'] if b['label'] not in drop_backups and b['database']['repo-key'] not in unreachable]
    for backup in entry['backup']:
        if backup['label'] in errors:
            backup['error'] = True
    entry['archive'] = [a for a in entry['archive'] if a['database']['repo-key'] not in unreachable]
    for archive in entry['archive']:
        if wal_max and archive['database']['repo-key'] in wal_max:
            archive['max'] = wal_max[archive['database']['repo-key']]
    entry['db'] = [d for d in entry['db'] if d['repo-key'] not in unreachable]
    for repo in entry['repo']:
        if repo['key'] in unreachable:
            repo['status'] = {'code': 99, 'message': CONNECTION_REFUSED}
    if unreachable:
        entry['status'] = {'code': 4, 'lock': {'backup': {'held': False}}, 'message': 'different across repos'}
    if stanza_status:
        entry['status'] = stanza_status
    return json.dumps(data, separators=(',', ':'))


def by_name(checks):
    return dict((check['name'], check) for check in checks)


def regions_of(text, now=NOW, regions=None):
    return build_regions(parse_info(text, 'dealerscope'), regions or REGIONS, now)


# ---------------------------------------------------------------------------------------------
# parse_info


def test_parse_info_reads_every_repository():
    parsed = parse_info(catalog(), 'dealerscope')
    assert parsed['stanza_status'] == {'code': 0, 'message': 'ok'}
    assert sorted(parsed['repos']) == [1, 2, 3]
    repo = parsed['repos'][1]
    assert repo['status_code'] == 0 and repo['status_message'] == 'ok'
    assert repo['wal_min'] == '000000010000000000000003' and repo['wal_max'] == '00000001000000000000000B'
    assert repo['archive_id'] == '15-1'
    assert repo['backups'] == [
        {'label': '20251127-000002F', 'type': 'full', 'prior': None, 'time': 1764202805, 'error': False},
        {'label': '20251127-000002F_20251127-180002D', 'type': 'diff', 'prior': '20251127-000002F', 'time': 1764266521, 'error': False},
    ]


def test_parse_info_the_briefs_example():
    parsed = parse_info(BRIEF_EXAMPLE, 'dealerscope')
    assert parsed['stanza_status'] == {'code': 4, 'message': 'different across repos'}
    assert sorted(parsed['repos']) == [1, 3]  # repo 2's archive without a repo entry is not a region pgBackRest knows
    assert parsed['repos'][3]['status_code'] == 99 and 'Connection refused' in parsed['repos'][3]['status_message']
    assert parsed['repos'][3]['backups'] == [] and parsed['repos'][3]['wal_max'] is None
    assert parsed['repos'][1]['backups'][0]['label'] == '20251127-181000F'
    assert parsed['repos'][1]['wal_max'] == '000000010000000000000007'


def test_parse_info_tolerates_missing_keys():
    text = json.dumps([{"name": "dealerscope", "repo": [{"key": 1, "status": {"code": 2}}],
                        "backup": [{"label": "20251127-000002F", "database": {"repo-key": 1}},
                                   {"database": {"repo-key": 1}},  # no label: skipped
                                   {"label": "20251126-000002F", "database": {"repo-key": 1}, "timestamp": {"stop": "1764115200"}}]}])
    parsed = parse_info(text, 'dealerscope')
    assert parsed['stanza_status'] == {'code': None, 'message': 'unknown'}
    repo = parsed['repos'][1]
    assert repo['status_message'] == 'no valid backups' and repo['wal_max'] is None
    assert [(b['label'], b['time'], b['error'], b['type']) for b in repo['backups']] == [
        ('20251126-000002F', 1764115200, False, None), ('20251127-000002F', None, False, None)]


def test_parse_info_single_repository_output_without_repo_keys():
    text = json.dumps([{"name": "dealerscope", "status": {"code": 0, "message": "ok"},
                        "archive": [{"database": {"id": 1}, "id": "15-1", "min": "000000010000000000000001", "max": "000000010000000000000004"}],
                        "backup": [{"label": "20251127-000002F", "type": "full", "database": {"id": 1},
                                    "timestamp": {"start": 1764201602, "stop": 1764202805}}]}])
    parsed = parse_info(text, 'dealerscope')
    assert list(parsed['repos']) == [1]
    assert parsed['repos'][1]['status_code'] == 0 and parsed['repos'][1]['wal_max'] == '000000010000000000000004'
    assert parsed['repos'][1]['backups'][0]['time'] == 1764202805


def test_parse_info_takes_the_archive_of_the_newest_database():
    data = json.loads(catalog())
    data[0]['archive'].append({"database": {"id": 2, "repo-key": 1}, "id": "16-2", "max": "000000010000000000000002", "min": None})
    parsed = parse_info(json.dumps(data), 'dealerscope')
    assert parsed['repos'][1]['archive_id'] == '16-2' and parsed['repos'][1]['wal_max'] == '000000010000000000000002'
    assert parsed['repos'][2]['archive_id'] == '15-1'


def test_parse_info_marks_backups_with_errors_and_a_held_lock():
    text = catalog(errors=('20251127-000002F_20251127-180002D',),
                   stanza_status={'code': 0, 'lock': {'backup': {'held': True}}, 'message': 'ok'})
    parsed = parse_info(text, 'dealerscope')
    assert [b['error'] for b in parsed['repos'][1]['backups']] == [False, True]
    assert parsed['stanza_status'] == {'code': 0, 'message': 'ok (backup/expire running)'}


@pytest.mark.parametrize('text,needle', [
    ('', 'did not print JSON'),
    ('ERROR: [055]: unable to load info file', 'did not print JSON'),
    ('{"a": 1', 'did not print JSON'),
    ('"text"', 'not a list of stanzas'),
    ('[{"name": "other"}]', 'has no stanza dealerscope (it lists: other)'),
    ('[]', 'has no stanza dealerscope (it lists: none)'),
])
def test_parse_info_refuses_what_it_cannot_use(text, needle):
    with pytest.raises(PgBackRestError) as excinfo:
        parse_info(text, 'dealerscope')
    assert needle in str(excinfo.value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(['name', 'repo', 'status', 'code', 'message', 'key', 'archive', 'backup', 'database', 'repo-key',
                         'id', 'min', 'max', 'label', 'timestamp', 'stop', 'error', 'type', 'prior', 'lock']),
        children, max_size=6),
    max_leaves=40)


@given(st.lists(JSON_VALUES, max_size=3).map(lambda stanzas: [dict(s, name='dealerscope') if isinstance(s, dict) else s for s in stanzas]))
def test_parse_info_never_fails_on_odd_shapes_except_with_its_error(data):
    try:
        parsed = parse_info(json.dumps(data), 'dealerscope')
    except PgBackRestError:
        return
    for repo in parsed['repos'].values():
        times = [b['time'] for b in repo['backups'] if b['time'] is not None]
        assert times == sorted(times)
        assert repo['wal_max'] is None or wal_position(repo['wal_max']) is not None
    build_regions(parsed, REGIONS, NOW)


# ---------------------------------------------------------------------------------------------
# WAL names


def test_wal_position_and_distance():
    assert wal_position('00000001000000000000000B') == (1, 11)
    assert wal_position('000000020000000100000002.partial') == (2, 0x102)
    assert wal_position('00000001000000000000000B.00000028.backup') == (1, 11)
    assert wal_position('00000002.history') is None and wal_position(None) is None and wal_position('') is None
    assert wal_distance('000000010000000000000007', '000000010000000100000002') == 0x100 + 2 - 7
    assert wal_distance('00000001000000000000000B', '000000010000000000000007') == -4
    assert wal_distance('00000001000000000000000B', '00000002000000000000000C') is None
    assert wal_distance('00000002.history', '00000001000000000000000B') is None


WAL_NAMES = st.builds(lambda tli, log, seg: '%08X%08X%08X' % (tli, log, seg),
                      st.integers(1, 3), st.integers(0, 0xFFFF), st.integers(0, 0xFF))


@given(WAL_NAMES, WAL_NAMES)
def test_wal_distance_is_antisymmetric(a, b):
    forward, backward = wal_distance(a, b), wal_distance(b, a)
    if forward is None:
        assert backward is None and wal_position(a)[0] != wal_position(b)[0]
    else:
        assert forward == -backward
        assert (forward > 0) == (wal_position(b) > wal_position(a))


@given(WAL_NAMES, WAL_NAMES, WAL_NAMES)
def test_wal_distance_adds_up_on_one_timeline(a, b, c):
    if len({wal_position(n)[0] for n in (a, b, c)}) == 1:
        assert wal_distance(a, b) + wal_distance(b, c) == wal_distance(a, c)
        assert wal_distance(a, a) == 0


# ---------------------------------------------------------------------------------------------
# regions and the newest backup


def test_build_regions_all_reachable():
    regions = regions_of(catalog())
    assert [r['name'] for r in regions] == ['eu-west-1', 'eu-central-1', 'us-east-1']
    west = regions[0]
    assert west['reachable'] and west['status_code'] == 0 and len(west['backups']) == 2
    assert west['newest_good'] == {'label': '20251127-000002F_20251127-180002D', 'type': 'diff', 'time': 1764266521,
                                   'age_s': NOW - 1764266521}
    assert [r['wal_behind'] for r in regions] == [0, 0, 0]
    assert west['verify'] == {'ran': False, 'ok': None, 'message': None}


def test_build_regions_unreachable_unconfigured_and_lagging():
    regions = regions_of(catalog(unreachable=(3,), wal_max={2: '000000010000000000000008'}),
                         regions=REGIONS + [{'name': 'ap-south-1', 'repo': 4}])
    west, central, east, south = regions
    assert east['reachable'] is False and east['status_code'] == 99 and 'Connection refused' in east['status_message']
    assert east['newest_good'] is None and east['wal_behind'] is None
    assert south['reachable'] is False and south['status_code'] is None and 'not in pgBackRest' in south['status_message']
    assert west['wal_behind'] == 0 and central['wal_behind'] == 3


def test_newest_good_skips_backups_with_errors():
    regions = regions_of(catalog(errors=('20251127-000002F_20251127-180002D',)))
    assert regions[0]['newest_good']['label'] == '20251127-000002F'
    assert '(newer, with errors: 20251127-000002F_20251127-180002D)' in newest_check(regions[0], 48, 1)['message']
    assert [b['error'] for b in regions[0]['backups']] == [False, True]


def test_newest_check_ok_stale_none_unreachable():
    regions = regions_of(catalog(unreachable=(3,), drop_backups=('20251127-002107F', '20251127-002107F_20251127-180203D')))
    west, central, east = regions
    ok = newest_check(west, 6, 1)
    assert ok['status'] == 'ok' and ok['value'] == 6.0 and ok['threshold'] == 7 and ok['unit'] == 'h' and ok['alert'] is None
    assert '20251127-000002F_20251127-180002D (diff)' in ok['message'] and 'eu-west-1' in ok['message']
    stale = newest_check(west, 4, 1)
    assert stale['status'] == 'critical' and stale['alert'] == 'backup_stale'
    assert 'stale since 2025-11-27T23:02:01Z' in stale['message'] and 'limit of 5 h (interval 4 h + margin 1 h)' in stale['message']
    none = newest_check(central, 6, 1)
    assert none['status'] == 'critical' and none['alert'] == 'backup_stale' and none['value'] is None
    assert 'region eu-central-1 (repo 2) has no good backup: no backup at all' in none['message']
    unreachable = newest_check(east, 6, 1)
    assert unreachable['status'] == 'warning' and unreachable['alert'] == 'backup_region_unreachable'
    assert 'us-east-1 (repo 3) is unreachable' in unreachable['message'] and 'Connection refused' in unreachable['message']


def test_newest_check_names_the_backups_with_errors():
    regions = regions_of(catalog(errors=('20251127-002107F', '20251127-002107F_20251127-180203D')))
    check = newest_check(regions[1], 6, 1)
    assert check['status'] == 'critical'
    assert '2 backup(s), none good; the newest, 20251127-002107F_20251127-180203D (from 2025-11-27T18:04:00Z), has errors' in check['message']


def test_newest_check_at_the_limit_is_stale():
    region = regions_of(catalog(), now=1764266521 + 7 * 3600)[0]
    assert newest_check(region, 6, 1)['status'] == 'critical'
    region = regions_of(catalog(), now=1764266521 + 7 * 3600 - 1)[0]
    assert newest_check(region, 6, 1)['status'] == 'ok'


@given(st.integers(0, 400000), st.integers(0, 400000), st.floats(0.5, 48), st.floats(0, 12))
def test_an_older_newest_backup_never_judges_better(age_a, age_b, interval_h, margin_h):
    younger, older = sorted((age_a, age_b))
    checks = []
    for age in (younger, older):
        region = regions_of(catalog(), now=1764266521 + age)[0]
        checks.append(newest_check(region, interval_h, margin_h))
    assert rank(checks[0]['status']) <= rank(checks[1]['status'])
    assert checks[0]['value'] <= checks[1]['value']


# ---------------------------------------------------------------------------------------------
# verify

VERIFY_BEGIN = ('P00   INFO: verify command begin 2.45: --exec-id=48113-5b0f1e2a --log-level-console=info --log-level-file=info '
                '--pg1-path=/var/lib/postgresql/15/main --repo=2 --repo2-cipher-pass=<redacted> --repo2-cipher-type=aes-256-cbc '
                '--repo2-s3-bucket=dealerscope-eu-central-1 --repo2-s3-key=<redacted> --repo2-s3-key-secret=<redacted> --stanza=dealerscope')
VERIFY_OK = VERIFY_BEGIN + '\nP00   INFO: verify command end: completed successfully\n'
VERIFY_OK_VERBOSE = VERIFY_BEGIN + """
P00   INFO: stanza: dealerscope
                                    status: ok
                                    archiveId: 15-1, total WAL checked: 9, total valid WAL: 9
                                      missing: 0, checksum invalid: 0, size invalid: 0, other: 0
                                    backup: 20251127-002107F, status: valid, total files checked: 1291, total valid files: 1291
                                      missing: 0, checksum invalid: 0, size invalid: 0, other: 0
P00   INFO: verify command end: completed successfully
"""
VERIFY_INVALID = VERIFY_BEGIN + """
P01   INFO: invalid checksum '20251127-002107F/pg_data/base/5/16384.zst'
P00   INFO: stanza: dealerscope
                                    status: error
                                    backup: 20251127-002107F, status: invalid, total files checked: 1291, total valid files: 1290
                                      checksum invalid: 1
P00   INFO: verify command end: completed successfully
"""
VERIFY_ERROR = VERIFY_BEGIN + """
P00  ERROR: [028]: backup and archive info files exist but do not match the database
            HINT: is this the correct stanza?
P00   INFO: verify command end: aborted with exception [028]
"""


def test_judge_verify_ok():
    assert judge_verify(0, VERIFY_OK, '') == (True, 'verify ok')
    assert judge_verify(0, VERIFY_OK_VERBOSE, '') == (True, 'verify ok')


def test_judge_verify_status_error_with_exit_0_is_a_failure():
    ok, message = judge_verify(0, VERIFY_INVALID, '')
    assert ok is False
    assert "invalid checksum '20251127-002107F/pg_data/base/5/16384.zst'" in message
    assert 'status: error' in message and 'backup: 20251127-002107F, status: invalid' in message and 'checksum invalid: 1' in message
    assert 'command begin' not in message and 'redacted' not in message


def test_judge_verify_error_exit():
    ok, message = judge_verify(28, VERIFY_ERROR, '')
    assert ok is False
    assert message == ('exit code 28: P00 ERROR: [028]: backup and archive info files exist but do not match the database; '
                       'HINT: is this the correct stanza?')


def test_judge_verify_failure_without_recognised_lines_shows_the_last_lines():
    ok, message = judge_verify(1, 'line one\nline two\nline three\nline four\n', 'segfault')
    assert ok is False and message == 'exit code 1: line three; line four; segfault'
    assert judge_verify(1, '', '') == (False, 'exit code 1: no output')


@pytest.mark.parametrize('line,failed', [
    ('P00   INFO: stanza: dealerscope status: error', True),
    ('                                    status: error', True),
    ('    missing: 1', True),
    ('    checksum invalid: 2, size invalid: 0', True),
    ('  backup: 20251127-002107F, status: manifest missing, total files checked: 0, total valid files: 0', True),
    ('P00  ERROR: [028]: no usable backup.info file', True),
    ('P00   WARN: archive.info file is missing', True),
    ('  archiveId: 15-1, total WAL checked: 9, total valid WAL: 9', False),
    ('    missing: 0, checksum invalid: 0, size invalid: 0, other: 0', False),
    ('  backup: 20251127-002107F, status: in-progress, total files checked: 0, total valid files: 0', False),
    ('P00   WARN: no backups exist in the repo', False),
    ('                                    status: ok', False),
])
def test_judge_verify_failure_lines(line, failed):
    ok, message = judge_verify(0, VERIFY_BEGIN + '\n' + line + '\nP00   INFO: verify command end: completed successfully\n', '')
    assert ok is not failed
    if failed:
        assert message == scrub(line.strip())


# ---------------------------------------------------------------------------------------------
# archiver

ARCHIVER_ROW = '00000001000000000000000B|1764287940.123456|||00000001000000000000000C|1764288000.5\n'
STANDBY_ERR = ('ERROR:  recovery is in progress\n'
               'HINT:  WAL control functions cannot be executed during recovery.\n')


def test_parse_archiver_row():
    row = parse_archiver(0, ARCHIVER_ROW, '')
    assert row == {'last_archived_wal': '00000001000000000000000B', 'last_archived_time': 1764287940.123456,
                   'last_failed_wal': None, 'last_failed_time': None, 'current_wal': '00000001000000000000000C',
                   'db_now': 1764288000.5, 'error': None}


def test_parse_archiver_standby_and_errors():
    with pytest.raises(StandbyError):
        parse_archiver(1, '', STANDBY_ERR)
    down = parse_archiver(2, '', 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
                                 'No such file or directory\n')
    assert 'connection to server' in down['error']
    assert 'no archiver row' in parse_archiver(0, '\n', '')['error']


def test_archive_state_pending_and_exposure():
    state = archive_state(parse_archiver(0, ARCHIVER_ROW, ''), NOW + 999)
    assert state['pending'] is True and state['exposure_s'] == 60  # measured with the server's now()
    assert state['last_archived_time'] == 1764287940.123 and state['error'] is None and 'db_now' not in state
    idle = archive_state(parse_archiver(0, '00000001000000000000000B|1764287940||||\n', ''), NOW)
    assert idle['pending'] is None and idle['exposure_s'] is None  # no current WAL: cannot tell
    caught_up = archive_state(parse_archiver(0, '00000001000000000000000C|1764287940|||00000001000000000000000C|1764288000\n', ''), NOW)
    assert caught_up['pending'] is False and caught_up['exposure_s'] == 0
    never = archive_state(parse_archiver(0, '||||000000010000000000000001|1764288000\n', ''), NOW)
    assert never['pending'] is True and never['exposure_s'] is None
    history = archive_state(parse_archiver(0, '00000002.history|1764287990|||000000020000000000000003|1764288000\n', ''), NOW)
    assert history['pending'] is True and history['exposure_s'] == 10
    assert archive_state(None, NOW) == {'last_archived_wal': None, 'last_archived_time': None, 'last_failed_wal': None,
                                        'last_failed_time': None, 'current_wal': None, 'pending': None, 'exposure_s': None,
                                        'error': None}


def archive(exposure, failed_at=None, archived_at=1764287940.0):
    return {'last_archived_wal': '00000001000000000000000B', 'last_archived_time': archived_at,
            'last_failed_wal': '00000001000000000000000C' if failed_at else None, 'last_failed_time': failed_at,
            'current_wal': '00000001000000000000000C', 'pending': exposure != 0, 'exposure_s': exposure, 'error': None}


@pytest.mark.parametrize('exposure,status', [(0, 'ok'), (60, 'ok'), (1799, 'ok'), (1800, 'warning'), (3599, 'warning'),
                                             (3600, 'critical'), (90000, 'critical')])
def test_rpo_check_thresholds(exposure, status):
    check = rpo_check(archive(exposure), 3600)
    assert check['status'] == status and check['value'] == exposure and check['threshold'] == 3600 and check['unit'] == 's'
    assert check['alert'] == (None if status == 'ok' else 'rpo_at_risk')


def test_rpo_check_archiving_failing_is_at_least_a_warning():
    check = rpo_check(archive(60, failed_at=1764287990.0), 3600)
    assert check['status'] == 'warning' and check['alert'] == 'rpo_at_risk'
    assert 'archiving failing since 2025-11-27T23:59:50Z: 00000001000000000000000C' in check['message']
    assert 'last success 00000001000000000000000B at 2025-11-27T23:59:00Z' in check['message']
    assert rpo_check(archive(3600, failed_at=1764287990.0), 3600)['status'] == 'critical'
    assert rpo_check(archive(60, failed_at=1764287000.0), 3600)['status'] == 'ok'  # an old failure, archived since


def test_rpo_check_unknown_and_unreadable():
    never = rpo_check(dict(archive(None), last_archived_wal=None, last_archived_time=None), 3600)
    assert never['status'] == 'critical' and 'no WAL segment was ever archived' in never['message']
    unread = rpo_check(archive_state({'error': 'psql: error: connection refused'}, NOW), 3600)
    assert unread['status'] == 'critical' and 'could not be read' in unread['message'] and 'connection refused' in unread['message']


@given(st.integers(0, 100000), st.integers(0, 100000), st.integers(1, 86400), st.booleans())
def test_a_greater_exposure_never_judges_better(a, b, rpo_s, failing):
    low, high = sorted((a, b))
    failed_at = 1764287990.0 if failing else None
    assert rank(rpo_check(archive(low, failed_at), rpo_s)['status']) <= rank(rpo_check(archive(high, failed_at), rpo_s)['status'])


# ---------------------------------------------------------------------------------------------
# evaluate, options, scrub


def test_evaluate_order_and_rows():
    regions = regions_of(catalog(unreachable=(3,), wal_max={2: '000000010000000000000008'}))
    regions[0]['verify'] = {'ran': True, 'ok': True, 'message': 'verify ok'}
    regions[1]['verify'] = {'ran': True, 'ok': False, 'message': 'status: error'}
    checks = evaluate(regions, archive(60), 6, 1, 3600)
    assert [c['name'] for c in checks] == [
        'backup:eu-west-1:newest', 'backup:eu-central-1:newest', 'backup:us-east-1:newest',
        'backup:eu-west-1:verify', 'backup:eu-central-1:verify',
        'backup:eu-west-1:wal', 'backup:eu-central-1:wal',
        'backup:rpo']
    rows = by_name(checks)
    assert rows['backup:eu-central-1:verify']['alert'] == 'backup_invalid' and 'eu-central-1' in rows['backup:eu-central-1:verify']['message']
    lag = rows['backup:eu-central-1:wal']
    assert lag['status'] == 'warning' and lag['alert'] == 'wal_archive_lag' and lag['value'] == 3
    assert '3 WAL segments behind eu-west-1' in lag['message']
    assert rows['backup:eu-west-1:wal']['status'] == 'ok'
    assert all(set(c) == {'name', 'status', 'value', 'threshold', 'unit', 'message', 'alert'} for c in checks)


def test_evaluate_timelines_and_no_wal():
    regions = regions_of(catalog(wal_max={1: '000000020000000000000010'}))
    rows = by_name(evaluate(regions, None, 6, 1, 3600))
    assert 'backup:rpo' not in rows
    assert rows['backup:eu-central-1:wal']['status'] == 'warning' and 'timeline 1' in rows['backup:eu-central-1:wal']['message']
    assert regions[1]['wal_behind'] is None and regions[0]['wal_behind'] == 0
    data = json.loads(catalog())
    data[0]['archive'] = data[0]['archive'][:1]
    rows = by_name(evaluate(regions_of(json.dumps(data)), None, 6, 1, 3600))
    assert rows['backup:eu-central-1:wal']['status'] == 'ok' and 'no archived WAL yet' in rows['backup:eu-central-1:wal']['message']


def test_evaluate_no_region_reachable():
    rows = by_name(evaluate(regions_of(catalog(unreachable=(1, 2, 3))), None, 6, 1, 3600))
    assert rows['backup:regions']['status'] == 'critical' and rows['backup:regions']['alert'] == 'backup_stale'
    assert 'no region holds a reachable copy' in rows['backup:regions']['message']
    assert not any(name.endswith(':wal') for name in rows)


def test_validate_options_lists_every_problem():
    params = dict(stanza=' ', regions=[{'name': 'a', 'repo': 1}, {'name': 'a', 'repo': 1}, {'name': '', 'repo': 0}],
                  interval_h=0, margin_h=-1, rpo_s=0, pg_port=0, now=float('nan'))
    problems = validate_options(params)
    assert problems == [
        'stanza must not be empty',
        "regions[1].name 'a' is also regions[0].name; region names must be unique",
        'regions[1].repo 1 is also the repo of regions[0]; every region has its own repository',
        'regions[2].name must not be empty',
        'regions[2].repo must be a pgBackRest repository number from 1 to 256, got 0',
        'interval_h must be greater than 0, got 0',
        'rpo_s must be greater than 0, got 0',
        'margin_h must be 0 or more, got -1',
        'pg_port must be a TCP port from 1 to 65535, got 0',
        'now must be seconds since the epoch, got nan',
    ]
    assert validate_options(dict(stanza='dealerscope', regions=REGIONS, interval_h=6.0, margin_h=1.0, rpo_s=3600, pg_port=5432,
                                 now=None)) == []


def test_scrub_keeps_secrets_and_dumps_out():
    text = ("[FileOpenError] unable to open 's3:/dealerscope/archive.info': HTTP request failed with 403 (Forbidden):\n"
            "*** Path/Query ***:\nGET /dealerscope/archive.info\n*** Request Headers ***:\nauthorization: <redacted>\n")
    assert scrub(text) == "[FileOpenError] unable to open 's3:/dealerscope/archive.info': HTTP request failed with 403 (Forbidden):"
    assert scrub('--repo1-s3-key=AKIAEXAMPLE --repo1-cipher-pass=hunter2 ok') == '--repo1-s3-key=<redacted> --repo1-cipher-pass=<redacted> ok'
    assert scrub('x' * 500).endswith('...') and len(scrub('x' * 500)) == pgbackrest.MESSAGE_LIMIT
