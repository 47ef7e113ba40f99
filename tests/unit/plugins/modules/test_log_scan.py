# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
import tempfile
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible.module_utils import basic

from ansible_collections.dealerscope.ops.plugins.module_utils import log_scan as log_scan_utils
from ansible_collections.dealerscope.ops.plugins.module_utils.log_scan import luhn_valid
from ansible_collections.dealerscope.ops.plugins.modules import log_scan
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args  # noqa: F401


# A stand-in for journalctl: a real executable reading JSON entries from $FAKE_JOURNAL, honouring
# --after-cursor, --since=@N and -t like the real one, and recording its arguments in $FAKE_JOURNAL_ARGS.
FAKE_JOURNALCTL = r'''
import json, os, sys
args = sys.argv[1:]
with open(os.environ['FAKE_JOURNAL_ARGS'], 'a') as log:
    log.write(json.dumps(args) + '\n')
entries = []
if os.path.exists(os.environ['FAKE_JOURNAL']):
    with open(os.environ['FAKE_JOURNAL']) as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
idents = [args[i + 1] for i, a in enumerate(args) if a == '-t']
after = [a.split('=', 1)[1] for a in args if a.startswith('--after-cursor=')]
since = [a.split('@', 1)[1] for a in args if a.startswith('--since=@')]
if after:
    cursors = [e['__CURSOR'] for e in entries]
    if after[0] not in cursors:
        sys.stderr.write('Failed to seek to cursor: Invalid argument\n')
        sys.exit(1)
    entries = entries[cursors.index(after[0]) + 1:]
if since:
    entries = [e for e in entries if int(e['__REALTIME_TIMESTAMP']) >= int(since[0]) * 1000000]
for e in entries:
    if not idents or e.get('SYSLOG_IDENTIFIER') in idents:
        sys.stdout.write(json.dumps(e) + '\n')
'''


# A stand-in for fail2ban-client, printing what fail2ban 1.0 prints for `status`, `status <jail>` and `get dbfile`
# from the JSON in $FAKE_F2B: {"running": bool, "db": path or null, "jails": {name: {"failed_now": .., "banned": [..]}}}.
FAKE_F2B_CLIENT = r'''
import json, os, sys
conf = json.load(open(os.environ['FAKE_F2B']))
args = sys.argv[1:]
if not conf['running']:
    sys.stderr.write('Failed to access socket path: /var/run/fail2ban/fail2ban.sock. Is fail2ban running?\n')
    sys.exit(255)
jails = conf['jails']
if args == ['status']:
    print('Status\n|- Number of jail:\t%d\n`- Jail list:\t%s' % (len(jails), ', '.join(jails)))
elif args[:1] == ['status'] and args[1] in jails:
    j = jails[args[1]]
    print('Status for the jail: %s\n|- Filter\n|  |- Currently failed:\t%d\n|  |- Total failed:\t%d\n'
          '|  `- Journal matches:\t_SYSTEMD_UNIT=sshd.service + _COMM=sshd\n`- Actions\n   |- Currently banned:\t%d\n'
          '   |- Total banned:\t%d\n   `- Banned IP list:\t%s'
          % (args[1], j.get('failed_now', 0), j.get('failed_total', 0), len(j['banned']), j.get('banned_total', len(j['banned'])),
             ' '.join(j['banned'])))
elif args == ['get', 'dbfile']:
    print('Current database file is:\n`- %s' % conf['db'] if conf['db'] else 'Database currently disabled')
else:
    sys.stderr.write('Sorry but the jail %r does not exist\n' % args[-1])
    sys.exit(255)
'''


