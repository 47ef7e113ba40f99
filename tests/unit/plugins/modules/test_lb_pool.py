# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import threading
import time

import pytest

from ansible_collections.dealerscope.ops.plugins.modules import lb_pool
from .utils import module_runner, assert_documentation_matches

HEAD = """# Ansible managed - lab fixture
upstream dealerscope_api {
"""
TAIL = """    keepalive 16;
}

server {
    listen 80 default_server;
    location = /healthz { proxy_pass http://dealerscope_api; }
}
"""
LAB = HEAD + """    server app1:8000 max_fails=2 fail_timeout=5s;
    server app2:8000 max_fails=2 fail_timeout=5s;
""" + TAIL
CANARY = [dict(address='app1:8000', weight=9), dict(address='app2:8000', weight='9'),
          dict(address='app1:8001', weight=1, params='max_fails=2 fail_timeout=5s'),
          dict(address='app2:8001', weight=1, params='max_fails=2 fail_timeout=5s')]
LAB_CANARY = HEAD + """    server app1:8000 weight=9 max_fails=2 fail_timeout=5s;
    server app2:8000 weight=9 max_fails=2 fail_timeout=5s;
    server app1:8001 weight=1 max_fails=2 fail_timeout=5s;
    server app2:8001 weight=1 max_fails=2 fail_timeout=5s;
""" + TAIL
DRAINED_APP1 = '    server app1:8000 max_fails=2 fail_timeout=5s down; # dealerscope.ops drained 2025-01-31T08:15:00Z: patching app1\n'


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(lb_pool, 'POLL_INTERVAL_S', 0.02)
    return module_runner(monkeypatch, lb_pool.main)


def make_proc(root, pid, title, ppid=10, starttime=1000):
    base = os.path.join(root, str(pid))
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, 'cmdline'), 'wb') as handle:
        handle.write(title.encode() + b'\0')
    fields = ['S', str(ppid)] + ['0'] * 17 + [str(starttime)] + ['0'] * 10
    with open(os.path.join(base, 'stat'), 'w') as handle:
        handle.write('%s (nginx) %s\n' % (pid, ' '.join(fields)))


class Nginx(object):
    """A config file, validate/reload commands that record what they saw, and a fake /proc."""

    def __init__(self, root):
        self.root = str(root)
        self.conf_dir = os.path.join(self.root, 'conf.d')
        os.makedirs(self.conf_dir)
        self.path = os.path.join(self.conf_dir, 'dealerscope.conf')
        self.write(LAB)
        os.chmod(self.path, 0o640)
        self.proc = os.path.join(self.root, 'proc')
        os.makedirs(self.proc)
        self.validated = os.path.join(self.root, 'validated.conf')
        self.reloaded = os.path.join(self.root, 'reloaded.conf')

    def args(self, **extra):
        args = dict(config_path=self.path, pool='dealerscope_api', members=CANARY,
                    validate_command='cp %s %s' % (self.path, self.validated),
                    reload_command='cp %s %s' % (self.path, self.reloaded))
        args.update(extra)
        return args

    def write(self, text):
        with open(self.path, 'w') as handle:
            handle.write(text)

    def text(self):
        with open(self.path) as handle:
            return handle.read()

    def read(self, path):
        with open(path) as handle:
            return handle.read()


@pytest.fixture
def nginx(tmp_path, monkeypatch):
    env = Nginx(tmp_path)
    monkeypatch.setattr(lb_pool, 'PROC_ROOT', env.proc)
    monkeypatch.setattr(lb_pool, 'NGINX_SETTLE_S', 0.5)
    return env


def member(address, weight=1, down=False, drained=False, reason=None):
    return dict(address=address, weight=weight, down=down, drained=drained, reason=reason)


# ---------------------------------------------------------------------------------------------------- present

def test_canary_writes_validates_reloads_and_reports(run, nginx):
    failed, result = run(**nginx.args())
    assert not failed, result
    assert result['changed'] is True
    assert result['members'] == [member('app1:8000', 9), member('app2:8000', 9), member('app1:8001'), member('app2:8001')]
    assert result['previous_members'] == [member('app1:8000'), member('app2:8000')]
    assert result['added'] == ['app1:8001', 'app2:8001'] and result['removed'] == [] and result['drained'] == []
    assert 0.0 < result['switch_s'] < 5  # no nginx worker in the fake /proc: nothing to wait for
    assert nginx.text() == LAB_CANARY
    assert nginx.read(nginx.validated) == LAB_CANARY  # validation saw the new file
    assert nginx.read(nginx.reloaded) == LAB_CANARY
    assert stat.S_IMODE(os.stat(nginx.path).st_mode) == 0o640
    assert 'diff' not in result and result['_warnings'] == []
    assert os.listdir(nginx.conf_dir) == ['dealerscope.conf']  # no temporary file left


