"""Unit tests of the pure logic behind dealerscope.ops.pg_health."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import pg_health

# Real output of pg_health.psql_args() against PostgreSQL 15.18 (Debian 15.18-0+deb12u1): a primary with
# pg_stat_statements and a streaming standby whose application_name is db2|"q"\b{c}, x, then that standby.
PRIMARY = r"""{"key" : "max_connections", "value" : 100}
{"key" : "connections", "value" : 4}
{"key" : "in_recovery", "value" : false}
{"key" : "db_size", "value" : 9699799}
{"key" : "statements", "calls" : 120, "total_ms" : 96.5}
{"key" : "replica", "name" : "db2|\"q\"\\b{c}, x", "client_addr" : "10.213.47.32", "state" : "streaming", "replay_lag_s" : 0.002149, "lag_bytes" : 0}
"""
STANDBY = r"""{"key" : "max_connections", "value" : 100}
{"key" : "connections", "value" : 1}
{"key" : "in_recovery", "value" : true}
{"key" : "db_size", "value" : 9699799}
{"key" : "statements", "calls" : 11, "total_ms" : 2.781033}
{"key" : "standby", "lag_bytes" : 0, "last_replay_age_s" : 12.5}
"""
FACT_KEYS = ('max_connections', 'connections', 'in_recovery', 'db_size', 'statements', 'replica', 'standby')


def psql_output(text, **changes):
    """``text`` with fields of its rows changed: ``changes`` maps a row key to the fields to set (None drops the row)."""
    lines = []
    for line in text.splitlines():
        row = json.loads(line)
        if row['key'] in changes:
            if changes[row['key']] is None:
                continue
            row.update(changes[row['key']])
        lines.append(json.dumps(row))
    return '\n'.join(lines) + '\n'


def by_name(checks):
    return {c['name']: c for c in checks}


def test_psql_args_run_every_query_in_one_session():
    argv = pg_health.psql_args('/usr/bin/psql', 'dealerscope', 5433)
    assert argv[:2] == ['/usr/bin/psql', '-X']
    assert argv.count('-c') == len(pg_health.QUERIES)
    assert argv[argv.index('-d') + 1] == 'dealerscope' and argv[argv.index('-p') + 1] == '5433'
    assert 'ON_ERROR_STOP=0' in argv
    assert '-F' not in argv  # no field separator: every row is one JSON object
    assert all(query.startswith("SELECT json_build_object('key', '") for query in pg_health.QUERIES)


def test_parse_primary():
    facts = pg_health.parse(PRIMARY)
    assert facts['max_connections'] == 100 and facts['connections'] == 4 and facts['in_recovery'] is False
    assert facts['db_size_bytes'] == 9699799 and facts['statement_calls'] == 120
    assert facts['mean_query_ms'] == pytest.approx(96.5 / 120, abs=0.001)
    assert facts['replicas'] == [{'name': 'db2|"q"\\b{c}, x', 'client_addr': '10.213.47.32', 'state': 'streaming',
                                  'replay_lag_s': 0.002, 'lag_bytes': 0}]


def test_parse_standby():
    facts = pg_health.parse(STANDBY)
    assert facts['in_recovery'] is True and facts['replicas'] == []
    assert facts['standby_lag_bytes'] == 0 and facts['standby_last_replay_age_s'] == 12.5


@pytest.mark.parametrize('name', ['db2|15/main', '|', 'a|b|c|d|e|f', 'x\ny', 'tab\there', 'quote"s', 'back\\slash', '{"key": "replica"}',
                                  'line\u2028separator', 'record\x1eseparator', 'caf\u00e9', ''])
def test_any_application_name_is_parsed(name):
    """A standby's application_name may contain the old field separator '|' (or anything else): no crash, exact name."""
    out = psql_output(PRIMARY, replica={'name': name})
    facts = pg_health.parse(out)
    assert [replica['name'] for replica in facts['replicas']] == [name]
    assert facts['replicas'][0]['state'] == 'streaming' and facts['replicas'][0]['client_addr'] == '10.213.47.32'
    assert facts['connections'] == 4
    check = by_name(pg_health.evaluate(facts, expect_standbys=1))['replication_lag']
    assert check['status'] == 'ok' and check['details']['replicas'][0]['name'] == name


@pytest.mark.parametrize('line', [
    '{"key" : "connections", "value" : "many"}',
    '{"key" : "connections", "value" : null}',
    '{"key" : "max_connections", "value" : true}',
    '{"key" : "statements", "calls" : 3}',
    '{"key" : "replica", "name" : "db2", "state" : "streaming", "replay_lag_s" : "NaN", "lag_bytes" : 0}',
    '{"key" : "standby", "lag_bytes" : [1]}',
    '{"key" : "in_recovery", "value" : "t"}',
    '{"key" : "replica", "name" : "db2|',
    '["key", "connections"]',
    'WARNING:  something psql printed',
])
def test_damaged_rows_are_skipped_not_fatal(line):
    facts = pg_health.parse(line + '\n' + '{"key" : "db_size", "value" : 5}\n')
    assert facts['db_size_bytes'] == 5
    assert facts['replicas'] == [] and 'connections' not in facts and 'max_connections' not in facts
    assert 'mean_query_ms' not in facts and 'standby_lag_bytes' not in facts and 'in_recovery' not in facts


