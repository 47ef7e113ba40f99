# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic used by the ``dealerscope.ops.db_migrate`` module.

A migrations directory holds ``V<version>__<description>.up.sql`` (one per version), and optionally
``.down.sql`` and ``.verify.sql`` files with the same stem.  :func:`scan` reads and validates it,
:func:`plan` compares it with the history table and the target version, and the database functions
(:func:`ensure_history`, :func:`read_history`, :func:`lock`, :func:`apply_up`, :func:`apply_down`,
:func:`repair`) take a DB-API connection (psycopg2 in production, a fake in the unit tests) with
``autocommit`` off: every migration runs in its own transaction together with its history row.
No AnsibleModule import here.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field

FILE_RE = re.compile(r'^V(?P<version>[0-9]+)__(?P<description>[a-z0-9_]+)\.(?P<kind>up|down|verify)\.sql$')
# A line that is only a transaction control statement (after comments, strings and dollar-quoted bodies are
# blanked, so that the BEGIN / END; of a PL/pgSQL function body or DO block is not mistaken for one).
TXN_RE = re.compile(r'^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION|END)(\s+(TRANSACTION|WORK))?\s*;\s*$', re.IGNORECASE)
TABLE_PART = r'[a-z_][a-z0-9_]{0,62}'
TABLE_RE = re.compile(r'^(?:%s\.)?%s$' % (TABLE_PART, TABLE_PART))
LOCK_NAMESPACE = 'dealerscope.ops.db_migrate:'
#: SQLSTATE of query_canceled (statement_timeout).
QUERY_CANCELED = '57014'
VERIFY_SQL_SHOWN = 200


class MigrationError(ValueError):
    """A problem with the migrations directory, the history or the plan (one problem per line)."""

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__('\n'.join(self.problems))


class LockTimeout(MigrationError):
    """Another run holds the advisory lock."""


class StepError(MigrationError):
    """A migration step failed; its transaction was rolled back."""

    def __init__(self, migration, direction, reason):
        self.version = migration.version
        self.description = migration.description
        self.direction = direction
        self.reason = reason
        super().__init__('V%d (%s) %s failed, rolled back (nothing of V%d was %s): %s' % (
            migration.version, migration.description, direction, migration.version,
            'applied' if direction == 'up' else 'reverted', reason))


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    up_sql: str
    down_sql: str | None = None
    verify_sql: str | None = None
    checksum: str = ''
    down_checksum: str | None = None
    files: tuple = field(default_factory=tuple)

    @property
    def name(self):
        return 'V%d (%s)' % (self.version, self.description)


def sha256_hex(data):
    if isinstance(data, str):
        data = data.encode('utf-8')
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# SQL text helpers
# --------------------------------------------------------------------------

_DOLLAR_RE = re.compile(r'\$([A-Za-z_][A-Za-z0-9_]*)?\$')


def _blank(text):
    """Spaces for every character of ``text`` but its newlines (keeps line numbers)."""
    return re.sub(r'[^\n]', ' ', text)


def blank_sql(sql):
    """``sql`` with comments, string literals, quoted identifiers and dollar-quoted bodies blanked out."""
    out = []
    i = 0
    n = len(sql)
    while i < n:
        char = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ''
        if char == '-' and nxt == '-':
            end = sql.find('\n', i)
            end = n if end < 0 else end
        elif char == '/' and nxt == '*':
            depth, end = 1, i + 2
            while end < n and depth:
                if sql.startswith('/*', end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith('*/', end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif char in '\'"':
            backslash = char == "'" and i > 0 and sql[i - 1] in 'eE' and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == '_'))
            end = i + 1
            while end < n:
                if backslash and sql[end] == '\\':
                    end += 2
                    continue
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:
                        end += 2
                        continue
                    end += 1
                    break
                end += 1
        elif char == '$' and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == '_')):
            match = _DOLLAR_RE.match(sql, i)
            if not match:
                out.append(char)
                i += 1
                continue
            close = sql.find(match.group(0), match.end())
            end = n if close < 0 else close + len(match.group(0))
        else:
            out.append(char)
            i += 1
            continue
        end = min(end, n)
        out.append(_blank(sql[i:end]))
        i = end
    return ''.join(out)


def transaction_lines(sql):
    """``[(line number, statement)]`` of the lines of ``sql`` that are only a transaction control statement."""
    found = []
    for number, line in enumerate(blank_sql(sql).splitlines(), 1):
        if TXN_RE.match(line):
            found.append((number, ' '.join(line.split())))
    return found


def is_empty_sql(sql):
    return not blank_sql(sql).replace(';', ' ').strip()


