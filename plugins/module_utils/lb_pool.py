# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Logic of the ``dealerscope.ops.lb_pool`` module, kept free of AnsibleModule so it can be unit tested.

It sets the weights of every member of one nginx ``upstream`` block in one edit of the configuration text, built on
the tokenizer and helpers of ``lb_member``: the ``weight=`` parameter of each listed member's ``server`` line is set
(``down`` instead of weight 0), unlisted members' lines are deleted, new members get a line after the last
``server`` line; every other byte of the file is kept. Members drained for maintenance by ``lb_member`` (``down`` with
its marker comment) stay drained.
"""

from __future__ import annotations

from ansible_collections.dealerscope.ops.plugins.module_utils.lb_member import (
    LbMemberError,
    NginxConfigError,
    NginxWaitGoal,
    _apply,
    _find_upstream,
    _line_end,
    _line_of,
    _removal_of_down,
    _server_details,
    parse_nginx_upstreams,
)

# Characters refused in a member address or its params: they would end the directive, open a block, start a comment,
# or (quotes, backslash) be read differently by nginx than written.
_ADDRESS_REFUSED = ';{}#"\'\\'
_KNOWN_KEYS = ('address', 'weight', 'params')


class LbPoolError(LbMemberError):
    """An error with a message meant for the operator."""


class MembersError(LbPoolError):
    """The requested members are invalid; ``problems`` lists every problem, the message joins them."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__('invalid members: %s' % '; '.join(self.problems))


# --------------------------------------------------------------------------------------------------------------
# the requested members
# --------------------------------------------------------------------------------------------------------------

def _weight(value):
    """An int >= 0 from an int or a string of digits, else None (booleans and floats are refused)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        return int(value.strip())
    return None


def _refused_characters(text):
    return any(char in _ADDRESS_REFUSED or char.isspace() for char in text)


def check_members(members):
    """Validate the requested members and return them normalized: a list of dicts ``address`` (str), ``weight``
    (int >= 0) and ``params`` (str, blanks collapsed, '' when none).

    Raises MembersError naming ``members[i]`` for every problem at once: not a list or empty, an item that is not a
    dict or has unknown keys, an address missing, empty or with blanks or ``;{}#"'\\``, an address given twice, a
    weight missing or not an integer >= 0 (strings of digits are accepted), params with ``;{}#`` or quotes, or with
    ``weight=`` or ``down`` (set by ``weight``), and every weight 0 (no member would take traffic)."""
    if not isinstance(members, list):
        raise MembersError(['members must be a list of dicts with address and weight, got %s' % type(members).__name__])
    if not members:
        raise MembersError(['members is empty: give at least one member with a weight above 0'])
    problems = []
    result = []
    seen = {}
    for index, member in enumerate(members):
        where = 'members[%d]' % index
        if not isinstance(member, dict):
            problems.append('%s must be a dict with address and weight, got %r' % (where, member))
            continue
        unknown = sorted(str(key) for key in member if key not in _KNOWN_KEYS)
        if unknown:
            problems.append('%s has unknown key(s) %s (known: %s)' % (where, ', '.join(unknown), ', '.join(_KNOWN_KEYS)))
        address = member.get('address')
        if address is None:
            problems.append('%s.address is missing' % where)
        elif not isinstance(address, str):
            problems.append('%s.address must be a string host:port, got %r' % (where, address))
            address = None
        elif not address:
            problems.append('%s.address is empty' % where)
            address = None
        elif _refused_characters(address):
            problems.append('%s.address %r must not contain blanks or any of ;{}#"\'\\' % (where, address))
            address = None
        if address is not None:
            if address in seen:
                problems.append('%s.address %s is also members[%d].address; list each member once' % (where, address, seen[address]))
            else:
                seen[address] = index
        raw_weight = member.get('weight')
        weight = _weight(raw_weight)
        if raw_weight is None:
            problems.append('%s.weight is missing' % where)
        elif weight is None:
            problems.append('%s.weight must be an integer >= 0 (0 means no traffic), got %r' % (where, raw_weight))
        params = member.get('params')
        if params is None:
            params = ''
        elif not isinstance(params, str):
            problems.append('%s.params must be a string such as "max_fails=2 fail_timeout=5s", got %r' % (where, params))
            params = ''
        else:
            params = ' '.join(params.split())
            words = params.split()
            if any(char in _ADDRESS_REFUSED for char in params):
                problems.append('%s.params %r must not contain any of ;{}#"\'\\' % (where, params))
            elif [word for word in words if word == 'down' or word.startswith('weight=')]:
                problems.append('%s.params %r must not contain weight= or down: weight sets them (0 writes down)' % (where, params))
        result.append(dict(address=address, weight=weight, params=params))
    if not problems and all(member['weight'] == 0 for member in result):
        problems.append('every weight is 0: no member would take traffic')
    if problems:
        raise MembersError(problems)
    return result


# --------------------------------------------------------------------------------------------------------------
# reading the pool
# --------------------------------------------------------------------------------------------------------------

def _weight_words(server):
    return [word for word in server.words[2:] if word.value.startswith('weight=')]


def _current_weight(text, server, pool):
    """The member's weight as nginx reads it: the last ``weight=`` parameter, 1 without one."""
    words = _weight_words(server)
    if not words:
        return 1
    value = words[-1].value[len('weight='):]
    if not (value.isdigit() and value.isascii()):
        raise NginxConfigError('server %s in upstream %s has %s on line %d; nginx needs a number above 0, fix it by hand'
                               % (server.words[1].value, pool, words[-1].value, _line_of(text, words[-1].start)))
    return int(value)


