# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import shutil
import socketserver
import stat
import tempfile
import threading
import time

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.modules import lb_member
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401

LAB = """# Ansible managed - lab fixture
upstream dealerscope_api {
    server app1:8000 max_fails=2 fail_timeout=5s;
    server app2:8000 max_fails=2 fail_timeout=5s;
    keepalive 16;
}

server {
    listen 80 default_server;
    location = /healthz { proxy_pass http://dealerscope_api; }
}
"""
DRAINED_LINE = '    server app1:8000 max_fails=2 fail_timeout=5s down; # dealerscope.ops drained '


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, msg: warnings.append(msg))
    monkeypatch.setattr(lb_member, 'POLL_INTERVAL_S', 0.02)

    def runner(**args):
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                lb_member.main()
        excinfo.value.result['_warnings'] = list(warnings)
        return excinfo.type is AnsibleFailJson, excinfo.value.result
    return runner


# ---------------------------------------------------------------------------------------------------- nginx

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
        with open(self.path, 'w') as handle:
            handle.write(LAB)
        os.chmod(self.path, 0o640)
        self.proc = os.path.join(self.root, 'proc')
        os.makedirs(self.proc)
        self.validated = os.path.join(self.root, 'validated.conf')
        self.reloaded = os.path.join(self.root, 'reloaded.conf')

    def args(self, **extra):
        args = dict(backend='nginx', config_path=self.path, pool='dealerscope_api',
                    validate_command='cp %s %s' % (self.path, self.validated),
                    reload_command='cp %s %s' % (self.path, self.reloaded))
        args.update(extra)
        return args

    def text(self):
        with open(self.path) as handle:
            return handle.read()


@pytest.fixture
def nginx(tmp_path, monkeypatch):
    env = Nginx(tmp_path)
    monkeypatch.setattr(lb_member, 'PROC_ROOT', env.proc)
    monkeypatch.setattr(lb_member, 'NGINX_SETTLE_S', 0.5)
    return env


def test_nginx_drain_validates_reloads_and_reports(run, nginx):
    failed, result = run(**nginx.args(member='app1:8000', state='drained', reason='patching app1; kernel'))
    assert not failed, result
    assert result['changed'] is True
    assert result['state'] == 'drained' and result['previous_state'] == 'enabled'
    assert result['reason'] == 'patching app1 kernel'
    assert result['drain_wait_s'] == 0.0  # no nginx worker in the fake /proc
    [app1, app2] = result['members']
    assert app1['name'] == 'app1:8000' and app1['state'] == 'drained' and app1['reason'] == 'patching app1 kernel'
    assert app1['drained_at'].endswith('Z')
    assert app2 == dict(name='app2:8000', state='enabled', reason=None, drained_at=None, address='app2', port=8000)
    text = nginx.text()
    expected = LAB.replace('    server app1:8000 max_fails=2 fail_timeout=5s;\n',
                           DRAINED_LINE + app1['drained_at'] + ': patching app1 kernel\n')
    assert text == expected
    assert stat.S_IMODE(os.stat(nginx.path).st_mode) == 0o640
    with open(nginx.validated) as handle:
        assert handle.read() == expected  # validation saw the new file
    with open(nginx.reloaded) as handle:
        assert handle.read() == expected
    assert 'diff' not in result
    assert os.listdir(nginx.conf_dir) == ['dealerscope.conf']  # no temporary file left


def test_nginx_drain_twice_is_unchanged_and_does_not_reload(run, nginx):
    assert run(**nginx.args(member='app1:8000', state='drained'))[1]['changed'] is True
    os.unlink(nginx.reloaded)
    before = nginx.text()
    failed, result = run(**nginx.args(member='app1:8000', state='drained', reason='other'))
    assert not failed and result['changed'] is False
    assert result['state'] == result['previous_state'] == 'drained'
    assert nginx.text() == before and not os.path.exists(nginx.reloaded)


def test_nginx_enable_restores_the_original(run, nginx):
    run(**nginx.args(member='app1:8000', state='drained', reason='x'))
    os.unlink(nginx.reloaded)
    failed, result = run(**nginx.args(member='app1:8000', state='enabled', _ansible_diff=True))
    assert not failed and result['changed'] is True
    assert result['state'] == 'enabled' and result['previous_state'] == 'drained' and result['reason'] is None
    assert nginx.text() == LAB and os.path.exists(nginx.reloaded)
    assert result['diff']['after'] == LAB and DRAINED_LINE in result['diff']['before']
    assert result['diff']['before_header'] == os.path.realpath(nginx.path)
    failed, result = run(**nginx.args(member='app1:8000', state='enabled'))
    assert not failed and result['changed'] is False


