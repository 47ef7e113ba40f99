# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.module_utils import tls_certs
from ansible_collections.dealerscope.ops.plugins.modules import tls_info
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args
from ..module_utils.test_tls_certs import DAY, NOW, closed_port, pki, tls_server  # noqa: F401  pylint: disable=unused-import


@pytest.fixture
def run(monkeypatch, tmp_path):
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda _self, warning, **kw: warnings.append(warning))
    # no system bundle unless a test sets one: the host's trust store must not change the results
    monkeypatch.setattr(tls_certs, 'SYSTEM_CA_BUNDLE', str(tmp_path / 'no-system-bundle.crt'))

    def runner(**args):
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                tls_info.main()
        result = excinfo.value.result
        result['_warnings'] = warnings
        return excinfo.type is AnsibleFailJson, result

    return runner


def by_name(result):
    return dict((check['name'], check) for check in result['checks'])


def test_inventory_in_input_order(run, pki, tmp_path, tls_server):
    leaf_path, key_path = pki.write(tmp_path, 'lb', pki.leaf, pki.inter, key=pki.leaf_key)
    server = tls_server(leaf_path, key_path)
    soon = pki.issue('db.dealerscope.lab', not_before=NOW - 80 * DAY, not_after=NOW + 10 * DAY)
    soon_path, _key = pki.write(tmp_path, 'db', soon, pki.inter)
    failed, result = run(
        certificates=[
            dict(name='lb', cert_path=leaf_path, key_path=key_path, endpoint=server.endpoint),
            dict(name='db', cert_path=soon_path),
            dict(name='gone', cert_path=str(tmp_path / 'gone.pem')),
        ],
        ca_path=pki.ca_bundle(tmp_path),
    )
    assert not failed and result['changed'] is False
    assert [info['name'] for info in result['certificates']] == ['lb', 'db', 'gone']
    assert [check['name'] for check in result['checks']] == ['tls:lb', 'tls:db', 'tls:gone']
    checks = by_name(result)
    assert checks['tls:lb']['status'] == 'ok' and checks['tls:lb']['alert'] is None
    lb = result['certificates'][0]
    assert lb['chain']['valid'] is True and lb['key']['match'] is True and lb['endpoint']['matches_file'] is True
    assert lb['chain']['anchor_source'].endswith('ca.pem')
    assert checks['tls:db']['status'] == 'warning' and checks['tls:db']['alert'] == 'tls_expiry'
    assert checks['tls:db']['value'] == 10.0 and checks['tls:db']['threshold'] == 21 and checks['tls:db']['unit'] == 'days'
    assert checks['tls:gone']['status'] == 'critical' and checks['tls:gone']['alert'] == 'tls_invalid'
    assert result['summary'] == {'ok': 1, 'warning': 1, 'critical': 1, 'status': 'critical'}
    assert checks['tls:lb']['details'] == lb
    dumped = json.dumps(result)
    assert 'PRIVATE' not in dumped and 'BEGIN' not in dumped


def test_check_mode_gives_the_same_result(run, pki, tmp_path):
    path, key_path = pki.write(tmp_path, 'lb', pki.leaf, pki.inter, key=pki.leaf_key, key_mode=0o644)
    args = dict(certificates=[dict(name='lb', cert_path=path, key_path=key_path)], ca_path=pki.ca_bundle(tmp_path))
    failed, normal = run(**args)
    failed_check, checked = run(_ansible_check_mode=True, **args)
    assert not failed and not failed_check and checked['changed'] is False
    assert checked['checks'][0]['status'] == normal['checks'][0]['status'] == 'critical'
    assert checked['checks'][0]['alert'] == 'security_event'


def test_thresholds_are_passed_on(run, pki, tmp_path):
    cert = pki.issue('svc.dealerscope.lab', not_before=NOW - 10 * DAY, not_after=NOW + 25 * DAY)
    path, _key = pki.write(tmp_path, 'svc', cert, pki.inter)
    certificates = [dict(name='svc', cert_path=path)]
    ca_path = pki.ca_bundle(tmp_path)
    assert run(certificates=certificates, ca_path=ca_path)[1]['checks'][0]['status'] == 'ok'
    assert run(certificates=certificates, ca_path=ca_path, warn_days=30)[1]['checks'][0]['status'] == 'warning'
    result = run(certificates=certificates, ca_path=ca_path, warn_days=40, crit_days=30)[1]
    assert result['checks'][0]['status'] == 'critical' and 'critical at 30' in result['checks'][0]['message']
    assert run(certificates=certificates, ca_path=ca_path, lifetime_warn_percent=25)[1]['checks'][0]['status'] == 'warning'


