# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One log scan since the previous run (journal, access logs, fail2ban) with its cursor on the host: shared by the
modules log_scan and host_health (whose O(logs) runs it in the same module execution as the health checks)."""

from __future__ import annotations

import copy
import time

from ansible_collections.dealerscope.ops.plugins.module_utils.log_scan import (
    AccessLogCounter,
    JournalScanner,
    PiiScanner,
    accounts_check,
    app_5xx_check,
    dump_state,
    empty_state,
    epoch_to_iso,
    journal_command,
    journal_failed_checks,
    load_state,
    parse_journal_line,
    pii_check,
    read_accounts,
    scan_files,
    ssh_check,
    stream_command,
    sudo_check,
    usec_to_iso,
    write_state,
)
from ansible_collections.dealerscope.ops.plugins.module_utils.fail2ban import bans_check, next_cursor, read_fail2ban
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import summarize


def read_journal(module, journalctl, cursor, since, max_entries):
    """Run journalctl after ``cursor`` (again since ``since`` when the cursor is refused).

    Return ``(scanner, error, used_since)``; ``used_since`` is None when the cursor was used.
    """
    attempts = [(cursor, None), (None, since)] if cursor else [(None, since)]
    for attempt_cursor, attempt_since in attempts:
        scanner = JournalScanner(pii=PiiScanner())

        def feed(line, scanner=scanner):
            entry = parse_journal_line(line)
            if entry is not None:
                scanner.feed(entry)

        try:
            rc, err, truncated = stream_command(journal_command(journalctl, cursor=attempt_cursor, since=attempt_since), feed, max_entries)
        except OSError as exc:
            return None, 'cannot run %s: %s' % (journalctl, exc), None
        scanner.truncated = truncated
        if rc in (0, None) or scanner.entries:
            return scanner, None, attempt_since
        err_lines = [text.strip() for text in err.splitlines() if text.strip()]
        reason = err_lines[-1] if err_lines else 'no error message'
        if attempt_cursor:
            module.warn('journalctl refused the saved cursor (%s); reading since %s instead' % (reason, epoch_to_iso(since)))
            continue
        return None, 'journalctl failed (rc=%s): %s' % (rc, reason), None
    return None, 'journalctl failed', None  # not reached


ARGUMENT_SPEC = dict(
    state_file=dict(type='path', default='/var/lib/dealerscope-ops/log_scan.json'),
    first_run_lookback_hours=dict(type='int', default=24),
    max_journal_entries=dict(type='int', default=200000),
    access_logs=dict(type='list', elements='path', default=['/var/log/dealerscope/access.log']),
    pii_paths=dict(type='list', elements='path', default=[]),
    ssh_failures_warn=dict(type='int', default=10),
    ssh_failures_crit=dict(type='int', default=100),
    error_rate_percent=dict(type='float', default=0.1),
    min_requests=dict(type='int', default=20),
    scan_journal=dict(type='bool', default=True),
    fail2ban=dict(type='str', default='auto', choices=['auto', 'required', 'disabled']),
)


def validate(params):
    """A message naming the bad option, or None."""
    if params['first_run_lookback_hours'] < 0 or params['max_journal_entries'] < 1:
        return 'first_run_lookback_hours must be >= 0 and max_journal_entries >= 1'
    return None


def scan(module, params):
    """Run the scan with ``params`` (ARGUMENT_SPEC's options): its result (changed, checks, summary, cursor, counts),
    with ``error`` set when a bad option or an unwritable cursor file stops it (the caller fails with it)."""
    problem = validate(params)
    if problem:
        return {'changed': False, 'checks': [], 'summary': summarize([]), 'cursor': {}, 'counts': {}, 'error': problem}
    started = time.time()
    first_run_since = started - params['first_run_lookback_hours'] * 3600

    state_file = params['state_file']
    state, problem = load_state(state_file)
    if problem:
        module.warn(problem)
    first_run = state is None
    old_dump = dump_state(state) if state is not None else None
    state = state if state is not None else empty_state()
    new_state = copy.deepcopy(state)

    pii = PiiScanner()
    checks = []
    counts = {}
    cursor_info = {'state_file': state_file, 'first_run': first_run, 'written': False}

    if params['scan_journal']:
        saved = state.get('journal') or {}
        journalctl = module.get_bin_path('journalctl', opt_dirs=['/usr/bin', '/bin'])
        if not journalctl:
            scanner, error, used_since = None, 'journalctl not found', None
        else:
            since = saved.get('since') or first_run_since
            scanner, error, used_since = read_journal(module, journalctl, saved.get('cursor'), since, params['max_journal_entries'])
        if scanner is None:
            module.warn(error)
            checks.extend(journal_failed_checks(error))
            cursor_info['journal'] = {'entries': 0, 'error': error}
        else:
            pii = scanner.pii
            if scanner.last_cursor:
                new_state['journal'] = {'cursor': scanner.last_cursor, 'since': None}
            elif not saved.get('cursor'):
                new_state['journal'] = {'cursor': None, 'since': int(started)}
            if scanner.truncated:
                module.warn('max_journal_entries (%d) reached: the rest of the journal is read by the next run' % params['max_journal_entries'])
            # No cursor and no "since": there is no previous run, so what the look-back shows is the baseline.
            journal_first_run = not saved.get('cursor') and not saved.get('since')
            accounts, accounts_error = read_accounts()
            if accounts_error:
                module.warn(accounts_error)
            elif scanner.truncated and state.get('accounts') is not None:
                accounts = None  # the rest of the journal may show them being created: compare next run
            else:
                new_state['accounts'] = accounts
            failures = ssh_check(scanner, params['ssh_failures_warn'], params['ssh_failures_crit'])
            checks.extend([failures, sudo_check(scanner),
                           accounts_check(scanner, first_run=journal_first_run, accounts=accounts, baseline=state.get('accounts'),
                                          recorded=not module.check_mode, lookback_hours=params['first_run_lookback_hours'])])
            cursor_info['journal'] = {
                'entries': scanner.entries,
                'from': usec_to_iso(scanner.first_usec) if scanner.first_usec else None,
                'to': usec_to_iso(scanner.last_usec) if scanner.last_usec else None,
                'after_cursor': saved.get('cursor') if used_since is None else None,
                'since': epoch_to_iso(used_since),
                'cursor': new_state['journal'].get('cursor'),
                'truncated': scanner.truncated,
            }
            counts.update(
                journal_entries=scanner.entries,
                ssh_failures=failures['value'],
                ssh_failure_lines=scanner.ssh_lines,
                sudo_commands=scanner.sudo_commands,
                sudo_failures=scanner.sudo_failures,
                new_users=len(scanner.new_users),
                new_groups=len(scanner.standalone_groups()),
            )

    counter = AccessLogCounter()
    access_logs = params['access_logs']
    pii_paths = params['pii_paths'] or access_logs
    new_files, infos = scan_files(access_logs, pii_paths, state.get('files') or {}, first_run_since, counter, pii)
    new_state['files'].update(new_files)
    checks.append(app_5xx_check(counter, params['error_rate_percent'], params['min_requests'], infos, access_logs))
    checks.append(pii_check(pii))
    cursor_info['files'] = infos
    counts.update(
        requests=counter.requests,
        errors_5xx=counter.errors_5xx,
        malformed_lines=counter.malformed,
        pii_lines=pii.lines,
        pii_emails=pii.emails,
        pii_cards=pii.cards,
        bytes_read=sum(info['bytes'] for info in infos.values()),
    )

    if params['fail2ban'] != 'disabled':
        client = module.get_bin_path('fail2ban-client', opt_dirs=['/usr/bin', '/usr/sbin'])
        found = None
        if client:
            saved = state.get('fail2ban') or {}
            found = read_fail2ban(module.run_command, client, saved.get('since') or first_run_since, saved.get('seen') or ())
            if found['running'] and found['bans'] is not None:
                new_state['fail2ban'] = next_cursor(saved or None, found['bans']) or {'since': int(started), 'seen': []}
            counts.update(fail2ban_banned_now=sum(status.get('banned_now', 0) for status in found['jails'].values()),
                          fail2ban_bans=len(found['bans']) if found['bans'] is not None else None)
        checks.append(bans_check(params['fail2ban'], found, installed=bool(client)))

    # changed is the same in check mode as in a real run: whether the cursor file's content changes.
    new_dump = dump_state(new_state)
    changed = new_dump != old_dump
    if changed and not module.check_mode:
        try:
            write_state(state_file, new_state)
        except (IOError, OSError) as exc:
            return {'changed': False, 'checks': checks, 'summary': summarize(checks), 'cursor': cursor_info, 'counts': counts,
                    'error': 'cannot write the cursor file %s: %s' % (state_file, exc)}
        cursor_info['written'] = True

    return {'changed': changed, 'checks': checks, 'summary': summarize(checks), 'cursor': cursor_info, 'counts': counts, 'error': None}
