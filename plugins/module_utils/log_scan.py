# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic used by the ``dealerscope.ops.log_scan`` module.

"Logs since the previous run": the systemd journal (sshd, sudo, useradd & co.) and JSON
access logs are read from a cursor kept on the host, so that nothing is counted twice or
missed between two runs.  This file holds the parsers, the counters, the PII detectors and
maskers, the incremental file reader and the cursor (state) file handling; the module itself
only wires them together.  No AnsibleModule import here.

SSH de-duplication rule (one failed attempt must not be counted 2-3 times):
    sshd logs several lines for one failed connection (``Invalid user``, ``Failed password``,
    the PAM failure, ``maximum authentication attempts exceeded``, ``Connection closed by
    invalid user ... [preauth]``).  All lines of one connection come from the same
    per-connection sshd process, so lines are grouped by connection = (process id, client
    address).  A connection counts as many failures as it has ``Failed <method>`` lines
    (one per rejected password / key signature / keyboard-interactive round; ``Failed none``
    is not an attempt).  A connection with no ``Failed`` line but any other failure evidence
    (invalid user, PAM failure, max attempts, closed/reset/disconnected while authenticating)
    counts as exactly one failure.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
import threading

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import atomic_write_text
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, threshold_check

STATE_VERSION = 1
#: Local accounts: the first run records their names as the baseline that later runs compare with.
PASSWD_FILE = '/etc/passwd'

#: Journal identifiers (``-t``) read: sshd (OpenSSH < 9.8), sshd-session / sshd-auth (OpenSSH >= 9.8 / 10),
#: sudo, and the shadow-utils account tools.
SSH_IDENTIFIERS = ('sshd', 'sshd-session', 'sshd-auth')
ACCOUNT_IDENTIFIERS = ('useradd', 'groupadd', 'usermod', 'adduser')
JOURNAL_IDENTIFIERS = SSH_IDENTIFIERS + ('sudo',) + ACCOUNT_IDENTIFIERS
#: Fields asked from ``journalctl -o json`` (``__CURSOR`` and ``__REALTIME_TIMESTAMP`` always come along).
JOURNAL_FIELDS = ('MESSAGE', 'SYSLOG_IDENTIFIER', '_PID', 'SYSLOG_PID', '_SYSTEMD_UNIT')


# --------------------------------------------------------------------------
# PII: detection and masking
# --------------------------------------------------------------------------

# ``%40`` is the URL-encoded ``@`` (emails leak into access logs through query strings).
_EMAIL_RE = re.compile(
    r'(?<![A-Za-z0-9._%+-])'
    r'(?P<local>[A-Za-z0-9._%+-]{1,64}?)(?:@|%40)'
    r'(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,24}))'
    r'(?![A-Za-z0-9-])')
# Runs of digits with single spaces or dashes between groups. A run must not continue a word,
# a dotted or dashed token (``ansible-tmp-1715000000.41-1234-281474976710655``) or a decimal number,
# nor follow a mask (``**** 1234``: the last four digits of a masked number do not start a new one).
_DIGIT_RUN_RE = re.compile(r'(?<![\w.-])(?<!\* )\d+(?:[ -]\d+)*(?!\w|\.\d)')
_SEPARATOR_RE = re.compile(r'[ -]')
#: First digits of payment card numbers (major industry identifiers of card networks: 2 and 5 Mastercard,
#: 3 Amex/JCB/Diners, 4 Visa, 6 Discover/UnionPay/Maestro). Keeps epoch timestamps in ms/us (1...) out.
CARD_FIRST_DIGITS = '23456'


