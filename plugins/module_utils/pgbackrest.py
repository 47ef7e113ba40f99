# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure logic of dealerscope.ops.backup_catalog: pgBackRest's catalog (``info --output=json``), its ``verify`` output,
PostgreSQL's archiver, and the checks (ops_checks contract) judged from them. No AnsibleModule import.

Everything that depends on the exact shape of pgBackRest's JSON is in :func:`parse_info`; the rest works on its
normalised result.
"""

from __future__ import annotations

import json
import math
import re
import time

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, rank

# Status codes of a stanza in one repository (pgBackRest src/command/info/info.c). 4 and 5 only appear at the stanza
# level (the repositories disagree); 99 is an error reading the repository, its message pgBackRest's error.
STATUS_MESSAGES = {
    0: 'ok',
    1: 'missing stanza path',
    2: 'no valid backups',
    3: 'missing stanza data',
    4: 'different across repos',
    5: 'database mismatch across repos',
    6: 'requested backup not found',
    99: 'other',
}
UNREACHABLE = 99

# 16 MB WAL segments: 0x100 segments per log file id (0x100000000 / 0x1000000).
SEGMENTS_PER_LOG = 0x100
_WAL_RE = re.compile(r'^([0-9A-Fa-f]{8})([0-9A-Fa-f]{8})([0-9A-Fa-f]{8})')

ARCHIVER_QUERY = (
    "SELECT a.last_archived_wal, extract(epoch FROM a.last_archived_time), a.last_failed_wal,"
    " extract(epoch FROM a.last_failed_time), pg_walfile_name(pg_current_wal_lsn()), extract(epoch FROM now())"
    " FROM pg_stat_archiver a"
)
ARCHIVER_FIELDS = ('last_archived_wal', 'last_archived_time', 'last_failed_wal', 'last_failed_time', 'current_wal', 'db_now')

MESSAGE_LIMIT = 400


class PgBackRestError(Exception):
    """pgBackRest's answer cannot be used (no JSON, not the expected shape)."""


class StandbyError(Exception):
    """The archiver query ran on a standby (pg_current_wal_lsn() fails during recovery)."""


# ---------------------------------------------------------------------------------------------
# options and command lines


def validate_options(params):
    """Every problem with the module's options, as a list of sentences (empty when all is well)."""
    problems = []
    if not (params.get('stanza') or '').strip():
        problems.append('stanza must not be empty')
    regions = params.get('regions') or []
    if not regions:
        problems.append('regions must list at least one region (name and repo)')
    names, repos = {}, {}
    for index, region in enumerate(regions):
        name = (region.get('name') or '').strip()
        repo = region.get('repo')
        if not name:
            problems.append('regions[%d].name must not be empty' % index)
        elif name in names:
            problems.append('regions[%d].name %r is also regions[%d].name; region names must be unique' % (index, name, names[name]))
        else:
            names[name] = index
        if repo is None or not 1 <= repo <= 256:
            problems.append('regions[%d].repo must be a pgBackRest repository number from 1 to 256, got %r' % (index, repo))
        elif repo in repos:
            problems.append('regions[%d].repo %d is also the repo of regions[%d]; every region has its own repository' % (index, repo, repos[repo]))
        else:
            repos[repo] = index
    for option in ('interval_h', 'rpo_s'):
        value = params.get(option)
        if value is None or not _finite(value) or value <= 0:
            problems.append('%s must be greater than 0, got %r' % (option, value))
    margin = params.get('margin_h')
    if margin is None or not _finite(margin) or margin < 0:
        problems.append('margin_h must be 0 or more, got %r' % (margin,))
    port = params.get('pg_port')
    if port is None or not 1 <= port <= 65535:
        problems.append('pg_port must be a TCP port from 1 to 65535, got %r' % (port,))
    now = params.get('now')
    if now is not None and (not _finite(now) or now <= 0):
        problems.append('now must be seconds since the epoch, got %r' % (now,))
    return problems


def info_argv(binary, stanza):
    """argv of the one catalog read: every repository of the stanza, as JSON."""
    return [binary, '--stanza=%s' % stanza, '--output=json', 'info']


def verify_argv(binary, stanza, repo):
    """argv of ``verify`` for one repository. The console log level is raised to info: recent pgBackRest versions log
    the verify result (``status: error`` with its counts) at info level and still exit 0, and the backup role's
    configuration sets ``log-level-console=warn``, which would hide it."""
    return [binary, '--stanza=%s' % stanza, '--repo=%d' % repo, '--log-level-console=info', 'verify']


