# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import log_scan
from ansible_collections.dealerscope.ops.plugins.module_utils.log_scan import (
    JOURNAL_IDENTIFIERS,
    AccessLogCounter,
    JournalScanner,
    PiiScanner,
    accounts_check,
    app_5xx_check,
    dump_state,
    empty_state,
    find_cards,
    find_emails,
    journal_command,
    journal_failed_checks,
    load_state,
    luhn_valid,
    mask_card,
    mask_email,
    parse_journal_line,
    parse_log_time,
    parse_ssh_message,
    parse_sudo_message,
    pii_check,
    read_file_increment,
    redact,
    scan_files,
    ssh_check,
    stream_command,
    sudo_check,
    usec_to_iso,
    write_state,
)


# --------------------------------------------------------------------------
# helpers and strategies
# --------------------------------------------------------------------------

def luhn_complete(prefix):
    """Append the Luhn check digit to ``prefix``."""
    for digit in '0123456789':
        if luhn_valid(prefix + digit):
            return prefix + digit
    raise AssertionError('unreachable')


@st.composite
def card_numbers(draw):
    length = draw(st.integers(min_value=13, max_value=19))
    first = draw(st.sampled_from('23456'))
    body = draw(st.text(alphabet='0123456789', min_size=length - 2, max_size=length - 2))
    return luhn_complete(first + body)


@st.composite
def formatted_cards(draw):
    """A Luhn-valid card number and how it is written in the log (plain, or grouped by spaces or dashes)."""
    digits = draw(card_numbers())
    style = draw(st.sampled_from(['plain', ' ', '-']))
    if style == 'plain':
        return digits, digits
    groups = [digits[i:i + 4] for i in range(0, len(digits), 4)]
    return digits, style.join(groups)


_LOCAL = st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789._+-', min_size=1, max_size=20).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum())
_LABEL = st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789', min_size=1, max_size=12)
_TLD = st.text(alphabet='abcdefghijklmnopqrstuvwxyz', min_size=2, max_size=6)


@st.composite
def emails(draw):
    labels = draw(st.lists(_LABEL, min_size=1, max_size=3))
    return '%s@%s.%s' % (draw(_LOCAL), '.'.join(labels), draw(_TLD))


_FILLER = st.text(alphabet='abcdefghij ABC=:/?&,;"{}', max_size=30)


def entry(message, identifier='sshd', pid='100', cursor=None, usec='1715000000000000'):
    return {'MESSAGE': message, 'SYSLOG_IDENTIFIER': identifier, '_PID': pid,
            '__CURSOR': cursor or 'c-%s-%s' % (pid, abs(hash(message)) % 10000), '__REALTIME_TIMESTAMP': usec}


def scan(entries):
    scanner = JournalScanner(pii=PiiScanner())
    for one in entries:
        scanner.feed(one)
    return scanner


# --------------------------------------------------------------------------
# card numbers
# --------------------------------------------------------------------------

@pytest.mark.parametrize('number', ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '4222222222222'])
def test_luhn_known_cards(number):
    assert luhn_valid(number)
    assert not luhn_valid(number[:-1] + str((int(number[-1]) + 1) % 10))


@pytest.mark.parametrize('text, expected', [
    ('card 4111111111111111 ok', ['4111111111111111']),
    ('card 4111 1111 1111 1111 ok', ['4111111111111111']),
    ('card 4111-1111-1111-1111', ['4111111111111111']),
    ('amex 3782 822463 10005', ['378282246310005']),
    ('{"pan": 4111111111111111}', ['4111111111111111']),
    ('card 4111 1111 1111 1111 2025', ['4111111111111111']),  # followed by a year
    ('4111111111111112', []),  # Luhn-invalid
    ('ts 1715000000123 and 1715000000123456', []),  # epoch ms/us start with 1
    ('411111111111', []),  # 12 digits
    ('41111111111111111111111', []),  # 23 digits in one run
    ('id=x4111111111111111', []),  # continues a word
    ('took 4111111111111111.5 ms', []),  # decimal number
    ('ansible-tmp-1715000000.41-1234-281474976710655/AnsiballZ_ping.py', []),  # dashed token
    ('4111  1111 1111 1111', []),  # double space breaks the groups
])
def test_find_cards(text, expected):
    assert [digits for _start, _end, digits in find_cards(text)] == expected


