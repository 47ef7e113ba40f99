# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import collections
import fnmatch
import hashlib
import re
import stat
import struct

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils.sshd import (
    KEY_TYPES,
    addr_match_list,
    authorized_keys_paths,
    evaluate_access,
    key_file_problem,
    key_fingerprint,
    match_host_and_ip,
    match_pattern,
    match_pattern_list,
    match_user,
    parse_authorized_keys,
    parse_authorized_keys_entries,
    parse_public_key,
    parse_sshd_t,
)

# Real keys generated with ssh-keygen; fingerprints as printed by ``ssh-keygen -lf``.
ED25519 = 'AAAAC3NzaC1lZDI1NTE5AAAAICsXoRnf1nQamykUs5ST3PB1aMer/4mbBnT2gNb0u00V'
ED25519_FP = 'SHA256:SGCO/2cXoB+FGc/PnFZklPK1399oChoyneinkD2WLk0'
RSA = ('AAAAB3NzaC1yc2EAAAADAQABAAAAgQDD8nV8IvHDXoOrDNrQfhYLJqdk3rBJA9JAGTw5kd+TIkBL/AO8VMd7wJV+vYTT/8wtT4MVczgtdb9crcue84DaBIw6H9'
       'qrKdDJ86JCp6XJXMbVIEVXuZbV8OQ3smBLm5Ioa4clqLhzFSSYiAkhCEDAgOshk1ZpwvI+nxpF+nDRCw==')
RSA_FP = 'SHA256:B7vlNkteImxqmXkWMBxsQdzkwIKDVpKMTzeFg+gPe5c'
ECDSA = ('AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDrs+8FJfm1uQuvdAZBeD+Z99cLGN/YpH5UhijOx8e22BVJt1DQ6uF3gx0XSZGCNy3DVN3'
         'VyOat4hq0rqmY5+jI=')
ECDSA_FP = 'SHA256:vrZOC77eo+YocUyAx5duZ2Ry4APsupulD0lcTTgn5Uc'
SK_ED25519 = 'AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fAAAABHNzaDo='
SK_ED25519_FP = 'SHA256:/p0CbeE3dk2SyW1OXXsThGc12ezDVD8eGw2/vtztDfk'
ED25519_CERT = (
    'AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIBKfTX024DOTOixD6/dMFPJg7bY8llua94wJIMwk0zm7AAAAICsXoRnf1nQamykUs5ST3PB1aMer'
    '/4mbBnT2gNb0u00VAAAAAAAAAAAAAAABAAAAAmlkAAAABwAAAANvcHMAAAAAAAAAAP//////////AAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAA'
    'ABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMA'
    'AAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgtsKAtS4qhcxUnteoA7wBo3Hs6908fDngTycE3yBZ810AAABTAAAAC3NzaC1lZDI1NTE5AAAAQEezBZeEouacgMSA'
    '0FmzV+iE6y7bxLp2Vc2sSGDHGlM7vJqRKVIYmW8/9VtZeLzHRPwOZDQhK1yMJed8xyUWxgk='
)

ED25519_LINE = 'ssh-ed25519 %s ops@controller' % ED25519
RSA_LINE = 'ssh-rsa %s rsa-key' % RSA

# Abbreviated real ``sshd -T`` output (OpenSSH 9.2, Debian 12 defaults).
SSHD_T_DEBIAN = """\
port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
maxauthtries 6
permitrootlogin without-password
pubkeyauthentication yes
passwordauthentication yes
kbdinteractiveauthentication no
strictmodes yes
usedns no
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
hostkey /etc/ssh/ssh_host_rsa_key
hostkey /etc/ssh/ssh_host_ecdsa_key
hostkey /etc/ssh/ssh_host_ed25519_key
acceptenv LANG
acceptenv LC_*
authenticationmethods any
subsystem sftp /usr/lib/openssh/sftp-server
authorizedkeyscommand none
pubkeyacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,\
rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,\
sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
"""

FAST = settings(max_examples=200, deadline=None)


def _blob(keytype, payload=b'\x00' * 32):
    data = keytype.encode('ascii')
    return struct.pack('>I', len(data)) + data + struct.pack('>I', len(payload)) + payload


def _b64(keytype, payload=b'\x00' * 32):
    return base64.b64encode(_blob(keytype, payload)).decode('ascii')


# ---------------------------------------------------------------------------
# parse_sshd_t
# ---------------------------------------------------------------------------