def _view(text, server, details, pool):
    drained = bool(details['down']) and details['marker'] is not None
    return dict(
        address=details['name'],
        weight=_current_weight(text, server, pool),
        down=bool(details['down']),
        drained=drained,
        reason=details['marker']['reason'] if drained else None,
    )


def _servers(text, pool):
    tokens, upstreams = parse_nginx_upstreams(text)
    block = _find_upstream(upstreams, pool)
    return tokens, block, [(server, _server_details(text, tokens, server)) for server in block.servers]


def pool_members(text, pool):
    """Members of upstream ``pool`` in ``text``, in the order of the file: dicts ``address`` (as written on the server
    line), ``weight`` (int: the ``weight=`` parameter, 1 without one), ``down`` (bool: the ``down`` parameter),
    ``drained`` (bool: ``down`` with lb_member's maintenance marker comment) and ``reason`` (the marker's reason,
    None when not drained or none was given)."""
    _tokens, _block, servers = _servers(text, pool)
    return [_view(text, server, details, pool) for server, details in servers]


# --------------------------------------------------------------------------------------------------------------
# planning the edit
# --------------------------------------------------------------------------------------------------------------

def _eol_after(text, eol):
    """The line ending at offset ``eol`` ('\\r\\n', '\\n' or '' at the end of the text)."""
    if text.startswith('\r\n', eol):
        return '\r\n'
    if text.startswith('\n', eol):
        return '\n'
    return ''


def _line_start(text, pos):
    return text.rfind('\n', 0, pos) + 1


def _indent_before(text, pos):
    """The blanks between the start of the line and ``pos``, or None when something else precedes ``pos`` on its line."""
    before = text[_line_start(text, pos):pos]
    return before if not before.strip(' \t') else None


def _server_removal(text, tokens, server, details):
    """The span deleting one server directive: its whole line(s), trailing comment included, when nothing else is on
    them; otherwise the directive with the blanks before it (or after it when it starts its line)."""
    start = server.words[0].start
    semicolon = tokens[server.semicolon]
    first_on_line = _indent_before(text, start) is not None
    if first_on_line and not details['code_after']:
        eol = details['eol']
        return (_line_start(text, start), eol + len(_eol_after(text, eol)), '')
    if first_on_line:
        right = semicolon.end
        while right < len(text) and text[right] in ' \t':
            right += 1
        return (start, right, '')
    left = start
    while left > 0 and text[left - 1] in ' \t':
        left -= 1
    return (left, semicolon.end, '')