def luhn_valid(digits):
    """Whether a string of digits passes the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(digits):
    return 13 <= len(digits) <= 19 and digits[0] in CARD_FIRST_DIGITS and luhn_valid(digits)


def find_cards(text):
    """Return ``[(start, end, digits)]`` of the payment card numbers in ``text``.

    A card is 13-19 digits, optionally split into groups by single spaces or dashes, starting with
    one of ``CARD_FIRST_DIGITS`` and Luhn-valid. Inside a longer run of groups (a card followed by an
    expiry date, say) the first contiguous groups forming a card are taken.
    """
    found = []
    for match in _DIGIT_RUN_RE.finditer(text):
        run = match.group(0)
        if len(run) < 13:
            continue
        # group boundaries inside the run: (start offset, end offset) relative to the run
        groups = []
        pos = 0
        for sep in _SEPARATOR_RE.finditer(run):
            groups.append((pos, sep.start()))
            pos = sep.end()
        groups.append((pos, len(run)))
        i = 0
        while i < len(groups):
            digits = ''
            hit = None
            for j in range(i, len(groups)):
                digits += run[groups[j][0]:groups[j][1]]
                if len(digits) > 19:
                    break
                if _is_card(digits):
                    hit = j  # keep the longest card starting at group i
            if hit is None:
                i += 1
                continue
            start, end = groups[i][0], groups[hit][1]
            found.append((match.start() + start, match.start() + end,
                          ''.join(run[groups[k][0]:groups[k][1]] for k in range(i, hit + 1))))
            i = hit + 1
    return found


def find_emails(text):
    """Return ``[(start, end, local, domain)]`` of the email addresses in ``text``."""
    if '@' not in text and '%40' not in text:
        return []
    return [(m.start(), m.end(), m.group('local'), m.group('domain')) for m in _EMAIL_RE.finditer(text)]


def mask_email(local, domain):
    """``john.doe@example.com`` -> ``j***@e***.com``: first letter of the local part and of the domain, and the TLD."""
    labels = domain.split('.')
    return '%s***@%s***.%s' % (local[:1], labels[0][:1], labels[-1])


def mask_card(digits):
    """``4111111111111111`` -> ``**** **** **** 1111`` (last four digits only, whatever the length)."""
    return '**** **** **** %s' % digits[-4:]


def _replace_spans(text, spans):
    out = []
    pos = 0
    for start, end, replacement in spans:
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return ''.join(out)


def redact(text):
    """Replace every email address and card number in ``text`` by its mask.

    Emails are masked first and card numbers are then looked for in the result, so that a digit run
    touching an address never swallows (and leaves unmasked) part of it. Idempotent: masks are not
    detected again.
    """
    if text is None:
        return None
    text = _replace_spans(text, [(start, end, mask_email(local, domain)) for start, end, local, domain in find_emails(text)])
    return _replace_spans(text, [(start, end, mask_card(digits)) for start, end, digits in find_cards(text)])


class PiiScanner:
    """Counts lines containing PII and keeps up to ``max_samples`` masked samples."""

    def __init__(self, max_samples=3):
        self.max_samples = max_samples
        self.lines = 0
        self.emails = 0
        self.cards = 0
        self.samples = []

    def feed(self, source, line_number, text):
        """Scan one line (or journal message); return True when it contains PII."""
        emails = find_emails(text)
        cards = find_cards(text)
        if not emails and not cards:
            return False
        self.lines += 1
        self.emails += len(emails)
        self.cards += len(cards)
        for kind, masked in [('card', mask_card(c[2])) for c in cards] + [('email', mask_email(e[2], e[3])) for e in emails]:
            if len(self.samples) >= self.max_samples:
                break
            self.samples.append({'source': source, 'line': line_number, 'kind': kind, 'masked': masked})
        return True

    def details(self):
        return {'emails': self.emails, 'cards': self.cards, 'samples': list(self.samples)}


# --------------------------------------------------------------------------
# Journal
# --------------------------------------------------------------------------

def journal_command(journalctl, cursor=None, since=None, identifiers=JOURNAL_IDENTIFIERS):
    """The ``journalctl`` command reading the entries after ``cursor`` (or since epoch ``since``)."""
    cmd = [journalctl, '-o', 'json', '--no-pager', '--output-fields=%s' % ','.join(JOURNAL_FIELDS)]
    if cursor:
        cmd.append('--after-cursor=%s' % cursor)
    elif since is not None:
        cmd.append('--since=@%d' % int(since))
    for identifier in identifiers:
        cmd.extend(['-t', identifier])
    return cmd


def field_text(value):
    """A journal JSON field as text: strings as is, byte arrays decoded, repeated fields joined."""
    if value is None:
        return ''
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(item, int) for item in value):
            return bytes(item & 0xFF for item in value).decode('utf-8', errors='replace')
        return '\n'.join(field_text(item) for item in value)
    return str(value)


def parse_journal_line(line):
    """Parse one line of ``journalctl -o json``; None when it is not a JSON object."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def usec_to_iso(usec):
    """``__REALTIME_TIMESTAMP`` (microseconds since the epoch, as text) to ISO 8601 UTC."""
    try:
        seconds = int(usec) / 1e6
    except (TypeError, ValueError):
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec='seconds').replace('+00:00', 'Z')


