# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure logic of dealerscope.ops.pg_health: the psql probe text, its parser and the checks."""

from __future__ import annotations

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, threshold_check

# One psql call, one row per fact: "key|value[|value...]". Each statement is separate so that one
# failing (pg_stat_statements not installed, a primary-only function on a standby) spares the others.
QUERIES = (
    "SELECT 'max_connections', setting FROM pg_settings WHERE name = 'max_connections'",
    "SELECT 'connections', count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
    "SELECT 'in_recovery', pg_is_in_recovery()",
    "SELECT 'db_size', pg_database_size(current_database())",
    "SELECT 'statements', coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) FROM pg_stat_statements"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    "SELECT 'replica', coalesce(application_name, ''), coalesce(client_addr::text, 'local'), state,"
    " coalesce(extract(epoch FROM replay_lag), 0), coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)"
    " FROM pg_stat_replication",
    "SELECT 'standby', coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0),"
    " coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), -1)"
    " WHERE pg_is_in_recovery()",
)


def psql_args(psql, database, port):
    """argv for one psql call running every probe query (unaligned, tuples only, '|' separated)."""
    argv = [psql, '-X', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=0', '-p', str(port), '-d', database]
    for query in QUERIES:
        argv += ['-c', query]
    return argv


def parse(stdout):
    """Turn psql rows into a facts dict."""
    facts = {'replicas': []}
    for line in stdout.splitlines():
        fields = line.strip().split('|')
        key = fields[0]
        if key == 'max_connections':
            facts['max_connections'] = int(fields[1])
        elif key == 'connections':
            facts['connections'] = int(fields[1])
        elif key == 'in_recovery':
            facts['in_recovery'] = fields[1] == 't'
        elif key == 'db_size':
            facts['db_size_bytes'] = int(fields[1])
        elif key == 'statements':
            calls, total = int(float(fields[1])), float(fields[2])
            facts['statement_calls'] = calls
            facts['mean_query_ms'] = round(total / calls, 3) if calls else 0.0
        elif key == 'replica':
            facts['replicas'].append({
                'name': fields[1], 'client_addr': fields[2], 'state': fields[3],
                'replay_lag_s': round(float(fields[4]), 3), 'lag_bytes': int(float(fields[5])),
            })
        elif key == 'standby':
            facts['standby_lag_bytes'] = int(float(fields[1]))
            facts['standby_last_replay_age_s'] = round(float(fields[2]), 1)
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


def backup_check(newest_mtime, now, rpo_hours, pattern_text):
    """Age of the newest backup against the RPO (readiness document: 1 h)."""
    if newest_mtime is None:
        return make_check('backup_age', 'critical', None, rpo_hours, 'no backup found (%s)' % pattern_text, alert='backup_stale', unit='h')
    age_h = round((now - newest_mtime) / 3600.0, 2)
    return threshold_check('backup_age', age_h, crit=rpo_hours, unit='h', alert='backup_stale', label='newest backup age (RPO)')
