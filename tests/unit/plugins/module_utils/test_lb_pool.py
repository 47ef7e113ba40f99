# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils.lb_member import (
    NginxCommitError,
    NginxConfigError,
    NginxWorker,
    PoolNotFoundError,
    nginx_commit,
    nginx_members,
    nginx_set_member,
)
from ansible_collections.dealerscope.ops.plugins.module_utils.lb_pool import (
    LbPoolError,
    MembersError,
    check_members,
    nginx_switch_pending,
    plan_pool,
    pool_members,
)

STAMP = '2025-01-31T08:15:00Z'
MARKER = '# dealerscope.ops drained %s: patching app1' % STAMP

# lab/roles/lab_lb/templates/dealerscope.conf.j2 rendered for app1:8000 and app2:8000.
HEAD = """# Ansible managed - lab fixture
upstream dealerscope_api {
"""
LAB_SERVERS = """    server app1:8000 max_fails=2 fail_timeout=5s;
    server app2:8000 max_fails=2 fail_timeout=5s;
"""
TAIL = """    keepalive 16;
}

# Correlation ID: keep the caller's X-Request-ID, or mint one at the edge.
map $http_x_request_id $ds_request_id {
    default $http_x_request_id;
    ""      $request_id;
}

log_format dealerscope_json escape=json '{"ts":"$time_iso8601","correlation_id":"$ds_request_id",'
    '"remote":"$remote_addr","method":"$request_method","path":"$uri","status":$status,'
    '"bytes":$body_bytes_sent,"duration_ms":$request_time,"upstream":"$upstream_addr"}';

server {
    listen 80 default_server;
    server_name api.dealerscope.test;
    location = /healthz { proxy_pass http://dealerscope_api; }
    # ACME HTTP-01 answers (dealerscope.ops.tls writes them; tls_webroot)
    location ^~ /.well-known/acme-challenge/ { root /var/www/dealerscope-acme; default_type text/plain; }
    location / { return 301 https://$host$request_uri; }
}

server {
    listen 443 ssl default_server;
    server_name api.dealerscope.test;
    # Certificate and TLS policy: the snippet dealerscope.ops.tls manages (the lab's own CA until it first runs).
    include /etc/nginx/snippets/dealerscope-tls-api.conf;

    access_log /var/log/nginx/dealerscope.access.log dealerscope_json;

    add_header Content-Security-Policy "default-src 'self'" always;
    add_header X-Content-Type-Options nosniff always;

    location / {
        proxy_pass http://dealerscope_api;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Request-ID $ds_request_id;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto https;
        proxy_next_upstream error timeout http_502 http_503;
        proxy_connect_timeout 2s;
        proxy_read_timeout 10s;
    }
}
"""
LAB = HEAD + LAB_SERVERS + TAIL
POOL = 'dealerscope_api'


def plan(text, *members, **kwargs):
    """plan_pool for members given as (address, weight) or (address, weight, params), on upstream dealerscope_api
    when the text has it, else p."""
    wanted = [dict(address=m[0], weight=m[1], params=m[2] if len(m) > 2 else None) for m in members]
    pool = kwargs.pop('pool', POOL if 'upstream %s ' % POOL in text else 'p')
    return plan_pool(text, pool, check_members(wanted), **kwargs)


def block(servers, head='upstream p {\n', tail='    keepalive 16;\n}\n'):
    return head + servers + tail


def view(address, weight=1, down=False, drained=False, reason=None):
    return dict(address=address, weight=weight, down=down, drained=drained, reason=reason)


# ---------------------------------------------------------------------------------------------------- reading

def test_pool_members_of_the_lab():
    assert pool_members(LAB, POOL) == [view('app1:8000'), view('app2:8000')]