def epoch_to_iso(seconds):
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec='seconds').replace('+00:00', 'Z')


_SSH_FAILED = re.compile(r'^Failed (?P<method>\S+) for (?:invalid user )?(?P<user>.*?) from (?P<ip>\S+) port (?P<port>\d+)')
_SSH_INVALID = re.compile(r'^Invalid user (?P<user>.*?) from (?P<ip>\S+?)(?: port (?P<port>\d+))?\s*$')
_SSH_CLOSED = re.compile(r'^(?:Connection (?:closed|reset) by|Disconnected from) (?:authenticating|invalid) user (?P<user>.*?) '
                         r'(?P<ip>\S+) port (?P<port>\d+)')
_SSH_MAXTRIES = re.compile(r'^(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?(?P<user>.*?) '
                           r'from (?P<ip>\S+) port (?P<port>\d+)')
_SSH_PAM_FROM = re.compile(r'^(?:error: )?PAM: [Aa]uthentication failure for (?:illegal user |invalid user )?(?P<user>.*?) from (?P<ip>\S+)')
_SSH_PAM_RHOST = re.compile(r'[Aa]uthentication failure;.*?\brhost=(?P<ip>\S+)(?:.*?\buser=(?P<user>\S+))?')


def parse_ssh_message(message):
    """Classify one sshd message: ``(kind, user, ip, port)`` or None.

    ``kind`` is ``failed`` (one rejected authentication attempt) or ``evidence`` (a line that shows a
    connection failed authentication, without being an attempt of its own).
    """
    match = _SSH_FAILED.match(message)
    if match:
        if match.group('method') == 'none':
            return None
        return 'failed', match.group('user'), match.group('ip'), match.group('port')
    for regex in (_SSH_INVALID, _SSH_CLOSED, _SSH_MAXTRIES, _SSH_PAM_FROM):
        match = regex.match(message)
        if match:
            return 'evidence', match.group('user'), match.group('ip'), match.groupdict().get('port')
    match = _SSH_PAM_RHOST.search(message)
    if match and match.group('ip'):
        return 'evidence', match.group('user'), match.group('ip'), None
    return None


_SUDO = re.compile(r'^\s*(?P<user>\S+) : (?P<rest>.*)$', re.S)
_NEW_USER = re.compile(r'new user: name=(?P<name>[^,\s]+)')
_NEW_GROUP = re.compile(r'new group: name=(?P<name>[^,\s]+)')
_GROUP_ADD = re.compile(r"^add '(?P<user>[^']+)' to group '(?P<group>[^']+)'")


def parse_sudo_message(message):
    """``(user, target, failure_reason)`` of a sudo command log line, or None for other sudo lines."""
    match = _SUDO.match(message)
    if not match:
        return None
    rest = match.group('rest')
    head = rest.split(' ; COMMAND=', 1)[0]
    fields = head.split(' ; ')
    if 'COMMAND=' not in rest and not any(f.startswith('USER=') for f in fields):
        return None
    reason = None
    if fields and '=' not in fields[0].split(' ', 1)[0]:
        reason = fields[0].strip()
    target = None
    for field in fields:
        if field.startswith('USER='):
            target = field[5:]
    return match.group('user'), target, reason


def _bump(counter, key, amount=1):
    counter[key] = counter.get(key, 0) + amount


def top(counter, limit=10):
    """The ``limit`` largest entries of a ``{key: count}`` dict (ties by key), as a dict."""
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit])