def _member_edits(text, server, details, weight, keep_drained):
    """Edits of one existing server line for the requested ``weight``; returns ``(edits, kept_drained)``."""
    was_down = bool(details['down'])
    marker = details['marker']
    was_drained = was_down and marker is not None
    kept_drained = keep_drained and was_drained and weight > 0
    want_down = weight == 0 or kept_drained
    words = server.words
    weights = [index for index in range(2, len(words)) if words[index].value.startswith('weight=')]
    downs = [index for index in range(2, len(words)) if words[index].value == 'down']
    edits = []
    removed = set()
    insert_weight = ''
    if weight == 0:
        removed.update(weights)
    else:
        wanted = 'weight=%d' % weight
        if weights:
            first = words[weights[0]]
            if text[first.start:first.end] != wanted:
                edits.append((first.start, first.end, wanted))
            removed.update(weights[1:])
        else:
            insert_weight = ' ' + wanted
    if not want_down:
        removed.update(downs)
    edits.extend(_removal_of_down(text, words[index]) for index in sorted(removed))
    if marker is not None and (was_down or want_down) and not (keep_drained and was_drained):
        edits.append((marker['start'], marker['end'], ''))
    insert_down = ' down' if want_down and not was_down else ''
    address = words[1]
    anchor = words[[index for index in range(1, len(words)) if index not in removed][-1]]
    if anchor is address:
        if insert_weight or insert_down:
            edits.append((address.end, address.end, insert_weight + insert_down))
    else:
        if insert_weight:
            edits.append((address.end, address.end, insert_weight))
        if insert_down:
            edits.append((anchor.end, anchor.end, insert_down))
    return edits, kept_drained


def _merge_deletions(edits):
    """Join overlapping deletions (two removed words on one continuation line share the blanks between them)."""
    deletions = sorted(edit for edit in edits if edit[2] == '' and edit[1] > edit[0])
    others = [edit for edit in edits if not (edit[2] == '' and edit[1] > edit[0])]
    merged = []
    for start, end, replacement in deletions:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), '')
        else:
            merged.append((start, end, replacement))
    return merged + others


def _new_line(member):
    words = ['server', member['address']]
    if member['weight'] > 0:
        words.append('weight=%d' % member['weight'])
    if member['params']:
        words.append(member['params'])
    if member['weight'] == 0:
        words.append('down')
    return ' '.join(words) + ';'


def _insertion(text, tokens, block, servers, deletions, new_members):
    """The edit adding the new members' lines: after the last server line of the block with its indentation, or
    after the block's ``{`` (indented 4 spaces more than the ``upstream`` line) when it has no server line."""
    if servers:
        server, details = servers[-1]
        indent = _indent_before(text, server.words[0].start)
        after = tokens[server.semicolon]
        code_after = details['code_after']
        eol = details['eol']
    else:
        brace = [token for token in tokens if token.kind == '{' and token.start > block.start][0]
        following = [token for token in tokens if token.start > brace.start]
        eol = _line_end(text, brace.start)
        code_after = bool(following) and following[0].start < eol and following[0].kind != 'comment'
        indent = None
        after = brace
    if indent is None:
        indent = (_indent_before(text, block.start) or '') + '    '
    newline = _eol_after(text, eol) or '\n'
    lines = [indent + _new_line(member) for member in new_members]
    if code_after or not _eol_after(text, eol):
        position = after.end
        insert = ''.join(newline + line for line in lines)
    else:
        position = eol + len(newline)
        insert = ''.join(line + newline for line in lines)
    for start, end, _replacement in deletions:
        if start < position < end:
            position = end
    return (position, position, insert)