class TestParseSshdT:
    def test_real_output(self):
        parsed = parse_sshd_t(SSHD_T_DEBIAN)
        assert parsed['port'] == ['22']
        assert parsed['listenaddress'] == ['[::]:22', '0.0.0.0:22']
        assert parsed['permitrootlogin'] == 'without-password'
        assert parsed['pubkeyauthentication'] == 'yes'
        assert parsed['maxauthtries'] == '6'
        assert parsed['authorizedkeysfile'] == ['.ssh/authorized_keys', '.ssh/authorized_keys2']
        assert parsed['hostkey'] == ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_ecdsa_key', '/etc/ssh/ssh_host_ed25519_key']
        assert parsed['acceptenv'] == ['LANG', 'LC_*']
        assert parsed['authenticationmethods'] == ['any']
        assert parsed['subsystem'] == ['sftp /usr/lib/openssh/sftp-server']
        assert 'allowusers' not in parsed

    def test_repeated_access_keywords_accumulate(self):
        text = 'allowusers alice\nallowusers bob@10.0.0.0/8\ndenyusers eve\nallowgroups wheel\nallowgroups adm\ndenygroups nogo\n'
        parsed = parse_sshd_t(text)
        assert parsed['allowusers'] == ['alice', 'bob@10.0.0.0/8']
        assert parsed['denyusers'] == ['eve']
        assert parsed['allowgroups'] == ['wheel', 'adm']
        assert parsed['denygroups'] == ['nogo']

    def test_authentication_methods_chains(self):
        parsed = parse_sshd_t('authenticationmethods publickey,password publickey\n')
        assert parsed['authenticationmethods'] == ['publickey,password', 'publickey']

    def test_keywords_lowercased_and_whitespace(self):
        parsed = parse_sshd_t('  PermitRootLogin   no  \r\n\n\tPubkeyAuthentication\tyes\nbanner\n')
        assert parsed == {'permitrootlogin': 'no', 'pubkeyauthentication': 'yes', 'banner': ''}

    def test_scalar_last_value_wins(self):
        assert parse_sshd_t('maxauthtries 6\nmaxauthtries 3\n')['maxauthtries'] == '3'

    def test_multiple_ports(self):
        assert parse_sshd_t('port 22\nport 2222\n')['port'] == ['22', '2222']

    @FAST
    @given(st.lists(st.from_regex(r'[a-z_][a-z0-9_.-]{0,15}(@[0-9.*/]{1,18})?', fullmatch=True), max_size=8))
    def test_allowusers_roundtrip(self, users):
        text = 'pubkeyauthentication yes\n' + ''.join('allowusers %s\n' % u for u in users)
        assert parse_sshd_t(text).get('allowusers', []) == users


# ---------------------------------------------------------------------------
# match_pattern / match_pattern_list
# ---------------------------------------------------------------------------

class TestMatchPattern:
    @pytest.mark.parametrize('name, pattern, expected', [
        ('root', 'root', True),
        ('root', 'r*', True),
        ('root', 'r?ot', True),
        ('root', 'r?t', False),
        ('root', 'Root', False),
        ('root', '*', True),
        ('', '*', True),
        ('', '', True),
        ('a', '', False),
        ('', '?', False),
        ('abc', 'a*c*', True),
        ('abc', '*b', False),
        ('abcbc', '*bc', True),
        ('deploy', 'dep*y', True),
        ('deploy', 'dep*x', False),
        ('a[b]', 'a[b]', True),
        ('ab', 'a[b]', False),
        ('10.0.0.1', '10.0.*', True),
        ('!root', '!root', True),
    ])
    def test_table(self, name, pattern, expected):
        assert match_pattern(name, pattern) is expected

    def test_no_exponential_backtracking(self):
        # A naive recursive matcher takes ages here.
        assert match_pattern('a' * 60, '*a' * 30 + '*b') is False
        assert match_pattern('a' * 60 + 'b', '*a' * 30 + '*b') is True

    @FAST
    @given(st.text(alphabet='ab.-', max_size=12), st.text(alphabet='ab.-*?', max_size=8))
    def test_agrees_with_fnmatch(self, name, pattern):
        assert match_pattern(name, pattern) == fnmatch.fnmatchcase(name, pattern)


class TestMatchPatternList:
    @pytest.mark.parametrize('name, patterns, expected', [
        ('alice', 'alice,bob', 1),
        ('bob', 'alice,bob', 1),
        ('carol', 'alice,bob', 0),
        ('root', '!root,*', -1),
        ('root', '*,!root', -1),
        ('alice', '*,!root', 1),
        ('alice', '!root', 0),
        ('', '', 1),
        ('a', '', 0),
        ('x', ['a', 'x*'], 1),
        ('x', ['*', '!x'], -1),
    ])
    def test_table(self, name, patterns, expected):
        assert match_pattern_list(name, patterns) == expected

    def test_dolower_lowercases_patterns_only(self):
        assert match_pattern_list('host.example.com', '*.EXAMPLE.COM', dolower=True) == 1
        assert match_pattern_list('host.example.com', '*.EXAMPLE.COM') == 0
        assert match_pattern_list('HOST', 'host', dolower=True) == 0

    @FAST
    @given(st.data(), st.text(alphabet='abc', max_size=6),
           st.lists(st.text(alphabet='abc*?', max_size=5), max_size=4), st.integers(min_value=0, max_value=4))
    def test_matching_negation_always_wins(self, data, name, others, position):
        # Build a pattern that matches ``name``: each character kept, turned into '?', or swallowed by a '*'.
        pieces = [data.draw(st.sampled_from([char, '?', '*'])) for char in name]
        negated = ''.join(pieces) + data.draw(st.sampled_from(['', '*']))
        assert match_pattern(name, negated)
        patterns = list(others)
        patterns.insert(min(position, len(patterns)), '!' + negated)
        assert match_pattern_list(name, ','.join(patterns)) == -1

    @FAST
    @given(st.text(alphabet='abc', max_size=6), st.lists(st.text(alphabet='abc*?', max_size=5), min_size=1, max_size=5))
    def test_without_negation_is_any(self, name, patterns):
        expected = 1 if any(fnmatch.fnmatchcase(name, p) for p in patterns) else 0
        assert match_pattern_list(name, ','.join(patterns)) == expected