class JournalScanner:
    """Consumes journal entries (dicts from ``journalctl -o json``) and counts what the checks need."""

    def __init__(self, pii=None):
        self.pii = pii
        self.entries = 0
        self.truncated = False
        self.first_usec = None
        self.last_usec = None
        self.last_cursor = None
        self.ssh_lines = 0
        self._connections = {}
        self.sudo_users = {}
        self.sudo_targets = {}
        self.sudo_commands = 0
        self.sudo_failures = 0
        self.sudo_failed_users = {}
        self.new_users = []
        self.new_groups = []
        self.group_additions = []

    def feed(self, entry):
        self.entries += 1
        cursor = entry.get('__CURSOR')
        if cursor:
            self.last_cursor = cursor
        usec = entry.get('__REALTIME_TIMESTAMP')
        if usec is not None:
            if self.first_usec is None:
                self.first_usec = usec
            self.last_usec = usec
        message = field_text(entry.get('MESSAGE'))
        identifier = field_text(entry.get('SYSLOG_IDENTIFIER'))
        if self.pii is not None and message:
            self.pii.feed('journal:%s' % (identifier or field_text(entry.get('_SYSTEMD_UNIT')) or 'unknown'), self.entries, message)
        if identifier in SSH_IDENTIFIERS:
            self._ssh(entry, message)
        elif identifier == 'sudo':
            self._sudo(message)
        elif identifier in ACCOUNT_IDENTIFIERS:
            self._account(message)

    def _ssh(self, entry, message):
        parsed = parse_ssh_message(message)
        if parsed is None:
            return
        self.ssh_lines += 1
        kind, user, ip, port = parsed
        pid = field_text(entry.get('_PID')) or field_text(entry.get('SYSLOG_PID'))
        key = (pid, ip) if pid else (None, ip, port or 'line-%d' % self.entries)
        conn = self._connections.get(key)
        if conn is None:
            conn = self._connections[key] = {'failed': 0, 'users': {}, 'ip': ip}
        if kind == 'failed':
            conn['failed'] += 1
            if user is not None:
                _bump(conn['users'], user)
        elif user and not conn['users']:
            conn['evidence_user'] = user
        conn['evidence'] = True

    def _sudo(self, message):
        parsed = parse_sudo_message(message)
        if parsed is None:
            return
        user, target, reason = parsed
        if reason:
            self.sudo_failures += 1
            _bump(self.sudo_failed_users, user)
        else:
            self.sudo_commands += 1
            _bump(self.sudo_users, user)
            if target:
                _bump(self.sudo_targets, target)

    def _account(self, message):
        match = _NEW_USER.search(message)
        if match:
            if match.group('name') not in self.new_users:
                self.new_users.append(match.group('name'))
            return
        match = _NEW_GROUP.search(message)
        if match:
            if match.group('name') not in self.new_groups:
                self.new_groups.append(match.group('name'))
            return
        match = _GROUP_ADD.match(message)
        if match:
            item = '%s -> %s' % (match.group('user'), match.group('group'))
            if item not in self.group_additions:
                self.group_additions.append(item)

    def ssh_summary(self):
        """De-duplicated SSH failures: ``(failures, {ip: n}, {user: n})`` (see the module docstring for the rule)."""
        failures = 0
        sources = {}
        users = {}
        for conn in self._connections.values():
            attempts = conn['failed'] or 1
            failures += attempts
            _bump(sources, redact(conn['ip']), attempts)  # an attacker-chosen user name can shift the parse
            if conn['users']:
                for user, count in conn['users'].items():
                    _bump(users, redact(user), count)
            elif conn.get('evidence_user'):
                _bump(users, redact(conn['evidence_user']), attempts)
        return failures, sources, users

    def standalone_groups(self):
        """New groups that are not the personal group of a new user (useradd creates both)."""
        return [g for g in self.new_groups if g not in self.new_users]


# --------------------------------------------------------------------------
# Files (access logs, PII paths): incremental reading with rotation
# --------------------------------------------------------------------------

