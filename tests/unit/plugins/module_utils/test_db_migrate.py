# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dealerscope.ops db_migrate pure logic: directory scan, plan, advisory key, and the DB steps against a recording fake."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import db_migrate as dm
from ansible_collections.dealerscope.ops.plugins.module_utils.db_migrate import Migration, MigrationError, plan, scan


def write(directory, files):
    for name, text in files.items():
        (directory / name).write_text(text)
    return str(directory)


def scan_problems(directory, files):
    with pytest.raises(MigrationError) as exc:
        scan(write(directory, files))
    return exc.value.problems


GOOD = {
    'V1__create_dealers.up.sql': 'CREATE TABLE dealers (id bigint PRIMARY KEY);\n',
    'V1__create_dealers.down.sql': 'DROP TABLE dealers;\n',
    'V2__add_region.up.sql': 'ALTER TABLE dealers ADD COLUMN region text;\n',
    'V2__add_region.verify.sql': "SELECT count(*) = 1 FROM information_schema.columns WHERE column_name = 'region';\n",
}


# --------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------

def test_scan_reads_a_good_directory(tmp_path):
    migrations = scan(write(tmp_path, dict(GOOD, **{'README.md': 'how to write migrations: see docs\n', 'notes.txt': 'x'})))
    (tmp_path / 'archive.sql').mkdir()  # a directory is not a file: ignored (created after the scan above: scan again)
    assert scan(str(tmp_path)) == migrations
    assert [(m.version, m.description) for m in migrations] == [(1, 'create_dealers'), (2, 'add_region')]
    first, second = migrations
    assert first.up_sql == GOOD['V1__create_dealers.up.sql']
    assert first.down_sql == 'DROP TABLE dealers;\n' and first.verify_sql is None
    assert first.checksum == hashlib.sha256(GOOD['V1__create_dealers.up.sql'].encode()).hexdigest()
    assert first.down_checksum == hashlib.sha256(b'DROP TABLE dealers;\n').hexdigest()
    assert first.files == ('V1__create_dealers.up.sql', 'V1__create_dealers.down.sql')
    assert second.down_sql is None and second.down_checksum is None and second.verify_sql.startswith('SELECT count(*)')


def test_leading_zeros_are_compared_as_integers(tmp_path):
    migrations = scan(write(tmp_path, {'V001__a.up.sql': 'SELECT 1;', 'V2__b.up.sql': 'SELECT 2;', 'V0003__c.up.sql': 'SELECT 3;',
                                       'V10__j.up.sql': 'x;', 'V4__d.up.sql': 'x;', 'V5__e.up.sql': 'x;', 'V6__f.up.sql': 'x;',
                                       'V7__g.up.sql': 'x;', 'V8__h.up.sql': 'x;', 'V9__i.up.sql': 'x;'}))
    assert [m.version for m in migrations] == list(range(1, 11))


def test_empty_directory_has_no_migrations(tmp_path):
    assert scan(str(tmp_path)) == []


def test_missing_directory(tmp_path):
    with pytest.raises(MigrationError, match='cannot read the migrations directory'):
        scan(str(tmp_path / 'nope'))


@pytest.mark.parametrize('name', ['V1_a.up.sql', 'v1__a.up.sql', 'V1__Add.up.sql', 'V1__a.sql', 'V1__a.undo.sql', 'Va__x.up.sql',
                                  'V1__a-b.up.sql', 'init.sql', 'V__a.up.sql'])
def test_bad_file_name(tmp_path, name):
    problems = scan_problems(tmp_path, {'V1__ok.up.sql': 'SELECT 1;', name: 'SELECT 1;'})
    assert len(problems) == 1
    assert problems[0].startswith(name + ': not a migration file name')