@given(formatted_cards(), _FILLER, _FILLER)
def test_find_cards_finds_generated_cards(card, before, after):
    digits, written = card
    text = '%s %s %s' % (before, written, after)
    found = [d for _s, _e, d in find_cards(text)]
    assert digits in found


@given(card_numbers())
def test_mask_card_shows_last_four_only(digits):
    masked = mask_card(digits)
    assert masked == '**** **** **** ' + digits[-4:]
    assert digits not in masked
    assert mask_card(digits) == masked  # stable
    assert find_cards(masked) == []  # a mask is not detected again


# --------------------------------------------------------------------------
# emails
# --------------------------------------------------------------------------

def test_find_and_mask_emails():
    text = 'GET /signup?email=john.doe%40example.com&x=1 mail bob@mail.example.co.uk. root@localhost'
    found = find_emails(text)
    assert [(local, domain) for _s, _e, local, domain in found] == [('john.doe', 'example.com'), ('bob', 'mail.example.co.uk')]
    assert mask_email('john.doe', 'example.com') == 'j***@e***.com'
    assert mask_email('bob', 'mail.example.co.uk') == 'b***@m***.uk'


@given(emails(), _FILLER, _FILLER)
def test_redact_removes_generated_emails(email, before, after):
    text = '%s %s %s' % (before, email, after)
    redacted = redact(text)
    assert email not in redacted
    local, domain = email.split('@')
    assert mask_email(local, domain) in redacted
    assert redact(redacted) == redacted  # masking is stable: masks are not masked again


@given(st.lists(st.one_of(emails(), formatted_cards().map(lambda c: c[1]), _FILLER), max_size=6))
def test_redact_is_idempotent_and_deterministic(parts):
    text = ' '.join(parts)
    once = redact(text)
    assert redact(text) == once
    assert redact(once) == once
    assert find_emails(once) == [] and find_cards(once) == []


def test_pii_scanner_counts_lines_and_keeps_three_masked_samples():
    pii = PiiScanner()
    assert not pii.feed('/log', 1, 'nothing here 12345')
    assert pii.feed('/log', 2, 'a@example.com b@example.org')
    assert pii.feed('/log', 3, 'pay 4111 1111 1111 1111')
    assert pii.feed('/log', 4, 'c@example.net')
    assert pii.lines == 3 and pii.emails == 3 and pii.cards == 1
    details = pii.details()
    assert len(details['samples']) == 3
    assert details['samples'][0] == {'source': '/log', 'line': 2, 'kind': 'email', 'masked': 'a***@e***.com'}
    assert details['samples'][2] == {'source': '/log', 'line': 3, 'kind': 'card', 'masked': '**** **** **** 1111'}


@given(emails(), formatted_cards())
def test_pii_check_never_contains_raw_values(email, card):
    digits, written = card
    pii = PiiScanner()
    pii.feed('/var/log/x', 7, 'user %s paid with %s' % (email, written))
    check = pii_check(pii)
    serialised = json.dumps(check)
    assert email not in serialised
    assert digits not in serialised and written not in serialised
    assert check['status'] == 'critical' and check['alert'] == 'pii_exposure'
    assert check['details']['cards'] >= 1 and check['details']['emails'] >= 1


def test_pii_check_statuses():
    pii = PiiScanner()
    assert pii_check(pii)['status'] == 'ok'
    pii.feed('journal:sudo', 1, 'mail j@example.com')
    check = pii_check(pii)
    assert check['status'] == 'warning' and check['value'] == 1 and check['alert'] == 'pii_exposure'


# --------------------------------------------------------------------------
# journal: sshd
# --------------------------------------------------------------------------

