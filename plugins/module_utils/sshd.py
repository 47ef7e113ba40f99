# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic used by the ``dealerscope.ops.sshd_access_check`` module.

Nothing in here talks to AnsibleModule; everything the module learns from the
host (``sshd -T`` output, passwd/group data, authorized_keys contents, file
modes) is passed in, so that the decision "can this user still log in with a
public key?" can be unit tested on its own.

The matching functions follow OpenSSH's ``match.c`` / ``addrmatch.c`` and
``auth.c`` (``allowed_user``, ``auth_secure_path``) as closely as is practical.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import stat
import struct

# Keywords of ``sshd -T`` output whose value is itself a whitespace separated list
# (``authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2``).
SPLIT_KEYWORDS = frozenset((
    'acceptenv',
    'allowgroups',
    'allowusers',
    'authenticationmethods',
    'authorizedkeysfile',
    'denygroups',
    'denyusers',
))

# Keywords that can appear more than once and are therefore collected as lists: the
# split ones, plus those that keep one item per line (``subsystem sftp /usr/lib/openssh/sftp-server``).
LIST_KEYWORDS = SPLIT_KEYWORDS | frozenset((
    'hostcertificate',
    'hostkey',
    'include',
    'listenaddress',
    'port',
    'setenv',
    'subsystem',
))

DEFAULT_AUTHORIZED_KEYS_FILE = ['.ssh/authorized_keys', '.ssh/authorized_keys2']

_PLAIN_KEY_TYPES = (
    'ssh-rsa',
    'ssh-dss',
    'ssh-ed25519',
    'ssh-xmss@openssh.com',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'sk-ecdsa-sha2-nistp256@openssh.com',
    'sk-ssh-ed25519@openssh.com',
)


def _cert_type(keytype):
    if keytype.endswith('@openssh.com'):
        return keytype[:-len('@openssh.com')] + '-cert-v01@openssh.com'
    return keytype + '-cert-v01@openssh.com'


#: Key type names OpenSSH accepts in authorized_keys files (plain and certificate).
KEY_TYPES = frozenset(_PLAIN_KEY_TYPES + tuple(_cert_type(k) for k in _PLAIN_KEY_TYPES))

# Signature algorithms a key of the given type can be used with; checked
# against PubkeyAcceptedAlgorithms.
_EXTRA_ALGORITHMS = {
    'ssh-rsa': ('rsa-sha2-256', 'rsa-sha2-512'),
    'ssh-rsa-cert-v01@openssh.com': ('rsa-sha2-256-cert-v01@openssh.com', 'rsa-sha2-512-cert-v01@openssh.com'),
}

# Values of PermitRootLogin that still allow a root login with a public key.
_ROOT_KEY_OK = ('yes', 'prohibit-password', 'without-password', 'forced-commands-only')


# --------------------------------------------------------------------------
# sshd -T
# --------------------------------------------------------------------------

def parse_sshd_t(text):
    """Parse the output of ``sshd -T`` into a dict.

    Keywords are lowercased.  Keywords listed in ``LIST_KEYWORDS`` map to lists
    (in the order sshd printed them), all others to the (last) string value.
    """
    result = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.split(None, 1)
        keyword = parts[0].lower()
        value = parts[1].strip() if len(parts) > 1 else ''
        if keyword in LIST_KEYWORDS:
            items = result.setdefault(keyword, [])
            if keyword in SPLIT_KEYWORDS:
                items.extend(value.split())
            elif value:
                items.append(value)
        else:
            result[keyword] = value
    return result


# --------------------------------------------------------------------------
# Patterns (OpenSSH match.c)
# --------------------------------------------------------------------------

def match_pattern(name, pattern):
    """Return True when ``name`` matches the OpenSSH wildcard ``pattern``.

    Only ``*`` (any run of characters) and ``?`` (exactly one character) are
    special; matching is case sensitive and there are no character classes,
    exactly like ``match_pattern()`` in OpenSSH's match.c.  The implementation
    is iterative (no exponential backtracking).
    """
    s_idx = p_idx = 0
    star = -1
    star_s = 0
    s_len = len(name)
    p_len = len(pattern)
    while s_idx < s_len:
        if p_idx < p_len and (pattern[p_idx] == '?' or pattern[p_idx] == name[s_idx]) and pattern[p_idx] != '*':
            s_idx += 1
            p_idx += 1
        elif p_idx < p_len and pattern[p_idx] == '*':
            star = p_idx
            star_s = s_idx
            p_idx += 1
        elif star != -1:
            p_idx = star + 1
            star_s += 1
            s_idx = star_s
        else:
            return False
    while p_idx < p_len and pattern[p_idx] == '*':
        p_idx += 1
    return p_idx == p_len