class Harness:
    """A host in a directory: fake journal, access log, state file; records warnings and journalctl calls."""

    def __init__(self, monkeypatch, root):
        self.root = str(root)
        self.journal = os.path.join(self.root, 'journal.jsonl')
        self.args_log = os.path.join(self.root, 'journalctl-args.jsonl')
        self.access_log = os.path.join(self.root, 'access.log')
        self.state_file = os.path.join(self.root, 'lib', 'dealerscope-ops', 'log_scan.json')
        self.journalctl = os.path.join(self.root, 'journalctl')
        self.passwd = os.path.join(self.root, 'passwd')
        self.accounts('root', 'daemon', 'sshd')
        monkeypatch.setattr(log_scan_utils, 'PASSWD_FILE', self.passwd, raising=False)
        with open(self.journalctl, 'w') as handle:
            handle.write('#!%s\n%s' % (sys.executable, FAKE_JOURNALCTL))
        os.chmod(self.journalctl, 0o755)
        self.warnings = []
        self.serial = 0
        self.now_usec = int(time.time() * 1e6)
        monkeypatch.setenv('FAKE_JOURNAL', self.journal)
        monkeypatch.setenv('FAKE_JOURNAL_ARGS', self.args_log)
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
        self.f2b_client = None
        self.monkeypatch = monkeypatch
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                            lambda _self, name, required=False, opt_dirs=None: self.f2b_client if name == 'fail2ban-client' else self.journalctl)
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda _self, warning, **kw: self.warnings.append(warning))

    def log(self, message, identifier='sshd', pid='100', age_hours=0.0):
        self.serial += 1
        entry = {'__CURSOR': 's=abc;i=%x' % self.serial, '__REALTIME_TIMESTAMP': str(self.now_usec - int(age_hours * 3600e6) + self.serial),
                 'MESSAGE': message, 'SYSLOG_IDENTIFIER': identifier, '_PID': pid}
        with open(self.journal, 'a') as handle:
            handle.write(json.dumps(entry) + '\n')

    def accounts(self, *names):
        with open(self.passwd, 'a') as handle:
            handle.writelines('%s:x:%d:%d::/home/%s:/bin/sh\n' % (name, 1000 + len(name), 1000 + len(name), name) for name in names)

    def request(self, status, **extra):
        with open(self.access_log, 'a') as handle:
            handle.write(json.dumps(dict({'ts': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'status': status}, **extra)) + '\n')

    def fail2ban(self, running=True, jails=None, bans=(), db=True):
        """Install the fake fail2ban-client; ``bans`` are (jail, address, epoch) rows of a real fail2ban database."""
        self.f2b_client = os.path.join(self.root, 'fail2ban-client')
        with open(self.f2b_client, 'w') as handle:
            handle.write('#!%s\n%s' % (sys.executable, FAKE_F2B_CLIENT))
        os.chmod(self.f2b_client, 0o755)
        dbfile = os.path.join(self.root, 'fail2ban.sqlite3')
        with sqlite3.connect(dbfile) as connection:
            connection.execute('CREATE TABLE IF NOT EXISTS bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, '
                               'bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON)')
            connection.executemany('INSERT INTO bans(jail, ip, timeofban, bantime) VALUES(?, ?, ?, 600)', list(bans))
        connection.close()
        conf = {'running': running, 'db': dbfile if db else None, 'jails': jails if jails is not None else {'sshd': {'banned': []}}}
        path = os.path.join(self.root, 'f2b.json')
        with open(path, 'w') as handle:
            json.dump(conf, handle)
        self.monkeypatch.setenv('FAKE_F2B', path)

    def journalctl_calls(self):
        if not os.path.exists(self.args_log):
            return []
        with open(self.args_log) as handle:
            return [json.loads(line) for line in handle]

    def run(self, **args):
        args.setdefault('state_file', self.state_file)
        args.setdefault('access_logs', [self.access_log])
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                log_scan.main()
        return excinfo.type is AnsibleFailJson, excinfo.value.result


@pytest.fixture
def harness(monkeypatch, tmp_path):
    return Harness(monkeypatch, tmp_path)


def checks_by_name(result):
    return dict((check['name'], check) for check in result['checks'])