def archiver_argv(psql, port):
    """argv of the archiver read: one row, fields separated by ``|`` (WAL names and numbers never contain one)."""
    return [psql, '-X', '-A', '-t', '-F', '|', '-p', str(port), '-d', 'postgres', '-c', ARCHIVER_QUERY]


# ---------------------------------------------------------------------------------------------
# small helpers


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value):
    """``value`` as an int when it is a number (or digits in a string), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and re.match(r'^\s*-?\d+\s*$', value):
        return int(value)
    return None


def _float(value):
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _str(value):
    return value if isinstance(value, str) and value else None


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def iso(epoch):
    """Seconds since the epoch as ISO 8601 UTC (``2026-11-27T18:10:05Z``)."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def num(value):
    """A number for a message: at most one decimal, no trailing zeros (7.0 -> 7, 9.25 -> 9.2)."""
    if isinstance(value, float):
        return ('%.1f' % value).rstrip('0').rstrip('.')
    return str(value)


_SECRET_RE = re.compile(r'(?i)([\w.-]*(?:pass|secret|key|token|authorization|credential)[\w.-]*)(\s*[=:]\s*)(\S+)')


def scrub(text, limit=MESSAGE_LIMIT):
    """A message fit for a report: S3 request/response dumps cut off (everything from ``***``), anything that looks like
    ``<...key|pass|secret|token...>=<value>`` redacted, whitespace collapsed, at most ``limit`` characters."""
    text = (text or '').split('***', 1)[0]
    text = _SECRET_RE.sub(lambda m: m.group(1) + m.group(2) + '<redacted>', text)
    text = ' '.join(text.split())
    if len(text) > limit:
        text = text[:limit - 3].rstrip() + '...'
    return text


# ---------------------------------------------------------------------------------------------
# WAL names


def wal_position(name):
    """``(timeline, segment number)`` of a WAL file name (24 hex digits: timeline, log, segment; anything after them,
    as in ``.partial`` or ``.00000028.backup``, is ignored), or None when ``name`` is not one. 16 MB segments."""
    match = _WAL_RE.match(name) if isinstance(name, str) else None
    if not match:
        return None
    timeline, log, seg = (int(part, 16) for part in match.groups())
    return timeline, log * SEGMENTS_PER_LOG + seg


def wal_distance(older, newer):
    """Segments from ``older`` to ``newer`` (negative when ``newer`` is the older one); None when either is not a WAL
    name or their timelines differ."""
    a, b = wal_position(older), wal_position(newer)
    if a is None or b is None or a[0] != b[0]:
        return None
    return b[1] - a[1]


# ---------------------------------------------------------------------------------------------
# pgbackrest info


def _repo_key(entry, sole_repo):
    """The repository an archive or backup entry belongs to: ``database.repo-key``, or the only repository when
    pgBackRest does not say (single-repository output)."""
    key = _int(_dict(entry.get('database')).get('repo-key'))
    return key if key is not None else sole_repo