def test_pool_members_weights_down_and_drained():
    text = block('    server a:1 weight=3;\n'
                 '    server "b:2" weight=2 weight=5 backup;\n'
                 '    server c:3 down;\n'
                 '    server d:4 weight=7 down; %s\n'
                 '    server e:5; # dealerscope.ops drained %s: stale\n' % (MARKER, STAMP))
    assert pool_members(text, 'p') == [
        view('a:1', 3), view('b:2', 5), view('c:3', down=True), view('d:4', 7, down=True, drained=True, reason='patching app1'),
        view('e:5'),
    ]


def test_pool_members_refuses_a_weight_nginx_would_refuse():
    with pytest.raises(NginxConfigError, match=r'server a:1 in upstream p has weight=x on line 2; nginx needs a number'):
        pool_members(block('    server a:1 weight=x;\n'), 'p')


def test_pool_not_found():
    with pytest.raises(PoolNotFoundError, match='upstream nope not found; upstreams found: dealerscope_api'):
        plan(LAB, ('app1:8000', 1), pool='nope')


# ---------------------------------------------------------------------------------------------------- the lab

def test_canary_on_the_lab_edits_only_the_server_lines():
    new, info = plan(LAB, ('app1:8000', 9), ('app2:8000', 9),
                     ('app1:8001', 1, 'max_fails=2  fail_timeout=5s'), ('app2:8001', 1, 'max_fails=2 fail_timeout=5s'))
    assert new == HEAD + (
        '    server app1:8000 weight=9 max_fails=2 fail_timeout=5s;\n'
        '    server app2:8000 weight=9 max_fails=2 fail_timeout=5s;\n'
        '    server app1:8001 weight=1 max_fails=2 fail_timeout=5s;\n'
        '    server app2:8001 weight=1 max_fails=2 fail_timeout=5s;\n') + TAIL
    assert info['previous'] == [view('app1:8000'), view('app2:8000')]
    assert info['members'] == [view('app1:8000', 9), view('app2:8000', 9), view('app1:8001'), view('app2:8001')]
    assert info['added'] == ['app1:8001', 'app2:8001'] and info['removed'] == [] and info['drained'] == []
    assert info['revived'] == []
    again, info = plan(new, ('app1:8000', 9), ('app2:8000', 9), ('app1:8001', 1, 'max_fails=9'), ('app2:8001', 1))
    assert again == new and info['added'] == []


def test_full_switch_then_cleanup_on_the_lab():
    canary, _info = plan(LAB, ('app1:8000', 9), ('app2:8000', 9), ('app1:8001', 1), ('app2:8001', 1))
    switched, info = plan(canary, ('app1:8000', 0), ('app2:8000', 0), ('app1:8001', 1), ('app2:8001', 1))
    assert switched == HEAD + (
        '    server app1:8000 max_fails=2 fail_timeout=5s down;\n'
        '    server app2:8000 max_fails=2 fail_timeout=5s down;\n'
        '    server app1:8001 weight=1;\n'
        '    server app2:8001 weight=1;\n') + TAIL
    assert [m['down'] for m in info['members']] == [True, True, False, False]
    # back: weight above 0 removes down again, the file is what the canary wrote
    assert plan(switched, ('app1:8000', 9), ('app2:8000', 9), ('app1:8001', 1), ('app2:8001', 1))[0] == canary
    cleaned, info = plan(switched, ('app1:8001', 1), ('app2:8001', 1))
    assert cleaned == HEAD + '    server app1:8001 weight=1;\n    server app2:8001 weight=1;\n' + TAIL
    assert info['removed'] == ['app1:8000', 'app2:8000']


# ---------------------------------------------------------------------------------------------------- weights

