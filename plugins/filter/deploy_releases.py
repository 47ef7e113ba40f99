# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: deploy_releases
short_description: Order the deployed releases, pick the rollback target and the releases to prune
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Plans the release housekeeping of a blue/green deploy with C(releases/<name>) directories and an atomic C(current)
    symlink. Given the releases on the host, the live one (where C(current) points), the releases marked bad and how many
    to keep, it returns the releases oldest first, the automatic rollback target, whether a rollback is possible (and if
    not, why) and which releases to delete.
  - The automatic rollback target (RV(previous)) is the newest release older than the live one that is not marked bad.
    An explicit O(rollback_to) overrides it; it must exist, must not be marked bad and must not be the live release. It may
    be newer than the live one (rolling forward again after a rollback).
  - 'Pruning: the live release, RV(previous) and RV(rollback_target) are never deleted ("protected"). The other releases are
    deleted oldest first until at most O(keep) remain, protected ones counting towards O(keep). Bad releases get no special
    treatment: they are pruned by age like the others. Applying the filter again to RV(keep) deletes nothing.'
  - All problems with the input are collected and reported together in one error, one per line, naming the role
    variables (C(deploy_keep), C(deploy_bad_releases), C(deploy_rollback_to)).
positional: _input
options:
  _input:
    description:
      - The releases on the host (the directory names under C(releases/)), either as names, oldest first, or as dicts with
        C(name) and C(mtime) (seconds since the epoch, as from C(ansible.builtin.stat) or C(ansible.builtin.find)), which
        are ordered by C(mtime), then by name. Other keys of the dicts are ignored. Names and dicts cannot be mixed.
      - 'A name is 1-100 characters: letters, digits, C(.), C(_), C(+) and C(-), starting with a letter or digit
        (V(v1.4.2), V(20261127T120301Z-v1.4.2)). Names must be unique.'
    type: list
    elements: raw
    required: true
  live:
    description:
      - The release C(current) points at (its directory name, not its path), or V(null) when nothing is live.
      - Must be one of the releases. An empty string is refused; pass V(null) when C(current) does not exist.
    type: str
  keep:
    description:
      - How many releases to keep, at least 2 (the live one and a rollback target). Digits in a string (V("5"), as Ansible
        extra vars arrive) are accepted.
    type: raw
    default: 5
  bad:
    description:
      - Names of releases marked bad (C(deploy_bad_releases)). A rollback never picks them. Names that are not (or no
        longer) among the releases are ignored, so a pruned release may stay marked. V(null) is the same as an empty list.
    type: list
    elements: str
    default: []
  rollback_to:
    description:
      - The release to roll back to (C(deploy_rollback_to)), instead of RV(previous). V(null) or an empty string for the
        automatic choice.
      - When nothing is live it is the only way to get a rollback target.
    type: str
"""

EXAMPLES = r"""
- name: Describe the releases found under releases/ (ansible.builtin.find with file_type=directory)
  ansible.builtin.set_fact:
    deploy_release_list: "{{ deploy_release_list | default([]) + [{'name': item.path | basename, 'mtime': item.mtime}] }}"
  loop: "{{ deploy_found.files }}"

- name: Plan the rollback target and the pruning
  ansible.builtin.set_fact:
    deploy_plan: >-
      {{ deploy_release_list | default([]) | dealerscope.ops.deploy_releases(live=deploy_live, keep=deploy_keep,
                                                                            bad=deploy_bad_releases, rollback_to=deploy_rollback_to) }}

- name: Or with plain names, oldest first
  ansible.builtin.debug:
    msg: "{{ ['v1.4.0', 'v1.4.1', 'v1.4.2', 'v1.4.3'] | dealerscope.ops.deploy_releases(live='v1.4.3', keep=2, bad=['v1.4.2']) }}"
# -> {ordered: [v1.4.0, v1.4.1, v1.4.2, v1.4.3], live: v1.4.3, previous: v1.4.1, rollback_target: v1.4.1,
#     can_rollback: true, refusal: null, delete: [v1.4.0, v1.4.2], keep: [v1.4.1, v1.4.3]}

