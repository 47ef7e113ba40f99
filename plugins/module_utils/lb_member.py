# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Logic of the ``dealerscope.ops.lb_member`` module, kept free of AnsibleModule so it can be unit tested.

* nginx: a tokenizer/parser for the ``upstream`` blocks of one configuration file and pure functions that toggle
  the ``down`` parameter of one ``server`` line (plus a marker comment), changing no other byte;
* haproxy: a small client for the runtime API on the admin socket (``show backend``, ``show servers state``,
  ``show stat``, ``set server <backend>/<server> state ...``);
* waiting for in-flight requests: nginx worker processes that are shutting down after a reload (read from
  ``/proc``; ``nginx_wait``, also used by lb_pool), haproxy's current sessions of the server; with an injectable clock so
  it can be tested.
"""

from __future__ import annotations

import collections
import csv
import fcntl
import io
import os
import socket
import time

MARKER_PREFIX = '# dealerscope.ops drained'
REASON_MAX_LEN = 200

# Member states reported in ``members[].state``, ``state`` and ``previous_state``.
ENABLED = 'enabled'      # takes new requests
DRAINED = 'drained'      # nginx: ``down`` with this module's marker comment
DOWN = 'down'            # nginx: ``down`` without the marker (drained by hand or another tool)
DRAINING = 'draining'    # haproxy: admin state DRAIN (only existing sessions)
MAINT = 'maint'          # haproxy: admin state MAINT (what this module's drain ends with)

# haproxy srv_admin_state bits (include/haproxy/server-t.h)
HAPROXY_ADMF_MAINT = 0x23   # FMAINT | IMAINT | RMAINT
HAPROXY_ADMF_DRAIN = 0x18   # FDRAIN | IDRAIN


class LbMemberError(Exception):
    """An error with a message meant for the operator."""


class NginxConfigError(LbMemberError):
    """The configuration file cannot be parsed."""


class PoolNotFoundError(LbMemberError):
    def __init__(self, pool, pools, kind):
        self.pool = pool
        self.pools = list(pools)
        if self.pools:
            found = ', '.join(self.pools)
        else:
            found = 'none'
        super().__init__('%s %s not found; %ss found: %s' % (kind, pool, kind, found))


class MemberNotFoundError(LbMemberError):
    def __init__(self, member, pool, members, kind):
        self.member = member
        self.members = list(members)
        if self.members:
            found = ', '.join(self.members)
        else:
            found = 'none'
        super().__init__('member %s not found in %s %s; its members are: %s' % (member, kind, pool, found))


# --------------------------------------------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------------------------------------------

Token = collections.namedtuple('Token', 'kind value start end')
NginxServer = collections.namedtuple('NginxServer', 'words semicolon')


class NginxUpstream(object):
    def __init__(self, name, start):
        self.name = name
        self.start = start
        self.servers = []


_ESCAPES = {'t': '\t', 'r': '\r', 'n': '\n'}
_BLANKS = ' \t'
_WHITESPACE = ' \t\r\n'


def _line_of(text, pos):
    return text.count('\n', 0, pos) + 1


def tokenize_nginx(text):
    """Split nginx configuration text into tokens the way nginx's ``ngx_conf_read_token`` does.

    Kinds: ``word`` (value unquoted and unescaped), ``;``, ``{``, ``}`` and ``comment`` (from ``#`` at the start of
    a token to the end of the line, without the line ending). ``start``/``end`` are offsets in ``text``.
    """
    tokens = []
    pos = 0
    size = len(text)
    while pos < size:
        char = text[pos]
        if char in _WHITESPACE:
            pos += 1
            continue
        if char == '#':
            end = text.find('\n', pos)
            if end < 0:
                end = size
            stop = end - 1 if end > pos and text[end - 1] == '\r' else end
            tokens.append(Token('comment', text[pos:stop], pos, stop))
            pos = end
            continue
        if char in ';{}':
            tokens.append(Token(char, char, pos, pos + 1))
            pos += 1
            continue
        start = pos
        value = []
        if char in '"\'':
            quote = char
            pos += 1
            while pos < size and text[pos] != quote:
                if text[pos] == '\\' and pos + 1 < size:
                    escaped = text[pos + 1]
                    if escaped in _ESCAPES:
                        value.append(_ESCAPES[escaped])
                    elif escaped in '"\'\\':
                        value.append(escaped)
                    else:
                        value.append(text[pos:pos + 2])
                    pos += 2
                    continue
                value.append(text[pos])
                pos += 1
            if pos >= size:
                raise NginxConfigError('unterminated quoted string starting on line %d' % _line_of(text, start))
            pos += 1
            tokens.append(Token('word', ''.join(value), start, pos))
            continue
        variable = False
        while pos < size:
            char = text[pos]
            if char == '\\' and pos + 1 < size:
                value.append(text[pos + 1])
                pos += 2
                variable = False
                continue
            if char == '{' and variable:
                close = text.find('}', pos)
                if close < 0:
                    raise NginxConfigError('unterminated variable on line %d' % _line_of(text, pos))
                value.append(text[pos:close + 1])
                pos = close + 1
                variable = False
                continue
            if char in _WHITESPACE or char in ';{':
                break
            variable = char == '$'
            value.append(char)
            pos += 1
        tokens.append(Token('word', ''.join(value), start, pos))
    return tokens


def parse_nginx_upstreams(text):
    """Return ``(tokens, upstreams)``: every ``upstream <name> { ... }`` block of the text (at any depth) with its
    ``server`` directives. Raises NginxConfigError when the braces do not balance."""
    tokens = tokenize_nginx(text)
    upstreams = []
    stack = []
    directive = []
    for index, token in enumerate(tokens):
        if token.kind == 'comment':
            continue
        if token.kind == 'word':
            directive.append((index, token))
            continue
        if token.kind == '{':
            block = None
            if len(directive) == 2 and directive[0][1].value == 'upstream':
                block = NginxUpstream(directive[1][1].value, directive[0][1].start)
                upstreams.append(block)
            stack.append(block)
        elif token.kind == ';':
            if stack and stack[-1] is not None and len(directive) >= 2 and directive[0][1].value == 'server':
                stack[-1].servers.append(NginxServer([tok for _index, tok in directive], index))
        else:  # '}'
            if directive:
                raise NginxConfigError('unexpected "}" on line %d (missing ";" before it?)' % _line_of(text, token.start))
            if not stack:
                raise NginxConfigError('unexpected "}" on line %d' % _line_of(text, token.start))
            stack.pop()
        directive = []
    if directive:
        raise NginxConfigError('unexpected end of file, expecting ";" or "}" (directive %s on line %d)' % (
            directive[0][1].value, _line_of(text, directive[0][1].start)))
    if stack:
        raise NginxConfigError('unexpected end of file, expecting "}"')
    return tokens, upstreams


def _line_end(text, pos):
    """Offset of the end of the line holding ``pos`` (before ``\\r\\n`` or ``\\n``, or the end of the text)."""
    end = text.find('\n', pos)
    if end < 0:
        return len(text)
    if end > 0 and text[end - 1] == '\r':
        return end - 1
    return end


def _server_details(text, tokens, server):
    """Facts about one server directive: address, ``down`` tokens, whether other code follows it on its line,
    and the marker comment (span, timestamp, reason) when there is one."""
    semicolon = tokens[server.semicolon]
    eol = _line_end(text, semicolon.start)
    code_after = False
    comment = None
    following = server.semicolon + 1
    if following < len(tokens) and tokens[following].start < eol:
        if tokens[following].kind == 'comment':
            comment = tokens[following]
        else:
            code_after = True
    marker = None
    if comment is not None:
        offset = comment.value.rfind(MARKER_PREFIX)
        if offset >= 0:
            start = comment.start + offset
            if start > semicolon.end and text[start - 1] == ' ':
                start -= 1
            rest = comment.value[offset + len(MARKER_PREFIX):].strip()
            if ': ' in rest:
                stamp, reason = rest.split(': ', 1)
            else:
                stamp, reason = rest.rstrip(':'), ''
            marker = dict(start=start, end=comment.end, drained_at=stamp.strip() or None, reason=reason.strip() or None)
    return dict(
        name=server.words[1].value,
        down=[word for word in server.words[2:] if word.value == 'down'],
        last_word=server.words[-1],
        code_after=code_after,
        eol=eol,
        marker=marker,
    )


NGINX_DEFAULT_PORT = 80


def _port(text):
    """A TCP port from text (1 to 65535), else None."""
    text = str(text).strip()
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    return None


def nginx_address(server):
    """``(address, port)`` of an nginx upstream ``server`` address as written: ``app1:8000`` -> ``('app1', 8000)``,
    ``[::1]:9000`` -> ``('::1', 9000)``, ``app3`` -> ``('app3', 80)`` (nginx's default port); ``(None, None)`` for a
    ``unix:`` socket or an address that cannot be read (no TCP address to probe)."""
    if server.startswith('unix:') or not server:
        return None, None
    if server.startswith('['):
        close = server.find(']')
        if close < 0:
            return None, None
        host, rest = server[1:close], server[close + 1:]
        if not rest:
            return host or None, NGINX_DEFAULT_PORT
        if not rest.startswith(':'):
            return None, None
        port = _port(rest[1:])
        return (host or None, port) if port else (None, None)
    if server.count(':') == 0:
        return server, NGINX_DEFAULT_PORT
    if server.count(':') > 1:
        return None, None  # an IPv6 address without brackets is not valid in nginx
    host, port = server.rsplit(':', 1)
    port = _port(port)
    return (host or None, port) if (host and port) else (None, None)


def _member_view(details):
    if not details['down']:
        state = ENABLED
    elif details['marker'] is not None:
        state = DRAINED
    else:
        state = DOWN
    marker = details['marker'] if state != ENABLED else None
    address, port = nginx_address(details['name'])
    return dict(
        name=details['name'],
        state=state,
        reason=marker['reason'] if marker else None,
        drained_at=marker['drained_at'] if marker else None,
        address=address,
        port=port,
    )


def _find_upstream(upstreams, pool):
    matches = [block for block in upstreams if block.name == pool]
    if not matches:
        names = []
        for block in upstreams:
            if block.name not in names:
                names.append(block.name)
        raise PoolNotFoundError(pool, names, 'upstream')
    if len(matches) > 1:
        raise NginxConfigError('upstream %s is defined %d times in the file' % (pool, len(matches)))
    return matches[0]


def nginx_members(text, pool):
    """Members of upstream ``pool`` in ``text``: a list of dicts ``name``, ``state`` (enabled, drained or down),
    ``reason`` and ``drained_at`` (from the marker comment, None when there is none), ``address`` and ``port`` (where
    the member is reached, from its server address; None for a unix socket)."""
    tokens, upstreams = parse_nginx_upstreams(text)
    block = _find_upstream(upstreams, pool)
    return [_member_view(_server_details(text, tokens, server)) for server in block.servers]


def sanitize_reason(reason):
    """One line, no ``;{}#`` (they would end the comment or the directive for a human reader), no control
    characters, whitespace collapsed, at most REASON_MAX_LEN characters."""
    if reason is None:
        return ''
    cleaned = []
    for char in str(reason):
        if char in ';{}#' or char.isspace() or (ord(char) < 32 or ord(char) == 127):
            cleaned.append(' ')
        else:
            cleaned.append(char)
    return ' '.join(''.join(cleaned).split())[:REASON_MAX_LEN].strip()


def utc_stamp(now=None):
    """UTC ISO 8601 timestamp to the second, ``2025-01-31T08:15:00Z``."""
    if now is None:
        now = time.time()
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))


def marker_text(reason, now=None):
    reason = sanitize_reason(reason)
    if reason:
        return '%s %s: %s' % (MARKER_PREFIX, utc_stamp(now), reason)
    return '%s %s' % (MARKER_PREFIX, utc_stamp(now))


def _apply(text, edits):
    """Apply ``(start, end, replacement)`` edits (non-overlapping) to text."""
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0], reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _removal_of_down(text, word):
    """The span to delete for one ``down`` word: with the blanks before it when it follows another word on its
    line (what a drain inserts), else the word and the blanks after it, or the whole line when nothing else is on it."""
    left = word.start
    while left > 0 and text[left - 1] in _BLANKS:
        left -= 1
    right = word.end
    while right < len(text) and text[right] in _BLANKS:
        right += 1
    first_on_line = left == 0 or text[left - 1] == '\n'
    if not first_on_line:
        return (left, word.end, '')
    if right >= len(text) or text[right] in '\r\n':
        newline = text.find('\n', right)
        return (left, len(text) if newline < 0 else newline + 1, '')
    return (word.start, right, '')


def nginx_set_member(text, pool, member, drained, reason=None, now=None):
    """Drain (``drained=True``) or enable one member of upstream ``pool``.

    Returns ``(new_text, info)``; ``info`` has ``previous`` and ``current`` (member views as in nginx_members) and
    ``marker_skipped`` (True when the drain could not record the marker because other directives follow the
    server directive on its line). Every byte outside the edited server directive and its line's end is kept.

    * drain of an enabled member: ``" down"`` after the directive's last parameter and ``" " + marker`` at the end
      of the line holding its ``;``. A member already down (with or without the marker) is left alone.
    * enable: every ``down`` parameter and this module's marker comment are removed (also from a member drained by
      hand). An enabled member is left alone.
    """
    tokens, upstreams = parse_nginx_upstreams(text)
    block = _find_upstream(upstreams, pool)
    matches = []
    names = []
    for server in block.servers:
        details = _server_details(text, tokens, server)
        names.append(details['name'])
        if details['name'] == member:
            matches.append(details)
    if not matches:
        raise MemberNotFoundError(member, pool, names, 'upstream')
    if len(matches) > 1:
        raise NginxConfigError('member %s appears %d times in upstream %s; edit the file by hand' % (member, len(matches), pool))
    details = matches[0]
    previous = _member_view(details)
    edits = []
    marker_skipped = False
    if drained and not details['down']:
        edits.append((details['last_word'].end, details['last_word'].end, ' down'))
        if details['code_after']:
            marker_skipped = True
        else:
            edits.append((details['eol'], details['eol'], ' ' + marker_text(reason, now)))
    elif not drained and details['down']:
        for word in details['down']:
            edits.append(_removal_of_down(text, word))
        if details['marker'] is not None:
            edits.append((details['marker']['start'], details['marker']['end'], ''))
    new_text = _apply(text, edits)
    current = previous
    if edits:
        current = [view for view in nginx_members(new_text, pool) if view['name'] == member][0]
    return new_text, dict(previous=previous, current=current, marker_skipped=marker_skipped)


# --------------------------------------------------------------------------------------------------------------
# nginx: replacing the configuration file (shared by lb_member and lb_pool)
# --------------------------------------------------------------------------------------------------------------

class NginxCommitError(LbMemberError):
    """Writing, validating or reloading the new file failed. ``changed`` is False when the previous file is back in
    place (or was never replaced), True when even restoring it failed."""

    def __init__(self, message, changed=False):
        super().__init__(message)
        self.changed = changed


class DirectoryLock(object):
    """Exclusive ``flock`` of a directory for a ``with`` block, so tasks editing files in it at the same time (for example
    delegated to the same load balancer for several hosts) do not lose each other's edits. The directory is opened
    when the object is made (an OSError then), the lock is taken on entering the block and released on leaving it."""

    def __init__(self, directory):
        self.fd = os.open(directory, os.O_RDONLY)

    def __enter__(self):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc_info):
        os.close(self.fd)  # also releases the lock
        return False


def command_output(rc, out, err):
    """A command's stderr and stdout for a message, or its exit status when it printed nothing."""
    text = '\n'.join(part.strip() for part in (err, out) if part and part.strip())
    return text or 'exit status %d, no output' % rc


