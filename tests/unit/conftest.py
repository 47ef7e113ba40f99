# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make ``ansible_collections.dealerscope.ops`` importable for plain ``pytest tests/unit``.

The repository root is the collection root.  We expose it as
``<root>/.build/collections/ansible_collections/dealerscope/ops`` (a relative
symlink back to the root) and put ``<root>/.build/collections`` first on
``sys.path``.  ``ansible_collections`` stays a namespace package (neither this
tree nor the one the ``ansible`` package installs in site-packages has an
``__init__.py``), so ``ansible_collections.community.general`` & co. from
site-packages keep working next to ours.
"""

from __future__ import annotations

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, '.build', 'collections')
NAMESPACE_DIR = os.path.join(COLLECTIONS_ROOT, 'ansible_collections', 'dealerscope')
COLLECTION_LINK = os.path.join(NAMESPACE_DIR, 'ops')


def _ensure_collection_link():
    os.makedirs(NAMESPACE_DIR, exist_ok=True)
    if os.path.islink(COLLECTION_LINK):
        if os.path.realpath(COLLECTION_LINK) == os.path.realpath(REPO_ROOT):
            return
        os.unlink(COLLECTION_LINK)  # stale link, e.g. the checkout moved
    elif os.path.exists(COLLECTION_LINK):
        return  # a real directory someone put there on purpose; leave it alone
    target = os.path.relpath(REPO_ROOT, NAMESPACE_DIR)
    try:
        os.symlink(target, COLLECTION_LINK)
    except FileExistsError:
        pass  # created concurrently by another test process


def _ensure_sys_path():
    if COLLECTIONS_ROOT in sys.path:
        sys.path.remove(COLLECTIONS_ROOT)
    sys.path.insert(0, COLLECTIONS_ROOT)
    # If ansible_collections was imported already (before our path entry existed), its namespace
    # __path__ is recomputed from sys.path on the next import, so nothing else is needed.  A regular
    # (non-namespace) ansible_collections package would shadow ours; say so clearly.
    module = sys.modules.get('ansible_collections')
    if module is not None and getattr(module, '__file__', None):
        raise RuntimeError('ansible_collections was imported as a regular package from %s; '
                           'it must be a namespace package for the unit tests' % module.__file__)


_ensure_collection_link()
_ensure_sys_path()
