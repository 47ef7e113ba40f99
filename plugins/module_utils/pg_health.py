# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure logic of dealerscope.ops.pg_health: the psql probe text, its parser and the checks."""

from __future__ import annotations

import json
import math

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, threshold_check

# One psql call, one row per fact, each row one JSON object {"key": <fact>, ...}. JSON (json_build_object escapes
# quotes, backslashes and control characters, so a row is always one line) instead of a field separator: a value such as
# a standby's application_name may contain any character, '|' included. Each statement is separate so that one failing
# (pg_stat_statements not installed, a primary-only function on a standby) spares the others.
QUERIES = (
    "SELECT json_build_object('key', 'max_connections', 'value', setting::bigint) FROM pg_settings WHERE name = 'max_connections'",
    "SELECT json_build_object('key', 'connections', 'value', count(*)) FROM pg_stat_activity WHERE backend_type = 'client backend'",
    "SELECT json_build_object('key', 'in_recovery', 'value', pg_is_in_recovery())",
    "SELECT json_build_object('key', 'db_size', 'value', pg_database_size(current_database()))",
    "SELECT json_build_object('key', 'statements', 'calls', coalesce(sum(calls), 0), 'total_ms', coalesce(sum(total_exec_time), 0))"
    " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    "SELECT json_build_object('key', 'replica', 'name', coalesce(application_name, ''), 'client_addr', coalesce(client_addr::text, 'local'),"
    " 'state', state, 'replay_lag_s', coalesce(extract(epoch FROM replay_lag), 0),"
    " 'lag_bytes', coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)) FROM pg_stat_replication",
    "SELECT json_build_object('key', 'standby', 'lag_bytes', coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0),"
    " 'last_replay_age_s', coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), -1)) WHERE pg_is_in_recovery()",
)


def psql_args(psql, database, port):
    """argv for one psql call running every probe query (unaligned, tuples only: one JSON object per line)."""
    argv = [psql, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=0', '-p', str(port), '-d', database]
    for query in QUERIES:
        argv += ['-c', query]
    return argv


def _rows(stdout):
    """The JSON objects of psql's output, one per line; anything else (a notice, a damaged line) is skipped."""
    for line in (stdout or '').split('\n'):  # not splitlines(): it also splits on U+2028 & co. inside a JSON string
        line = line.strip()
        if not line.startswith('{'):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get('key'), str):
            yield row


def _number(value, kind=float):
    """A JSON number (or the text PostgreSQL gives for numeric/float values such as "NaN") as ``kind``."""
    if isinstance(value, bool) or value is None:
        raise ValueError('not a number: %r' % (value,))
    number = float(value)
    if not math.isfinite(number):
        raise ValueError('not a finite number: %r' % (value,))
    return int(number) if kind is int else number


def _text(value):
    return '' if value is None else str(value)


def parse(stdout):
    """Turn psql's JSON rows into a facts dict; a row that does not have the expected shape is skipped."""
    facts = {'replicas': []}
    for row in _rows(stdout):
        key = row['key']
        try:
            if key == 'max_connections':
                facts['max_connections'] = _number(row.get('value'), int)
            elif key == 'connections':
                facts['connections'] = _number(row.get('value'), int)
            elif key == 'in_recovery':
                if isinstance(row.get('value'), bool):
                    facts['in_recovery'] = row['value']
            elif key == 'db_size':
                facts['db_size_bytes'] = _number(row.get('value'), int)
            elif key == 'statements':
                calls, total = _number(row.get('calls'), int), _number(row.get('total_ms'))
                facts['statement_calls'] = calls
                facts['mean_query_ms'] = round(total / calls, 3) if calls else 0.0
            elif key == 'replica':
                facts['replicas'].append({
                    'name': _text(row.get('name')), 'client_addr': _text(row.get('client_addr')), 'state': _text(row.get('state')),
                    'replay_lag_s': round(_number(row.get('replay_lag_s')), 3), 'lag_bytes': _number(row.get('lag_bytes'), int),
                })
            elif key == 'standby':
                facts['standby_lag_bytes'] = _number(row.get('lag_bytes'), int)
                facts['standby_last_replay_age_s'] = round(_number(row.get('last_replay_age_s')), 1)
        except (TypeError, ValueError, OverflowError):
            continue
    return facts


def evaluate(facts, pool_size=None, connections_limit_percent=80, connections_crit_percent=95, query_mean_limit_ms=100.0,
             query_mean_crit_factor=5.0, expect_standbys=0, lag_warn_s=60, lag_crit_s=3600, lag_warn_bytes=64 * 1024 * 1024,
             stats_required=True):
    """Checks from the facts; thresholds come from the readiness document via the inventory."""
    checks = []
    pool = pool_size or facts.get('max_connections')
    if pool and 'connections' in facts:
        percent = round(100.0 * facts['connections'] / pool, 1)
        check = threshold_check('db_connections', percent, warn=connections_limit_percent, crit=connections_crit_percent, unit='%',
                                alert='resource_exhaustion', label='connections in use (%d of %d)' % (facts['connections'], pool))
    else:
        check = make_check('db_connections', 'critical', None, connections_limit_percent, 'PostgreSQL did not report its connections',
                           alert='service_down', unit='%')
    checks.append(check)

    if 'mean_query_ms' in facts:
        checks.append(threshold_check('db_query_mean_ms', facts['mean_query_ms'], warn=query_mean_limit_ms,
                                      crit=query_mean_limit_ms * query_mean_crit_factor, unit='ms', alert='high_latency',
                                      label='mean query time over %d calls' % facts.get('statement_calls', 0)))
    elif not facts.get('in_recovery'):
        checks.append(make_check('db_query_mean_ms', 'warning' if stats_required else 'ok', None, query_mean_limit_ms,
                                 'pg_stat_statements is not available in this database (shared_preload_libraries + CREATE EXTENSION)',
                                 alert='monitoring_gap', unit='ms'))

    if facts.get('in_recovery'):
        lag_bytes = facts.get('standby_lag_bytes', 0)
        checks.append(threshold_check('replication_lag', lag_bytes, warn=lag_warn_bytes, crit=lag_warn_bytes * 16, unit='bytes',
                                      alert='replication_lag', label='WAL received but not replayed'))
    else:
        replicas = facts.get('replicas', [])
        streaming = [r for r in replicas if r['state'] == 'streaming']
        if expect_standbys and len(streaming) < expect_standbys:
            checks.append(make_check('replication_lag', 'critical', len(streaming), expect_standbys,
                                     '%d of %d expected standbys are streaming' % (len(streaming), expect_standbys),
                                     alert='service_down', unit='standbys', details={'replicas': replicas}))
        elif replicas:
            worst_lag = max(r['replay_lag_s'] for r in replicas)
            checks.append(threshold_check('replication_lag', worst_lag, warn=lag_warn_s, crit=lag_crit_s, unit='s', alert='replication_lag',
                                          label='worst standby replay lag (%d standbys)' % len(replicas)))
            checks[-1]['details'] = {'replicas': replicas}

    if 'db_size_bytes' in facts:
        size_mb = round(facts['db_size_bytes'] / 1048576.0, 1)
        checks.append(make_check('db_size', 'ok', size_mb, None, 'database size %s MB' % size_mb, unit='MB'))
    return checks


def validate_options(params):
    """Every problem with the module's options, as messages naming the option(s); an empty list when they make sense."""
    problems = []

    def need(condition, message):
        if not condition:
            problems.append(message)

    need(bool((params.get('database') or '').strip()), 'database must not be empty')
    need(1 <= params['port'] <= 65535, 'port must be between 1 and 65535, got %s' % params['port'])
    need(params['pool_size'] >= 0, 'pool_size must not be negative (0 uses max_connections), got %s' % params['pool_size'])
    for name in ('connections_limit_percent', 'connections_crit_percent'):
        need(0 <= params[name] <= 100, '%s must be a percentage between 0 and 100, got %s' % (name, params[name]))
    need(params['connections_limit_percent'] <= params['connections_crit_percent'],
         'connections_limit_percent (%s) must not be greater than connections_crit_percent (%s)'
         % (params['connections_limit_percent'], params['connections_crit_percent']))
    need(math.isfinite(params['query_mean_limit_ms']) and params['query_mean_limit_ms'] > 0,
         'query_mean_limit_ms must be greater than 0, got %s' % params['query_mean_limit_ms'])
    need(math.isfinite(params['query_mean_crit_factor']) and params['query_mean_crit_factor'] >= 1,
         'query_mean_crit_factor must be at least 1 (critical at or above the warning limit), got %s' % params['query_mean_crit_factor'])
    need(params['expect_standbys'] >= 0, 'expect_standbys must not be negative, got %s' % params['expect_standbys'])
    for name in ('replication_lag_warn_s', 'replication_lag_crit_s'):
        need(params[name] >= 0, '%s must not be negative, got %s' % (name, params[name]))
    need(params['replication_lag_warn_s'] <= params['replication_lag_crit_s'],
         'replication_lag_warn_s (%s) must not be greater than replication_lag_crit_s (%s)'
         % (params['replication_lag_warn_s'], params['replication_lag_crit_s']))
    return problems