def parse_info(text, stanza):
    """pgBackRest's ``info --output=json`` (a list with one object per stanza) normalised for ``stanza``::

        {'stanza_status': {'code': 4, 'message': 'different across repos'},
         'repos': {1: {'status_code': 0, 'status_message': 'ok',
                       'backups': [{'label', 'type', 'prior', 'time', 'error'}, ...],   # oldest first
                       'wal_min': '0000...03', 'wal_max': '0000...07', 'archive_id': '15-1'}, ...}}

    Missing keys are tolerated: a repository absent from ``archive`` has no WAL (``wal_min``/``wal_max`` None), a
    backup without ``error`` is taken as without errors, one without ``timestamp.stop`` has ``time`` None. Raises
    PgBackRestError when the text is not JSON of that shape or holds no entry for ``stanza``.
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PgBackRestError('pgbackrest info did not print JSON (%s): %s' % (exc.__class__.__name__, scrub(text, 200) or 'no output'))
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise PgBackRestError('pgbackrest info printed JSON that is not a list of stanzas')
    entries = [entry for entry in data if isinstance(entry, dict)]
    named = [entry for entry in entries if entry.get('name') == stanza]
    if named:
        entry = named[0]
    elif len(entries) == 1 and 'name' not in entries[0]:
        entry = entries[0]
    else:
        raise PgBackRestError('pgbackrest info has no stanza %s (it lists: %s)'
                              % (stanza, ', '.join(str(e.get('name')) for e in entries) or 'none'))

    status = _dict(entry.get('status'))
    code = _int(status.get('code'))
    message = _str(status.get('message')) or STATUS_MESSAGES.get(code, 'unknown')
    if _dict(_dict(status.get('lock')).get('backup')).get('held') is True:
        message += ' (backup/expire running)'
    stanza_status = {'code': code, 'message': scrub(message)}

    repos = {}
    repo_list = entry.get('repo')
    if isinstance(repo_list, list):
        for repo in repo_list:
            key = _int(_dict(repo).get('key'))
            if key is None:
                continue
            repo_status = _dict(repo.get('status'))
            repo_code = _int(repo_status.get('code'))
            repos[key] = {'status_code': repo_code,
                          'status_message': scrub(_str(repo_status.get('message')) or STATUS_MESSAGES.get(repo_code, 'unknown')),
                          'backups': [], 'wal_min': None, 'wal_max': None, 'archive_id': None}
    else:  # before pgBackRest 2.33: one repository, the stanza's status is its status
        repos[1] = {'status_code': code, 'status_message': stanza_status['message'],
                    'backups': [], 'wal_min': None, 'wal_max': None, 'archive_id': None}
    sole = next(iter(repos)) if len(repos) == 1 else None

    # archive: per repository, the archive of the newest database (the highest db id: after a stanza-upgrade the old
    # one's WAL names are not comparable), its greatest WAL.
    chosen = {}
    for archive in _list(entry.get('archive')):
        archive = _dict(archive)
        key = _repo_key(archive, sole)
        if key not in repos:
            continue
        db_id = _int(_dict(archive.get('database')).get('id')) or 0
        wal_max, wal_min = _str(archive.get('max')), _str(archive.get('min'))
        if wal_position(wal_max) is None:
            wal_max = None
        if wal_position(wal_min) is None:
            wal_min = None
        rank_key = (db_id, wal_max is not None, wal_max or '')
        if key not in chosen or rank_key > chosen[key][0]:
            chosen[key] = (rank_key, {'wal_min': wal_min, 'wal_max': wal_max, 'archive_id': _str(archive.get('id'))})
    for key, (dummy, archive) in chosen.items():
        repos[key].update(archive)

    for backup in _list(entry.get('backup')):
        backup = _dict(backup)
        key = _repo_key(backup, sole)
        label = _str(backup.get('label'))
        if key not in repos or label is None:
            continue
        stop = _int(_dict(backup.get('timestamp')).get('stop'))
        repos[key]['backups'].append({
            'label': label,
            'type': _str(backup.get('type')),
            'prior': _str(backup.get('prior')),
            'time': stop,
            'error': backup.get('error') is True,
        })
    for repo in repos.values():
        repo['backups'].sort(key=lambda b: (b['time'] is None, b['time'] or 0, b['label']))
    return {'stanza_status': stanza_status, 'repos': repos}


# ---------------------------------------------------------------------------------------------
# pgbackrest verify

_LOG_PREFIX_RE = re.compile(r'^P\d+\s+[A-Z]+:\s*')
_COUNT_RE = re.compile(r'(missing|checksum invalid|size invalid|other):\s*(\d+)')
_COUNT_ZERO_RE = re.compile(r'(missing|checksum invalid|size invalid|other):\s*0\b')


def _verify_failure_line(line):
    if re.search(r'\b(ERROR|ASSERT):', line):
        return True
    body = _LOG_PREFIX_RE.sub('', line)
    if re.search(r'\bstatus:\s*(error|invalid|manifest missing)\b', body):
        return True
    if any(int(count) > 0 for dummy, count in _COUNT_RE.findall(body)):
        return True
    return bool(re.search(r'invalid|missing|no usable', _COUNT_ZERO_RE.sub('', body), re.IGNORECASE))


def judge_verify(rc, stdout, stderr):
    """``(ok, message)`` of one ``pgbackrest verify``: a non-zero exit, an ERROR line, ``status: error``, a backup
    ``status: invalid``/``manifest missing``, a non-zero ``missing``/``checksum invalid``/``size invalid``/``other``
    count or any other line about something invalid or missing is a failure; the message is then the lines that
    say what (at most the last five, the count lines with the archive or backup line before them)."""
    lines = []
    for raw in ('%s\n%s' % (stdout or '', stderr or '')).splitlines():
        line = raw.strip()
        if line and not re.search(r'\bcommand (begin|end)\b', line):
            lines.append(line)
    picked = []
    for index, line in enumerate(lines):
        if _verify_failure_line(line):
            body = _LOG_PREFIX_RE.sub('', line)
            if _COUNT_RE.match(body) and index and lines[index - 1] not in picked:
                picked.append(lines[index - 1])  # "checksum invalid: 1" says little without its "backup: ..." line
            if line not in picked:
                picked.append(line)
        elif line.startswith('HINT:') and picked and index and lines[index - 1] == picked[-1]:
            picked.append(line)  # pgBackRest's hint right after its error
    if rc == 0 and not picked:
        return True, 'verify ok'
    shown = picked[-5:] if picked else lines[-3:]
    message = '; '.join(shown) or 'no output'
    if rc != 0:
        message = 'exit code %d: %s' % (rc, message)
    return False, scrub(message)


# ---------------------------------------------------------------------------------------------
# the archiver


def parse_archiver(rc, stdout, stderr):
    """The archiver row of :data:`ARCHIVER_QUERY` as a dict (WAL names, epoch floats; None for NULLs), or
    ``{'error': <why>}`` when psql failed. Raises StandbyError when the server is in recovery."""
    if rc != 0:
        if 'recovery is in progress' in (stderr or '') or 'recovery is in progress' in (stdout or ''):
            raise StandbyError('this server is a standby (pg_current_wal_lsn() fails during recovery)')
        return {'error': scrub((stderr or '').strip() or (stdout or '').strip() or 'psql exit code %d' % rc)}
    rows = [line for line in (stdout or '').splitlines() if line.count('|') == len(ARCHIVER_FIELDS) - 1]
    if not rows:
        return {'error': scrub('psql printed no archiver row: %s' % ((stdout or '').strip() or 'no output'))}
    values = rows[0].split('|')
    row = dict(zip(ARCHIVER_FIELDS, (value.strip() or None for value in values)))
    for field in ('last_archived_time', 'last_failed_time', 'db_now'):
        row[field] = _float(row[field])
    for field in ('last_archived_wal', 'last_failed_wal', 'current_wal'):
        row[field] = row[field] or None
    row['error'] = None
    return row


def archive_state(archiver, now):
    """What the module returns as ``archive``, from :func:`parse_archiver`'s dict (None when the archiver was not read).

    ``pending``: the current WAL segment is newer than the last one archived (written data is not in any repository
    yet). ``exposure_s``: seconds since the last archived segment when something is pending, 0 when nothing is, None
    when that cannot be told. Ages are taken from the server's ``now()`` when it answered (the clock that stamped the
    archiver's times), else from ``now``.
    """
    state = dict((field, None) for field in ARCHIVER_FIELDS if field != 'db_now')
    state.update(pending=None, exposure_s=None, error=None)
    if not archiver:
        return state
    if archiver.get('error'):
        state['error'] = archiver['error']
        return state
    for field in state:
        if field in archiver:
            state[field] = archiver[field]
    for field in ('last_archived_time', 'last_failed_time'):
        if state[field] is not None:
            state[field] = round(state[field], 3)
    clock = archiver.get('db_now') if archiver.get('db_now') is not None else now
    current, archived = wal_position(state['current_wal']), wal_position(state['last_archived_wal'])
    if current is None:
        pending = None
    elif archived is None:  # nothing archived yet, or a .history file: assume the worst
        pending = True
    else:
        pending = current > archived
    state['pending'] = pending
    if pending is False:
        state['exposure_s'] = 0
    elif pending and state['last_archived_time'] is not None:
        state['exposure_s'] = max(0, int(round(clock - state['last_archived_time'])))
    return state


def archiving_failing(archive):
    """Whether the archiver's last failure is later than its last success (or it never succeeded)."""
    failed = archive.get('last_failed_time')
    if failed is None:
        return False
    archived = archive.get('last_archived_time')
    return archived is None or failed > archived