@pytest.mark.parametrize('message, expected', [
    ('Failed password for invalid user admin from 203.0.113.9 port 51234 ssh2', ('failed', 'admin', '203.0.113.9', '51234')),
    ('Failed password for root from 2001:db8::1 port 22 ssh2', ('failed', 'root', '2001:db8::1', '22')),
    ('Failed publickey for deploy from 203.0.113.9 port 4 ssh2: ED25519 SHA256:abc', ('failed', 'deploy', '203.0.113.9', '4')),
    ('Invalid user admin from 203.0.113.9 port 51234', ('evidence', 'admin', '203.0.113.9', '51234')),
    ('Invalid user  from 203.0.113.9 port 1', ('evidence', '', '203.0.113.9', '1')),
    ('Connection closed by authenticating user root 203.0.113.9 port 5 [preauth]', ('evidence', 'root', '203.0.113.9', '5')),
    ('Connection closed by invalid user nosuchuser 127.0.0.1 port 5 [preauth]', ('evidence', 'nosuchuser', '127.0.0.1', '5')),
    ('Disconnected from invalid user x 203.0.113.9 port 5 [preauth]', ('evidence', 'x', '203.0.113.9', '5')),
    ('maximum authentication attempts exceeded for root from 203.0.113.9 port 5 ssh2 [preauth]', ('evidence', 'root', '203.0.113.9', '5')),
    ('error: PAM: Authentication failure for root from 203.0.113.9', ('evidence', 'root', '203.0.113.9', None)),
    ('pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root',
     ('evidence', 'root', '203.0.113.9', None)),
    ('Failed none for invalid user x from 203.0.113.9 port 5 ssh2', None),
    ('Accepted publickey for ops from 10.0.0.1 port 22 ssh2: ED25519 SHA256:x', None),
    ('Disconnected from user ops 10.0.0.1 port 22', None),
    ('Received disconnect from 203.0.113.9 port 5:11: Bye Bye [preauth]', None),
])
def test_parse_ssh_message(message, expected):
    assert parse_ssh_message(message) == expected


def test_ssh_dedup_one_connection_with_all_lines():
    conn = [
        'Invalid user admin from 203.0.113.9 port 5000',
        'pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9',
        'Failed password for invalid user admin from 203.0.113.9 port 5000 ssh2',
        'error: PAM: Authentication failure for illegal user admin from 203.0.113.9',
        'Failed password for invalid user admin from 203.0.113.9 port 5000 ssh2',
        'Failed password for invalid user admin from 203.0.113.9 port 5000 ssh2',
        'maximum authentication attempts exceeded for invalid user admin from 203.0.113.9 port 5000 ssh2 [preauth]',
        'Connection closed by invalid user admin 203.0.113.9 port 5000 [preauth]',
    ]
    scanner = scan([entry(m, pid='4242') for m in conn])
    failures, sources, users = scanner.ssh_summary()
    assert failures == 3
    assert sources == {'203.0.113.9': 3}
    assert users == {'admin': 3}
    assert scanner.ssh_lines == 8


def test_ssh_dedup_batchmode_invalid_user_counts_once_per_connection():
    entries = []
    for pid in ('11', '12', '13'):
        entries.append(entry('Invalid user nosuchuser from 127.0.0.1 port 4%s' % pid, identifier='sshd-session', pid=pid))
        entries.append(entry('Connection closed by invalid user nosuchuser 127.0.0.1 port 4%s [preauth]' % pid, identifier='sshd-session', pid=pid))
    entries.append(entry('Accepted publickey for ops from 10.0.0.1 port 22 ssh2', pid='14'))
    failures, sources, users = scan(entries).ssh_summary()
    assert failures == 3
    assert sources == {'127.0.0.1': 3}
    assert users == {'nosuchuser': 3}


def test_ssh_failed_then_accepted_counts_the_failure():
    entries = [entry('Failed password for ops from 10.0.0.1 port 22 ssh2', pid='7'),
               entry('Accepted password for ops from 10.0.0.1 port 22 ssh2', pid='7')]
    assert scan(entries).ssh_summary()[0] == 1


