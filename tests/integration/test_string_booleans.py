"""Boolean options given as strings - the way cron, AWX surveys and shells pass them (`-e key=false`) -
mean what the operator typed, for every boolean option of every role entry point.

Role argument validation checks that "false" is a valid boolean but does not convert it, and the
string "false" is true in Jinja. So every boolean option is listed from the roles' argument specs
(a new one is covered automatically) and each needs a behaviour case here that runs the real role
code with the string "true" and with the string "false" and checks what the role did:

* baseline: the role's own task files on the controller in --check --diff (nothing is written), the
  rendered sshd drop-in and sudoers file and the chrony tasks chosen;
* daily: the daily playbook against the controller itself (connection local) probing a local HTTPS
  server with a self-signed certificate; the report says what was checked;
* patching: the patch playbook against a closed-port inventory (preflight, plan and the report run
  on the controller; hosts are unreachable), and the rollout entry point on the controller after a
  plan that found nothing to upgrade.

An option whose behaviour can only be seen on a lab host is listed in LAB_ONLY with what the lead
must run; for it this file checks only the wiring (every use is `| bool` into a module option
declared type bool). No podman, no lab host.
"""
import http.server
import json
import os
import pathlib
import re
import ssl
import subprocess
import threading

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
# Every role (a new role's boolean options are covered the day it lands).
ROLES = tuple(sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "meta" / "argument_specs.yml").is_file()))
VALUES = ("true", "false")
FREEZE = {"patching_freeze": [{"start": "2000-01-01", "end": "2999-12-31", "reason": "string-boolean test freeze"}]}
REASON = "string-boolean test override"

# Options of type raw that take true/false besides other values; they get behaviour cases too.
BOOLISH = {"baseline_timesync_clock_control": "baseline", "patching_canary": "patching"}

# Options whose effect needs a real upgrade on a lab host. What the lead must run is in the report of
# this change; here only the wiring is checked (test_lab_only_options_reach_a_bool_module_option).
LAB_ONLY = {
    "patching_restart_services": (
        "apt_patch restarts services only after a real upgrade replaced files they use: run the patching scenario's rollout "
        "with -e patching_restart_services=false and check the report lists the service under restart_pending, not restarted"),
}

# Options whose behaviour needs the lab stack (a deploy, a rollback) and is proven by a Molecule scenario's
# verifier with both strings, "true" and "false" (test_scenario_covered_options_are_run_with_both_strings).
SCENARIO_COVERED = {
    "deploy_take_traffic": "molecule/deploy/tests/test_deploy.py",
    "rollback_mark_bad": "molecule/deploy_faults/tests/test_deploy_faults.py",
    "backup_verify": "molecule/backup_faults/tests/test_backup_faults.py",
    "backup_timers": "molecule/backup_faults/tests/test_backup_faults.py",
    "backup_expire": "molecule/backup_retention/tests/test_backup_retention.py",
    "schedule_remove_unlisted": "molecule/schedule/tests/test_schedule.py",
    "dr_drill_writer": "molecule/dr_drill/tests/test_dr_drill.py",
    "daily_backup_catalog": "molecule/dr/tests/test_dr_daily_backup_check.py",
}


# ---------------------------------------------------------------------------------------------------
# The options


def argument_specs(role):
    return yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def boolean_options():
    """(role, entry point, option) for every option of type bool; an entry point without options takes main's."""
    found = []
    for role in ROLES:
        specs = argument_specs(role)
        for entry, spec in sorted(specs.items()):
            options = spec.get("options", specs["main"].get("options", {})) if entry != "main" else spec.get("options", {})
            found += [(role, entry, name) for name, option in sorted(options.items()) if option.get("type") == "bool"]
    return found


CONDITIONAL_KEYS = ("when", "that", "failed_when", "changed_when", "until")
DISPLAY_KEYS = ("name", "fail_msg", "success_msg")  # showing a value is not deciding on it
JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")


def _expressions_in(value, key=None):
    if isinstance(value, dict):
        for child_key, child in value.items():
            yield from _expressions_in(child, child_key)
    elif isinstance(value, list):
        for child in value:
            yield from _expressions_in(child, key)
    elif isinstance(value, str) and key not in DISPLAY_KEYS:
        if key in CONDITIONAL_KEYS:
            yield value
        for match in JINJA.finditer(value):
            yield match.group(1) or match.group(2)


def jinja_expressions(path):
    """Every Jinja expression of a role file (YAML: conditionals and templated strings; templates: their tags),
    string literals blanked so a message that names an option is not a use of it."""
    text = path.read_text()
    if path.suffix == ".j2":
        raw = [m.group(1) or m.group(2) for m in JINJA.finditer(text)]
    else:
        raw = list(_expressions_in(yaml.safe_load(text)))
    return [STRING_LITERAL.sub("''", expression) for expression in raw]


def role_files(role):
    base = ROOT / "roles" / role
    return sorted(p for sub in ("tasks", "templates", "vars", "handlers") for p in (base / sub).glob("*") if p.is_file())