def failed_logins(harness, count, ip='203.0.113.9', user='nosuchuser', first_pid=1000):
    for pid in range(first_pid, first_pid + count):
        harness.log('Invalid user %s from %s port %d' % (user, ip, 40000 + pid), identifier='sshd-session', pid=str(pid))
        harness.log('Connection closed by invalid user %s %s port %d [preauth]' % (user, ip, 40000 + pid), identifier='sshd-session', pid=str(pid))


def test_first_run_counts_and_writes_the_cursor(harness):
    failed_logins(harness, 3)
    harness.log('Accepted publickey for root from 10.0.0.1 port 22 ssh2: ED25519 SHA256:x', pid='9')
    harness.log('alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/id', identifier='sudo', pid='10')
    harness.log('cron noise', identifier='CRON', pid='11')
    for count in range(30):
        harness.request(200, bytes=count)
    harness.request(502)
    harness.request(200, note='mail j.doe@example.com')
    with open(harness.access_log, 'a') as handle:
        handle.write('not json\n')
    failed, result = harness.run()
    assert not failed
    assert result['changed'] is True
    checks = checks_by_name(result)
    assert list(checks) == ['ssh_auth_failures', 'sudo_use', 'new_accounts', 'app_5xx_rate', 'pii_in_logs', 'intrusion_bans']
    assert checks['ssh_auth_failures']['value'] == 3 and checks['ssh_auth_failures']['status'] == 'ok'
    assert checks['ssh_auth_failures']['details'] == {'sources': {'203.0.113.9': 3}, 'users': {'nosuchuser': 3}}
    assert checks['sudo_use']['value'] == 1 and checks['sudo_use']['details']['users'] == {'alice': 1}
    assert checks['new_accounts']['status'] == 'ok'
    assert checks['app_5xx_rate']['status'] == 'critical' and checks['app_5xx_rate']['alert'] == 'high_error_rate'
    assert checks['app_5xx_rate']['value'] == round(100.0 / 32, 3)
    assert checks['pii_in_logs']['status'] == 'warning'
    assert checks['pii_in_logs']['details']['samples'] == [{'source': harness.access_log, 'line': 32, 'kind': 'email', 'masked': 'j***@e***.com'}]
    assert 'j.doe@example.com' not in json.dumps(result)
    assert result['counts']['journal_entries'] == 8  # the CRON entry is filtered out by journalctl -t
    assert result['counts']['ssh_failure_lines'] == 6 and result['counts']['malformed_lines'] == 1
    assert result['counts']['requests'] == 32 and result['counts']['errors_5xx'] == 1
    assert result['summary']['status'] == 'critical'
    assert result['cursor']['first_run'] is True and result['cursor']['written'] is True
    assert result['cursor']['journal']['after_cursor'] is None and result['cursor']['journal']['since']
    assert result['cursor']['journal']['cursor'] == 's=abc;i=8'
    assert result['cursor']['files'][harness.access_log]['bytes'] == os.path.getsize(harness.access_log)
    # the cursor file: 0600 in a 0700 directory, with the journal cursor and the file offset
    assert stat.S_IMODE(os.stat(harness.state_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(harness.state_file)).st_mode) == 0o700
    with open(harness.state_file) as handle:
        state = json.load(handle)
    assert state['journal']['cursor'] == 's=abc;i=8'
    assert state['files'][harness.access_log]['offset'] == os.path.getsize(harness.access_log)
    call = harness.journalctl_calls()[0]
    assert call[:3] == ['-o', 'json', '--no-pager'] and any(a.startswith('--since=@') for a in call)
    assert ['-t', 'sshd'] == call[call.index('-t'):call.index('-t') + 2] and 'sshd-session' in call and 'sudo' in call


# Prepended to FAKE_JOURNALCTL: 200 KiB of warnings on stderr before any entry on stdout (journalctl prints one per
# damaged journal file), more than a pipe holds. SIGALRM ends the fake after 20 s so that a deadlock cannot hang the run.
NOISY_STDERR = r"""
import signal, sys
signal.alarm(20)
for _ in range(2600):
    sys.stderr.write("Journal file /var/log/journal/x/system@0001.journal~ is truncated, ignoring file.\n")
sys.stderr.flush()
"""


