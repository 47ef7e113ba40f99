# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.dealerscope.ops.plugins.module_utils import updates_cache


@pytest.fixture
def apt_tree(tmp_path):
    """A miniature of apt's inputs: dpkg's status, two package lists, a sources.list.d and the lists' lock and partial dir."""
    (tmp_path / 'status').write_text('Package: libc6\nStatus: install ok installed\n')
    lists = tmp_path / 'lists'
    (lists / 'partial').mkdir(parents=True)
    (lists / 'deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages').write_text('Package: libc6\nVersion: 2.36-9\n')
    (lists / 'security.debian.org_dists_bookworm-security_main_binary-amd64_Packages').write_text('Package: libssl3\n')
    (lists / 'lock').write_text('')
    (tmp_path / 'sources.list.d').mkdir()
    patterns = (str(tmp_path / 'status'), str(lists / '*'), str(tmp_path / 'sources.list.d' / '*'), str(tmp_path / 'preferences'))
    return tmp_path, patterns


def touch_later(path):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))


def test_fingerprint_is_stable_while_nothing_changes(apt_tree):
    _root, patterns = apt_tree
    assert updates_cache.fingerprint(patterns) == updates_cache.fingerprint(patterns)


@pytest.mark.parametrize('change', ['apt-get update rewrote a list', 'dpkg installed a package', 'a list appeared',
                                    'a source was added', 'a pin was added', 'a list was removed'])
def test_fingerprint_changes_with_every_input_of_the_simulation(apt_tree, change):
    root, patterns = apt_tree
    before = updates_cache.fingerprint(patterns)
    lists = root / 'lists'
    if change == 'apt-get update rewrote a list':  # apt writes a new file and renames it: new inode, same size possible
        new = lists / 'new'
        new.write_text('Package: libc6\nVersion: 2.36-9\n')
        os.rename(str(new), str(lists / 'deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages'))
    elif change == 'dpkg installed a package':
        touch_later(str(root / 'status'))
    elif change == 'a list appeared':
        (lists / 'deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages').write_text('x')
    elif change == 'a source was added':
        (root / 'sources.list.d' / 'pgdg.list').write_text('deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main\n')
    elif change == 'a pin was added':
        (root / 'preferences').write_text('Package: nginx\nPin: version 1.22*\nPin-Priority: 1001\n')
    else:
        os.unlink(str(lists / 'security.debian.org_dists_bookworm-security_main_binary-amd64_Packages'))
    assert updates_cache.fingerprint(patterns) != before, change


def test_fingerprint_ignores_the_lock_and_directories(apt_tree):
    root, patterns = apt_tree
    before = updates_cache.fingerprint(patterns)
    touch_later(str(root / 'lists' / 'lock'))
    (root / 'lists' / 'partial' / 'download.tmp').write_text('half a file')
    assert updates_cache.fingerprint(patterns) == before


def test_store_then_load_round_trip_and_mode(tmp_path):
    path = str(tmp_path / 'made' / 'updates.json')
    value = {'supported': True, 'total': 2, 'security': ['libssl3'], 'other_count': 1, 'packages': [], 'error': None}
    updates_cache.store(path, 'k1', value, 1000.0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert updates_cache.load(path, 'k1', 1000.0 + 3600, 86400) == (value, 1000.0)
    assert os.listdir(str(tmp_path / 'made')) == ['updates.json']  # no temporary file left


@pytest.mark.parametrize('entry, now, max_age, reason', [
    (None, 2000.0, 86400, 'no cache yet'),
    ('{not json', 2000.0, 86400, 'unreadable cache'),
    ({'version': 1, 'key': 'other', 'computed_at': 1000.0, 'value': {}}, 2000.0, 86400, 'apt state changed'),
    ({'version': 0, 'key': 'k1', 'computed_at': 1000.0, 'value': {}}, 2000.0, 86400, 'apt state changed'),
    ({'version': 1, 'key': 'k1', 'computed_at': 1000.0, 'value': {}}, 1000.0 + 86401, 86400, 'expired'),
    ({'version': 1, 'key': 'k1', 'computed_at': 9000.0, 'value': {}}, 2000.0, 86400, 'expired'),  # from the future: clock set back
    ({'version': 1, 'key': 'k1', 'computed_at': 'yesterday', 'value': {}}, 2000.0, 86400, 'expired'),
    ({'version': 1, 'key': 'k1', 'computed_at': 1000.0, 'value': []}, 2000.0, 86400, 'unreadable cache'),
    ({'version': 1, 'key': 'k1', 'computed_at': 1000.0, 'value': {}}, 2000.0, 0, 'disabled'),
])
def test_load_refuses_what_it_cannot_trust(tmp_path, entry, now, max_age, reason):
    path = tmp_path / 'updates.json'
    if entry is not None:
        path.write_text(entry if isinstance(entry, str) else json.dumps(entry))
    assert updates_cache.load(str(path), 'k1', now, max_age) == (None, reason)


def test_store_leaves_no_temporary_file_when_it_fails(tmp_path, monkeypatch):
    def refuse(_src, _dst):
        raise OSError(30, 'Read-only file system')
    monkeypatch.setattr(updates_cache.os, 'replace', refuse)
    with pytest.raises(OSError):
        updates_cache.store(str(tmp_path / 'updates.json'), 'k1', {}, 1000.0)
    assert os.listdir(str(tmp_path)) == []
