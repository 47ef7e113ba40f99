# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import pathlib
import stat
import subprocess

import pytest

from ansible_collections.dealerscope.ops.plugins.filter.patch_db_checks import FilterModule, parse_answer, patch_db_checks

PROBE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'patching' / 'files' / 'db_probe.sh'
UNIT = 'postgresql@15-main.service'


def line(state='active', answer='1|f|none', start='auto', version='15', cluster='main'):
    return 'cluster\t%s\t%s\t%s\tpostgresql@%s-%s.service\t%s\t%s\n' % (version, cluster, start, version, cluster, state, answer)


def statuses(checks):
    return [(c['name'], c['status'], c['details']['pending']) for c in checks]


def test_a_running_primary_answers():
    checks = patch_db_checks({'stdout': line(), 'rc': 0})
    assert statuses(checks) == [('database:15/main', 'ok', False)]
    assert checks[0]['message'] == '15/main: postgresql@15-main.service active, SELECT 1 answers (primary)'
    assert checks[0]['details']['role'] == 'primary' and checks[0]['details']['unit'] == UNIT


def test_a_streaming_standby():
    checks = patch_db_checks(line(answer='1|t|streaming'))
    assert statuses(checks) == [('database:15/main', 'ok', False), ('replication:15/main', 'ok', False)]
    assert checks[1]['details']['wal_receiver'] == 'streaming'


@pytest.mark.parametrize('receiver', ['none', 'starting', 'waiting', 'stopping'])
def test_a_standby_that_does_not_stream_is_critical_and_worth_waiting_for(receiver):
    checks = patch_db_checks(line(answer='1|t|%s' % receiver))
    assert statuses(checks) == [('database:15/main', 'ok', False), ('replication:15/main', 'critical', True)]
    assert checks[1]['message'] == '15/main: standby does not stream from its primary (WAL receiver: %s)' % receiver


@pytest.mark.parametrize('state, pending', [('failed', False), ('inactive', False), ('activating', True), ('deactivating', False),
                                            ('unknown', False)])
def test_the_cluster_unit_must_be_active(state, pending):
    """The cluster's own unit: postgresql.service (the wrapper) is active whether or not the cluster runs."""
    checks = patch_db_checks(line(state=state, answer='not queried (unit %s)' % state))
    assert statuses(checks) == [('database:15/main', 'critical', pending)]
    assert checks[0]['message'] == '15/main: postgresql@15-main.service is %s - the database is not running' % state
    assert checks[0]['alert'] == 'service_down'


@pytest.mark.parametrize('answer', [
    'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  the database system is starting up',
    'no answer', '', '2|f|none', '1|x|none', '1|f', 'ERROR:  canceling statement due to statement timeout'])
def test_an_active_unit_whose_server_does_not_answer(answer):
    checks = patch_db_checks(line(answer=answer))
    assert statuses(checks) == [('database:15/main', 'critical', True)]
    assert 'is active but SELECT 1 got no answer' in checks[0]['message']


@pytest.mark.parametrize('result, message', [
    ({'stdout': '', 'rc': 0}, 'no PostgreSQL cluster set to start automatically on a database host (patching_db_groups); '
                              'clusters found under /etc/postgresql: none'),
    ({'stdout': line(start='manual', state='inactive')}, 'clusters found under /etc/postgresql: 15/main (start.conf: manual)'),
    ({'unreachable': True, 'msg': 'ssh: connect to host db1 port 22: Connection refused'}, 'host unreachable (ssh: connect'),
    ({'failed': True, 'msg': 'Could not find or access db_probe.sh'}, 'the database probe failed: Could not find or access db_probe.sh'),
    ({'skipped': True}, 'the database probe was skipped - nothing was measured'),
    (None, 'the database probe gave no result'),
])
def test_nothing_measured_is_not_fine(result, message):
    checks = patch_db_checks(result)
    assert statuses(checks) == [('database', 'critical', False)]
    assert message in checks[0]['message']


def test_every_automatic_cluster_is_judged_and_others_are_left_alone():
    stdout = line() + line(version='16', cluster='reports', state='failed', answer='not queried (unit failed)') + \
        line(cluster='scratch', start='disabled', state='inactive', answer='not queried (unit inactive)')
    assert statuses(patch_db_checks(stdout)) == [('database:15/main', 'ok', False), ('database:16/reports', 'critical', False)]


