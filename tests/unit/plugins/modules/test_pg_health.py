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


def rows(*facts):
    """psql's output for the given rows (one JSON object per line, as json_build_object prints them)."""
    return ''.join(json.dumps(fact, separators=(', ', ' : ')) + '\n' for fact in facts)


MAX = {'key': 'max_connections', 'value': 100}


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


def test_healthy_primary(monkeypatch):
    out = rows(MAX, {'key': 'connections', 'value': 3}, {'key': 'in_recovery', 'value': False}, {'key': 'db_size', 'value': 1048576},
               {'key': 'statements', 'calls': 10, 'total_ms': 20},
               {'key': 'replica', 'name': 's', 'client_addr': '10.0.0.2', 'state': 'streaming', 'replay_lag_s': 0, 'lag_bytes': 0})
    result, calls = run_module(monkeypatch, {'database': 'dealerscope', 'expect_standbys': 1}, out)
    assert result['failed'] is False and result['changed'] is False
    assert {c['status'] for c in result['checks']} == {'ok'}
    assert [c['name'] for c in result['checks']] == ['db_connections', 'db_query_mean_ms', 'replication_lag', 'db_size']
    assert len(calls) == 1, 'one psql session per run'
    if os.geteuid() == 0:
        assert calls[0][:4] == ['/usr/bin/runuser', '-u', 'postgres', '--']


def test_backup_paths_is_no_longer_an_option(monkeypatch):
    """Backups are judged by backup_catalog from the pgBackRest catalog, never by a file's mtime here."""
    result, calls = run_module(monkeypatch, {'backup_paths': ['/var/backups/dealerscope/*.dump']}, rows(MAX))
    assert result['failed'] is True
    assert 'Unsupported parameters' in result['msg'] and 'backup_paths' in result['msg']
    assert calls == []


def test_server_down_is_one_critical_check(monkeypatch):
    result, dummy = run_module(monkeypatch, {}, '', 'psql: error: connection to server on socket failed', rc=2)
    assert [c['name'] for c in result['checks']] == ['postgres']
    assert result['checks'][0]['status'] == 'critical' and 'connection to server' in result['checks'][0]['message']


def test_missing_extension_error_is_reported_not_fatal(monkeypatch):
    err = 'ERROR:  relation "pg_stat_statements" does not exist\n'
    result, dummy = run_module(monkeypatch, {}, rows(MAX, {'key': 'connections', 'value': 3}, {'key': 'in_recovery', 'value': False}), err)
    assert result['postgres']['psql_errors'] == [err.strip()]
    gap = [c for c in result['checks'] if c['name'] == 'db_query_mean_ms'][0]
    assert gap['status'] == 'warning'


def test_standby_application_name_with_pipes_is_reported_not_a_traceback(monkeypatch):
    """Real psql output (PostgreSQL 15.18) for a primary whose standby's application_name is 'db2|"q"\\b{c}, x'."""
    out = (
        '{"key" : "max_connections", "value" : 100}\n'
        '{"key" : "connections", "value" : 1}\n'
        '{"key" : "in_recovery", "value" : false}\n'
        '{"key" : "db_size", "value" : 8412519}\n'
        '{"key" : "statements", "calls" : 20, "total_ms" : 104.76769800000001}\n'
        '{"key" : "replica", "name" : "db2|\\"q\\"\\\\b{c}, x", "client_addr" : "local", "state" : "streaming", '
        '"replay_lag_s" : 0.022149, "lag_bytes" : 0}\n'
    )
    result, dummy = run_module(monkeypatch, {'expect_standbys': 1}, out)
    assert result['failed'] is False
    assert result['postgres']['replicas'] == [{'name': 'db2|"q"\\b{c}, x', 'client_addr': 'local', 'state': 'streaming',
                                               'replay_lag_s': 0.022, 'lag_bytes': 0}]
    lag = [c for c in result['checks'] if c['name'] == 'replication_lag'][0]
    assert lag['status'] == 'ok' and lag['details']['replicas'][0]['name'] == 'db2|"q"\\b{c}, x'


@pytest.mark.parametrize('args, needles', [
    ({'connections_limit_percent': '96'}, ['connections_limit_percent (96) must not be greater than connections_crit_percent (95)']),
    ({'connections_limit_percent': 90, 'connections_crit_percent': 120},
     ['connections_crit_percent must be a percentage between 0 and 100, got 120']),
    ({'connections_limit_percent': -10}, ['connections_limit_percent must be a percentage between 0 and 100, got -10']),
    ({'replication_lag_warn_s': 7200}, ['replication_lag_warn_s (7200) must not be greater than replication_lag_crit_s (3600)']),
    ({'replication_lag_warn_s': -1}, ['replication_lag_warn_s must not be negative, got -1']),
    ({'query_mean_limit_ms': '-100'}, ['query_mean_limit_ms must be greater than 0, got -100']),
    ({'query_mean_crit_factor': 0.5}, ['query_mean_crit_factor must be at least 1']),
    ({'expect_standbys': -1}, ['expect_standbys must not be negative, got -1']),
    ({'pool_size': -5}, ['pool_size must not be negative']),
    ({'port': 70000}, ['port must be between 1 and 65535, got 70000']),
    ({'database': ''}, ['database must not be empty']),
    ({'connections_limit_percent': 101, 'replication_lag_warn_s': -1},
     ['connections_limit_percent must be a percentage between 0 and 100, got 101',
      'connections_limit_percent (101) must not be greater than connections_crit_percent (95)',
      'replication_lag_warn_s must not be negative, got -1']),
])
def test_nonsense_options_fail_naming_them_before_psql_runs(monkeypatch, args, needles):
    result, calls = run_module(monkeypatch, args, rows(MAX))
    assert result['failed'] is True
    assert result['msg'].startswith('invalid options: ')
    for needle in needles:
        assert needle in result['msg']
    assert calls == []


def test_edge_options_are_accepted(monkeypatch):
    result, calls = run_module(monkeypatch, {'connections_limit_percent': 95, 'query_mean_crit_factor': 1, 'replication_lag_warn_s': 0,
                                             'replication_lag_crit_s': 0, 'expect_standbys': 0}, rows(MAX))
    assert result['failed'] is False and len(calls) == 1
