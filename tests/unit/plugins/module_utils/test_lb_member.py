# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import socket
import threading

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils.lb_member import (
    HAProxyClient,
    LbMemberError,
    MemberNotFoundError,
    NginxConfigError,
    NginxWorker,
    PoolNotFoundError,
    haproxy_address,
    haproxy_admin_state,
    haproxy_command,
    marker_text,
    nginx_address,
    nginx_members,
    nginx_pending_workers,
    nginx_set_member,
    parse_haproxy_backends,
    parse_haproxy_servers_state,
    parse_haproxy_stat,
    sanitize_reason,
    scan_nginx_workers,
    tokenize_nginx,
    utc_stamp,
    wait_for,
)

T0 = 1738311300  # 2025-01-31T08:15:00Z
STAMP = '2025-01-31T08:15:00Z'

# The lab load balancer's file (lab/roles/lab_lb/templates/dealerscope.conf.j2, rendered, shortened).
LAB = """# Ansible managed - lab fixture
upstream dealerscope_api {
    server app1:8000 max_fails=2 fail_timeout=5s;
    server app2:8000 max_fails=2 fail_timeout=5s;
    keepalive 16;
}

map $http_x_request_id $ds_request_id {
    default $http_x_request_id;
    ""      $request_id;
}

log_format dealerscope_json escape=json '{"ts":"$time_iso8601","correlation_id":"$ds_request_id",'
    '"upstream":"$upstream_addr"}';

server {
    listen 80 default_server;
    location = /healthz { proxy_pass http://dealerscope_api; }
    location / { return 301 https://$host$request_uri; }
}
"""

LAB_APP1_DRAINED = LAB.replace(
    '    server app1:8000 max_fails=2 fail_timeout=5s;\n',
    '    server app1:8000 max_fails=2 fail_timeout=5s down; # dealerscope.ops drained %s: patching app1\n' % STAMP)


# Where each server address of these tests is reached (written out, not computed by the code under test).
REACHED = {
    'app1:8000': ('app1', 8000), 'app2:8000': ('app2', 8000), 'quoted:1': ('quoted', 1), 'manual:2': ('manual', 2),
    'ours:3': ('ours', 3), 'bare:4': ('bare', 4), 'unix:/run/app.sock': (None, None), 'a:1': ('a', 1),
}


def view(name, state='enabled', reason=None, drained_at=None):
    address, port = REACHED[name]
    return dict(name=name, state=state, reason=reason, drained_at=drained_at, address=address, port=port)


# ---------------------------------------------------------------------------------------------------- tokenizer

def test_tokenizer_kinds_quotes_comments_and_variables():
    text = 'a "b c" \'d;e\' f#g # real comment ; {\nx ${var}y "q\\"uote" \\; z;{}'
    tokens = [(t.kind, t.value) for t in tokenize_nginx(text)]
    assert tokens == [
        ('word', 'a'), ('word', 'b c'), ('word', 'd;e'), ('word', 'f#g'), ('comment', '# real comment ; {'),
        ('word', 'x'), ('word', '${var}y'), ('word', 'q"uote'), ('word', ';'), ('word', 'z'), (';', ';'), ('{', '{'), ('}', '}'),
    ]


def test_tokenizer_offsets_and_crlf_comment_end():
    text = 'server a:1; # c\r\nnext;'
    tokens = tokenize_nginx(text)
    assert [(t.kind, text[t.start:t.end]) for t in tokens] == [
        ('word', 'server'), ('word', 'a:1'), (';', ';'), ('comment', '# c'), ('word', 'next'), (';', ';')]