# --------------------------------------------------------------------------
# The migrations directory
# --------------------------------------------------------------------------

def _describe_missing(low, high):
    if low == high:
        return 'version %d is missing' % low
    return 'versions %d to %d are missing' % (low, high)


def scan(path):
    """Read and validate the migrations directory ``path``; return the migrations ordered by version.

    Every problem found is collected and raised together as one :class:`MigrationError`.
    """
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise MigrationError('%s: cannot read the migrations directory: %s' % (path, exc.strerror or exc)) from exc
    problems = []
    # version -> stem -> kind -> (file name, bytes)
    found = {}
    for name in names:
        full = os.path.join(path, name)
        if not name.endswith('.sql') or not os.path.isfile(full):
            continue
        match = FILE_RE.match(name)
        if not match:
            problems.append('%s: not a migration file name: expected V<version>__<description>.up.sql (or .down.sql, .verify.sql), '
                            'the description in lower case letters, digits and underscores' % name)
            continue
        try:
            with open(full, 'rb') as handle:
                data = handle.read()
            data.decode('utf-8')
        except OSError as exc:
            problems.append('%s: cannot read: %s' % (name, exc.strerror or exc))
            continue
        except UnicodeDecodeError as exc:
            problems.append('%s: not UTF-8: %s' % (name, exc))
            continue
        version = int(match.group('version'))
        if version == 0:
            problems.append('%s: version 0 is reserved (target 0 means no migration applied); start at 1' % name)
            continue
        stem = name[:-len('.%s.sql' % match.group('kind'))]
        found.setdefault(version, {}).setdefault(stem, {})[match.group('kind')] = (name, data)

    migrations = []
    for version in sorted(found):
        stems = found[version]
        if len(stems) > 1:
            files = sorted(fname for kinds in stems.values() for fname, _data in kinds.values())
            for fname in files:
                problems.append('%s: duplicate version %d (%s)' % (fname, version, ', '.join(other for other in files if other != fname)))
        for stem in sorted(stems):
            kinds = stems[stem]
            if 'up' not in kinds:
                for kind in sorted(kinds):
                    problems.append('%s: .%s.sql without its %s.up.sql' % (kinds[kind][0], kind, stem))
                continue
            texts = {}
            for kind, (fname, data) in sorted(kinds.items()):
                text = data.decode('utf-8')
                texts[kind] = text
                if kind in ('up', 'verify') and is_empty_sql(text):
                    problems.append('%s: empty %s script (nothing but whitespace and comments)' % (fname, kind))
                for number, statement in transaction_lines(text):
                    problems.append('%s: line %d: %s: db_migrate runs each migration in its own transaction, remove it'
                                    % (fname, number, statement))
            if len(stems) == 1:
                migrations.append(Migration(
                    version=version,
                    description=FILE_RE.match(kinds['up'][0]).group('description'),
                    up_sql=texts['up'],
                    down_sql=texts.get('down'),
                    verify_sql=texts.get('verify'),
                    checksum=sha256_hex(kinds['up'][1]),
                    down_checksum=sha256_hex(kinds['down'][1]) if 'down' in kinds else None,
                    files=tuple(kinds[kind][0] for kind in ('up', 'down', 'verify') if kind in kinds),
                ))
    versions = sorted(found)
    for previous, current in zip(versions, versions[1:]):
        if current != previous + 1:
            first_file = sorted(fname for kinds in found[current].values() for fname, _data in kinds.values())[0]
            problems.append('%s: gap: %s between %d and %d (versions must be contiguous)'
                            % (first_file, _describe_missing(previous + 1, current - 1), previous, current))
    if problems:
        raise MigrationError(problems)
    return migrations


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------

def parse_target(target):
    """``'latest'`` -> None, a version number (int or digits) -> int; anything else raises MigrationError."""
    if target is None or (isinstance(target, str) and target.strip().lower() == 'latest'):
        return None
    if isinstance(target, bool):
        raise MigrationError('target must be latest or a version number, not %r' % (target,))
    if isinstance(target, int):
        value = target
    elif isinstance(target, str) and target.strip().isdigit():
        value = int(target.strip())
    else:
        raise MigrationError('target must be latest or a version number, not %r' % (target,))
    if value < 0:
        raise MigrationError('target must be latest or a version number >= 0, not %r' % (target,))
    return value


def check_target(migrations, target):
    """Reject, without the history, a target that can never be valid (neither 0, latest nor a file's version).

    A version applied but without its file is an error of its own, so such a target never plans either.
    """
    value = parse_target(target)
    if value is not None and value != 0 and value not in {m.version for m in migrations}:
        raise MigrationError('target: unknown version %d (%s)' % (value, _known(migrations)))
    return value