def test_ssh_user_names_are_redacted():
    entries = [entry('Invalid user john@example.com from 203.0.113.9 port 1', pid='1'),
               entry('Invalid user 4111111111111111 from 203.0.113.9 port 2', pid='2')]
    scanner = scan(entries)
    check = ssh_check(scanner, 10, 100)
    assert check['details']['users'] == {'**** **** **** 1111': 1, 'j***@e***.com': 1}
    assert 'john@example.com' not in json.dumps(check)
    assert scanner.pii.lines == 2


def test_ssh_sources_never_carry_raw_pii():
    scanner = scan([entry('error: PAM: Authentication failure for a from john@example.com from 203.0.113.9', pid='1')])
    check = ssh_check(scanner, 10, 100)
    assert check['value'] == 1
    assert 'john@example.com' not in json.dumps(check)


def test_ssh_check_thresholds_and_top_sources():
    entries = [entry('Failed password for root from 198.51.100.%d port 22 ssh2' % (i % 12), pid=str(i)) for i in range(24)]
    check = ssh_check(scan(entries), 10, 100)
    assert check['status'] == 'warning' and check['value'] == 24 and check['alert'] == 'security_event'
    assert len(check['details']['sources']) == 10
    assert 'top sources' in check['message']
    check = ssh_check(scan(entries), 10, 24)
    assert check['status'] == 'critical'
    check = ssh_check(scan([]), 10, 100)
    assert check['status'] == 'ok' and check['value'] == 0 and check['alert'] is None


# --------------------------------------------------------------------------
# journal: sudo and accounts
# --------------------------------------------------------------------------

def test_parse_sudo_message():
    assert parse_sudo_message('   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id') == ('alice', 'root', None)
    assert parse_sudo_message('ops : TTY=unknown ; PWD=/ ; USER=root ; COMMAND=/bin/sh -c echo BECOME-SUCCESS-x ; /usr/bin/python3') == \
        ('ops', 'root', None)
    assert parse_sudo_message('alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/id') == \
        ('alice', 'root', '3 incorrect password attempts')
    assert parse_sudo_message('bob : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/id')[2] == 'user NOT in sudoers'
    assert parse_sudo_message('pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)') is None
    pam = 'pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice'
    assert parse_sudo_message(pam) is None


def test_sudo_check():
    ok_lines = ['alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/id'] * 2 + ['ops : TTY=unknown ; PWD=/ ; USER=postgres ; COMMAND=/bin/true']
    scanner = scan([entry(m, identifier='sudo', pid=str(i)) for i, m in enumerate(ok_lines)])
    check = sudo_check(scanner)
    assert check['status'] == 'ok' and check['value'] == 3 and check['alert'] is None
    assert check['details']['users'] == {'alice': 2, 'ops': 1}
    assert check['details']['targets'] == {'root': 2, 'postgres': 1}
    scanner.feed(entry('bob : user NOT in sudoers ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh', identifier='sudo'))
    check = sudo_check(scanner)
    assert check['status'] == 'warning' and check['alert'] == 'security_event'
    assert check['value'] == 3 and check['details']['failures'] == 1 and check['details']['failed_users'] == {'bob': 1}
    assert 'bob' in check['message']


def test_sudo_line_from_other_identifier_is_ignored():
    scanner = scan([entry('alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/id', identifier='cron')])
    assert scanner.sudo_commands == 0 and scanner.entries == 1


def test_accounts_check():
    scanner = scan([])
    assert accounts_check(scanner)['status'] == 'ok'
    scanner = scan([
        entry('new group: name=bob, GID=1001', identifier='useradd'),
        entry('new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0', identifier='useradd'),
        entry('group added to /etc/group: name=devs, GID=1002', identifier='groupadd'),
        entry('new group: name=devs, GID=1002', identifier='groupadd'),
        entry("add 'bob' to group 'sudo'", identifier='usermod'),
        entry("add 'bob' to shadow group 'sudo'", identifier='usermod'),
    ])
    check = accounts_check(scanner)
    assert check['status'] == 'warning' and check['alert'] == 'security_event'
    assert check['value'] == 2
    assert check['details'] == {'users': ['bob'], 'groups': ['devs'], 'group_additions': ['bob -> sudo']}
    scanner = scan([entry("add 'ops' to group 'adm'", identifier='usermod')])
    check = accounts_check(scanner)
    assert check['status'] == 'warning' and check['value'] == 0