def uses(role, option):
    """{file relative to the repo: [expressions using the option]} in the role and the playbooks."""
    pattern = re.compile(r"(?<![\w.])%s\b" % re.escape(option))
    found = {}
    for path in role_files(role) + sorted((ROOT / "playbooks").glob("*.yml")):
        hits = [e for e in jinja_expressions(path) if pattern.search(e)]
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    return found


# ---------------------------------------------------------------------------------------------------
# Running the real role code


def playbook(argv, inventory, extra, check=False, timeout=180, args=()):
    """ansible-playbook with the repo's ansible.cfg and the JSON callback; extra: `key=value` strings (as cron passes
    them) or dicts (JSON). Returns (rc, parsed output, stderr)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    command = [str(BIN / "ansible-playbook"), "-i", str(inventory), argv]
    for item in extra:
        command += ["-e", item if isinstance(item, str) else json.dumps(item)]
    if check:
        command += ["--check", "--diff"]
    command += list(args)
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = {"plays": [], "stats": {}, "unparsed": proc.stdout}
    return Run(proc.returncode, data, proc.stderr)


class Run(object):
    def __init__(self, rc, data, stderr):
        self.rc, self.data, self.stderr = rc, data, stderr

    def results(self, name=None):
        """Every host result (loop items too) of tasks whose name contains `name`."""
        for play in self.data.get("plays", []):
            for task in play["tasks"]:
                if name is None or name in task["task"]["name"]:
                    for result in task["hosts"].values():
                        yield result
                        yield from result.get("results", []) if isinstance(result.get("results"), list) else []

    def task(self, name):
        found = list(self.results(name))
        assert found, "no task named like %r ran:\n%s" % (name, self.text()[-3000:])
        return found[0]

    def fact(self, name):
        values = [r["ansible_facts"][name] for r in self.results() if name in r.get("ansible_facts", {})]
        return values[-1] if values else None

    def contacted(self):
        return any(r.get("unreachable") for r in self.results())

    def text(self):
        return json.dumps(self.data.get("plays", []))[-20000:] + self.data.get("unparsed", "") + self.stderr

    def messages(self):
        return " | ".join(str(r.get("msg", "")) for r in self.results() if r.get("failed")) + self.stderr


def rendered(run, task_name):
    diff = run.task(task_name).get("diff")
    diffs = diff if isinstance(diff, list) else [diff]
    return "".join(d.get("after", "") for d in diffs if isinstance(d, dict) and isinstance(d.get("after"), str))


def lines(text):
    return [line.strip() for line in text.splitlines()]


class Runs(object):
    """Each scenario runs once per value; every check of that scenario reads the same run."""

    def __init__(self, tmp, tls_url):
        self.tmp, self.tls_url, self.cache = tmp, tls_url, {}
        python = str(BIN / "python")
        self.local = tmp / "local.yml"
        self.local.write_text(yaml.safe_dump({"all": {"children": {"dealerscope": {"hosts": {
            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": python}}}}}}))
        # ghost1 carries the mark a failed run leaves (setup reads it from /etc/ansible/facts.d on a real host).
        self.ghosts = tmp / "ghosts.yml"
        ghost = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root"}
        self.ghosts.write_text(yaml.safe_dump({"all": {"children": {"dealerscope": {"children": {"app": {"hosts": {
            "ghost1": dict(ghost, ansible_local={"dealerscope_patching": {"status": "failed", "phase": "postcheck"}}),
            "ghost2": dict(ghost)}}}}}}}))
        self.baseline_play = tmp / "baseline.yml"
        self.baseline_play.write_text(BASELINE_PLAY)
        self.baseline_main_play = tmp / "baseline-main-check.yml"
        self.baseline_main_play.write_text(BASELINE_MAIN_PLAY)
        self.rollout_play = tmp / "rollout.yml"
        self.rollout_play.write_text(ROLLOUT_PLAY)
        self.ending_play = tmp / "ending.yml"
        self.ending_play.write_text(ENDING_PLAY)

    def once(self, key, start):
        if key not in self.cache:
            self.cache[key] = start()
        return self.cache[key]

    def report(self, run_dir, runbook):
        path = run_dir / runbook / "latest" / "report.json"
        return json.loads(path.read_text()) if path.exists() else None

    def baseline(self, value):
        """The baseline role's own task files on the controller, --check --diff, every switch given as this string."""
        extra = ["baseline_ssh_x11_forwarding=%s" % value, "baseline_ops_user_sudo_nopasswd=%s" % value,
                 "baseline_timesync_clock_control=%s" % value, {"baseline_ssh_extra_settings": {"AllowTcpForwarding": value == "true"}}]
        return self.once(("baseline", value), lambda: playbook(str(self.baseline_play), self.local, extra, check=True))

    def baseline_main(self, value):
        """The baseline role's main entry point on the controller, --check --diff, baseline_sysstat_enabled as this string."""
        extra = ["baseline_sysstat_enabled=%s" % value]
        return self.once(("baseline_main", value), lambda: playbook(str(self.baseline_main_play), self.local, extra, check=True))

    def daily(self, value):
        def start():
            report_dir = self.tmp / ("daily-" + value)
            extra = [{"daily_report_dir": str(report_dir), "daily_fail_on": "never", "daily_expected_services": {}, "daily_expected_ports": {},
                      "daily_memory_services": {}, "daily_endpoints": [{"name": "tls", "url": self.tls_url, "p95_ms": 10000}],
                      "daily_probe_count": 2, "daily_probe_concurrency": 1, "daily_log_state_file": str(report_dir / "cursor.json"),
                      "daily_access_logs": [], "daily_notify_channels": [], "daily_notify_state_dir": str(report_dir / "notify")},
                     "daily_check_updates=%s" % value, "daily_validate_certs=%s" % value]
            run = playbook("dealerscope.ops.daily", self.local, extra)
            run.report = self.report(report_dir, "daily")
            return run
        return self.once(("daily", value), start)

    def controller(self, value):
        """The controller playbook against the loopback HTTPS server (self-signed): the awx.awx modules either refuse its
        certificate or get past TLS to a server that is no controller."""
        extra = [{"controller_host": self.tls_url.rstrip("/"), "controller_oauthtoken": "string-boolean-test-token",
                  "controller_project_scm_url": "https://git.example.com/ops.git", "controller_inventory": "I",
                  "controller_credential_names": {"machine": "M", "notifications": "N", "s3": "S"}},
                 "controller_validate_certs=%s" % value]
        return self.once(("controller", value), lambda: playbook("dealerscope.ops.controller", self.local, extra))

    def patch(self, name, *extra):
        """The patch playbook against the closed-port inventory; a fresh report directory per run."""
        def start():
            report_dir = self.tmp / ("patch-" + re.sub(r"\W+", "-", name))
            base = {"patching_report_dir": str(report_dir), "patching_lb_backend": "none", "patching_pools": []}
            run = playbook("dealerscope.ops.patch", self.ghosts, [base] + list(extra))
            run.report = self.report(report_dir, "patch")
            return run
        return self.once(("patch", name), start)

    def rollout(self, value, lb_hosts=("localhost",)):
        """The rollout entry point on the controller inside a change freeze, after a plan that found nothing to upgrade."""
        extra = [{"patching_lb_backend": "none", "patching_lb_hosts": list(lb_hosts), "patching_pools": []}, FREEZE,
                 "patching_override_window=%s" % value]
        return self.once(("rollout", value, tuple(lb_hosts)), lambda: playbook(str(self.rollout_play), self.local, extra))

    def ending(self, value):
        """The runbook ending alone on the controller, --check, runbook_end_write_in_check_mode as this string."""
        def start():
            report_dir = self.tmp / ("ending-" + value)
            run = playbook(str(self.ending_play), self.local, [{"runbook_end_report_dir": str(report_dir)},
                                                               "runbook_end_write_in_check_mode=%s" % value], check=True)
            run.report = self.report(report_dir, "strings")
            return run
        return self.once(("ending", value), start)

    def firewall(self, name, *extra):
        """The firewall playbook against the controller itself (connection local), --check --diff: the host is only
        inspected and the new ruleset checked with `nft -c`; nothing is loaded. Inventory addresses (ghost_ip)."""
        def start():
            base = {"firewall_report_dir": str(self.tmp / ("firewall-" + re.sub(r"\W+", "-", name))), "firewall_address_var": "ghost_ip",
                    "ghost_ip": "10.9.9.9", "firewall_zones": {"mgmt": {"cidrs": ["10.200.0.0/24"]}, "public": {"cidrs": ["0.0.0.0/0"]}},
                    "firewall_rules": [{"from": "public", "to": "public", "service": "https"}], "firewall_zone_overlaps_allowed": [],
                    "firewall_fail2ban": False}  # fail2ban is not installed on the controller; _fail2ban overrides this
            # the boot unit (tag persist) needs systemd, which the controller may lack
            return playbook("dealerscope.ops.firewall", self.local, [base] + list(extra), check=True, args=["--skip-tags", "persist"])
        return self.once(("firewall", name), start)

    def tls(self, name, *extra):
        """The TLS playbook against the controller itself, --check --diff: a valid self-signed certificate (90 days) in
        a scratch tls_base_dir, nothing due unless forced; the ACME directory is a closed port (ARI asks fail quietly)."""
        def start():
            base_dir = self.tmp / ("tls-" + re.sub(r"\W+", "-", name))
            live = base_dir / "api" / "live"
            live.mkdir(parents=True)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                            "-keyout", str(live / "privkey.pem"), "-out", str(live / "fullchain.pem"), "-days", "90",
                            "-subj", "/CN=dealerscope.example", "-addext", "subjectAltName=DNS:dealerscope.example"],
                           check=True, capture_output=True)
            (live / "privkey.pem").chmod(0o600)
            base = {"tls_base_dir": str(base_dir), "tls_report_dir": str(base_dir / "reports"),
                    "tls_certificates": [{"name": "api", "domains": ["dealerscope.example"]}],
                    "tls_allowed_domains": ["dealerscope.example"], "tls_acme_directory": "https://127.0.0.1:1/dir",
                    "tls_acme_terms_agreed": True}
            return playbook("dealerscope.ops.tls", self.local, [base] + list(extra), check=True)
        return self.once(("tls", name), start)


