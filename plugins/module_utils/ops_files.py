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
    """Create ``path`` with mode 0700 when missing; return True when it was created."""
    if os.path.isdir(path):
        return False
    os.makedirs(path, mode=0o700)
    os.chmod(path, 0o700)
    return True


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically, mode 0600: temporary file in the same directory,
    fsync, rename, then fsync of the directory. A missing parent is created with mode 0700."""
    parent = os.path.dirname(os.path.abspath(path))
    ensure_private_dir(parent)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=parent)
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