def test_system_bundle_when_no_ca_path(run, pki, tmp_path, monkeypatch):
    path, _key = pki.write(tmp_path, 'lb', pki.leaf, pki.inter)
    failed, result = run(certificates=[dict(name='lb', cert_path=path)])
    assert not failed and result['certificates'][0]['chain']['valid'] is False
    monkeypatch.setattr(tls_certs, 'SYSTEM_CA_BUNDLE', pki.ca_bundle(tmp_path))
    failed, result = run(certificates=[dict(name='lb', cert_path=path)])
    assert result['certificates'][0]['chain']['valid'] is True
    assert result['certificates'][0]['chain']['anchor_source'] == tls_certs.SYSTEM_CA_BUNDLE


def test_endpoint_not_reloaded_and_unreachable(run, pki, tmp_path, tls_server):
    old = pki.issue('api.dealerscope.lab', not_before=NOW - 30 * DAY, not_after=NOW + 60 * DAY)
    old_path, key_path = pki.write(tmp_path, 'old', old, pki.inter, key=pki.leaf_key)
    server = tls_server(old_path, key_path)
    new_path, _key = pki.write(tmp_path, 'new', pki.leaf, pki.inter)
    unreachable = '127.0.0.1:%d' % closed_port()
    failed, result = run(
        certificates=[dict(name='api', cert_path=new_path, endpoint=server.endpoint, server_name='api.dealerscope.lab'),
                      dict(name='down', cert_path=new_path, endpoint=unreachable)],
        ca_path=pki.ca_bundle(tmp_path), timeout=2,
    )
    assert not failed
    checks = by_name(result)
    assert checks['tls:api']['status'] == 'warning' and checks['tls:api']['alert'] == 'tls_invalid'
    assert checks['tls:api']['message'].endswith('the service was not reloaded')
    assert result['certificates'][0]['endpoint']['protocol'] in ('TLSv1.2', 'TLSv1.3')
    assert server.server_names == ['api.dealerscope.lab']
    assert checks['tls:down']['status'] == 'warning' and checks['tls:down']['alert'] == 'service_down'
    assert result['certificates'][1]['endpoint']['matches_file'] is None


@pytest.mark.parametrize('args, words', [
    (dict(crit_days=30), 'crit_days (30) must not be greater than warn_days (21)'),
    (dict(warn_days=-1, crit_days=-5), 'must not be negative'),
    (dict(lifetime_warn_percent=-1.0), 'lifetime_warn_percent must not be negative'),
    (dict(timeout=0), 'timeout must be greater than 0'),
])
def test_bad_options_fail(run, args, words):
    failed, result = run(certificates=[dict(name='lb', cert_path='/etc/ssl/lb.pem')], **args)
    assert failed and words in result['msg']


def test_duplicate_names_and_bad_endpoints_name_the_certificate(run):
    failed, result = run(certificates=[dict(name='lb', cert_path='/a.pem'), dict(name='lb', cert_path='/b.pem')])
    assert failed and result['msg'] == "certificate 'lb': the name is used more than once"
    for endpoint in ('lb.lab', 'lb.lab:https', '[::1]443', 'lb.lab:99999'):
        failed, result = run(certificates=[dict(name='api', cert_path='/a.pem', endpoint=endpoint)])
        assert failed and result['msg'].startswith("certificate 'api': endpoint"), endpoint


def test_missing_required_suboption_fails(run):
    failed, result = run(certificates=[dict(name='lb')])
    assert failed and 'cert_path' in result['msg']


def test_unreadable_ca_path_fails(run, pki, tmp_path):
    path, _key = pki.write(tmp_path, 'lb', pki.leaf, pki.inter)
    failed, result = run(certificates=[dict(name='lb', cert_path=path)], ca_path=str(tmp_path / 'absent.pem'))
    assert failed and 'cannot read CA bundle' in result['msg']


def test_documentation_matches_the_argument_spec():
    import ast
    import yaml

    with open(tls_info.__file__) as handle:
        tree = ast.parse(handle.read())
    docs = dict((node.targets[0].id, yaml.safe_load(node.value.value)) for node in tree.body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'))
    options = docs['DOCUMENTATION']['options']
    assert set(options) == {'certificates', 'ca_path', 'warn_days', 'crit_days', 'lifetime_warn_percent', 'timeout'}
    assert set(options['certificates']['suboptions']) == {'name', 'cert_path', 'key_path', 'endpoint', 'server_name', 'starttls'}
    assert options['warn_days']['default'] == 21 and options['crit_days']['default'] == 7
    assert options['lifetime_warn_percent']['default'] == 90 and options['timeout']['default'] == 5
    assert set(docs['RETURN']) == {'certificates', 'checks', 'summary'}
    assert docs['DOCUMENTATION']['version_added'] == '0.1.0'


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(warn=st.integers(min_value=-5, max_value=60), crit=st.integers(min_value=-5, max_value=60))
def test_threshold_validation_property(run, warn, crit):
    failed, result = run(certificates=[dict(name='lb', cert_path='/nonexistent/lb.pem')], warn_days=warn, crit_days=crit)
    assert failed == (warn < 0 or crit < 0 or crit > warn)
    if not failed:
        assert result['checks'][0]['status'] == 'critical' and result['checks'][0]['threshold'] == warn