ENDING_PLAY = """
- name: The runbook ending alone, on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ending
      ansible.builtin.include_role: {name: dealerscope.ops.runbook_end}
      vars:
        runbook_end_runbook: strings
        runbook_end_started_at: "2026-01-01T00:00:00Z"
        runbook_end_hosts: {localhost: [{name: load, status: ok, value: 1, threshold: 2, message: fine}]}
"""

BASELINE_PLAY = """
- name: The baseline role's task files (no packages, no logging), --check --diff on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.include_role: {name: dealerscope.ops.baseline, tasks_from: preflight}
    # The controller may have no chrony and no systemd: only which chrony tasks run is looked at.
    - name: Timesync
      ansible.builtin.include_role: {name: dealerscope.ops.baseline, tasks_from: timesync, apply: {ignore_errors: true}}
    - name: Ops user
      ansible.builtin.include_role: {name: dealerscope.ops.baseline, tasks_from: ops_user}
    - name: SSH
      ansible.builtin.include_role: {name: dealerscope.ops.baseline, tasks_from: ssh}
    - name: End before the handlers (they would restart chrony on the controller)
      ansible.builtin.meta: end_play
"""

BASELINE_MAIN_PLAY = """
- name: The baseline role's main entry point, --check --diff on the controller (host services it lacks are ignored)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Baseline
      ansible.builtin.include_role: {name: dealerscope.ops.baseline, apply: {ignore_errors: true}}
    - name: End before the handlers
      ansible.builtin.meta: end_play

- name: The sysstat handler, notified alone
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Baseline handlers are loaded
      ansible.builtin.include_role: {name: dealerscope.ops.baseline, tasks_from: preflight}
    - name: Notify the sysstat handler
      ansible.builtin.debug: {msg: notify}
      changed_when: true
      notify: Restart sysstat collection
"""

