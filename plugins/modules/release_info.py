#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_info
short_description: Read the releases of a blue/green application host in one pass - releases, bad marks, live and colour links
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - "Reads the layout M(dealerscope.ops.deploy)'s role keeps on an application host under O(base_dir):
    C(releases/<name>/) (one directory per release), C(current) (a symlink to the live release),
    C(colours/<colour>) (a symlink per colour to the release that colour's service runs) and, inside a release,
    the marker file C(.dealerscope-bad) (JSON C({reason, at})) that marks it bad so a rollback never picks it."
  - "Releases are ordered by when they were installed: C(installed_at) of the file C(.dealerscope-release) the deploy role
    writes once, when it first installs a release; for a release installed otherwise, the oldest modification time of its
    files (not of the directory, which changes whenever a file inside is added, such as a bad mark)."
  - One module call gathers what the deploy and rollback roles would otherwise ask for in a stat, a find and a readlink
    per colour.
  - A symlink that points outside C(releases/) or at a missing release is reported in RV(problems) (and its release as
    V(null)), never followed further.
  - The module only reads; it never changes anything on the host.
options:
  base_dir:
    description:
      - The application's directory, for example V(/opt/dealerscope). A missing directory is not an error (a host
        that never got a release); everything is then empty.
    type: path
    required: true
  colours:
    description:
      - The colours whose links C(colours/<colour>) are read.
    type: list
    elements: str
    default: [blue, green]
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode runs it exactly as a real run.
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: full
    description: The module never changes anything; C(changed) is always V(false).
seealso:
  - module: dealerscope.ops.lb_pool
"""

EXAMPLES = r"""
- name: Releases of the app host
  dealerscope.ops.release_info:
    base_dir: /opt/dealerscope
  register: releases
# releases.live -> "v2", releases.colours -> {blue: v1, green: v2}, releases.bad -> ["v3"]
"""

RETURN = r"""
releases:
  description: The release directories, oldest first (by installation time, then name).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Directory name.
      type: str
    mtime:
      description: When the release was installed, seconds since the epoch (see the description).
      type: float
    bad:
      description: Whether the release carries the bad marker.
      type: bool
    bad_reason:
      description: Why it was marked bad, or V(null).
      type: str
    bad_at:
      description: When it was marked bad (ISO 8601 UTC), or V(null).
      type: str
  sample: [{name: v1, mtime: 1764236400.0, bad: false, bad_reason: null, bad_at: null}]
bad:
  description: Names of the releases marked bad.
  returned: always
  type: list
  elements: str
live:
  description: The release C(current) points at, or V(null) when there is no usable C(current) link.
  returned: always
  type: str
colours:
  description: Colour to the release its link points at (V(null) when the link is missing or unusable).
  returned: always
  type: dict
  sample: {blue: v1, green: v2}
problems:
  description: Links that exist but are not usable (not a symlink, pointing outside C(releases/), at a missing release).
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

BAD_MARKER = '.dealerscope-bad'
RELEASE_MARKER = '.dealerscope-release'
OWN_FILES = (BAD_MARKER, RELEASE_MARKER, 'VERSION')


def _link_target(base_dir, link, problems):
    """The release name ``link`` points at, or None (recording why in ``problems`` when the link exists)."""
    if not os.path.lexists(link):
        return None
    if not os.path.islink(link):
        problems.append('%s is not a symlink' % link)
        return None
    target = os.readlink(link)
    resolved = os.path.normpath(os.path.join(os.path.dirname(link), target))
    releases = os.path.join(base_dir, 'releases')
    if os.path.dirname(resolved) != releases:
        problems.append('%s points at %s, outside %s' % (link, target, releases))
        return None
    if not os.path.isdir(resolved):
        problems.append('%s points at the missing release %s' % (link, os.path.basename(resolved)))
        return None
    return os.path.basename(resolved)


def _bad_mark(release_dir):
    path = os.path.join(release_dir, BAD_MARKER)
    if not os.path.exists(path):
        return False, None, None
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return True, 'marked bad (unreadable marker %s)' % path, None
    if not isinstance(data, dict):
        return True, 'marked bad', None
    return True, data.get('reason') or 'marked bad', data.get('at')


def _installed_at(release_dir):
    """When the release was installed: the deploy role's marker, else its oldest file, else the directory's mtime."""
    try:
        with open(os.path.join(release_dir, RELEASE_MARKER), encoding='utf-8') as handle:
            return float(json.load(handle)['installed_at'])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    times = []
    for name in os.listdir(release_dir):
        if name in OWN_FILES:
            continue
        try:
            times.append(os.lstat(os.path.join(release_dir, name)).st_mtime)
        except OSError:
            continue
    return min(times) if times else os.stat(release_dir).st_mtime


def read_releases(base_dir, colours):
    """Everything the module returns, from the file system under ``base_dir``."""
    problems = []
    releases = []
    releases_dir = os.path.join(base_dir, 'releases')
    if os.path.isdir(releases_dir):
        for name in os.listdir(releases_dir):
            path = os.path.join(releases_dir, name)
            if os.path.islink(path) or not os.path.isdir(path):
                continue
            bad, reason, marked_at = _bad_mark(path)
            releases.append({'name': name, 'mtime': _installed_at(path), 'bad': bad, 'bad_reason': reason, 'bad_at': marked_at})
    releases.sort(key=lambda item: (item['mtime'], item['name']))
    live = _link_target(base_dir, os.path.join(base_dir, 'current'), problems)
    links = dict((colour, _link_target(base_dir, os.path.join(base_dir, 'colours', colour), problems)) for colour in colours)
    return dict(releases=releases, bad=[item['name'] for item in releases if item['bad']], live=live, colours=links,
                problems=problems)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base_dir=dict(type='path', required=True),
            colours=dict(type='list', elements='str', default=['blue', 'green']),
        ),
        supports_check_mode=True,
    )
    base_dir = os.path.normpath(module.params['base_dir'])
    try:
        result = read_releases(base_dir, module.params['colours'])
    except OSError as exc:
        module.fail_json(msg='cannot read the releases under %s: %s' % (base_dir, exc))
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
