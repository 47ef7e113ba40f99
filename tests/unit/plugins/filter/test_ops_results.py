"""dealerscope.ops.ops_results filter."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter.ops_results import ops_results

OK = {'name': 'cpu', 'status': 'ok', 'value': 1, 'threshold': 70, 'unit': '%', 'message': 'fine', 'alert': None}
BAD = {'name': 'service:nginx.service', 'status': 'critical', 'value': 'inactive', 'threshold': 'active', 'unit': '', 'message': 'down',
       'alert': 'service_down'}


def test_checks_are_concatenated_per_host_and_skips_ignored():
    hv = {'a': {'health': {'checks': [OK]}, 'db': {'skipped': True}, 'logs': {'checks': [BAD], 'changed': True}}}
    out = ops_results(hv, ['a'], ['health', 'logs', 'db'])
    assert out['hosts'] == {'a': [OK, BAD]}
    assert out['executions'] == {'a': 2} and out['unreachable'] == [] and out['failed'] == {}


def test_unreachable_and_failed_hosts_are_named():
    hv = {'a': {'health': {'unreachable': True, 'msg': 'ssh: connect refused'}},
          'b': {'health': {'failed': True, 'msg': 'MODULE FAILURE'}, 'logs': {'checks': [OK]}},
          'c': {'health': {'failed_when_result': False, 'changed': False}}}
    out = ops_results(hv, ['a', 'b', 'c'], ['health', 'logs'])
    assert out['unreachable'] == ['a']
    assert out['failed'] == {'b': 'health: MODULE FAILURE', 'c': 'health: no checks returned'}
    assert out['hosts']['b'] == [OK] and out['hosts']['a'] == []


def test_missing_registered_variable_counts_nothing():
    out = ops_results({'a': {}}, ['a'], ['health'])
    assert out == {'hosts': {'a': []}, 'unreachable': [], 'failed': {}, 'executions': {'a': 0}}


@pytest.mark.parametrize('hostvars,hosts,results,needle', [
    ('not hostvars', ['a'], ['x'], 'must be hostvars'),
    ({'a': {}}, 'a', ['x'], 'hosts must be a list'),
    ({'a': {}}, ['a'], [], 'non-empty list'),
    ({'a': {}}, ['b'], ['x'], "host 'b' is not in hostvars"),
])
def test_bad_input_is_explained(hostvars, hosts, results, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        ops_results(hostvars, hosts, results)


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.lists(st.sampled_from([OK, BAD]), max_size=5), max_size=6))
def test_every_check_is_kept_exactly_once(per_host):
    hv = dict((h, {'r': {'checks': checks}}) for h, checks in per_host.items())
    out = ops_results(hv, list(per_host), ['r'])
    assert out['hosts'] == per_host
    assert sum(out['executions'].values()) == len(per_host)