def test_second_run_is_unchanged_and_does_not_reload(run, nginx):
    assert run(**nginx.args())[1]['changed'] is True
    os.unlink(nginx.reloaded)
    os.unlink(nginx.validated)
    failed, result = run(**nginx.args(_ansible_diff=True))
    assert not failed and result['changed'] is False
    assert result['switch_s'] == 0.0 and 'diff' not in result
    assert result['members'] == result['previous_members']
    assert nginx.text() == LAB_CANARY
    assert not os.path.exists(nginx.validated) and not os.path.exists(nginx.reloaded)


def test_check_mode_predicts_and_writes_nothing(run, nginx):
    failed, predicted = run(**nginx.args(_ansible_check_mode=True, _ansible_diff=True))
    assert not failed and predicted['changed'] is True and predicted['switch_s'] == 0.0
    assert predicted['diff'] == dict(before=LAB, after=LAB_CANARY, before_header=os.path.realpath(nginx.path),
                                     after_header=os.path.realpath(nginx.path))
    assert nginx.text() == LAB
    assert not os.path.exists(nginx.validated) and not os.path.exists(nginx.reloaded)
    failed, result = run(**nginx.args(_ansible_diff=True))
    assert not failed
    for key in ('changed', 'members', 'previous_members', 'added', 'removed', 'drained', 'diff'):
        assert result[key] == predicted[key], key
    failed, result = run(**nginx.args(_ansible_check_mode=True))
    assert not failed and result['changed'] is False and 'diff' not in result


def test_switch_to_the_new_colour_and_remove_the_old(run, nginx):
    run(**nginx.args())
    switch = [dict(address='app1:8000', weight=0), dict(address='app2:8000', weight=0),
              dict(address='app1:8001', weight=1), dict(address='app2:8001', weight=1)]
    failed, result = run(**nginx.args(members=switch))
    assert not failed and result['changed'] is True
    assert [(m['address'], m['down']) for m in result['members']] == [
        ('app1:8000', True), ('app2:8000', True), ('app1:8001', False), ('app2:8001', False)]
    assert nginx.text() == LAB_CANARY.replace('app1:8000 weight=9 max_fails=2 fail_timeout=5s;', 'app1:8000 max_fails=2 fail_timeout=5s down;') \
        .replace('app2:8000 weight=9 max_fails=2 fail_timeout=5s;', 'app2:8000 max_fails=2 fail_timeout=5s down;')
    failed, result = run(**nginx.args(members=switch[2:]))
    assert not failed and result['removed'] == ['app1:8000', 'app2:8000']
    failed, result = run(**nginx.args(members=switch[2:] + [dict(address='app3:8001', weight=2)], remove_unlisted=False))
    assert not failed and result['added'] == ['app3:8001'] and result['removed'] == []


def test_validation_failure_restores_the_file_byte_for_byte(run, nginx):
    original = LAB.replace('keepalive 16;', 'keepalive 16;  \t# trailing blanks\r').encode() + b'# \xff not utf-8\n'
    with open(nginx.path, 'wb') as handle:
        handle.write(original)
    failed, result = run(**nginx.args(
        validate_command="sh -c 'echo \"nginx: [emerg] host not found in upstream app1:8001\" >&2; exit 1'"))
    assert failed and result['changed'] is False
    assert result['msg'].startswith('nginx rejected the new configuration (sh -c ')
    assert result['msg'].endswith('the previous %s was restored: nginx: [emerg] host not found in upstream app1:8001'
                                  % os.path.realpath(nginx.path))
    with open(nginx.path, 'rb') as handle:
        assert handle.read() == original
    assert stat.S_IMODE(os.stat(nginx.path).st_mode) == 0o640
    assert not os.path.exists(nginx.reloaded)


def test_reload_failure_restores_the_file(run, nginx):
    failed, result = run(**nginx.args(reload_command='false'))
    assert failed and result['changed'] is False
    assert result['msg'].startswith('reloading nginx failed (false exited 1), the previous ')
    assert nginx.text() == LAB and nginx.read(nginx.validated) == LAB_CANARY


def test_symlinked_config_path_stays_a_symlink(run, nginx):
    link = os.path.join(nginx.root, 'sites-enabled.conf')
    os.symlink(nginx.path, link)
    failed, result = run(**nginx.args(config_path=link))
    assert not failed and result['changed'] is True
    assert os.path.islink(link) and nginx.text() == LAB_CANARY


