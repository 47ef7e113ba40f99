"""Every Molecule scenario as one pytest test, named after the scenario."""
import os
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.lab_conf import containers_conf  # noqa: E402  pylint: disable=wrong-import-position

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
LOG_DIR = ROOT / "tests" / "output" / "molecule"
SCENARIO_BUDGET_S = 240  # issue 2: no single scenario over 4 minutes
STACK_READY_BUDGET_S = 25  # issue 7: create + converge to a provisioned, ready stack


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / ("%s.log" % scenario)
    env = dict(os.environ)
    env.update({
        "CONTAINERS_CONF": containers_conf(),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build" / "collections"),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    })
    # Molecule's ephemeral directory is removed by destroy: the stack timings are copied out of it by
    # molecule/_shared/stack.yml's recorder into MOLECULE_TIMINGS (one file per scenario).
    timings = LOG_DIR / ("%s.timings" % scenario)
    timings.unlink(missing_ok=True)
    env["DSLAB_TIMINGS_FILE"] = str(timings)
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(["molecule", "test", "-s", scenario], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, check=False, timeout=900)
    elapsed = time.monotonic() - started
    stack = dict(line.split("=", 1) for line in timings.read_text().split()) if timings.exists() else {}
    with open(LOG_DIR / "durations.tsv", "a", encoding="utf-8") as durations:
        timing = " ".join("%s=%s" % item for item in sorted(stack.items()))
        durations.write("%s\t%.1f\t%d\t%s\n" % (scenario, elapsed, result.returncode, timing))
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]
    assert result.returncode == 0, "molecule test -s %s failed (log %s):\n%s" % (scenario, log, "\n".join(tail))
    if stack.get("built") == "yes":
        # This scenario built the provisioned images (first after a change): that time is the build's.
        budget = SCENARIO_BUDGET_S + float(stack.get("build_s", 0))
    else:
        budget = SCENARIO_BUDGET_S
    assert elapsed <= budget, "scenario %s took %.0f s (budget %d s)" % (scenario, elapsed, budget)
    if _uses_stack(scenario):
        assert "ready_s" in stack, "stack scenario %s recorded no stack start-up time" % scenario
        if stack.get("built") != "yes":
            assert float(stack["ready_s"]) <= STACK_READY_BUDGET_S, (
                "scenario %s: create + provisioned stack took %s s (budget %d s): %s s to create the containers, %s s "
                "to the readiness check, then per host and phase of it: %s (load1 %s)" % (
                    scenario, stack["ready_s"], STACK_READY_BUDGET_S, stack.get("create_s", "?"), stack.get("checks_s", "?"),
                    stack.get("phases", "?"), stack.get("load1", "?")))


def _uses_stack(scenario):
    text = (ROOT / "molecule" / scenario / "molecule.yml").read_text()
    return "lab_stack: true" in text


# Roles with no playbook of their own, only called by other roles: their scenarios are those of the roles that call
# them (each must really include the role, checked below).
SHARED_ROLES = {"runbook_end": ("daily", "patching", "firewall", "tls")}
# Roles proven by the scenario of the capability they belong to (rollback undoes what deploy did).
PROVEN_BY = {"rollback": "deploy_faults"}
# Roles whose target is an API the lab cannot run (AWX: no registry for its images, not on PyPI): proven up to the
# API's door by the named test, which runs the role's playbook.
API_ROLES = {"controller": "tests/integration/test_controller.py"}


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    missing = [role for role in roles if role not in SCENARIOS and role not in SHARED_ROLES and role not in PROVEN_BY and role not in API_ROLES]
    for role, test in API_ROLES.items():
        assert "playbooks/%s.yml" % role in (ROOT / test).read_text(), "%s does not run the %s playbook" % (test, role)
    assert not missing, "roles without a Molecule scenario: %s" % missing
    for role, scenario in PROVEN_BY.items():
        verifier = "".join(path.read_text() for path in (ROOT / "molecule" / scenario / "tests").glob("*.py"))
        assert scenario in SCENARIOS and "dealerscope.ops.%s" % role in (ROOT / "tests" / "helpers" / "deploy.py").read_text() + verifier, \
            "%s is proven by scenario %s, which does not run it" % (role, scenario)
        assert "%s(" % role in verifier, "scenario %s's verifier never runs %s" % (scenario, role)
    for role, callers in SHARED_ROLES.items():
        for caller in callers:
            assert caller in SCENARIOS, "%s is proven by scenario %s, which does not exist" % (role, caller)
            tasks = "".join(path.read_text() for path in (ROOT / "roles" / caller / "tasks").glob("*.yml"))
            assert "name: dealerscope.ops.%s" % role in tasks, "role %s does not call %s" % (caller, role)
