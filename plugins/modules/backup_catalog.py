#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_catalog
short_description: Read and judge the pgBackRest backups of every region and the WAL archive of the PostgreSQL primary in one call
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - "Runs on the PostgreSQL primary as the C(postgres) user. One C(pgbackrest --stanza=<stanza> --output=json info) reads
    the catalog of every repository of the stanza; each region of O(regions) is one pgBackRest repository (O(regions[].repo))."
  - "Per region it returns the repository's status, its backups (oldest first), the newest good backup (a backup that
    pgBackRest recorded with errors is not good) and the newest archived WAL segment, with how many segments it is behind
    the newest WAL any reachable region holds."
  - "With O(verify), C(pgbackrest --stanza=<stanza> --repo=<N> --log-level-console=info verify) runs once per reachable
    region (checksums and sizes of every backup file and archived WAL segment). A non-zero exit, an C(ERROR) line, a
    result C(status: error), a backup C(status: invalid) or a non-zero C(missing), C(checksum invalid), C(size invalid)
    or C(other) count is a failure (recent pgBackRest versions exit 0 after finding invalid files and report them only at
    info level, which the console shows only with C(--log-level-console=info))."
  - "Unless O(archiver=false), one C(psql) query reads C(pg_stat_archiver) (last archived and last failed WAL and their
    times), the current WAL segment (C(pg_walfile_name(pg_current_wal_lsn()))) and the server's clock. On a standby the
    module fails: C(pg_current_wal_lsn()) cannot run during recovery."
  - "Every check follows the C(ops_checks) contract - name, status (ok, warning, critical), value, threshold, unit, message,
    alert (see the notes for the rows and their order)."
  - Messages name the region and repository and never contain credentials; pgBackRest's S3 request dumps are cut off and
    anything that looks like a key, pass, secret or token value is redacted.
  - The module only reads; it never changes anything. It fails before running any command, listing every problem, when an
    option is invalid (duplicate or empty region names, duplicate repository numbers, a repository number outside 1 to 256,
    a non-positive interval or RPO, a negative margin, an invalid port).
options:
  stanza:
    description: The pgBackRest stanza.
    type: str
    default: dealerscope
  regions:
    description:
      - The regions, in the order the results are returned. Each is one pgBackRest repository of the stanza.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unique name of the region, used in the check names C(backup:<name>:...) and their messages.
        type: str
        required: true
      repo:
        description: The pgBackRest repository number of the region (C(repo<N>-...) in C(pgbackrest.conf)), 1 to 256, unique.
        type: int
        required: true
  verify:
    description:
      - Run C(pgbackrest verify) in every reachable region. It reads every backup file and WAL segment of the repository,
        so it takes as long as downloading the region's copy.
    type: bool
    default: false
  verify_until_good:
    description:
      - With O(verify), verify the reachable regions one after another in the order of O(regions) and stop at the first
        whose copy verifies; the regions after it are not verified (C(verify.ran) V(false)). For a restore, which needs
        one good copy, not all of them (list the preferred region first).
    type: bool
    default: false
  interval_h:
    description: Hours between two scheduled backups; the newest good backup of a region must be younger than O(interval_h) plus O(margin_h).
    type: float
    default: 6
  margin_h:
    description: Hours of margin added to O(interval_h) (a backup that runs late or long).
    type: float
    default: 1
  rpo_s:
    description:
      - Recovery point objective in seconds. The archive exposure (time since the last archived WAL segment while newer WAL
        exists) is a warning from half of it and critical from it.
    type: int
    default: 3600
  pgbackrest:
    description: The C(pgbackrest) program, a name looked up in the C(PATH) or a path.
    type: path
    default: pgbackrest
  pg_port:
    description: Port of the PostgreSQL cluster (C(psql -p)).
    type: int
    default: 5432
  archiver:
    description:
      - Read the archiver from PostgreSQL and judge the RPO (C(backup:rpo)). V(false) skips C(psql) (for example to read only
        the catalog before a backup); RV(archive) is then all V(null) and there is no C(backup:rpo) check.
    type: bool
    default: true
  now:
    description:
      - The time backup ages are measured at, in seconds since the epoch; default the current time. For tests.
      - The archive exposure is measured with PostgreSQL's C(now()) when the archiver was read.
    type: float
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode runs it exactly as a real run (the same commands).
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: full
    description: The module never changes anything; C(changed) is always V(false).