def match_pattern_list(name, patterns, dolower=False):
    """OpenSSH ``match_pattern_list()``.

    ``patterns`` is a comma separated string (or a list of such strings, which
    are joined with commas).  Each sub-pattern may be negated with a leading
    ``!``.  Returns 1 if some positive sub-pattern matched and no negated one
    did, -1 as soon as a negated sub-pattern matches, 0 otherwise.  With
    ``dolower`` the patterns are lowercased (the name is used as given).
    """
    if isinstance(patterns, (list, tuple)):
        patterns = ','.join(patterns)
    got_positive = 0
    for sub in patterns.split(','):
        negated = sub.startswith('!')
        if negated:
            sub = sub[1:]
        if dolower:
            sub = sub.lower()
        if match_pattern(name, sub):
            if negated:
                return -1
            got_positive = 1
    return got_positive


def _parse_ip(addr):
    """Parse an address the way sshd normalises it (IPv4-mapped IPv6 -> IPv4)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def addr_match_list(addr, patterns):
    """OpenSSH ``addr_match_list()``: match an IP address against a list.

    Entries are CIDR networks or plain addresses (compared numerically) or
    else wildcard patterns matched against the textual address; ``!`` negates.
    Returns 1 (match), 0 (no match), -1 (negated match) or -2 (invalid entry,
    e.g. a network with host bits set such as ``10.0.0.1/8``).
    """
    ip = _parse_ip(addr) if addr is not None else None
    if addr is not None and ip is None:
        return 0
    ret = 0
    for entry in patterns.split(','):
        neg = entry.startswith('!')
        if neg:
            entry = entry[1:]
        if not entry:
            return -2
        network = None
        if '/' in entry or _parse_ip(entry) is not None:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                network = None
            if network is not None:
                try:
                    ipaddress.ip_network(entry, strict=True)
                except ValueError:
                    return -2
        if network is not None:
            if ip is not None and ip.version == network.version and ip in network:
                if neg:
                    return -1
                ret = 1
            continue
        if addr is not None and match_pattern(addr, entry):
            if neg:
                return -1
            ret = 1
    return ret


def match_host_and_ip(host, addr, patterns):
    """OpenSSH ``match_host_and_ip()``.

    Returns 1 if the host name or address matches the pattern list and
    neither is negated, 0 if not, -1 for an invalid pattern list.  Like sshd,
    a missing host or address never matches.
    """
    mip = addr_match_list(addr, patterns)
    if mip == -2:
        return -1
    if host is None or addr is None or mip == -1:
        return 0
    mhost = match_pattern_list(host.lower(), patterns, dolower=True)
    if mhost == -1:
        return 0
    if mhost == 0 and mip == 0:
        return 0
    return 1


def match_user(user, pattern, host=None, addr=None):
    """Match an AllowUsers/DenyUsers entry (``USER`` or ``USER@HOST``).

    The user part is a plain wildcard pattern (OpenSSH uses ``match_pattern``
    for it, so no comma lists or negation).  The host part is a host name or
    address list (CIDR allowed), checked with :func:`match_host_and_ip`.

    Returns 1 (matches), 0 (does not match), -1 (invalid host pattern) or
    ``None`` when the user part matches but the host part cannot be checked
    because neither the client's address nor host name is known.
    """
    if '@' not in pattern:
        return 1 if match_pattern(user, pattern) else 0
    user_pat, host_pat = pattern.split('@', 1)
    if not match_pattern(user, user_pat):
        return 0
    if addr is None and host is None:
        return None
    if addr is None:
        # Only a host name: without an address only host name patterns can match.
        mhost = match_pattern_list(host.lower(), host_pat, dolower=True)
        return 1 if mhost == 1 else 0
    return match_host_and_ip(host if host is not None else addr, addr, host_pat)


# --------------------------------------------------------------------------
# authorized_keys
# --------------------------------------------------------------------------

def authorized_keys_paths(tokens, user, home, uid=None):
    """Expand AuthorizedKeysFile tokens the way sshd does.

    ``%h`` -> home directory, ``%u`` -> user name, ``%U`` -> numeric uid,
    ``%%`` -> ``%``; a path that is not absolute after expansion is taken
    relative to the home directory; ``none`` means no file at all.  ``tokens``
    may be a list or a whitespace separated string.  Raises ValueError for an
    unknown ``%`` escape (sshd would abort the login).
    """
    if isinstance(tokens, str):
        tokens = tokens.split()
    paths = []
    for token in tokens or []:
        if token.lower() == 'none':
            continue
        out = []
        i = 0
        while i < len(token):
            char = token[i]
            if char != '%':
                out.append(char)
                i += 1
                continue
            if i + 1 >= len(token):
                raise ValueError("invalid AuthorizedKeysFile token '%s': trailing '%%'" % token)
            esc = token[i + 1]
            if esc == '%':
                out.append('%')
            elif esc == 'h':
                out.append(home)
            elif esc == 'u':
                out.append(user)
            elif esc == 'U':
                if uid is None:
                    raise ValueError("AuthorizedKeysFile token '%s' uses %%U but the uid is unknown" % token)
                out.append(str(uid))
            else:
                raise ValueError("invalid AuthorizedKeysFile token '%s': unknown escape '%%%s'" % (token, esc))
            i += 2
        path = ''.join(out)
        if not path.startswith('/'):
            path = '%s/%s' % (home, path)
        if path not in paths:
            paths.append(path)
    return paths


def _skip_options(line):
    """Return the index just past the options field (sshkey_advance_past_options)."""
    quoted = False
    i = 0
    length = len(line)
    while i < length and (quoted or line[i] not in ' \t'):
        if line[i] == '\\' and i + 1 < length and line[i + 1] == '"':
            i += 1
        elif line[i] == '"':
            quoted = not quoted
        i += 1
    if quoted:
        return None
    return i


def _split_options(text):
    """Split an options field into ``(name, value)`` tuples (value None for flags)."""
    options = []
    current = []
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == '\\' and i + 1 < len(text) and text[i + 1] == '"' and quoted:
            current.append('"')
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == ',' and not quoted:
            options.append(''.join(current))
            current = []
            i += 1
            continue
        else:
            current.append(char)
        i += 1
    options.append(''.join(current))
    result = []
    for opt in options:
        if not opt:
            continue
        if '=' in opt:
            name, value = opt.split('=', 1)
            result.append((name.lower(), value))
        else:
            result.append((opt.lower(), None))
    return result


def _decode_blob(b64):
    try:
        return base64.b64decode(b64.encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _blob_type(blob):
    """Return the key type string embedded at the start of a key blob, or None."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack('>I', blob[:4])
    if length > len(blob) - 4:
        return None
    try:
        return blob[4:4 + length].decode('ascii')
    except UnicodeDecodeError:
        return None


