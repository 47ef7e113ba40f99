"""The suite's scheduler (tests/conftest.py) really puts every podman-changing module in one xdist lane.

A synthetic tree with the same module names and tests/conftest.py is run with `make test`'s xdist options;
each test records its worker. Found necessary: with `--dist loadgroup` and xdist_group marks, pytest 9.2 +
pytest-xdist 3.8 silently scheduled every marked test alone, and two Molecule scenarios ran at once.
"""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULE = """import os
import time

import pytest


@pytest.mark.parametrize("i", range(4))
def test_lane(i):
    time.sleep(0.2)
    with open(os.environ["LANES_LOG"], "a", encoding="utf-8") as log:
        log.write("%s %s %d\\n" % (__name__.rsplit(".", 1)[-1], os.environ["PYTEST_XDIST_WORKER"],
                                   os.getpriority(os.PRIO_PROCESS, 0)))
"""


def test_podman_modules_share_one_lane_and_the_rest_runs_beside_them(tmp_path):
    tree = tmp_path / "tree"
    (tree / "tests" / "integration").mkdir(parents=True)
    (tree / "tests" / "unit").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "conftest.py", tree / "tests" / "conftest.py")
    for name in ("integration/test_molecule.py", "integration/test_lab.py", "unit/test_other.py", "unit/test_more.py"):
        (tree / "tests" / name).write_text(MODULE)
    log = tmp_path / "lanes.log"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadscope",
                             "--no-loadscope-reorder", "tests"], cwd=tree, env={"LANES_LOG": str(log), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lanes, niceness = {}, {}
    for line in log.read_text().splitlines():
        module, worker, nice = line.split()
        lanes.setdefault(module, set()).add(worker)
        niceness.setdefault(module, set()).add(int(nice))
    assert lanes["test_molecule"] == lanes["test_lab"] and len(lanes["test_molecule"]) == 1, lanes
    others = lanes["test_other"] | lanes["test_more"]
    assert others - lanes["test_molecule"], "nothing ran beside the podman lane: %s" % lanes
    # The podman lane runs at niceness 0, the other at OTHER_LANE_NICENESS (as root, CI's case: lowering it back
    # needs root, and the podman lane's worker also runs the other lane's tests after the scenarios).
    assert niceness["test_molecule"] == niceness["test_lab"] == {0}, niceness
    assert niceness["test_other"] == niceness["test_more"] == {10}, niceness