@pytest.mark.parametrize('text, message', [
    ('upstream u { server "a:1; }', 'unterminated quoted string starting on line 1'),
    ('upstream u {\n server a:1;\n', 'unexpected end of file, expecting "}"'),
    ('upstream u {\n server a:1\n}\n', 'unexpected "}" on line 3 (missing ";" before it?)'),
    ('server a:1;\n}\n', 'unexpected "}" on line 2'),
    ('upstream u { server a:1; }\nkeepalive 4', 'unexpected end of file, expecting ";" or "}" (directive keepalive on line 2)'),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(NginxConfigError) as excinfo:
        nginx_members(text, 'u')
    assert str(excinfo.value) == message


# ---------------------------------------------------------------------------------------------------- members

def test_lab_members():
    assert nginx_members(LAB, 'dealerscope_api') == [view('app1:8000'), view('app2:8000')]


def test_members_states_reasons_and_layouts():
    text = """http {
    upstream other { server app1:8000 down; }
    upstream pool
    {
        # server commented:1;
        server "quoted:1" weight=3;
        server manual:2 max_fails=2 down;   # taken out by hand
        server ours:3
            backup
            down; # dealerscope.ops drained 2025-01-31T08:15:00Z: kernel update
        server bare:4 down; # dealerscope.ops drained 2025-01-31T08:15:00Z
        server unix:/run/app.sock;
        zone pool 64k;
    }
}
"""
    assert nginx_members(text, 'pool') == [
        view('quoted:1'),
        view('manual:2', 'down'),
        view('ours:3', 'drained', 'kernel update', STAMP),
        view('bare:4', 'drained', None, STAMP),
        view('unix:/run/app.sock'),
    ]
    assert nginx_members(text, 'other') == [view('app1:8000', 'down')]


@pytest.mark.parametrize('server, reached', [
    ('app1:8000', ('app1', 8000)),
    ('10.0.0.5:8080', ('10.0.0.5', 8080)),
    ('api.example.com', ('api.example.com', 80)),  # nginx's default port
    ('app3', ('app3', 80)),
    ('[::1]:9000', ('::1', 9000)),
    ('[2001:db8::5]', ('2001:db8::5', 80)),
    ('unix:/run/app.sock', (None, None)),
    ('app1:0', (None, None)),
    ('app1:70000', (None, None)),
    ('app1:', (None, None)),
    (':8000', (None, None)),
    ('::1:9000', (None, None)),
    ('[::1]x', (None, None)),
    ('[::1', (None, None)),
    ('', (None, None)),
])
def test_nginx_address(server, reached):
    assert nginx_address(server) == reached


def test_members_say_where_they_are_reached():
    """The health probe of a member goes to its address and port: never to the name as a URL host on port 80."""
    text = 'upstream u {\n    server app1:8000 max_fails=2;\n    server "10.0.0.7:9001";\n    server app3 down;\n}\n'
    assert [(m['name'], m['address'], m['port']) for m in nginx_members(text, 'u')] == [
        ('app1:8000', 'app1', 8000), ('10.0.0.7:9001', '10.0.0.7', 9001), ('app3', 'app3', 80)]


def test_pool_not_found_lists_upstreams():
    text = 'upstream a { server x:1; }\nupstream b { server y:1; }\n'
    with pytest.raises(PoolNotFoundError) as excinfo:
        nginx_members(text, 'dealerscope_api')
    assert str(excinfo.value) == 'upstream dealerscope_api not found; upstreams found: a, b'
    with pytest.raises(PoolNotFoundError) as excinfo:
        nginx_members('events {}\n', 'dealerscope_api')
    assert str(excinfo.value) == 'upstream dealerscope_api not found; upstreams found: none'


def test_member_not_found_lists_members():
    with pytest.raises(MemberNotFoundError) as excinfo:
        nginx_set_member(LAB, 'dealerscope_api', 'app3:8000', True)
    assert str(excinfo.value) == 'member app3:8000 not found in upstream dealerscope_api; its members are: app1:8000, app2:8000'
    assert excinfo.value.members == ['app1:8000', 'app2:8000']


def test_ambiguous_pool_or_member_is_refused():
    with pytest.raises(NginxConfigError, match='upstream u is defined 2 times'):
        nginx_members('upstream u { server a:1; }\nupstream u { server b:1; }\n', 'u')
    with pytest.raises(NginxConfigError, match='member a:1 appears 2 times in upstream u'):
        nginx_set_member('upstream u {\n server a:1;\n server a:1 backup;\n}\n', 'u', 'a:1', True)


# ---------------------------------------------------------------------------------------------------- edits

def test_drain_the_lab_line_exactly_and_back():
    drained, info = nginx_set_member(LAB, 'dealerscope_api', 'app1:8000', True, 'patching app1', now=T0)
    assert drained == LAB_APP1_DRAINED
    assert info == dict(previous=view('app1:8000'), current=view('app1:8000', 'drained', 'patching app1', STAMP), marker_skipped=False)
    assert nginx_members(drained, 'dealerscope_api') == [view('app1:8000', 'drained', 'patching app1', STAMP), view('app2:8000')]
    enabled, info = nginx_set_member(drained, 'dealerscope_api', 'app1:8000', False)
    assert enabled == LAB
    assert info['previous']['state'] == 'drained' and info['current'] == view('app1:8000')


def test_drain_and_enable_are_idempotent():
    again, info = nginx_set_member(LAB_APP1_DRAINED, 'dealerscope_api', 'app1:8000', True, 'another reason', now=T0 + 99)
    assert again == LAB_APP1_DRAINED  # keeps the first reason and time
    assert info['previous'] == info['current'] == view('app1:8000', 'drained', 'patching app1', STAMP)
    same, info = nginx_set_member(LAB, 'dealerscope_api', 'app2:8000', False)
    assert same == LAB and info['current'] == view('app2:8000')


def test_drain_without_reason_and_without_params():
    text = 'upstream u {\n\tserver app1:8000;\n\tserver app2:8000;\n}\n'
    drained, info = nginx_set_member(text, 'u', 'app2:8000', True, None, now=T0)
    assert drained == 'upstream u {\n\tserver app1:8000;\n\tserver app2:8000 down; # dealerscope.ops drained %s\n}\n' % STAMP
    assert info['current'] == view('app2:8000', 'drained', None, STAMP)
    assert nginx_set_member(drained, 'u', 'app2:8000', False)[0] == text


def test_only_the_named_upstream_is_touched():
    text = 'upstream a {\n    server app1:8000;\n}\nupstream b {\n    server app1:8000;\n}\n'
    drained = nginx_set_member(text, 'b', 'app1:8000', True, 'x', now=T0)[0]
    assert drained == 'upstream a {\n    server app1:8000;\n}\nupstream b {\n    server app1:8000 down; # dealerscope.ops drained %s: x\n}\n' % STAMP
    assert nginx_members(drained, 'a') == [view('app1:8000')]


def test_existing_comment_and_trailing_blanks_are_kept():
    text = 'upstream u {\n  server a:1 weight=2;  # primary\n  server b:1;   \n}\n'
    drained = nginx_set_member(text, 'u', 'a:1', True, 'r', now=T0)[0]
    assert drained == 'upstream u {\n  server a:1 weight=2 down;  # primary # dealerscope.ops drained %s: r\n  server b:1;   \n}\n' % STAMP
    assert nginx_members(drained, 'u')[0] == view('a:1', 'drained', 'r', STAMP)
    assert nginx_set_member(drained, 'u', 'a:1', False)[0] == text
    drained_b = nginx_set_member(text, 'u', 'b:1', True, 'r', now=T0)[0]
    assert drained_b == 'upstream u {\n  server a:1 weight=2;  # primary\n  server b:1 down;    # dealerscope.ops drained %s: r\n}\n' % STAMP
    assert nginx_set_member(drained_b, 'u', 'b:1', False)[0] == text


def test_multiline_directive_and_crlf():
    text = 'upstream u {\r\n    server a:1\r\n        max_fails=2 # two\r\n        ;\r\n}\r\n'
    drained = nginx_set_member(text, 'u', 'a:1', True, 'r', now=T0)[0]
    assert drained == ('upstream u {\r\n    server a:1\r\n        max_fails=2 down # two\r\n'
                       '        ; # dealerscope.ops drained %s: r\r\n}\r\n' % STAMP)
    assert nginx_members(drained, 'u') == [view('a:1', 'drained', 'r', STAMP)]
    assert nginx_set_member(drained, 'u', 'a:1', False)[0] == text


def test_one_line_block_gets_down_without_marker():
    text = 'upstream u { server a:1; server b:2 backup; }\n'
    drained, info = nginx_set_member(text, 'u', 'a:1', True, 'r', now=T0)
    assert drained == 'upstream u { server a:1 down; server b:2 backup; }\n'
    assert info['marker_skipped'] is True and info['current'] == view('a:1', 'down')
    assert nginx_set_member(drained, 'u', 'a:1', False)[0] == text
    # the last server of the line is followed by "}" only: no marker either (the "}" is code)
    drained_b, info = nginx_set_member(text, 'u', 'b:2', True, 'r', now=T0)
    assert drained_b == 'upstream u { server a:1; server b:2 backup down; }\n' and info['marker_skipped'] is True


def test_manual_down_counts_as_drained_and_enable_removes_it():
    text = 'upstream u {\n    server a:1 down max_fails=2; # by hand\n    server b:1\n        down\n        weight=2;\n    server c:1\n    down;\n}\n'
    same, info = nginx_set_member(text, 'u', 'a:1', True, 'r', now=T0)
    assert same == text and info['previous'] == info['current'] == view('a:1', 'down')
    assert nginx_set_member(text, 'u', 'a:1', False)[0] == text.replace('a:1 down max_fails=2;', 'a:1 max_fails=2;')
    assert nginx_set_member(text, 'u', 'b:1', False)[0] == text.replace('    server b:1\n        down\n', '    server b:1\n')
    assert nginx_set_member(text, 'u', 'c:1', False)[0] == text.replace('    server c:1\n    down;\n', '    server c:1\n    ;\n')


def test_enable_leaves_a_stale_marker_of_an_enabled_member():
    text = 'upstream u {\n    server a:1; # dealerscope.ops drained 2020-01-01T00:00:00Z: old\n}\n'
    assert nginx_members(text, 'u') == [view('a:1')]
    assert nginx_set_member(text, 'u', 'a:1', False)[0] == text
    drained = nginx_set_member(text, 'u', 'a:1', True, 'new', now=T0)[0]
    assert nginx_members(drained, 'u') == [view('a:1', 'drained', 'new', STAMP)]
    assert nginx_set_member(drained, 'u', 'a:1', False)[0] == text


def test_quoted_member_address():
    text = 'upstream u {\n    server "a:1" weight=1;\n}\n'
    drained = nginx_set_member(text, 'u', 'a:1', True, None, now=T0)[0]
    assert drained == 'upstream u {\n    server "a:1" weight=1 down; # dealerscope.ops drained %s\n}\n' % STAMP


@pytest.mark.parametrize('reason, expected', [
    (None, ''),
    ('', ''),
    ('patching app1', 'patching app1'),
    ('a;b{c}d#e', 'a b c d e'),
    ('  multi\nline\r\n\treason  ', 'multi line reason'),
    ('bell\x07 and \x7f del', 'bell and del'),
    ('x' * 300, 'x' * 200),
    ('ünïcode — ok', 'ünïcode — ok'),
])
def test_sanitize_reason(reason, expected):
    assert sanitize_reason(reason) == expected


def test_marker_text_and_stamp():
    assert utc_stamp(T0) == STAMP
    assert marker_text('a;b', T0) == '# dealerscope.ops drained %s: a b' % STAMP
    assert marker_text('  ', T0) == '# dealerscope.ops drained %s' % STAMP


@given(st.text(max_size=400))
def test_sanitize_reason_property(reason):
    cleaned = sanitize_reason(reason)
    assert not set(cleaned) & set(';{}#\r\n\t')
    assert len(cleaned) <= 200 and cleaned == cleaned.strip()
    assert sanitize_reason(cleaned) == cleaned


# ---------------------------------------------------------------------------------------------------- property

ADDRESSES = ['app1:8000', 'app2:8000', '10.0.0.5:8080', 'unix:/run/app.sock', '[::1]:9000', 'api.example.com', 'app3']
PARAMS = ['max_fails=2', 'fail_timeout=5s', 'weight=3', 'backup', 'max_conns=10', 'slow_start=30s', 'down']
SEPARATORS = [' ', '  ', '\t', '\n        ', ' \n    ']
TRAILERS = ['', '  ', ' # note', '\t# weight matters; {x}', ' #', ' # dealerscope.ops drained 2020-01-01T00:00:00Z: old']


@st.composite
def server_directive(draw, address):
    quote = draw(st.sampled_from(['', '"', "'"]))
    words = ['%s%s%s' % (quote, address, quote)] + draw(st.lists(st.sampled_from(PARAMS), max_size=3, unique=True))
    text = draw(st.sampled_from(['', '    ', '\t'])) + 'server'
    for word in words:
        text += draw(st.sampled_from(SEPARATORS)) + word
    return text + draw(st.sampled_from(['', ' ', '\n    '])) + ';'


@st.composite
def upstream_block(draw, name, eol):
    addresses = draw(st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=5, unique=True))
    body = []
    for address in addresses:
        body.append(draw(server_directive(address)))
        body.append(draw(st.sampled_from([eol, eol, ' '])) if address != addresses[-1] else eol)
        if draw(st.booleans()):
            body.append(draw(st.sampled_from(['    keepalive 16;', '    # server app1:8000;', '    zone %s 64k;' % name, ''])) + eol)
    # trailers only where a line ends after the directive
    text = ''
    for part in body:
        if part == eol and text.endswith(';'):
            text += draw(st.sampled_from(TRAILERS))
        text += part
    opener = draw(st.sampled_from([' {', '{', eol + '{', ' { # pool']))
    return 'upstream %s%s%s%s}%s' % (name, opener, eol, text, eol), addresses


@st.composite
def config_file(draw):
    eol = draw(st.sampled_from(['\n', '\r\n']))
    names = draw(st.lists(st.sampled_from(['dealerscope_api', 'admin', 'legacy_pool']), min_size=1, max_size=3, unique=True))
    parts = ['# managed' + eol] if draw(st.booleans()) else []
    blocks = {}
    for name in names:
        block, addresses = draw(upstream_block(name, eol))
        parts.append(block)
        blocks[name] = addresses
        if draw(st.booleans()):
            parts.append('server {%s    listen 80;%s    location / { proxy_pass http://%s; }%s}%s' % (eol, eol, name, eol, eol))
    text = ''.join(parts)
    if draw(st.booleans()):
        text = 'http {' + eol + text + '}' + eol
    return text, blocks


@settings(max_examples=300, deadline=None)
@given(config_file(), st.data(), st.text(max_size=60))
def test_drain_then_enable_restores_the_file_byte_for_byte(config, data, reason):
    text, blocks = config
    pool = data.draw(st.sampled_from(sorted(blocks)))
    before = nginx_members(text, pool)
    candidates = [m['name'] for m in before if m['state'] == 'enabled']
    assume(candidates)
    member = data.draw(st.sampled_from(candidates))

    drained, info = nginx_set_member(text, pool, member, True, reason, now=T0)
    after = nginx_members(drained, pool)
    expected_state = 'down' if info['marker_skipped'] else 'drained'
    assert info['current']['state'] == expected_state
    assert [(m['name'], m['state']) for m in after] == [(m['name'], expected_state if m['name'] == member else m['state']) for m in before]
    if not info['marker_skipped']:
        assert info['current']['reason'] == (sanitize_reason(reason) or None) and info['current']['drained_at'] == STAMP
    for other in blocks:
        if other != pool:
            assert nginx_members(drained, other) == nginx_members(text, other)
    old_lines, new_lines = text.splitlines(True), drained.splitlines(True)
    assert len(old_lines) == len(new_lines)
    assert 1 <= sum(1 for old, new in zip(old_lines, new_lines) if old != new) <= 2

    assert nginx_set_member(drained, pool, member, True, 'again', now=T0 + 60)[0] == drained
    enabled, info = nginx_set_member(drained, pool, member, False)
    assert enabled == text
    assert info['current']['state'] == 'enabled'


# ---------------------------------------------------------------------------------------------------- nginx workers

def make_proc(root, pid, title, ppid=1, starttime=1000, ns='pid:[4026531836]'):
    base = root / str(pid)
    base.mkdir(parents=True, exist_ok=True)
    (base / 'cmdline').write_bytes(title.encode() + b'\0' * 8)
    # comm with a space and a parenthesis, as the kernel allows
    fields = ['S', str(ppid)] + ['0'] * 17 + [str(starttime)] + ['0'] * 10
    (base / 'stat').write_text('%s (ng) x) %s\n' % (pid, ' '.join(fields)))
    if ns is not None:
        (base / 'ns').mkdir(exist_ok=True)
        link = base / 'ns' / 'pid'
        if link.is_symlink():
            link.unlink()
        os.symlink(ns, str(link))


def test_scan_nginx_workers(tmp_path):
    make_proc(tmp_path, 'self', 'pytest', ns='pid:[4026531836]')
    make_proc(tmp_path, 10, 'nginx: master process /usr/sbin/nginx -g daemon on;', ppid=1)
    make_proc(tmp_path, 11, 'nginx: worker process', ppid=10, starttime=2000)
    make_proc(tmp_path, 12, 'nginx: worker process is shutting down', ppid=10, starttime=1500)
    make_proc(tmp_path, 13, 'python3 -m http.server', ppid=1)
    make_proc(tmp_path, 14, 'nginx: worker process', ppid=20, ns='pid:[4026532999]')  # in a container
    make_proc(tmp_path, 15, 'nginx: worker process is shutting down', ppid=10, ns=None)  # namespace unknown: counted
    (tmp_path / '16').mkdir()  # vanished meanwhile
    (tmp_path / 'sys').mkdir()
    assert scan_nginx_workers(str(tmp_path)) == {
        11: NginxWorker(10, 2000, False),
        12: NginxWorker(10, 1500, True),
        15: NginxWorker(10, 1000, True),
    }
    assert scan_nginx_workers(str(tmp_path / 'missing')) == {}


def test_scan_real_proc_finds_no_worker_in_this_process():
    workers = scan_nginx_workers('/proc')
    assert os.getpid() not in workers and all(isinstance(w, NginxWorker) for w in workers.values())


def test_pending_without_reload_is_the_shutting_down_workers():
    current = {5: NginxWorker(1, 10, False), 6: NginxWorker(1, 11, True), 7: NginxWorker(2, 12, True)}
    assert nginx_pending_workers(None, current, 0.0, 3.0) == [6, 7]
    assert nginx_pending_workers(None, {5: NginxWorker(1, 10, False)}, 0.0, 3.0) == []


def test_pending_after_reload():
    before = {5: NginxWorker(1, 10, False), 6: NginxWorker(1, 10, False), 9: NginxWorker(2, 10, False)}
    # the master has not started new workers yet: wait for its old ones while settling, not after
    assert nginx_pending_workers(before, dict(before), 0.5, 3.0) == [5, 6, 9]
    assert nginx_pending_workers(before, dict(before), 3.5, 3.0) == []
    # master 1 reloaded (new worker 8): its old workers are pending until they exit; master 2's are another instance
    current = {5: NginxWorker(1, 10, True), 6: NginxWorker(1, 10, False), 8: NginxWorker(1, 50, False), 9: NginxWorker(2, 10, False)}
    assert nginx_pending_workers(before, current, 3.5, 3.0) == [5, 6]
    current = {6: NginxWorker(1, 10, True), 8: NginxWorker(1, 50, False), 9: NginxWorker(2, 10, False)}
    assert nginx_pending_workers(before, current, 4.0, 3.0) == [6]
    current = {8: NginxWorker(1, 50, False), 9: NginxWorker(2, 10, False)}
    assert nginx_pending_workers(before, current, 4.0, 3.0) == []
    # a reused pid (other start time) is a new process, not an old worker
    current = {5: NginxWorker(1, 99, False), 9: NginxWorker(2, 10, False)}
    assert nginx_pending_workers(before, current, 4.0, 3.0) == []


class FakeClock(object):
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_done_at_once():
    clock = FakeClock()
    assert wait_for(lambda elapsed: [], 5, 0.5, clock.clock, clock.sleep) == (True, 0.0, [])
    assert clock.sleeps == []


def test_wait_for_done_after_polls():
    clock = FakeClock()
    values = iter([[1, 2], [2], []])
    seen = []

    def poll(elapsed):
        seen.append(elapsed)
        return next(values)
    assert wait_for(poll, 5, 0.5, clock.clock, clock.sleep) == (True, 1.0, [])
    assert seen == [0.0, 0.5, 1.0]


def test_wait_for_times_out_and_polls_at_the_deadline():
    clock = FakeClock()
    seen = []

    def poll(elapsed):
        seen.append(elapsed)
        return 3
    assert wait_for(poll, 1.2, 0.5, clock.clock, clock.sleep) == (False, pytest.approx(1.2), 3)
    assert seen == [0.0, 0.5, 1.0, pytest.approx(1.2)]
    assert clock.sleeps == [0.5, 0.5, pytest.approx(0.2)]


# ---------------------------------------------------------------------------------------------------- haproxy

SHOW_BACKEND = '# name\nbe_app\nother\n\n'
SHOW_SERVERS_STATE = (
    '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change '
    'srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn '
    'srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n'
    '3 be_app 1 a 127.0.0.1 2 8 1 1 0 1 0 2 0 0 0 0 - 18081 - 0 0 - - 0\n'
    '3 be_app 2 b 127.0.0.1 2 4 1 1 0 1 0 0 8 0 0 0 - 18082 - 0 0 - - 0\n'
    '3 be_app 3 c 127.0.0.1 0 1 1 1 0 1 0 0 8 0 0 0 - 18083 - 0 0 - - 0\n\n')
SHOW_STAT = (
    '# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,weight\n'
    'fe,FRONTEND,,,3,3,9985,3,OPEN,\n'
    'be_app,a,1,1,2,2,,9,DRAIN,1\n'
    'be_app,b,0,0,0,1,,4,UP,1\n'
    'be_app,c,0,0,0,0,,0,MAINT,1\n'
    'be_app,BACKEND,0,0,2,2,,13,UP,2\n\n')


def test_parse_haproxy_answers():
    assert parse_haproxy_backends(SHOW_BACKEND) == ['be_app', 'other']
    rows = parse_haproxy_servers_state(SHOW_SERVERS_STATE)
    assert [(r['srv_name'], r['srv_admin_state'], r['srv_op_state']) for r in rows] == [('a', '8', '2'), ('b', '4', '2'), ('c', '1', '0')]
    stats = parse_haproxy_stat(SHOW_STAT)
    assert stats[('be_app', 'a')]['scur'] == '2' and stats[('be_app', 'c')]['status'] == 'MAINT'
    with pytest.raises(LbMemberError, match="show servers state.*Can't find backend"):
        parse_haproxy_servers_state("Can't find backend.\n\n")
    with pytest.raises(LbMemberError, match='show stat.*Permission denied'):
        parse_haproxy_stat('Permission denied\n')


@pytest.mark.parametrize('row, reached', [
    (dict(srv_addr='10.213.48.21', srv_port='8000'), ('10.213.48.21', 8000)),
    (dict(srv_addr='::1', srv_port='9000'), ('::1', 9000)),
    (dict(srv_addr='-', srv_port='8000'), (None, 8000)),  # name not resolved (yet)
    (dict(srv_addr='127.0.0.1', srv_port='0'), ('127.0.0.1', None)),  # no port: the client's port
    (dict(srv_addr='0.0.0.0', srv_port='8000'), (None, 8000)),
    (dict(srv_addr='127.0.0.1'), ('127.0.0.1', None)),  # an haproxy too old to report srv_port
    (dict(), (None, None)),
])
def test_haproxy_address(row, reached):
    assert haproxy_address(row) == reached


@pytest.mark.parametrize('admin, state', [
    (0, 'enabled'), (4, 'enabled'), (0x40, 'enabled'), (8, 'draining'), (0x10, 'draining'), (1, 'maint'), (5, 'maint'),
    (2, 'maint'), (0x20, 'maint'), (9, 'maint'), ('8', 'draining'),
])
def test_haproxy_admin_state(admin, state):
    assert haproxy_admin_state(admin) == state


def test_haproxy_client_members_and_commands():
    sent = []
    answers = {'show backend': SHOW_BACKEND, 'show servers state be_app': SHOW_SERVERS_STATE, 'show stat': SHOW_STAT,
               'set server be_app/a state maint': '\n', 'set server be_app/zz state maint': 'No such server.\n\n'}

    def send(command):
        sent.append(command)
        return answers[command]
    client = HAProxyClient('/nowhere', send=send)
    assert client.backends() == ['be_app', 'other']
    assert client.members('be_app') == [
        dict(name='a', state='draining', reason=None, status='DRAIN', sessions=3, address='127.0.0.1', port=18081),
        dict(name='b', state='enabled', reason=None, status='UP', sessions=0, address='127.0.0.1', port=18082),
        dict(name='c', state='maint', reason=None, status='MAINT', sessions=0, address='127.0.0.1', port=18083),
    ]
    client.set_state('be_app', 'a', 'maint')
    with pytest.raises(LbMemberError) as excinfo:
        client.set_state('be_app', 'zz', 'maint')
    assert str(excinfo.value) == 'haproxy refused "set server be_app/zz state maint": No such server.'
    assert sent[-2:] == ['set server be_app/a state maint', 'set server be_app/zz state maint']


def test_haproxy_client_errors():
    client = HAProxyClient('/nowhere/admin.sock')
    with pytest.raises(LbMemberError, match=r'cannot talk to haproxy on admin socket /nowhere/admin.sock \(show backend\)'):
        client.backends()
    client = HAProxyClient('/x', send=lambda command: 'Unknown command. Please enter one of the following commands only :\n')
    with pytest.raises(LbMemberError, match='is the socket at level admin'):
        client.backends()


def test_haproxy_command_over_a_unix_socket(tmp_path):
    path = str(tmp_path / 'admin.sock')
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received = []

    def serve():
        conn, _addr = server.accept()
        with conn:
            data = b''
            while not data.endswith(b'\n'):
                data += conn.recv(1024)
            received.append(data)
            conn.sendall(b'# name\n' + b''.join(b'be_%04d\n' % i for i in range(5000)))
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        answer = haproxy_command(path, 'show backend', timeout=5)
    finally:
        thread.join(5)
        server.close()
    assert received == [b'show backend\n']
    names = parse_haproxy_backends(answer)
    assert len(names) == 5000 and names[0] == 'be_0000' and names[-1] == 'be_4999'