def _read_key(text):
    """Try to read ``keytype base64 [comment]`` at the start of ``text``."""
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        return None
    keytype, b64 = parts[0], parts[1]
    blob = _decode_blob(b64)
    if not blob or _blob_type(blob) != keytype:
        return None
    comment = parts[2].strip() if len(parts) > 2 else ''
    return keytype, b64, blob, comment


def parse_authorized_keys_entries(text):
    """Parse an authorized_keys file into a list of dicts.

    Each dict has ``keytype``, ``key`` (base64), ``blob`` (decoded bytes),
    ``comment`` and ``options`` (list of ``(name, value)``).  Comments, blank
    and unparsable lines are skipped, like sshd does.
    """
    entries = []
    for raw in (text or '').splitlines():
        line = raw.strip(' \t\r')
        if not line or line.startswith('#'):
            continue
        options = []
        found = _read_key(line)
        if found is None:
            end = _skip_options(line)
            if end is None:
                continue
            options = _split_options(line[:end])
            found = _read_key(line[end:].lstrip(' \t'))
            if found is None:
                continue
        keytype, b64, blob, comment = found
        entries.append({'keytype': keytype, 'key': b64, 'blob': blob, 'comment': comment, 'options': options})
    return entries


def parse_authorized_keys(text):
    """Return ``[(keytype, base64), ...]`` for every key in an authorized_keys text."""
    return [(e['keytype'], e['key']) for e in parse_authorized_keys_entries(text)]


