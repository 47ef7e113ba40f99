"""Unit tests of the pure logic behind dealerscope.ops.pg_health."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import pg_health

PRIMARY = """max_connections|100
connections|4
in_recovery|f
db_size|9699799
statements|120|96.5
replica|15/main|10.213.47.32|streaming|0.002|0
"""
STANDBY = """max_connections|100
connections|1
in_recovery|t
db_size|9699799
standby|0|12.5
"""


def by_name(checks):
    return {c['name']: c for c in checks}


def test_psql_args_run_every_query_in_one_session():
    argv = pg_health.psql_args('/usr/bin/psql', 'dealerscope', 5433)
    assert argv[:2] == ['/usr/bin/psql', '-X']
    assert argv.count('-c') == len(pg_health.QUERIES)
    assert argv[argv.index('-d') + 1] == 'dealerscope' and argv[argv.index('-p') + 1] == '5433'
    assert 'ON_ERROR_STOP=0' in argv


def test_parse_primary():
    facts = pg_health.parse(PRIMARY)
    assert facts['max_connections'] == 100 and facts['connections'] == 4 and facts['in_recovery'] is False
    assert facts['mean_query_ms'] == pytest.approx(96.5 / 120, abs=0.001)
    assert facts['replicas'] == [{'name': '15/main', 'client_addr': '10.213.47.32', 'state': 'streaming', 'replay_lag_s': 0.002, 'lag_bytes': 0}]


def test_healthy_primary_is_all_ok():
    checks = by_name(pg_health.evaluate(pg_health.parse(PRIMARY), expect_standbys=1))
    assert {c['status'] for c in checks.values()} == {'ok'}
    assert checks['db_connections']['value'] == 4.0 and checks['db_connections']['threshold'] == 80
    assert checks['db_size']['value'] == pytest.approx(9.3, abs=0.1)


def test_connections_over_80_percent_of_the_pool_warn():
    facts = pg_health.parse(PRIMARY.replace('connections|4', 'connections|17'))
    check = by_name(pg_health.evaluate(facts, pool_size=20))['db_connections']
    assert check['status'] == 'warning' and check['value'] == 85.0 and check['alert'] == 'resource_exhaustion'


def test_slow_queries_warn_then_go_critical():
    slow = pg_health.parse(PRIMARY.replace('statements|120|96.5', 'statements|10|1500'))
    assert by_name(pg_health.evaluate(slow))['db_query_mean_ms']['status'] == 'warning'
    very_slow = pg_health.parse(PRIMARY.replace('statements|120|96.5', 'statements|10|6000'))
    check = by_name(pg_health.evaluate(very_slow))['db_query_mean_ms']
    assert check['status'] == 'critical' and check['alert'] == 'high_latency'


def test_missing_pg_stat_statements_is_a_monitoring_gap_on_a_primary():
    facts = pg_health.parse('\n'.join(l for l in PRIMARY.splitlines() if not l.startswith('statements')))
    check = by_name(pg_health.evaluate(facts))['db_query_mean_ms']
    assert check['status'] == 'warning' and 'pg_stat_statements' in check['message']


def test_missing_standby_is_critical_on_the_primary():
    facts = pg_health.parse('\n'.join(l for l in PRIMARY.splitlines() if not l.startswith('replica')))
    check = by_name(pg_health.evaluate(facts, expect_standbys=1))['replication_lag']
    assert check['status'] == 'critical' and check['alert'] == 'service_down' and check['value'] == 0


def test_lagging_standby_warns():
    facts = pg_health.parse(PRIMARY.replace('|streaming|0.002|0', '|streaming|125.0|1048576'))
    check = by_name(pg_health.evaluate(facts, expect_standbys=1))['replication_lag']
    assert check['status'] == 'warning' and check['value'] == 125.0


def test_standby_reports_its_replay_backlog_and_no_query_gap():
    checks = by_name(pg_health.evaluate(pg_health.parse(STANDBY)))
    assert checks['replication_lag']['status'] == 'ok' and checks['replication_lag']['unit'] == 'bytes'
    assert 'db_query_mean_ms' not in checks


def test_no_answer_means_critical_connections():
    check = by_name(pg_health.evaluate({}))['db_connections']
    assert check['status'] == 'critical' and check['alert'] == 'service_down'


def test_backup_age_against_rpo():
    now = 1_000_000.0
    assert pg_health.backup_check(now - 1800, now, 1, '*.dump')['status'] == 'ok'
    stale = pg_health.backup_check(now - 3 * 3600, now, 1, '*.dump')
    assert stale['status'] == 'critical' and stale['alert'] == 'backup_stale' and stale['value'] == 3.0
    missing = pg_health.backup_check(None, now, 1, '/var/backups/*.dump')
    assert missing['status'] == 'critical' and '/var/backups/*.dump' in missing['message']


@given(st.integers(min_value=0, max_value=10000), st.integers(min_value=1, max_value=10000))
def test_connection_percent_status_is_monotone(used, pool):
    facts = {'max_connections': pool, 'connections': used, 'in_recovery': True}
    check = by_name(pg_health.evaluate(facts))['db_connections']
    percent = 100.0 * used / pool
    expected = 'critical' if round(percent, 1) >= 95 else 'warning' if round(percent, 1) >= 80 else 'ok'
    assert check['status'] == expected


@given(st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=200))
def test_parse_never_crashes_on_unknown_rows(text):
    lines = [l for l in text.splitlines() if l.split('|')[0] not in (
        'max_connections', 'connections', 'in_recovery', 'db_size', 'statements', 'replica', 'standby')]
    facts = pg_health.parse('\n'.join(lines))
    assert facts == {'replicas': []}
