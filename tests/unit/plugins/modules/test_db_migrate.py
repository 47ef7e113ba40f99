# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dealerscope.ops.db_migrate main() against a fake psycopg2 (an in-memory database with transactions)."""

from __future__ import annotations

import copy
import json
import types

import pytest

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.module_utils.db_migrate import advisory_key
from ansible_collections.dealerscope.ops.plugins.modules import db_migrate
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args

HISTORY = '"dealerscope_schema_history"'


class FakePgError(Exception):
    def __init__(self, message, pgcode=None):
        super().__init__(message)
        self.pgcode = pgcode


class FakeDB:
    """Committed state: user tables, history tables and rows. ``other_holds_lock`` makes pg_advisory_lock time out."""

    def __init__(self):
        self.state = {'tables': set(), 'history': {}}
        self.other_holds_lock = False
        self.connects = []
        self.statements = []
        self.commits = 0
        self.rollbacks = 0
        self.holder = None

    def connect(self, **kwargs):
        self.connects.append(kwargs)
        return FakeConn(self)


class FakeConn:
    def __init__(self, db):
        self.db = db
        self.autocommit = True
        self.work = None
        self.closed = False

    def current(self):
        if self.autocommit:
            return self.db.state
        if self.work is None:
            self.work = copy.deepcopy(self.db.state)
        return self.work

    def cursor(self):
        return FakeCursor(self)

    def commit(self):
        if self.work is not None:
            self.db.state = self.work
        self.work = None
        self.db.commits += 1

    def rollback(self):
        self.work = None
        self.db.rollbacks += 1

    def close(self):
        self.closed = True
        if self.db.holder is self:
            self.db.holder = None


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn
        self.rows = []

    def execute(self, sql, params=None):
        db = self.conn.db
        db.statements.append((sql, params))
        state = self.conn.current()
        norm = ' '.join(sql.split())
        self.rows = []
        if norm.startswith(('SET statement_timeout', 'RESET statement_timeout')):
            return
        if norm.startswith('SELECT pg_advisory_lock('):
            if db.other_holds_lock:
                raise FakePgError('canceling statement due to statement timeout', '57014')
            db.holder = self.conn
            self.rows = [('',)]
        elif norm.startswith('SELECT to_regclass('):
            self.rows = [(params[0] if params[0] in state['tables'] else None,)]
        elif norm.startswith('CREATE TABLE IF NOT EXISTS %s ' % HISTORY):
            state['tables'].add(HISTORY)
        elif norm.startswith('SELECT version, description, checksum, down_checksum FROM %s' % HISTORY):
            self.rows = [(v, r['description'], r['checksum'], r['down_checksum']) for v, r in sorted(state['history'].items())]
        elif norm.startswith('INSERT INTO %s ' % HISTORY):
            version, description, checksum, down_checksum, elapsed = params
            assert version not in state['history']
            state['history'][version] = dict(description=description, checksum=checksum, down_checksum=down_checksum, ms=elapsed)
        elif norm.startswith('DELETE FROM %s ' % HISTORY):
            del state['history'][params[0]]
        elif norm.startswith('UPDATE %s ' % HISTORY):
            checksum, description, down_checksum, version = params
            state['history'][version].update(checksum=checksum, description=description, down_checksum=down_checksum)
        else:
            self.user_sql(state, norm)

    def user_sql(self, state, norm):
        """A tiny SQL dialect for the migration scripts: CREATE TABLE x, DROP TABLE x, SELECT true|false|null|none, BROKEN."""
        for statement in filter(None, (part.strip() for part in norm.split(';'))):
            words = statement.split()
            if words[:2] == ['CREATE', 'TABLE']:
                if words[2] in state['tables']:
                    raise FakePgError('relation "%s" already exists' % words[2], '42P07')
                state['tables'].add(words[2])
            elif words[:2] == ['DROP', 'TABLE']:
                if words[2] not in state['tables']:
                    raise FakePgError('table "%s" does not exist' % words[2], '42P01')
                state['tables'].discard(words[2])
            elif words[0] == 'SELECT':
                value = {'true': True, 'false': False, 'null': None}.get(words[1])
                self.rows = [] if words[1] == 'none' else [(value,)]
            else:
                raise FakePgError('syntax error at or near "%s"' % words[0], '42601')

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return list(self.rows)


@pytest.fixture
def db(monkeypatch):
    fake = FakeDB()
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(db_migrate, 'psycopg2', types.SimpleNamespace(connect=fake.connect))
    return fake


def migrations_dir(tmp_path, files):
    directory = tmp_path / 'migrations'
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return str(directory)