def test_journalctl_filling_its_stderr_pipe_does_not_hang_the_module(harness):
    with open(harness.journalctl, 'w') as handle:
        handle.write('#!%s\n%s%s' % (sys.executable, NOISY_STDERR, FAKE_JOURNALCTL))
    failed_logins(harness, 3)
    harness.request(200)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(harness.run()), daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), 'log_scan still blocked after 15 s: journalctl stdout read while its stderr pipe is full'
    failed, result = outcome[0]
    assert not failed
    assert result['counts']['journal_entries'] == 6 and result['counts']['ssh_failures'] == 3
    assert not any('journal could not be read' in check['message'] for check in result['checks'])
    assert checks_by_name(result)['ssh_auth_failures']['value'] == 3


def test_second_run_counts_nothing_new(harness):
    failed_logins(harness, 2)
    harness.request(200)
    harness.run()
    failed, result = harness.run()
    assert not failed
    assert result['changed'] is False and result['cursor']['written'] is False
    assert result['counts']['journal_entries'] == 0 and result['counts']['ssh_failures'] == 0
    assert result['counts']['requests'] == 0 and result['counts']['bytes_read'] == 0
    assert result['cursor']['journal']['after_cursor'] == 's=abc;i=4' and result['cursor']['journal']['since'] is None
    assert '--after-cursor=s=abc;i=4' in harness.journalctl_calls()[1]
    # then only the new entries are counted
    failed_logins(harness, 1, first_pid=2000)
    harness.request(500)
    failed, result = harness.run()
    assert result['changed'] is True
    assert result['counts']['ssh_failures'] == 1 and result['counts']['requests'] == 1 and result['counts']['errors_5xx'] == 1
    assert checks_by_name(result)['app_5xx_rate']['status'] == 'ok'  # 1 request < min_requests


def test_check_mode_does_not_write_the_cursor(harness):
    failed_logins(harness, 2)
    harness.request(200)
    failed, result = harness.run(_ansible_check_mode=True)
    # changed is predicted exactly as a real run reports it (the cursor would move), but nothing is written
    assert not failed and result['changed'] is True and result['cursor']['written'] is False
    assert not os.path.exists(harness.state_file)
    assert result['counts']['ssh_failures'] == 2
    failed, result = harness.run(_ansible_check_mode=True)
    assert result['changed'] is True and not os.path.exists(harness.state_file)
    assert result['counts']['ssh_failures'] == 2 and result['counts']['requests'] == 1  # read again
    failed, real = harness.run()
    assert real['changed'] is True and real['cursor']['written'] is True
    with open(harness.state_file) as handle:
        written = handle.read()
    # nothing new since: a real run would not change the cursor, and check mode says so
    failed, result = harness.run(_ansible_check_mode=True)
    assert result['changed'] is False
    failed_logins(harness, 1, first_pid=3000)
    failed, result = harness.run(_ansible_check_mode=True)
    assert result['changed'] is True and result['counts']['ssh_failures'] == 1
    with open(harness.state_file) as handle:
        assert handle.read() == written
    failed, real = harness.run()
    assert real['changed'] is True and real['counts']['ssh_failures'] == 1


def test_first_run_lookback(harness):
    failed_logins(harness, 2)
    harness.log('Invalid user old from 198.51.100.1 port 1', pid='1', age_hours=30)
    failed, result = harness.run(first_run_lookback_hours=24)
    assert result['counts']['ssh_failures'] == 2
    assert '198.51.100.1' not in checks_by_name(result)['ssh_auth_failures']['details']['sources']


def test_ssh_thresholds(harness):
    failed_logins(harness, 12)
    failed, result = harness.run(ssh_failures_warn=5, ssh_failures_crit=10)
    check = checks_by_name(result)['ssh_auth_failures']
    assert check['status'] == 'critical' and check['alert'] == 'security_event' and check['value'] == 12