# ---------------------------------------------------------------------------
# addresses and users
# ---------------------------------------------------------------------------

class TestAddrMatch:
    @pytest.mark.parametrize('addr, patterns, expected', [
        ('10.1.2.3', '10.0.0.0/8', 1),
        ('11.1.2.3', '10.0.0.0/8', 0),
        ('10.1.2.3', '!10.1.0.0/16,10.0.0.0/8', -1),
        ('10.2.2.3', '!10.1.0.0/16,10.0.0.0/8', 1),
        ('10.1.2.3', '10.1.2.3', 1),
        ('10.1.2.3', '10.1.2.4', 0),
        ('192.168.7.9', '192.168.*', 1),
        ('192.168.7.9', '10.*,192.168.?.9', 1),
        ('2001:db8::5', '2001:db8::/32', 1),
        ('2001:db8::5', '10.0.0.0/8', 0),
        ('::ffff:10.1.2.3', '10.0.0.0/8', 1),
        ('10.1.2.3', '10.0.0.1/8', -2),
        ('10.1.2.3', '10.0.0.0/8,', -2),
        ('not-an-ip', '10.0.0.0/8', 0),
    ])
    def test_addr_match_list(self, addr, patterns, expected):
        assert addr_match_list(addr, patterns) == expected

    def test_host_and_ip(self):
        assert match_host_and_ip('ws.example.com', '192.0.2.1', '*.example.com') == 1
        assert match_host_and_ip('ws.example.com', '192.0.2.1', '192.0.2.0/24') == 1
        assert match_host_and_ip('ws.example.com', '192.0.2.1', '*.example.com,!192.0.2.1') == 0
        assert match_host_and_ip('ws.example.com', '192.0.2.1', '!ws.*,192.0.2.0/24') == 0
        assert match_host_and_ip('WS.Example.COM', '192.0.2.1', '*.example.com') == 1
        assert match_host_and_ip(None, '192.0.2.1', '192.0.2.0/24') == 0
        assert match_host_and_ip('h', '192.0.2.1', '192.0.2.1/8') == -1


class TestMatchUser:
    def test_plain_user(self):
        assert match_user('deploy', 'deploy') == 1
        assert match_user('deploy', 'dep*') == 1
        assert match_user('deploy', 'admin') == 0

    def test_user_part_is_not_a_list(self):
        # OpenSSH uses match_pattern() for the user part: commas and '!' are literal.
        assert match_user('deploy', 'admin,deploy') == 0
        assert match_user('deploy', '!root') == 0

    def test_user_at_cidr(self):
        assert match_user('bob', 'bob@10.0.0.0/8', addr='10.9.8.7') == 1
        assert match_user('bob', 'bob@10.0.0.0/8', addr='192.0.2.1') == 0
        assert match_user('alice', 'bob@10.0.0.0/8', addr='10.9.8.7') == 0

    def test_user_at_hostname(self):
        assert match_user('bob', 'bob@*.example.com', host='ws.example.com', addr='192.0.2.1') == 1
        assert match_user('bob', 'bob@*.example.com', host='ws.example.org', addr='192.0.2.1') == 0
        assert match_user('bob', 'bob@*.example.com', host='ws.example.com') == 1

    def test_unknown_host_is_none(self):
        assert match_user('bob', 'bob@10.0.0.0/8') is None
        assert match_user('alice', 'bob@10.0.0.0/8') == 0

    def test_invalid_host_part(self):
        assert match_user('bob', 'bob@10.0.0.1/8', addr='10.0.0.1') == -1


# ---------------------------------------------------------------------------
# authorized_keys_paths
# ---------------------------------------------------------------------------