@pytest.mark.parametrize('line, weight, expected', [
    ('server a:1;', 1, 'server a:1 weight=1;'),
    ('server a:1 max_fails=2;', 4, 'server a:1 weight=4 max_fails=2;'),
    ('server a:1 max_fails=2 weight=3;', 5, 'server a:1 max_fails=2 weight=5;'),
    ('server a:1 weight=3 max_fails=2;', 3, 'server a:1 weight=3 max_fails=2;'),
    ('server a:1 weight=03;', 3, 'server a:1 weight=3;'),
    ('server a:1 "weight=3";', 2, 'server a:1 weight=2;'),
    ('server a:1 weight=2 backup weight=3;', 5, 'server a:1 weight=5 backup;'),
    ('server a:1 weight=3 max_fails=2;', 0, 'server a:1 max_fails=2 down;'),
    ('server a:1 max_fails=2 weight=3;', 0, 'server a:1 max_fails=2 down;'),
    ('server a:1 weight=3;', 0, 'server a:1 down;'),
    ('server a:1;', 0, 'server a:1 down;'),
    ('server a:1 down weight=3;', 0, 'server a:1 down;'),
    ('server a:1 max_fails=2 down;', 4, 'server a:1 weight=4 max_fails=2;'),
    ('server a:1 down max_fails=2;', 4, 'server a:1 weight=4 max_fails=2;'),
    ('server a:1 down;', 1, 'server a:1 weight=1;'),
    ('server a:1   weight=3\tdown  ; # keep me', 7, 'server a:1   weight=7  ; # keep me'),
])
def test_weight_of_one_line(line, weight, expected):
    text = block('    %s\n    server z:9 weight=1;\n' % line)
    new, info = plan(text, ('a:1', weight), ('z:9', 1))
    assert new == block('    %s\n    server z:9 weight=1;\n' % expected)
    assert info['members'][0]['down'] is (weight == 0)
    if weight:
        assert info['members'][0]['weight'] == weight
    assert plan(new, ('a:1', weight), ('z:9', 1))[0] == new


def test_multiline_directive_and_words_alone_on_their_lines():
    text = block('    server a:1\n        weight=3 down\n        max_fails=2;\n'
                 '    server b:2\n        weight=4\n        ;\n'
                 '    server c:3;\n')
    new, _info = plan(text, ('a:1', 5), ('b:2', 0), ('c:3', 1))
    assert new == block('    server a:1\n        weight=5\n        max_fails=2;\n'
                        '    server b:2 down\n        ;\n'
                        '    server c:3 weight=1;\n')
    new, _info = plan(text, ('a:1', 0), ('b:2', 1), ('c:3', 1))
    assert new == block('    server a:1\n        down\n        max_fails=2;\n'
                        '    server b:2\n        weight=1\n        ;\n'
                        '    server c:3 weight=1;\n')
    assert pool_members(new, 'p') == [view('a:1', down=True), view('b:2'), view('c:3')]


def test_crlf_file():
    text = block('    server a:1 max_fails=2;\r\n', head='upstream p {\r\n', tail='}\r\n')
    new, _info = plan(text, ('a:1', 3), ('b:2', 0, 'backup'))
    assert new == block('    server a:1 weight=3 max_fails=2;\r\n    server b:2 backup down;\r\n', head='upstream p {\r\n', tail='}\r\n')


# ---------------------------------------------------------------------------------------------------- new lines