def _restore(write, path, old_bytes, failure, output):
    """Put the previous file back and raise NginxCommitError for ``failure`` (what failed) and the command's output."""
    try:
        write(path, old_bytes)
    except (IOError, OSError) as exc:
        raise NginxCommitError('%s, and RESTORING the previous %s FAILED (%s): the new file is in place, fix it by hand: %s'
                               % (failure, path, exc, output), changed=True)
    raise NginxCommitError('%s, the previous %s was restored: %s' % (failure, path, output))


def nginx_commit(path, old_bytes, new_bytes, write, run_command, validate_command, reload_command, before_reload=None):
    """Replace ``path`` with ``new_bytes`` through ``write(path, data)``, run ``validate_command``, then
    ``reload_command`` through ``run_command(command) -> (rc, out, err)``. When validation or the reload fails, the
    previous content ``old_bytes`` is written back and NginxCommitError is raised with the command's output.

    ``before_reload()``, when given, is called after a successful validation just before the reload; its value is
    returned (None without it)."""
    try:
        write(path, new_bytes)
    except (IOError, OSError) as exc:
        raise NginxCommitError('cannot write %s: %s' % (path, exc))
    rc, out, err = run_command(validate_command)
    if rc != 0:
        _restore(write, path, old_bytes, 'nginx rejected the new configuration (%s exited %d)' % (validate_command, rc),
                 command_output(rc, out, err))
    snapshot = before_reload() if before_reload is not None else None
    rc, out, err = run_command(reload_command)
    if rc != 0:
        _restore(write, path, old_bytes, 'reloading nginx failed (%s exited %d)' % (reload_command, rc), command_output(rc, out, err))
    return snapshot