def test_failed_sudo_and_new_accounts_warn(harness):
    harness.run()  # the first run records the baseline
    harness.log('mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/bash', identifier='sudo')
    harness.log('new group: name=svc, GID=1001', identifier='useradd')
    harness.log('new user: name=svc, UID=1001, GID=1001, home=/home/svc, shell=/bin/bash, from=none', identifier='useradd')
    harness.accounts('svc')
    failed, result = harness.run()
    checks = checks_by_name(result)
    assert checks['sudo_use']['status'] == 'warning' and checks['sudo_use']['alert'] == 'security_event'
    assert checks['new_accounts']['status'] == 'warning' and checks['new_accounts']['value'] == 1
    assert checks['new_accounts']['details']['users'] == ['svc']


def provisioning(harness):
    """What provisioning a host leaves in the journal: the ops account and a service account, created minutes ago."""
    for name, uid in (('ops', 1001), ('postgres', 105)):
        harness.log('new group: name=%s, GID=%d' % (name, uid), identifier='useradd', age_hours=0.1)
        harness.log('new user: name=%s, UID=%d, GID=%d, home=/home/%s, shell=/bin/bash, from=none' % (name, uid, uid, name),
                    identifier='useradd', age_hours=0.1)
    harness.log("add 'ops' to group 'sudo'", identifier='usermod', age_hours=0.1)
    harness.accounts('ops', 'postgres')


def test_first_run_records_the_account_baseline_instead_of_warning(harness):
    provisioning(harness)
    failed, result = harness.run()
    assert not failed
    check = checks_by_name(result)['new_accounts']
    # no previous run, no "since": the accounts provisioning created are the baseline, not a security event
    assert check['status'] == 'ok' and check['alert'] is None, check
    assert check['message'] == 'first run: baseline of 5 accounts recorded; 3 account change(s) in the last 24 h are part of it, not judged'
    assert check['details']['baseline'] == 5 and check['details']['users'] == ['ops', 'postgres']
    with open(harness.state_file) as handle:
        assert json.load(handle)['accounts'] == ['daemon', 'ops', 'postgres', 'root', 'sshd']
    # the next run judges what happened since: nothing
    failed, result = harness.run()
    check = checks_by_name(result)['new_accounts']
    assert check['status'] == 'ok' and check['message'] == 'no new accounts since the last run'
    # an account that appears in the passwd file without any useradd in the journal is new too
    harness.accounts('backdoor')
    failed, result = harness.run()
    check = checks_by_name(result)['new_accounts']
    assert check['status'] == 'warning' and check['alert'] == 'security_event'
    assert check['details']['users'] == ['backdoor'] and check['details']['not_in_journal'] == ['backdoor']
    assert 'backdoor: in the passwd file but not created in the journal' in check['message']
    failed, result = harness.run()
    assert checks_by_name(result)['new_accounts']['status'] == 'ok'  # reported once, then part of the baseline


def test_first_run_in_check_mode_says_the_baseline_is_not_recorded(harness):
    provisioning(harness)
    failed, result = harness.run(_ansible_check_mode=True)
    check = checks_by_name(result)['new_accounts']
    assert check['status'] == 'ok' and check['message'].startswith('first run: baseline of 5 accounts read (check mode: not recorded)')
    assert not os.path.exists(harness.state_file)


def test_truncated_journal_does_not_blame_the_passwd_file(harness):
    harness.run()
    failed_logins(harness, 3)  # 6 entries before the account creation
    harness.log('new user: name=svc, UID=1001, GID=1001, home=/home/svc, shell=/bin/bash, from=none', identifier='useradd')
    harness.accounts('svc')
    failed, result = harness.run(max_journal_entries=4)
    check = checks_by_name(result)['new_accounts']
    assert check['status'] == 'ok' and 'not_in_journal' not in check['details']  # the useradd entry is still unread
    failed, result = harness.run()
    check = checks_by_name(result)['new_accounts']
    assert check['status'] == 'warning' and check['details']['users'] == ['svc'] and 'not_in_journal' not in check['details']