@pytest.mark.parametrize('text, expected', [
    # after the last server line, with its indentation (tabs), before what follows it
    ('upstream p {\n\tserver a:1;\n\tkeepalive 8;\n}\n',
     'upstream p {\n\tserver a:1;\n\tserver n:1 weight=2 max_fails=2;\n\tserver n:2 down;\n\tkeepalive 8;\n}\n'),
    # after the last server line's comment
    ('upstream p {\n  server a:1; # first\n\n  # spare\n}\n',
     'upstream p {\n  server a:1; # first\n  server n:1 weight=2 max_fails=2;\n  server n:2 down;\n\n  # spare\n}\n'),
    # nested in http {}: the last server line's indentation
    ('http {\n    upstream p {\n        server a:1;\n    }\n}\n',
     'http {\n    upstream p {\n        server a:1;\n        server n:1 weight=2 max_fails=2;\n        server n:2 down;\n    }\n}\n'),
    # no server line: 4 spaces more than the upstream line, after the { line
    ('upstream p { # pool\n    keepalive 8;\n}\nupstream a { server a:1; }\n',
     'upstream p { # pool\n    server n:1 weight=2 max_fails=2;\n    server n:2 down;\n    keepalive 8;\n}\nupstream a { server a:1; }\n'),
    ('http {\n  upstream p {\n  }\n}\n',
     'http {\n  upstream p {\n      server n:1 weight=2 max_fails=2;\n      server n:2 down;\n  }\n}\n'),
    # one-line blocks: a new line each after the last server directive / the brace
    ('upstream p { server a:1; }\n',
     'upstream p { server a:1;\n    server n:1 weight=2 max_fails=2;\n    server n:2 down; }\n'),
    ('upstream p { keepalive 8; }\n',
     'upstream p {\n    server n:1 weight=2 max_fails=2;\n    server n:2 down; keepalive 8; }\n'),
])
def test_new_lines_placement_and_indentation(text, expected):
    members = [('n:1', 2, 'max_fails=2'), ('n:2', 0)]
    new, info = plan(text, *members, remove_unlisted=False)
    assert new == expected
    assert info['added'] == ['n:1', 'n:2']
    assert [m['address'] for m in pool_members(new, 'p')][-2:] == ['n:1', 'n:2']
    assert plan(new, ('n:1', 2), ('n:2', 0), remove_unlisted=False)[0] == new


def test_new_lines_go_where_the_removed_last_line_was():
    text = block('    server a:1;\n    server b:2; # old\n')
    new, info = plan(text, ('a:1', 1), ('n:1', 1))
    assert new == block('    server a:1 weight=1;\n    server n:1 weight=1;\n')
    assert info['removed'] == ['b:2'] and info['added'] == ['n:1']


# ---------------------------------------------------------------------------------------------------- remove_unlisted

UNLISTED = block('    server a:1 weight=2;\n'
                 '    server b:2 max_fails=3; # retiring\n'
                 '    server\n        c:3\n        backup;\n'
                 '    server d:4 down;\n')


def test_remove_unlisted_deletes_whole_lines_with_their_comment():
    new, info = plan(UNLISTED, ('a:1', 2), ('d:4', 1))
    assert new == block('    server a:1 weight=2;\n    server d:4 weight=1;\n')
    assert info['removed'] == ['b:2', 'c:3']
    assert info['revived'] == ['d:4']


def test_remove_unlisted_false_keeps_them_byte_for_byte():
    new, info = plan(UNLISTED, ('a:1', 2), ('d:4', 0), remove_unlisted=False)
    assert new == UNLISTED and info['removed'] == [] and info['members'] == info['previous']


def test_removing_from_one_line_blocks():
    new, _info = plan('upstream p { server a:1; server b:2; server c:3; }\n', ('b:2', 1))
    assert new == 'upstream p { server b:2 weight=1; }\n'
    new, _info = plan('upstream p {\n    server a:1; server b:2;\n}\n', ('b:2', 1))
    assert pool_members(new, 'p') == [view('b:2')]
    assert new == 'upstream p {\n    server b:2 weight=1;\n}\n'


def test_only_the_named_upstream_is_touched():
    text = 'upstream q {\n    server a:1;\n    server z:1;\n}\n' + block('    server a:1;\n    server z:1;\n')
    new, _info = plan(text, ('a:1', 0), ('n:1', 4))
    assert new == 'upstream q {\n    server a:1;\n    server z:1;\n}\n' + block('    server a:1 down;\n    server n:1 weight=4;\n')


# ---------------------------------------------------------------------------------------------------- keep_drained

def _drained_lab():
    drained, _info = nginx_set_member(LAB, POOL, 'app1:8000', True, 'patching app1', now=1738311300)
    return drained