# ['v1.4.0', 'v1.4.1'] | dealerscope.ops.deploy_releases(live='v1.4.1', bad=['v1.4.0'])
# -> {..., previous: null, rollback_target: null, can_rollback: false,
#     refusal: "no release before 'v1.4.1' that is not marked bad; ...", delete: [], ...}

# ['v1.4.0', 'v1.4.1'] | dealerscope.ops.deploy_releases(live='v1.4.1', bad=['v1.4.0'], rollback_to='v1.4.0')
# -> error: deploy_rollback_to: release 'v1.4.0' is marked bad; rollback never picks it (unmark it first)
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    ordered:
      description: All release names, oldest first.
      type: list
      elements: str
    live:
      description: The live release (O(live)), or V(null).
      type: str
    previous:
      description: The newest release older than the live one that is not marked bad, or V(null).
      type: str
    rollback_target:
      description: O(rollback_to) when given, else RV(previous). V(null) when a rollback is impossible.
      type: str
    can_rollback:
      description: Whether RV(rollback_target) is set.
      type: bool
    refusal:
      description:
        - V(null) when a rollback is possible, else the reason, starting with V(nothing is live) or
          V(no release before 'NAME' that is not marked bad).
      type: str
    delete:
      description: The releases to delete, oldest first. Never the live one, RV(previous) or RV(rollback_target).
      type: list
      elements: str
    keep:
      description: The releases that remain, oldest first (RV(ordered) without RV(delete)).
      type: list
      elements: str
"""

import math
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import describe, is_dict, is_list

NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+-]{0,99}')
INTEGER_RE = re.compile(r'[+-]?[0-9]+')
NAME_HINT = "1-100 letters, digits, '.', '_', '+' and '-', starting with a letter or digit, e.g. v1.4.2"
MIN_KEEP = 2


def _is_name(value):
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def _mtime(label, value, problems):
    """``value`` as a finite float (numeric strings accepted), or None after recording a problem."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number) or math.isinf(number):
        problems.append('%s: mtime is %s, not a number; give the seconds since the epoch (stat.mtime)' % (label, describe(value)))
        return None
    return float(number)


def _ordered(releases, problems):
    """The release names oldest first; problems recorded (the list may then be incomplete)."""
    if not is_list(releases):
        problems.append('releases must be a list of release names (oldest first) or of dicts with name and mtime, got %s'
                        % describe(releases))
        return []
    kinds = set('dict' if is_dict(entry) else 'name' for entry in releases)
    if len(kinds) > 1:
        problems.append('releases mixes names and dicts; give all as names (oldest first) or all as dicts with name and mtime')
        return []
    entries = []
    for index, entry in enumerate(releases):
        label = 'releases[%d]' % index
        if is_dict(entry):
            name, mtime = entry.get('name'), entry.get('mtime')
            if name is None or mtime is None:
                problems.append('%s: a release dict needs name and mtime, got keys %s' % (label, ', '.join(sorted(str(key) for key in entry))))
                continue
            mtime = _mtime(label, mtime, problems)
        else:
            name, mtime = entry, float(index)
        if not isinstance(name, str):
            problems.append('%s: the name is %s, not a string' % (label, describe(name)))
        elif not _is_name(name):
            problems.append("%s: %r is not a release name; a release name is %s (a path? pass the directory name, "
                            "e.g. with | basename)" % (label, str(name), NAME_HINT))
        elif mtime is not None:
            entries.append((mtime, str(name), index))
    entries.sort()
    seen = {}
    for _mtime_value, name, index in sorted(entries, key=lambda entry: entry[2]):
        if name in seen:
            problems.append("releases[%d]: release '%s' is listed twice (also releases[%d]); release names are unique directory "
                            "names, check how the list was built" % (index, name, seen[name]))
        else:
            seen[name] = index
    return [name for _mtime_value, name, _index in entries]


def _keep(keep, problems):
    """``keep`` as an int >= 2, or None after recording a problem."""
    hint = 'write a whole number >= %d (the live release and a rollback target), e.g. 5' % MIN_KEEP
    number = keep
    if isinstance(keep, str):
        if not INTEGER_RE.fullmatch(keep.strip()):
            problems.append('deploy_keep %r is not a whole number; %s' % (str(keep), hint))
            return None
        number = int(keep.strip())
    if isinstance(number, bool) or not isinstance(number, int):
        problems.append('deploy_keep is %s, not a whole number; %s' % (describe(keep), hint))
        return None
    if number < MIN_KEEP:
        problems.append("deploy_keep '%s' is too small; %s" % (keep, hint))
        return None
    return number