THREE = {
    'V1__dealers.up.sql': 'CREATE TABLE dealers (id bigint);\n',
    'V1__dealers.down.sql': 'DROP TABLE dealers;\n',
    'V2__vehicles.up.sql': 'CREATE TABLE vehicles (vin text);\n',
    'V2__vehicles.down.sql': 'DROP TABLE vehicles;\n',
    'V2__vehicles.verify.sql': 'SELECT true;\n',
    'V3__leads.up.sql': 'CREATE TABLE leads (id bigint);\n',
    'V3__leads.down.sql': 'DROP TABLE leads;\n',
    'README.md': 'Migrations: one file per version.\n',
}


def run_module(args, check=False, diff=False):
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with set_module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            db_migrate.main()
    return exc.value.result


def test_check_mode_lists_pending_sql_and_changes_nothing(db, tmp_path):
    path = migrations_dir(tmp_path, THREE)
    result = run_module(dict(path=path, database='dealerscope'), check=True, diff=True)
    assert not result.get('failed'), result
    assert result['changed'] is True
    assert result['direction'] == 'up' and result['version_before'] == 0 and result['version'] == 3 and result['target'] == 3
    assert result['pending'] == [
        dict(version=1, description='dealers', direction='up', sql='CREATE TABLE dealers (id bigint);\n'),
        dict(version=2, description='vehicles', direction='up', sql='CREATE TABLE vehicles (vin text);\n'),
        dict(version=3, description='leads', direction='up', sql='CREATE TABLE leads (id bigint);\n'),
    ]
    assert result['applied'] == []
    assert result['diff']['before'] == 'version: 0\n'
    assert result['diff']['after'].startswith('version: 3\nV1__dealers (sha256 ')
    assert result['lock_key'] == advisory_key('dealerscope_schema_history')
    assert db.state == {'tables': set(), 'history': {}}  # not even the history table
    assert not any(sql.startswith('CREATE') for sql, _params in db.statements)
    assert any(sql.startswith('SELECT pg_advisory_lock') for sql, _params in db.statements)


def test_real_run_applies_in_order_records_history_and_is_idempotent(db, tmp_path):
    path = migrations_dir(tmp_path, THREE)
    args = dict(path=path, database='dealerscope', login_user='owner', login_password='s3cret-pw', login_unix_socket='/run/postgresql')
    result = run_module(args)
    assert result['changed'] is True, result
    assert [(item['version'], item['direction']) for item in result['applied']] == [(1, 'up'), (2, 'up'), (3, 'up')]
    assert all(isinstance(item['ms'], int) for item in result['applied'])
    assert result['version'] == 3 and result['version_before'] == 0
    assert db.state['tables'] == {HISTORY, 'dealers', 'vehicles', 'leads'}
    assert sorted(db.state['history']) == [1, 2, 3]
    assert db.state['history'][2]['description'] == 'vehicles'
    assert db.connects[0] == dict(dbname='dealerscope', user='owner', password='s3cret-pw', host='/run/postgresql', port=5432,
                                  connect_timeout=10, application_name='dealerscope.ops.db_migrate')
    assert 's3cret-pw' not in json.dumps(result)
    # The user statements ran in version order, each followed by its history row.
    user = [sql.split()[2] for sql, _params in db.statements if sql.startswith('CREATE TABLE ') and 'IF NOT EXISTS' not in sql]
    assert user == ['dealers', 'vehicles', 'leads']

    second = run_module(args)
    assert second['changed'] is False and second['direction'] == 'none' and second['applied'] == [] and second['pending'] == []
    assert second['version'] == 3
    assert run_module(args, check=True)['changed'] is False


def test_down_to_zero_and_back(db, tmp_path):
    path = migrations_dir(tmp_path, THREE)
    run_module(dict(path=path, database='d'))
    result = run_module(dict(path=path, database='d', target='1'), diff=True)
    assert [(item['version'], item['direction']) for item in result['applied']] == [(3, 'down'), (2, 'down')]
    assert result['version'] == 1 and db.state['tables'] == {HISTORY, 'dealers'} and sorted(db.state['history']) == [1]
    assert result['diff']['before'].startswith('version: 3\n') and result['diff']['after'].count('\n') == 2
    result = run_module(dict(path=path, database='d', target='0'))
    assert result['version'] == 0 and db.state['history'] == {} and db.state['tables'] == {HISTORY}
    assert run_module(dict(path=path, database='d'))['version'] == 3


def test_down_without_down_script_is_refused_before_any_change(db, tmp_path):
    files = dict(THREE)
    del files['V2__vehicles.down.sql']
    path = migrations_dir(tmp_path, files)
    run_module(dict(path=path, database='d'))
    before = copy.deepcopy(db.state)
    result = run_module(dict(path=path, database='d', target='1'))
    assert result['failed'] is True
    assert result['msg'] == 'V2 (vehicles) has no down script: cannot migrate below version 2'
    assert db.state == before