# --------------------------------------------------------------------------------------------------------------
# nginx worker processes (waiting for in-flight requests after a reload)
# --------------------------------------------------------------------------------------------------------------

NginxWorker = collections.namedtuple('NginxWorker', 'ppid starttime shutting_down')
WORKER_TITLE = 'nginx: worker process'
SHUTTING_DOWN_TITLE = 'nginx: worker process is shutting down'


def _read(path, mode='rb'):
    with open(path, mode) as handle:
        return handle.read()


def scan_nginx_workers(proc_root='/proc'):
    """nginx worker processes visible in ``proc_root``, in the same PID namespace as this process (workers of
    nginx instances in containers are left out): ``{pid: NginxWorker(ppid, starttime, shutting_down)}``."""
    try:
        own_ns = os.readlink(os.path.join(proc_root, 'self', 'ns', 'pid'))
    except OSError:
        own_ns = None
    workers = {}
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return workers
    for entry in entries:
        if not entry.isdigit():
            continue
        base = os.path.join(proc_root, entry)
        try:
            title = _read(os.path.join(base, 'cmdline')).replace(b'\0', b' ').decode('utf-8', 'replace').strip()
            if not title.startswith(WORKER_TITLE):
                continue
            stat = _read(os.path.join(base, 'stat')).decode('utf-8', 'replace')
        except (IOError, OSError):
            continue  # gone meanwhile, or not readable
        if own_ns is not None:
            try:
                if os.readlink(os.path.join(base, 'ns', 'pid')) != own_ns:
                    continue
            except OSError:
                pass  # cannot tell: count it
        fields = stat[stat.rfind(')') + 2:].split()
        try:
            ppid, starttime = int(fields[1]), int(fields[19])
        except (IndexError, ValueError):
            continue
        workers[int(entry)] = NginxWorker(ppid, starttime, title.startswith(SHUTTING_DOWN_TITLE))
    return workers