class TestAuthorizedKeysPaths:
    def test_default_relative_tokens(self):
        assert authorized_keys_paths(['.ssh/authorized_keys', '.ssh/authorized_keys2'], 'deploy', '/home/deploy') == [
            '/home/deploy/.ssh/authorized_keys', '/home/deploy/.ssh/authorized_keys2']

    def test_escapes(self):
        tokens = ['%h/.ssh/keys', '/etc/ssh/keys/%u', '/var/keys/%U', '/odd/100%%/%u']
        assert authorized_keys_paths(tokens, 'deploy', '/srv/deploy', 1001) == [
            '/srv/deploy/.ssh/keys', '/etc/ssh/keys/deploy', '/var/keys/1001', '/odd/100%/deploy']

    def test_relative_after_expansion_and_string_input(self):
        assert authorized_keys_paths('%u/keys none', 'deploy', '/home/deploy') == ['/home/deploy/deploy/keys']

    def test_none(self):
        assert authorized_keys_paths(['none'], 'deploy', '/home/deploy') == []
        assert authorized_keys_paths([], 'deploy', '/home/deploy') == []

    def test_duplicates_removed(self):
        assert authorized_keys_paths(['%h/.ssh/authorized_keys', '.ssh/authorized_keys'], 'u', '/home/u') == ['/home/u/.ssh/authorized_keys']

    @pytest.mark.parametrize('token', ['/keys/%x', '/keys/%', '/keys/%U'])
    def test_invalid(self, token):
        with pytest.raises(ValueError, match='AuthorizedKeysFile'):
            authorized_keys_paths([token], 'u', '/home/u')

    @FAST
    @given(st.from_regex(r'[A-Za-z0-9._-][A-Za-z0-9._/-]{0,30}', fullmatch=True), st.from_regex(r'/[a-z0-9/]{0,20}', fullmatch=True))
    def test_relative_tokens_are_below_home(self, token, home):
        assume(token.lower() != 'none')
        assert authorized_keys_paths([token], 'u', home) == [home + '/' + token]


# ---------------------------------------------------------------------------
# parse_authorized_keys / key_fingerprint
# ---------------------------------------------------------------------------

class TestParseAuthorizedKeys:
    def test_all_key_types(self):
        text = '\n'.join([
            '# managed by ansible',
            '',
            '   ',
            ED25519_LINE,
            RSA_LINE,
            'ecdsa-sha2-nistp256 %s ecdsa key with spaces' % ECDSA,
            'sk-ssh-ed25519@openssh.com %s' % SK_ED25519,
            'ssh-ed25519-cert-v01@openssh.com %s cert' % ED25519_CERT,
        ])
        assert parse_authorized_keys(text) == [
            ('ssh-ed25519', ED25519),
            ('ssh-rsa', RSA),
            ('ecdsa-sha2-nistp256', ECDSA),
            ('sk-ssh-ed25519@openssh.com', SK_ED25519),
            ('ssh-ed25519-cert-v01@openssh.com', ED25519_CERT),
        ]

    def test_options_with_quotes_spaces_and_commas(self):
        text = ('command="echo a b",no-pty %s\n'
                'from="10.0.0.0/8,!10.1.0.0/16",restrict ssh-rsa %s c\n'
                'environment="A=\\"x y\\"",no-agent-forwarding ecdsa-sha2-nistp256 %s\n') % (ED25519_LINE, RSA, ECDSA)
        entries = parse_authorized_keys_entries(text)
        assert [(e['keytype'], e['key']) for e in entries] == [('ssh-ed25519', ED25519), ('ssh-rsa', RSA), ('ecdsa-sha2-nistp256', ECDSA)]
        assert entries[0]['options'] == [('command', 'echo a b'), ('no-pty', None)]
        assert entries[0]['comment'] == 'ops@controller'
        assert entries[1]['options'] == [('from', '10.0.0.0/8,!10.1.0.0/16'), ('restrict', None)]
        assert entries[2]['options'] == [('environment', 'A="x y"'), ('no-agent-forwarding', None)]

    def test_invalid_lines_skipped(self):
        text = '\n'.join([
            'ssh-ed25519 not-base64!!! comment',                 # bad base64
            'ssh-rsa %s wrong embedded type' % ED25519,          # blob says ssh-ed25519
            'ssh-foo %s unknown type' % ED25519,
            'command="unterminated %s' % ED25519_LINE,          # unterminated quote
            'ssh-ed25519',                                       # no key
            'just some text',
            ED25519_LINE + '\r',
        ])
        assert parse_authorized_keys(text) == [('ssh-ed25519', ED25519)]

    def test_empty_and_none(self):
        assert parse_authorized_keys('') == []
        assert parse_authorized_keys(None) == []
        assert parse_authorized_keys('# only a comment\n\n') == []

    def test_parse_public_key(self):
        assert parse_public_key(ED25519_LINE) == ('ssh-ed25519', ED25519)
        with pytest.raises(ValueError) as exc:
            parse_public_key('ssh-ed25519 AAAAbroken')
        assert 'AAAAbroken' not in str(exc.value)
        with pytest.raises(ValueError):
            parse_public_key(ED25519_LINE + '\n' + RSA_LINE)

    def test_key_types_cover_certs_sk_and_ecdsa(self):
        for name in ('ssh-ed25519-cert-v01@openssh.com', 'sk-ssh-ed25519-cert-v01@openssh.com',
                     'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com', 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
                     'ssh-rsa-cert-v01@openssh.com', 'ecdsa-sha2-nistp384', 'sk-ecdsa-sha2-nistp256@openssh.com'):
            assert name in KEY_TYPES

    @FAST
    @given(
        keytype=st.sampled_from(sorted(KEY_TYPES)),
        payload=st.binary(min_size=1, max_size=64),
        options=st.lists(st.one_of(
            st.sampled_from(['no-pty', 'restrict', 'no-port-forwarding', 'cert-authority']),
            st.text(alphabet='abc ,=!/*', max_size=12).map(lambda v: 'command="%s"' % v),
            st.text(alphabet='0123456789./,!', max_size=12).map(lambda v: 'from="%s"' % v),
        ), max_size=4),
        comment=st.text(alphabet=st.characters(blacklist_categories=('Cc', 'Cs', 'Zl', 'Zp')), max_size=30),
    )
    def test_finds_key_regardless_of_options_and_comment(self, keytype, payload, options, comment):
        b64 = _b64(keytype, payload)
        line = ' '.join(p for p in (','.join(options), keytype, b64, comment) if p)
        assert parse_authorized_keys('# header\n' + line + '\n') == [(keytype, b64)]