ROLLOUT_PLAY = """
- name: Rollout entry point after a plan that found nothing to upgrade
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The run as preflight and plan leave it
      ansible.builtin.set_fact:
        __patching_run: {started_at: "2026-01-01T00:00:00Z", targets: [localhost], plan_only: false, refusals: [], batches: [[localhost]]}
        __patching_plan: {to_upgrade: [], reboot_required: false}
    - name: Rollout
      ansible.builtin.include_role: {name: dealerscope.ops.patching, tasks_from: rollout}

- name: What the rollout decided
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Halt record
      ansible.builtin.set_fact:
        halt_record: "{{ hostvars['localhost']['__patching_halt'] | default(None) }}"
"""


# ---------------------------------------------------------------------------------------------------
# Behaviour cases: option -> (the role files whose uses the case exercises, check(value, runs))

# A behaviour case runs the role with `-e <option>=<value>` and returns which behaviour it SAW: True when the role
# behaved as the switch on, False when it behaved as off. Each case first asserts that what it saw is entirely
# one or the other (every symptom of that behaviour, none of the other); test_string_boolean_behaviour then
# asserts that it matches the string given ("true" -> on, "false" -> off).
BEHAVIOUR = {}


def behaviour(option, *files):
    def register(check):
        BEHAVIOUR[option] = (set(files), check)
        return check
    return register


@behaviour("runbook_end_write_in_check_mode", "roles/runbook_end/tasks/main.yml")
def _write_in_check_mode(value, runs):
    run = runs.ending(value)
    assert run.rc == 0, run.text()[-3000:]
    ending = run.task("Runbook ending - report, notifications")
    assert ending["changed"] is True, ending
    if ending["written"]:  # under --check the report is written, as the patch runbook's plan report is
        assert run.report is not None and run.report["status"] == "ok", run.text()[-3000:]
    else:
        assert run.report is None
    return ending["written"]


def _firewall_ruleset(run):
    assert run.rc == 0, run.messages()[-3000:]
    return run.task("Apply - ruleset is checked")["diff"]["after"]


@behaviour("firewall_allow_controller_outside_mgmt", "roles/firewall/tasks/policy.yml")
def _controller_outside_mgmt(value, runs):
    # a local connection has no SSH source: Ansible is "outside mgmt", so only the switch lets the run go on
    run = runs.firewall("outside-" + value, "firewall_allow_controller_outside_mgmt=%s" % value)
    if run.rc == 0:
        assert "tcp dport 443 accept" in _firewall_ruleset(run)
        return True
    assert "would lock Ansible out" in run.messages(), run.messages()[-3000:]
    return False


