# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import json
import os
import pathlib
from html.parser import HTMLParser

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import ops_report
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, threshold_check
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import (
    REPORT_SCHEMA,
    build_report,
    failure_message,
    format_time,
    parse_time,
    reaches,
    render_json,
    runs_to_prune,
    schema_json,
    scrub,
    scrub_text,
    switch_latest,
)
from ansible_collections.dealerscope.ops.plugins.plugin_utils.report_render import matrix_columns, render
from ansible_collections.dealerscope.ops.plugins.plugin_utils.report_schema import validate


def render_html(report):
    return render(report, 'html')  # the built-in template (roles/runbook_end/templates/report.html.j2)


def render_markdown(report):
    return render(report, 'md')


REPO = pathlib.Path(__file__).resolve().parents[4]
STARTED = '2025-01-31T06:00:00Z'
FINISHED = '2025-01-31T06:00:07.250Z'
VOID = {'meta', 'br', 'hr', 'img', 'input', 'link', 'col', 'wbr', 'source', 'area', 'base', 'embed', 'param', 'track'}


def host_checks(host, index=0, disk_var=41.0, extra_disks=2):
    """Roughly what the daily runbook collects for one host (~25 checks)."""
    checks = [
        threshold_check('cpu', 12.5 + index, warn=70, crit=90, unit='%', alert='resource_exhaustion'),
        threshold_check('memory', 48.2, warn=80, crit=95, unit='%', alert='resource_exhaustion'),
        threshold_check('disk:/', 37.0, warn=80, crit=90, unit='%', alert='resource_exhaustion'),
        threshold_check('disk:/var', disk_var, warn=80, crit=90, unit='%', alert='resource_exhaustion'),
        threshold_check('inodes:/', 3.1, warn=80, crit=90, unit='%', alert='resource_exhaustion'),
        threshold_check('inodes:/var', 2.0, warn=80, crit=90, unit='%', alert='resource_exhaustion'),
        make_check('failed_units', 'ok', 0, 0, 'no failed systemd units', details={'units': []}),
        make_check('updates', 'ok', 0, 0, 'no security updates pending, 3 other', details={'other': 3}),
        make_check('reboot_required', 'ok', False, False, 'no reboot required'),
        make_check('clock_sync', 'ok', 0.4, 100, 'clock offset 0.4 ms (limit 100 ms)', unit='ms', details={'source': 'chrony'}),
        make_check('service:ssh.service', 'ok', 'active', 'active', 'ssh.service is active'),
        make_check('listening:22', 'ok', 22, 22, 'port 22 is listening on 0.0.0.0'),
    ]
    for number in range(extra_disks):
        checks.append(threshold_check('disk:/srv/data%d' % number, 20.0 + number, warn=80, crit=90, unit='%', alert='resource_exhaustion'))
    if host.startswith('app'):
        checks += [
            make_check('service:dealerscope-api.service', 'ok', 'active', 'active', 'dealerscope-api.service is active'),
            threshold_check('service_memory:dealerscope-api.service', 180.0, warn=410, crit=512, unit='MB', alert='resource_exhaustion'),
            make_check('listening:8000', 'ok', 8000, 8000, 'port 8000 is listening on 0.0.0.0'),
            threshold_check('api:error_rate', 0.02, crit=0.1, unit='%', alert='high_error_rate'),
            threshold_check('api:latency_p95', 230.0, warn=500, crit=1000, unit='ms', alert='high_latency'),
        ]
    if host == 'lb1':
        checks += [
            make_check('service:nginx.service', 'ok', 'active', 'active', 'nginx.service is active'),
            make_check('listening:80', 'ok', 80, 80, 'port 80 is listening'),
            make_check('listening:443', 'ok', 443, 443, 'port 443 is listening'),
            threshold_check('tls:days_left', 12, warn=21, crit=7, higher_is_worse=False, unit='days', alert='tls_expiry'),
            make_check('headers:security', 'ok', 0, 0, 'lb sends all 5 required security headers'),
        ]
    if host.startswith('db'):
        checks += [
            make_check('service:postgresql@15-main.service', 'ok', 'active', 'active', 'postgresql@15-main.service is active'),
            threshold_check('db_connections', 22.0, warn=80, crit=95, unit='%', alert='resource_exhaustion'),
            threshold_check('db_query_mean_ms', 3.2, warn=100, unit='ms', alert='high_latency'),
            make_check('db_size', 'ok', 812, None, 'database size 812 MB', unit='MB'),
        ]
    if host == 'db1':
        checks.append(threshold_check('backup_age', 7.5, crit=6, unit='h', alert='backup_stale', label='newest backup age (RPO)'))
    if host == 'db2':
        checks.append(threshold_check('replication_lag', 0.2, warn=30, crit=300, unit='s', alert='replication_lag'))
    return checks


