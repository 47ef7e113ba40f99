"""Bad-input tests for runbook playbooks: an inventory whose hosts are a closed port, so any contact
with a host shows up as UNREACHABLE instead of the preflight message the test expects."""
import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


def closed_port_inventory(path, hosts=("ghost1",), extra_groups=""):
    """Write an inventory with `hosts` in group app (under dealerscope), all at 127.0.0.1:1; return its path."""
    lines = ["all:", "  children:", "    dealerscope:", "      children:", "        app:", "          hosts:"]
    lines += ["            %s: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}" % host for host in hosts]
    path.write_text("\n".join(lines) + "\n" + extra_groups)
    return path


def run(inventory, playbook, extra_vars, args=()):
    """ansible-playbook `playbook` against `inventory` with `extra_vars` (JSON) and `args`, with the repo's ansible.cfg."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), playbook, "-e", json.dumps(extra_vars), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def contacted(output):
    return "UNREACHABLE" in output or "unreachable=1" in output


def assert_refused_before_contact(result, needle, secrets=()):
    """The run failed, its output says `needle`, no host was contacted and no secret was shown."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert needle in output, output[-3000:]
    assert not contacted(output), output[-3000:]
    for secret in secrets:
        assert secret not in output, "a secret is shown"
    return output
