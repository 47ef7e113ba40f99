#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_lock
short_description: Take or release a lock on a managed host so that two runs of a runbook never overlap
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - A lock is a directory created with one C(mkdir) (atomic on a local file system) holding C(holder.json) - who holds it,
    for which runbook, since when, and a token unique to the run. The deploy and rollback roles take it on the load
    balancer, so two deploys, or a deploy and a rollback, never move the same traffic at once (two engineers at 3 a.m.,
    a cron firing while an AWX job runs).
  - O(state=acquired) takes the lock or fails naming its holder. A lock older than O(stale_after_s) is stale (its run
    died without releasing it) and is taken over, with a warning naming the old holder; so no lock outlives its holder
    for longer than that.
  - O(state=released) removes the lock when O(token) is the holder's; a lock held by another run is never removed (the
    module fails). Releasing a lock that does not exist changes nothing.
  - The lock lives on the managed host, not on the controller, so it works under AWX, whose job directories are thrown
    away after each job.
options:
  path:
    description:
      - The lock directory, for example V(/run/dealerscope-ops/deploy.lock). Its parent is created when missing (mode 0755).
    type: path
    required: true
  state:
    description:
      - V(acquired) takes the lock, V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  token:
    description:
      - Unique to the run (for example the run's start time and the controller's process id). The same token acquiring again
        is a no-op (the lock is already this run's); releasing needs it.
    type: str
    required: true
  holder:
    description:
      - Who takes the lock, shown to a run that finds it held (for example V(deploy 2.0.0 by alice from ops1)).
    type: str
    default: ""
  stale_after_s:
    description:
      - A lock older than this many seconds is stale and taken over. At least 60.
    type: int
    default: 3600
attributes:
  check_mode:
    support: full
    description: In check mode nothing is created or removed; a free lock reports C(changed) as a real run would, a held one fails.
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: full
    description: Acquiring a lock this run holds, or releasing one that does not exist, changes nothing.
"""

EXAMPLES = r"""
- name: One deploy at a time
  dealerscope.ops.run_lock:
    path: /run/dealerscope-ops/deploy.lock
    token: "{{ started_at }}-{{ lookup('ansible.builtin.pipe', 'echo $PPID') }}"
    holder: deploy {{ deploy_version }}
  delegate_to: lb1
  run_once: true
"""

RETURN = r"""
holder:
  description: The holder record now (after acquiring) or before (when held by another run, or just released).
  returned: always
  type: dict
  sample: {holder: deploy 2.0.0, token: 20261127T030001Z-4242, since: "2026-11-27T03:00:01Z", since_epoch: 1795748401}
taken_over:
  description: The stale holder record that was replaced, or V(null).
  returned: always
  type: dict
"""

import json
import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule

HOLDER_FILE = 'holder.json'


def read_holder(path):
    """The holder record of the lock at ``path``, {} when it is unreadable, None when there is no lock."""
    if not os.path.isdir(path):
        return None
    try:
        with open(os.path.join(path, HOLDER_FILE), encoding='utf-8') as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def lock_age(path, holder, now):
    """Seconds since the lock was taken (its record's time, else the directory's mtime)."""
    since = holder.get('since_epoch') if holder else None
    if not isinstance(since, (int, float)) or isinstance(since, bool):
        since = os.stat(path).st_mtime
    return now - since


def describe(holder):
    if not holder:
        return 'an unknown holder (no readable holder.json)'
    return '%s (since %s, token %s)' % (holder.get('holder') or 'an unnamed run', holder.get('since', '?'), holder.get('token', '?'))


def acquire(module, path, token, record, now):
    params = module.params
    result = dict(changed=False, holder=None, taken_over=None)
    held = read_holder(path)
    if held is not None and held.get('token') == token:
        result['holder'] = held
        return result
    if held is not None:
        age = lock_age(path, held, now)
        if age <= params['stale_after_s']:
            module.fail_json(msg='%s is held by %s, %d s ago; wait for it to finish (the lock is stale after %d s)'
                             % (path, describe(held), age, params['stale_after_s']), holder=held, taken_over=None)
        result['taken_over'] = held
        module.warn('%s was held by %s for %d s, longer than stale_after_s (%d): its run died without releasing it; taken over'
                    % (path, describe(held), age, params['stale_after_s']))
    result['changed'] = True
    result['holder'] = record
    if module.check_mode:
        return result
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    if held is not None:
        shutil.rmtree(path)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        module.fail_json(msg='%s was taken by %s at the same moment; run again later' % (path, describe(read_holder(path))))
    tmp = os.path.join(path, HOLDER_FILE + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as handle:
        json.dump(record, handle)
    os.rename(tmp, os.path.join(path, HOLDER_FILE))
    return result


def release(module, path, token):
    held = read_holder(path)
    if held is None:
        return dict(changed=False, holder=None, taken_over=None)
    if held.get('token') != token:
        module.fail_json(msg='%s is held by %s, not by this run (token %s): not released' % (path, describe(held), token),
                         holder=held, taken_over=None)
    if not module.check_mode:
        shutil.rmtree(path)
    return dict(changed=True, holder=held, taken_over=None)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            state=dict(type='str', choices=['acquired', 'released'], default='acquired'),
            token=dict(type='str', required=True, no_log=False),  # identifies a run, not a secret
            holder=dict(type='str', default=''),
            stale_after_s=dict(type='int', default=3600),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = os.path.normpath(params['path'])
    if params['stale_after_s'] < 60:
        module.fail_json(msg='stale_after_s must be at least 60 (a lock younger than that is never taken over), got %d'
                         % params['stale_after_s'])
    if not params['token'].strip():
        module.fail_json(msg='token must not be empty: it tells this run\'s lock from another\'s')
    now = time.time()
    record = dict(holder=params['holder'], token=params['token'], since=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now)),
                  since_epoch=round(now, 3))
    try:
        if params['state'] == 'acquired':
            result = acquire(module, path, params['token'], record, now)
        else:
            result = release(module, path, params['token'])
    except OSError as exc:
        module.fail_json(msg='cannot %s the lock %s: %s' % ('take' if params['state'] == 'acquired' else 'release', path, exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