def test_verify_failure_rolls_back_that_step_only(db, tmp_path):
    files = dict(THREE)
    files['V2__vehicles.verify.sql'] = 'SELECT false;\n'
    path = migrations_dir(tmp_path, files)
    result = run_module(dict(path=path, database='d'))
    assert result['failed'] is True
    assert result['version'] == 2 and result['current_version'] == 1
    assert result['msg'].startswith('V2 (vehicles) up failed, rolled back (nothing of V2 was applied): V2 verify failed: '
                                    'SELECT false; returned false')
    assert result['msg'].endswith('committed before it: V1 (dealers)')
    assert [item['version'] for item in result['applied']] == [1]
    assert db.state['tables'] == {HISTORY, 'dealers'}  # vehicles was rolled back with V2
    assert sorted(db.state['history']) == [1]


def test_sql_error_names_version_and_postgresql_error(db, tmp_path):
    path = migrations_dir(tmp_path, {'V1__a.up.sql': 'CREATE TABLE a (id int);', 'V2__b.up.sql': 'CREATE TABLE b (id int);\nBROKEN;'})
    result = run_module(dict(path=path, database='d'))
    assert result['failed'] is True
    assert 'V2 (b) up failed' in result['msg'] and 'syntax error at or near "BROKEN" (SQLSTATE 42601)' in result['msg']
    assert sorted(db.state['history']) == [1] and 'b' not in db.state['tables']


def test_lock_timeout_message(db, tmp_path):
    db.other_holds_lock = True
    path = migrations_dir(tmp_path, THREE)
    result = run_module(dict(path=path, database='d', lock_timeout=3))
    assert result['failed'] is True
    assert result['msg'] == 'another db_migrate run holds the lock (key %d) for longer than 3 s' % advisory_key('dealerscope_schema_history')
    assert db.state == {'tables': set(), 'history': {}}
    assert ('SET statement_timeout = %s', (3000,)) in db.statements


@pytest.mark.parametrize('files, extra, needle', [
    ({'V1__a.up.sql': 'SELECT true;', 'V3__c.up.sql': 'SELECT true;'}, {}, 'gap: version 2 is missing between 1 and 3'),
    ({'V1__a.up.sql': 'BEGIN;\nSELECT true;\nCOMMIT;'}, {}, 'V1__a.up.sql: line 1: BEGIN;'),
    (THREE, {'target': '9'}, 'target: unknown version 9'),
    (THREE, {'history_table': 'bad-name'}, "history_table 'bad-name'"),
    (THREE, {'lock_timeout': -1}, 'lock_timeout must be >= 0'),
])
def test_bad_directory_or_options_refused_before_connecting(db, tmp_path, files, extra, needle):
    path = migrations_dir(tmp_path, files)
    result = run_module(dict(path=path, database='d', **extra))
    assert result['failed'] is True
    assert needle in result['msg']
    assert db.connects == []


def test_edited_migration_fails_then_repair(db, tmp_path):
    path = migrations_dir(tmp_path, THREE)
    run_module(dict(path=path, database='d'))
    (tmp_path / 'migrations' / 'V2__vehicles.up.sql').write_text('CREATE TABLE vehicles (vin text); -- reviewed\n')
    result = run_module(dict(path=path, database='d'))
    assert result['failed'] is True
    assert result['msg'].startswith('V2 (vehicles) was edited after it was applied (checksum ')
    assert run_module(dict(path=path, database='d', repair=True), check=True)['changed'] is True
    result = run_module(dict(path=path, database='d', repair=True))
    assert result['changed'] is True and result['repaired'] == [2] and result['applied'] == []
    assert db.state['tables'] == {HISTORY, 'dealers', 'vehicles', 'leads'}  # nothing was run again
    assert run_module(dict(path=path, database='d'))['changed'] is False


def test_connection_error_and_missing_psycopg2(db, tmp_path, monkeypatch):
    path = migrations_dir(tmp_path, THREE)

    def refuse(**_kwargs):
        raise FakePgError('connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: FATAL: password authentication '
                          'failed for user "postgres"')

    monkeypatch.setattr(db_migrate, 'psycopg2', types.SimpleNamespace(connect=refuse))
    result = run_module(dict(path=path, database='d', login_password='hunter2-secret'))
    assert result['failed'] is True and result['msg'].startswith('cannot connect to database d as postgres: connection to server')
    assert 'hunter2-secret' not in json.dumps(result)
    monkeypatch.setattr(db_migrate, 'psycopg2', None)
    monkeypatch.setattr(db_migrate, 'PSYCOPG2_IMPORT_ERROR', ImportError('No module named psycopg2'))
    result = run_module(dict(path=path, database='d'))
    assert result['failed'] is True and 'psycopg2' in result['msg']