def test_unreadable_passwd_file_is_warned_and_keeps_judging_the_journal(harness, monkeypatch):
    harness.run()
    monkeypatch.setattr(log_scan_utils, 'PASSWD_FILE', os.path.join(harness.root, 'missing', 'passwd'))
    harness.log('new user: name=svc, UID=1001, GID=1001, home=/home/svc, shell=/bin/bash, from=none', identifier='useradd')
    failed, result = harness.run()
    assert not failed and checks_by_name(result)['new_accounts']['status'] == 'warning'
    assert any('cannot read' in w and 'passwd' in w for w in harness.warnings)


def test_bad_cursor_falls_back_to_lookback(harness):
    failed_logins(harness, 1)
    os.makedirs(os.path.dirname(harness.state_file))
    with open(harness.state_file, 'w') as handle:
        json.dump({'version': 1, 'journal': {'cursor': 's=gone', 'since': None}, 'files': {}}, handle)
    failed, result = harness.run()
    assert not failed
    assert any('refused the saved cursor' in w for w in harness.warnings)
    assert result['counts']['ssh_failures'] == 1 and result['cursor']['journal']['since']
    assert len(harness.journalctl_calls()) == 2


def test_corrupt_state_file_is_a_first_run(harness):
    failed_logins(harness, 1)
    os.makedirs(os.path.dirname(harness.state_file))
    with open(harness.state_file, 'w') as handle:
        handle.write('{oops')
    failed, result = harness.run()
    assert not failed and result['cursor']['first_run'] is True and result['changed'] is True
    assert any('not valid JSON' in w for w in harness.warnings)


def test_journalctl_missing_gives_critical_journal_checks(harness, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda _self, name, required=False, opt_dirs=None: None)
    harness.request(200)
    failed, result = harness.run()
    assert not failed
    checks = checks_by_name(result)
    assert checks['ssh_auth_failures']['status'] == 'critical' and 'journalctl not found' in checks['ssh_auth_failures']['message']
    assert checks['app_5xx_rate']['status'] == 'ok'


def test_scan_journal_false(harness):
    failed_logins(harness, 5)
    harness.request(200)
    failed, result = harness.run(scan_journal=False)
    assert [c['name'] for c in result['checks']] == ['app_5xx_rate', 'pii_in_logs', 'intrusion_bans']
    assert harness.journalctl_calls() == [] and 'journal' not in result['cursor']
    assert 'journal_entries' not in result['counts']


def test_max_journal_entries_truncates_and_resumes(harness):
    failed_logins(harness, 5)  # 10 entries
    failed, result = harness.run(max_journal_entries=4)
    assert result['cursor']['journal']['truncated'] is True and result['counts']['journal_entries'] == 4
    assert result['counts']['ssh_failures'] == 2
    assert any('max_journal_entries' in w for w in harness.warnings)
    failed, result = harness.run(max_journal_entries=100)
    assert result['cursor']['journal']['truncated'] is False and result['counts']['journal_entries'] == 6
    assert result['counts']['ssh_failures'] == 3


def test_missing_access_log_and_pii_paths(harness, tmp_path):
    other = tmp_path / 'app.log'
    other.write_text('charged 4111 1111 1111 1111 for order 7\n')
    failed, result = harness.run(pii_paths=[str(other)])
    checks = checks_by_name(result)
    assert 'no access log found' in checks['app_5xx_rate']['message'] and checks['app_5xx_rate']['status'] == 'ok'
    assert result['cursor']['files'][harness.access_log]['missing'] is True
    assert checks['pii_in_logs']['status'] == 'critical' and checks['pii_in_logs']['alert'] == 'pii_exposure'
    assert checks['pii_in_logs']['details']['samples'] == [{'source': str(other), 'line': 1, 'kind': 'card', 'masked': '**** **** **** 1111'}]
    assert '4111 1111 1111 1111' not in json.dumps(result) and '4111111111111111' not in json.dumps(result)