def test_keep_drained_keeps_down_and_the_marker_but_sets_the_weight():
    text = _drained_lab()
    new, info = plan(text, ('app1:8000', 9), ('app2:8000', 1))
    assert new == HEAD + ('    server app1:8000 weight=9 max_fails=2 fail_timeout=5s down; %s\n'
                          '    server app2:8000 weight=1 max_fails=2 fail_timeout=5s;\n' % MARKER) + TAIL
    assert info['drained'] == ['app1:8000']
    assert info['members'][0] == view('app1:8000', 9, down=True, drained=True, reason='patching app1')
    assert plan(new, ('app1:8000', 9), ('app2:8000', 1))[0] == new
    # lb_member enables it later: it comes back with the weight the plan gave it
    enabled, _info = nginx_set_member(new, POOL, 'app1:8000', False)
    assert pool_members(enabled, POOL)[0] == view('app1:8000', 9)
    assert nginx_members(enabled, POOL)[0]['state'] == 'enabled'


def test_keep_drained_false_enables_a_drained_member():
    new, info = plan(_drained_lab(), ('app1:8000', 9), ('app2:8000', 1), keep_drained=False)
    assert new == HEAD + ('    server app1:8000 weight=9 max_fails=2 fail_timeout=5s;\n'
                          '    server app2:8000 weight=1 max_fails=2 fail_timeout=5s;\n') + TAIL
    assert info['drained'] == [] and info['revived'] == []


def test_drained_member_with_weight_zero():
    text = _drained_lab()
    new, info = plan(text, ('app1:8000', 0), ('app2:8000', 1))
    assert new.startswith(HEAD + '    server app1:8000 max_fails=2 fail_timeout=5s down; %s\n' % MARKER)
    assert info['drained'] == [] and info['members'][0]['drained'] is True
    new, info = plan(text, ('app1:8000', 0), ('app2:8000', 1), keep_drained=False)
    assert new.startswith(HEAD + '    server app1:8000 max_fails=2 fail_timeout=5s down;\n')
    assert info['members'][0] == view('app1:8000', down=True)


def test_a_stale_marker_does_not_make_a_member_drained():
    text = block('    server a:1; # dealerscope.ops drained %s: old\n    server b:2;\n' % STAMP)
    new, info = plan(text, ('a:1', 2), ('b:2', 1))
    assert new == block('    server a:1 weight=2; # dealerscope.ops drained %s: old\n    server b:2 weight=1;\n' % STAMP)
    assert info['drained'] == []
    new, info = plan(text, ('a:1', 0), ('b:2', 1))
    assert new == block('    server a:1 down;\n    server b:2 weight=1;\n')
    assert info['members'][0] == view('a:1', down=True)


def test_no_member_would_take_traffic_because_of_drained_ones():
    text = _drained_lab()
    with pytest.raises(LbPoolError, match=r'no member of upstream dealerscope_api would take traffic: app1:8000 requested with a '
                                          r'weight above 0 is drained for maintenance \(lb_member\) and stays down with keep_drained'):
        plan(text, ('app1:8000', 9), ('app2:8000', 0))
    assert plan(text, ('app1:8000', 9), ('app2:8000', 0), keep_drained=False)[1]['members'][0]['down'] is False
    # a member that is not listed but kept still takes traffic
    assert plan(text, ('app1:8000', 9), ('app3:8000', 0), remove_unlisted=False)[1]['drained'] == ['app1:8000']


# ---------------------------------------------------------------------------------------------------- refusals

def test_a_listed_member_twice_in_the_block_is_refused():
    text = block('    server a:1;\n    server a:1 backup;\n    server b:2;\n    server b:2;\n    server c:3;\n')
    with pytest.raises(LbPoolError, match=r'upstream p lists a:1 \(2 times\), b:2 \(2 times\) more than once; edit the file by hand'):
        plan(text, ('a:1', 1), ('b:2', 1))
    # unlisted duplicates are just removed, or kept
    assert plan(text, ('c:3', 1))[0] == block('    server c:3 weight=1;\n')
    assert plan(text, ('c:3', 1), remove_unlisted=False)[0] == text.replace('server c:3;', 'server c:3 weight=1;')