@behaviour("controller_validate_certs", "roles/controller/vars/main.yml", "roles/controller/tasks/preflight.yml")
def _controller_validate_certs(value, runs):
    run = runs.controller(value)
    assert run.rc != 0, run.text()[-3000:]  # the loopback server is not a controller either way
    failed = [r for r in run.results("Apply - credential types") if r.get("failed") and "item" in r]
    assert failed, run.text()[-3000:]
    refused = "CERTIFICATE_VERIFY_FAILED" in failed[0]["msg"] or "certificate verify failed" in failed[0]["msg"]
    if not refused:
        assert "parse the response json" in failed[0]["msg"], failed[0]["msg"]  # past TLS, to a server that is no controller
    return refused


@behaviour("firewall_mgmt_ssh", "roles/firewall/tasks/preflight.yml", "roles/firewall/tasks/policy.yml")
def _mgmt_ssh(value, runs):
    run = runs.firewall("mgmt-ssh-" + value, "firewall_mgmt_ssh=%s" % value, "firewall_allow_removing_mgmt_ssh=true",
                        "firewall_allow_controller_outside_mgmt=true")
    return "ip saddr @mgmt_v4 tcp dport 22 accept" in _firewall_ruleset(run)


@behaviour("firewall_allow_removing_mgmt_ssh", "roles/firewall/tasks/preflight.yml")
def _allow_removing_mgmt_ssh(value, runs):
    run = runs.firewall("removing-" + value, "firewall_mgmt_ssh=false", "firewall_allow_removing_mgmt_ssh=%s" % value,
                        "firewall_allow_controller_outside_mgmt=true")
    if run.rc == 0:
        assert "tcp dport 22" not in _firewall_ruleset(run)
        return True
    assert "firewall_allow_removing_mgmt_ssh=true" in run.messages() and not run.contacted(), run.messages()[-3000:]
    return False


@behaviour("firewall_fail2ban", "roles/firewall/tasks/main.yml", "roles/firewall/tasks/report.yml")
def _fail2ban(value, runs):
    # the controller is no lab host: only whether the intrusion tasks run is looked at (fail2ban itself: molecule/firewall)
    run = runs.firewall("fail2ban-" + value, "firewall_fail2ban=%s" % value, "firewall_allow_controller_outside_mgmt=true")
    assert run.rc == 0, run.messages()[-3000:]
    return bool(list(run.results("Intrusion - fail2ban is installed")))


@behaviour("firewall_log_drops", "roles/firewall/templates/firewall.nft.j2")
def _log_drops(value, runs):
    run = runs.firewall("log-" + value, "firewall_log_drops=%s" % value, "firewall_allow_controller_outside_mgmt=true")
    return 'log prefix "dealerscope-drop: "' in _firewall_ruleset(run)


def _one_of(text, on, off):
    """Which of two lines the rendered file holds: exactly one of them must be there."""
    found = (on in lines(text), off in lines(text))
    assert found in ((True, False), (False, True)), "expected exactly one of %r and %r in:\n%s" % (on, off, text)
    return found[0]


@behaviour("baseline_ssh_x11_forwarding", "roles/baseline/templates/sshd_dropin.conf.j2")
def _x11_forwarding(value, runs):
    return _one_of(rendered(runs.baseline(value), "SSH drop-in is written"), "X11Forwarding yes", "X11Forwarding no")


@behaviour("baseline_ssh_extra_settings (boolean values)", "roles/baseline/templates/sshd_dropin.conf.j2")
def _extra_settings(value, runs):
    return _one_of(rendered(runs.baseline(value), "SSH drop-in is written"), "AllowTcpForwarding yes", "AllowTcpForwarding no")


@behaviour("baseline_ops_user_sudo_nopasswd", "roles/baseline/templates/sudoers.j2")
def _sudo_nopasswd(value, runs):
    return _one_of(rendered(runs.baseline(value), "Ops account may use sudo"),
                   "ops ALL=(ALL:ALL) NOPASSWD: ALL", "ops ALL=(ALL:ALL) ALL")


@behaviour("baseline_timesync_clock_control", "roles/baseline/tasks/preflight.yml")
def _clock_control(value, runs):
    run = runs.baseline(value)
    on = run.fact("__baseline_clock_control")
    assert on in (True, False), run.text()[-3000:]
    without = run.task("Chrony runs without clock control")
    steering = run.task("Chrony override is absent where chronyd steers the clock")
    assert bool(without.get("skipped")) is on, without
    assert bool(steering.get("skipped")) is not on, steering
    return on


@behaviour("baseline_sysstat_enabled", "roles/baseline/tasks/main.yml", "roles/baseline/tasks/packages.yml",
           "roles/baseline/tasks/preflight.yml", "roles/baseline/handlers/main.yml")
def _sysstat_enabled(value, runs):
    run = runs.baseline_main(value)
    assert not run.task("Preflight - inputs are valid").get("failed"), run.task("Preflight - inputs are valid")
    packages = run.task("Baseline packages are installed (from the current package lists)")["invocation"]["module_args"]["name"]
    on = "sysstat" in packages
    assert bool(run.task("System activity history (sysstat)").get("skipped")) is not on
    assert bool(run.task("Restart sysstat collection").get("skipped")) is not on
    return on


@behaviour("daily_check_updates", "roles/daily/tasks/collect.yml")
def _check_updates(value, runs):
    run = runs.daily(value)
    assert run.report, run.text()[-3000:]
    return "updates" in [check["name"] for check in run.report["hosts"]["localhost"]["checks"]]


