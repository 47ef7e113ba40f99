# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dealerscope.ops.backup_catalog main() with pgbackrest and psql replaced by fixtures (run_command patched)."""

from __future__ import annotations

import yaml

import pytest

from ansible.module_utils import basic
from ansible_collections.dealerscope.ops.plugins.modules import backup_catalog
from .utils import module_runner, assert_documentation_matches
from ..module_utils.test_pgbackrest import (
    ARCHIVER_ROW,
    NOW,
    REGIONS,
    STANDBY_ERR,
    VERIFY_ERROR,
    VERIFY_INVALID,
    VERIFY_OK,
    catalog,
)


class Host:
    """What pgbackrest and psql answer, by argv; every call is recorded."""

    def __init__(self, info=None, verify=None, archiver=(0, ARCHIVER_ROW, '')):
        self.info = (0, catalog(), '') if info is None else info
        self.verify = verify or {}
        self.archiver = archiver
        self.calls = []

    def run_command(self, argv, **kwargs):  # pylint: disable=unused-argument
        assert isinstance(argv, list), 'never a shell'
        self.calls.append(argv)
        if argv[0].endswith('psql'):
            return self.archiver
        if argv[-1] == 'info':
            assert argv[1:] == ['--stanza=dealerscope', '--output=json', 'info']
            return self.info
        if argv[-1] == 'verify':
            repo = int([a for a in argv if a.startswith('--repo=')][0].split('=')[1])
            return self.verify.get(repo, (0, VERIFY_OK, ''))
        raise AssertionError('unexpected command %r' % (argv,))


@pytest.fixture
def host(monkeypatch):
    fake = Host()
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda _self, argv, **kw: fake.run_command(argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                        lambda _self, name, required=False, opt_dirs=None: '/usr/bin/' + name)
    return fake


@pytest.fixture
def run(monkeypatch, host):  # pylint: disable=unused-argument,redefined-outer-name
    runner = module_runner(monkeypatch, backup_catalog.main)

    def run_module(**args):
        params = dict(regions=REGIONS, now=NOW)
        params.update(args)
        return runner(**params)
    return run_module


def rows(result):
    return dict((check['name'], check) for check in result['checks'])


def test_all_ok(run, host):
    failed, result = run(verify=True)
    assert not failed and result['changed'] is False
    assert {c['status'] for c in result['checks']} == {'ok'}
    assert list(rows(result)) == [
        'backup:eu-west-1:newest', 'backup:eu-central-1:newest', 'backup:us-east-1:newest',
        'backup:eu-west-1:verify', 'backup:eu-central-1:verify', 'backup:us-east-1:verify',
        'backup:eu-west-1:wal', 'backup:eu-central-1:wal', 'backup:us-east-1:wal',
        'backup:rpo']
    assert [r['name'] for r in result['regions']] == ['eu-west-1', 'eu-central-1', 'us-east-1']
    assert all(r['reachable'] and r['verify'] == {'ran': True, 'ok': True, 'message': 'verify ok'} for r in result['regions'])
    assert result['regions'][2]['newest_good']['label'] == '20251127-004012F_20251127-180401D'
    assert result['archive']['pending'] is True and result['archive']['exposure_s'] == 60
    assert result['stanza_status'] == {'code': 0, 'message': 'ok'}
    assert host.calls[0] == ['/usr/bin/pgbackrest', '--stanza=dealerscope', '--output=json', 'info']
    assert [c[2] for c in host.calls[1:4]] == ['--repo=1', '--repo=2', '--repo=3']
    assert host.calls[4][0] == '/usr/bin/psql' and host.calls[4][host.calls[4].index('-p') + 1] == '5432'
    assert len(host.calls) == 5


def test_one_region_unreachable_others_still_ok(run, host):
    host.info = (0, catalog(unreachable=(3,)), '')
    failed, result = run(verify=True)
    assert not failed
    checks = rows(result)
    east = checks['backup:us-east-1:newest']
    assert east['status'] == 'warning' and east['alert'] == 'backup_region_unreachable'
    assert 'us-east-1 (repo 3) is unreachable' in east['message'] and 'Connection refused' in east['message']
    assert 'backup:us-east-1:verify' not in checks and 'backup:us-east-1:wal' not in checks
    others = [c for name, c in checks.items() if name != 'backup:us-east-1:newest']
    assert {c['status'] for c in others} == {'ok'}
    assert not any('--repo=3' in call for call in host.calls), 'no verify of an unreachable region'
    assert result['regions'][2]['verify'] == {'ran': False, 'ok': None, 'message': 'not run: the region is unreachable'}
    assert result['stanza_status']['code'] == 4