def test_parse_answer():
    assert parse_answer('1|f|none') == (False, 'none')
    assert parse_answer(' 1|t|streaming ') == (True, 'streaming')
    assert parse_answer('1|t|') == (True, 'none')
    assert parse_answer('psql: error') is None


def test_filter_is_registered():
    assert FilterModule().filters()['patch_db_checks'] is patch_db_checks


# ---------------------------------------------------------------------------------------------------- the probe itself

def _executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def host(tmp_path):
    """A fake Debian PostgreSQL host: /etc/postgresql/<version>/<cluster>/ trees, and systemctl/runuser/timeout on PATH
    that answer from files (unit states, psql answers) and record how psql was called."""
    etc = tmp_path / 'etc'
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    states = tmp_path / 'states'
    states.mkdir()
    _executable(bin_dir / 'systemctl', '#!/bin/sh\n[ "$1" = is-active ] || exit 2\ncat "%s/$2" 2>/dev/null || echo inactive\n' % states)
    _executable(bin_dir / 'timeout', '#!/bin/sh\nshift\nexec "$@"\n')
    _executable(bin_dir / 'runuser', '#!/bin/sh\n[ "$1" = -u ] && [ "$2" = postgres ] && [ "$3" = -- ] || exit 9\nshift 3\nexec "$@"\n')
    _executable(bin_dir / 'psql', '#!/bin/sh\necho "$@" >> "%s/psql.calls"\n[ "$1" = --cluster ] || exit 9\n'
                                  'cat "%s/answer-$(echo "$2" | tr / -)" 2>/dev/null || echo "psql: error: connection refused" >&2\n'
                                  % (tmp_path, tmp_path))

    def add(version, cluster, state, answer=None, start=None):
        conf = etc / version / cluster
        conf.mkdir(parents=True)
        (conf / 'postgresql.conf').write_text('# postgresql.conf\n')
        if start is not None:
            (conf / 'start.conf').write_text('# Automatic startup configuration\n%s\n' % start)
        (states / ('postgresql@%s-%s.service' % (version, cluster))).write_text(state + '\n')
        if answer is not None:
            (tmp_path / ('answer-%s-%s' % (version, cluster))).write_text(answer + '\n')

    def run():
        env = dict(os.environ, PATH='%s:%s' % (bin_dir, os.environ['PATH']), DS_PATCHING_PG_ETC=str(etc))
        proc = subprocess.run(['sh', str(PROBE)], capture_output=True, text=True, env=env, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return dict(add=add, run=run, calls=tmp_path / 'psql.calls')


def test_probe_reads_the_clusters_their_units_and_one_query(host):
    host['add']('15', 'main', 'active', answer='1|t|streaming', start='auto')
    host['add']('16', 'reports', 'failed', answer='1|f|none')
    host['add']('16', 'scratch', 'active', answer='1|f|none', start='manual')
    stdout = host['run']()
    assert stdout.splitlines() == [
        'cluster\t15\tmain\tauto\tpostgresql@15-main.service\tactive\t1|t|streaming ',
        'cluster\t16\treports\tauto\tpostgresql@16-reports.service\tfailed\tnot queried (unit failed)',
        'cluster\t16\tscratch\tmanual\tpostgresql@16-scratch.service\tactive\tnot queried (unit active)',
    ]
    assert host['calls'].read_text().splitlines() == [
        "--cluster 15/main -X -A -t -q -F | -d postgres -c SELECT 1, pg_is_in_recovery(), "
        "coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'none')"]
    assert statuses(patch_db_checks({'stdout': stdout})) == [
        ('database:15/main', 'ok', False), ('replication:15/main', 'ok', False), ('database:16/reports', 'critical', False)]


def test_probe_of_a_cluster_that_does_not_answer(host):
    host['add']('15', 'main', 'active')
    stdout = host['run']()
    assert stdout == 'cluster\t15\tmain\tauto\tpostgresql@15-main.service\tactive\tpsql: error: connection refused \n'
    assert statuses(patch_db_checks(stdout)) == [('database:15/main', 'critical', True)]


def test_probe_of_a_host_without_clusters(host):
    assert host['run']() == ''
