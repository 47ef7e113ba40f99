#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lb_member
short_description: Take a backend server out of a load-balancer pool (waiting for its in-flight requests) or put it back
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Drains or enables one member of an nginx C(upstream) or an haproxy C(backend), for rolling maintenance such as patching
    one application host at a time. With O(state=query) it only reports the pool's members.
  - >-
    B(nginx) (O(backend=nginx)). The module edits the file O(config_path) that holds the C(upstream) block.
    A drain adds the C(down) parameter to the member's C(server) line and a trailing comment
    C(# dealerscope.ops drained <UTC ISO 8601 time>: <reason>) at the end of that line; enabling removes both.
    Every other byte of the file is kept, so the diff is one line.
    The new file replaces the old one atomically (same owner, mode and SELinux context; a symlink is followed), then
    O(validate_command) runs; when it fails the old file is put back and the module fails with nginx's message.
    Then O(reload_command) reloads nginx gracefully (when the reload command fails, the old file is put back too).
  - >-
    With O(wait=true), after a drain the module waits until nginx's old worker processes (shown as
    C(nginx: worker process is shutting down)) have exited, that is until every request they were serving,
    including those to the drained server, has completed. See the notes for the details.
  - B(haproxy) (O(backend=haproxy)). The module uses haproxy's runtime API on the admin socket O(socket)
    (C(stats socket ... level admin)). A drain is C(set server <pool>/<member> state drain) (no new requests, the current
    ones go on), then, with O(wait=true), waiting until the server's current sessions and queued requests (C(scur) and
    C(qcur) of C(show stat)) are 0, then C(set server <pool>/<member> state maint). Enabling is
    C(set server <pool>/<member> state ready). The state haproxy reports afterwards is checked.
  - A member that is not found makes the module fail with the list of the pool's members; a pool that is not found makes it
    fail with the list of pools (nginx upstreams in the file, haproxy backends).
  - Draining a member that is already drained, or enabling one that is enabled, changes nothing (and does not reload nginx).
    With O(wait=true), draining an already drained member still waits for requests in flight (for example when an earlier
    run timed out), so a task that succeeds always means the member serves no request any more.
