#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: log_scan
short_description: Count security events, 5xx errors and PII in the logs written since the previous run
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Reads the logs written since the previous run of the module on the host, from a cursor kept in O(state_file),
    so that nothing is counted twice or missed between two runs of the daily runbook.
    On the first run (no cursor) it looks back O(first_run_lookback_hours).
  - "The systemd journal (entries of C(sshd), C(sshd-session), C(sshd-auth), C(sudo), C(useradd), C(groupadd),
    C(usermod) and C(adduser)) gives the checks C(ssh_auth_failures), C(sudo_use) and C(new_accounts)."
  - "SSH failures are de-duplicated per connection: the lines of one connection (same sshd process id and
    client address) count as many failures as they have C(Failed <method>) lines, or one failure when the
    connection only shows other failure evidence (C(Invalid user), PAM failure, C(maximum authentication
    attempts exceeded), C(Connection closed by authenticating user ... [preauth]))."
  - "JSON access logs (O(access_logs)) give the check C(app_5xx_rate): the share of 5xx responses among the
    requests logged since the cursor. Each file's cursor is its inode and byte offset; after a rotation the
    rotated file (C(<path>.1)) is finished before the new file is read from its start."
  - "The lines of O(pii_paths) and the journal entries read are scanned for email addresses and payment card
    numbers (check C(pii_in_logs)). Only masked samples are ever returned, never a raw address or number."
  - "C(new_accounts) on the first run (no journal cursor and no C(since) in O(state_file)): there is no previous run,
    so the accounts the look-back window shows being created (typically by the host's provisioning) are not judged.
    The names of the local accounts (C(/etc/passwd)) are recorded as the baseline and the check is V(ok), saying
    C(first run: baseline of N accounts recorded). Later runs warn about the accounts the journal shows being created
    since the cursor, and about local accounts that are not in the baseline although the journal did not show them
    being created (C(details.not_in_journal)); the baseline then follows the passwd file."
  - In check mode everything is read and counted but the cursor is not written; C(changed) is what a real run would report.
options:
  state_file:
    description:
      - Path of the cursor file on the host. It is written atomically with mode C(0600); a missing parent
        directory is created with mode C(0700).
    type: path
    default: /var/lib/dealerscope-ops/log_scan.json
  first_run_lookback_hours:
    description:
      - How far back to read when there is no cursor yet (first run, or a log file seen for the first time).
      - For files, JSON lines whose C(ts), C(time), C(timestamp) or C(@timestamp) is older are skipped;
        lines without a timestamp are read.
    type: int
    default: 24
  max_journal_entries:
    description:
      - Upper bound of journal entries read in one run. When it is reached, the cursor stops at the last
        entry read and the rest is read by the next run (C(truncated) is V(true) in RV(cursor.journal)).
    type: int
    default: 200000
  access_logs:
    description:
      - JSON-lines access logs with a C(status) field. Lines that are not JSON objects with a valid HTTP
        status are counted as malformed, never fatal. Missing files are reported in the message.
    type: list
    elements: path
    default: [/var/log/dealerscope/access.log]
  pii_paths:
    description:
      - Log files scanned for PII, each with its own cursor.
      - When empty, the O(access_logs) are scanned.
    type: list
    elements: path
    default: []
  ssh_failures_warn:
    description: Number of SSH authentication failures since the last run from which C(ssh_auth_failures) is a warning.
    type: int
    default: 10
  ssh_failures_crit:
    description: Number of SSH authentication failures since the last run from which C(ssh_auth_failures) is critical.
    type: int
    default: 100
  error_rate_percent:
    description:
      - Error-rate SLO of the readiness document, in percent of requests. C(app_5xx_rate) is critical
        (alert C(high_error_rate)) when the 5xx share exceeds it and at least O(min_requests) requests were logged.
    type: float
    default: 0.1
  min_requests:
    description: Fewest requests since the last run for which the 5xx rate is judged.
    type: int
    default: 20
  scan_journal:
    description:
      - Read the systemd journal. When V(false), the checks C(ssh_auth_failures), C(sudo_use) and
        C(new_accounts) are not returned and the journal cursor is left as it is.
    type: bool
    default: true
  fail2ban:
    description:
      - "Intrusion detection: read fail2ban's jails, the addresses banned now (C(fail2ban-client status <jail>)) and the
        bans since the previous run (fail2ban's database, read-only) into the check C(intrusion_bans)."
      - "V(auto) judges fail2ban where it is installed and reports C(not installed) as V(ok) elsewhere; V(required) makes
        a missing or stopped fail2ban, or one without an active jail, V(critical); V(disabled) leaves the check out
        (not V(off), which YAML would read as a boolean)."
    type: str
    choices: [auto, required, disabled]
    default: auto
attributes:
  check_mode:
    support: full
    description:
      - Reads and counts everything, but does not write the cursor, so the next run reads the same logs again.
      - Reports V(changed) exactly as a real run would (the cursor file's content would change).
  diff_mode:
    support: none
    description: Will not return details on what has changed.
  idempotent:
    support: partial
    description:
      - The module only changes its own cursor file (journal cursor, file offsets, account baseline), and only when
        new log entries were read or the local accounts changed.
      - Running it again reports only what was logged in between (usually the connection of the run itself).
notes:
  - "Bans since the last run are read from fail2ban's database, which keeps a ban C(dbpurgeage) (Debian: 1 day): run the
    module at least that often, or raise C(dbpurgeage), or older bans are not counted. The cursor is the time of the
    newest ban counted (with the bans of that second), kept in O(state_file)."
  - "Journal entries are read with C(journalctl -o json --after-cursor) (or C(--since) on the first run),
    filtered by syslog identifier (C(-t)), which journald serves from its field index."
  - "Card numbers are 13 to 19 digits, optionally grouped by single spaces or dashes, starting with 2 to 6
    (the card networks' major industry identifiers; this keeps epoch timestamps in milliseconds out) and
    Luhn-valid. Digit runs that continue a word, a dotted or dashed token or a decimal number are ignored.
    Email addresses also match with a URL-encoded C(@) (C(%40))."
  - "Masks: C(john.doe@example.com) becomes C(j***@e***.com), a card number C(**** **** **** 1234).
    User and group names taken from the logs are masked the same way when they are emails or card numbers."
  - For journal entries, a PII sample's C(source) is C(journal:<identifier>) and its C(line) the position of
    the entry among the entries read in this run.
seealso:
  - name: journalctl manual page
    description: Cursors, C(--after-cursor) and the JSON output format.
    link: https://www.freedesktop.org/software/systemd/man/latest/journalctl.html
"""

EXAMPLES = r"""
- name: Scan the logs written since the previous daily run
  dealerscope.ops.log_scan:
  register: logs

- name: Application hosts, with a tighter SSH threshold and an extra file scanned for PII
  dealerscope.ops.log_scan:
    access_logs:
      - /var/log/dealerscope/access.log
    pii_paths:
      - /var/log/dealerscope/access.log
      - /var/log/dealerscope/app.log
    ssh_failures_warn: 5
    ssh_failures_crit: 50

- name: Look without moving the cursor
  dealerscope.ops.log_scan:
  check_mode: true
"""

RETURN = r"""
checks:
  description:
    - "Check results (see C(plugins/module_utils/ops_checks.py)): C(ssh_auth_failures), C(sudo_use), C(new_accounts)
      (unless O(scan_journal=false)), C(app_5xx_rate) and C(pii_in_logs)."
    - "C(ssh_auth_failures) details: C(sources) (top 10 client addresses) and C(users) (top 10 user names).
      C(sudo_use) details: C(users), C(targets), C(failures), C(failed_users). C(new_accounts) details: C(users),
      C(groups) (not counting the personal group of a new user), C(group_additions), C(not_in_journal) (local accounts
      new since the baseline that the journal did not show being created) and, on the first run, C(baseline) (the
      number of local accounts recorded).
      C(app_5xx_rate) details: C(requests), C(errors_5xx), C(malformed_lines).
      C(pii_in_logs) details: C(emails), C(cards) and up to three masked C(samples) with their C(source) and C(line)."
    - "C(intrusion_bans) (unless O(fail2ban=disabled)): its value is the number of bans since the last run (V(null) when
      unknown); V(warning) with alert C(security_event) when an address is banned now or was banned since the last run.
      Details: C(installed), C(running), C(jails), C(banned_now) (jail -> addresses), C(bans_since_last_run)
      (jail -> address -> bans) and C(per_jail) (failed and banned counts of C(fail2ban-client status <jail>))."
  returned: always
  type: list
  elements: dict
  sample:
    - name: ssh_auth_failures
      status: warning
      value: 12
      threshold: 10
      unit: ""
      message: "SSH authentication failures since the last run is 12 (warning at >= 10); top sources: 203.0.113.9 (12)"
      alert: security_event
      details:
        sources: {"203.0.113.9": 12}
        users: {"admin": 8, "oracle": 4}
    - name: pii_in_logs
      status: critical
      value: 1
      threshold: 0
      unit: lines
      message: "1 log line(s) contain PII (1 email address(es), 1 card number(s))"
      alert: pii_exposure
      details:
        emails: 1
        cards: 1
        samples:
          - {source: /var/log/dealerscope/access.log, line: 1042, kind: card, masked: "**** **** **** 1111"}
          - {source: /var/log/dealerscope/access.log, line: 1042, kind: email, masked: "j***@e***.com"}
summary:
  description: Counts of checks per status and the worst status.
  returned: always
  type: dict
  sample: {ok: 3, warning: 1, critical: 1, status: critical}
cursor:
  description: What was read in this run.
  returned: always
  type: dict
  contains:
    state_file:
      description: The cursor file.
      type: str
      sample: /var/lib/dealerscope-ops/log_scan.json
    first_run:
      description: Whether there was no usable cursor file.
      type: bool
      sample: false
    written:
      description: Whether the cursor file was written (never in check mode, and only when its content changes).
      type: bool
      sample: true
    journal:
      description:
        - Journal entries read (C(entries)), the time of the first and last one (C(from), C(to)), the cursor read after
          (C(after_cursor)) or the time read since (C(since)), the new cursor (C(cursor)) and whether
          O(max_journal_entries) stopped the reading (C(truncated)). Absent when O(scan_journal=false).
      type: dict
      sample:
        entries: 57
        from: "2025-05-04T06:00:12Z"
        to: "2025-05-05T05:59:48Z"
        after_cursor: "s=0d5c...;i=1a2b;b=...;m=...;t=...;x=..."
        since: null
        cursor: "s=0d5c...;i=1a64;b=...;m=...;t=...;x=..."
        truncated: false
    files:
      description:
        - Per log file, the byte range read (C(from_offset), C(to_offset), C(bytes), C(lines)), whether it was
          C(rotated) since the last run, C(missing), or whether the tail of the rotated file was C(lost) (not found
          as C(<path>.1)), and how many first-run lines were older than the look-back (C(skipped_before_lookback)).
      type: dict
      sample:
        /var/log/dealerscope/access.log:
          from_offset: 104857
          to_offset: 131072
          bytes: 26215
          lines: 120
          rotated: false
          missing: false
          lost: false
          skipped_before_lookback: 0
counts:
  description: The raw numbers behind the checks.
  returned: always
  type: dict
  sample:
    journal_entries: 57
    ssh_failures: 12
    ssh_failure_lines: 26
    sudo_commands: 4
    sudo_failures: 0
    new_users: 0
    new_groups: 0
    requests: 120
    errors_5xx: 0
    malformed_lines: 0
    pii_lines: 0
    pii_emails: 0
    pii_cards: 0
    fail2ban_banned_now: 1
    fail2ban_bans: 1
    bytes_read: 26215
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.log_scan_run import ARGUMENT_SPEC, scan


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = scan(module, module.params)
    error = result.pop('error')
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