def parse_public_key(line):
    """Parse one OpenSSH public key line; return ``(keytype, base64)`` or raise ValueError.

    The error message never contains key material.
    """
    entries = parse_authorized_keys_entries(line)
    if len(entries) != 1:
        raise ValueError('not a single valid OpenSSH public key line (expected "<type> <base64> [comment]")')
    return entries[0]['keytype'], entries[0]['key']


def key_fingerprint(b64):
    """OpenSSH SHA256 fingerprint (``SHA256:`` + unpadded base64) of a base64 key blob."""
    blob = _decode_blob(b64)
    if blob is None:
        raise ValueError('invalid base64 key data')
    digest = hashlib.sha256(blob).digest()
    return 'SHA256:' + base64.b64encode(digest).decode('ascii').rstrip('=')


# --------------------------------------------------------------------------
# authorized_keys file permissions (sshd opens it as the user; StrictModes)
# --------------------------------------------------------------------------

def _can_access(st, uid, gids, bit):
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in gids:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def key_file_problem(path, uid, gids, home, strict_modes=True, stat_func=os.stat, realpath_func=os.path.realpath):
    """Return why sshd would ignore the existing authorized keys file ``path``, or None.

    sshd opens the file with the user's privileges, so the file must be
    readable and every directory above it searchable by the user.  With
    ``StrictModes yes`` (the default) the file and every directory from it up
    to the home directory must be owned by root or the user and must not be
    group or world writable (``auth_secure_path`` in OpenSSH).  ``gids`` are
    the user's numeric groups.  A missing file returns None (handled elsewhere).
    """
    try:
        st = stat_func(path)
    except OSError:
        return None
    real = realpath_func(path)
    if not stat.S_ISREG(st.st_mode):
        return '%s is not a regular file' % real
    if not _can_access(st, uid, gids, 4):
        return '%s is not readable by the user (sshd opens it with the user\'s privileges)' % real
    if strict_modes and ((st.st_uid not in (0, uid)) or (st.st_mode & 0o022)):
        return 'bad ownership or modes for file %s (StrictModes)' % real
    home_real = realpath_func(home) if home else None
    strict = strict_modes
    current = real
    while True:
        parent = os.path.dirname(current)
        if parent == current:
            break
        try:
            dst = stat_func(parent)
        except OSError:
            return 'cannot stat directory %s' % parent
        if not _can_access(dst, uid, gids, 1):
            return 'directory %s is not searchable by the user' % parent
        if strict and ((dst.st_uid not in (0, uid)) or (dst.st_mode & 0o022)):
            return 'bad ownership or modes for directory %s (StrictModes)' % parent
        if home_real is not None and parent == home_real:
            strict = False
        if parent == '/':
            break
        current = parent
    return None


# --------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------

def _as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return list(value)


def _key_algorithms(keytype):
    return (keytype,) + _EXTRA_ALGORITHMS.get(keytype, ())


def _algorithm_accepted(keytype, accepted):
    if accepted is None:
        return True
    return any(match_pattern_list(alg, accepted) == 1 for alg in _key_algorithms(keytype))


def _option(entry, name):
    for opt_name, value in entry['options']:
        if opt_name == name:
            return True if value is None else value
    return None