options:
  backend:
    description:
      - The kind of load balancer.
    type: str
    required: true
    choices: [nginx, haproxy]
  pool:
    description:
      - The nginx C(upstream) name (for example V(dealerscope_api)) or the haproxy C(backend) name.
    type: str
    required: true
  member:
    description:
      - The member to drain or enable. For nginx, the server address exactly as written on the upstream's C(server) line
        (for example V(app1:8000)); for haproxy, the server name.
      - Required unless O(state=query). With O(state=query) it selects the member reported in RV(state).
    type: str
  state:
    description:
      - V(drained) takes the member out of the pool (and, with O(wait=true), waits for its in-flight requests),
        V(enabled) puts it back, V(query) changes nothing and only reports.
    type: str
    choices: [enabled, drained, query]
    default: query
  reason:
    description:
      - Why the member is drained. For nginx it is recorded in the marker comment on the server line (made one line
        without C(;), C({), C(}) and C(#), at most 200 characters). It is returned in RV(reason) for both backends.
      - Ignored unless O(state=drained). A member that is already drained keeps the reason it was drained with.
    type: str
  config_path:
    description:
      - B(nginx), required for it. The configuration file holding the C(upstream) block, for example
        V(/etc/nginx/conf.d/dealerscope.conf) or, on Debian-style layouts, V(/etc/nginx/sites-available/dealerscope.conf).
    type: path
  validate_command:
    description:
      - B(nginx). Command that checks the whole nginx configuration after the file is written (run without a shell).
        A non-zero exit restores the old file.
    type: str
    default: nginx -t -q
  reload_command:
    description:
      - B(nginx). Command that reloads nginx gracefully after a successful validation (run without a shell).
    type: str
    default: systemctl reload nginx
  socket:
    description:
      - B(haproxy). Path of haproxy's admin socket (C(stats socket <path> level admin) in its C(global) section).
    type: path
    default: /run/haproxy/admin.sock
  wait:
    description:
      - After a drain, wait until the requests in flight have completed (see the description). When V(false) the module
        returns right after the drain (for haproxy it sets C(maint) right after C(drain)).
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait for requests in flight, in seconds. When they are not done by then the module fails; the member
        stays drained (for haproxy in C(drain) state, so a later run can finish the drain).
    type: float
    default: 60
attributes:
  check_mode:
    support: full
    description:
      - Predicts C(changed), RV(state) and RV(members) exactly; writes nothing, reloads nothing, waits for nothing and sends
        no state change to haproxy (it does read C(show servers state) and C(show stat)).
  diff_mode:
    support: full
    description: For nginx, returns the configuration file before and after the change (also in check mode).
  idempotent:
    support: full
    description: Draining a drained member or enabling an enabled one reports no change and does not reload nginx.
notes:
  - B(nginx members) are in state V(enabled), V(drained) (C(down) with this module's marker comment) or V(down) (C(down)
    without the marker, for example drained by hand). Draining a V(down) member changes nothing; enabling it removes
    C(down), like for a member this module drained, and warns.
  - B(nginx file edits.) Only the C(server) line of the member in the named C(upstream) block is changed; other upstreams
    in the file, comments and other parameters (C(max_fails), C(fail_timeout), C(weight), C(backup), ...) are kept.
    The block and the server directive may span several lines. When other directives follow the member's C(server)
    directive on the same line (a one-line C(upstream) block), the marker comment cannot be placed, so the member gets
    C(down) only (state V(down)) and the module warns. Servers defined through an C(include) inside the block are not seen.
  - The nginx file is edited under an exclusive lock of its directory (C(flock)), so tasks delegated to the same load
    balancer for several hosts at once do not lose each other's edits.
  - >-
    B(nginx waiting.) A graceful reload starts new worker processes and tells the old ones to finish the requests they
    serve and exit; while they do, their title is C(nginx: worker process is shutting down). The module notes the worker
    processes just before the reload and waits until those of the reloaded nginx and every worker that is shutting down
    have exited. Only processes in the module's PID namespace are considered (not those of nginx in containers).
    Workers of another nginx instance in the same namespace that was not reloaded are waited for at most 3 seconds.
    Long-lived connections (WebSocket, long polling) keep old workers alive until they close or nginx's
    C(worker_shutdown_timeout) ends them; set it below O(wait_timeout).
  - B(haproxy members) are in state V(enabled), V(draining) (admin state DRAIN) or V(maint) (admin state MAINT, which is
    what a drain by this module ends with). Runtime states set through the admin socket are B(not persisted) across
    haproxy reloads or restarts unless a C(server-state-file) is configured (C(load-server-state-from-file) with
    C(show servers state) saved before the reload); a reload in between puts a drained server back into the pool.
  - The haproxy admin socket needs C(level admin); the module normally runs as root (C(become)) to open it.
seealso:
  - name: nginx upstream server parameters
    description: The C(down) parameter and the other parameters of C(server) in an C(upstream) block.
    link: https://nginx.org/en/docs/http/ngx_http_upstream_module.html#server
  - name: nginx graceful reload
    description: How nginx replaces its worker processes on reload.
    link: https://nginx.org/en/docs/control.html
  - name: haproxy management guide
    description: The runtime API (C(set server), C(show servers state), C(show stat)) and the server state file.
    link: https://docs.haproxy.org/2.6/management.html
"""

EXAMPLES = r"""
- name: Take app1 out of the lab load balancer before patching it
  dealerscope.ops.lb_member:
    backend: nginx
    config_path: /etc/nginx/sites-available/dealerscope.conf
    pool: dealerscope_api
    member: app1:8000
    state: drained
    reason: "patching {{ inventory_hostname }}"
    wait_timeout: 120
  delegate_to: lb1
  become: true

- name: Put app1 back into the pool
  dealerscope.ops.lb_member:
    backend: nginx
    config_path: /etc/nginx/sites-available/dealerscope.conf
    pool: dealerscope_api
    member: app1:8000
    state: enabled
  delegate_to: lb1
  become: true

- name: Drain a server of an haproxy backend
  dealerscope.ops.lb_member:
    backend: haproxy
    socket: /run/haproxy/admin.sock
    pool: be_api
    member: api1
    state: drained
    reason: kernel update
  delegate_to: haproxy1
  become: true

- name: Check that every member of the pool is enabled
  dealerscope.ops.lb_member:
    backend: nginx
    config_path: /etc/nginx/conf.d/dealerscope.conf
    pool: dealerscope_api
  register: pool_state
  failed_when: pool_state.members | rejectattr('state', 'eq', 'enabled') | list | length > 0

- name: Members of an haproxy backend
  dealerscope.ops.lb_member:
    backend: haproxy
    pool: be_api
  register: be_api
  delegate_to: haproxy1
  become: true

- name: Probe every enabled member from the load balancer (its address and port, not its name)
  ansible.builtin.uri:
    url: "http://{{ ('[' ~ item.address ~ ']') if ':' in item.address else item.address }}:{{ item.port }}/healthz"
  loop: "{{ be_api.members | selectattr('state', 'eq', 'enabled') | selectattr('address') | selectattr('port') | list }}"
  loop_control:
    label: "{{ item.name }}"
  delegate_to: haproxy1
"""

RETURN = r"""
state:
  description:
    - State of O(member) after the task (predicted in check mode), one of the states of RV(members[].state).
    - V(null) when O(state=query) without O(member).
  returned: always
  type: str
  sample: drained
previous_state:
  description: State of O(member) before the task; V(null) when O(state=query) without O(member).
  returned: always
  type: str
  sample: enabled
members:
  description: The members of the pool after the task (predicted in check mode), in the order of the configuration.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: nginx server address as written in the C(server) line, or haproxy server name.
      type: str
      sample: app1:8000
    state:
      description:
        - nginx - V(enabled), V(drained) (C(down) with this module's marker) or V(down) (C(down) without the marker).
        - haproxy - V(enabled), V(draining) (admin state DRAIN) or V(maint) (admin state MAINT).
      type: str
      sample: drained
    reason:
      description: nginx - the reason from the marker comment of a drained member; V(null) otherwise and always for haproxy.
      type: str
      sample: patching app1
    drained_at:
      description: nginx - the UTC time from the marker comment of a drained member, V(null) otherwise.
      type: str
      returned: when O(backend=nginx)
      sample: "2025-01-31T08:15:00Z"
    status:
      description: haproxy - the server's status from C(show stat) (V(UP), V(DOWN), V(DRAIN), V(MAINT), V(no check), ...).
      type: str
      returned: when O(backend=haproxy)
      sample: UP
    sessions:
      description: haproxy - current sessions plus queued requests of the server (C(scur) + C(qcur) of C(show stat)).
      type: int
      returned: when O(backend=haproxy)
      sample: 0
    address:
      description:
        - Where the load balancer sends the member's requests - for nginx the host of the C(server) address as written (V(app1) for
          V(app1:8000), V(::1) for V([::1]:9000)); for haproxy the address it currently uses (C(srv_addr) of C(show servers state),
          after DNS resolution).
        - V(null) for an nginx C(unix:) socket or an haproxy server whose name does not resolve.
        - A health probe of the member from the load balancer host goes to RV(members[].address) and RV(members[].port), not to
          RV(members[].name) (an haproxy server name is not an address).
      type: str
      returned: always
      sample: app1
    port:
      description:
        - The member's TCP port - for nginx from the C(server) address (80, nginx's default, when none is written); for haproxy
          C(srv_port) of C(show servers state).
        - V(null) when there is none (an nginx C(unix:) socket; an haproxy server without a port, which uses the client's port).
      type: int
      returned: always
      sample: 8000
  sample:
    - {"name": "app1:8000", "state": "drained", "reason": "patching app1", "drained_at": "2025-01-31T08:15:00Z", "address": "app1", "port": 8000}
    - {"name": "app2:8000", "state": "enabled", "reason": null, "drained_at": null, "address": "app2", "port": 8000}
drain_wait_s:
  description:
    - Seconds spent waiting for requests in flight after the drain; V(0) when there was nothing to wait for,
      with O(wait=false), in check mode and unless O(state=drained).
  returned: always
  type: float
  sample: 1.93
reason:
  description:
    - With O(state=drained), O(reason) as it is (or would be) recorded, made one line without C(;{}#); V(null) otherwise or when empty.
    - A member that was already drained keeps its recorded reason (see RV(members[].reason)).
  returned: always
  type: str
  sample: patching app1
diff:
  description: nginx - the configuration file before and after, when it changes and the task runs with C(--diff).
  returned: when O(backend=nginx), the file changes and diff mode is on
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import replace_atomically
from ansible_collections.dealerscope.ops.plugins.module_utils.lb_member import (
    DRAINING,
    DOWN,
    ENABLED,
    MAINT,
    NGINX_IN_FLIGHT,
    DirectoryLock,
    HAProxyClient,
    LbMemberError,
    MemberNotFoundError,
    NginxCommitError,
    nginx_commit,
    nginx_members,
    nginx_set_member,
    nginx_wait,
    sanitize_reason,
    scan_nginx_workers,
    wait_for,
)

# Indirections the unit tests replace (a fake /proc, shorter intervals).
PROC_ROOT = '/proc'
POLL_INTERVAL_S = 0.1
NGINX_SETTLE_S = 3.0


def argument_spec():
    return dict(
        backend=dict(type='str', required=True, choices=['nginx', 'haproxy']),
        pool=dict(type='str', required=True),
        member=dict(type='str'),
        state=dict(type='str', choices=['enabled', 'drained', 'query'], default='query'),
        reason=dict(type='str'),
        config_path=dict(type='path'),
        validate_command=dict(type='str', default='nginx -t -q'),
        reload_command=dict(type='str', default='systemctl reload nginx'),
        socket=dict(type='path', default='/run/haproxy/admin.sock'),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='float', default=60),
    )


def _member(members, name):
    for member in members:
        if member['name'] == name:
            return member
    return None


def _select(members, member, pool, kind, state):
    """The named member (MemberNotFoundError when it is not in the pool), and for state=query the module result."""
    found = _member(members, member) if member is not None else None
    if member is not None and found is None:
        raise MemberNotFoundError(member, pool, [m['name'] for m in members], kind)
    if state != 'query':
        return found, None
    current = found['state'] if found else None
    return found, dict(changed=False, state=current, previous_state=current, members=members, drain_wait_s=0.0, reason=None)


def _writer(module):
    """``write(path, data)``: replace ``path`` atomically with ``data`` (bytes), keeping its owner, mode and SELinux context."""
    def write(path, data):
        replace_atomically(path, data, mover=module.atomic_move)
    return write


def run_nginx(module):
    params = module.params
    pool, member, state = params['pool'], params['member'], params['state']
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
            members = nginx_members(text, pool)
            found, query = _select(members, member, pool, 'upstream', state)
            if query:
                return query
            reason = sanitize_reason(params['reason']) if state == 'drained' else ''
            new_text, info = nginx_set_member(text, pool, member, state == 'drained', reason)
        except LbMemberError as exc:
            module.fail_json(msg='%s: %s' % (params['config_path'], exc))
        changed = new_text != text
        result = dict(changed=changed, state=info['current']['state'], previous_state=info['previous']['state'],
                      members=nginx_members(new_text, pool) if changed else members, drain_wait_s=0.0, reason=reason or None)
        if changed and module._diff:
            result['diff'] = dict(before=text, after=new_text, before_header=path, after_header=path)
        if info['marker_skipped']:
            module.warn('other directives follow the server %s directive on its line in %s, so the drain marker comment '
                        'could not be added; the member only got "down"' % (member, path))
        if state == 'enabled' and changed and info['previous']['state'] == DOWN:
            module.warn('%s was "down" without the dealerscope.ops marker (drained by hand or by another tool); it is enabled now'
                        % member)
        before = None
        if changed and not module.check_mode:
            scan = (lambda: scan_nginx_workers(PROC_ROOT)) if state == 'drained' and params['wait'] else None
            try:
                before = nginx_commit(path, old_bytes, new_text.encode('utf-8', 'surrogateescape'), _writer(module),
                                      module.run_command, params['validate_command'], params['reload_command'], scan)
            except NginxCommitError as exc:
                module.fail_json(msg=str(exc), changed=exc.changed)
    if state == 'drained' and params['wait'] and not module.check_mode:
        waited, failure = nginx_wait(before, NGINX_IN_FLIGHT, params['wait_timeout'], '%s stays drained in %s.' % (member, path),
                                     PROC_ROOT, POLL_INTERVAL_S, NGINX_SETTLE_S)
        result['drain_wait_s'] = round(waited, 3)
        if failure:
            module.fail_json(msg=failure, **result)
    return result


def _haproxy_wait(module, client, pool, member, result, drained_state):
    def poll(_elapsed):
        found = _member(client.members(pool), member)
        return found['sessions'] if found else 0

    done, waited, sessions = wait_for(poll, module.params['wait_timeout'], POLL_INTERVAL_S)
    result['drain_wait_s'] = round(waited, 3)
    if not done:
        result['members'] = client.members(pool)
        result['state'] = _member(result['members'], member)['state']
        module.fail_json(msg='timed out after %g s waiting for haproxy server %s/%s to finish its requests in flight (%d sessions '
                             'still open); it is left in %s state and takes no new requests. Run the task again to finish the drain, '
                             'or raise wait_timeout.' % (module.params['wait_timeout'], pool, member, sessions, drained_state), **result)


def run_haproxy(module):
    params = module.params
    pool, member, state = params['pool'], params['member'], params['state']
    client = HAProxyClient(params['socket'])
    pools = client.backends()
    if pool not in pools:
        module.fail_json(msg='haproxy backend %s not found; backends found: %s' % (pool, ', '.join(pools) or 'none'))
    members = client.members(pool)
    found, query = _select(members, member, pool, 'haproxy backend', state)
    if query:
        return query
    previous = found['state']
    target = MAINT if state == 'drained' else ENABLED
    reason = sanitize_reason(params['reason']) if state == 'drained' else ''
    changed = previous != target
    result = dict(changed=changed, state=previous, previous_state=previous, members=members, drain_wait_s=0.0, reason=reason or None)
    if module.check_mode:
        result['state'] = target
        result['members'] = [dict(m, state=target) if m['name'] == member else m for m in members]
        return result
    if state == 'enabled':
        if changed:
            client.set_state(pool, member, 'ready')
    else:
        if previous not in (MAINT, DRAINING):
            client.set_state(pool, member, 'drain')
        if params['wait']:
            _haproxy_wait(module, client, pool, member, result, MAINT if previous == MAINT else 'drain')
        if previous != MAINT:
            client.set_state(pool, member, 'maint')
    result['members'] = client.members(pool)
    result['state'] = _member(result['members'], member)['state']
    if result['state'] != target:
        module.fail_json(msg='haproxy reports %s/%s as %s after the change, not %s (a maintenance inherited from a tracked server, '
                             'or DNS resolution, cannot be cleared here)' % (pool, member, result['state'], target), **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[
            ('state', 'enabled', ['member']),
            ('state', 'drained', ['member']),
            ('backend', 'nginx', ['config_path']),
        ],
        supports_check_mode=True,
    )
    if module.params['wait_timeout'] <= 0:
        module.fail_json(msg='wait_timeout must be greater than 0, got %s' % module.params['wait_timeout'])
    try:
        if module.params['backend'] == 'nginx':
            result = run_nginx(module)
        else:
            result = run_haproxy(module)
    except LbMemberError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
