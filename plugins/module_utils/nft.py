# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic used by the ``dealerscope.ops.nft_apply`` module (no AnsibleModule, no nft calls).

The module owns one nftables table (``inet <table>``) and a state directory:

``candidate.nft``   the ruleset being applied (written by ``state=planned``, loaded by ``state=loaded``);
``previous.nft``    what restores the table as it was before the change (the revert script loads it);
``confirmed.nft``   the last ruleset confirmed by a fresh login and the probes (loaded at boot);
``confirmed.listing`` ``nft list table`` right after that confirmation: a different live listing is drift.
"""

from __future__ import annotations

import json
import re

TABLE_RE = re.compile(r'^[a-z][a-z0-9_]{0,30}$')
FILES = {'candidate': 'candidate.nft', 'previous': 'previous.nft', 'confirmed': 'confirmed.nft', 'listing': 'confirmed.listing'}
VERDICTS = ('accept', 'drop', 'reject')
# `nft list` prints handles and counters that change without anyone changing the rules.
_VOLATILE = re.compile(r'\s*(#\s*handle\s+\d+|counter packets \d+ bytes \d+)')


def validate_table(table):
    if not isinstance(table, str) or not TABLE_RE.match(table):
        raise ValueError('table must be a lower-case nftables name (letters, digits, _; at most 31), got %r' % (table,))
    return table


def normalize_listing(text):
    """A live ``nft list table`` output without what changes by itself (counter values, handles, blank lines)."""
    lines = []
    for line in (text or '').splitlines():
        line = _VOLATILE.sub('', line).rstrip()
        if line.strip():
            lines.append(line)
    return '\n'.join(lines) + ('\n' if lines else '')


def rule_lines(text):
    """The rules of a ruleset or listing: lines ending in a verdict (comments and set bodies excluded), whitespace-normalised."""
    rules = []
    for line in (text or '').splitlines():
        stripped = ' '.join(line.split())
        if not stripped or stripped.startswith('#') or stripped.startswith('type ') or stripped.startswith('elements'):
            continue
        words = re.sub(r'comment "[^"]*"', '', stripped).split()
        if words and words[-1] in VERDICTS or (len(words) > 1 and words[-1].rstrip(';') in VERDICTS):
            rules.append(stripped)
    return rules


def rule_changes(before, after):
    """(added, removed): how many rules ``after`` has that ``before`` lacks, and the reverse (multisets)."""
    old, new = rule_lines(before), rule_lines(after)
    added = removed = 0
    remaining = list(old)
    for rule in new:
        if rule in remaining:
            remaining.remove(rule)
        else:
            added += 1
    removed = len(remaining)
    return added, removed


def restore_text(table, listing):
    """nft -f input that puts ``table`` back as ``listing`` shows it, or removes it when it did not exist."""
    head = 'table inet %s\ndelete table inet %s\n' % (table, table)
    return head + (listing if listing else '')


def plan(content, confirmed, live_listing, recorded_listing, table_present):
    """Whether ``content`` must be loaded, and why: new (nothing confirmed yet), changed, drift or missing."""
    drift = detect_drift(confirmed, live_listing, recorded_listing, table_present)
    if confirmed is None:
        return True, 'new', drift
    if content != confirmed:
        return True, 'changed', drift
    if not table_present:
        return True, 'missing', drift
    if drift:
        return True, 'drift', drift
    return False, 'unchanged', drift


def detect_drift(confirmed, live_listing, recorded_listing, table_present):
    """The live table is not what was confirmed: removed, or its listing differs from the one recorded then."""
    if confirmed is None:
        return False
    if not table_present:
        return True
    if recorded_listing is None:
        return False
    return normalize_listing(live_listing) != normalize_listing(recorded_listing)


def route_source(route_json):
    """The source address the kernel picks for the default route (``ip -j route get`` output), or ''."""
    try:
        routes = json.loads(route_json or '[]')
    except ValueError:
        return ''
    for route in routes if isinstance(routes, list) else []:
        if isinstance(route, dict) and route.get('prefsrc'):
            return str(route['prefsrc'])
    return ''


def ssh_source(ssh_connection):
    """The client address of ``$SSH_CONNECTION`` (``client_ip client_port server_ip server_port``), or ''."""
    parts = (ssh_connection or '').split()
    return parts[0] if len(parts) == 4 else ''