class TestFingerprint:
    @pytest.mark.parametrize('b64, expected', [
        (ED25519, ED25519_FP),
        (RSA, RSA_FP),
        (ECDSA, ECDSA_FP),
        (SK_ED25519, SK_ED25519_FP),
    ])
    def test_matches_ssh_keygen(self, b64, expected):
        assert key_fingerprint(b64) == expected

    def test_invalid(self):
        with pytest.raises(ValueError):
            key_fingerprint('not base64 at all!')

    @FAST
    @given(st.binary(max_size=300))
    def test_format(self, blob):
        fingerprint = key_fingerprint(base64.b64encode(blob).decode('ascii'))
        assert re.match(r'^SHA256:[A-Za-z0-9+/]{43}$', fingerprint)
        assert base64.b64decode(fingerprint[7:] + '=') == hashlib.sha256(blob).digest()


# ---------------------------------------------------------------------------
# key_file_problem
# ---------------------------------------------------------------------------

FakeStat = collections.namedtuple('FakeStat', 'st_mode st_uid st_gid')


def _fs(raw=None):
    files = {
        '/': FakeStat(stat.S_IFDIR | 0o755, 0, 0),
        '/home': FakeStat(stat.S_IFDIR | 0o755, 0, 0),
        '/home/u': FakeStat(stat.S_IFDIR | 0o750, 1000, 1000),
        '/home/u/.ssh': FakeStat(stat.S_IFDIR | 0o700, 1000, 1000),
        '/home/u/.ssh/authorized_keys': FakeStat(stat.S_IFREG | 0o600, 1000, 1000),
    }
    files.update(raw or {})

    def fake_stat(path):
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]
    return fake_stat


def _problem(files, path='/home/u/.ssh/authorized_keys', uid=1000, gids=(1000,), strict=True):
    return key_file_problem(path, uid, list(gids), '/home/u', strict_modes=strict, stat_func=files, realpath_func=lambda p: p)


class TestKeyFileProblem:
    def test_good_layout(self):
        assert _problem(_fs()) is None

    def test_missing_file_is_not_a_problem_here(self):
        assert _problem(_fs(), path='/home/u/.ssh/authorized_keys2') is None

    def test_group_writable_ssh_dir(self):
        files = _fs(raw={'/home/u/.ssh': FakeStat(stat.S_IFDIR | 0o770, 1000, 1000)})
        assert 'bad ownership or modes for directory /home/u/.ssh' in _problem(files)
        assert 'StrictModes' in _problem(files)
        assert _problem(files, strict=False) is None

    def test_world_writable_file(self):
        files = _fs(raw={'/home/u/.ssh/authorized_keys': FakeStat(stat.S_IFREG | 0o666, 1000, 1000)})
        assert 'bad ownership or modes for file' in _problem(files)

    def test_file_owned_by_other_user(self):
        files = _fs(raw={'/home/u/.ssh/authorized_keys': FakeStat(stat.S_IFREG | 0o644, 1001, 1000)})
        assert 'bad ownership' in _problem(files)

    def test_home_writable_by_group(self):
        files = _fs(raw={'/home/u': FakeStat(stat.S_IFDIR | 0o775, 1000, 1000)})
        assert 'directory /home/u ' in _problem(files)

    def test_above_home_not_checked_for_strict_modes(self):
        files = _fs(raw={'/home': FakeStat(stat.S_IFDIR | 0o1777, 0, 0)})
        assert _problem(files) is None

    def test_root_owned_unreadable_file(self):
        files = _fs(raw={'/home/u/.ssh/authorized_keys': FakeStat(stat.S_IFREG | 0o600, 0, 0)})
        assert 'not readable by the user' in _problem(files)
        assert _problem(files, uid=0, strict=False) is None  # root reads anything

    def test_group_readable_file(self):
        files = _fs(raw={'/etc/keys': FakeStat(stat.S_IFDIR | 0o755, 0, 0),
                         '/etc': FakeStat(stat.S_IFDIR | 0o755, 0, 0),
                         '/etc/keys/u': FakeStat(stat.S_IFREG | 0o640, 0, 1000)})
        assert _problem(files, path='/etc/keys/u') is None
        assert 'not readable' in _problem(files, path='/etc/keys/u', gids=(2000,))

    def test_directory_not_searchable(self):
        files = _fs(raw={'/home/u/.ssh': FakeStat(stat.S_IFDIR | 0o700, 0, 0)})
        assert 'not searchable' in _problem(files)

    def test_not_a_regular_file(self):
        files = _fs(raw={'/home/u/.ssh/authorized_keys': FakeStat(stat.S_IFDIR | 0o700, 1000, 1000)})
        assert 'not a regular file' in _problem(files)


