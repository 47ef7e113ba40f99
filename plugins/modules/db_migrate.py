#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_migrate
short_description: Apply or revert versioned PostgreSQL migrations, with a checksummed history and an advisory lock
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - "Brings a PostgreSQL database to a target version from a directory of SQL scripts:
    C(V<version>__<description>.up.sql) (one per version), and optionally C(V<version>__<description>.down.sql)
    (to migrate below that version) and C(V<version>__<description>.verify.sql) (a query whose first column of the
    first row must be V(true) after the up script ran)."
  - "Versions are decimal numbers (leading zeros allowed, compared as integers) starting at 1 and contiguous;
    descriptions are lower case letters, digits and underscores. Other C(.sql) names, a down or verify script without
    its up script, two files for one version, a gap between versions, an empty up or verify script and a line that is
    only a transaction statement (C(BEGIN;), C(COMMIT;), C(ROLLBACK;), C(START TRANSACTION;), C(END;)) are all refused,
    together, before connecting. Files that do not end in C(.sql) (a C(README.md)) are ignored."
  - "Each migration runs in its own transaction together with its row in the history table O(history_table)
    (version, description, SHA-256 of the up script, of the down script, applied at, applied by, execution time), so a
    migration is either applied and recorded or not at all. A failed migration stops the run; the ones before it stay
    applied."
  - "Runs are serialized by a session advisory lock on the history table's name (RV(lock_key)), taken before the history
    is read. It is released when the connection closes, so a killed run never leaves a stale lock."
  - "An applied migration whose up script changed since (checksum) is refused unless O(repair=true), which records the
    new checksum without running anything."
  - In check mode nothing is written (not even the history table); the SQL that would run is returned in RV(pending).
options:
  path:
    description:
      - Directory of the migration scripts on the managed host.
    type: path
    required: true
  database:
    description: Name of the database to migrate.
    type: str
    required: true
  login_user:
    description: PostgreSQL role to connect as. It owns the objects the migrations create.
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user). Empty for peer or trust authentication. Never returned.
    type: str
    default: ''
  login_host:
    description:
      - Host to connect to. Empty to connect through the default Unix socket (or O(login_unix_socket)).
    type: str
    default: ''
  login_port:
    description: Port of the server.
    type: int
    default: 5432
  login_unix_socket:
    description:
      - Directory of the server's Unix socket. When set, it is used instead of O(login_host).
    type: str
    default: ''
  target:
    description:
      - "Version to migrate to: V(latest) (the highest version in O(path)), a version number, or V(0) to revert every
        migration. Below the current version, the applied migrations above the target are reverted newest first with
        their down scripts; the run is refused before any change when one of them has none."
    type: str
    default: latest
  history_table:
    description:
      - Table recording the applied migrations, C([a-z_][a-z0-9_]{0,62}), optionally schema-qualified (C(schema.table)).
        It is created when a migration is to be recorded and the table does not exist yet.
    type: str
    default: dealerscope_schema_history
  repair:
    description:
      - Accept the current checksum (and description) of applied migrations whose up script was edited after they were
        applied, instead of failing. Nothing is run for them; the history rows are updated (RV(repaired)).
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for the advisory lock held by another run (C(statement_timeout) of the lock query).
        V(0) does not wait.
    type: int
    default: 60
  connect_timeout:
    description: Seconds to wait for the connection to the server.
    type: int
    default: 10
requirements:
  - psycopg2 (Debian package C(python3-psycopg2)) on the managed host
attributes:
  check_mode:
    support: full
    description:
      - Takes the lock and reads the history, but runs nothing and creates nothing; RV(pending) holds the SQL that would run.
      - Reports V(changed) exactly as a real run would (migrations to apply or revert, or checksums to repair).
  diff_mode:
    support: full
    description: The version and the applied migrations (with the start of their checksums) before and after.
  idempotent:
    support: full
    description: Once the database is at the target version, another run changes nothing.
notes:
  - "C(CREATE INDEX CONCURRENTLY), C(DROP INDEX CONCURRENTLY), C(VACUUM), C(ALTER TYPE ... ADD VALUE) (before PostgreSQL 12)
    and C(ALTER SYSTEM) cannot run inside a transaction block, so they cannot be in a migration: run them in a separate
    task, or create the index without C(CONCURRENTLY) while the table is small."
  - "Expand and contract: during a rolling deployment the old release keeps running on the migrated schema. Make each
    migration backward compatible (add nullable columns or columns with a default, new tables, new indexes; no rename,
    no drop, no C(NOT NULL) on a column the old release does not write) and remove what the old release used in a later
    migration, once no host runs it any more."
  - "Long locks: an C(ALTER TABLE) waits for, and then blocks, every query on its table. Set C(SET LOCAL lock_timeout = '5s')
    at the top of such a migration so that it fails instead of stalling the application."
  - The down scripts are not checksummed against the history (fixing a down script is normal); the checksum recorded is
    informative.