def test_down_or_verify_without_up(tmp_path):
    problems = scan_problems(tmp_path, {'V1__a.up.sql': 'SELECT 1;', 'V2__b.down.sql': 'SELECT 2;', 'V1__typo.verify.sql': 'SELECT true;'})
    assert any(p.startswith('V2__b.down.sql: .down.sql without its V2__b.up.sql') for p in problems)
    assert any(p.startswith('V1__typo.verify.sql: .verify.sql without its V1__typo.up.sql') for p in problems)


@pytest.mark.parametrize('other', ['V1__b.up.sql', 'V01__a.up.sql'])
def test_duplicate_version(tmp_path, other):
    problems = scan_problems(tmp_path, {'V1__a.up.sql': 'SELECT 1;', other: 'SELECT 1;', 'V2__c.up.sql': 'SELECT 2;'})
    assert 'V1__a.up.sql: duplicate version 1 (%s)' % other in problems
    assert '%s: duplicate version 1 (V1__a.up.sql)' % other in problems


def test_gap_in_versions(tmp_path):
    problems = scan_problems(tmp_path, {'V1__a.up.sql': 'x;', 'V2__b.up.sql': 'x;', 'V4__d.up.sql': 'x;', 'V8__h.up.sql': 'x;'})
    assert problems == ['V4__d.up.sql: gap: version 3 is missing between 2 and 4 (versions must be contiguous)',
                        'V8__h.up.sql: gap: versions 5 to 7 are missing between 4 and 8 (versions must be contiguous)']


def test_versions_may_start_above_one(tmp_path):
    # A squashed baseline: the first file is V40; contiguity is counted from the lowest version.
    assert [m.version for m in scan(write(tmp_path, {'V40__base.up.sql': 'x;', 'V41__b.up.sql': 'x;'}))] == [40, 41]


def test_version_zero_is_reserved(tmp_path):
    problems = scan_problems(tmp_path, {'V0__a.up.sql': 'x;', 'V1__b.up.sql': 'x;'})
    assert problems[0].startswith('V0__a.up.sql: version 0 is reserved')


@pytest.mark.parametrize('text', ['', '   \n\n', '-- nothing yet\n', '/* later */\n;\n'])
def test_empty_up_script(tmp_path, text):
    problems = scan_problems(tmp_path, {'V1__a.up.sql': text, 'V1__a.down.sql': ''})
    assert problems == ['V1__a.up.sql: empty up script (nothing but whitespace and comments)']


@pytest.mark.parametrize('line', ['BEGIN;', 'COMMIT;', 'ROLLBACK;', 'START TRANSACTION;', 'END;', 'begin;', '  Commit ;  ',
                                  'BEGIN TRANSACTION;', 'COMMIT WORK;'])
def test_transaction_control_is_refused(tmp_path, line):
    problems = scan_problems(tmp_path, {'V1__a.up.sql': 'CREATE TABLE t (id int);\n%s\n' % line})
    assert len(problems) == 1
    assert problems[0].startswith('V1__a.up.sql: line 2: ')
    assert problems[0].endswith('db_migrate runs each migration in its own transaction, remove it')


def test_transaction_control_in_down_and_verify_is_refused(tmp_path):
    problems = scan_problems(tmp_path, {'V1__a.up.sql': 'SELECT 1;', 'V1__a.down.sql': 'BEGIN;\nDROP TABLE t;\nCOMMIT;\n',
                                        'V1__a.verify.sql': 'SELECT true;\nEND;'})
    assert [p.split(':')[0:2] for p in problems] == [['V1__a.down.sql', ' line 1'], ['V1__a.down.sql', ' line 3'],
                                                     ['V1__a.verify.sql', ' line 2']]


def test_plpgsql_bodies_strings_and_comments_are_not_transaction_control(tmp_path):
    up = ("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\n"
          "END;\n$$;\nDO $body$\nBEGIN\n  PERFORM 1;\nEND;\n$body$;\n-- COMMIT;\n/* outer /* nested */\nROLLBACK;\n*/\n"
          "INSERT INTO notes (text) VALUES ('\nCOMMIT;\n');\n")
    assert scan(write(tmp_path, {'V1__a.up.sql': up}))[0].up_sql == up