# ---------------------------------------------------------------------------
# evaluate_access
# ---------------------------------------------------------------------------

HOME = '/home/deploy'
AK = HOME + '/.ssh/authorized_keys'
AK2 = HOME + '/.ssh/authorized_keys2'


def _effective(**overrides):
    effective = parse_sshd_t(SSHD_T_DEBIAN)
    for key, value in overrides.items():
        if value is None:
            effective.pop(key, None)
        else:
            effective[key] = value
    return effective


def _evaluate(effective=None, user='deploy', uid=1000, groups=('deploy',), keys=None, public_keys=None, **kwargs):
    if keys is None:
        keys = {AK: ED25519_LINE + '\n', AK2: None}
    return evaluate_access(effective if effective is not None else _effective(), user, uid, HOME, list(groups), keys,
                           public_keys or [], **kwargs)


def _text(result):
    return '\n'.join(result['reasons'] + result['warnings'])


class TestEvaluateAccess:
    def test_allowed_defaults(self):
        result = _evaluate()
        assert result['can_login'] is True
        assert result['reasons'] == []
        assert result['warnings'] == []
        assert result['authorized_key_files'] == [AK, AK2]
        assert result['matched_fingerprints'] == [ED25519_FP]

    def test_result_keys(self):
        assert set(_evaluate()) == {'can_login', 'reasons', 'warnings', 'authorized_key_files', 'matched_fingerprints'}

    def test_pubkey_disabled(self):
        result = _evaluate(_effective(pubkeyauthentication='no', passwordauthentication='yes'))
        assert result['can_login'] is False
        assert len(result['reasons']) == 1
        assert 'PubkeyAuthentication' in result['reasons'][0]

    @pytest.mark.parametrize('value', ['yes', 'prohibit-password', 'without-password'])
    def test_root_key_login_allowed(self, value):
        result = _evaluate(_effective(permitrootlogin=value), user='root', uid=0)
        assert result['can_login'] is True
        assert result['warnings'] == []

    def test_root_forbidden(self):
        result = _evaluate(_effective(permitrootlogin='no'), user='root', uid=0)
        assert result['can_login'] is False
        assert any('PermitRootLogin' in r for r in result['reasons'])

    def test_uid_zero_alias_is_root(self):
        result = _evaluate(_effective(permitrootlogin='no'), user='toor', uid=0)
        assert result['can_login'] is False

    def test_non_root_ignores_permitrootlogin(self):
        assert _evaluate(_effective(permitrootlogin='no'))['can_login'] is True

    def test_root_forced_commands_only_warns(self):
        result = _evaluate(_effective(permitrootlogin='forced-commands-only'), user='root', uid=0)
        assert result['can_login'] is True
        assert any('forced-commands-only' in w and 'PermitRootLogin' in w for w in result['warnings'])

    def test_deny_users(self):
        result = _evaluate(_effective(denyusers=['eve', 'dep*']))
        assert result['can_login'] is False
        assert "DenyUsers entry 'dep*'" in result['reasons'][0]
        assert _evaluate(_effective(denyusers=['eve']))['can_login'] is True

    def test_deny_users_unknown_host_counts_as_deny(self):
        result = _evaluate(_effective(denyusers=['deploy@10.0.0.0/8']))
        assert result['can_login'] is False
        assert 'DenyUsers' in result['reasons'][0]
        assert _evaluate(_effective(denyusers=['deploy@10.0.0.0/8']), client_addr='192.0.2.4')['can_login'] is True
        assert _evaluate(_effective(denyusers=['deploy@10.0.0.0/8']), client_addr='10.0.0.4')['can_login'] is False

    def test_allow_users_no_match(self):
        result = _evaluate(_effective(allowusers=['alice', 'bob']))
        assert result['can_login'] is False
        assert 'AllowUsers' in result['reasons'][0]
        assert 'alice bob' in result['reasons'][0]

    def test_allow_users_match(self):
        assert _evaluate(_effective(allowusers=['alice', 'dep*']))['can_login'] is True

    def test_allow_users_unknown_host_allows_with_warning(self):
        result = _evaluate(_effective(allowusers=['deploy@10.0.0.0/8']))
        assert result['can_login'] is True
        assert any('AllowUsers' in w for w in result['warnings'])

    def test_allow_users_host_checked_when_known(self):
        assert _evaluate(_effective(allowusers=['deploy@10.0.0.0/8']), client_addr='10.3.3.3')['can_login'] is True
        result = _evaluate(_effective(allowusers=['deploy@10.0.0.0/8']), client_addr='192.0.2.4')
        assert result['can_login'] is False
        assert 'AllowUsers' in result['reasons'][0]

    def test_usedns_no_matches_hostnames_against_the_address(self):
        effective = _effective(allowusers=['deploy@*.example.com'])
        assert _evaluate(effective, client_addr='192.0.2.4', client_host='ws.example.com')['can_login'] is False
        effective['usedns'] = 'yes'
        assert _evaluate(effective, client_addr='192.0.2.4', client_host='ws.example.com')['can_login'] is True

    def test_deny_groups(self):
        result = _evaluate(_effective(denygroups=['nologin', 'sys*']), groups=('deploy', 'sysops'))
        assert result['can_login'] is False
        assert 'DenyGroups' in result['reasons'][0]
        assert 'sysops' in result['reasons'][0]

    def test_allow_groups(self):
        assert _evaluate(_effective(allowgroups=['ssh-users']), groups=('deploy', 'ssh-users'))['can_login'] is True
        result = _evaluate(_effective(allowgroups=['ssh-users', 'wheel']), groups=('deploy',))
        assert result['can_login'] is False
        assert 'AllowGroups' in result['reasons'][0]

    @pytest.mark.parametrize('methods, allowed', [
        (['any'], True),
        (['publickey'], True),
        (['publickey,password', 'publickey'], True),
        (['publickey,password'], False),
        (['publickey,keyboard-interactive'], False),
        (['password'], False),
        (['publickey,publickey'], False),
    ])
    def test_authentication_methods(self, methods, allowed):
        result = _evaluate(_effective(authenticationmethods=methods))
        assert result['can_login'] is allowed
        if not allowed:
            assert 'AuthenticationMethods' in result['reasons'][0]

    def test_no_key_files(self):
        result = _evaluate(keys={AK: None, AK2: None})
        assert result['can_login'] is False
        assert 'authorizedkeysfile' in result['reasons'][0].lower()
        assert AK in result['reasons'][0]

    def test_empty_key_file(self):
        result = _evaluate(keys={AK: '# nothing here\n', AK2: None})
        assert result['can_login'] is False
        assert 'contains no valid keys' in result['reasons'][0]

    def test_second_file_is_enough(self):
        result = _evaluate(keys={AK: None, AK2: RSA_LINE})
        assert result['can_login'] is True
        assert result['matched_fingerprints'] == [RSA_FP]

    def test_authorized_keys_file_none(self):
        result = _evaluate(_effective(authorizedkeysfile=['none']), keys={})
        assert result['can_login'] is False
        assert result['authorized_key_files'] == []
        assert 'authorizedkeysfile' in result['reasons'][0].lower()

    def test_authorized_keys_command_only_warns(self):
        result = _evaluate(_effective(authorizedkeysfile=['none'], authorizedkeyscommand='/usr/bin/sss_ssh_authorizedkeys'), keys={})
        assert result['can_login'] is True
        assert any('AuthorizedKeysCommand' in w for w in result['warnings'])

    def test_custom_paths_are_expanded(self):
        effective = _effective(authorizedkeysfile=['/etc/ssh/keys/%u', '%h/.ssh/k_%U'])
        result = _evaluate(effective, keys={'/etc/ssh/keys/deploy': ED25519_LINE})
        assert result['authorized_key_files'] == ['/etc/ssh/keys/deploy', HOME + '/.ssh/k_1000']
        assert result['can_login'] is True

    def test_missing_authorizedkeysfile_uses_default(self):
        assert _evaluate(_effective(authorizedkeysfile=None))['authorized_key_files'] == [AK, AK2]

    def test_bad_escape(self):
        result = _evaluate(_effective(authorizedkeysfile=['/keys/%q']), keys={})
        assert result['can_login'] is False
        assert len(result['reasons']) == 1
        assert 'AuthorizedKeysFile' in result['reasons'][0]

    def test_expected_key_present(self):
        keys = {AK: RSA_LINE + '\nno-pty ' + ED25519_LINE + '\n', AK2: None}
        result = _evaluate(keys=keys, public_keys=[ED25519_LINE.replace('ops@controller', 'other comment')])
        assert result['can_login'] is True
        assert result['matched_fingerprints'] == [ED25519_FP]

    def test_one_of_several_expected_keys_is_enough(self):
        result = _evaluate(public_keys=[RSA_LINE, ED25519_LINE])
        assert result['can_login'] is True
        assert result['matched_fingerprints'] == [ED25519_FP]

    def test_expected_key_missing(self):
        result = _evaluate(keys={AK: RSA_LINE, AK2: None}, public_keys=[ED25519_LINE])
        assert result['can_login'] is False
        assert ED25519_FP in result['reasons'][0]
        assert 'authorizedkeysfile' in result['reasons'][0].lower()
        assert ED25519 not in _text(result)
        assert RSA not in _text(result)
        assert result['matched_fingerprints'] == []

    def test_invalid_expected_key_raises_without_material(self):
        with pytest.raises(ValueError) as exc:
            _evaluate(public_keys=['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEbroken'])
        assert 'public_keys[0]' in str(exc.value)
        assert 'AAAAC3Nza' not in str(exc.value)

    def test_file_problem_makes_keys_unusable(self):
        result = _evaluate(key_file_problems={AK: 'bad ownership or modes for directory /home/deploy/.ssh (StrictModes)'})
        assert result['can_login'] is False
        assert 'StrictModes' in result['reasons'][0]

    def test_cert_authority_entry_is_not_a_login_key(self):
        result = _evaluate(keys={AK: 'cert-authority ' + ED25519_LINE, AK2: None}, public_keys=[ED25519_LINE])
        assert result['can_login'] is False
        assert 'cert-authority' in result['reasons'][0]
        assert _evaluate(keys={AK: 'cert-authority ' + ED25519_LINE, AK2: None})['can_login'] is False

    def test_pubkey_accepted_algorithms(self):
        keys = {AK: RSA_LINE, AK2: None}
        result = _evaluate(_effective(pubkeyacceptedalgorithms='ssh-ed25519,ecdsa-sha2-*'), keys=keys)
        assert result['can_login'] is False
        assert 'PubkeyAcceptedAlgorithms' in result['reasons'][0]
        assert RSA_FP in result['reasons'][0]
        assert _evaluate(_effective(pubkeyacceptedalgorithms='rsa-sha2-512'), keys=keys)['can_login'] is True
        assert _evaluate(_effective(pubkeyacceptedalgorithms=None), keys=keys)['can_login'] is True

    def test_from_option(self):
        keys = {AK: 'from="10.0.0.0/8,!10.6.0.0/16" ' + ED25519_LINE, AK2: None}
        assert _evaluate(keys=keys, client_addr='10.1.1.1')['can_login'] is True
        result = _evaluate(keys=keys, client_addr='10.6.1.1', public_keys=[ED25519_LINE])
        assert result['can_login'] is False
        assert 'from=' in result['reasons'][0]
        unknown = _evaluate(keys=keys)
        assert unknown['can_login'] is True
        assert any('from=' in w for w in unknown['warnings'])

    def test_forced_command_warns(self):
        result = _evaluate(keys={AK: 'command="/usr/bin/true" ' + ED25519_LINE, AK2: None}, public_keys=[ED25519_LINE])
        assert result['can_login'] is True
        assert any('command=' in w and ED25519_FP in w for w in result['warnings'])

    def test_several_reasons_accumulate(self):
        effective = _effective(pubkeyauthentication='no', allowusers=['alice'], authenticationmethods=['password'])
        result = _evaluate(effective, keys={AK: None, AK2: None})
        text = '\n'.join(result['reasons'])
        assert result['can_login'] is False
        for keyword in ('PubkeyAuthentication', 'AllowUsers', 'AuthenticationMethods', 'authorizedkeysfile'):
            assert keyword in text

    @FAST
    @given(payload=st.binary(min_size=8, max_size=64), other=st.binary(min_size=8, max_size=64),
           keytype=st.sampled_from(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'sk-ssh-ed25519@openssh.com']))
    def test_missing_expected_key_never_leaks_material(self, payload, other, keytype):
        assume(payload != other)
        present = '%s %s present' % (keytype, _b64(keytype, other))
        expected_b64 = _b64(keytype, payload)
        result = _evaluate(keys={AK: present, AK2: None}, public_keys=['%s %s expected' % (keytype, expected_b64)])
        assert result['can_login'] is False
        assert key_fingerprint(expected_b64) in result['reasons'][-1]
        assert expected_b64 not in _text(result)
        assert _b64(keytype, other) not in _text(result)

    @FAST
    @given(payload=st.binary(min_size=8, max_size=64), keytype=st.sampled_from(sorted(KEY_TYPES)))
    def test_present_expected_key_is_found(self, payload, keytype):
        line = '%s %s c' % (keytype, _b64(keytype, payload))
        result = _evaluate(_effective(pubkeyacceptedalgorithms=None), keys={AK: 'no-pty ' + line, AK2: None}, public_keys=[line])
        assert result['can_login'] is True
        assert result['matched_fingerprints'] == [key_fingerprint(_b64(keytype, payload))]
