# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private state files shared by runbook modules (log cursors, notification ledgers)."""

from __future__ import annotations

import os
import stat
import tempfile


def ensure_private_dir(path):
    """Create ``path`` with mode 0700 when missing; return True when it was created.

    Two runs may create it at the same moment (two cron firings on one notification state directory): the one
    that finds it made by the other goes on with it."""
    if os.path.isdir(path):
        return False
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        if os.path.isdir(path):
            return False
        raise
    os.chmod(path, 0o700)
    return True


def replace_atomically(path, data, mode=None, mover=None):
    """Replace ``path`` with ``data`` (bytes or text) atomically: a temporary file in the same directory,
    fsync, then ``mover(tmp, path)`` - ``os.replace`` by default, or ``AnsibleModule.atomic_move``, which keeps
    the replaced file's owner, mode and SELinux context. ``mode`` is set on the temporary file first."""
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data if isinstance(data, bytes) else data.encode('utf-8'))
            handle.flush()
            os.fsync(handle.fileno())
        (mover or os.replace)(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically, mode 0600: temporary file in the same directory,
    fsync, rename, then fsync of the directory. A missing parent is created with mode 0700."""
    parent = os.path.dirname(os.path.abspath(path))
    ensure_private_dir(parent)
    replace_atomically(path, text, mode=stat.S_IRUSR | stat.S_IWUSR)
    try:
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