def nginx_pending_workers(before, current, elapsed, settle):
    """Worker processes that may still serve requests that began before the reload.

    ``current`` is a scan after the reload; ``before`` the scan just before it (None when nothing was reloaded).
    Pending are: every worker that is shutting down, and every worker from ``before`` still alive that its master
    will still shut down — its master has started a new worker since (the QUIT signal follows shortly), or the
    master has not yet started new ones and ``elapsed`` is below ``settle`` seconds (it may still be reading its
    configuration; after that the worker is taken to belong to another nginx instance that was not reloaded).
    """
    pending = set(pid for pid, worker in current.items() if worker.shutting_down)
    if before:
        reloaded_masters = set(worker.ppid for pid, worker in current.items()
                               if pid not in before or before[pid].starttime != worker.starttime)
        for pid, old in before.items():
            worker = current.get(pid)
            if worker is None or worker.starttime != old.starttime or worker.shutting_down:
                continue
            if worker.ppid in reloaded_masters or elapsed < settle:
                pending.add(pid)
    return sorted(pending)


def wait_for(poll, timeout, interval=0.1, clock=time.monotonic, sleep=time.sleep):
    """Call ``poll(elapsed)`` until it returns a falsy value or ``timeout`` seconds have passed.

    Returns ``(done, waited_seconds, last_value)``; ``poll`` is always called at least once, and once more at the
    deadline so a wait that ends exactly then still counts as done."""
    start = clock()
    while True:
        elapsed = clock() - start
        value = poll(elapsed)
        if not value:
            return True, elapsed, value
        if elapsed >= timeout:
            return False, elapsed, value
        sleep(min(interval, max(timeout - elapsed, 0.0)))


