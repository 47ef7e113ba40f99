#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_health
short_description: PostgreSQL health for the daily runbook in one call - connections, query time, replication, size
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Runs one C(psql) session as the PostgreSQL superuser on the database host and returns checks for connections in use
    against the pool, the mean query time from C(pg_stat_statements), replication (streaming standbys on a primary, replay
    backlog on a standby) and the database size.
  - It does not judge backups; the daily runbook does that with M(dealerscope.ops.backup_catalog), from the pgBackRest catalog.
  - Every check follows the C(ops_checks) contract - name, status (ok, warning, critical), value, threshold, unit, message, alert.
  - The module only reads; it never changes anything.
  - C(psql) prints one JSON object per fact, so any value (a standby's C(application_name) with C(|), quotes or spaces) is read as it is.
  - It fails before running C(psql), with a message naming the option(s), when a percentage is not between 0 and 100, a warning
    threshold is above its critical one (O(connections_limit_percent) and O(connections_crit_percent), O(replication_lag_warn_s) and
    O(replication_lag_crit_s)), O(query_mean_crit_factor) is below 1, or a count, duration or limit is negative (or zero where it
    must be positive).
options:
  database:
    description: Database to inspect (where C(pg_stat_statements) is installed).
    type: str
    default: postgres
  port:
    description: PostgreSQL port.
    type: int
    default: 5432
  become_user:
    description: Operating system user that runs C(psql) (peer authentication).
    type: str
    default: postgres
  pool_size:
    description: Size of the connection pool to compare with; V(0) uses the server's C(max_connections).
    type: int
    default: 0
  connections_limit_percent:
    description: Connections in use, in percent of the pool, at which the check warns (readiness document - below 80 %).
    type: int
    default: 80
  connections_crit_percent:
    description: Connections in use, in percent of the pool, at which the check is critical.
    type: int
    default: 95
  query_mean_limit_ms:
    description: Mean query time at which the check warns (readiness document - below 100 ms on average).
    type: float
    default: 100
  query_mean_crit_factor:
    description: The check is critical at this multiple of O(query_mean_limit_ms).
    type: float
    default: 5
  expect_standbys:
    description: On a primary, how many standbys must be streaming; fewer is critical (C(service_down)).
    type: int
    default: 0
  replication_lag_warn_s:
    description: Standby replay lag, seen from the primary, at which the check warns.
    type: int
    default: 60
  replication_lag_crit_s:
    description: Standby replay lag at which the check is critical (default the RPO, one hour).
    type: int
    default: 3600
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs unchanged in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: Reading twice changes nothing.
notes:
  - Requires C(psql) on the host and peer authentication for O(become_user) (the Debian default for C(postgres)).
  - Mean query time needs C(pg_stat_statements) in C(shared_preload_libraries) and C(CREATE EXTENSION pg_stat_statements) in O(database).
"""

EXAMPLES = r"""
- name: Database health against the readiness numbers
  dealerscope.ops.pg_health:
    database: dealerscope
    connections_limit_percent: "{{ ops_limit_db_connections_percent }}"
    query_mean_limit_ms: "{{ ops_sla_db_query_avg_ms }}"
    expect_standbys: "{{ groups['db_standby'] | length }}"
  register: db_health
"""

RETURN = r"""
checks:
  description: Check results (ops_checks contract).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "db_connections", "status": "ok", "value": 4.0, "threshold": 80, "unit": "%",
            "message": "connections in use (4 of 100) is 4 % (limit 80 %)", "alert": null}]
postgres:
  description: Raw measurements.
  returned: always
  type: dict
  contains:
    max_connections:
      description: Server C(max_connections).
      type: int
      returned: when PostgreSQL answered
    connections:
      description: Client backends connected.
      type: int
      returned: when PostgreSQL answered
    in_recovery:
      description: Whether this server is a standby.
      type: bool
      returned: when PostgreSQL answered
    mean_query_ms:
      description: Mean execution time over C(pg_stat_statements).
      type: float
      returned: when pg_stat_statements is available
    replicas:
      description: Standbys connected to this primary.
      type: list
      elements: dict
      returned: always
    psql_errors:
      description: Errors psql printed for probe statements that could not run (e.g. a missing extension).
      type: list
      elements: str
      returned: always
    elapsed_ms:
      description: Time the module took.
      type: float
      returned: always
  sample: {"max_connections": 100, "connections": 4, "in_recovery": false, "mean_query_ms": 0.8, "replicas": [], "elapsed_ms": 45.1}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check
from ansible_collections.dealerscope.ops.plugins.module_utils.pg_health import evaluate, parse, psql_args, validate_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database=dict(type='str', default='postgres'),
            port=dict(type='int', default=5432),
            become_user=dict(type='str', default='postgres'),
            pool_size=dict(type='int', default=0),
            connections_limit_percent=dict(type='int', default=80),
            connections_crit_percent=dict(type='int', default=95),
            query_mean_limit_ms=dict(type='float', default=100),
            query_mean_crit_factor=dict(type='float', default=5),
            expect_standbys=dict(type='int', default=0),
            replication_lag_warn_s=dict(type='int', default=60),
            replication_lag_crit_s=dict(type='int', default=3600),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problems = validate_options(p)
    if problems:
        module.fail_json(msg='invalid options: %s' % '; '.join(problems))
    started = time.monotonic()
    psql = module.get_bin_path('psql', required=True)
    argv = psql_args(psql, p['database'], p['port'])
    if os.geteuid() == 0 and p['become_user'] != 'root':
        argv = [module.get_bin_path('runuser', required=True, opt_dirs=['/usr/sbin', '/sbin']), '-u', p['become_user'], '--'] + argv
    rc, out, err = module.run_command(argv, cwd='/tmp')
    facts = parse(out)
    facts['psql_errors'] = [line for line in err.splitlines() if line.startswith(('ERROR', 'psql:', 'FATAL'))]
    if 'max_connections' not in facts:
        checks = [make_check('postgres', 'critical', None, None, 'PostgreSQL does not answer: %s' % (err.strip() or 'rc=%d' % rc)[:300],
                             alert='service_down')]
    else:
        checks = evaluate(
            facts, pool_size=p['pool_size'] or None, connections_limit_percent=p['connections_limit_percent'],
            connections_crit_percent=p['connections_crit_percent'], query_mean_limit_ms=p['query_mean_limit_ms'],
            query_mean_crit_factor=p['query_mean_crit_factor'], expect_standbys=p['expect_standbys'],
            lag_warn_s=p['replication_lag_warn_s'], lag_crit_s=p['replication_lag_crit_s'])
    facts['elapsed_ms'] = round((time.monotonic() - started) * 1000, 1)
    module.exit_json(changed=False, checks=checks, postgres=facts)


if __name__ == '__main__':
    main()
