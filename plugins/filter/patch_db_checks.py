# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: patch_db_checks
short_description: Judge the PostgreSQL clusters of a host before and after patching it
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Turns the output of the patching role's database probe (C(roles/patching/files/db_probe.sh), run on a database host) into check
    results of the C(ops_checks) contract, one C(database:<version>/<cluster>) check per cluster that starts automatically and, on a
    standby, one C(replication:<version>/<cluster>) check.
  - A cluster is healthy when its own unit C(postgresql@<version>-<cluster>.service) is active (not C(postgresql.service), a wrapper
    that stays active whether or not a cluster runs) and C(SELECT 1) answers as postgres; a standby also needs its WAL receiver
    C(streaming) again.
  - Nothing measured is not fine - a host with no cluster set to start automatically, a probe that did not run, or an unreachable
    host each give a critical C(database) check.
  - A critical check carries C(details.pending=true) when waiting may still make it pass (the unit is still starting, the server
    does not answer yet, a standby does not stream yet); the role's post-check retries until no such check is left or its time is up.
options:
  _input:
    description: The registered result of the probe task (C(stdout) is read; C(unreachable), C(failed) and C(msg) are honoured), or its stdout.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: The database answers
  ansible.builtin.script: db_probe.sh
  register: db_probe
  changed_when: false

- name: No critical database check
  ansible.builtin.assert:
    that: db_probe | dealerscope.ops.patch_db_checks | selectattr('status', 'equalto', 'critical') | list | length == 0
"""

RETURN = r"""
_value:
  description: Check results (C(name), C(status), C(value), C(threshold), C(unit), C(message), C(alert), C(details)).
  type: list
  elements: dict
"""

from ansible.module_utils.six import string_types
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check

STARTING_STATES = ('activating', 'reloading')


def _probe_failure(message):
    return [make_check('database', 'critical', None, None, message, alert='service_down', details={'pending': False})]


def parse_probe(stdout):
    """Cluster rows of the probe output: dicts version, cluster, start, unit, state, answer."""
    rows = []
    for line in (stdout or '').splitlines():
        fields = line.split('\t', 6)
        if len(fields) == 7 and fields[0] == 'cluster':
            rows.append(dict(zip(('version', 'cluster', 'start', 'unit', 'state', 'answer'), (f.strip() for f in fields[1:]))))
    return rows


def parse_answer(answer):
    """(in_recovery, wal_receiver) from psql's ``1|f|none`` answer, or None when the query did not answer."""
    fields = (answer or '').strip().split('|')
    if len(fields) != 3 or fields[0] != '1' or fields[1] not in ('t', 'f'):
        return None
    return fields[1] == 't', fields[2] or 'none'


def cluster_checks(row):
    name = '%s/%s' % (row['version'], row['cluster'])
    details = {'cluster': name, 'unit': row['unit'], 'unit_state': row['state'], 'role': None, 'wal_receiver': None,
               'answer': row['answer'][:300], 'pending': False}
    if row['state'] != 'active':
        details['pending'] = row['state'] in STARTING_STATES
        return [make_check('database:%s' % name, 'critical', None, None,
                           '%s: %s is %s - the database is not running' % (name, row['unit'], row['state']),
                           alert='service_down', details=details)]
    answered = parse_answer(row['answer'])
    if answered is None:
        details['pending'] = True
        return [make_check('database:%s' % name, 'critical', None, None,
                           '%s: %s is active but SELECT 1 got no answer (%s)' % (name, row['unit'], row['answer'][:200]),
                           alert='service_down', details=details)]
    standby, receiver = answered
    details.update(role='standby' if standby else 'primary', wal_receiver=receiver if standby else None)
    checks = [make_check('database:%s' % name, 'ok', None, None,
                         '%s: %s active, SELECT 1 answers (%s)' % (name, row['unit'], details['role']), details=dict(details))]
    if standby:
        streaming = receiver == 'streaming'
        details['pending'] = not streaming
        checks.append(make_check('replication:%s' % name, 'ok' if streaming else 'critical', None, None,
                                 ('%s: standby streams from its primary again (WAL receiver streaming)' % name) if streaming else
                                 ('%s: standby does not stream from its primary (WAL receiver: %s)' % (name, receiver)),
                                 alert='replication_broken', details=details))
    return checks


def patch_db_checks(result):
    """Check results of one database host from its probe result (see DOCUMENTATION)."""
    if isinstance(result, string_types):
        result = {'stdout': result}
    if not isinstance(result, dict):
        return _probe_failure('the database probe gave no result (%r)' % (type(result).__name__,))
    if result.get('unreachable'):
        return _probe_failure('the database probe could not run: host unreachable (%s)' % (result.get('msg') or '')[:200])
    if result.get('skipped'):
        return _probe_failure('the database probe was skipped - nothing was measured')
    rows = parse_probe(result.get('stdout'))
    if result.get('failed') and not rows:
        return _probe_failure('the database probe failed: %s' % (result.get('msg') or result.get('stderr') or 'no output')[:300])
    auto = [row for row in rows if row['start'] == 'auto']
    if not auto:
        others = ', '.join('%s/%s (start.conf: %s)' % (row['version'], row['cluster'], row['start']) for row in rows) or 'none'
        return _probe_failure('no PostgreSQL cluster set to start automatically on a database host (patching_db_groups); '
                              'clusters found under /etc/postgresql: %s' % others)
    checks = []
    for row in auto:
        checks.extend(cluster_checks(row))
    return checks


class FilterModule(object):
    """dealerscope.ops.patch_db_checks"""

    def filters(self):
        return {'patch_db_checks': patch_db_checks}