def _known(migrations):
    if not migrations:
        return 'the migrations directory is empty; use 0 or latest'
    return 'known: 0 and %d to %d' % (migrations[0].version, migrations[-1].version)


def plan(migrations, applied, target, repair=False):
    """What to do to go from the ``applied`` history rows to ``target``.

    Return ``dict(direction='up'|'down'|'none', steps=[Migration], repairs=[version], current=int, target=int)``;
    raise :class:`MigrationError` with every problem found, before anything is changed.
    """
    by_version = {m.version: m for m in migrations}
    rows = sorted(applied, key=lambda row: int(row['version']))
    problems = []
    repairs = []
    applied_versions = [int(row['version']) for row in rows]
    for row in rows:
        version = int(row['version'])
        migration = by_version.get(version)
        if migration is None:
            problems.append('V%d (%s) is applied (history) but has no file in the migrations directory; restore V%d__%s.up.sql'
                            % (version, row.get('description'), version, row.get('description')))
            continue
        edits = []
        if row.get('checksum') != migration.checksum:
            edits.append('checksum %s in the history, %s now' % (_short(row.get('checksum')), _short(migration.checksum)))
        if row.get('description') != migration.description:
            edits.append('recorded as %s, the file is %s' % (row.get('description'), migration.files[0]))
        if edits:
            if repair:
                repairs.append(version)
            else:
                problems.append('V%d (%s) was edited after it was applied (%s); restore the file, or run with repair=true to accept '
                                'the new checksum' % (version, row.get('description'), '; '.join(edits)))
    current = applied_versions[-1] if applied_versions else 0
    if applied_versions:
        applied_set = set(applied_versions)
        for version in range(min([applied_versions[0]] + [m.version for m in migrations[:1]]), current + 1):
            if version not in applied_set:
                label = by_version[version].name if version in by_version else 'V%d' % version
                problems.append('history has a hole: %s is not applied but V%d is; applied versions must be contiguous'
                                % (label, current))
    try:
        wanted = parse_target(target)
    except MigrationError as exc:
        problems.extend(exc.problems)
        wanted = current
    if wanted is None:
        wanted = migrations[-1].version if migrations else 0
    elif wanted != 0 and wanted not in by_version and wanted not in set(applied_versions):
        problems.append('target: unknown version %d (%s)' % (wanted, _known(migrations)))
    steps = []
    direction = 'none'
    if not problems:
        if wanted > current:
            direction = 'up'
            steps = [m for m in migrations if current < m.version <= wanted]
        elif wanted < current:
            direction = 'down'
            steps = [by_version[v] for v in reversed(applied_versions) if v > wanted]
            for migration in steps:
                if migration.down_sql is None:
                    problems.append('%s has no down script: cannot migrate below version %d' % (migration.name, migration.version))
    if problems:
        raise MigrationError(problems)
    return dict(direction=direction if steps else 'none', steps=steps, repairs=repairs, current=current, target=wanted)


def _short(checksum):
    return (checksum or 'none')[:12]