seealso:
  - name: PostgreSQL advisory locks
    description: Session-level advisory locks, released at the end of the session.
    link: https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
"""

EXAMPLES = r"""
- name: Migrate the application database to the latest version
  dealerscope.ops.db_migrate:
    path: /opt/dealerscope/migrations
    database: dealerscope
    login_user: dealerscope_owner
  become: true
  become_user: postgres

- name: Show the SQL that would run
  dealerscope.ops.db_migrate:
    path: /opt/dealerscope/migrations
    database: dealerscope
  check_mode: true
  register: migrations

- name: Roll back to version 12 (every migration above it needs a down script)
  dealerscope.ops.db_migrate:
    path: /opt/dealerscope/migrations
    database: dealerscope
    target: "12"

- name: Accept a comment-only edit of an applied migration
  dealerscope.ops.db_migrate:
    path: /opt/dealerscope/migrations
    database: dealerscope
    repair: true
"""

RETURN = r"""
version_before:
  description: The version of the database before the run (V(0) when no migration was applied).
  returned: success
  type: int
  sample: 12
version:
  description:
    - The version of the database after the run (in check mode, the version it would be at).
    - On the failure of a migration, the version of the migration that failed.
  returned: success, and on the failure of a migration
  type: int
  sample: 14
target:
  description: The target version (O(target=latest) resolved to the highest version in O(path)).
  returned: success
  type: int
  sample: 14
direction:
  description: V(up), V(down) or V(none).
  returned: success
  type: str
  sample: up
applied:
  description:
    - The migrations applied (V(up)) or reverted (V(down)) and committed in this run, in order, with their duration.
    - On failure, the ones committed before the failing one. Empty in check mode.
  returned: always
  type: list
  elements: dict
  sample:
    - {version: 13, description: add_vin_index, direction: up, ms: 41}
    - {version: 14, description: add_dealer_region, direction: up, ms: 12}
pending:
  description: The steps planned, in execution order, with the SQL script each runs (up or down script).
  returned: success
  type: list
  elements: dict
  sample:
    - {version: 13, description: add_vin_index, direction: up, sql: "CREATE INDEX vehicles_vin_idx ON vehicles (vin);\n"}
repaired:
  description: The versions whose history checksum was (or in check mode would be) replaced by the file's (O(repair=true)).
  returned: success
  type: list
  elements: int
  sample: []
history_table:
  description: The history table.
  returned: always
  type: str
  sample: dealerscope_schema_history
lock_key:
  description: The key of the session advisory lock (C(pg_locks.objid) and C(classid) hold its two halves).
  returned: always
  type: int
  sample: -3514046931251349870
current_version:
  description: On failure after some changes, the version the database is at.
  returned: failure
  type: int
  sample: 13
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.dealerscope.ops.plugins.module_utils.db_migrate import (
    MigrationError,
    StepError,
    advisory_key,
    apply_down,
    apply_up,
    check_target,
    ensure_history,
    lock,
    pg_error_text,
    plan,
    quote_table,
    read_history,
    repair,
    scan,
)

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
except ImportError as import_error:  # pragma: no cover - depends on the host
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = import_error


def diff_text(version, rows):
    lines = ['version: %d\n' % version]
    lines.extend('V%d__%s (sha256 %s)\n' % (row['version'], row['description'], (row['checksum'] or '')[:12])
                 for row in sorted(rows, key=lambda item: item['version']))
    return ''.join(lines)


