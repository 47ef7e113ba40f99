# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The PostgreSQL clusters of a Debian host: same rule as the patching role's database probe (db_probe.sh)."""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess

import pytest

from ansible_collections.dealerscope.ops.plugins.filter.patch_db_checks import parse_probe
from ansible_collections.dealerscope.ops.plugins.module_utils.pg_clusters import (
    auto_cluster_units,
    cluster_unit,
    discover_clusters,
    is_wrapper_unit,
    parse_start_conf,
)

PROBE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'patching' / 'files' / 'db_probe.sh'


def _cluster(etc, version, name, start_conf=None, conf=True):
    directory = etc / version / name
    directory.mkdir(parents=True)
    if conf:
        (directory / 'postgresql.conf').write_text('# postgresql.conf\n')
    if start_conf is not None:
        (directory / 'start.conf').write_text(start_conf)


@pytest.fixture
def etc(tmp_path):
    """A fake /etc/postgresql with every start.conf variant the probe handles."""
    root = tmp_path / 'postgresql'
    _cluster(root, '15', 'main', '# Automatic startup configuration\n#   auto: automatically start the cluster\nauto\n')
    _cluster(root, '15', 'nostart')  # no start.conf: auto
    _cluster(root, '16', 'reports', 'manual\n')
    _cluster(root, '16', 'old', '  disabled # not started\r\n')
    _cluster(root, '16', 'spaced', '\n  auto  \n\n')
    _cluster(root, '16', 'empty', '# only a comment\n')  # empty after comments: auto
    _cluster(root, '17', 'notacluster', 'auto\n', conf=False)  # no postgresql.conf: not a cluster
    (root / 'README').write_text('not a version directory\n')
    return root


def test_discover_clusters_and_their_start_mode(etc):
    clusters = discover_clusters(str(etc))
    assert [(c['version'], c['cluster'], c['start'], c['auto'], c['unit']) for c in clusters] == [
        ('15', 'main', 'auto', True, 'postgresql@15-main.service'),
        ('15', 'nostart', 'auto', True, 'postgresql@15-nostart.service'),
        ('16', 'empty', 'auto', True, 'postgresql@16-empty.service'),
        ('16', 'old', 'disabled', False, 'postgresql@16-old.service'),
        ('16', 'reports', 'manual', False, 'postgresql@16-reports.service'),
        ('16', 'spaced', 'auto', True, 'postgresql@16-spaced.service'),
    ]
    assert clusters[0]['conf_dir'] == str(etc / '15' / 'main')
    assert auto_cluster_units(clusters) == ['postgresql@15-main.service', 'postgresql@15-nostart.service',
                                            'postgresql@16-empty.service', 'postgresql@16-spaced.service']


def test_no_tree_no_clusters(tmp_path):
    assert discover_clusters(str(tmp_path / 'missing')) == []
    assert auto_cluster_units([]) == []


@pytest.mark.parametrize('text, start', [
    (None, 'auto'), ('', 'auto'), ('auto\n', 'auto'), ('manual', 'manual'), ('# c\n disabled \n', 'disabled'),
    ('auto\nmanual\n', 'automanual'),  # the probe concatenates the lines: neither auto nor anything valid
    ('auto # comment\r\n', 'auto'),
])
def test_parse_start_conf(text, start):
    assert parse_start_conf(text) == start


def test_units():
    assert cluster_unit('15', 'main') == 'postgresql@15-main.service'
    assert is_wrapper_unit('postgresql.service') and is_wrapper_unit('postgresql')
    assert not is_wrapper_unit('postgresql@15-main.service')


def test_same_clusters_as_the_patching_probe(etc, tmp_path):
    """db_probe.sh (shell, patching) and discover_clusters (Python, host_health) find the same clusters, start modes and units."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    systemctl = bin_dir / 'systemctl'
    systemctl.write_text('#!/bin/sh\necho inactive\n')
    systemctl.chmod(systemctl.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH='%s:%s' % (bin_dir, os.environ['PATH']), DS_PATCHING_PG_ETC=str(etc))
    proc = subprocess.run(['sh', str(PROBE)], capture_output=True, text=True, env=env, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    probed = [(row['version'], row['cluster'], row['start'], row['unit']) for row in parse_probe(proc.stdout)]
    assert len(probed) == 6
    assert sorted(probed) == sorted((c['version'], c['cluster'], c['start'], c['unit']) for c in discover_clusters(str(etc)))
