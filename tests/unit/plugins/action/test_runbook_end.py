# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runbook ending (action plugin dealerscope.ops.runbook_end + role dealerscope.ops.runbook_end) run the way AWX
runs a job: ``ansible_runner.run()`` on a private data dir (project copy, inventory, env/extravars with survey answers as
strings). Hosts are local (connection local), the channels point at the lab webhook receiver run in-process.

Proven: only the sick hosts fail (runner_on_failed events, stats), a fleet-level row fails the run once, the outcome is in
the playbook_on_stats artifact data, the AWX job is recorded in the report, no secret reaches an event or artifact file,
a second run with the ledger kept pages nobody twice, check mode writes/sends nothing and predicts the same `changed`,
a user template overrides the built-in one and a broken one fails before anyone is notified.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import pathlib
import shutil
import socket
import sys
import threading
import urllib.request

import ansible_runner
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4]
SECRET_PATH = '/T0SECRET/B0SECRET/slack-token-xyz'
ROUTING_KEY = 'rk-ending-0042'

PLAYBOOK = """---
- name: A runbook that ends with the shared ending
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Checks of each host
      ansible.builtin.set_fact:
        demo_checks: "{{ demo_results[inventory_hostname] }}"

    - name: Ending
      ansible.builtin.include_role:
        name: dealerscope.ops.runbook_end
      vars:
        runbook_end_runbook: demo
        runbook_end_started_at: "{{ demo_started_at }}"
        runbook_end_hosts: >-
          {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'demo_checks')))
             | combine(demo_fleet_rows) }}
        runbook_end_report_dir: "{{ demo_report_dir }}"
        runbook_end_channels: "{{ demo_channels }}"
        runbook_end_notify_state_dir: "{{ demo_state_dir }}"
        runbook_end_fail_on: "{{ demo_fail_on }}"
        runbook_end_write_in_check_mode: "{{ demo_write_in_check_mode }}"
        runbook_end_events: "{{ demo_events }}"
"""


def check(name, status, message, alert=None):
    return {'name': name, 'status': status, 'value': 1, 'threshold': 0, 'unit': '', 'message': message, 'alert': alert}


