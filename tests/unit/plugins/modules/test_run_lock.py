# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.dealerscope.ops.plugins.modules import run_lock
from .utils import module_runner


@pytest.fixture
def run(monkeypatch):
    return module_runner(monkeypatch, run_lock.main)


def holder(path):
    return json.loads((path / 'holder.json').read_text())


def test_acquire_then_another_run_is_refused_then_release(run, tmp_path):
    lock = tmp_path / 'run' / 'deploy.lock'
    failed, result = run(path=str(lock), token='run-1', holder='deploy 2.0.0 by alice')
    assert not failed and result['changed'] and holder(lock)['token'] == 'run-1'
    failed, result = run(path=str(lock), token='run-1', holder='deploy 2.0.0 by alice')
    assert not failed and not result['changed']  # the same run again: already its lock
    failed, result = run(path=str(lock), token='run-2', holder='rollback by bob')
    assert failed and 'held by deploy 2.0.0 by alice' in result['msg'] and 'wait for it to finish' in result['msg']
    failed, result = run(path=str(lock), token='run-2', state='released')
    assert failed and 'not by this run' in result['msg'] and lock.is_dir()
    failed, result = run(path=str(lock), token='run-1', state='released')
    assert not failed and result['changed'] and not lock.exists()
    failed, result = run(path=str(lock), token='run-1', state='released')
    assert not failed and not result['changed']


def test_a_stale_lock_is_taken_over_with_a_warning(run, tmp_path):
    lock = tmp_path / 'deploy.lock'
    run(path=str(lock), token='dead-run', holder='deploy 1.0.0')
    record = holder(lock)
    record['since_epoch'] -= 7200
    (lock / 'holder.json').write_text(json.dumps(record))
    failed, result = run(path=str(lock), token='run-2', holder='deploy 2.0.0', stale_after_s=3600)
    assert not failed and result['changed'] and result['taken_over']['token'] == 'dead-run'
    assert holder(lock)['token'] == 'run-2' and 'died without releasing it' in result['_warnings'][0]


def test_an_unreadable_holder_is_aged_by_the_directory(run, tmp_path):
    lock = tmp_path / 'deploy.lock'
    lock.mkdir()
    failed, result = run(path=str(lock), token='run-2')
    assert failed and 'unknown holder' in result['msg']
    os.utime(str(lock), (1, 1))
    failed, result = run(path=str(lock), token='run-2')
    assert not failed and result['changed'] and holder(lock)['token'] == 'run-2'


def test_check_mode_predicts_and_creates_nothing(run, tmp_path):
    lock = tmp_path / 'deploy.lock'
    failed, result = run(path=str(lock), token='run-1', _ansible_check_mode=True)
    assert not failed and result['changed'] and not lock.exists()
    run(path=str(lock), token='run-1')
    failed, result = run(path=str(lock), token='run-2', _ansible_check_mode=True)
    assert failed and 'held by' in result['msg']
    failed, result = run(path=str(lock), token='run-1', state='released', _ansible_check_mode=True)
    assert not failed and result['changed'] and lock.is_dir()


@pytest.mark.parametrize('args,needle', [
    ({'stale_after_s': 10}, 'stale_after_s must be at least 60'),
    ({'token': '  '}, 'token must not be empty'),
])
def test_bad_input_is_refused(run, tmp_path, args, needle):
    params = dict(path=str(tmp_path / 'l'), token='t')
    params.update(args)
    failed, result = run(**params)
    assert failed and needle in result['msg'] and not (tmp_path / 'l').exists()