def test_journal_scanner_tracks_cursor_and_times_and_byte_messages():
    scanner = scan([entry('x', cursor='c1', usec='1715000000000000'),
                    {'MESSAGE': list(b'Invalid user \xffx from 192.0.2.1 port 1'), 'SYSLOG_IDENTIFIER': 'sshd', '_PID': '9',
                     '__CURSOR': 'c2', '__REALTIME_TIMESTAMP': '1715000060000000'}])
    assert scanner.entries == 2 and scanner.last_cursor == 'c2'
    assert usec_to_iso(scanner.first_usec) == '2024-05-06T12:53:20Z'
    assert usec_to_iso(scanner.last_usec) == '2024-05-06T12:54:20Z'
    assert scanner.ssh_summary()[0] == 1


def test_journal_command_and_line_parsing():
    cmd = journal_command('/usr/bin/journalctl', cursor='s=1;i=2')
    assert cmd[:3] == ['/usr/bin/journalctl', '-o', 'json']
    assert '--after-cursor=s=1;i=2' in cmd and not any(a.startswith('--since') for a in cmd)
    assert cmd.count('-t') == len(JOURNAL_IDENTIFIERS)
    cmd = journal_command('/usr/bin/journalctl', since=1715000000.7)
    assert '--since=@1715000000' in cmd
    assert parse_journal_line('{"MESSAGE": "x"}') == {'MESSAGE': 'x'}
    assert parse_journal_line('[1]') is None and parse_journal_line('-- cursor: x') is None


def test_journal_failed_checks_are_critical():
    checks = journal_failed_checks('boom')
    assert [c['name'] for c in checks] == ['ssh_auth_failures', 'sudo_use', 'new_accounts']
    assert all(c['status'] == 'critical' and 'boom' in c['message'] for c in checks)


# --------------------------------------------------------------------------
# access logs and incremental reading
# --------------------------------------------------------------------------

def line(status, ts='2024-05-06T12:00:00Z', **extra):
    return json.dumps(dict({'ts': ts, 'status': status, 'path': '/x'}, **extra)) + '\n'


class Lines:
    def __init__(self):
        self.seen = []

    def __call__(self, source, number, text):
        self.seen.append((source, number, text))