def advisory_key(history_table):
    """Signed 64-bit key of the session advisory lock that serializes runs on one history table."""
    digest = hashlib.sha256((LOCK_NAMESPACE + history_table).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big', signed=True)


# --------------------------------------------------------------------------
# The database (DB-API connection, psycopg2-like, autocommit off)
# --------------------------------------------------------------------------

def quote_table(name):
    """``"schema"."table"`` for a validated history table name; raise MigrationError for anything else."""
    if not isinstance(name, str) or not TABLE_RE.match(name):
        raise MigrationError('history_table %r: expected [a-z_][a-z0-9_]{0,62}, optionally schema-qualified (schema.table)' % (name,))
    return '.'.join('"%s"' % part for part in name.split('.'))


def ensure_history(conn, table):
    """Create the history table when it does not exist (committed)."""
    sql = ('CREATE TABLE IF NOT EXISTS %s (version integer PRIMARY KEY, description text NOT NULL, checksum text NOT NULL, '
           'down_checksum text, applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL DEFAULT current_user, '
           'execution_ms integer NOT NULL)' % quote_table(table))
    _run(conn, [(sql, None)])


def history_exists(conn, table):
    cur = conn.cursor()
    try:
        cur.execute('SELECT to_regclass(%s)', (quote_table(table),))
        row = cur.fetchone()
    finally:
        conn.rollback()
    return bool(row and row[0] is not None)


def read_history(conn, table):
    """The history rows ordered by version (``[]`` when the table does not exist; it is never created here)."""
    if not history_exists(conn, table):
        return []
    cur = conn.cursor()
    try:
        cur.execute('SELECT version, description, checksum, down_checksum FROM %s ORDER BY version' % quote_table(table))
        rows = cur.fetchall()
    finally:
        conn.rollback()
    return [dict(version=int(row[0]), description=row[1], checksum=row[2], down_checksum=row[3]) for row in rows]


def _run(conn, statements):
    cur = conn.cursor()
    try:
        for sql, params in statements:
            cur.execute(sql, params)
        conn.commit()
    except Exception:
        conn.rollback()
        raise


def pg_error_text(exc):
    """A PostgreSQL error as one readable string (SQLSTATE, message and the LINE/DETAIL/HINT lines)."""
    text = ' '.join(str(exc).split()) or exc.__class__.__name__
    code = getattr(exc, 'pgcode', None)
    return '%s (SQLSTATE %s)' % (text, code) if code else text


def lock(conn, key, timeout_s):
    """Take the session advisory lock ``key``, waiting at most ``timeout_s`` seconds (0: do not wait).

    A session lock is released when the connection closes, so no stale lock outlives its holder.
    """
    message = 'another db_migrate run holds the lock (key %d) for longer than %d s' % (key, timeout_s)
    cur = conn.cursor()
    try:
        if timeout_s <= 0:
            cur.execute('SELECT pg_try_advisory_lock(%s)', (key,))
            row = cur.fetchone()
            if not row or row[0] is not True:
                conn.rollback()
                raise LockTimeout(message)
        else:
            cur.execute('SET statement_timeout = %s', (int(timeout_s * 1000),))
            cur.execute('SELECT pg_advisory_lock(%s)', (key,))
            cur.execute('RESET statement_timeout')
        conn.commit()
    except LockTimeout:
        raise
    except Exception as exc:
        conn.rollback()  # also undoes the SET of the aborted transaction
        if getattr(exc, 'pgcode', None) == QUERY_CANCELED:
            raise LockTimeout(message) from exc
        raise MigrationError('cannot take the advisory lock (key %d): %s' % (key, pg_error_text(exc))) from exc


def _verify_value(row):
    if row is None:
        return 'no row'
    value = row[0] if len(row) else None
    if value is None:
        return 'NULL'
    if value is False:
        return 'false'
    return repr(value)


def apply_up(conn, table, migration):
    """Run ``migration``'s up script, its verify query and its history row in one transaction; return the ms taken."""
    quoted = quote_table(table)
    started = time.monotonic()
    cur = conn.cursor()
    try:
        cur.execute(migration.up_sql)
        if migration.verify_sql is not None:
            cur.execute(migration.verify_sql)
            row = cur.fetchone()
            if not (row is not None and len(row) and row[0] is True):
                shown = ' '.join(migration.verify_sql.split())[:VERIFY_SQL_SHOWN]
                raise StepError(migration, 'up', 'V%d verify failed: %s returned %s' % (migration.version, shown, _verify_value(row)))
        elapsed = int(round((time.monotonic() - started) * 1000))
        cur.execute('INSERT INTO %s (version, description, checksum, down_checksum, execution_ms) VALUES (%%s, %%s, %%s, %%s, %%s)' % quoted,
                    (migration.version, migration.description, migration.checksum, migration.down_checksum, elapsed))
        conn.commit()
    except StepError:
        conn.rollback()
        raise
    except Exception as exc:
        conn.rollback()
        raise StepError(migration, 'up', pg_error_text(exc)) from exc
    return elapsed


def apply_down(conn, table, migration):
    """Run ``migration``'s down script and delete its history row in one transaction; return the ms taken."""
    quoted = quote_table(table)
    started = time.monotonic()
    cur = conn.cursor()
    try:
        cur.execute(migration.down_sql)
        cur.execute('DELETE FROM %s WHERE version = %%s' % quoted, (migration.version,))
        conn.commit()
    except Exception as exc:
        conn.rollback()
        raise StepError(migration, 'down', pg_error_text(exc)) from exc
    return int(round((time.monotonic() - started) * 1000))


def repair(conn, table, migration):
    """Accept the file's current checksum (and description) for an applied migration."""
    sql = 'UPDATE %s SET checksum = %%s, description = %%s, down_checksum = %%s WHERE version = %%s' % quote_table(table)
    try:
        _run(conn, [(sql, (migration.checksum, migration.description, migration.down_checksum, migration.version))])
    except Exception as exc:
        raise MigrationError('repair of %s failed: %s' % (migration.name, pg_error_text(exc))) from exc
