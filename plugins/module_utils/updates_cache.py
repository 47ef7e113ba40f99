# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A cache of the pending-updates simulation (``apt-get -s dist-upgrade``), kept on the managed host.

The simulation costs about a quarter of a second of CPU per host and its answer depends only on apt's inputs: the
package lists, dpkg's status, apt's sources, preferences and configuration. The cache stores the answer with a
fingerprint of those inputs (path, inode, size and mtime of each file) and is used only while the fingerprint is
unchanged and the entry is younger than a maximum age, so an ``apt-get update``, an install, a hold or a new pin
invalidates it at once.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_files import replace_atomically

# Every file apt-get -s dist-upgrade reads to decide what it would upgrade (globs; a missing path counts as such).
APT_INPUTS = (
    '/var/lib/dpkg/status',
    '/var/lib/dpkg/updates/*',
    '/var/lib/apt/lists/*',
    '/var/lib/apt/extended_states',
    '/etc/apt/sources.list',
    '/etc/apt/sources.list.d/*',
    '/etc/apt/preferences',
    '/etc/apt/preferences.d/*',
    '/etc/apt/apt.conf',
    '/etc/apt/apt.conf.d/*',
    '/etc/apt/trusted.gpg',
    '/etc/apt/trusted.gpg.d/*',
)
CACHE_VERSION = 1


def fingerprint(patterns=APT_INPUTS):
    """A digest of the identity (inode, size, mtime in ns) of every regular file the patterns match."""
    digest = hashlib.sha256()
    for pattern in patterns:
        paths = sorted(glob.glob(pattern)) if any(char in pattern for char in '*?[') else [pattern]
        if not paths:
            digest.update(('%s\0none\n' % pattern).encode('utf-8', 'surrogateescape'))
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                digest.update(('%s\0missing\n' % path).encode('utf-8', 'surrogateescape'))
                continue
            if not os.path.isfile(path):
                continue  # lists/partial, lists/auxfiles, the lock's directory entries
            if os.path.basename(path) == 'lock':
                continue  # apt rewrites its lock file on every run without changing what it would do
            digest.update(('%s\0%d\0%d\0%d\n' % (path, st.st_ino, st.st_size, st.st_mtime_ns)).encode('utf-8', 'surrogateescape'))
    return digest.hexdigest()


def load(path, key, now, max_age_seconds):
    """The cached value for ``key`` when it is there and young enough: ``(value, computed_at)``, else ``(None, reason)``."""
    if not path or max_age_seconds <= 0:
        return None, 'disabled'
    try:
        with open(path, encoding='utf-8') as handle:
            entry = json.load(handle)
    except (IOError, OSError):
        return None, 'no cache yet'
    except ValueError:
        return None, 'unreadable cache'
    if not isinstance(entry, dict) or entry.get('version') != CACHE_VERSION or entry.get('key') != key:
        return None, 'apt state changed'
    computed_at = entry.get('computed_at')
    if not isinstance(computed_at, (int, float)) or computed_at > now + 60 or now - computed_at > max_age_seconds:
        return None, 'expired'
    if not isinstance(entry.get('value'), dict):
        return None, 'unreadable cache'
    return entry['value'], computed_at


def store(path, key, value, now):
    """Write the entry atomically (a temporary file renamed over the old one, mode 0644); raise OSError when it cannot."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    entry = json.dumps({'version': CACHE_VERSION, 'key': key, 'computed_at': now, 'value': value}, sort_keys=True)
    replace_atomically(path, entry, mode=0o644)
