"""dealerscope.ops.pg_health main() with psql patched."""
from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils import basic
from ansible_collections.dealerscope.ops.plugins.modules import pg_health

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # older ansible-core
    patch_module_args = None


class Exit(Exception):
    pass


def run_module(monkeypatch, args, stdout, stderr='', rc=0):
    calls = []

    def exit_json(self, **kw):
        raise Exit(dict(kw, failed=False))

    def fail_json(self, **kw):
        raise Exit(dict(kw, failed=True))

    def run_command(self, argv, **kw):
        calls.append(argv)
        return rc, stdout, stderr

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, required=False, opt_dirs=None: '/usr/bin/' + name)
    if patch_module_args is not None:
        with patch_module_args(args):
            with pytest.raises(Exit) as exc:
                pg_health.main()
    else:
        monkeypatch.setattr(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
        with pytest.raises(Exit) as exc:
            pg_health.main()
    return exc.value.args[0], calls


def test_healthy_primary_with_fresh_backup(monkeypatch, tmp_path):
    backup = tmp_path / 'db.dump'
    backup.write_text('x')
    out = 'max_connections|100\nconnections|3\nin_recovery|f\ndb_size|1048576\nstatements|10|20\nreplica|s|10.0.0.2|streaming|0|0\n'
    result, calls = run_module(monkeypatch, {'database': 'dealerscope', 'expect_standbys': 1, 'backup_paths': [str(tmp_path / '*.dump')]}, out)
    assert result['failed'] is False and result['changed'] is False
    assert {c['status'] for c in result['checks']} == {'ok'}
    assert result['postgres']['newest_backup'] == str(backup)
    assert len(calls) == 1, 'one psql session per run'
    if os.geteuid() == 0:
        assert calls[0][:4] == ['/usr/bin/runuser', '-u', 'postgres', '--']


def test_stale_backup_is_critical(monkeypatch, tmp_path):
    backup = tmp_path / 'db.dump'
    backup.write_text('x')
    os.utime(backup, (1, 1))
    result, dummy = run_module(monkeypatch, {'backup_paths': [str(tmp_path / '*.dump')], 'rpo_hours': 1},
                               'max_connections|100\nconnections|3\nin_recovery|t\n')
    check = [c for c in result['checks'] if c['name'] == 'backup_age'][0]
    assert check['status'] == 'critical' and check['alert'] == 'backup_stale'


def test_server_down_is_one_critical_check(monkeypatch):
    result, dummy = run_module(monkeypatch, {}, '', 'psql: error: connection to server on socket failed', rc=2)
    assert [c['name'] for c in result['checks']] == ['postgres']
    assert result['checks'][0]['status'] == 'critical' and 'connection to server' in result['checks'][0]['message']


def test_missing_extension_error_is_reported_not_fatal(monkeypatch):
    err = 'ERROR:  relation "pg_stat_statements" does not exist\n'
    result, dummy = run_module(monkeypatch, {}, 'max_connections|100\nconnections|3\nin_recovery|f\n', err)
    assert result['postgres']['psql_errors'] == [err.strip()]
    gap = [c for c in result['checks'] if c['name'] == 'db_query_mean_ms'][0]
    assert gap['status'] == 'warning'