def plan_pool(text, pool, members, remove_unlisted=True, keep_drained=True):
    """Set the members of upstream ``pool`` in ``text`` to ``members`` (as returned by check_members) in one edit.

    Returns ``(new_text, info)``; ``info`` has ``previous`` and ``members`` (the pool before and after, as in
    pool_members), ``drained`` (addresses of listed members with a weight above 0 kept down by ``keep_drained``),
    ``added`` and ``removed`` (addresses), and ``revived`` (members that were ``down`` without the maintenance marker
    and take traffic now: an idle blue/green colour, or a member downed by hand).

    * a listed member's line gets ``weight=<weight>`` (the first ``weight=`` parameter replaced, further ones removed,
      else one added after the address); weight 0 removes every ``weight=`` and adds ``down``; a weight above 0 removes
      ``down`` and, when there is one, lb_member's marker comment. With ``keep_drained``, a member drained by lb_member
      (``down`` with its marker) stays down with its marker; only its ``weight=`` is set;
    * with ``remove_unlisted``, the lines of members not listed are deleted (with their trailing comment), else kept;
    * new members get a line each, in the order given, after the last server line of the block (see _insertion).

    Raises LbPoolError (a listed member appears more than once in the block: edit by hand; no member would take traffic
    after the edit) and NginxConfigError / PoolNotFoundError from the parser. The result is parsed again and checked."""
    tokens, block, servers = _servers(text, pool)
    previous = [_view(text, server, details, pool) for server, details in servers]
    wanted = dict((member['address'], member) for member in members)
    counts = {}
    for view in previous:
        counts[view['address']] = counts.get(view['address'], 0) + 1
    twice = ['%s (%d times)' % (address, counts[address]) for address in wanted if counts.get(address, 0) > 1]
    if twice:
        raise LbPoolError('upstream %s lists %s more than once; edit the file by hand' % (pool, ', '.join(twice)))
    edits = []
    drained = []
    removed = []
    revived = []
    for server, details in servers:
        address = details['name']
        if address in wanted:
            member_edits, kept_drained = _member_edits(text, server, details, wanted[address]['weight'], keep_drained)
            edits.extend(member_edits)
            if kept_drained:
                drained.append(address)
            elif details['down'] and details['marker'] is None and wanted[address]['weight'] > 0:
                revived.append(address)
        elif remove_unlisted:
            edits.append(_server_removal(text, tokens, server, details))
            removed.append(address)
    edits = _merge_deletions(edits)
    existing = set(counts)
    added = [member for member in members if member['address'] not in existing]
    if added:
        deletions = [edit for edit in edits if edit[2] == '' and edit[1] > edit[0]]
        edits.append(_insertion(text, tokens, block, servers, deletions, added))
    new_text = _apply(text, sorted(edits, key=lambda edit: (edit[0], edit[1]), reverse=True))
    after = pool_members(new_text, pool)
    _check(after, members, drained, remove_unlisted, previous, pool)
    if not [view for view in after if not view['down']]:
        if drained:
            raise LbPoolError('no member of upstream %s would take traffic: %s requested with a weight above 0 %s drained for '
                              'maintenance (lb_member) and stay%s down with keep_drained; enable %s first, give other members '
                              'a weight, or set keep_drained=false'
                              % (pool, ', '.join(drained), 'is' if len(drained) == 1 else 'are', 's' if len(drained) == 1 else '',
                                 'it' if len(drained) == 1 else 'them'))
        raise LbPoolError('no member of upstream %s would take traffic: every member would be down' % pool)
    return new_text, dict(previous=previous, members=after, drained=drained, added=[member['address'] for member in added],
                          removed=removed, revived=revived)


def _check(after, members, drained, remove_unlisted, previous, pool):
    """The edited text parsed again must say what was requested (a guard against a layout the edit did not foresee)."""
    problems = []
    listed = set(member['address'] for member in members)
    for member in members:
        views = [view for view in after if view['address'] == member['address']]
        expected_down = member['weight'] == 0 or member['address'] in drained
        if len(views) != 1 or views[0]['down'] != expected_down or (member['weight'] and views[0]['weight'] != member['weight']):
            problems.append(member['address'])
    unlisted_before = [view['address'] for view in previous if view['address'] not in listed]
    unlisted_after = [view['address'] for view in after if view['address'] not in listed]
    if unlisted_after != ([] if remove_unlisted else unlisted_before):
        problems.append('members not listed')
    if problems:
        raise LbPoolError('editing upstream %s did not give the requested result (%s); the file is left unchanged, edit it by hand'
                          % (pool, ', '.join(problems)))


# --------------------------------------------------------------------------------------------------------------
# waiting for the switch
# --------------------------------------------------------------------------------------------------------------

def nginx_switch_pending(before, current, elapsed, settle):
    """Worker processes that still accept new requests with the configuration from before the reload.

    ``before`` and ``current`` are scans of lb_member's scan_nginx_workers just before the reload and now. Pending are
    the workers of ``before`` still alive and not shutting down, except, once ``elapsed`` reaches ``settle`` seconds,
    those whose master started no new worker while another master did (another nginx instance, not reloaded). While
    no master has started a new worker, every old worker is pending (the reload may not have happened)."""
    reloaded = set(worker.ppid for pid, worker in current.items()
                   if pid not in before or before[pid].starttime != worker.starttime)
    pending = []
    for pid, old in sorted(before.items()):
        worker = current.get(pid)
        if worker is None or worker.starttime != old.starttime or worker.shutting_down:
            continue
        if worker.ppid in reloaded or not reloaded or elapsed < settle:
            pending.append(pid)
    return pending


def _no_new_worker(before, _pending, workers):
    if any(pid not in before or before[pid].starttime != worker.starttime for pid, worker in workers.items()):
        return ''
    return ' No nginx master started new worker processes: did the reload fail? See the nginx error log.'


# lb_pool: until no worker process from before the reload accepts new requests (lb_member's nginx_wait).
NGINX_SWITCHED = NginxWaitGoal(nginx_switch_pending, 'the nginx worker processes %s from before the reload to shut down',
                               _no_new_worker)