# ---------------------------------------------------------------------------------------------
# regions


def build_regions(parsed, regions, now):
    """One dict per requested region, in their order (see the module's RETURN), from :func:`parse_info`'s result.
    ``verify`` is set to "not run"; the module fills it in. ``wal_behind`` counts segments behind the newest WAL any
    reachable region holds (None when unknown or on another timeline)."""
    result = []
    for spec in regions:
        repo = parsed['repos'].get(spec['repo'])
        if repo is None:
            entry = {'name': spec['name'], 'repo': spec['repo'], 'reachable': False, 'status_code': None,
                     'status_message': 'repository %d is not in pgBackRest\'s configuration (pgbackrest info does not list it)'
                                       % spec['repo'],
                     'backups': [], 'wal_max': None}
        else:
            entry = {'name': spec['name'], 'repo': spec['repo'], 'reachable': repo['status_code'] != UNREACHABLE,
                     'status_code': repo['status_code'], 'status_message': repo['status_message'],
                     'backups': [dict(backup) for backup in repo['backups']], 'wal_max': repo['wal_max']}
        good = [b for b in entry['backups'] if not b['error'] and b['time'] is not None]
        newest = good[-1] if good else None
        entry['newest_good'] = None if newest is None else {
            'label': newest['label'], 'type': newest['type'], 'time': newest['time'],
            'age_s': max(0, int(round(now - newest['time'])))}
        entry['wal_behind'] = None
        entry['verify'] = {'ran': False, 'ok': None, 'message': None}
        result.append(entry)
    newest_region = newest_wal_region(result)
    if newest_region is not None:
        for entry in result:
            if entry['reachable'] and entry['wal_max']:
                entry['wal_behind'] = wal_distance(entry['wal_max'], newest_region['wal_max'])
    return result