def test_healthy_primary_is_all_ok():
    checks = by_name(pg_health.evaluate(pg_health.parse(PRIMARY), expect_standbys=1))
    assert {c['status'] for c in checks.values()} == {'ok'}
    assert checks['db_connections']['value'] == 4.0 and checks['db_connections']['threshold'] == 80
    assert checks['db_size']['value'] == pytest.approx(9.3, abs=0.1)


def test_connections_over_80_percent_of_the_pool_warn():
    facts = pg_health.parse(psql_output(PRIMARY, connections={'value': 17}))
    check = by_name(pg_health.evaluate(facts, pool_size=20))['db_connections']
    assert check['status'] == 'warning' and check['value'] == 85.0 and check['alert'] == 'resource_exhaustion'


def test_slow_queries_warn_then_go_critical():
    slow = pg_health.parse(psql_output(PRIMARY, statements={'calls': 10, 'total_ms': 1500}))
    assert by_name(pg_health.evaluate(slow))['db_query_mean_ms']['status'] == 'warning'
    very_slow = pg_health.parse(psql_output(PRIMARY, statements={'calls': 10, 'total_ms': 6000}))
    check = by_name(pg_health.evaluate(very_slow))['db_query_mean_ms']
    assert check['status'] == 'critical' and check['alert'] == 'high_latency'


def test_missing_pg_stat_statements_is_a_monitoring_gap_on_a_primary():
    facts = pg_health.parse(psql_output(PRIMARY, statements=None))
    check = by_name(pg_health.evaluate(facts))['db_query_mean_ms']
    assert check['status'] == 'warning' and 'pg_stat_statements' in check['message']


def test_missing_standby_is_critical_on_the_primary():
    facts = pg_health.parse(psql_output(PRIMARY, replica=None))
    check = by_name(pg_health.evaluate(facts, expect_standbys=1))['replication_lag']
    assert check['status'] == 'critical' and check['alert'] == 'service_down' and check['value'] == 0


def test_lagging_standby_warns():
    facts = pg_health.parse(psql_output(PRIMARY, replica={'replay_lag_s': 125.0, 'lag_bytes': 1048576}))
    check = by_name(pg_health.evaluate(facts, expect_standbys=1))['replication_lag']
    assert check['status'] == 'warning' and check['value'] == 125.0


def test_standby_reports_its_replay_backlog_and_no_query_gap():
    checks = by_name(pg_health.evaluate(pg_health.parse(STANDBY)))
    assert checks['replication_lag']['status'] == 'ok' and checks['replication_lag']['unit'] == 'bytes'
    assert checks['db_query_mean_ms']['status'] == 'ok'
    # a standby without pg_stat_statements (its primary's extension not created yet) is no monitoring gap
    checks = by_name(pg_health.evaluate(pg_health.parse(psql_output(STANDBY, statements=None))))
    assert 'db_query_mean_ms' not in checks


def test_no_answer_means_critical_connections():
    check = by_name(pg_health.evaluate({}))['db_connections']
    assert check['status'] == 'critical' and check['alert'] == 'service_down'


@given(st.integers(min_value=0, max_value=10000), st.integers(min_value=1, max_value=10000))
def test_connection_percent_status_is_monotone(used, pool):
    facts = {'max_connections': pool, 'connections': used, 'in_recovery': True}
    check = by_name(pg_health.evaluate(facts))['db_connections']
    percent = 100.0 * used / pool
    expected = 'critical' if round(percent, 1) >= 95 else 'warning' if round(percent, 1) >= 80 else 'ok'
    assert check['status'] == expected


@given(st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=200))
def test_parse_never_crashes_on_text(text):
    facts = pg_health.parse(text)
    assert isinstance(facts, dict) and isinstance(facts['replicas'], list)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
                           max_leaves=6)


@given(st.lists(st.fixed_dictionaries({'key': st.sampled_from(FACT_KEYS) | st.text(max_size=8)},
                                      optional=dict((field, JSON_VALUES) for field in (
                                          'value', 'calls', 'total_ms', 'name', 'client_addr', 'state', 'replay_lag_s', 'lag_bytes',
                                          'last_replay_age_s'))), max_size=8))
def test_parse_never_crashes_on_rows_of_any_shape(rows):
    facts = pg_health.parse('\n'.join(json.dumps(row) for row in rows))
    assert isinstance(facts['replicas'], list)
    pg_health.evaluate(facts, expect_standbys=1)  # and the checks can be built from whatever was parsed
