#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lb_pool
short_description: Set the weights of every member of an nginx upstream in one edit (blue/green and canary traffic switches)
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Moves traffic between the members of one nginx C(upstream) block, for example between the two colours of a blue/green
    deploy, by setting the C(weight) of B(all) its members in B(one) edit of the file O(config_path), then validating and
    gracefully reloading nginx. A canary step of 10 % is for example
    C(server app1:8001 weight=9; server app2:8001 weight=9; server app1:8002 weight=1; server app2:8002 weight=1;).
    With O(state=query) it only reports the pool's members.
  - >-
    Each listed member's C(server) line gets C(weight=<weight>) (the existing C(weight=) parameter is replaced, or one is
    added after the address; C(weight=1) is written too). Weight V(0) means the member gets no traffic: nginx does not accept
    C(weight=0), so the line gets the C(down) parameter and no C(weight=). A weight above 0 removes C(down). Every other
    parameter and every other byte of the file is kept.
  - >-
    Members that are not in the file yet get a line each, in the order of O(members), after the last C(server) line of the block
    and with its indentation (4 spaces more than the C(upstream) line when the block has no C(server) line):
    C(server <address> weight=<weight> <params>;), or C(server <address> <params> down;) for weight 0.
  - With O(remove_unlisted=true), the lines of members that are not listed are deleted (with their trailing comment).
  - The new file replaces the old one atomically (same owner, mode and SELinux context; a symlink is followed), then
    O(validate_command) runs; when it fails the old file is put back and the module fails with nginx's message.
    Then O(reload_command) reloads nginx gracefully (when the reload command fails, the old file is put back too).
  - >-
    With O(wait=true) the module then waits until the switch is done: every nginx worker process that existed before the
    reload has exited or is shutting down (C(nginx: worker process is shutting down)), so new requests are served with the
    new weights. It returns the time from just before the file was written until then in RV(switch_s).
  - The members are validated before anything is read or written; every problem is reported at once, naming the member by its
    index in O(members) (for example C(members[2].weight)).
  - Setting the weights the file already has changes nothing (no write, no reload).