notes:
  - "Checks, in this order. C(backup:<region>:newest) per region - value the age of the newest good backup in hours, threshold
    O(interval_h) + O(margin_h); critical (alert C(backup_stale)) when older or when the region holds no good backup; warning
    (alert C(backup_region_unreachable)) when pgBackRest cannot reach the region (status 99), with pgBackRest's error."
  - "C(backup:<region>:verify) per region verified - critical (alert C(backup_invalid)) with pgBackRest's lines when verify failed."
  - "C(backup:<region>:wal) per reachable region - warning (alert C(wal_archive_lag)) when the region's newest WAL is behind
    another region's (value the segments behind) or on an older timeline; ok when the region holds no WAL yet (nothing to compare)."
  - "C(backup:rpo) - value the archive exposure in seconds, threshold O(rpo_s); ok below half of O(rpo_s), warning from half,
    critical (alert C(rpo_at_risk)) from O(rpo_s) or when it cannot be measured; at least warning when the archiver's last
    failure is later than its last success (C(archive_command) failing)."
  - "C(backup:regions) - only when no region is reachable - critical (alert C(backup_stale)): no region holds a reachable copy."
  - "pgBackRest's status codes of a repository - 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data,
    6 requested backup not found, 99 another error (the region is unreachable); the stanza's own status may also be
    4 (different across repos) or 5 (database mismatch across repos)."
  - WAL distances assume 16 MB segments (C(0x100) segments per log file).
requirements:
  - pgBackRest (C(pgbackrest info --output=json) with C(repo-key), version 2.33 or later; written against 2.45)
  - C(psql) when O(archiver=true)
seealso:
  - module: dealerscope.ops.pg_health
"""

EXAMPLES = r"""
- name: Every region's catalog, verified, and the WAL archive
  dealerscope.ops.backup_catalog:
    stanza: dealerscope
    regions:
      - {name: eu-west-1, repo: 1}
      - {name: eu-central-1, repo: 2}
      - {name: us-east-1, repo: 3}
    verify: true
    interval_h: 6
    margin_h: 1
    rpo_s: 3600
  become: true
  become_user: postgres
  register: catalog

- name: Only the catalog (no psql), before deciding where to take a backup
  dealerscope.ops.backup_catalog:
    regions: "{{ backup_region_repos }}"  # [{name: eu-west-1, repo: 1}, ...]
    archiver: false
  become: true
  become_user: postgres
  register: before

- name: Regions without a good backup
  ansible.builtin.debug:
    msg: "{{ catalog.regions | selectattr('newest_good', 'none') | map(attribute='name') | list }}"