def connect_kwargs(params):
    kwargs = dict(dbname=params['database'], user=params['login_user'], port=params['login_port'],
                  connect_timeout=params['connect_timeout'], application_name='dealerscope.ops.db_migrate')
    host = params['login_unix_socket'] or params['login_host']
    if host:
        kwargs['host'] = host
    if params['login_password']:
        kwargs['password'] = params['login_password']
    return kwargs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            database=dict(type='str', required=True),
            login_user=dict(type='str', default='postgres'),
            login_password=dict(type='str', default='', no_log=True),
            login_host=dict(type='str', default=''),
            login_port=dict(type='int', default=5432),
            login_unix_socket=dict(type='str', default=''),
            target=dict(type='str', default='latest'),
            history_table=dict(type='str', default='dealerscope_schema_history'),
            repair=dict(type='bool', default=False),
            lock_timeout=dict(type='int', default=60),
            connect_timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    table = params['history_table']
    key = advisory_key(table)
    base = dict(history_table=table, lock_key=key, applied=[])

    # Everything the options and the directory can be refused for, before connecting.
    problems = []
    if params['lock_timeout'] < 0:
        problems.append('lock_timeout must be >= 0 (0: do not wait), not %d' % params['lock_timeout'])
    if params['connect_timeout'] < 0:
        problems.append('connect_timeout must be >= 0, not %d' % params['connect_timeout'])
    if not 0 < params['login_port'] < 65536:
        problems.append('login_port must be 1 to 65535, not %d' % params['login_port'])
    try:
        quote_table(table)
    except MigrationError as exc:
        problems.extend(exc.problems)
    migrations = []
    try:
        migrations = scan(params['path'])
    except MigrationError as exc:
        problems.append('migrations in %s refused:' % params['path'])
        problems.extend('  ' + problem for problem in exc.problems)
    else:
        try:
            check_target(migrations, params['target'])
        except MigrationError as exc:
            problems.extend(exc.problems)
    if problems:
        module.fail_json(msg='\n'.join(problems), **base)

    if psycopg2 is None:
        module.fail_json(msg=missing_required_lib('psycopg2'),
                         exception=''.join(traceback.format_exception_only(type(PSYCOPG2_IMPORT_ERROR), PSYCOPG2_IMPORT_ERROR)), **base)

    conn = None
    try:
        conn = psycopg2.connect(**connect_kwargs(params))
    except Exception as exc:  # psycopg2.Error, or a bad option
        module.fail_json(msg='cannot connect to database %s as %s: %s' % (params['database'], params['login_user'], pg_error_text(exc)), **base)
    try:
        conn.autocommit = False
        result = run(module, conn, migrations, base)
    finally:
        try:
            conn.close()  # also releases the advisory lock
        except Exception:  # pylint: disable=broad-except
            pass
    module.exit_json(**result)


def run(module, conn, migrations, base):
    params = module.params
    table = params['history_table']
    history, planned = [], None
    try:
        lock(conn, base['lock_key'], params['lock_timeout'])
        history = read_history(conn, table)
        planned = plan(migrations, history, params['target'], repair=params['repair'])
    except MigrationError as exc:
        module.fail_json(msg=str(exc), **base)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='cannot read the history table %s: %s' % (table, pg_error_text(exc)), **base)

    by_version = {m.version: m for m in migrations}
    steps = planned['steps']
    direction = planned['direction']
    pending = [dict(version=m.version, description=m.description, direction=direction,
                    sql=m.up_sql if direction == 'up' else m.down_sql) for m in steps]
    changed = bool(steps or planned['repairs'])
    result = dict(base, changed=changed, version_before=planned['current'], version=planned['target'], target=planned['target'],
                  direction=direction, pending=pending, repaired=list(planned['repairs']))

    after_rows = {row['version']: dict(row) for row in history}
    for version in planned['repairs']:
        after_rows[version].update(description=by_version[version].description, checksum=by_version[version].checksum)
    for migration in steps:
        if direction == 'up':
            after_rows[migration.version] = dict(version=migration.version, description=migration.description, checksum=migration.checksum)
        else:
            after_rows.pop(migration.version, None)
    if module._diff:
        result['diff'] = dict(before=diff_text(planned['current'], history), after=diff_text(planned['target'], after_rows.values()))

    if module.check_mode or not changed:
        return result

    applied = []
    current = planned['current']
    try:
        ensure_history(conn, table)
        for version in planned['repairs']:
            repair(conn, table, by_version[version])
        for step in steps:
            if direction == 'up':
                elapsed = apply_up(conn, table, step)
                current = step.version
            else:
                elapsed = apply_down(conn, table, step)
                current = step.version - 1
            applied.append(dict(version=step.version, description=step.description, direction=direction, ms=elapsed))
    except StepError as exc:
        module.fail_json(msg='%s%s' % (exc, _committed(applied)), **dict(
            base, applied=applied, version=exc.version, current_version=current, version_before=planned['current'],
            target=planned['target'], direction=direction, repaired=list(planned['repairs'])))
    except MigrationError as exc:
        module.fail_json(msg=str(exc), **dict(base, version=current, current_version=current))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='cannot create the history table %s: %s' % (table, pg_error_text(exc)), **dict(base, version=current))
    result['applied'] = applied
    return result


def _committed(applied):
    if not applied:
        return '; no migration was committed in this run'
    return '; committed before it: %s' % ', '.join('V%d (%s)' % (item['version'], item['description']) for item in applied)


if __name__ == '__main__':
    main()