# What nginx_wait waits for: ``pending(before, current, elapsed, settle)`` gives the worker processes still waited for
# (see nginx_pending_workers), ``waiting_for`` names them in the timeout message (``%s``: their PIDs) and
# ``hint(before, pending, workers)`` adds a sentence to it from a last scan of the workers ('' for none).
NginxWaitGoal = collections.namedtuple('NginxWaitGoal', 'pending waiting_for hint')


def _not_told_to_shut_down(_before, pending, workers):
    stale = [pid for pid in pending if pid in workers and not workers[pid].shutting_down]
    if not stale:
        return ''
    return (' Worker processes %s were not told to shut down: did the reload fail? See the nginx error log.'
            % ', '.join(str(pid) for pid in stale))


# lb_member: until the requests in flight before the reload have completed.
NGINX_IN_FLIGHT = NginxWaitGoal(nginx_pending_workers, 'nginx worker processes %s to finish their requests in flight',
                                _not_told_to_shut_down)


def nginx_wait(before, goal, timeout, outcome, proc_root='/proc', interval=0.1, settle=3.0, started=None,
               clock=time.monotonic, sleep=time.sleep):
    """Wait after an nginx reload until no worker process is pending for ``goal`` (an NginxWaitGoal, for example
    NGINX_IN_FLIGHT), scanning ``proc_root`` every ``interval`` seconds for at most ``timeout`` seconds.

    ``before`` is the scan just before the reload (nginx_commit's value with ``before_reload=scan_nginx_workers``),
    None when nothing was reloaded. Returns ``(seconds, failure)``: ``seconds`` waited (from the ``clock()`` reading
    ``started`` when given), ``failure`` None when the wait ended in time, else the message for the operator:
    ``timed out after <timeout> s waiting for <goal.waiting_for>; <outcome> Run the task again to wait again, or raise
    wait_timeout.<goal.hint>``."""
    def poll(elapsed):
        return goal.pending(before, scan_nginx_workers(proc_root), elapsed, settle)

    done, seconds, pending = wait_for(poll, timeout, interval, clock, sleep)
    if started is not None:
        seconds = clock() - started
    if done:
        return seconds, None
    hint = goal.hint(before, pending, scan_nginx_workers(proc_root))
    return seconds, ('timed out after %g s waiting for %s; %s Run the task again to wait again, or raise wait_timeout.%s'
                     % (timeout, goal.waiting_for % ', '.join(str(pid) for pid in pending), outcome, hint))


