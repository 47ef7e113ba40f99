# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fail2ban's bans, read for the daily runbook's security checks (``log_scan``'s ``intrusion_bans``).

Live state comes from ``fail2ban-client`` (jails, addresses banned now); the bans since the previous run
come from fail2ban's own database (table ``bans``: one row per ban, kept ``dbpurgeage``), read-only.
Parsing and judging are pure functions; ``read_fail2ban`` takes a ``run(argv) -> (rc, out, err)`` callable
so that the module passes ``AnsibleModule.run_command`` and unit tests a fake.
"""

from __future__ import annotations

import re
import sqlite3

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check

MODES = ('auto', 'required', 'disabled')
DEFAULT_DBFILE = '/var/lib/fail2ban/fail2ban.sqlite3'

_JAIL_LIST_RE = re.compile(r'Jail list:\s*(.*)$', re.MULTILINE)
_FIELDS = {
    'failed_now': re.compile(r'Currently failed:\s*(\d+)'),
    'failed_total': re.compile(r'Total failed:\s*(\d+)'),
    'banned_now': re.compile(r'Currently banned:\s*(\d+)'),
    'banned_total': re.compile(r'Total banned:\s*(\d+)'),
}
_BANNED_LIST_RE = re.compile(r'Banned IP list:[ \t]*(.*)$', re.MULTILINE)
_DBFILE_RE = re.compile(r'^\s*`-\s*(\S.*?)\s*$', re.MULTILINE)


def parse_jail_list(text):
    """The jail names of ``fail2ban-client status`` (``Jail list:  sshd, nginx-http-auth``), in order."""
    match = _JAIL_LIST_RE.search(text or '')
    if not match:
        return None
    return [name.strip() for name in match.group(1).split(',') if name.strip()]


def parse_jail_status(text):
    """The numbers and banned addresses of ``fail2ban-client status <jail>``; None when it is not such an output."""
    result = {}
    for key, pattern in _FIELDS.items():
        match = pattern.search(text or '')
        if not match:
            return None
        result[key] = int(match.group(1))
    match = _BANNED_LIST_RE.search(text or '')
    result['banned'] = sorted(set(match.group(1).split())) if match else []
    return result


def parse_dbfile(text):
    """The database path of ``fail2ban-client get dbfile`` (None when fail2ban runs without a database)."""
    match = _DBFILE_RE.search(text or '')
    if not match or match.group(1) == 'None':
        return None
    return match.group(1)


def bans_since(dbfile, since, seen_at_since=()):
    """Bans recorded in fail2ban's database at or after ``since`` (epoch seconds), oldest first.

    Returns ``(bans, error)``; each ban is ``{"jail", "address", "time"}``. Bans at exactly ``since`` whose
    ``[jail, address]`` is in ``seen_at_since`` were counted by the previous run and are left out. The database
    is opened read-only (fail2ban keeps writing it).
    """
    try:
        connection = sqlite3.connect('file:%s?mode=ro' % dbfile, uri=True, timeout=5)
    except sqlite3.Error as exc:
        return None, 'cannot open fail2ban database %s: %s' % (dbfile, exc)
    try:
        rows = connection.execute('SELECT jail, ip, timeofban FROM bans WHERE timeofban >= ? ORDER BY timeofban, jail, ip',
                                  (int(since),)).fetchall()
    except sqlite3.Error as exc:
        return None, 'cannot read bans from fail2ban database %s: %s' % (dbfile, exc)
    finally:
        connection.close()
    seen = set(tuple(pair) for pair in seen_at_since)
    bans = [{'jail': jail, 'address': address, 'time': int(when)} for jail, address, when in rows
            if not (int(when) == int(since) and (jail, address) in seen)]
    return bans, None


def next_cursor(saved, bans):
    """The cursor after ``bans``: the newest ban time and the ``[jail, address]`` pairs banned at that time.

    Without new bans the saved cursor stays (so a run that saw nothing new changes nothing).
    """
    if not bans:
        return saved
    newest = max(ban['time'] for ban in bans)
    pairs = sorted(set((ban['jail'], ban['address']) for ban in bans if ban['time'] == newest))
    if saved and saved.get('since') == newest:
        pairs = sorted(set(pairs) | set(tuple(pair) for pair in saved.get('seen') or []))
    return {'since': newest, 'seen': [list(pair) for pair in pairs]}


def read_fail2ban(run, client, since, seen_at_since=()):
    """Ask fail2ban for its jails, their bans now, and the bans since ``since``.

    Returns a dict: ``running`` (bool), ``error`` (why not, or None), ``jails`` (name -> parsed status),
    ``bans`` (list, or None when the database could not be read), ``db_error``.
    """
    result = {'running': False, 'error': None, 'jails': {}, 'bans': None, 'db_error': None}
    rc, out, err = run([client, 'status'])
    jails = parse_jail_list(out) if rc == 0 else None
    if jails is None:
        reason = (err or out or '').strip().splitlines()
        result['error'] = 'fail2ban-client status failed (rc=%s): %s' % (rc, reason[-1] if reason else 'no output')
        return result
    result['running'] = True
    for jail in jails:
        rc, out, err = run([client, 'status', jail])
        status = parse_jail_status(out) if rc == 0 else None
        result['jails'][jail] = status if status is not None else {'error': (err or out or 'no output').strip()}
    rc, out, err = run([client, 'get', 'dbfile'])
    dbfile = parse_dbfile(out) if rc == 0 else DEFAULT_DBFILE
    if dbfile is None:
        result['db_error'] = 'fail2ban runs without a database: bans since the last run are not known'
    else:
        result['bans'], result['db_error'] = bans_since(dbfile, since, seen_at_since)
    return result


def bans_check(mode, found, installed=True):
    """The check ``intrusion_bans`` (see the log_scan module's documentation); None when ``mode`` is ``disabled``."""
    if mode == 'disabled':
        return None
    if not installed:
        if mode == 'required':
            return make_check('intrusion_bans', 'critical', None, 0,
                              'intrusion detection is not active: fail2ban is not installed', alert='security_event')
        return make_check('intrusion_bans', 'ok', None, 0, 'fail2ban is not installed on this host (not judged: fail2ban=auto)',
                          details={'installed': False})
    if not found['running']:
        return make_check('intrusion_bans', 'critical' if mode == 'required' else 'warning', None, 0,
                          'intrusion detection is not active: %s' % found['error'], alert='security_event',
                          details={'installed': True, 'running': False})
    jails = found['jails']
    broken = sorted(name for name, status in jails.items() if 'error' in status)
    banned_now = dict((name, status['banned']) for name, status in jails.items() if 'error' not in status and status['banned_now'])
    now_count = sum(status.get('banned_now', 0) for status in jails.values())
    bans = found['bans']
    per_jail_counts = dict((name, dict((k, v) for k, v in status.items() if k != 'banned')) for name, status in jails.items())
    details = {'installed': True, 'running': True, 'jails': sorted(jails), 'banned_now': banned_now,
               'bans_since_last_run': None, 'per_jail': per_jail_counts}
    parts = []
    if bans is None:
        parts.append('bans since the last run unknown (%s)' % found['db_error'])
        since_count = None
    else:
        since_count = len(bans)
        per_jail = {}
        for ban in bans:
            per_jail.setdefault(ban['jail'], {}).setdefault(ban['address'], 0)
            per_jail[ban['jail']][ban['address']] += 1
        details['bans_since_last_run'] = per_jail
        parts.append('%d ban(s) since the last run%s' % (
            since_count, (' (' + '; '.join('%s: %s' % (jail, ', '.join(sorted(addresses))) for jail, addresses in sorted(per_jail.items())) + ')')
            if per_jail else ''))
    parts.insert(0, '%d address(es) banned now%s' % (
        now_count, (' (' + '; '.join('%s: %s' % (jail, ', '.join(addresses)) for jail, addresses in sorted(banned_now.items())) + ')')
        if banned_now else ''))
    if not jails:
        status, why = ('critical' if mode == 'required' else 'warning'), 'fail2ban runs but no jail is active'
    elif broken:
        status, why = 'warning', 'status of jail(s) %s unreadable' % ', '.join(broken)
    elif now_count or since_count or since_count is None:
        status, why = 'warning', None
    else:
        status, why = 'ok', None
    message = 'fail2ban (jails: %s): %s' % (', '.join(sorted(jails)) or 'none', '; '.join(parts))
    if why:
        message = why + '; ' + message
    return make_check('intrusion_bans', status, since_count, 0, message, alert='security_event', unit='bans', details=details)