RESULTS = {
    'h1': [check('disk:/', 'ok', '/ 10 % used')],
    'h2': [check('http:api', 'critical', 'api refused 10 of 10 requests', 'service_down'), check('load', 'ok', 'load 0.1')],
    'h3': [check('disk:/', 'warning', '/ 85 % used', 'resource_exhaustion')],
}


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(name='receiver')
def fixture_receiver(tmp_path):
    spec = importlib.util.spec_from_file_location('ds_webhook_receiver', str(ROOT / 'lab' / 'webhook_receiver.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    port = free_port()
    server = module.WebhookReceiver(port, str(tmp_path / 'hooks.jsonl'))
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
    yield port
    server.shutdown()
    server.server_close()


def messages(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/messages' % port, timeout=5) as response:
        return json.loads(response.read())


class Job:
    """One AWX-like job: a fresh private data dir per run; only the report/notify directories persist (durable state)."""

    def __init__(self, tmp_path, port):
        self.tmp = tmp_path
        self.port = port
        self.durable = tmp_path / 'durable'
        self.runs = 0

    def extravars(self, **extra):
        values = {
            'demo_started_at': '2026-11-27T06:00:%02dZ' % self.runs,
            'demo_report_dir': str(self.durable / 'reports'),
            'demo_state_dir': str(self.durable / 'notify'),
            'demo_results': RESULTS,
            'demo_fleet_rows': {},
            'demo_fail_on': 'critical',
            'demo_events': [],
            'demo_write_in_check_mode': 'false',  # a survey answer: always a string
            'demo_channels': [
                {'name': 'pager', 'kind': 'pager', 'url': 'http://127.0.0.1:%d/pager' % self.port, 'routing_key': ROUTING_KEY,
                 'severities': ['critical']},
                {'name': 'slack', 'kind': 'slack', 'url': 'http://127.0.0.1:%d%s' % (self.port, SECRET_PATH),
                 'severities': ['critical', 'high'], 'team': True},
            ],
            'awx_job_id': '4242',
            'awx_job_template_name': 'DealerScope demo',
            'awx_user_name': 'oncall',
        }
        values.update(extra)
        return values

    def prepare(self, hosts=('h1', 'h2', 'h3'), **extra):
        """A fresh private data dir laid out as AWX lays it out; ``hosts`` is the job's inventory (a slice's share)."""
        self.runs += 1
        private = self.tmp / ('job%d' % self.runs)
        (private / 'project').mkdir(parents=True)
        (private / 'inventory').mkdir()
        (private / 'env').mkdir()
        (private / 'project' / 'end.yml').write_text(PLAYBOOK)
        (private / 'inventory' / 'hosts').write_text(
            '[fleet]\n%s\n[fleet:vars]\nansible_connection=local\nansible_python_interpreter=%s\n' % ('\n'.join(hosts), sys.executable))
        (private / 'env' / 'extravars').write_text(json.dumps(self.extravars(**extra)))
        env = {
            'ANSIBLE_CONFIG': str(ROOT / 'ansible.cfg'),
            'ANSIBLE_COLLECTIONS_PATH': str(ROOT / '.build' / 'collections'),
            'ANSIBLE_INVENTORY': str(private / 'inventory' / 'hosts'),
            'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
        }
        (private / 'env' / 'envvars').write_text(json.dumps(env))
        return private

    def run(self, cmdline='', hosts=('h1', 'h2', 'h3'), **extra):
        private = self.prepare(hosts, **extra)
        runner = ansible_runner.run(private_data_dir=str(private), playbook='end.yml', cmdline=cmdline or None, quiet=True,
                                    timeout=240)
        events = list(runner.events)
        return runner, events, private

    def run_sliced(self, hosts, slices, workflow_job_id, **extra):
        """One AWX sliced job: ``slices`` jobs at once, each on every ``slices``-th host, in one workflow job."""
        started = []
        for index in range(slices):
            private = self.prepare(hosts[index::slices], awx_job_id=str(5000 + self.runs), awx_workflow_job_id=workflow_job_id,
                                   runbook_end_slices=str(slices), **extra)
            thread, runner = ansible_runner.run_async(private_data_dir=str(private), playbook='end.yml', quiet=True, timeout=240)
            started.append((thread, runner, private))
        done = []
        for thread, runner, private in started:
            thread.join(timeout=300)
            done.append((runner, list(runner.events), private))
        return done

    def report(self):
        return json.loads((self.durable / 'reports' / 'demo' / 'latest' / 'report.json').read_text())


def failed_hosts(events):
    return sorted(set(e['event_data']['host'] for e in events if e['event'] == 'runner_on_failed'
                      and not e['event_data'].get('ignore_errors')))


def stats(events):
    return [e for e in events if e['event'] == 'playbook_on_stats'][0]['event_data']


def all_text(private):
    """Every event and artifact file of the job, as text."""
    return '\n'.join(path.read_text(errors='replace') for path in (private / 'artifacts').rglob('*') if path.is_file())


def test_only_the_sick_host_fails_and_the_outcome_is_an_artifact(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    runner, events, private = job.run()
    assert runner.rc == 2 and runner.status == 'failed'
    assert failed_hosts(events) == ['h2']
    data = stats(events)
    assert sorted(data['failures']) == ['h2'] and set(data['ok']) >= {'h1', 'h3'}
    outcome = data['artifact_data']['dealerscope_demo']
    assert outcome['status'] == 'critical' and outcome['failed_hosts'] == ['h2'] and outcome['run_failures'] == []
    assert outcome['report_url'] == str(job.durable / 'reports' / 'demo' / '20261127T060001Z' / 'report.html')
    assert (outcome['critical'], outcome['warning']) == (1, 1)
    failure = [e for e in events if e['event'] == 'runner_on_failed'][0]['event_data']['res']['msg']
    assert failure.startswith('demo: h2 CRITICAL - http:api: api refused 10 of 10 requests.') and outcome['report_url'] in failure
    report = job.report()
    assert report['meta']['job'] == {'id': '4242', 'template': 'DealerScope demo', 'launched_by': 'oncall'}
    assert report['hosts']['alert delivery']['status'] == 'ok'
    pages = [m['body'] for m in messages(receiver) if m['path'] == '/pager']
    assert [p['dedup_key'] for p in pages] == ['service_down|h2|http:api']
    text = all_text(private)
    assert SECRET_PATH not in text and ROUTING_KEY not in text and 'T0SECRET' not in text


def test_second_run_with_the_ledger_kept_pages_nobody_twice(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    job.run()
    shutil.rmtree(tmp_path / 'job1')  # AWX throws the job's directory away
    runner, events, dummy = job.run()
    assert runner.rc == 2 and failed_hosts(events) == ['h2']
    pages = [m['body'] for m in messages(receiver) if m['path'] == '/pager']
    assert len(pages) == 1, pages  # the second job started from a fresh private data dir: only the durable ledger remembers


def test_a_fleet_row_fails_the_run_once_and_no_host(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    rows = {'service via lb': [check('endpoint:api', 'critical', 'api 503 on 10 of 10 requests', 'service_down')]}
    results = {'h1': RESULTS['h1'], 'h2': RESULTS['h1'], 'h3': RESULTS['h1']}
    runner, events, dummy = job.run(demo_fleet_rows=rows, demo_results=results)
    assert runner.rc == 2
    failures = [e['event_data'] for e in events if e['event'] == 'runner_on_failed']
    assert len(failures) == 1 and 'service via lb: api 503 on 10 of 10 requests' in failures[0]['res']['msg']
    outcome = stats(events)['artifact_data']['dealerscope_demo']
    assert outcome['failed_hosts'] == [] and outcome['run_failures'] == ['service via lb']


def test_fail_on_never_as_a_string_fails_nothing(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    runner, events, dummy = job.run(demo_fail_on='never')
    assert runner.rc == 0 and failed_hosts(events) == []
    assert stats(events)['artifact_data']['dealerscope_demo']['status'] == 'critical'


def test_check_mode_writes_and_sends_nothing_and_predicts_changed(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    runner, events, dummy = job.run(cmdline='--check')
    assert runner.rc == 2 and failed_hosts(events) == ['h2']
    assert not (job.durable / 'reports').exists() and not (job.durable / 'notify').exists()
    assert messages(receiver) == []
    ending = [e['event_data'] for e in events if e['event'] == 'runner_on_ok'
              and e['event_data']['task'].startswith('Runbook ending - report')][0]
    assert ending['res']['changed'] is True and ending['res']['written'] is False
    real_runner, real_events, dummy = job.run()
    real = [e['event_data'] for e in real_events if e['event'] == 'runner_on_ok'
            and e['event_data']['task'].startswith('Runbook ending - report')][0]
    assert real['res']['changed'] is True and real['res']['written'] is True


def test_write_in_check_mode_true_as_a_string_writes_the_report_and_sends_nothing(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    runner, dummy, dummy2 = job.run(cmdline='--check', demo_write_in_check_mode='true')
    assert runner.rc == 2
    assert job.report()['status'] == 'critical' and messages(receiver) == []


def test_user_template_overrides_the_builtin_one_and_a_broken_one_stops_before_any_notification(tmp_path, receiver):
    templates = tmp_path / 'templates'
    templates.mkdir()
    (templates / 'report.md.j2').write_text('# {{ report.runbook }} is {{ report.status }}\n')
    job = Job(tmp_path, receiver)
    runner, dummy, dummy2 = job.run(runbook_end_report_templates=str(templates))
    latest = job.durable / 'reports' / 'demo' / 'latest'
    assert (latest / 'report.md').read_text() == '# demo is critical\n'
    assert '<!DOCTYPE html>' in (latest / 'report.html').read_text()  # not overridden: the built-in one
    sent = len(messages(receiver))

    (templates / 'report.html.j2').write_text('{{ report.hostz.h1 }}')
    runner, events, dummy = job.run(runbook_end_report_templates=str(templates))
    assert runner.rc == 2 and failed_hosts(events) == ['h1']  # the first host runs the run_once task
    failure = [e['event_data'] for e in events if e['event'] == 'runner_on_failed'][0]['res']['msg']
    assert str(templates / 'report.html.j2') in failure and 'hostz' in failure
    assert len(messages(receiver)) == sent  # nobody was notified
    assert len(list((job.durable / 'reports' / 'demo').glob('2026*'))) == 1  # nothing written


def test_survey_answer_of_the_wrong_kind_fails_before_anything_changes(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    runner, events, dummy = job.run(demo_fail_on='sometimes')
    assert runner.rc == 2
    failure = [e['event_data'] for e in events if e['event'] == 'runner_on_failed'][0]['res']['msg']
    assert 'runbook_end_fail_on' in failure and 'sometimes' in failure
    assert not (job.durable / 'reports').exists() and messages(receiver) == []


def test_an_event_is_sent_by_its_class_severity_and_is_no_problem(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    channels = job.extravars()['demo_channels'] + [
        {'name': 'releases', 'kind': 'webhook', 'url': 'http://127.0.0.1:%d/releases' % receiver, 'severities': ['low']}]
    event = {'name': 'deployment:v2@2026-11-27T06:00:01Z', 'alert': 'deployment_complete', 'message': 'v2 is live on green'}
    runner, dummy, dummy = job.run(demo_channels=channels, demo_events=[event], demo_fail_on='never')
    assert runner.rc == 0
    report = job.report()
    assert (report['summary']['critical'], report['summary']['warning']) == (1, 1)  # the event added no problem
    assert all(problem['alert'] != 'deployment_complete' for problem in report['problems'])
    released = [m['body'] for m in messages(receiver) if m['path'] == '/releases']
    assert len(released) == 1 and 'v2 is live on green' in json.dumps(released[0])
    pages = [m['body'] for m in messages(receiver) if m['path'] == '/pager']
    assert all('v2 is live' not in json.dumps(page) for page in pages)  # low never pages


def test_an_event_without_a_message_stops_before_anything_is_sent(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    runner, events, dummy = job.run(demo_events=[{'name': 'deployment:v2', 'alert': 'deployment_complete'}])
    assert runner.rc == 2
    failure = [e for e in events if e['event'] == 'runner_on_failed'][0]['event_data']['res']['msg']
    assert 'events[0] needs message' in failure
    assert messages(receiver) == []


SIX = {
    'h1': RESULTS['h1'], 'h2': RESULTS['h2'], 'h3': RESULTS['h3'],
    'h4': [check('disk:/', 'ok', '/ 20 % used')],
    'h5': [check('mem', 'critical', 'memory 99 %', 'resource_exhaustion')],
    'h6': [check('disk:/', 'ok', '/ 30 % used')],
}
SERVICE = {'service via lb': [check('latency:p95', 'warning', 'p95 900 ms', 'high_latency')]}


def comparable(report):
    """What a report says about the fleet, without when it ran and which job(s) ran it."""
    kept = dict((key, value) for key, value in report.items() if key not in ('started_at', 'finished_at', 'duration_s', 'meta'))
    return json.loads(json.dumps(kept)), dict((key, value) for key, value in report['meta'].items() if key not in ('job', 'slices'))


def pages_and_posts(port):
    return sorted((m['path'], json.dumps(m['body'].get('dedup_key') or m['body'].get('text', ''))[:60]) for m in messages(port))


def clear(port):
    urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:%d/messages' % port, method='DELETE'), timeout=5).close()


def test_three_slices_in_parallel_write_the_report_and_send_the_alerts_of_the_unsliced_run(tmp_path, receiver):
    hosts = sorted(SIX)
    whole = Job(tmp_path / 'whole', receiver)
    runner, events, dummy = whole.run(hosts=hosts, demo_results=SIX, demo_fleet_rows=SERVICE)
    assert runner.rc == 2 and failed_hosts(events) == ['h2', 'h5']
    unsliced = whole.report()
    alerts = pages_and_posts(receiver)
    assert ('/pager', '"service_down|h2|http:api"') in alerts and len(alerts) == 5
    clear(receiver)

    job = Job(tmp_path / 'sliced', receiver)  # a durable location of its own: a fresh ledger sends the same alerts
    done = job.run_sliced(hosts, 3, '4711', demo_results=SIX, demo_fleet_rows=SERVICE)
    artifacts = [stats(events)['artifact_data'] for dummy, events, dummy2 in done]
    outcomes = [outcome for data in artifacts for outcome in data.values()]
    merged = [outcome for outcome in outcomes if outcome['slice']['merged']]
    assert len(merged) == 1 and len(outcomes) == 3, artifacts  # exactly one slice completed the run
    # the run's key comes only from the slice that merged it; the others have keys of their own
    assert sorted(key for data in artifacts for key in data) == ['dealerscope_demo', 'dealerscope_demo_slice_1', 'dealerscope_demo_slice_2']
    # AWX merges the slices' artifacts key by key, the last job to finish winning: in any finishing order, the
    # workflow's next node sees the merged run
    for order in itertools.permutations(artifacts):
        seen = {}
        for data in order:
            seen.update(data)
        assert seen['dealerscope_demo'] == merged[0]
    assert sorted(outcome['slice']['recorded'] for outcome in outcomes) == [1, 2, 3]
    assert all(outcome['slice']['run'] == '4711' and outcome['slice']['of'] == 3 for outcome in outcomes)
    report = job.report()
    assert comparable(report) == comparable(unsliced)
    assert report['meta']['slices']['run'] == '4711' and sorted(report['meta']['slices']['jobs']) == ['5000', '5001', '5002']
    assert merged[0]['failed_hosts'] == ['h2', 'h5'] and merged[0]['run_failures'] == []
    assert merged[0]['status'] == unsliced['status'] and (merged[0]['critical'], merged[0]['warning']) == (2, 2)
    # each slice fails its own sick hosts (AWX's host summary, relaunch on failed hosts) and no other
    assert sorted(host for dummy, events, dummy2 in done for host in failed_hosts(events)) == ['h2', 'h5']
    assert pages_and_posts(receiver) == alerts  # one set of alerts, the unsliced run's
    assert len(list((job.durable / 'reports' / 'demo').glob('2026*'))) == 1  # one report
    assert [p.name for p in (job.durable / 'reports' / 'demo' / '.slices').iterdir()] == ['.lock']  # parts gone once merged
    for dummy, dummy2, private in done:
        text = all_text(private)
        assert SECRET_PATH not in text and ROUTING_KEY not in text


def test_a_sliced_run_missing_a_slice_is_reported_by_the_next_run(tmp_path, receiver):
    hosts = sorted(SIX)
    job = Job(tmp_path, receiver)
    private = job.prepare(hosts[0::3], awx_job_id='6001', awx_workflow_job_id='900', runbook_end_slices='3',
                          demo_results=SIX)
    runner = ansible_runner.run(private_data_dir=str(private), playbook='end.yml', quiet=True, timeout=240)
    outcome = stats(list(runner.events))['artifact_data']['dealerscope_demo_slice_1']
    assert outcome['slice'] == {'run': '900', 'recorded': 1, 'of': 3, 'merged': False}
    assert not list((job.durable / 'reports' / 'demo').glob('2026*')) and messages(receiver) == []  # no report, no alert yet
    parts = list((job.durable / 'reports' / 'demo' / '.slices' / '900').glob('*.part.json'))
    assert len(parts) == 1 and oct(parts[0].stat().st_mode & 0o777) == '0o600'

    runner, events, dummy = job.run(demo_results=RESULTS)  # the next run, before the slices are overdue: nothing said
    assert 'sliced run 900' not in job.report()['hosts']
    stamp = parts[0].stat().st_mtime - 7 * 3600
    os.utime(parts[0], (stamp, stamp))
    runner, events, dummy = job.run(demo_results=RESULTS, cmdline='--check', demo_write_in_check_mode='true')
    assert job.report()['hosts']['sliced run 900']['status'] == 'critical' and parts[0].exists()  # check mode deletes nothing
    runner, events, dummy = job.run(demo_results=RESULTS)
    row = job.report()['hosts']['sliced run 900']['checks'][0]
    assert row['status'] == 'critical' and row['alert'] == 'monitoring_gap'
    assert row['message'].startswith('sliced run 900 never completed: 1 of 3 slices recorded their results (2 hosts: h1, h4)')
    outcome = stats(events)['artifact_data']['dealerscope_demo']
    assert outcome['run_failures'] == ['sliced run 900'] and not parts[0].exists()
    runner, events, dummy = job.run(demo_results=RESULTS)
    assert 'sliced run 900' not in job.report()['hosts']  # said once


def test_slices_without_a_shared_run_id_fail_before_anything_is_written(tmp_path, receiver):
    job = Job(tmp_path, receiver)
    runner, events, dummy = job.run(runbook_end_slices='3')
    assert runner.rc == 2
    failure = [e for e in events if e['event'] == 'runner_on_failed'][0]['event_data']['res']['msg']
    assert 'slices is 3 but this run has no sliced-run id' in failure and 'awx_workflow_job_id' in failure
    assert not (job.durable / 'reports').exists() and messages(receiver) == []