@behaviour("daily_validate_certs", "roles/daily/tasks/collect.yml")
def _validate_certs(value, runs):
    run = runs.daily(value)
    assert run.report, run.text()[-3000:]
    service = [row for name, row in run.report["hosts"].items() if name.startswith("service via")]
    assert service, run.report["hosts"].keys()
    error_rate = [c for c in service[0]["checks"] if c["name"] == "tls:error_rate"][0]
    if error_rate["status"] == "critical":  # the self-signed certificate is refused
        assert "certificate" in error_rate["message"], error_rate
        return True
    assert error_rate["status"] == "ok", error_rate
    return False


@behaviour("patching_plan_only", "roles/patching/tasks/preflight.yml")
def _plan_only(value, runs):
    run = runs.patch("plan-only-" + value, FREEZE, "patching_plan_only=%s" % value)
    if "refused, nothing was changed" not in run.messages():  # planning is allowed inside a freeze, and the run is a plan
        assert run.fact("__patching_run")["plan_only"] is True, run.fact("__patching_run")
        assert run.contacted() and run.report["meta"]["kind"] == "plan", run.text()[-3000:]
        return True
    assert run.rc != 0 and not run.contacted(), run.messages()  # a real run inside a freeze: refused before any host
    return False


@behaviour("patching_override_window", "roles/patching/tasks/preflight.yml", "roles/patching/tasks/rollout.yml",
           "roles/patching/tasks/report.yml")
def _override_window(value, runs):
    override = "patching_override_window=%s" % value
    frozen = runs.patch("override-freeze-" + value, FREEZE, override, {"patching_override_reason": REASON})
    free = runs.patch("override-free-" + value, override, {"patching_override_reason": REASON})
    no_reason = runs.patch("override-no-reason-" + value, override)
    halt = runs.rollout(value).fact("halt_record")
    if "refused, nothing was changed" not in frozen.messages():
        assert frozen.contacted(), frozen.messages()
        assert frozen.report["meta"]["override_reason"] == REASON, frozen.report["meta"]
        assert free.report["meta"]["override_reason"] == REASON, free.report["meta"]
        assert no_reason.rc != 0 and "patching_override_reason is ''" in no_reason.messages() and not no_reason.contacted()
        assert halt is None, halt  # preflight's override holds for every batch
        return True
    assert frozen.rc != 0 and not frozen.contacted(), frozen.messages()
    assert free.report["meta"]["override_reason"] == "", free.report["meta"]  # no override: no override reason in the report
    assert "patching_override_reason" not in no_reason.messages() and no_reason.contacted(), no_reason.messages()
    assert halt and halt["phase"] == "window" and "string-boolean test freeze" in halt["reason"], halt
    return False


@behaviour("patching_retry_failed", "roles/patching/tasks/plan.yml")
def _retry_failed(value, runs):
    run = runs.patch("retry-" + value, "patching_retry_failed=%s" % value)
    assert run.report, run.text()[-3000:]
    # retried: the host marked failed by an earlier run is not left drained and marked failed again
    return not [r for r in run.report["meta"]["refusals"] if r.startswith("ghost1: left drained and marked failed")]


@behaviour("patching_allow_traffic_interruption", "roles/patching/tasks/preflight.yml")
def _allow_traffic_interruption(value, runs):
    """ghost2 is the only load balancer and a target: patching it interrupts all traffic."""
    run = runs.patch("traffic-" + value, {"patching_lb_backend": "nginx", "patching_lb_hosts": ["ghost2"]},
                     "patching_allow_traffic_interruption=%s" % value)
    if "would be interrupted" not in run.messages():  # accepted: the run goes on to plan the hosts
        assert run.contacted(), run.messages()
        return True
    assert run.rc != 0 and not run.contacted(), run.messages()
    return False


@behaviour("patching_canary", "roles/patching/tasks/preflight.yml")
def _canary(value, runs):
    run = runs.patch("canary-" + value, {"patching_serial": 2}, "patching_canary=%s" % value)
    assert run.report, run.text()[-3000:]
    meta = run.report["meta"]
    if meta["canary"] is not None:
        assert meta["canary"] == "ghost1" and meta["batches"] == [["ghost1"], ["ghost2"]], meta
        return True
    assert meta["batches"] == [["ghost1", "ghost2"]], meta
    return False


@behaviour("tls_force_renewal", "roles/tls/tasks/collect.yml", "roles/tls/tasks/report.yml")
def _tls_force(value, runs):
    run = runs.tls("force-" + value, "tls_force_renewal=%s" % value)
    assert run.rc == 0, run.messages()[-3000:]
    plan = run.fact("__tls_plan")
    assert plan and plan[0]["due"] in (True, False), plan
    on = plan[0]["due"]
    assert plan[0]["reason"].startswith("forced" if on else "not due"), plan
    would = list(run.results("Check mode - what a real run would renew"))
    assert bool([r for r in would if r.get("changed")]) is on, would
    return on