def test_waits_for_the_lock_lb_member_takes(run, nginx):
    dir_fd = os.open(nginx.conf_dir, os.O_RDONLY)
    fcntl.flock(dir_fd, fcntl.LOCK_EX)
    timer = threading.Timer(0.4, os.close, [dir_fd])
    timer.start()
    started = time.monotonic()
    try:
        failed, result = run(**nginx.args())
    finally:
        timer.join(5)
    assert not failed and result['changed'] is True
    assert time.monotonic() - started >= 0.35


# ---------------------------------------------------------------------------------------------------- drained members

def test_keep_drained_member_stays_down_with_its_new_weight(run, nginx):
    nginx.write(LAB.replace('    server app1:8000 max_fails=2 fail_timeout=5s;\n', DRAINED_APP1)
                .replace('app2:8000 max_fails=2 fail_timeout=5s;', 'app2:8000 max_fails=2 fail_timeout=5s down;'))
    failed, result = run(**nginx.args())
    assert not failed, result
    assert result['drained'] == ['app1:8000']
    assert result['members'][0] == member('app1:8000', 9, down=True, drained=True, reason='patching app1')
    assert result['previous_members'][1] == member('app2:8000', down=True)
    assert result['members'][1] == member('app2:8000', 9)
    assert result['revived'] == ['app2:8000'] and result['_warnings'] == []
    assert DRAINED_APP1.replace('app1:8000 max', 'app1:8000 weight=9 max') in nginx.text()


def test_no_member_would_take_traffic_because_of_a_drained_one(run, nginx):
    before = LAB.replace('    server app1:8000 max_fails=2 fail_timeout=5s;\n', DRAINED_APP1)
    nginx.write(before)
    failed, result = run(**nginx.args(members=[dict(address='app1:8000', weight=1), dict(address='app2:8000', weight=0)]))
    assert failed and 'no member of upstream dealerscope_api would take traffic: app1:8000 requested' in result['msg']
    assert nginx.text() == before and not os.path.exists(nginx.validated)
    failed, result = run(**nginx.args(members=[dict(address='app1:8000', weight=1), dict(address='app2:8000', weight=0)],
                                      keep_drained=False))
    assert not failed and result['drained'] == [] and result['members'][0] == member('app1:8000', 1)


# ---------------------------------------------------------------------------------------------------- query and input

def test_query(run, nginx):
    failed, result = run(config_path=nginx.path, pool='dealerscope_api', state='query')
    assert not failed
    assert result == dict(changed=False, members=[member('app1:8000'), member('app2:8000')], _warnings=[])
    failed, result = run(**nginx.args(state='query', members=[dict(address='x', weight=-1)]))
    assert not failed and result['changed'] is False and nginx.text() == LAB


def test_bad_members_list_every_problem_and_touch_nothing(run, nginx):
    failed, result = run(**nginx.args(members=[
        dict(address='app1:8000', weight=9),
        dict(address='app1:8000', weight='nine'),
        dict(address='app 3:8000', weight=1, params='weight=2'),
        dict(weight=1),
    ]))
    assert failed
    assert result['msg'] == (
        'invalid members: members[1].address app1:8000 is also members[0].address; list each member once; '
        "members[1].weight must be an integer >= 0 (0 means no traffic), got 'nine'; "
        "members[2].address 'app 3:8000' must not contain blanks or any of ;{}#\"'\\; "
        "members[2].params 'weight=2' must not contain weight= or down: weight sets them (0 writes down); "
        'members[3].address is missing')
    assert nginx.text() == LAB and not os.path.exists(nginx.validated)


@pytest.mark.parametrize('extra, message', [
    (dict(members=[dict(address='app1:8000', weight=0)]), 'invalid members: every weight is 0: no member would take traffic'),
    (dict(members=None), 'state is present but all of the following are missing: members'),
    (dict(pool='nope'), 'dealerscope.conf: upstream nope not found; upstreams found: dealerscope_api'),
    (dict(wait_timeout=0), 'wait_timeout must be greater than 0, got 0.0'),
])
def test_bad_input(run, nginx, extra, message):
    args = nginx.args(**extra)
    if extra.get('members', 1) is None:
        del args['members']
    failed, result = run(**args)
    assert failed and message in result['msg']
    assert nginx.text() == LAB