def test_check_members_normalizes():
    members = check_members([dict(address='a:1', weight='9'), dict(address='b:2', weight=0, params='  max_fails=2\tbackup '),
                             dict(address='unix:/run/app.sock', weight=3, params=None)])
    assert members == [dict(address='a:1', weight=9, params=''), dict(address='b:2', weight=0, params='max_fails=2 backup'),
                       dict(address='unix:/run/app.sock', weight=3, params='')]


def test_check_members_reports_every_problem_at_once():
    with pytest.raises(MembersError) as excinfo:
        check_members([
            dict(address='app1:8000', weight=9),
            dict(address='app1:8000', weight=-1),
            dict(address='', weight='x'),
            dict(address='a b', weight=True),
            dict(address='a;b', weight=1.5, params='weight=3'),
            dict(weight=None, params='down'),
            'app3:8000',
            dict(address='c:1', weight=1, colour='blue', params='x;y'),
            dict(address=8000, weight=1, params=3),
        ])
    assert excinfo.value.problems == [
        'members[1].address app1:8000 is also members[0].address; list each member once',
        'members[1].weight must be an integer >= 0 (0 means no traffic), got -1',
        'members[2].address is empty',
        "members[2].weight must be an integer >= 0 (0 means no traffic), got 'x'",
        "members[3].address 'a b' must not contain blanks or any of ;{}#\"'\\",
        'members[3].weight must be an integer >= 0 (0 means no traffic), got True',
        "members[4].address 'a;b' must not contain blanks or any of ;{}#\"'\\",
        'members[4].weight must be an integer >= 0 (0 means no traffic), got 1.5',
        "members[4].params 'weight=3' must not contain weight= or down: weight sets them (0 writes down)",
        'members[5].address is missing',
        'members[5].weight is missing',
        "members[5].params 'down' must not contain weight= or down: weight sets them (0 writes down)",
        "members[6] must be a dict with address and weight, got 'app3:8000'",
        'members[7] has unknown key(s) colour (known: address, weight, params)',
        "members[7].params 'x;y' must not contain any of ;{}#\"'\\",
        'members[8].address must be a string host:port, got 8000',
        'members[8].params must be a string such as "max_fails=2 fail_timeout=5s", got 3',
    ]
    assert str(excinfo.value).startswith('invalid members: members[1].address app1:8000 is also members[0].address; ')


@pytest.mark.parametrize('members, message', [
    ([dict(address='a:1', weight=0), dict(address='b:1', weight='0')], 'invalid members: every weight is 0: no member would take traffic'),
    ([], 'invalid members: members is empty: give at least one member with a weight above 0'),
    (None, 'invalid members: members must be a list of dicts with address and weight, got NoneType'),
    ([dict(address='a:1', weight=' 9 ')], None),
])
def test_check_members_edge_cases(members, message):
    if message is None:
        assert check_members(members)[0]['weight'] == 9
    else:
        with pytest.raises(MembersError) as excinfo:
            check_members(members)
        assert str(excinfo.value) == message


def test_broken_file_is_refused():
    with pytest.raises(NginxConfigError, match='unexpected "}" on line 3'):
        plan('upstream p {\n    server a:1\n}\n', ('a:1', 1))


# ---------------------------------------------------------------------------------------------------- switch wait

def W(ppid, starttime, shutting_down=False):
    return NginxWorker(ppid, starttime, shutting_down)


def test_switch_pending():
    before = {11: W(10, 500), 12: W(10, 500), 21: W(20, 300)}
    # nothing reloaded yet: every old worker, also after the settle time
    assert nginx_switch_pending(before, dict(before), 0.1, 3.0) == [11, 12, 21]
    assert nginx_switch_pending(before, dict(before), 9.0, 3.0) == [11, 12, 21]
    # master 10 started a new worker; its old ones are pending until shutting down or gone
    current = {11: W(10, 500, True), 12: W(10, 500), 13: W(10, 900), 21: W(20, 300)}
    assert nginx_switch_pending(before, current, 0.5, 3.0) == [12, 21]
    # after the settle time master 20 (not reloaded) is another nginx instance
    assert nginx_switch_pending(before, current, 3.0, 3.0) == [12]
    current = {11: W(10, 500, True), 13: W(10, 900), 21: W(20, 300)}
    assert nginx_switch_pending(before, current, 3.0, 3.0) == []
    # a pid reused by a new process is not the old worker
    assert nginx_switch_pending({11: W(10, 500)}, {11: W(10, 901)}, 0.0, 3.0) == []
    assert nginx_switch_pending({}, {13: W(10, 900)}, 0.0, 3.0) == []


