# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.dealerscope.ops.plugins.modules import release_info
from .utils import module_runner


@pytest.fixture
def run(monkeypatch):
    return module_runner(monkeypatch, release_info.main, warnings=False)


def layout(base, releases, current=None, colours=None, bad=None):
    for name in releases:
        (base / 'releases' / name).mkdir(parents=True)
    for name, marker in (bad or {}).items():
        (base / 'releases' / name / release_info.BAD_MARKER).write_text(marker)
    for index, name in enumerate(releases):
        os.utime(str(base / 'releases' / name), (1000 + index, 1000 + index))
    if current:
        os.symlink('releases/' + current, str(base / 'current'))
    (base / 'colours').mkdir(exist_ok=True)
    for colour, name in (colours or {}).items():
        os.symlink('../releases/' + name, str(base / 'colours' / colour))


def test_reads_releases_links_and_bad_marks(run, tmp_path):
    layout(tmp_path, ['v1', 'v2', 'v3'], current='v2', colours={'blue': 'v1', 'green': 'v2'},
           bad={'v3': json.dumps({'reason': 'health gate failed', 'at': '2026-11-27T03:00:00Z'})})
    # mtime orders, not the name
    os.utime(str(tmp_path / 'releases' / 'v1'), (5000, 5000))
    failed, result = run(base_dir=str(tmp_path))
    assert not failed and result['changed'] is False
    assert [item['name'] for item in result['releases']] == ['v2', 'v3', 'v1']
    assert result['live'] == 'v2'
    assert result['colours'] == {'blue': 'v1', 'green': 'v2'}
    assert result['bad'] == ['v3']
    bad = [item for item in result['releases'] if item['bad']][0]
    assert bad['bad_reason'] == 'health gate failed' and bad['bad_at'] == '2026-11-27T03:00:00Z'
    assert result['problems'] == []


def test_missing_base_dir_is_empty(run, tmp_path):
    failed, result = run(base_dir=str(tmp_path / 'nothing'))
    assert not failed
    assert result['releases'] == [] and result['live'] is None and result['colours'] == {'blue': None, 'green': None}


def test_unusable_links_are_problems_not_releases(run, tmp_path):
    layout(tmp_path, ['v1'])
    os.symlink('/etc', str(tmp_path / 'current'))
    (tmp_path / 'colours').mkdir(exist_ok=True)
    os.symlink('../releases/gone', str(tmp_path / 'colours' / 'blue'))
    (tmp_path / 'colours' / 'green').write_text('not a link')
    failed, result = run(base_dir=str(tmp_path))
    assert not failed
    assert result['live'] is None and result['colours'] == {'blue': None, 'green': None}
    assert len(result['problems']) == 3
    assert any('outside' in problem for problem in result['problems'])
    assert any('missing release gone' in problem for problem in result['problems'])
    assert any('not a symlink' in problem for problem in result['problems'])


def test_unreadable_marker_still_marks_bad(run, tmp_path):
    layout(tmp_path, ['v1', 'v2'], current='v1', bad={'v2': '{not json'})
    failed, result = run(base_dir=str(tmp_path))
    assert not failed and result['bad'] == ['v2']
    assert 'unreadable marker' in result['releases'][1]['bad_reason']


def test_files_and_links_in_releases_are_not_releases(run, tmp_path):
    layout(tmp_path, ['v1'])
    (tmp_path / 'releases' / 'notes.txt').write_text('x')
    os.symlink('v1', str(tmp_path / 'releases' / 'alias'))
    failed, result = run(base_dir=str(tmp_path), colours=['blue'])
    assert not failed and [item['name'] for item in result['releases']] == ['v1']
    assert result['colours'] == {'blue': None}


def test_installation_time_orders_releases_not_later_writes(run, tmp_path):
    layout(tmp_path, ['1.0.0', '1.1.0', '2.0.0'])
    # 1.0.0 was installed by hand long ago (its file is old); writing VERSION and a bad mark into it later changes
    # the directory's mtime, not its place
    (tmp_path / 'releases' / '1.0.0' / 'app.py').write_text('x')
    os.utime(str(tmp_path / 'releases' / '1.0.0' / 'app.py'), (10, 10))
    (tmp_path / 'releases' / '1.0.0' / 'VERSION').write_text('1.0.0\n')
    (tmp_path / 'releases' / '1.0.0' / release_info.BAD_MARKER).write_text('{}')
    # the deploy role's marker wins over any file time
    for name, installed in (('1.1.0', 2000), ('2.0.0', 1500)):
        (tmp_path / 'releases' / name / release_info.RELEASE_MARKER).write_text(json.dumps({'installed_at': installed}))
    failed, result = run(base_dir=str(tmp_path))
    assert not failed
    assert [(item['name'], item['mtime']) for item in result['releases']] == [('1.0.0', 10), ('2.0.0', 1500), ('1.1.0', 2000)]


def test_an_unreadable_release_marker_falls_back_to_the_files(run, tmp_path):
    layout(tmp_path, ['a'])
    (tmp_path / 'releases' / 'a' / release_info.RELEASE_MARKER).write_text('{"installed_at": "soon"}')
    (tmp_path / 'releases' / 'a' / 'app.py').write_text('x')
    os.utime(str(tmp_path / 'releases' / 'a' / 'app.py'), (77, 77))
    failed, result = run(base_dir=str(tmp_path))
    assert not failed and result['releases'][0]['mtime'] == 77