def test_duplicate_member_in_the_file_is_refused(run, nginx):
    nginx.write(LAB.replace('app2:8000', 'app1:8000'))
    failed, result = run(**nginx.args())
    assert failed and result['msg'].endswith('upstream dealerscope_api lists app1:8000 (2 times) more than once; edit the file by hand')


def test_unreadable_or_broken_config(run, nginx):
    failed, result = run(**nginx.args(config_path=os.path.join(nginx.conf_dir, 'missing.conf')))
    assert failed and result['msg'].startswith('cannot read config_path ')
    failed, result = run(**nginx.args(config_path='/nonexistent/dir/x.conf'))
    assert failed and result['msg'].startswith('cannot open the directory of config_path /nonexistent/dir/x.conf')
    nginx.write('upstream dealerscope_api {\n    server app1:8000\n}\n')
    failed, result = run(**nginx.args())
    assert failed and result['msg'].endswith('dealerscope.conf: unexpected "}" on line 3 (missing ";" before it?)')


# ---------------------------------------------------------------------------------------------------- waiting

def test_waits_until_the_old_workers_shut_down(run, nginx):
    make_proc(nginx.proc, 10, 'nginx: master process /usr/sbin/nginx', ppid=1)
    make_proc(nginx.proc, 11, 'nginx: worker process', starttime=500)
    make_proc(nginx.proc, 12, 'nginx: worker process', starttime=500)
    done = threading.Event()

    def graceful_reload():
        # what nginx does on SIGHUP: new workers, then the old ones stop accepting and finish their requests
        deadline = time.monotonic() + 10
        while not os.path.exists(nginx.reloaded) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        make_proc(nginx.proc, 13, 'nginx: worker process', starttime=900)
        make_proc(nginx.proc, 11, 'nginx: worker process is shutting down', starttime=500)
        time.sleep(0.3)
        shutil.rmtree(os.path.join(nginx.proc, '12'))
        done.set()
    thread = threading.Thread(target=graceful_reload, daemon=True)
    thread.start()
    failed, result = run(**nginx.args())
    thread.join(10)
    assert not failed, result
    assert done.is_set()
    assert 0.4 <= result['switch_s'] < 8
    assert os.path.isdir(os.path.join(nginx.proc, '11'))  # still finishing its requests: not waited for


def test_wait_timeout_fails_and_keeps_the_new_configuration(run, nginx):
    make_proc(nginx.proc, 11, 'nginx: worker process', starttime=500)
    reload_command = 'sh -c "cp %s %s && mkdir %s/13 && cp %s/11/stat %s/11/cmdline %s/13/"' % (
        nginx.path, nginx.reloaded, nginx.proc, nginx.proc, nginx.proc, nginx.proc)
    failed, result = run(**nginx.args(wait_timeout=0.3, reload_command=reload_command))
    assert failed and result['changed'] is True
    assert result['msg'].startswith('timed out after 0.3 s waiting for the nginx worker processes 11 from before the reload to shut down; ')
    assert 'The new configuration stays in %s' % os.path.realpath(nginx.path) in result['msg']
    assert 'did the reload fail?' not in result['msg']
    assert 0.3 <= result['switch_s'] < 5
    assert result['members'][2] == member('app1:8001')
    assert nginx.text() == LAB_CANARY


def test_wait_timeout_hint_when_the_reload_started_no_worker(run, nginx):
    make_proc(nginx.proc, 11, 'nginx: worker process', starttime=500)
    failed, result = run(**nginx.args(wait_timeout=0.6))  # longer than NGINX_SETTLE_S: still waited for
    assert failed and result['msg'].endswith('No nginx master started new worker processes: did the reload fail? See the nginx error log.')


def test_without_wait(run, nginx):
    make_proc(nginx.proc, 11, 'nginx: worker process', starttime=500)
    failed, result = run(**nginx.args(wait=False))
    assert not failed and result['changed'] is True
    assert 0.0 < result['switch_s'] < 5


# ---------------------------------------------------------------------------------------------------- documentation

def test_documentation_matches_the_argument_spec():
    doc, returned, spec = assert_documentation_matches(lb_pool, 'lb_pool')
    assert set(doc['options']['members']['suboptions']) == {'address', 'weight', 'params'}
    assert set(returned) == {'members', 'previous_members', 'drained', 'revived', 'added', 'removed', 'switch_s', 'diff'}
    assert set(returned['members']['contains']) == {'address', 'weight', 'down', 'drained', 'reason'}
    assert set(doc['attributes']) == {'check_mode', 'diff_mode', 'idempotent'}
    assert all(attribute['support'] == 'full' for attribute in doc['attributes'].values())
