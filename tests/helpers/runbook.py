"""Helpers for verifiers that run a runbook again against a Molecule scenario's hosts."""
import contextlib
import json
import os
import pathlib
import re
import subprocess
import urllib.request

EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
PROJECT = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", pathlib.Path(__file__).resolve().parents[2]))
RECEIVER = "http://127.0.0.1:8765"


def inventory_dir():
    return os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])


def scenario_extra_vars():
    """The extra vars the scenario's molecule.yml gives Molecule's own runs (one source)."""
    import yaml  # pylint: disable=import-outside-toplevel
    config = yaml.safe_load((pathlib.Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "molecule.yml").read_text())
    text = os.path.expandvars(config.get("provisioner", {}).get("options", {}).get("extra-vars", ""))
    return dict(item.split("=", 1) for item in text.split())


def run_playbook(playbook, *args, extra_vars=None, timeout=300):
    """ansible-playbook against the scenario inventory with the scenario's extra vars."""
    extra = scenario_extra_vars()
    extra.update(extra_vars or {})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".build" / "collections"), ANSIBLE_FORCE_COLOR="0", NO_COLOR="1",
               ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_INVENTORY=inventory_dir())
    argv = [str(PROJECT / ".venv" / "bin" / "ansible-playbook"), "-i", inventory_dir(), playbook, "-e", json.dumps(extra), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=str(PROJECT))


def run_module(host, module, args, *options, timeout=120):
    """One module on one scenario host (ad hoc, real SSH); its result as the json callback returns it."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".build" / "collections"), ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", NO_COLOR="1")
    argv = [str(PROJECT / ".venv" / "bin" / "ansible"), "-i", inventory_dir(), host, "-m", module, "-a", json.dumps(args),
            "-e", json.dumps(scenario_extra_vars()), *options]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=str(PROJECT))
    try:
        output = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError("%s on %s: no JSON result (rc=%s): %s %s" % (module, host, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])) from exc
    return output["plays"][0]["tasks"][0]["hosts"][host]


def changed_tasks(output, skip_ending=False):
    """(task, host) pairs reported changed, from the default callback's output; with `skip_ending`, without the
    runbook ending's tasks (its report on the controller changes at every run)."""
    found, task = [], None
    for line in output.splitlines():
        header = re.match(r"^TASK \[(.*)\] \*+", line)
        if header:
            task = header.group(1)
        match = re.match(r"^changed: \[([^\]\s]+)", line)
        if match and not (skip_ending and task.startswith("dealerscope.ops.runbook_end")):
            found.append((task, match.group(1)))
    return found


def latest_report(runbook="daily"):
    base = EPHEMERAL / "reports" / runbook / "latest"
    return json.loads((base / "report.json").read_text()), base


def checks_by(report, host):
    return {c["name"]: c for c in report["hosts"][host]["checks"]}


def receiver_messages():
    with urllib.request.urlopen(RECEIVER + "/messages", timeout=5) as resp:
        return json.loads(resp.read())


def receiver_clear():
    req = urllib.request.Request(RECEIVER + "/messages", method="DELETE")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status


def on(host, command):
    """Run a shell command on a scenario host over real SSH; fail the test if it fails."""
    from helpers.molecule_ssh import ssh  # pylint: disable=import-outside-toplevel
    result = ssh(host, command)
    assert result.returncode == 0, "%s: %s failed: %s" % (host, command, result.stderr)
    return result.stdout


def daily(*args, **kwargs):
    """Run dealerscope.ops.daily again; return the process result and the report it wrote."""
    result = run_playbook("dealerscope.ops.daily", *args, **kwargs)
    report, base = latest_report()
    return result, report, base


@contextlib.contextmanager
def app_fault(fault, hosts=("app1", "app2")):
    """Inject a fault into the sample API on `hosts` (lab/app: /etc/dealerscope/faults.json); heal on exit."""
    for host in hosts:
        on(host, "echo '%s' > /etc/dealerscope/faults.json" % json.dumps(fault))
    try:
        yield
    finally:
        for host in hosts:
            on(host, "rm -f /etc/dealerscope/faults.json")