def test_nginx_check_mode_predicts_and_changes_nothing(run, nginx):
    failed, result = run(**nginx.args(member='app2:8000', state='drained', reason='r', _ansible_check_mode=True, _ansible_diff=True))
    assert not failed and result['changed'] is True and result['state'] == 'drained'
    assert [m['state'] for m in result['members']] == ['enabled', 'drained']
    assert result['diff']['before'] == LAB and 'server app2:8000 max_fails=2 fail_timeout=5s down; # dealerscope.ops drained ' in result['diff']['after']
    assert nginx.text() == LAB
    assert not os.path.exists(nginx.validated) and not os.path.exists(nginx.reloaded)
    failed, result = run(**nginx.args(member='app2:8000', state='enabled', _ansible_check_mode=True))
    assert not failed and result['changed'] is False and 'diff' not in result


def test_nginx_validation_failure_restores_the_file(run, nginx):
    failed, result = run(**nginx.args(member='app1:8000', state='drained',
                                      validate_command="sh -c 'echo \"nginx: [emerg] host not found in upstream app1:8000\" >&2; exit 1'"))
    assert failed and result['changed'] is False
    assert 'nginx rejected the new configuration' in result['msg']
    assert 'nginx: [emerg] host not found in upstream app1:8000' in result['msg']
    assert nginx.text() == LAB and not os.path.exists(nginx.reloaded)
    assert stat.S_IMODE(os.stat(nginx.path).st_mode) == 0o640


def test_nginx_reload_failure_restores_the_file(run, nginx):
    failed, result = run(**nginx.args(member='app1:8000', state='drained', reload_command='false'))
    assert failed and result['changed'] is False
    assert result['msg'].startswith('reloading nginx failed (false exited 1), the previous ')
    assert nginx.text() == LAB and os.path.exists(nginx.validated)


def test_nginx_symlinked_config_path_stays_a_symlink(run, nginx):
    link = os.path.join(nginx.root, 'sites-enabled.conf')
    os.symlink(nginx.path, link)
    failed, result = run(**nginx.args(config_path=link, member='app1:8000', state='drained'))
    assert not failed and result['changed'] is True
    assert os.path.islink(link) and DRAINED_LINE in nginx.text()


def test_nginx_query(run, nginx):
    failed, result = run(**nginx.args())
    assert not failed and result['changed'] is False
    assert result['state'] is None and result['previous_state'] is None and result['reason'] is None
    assert [(m['name'], m['address'], m['port']) for m in result['members']] == [('app1:8000', 'app1', 8000), ('app2:8000', 'app2', 8000)]
    failed, result = run(**nginx.args(member='app2:8000', state='query'))
    assert not failed and result['state'] == 'enabled' and result['drain_wait_s'] == 0.0


@pytest.mark.parametrize('extra, message', [
    (dict(pool='nope'), 'dealerscope.conf: upstream nope not found; upstreams found: dealerscope_api'),
    (dict(member='app9:8000', state='drained'),
     'dealerscope.conf: member app9:8000 not found in upstream dealerscope_api; its members are: app1:8000, app2:8000'),
    (dict(member='app9:8000'), 'member app9:8000 not found in upstream dealerscope_api'),
    (dict(state='drained'), 'state is drained but all of the following are missing: member'),
    (dict(member='app1:8000', wait_timeout=0), 'wait_timeout must be greater than 0, got 0.0'),
])
def test_nginx_bad_input(run, nginx, extra, message):
    failed, result = run(**nginx.args(**extra))
    assert failed and message in result['msg']
    assert nginx.text() == LAB


def test_nginx_config_path_is_required(run):
    failed, result = run(backend='nginx', pool='p')
    assert failed and result['msg'] == 'backend is nginx but all of the following are missing: config_path'


def test_nginx_unreadable_or_broken_config(run, nginx):
    failed, result = run(**nginx.args(config_path=os.path.join(nginx.conf_dir, 'missing.conf')))
    assert failed and result['msg'].startswith('cannot read config_path ')
    with open(nginx.path, 'w') as handle:
        handle.write('upstream dealerscope_api {\n    server app1:8000\n}\n')
    failed, result = run(**nginx.args(member='app1:8000', state='drained'))
    assert failed and result['msg'].endswith('dealerscope.conf: unexpected "}" on line 3 (missing ";" before it?)')