def test_verify_failure_names_the_region(run, host):
    host.verify = {2: (0, VERIFY_INVALID, ''), 3: (28, VERIFY_ERROR, '')}
    failed, result = run(verify=True)
    assert not failed
    checks = rows(result)
    assert checks['backup:eu-west-1:verify']['status'] == 'ok'
    central = checks['backup:eu-central-1:verify']
    assert central['status'] == 'critical' and central['alert'] == 'backup_invalid'
    assert 'region eu-central-1 (repo 2)' in central['message'] and 'checksum invalid: 1' in central['message']
    east = checks['backup:us-east-1:verify']
    assert east['status'] == 'critical' and 'exit code 28' in east['message'] and '[028]' in east['message']
    assert result['regions'][1]['verify']['ok'] is False and 'status: error' in result['regions'][1]['verify']['message']
    assert all('redacted' not in c['message'] for c in result['checks'])


def test_no_good_backup(run, host):
    host.info = (0, catalog(drop_backups=('20251127-002107F',), errors=('20251127-002107F_20251127-180203D',)), '')
    failed, result = run()
    assert not failed
    check = rows(result)['backup:eu-central-1:newest']
    assert check['status'] == 'critical' and check['alert'] == 'backup_stale' and check['value'] is None
    assert 'eu-central-1 (repo 2) has no good backup' in check['message'] and 'has errors' in check['message']
    assert result['regions'][1]['newest_good'] is None
    assert result['regions'][1]['backups'][0]['error'] is True
    assert not any(call[-1] == 'verify' for call in host.calls), 'verify is off by default'


def test_stale_backups(run):
    failed, result = run(now=NOW + 2 * 3600)
    assert not failed
    check = rows(result)['backup:eu-west-1:newest']
    assert check['status'] == 'critical' and check['value'] == 8.0 and check['threshold'] == 7.0


def test_archiving_failing(run, host):
    host.archiver = (0, '00000001000000000000000B|1764286200.5|00000001000000000000000C|1764287990.25|00000001000000000000000D|1764288000.1\n', '')
    failed, result = run()
    assert not failed
    rpo = rows(result)['backup:rpo']
    assert rpo['status'] == 'warning' and rpo['alert'] == 'rpo_at_risk' and rpo['value'] == 1800 and rpo['threshold'] == 3600
    assert 'archiving failing since 2025-11-27T23:59:50Z: 00000001000000000000000C' in rpo['message']
    assert result['archive']['last_failed_wal'] == '00000001000000000000000C'


def test_archiver_off_runs_no_psql(run, host):
    failed, result = run(archiver=False)
    assert not failed and 'backup:rpo' not in rows(result)
    assert all(value is None for value in result['archive'].values())
    assert len(host.calls) == 1


def test_standby_fails_with_a_clear_message(run, host):
    host.archiver = (1, '', STANDBY_ERR)
    failed, result = run()
    assert failed and result['msg'].startswith('run on the primary: this server is a standby')


