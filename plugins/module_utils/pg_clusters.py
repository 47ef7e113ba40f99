# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The PostgreSQL clusters of a Debian host (postgresql-common layout), found the way the patching role's probe finds them.

On Debian, ``postgresql.service`` is a wrapper that stays active whether or not any cluster runs; each cluster
``/etc/postgresql/<version>/<cluster>/`` (a directory holding ``postgresql.conf``) has its own unit
``postgresql@<version>-<cluster>.service``, and its ``start.conf`` says whether it starts automatically.
Same rule as ``roles/patching/files/db_probe.sh`` (shell, it runs on the host without Python) and the
``patch_db_checks`` filter: the start.conf's ``#`` comments and all whitespace removed; a missing or empty
start.conf means ``auto``. No AnsibleModule import here.
"""

from __future__ import annotations

import glob
import os
import re

DEBIAN_ETC = '/etc/postgresql'
WRAPPER_UNIT = 'postgresql.service'
AUTO = 'auto'

_COMMENT = re.compile(r'#.*')
_WHITESPACE = re.compile(r'[ \t\r\n]')


def cluster_unit(version, cluster):
    """The systemd unit of one cluster."""
    return 'postgresql@%s-%s.service' % (version, cluster)


def is_wrapper_unit(name):
    """Whether an expected unit name means Debian's wrapper ``postgresql.service`` (``postgresql`` is the same service)."""
    return name in (WRAPPER_UNIT, 'postgresql')


def parse_start_conf(text):
    """The start mode of a start.conf's text (``auto``, ``manual``, ``disabled``); None (no file) or empty is ``auto``."""
    lines = (_COMMENT.sub('', line) for line in (text or '').split('\n'))
    return _WHITESPACE.sub('', ''.join(lines)) or AUTO


def read_text(path):
    """A file's text (UTF-8, undecodable bytes replaced), or None when it cannot be read."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', errors='replace')
    except (IOError, OSError):
        return None


def discover_clusters(etc_dir=DEBIAN_ETC):
    """The clusters under ``etc_dir`` as dicts (version, cluster, start, auto, unit, conf_dir), sorted like the shell glob."""
    clusters = []
    for conf in sorted(glob.glob(os.path.join(glob.escape(etc_dir), '*', '*', 'postgresql.conf'))):
        if not os.path.isfile(conf):
            continue
        directory = os.path.dirname(conf)
        version = os.path.basename(os.path.dirname(directory))
        name = os.path.basename(directory)
        start = parse_start_conf(read_text(os.path.join(directory, 'start.conf')))
        clusters.append({'version': version, 'cluster': name, 'start': start, 'auto': start == AUTO,
                         'unit': cluster_unit(version, name), 'conf_dir': directory})
    return clusters


def auto_cluster_units(clusters):
    """The units of the clusters that start automatically (the ones that must be active)."""
    return [cluster['unit'] for cluster in clusters if cluster['auto']]
