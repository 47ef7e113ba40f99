# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.filter.ops_results import ops_results
from ansible_collections.dealerscope.ops.plugins.module_utils import http_probe as probe_utils
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import build_report
from ansible_collections.dealerscope.ops.plugins.modules import http_probe
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def do_GET(self):
        self.server.seen.append((self.path, dict(self.headers.items())))
        status = 500 if self.path.startswith('/fail') else 200
        body = b'{"items": []}'
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope='module')
def server():
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    srv.seen = []
    thread = threading.Thread(target=srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def base_url(srv, path):
    return 'http://127.0.0.1:%d%s' % (srv.server_address[1], path)


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    def runner(**args):
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                http_probe.main()
        return excinfo.type is AnsibleFailJson, excinfo.value.result
    return runner


def test_probe_ok_and_failing_endpoints(run, server):
    failed, result = run(endpoints=[dict(name='api', url=base_url(server, '/api/vehicles')),
                                    dict(name='broken', url=base_url(server, '/fail'), count=3)],
                         count=8, concurrency=2)
    assert not failed
    assert result['changed'] is False
    assert set(result['probes']) == {'api', 'broken'}
    api = result['probes']['api']
    assert api['requests_sent'] == 8 and api['status_codes'] == {'200': 8} and api['concurrency'] == 2
    assert api['latency_ms']['p95'] is not None and api['duration_s'] > 0
    names = [c['name'] for c in result['checks']]
    assert names == ['api:error_rate', 'api:latency_p95', 'broken:error_rate', 'broken:latency_p95']
    statuses = dict((c['name'], (c['status'], c['alert'])) for c in result['checks'])
    assert statuses['api:error_rate'] == ('ok', None)
    assert statuses['api:latency_p95'] == ('ok', None)
    assert statuses['broken:error_rate'] == ('critical', 'high_error_rate')
    assert result['probes']['broken']['requests_sent'] == 3  # per-endpoint count overrides the default


def test_check_mode_probes_too(run, server):
    failed, result = run(endpoints=[dict(name='api', url=base_url(server, '/ok'))], count=2, _ansible_check_mode=True)
    assert not failed and result['changed'] is False
    assert result['probes']['api']['responses'] == 2


def test_headers_are_sent_and_masked(run, server):
    server.seen[:] = []
    failed, result = run(endpoints=[dict(name='api', url=base_url(server, '/auth'), headers={'Authorization': 'Bearer hunter2-token'})],
                         count=2, concurrency=1)
    assert not failed
    assert [headers.get('Authorization') for _path, headers in server.seen] == ['Bearer hunter2-token'] * 2
    assert all(headers['X-Request-ID'].startswith('probe-') for _path, headers in server.seen)
    assert 'hunter2-token' not in json.dumps(result)


def test_service_down(run):
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    failed, result = run(endpoints=[dict(name='gone', url='http://127.0.0.1:%d/' % port)], count=2, concurrency=1, timeout_s=1)
    assert not failed  # a down service is a check result, not a module failure
    check = result['checks'][0]
    assert check['name'] == 'gone:error_rate' and check['status'] == 'critical'
    assert check['alert'] == 'service_down' and check['value'] == 100.0


def test_a_bug_fails_the_module_and_the_daily_report_shows_runbook_error(run, server, monkeypatch):
    """A bug in the probe (here an AttributeError) is not the service's error rate: no high_error_rate page."""
    def buggy(self, status, latency_ms, headers):
        raise AttributeError("'HTTPMessage' object has no attribute 'no_such_field'")

    monkeypatch.setattr(probe_utils.EndpointProbe, '_record_response', buggy)
    failed, result = run(endpoints=[dict(name='api', url=base_url(server, '/api/vehicles'))], count=8, concurrency=2)
    assert failed
    assert 'checks' not in result
    assert "http_probe failed: internal error while probing api: AttributeError: 'HTTPMessage' object has no attribute" in result['msg']
    assert 'not a measurement of the service' in result['msg']

    # The daily role registers it with failed_when: false (roles/daily/tasks/collect.yml, __daily_direct); what Ansible
    # registers then goes through ops_results and ops_report like in roles/daily/tasks/report.yml.
    registered = dict(result, failed=False, failed_when_result=False)
    health = {'checks': [{'name': 'cpu', 'status': 'ok', 'value': 3.0, 'threshold': 70, 'unit': '%', 'message': 'cpu 3 %', 'alert': None}]}
    gathered = ops_results({'app1': {'__daily_health': health, '__daily_direct': registered}}, ['app1'],
                           ['__daily_health', '__daily_direct'])
    assert gathered['failed'] == {'app1': '__daily_direct: ' + result['msg']}
    report = build_report('daily', '2025-01-31T06:00:00Z', '2025-01-31T06:00:07Z', gathered['hosts'],
                          gathered['unreachable'], gathered['failed'])
    checks = report['hosts']['app1']['checks']
    assert [(c['name'], c['status'], c['alert']) for c in checks] == [('runbook_error', 'critical', 'runbook_error'), ('cpu', 'ok', None)]
    assert 'AttributeError' in checks[0]['message']
    assert [p['alert'] for p in report['problems']] == ['runbook_error']


@pytest.mark.parametrize('args, message', [
    (dict(endpoints=[]), 'endpoints must contain at least one endpoint'),
    (dict(endpoints=[dict(name='a', url='ftp://x/')]), 'endpoints[0] (a).url: scheme must be http or https'),
    (dict(endpoints=[dict(name='a', url='http:///x')]), 'a host is required'),
    (dict(endpoints=[dict(name='a', url='http://x/')], concurrency=65), 'concurrency must be at most 64'),
    (dict(endpoints=[dict(name='a', url='http://x/', count=0)]), 'endpoints[0] (a).count must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://x/')], p95_ms=-1.0), 'p95_ms must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://x/')], error_rate_percent=-1.0), 'error_rate_percent must be greater than 0'),
    (dict(endpoints=[dict(name='a', url='http://x/')], count=30, max_requests=20), 'more than max_requests (20)'),
    (dict(endpoints=[dict(name='a', url='https://x/')], ca_path='/nonexistent/ca.pem'), 'ca_path /nonexistent/ca.pem cannot be read'),
    (dict(endpoints=[dict(name='a', url='http://x/', method='POST')]), 'value of method must be one of'),
    (dict(endpoints=[dict(name='a', url='http://a..b/')]), "endpoints[0] (a).url: invalid host name 'a..b'"),
    (dict(endpoints=[dict(url='http://x/')]), 'name'),
])
def test_validation_errors(run, args, message):
    failed, result = run(**args)
    assert failed
    assert message in result['msg']


def test_ca_path_not_a_certificate(run, tmp_path):
    bogus = tmp_path / 'ca.pem'
    bogus.write_text('not a certificate\n')
    failed, result = run(endpoints=[dict(name='a', url='https://127.0.0.1:1/')], ca_path=str(bogus))
    assert failed and 'cannot set up the probe' in result['msg']


def test_argument_spec_matches_documentation():
    """Cheap guard next to validate-modules: every option is documented with the same default."""
    import yaml
    doc = yaml.safe_load(http_probe.DOCUMENTATION)
    spec = http_probe.argument_spec()
    assert set(doc['options']) == set(spec)
    for name, option in spec.items():
        assert doc['options'][name].get('default') == option.get('default'), name
        assert doc['options'][name]['type'] == option['type'], name
    assert set(doc['options']['endpoints']['suboptions']) == set(spec['endpoints']['options'])
    for name in ('RETURN', 'EXAMPLES'):
        assert yaml.safe_load(getattr(http_probe, name))