# ---------------------------------------------------------------------------------------------------- nginx_commit (shared with lb_member)

class Host(object):
    """A file and commands for nginx_commit: records every call in ``calls``."""

    def __init__(self, codes, fail_writes=0):
        self.data = b'old'
        self.codes = dict(codes)
        self.calls = []
        self.fail_writes = fail_writes

    def write(self, path, data):
        self.calls.append(('write', data))
        if self.fail_writes and len([c for c in self.calls if c[0] == 'write']) >= self.fail_writes:
            raise OSError(28, 'No space left on device')
        self.data = data

    def run(self, command):
        self.calls.append(('run', command))
        return self.codes.get(command, 0), '', 'nginx: [emerg] bad' if self.codes.get(command) else ''

    def commit(self, before_reload=None):
        return nginx_commit('/etc/nginx/x.conf', b'old', b'new', self.write, self.run, 'check', 'reload', before_reload)


def test_nginx_commit_writes_validates_scans_and_reloads_in_order():
    host = Host({})
    assert host.commit(lambda: host.calls.append(('scan',)) or 'scanned') == 'scanned'
    assert host.calls == [('write', b'new'), ('run', 'check'), ('scan',), ('run', 'reload')] and host.data == b'new'


@pytest.mark.parametrize('codes, message', [
    ({'check': 1}, 'nginx rejected the new configuration (check exited 1), the previous /etc/nginx/x.conf was restored: nginx: [emerg] bad'),
    ({'reload': 3}, 'reloading nginx failed (reload exited 3), the previous /etc/nginx/x.conf was restored: nginx: [emerg] bad'),
])
def test_nginx_commit_restores_the_previous_file(codes, message):
    host = Host(codes)
    with pytest.raises(NginxCommitError) as excinfo:
        host.commit()
    assert str(excinfo.value) == message and excinfo.value.changed is False and host.data == b'old'


def test_nginx_commit_when_writing_or_restoring_fails():
    host = Host({}, fail_writes=1)
    with pytest.raises(NginxCommitError) as excinfo:
        host.commit()
    assert str(excinfo.value) == 'cannot write /etc/nginx/x.conf: [Errno 28] No space left on device' and not excinfo.value.changed
    host = Host({'check': 1}, fail_writes=2)
    with pytest.raises(NginxCommitError) as excinfo:
        host.commit()
    assert excinfo.value.changed is True and host.data == b'new'
    assert str(excinfo.value).startswith('nginx rejected the new configuration (check exited 1), and RESTORING the previous '
                                         '/etc/nginx/x.conf FAILED ([Errno 28] No space left on device): the new file is in place')


# ---------------------------------------------------------------------------------------------------- property

ADDRESSES = ['app1:8001', 'app2:8001', 'app1:8002', 'app2:8002', '10.0.0.5:8080', '[::1]:9000', 'unix:/run/app.sock', 'app3']
PARAMS = ['max_fails=2', 'fail_timeout=5s', 'weight=3', 'weight=1', 'backup', 'down', 'max_conns=10']
SEPARATORS = [' ', '  ', '\t', '\n        ']
TRAILERS = ['', ' ', ' # note', ' # dealerscope.ops drained %s: patching' % STAMP, ' # dealerscope.ops drained %s' % STAMP]
PREFIX = '# managed\nupstream other {\n    server app1:8001;\n}\n'
SUFFIX = 'server {\n    location / { proxy_pass http://p; }\n}\n'