@behaviour("tls_use_ari", "roles/tls/tasks/collect.yml")
def _tls_ari(value, runs):
    run = runs.tls("ari-" + value, "tls_use_ari=%s" % value)
    assert run.rc == 0, run.messages()[-3000:]
    return bool([r for r in run.results("renewal window (ARI)") if not r.get("skipped") and "item" in r])


@behaviour("tls_acme_terms_agreed", "roles/tls/tasks/preflight.yml")
def _tls_terms(value, runs):
    run = runs.tls("terms-" + value, "tls_acme_terms_agreed=%s" % value)
    if run.rc == 0:
        return True
    assert 'tls_acme_terms_agreed is "false"' in run.messages(), run.messages()[-3000:]
    return False


# ---------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def tls_url(tmp_path_factory):
    """An HTTPS server on loopback with a self-signed certificate."""
    tmp = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem"),
                    "-days", "30", "-subj", "/CN=localhost"], check=True, capture_output=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # pylint: disable=arguments-differ
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp / "cert.pem"), str(tmp / "key.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "https://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tls_url):
    return Runs(tmp_path_factory.mktemp("string-booleans"), tls_url)


# ---------------------------------------------------------------------------------------------------
# Tests


def test_every_boolean_option_has_a_behaviour_case():
    """A boolean option (or a raw option that takes true/false) without a behaviour case fails here, and so does a
    role file using it that no case exercises."""
    options = {(role, name) for role, _entry, name in boolean_options()} | {(role, name) for name, role in BOOLISH.items()}
    assert len(options) >= 10, options
    problems = []
    for role, name in sorted(options):
        if name in LAB_ONLY or name in SCENARIO_COVERED:
            continue
        if name not in BEHAVIOUR:
            problems.append("%s: no behaviour case" % name)
            continue
        unexercised = set(uses(role, name)) - BEHAVIOUR[name][0]
        if unexercised:
            problems.append("%s: used in %s, which no behaviour case exercises" % (name, sorted(unexercised)))
    assert not problems, "\n".join(problems)


def test_every_entry_point_has_its_boolean_options():
    """Entry points that declare no options take main's (patching's preflight/plan/rollout/report): the list of
    (role, entry point, option) covers each of them."""
    entries = {(role, entry) for role, entry, _name in boolean_options()}
    assert {("patching", e) for e in ("main", "preflight", "plan", "rollout", "report")} <= entries, entries
    assert {("baseline", "main"), ("daily", "main"), ("runbook_end", "main"), ("runbook_end", "preflight")} <= entries, entries


@pytest.mark.parametrize("role,name", sorted({(role, name) for role, _entry, name in boolean_options()}))
def test_every_boolean_use_goes_through_bool(role, name):
    """Static guard: in tasks, templates, vars and playbooks a boolean option is only read as `x | bool`
    (or spelled out with `| string | lower in [...]`)."""
    bad = []
    pattern = re.compile(r"(?<![\w.])%s\b(?!\s*\|\s*bool\b)(?!\s*\|\s*string\s*\|\s*lower\s+in\b)" % re.escape(name))
    for path, expressions in uses(role, name).items():
        bad += ["%s: {{ %s }}" % (path, e.strip()) for e in expressions if pattern.search(e)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", sorted(SCENARIO_COVERED))
def test_scenario_covered_options_are_run_with_both_strings(name):
    """The scenario verifier passes the option as the string "true" and as the string "false" (keyword arguments
    that become -e extra vars) and its role reads it only through `| bool` (the static guard above)."""
    text = (ROOT / SCENARIO_COVERED[name]).read_text()
    for value in VALUES:
        assert re.search(r'\b%s="%s"' % (name, value), text), "%s never runs %s=\"%s\"" % (SCENARIO_COVERED[name], name, value)


@pytest.mark.parametrize("name", sorted(LAB_ONLY))
def test_lab_only_options_reach_a_bool_module_option(name):
    """Wiring only (the behaviour needs a lab host, see LAB_ONLY): the option is passed as `"{{ x | bool }}"` to a
    module option declared type bool."""
    role = [r for r, _e, n in boolean_options() if n == name][0]
    found = 0
    for path in role_files(role):
        if path.suffix == ".j2":
            continue
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            for module, args in task.items():
                if not isinstance(args, dict) or not module.startswith("dealerscope.ops."):
                    continue
                for param, value in args.items():
                    if isinstance(value, str) and re.search(r"\b%s\b" % name, value):
                        assert re.fullmatch(r"\{\{\s*%s\s*\|\s*bool\s*\}\}" % name, value), (path, module, param, value)
                        assert _module_option_type(module.split(".")[-1], param) == "bool", (module, param)
                        found += 1
    assert found, "%s is not passed to any module" % name


def _tasks(items):
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            yield item
            for key in ("block", "rescue", "always"):
                yield from _tasks(item.get(key))


def _module_option_type(module, param):
    source = (ROOT / "plugins" / "modules" / (module + ".py")).read_text()
    documentation = re.search(r"DOCUMENTATION\s*=\s*r?'''(.*?)'''", source, re.S) or re.search(r'DOCUMENTATION\s*=\s*r?"""(.*?)"""', source, re.S)
    return yaml.safe_load(documentation.group(1))["options"][param].get("type")


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("option", sorted(BEHAVIOUR))
def test_string_boolean_behaviour(option, value, runs):
    """`-e option=<value>` as a string: the role does what the value says ("false" is off, not a true string)."""
    seen_on = BEHAVIOUR[option][1](value, runs)
    assert seen_on in (True, False), "the %s case returned %r, not the behaviour it saw" % (option, seen_on)
    assert seen_on is (value == "true"), "-e %s=%s: the role behaved as if it were %s" % (option, value, "on" if seen_on else "off")


@pytest.mark.parametrize("value", VALUES)
def test_rollout_without_a_load_balancer(value, runs):
    """patching_lb_backend none with no load balancer host (preflight allows it): the rollout's load balancer tasks are
    skipped, not failed on `patching_lb_hosts | first` of an empty list ("No first item")."""
    run = runs.rollout(value, lb_hosts=())
    assert run.rc == 0, run.messages()[-3000:]
    assert not any(r.get("failed") for r in run.results()), run.messages()[-3000:]
    assert "No first item" not in run.text(), run.text()[-3000:]
    assert run.data["stats"]["localhost"]["failures"] == 0, run.data["stats"]
    halt = run.fact("halt_record")
    if value == "true":
        assert halt is None, halt
    else:
        assert halt and halt["phase"] == "window", halt  # the rollout ran up to its window re-check, as with a load balancer


@pytest.mark.parametrize("role,name", sorted({(role, name) for role, _entry, name in boolean_options()}))
def test_a_switch_that_is_not_a_boolean_is_refused(role, name, runs):
    """`-e option=maybe` is refused naming the option (role argument validation for baseline and daily, the patching
    preflight for the patch playbook, whose entry points do not type-check) - never read as false."""
    if role == "patching":
        run = runs.patch("maybe-" + name, "%s=maybe" % name)
    elif role == "daily":
        run = playbook("dealerscope.ops.daily", runs.local, ["%s=maybe" % name, {"daily_report_dir": str(runs.tmp / "daily-maybe")}])
    elif role == "firewall":
        run = runs.firewall("maybe-" + name, "%s=maybe" % name)
    elif role == "tls":
        run = runs.tls("maybe-" + name, "%s=maybe" % name)
    elif role in ("deploy", "rollback"):
        # ghosts (app hosts at a closed port): argument validation refuses before any host is contacted
        run = playbook("dealerscope.ops." + role, runs.ghosts, ["%s=maybe" % name, {role + "_report_dir": str(runs.tmp / (role + "-maybe"))}])
        assert "UNREACHABLE" not in run.messages()
    elif role == "backup":
        # a ghost primary (closed port): argument validation refuses before the host is contacted
        inventory = runs.tmp / "ghost-primary.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"db_primary": {"hosts": {
            "ghostdb1": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root"}}}}}}))
        run = playbook("dealerscope.ops.backup", inventory, ["%s=maybe" % name, {"backup_report_dir": str(runs.tmp / "backup-maybe")}])
        assert "UNREACHABLE" not in run.messages()
    elif role in ("dr", "schedule"):
        # ghost hosts (closed port): the entry point's argument validation refuses before any host is contacted
        inventory = runs.tmp / "ghost-fleet.yml"
        ghost = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root"}
        inventory.write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": {host: ghost}} for group, host in (
            ("db_primary", "ghostdb1"), ("db_standby", "ghostdb2"), ("app", "ghostapp1"), ("ops_runners", "ghostrunner1"))}}}))
        runbook = {"dr": "dealerscope.ops.dr_drill", "schedule": "dealerscope.ops.schedule"}[role]
        run = playbook(runbook, inventory, ["%s=maybe" % name, {"dr_report_dir": str(runs.tmp / "dr-maybe")}])
        assert "UNREACHABLE" not in run.messages()
    elif role == "controller":
        # argument validation refuses before the controller (none here) is contacted
        run = playbook("dealerscope.ops.controller", runs.local, ["%s=maybe" % name, {"controller_host": "https://127.0.0.1:9"}])
        assert not list(run.results("Apply - ")), "the controller was contacted"
    elif role == "runbook_end":
        run = playbook(str(runs.ending_play), runs.local, ["%s=maybe" % name, {"runbook_end_report_dir": str(runs.tmp / "ending-maybe")}])
        assert not (runs.tmp / "ending-maybe").exists()
    else:
        play = runs.tmp / "baseline-main.yml"
        play.write_text("- name: Baseline main entry point\n  hosts: localhost\n  gather_facts: false\n  roles: [dealerscope.ops.baseline]\n")
        run = playbook(str(play), runs.local, ["%s=maybe" % name], check=True)
    assert run.rc != 0 and name in run.messages(), run.messages()[-2000:]
    assert not any(r.get("changed") for r in run.results()), "something ran after the bad switch"