def daily_hosts(names=('lb1', 'app1', 'app2', 'db1', 'db2')):
    return dict((name, host_checks(name, index, disk_var=83.1 if name == 'app2' else 41.0)) for index, name in enumerate(names))


def daily_report(**overrides):
    args = dict(runbook='daily', started_at=STARTED, finished_at=FINISHED, hosts=daily_hosts(), unreachable=[], failed={},
                meta={'inventory': 'lab', 'fleet_size': 5, 'module_executions': 25})
    args.update(overrides)
    return build_report(**args)


class WellFormed(HTMLParser):
    """Checks that every non-void element is closed in order; records tags and attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []
        self.tags = []
        self.attrs = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append('unexpected </%s>, open: %s' % (tag, self.stack[-3:]))
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text):
    parser = WellFormed()
    parser.feed(text)
    parser.close()
    return parser


# --------------------------------------------------------------------------- schema


def test_docs_schema_is_the_embedded_schema():
    on_disk = (REPO / 'docs' / 'report.schema.json').read_text(encoding='utf-8')
    assert on_disk == schema_json(), 'regenerate docs/report.schema.json from ops_report.schema_json()'
    assert json.loads(on_disk) == REPORT_SCHEMA


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    assert REPORT_SCHEMA['$schema'] == 'https://json-schema.org/draft/2020-12/schema'


def test_daily_report_is_valid():
    report = daily_report()
    jsonschema.validate(json.loads(render_json(report)), REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert validate(report) == []


@pytest.mark.parametrize('mutate', [
    lambda r: r.pop('summary'),
    lambda r: r.__setitem__('status', 'unknown'),
    lambda r: r.__setitem__('duration_s', -1),
    lambda r: r.__setitem__('started_at', '2025-01-31 06:00'),
    lambda r: r.__setitem__('extra', 1),
    lambda r: r['hosts']['db1']['checks'][0].__setitem__('unit', None),
    lambda r: r['hosts']['db1']['checks'][0].pop('alert'),
    lambda r: r['hosts']['db1'].__setitem__('checks', {}),
    lambda r: r['summary'].__setitem__('ok', True),
    lambda r: r['summary']['by_alert'].__setitem__('x', 1.5),
    lambda r: r['problems'].append({'host': 'x', 'name': 'y', 'status': 'ok', 'message': '', 'alert': None}),
    lambda r: r.__setitem__('runbook', '../etc'),
])
def test_broken_reports_are_refused_with_the_path_of_the_fault(mutate):
    report = daily_report()
    mutate(report)
    errors = validate(report)
    assert errors and all(error.startswith('$') for error in errors), errors


# --------------------------------------------------------------------------- report content


def test_summary_and_worst_first_problems():
    report = daily_report(unreachable=['db2'], failed={'app1': 'Timeout waiting for privilege escalation'})
    assert report['status'] == 'critical'
    assert report['duration_s'] == 7.25
    assert report['started_at'] == STARTED and report['finished_at'] == FINISHED
    assert list(report['hosts']) == ['app1', 'app2', 'db1', 'db2', 'lb1']
    statuses = [p['status'] for p in report['problems']]
    assert statuses == sorted(statuses, key=lambda s: {'critical': 0, 'warning': 1}[s])
    assert statuses[0] == 'critical' and statuses[-1] == 'warning'
    names = [(p['host'], p['name']) for p in report['problems']]
    assert ('app2', 'disk:/var') in names and ('lb1', 'tls:days_left') in names and ('db1', 'backup_age') in names
    summary = report['summary']
    assert summary['checks'] == sum(len(h['checks']) for h in report['hosts'].values())
    assert summary['ok'] + summary['warning'] + summary['critical'] == summary['checks']
    assert summary['critical'] == 3
    assert names[:3] == [('app1', 'runbook_error'), ('db1', 'backup_age'), ('db2', 'reachable')]
    assert names[3:] == [('app2', 'disk:/var'), ('lb1', 'tls:days_left')]
    assert summary['by_alert']['resource_exhaustion'] == 1
    assert summary['by_alert']['service_down'] == 1
    assert summary['host_status'] == {'ok': 0, 'warning': 2, 'critical': 3}
    assert report['meta'] == {'inventory': 'lab', 'fleet_size': 5, 'module_executions': 25}


@given(st.lists(st.tuples(st.sampled_from(['h1', 'h2', 'h3']), st.sampled_from(['ok', 'warning', 'critical']),
                          st.text(min_size=1, max_size=8)), max_size=30))
def test_problems_are_worst_first_for_any_input(entries):
    hosts = {}
    for host, status, name in entries:
        hosts.setdefault(host, []).append(make_check(name, status, 1, 2, 'm', alert=None if status == 'ok' else 'a'))
    report = build_report('daily', STARTED, FINISHED, hosts)
    ranks = [{'warning': 1, 'critical': 2}[p['status']] for p in report['problems']]
    assert ranks == sorted(ranks, reverse=True)
    assert len(report['problems']) == sum(1 for _h, status, _n in entries if status != 'ok')
    assert report['status'] == (max(entries, key=lambda e: ['ok', 'warning', 'critical'].index(e[1]))[1] if entries else 'ok')
    assert validate(report) == []
    assert jsonschema.Draft202012Validator(REPORT_SCHEMA).is_valid(report)


def test_unreachable_host_gets_critical_reachable_check():
    report = daily_report(hosts={'lb1': host_checks('lb1')}, unreachable=['db1'])
    db1 = report['hosts']['db1']
    assert db1['status'] == 'critical'
    assert db1['checks'] == [{'name': 'reachable', 'status': 'critical', 'value': False, 'threshold': True, 'unit': '',
                              'message': 'db1 is unreachable: no checks could run', 'alert': 'service_down'}]
    assert report['problems'][0]['host'] == 'db1' and report['problems'][0]['alert'] == 'service_down'
    assert report['summary']['hosts'] == 2


def test_failed_host_gets_runbook_error_with_its_message():
    report = daily_report(failed={'app2': 'Could not find\n  the requested service   dealerscope-api'})
    checks = report['hosts']['app2']['checks']
    assert checks[0]['name'] == 'runbook_error'
    assert checks[0]['status'] == 'critical'
    assert checks[0]['message'] == 'runbook task failed on app2: Could not find the requested service dealerscope-api'
    # the host's other checks are kept
    assert any(c['name'] == 'disk:/var' for c in checks)
    assert report['hosts']['app2']['status'] == 'critical'


def test_host_without_results_is_not_ok():
    # ops_checks: nothing measured is not fine - a host that returned no check at all is unknown, which ranks as critical.
    report = build_report('daily', STARTED, FINISHED, {'lb1': host_checks('lb1'), 'app2': [], 'db1': None})
    for host in ('app2', 'db1'):
        entry = report['hosts'][host]
        assert entry['status'] == 'critical', entry
        assert [(c['name'], c['status'], c['alert']) for c in entry['checks']] == [('results', 'critical', 'monitoring_gap')]
        assert entry['checks'][0]['message'] == 'no results: nothing was measured on %s, so its state is unknown' % host
    assert report['status'] == 'critical'
    assert report['summary']['host_status']['critical'] == 2
    assert [(p['host'], p['name']) for p in report['problems'] if p['status'] == 'critical'] == [('app2', 'results'), ('db1', 'results')]
    assert validate(report) == []


def test_malformed_checks_become_critical():
    checks = [{'status': 'ok'}, 'oops', {'name': 'x', 'status': 'unknown', 'message': 'probe died'},
              {'name': 'y', 'status': 'ok', 'unit': None, 'value': (1, 2)}, {'name': 'z', 'status': 'ok', 'value': float('nan')}]
    report = build_report('daily', STARTED, FINISHED, {'h': checks})
    checks = report['hosts']['h']['checks']
    assert [c['status'] for c in checks] == ['critical', 'critical', 'critical', 'ok', 'ok']
    assert checks[0]['name'] == 'invalid_check'
    assert checks[2]['message'] == "invalid status 'unknown': probe died"
    assert checks[3]['unit'] == '' and checks[3]['value'] == [1, 2]
    assert checks[4]['value'] == 'nan'  # JSON has no NaN
    assert validate(report) == []


def test_empty_report_is_ok_and_valid():
    report = build_report('dr', STARTED, STARTED, {})
    assert report['status'] == 'ok' and report['problems'] == [] and report['summary']['hosts'] == 0
    assert validate(report) == []
    assert 'None: every check is ok.' in render_markdown(report)
    assert parse_html(render_html(report)).errors == []


@pytest.mark.parametrize('bad', [
    dict(runbook='../x'), dict(runbook=''), dict(runbook='a/b'), dict(started_at='yesterday'),
    dict(finished_at='2025-01-31T05:00:00Z'), dict(hosts=['lb1']),
])
def test_bad_input_raises(bad):
    with pytest.raises(ValueError):
        daily_report(**bad)


def test_time_parsing_and_formatting():
    assert format_time(parse_time('2025-01-31T07:00:00+01:00')) == '2025-01-31T06:00:00Z'
    assert format_time(parse_time('2025-01-31T06:00:00')) == '2025-01-31T06:00:00Z'
    assert format_time(parse_time('2025-01-31T06:00:00.123456Z')) == '2025-01-31T06:00:00.123Z'
    assert ops_report.run_dir_name(parse_time('2025-01-31T07:08:09+01:00')) == '20250131T060809Z'
    report = daily_report(finished_at=None)
    assert report['finished_at'] > STARTED


# --------------------------------------------------------------------------- secrets

SECRET_KEYS = ['password', 'db_pass', 'api_token', 'SECRET', 'ssh_key', 'slack_webhook', 'url_with_credentials', 'PassPhrase']


def test_scrub_masks_secret_keys_recursively():
    data = {'inventory': 'lab', 'db_password': 'hunter2', 'nested': [{'Api_Key': 'abc', 'n': 1}],
            'deploy': {'webhook': {'url': 'x'}}, 'tuple': ('a', 'b')}
    assert scrub(data) == {'inventory': 'lab', 'db_password': '***', 'nested': [{'Api_Key': '***', 'n': 1}],
                           'deploy': {'webhook': '***'}, 'tuple': ['a', 'b']}


@pytest.mark.parametrize('text, expected', [
    ('https://user:pw@host/path', 'https://***@host/path'),
    ('see postgres://app:s3cr3t@db1:5432/ds and https://ok.example/x', 'see postgres://***@db1:5432/ds and https://ok.example/x'),
    ('https://u:p@ss@host', 'https://***@host'),
    ('GET /hook?token=abc123&x=1', 'GET /hook?token=***&x=1'),
    ('login failed: password=hunter2, user=deploy', 'login failed: password=***, user=deploy'),
    ('disk:/var 83 % used', 'disk:/var 83 % used'),
    ('mail ops@example.com', 'mail ops@example.com'),
])
def test_scrub_text(text, expected):
    assert scrub_text(text) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # Jinja2 renders in ~5 ms
@given(key=st.sampled_from(SECRET_KEYS),
       secret=st.text(alphabet='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$', min_size=10, max_size=40),
       where=st.sampled_from(['meta', 'meta_nested', 'details', 'details_list', 'url']))
def test_secret_never_reaches_any_file(key, secret, where):
    secret = 'Zq' + secret  # never a substring of the report's fixed text
    hosts = daily_hosts()
    meta = {'inventory': 'lab'}
    if where == 'meta':
        meta[key] = secret
    elif where == 'meta_nested':
        meta['notify'] = {'channel': '#ops', key: secret}
    elif where == 'details':
        hosts['db1'][0] = dict(hosts['db1'][0], details={key: secret, 'ok': 1})
    elif where == 'details_list':
        hosts['app1'][1] = dict(hosts['app1'][1], details={'targets': [{'name': 't', key: secret}]})
    else:
        hosts['lb1'][2] = dict(hosts['lb1'][2], message='probe https://ops:%s@lb1/health failed' % secret)
        meta['backup_target'] = 's3://ops:%s@bucket/db' % secret
    report = build_report('daily', STARTED, FINISHED, hosts, meta=meta)
    for text in (render_json(report), render_markdown(report), render_html(report)):
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text
    assert '***' in render_json(report)


# --------------------------------------------------------------------------- rendering


def test_html_escapes_everything():
    hosts = daily_hosts()
    hosts['app1'].append(make_check('evil"<b>', 'critical', '<img src=x>', None, '<script>alert(1)</script> & "quoted"',
                                    alert='x<y'))
    report = build_report('daily', STARTED, FINISHED, hosts, meta={'<i>note': '<script>meta</script>'})
    page = render_html(report)
    assert '<script' not in page
    assert '&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;' in page
    assert '<img' not in page and '<i>' not in page and 'evil"<b>' not in page
    parsed = parse_html(page)
    assert parsed.errors == [] and parsed.stack == []
    assert 'script' not in parsed.tags
    # the title attribute carries the (unescaped once parsed) message
    assert ('title', 'CRITICAL: <script>alert(1)</script> & "quoted"') in parsed.attrs
    markdown = render_markdown(report)
    assert '<script>' not in markdown and '&lt;script&gt;' in markdown


def test_html_is_self_contained_and_well_formed_for_the_daily_fleet():
    report = daily_report(unreachable=['db2'])
    page = render_html(report)
    parsed = parse_html(page)
    assert parsed.errors == [] and parsed.stack == []
    assert not {'script', 'link', 'img', 'iframe'} & set(parsed.tags)
    assert not [v for k, v in parsed.attrs if k in ('src', 'href')]
    assert 'http' not in page.replace('http-equiv', '')
    text = ' '.join(parsed.text)
    assert 'Problems (worst first)' in text
    assert page.count('<tr><th class="host') == 5
    # every cell has a status class; the unreachable db2 row shows grey missing cells
    assert 'class="s-missing"' in page and 'class="s-critical"' in page and 'class="s-warning"' in page
    assert '83.1 %' in text and 'limit 80 %' in text


def test_html_degrades_for_50_hosts():
    names = ['app%02d' % i for i in range(50)]
    hosts = dict((name, host_checks('app', i, extra_disks=i % 5)) for i, name in enumerate(names))
    report = build_report('daily', STARTED, FINISHED, hosts, unreachable=['app07'])
    page = render_html(report)
    parsed = parse_html(page)
    assert parsed.errors == [] and parsed.stack == []
    assert page.count('<tr><th class="host') == 50
    assert len(page) < 1024 * 1024
    rows = page.split('<tbody>', 1)[1].split('</tbody>', 1)[0].split('</tr>')[:-1]
    widths = set(row.count('<td') for row in rows)
    assert len(widths) == 1  # every row has a cell (possibly grey) for every column


def test_matrix_groups_prefixed_checks():
    report = build_report('daily', STARTED, FINISHED, {
        'a': [make_check('cpu', 'ok', 1, 2, 'm'), make_check('disk:/', 'ok', 1, 2, 'm'), make_check('service:x', 'ok', 1, 2, 'm')],
        'b': [make_check('disk:/var', 'ok', 1, 2, 'm'), make_check('memory', 'ok', 1, 2, 'm'), make_check('disk:/', 'ok', 1, 2, 'm')],
    })
    assert matrix_columns(report) == [
        (None, [('cpu', 'cpu')]),
        ('disk', [('disk:/', '/'), ('disk:/var', '/var')]),
        ('service', [('service:x', 'x')]),
        (None, [('memory', 'memory')]),
    ]
    page = render_html(report)
    assert '<th colspan="2">disk</th>' in page and '<th rowspan="2">cpu</th>' in page


def test_markdown_layout():
    report = daily_report(failed={'db1': 'x | y'})
    markdown = render_markdown(report)
    lines = markdown.splitlines()
    assert lines[0] == '# daily runbook report'
    assert '**Status: \U0001F534 CRITICAL**' in lines
    assert '- Duration: 7.2 s' in lines or '- Duration: 7.3 s' in lines
    problems_at = lines.index('## Problems (worst first)')
    hosts_at = lines.index('## Hosts')
    assert problems_at < hosts_at
    table = [line for line in lines[problems_at:hosts_at] if line.startswith('| ')]
    assert 'CRITICAL' in table[1] and 'db1' in table[1] and 'backup\\_age' in table[1]
    assert 'CRITICAL' in table[2] and 'runbook\\_error' in table[2] and 'x \\| y' in table[2]
    assert all(line.count(' | ') == 4 for line in table)  # escaped pipes do not add columns
    assert '### app2: \U0001F7E0 WARNING' in lines


# --------------------------------------------------------------------------- exit behaviour


@pytest.mark.parametrize('status, fail_on, expected', [
    ('critical', 'critical', True), ('warning', 'critical', False), ('ok', 'critical', False),
    ('critical', 'warning', True), ('warning', 'warning', True), ('ok', 'warning', False),
    ('critical', 'never', False),
])
def test_reaches(status, fail_on, expected):
    assert reaches(status, fail_on) is expected


def test_failure_message_names_worst_checks_and_path():
    report = daily_report(unreachable=['x%d' % i for i in range(7)])
    msg = failure_message(report, 'critical', '/r/daily/20250131T060000Z/report.html')
    assert msg.startswith('daily runbook status is critical (fail_on=critical): ')
    assert 'db1 backup_age (critical), x0 reachable (critical)' in msg
    assert 'x3 reachable (critical)' in msg and 'x4 reachable' not in msg  # only the first 5 (worst, then by host)
    assert 'and 3 more' in msg
    assert msg.endswith('report: /r/daily/20250131T060000Z/report.html')
    assert 'disk:/var' not in msg  # warnings are not named when failing on critical


# --------------------------------------------------------------------------- files


def make_runs(directory, names):
    for name in names:
        (directory / name).mkdir(parents=True)
        (directory / name / 'report.json').write_text('{}')


def test_runs_to_prune_keeps_newest_and_latest_target(tmp_path):
    names = ['20250101T060000Z', '20250102T060000Z', '20250103T060000Z', '20250104T060000Z']
    make_runs(tmp_path, names)
    (tmp_path / 'notes').mkdir()
    (tmp_path / '20250100T000000Z.bak').mkdir()
    os.symlink('20250101T060000Z', tmp_path / 'latest')
    assert runs_to_prune(str(tmp_path), 2) == [str(tmp_path / '20250102T060000Z')]
    # a new run counts and becomes what latest protects
    assert runs_to_prune(str(tmp_path), 2, new_run='20250105T060000Z') == [
        str(tmp_path / n) for n in ('20250103T060000Z', '20250102T060000Z', '20250101T060000Z')]
    assert runs_to_prune(str(tmp_path), 10) == []
    assert runs_to_prune(str(tmp_path / 'missing'), 1, new_run='20250105T060000Z') == []
    with pytest.raises(ValueError):
        runs_to_prune(str(tmp_path), 0)


def test_switch_latest_replaces_atomically(tmp_path, monkeypatch):
    make_runs(tmp_path, ['20250101T060000Z', '20250102T060000Z'])
    switch_latest(str(tmp_path), '20250101T060000Z')
    assert os.readlink(tmp_path / 'latest') == '20250101T060000Z'
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((os.path.islink(src), os.readlink(src), os.readlink(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(ops_report.os, 'replace', spy)
    switch_latest(str(tmp_path), '20250102T060000Z')
    assert calls == [(True, '20250102T060000Z', '20250101T060000Z')]  # latest existed until the rename
    assert os.readlink(tmp_path / 'latest') == '20250102T060000Z'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['20250101T060000Z', '20250102T060000Z', 'latest']


def test_switch_latest_refuses_a_real_directory(tmp_path):
    (tmp_path / 'latest').mkdir()
    with pytest.raises(OSError):
        switch_latest(str(tmp_path), '20250101T060000Z')
    assert (tmp_path / 'latest').is_dir() and not (tmp_path / 'latest').is_symlink()
    assert [p.name for p in tmp_path.iterdir()] == ['latest']


def test_report_is_not_mutated_by_rendering():
    report = daily_report()
    before = copy.deepcopy(report)
    render_json(report)
    render_markdown(report)
    render_html(report)
    assert report == before