@st.composite
def server_line(draw, address):
    words = [address] + draw(st.lists(st.sampled_from(PARAMS), max_size=3, unique=True))
    text = draw(st.sampled_from(['    ', '\t', ''])) + 'server'
    for word in words:
        text += draw(st.sampled_from(SEPARATORS)) + word
    return text + draw(st.sampled_from(['', ' ', '\n    '])) + ';' + draw(st.sampled_from(TRAILERS)) + '\n'


@st.composite
def pool_file(draw):
    """The upstream block ``p`` between PREFIX and SUFFIX, with LF or CRLF line endings."""
    addresses = draw(st.lists(st.sampled_from(ADDRESSES), max_size=5, unique=True))
    body = ''
    for address in addresses:
        body += draw(server_line(address))
        if draw(st.booleans()):
            body += draw(st.sampled_from(['    keepalive 16;', '    # server app9:1;', '    zone p 64k;', ''])) + '\n'
    opener = draw(st.sampled_from([' {', ' { # pool', '{']))
    text = '%supstream p%s\n%s}\n%s' % (PREFIX, opener, body, SUFFIX)
    return text.replace('\n', '\r\n') if draw(st.booleans()) else text


@st.composite
def weight_plan(draw, existing):
    candidates = existing + [address for address in ADDRESSES if address not in existing]
    chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=len(candidates), unique=True))
    members = [dict(address=address, weight=draw(st.integers(0, 12)),
                    params=draw(st.sampled_from([None, 'max_fails=2 fail_timeout=5s', 'backup'])))
               for address in chosen]
    assume(any(member['weight'] for member in members))
    return members


@settings(max_examples=400, deadline=None)
@given(pool_file(), st.data(), st.booleans(), st.booleans())
def test_plan_gives_exactly_the_requested_weights_and_is_idempotent(text, data, remove_unlisted, keep_drained):
    before = pool_members(text, 'p')
    members = check_members(data.draw(weight_plan([view['address'] for view in before])))
    listed = dict((member['address'], member) for member in members)
    was = dict((view['address'], view) for view in before)
    expected_down = dict((address, member['weight'] == 0 or (keep_drained and address in was and was[address]['drained']))
                         for address, member in listed.items())
    kept = [view for view in before if view['address'] not in listed and not remove_unlisted]
    if not [a for a, down in expected_down.items() if not down] and not [view for view in kept if not view['down']]:
        with pytest.raises(LbPoolError, match='no member of upstream p would take traffic'):
            plan_pool(text, 'p', members, remove_unlisted, keep_drained)
        return
    new, info = plan_pool(text, 'p', members, remove_unlisted, keep_drained)
    after = pool_members(new, 'p')
    assert after == info['members']
    got = dict((view['address'], view) for view in after)
    for address, member in listed.items():
        assert got[address]['down'] is expected_down[address]
        if member['weight']:
            assert got[address]['weight'] == member['weight']
    assert [view for view in after if view['address'] not in listed] == kept
    assert info['added'] == [member['address'] for member in members if member['address'] not in was]
    assert info['drained'] == [view['address'] for view in before
                               if view['address'] in listed and view['drained'] and keep_drained and listed[view['address']]['weight']]
    # new members are at the end of the block, in the order given
    assert [view['address'] for view in after][len(after) - len(info['added']):] == info['added']
    # bytes outside the block are kept
    eol = '\r\n' if '\r\n' in text else '\n'
    assert new.startswith(PREFIX.replace('\n', eol)) and new.endswith(SUFFIX.replace('\n', eol))
    assert pool_members(new, 'other') == pool_members(text, 'other')
    assert new.count('\r\n') == new.count('\n') or eol == '\n'
    # applying the plan again changes nothing
    again, info = plan_pool(new, 'p', members, remove_unlisted, keep_drained)
    assert again == new and info['added'] == [] and info['removed'] == []