def test_every_problem_is_reported_together(tmp_path):
    problems = scan_problems(tmp_path, {
        'V1__a.up.sql': 'BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n',
        'V1__b.up.sql': 'SELECT 1;',
        'V2__c.up.sql': '',
        'V3__d.down.sql': 'SELECT 1;',
        'V5__e.up.sql': 'SELECT 5;',
        'bad.sql': 'SELECT 1;',
        'README.md': 'ignored',
    })
    text = '\n'.join(problems)
    for needle in ('bad.sql: not a migration file name', 'V1__a.up.sql: duplicate version 1', 'V1__b.up.sql: duplicate version 1',
                   'V1__a.up.sql: line 1: BEGIN;', 'V1__a.up.sql: line 3: COMMIT;', 'V2__c.up.sql: empty up script',
                   'V3__d.down.sql: .down.sql without its V3__d.up.sql', 'V5__e.up.sql: gap: version 4 is missing between 3 and 5'):
        assert needle in text
    assert 'README' not in text
    assert len(problems) == 8


# --------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------

def make(count, down=True, start=1):
    return [Migration(version=v, description='m%d' % v, up_sql='CREATE TABLE t%d (id int);' % v,
                      down_sql='DROP TABLE t%d;' % v if down else None, checksum=dm.sha256_hex('up%d' % v),
                      files=('V%d__m%d.up.sql' % (v, v),)) for v in range(start, start + count)]


def rows(migrations):
    return [dict(version=m.version, description=m.description, checksum=m.checksum) for m in migrations]


def test_plan_up_from_nothing():
    migrations = make(3)
    result = plan(migrations, [], 'latest')
    assert result == dict(direction='up', steps=migrations, repairs=[], current=0, target=3)


def test_plan_up_to_a_target_and_from_a_version():
    migrations = make(5)
    assert [m.version for m in plan(migrations, rows(migrations[:1]), '3')['steps']] == [2, 3]
    assert plan(migrations, rows(migrations[:1]), 4)['target'] == 4
    assert plan(migrations, rows(migrations[:1]), '004')['target'] == 4


def test_plan_none_when_at_target():
    migrations = make(3)
    assert plan(migrations, rows(migrations), 'latest') == dict(direction='none', steps=[], repairs=[], current=3, target=3)
    assert plan([], [], 'latest') == dict(direction='none', steps=[], repairs=[], current=0, target=0)


def test_plan_down_reverses_newest_first():
    migrations = make(4)
    result = plan(migrations, rows(migrations[:3]), '1')
    assert result['direction'] == 'down' and result['current'] == 3 and result['target'] == 1
    assert [m.version for m in result['steps']] == [3, 2]
    assert [m.version for m in plan(migrations, rows(migrations), 0)['steps']] == [4, 3, 2, 1]


def test_plan_down_without_down_script_is_refused_before_any_step():
    migrations = make(2) + make(2, down=False, start=3)
    with pytest.raises(MigrationError) as exc:
        plan(migrations, rows(migrations), '1')
    assert exc.value.problems == ['V4 (m4) has no down script: cannot migrate below version 4',
                                  'V3 (m3) has no down script: cannot migrate below version 3']
    # Going down to 3 only needs V4's down script... which is missing too; to 4 there is nothing to do.
    assert plan(migrations, rows(migrations), '4')['direction'] == 'none'


def test_plan_edited_migration_is_refused_unless_repair():
    migrations = make(3)
    history = rows(migrations[:2])
    history[1]['checksum'] = 'f' * 64
    with pytest.raises(MigrationError) as exc:
        plan(migrations, history, 'latest')
    assert exc.value.problems == ['V2 (m2) was edited after it was applied (checksum ffffffffffff in the history, %s now); restore the '
                                  'file, or run with repair=true to accept the new checksum' % migrations[1].checksum[:12]]
    result = plan(migrations, history, 'latest', repair=True)
    assert result['repairs'] == [2] and [m.version for m in result['steps']] == [3]
    assert plan(migrations, history, '2', repair=True) == dict(direction='none', steps=[], repairs=[2], current=2, target=2)