def test_nginx_enabling_a_manual_down_warns(run, nginx):
    with open(nginx.path, 'w') as handle:
        handle.write(LAB.replace('app2:8000 max_fails=2 fail_timeout=5s;', 'app2:8000 max_fails=2 fail_timeout=5s down;'))
    failed, result = run(**nginx.args(member='app2:8000', state='drained'))
    assert not failed and result['changed'] is False and result['state'] == 'down'
    failed, result = run(**nginx.args(member='app2:8000', state='enabled'))
    assert not failed and result['changed'] is True and result['previous_state'] == 'down'
    assert nginx.text() == LAB
    assert any('drained by hand' in warning for warning in result['_warnings'])


def test_nginx_one_line_upstream_warns_about_the_marker(run, nginx):
    with open(nginx.path, 'w') as handle:
        handle.write('upstream dealerscope_api { server app1:8000; server app2:8000; }\n')
    failed, result = run(**nginx.args(member='app1:8000', state='drained', reason='r'))
    assert not failed and result['changed'] is True and result['state'] == 'down'
    assert nginx.text() == 'upstream dealerscope_api { server app1:8000 down; server app2:8000; }\n'
    assert any('marker comment' in warning for warning in result['_warnings'])


def test_nginx_waits_for_old_workers_after_the_reload(run, nginx):
    make_proc(nginx.proc, 10, 'nginx: master process /usr/sbin/nginx', ppid=1)
    make_proc(nginx.proc, 11, 'nginx: worker process', starttime=500)
    gone = threading.Event()

    def graceful_reload():
        # what nginx does on SIGHUP: new worker, then the old one shuts down after its last request (here 0.6 s)
        deadline = time.monotonic() + 10
        while not os.path.exists(nginx.reloaded) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        make_proc(nginx.proc, 12, 'nginx: worker process', starttime=900)
        make_proc(nginx.proc, 11, 'nginx: worker process is shutting down', starttime=500)
        time.sleep(0.6)
        shutil.rmtree(os.path.join(nginx.proc, '11'))
        gone.set()
    thread = threading.Thread(target=graceful_reload, daemon=True)
    thread.start()
    failed, result = run(**nginx.args(member='app1:8000', state='drained'))
    thread.join(10)
    assert not failed, result
    assert gone.is_set()
    assert 0.5 <= result['drain_wait_s'] < 5


def test_nginx_wait_timeout_fails_and_leaves_it_drained(run, nginx):
    make_proc(nginx.proc, 11, 'nginx: worker process is shutting down', starttime=500)
    failed, result = run(**nginx.args(member='app1:8000', state='drained', wait_timeout=0.3))
    assert failed and result['changed'] is True and result['state'] == 'drained'
    assert result['msg'].startswith('timed out after 0.3 s waiting for nginx worker processes 11 to finish their requests in flight; '
                                    'app1:8000 stays drained in ')
    assert 0.3 <= result['drain_wait_s'] < 2
    assert DRAINED_LINE in nginx.text()
    # wait=false does not wait
    failed, result = run(**nginx.args(member='app2:8000', state='drained', wait=False))
    assert not failed and result['drain_wait_s'] == 0.0


def test_nginx_wait_hint_when_the_reload_did_not_replace_workers(run, nginx, monkeypatch):
    monkeypatch.setattr(lb_member, 'NGINX_SETTLE_S', 30)
    make_proc(nginx.proc, 11, 'nginx: worker process', starttime=500)
    failed, result = run(**nginx.args(member='app1:8000', state='drained', wait_timeout=0.2))
    assert failed and 'Worker processes 11 were not told to shut down: did the reload fail?' in result['msg']


def test_nginx_already_drained_still_waits_for_requests_in_flight(run, nginx):
    run(**nginx.args(member='app1:8000', state='drained', wait=False))
    make_proc(nginx.proc, 11, 'nginx: worker process is shutting down', starttime=500)
    timer = threading.Timer(0.4, shutil.rmtree, [os.path.join(nginx.proc, '11')])
    timer.start()
    try:
        failed, result = run(**nginx.args(member='app1:8000', state='drained'))
    finally:
        timer.join(5)
    assert not failed and result['changed'] is False
    assert 0.3 <= result['drain_wait_s'] < 5


# ---------------------------------------------------------------------------------------------------- haproxy

HEADER = ('# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change '
          'srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn '
          'srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port')