def test_postgres_down_is_a_critical_rpo_row(run, host):
    host.archiver = (2, '', 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\n')
    failed, result = run()
    assert not failed
    rpo = rows(result)['backup:rpo']
    assert rpo['status'] == 'critical' and 'could not be read' in rpo['message'] and 'No such file' in rpo['message']


def test_unusable_info_fails(run, host):
    host.info = (29, '', 'ERROR: [029]: missing \'[global]\' section... --repo1-s3-key-secret=hunter2\n')
    failed, result = run()
    assert failed and 'cannot read the backup catalog: pgbackrest info exited 29' in result['msg']
    assert 'hunter2' not in result['msg']


def test_no_region_reachable(run, host):
    host.info = (0, catalog(unreachable=(1, 2, 3)), '')
    failed, result = run(verify=True)
    assert not failed
    regions = rows(result)['backup:regions']
    assert regions['status'] == 'critical' and regions['alert'] == 'backup_stale'
    assert 'no region holds a reachable copy' in regions['message']
    assert not any(call[-1] == 'verify' for call in host.calls)


@pytest.mark.parametrize('regions,needles', [
    ([{'name': 'eu', 'repo': 1}, {'name': 'eu', 'repo': 2}], ["regions[1].name 'eu' is also regions[0].name"]),
    ([{'name': 'eu', 'repo': 1}, {'name': 'us', 'repo': 1}], ['regions[1].repo 1 is also the repo of regions[0]']),
    ([{'name': ' ', 'repo': 1}, {'name': 'us', 'repo': 1}, {'name': 'ap', 'repo': 300}],
     ['regions[0].name must not be empty', 'regions[1].repo 1 is also', 'regions[2].repo must be a pgBackRest repository number']),
    ([], ['regions must list at least one region']),
])
def test_bad_input_fails_before_running_anything(run, host, regions, needles):
    failed, result = run(regions=regions, verify=True)
    assert failed and result['msg'].startswith('invalid options: ')
    for needle in needles:
        assert needle in result['msg']
    assert host.calls == []


def test_bad_numbers_fail_before_running_anything(run, host):
    failed, result = run(interval_h=0, margin_h=-1, rpo_s=-5, pg_port=70000)
    assert failed
    for needle in ('interval_h must be greater than 0', 'margin_h must be 0 or more', 'rpo_s must be greater than 0',
                   'pg_port must be a TCP port'):
        assert needle in result['msg']
    assert host.calls == []


def test_check_mode_reads_the_same_and_changes_nothing(run, host):
    host.verify = {2: (0, VERIFY_INVALID, '')}
    failed, real = run(verify=True)
    calls = list(host.calls)
    del host.calls[:]
    failed_check, checked = run(verify=True, _ansible_check_mode=True)
    assert not failed and not failed_check
    assert checked['changed'] is False and real['changed'] is False
    assert host.calls == calls
    for key in ('regions', 'archive', 'checks', 'stanza_status'):
        assert checked[key] == real[key]


def test_documentation_matches_the_argument_spec():
    doc, returned, spec = assert_documentation_matches(backup_catalog, 'backup_catalog')
    suboptions = doc['options']['regions']['suboptions']
    assert set(suboptions) == set(spec['regions']['options']) == {'name', 'repo'}
    for name, option in suboptions.items():
        assert option['type'] == spec['regions']['options'][name]['type'] and option['required'] is True
    assert set(returned) == {'regions', 'archive', 'checks', 'stanza_status'}
    assert set(returned['regions']['contains']) == {'name', 'repo', 'reachable', 'status_code', 'status_message', 'backups',
                                                    'newest_good', 'wal_max', 'wal_behind', 'verify'}
    assert set(returned['archive']['contains']) == {'last_archived_wal', 'last_archived_time', 'last_failed_wal',
                                                    'last_failed_time', 'current_wal', 'pending', 'exposure_s', 'error'}
    assert set(doc['attributes']) == {'check_mode', 'diff_mode', 'idempotent'}
    assert doc['attributes']['check_mode']['support'] == 'full' and doc['attributes']['idempotent']['support'] == 'full'


def test_returned_keys_match_the_documentation(run):
    returned = yaml.safe_load(backup_catalog.RETURN)
    failed, result = run(verify=True)
    assert not failed
    assert set(result['regions'][0]) == set(returned['regions']['contains'])
    assert set(result['archive']) == set(returned['archive']['contains'])


def test_verify_until_good_stops_at_the_first_region_that_verifies(run, host):
    host.verify = {1: (0, VERIFY_INVALID, '')}
    failed, result = run(verify=True, verify_until_good=True)
    assert not failed
    assert [c[2] for c in host.calls if c[-1] == 'verify'] == ['--repo=1', '--repo=2'], host.calls
    regions = result['regions']
    assert regions[0]['verify']['ok'] is False and regions[1]['verify'] == {'ran': True, 'ok': True, 'message': 'verify ok'}
    assert regions[2]['verify'] == {'ran': False, 'ok': None, 'message': 'not run: region eu-central-1 verified first'}
    checks = rows(result)
    assert checks['backup:eu-west-1:verify']['status'] == 'critical' and 'backup:us-east-1:verify' not in checks


def test_verify_until_good_skips_an_unreachable_region_and_verifies_all_when_none_is_good(run, host):
    host.info = (0, catalog(unreachable=(1,)), '')
    host.verify = {2: (0, VERIFY_INVALID, ''), 3: (0, VERIFY_INVALID, '')}
    failed, result = run(verify=True, verify_until_good=True)
    assert not failed
    assert [c[2] for c in host.calls if c[-1] == 'verify'] == ['--repo=2', '--repo=3'], host.calls
    assert [r['verify']['ok'] for r in result['regions']] == [None, False, False]