def newest_wal_region(regions):
    """The reachable region holding the newest WAL (highest timeline, then segment; the first one on a tie), or None."""
    best = None
    for entry in regions:
        position = wal_position(entry['wal_max']) if entry['reachable'] else None
        if position is not None and (best is None or position > best[0]):
            best = (position, entry)
    return best[1] if best else None


# ---------------------------------------------------------------------------------------------
# checks


def _hours(seconds):
    return round(seconds / 3600.0, 1)


def newest_check(region, interval_h, margin_h):
    """``backup:<region>:newest``: the region's newest good backup against ``interval_h + margin_h``."""
    name = 'backup:%s:newest' % region['name']
    limit_h = interval_h + margin_h
    limit_text = '%s h (interval %s h + margin %s h)' % (num(float(limit_h)), num(float(interval_h)), num(float(margin_h)))
    if not region['reachable']:
        return make_check(name, 'warning', None, limit_h,
                          'region %s (repo %d) is unreachable, its backups cannot be checked: %s'
                          % (region['name'], region['repo'], region['status_message']),
                          alert='backup_region_unreachable', unit='h')
    newest = region['newest_good']
    if newest is None:
        backups = region['backups']
        if backups:
            last = backups[-1]
            since = ' (from %s)' % iso(last['time']) if last['time'] is not None else ''
            detail = '%d backup(s), none good; the newest, %s%s, has errors' % (len(backups), last['label'], since)
        else:
            detail = 'no backup at all'
        return make_check(name, 'critical', None, limit_h,
                          'region %s (repo %d) has no good backup: %s (pgBackRest: %s)'
                          % (region['name'], region['repo'], detail, region['status_message']),
                          alert='backup_stale', unit='h')
    age_h = _hours(newest['age_s'])
    what = 'newest good backup in region %s is %s (%s) from %s, %s h old' % (
        region['name'], newest['label'], newest['type'] or 'unknown type', iso(newest['time']), num(age_h))
    failed = [b['label'] for b in region['backups'] if b['error'] and b['time'] is not None and b['time'] > newest['time']]
    if failed:
        what += ' (newer, with errors: %s)' % ', '.join(failed)
    if newest['age_s'] < limit_h * 3600:
        return make_check(name, 'ok', age_h, limit_h, '%s; limit %s' % (what, limit_text), unit='h')
    return make_check(name, 'critical', age_h, limit_h,
                      '%s: stale since %s, older than the limit of %s' % (what, iso(newest['time'] + limit_h * 3600), limit_text),
                      alert='backup_stale', unit='h')


def verify_check(region):
    """``backup:<region>:verify`` for a region whose repository was verified."""
    name = 'backup:%s:verify' % region['name']
    if region['verify']['ok']:
        return make_check(name, 'ok', None, None, 'region %s (repo %d): pgbackrest verify found no problem' % (region['name'], region['repo']))
    return make_check(name, 'critical', None, None,
                      'region %s (repo %d): pgbackrest verify failed - a restore from this region may not work: %s'
                      % (region['name'], region['repo'], region['verify']['message']),
                      alert='backup_invalid')