"""

RETURN = r"""
regions:
  description: One dictionary per entry of O(regions), in the same order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The O(regions[].name).
      type: str
      sample: eu-west-1
    repo:
      description: The O(regions[].repo).
      type: int
      sample: 1
    reachable:
      description: Whether pgBackRest could read the repository (its status is not 99 and it is configured).
      type: bool
      sample: true
    status_code:
      description: pgBackRest's status code of the stanza in this repository (see the notes), V(null) when pgBackRest does not list the repository.
      type: int
      sample: 0
    status_message:
      description: pgBackRest's status message (for status 99 its error, for example C([HostConnectError] unable to connect to ...)).
      type: str
      sample: ok
    backups:
      description:
        - The repository's backups, oldest first - C(label), C(type) (full, diff, incr), C(prior), C(time) (when it finished,
          seconds since the epoch) and C(error) (pgBackRest recorded errors).
      type: list
      elements: dict
      sample: [{"label": "20251127-181000F", "type": "full", "prior": null, "time": 1764267005, "error": false}]
    newest_good:
      description: The newest backup without errors - C(label), C(type), C(time) and C(age_s) (seconds since it finished) - or V(null).
      type: dict
      sample: {"label": "20251127-181000F", "type": "full", "time": 1764267005, "age_s": 8395}
    wal_max:
      description: The newest WAL segment archived in the repository (of the newest database), or V(null).
      type: str
      sample: "000000010000000000000007"
    wal_behind:
      description:
        - WAL segments this region is behind the newest WAL any reachable region holds (0 for that region).
        - V(null) when the region is unreachable, holds no WAL, or is on another timeline.
      type: int
      sample: 0
    verify:
      description: C(ran) (whether verify ran in this region), C(ok) (V(null) when it did not run) and C(message) (pgBackRest's lines on a failure).
      type: dict
      sample: {"ran": true, "ok": false, "message": "P00 INFO: status: error; backup: 20251127-181000F, status: invalid, ...; checksum invalid: 1"}
archive:
  description:
    - The WAL archive as PostgreSQL's archiver sees it. All V(null) with O(archiver=false).
  returned: always
  type: dict
  contains:
    last_archived_wal:
      description: The last WAL file archived successfully (C(pg_stat_archiver.last_archived_wal)).
      type: str
    last_archived_time:
      description: When it was archived, seconds since the epoch.
      type: float
    last_failed_wal:
      description: The last WAL file whose archiving failed.
      type: str
    last_failed_time:
      description: When it failed, seconds since the epoch.
      type: float
    current_wal:
      description: The WAL segment being written (C(pg_walfile_name(pg_current_wal_lsn()))).
      type: str
    pending:
      description: Whether C(current_wal) is newer than C(last_archived_wal) (written WAL is in no repository yet).
      type: bool
    exposure_s:
      description: Seconds since the last archived segment when something is pending, 0 when nothing is, V(null) when unknown.
      type: int
    error:
      description: Why the archiver could not be read (psql's error), else V(null).
      type: str
  sample: {"last_archived_wal": "000000010000000000000007", "last_archived_time": 1764275340.2, "last_failed_wal": null,
           "last_failed_time": null, "current_wal": "000000010000000000000008", "pending": true, "exposure_s": 60, "error": null}
checks:
  description: Check results (ops_checks contract), in the order given in the notes.
  returned: always
  type: list
  elements: dict
  sample:
    - name: backup:eu-west-1:newest
      status: ok
      value: 2.3
      threshold: 7.0
      unit: h
      message: "newest good backup in region eu-west-1 is 20251127-181000F (full) from 2025-11-27T18:10:05Z, 2.3 h old; limit 7 h
        (interval 6 h + margin 1 h)"
      alert: null
    - name: backup:us-east-1:newest
      status: warning
      value: null
      threshold: 7.0
      unit: h
      message: "region us-east-1 (repo 3) is unreachable, its backups cannot be checked: [HostConnectError] unable to connect to
        '10.213.48.1:9443': [111] Connection refused"
      alert: backup_region_unreachable
stanza_status:
  description: pgBackRest's status of the stanza over all repositories - C(code) and C(message) (with C( (backup/expire running)) when a backup holds the lock).
  returned: always
  type: dict
  sample: {"code": 4, "message": "different across repos"}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.pgbackrest import (
    PgBackRestError,
    StandbyError,
    archive_state,
    archiver_argv,
    build_regions,
    evaluate,
    info_argv,
    judge_verify,
    parse_archiver,
    parse_info,
    scrub,
    validate_options,
    verify_argv,
)

# English messages from psql and pgBackRest, so that "recovery is in progress" is recognised.
C_LOCALE = {'LC_ALL': 'C', 'LANG': 'C'}


def argument_spec():
    return dict(
        stanza=dict(type='str', default='dealerscope'),
        regions=dict(
            type='list', elements='dict', required=True,
            options=dict(
                name=dict(type='str', required=True),
                repo=dict(type='int', required=True),
            ),
        ),
        verify=dict(type='bool', default=False),
        verify_until_good=dict(type='bool', default=False),
        interval_h=dict(type='float', default=6),
        margin_h=dict(type='float', default=1),
        rpo_s=dict(type='int', default=3600),
        pgbackrest=dict(type='path', default='pgbackrest'),
        pg_port=dict(type='int', default=5432),
        archiver=dict(type='bool', default=True),
        now=dict(type='float'),
    )


def _program(module, name):
    """A program given by name is looked up in the PATH (failing clearly when missing); a path is used as it is."""
    if os.sep in name:
        return name
    return module.get_bin_path(name, required=True, opt_dirs=['/usr/local/bin', '/usr/bin'])


def run(module):
    params = module.params
    problems = validate_options(params)
    if problems:
        module.fail_json(msg='invalid options: %s' % '; '.join(problems))
    stanza = params['stanza'].strip()
    now = params['now'] if params['now'] is not None else time.time()
    pgbackrest = _program(module, params['pgbackrest'])

    rc, out, err = module.run_command(info_argv(pgbackrest, stanza), environ_update=C_LOCALE, cwd='/tmp')
    try:
        parsed = parse_info(out, stanza)
    except PgBackRestError as exc:
        module.fail_json(msg='cannot read the backup catalog: pgbackrest info exited %d: %s%s'
                             % (rc, exc, ('; stderr: %s' % scrub(err, 300)) if (err or '').strip() else ''))
    regions = build_regions(parsed, [{'name': r['name'].strip(), 'repo': r['repo']} for r in params['regions']], now)

    good = None
    for region in regions:
        if params['verify'] and params['verify_until_good'] and good is not None:
            region['verify'] = {'ran': False, 'ok': None, 'message': 'not run: region %s verified first' % good}
        elif params['verify'] and region['reachable']:
            rc, out, err = module.run_command(verify_argv(pgbackrest, stanza, region['repo']), environ_update=C_LOCALE,
                                              cwd='/tmp')
            ok, message = judge_verify(rc, out, err)
            region['verify'] = {'ran': True, 'ok': ok, 'message': message}
            if ok:
                good = region['name']
        elif params['verify']:
            region['verify'] = {'ran': False, 'ok': None, 'message': 'not run: the region is unreachable'}

    archive = None
    if params['archiver']:
        psql = module.get_bin_path('psql', required=True)
        rc, out, err = module.run_command(archiver_argv(psql, params['pg_port']), environ_update=C_LOCALE, cwd='/tmp')
        try:
            archiver = parse_archiver(rc, out, err)
        except StandbyError as exc:
            module.fail_json(msg='run on the primary: %s; backup_catalog reads the archiver of the primary' % exc)
        archive = archive_state(archiver, now)
    checks = evaluate(regions, archive, params['interval_h'], params['margin_h'], params['rpo_s'])
    return dict(changed=False, regions=regions, archive=archive if archive is not None else archive_state(None, now),
                checks=checks, stanza_status=parsed['stanza_status'])


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == '__main__':
    main()