def test_plan_renamed_migration_is_an_edit():
    migrations = make(2)
    history = rows(migrations)
    history[0]['description'] = 'old_name'
    with pytest.raises(MigrationError, match=r'V1 \(old_name\) was edited after it was applied \(recorded as old_name'):
        plan(migrations, history, 'latest')
    assert plan(migrations, history, 'latest', repair=True)['repairs'] == [1]


@pytest.mark.parametrize('target, needle', [('7', 'target: unknown version 7 (known: 0 and 1 to 3)'),
                                            ('abc', "target must be latest or a version number, not 'abc'"),
                                            ('-1', "target must be latest or a version number, not '-1'"),
                                            ('1.5', "not '1.5'")])
def test_plan_unknown_target(target, needle):
    with pytest.raises(MigrationError) as exc:
        plan(make(3), [], target)
    assert needle in str(exc.value)
    with pytest.raises(MigrationError):
        dm.check_target(make(3), target)


def test_check_target_accepts_zero_latest_and_known_versions():
    assert dm.check_target(make(3), 'latest') is None
    assert dm.check_target(make(3), '0') == 0
    assert dm.check_target(make(3), '03') == 3
    assert dm.check_target([], '0') == 0


def test_plan_applied_version_without_file():
    migrations = make(2)
    history = rows(make(3))
    with pytest.raises(MigrationError, match=r'V3 \(m3\) is applied \(history\) but has no file in the migrations directory'):
        plan(migrations, history, 'latest')


@pytest.mark.parametrize('applied, missing', [([1, 3], 'V2 (m2)'), ([2, 3], 'V1 (m1)')])
def test_plan_history_with_a_hole(applied, missing):
    migrations = make(4)
    history = rows([m for m in migrations if m.version in applied])
    with pytest.raises(MigrationError) as exc:
        plan(migrations, history, 'latest')
    assert exc.value.problems == ['history has a hole: %s is not applied but V3 is; applied versions must be contiguous' % missing]


def test_plan_reports_all_history_problems_together():
    migrations = make(4)
    history = rows([migrations[0], migrations[2]]) + [dict(version=9, description='gone', checksum='x')]
    history[0]['checksum'] = 'bad'
    with pytest.raises(MigrationError) as exc:
        plan(migrations, history, '77')
    text = str(exc.value)
    assert 'V1 (m1) was edited' in text and 'V9 (gone) is applied' in text and 'history has a hole' in text
    assert 'unknown version 77' in text


@settings(max_examples=150, deadline=None)
@given(count=st.integers(min_value=1, max_value=8), start=st.integers(min_value=1, max_value=30), data=st.data())
def test_property_plans_reach_their_target(count, start, data):
    migrations = make(count, start=start)
    versions = [m.version for m in migrations]
    target_strategy = st.one_of(st.just('latest'), st.just(0), st.sampled_from(versions),
                                st.sampled_from(versions).map(lambda v: '%03d' % v))
    targets = data.draw(st.lists(target_strategy, min_size=1, max_size=6))
    history = []

    def run(target):
        result = plan(migrations, history, target)
        for step in result['steps']:
            if result['direction'] == 'up':
                assert all(row['version'] < step.version for row in history)
                history.append(dict(version=step.version, description=step.description, checksum=step.checksum))
            else:
                assert history[-1]['version'] == step.version
                history.pop()
        return result

    for target in targets:
        result = run(target)
        wanted = versions[-1] if target == 'latest' else int(target)
        assert result['target'] == wanted
        assert (history[-1]['version'] if history else 0) == wanted
        assert [row['version'] for row in history] == [v for v in versions if v <= wanted]
        assert plan(migrations, history, target)['direction'] == 'none'
    run('latest')
    assert [row['version'] for row in history] == versions
    run(0)
    assert history == []