def wal_check(region, newest_region):
    """``backup:<region>:wal``: how far the region's archive is behind the newest WAL any reachable region holds."""
    name = 'backup:%s:wal' % region['name']
    unit = 'segments'
    if not region['wal_max'] or newest_region is None:
        return make_check(name, 'ok', None, 0, 'region %s (repo %d) holds no archived WAL yet; nothing to compare'
                          % (region['name'], region['repo']), unit=unit)
    behind = region['wal_behind']
    if behind is None:
        return make_check(name, 'warning', None, 0,
                          'region %s holds WAL up to %s (timeline %d), region %s up to %s (timeline %d): not archived here since '
                          'the timeline changed' % (region['name'], region['wal_max'], wal_position(region['wal_max'])[0],
                                                    newest_region['name'], newest_region['wal_max'],
                                                    wal_position(newest_region['wal_max'])[0]),
                          alert='wal_archive_lag', unit=unit)
    if behind <= 0:
        return make_check(name, 'ok', 0, 0, 'region %s holds WAL up to %s, the newest archived anywhere'
                          % (region['name'], region['wal_max']), unit=unit)
    return make_check(name, 'warning', behind, 0,
                      'region %s: %d WAL segments behind %s (it holds up to %s, %s up to %s)'
                      % (region['name'], behind, newest_region['name'], region['wal_max'], newest_region['name'],
                         newest_region['wal_max']),
                      alert='wal_archive_lag', unit=unit)


def rpo_check(archive, rpo_s):
    """``backup:rpo``: the archive's exposure (seconds of written WAL in no repository) against ``rpo_s``: ok below
    half of it, warning from half, critical from ``rpo_s``; archiving that fails now is at least a warning."""
    name = 'backup:rpo'
    warn_s = rpo_s / 2.0
    exposure = archive.get('exposure_s')
    failing = archiving_failing(archive)
    if archive.get('error'):
        return make_check(name, 'critical', None, rpo_s, 'the WAL archive could not be read from PostgreSQL (pg_stat_archiver): %s'
                          % archive['error'], alert='rpo_at_risk', unit='s')
    if exposure is None:
        if archive.get('last_archived_wal') is None:
            text = 'no WAL segment was ever archived (pg_stat_archiver is empty); current WAL %s' % (archive.get('current_wal') or 'unknown')
        else:
            text = 'the archive exposure cannot be told (last archived %s, current WAL %s)' % (
                archive.get('last_archived_wal'), archive.get('current_wal') or 'unknown')
        status = 'critical'
    else:
        if exposure >= rpo_s:
            status = 'critical'
        elif exposure >= warn_s:
            status = 'warning'
        else:
            status = 'ok'
        if archive.get('pending'):
            text = 'archive exposure %d s: WAL written since %s was archived at %s is in no repository yet' % (
                exposure, archive['last_archived_wal'], iso(archive['last_archived_time']))
        else:
            text = 'archive exposure 0 s: every WAL segment up to the current one (%s) is archived' % archive.get('current_wal')
        if status == 'ok':
            text += ' (warning at %s s, RPO %d s)' % (num(warn_s), rpo_s)
        else:
            text += ' (%s at %s s, RPO %d s)' % (status, num(warn_s) if status == 'warning' else rpo_s, rpo_s)
    if failing:
        text += '; archiving failing since %s: %s' % (iso(archive['last_failed_time']), archive.get('last_failed_wal') or 'unknown WAL')
        if archive.get('last_archived_time') is not None:
            text += ' (last success %s at %s)' % (archive.get('last_archived_wal'), iso(archive['last_archived_time']))
        if rank(status) < rank('warning'):
            status = 'warning'
    return make_check(name, status, exposure, rpo_s, text, alert='rpo_at_risk', unit='s')


def evaluate(regions, archive, interval_h, margin_h, rpo_s):
    """Every check, in the report's order: each region's newest backup, each verified region's verify, each reachable
    region's WAL, the RPO (when ``archive`` is given), and ``backup:regions`` when no region is reachable."""
    checks = [newest_check(region, interval_h, margin_h) for region in regions]
    checks += [verify_check(region) for region in regions if region['verify']['ran']]
    newest_region = newest_wal_region(regions)
    checks += [wal_check(region, newest_region) for region in regions if region['reachable']]
    if archive is not None:
        checks.append(rpo_check(archive, rpo_s))
    if not any(region['reachable'] for region in regions):
        checks.append(make_check('backup:regions', 'critical', 0, len(regions),
                                 'no region holds a reachable copy: none of %s can be reached'
                                 % ', '.join('%s (repo %d)' % (r['name'], r['repo']) for r in regions),
                                 alert='backup_stale'))
    return checks
