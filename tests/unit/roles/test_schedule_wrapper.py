# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/schedule/files/dealerscope-runbook: the pure decisions of the run wrapper (the runs themselves are proven by
scenario tls, tests/test_schedule.py)."""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
LOADER = importlib.machinery.SourceFileLoader("dealerscope_runbook", str(ROOT / "roles" / "schedule" / "files" / "dealerscope-runbook"))
SPEC = importlib.util.spec_from_loader("dealerscope_runbook", LOADER)
wrapper = importlib.util.module_from_spec(SPEC)
LOADER.exec_module(wrapper)

STATS = {"event": "playbook_on_stats", "event_data": {"artifact_data": {"dealerscope_tls": {"status": "warning", "report_url": "/r"}}}}


@pytest.mark.parametrize("today,expected", [
    ("2026-12-23", None), ("2026-12-24", ["2026-12-24", "2026-12-26"]), ("2026-12-26", ["2026-12-24", "2026-12-26"]),
    ("2026-12-27", None), ("2027-01-01", ["2027-01-01", "2027-01-01"]),
])
def test_blackout_ranges_include_both_ends(today, expected):
    ranges = [["2026-12-24", "2026-12-26"], ["2027-01-01", "2027-01-01"]]
    assert wrapper.in_blackout(ranges, datetime.date.fromisoformat(today)) == expected


def test_the_runbooks_stats_are_found_in_the_stats_event_only():
    events = [{"event": "runner_on_ok", "event_data": {"artifact_data": {"dealerscope_x": {"status": "ok"}}}}, STATS]
    assert wrapper.runbook_stats(events) == {"status": "warning", "report_url": "/r"}
    assert wrapper.runbook_stats([{"event": "playbook_on_stats", "event_data": {"artifact_data": {"other": {"status": "ok"}}}}]) is None
    assert wrapper.runbook_stats([{"event": "playbook_on_stats", "event_data": {}}]) is None
    assert wrapper.runbook_stats([]) is None


@pytest.mark.parametrize("status,rc,stats,completed,reason", [
    ("successful", 0, {"status": "ok"}, True, "completed: ok"),
    ("failed", 2, {"status": "critical"}, True, "completed: critical"),  # the runbook reported and alerted its findings
    ("timeout", 254, {"status": "ok"}, False, "stopped after its time limit of 600 s"),
    ("canceled", 254, None, False, "canceled"),
    ("failed", 4, None, False, "ended (failed, rc 4) without reaching its report"),
    ("successful", 0, None, False, "ended (successful, rc 0) without reaching its report"),
])
def test_a_run_is_complete_only_when_it_reached_its_report_in_time(status, rc, stats, completed, reason):
    assert wrapper.judge(status, rc, stats, 600) == (completed, reason)


def test_outside_systemd_no_process_is_ever_ended(monkeypatch):
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    assert wrapper.unit_processes() == set()
    assert wrapper.end_leftovers(grace_s=0) == 0


def test_a_blackout_date_skips_without_starting_ansible_runner(tmp_path, capsys):
    config = {"name": "tls", "playbook": "dealerscope.ops.tls", "private_data_dir": str(tmp_path), "inventory": "/x",
              "collections_path": "/x", "timeout_s": 600, "blackout": [["2026-12-24", "2026-12-26"]]}
    (tmp_path / "tls.json").write_text(json.dumps(config))
    assert wrapper.main(["dealerscope-runbook", str(tmp_path / "tls.json"), "--today", "2026-12-25"]) == 0
    last = json.loads((tmp_path / "last.json").read_text())
    assert last["status"] == "skipped" and last["reason"] == "blackout 2026-12-24..2026-12-26" and last["completed"] is None
    assert "skipped" in capsys.readouterr().out


def test_usage_errors_exit_64(capsys):
    assert wrapper.main(["dealerscope-runbook"]) == 64
    assert wrapper.main(["dealerscope-runbook", "a.json", "--when", "x"]) == 64
    assert "usage" in capsys.readouterr().err