# --------------------------------------------------------------------------
# advisory key, table names
# --------------------------------------------------------------------------

def test_advisory_key_is_a_stable_signed_64_bit_int():
    key = dm.advisory_key('dealerscope_schema_history')
    digest = hashlib.sha256(b'dealerscope.ops.db_migrate:dealerscope_schema_history').digest()
    assert key == int.from_bytes(digest[:8], 'big', signed=True)
    assert -2 ** 63 <= key < 2 ** 63
    assert dm.advisory_key('other_history') != key


@pytest.mark.parametrize('name, quoted', [('dealerscope_schema_history', '"dealerscope_schema_history"'),
                                          ('ops.history', '"ops"."history"'), ('_h1', '"_h1"'), ('a' * 63, '"%s"' % ('a' * 63))])
def test_quote_table(name, quoted):
    assert dm.quote_table(name) == quoted


@pytest.mark.parametrize('name', ['History', '1history', 'a' * 64, 'h; DROP TABLE x', 'a.b.c', 'a"b', '', 'a.', 'sch-ema.t'])
def test_quote_table_refuses(name):
    with pytest.raises(MigrationError, match='history_table'):
        dm.quote_table(name)


# --------------------------------------------------------------------------
# DB steps against a recording fake connection
# --------------------------------------------------------------------------

class FakePgError(Exception):
    def __init__(self, message, pgcode=None):
        super().__init__(message)
        self.pgcode = pgcode


class RecordingConn:
    """Records statements; ``results`` maps a statement prefix to the row fetched; ``errors`` to an exception raised."""

    def __init__(self, results=None, errors=None):
        self.autocommit = False
        self.log = []
        self.results = results or {}
        self.errors = errors or {}

    def cursor(self):
        return RecordingCursor(self)

    def commit(self):
        self.log.append('COMMIT')

    def rollback(self):
        self.log.append('ROLLBACK')


class RecordingCursor:
    def __init__(self, conn):
        self.conn = conn
        self.row = None

    def execute(self, sql, params=None):
        self.conn.log.append((sql, params))
        for prefix, error in self.conn.errors.items():
            if sql.startswith(prefix):
                raise error
        self.row = next((row for prefix, row in self.conn.results.items() if sql.startswith(prefix)), None)

    def fetchone(self):
        return self.row

    def fetchall(self):
        return self.row or []


def test_lock_sets_and_resets_statement_timeout():
    conn = RecordingConn(results={'SELECT pg_advisory_lock': ('',)})
    dm.lock(conn, 42, 3)
    assert conn.log == [('SET statement_timeout = %s', (3000,)), ('SELECT pg_advisory_lock(%s)', (42,)),
                        ('RESET statement_timeout', None), 'COMMIT']


def test_lock_timeout_is_a_clear_error():
    conn = RecordingConn(errors={'SELECT pg_advisory_lock': FakePgError('canceling statement due to statement timeout', '57014')})
    with pytest.raises(dm.LockTimeout) as exc:
        dm.lock(conn, -7, 5)
    assert str(exc.value) == 'another db_migrate run holds the lock (key -7) for longer than 5 s'
    assert conn.log[-1] == 'ROLLBACK'


def test_lock_without_waiting():
    conn = RecordingConn(results={'SELECT pg_try_advisory_lock': (False,)})
    with pytest.raises(dm.LockTimeout, match='for longer than 0 s'):
        dm.lock(conn, 1, 0)
    conn = RecordingConn(results={'SELECT pg_try_advisory_lock': (True,)})
    dm.lock(conn, 1, 0)
    assert conn.log[-1] == 'COMMIT'