def test_read_file_increment_appends_and_partial_lines(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text(line(200) + line(500))
    got = Lines()
    cursor, info = read_file_increment(str(log), None, got)
    assert [n for _s, n, _t in got.seen] == [1, 2]
    assert cursor['offset'] == log.stat().st_size and cursor['line'] == 2 and cursor['inode'] == log.stat().st_ino
    assert info['bytes'] == log.stat().st_size and info['lines'] == 2 and not info['rotated']
    with log.open('a') as handle:
        handle.write(line(404) + '{"status": 2')  # the writer is in the middle of a line
    got = Lines()
    cursor2, info = read_file_increment(str(log), cursor, got)
    assert [n for _s, n, _t in got.seen] == [3]
    assert info['from_offset'] == cursor['offset'] and cursor2['line'] == 3
    with log.open('a') as handle:
        handle.write('00}\n')
    got = Lines()
    cursor3, info = read_file_increment(str(log), cursor2, got)
    assert got.seen == [(str(log), 4, '{"status": 200}')]
    got = Lines()
    cursor4, info = read_file_increment(str(log), cursor3, got)
    assert got.seen == [] and cursor4 == cursor3 and info['bytes'] == 0


def test_read_file_increment_rotation_finishes_old_file(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text(line(200))
    cursor, _info = read_file_increment(str(log), None, Lines())
    with log.open('a') as handle:
        handle.write(line(500))  # written after the last run, before the rotation
    os.rename(str(log), str(log) + '.1')
    log.write_text(line(201) + line(202))
    got = Lines()
    new, info = read_file_increment(str(log), cursor, got)
    assert info['rotated'] and not info['lost']
    assert [(s.endswith('.1'), n, json.loads(t)['status']) for s, n, t in got.seen] == [(True, 2, 500), (False, 1, 201), (False, 2, 202)]
    assert new['inode'] == log.stat().st_ino and new['offset'] == log.stat().st_size and new['line'] == 2
    assert info['lines'] == 3


def test_read_file_increment_rotation_without_old_file_is_lost(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text(line(200))
    cursor, _info = read_file_increment(str(log), None, Lines())
    os.unlink(str(log))
    (tmp_path / 'access.log.1').write_text(line(500) * 5)  # not the same inode: another file
    log.write_text(line(201))
    got = Lines()
    _new, info = read_file_increment(str(log), cursor, got)
    assert info['rotated'] and info['lost']
    assert [json.loads(t)['status'] for _s, _n, t in got.seen] == [201]


def test_read_file_increment_copytruncate(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text(line(200) + line(200))
    cursor, _info = read_file_increment(str(log), None, Lines())
    with log.open('a') as handle:
        handle.write(line(503))
    (tmp_path / 'access.log.1').write_text(log.read_text())  # copy ...
    log.write_text('')  # ... truncate
    with log.open('a') as handle:
        handle.write(line(204))
    got = Lines()
    _new, info = read_file_increment(str(log), cursor, got)
    assert info['rotated'] and not info['lost']
    assert [json.loads(t)['status'] for _s, _n, t in got.seen] == [503, 204]


def test_read_file_increment_missing_file_keeps_cursor(tmp_path):
    saved = {'inode': 1, 'dev': 2, 'offset': 3, 'line': 4}
    cursor, info = read_file_increment(str(tmp_path / 'nope.log'), saved, Lines())
    assert cursor == saved and info['missing']
    cursor, info = read_file_increment(str(tmp_path / 'nope.log'), None, Lines())
    assert cursor is None and info['missing']


def test_access_log_counter_counts_malformed():
    counter = AccessLogCounter()
    for text in [line(200), line(502), line('503'), 'not json', '[1, 2]', '{"status": "abc"}', '{"status": true}', '{"status": 999}', '{}']:
        counter.feed(AccessLogCounter.decode(text))
    assert (counter.requests, counter.errors_5xx, counter.malformed) == (3, 2, 6)


def test_parse_log_time():
    assert parse_log_time('2024-05-06T12:00:00Z') == 1714996800.0
    assert parse_log_time('2024-05-06T14:00:00+02:00') == 1714996800.0
    assert parse_log_time('2024-05-06T12:00:00') == 1714996800.0
    assert parse_log_time(1714996800) == 1714996800.0
    assert parse_log_time(1714996800000) == 1714996800.0
    assert parse_log_time('yesterday') is None and parse_log_time(None) is None and parse_log_time(True) is None


def test_scan_files_first_run_lookback_and_shared_paths(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text(line(500, ts='2024-05-01T00:00:00Z', email='old@example.com') + line(200, ts='2024-05-06T12:00:00Z')
                   + line(503, ts='2024-05-06T12:00:01Z', email='new@example.com') + 'garbage\n')
    text = tmp_path / 'app.log'
    text.write_text('card 4111 1111 1111 1111\n')
    counter, pii = AccessLogCounter(), PiiScanner()
    since = parse_log_time('2024-05-06T00:00:00Z')
    cursors, infos = scan_files([str(log)], [str(log), str(text)], {}, since, counter, pii)
    assert (counter.requests, counter.errors_5xx, counter.malformed) == (2, 1, 1)
    assert infos[str(log)]['skipped_before_lookback'] == 1
    assert pii.lines == 2 and pii.emails == 1 and pii.cards == 1
    assert {s['source'] for s in pii.samples} == {str(log), str(text)}
    assert [s['line'] for s in pii.samples if s['source'] == str(log)] == [3]
    assert set(cursors) == {str(log), str(text)}
    # second run: nothing new, the old line is not read again either
    counter, pii = AccessLogCounter(), PiiScanner()
    cursors2, infos = scan_files([str(log)], [str(log), str(text)], cursors, since, counter, pii)
    assert counter.requests == 0 and pii.lines == 0 and cursors2 == cursors


def test_app_5xx_check():
    counter = AccessLogCounter()
    counter.requests, counter.errors_5xx = 1000, 1
    check = app_5xx_check(counter, 0.1, 20, {}, ['/a'])
    assert check['status'] == 'ok' and check['value'] == 0.1  # equal is not exceeded
    counter.errors_5xx = 2
    check = app_5xx_check(counter, 0.1, 20, {}, ['/a'])
    assert check['status'] == 'critical' and check['alert'] == 'high_error_rate' and check['value'] == 0.2
    assert '2 5xx of 1000 requests' in check['message']
    counter.requests, counter.errors_5xx, counter.malformed = 10, 10, 3
    check = app_5xx_check(counter, 0.1, 20, {}, ['/a'])
    assert check['status'] == 'ok' and check['value'] == 100.0 and 'too few requests' in check['message']
    assert '3 malformed' in check['message'] and check['details']['malformed_lines'] == 3
    counter = AccessLogCounter()
    check = app_5xx_check(counter, 0.1, 20, {'/a': {'missing': True}}, ['/a'])
    assert check['status'] == 'ok' and 'no access log found (/a)' in check['message']


# --------------------------------------------------------------------------
# state file and streaming
# --------------------------------------------------------------------------

def test_write_and_load_state(tmp_path):
    path = tmp_path / 'lib' / 'dealerscope-ops' / 'log_scan.json'
    state = empty_state()
    state['journal']['cursor'] = 's=1'
    write_state(str(path), state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(str(path.parent)) == ['log_scan.json']  # no temporary file left
    loaded, problem = load_state(str(path))
    assert problem is None and loaded == state and path.read_text() == dump_state(state)
    path.write_text('{broken')
    loaded, problem = load_state(str(path))
    assert loaded is None and 'not valid JSON' in problem
    path.write_text('{"version": 99}')
    assert load_state(str(path))[0] is None
    assert load_state(str(tmp_path / 'missing.json')) == (None, None)


def test_write_state_keeps_existing_parent_mode(tmp_path):
    parent = tmp_path / 'shared'
    parent.mkdir()
    parent.chmod(0o755)
    write_state(str(parent / 'state.json'), empty_state())
    assert stat.S_IMODE(parent.stat().st_mode) == 0o755


def _script(tmp_path, body):
    script = tmp_path / 'emit'
    script.write_text('#!%s\n%s' % (sys.executable, body))
    script.chmod(0o755)
    return str(script)


def test_stream_command_bounded(tmp_path):
    script = _script(tmp_path, 'import sys\nfor i in range(100000):\n    sys.stdout.write("%d\\n" % i)\n')
    seen = []
    rc, _err, truncated = stream_command([script], seen.append, 5)
    assert truncated and rc is None
    assert seen == ['0\n', '1\n', '2\n', '3\n', '4\n']
    seen = []
    rc, err, truncated = stream_command([script], seen.append, 200000)
    assert rc == 0 and not truncated and len(seen) == 100000 and err == ''


def test_stream_command_failure(tmp_path):
    script = _script(tmp_path, 'import sys\nsys.stderr.write("Failed to seek to cursor\\n")\nsys.exit(1)\n')
    rc, err, truncated = stream_command([script], lambda text: None, 10)
    assert rc == 1 and 'Failed to seek' in err and not truncated


# A command that fills its stderr pipe (> 64 KiB) before it writes stdout, as journalctl does with a warning per
# damaged journal file. SIGALRM ends it after 20 s, so that a reader that deadlocks cannot hang the test run.
NOISY = r"""
import signal, sys
signal.alarm(20)
line = "Journal file /var/log/journal/x/system@0001.journal~ is truncated, ignoring file.\n"
for _ in range(%(stderr_bytes)d // len(line) + 1):
    sys.stderr.write(line)
sys.stderr.write("%(last)s\n")
sys.stderr.flush()
for i in range(%(lines)d):
    sys.stdout.write('{"__CURSOR": "s=x;i=%%x", "MESSAGE": "m%%d"}\n' %% (i, i))
sys.exit(%(rc)d)
"""


def _in_thread(function, timeout):
    """``function()``'s result, or a failure when it has not returned after ``timeout`` seconds (a deadlock)."""
    outcome = []

    def target():
        try:
            outcome.append(('return', function()))
        except BaseException as exc:  # pylint: disable=broad-except
            outcome.append(('raise', exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), 'still blocked after %.0f s: stdout is read while stderr fills its pipe (deadlock)' % timeout
    kind, value = outcome[0]
    if kind == 'raise':
        raise value
    return value


@pytest.mark.parametrize('stderr_bytes', [200 * 1024, 2 * 1024 * 1024])
def test_stream_command_drains_a_full_stderr_pipe(tmp_path, stderr_bytes):
    script = _script(tmp_path, NOISY % dict(stderr_bytes=stderr_bytes, last='the last warning', lines=50, rc=0))
    seen = []
    rc, err, truncated = _in_thread(lambda: stream_command([script], seen.append, 1000), timeout=10)
    assert rc == 0 and not truncated
    assert len(seen) == 50 and seen[0] == '{"__CURSOR": "s=x;i=0", "MESSAGE": "m0"}\n'
    assert err.endswith('the last warning\n')
    assert len(err.encode()) <= log_scan.STDERR_KEEP_BYTES  # only the end is kept
    assert err.startswith('Journal file ')  # whole lines only


def test_stream_command_full_stderr_pipe_with_failure_and_bound(tmp_path):
    script = _script(tmp_path, NOISY % dict(stderr_bytes=200 * 1024, last='Failed to seek to cursor: Invalid argument', lines=0, rc=1))
    rc, err, truncated = _in_thread(lambda: stream_command([script], lambda text: None, 10), timeout=10)
    assert rc == 1 and not truncated
    assert err.splitlines()[-1] == 'Failed to seek to cursor: Invalid argument'
    script = _script(tmp_path, NOISY % dict(stderr_bytes=200 * 1024, last='x', lines=100000, rc=0))
    seen = []
    rc, _err, truncated = _in_thread(lambda: stream_command([script], seen.append, 5), timeout=10)
    assert rc is None and truncated and len(seen) == 5


def test_stream_command_stops_the_process_when_on_line_raises(tmp_path):
    script = _script(tmp_path, NOISY % dict(stderr_bytes=200 * 1024, last='x', lines=100000, rc=0))

    def boom(text):
        raise RuntimeError('a bug in the scanner')

    with pytest.raises(RuntimeError, match='a bug in the scanner'):
        _in_thread(lambda: stream_command([script], boom, 1000), timeout=10)


def test_read_file_increment_inode_reuse_is_a_new_file(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text(line(200, path='/new-file') + line(201))
    saved = {'inode': log.stat().st_ino, 'head': 'not-this-file', 'offset': 10, 'line': 1}
    got = Lines()
    new, info = read_file_increment(str(log), saved, got)
    assert info['rotated'] and info['lost'] and info['from_offset'] == 0
    assert [n for _s, n, _t in got.seen] == [1, 2] and new['line'] == 2


def test_read_file_increment_ignores_device_number(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text(line(200))
    cursor, _info = read_file_increment(str(log), None, Lines())
    assert 'dev' not in cursor
    with log.open('a') as handle:
        handle.write(line(500))
    got = Lines()
    _new, info = read_file_increment(str(log), dict(cursor, dev=12345), got)  # a cursor written before a reboot
    assert not info['rotated'] and [n for _s, n, _t in got.seen] == [2]


def test_read_file_increment_head_known_only_once_the_first_line_is_complete(tmp_path):
    log = tmp_path / 'access.log'
    log.write_text('{"status": 2')
    cursor, info = read_file_increment(str(log), None, Lines())
    assert cursor['head'] is None and cursor['offset'] == 0 and info['lines'] == 0
    with log.open('a') as handle:
        handle.write('00}\n')
    got = Lines()
    cursor, info = read_file_increment(str(log), cursor, got)
    assert not info['rotated'] and got.seen == [(str(log), 1, '{"status": 200}')] and cursor['head']
