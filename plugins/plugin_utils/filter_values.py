# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Type checks and value descriptions shared by the collection's filter plugins (controller side).

One copy of the small helpers the filters use to validate their input and to name a wrong value in an error
message, so every filter treats "a list", "a dict" and "what was given" the same way.
"""

from __future__ import annotations

from ansible.module_utils.common.collections import is_sequence


def is_list(value):
    """True for a list-like sequence (list, tuple, ...); False for str, bytes, dicts and anything else."""
    return not isinstance(value, (str, bytes)) and not hasattr(value, 'keys') and is_sequence(value)


def is_dict(value):
    """True for a dict-like value (anything with ``keys`` and ``items``)."""
    return hasattr(value, 'keys') and hasattr(value, 'items')


def describe(value):
    """``value`` for an error message: its type name and repr, e.g. ``str 'x'`` or ``int 3``."""
    return '%s %r' % (type(value).__name__, value)


def describe_given(value):
    """``value`` for an error message: a string as it was given (``'x'``; Ansible's tagged strings included), anything
    else with its type."""
    return "'%s'" % value if isinstance(value, str) else describe(value)


def unknown_keys(where, entry, known, problems):
    """Add to ``problems`` the keys of the dict ``entry`` outside ``known`` (a typo would be silently ignored)."""
    unknown = sorted(set(entry) - set(known))
    if unknown:
        problems.append('%s: unknown key(s) %s; known: %s' % (where, ', '.join(map(str, unknown)), ', '.join(known)))