options:
  pool:
    description:
      - The nginx C(upstream) name, for example V(dealerscope_api). It must be defined once in O(config_path).
    type: str
    required: true
  config_path:
    description:
      - The configuration file holding the C(upstream) block, for example V(/etc/nginx/conf.d/dealerscope.conf) or, on
        Debian-style layouts, V(/etc/nginx/sites-available/dealerscope.conf).
    type: path
    required: true
  state:
    description:
      - V(present) sets the members to O(members). V(query) changes nothing and only reports the members in RV(members).
    type: str
    choices: [present, query]
    default: present
  members:
    description:
      - The members of the pool and their weights. Required when O(state=present); ignored with O(state=query).
      - At least one member must have a weight above 0. Each address may be listed once.
      - A listed member that appears more than once in the block makes the module fail (edit the file by hand).
    type: list
    elements: dict
    suboptions:
      address:
        description:
          - The server address exactly as written on the C(server) line, for example V(app1:8000), V(10.0.0.5:8080) or
            V(unix:/run/app.sock).
          - Must not be empty nor contain blanks, C(;), C({), C(}), C(#), quotes or backslashes.
        type: str
        required: true
      weight:
        description:
          - The member's share of the requests, relative to the other members (nginx's C(weight=)). V(0) means no traffic
            (the line gets C(down)). A string of digits such as V("9") is accepted.
        type: int
        required: true
      params:
        description:
          - Further parameters for the member's line when it is B(new), for example V(max_fails=2 fail_timeout=5s).
            The line of a member that is already in the block keeps its parameters as they are.
          - Must not contain C(weight=) or C(down) (set by O(members[].weight)), C(;), C({), C(}), C(#), quotes or backslashes.
        type: str
  remove_unlisted:
    description:
      - Delete the C(server) lines (with their trailing comment) of the members of the block that are not in O(members).
        When V(false) they are kept unchanged and keep taking traffic with their weight.
    type: bool
    default: true
  keep_drained:
    description:
      - A listed member drained for maintenance by M(dealerscope.ops.lb_member) (C(down) with its marker comment
        C(# dealerscope.ops drained ...), for example a host being patched) stays C(down) with its marker, also when its weight
        is above 0; only its C(weight=) is set, so it comes back with the right share when lb_member enables it. Such members
        are returned in RV(drained).
      - When V(false), the marker and C(down) are removed like for any member with a weight above 0 (and the marker of a
        member with weight 0, which stays C(down)).
      - When no member would take traffic because of drained members, the module fails before writing and names them.
    type: bool
    default: true
  validate_command:
    description:
      - Command that checks the whole nginx configuration after the file is written (run without a shell).
        A non-zero exit restores the old file.
    type: str
    default: nginx -t -q
  reload_command:
    description:
      - Command that reloads nginx gracefully after a successful validation (run without a shell). A non-zero exit restores
        the old file.
    type: str
    default: systemctl reload nginx
  wait:
    description:
      - After the reload, wait until no nginx worker process from before the reload accepts new requests (see the description).
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait for the switch, in seconds. When it is not done by then the module fails; the new configuration stays
        in place and nginx was reloaded.
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    description:
      - Predicts C(changed), RV(members), RV(added), RV(removed) and RV(drained) exactly; writes nothing, reloads nothing and
        waits for nothing.
  diff_mode:
    support: full
    description: Returns the configuration file before and after the change (also in check mode).
  idempotent:
    support: full
    description: When the block already has the requested members and weights the module reports no change and does not reload nginx.
notes:
  - >-
    The weights are relative: nginx sends each member its weight divided by the sum of the weights of the members that are
    not C(down). A canary of 10 % on two hosts per colour is weight 9 for the two old members and 1 for the two new ones
    (see the filter P(dealerscope.ops.deploy_canary_steps#filter), which gives the weights of each step).
  - The file is edited under an exclusive lock of its directory (C(flock)), shared with M(dealerscope.ops.lb_member), so the two
    modules never lose each other's edits.
  - Only the C(server) lines of the named C(upstream) block are changed; other upstreams, comments and other parameters
    (C(max_fails), C(fail_timeout), C(backup), ...) are kept. Servers defined through an C(include) inside the block are not seen.
  - >-
    Waiting. A graceful reload starts new worker processes and tells the old ones to stop accepting connections, finish the
    requests they serve and exit; while they do, their title is C(nginx: worker process is shutting down). The module notes
    the worker processes just before the reload and waits until each has exited or is shutting down. Requests already in
    flight on the old workers still complete with the old weights. Only processes in the module's PID namespace are
    considered. Until an nginx master has started new worker processes, every old worker is waited for (a reload that did not
    happen ends in a timeout); then workers of another nginx instance in the same namespace that was not reloaded are waited
    for at most 3 seconds.
  - A member that was C(down) without lb_member's marker (an idle blue/green colour, or a member set down by hand) and gets a
    weight above 0 takes traffic again; it is listed in RV(revived).
seealso:
  - module: dealerscope.ops.lb_member
    description: Drain one member for maintenance (waiting for its requests in flight) and put it back.
  - name: nginx upstream server parameters
    description: The C(weight) and C(down) parameters of C(server) in an C(upstream) block.
    link: https://nginx.org/en/docs/http/ngx_http_upstream_module.html#server
  - name: nginx graceful reload
    description: How nginx replaces its worker processes on reload.
    link: https://nginx.org/en/docs/control.html
"""

EXAMPLES = r"""
- name: Canary - 10 % of the requests to the green colour (port 8002), 90 % to blue (port 8001)
  dealerscope.ops.lb_pool:
    config_path: /etc/nginx/sites-available/dealerscope.conf
    pool: dealerscope_api
    members:
      - {address: "app1:8001", weight: 9}
      - {address: "app2:8001", weight: 9}
      - {address: "app1:8002", weight: 1, params: "max_fails=2 fail_timeout=5s"}
      - {address: "app2:8002", weight: 1, params: "max_fails=2 fail_timeout=5s"}
  delegate_to: lb1
  become: true

- name: One canary step with the filter's weights (old colour blue on 8001, new colour green on 8002)
  dealerscope.ops.lb_pool:
    config_path: /etc/nginx/sites-available/dealerscope.conf
    pool: dealerscope_api
    members:
      - {address: "app1:8001", weight: "{{ step.old_weight }}"}
      - {address: "app2:8001", weight: "{{ step.old_weight }}"}
      - {address: "app1:8002", weight: "{{ step.new_weight }}"}
      - {address: "app2:8002", weight: "{{ step.new_weight }}"}
  vars:
    step: "{{ ([10, 50, 100] | dealerscope.ops.deploy_canary_steps)[0] }}"
  delegate_to: lb1
  become: true

- name: All traffic to green; blue stays in the file, down, for a quick rollback
  dealerscope.ops.lb_pool:
    config_path: /etc/nginx/sites-available/dealerscope.conf
    pool: dealerscope_api
    members:
      - {address: "app1:8001", weight: 0}
      - {address: "app2:8001", weight: 0}
      - {address: "app1:8002", weight: 1}
      - {address: "app2:8002", weight: 1}
  delegate_to: lb1
  become: true
  register: switch

- name: Show how long the switch took
  ansible.builtin.debug:
    msg: "new weights serve new requests after {{ switch.switch_s }} s; still drained for maintenance: {{ switch.drained }}"

- name: Members and weights as nginx has them
  dealerscope.ops.lb_pool:
    config_path: /etc/nginx/conf.d/dealerscope.conf
    pool: dealerscope_api
    state: query
  register: pool
"""

RETURN = r"""
members:
  description: The members of the pool after the task (predicted in check mode), in the order of the file.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The server address as written on the C(server) line.
      type: str
      sample: app1:8002
    weight:
      description: The C(weight=) parameter, V(1) (nginx's default) when the line has none.
      type: int
      sample: 9
    down:
      description: Whether the line has the C(down) parameter (the member gets no traffic).
      type: bool
      sample: false
    drained:
      description: Whether the member is drained for maintenance by M(dealerscope.ops.lb_member) (C(down) with its marker comment).
      type: bool
      sample: false
    reason:
      description: The reason from the marker comment of a drained member; V(null) otherwise.
      type: str
      sample: patching app1
  sample:
    - {"address": "app1:8001", "weight": 9, "down": false, "drained": false, "reason": null}
    - {"address": "app1:8002", "weight": 1, "down": false, "drained": false, "reason": null}
previous_members:
  description: The members of the pool before the task, like RV(members).
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - {"address": "app1:8001", "weight": 1, "down": false, "drained": false, "reason": null}
drained:
  description:
    - Addresses of listed members with a weight above 0 that stay C(down) because they are drained for maintenance
      (O(keep_drained=true)). They take traffic again when M(dealerscope.ops.lb_member) enables them.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["app2:8001"]
revived:
  description:
    - Addresses of listed members that were C(down) without lb_member's maintenance marker and take traffic now (the
      idle colour of a blue/green deploy, or a member someone set C(down) by hand). A caller that did not expect one
      can check this list.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["app1:8002"]
added:
  description: Addresses of the members that got a new C(server) line.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["app1:8002", "app2:8002"]
removed:
  description: Addresses of the members whose C(server) line was deleted (O(remove_unlisted=true)).
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["app1:8000"]
switch_s:
  description:
    - Seconds from just before the file was written until no nginx worker process from before the reload accepted new requests
      (with O(wait=false), until the reload command returned).
    - V(0) when nothing changed and in check mode.
  returned: when O(state=present)
  type: float
  sample: 0.412
diff:
  description: The configuration file before and after, when it changes and the task runs with C(--diff).
  returned: when the file changes and diff mode is on
  type: dict
  contains:
    before:
      description: The file's content before.
      type: str
    after:
      description: The file's content after (what it would be, in check mode).
      type: str
    before_header:
      description: The file's path.
      type: str
    after_header:
      description: The file's path.
      type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import replace_atomically
from ansible_collections.dealerscope.ops.plugins.module_utils.lb_member import (
    DirectoryLock,
    LbMemberError,
    NginxCommitError,
    nginx_commit,
    nginx_wait,
    scan_nginx_workers,
)
from ansible_collections.dealerscope.ops.plugins.module_utils.lb_pool import (
    NGINX_SWITCHED,
    check_members,
    plan_pool,
    pool_members,
)

# Indirections the unit tests replace (a fake /proc, shorter intervals).
PROC_ROOT = '/proc'
POLL_INTERVAL_S = 0.1
NGINX_SETTLE_S = 3.0


def argument_spec():
    return dict(
        pool=dict(type='str', required=True),
        config_path=dict(type='path', required=True),
        state=dict(type='str', choices=['present', 'query'], default='present'),
        members=dict(type='list', elements='dict'),
        remove_unlisted=dict(type='bool', default=True),
        keep_drained=dict(type='bool', default=True),
        validate_command=dict(type='str', default='nginx -t -q'),
        reload_command=dict(type='str', default='systemctl reload nginx'),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='float', default=30),
    )


def _writer(module):
    """``write(path, data)``: replace ``path`` atomically with ``data`` (bytes), keeping its owner, mode and SELinux context."""
    def write(path, data):
        replace_atomically(path, data, mover=module.atomic_move)
    return write


def run(module):
    params = module.params
    pool, state = params['pool'], params['state']
    members = None
    if state == 'present':
        try:
            members = check_members(params['members'])
        except LbMemberError as exc:
            module.fail_json(msg=str(exc))
    path = os.path.realpath(params['config_path'])
    try:
        lock = DirectoryLock(os.path.dirname(path))
    except OSError as exc:
        module.fail_json(msg='cannot open the directory of config_path %s: %s' % (params['config_path'], exc))
    with lock:
        try:
            with open(path, 'rb') as handle:
                old_bytes = handle.read()
        except (IOError, OSError) as exc:
            module.fail_json(msg='cannot read config_path %s: %s' % (params['config_path'], exc))
        text = old_bytes.decode('utf-8', 'surrogateescape')
        try:
            if state == 'query':
                return dict(changed=False, members=pool_members(text, pool))
            new_text, info = plan_pool(text, pool, members, params['remove_unlisted'], params['keep_drained'])
        except LbMemberError as exc:
            module.fail_json(msg='%s: %s' % (params['config_path'], exc))
        changed = new_text != text
        result = dict(changed=changed, members=info['members'], previous_members=info['previous'], drained=info['drained'],
                      added=info['added'], removed=info['removed'], revived=info['revived'], switch_s=0.0)
        if changed and module._diff:
            result['diff'] = dict(before=text, after=new_text, before_header=path, after_header=path)
        if not changed or module.check_mode:
            return result
        started = time.monotonic()
        before = None
        scan = (lambda: scan_nginx_workers(PROC_ROOT)) if params['wait'] else None
        try:
            before = nginx_commit(path, old_bytes, new_text.encode('utf-8', 'surrogateescape'), _writer(module),
                                  module.run_command, params['validate_command'], params['reload_command'], scan)
        except NginxCommitError as exc:
            module.fail_json(msg=str(exc), changed=exc.changed)
    if params['wait']:
        switch_s, failure = nginx_wait(before, NGINX_SWITCHED, params['wait_timeout'],
                                       'they may still send new requests with the previous weights. The new configuration stays in %s '
                                       '(nginx validated and reloaded it).' % path,
                                       PROC_ROOT, POLL_INTERVAL_S, NGINX_SETTLE_S, started=started)
        result['switch_s'] = round(switch_s, 3)
        if failure:
            module.fail_json(msg=failure, **result)
    else:
        result['switch_s'] = round(time.monotonic() - started, 3)
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[('state', 'present', ['members'])],
        supports_check_mode=True,
    )
    if module.params['wait_timeout'] <= 0:
        module.fail_json(msg='wait_timeout must be greater than 0, got %s' % module.params['wait_timeout'])
    module.exit_json(**run(module))


if __name__ == '__main__':
    main()
