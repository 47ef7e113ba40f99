"""Every Molecule scenario as one pytest test, named after the scenario."""
import os
import pathlib
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
LOG_DIR = ROOT / "tests" / "output" / "molecule"
SCENARIO_BUDGET_S = 240  # issue 2: no single scenario over 4 minutes


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / ("%s.log" % scenario)
    env = dict(os.environ)
    env.update({
        "CONTAINERS_CONF": str(ROOT / "lab" / "containers.conf"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build" / "collections"),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    })
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(["molecule", "test", "-s", scenario], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, check=False, timeout=900)
    elapsed = time.monotonic() - started
    with open(LOG_DIR / "durations.tsv", "a", encoding="utf-8") as durations:
        durations.write("%s\t%.1f\t%d\n" % (scenario, elapsed, result.returncode))
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]
    assert result.returncode == 0, "molecule test -s %s failed (log %s):\n%s" % (scenario, log, "\n".join(tail))
    assert elapsed <= SCENARIO_BUDGET_S, "scenario %s took %.0f s (budget %d s)" % (scenario, elapsed, SCENARIO_BUDGET_S)


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    missing = [role for role in roles if role not in SCENARIOS]
    assert not missing, "roles without a Molecule scenario: %s" % missing