def test_ensure_history_creates_the_table_quoted():
    conn = RecordingConn()
    dm.ensure_history(conn, 'ops.history')
    sql = conn.log[0][0]
    assert sql.startswith('CREATE TABLE IF NOT EXISTS "ops"."history" (version integer PRIMARY KEY, description text NOT NULL, ')
    for column in ('checksum text NOT NULL', 'down_checksum text', 'applied_at timestamptz NOT NULL DEFAULT now()',
                   'applied_by text NOT NULL DEFAULT current_user', 'execution_ms integer NOT NULL'):
        assert column in sql
    assert conn.log[-1] == 'COMMIT'


def test_read_history_of_a_missing_table_creates_nothing():
    conn = RecordingConn(results={'SELECT to_regclass': (None,)})
    assert dm.read_history(conn, 'h') == []
    assert [entry for entry in conn.log if entry not in ('COMMIT', 'ROLLBACK')] == [('SELECT to_regclass(%s)', ('"h"',))]
    conn = RecordingConn(results={'SELECT to_regclass': ('h',), 'SELECT version': [(1, 'a', 'c1', None), (2, 'b', 'c2', 'd2')]})
    assert dm.read_history(conn, 'h') == [dict(version=1, description='a', checksum='c1', down_checksum=None),
                                          dict(version=2, description='b', checksum='c2', down_checksum='d2')]


def test_apply_up_runs_script_verify_and_history_in_one_transaction():
    migration = make(1)[0]
    migration = Migration(**dict(migration.__dict__, verify_sql='SELECT true;'))
    conn = RecordingConn(results={'SELECT true': (True,)})
    elapsed = dm.apply_up(conn, 'h', migration)
    assert elapsed >= 0
    assert [entry[0] if isinstance(entry, tuple) else entry for entry in conn.log] == [
        migration.up_sql, 'SELECT true;',
        'INSERT INTO "h" (version, description, checksum, down_checksum, execution_ms) VALUES (%s, %s, %s, %s, %s)', 'COMMIT']
    assert conn.log[2][1] == (1, 'm1', migration.checksum, None, elapsed)


@pytest.mark.parametrize('row, shown', [((False,), 'false'), ((None,), 'NULL'), (None, 'no row'), ((1,), '1')])
def test_apply_up_verify_failure_rolls_back(row, shown):
    verify = 'SELECT   count(*) = 2\nFROM dealers -- ' + 'x' * 300
    migration = Migration(**dict(make(3)[2].__dict__, verify_sql=verify))
    conn = RecordingConn(results={'SELECT': row})
    with pytest.raises(dm.StepError) as exc:
        dm.apply_up(conn, 'h', migration)
    assert exc.value.version == 3
    expected = 'V3 verify failed: %s returned %s' % (' '.join(verify.split())[:200], shown)
    assert exc.value.reason == expected
    assert str(exc.value).startswith('V3 (m3) up failed, rolled back')
    assert conn.log[-1] == 'ROLLBACK' and 'COMMIT' not in conn.log
    assert not any(isinstance(entry, tuple) and entry[0].startswith('INSERT') for entry in conn.log)


def test_apply_up_sql_error_names_version_and_error():
    migration = make(2)[1]
    conn = RecordingConn(errors={'CREATE TABLE t2': FakePgError('relation "t2" already exists', '42P07')})
    with pytest.raises(dm.StepError) as exc:
        dm.apply_up(conn, 'h', migration)
    assert str(exc.value) == ('V2 (m2) up failed, rolled back (nothing of V2 was applied): relation "t2" already exists '
                              '(SQLSTATE 42P07)')
    assert conn.log[-1] == 'ROLLBACK'


def test_apply_down_and_repair():
    migration = make(2)[1]
    conn = RecordingConn()
    dm.apply_down(conn, 'h', migration)
    assert conn.log == [('DROP TABLE t2;', None), ('DELETE FROM "h" WHERE version = %s', (2,)), 'COMMIT']
    conn = RecordingConn()
    dm.repair(conn, 'h', migration)
    assert conn.log == [('UPDATE "h" SET checksum = %s, description = %s, down_checksum = %s WHERE version = %s',
                         (migration.checksum, 'm2', None, 2)), 'COMMIT']