class FakeHAProxy(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers the runtime API commands the module uses, like haproxy 2.6 does; records them."""

    daemon_threads = True

    def __init__(self, path):
        self.servers = {'a': dict(admin=0, busy_until=0.0), 'b': dict(admin=0, busy_until=0.0), 'c': dict(admin=2, busy_until=0.0)}
        self.commands = []
        self.unresolved = set()
        super().__init__(path, FakeHandler)

    def sessions(self, name):
        return 2 if time.monotonic() < self.servers[name]['busy_until'] else 0

    def answer(self, command):
        self.commands.append(command)
        words = command.split()
        if command == 'show backend':
            return '# name\nbe_app\nstats\n\n'
        if command == 'show servers state be_app':
            rows = ['3 be_app %d %s %s %d %d 1 1 0 1 0 2 0 0 0 0 - 800%d - 0 0 - - 0'
                    % (i, name, '-' if name in self.unresolved else '10.0.0.1%d' % i, 0 if srv['admin'] & 0x23 else 2, srv['admin'], i)
                    for i, (name, srv) in enumerate(sorted(self.servers.items()))]
            return '1\n%s\n%s\n\n' % (HEADER, '\n'.join(rows))
        if command.startswith('show servers state'):
            return "Can't find backend.\n\n"
        if command == 'show stat':
            lines = ['# pxname,svname,qcur,qmax,scur,smax,status']
            for name, srv in sorted(self.servers.items()):
                status = 'MAINT' if srv['admin'] & 0x23 else 'DRAIN' if srv['admin'] & 0x18 else 'no check'
                lines.append('be_app,%s,0,0,%d,2,%s' % (name, self.sessions(name), status))
            return '\n'.join(lines) + '\nbe_app,BACKEND,0,0,0,2,UP\n\n'
        if len(words) == 5 and words[:2] == ['set', 'server'] and words[3] == 'state':
            backend, name = words[2].split('/')
            if backend != 'be_app':
                return 'No such backend.\n\n'
            if name not in self.servers:
                return 'No such server.\n\n'
            srv = self.servers[name]
            if words[4] == 'drain':
                srv['admin'] = (srv['admin'] & ~0x01) | 0x08
            elif words[4] == 'maint':
                srv['admin'] = (srv['admin'] & ~0x08) | 0x01
            elif words[4] == 'ready':
                srv['admin'] &= ~0x09
            else:
                return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
            return '\n'
        return 'Unknown command.\n\n'


class FakeHandler(socketserver.StreamRequestHandler):
    def handle(self):
        command = self.rfile.readline().decode().strip()
        self.wfile.write(self.server.answer(command).encode())


@pytest.fixture
def haproxy():
    directory = tempfile.mkdtemp(prefix='lbm', dir='/tmp')  # short: unix socket paths are limited to 107 bytes
    server = FakeHAProxy(os.path.join(directory, 'admin.sock'))
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)
    shutil.rmtree(directory)


def hargs(server, **extra):
    args = dict(backend='haproxy', socket=server.server_address, pool='be_app')
    args.update(extra)
    return args


def set_commands(server):
    return [command for command in server.commands if command.startswith('set ')]


def test_haproxy_query(run, haproxy):
    failed, result = run(**hargs(haproxy))
    assert not failed and result['changed'] is False and result['state'] is None
    assert result['members'] == [
        dict(name='a', state='enabled', reason=None, status='no check', sessions=0, address='10.0.0.10', port=8000),
        dict(name='b', state='enabled', reason=None, status='no check', sessions=0, address='10.0.0.11', port=8001),
        dict(name='c', state='maint', reason=None, status='MAINT', sessions=0, address='10.0.0.12', port=8002),
    ]
    assert set_commands(haproxy) == []


def test_haproxy_members_are_reached_at_their_address_not_their_name(run, haproxy):
    """haproxy server names (a, app1) are not addresses: the module returns srv_addr and srv_port for health probes."""
    haproxy.unresolved.add('b')
    failed, result = run(**hargs(haproxy, member='a'))
    assert not failed and result['state'] == 'enabled'
    expected = [('a', '10.0.0.10', 8000), ('b', None, 8001), ('c', '10.0.0.12', 8002)]
    assert [(m['name'], m['address'], m['port']) for m in result['members']] == expected


def test_haproxy_drain_waits_then_sets_maint(run, haproxy):
    haproxy.servers['a']['busy_until'] = time.monotonic() + 0.6
    failed, result = run(**hargs(haproxy, member='a', state='drained', reason='kernel\nupdate'))
    assert not failed, result
    assert result['changed'] is True and result['state'] == 'maint' and result['previous_state'] == 'enabled'
    assert result['reason'] == 'kernel update'
    assert 0.3 <= result['drain_wait_s'] < 5
    assert set_commands(haproxy) == ['set server be_app/a state drain', 'set server be_app/a state maint']
    assert [m['state'] for m in result['members']] == ['maint', 'enabled', 'maint']
    # the maint command came only after the sessions were gone
    drain_at = haproxy.commands.index('set server be_app/a state drain')
    assert haproxy.commands.count('show stat') >= 3 and haproxy.commands.index('set server be_app/a state maint') > drain_at + 2

    haproxy.commands[:] = []
    failed, result = run(**hargs(haproxy, member='a', state='drained'))
    assert not failed and result['changed'] is False and result['drain_wait_s'] == 0.0 and set_commands(haproxy) == []


def test_haproxy_enable(run, haproxy):
    haproxy.servers['a']['admin'] = 1
    failed, result = run(**hargs(haproxy, member='a', state='enabled', reason='ignored'))
    assert not failed and result['changed'] is True
    assert result['state'] == 'enabled' and result['previous_state'] == 'maint' and result['reason'] is None
    assert set_commands(haproxy) == ['set server be_app/a state ready']
    failed, result = run(**hargs(haproxy, member='a', state='enabled'))
    assert not failed and result['changed'] is False and set_commands(haproxy) == ['set server be_app/a state ready']


def test_haproxy_check_mode_sends_no_change(run, haproxy):
    failed, result = run(**hargs(haproxy, member='b', state='drained', _ansible_check_mode=True))
    assert not failed and result['changed'] is True and result['state'] == 'maint' and result['previous_state'] == 'enabled'
    assert [m['state'] for m in result['members']] == ['enabled', 'maint', 'maint']
    assert set_commands(haproxy) == [] and haproxy.servers['b']['admin'] == 0
    failed, result = run(**hargs(haproxy, member='b', state='enabled', _ansible_check_mode=True))
    assert not failed and result['changed'] is False


def test_haproxy_resumes_a_drain_left_by_a_timeout(run, haproxy):
    haproxy.servers['a']['busy_until'] = time.monotonic() + 30
    failed, result = run(**hargs(haproxy, member='a', state='drained', wait_timeout=0.3))
    assert failed and result['changed'] is True and result['state'] == 'draining'
    assert result['msg'] == ('timed out after 0.3 s waiting for haproxy server be_app/a to finish its requests in flight (2 sessions '
                             'still open); it is left in drain state and takes no new requests. Run the task again to finish the drain, '
                             'or raise wait_timeout.')
    assert set_commands(haproxy) == ['set server be_app/a state drain']
    haproxy.servers['a']['busy_until'] = 0.0
    failed, result = run(**hargs(haproxy, member='a', state='drained'))
    assert not failed and result['changed'] is True and result['previous_state'] == 'draining' and result['state'] == 'maint'
    assert set_commands(haproxy) == ['set server be_app/a state drain', 'set server be_app/a state maint']


def test_haproxy_without_wait(run, haproxy):
    haproxy.servers['a']['busy_until'] = time.monotonic() + 30
    failed, result = run(**hargs(haproxy, member='a', state='drained', wait=False))
    assert not failed and result['state'] == 'maint' and result['drain_wait_s'] == 0.0


def test_haproxy_inherited_maint_cannot_be_cleared(run, haproxy):
    failed, result = run(**hargs(haproxy, member='c', state='enabled'))
    assert failed and result['state'] == 'maint'
    assert result['msg'].startswith('haproxy reports be_app/c as maint after the change, not enabled')


@pytest.mark.parametrize('extra, message', [
    (dict(pool='nope'), 'haproxy backend nope not found; backends found: be_app, stats'),
    (dict(member='zz', state='drained'), 'member zz not found in haproxy backend be_app; its members are: a, b, c'),
])
def test_haproxy_not_found(run, haproxy, extra, message):
    failed, result = run(**hargs(haproxy, **extra))
    assert failed and result['msg'] == message
    assert set_commands(haproxy) == []


def test_haproxy_socket_missing(run):
    failed, result = run(backend='haproxy', socket='/nonexistent/admin.sock', pool='be_app')
    assert failed and result['msg'].startswith('cannot talk to haproxy on admin socket /nonexistent/admin.sock (show backend): ')
