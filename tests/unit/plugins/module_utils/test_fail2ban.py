# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils.fail2ban import (
    bans_check,
    bans_since,
    next_cursor,
    parse_dbfile,
    parse_jail_list,
    parse_jail_status,
)

# What fail2ban 1.0.2 (Debian 12) prints.
STATUS = 'Status\n|- Number of jail:\t2\n`- Jail list:\tnginx-http-auth, sshd\n'
JAIL = ('Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t1\n|  |- Total failed:\t7\n'
        '|  `- Journal matches:\t_SYSTEMD_UNIT=sshd.service + _COMM=sshd\n`- Actions\n   |- Currently banned:\t2\n'
        '   |- Total banned:\t3\n   `- Banned IP list:\t10.213.47.5 2001:db8::7\n')
EMPTY_JAIL = JAIL.replace('Currently banned:\t2', 'Currently banned:\t0').replace('\t10.213.47.5 2001:db8::7', '')


def test_parsers_read_fail2ban_1_0_output():
    assert parse_jail_list(STATUS) == ['nginx-http-auth', 'sshd']
    assert parse_jail_list('Status\n|- Number of jail:\t0\n`- Jail list:\t\n') == []
    assert parse_jail_list('ERROR  Failed to access socket path') is None
    assert parse_jail_status(JAIL) == {'failed_now': 1, 'failed_total': 7, 'banned_now': 2, 'banned_total': 3,
                                       'banned': ['10.213.47.5', '2001:db8::7']}
    assert parse_jail_status(EMPTY_JAIL)['banned'] == []
    assert parse_jail_status('Sorry but the jail does not exist') is None
    assert parse_dbfile('Current database file is:\n`- /var/lib/fail2ban/fail2ban.sqlite3\n') == '/var/lib/fail2ban/fail2ban.sqlite3'
    assert parse_dbfile('Current database file is:\n`- None\n') is None


def make_db(path, rows):
    with sqlite3.connect(str(path)) as connection:
        connection.execute('CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL, '
                           'bancount INTEGER NOT NULL default 1, data JSON)')
        connection.executemany('INSERT INTO bans(jail, ip, timeofban, bantime) VALUES(?, ?, ?, 600)', rows)
    connection.close()


def test_bans_since_reads_read_only_and_reports_a_missing_database(tmp_path):
    make_db(tmp_path / 'f2b.sqlite3', [('sshd', '192.0.2.1', 100), ('sshd', '192.0.2.2', 200)])
    bans, error = bans_since(str(tmp_path / 'f2b.sqlite3'), 150)
    assert (bans, error) == ([{'jail': 'sshd', 'address': '192.0.2.2', 'time': 200}], None)
    bans, error = bans_since(str(tmp_path / 'missing.sqlite3'), 0)
    assert bans is None and 'missing.sqlite3' in error
    assert not (tmp_path / 'missing.sqlite3').exists(), 'read-only: a missing database is not created'


@settings(max_examples=60, deadline=None)
@given(times=st.lists(st.integers(min_value=0, max_value=20), max_size=25),
       cuts=st.lists(st.integers(min_value=0, max_value=25), max_size=5))
def test_every_ban_is_counted_exactly_once_across_runs(tmp_path_factory, times, cuts):
    """Bans arrive in time order (several in one second); runs happen after any prefix: each ban is counted once."""
    rows = [('sshd', '192.0.2.%d' % index, when) for index, when in enumerate(sorted(times))]
    counted, cursor = [], None
    for cut in sorted(set(min(cut, len(rows)) for cut in cuts)) + [len(rows)]:
        path = tmp_path_factory.mktemp('db') / 'f2b.sqlite3'
        make_db(path, rows[:cut])
        bans, error = bans_since(str(path), cursor['since'] if cursor else 0, cursor['seen'] if cursor else ())
        assert error is None
        counted.extend((ban['jail'], ban['address']) for ban in bans)
        cursor = next_cursor(cursor, bans)
    assert sorted(counted) == sorted((jail, address) for jail, address, _when in rows)


def found(jails, bans=(), running=True):
    return {'running': running, 'error': None if running else 'down', 'jails': jails, 'bans': list(bans), 'db_error': None}


def test_bans_check_status_follows_bans_now_and_since():
    quiet = {'sshd': parse_jail_status(EMPTY_JAIL)}
    assert bans_check('auto', found(quiet))['status'] == 'ok'
    assert bans_check('auto', found({'sshd': parse_jail_status(JAIL)}))['status'] == 'warning'
    check = bans_check('required', found(quiet, [{'jail': 'sshd', 'address': '192.0.2.1', 'time': 1}]))
    assert (check['status'], check['value'], check['alert']) == ('warning', 1, 'security_event')
    assert bans_check('disabled', found(quiet)) is None
    assert bans_check('auto', found({'sshd': {'error': 'gone'}}))['status'] == 'warning'