def parse_log_time(value):
    """An access log timestamp (ISO 8601 text or epoch seconds/milliseconds) as epoch seconds; None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith('Z') or text.endswith('z'):
        text = text[:-1] + '+00:00'
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


_TIME_KEYS = ('ts', 'time', 'timestamp', '@timestamp')


class AccessLogCounter:
    """Counts requests and 5xx in JSON access log lines; malformed lines are counted, never fatal."""

    def __init__(self):
        self.requests = 0
        self.errors_5xx = 0
        self.malformed = 0

    @staticmethod
    def decode(text):
        try:
            entry = json.loads(text)
        except ValueError:
            return None
        return entry if isinstance(entry, dict) else None

    def feed(self, entry):
        """Count one decoded line (None when it was not a JSON object)."""
        status = entry.get('status') if entry is not None else None
        if isinstance(status, str) and status.strip().isdigit():
            status = int(status.strip())
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            self.malformed += 1
            return
        self.requests += 1
        if status >= 500:
            self.errors_5xx += 1


def entry_time(entry):
    if entry is None:
        return None
    for key in _TIME_KEYS:
        if key in entry:
            return parse_log_time(entry[key])
    return None


def _head(handle):
    """Fingerprint of the first line (at most 1 KiB) to tell a new file that reuses an inode; None while incomplete."""
    handle.seek(0)
    data = handle.readline(1024)
    if not data or (not data.endswith(b'\n') and len(data) < 1024):
        return None
    return hashlib.sha256(data).hexdigest()[:16]


def _same_file(saved, st, head):
    # the device number is not compared: it can change across reboots (overlay and other virtual devices)
    if saved.get('inode') != st.st_ino:
        return False
    return saved.get('head') is None or saved.get('head') == head


def _open_stat(path):
    """Open ``path`` for reading and return ``(handle, stat)``, or ``(None, None)`` when it is missing/unreadable."""
    try:
        handle = open(path, 'rb')  # pylint: disable=consider-using-with
    except (IOError, OSError):
        return None, None
    try:
        return handle, os.fstat(handle.fileno())
    except OSError:
        handle.close()
        return None, None


def _read_from(handle, offset, line_number, on_line):
    """Read complete lines from ``offset``; call ``on_line(line_number, text)``. Return ``(end_offset, end_line)``.

    A last line without its newline is left for the next run (the writer may be in the middle of it).
    """
    handle.seek(offset)
    for raw in handle:
        if not raw.endswith(b'\n'):
            break
        offset += len(raw)
        line_number += 1
        on_line(line_number, raw.decode('utf-8', errors='replace').rstrip('\r\n'))
    return offset, line_number


def _finish_rotated(path, saved, on_line, info):
    """Finish the rotated file ``<path>.1`` from the saved offset; False when it cannot be found.

    Renamed (logrotate ``create``): same inode and first line as saved. Copied (``copytruncate``): a new inode,
    the same first line, at least as long as the saved offset.
    """
    old_path = path + '.1'
    offset, line = saved.get('offset', 0), saved.get('line', 0)
    old, old_st = _open_stat(old_path)
    if old is None:
        return False
    with old:
        head = _head(old)
        renamed = _same_file(saved, old_st, head)
        copied = saved.get('head') is not None and head == saved.get('head')
        if not (renamed or copied) or old_st.st_size < offset:
            return False
        end, lines = _read_from(old, offset, line, lambda n, text: on_line(old_path, n, text))
    info['bytes'] += end - offset
    info['lines'] += lines - line
    return True


def read_file_increment(path, saved, on_line):
    """Read what was appended to ``path`` since the cursor ``saved`` (``{inode, head, offset, line}`` or None).

    The file is the same as the saved one when its inode and first-line fingerprint (``head``) match
    and it is not shorter than the saved offset. Otherwise it was rotated: the rest of the old file is read
    from ``<path>.1`` when it is found there (see ``_finish_rotated``), then the new file from 0.
    ``on_line(source, line_number, text)`` is called for each complete line.

    Returns ``(new_cursor or None, info)``; ``info`` has ``from_offset``, ``to_offset``, ``bytes``, ``lines``,
    ``rotated``, ``missing`` and ``lost`` (rotated, but the old file was not found: its unread tail is lost).
    """
    info = {'from_offset': 0, 'to_offset': 0, 'bytes': 0, 'lines': 0, 'rotated': False, 'missing': False, 'lost': False}
    handle, st = _open_stat(path)
    if handle is None:
        info['missing'] = True
        return (dict(saved) if saved else None), info
    with handle:
        head = _head(handle)
        start, start_line = 0, 0
        if saved:
            if _same_file(saved, st, head) and st.st_size >= saved.get('offset', 0):
                start, start_line = saved.get('offset', 0), saved.get('line', 0)
            else:
                info['rotated'] = True
                info['lost'] = not _finish_rotated(path, saved, on_line, info)
        info['from_offset'] = start
        end, lines = _read_from(handle, start, start_line, lambda n, text: on_line(path, n, text))
        info['to_offset'] = end
        info['bytes'] += end - start
        info['lines'] += lines - start_line
        if head is None and lines:
            head = _head(handle)
        return {'inode': st.st_ino, 'head': head, 'offset': end, 'line': lines}, info


class _LineHandler:
    """Per-file line callback: first-run time filter, access log counting, PII scan."""

    def __init__(self, counter, pii, is_access, is_pii, since):
        self.counter = counter
        self.pii = pii
        self.is_access = is_access
        self.is_pii = is_pii
        self.since = since
        self.skipped = 0

    def __call__(self, source, line_number, text):
        if not text.strip():
            return
        entry = AccessLogCounter.decode(text) if (self.is_access or self.since is not None) else None
        if self.since is not None:
            moment = entry_time(entry)
            if moment is not None and moment < self.since:
                self.skipped += 1
                return
        if self.is_access:
            self.counter.feed(entry)
        if self.is_pii and self.pii is not None:
            self.pii.feed(source, line_number, text)


def scan_files(access_logs, pii_paths, saved_files, first_run_since, counter, pii):
    """Read every access log and PII path once from its cursor.

    On a file's first run (no saved cursor) it is read from the start and JSON lines with a
    ``ts``/``time``/``timestamp``/``@timestamp`` older than ``first_run_since`` are skipped.
    Returns ``(new_cursors, infos)``, both keyed by path.
    """
    new_cursors = {}
    infos = {}
    paths = []
    for path in list(access_logs) + list(pii_paths):
        if path not in paths:
            paths.append(path)
    for path in paths:
        saved = saved_files.get(path) if isinstance(saved_files.get(path), dict) else None
        handler = _LineHandler(counter, pii, path in access_logs, path in pii_paths, None if saved else first_run_since)
        cursor, info = read_file_increment(path, saved, handler)
        info['skipped_before_lookback'] = handler.skipped
        if cursor is not None:
            new_cursors[path] = cursor
        infos[path] = info
    return new_cursors, infos


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def ssh_check(scanner, warn, crit):
    failures, sources, users = scanner.ssh_summary()
    check = threshold_check('ssh_auth_failures', failures, warn=warn, crit=crit, alert='security_event',
                            label='SSH authentication failures since the last run')
    if sources:
        check['message'] += '; top sources: %s' % ', '.join('%s (%d)' % item for item in list(top(sources, 3).items()))
    check['details'] = {'sources': top(sources), 'users': top(users)}
    return check


def sudo_check(scanner):
    details = {'users': top(dict(scanner.sudo_users), 100), 'targets': top(dict(scanner.sudo_targets), 100),
               'failures': scanner.sudo_failures, 'failed_users': dict((redact(u), n) for u, n in top(scanner.sudo_failed_users, 100).items())}
    details['users'] = dict((redact(u), n) for u, n in details['users'].items())
    details['targets'] = dict((redact(u), n) for u, n in details['targets'].items())
    if scanner.sudo_failures:
        return make_check('sudo_use', 'warning', scanner.sudo_commands, 0,
                          '%d failed sudo attempt(s) (%s) and %d sudo command(s) since the last run'
                          % (scanner.sudo_failures, ', '.join(details['failed_users']), scanner.sudo_commands),
                          alert='security_event', details=details)
    return make_check('sudo_use', 'ok', scanner.sudo_commands, 0,
                      '%d sudo command(s) since the last run, no failed sudo' % scanner.sudo_commands, details=details)


def read_accounts(path=None):
    """Local account names from a passwd file (default ``PASSWD_FILE``): ``(sorted names, None)`` or ``(None, error text)``."""
    path = path or PASSWD_FILE
    try:
        with open(path, 'r', encoding='utf-8', errors='replace') as handle:
            names = set(line.split(':', 1)[0] for line in handle if ':' in line and not line.startswith(('#', '+', '-')))
    except (IOError, OSError) as exc:
        return None, 'cannot read %s: %s' % (path, exc)
    return sorted(name for name in names if name), None


def accounts_check(scanner, first_run=False, accounts=None, baseline=None, recorded=True, lookback_hours=None):
    """``new_accounts``: accounts created since the previous run.

    A first run (no journal cursor and no "since" in the state) has no previous run to compare with: what the
    look-back window shows (typically the provisioning of the host) is the baseline, recorded and reported ok.
    Later runs report the accounts the journal shows being created, plus any local account (``accounts``, from
    the passwd file) that is not in the recorded ``baseline`` although the journal did not show it being created.
    """
    users = [redact(name) for name in scanner.new_users]
    groups = [redact(name) for name in scanner.standalone_groups()]
    additions = [redact(item) for item in scanner.group_additions]
    details = {'users': users, 'groups': groups, 'group_additions': additions}
    if first_run:
        details['baseline'] = len(accounts) if accounts is not None else None
        if accounts is None:
            text = 'first run: no previous run to compare with, and the local accounts could not be read for a baseline'
        else:
            text = 'first run: baseline of %d accounts %s' % (len(accounts), 'recorded' if recorded else 'read (check mode: not recorded)')
        seen = len(users) + len(groups) + len(additions)
        if seen:
            window = ('in the last %s h ' % lookback_hours) if lookback_hours is not None else ''
            text += '; %d account change(s) %sare part of it, not judged' % (seen, window)
        return make_check('new_accounts', 'ok', 0, 0, text, details=details)
    unlogged = []
    if accounts is not None and baseline is not None:
        known = set(baseline) | set(scanner.new_users)
        unlogged = [redact(name) for name in accounts if name not in known]
        if unlogged:
            details['not_in_journal'] = unlogged
            users = users + [name for name in unlogged if name not in users]
            details['users'] = users
    value = len(users) + len(groups)
    if value or additions:
        parts = []
        if users:
            parts.append('new user(s): %s' % ', '.join(users))
        if groups:
            parts.append('new group(s): %s' % ', '.join(groups))
        if additions:
            parts.append('added to group(s): %s' % ', '.join(additions))
        text = '; '.join(parts) + ' since the last run'
        if unlogged:
            text += ' (%s: in the passwd file but not created in the journal)' % ', '.join(unlogged)
        return make_check('new_accounts', 'warning', value, 0, text, alert='security_event', details=details)
    return make_check('new_accounts', 'ok', 0, 0, 'no new accounts since the last run', details=details)


def journal_failed_checks(reason):
    """The three journal checks when the journal could not be read (nothing measured is not fine)."""
    message = 'journal could not be read: %s' % reason
    return [make_check(name, 'critical', None, None, message, alert='security_event')
            for name in ('ssh_auth_failures', 'sudo_use', 'new_accounts')]


def app_5xx_check(counter, error_rate_percent, min_requests, infos, access_logs):
    requests, errors = counter.requests, counter.errors_5xx
    rate = round(100.0 * errors / requests, 3) if requests else 0.0
    details = {'requests': requests, 'errors_5xx': errors, 'malformed_lines': counter.malformed}
    missing = [path for path in access_logs if infos.get(path, {}).get('missing')]
    counts = '%d 5xx of %d requests (%s %%)' % (errors, requests, ('%.3f' % rate).rstrip('0').rstrip('.'))
    if counter.malformed:
        counts += ', %d malformed line(s)' % counter.malformed
    if missing and len(missing) == len(access_logs):
        counts += '; no access log found (%s)' % ', '.join(missing)
    if requests >= min_requests and rate > error_rate_percent:
        return make_check('app_5xx_rate', 'critical', rate, error_rate_percent,
                          '%s since the last run: above the error-rate SLO of %s %%' % (counts, error_rate_percent),
                          alert='high_error_rate', unit='%', details=details)
    if requests < min_requests:
        tail = 'too few requests to judge (minimum %d)' % min_requests
    else:
        tail = 'within the error-rate SLO of %s %%' % error_rate_percent
    return make_check('app_5xx_rate', 'ok', rate, error_rate_percent, '%s since the last run: %s' % (counts, tail),
                      unit='%', details=details)


def pii_check(pii):
    details = pii.details()
    if not pii.lines:
        return make_check('pii_in_logs', 'ok', 0, 0, 'no email addresses or card numbers in the logs read', unit='lines', details=details)
    status = 'critical' if pii.cards else 'warning'
    return make_check('pii_in_logs', status, pii.lines, 0,
                      '%d log line(s) contain PII (%d email address(es), %d card number(s))' % (pii.lines, pii.emails, pii.cards),
                      alert='pii_exposure', unit='lines', details=details)


# --------------------------------------------------------------------------
# Streaming a command (journalctl) with a bound on the lines consumed
# --------------------------------------------------------------------------

#: The end of a command's stderr that is kept (for the error message); the rest is read and dropped.
STDERR_KEEP_BYTES = 64 * 1024


def _drain(stream, sink, keep=STDERR_KEEP_BYTES):
    """Read ``stream`` to its end, keeping its last ``keep`` bytes; append them to ``sink`` (run in a thread)."""
    tail = b''
    dropped = False
    try:
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                break
            tail += chunk
            if len(tail) > keep:
                tail = tail[-keep:]
                dropped = True
    except (OSError, ValueError):  # closed under us when the process was stopped
        pass
    if dropped and b'\n' in tail:
        tail = tail[tail.index(b'\n') + 1:]  # the first line was cut: keep whole lines only
    sink.append(tail)


def stream_command(cmd, on_line, max_lines):
    """Run ``cmd`` and call ``on_line(text)`` for each stdout line, at most ``max_lines`` times.

    When the bound is reached the process is terminated. Returns ``(rc, stderr, truncated)``;
    ``rc`` is None when the process was stopped because of the bound.

    stderr is drained by a thread while stdout is read: a command that writes more than a pipe holds
    (64 KiB) to stderr, as journalctl does with one warning per damaged journal file, must not block
    while its stdout is waited for. Only the last STDERR_KEEP_BYTES of stderr are returned.
    """
    env = dict(os.environ, LANG='C', LC_ALL='C', SYSTEMD_PAGER='', PAGER='cat')
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env) as proc:
        err_tail = []
        drainer = threading.Thread(target=_drain, args=(proc.stderr, err_tail), name='stderr-drain', daemon=True)
        drainer.start()
        count = 0
        truncated = False
        try:
            for raw in proc.stdout:
                if count >= max_lines:
                    truncated = True
                    break
                count += 1
                on_line(raw.decode('utf-8', errors='replace'))
        except BaseException:
            _stop(proc, kill=True)
            drainer.join(5)
            raise
        if truncated:
            _stop(proc)
        rc = proc.wait()
        drainer.join(5)
    err = (err_tail[0] if err_tail else b'').decode('utf-8', errors='replace')
    return (None, err, True) if truncated else (rc, err, False)


def _stop(proc, kill=False):
    """Stop ``proc`` (SIGTERM, or SIGKILL; SIGKILL anyway after 5 s) and reap it."""
    if kill:
        proc.kill()
    else:
        proc.terminate()
    proc.stdout.close()  # a process ignoring SIGTERM then gets SIGPIPE/EPIPE on its next write
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------
# State (cursor) file
# --------------------------------------------------------------------------

def empty_state():
    return {'version': STATE_VERSION, 'journal': {'cursor': None, 'since': None}, 'files': {}}


def load_state(path):
    """Return ``(state, problem)``; a missing file is a first run (no problem), a corrupt one is reported."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, None
    except (IOError, OSError) as exc:
        return None, 'cannot read %s: %s' % (path, exc)
    try:
        state = json.loads(raw.decode('utf-8'))
    except ValueError:
        return None, '%s is not valid JSON; starting over' % path
    if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
        return None, '%s has an unknown format; starting over' % path
    state.setdefault('journal', {'cursor': None, 'since': None})
    if not isinstance(state.get('files'), dict):
        state['files'] = {}
    accounts = state.get('accounts')
    if accounts is not None and not (isinstance(accounts, list) and all(isinstance(name, str) for name in accounts)):
        del state['accounts']
    return state, None


def dump_state(state):
    return json.dumps(state, sort_keys=True, indent=1) + '\n'


def write_state(path, state):
    """Write the state atomically (temporary file in the same directory, fsync, rename), mode 0600.

    A missing parent directory is created with mode 0700; an existing one is left as it is.
    """
    atomic_write_text(path, dump_state(state))