def test_unwritable_state_file_fails(harness, tmp_path):
    blocker = tmp_path / 'blocker'
    blocker.write_text('')
    failed, result = harness.run(state_file=str(blocker / 'state.json'))
    assert failed and 'cannot write the cursor file' in result['msg']


# --------------------------------------------------------------------------
# property: the whole result never contains raw PII
# --------------------------------------------------------------------------

def luhn_complete(prefix):
    return next(prefix + d for d in '0123456789' if luhn_valid(prefix + d))


@st.composite
def cards(draw):
    length = draw(st.integers(min_value=13, max_value=19))
    digits = luhn_complete(draw(st.sampled_from('23456')) + draw(st.text(alphabet='0123456789', min_size=length - 2, max_size=length - 2)))
    sep = draw(st.sampled_from(['', ' ', '-']))
    written = sep.join(digits[i:i + 4] for i in range(0, len(digits), 4)) if sep else digits
    return digits, written


_LOCAL = st.from_regex(r'\A[a-z0-9]([a-z0-9._+-]{0,15}[a-z0-9])?\Z')
_DOMAIN = st.from_regex(r'\A([a-z0-9]{1,10}\.){1,3}[a-z]{2,6}\Z')


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(local=_LOCAL, domain=_DOMAIN, card=cards(), where=st.sampled_from(['access', 'ssh_user', 'sudo']))
def test_result_never_contains_raw_pii(monkeypatch, local, domain, card, where):
    email = '%s@%s' % (local, domain)
    digits, written = card
    with tempfile.TemporaryDirectory() as root:
        harness = Harness(monkeypatch, root)
        if where == 'access':
            harness.request(200, q='/signup?email=%s' % email.replace('@', '%40'), card=written)
            harness.request(200, user=email)
        elif where == 'ssh_user':
            harness.log('Invalid user %s from 203.0.113.9 port 1' % email, pid='1')
            harness.log('Failed password for invalid user %s from 203.0.113.9 port 2 ssh2' % written, pid='2')
        else:
            harness.log('%s : TTY=pts/0 ; PWD=/ ; USER=%s ; COMMAND=/usr/bin/mail %s' % (email, written, email), identifier='sudo')
        failed, preview = harness.run(_ansible_check_mode=True)
        failed, result = harness.run()
        assert not failed
        serialised = json.dumps(result) + json.dumps(preview)
        for raw in (email, email.replace('@', '%40'), digits, written):
            assert raw not in serialised
        check = checks_by_name(result)['pii_in_logs']
        assert check['status'] == 'critical' and check['details']['cards'] >= 1 and check['details']['emails'] >= 1
        masks = [sample['masked'] for sample in check['details']['samples']]
        assert '**** **** **** %s' % digits[-4:] in masks
        assert '%s***@%s***.%s' % (local[0], domain[0], domain.rsplit('.', 1)[1]) in masks
        # stable: the same logs scanned twice (check mode first, cursor unchanged) give the same masks
        assert checks_by_name(preview)['pii_in_logs']['details'] == check['details']


# --------------------------------------------------------------------------
# intrusion_bans: fail2ban's bans now and since the last run
# --------------------------------------------------------------------------

def test_without_fail2ban_auto_says_not_installed_and_required_is_critical(harness):
    check = checks_by_name(harness.run()[1])['intrusion_bans']
    assert (check['status'], check['details']['installed']) == ('ok', False)
    assert 'not installed' in check['message']
    check = checks_by_name(harness.run(fail2ban='required')[1])['intrusion_bans']
    assert (check['status'], check['alert']) == ('critical', 'security_event')
    assert 'intrusion_bans' not in checks_by_name(harness.run(fail2ban='disabled')[1])


def test_a_stopped_fail2ban_is_a_warning_or_critical_when_required(harness):
    harness.fail2ban(running=False)
    check = checks_by_name(harness.run()[1])['intrusion_bans']
    assert check['status'] == 'warning' and 'Is fail2ban running?' in check['message']
    assert checks_by_name(harness.run(fail2ban='required')[1])['intrusion_bans']['status'] == 'critical'


