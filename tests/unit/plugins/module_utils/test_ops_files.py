# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops ops_files: private directories and atomic replacement."""

from __future__ import annotations

import os

import pytest

from ansible_collections.dealerscope.ops.plugins.module_utils import ops_files


def test_a_private_dir_is_made_0700_once(tmp_path):
    path = tmp_path / 'state' / 'notify'
    assert ops_files.ensure_private_dir(str(path)) is True
    assert oct(os.stat(path).st_mode & 0o777) == '0o700'
    assert ops_files.ensure_private_dir(str(path)) is False


def test_a_dir_another_run_made_a_moment_earlier_is_used(tmp_path, monkeypatch):
    """Two runs create the state directory at once: the one that loses the race goes on with the other's."""
    path = tmp_path / 'state'
    real = os.makedirs

    def raced(name, mode=0o777, exist_ok=False):
        real(name, mode=0o700)  # the other run
        raise FileExistsError(17, 'File exists', name)

    monkeypatch.setattr(ops_files.os, 'makedirs', raced)
    assert ops_files.ensure_private_dir(str(path)) is False
    assert path.is_dir()


def test_a_file_in_the_way_is_still_an_error(tmp_path):
    path = tmp_path / 'state'
    path.write_text('not a directory')
    with pytest.raises(FileExistsError):
        ops_files.ensure_private_dir(str(path))


def test_replace_atomically_leaves_no_temporary_file(tmp_path):
    target = tmp_path / 'sent.json'
    ops_files.replace_atomically(str(target), '{}\n', mode=0o600)
    assert target.read_text() == '{}\n' and oct(os.stat(target).st_mode & 0o777) == '0o600'
    assert [p.name for p in tmp_path.iterdir()] == ['sent.json']