# --------------------------------------------------------------------------------------------------------------
# haproxy runtime API
# --------------------------------------------------------------------------------------------------------------

def haproxy_command(socket_path, command, timeout=5.0):
    """Send one command to haproxy's admin socket and return its answer (haproxy closes the connection after it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
        sock.sendall(command.encode('utf-8') + b'\n')
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    return b''.join(chunks).decode('utf-8', 'replace')


def parse_haproxy_backends(text):
    """Names from ``show backend``."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith('#')]


def parse_haproxy_servers_state(text):
    """Rows of ``show servers state <backend>`` as dicts keyed by the header's column names."""
    header = None
    rows = []
    for line in text.splitlines():
        if line.startswith('# '):
            header = line[2:].split()
            continue
        fields = line.split()
        if header is None or len(fields) < 7:
            continue
        rows.append(dict(zip(header, fields)))
    if header is None:
        raise LbMemberError('unexpected answer from haproxy to "show servers state": %s' % text.strip()[:300])
    return rows


def parse_haproxy_stat(text):
    """``show stat`` CSV as ``{(pxname, svname): row}``."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith('# '):
        raise LbMemberError('unexpected answer from haproxy to "show stat": %s' % text.strip()[:300])
    reader = csv.DictReader(io.StringIO('\n'.join([lines[0][2:]] + [line for line in lines[1:] if line.strip()])))
    return dict(((row.get('pxname'), row.get('svname')), row) for row in reader)


def haproxy_admin_state(admin_state):
    """Member state for haproxy's numeric ``srv_admin_state``."""
    value = int(admin_state)
    if value & HAPROXY_ADMF_MAINT:
        return MAINT
    if value & HAPROXY_ADMF_DRAIN:
        return DRAINING
    return ENABLED