def evaluate_access(effective, user, uid, home, groups, authorized_keys, public_keys=None,
                    client_addr=None, client_host=None, key_file_problems=None):
    """Decide whether ``user`` can log in with a public key.

    :arg effective: parsed ``sshd -T`` output for this user/connection (see :func:`parse_sshd_t`).
    :arg user: user name; ``uid``/``home``: from the passwd database.
    :arg groups: names of the user's primary and supplementary groups.
    :arg authorized_keys: ``{path: text or None}`` for the expanded AuthorizedKeysFile paths
        (None = missing or unreadable).
    :arg public_keys: optional list of OpenSSH public key lines; if given, at least one of them must be
        usable.  Raises ValueError if one of them is not a valid public key.
    :arg client_addr/client_host: the connecting client, when known (for ``user@host`` entries and ``from=``).
    :arg key_file_problems: optional ``{path: message or None}`` from :func:`key_file_problem`.

    Returns a dict with ``can_login``, ``reasons``, ``warnings``, ``authorized_key_files``
    and ``matched_fingerprints``.  Messages contain fingerprints, never key material.
    """
    reasons = []
    warnings = []
    public_keys = public_keys or []
    key_file_problems = key_file_problems or {}
    authorized_keys = authorized_keys or {}

    def get(keyword, default=''):
        value = effective.get(keyword)
        return default if value is None else value

    # Host name as sshd sees it: with UseDNS no (the default) it is the address.
    match_host = client_host if (client_host and get('usedns', 'no').lower() == 'yes') else (client_addr or client_host)

    # --- PubkeyAuthentication -------------------------------------------------
    pubkey = get('pubkeyauthentication', 'yes').lower()
    if pubkey != 'yes':
        reasons.append("PubkeyAuthentication is '%s' (pubkeyauthentication): public key authentication is disabled" % pubkey)

    # --- PermitRootLogin ------------------------------------------------------
    if uid == 0 or user == 'root':
        prl = get('permitrootlogin', 'prohibit-password').lower()
        if prl == 'no':
            reasons.append("PermitRootLogin is 'no' (permitrootlogin): %s has uid 0 and may not log in at all" % user)
        elif prl == 'forced-commands-only':
            warnings.append("PermitRootLogin is 'forced-commands-only' (permitrootlogin): %s can only log in with keys that have a "
                            "command= option, which normally breaks Ansible" % user)
        elif prl not in _ROOT_KEY_OK:
            warnings.append("PermitRootLogin has an unrecognised value '%s' (permitrootlogin)" % prl)

    # --- DenyUsers / AllowUsers -----------------------------------------------
    for entry in _as_list(effective.get('denyusers')):
        res = match_user(user, entry, host=match_host, addr=client_addr)
        if res == 1:
            reasons.append("DenyUsers entry '%s' matches user %s (denyusers)" % (entry, user))
        elif res is None:
            reasons.append("DenyUsers entry '%s' matches user %s; its host part cannot be checked because the client address is "
                           "unknown, so it is treated as a deny (denyusers)" % (entry, user))
        elif res == -1:
            reasons.append("DenyUsers entry '%s' has an invalid host pattern (denyusers)" % entry)

    allow_users = _as_list(effective.get('allowusers'))
    if allow_users:
        allowed = False
        unchecked = []
        for entry in allow_users:
            res = match_user(user, entry, host=match_host, addr=client_addr)
            if res == 1:
                allowed = True
                break
            if res is None:
                unchecked.append(entry)
        if not allowed and unchecked:
            allowed = True
            warnings.append("AllowUsers entries %s match user %s only if the client connects from the listed host; the client "
                            "address is unknown so this was not checked (allowusers)" % (', '.join("'%s'" % e for e in unchecked), user))
        if not allowed:
            reasons.append("AllowUsers is set (allowusers: %s) and no entry matches user %s" % (' '.join(allow_users), user))

    # --- DenyGroups / AllowGroups ---------------------------------------------
    groups = list(groups or [])
    deny_groups = _as_list(effective.get('denygroups'))
    allow_groups = _as_list(effective.get('allowgroups'))
    for pattern in deny_groups:
        hits = [g for g in groups if match_pattern(g, pattern)]
        if hits:
            reasons.append("DenyGroups entry '%s' matches group(s) %s of user %s (denygroups)" % (pattern, ', '.join(hits), user))
    if allow_groups:
        if not any(match_pattern(g, p) for g in groups for p in allow_groups):
            reasons.append("AllowGroups is set (allowgroups: %s) and none of the groups of user %s (%s) matches"
                           % (' '.join(allow_groups), user, ', '.join(groups) or 'none'))

    # --- AuthenticationMethods ------------------------------------------------
    methods = _as_list(effective.get('authenticationmethods')) or ['any']
    if 'any' not in methods and 'publickey' not in methods:
        reasons.append("AuthenticationMethods is '%s' (authenticationmethods): no method list consists of 'publickey' alone, "
                       "so a key is not enough to log in" % ' '.join(methods))

    # --- AuthorizedKeysFile and the keys --------------------------------------
    akf_tokens = effective.get('authorizedkeysfile')
    if akf_tokens is None:
        akf_tokens = list(DEFAULT_AUTHORIZED_KEYS_FILE)
    akf_tokens = _as_list(akf_tokens)
    expand_failed = False
    try:
        paths = authorized_keys_paths(akf_tokens, user, home, uid)
    except ValueError as exc:
        paths = []
        expand_failed = True
        reasons.append('AuthorizedKeysFile cannot be expanded (authorizedkeysfile): %s' % exc)
    akc = get('authorizedkeyscommand', 'none')
    have_command = akc.lower() != 'none' and akc != ''
    accepted = effective.get('pubkeyacceptedalgorithms', effective.get('pubkeyacceptedkeytypes'))

    file_notes = []
    usable = []  # (path, entry)
    for path in paths:
        text = authorized_keys.get(path)
        if text is None:
            file_notes.append('%s does not exist or is not readable' % path)
            continue
        problem = key_file_problems.get(path)
        if problem:
            file_notes.append('%s is ignored by sshd: %s' % (path, problem))
            continue
        entries = parse_authorized_keys_entries(text)
        if not entries:
            file_notes.append('%s contains no valid keys' % path)
            continue
        for entry in entries:
            usable.append((path, entry))
    akf_desc = ' '.join(akf_tokens) or 'none'

    def entry_rejection(entry):
        """Why sshd would not accept this entry for a plain key login (None = accepted)."""
        if _option(entry, 'cert-authority'):
            return 'it is marked cert-authority (it only vouches for certificates)'
        if not _algorithm_accepted(entry['keytype'], accepted):
            return 'its type %s is not allowed by PubkeyAcceptedAlgorithms (pubkeyacceptedalgorithms)' % entry['keytype']
        source = _option(entry, 'from')
        if source and source is not True:
            if client_addr is None and client_host is None:
                warnings.append('key %s has a from= restriction that could not be checked because the client address is unknown'
                                % key_fingerprint(entry['key']))
            elif match_host_and_ip(match_host, client_addr, source) != 1:
                return 'its from= option does not allow the client address %s' % (client_addr or client_host)
        return None

    def note_forced_command(entry):
        if _option(entry, 'command'):
            warnings.append("key %s has a command= option: sshd will run that command instead of Ansible's" % key_fingerprint(entry['key']))

    matched = []
    if not usable:
        if have_command:
            warnings.append('no key found in the AuthorizedKeysFile files (%s) but AuthorizedKeysCommand is set (authorizedkeyscommand); '
                            'keys it returns were not checked' % '; '.join(file_notes or [akf_desc]))
        elif not expand_failed:
            reasons.append('no usable authorized keys for %s (authorizedkeysfile: %s): %s'
                           % (user, akf_desc, '; '.join(file_notes) if file_notes else 'no authorized keys file is configured'))
    elif public_keys:
        expected = []
        for index, line in enumerate(public_keys):
            try:
                keytype, b64 = parse_public_key(line)
            except ValueError as exc:
                raise ValueError('public_keys[%d]: %s' % (index, exc))
            expected.append((keytype, b64, _decode_blob(b64)))
        rejected = []
        for keytype, b64, blob in expected:
            fingerprint = key_fingerprint(b64)
            ok = False
            for path, entry in usable:
                if entry['blob'] != blob:
                    continue
                why = entry_rejection(entry)
                if why is None:
                    ok = True
                    note_forced_command(entry)
                    break
                rejected.append('%s in %s is not usable: %s' % (fingerprint, path, why))
            if ok and fingerprint not in matched:
                matched.append(fingerprint)
        if not matched:
            msg = ('none of the expected public keys (%s) is usable in the authorized keys files of %s (authorizedkeysfile: %s)'
                   % (', '.join(key_fingerprint(b64) for _kt, b64, _bl in expected), user, akf_desc))
            if rejected:
                msg += ': ' + '; '.join(rejected)
            if have_command:
                warnings.append(msg + '; AuthorizedKeysCommand is set (authorizedkeyscommand) and was not checked')
            else:
                reasons.append(msg)
    else:
        rejected = []
        for path, entry in usable:
            why = entry_rejection(entry)
            fingerprint = key_fingerprint(entry['key'])
            if why is None:
                if fingerprint not in matched:
                    matched.append(fingerprint)
            else:
                rejected.append('%s in %s is not usable: %s' % (fingerprint, path, why))
        if not matched and not have_command:
            reasons.append('no usable authorized keys for %s (authorizedkeysfile: %s): %s' % (user, akf_desc, '; '.join(rejected)))
    return {
        'can_login': not reasons,
        'reasons': reasons,
        'warnings': list(dict.fromkeys(warnings)),
        'authorized_key_files': paths,
        'matched_fingerprints': matched,
    }