def test_bans_now_and_since_the_last_run_are_counted_once(harness):
    now = int(time.time())
    harness.fail2ban(jails={'sshd': {'banned': ['203.0.113.9'], 'failed_now': 2, 'failed_total': 11, 'banned_total': 2}},
                     bans=[('sshd', '198.51.100.4', now - 48 * 3600), ('sshd', '198.51.100.7', now - 60), ('sshd', '203.0.113.9', now - 5)])
    failed, result = harness.run()
    assert not failed
    check = checks_by_name(result)['intrusion_bans']
    assert (check['status'], check['value'], check['alert']) == ('warning', 2, 'security_event')  # the 48 h old ban is outside the look-back
    assert check['details']['banned_now'] == {'sshd': ['203.0.113.9']}
    assert check['details']['bans_since_last_run'] == {'sshd': {'198.51.100.7': 1, '203.0.113.9': 1}}
    assert check['details']['per_jail']['sshd'] == {'failed_now': 2, 'failed_total': 11, 'banned_now': 1, 'banned_total': 2}
    assert '1 address(es) banned now (sshd: 203.0.113.9)' in check['message'] and '2 ban(s) since the last run' in check['message']
    assert (result['counts']['fail2ban_banned_now'], result['counts']['fail2ban_bans']) == (1, 2)
    # The next run counts only new bans: one in the same second as the newest counted, one later.
    with sqlite3.connect(os.path.join(harness.root, 'fail2ban.sqlite3')) as connection:
        connection.executemany('INSERT INTO bans(jail, ip, timeofban, bantime) VALUES(?, ?, ?, 600)',
                               [('sshd', '192.0.2.1', now - 5), ('recidive', '192.0.2.2', now)])
    connection.close()
    check = checks_by_name(harness.run()[1])['intrusion_bans']
    assert check['details']['bans_since_last_run'] == {'sshd': {'192.0.2.1': 1}, 'recidive': {'192.0.2.2': 1}}
    assert check['value'] == 2


def test_no_bans_is_ok_and_a_quiet_second_run_changes_nothing(harness):
    harness.fail2ban()
    failed, result = harness.run(scan_journal=False)
    check = checks_by_name(result)['intrusion_bans']
    assert (failed, check['status'], check['value']) == (False, 'ok', 0)
    assert '0 address(es) banned now; 0 ban(s) since the last run' in check['message']
    state = json.load(open(harness.state_file))
    assert state['fail2ban']['seen'] == []
    failed, result = harness.run(scan_journal=False)
    assert result['changed'] is False, 'nothing new: the cursor file must not be rewritten'


def test_check_mode_predicts_changed_and_leaves_the_ban_cursor(harness):
    harness.fail2ban(bans=[('sshd', '198.51.100.7', int(time.time()) - 60)])
    harness.run(scan_journal=False)
    before = open(harness.state_file).read()
    with sqlite3.connect(os.path.join(harness.root, 'fail2ban.sqlite3')) as connection:
        connection.execute("INSERT INTO bans(jail, ip, timeofban, bantime) VALUES('sshd', '192.0.2.1', ?, 600)", (int(time.time()),))
    connection.close()
    failed, predicted = harness.run(scan_journal=False, _ansible_check_mode=True)
    assert predicted['changed'] is True and open(harness.state_file).read() == before
    assert checks_by_name(predicted)['intrusion_bans']['value'] == 1
    failed, real = harness.run(scan_journal=False)
    assert real['changed'] is True and checks_by_name(real)['intrusion_bans']['value'] == 1


def test_fail2ban_without_database_or_jails(harness):
    harness.fail2ban(db=False)
    check = checks_by_name(harness.run()[1])['intrusion_bans']
    assert check['status'] == 'warning' and check['value'] is None and 'without a database' in check['message']
    harness.fail2ban(jails={})
    check = checks_by_name(harness.run(fail2ban='required')[1])['intrusion_bans']
    assert check['status'] == 'critical' and 'no jail is active' in check['message']