def haproxy_address(row):
    """``(address, port)`` of a ``show servers state`` row: the address haproxy currently uses (``srv_addr``, after
    DNS resolution) and ``srv_port``; None for an unresolved address (``-``) or no port (``0``: the client's port)."""
    address = row.get('srv_addr')
    if not address or address in ('-', '0.0.0.0', '::'):
        address = None
    return address, _port(row.get('srv_port', ''))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class HAProxyClient(object):
    """The few runtime API commands the module needs; ``send(command)`` is injectable for tests."""

    def __init__(self, socket_path, timeout=5.0, send=None):
        self.socket_path = socket_path
        if send is None:
            def send(command):
                return haproxy_command(socket_path, command, timeout)
        self.send = send

    def _ask(self, command):
        try:
            return self.send(command)
        except (IOError, OSError) as exc:
            raise LbMemberError('cannot talk to haproxy on admin socket %s (%s): %s' % (self.socket_path, command, exc))

    def backends(self):
        answer = self._ask('show backend')
        if not answer.startswith('# name'):
            raise LbMemberError('unexpected answer from haproxy to "show backend" (is the socket at level admin?): %s' % answer.strip()[:300])
        return parse_haproxy_backends(answer)

    def members(self, pool):
        """Members of backend ``pool``: dicts ``name``, ``state``, ``reason`` (always None), ``status`` (the
        ``show stat`` status), ``sessions`` (current sessions plus queued requests), ``address`` and ``port``
        (where haproxy sends the server's requests, see haproxy_address)."""
        rows = parse_haproxy_servers_state(self._ask('show servers state %s' % pool))
        stats = parse_haproxy_stat(self._ask('show stat'))
        members = []
        for row in rows:
            if row.get('be_name') != pool:
                continue
            stat = stats.get((pool, row['srv_name']), {})
            address, port = haproxy_address(row)
            members.append(dict(
                name=row['srv_name'],
                state=haproxy_admin_state(row.get('srv_admin_state', 0)),
                reason=None,
                status=stat.get('status') or None,
                sessions=_int(stat.get('scur')) + _int(stat.get('qcur')),
                address=address,
                port=port,
            ))
        return members

    def set_state(self, pool, member, state):
        """``set server <pool>/<member> state <ready|drain|maint>``; haproxy answers nothing on success."""
        answer = self._ask('set server %s/%s state %s' % (pool, member, state)).strip()
        if answer:
            raise LbMemberError('haproxy refused "set server %s/%s state %s": %s' % (pool, member, state, answer))