def _bad(bad, problems):
    """The set of names marked bad (unknown names included; they are simply never matched)."""
    if bad is None:
        return set()
    if not is_list(bad):
        hint = "; write it as a list: ['%s']" % bad if isinstance(bad, str) else ''
        problems.append('deploy_bad_releases must be a list of release names, got %s%s' % (describe(bad), hint))
        return set()
    names = set()
    for index, entry in enumerate(bad):
        if not isinstance(entry, str):
            problems.append('deploy_bad_releases[%d] is %s, not a release name' % (index, describe(entry)))
        else:
            names.add(entry.strip())
    return names


def _known(ordered):
    shown = list(reversed(ordered))[:10]
    return ', '.join(shown) + (', ...' if len(ordered) > len(shown) else '') if ordered else 'none'


def deploy_releases(releases, live=None, keep=5, bad=(), rollback_to=None):
    """Releases oldest first, rollback target and releases to prune (see DOCUMENTATION)."""
    problems = []
    ordered = _ordered(releases, problems)
    releases_ok = not problems
    keep_count = _keep(keep, problems)
    bad_names = _bad(bad, problems)

    if live is not None:
        if not _is_name(live):
            what = repr(str(live)) if isinstance(live, str) else describe(live)
            problems.append('the live release %s is not a release name; pass the directory name current points at (%s), '
                            'or null when nothing is live' % (what, NAME_HINT))
        elif releases_ok and live not in ordered:
            problems.append("the live release '%s' is not among the releases (%s); current points outside releases/ "
                            "or the release list is stale" % (live, _known(ordered)))
        else:
            live = str(live)

    if isinstance(rollback_to, str) and not rollback_to.strip():
        rollback_to = None
    if rollback_to is not None:
        if not _is_name(rollback_to):
            what = repr(str(rollback_to)) if isinstance(rollback_to, str) else describe(rollback_to)
            problems.append('deploy_rollback_to %s is not a release name; a release name is %s' % (what, NAME_HINT))
        elif releases_ok and rollback_to not in ordered:
            problems.append("deploy_rollback_to: release '%s' does not exist (releases, newest first: %s); it may have been pruned"
                            % (rollback_to, _known(ordered)))
        elif rollback_to in bad_names:
            problems.append("deploy_rollback_to: release '%s' is marked bad; rollback never picks it (unmark it first)" % rollback_to)
        elif live is not None and rollback_to == live:
            problems.append("deploy_rollback_to: release '%s' is the live release already; pick another release, or leave "
                            "deploy_rollback_to empty for the newest good release before it" % rollback_to)
        else:
            rollback_to = str(rollback_to)

    if problems:
        raise AnsibleFilterError('\n'.join(problems))

    previous = None
    if live is not None:
        for name in reversed(ordered[:ordered.index(live)]):
            if name not in bad_names:
                previous = name
                break

    refusal = None
    rollback_target = rollback_to if rollback_to is not None else previous
    if rollback_target is None:
        if live is None:
            refusal = 'nothing is live (current points at no release); set deploy_rollback_to to pick a release'
        else:
            refusal = ("no release before '%s' that is not marked bad; set deploy_rollback_to to pick one, or unmark one"
                       % live)

    protected = set(name for name in (live, previous, rollback_target) if name is not None)
    excess = len(ordered) - keep_count
    delete = []
    for name in ordered:
        if excess <= 0:
            break
        if name not in protected:
            delete.append(name)
            excess -= 1

    return {
        'ordered': ordered,
        'live': live,
        'previous': previous,
        'rollback_target': rollback_target,
        'can_rollback': rollback_target is not None,
        'refusal': refusal,
        'delete': delete,
        'keep': [name for name in ordered if name not in delete],
    }


class FilterModule(object):
    """dealerscope.ops.deploy_releases"""

    def filters(self):
        return {'deploy_releases': deploy_releases}
