"""Suite-wide scheduling for `make test` (pytest-xdist, `-n 2 --dist loadscope`).

Two lanes on a 2-core machine. Every test that starts, reboots or removes podman containers runs in one
lane, one after another: the Molecule scenarios (tests/integration/test_molecule.py; stack scenarios also
share the published LB port and the webhook receiver) and the lab end-to-end test (tests/integration/
test_lab.py). Podman 4.3's network stack (netavark, aardvark-dns) is not safe against a second podman
process changing networks at the same moment: with the two in separate lanes, a lab host rebooted by
test_lab.py was sometimes never restarted by podman (events `died`, `restart`, then nothing) while Molecule
created containers, and a Molecule host could not resolve its NTP server while the lab was being recreated.

The scheduler is loadscope with one change (pytest_xdist_make_scheduler): both modules are one scope,
"podman". (`--dist loadgroup` with xdist_group marks cannot do it here: pytest-xdist 3.8 renames the node
ids through `item._nodeid`, which pytest 9.2 no longer reads, so every marked test was scheduled alone.)
Every other module stays its own scope, so its module fixtures are set up once. The podman scope is sorted
first so that it gets a worker from the start; `--no-loadscope-reorder` keeps this order. xdist hands each
worker two scopes at the start, so the scope sorted right after the podman one waits for it: that place goes
to a short module of pure-logic unit tests. Without xdist only the order changes.

The podman lane is the suite's critical path (the other lane ends tens of minutes earlier), and on 2 cores the
other lane's gates (ansible-lint, ansible-test sanity) slowed every scenario that ran beside them: a scenario
took 151 s beside them and 130 s alone. Under xdist each test therefore runs at a niceness set by its lane
(pytest_runtest_setup): 0 in the podman lane, OTHER_LANE_NICENESS elsewhere, inherited by the processes it starts.
"""

import os

import pytest

PODMAN_MODULES = ("tests/integration/test_molecule.py", "tests/integration/test_lab.py")
PODMAN_SCOPE = "podman"
AFTER_PODMAN = "tests/unit/plugins/filter/test_patch_traffic.py"
OTHER_LANE_NICENESS = 10


def _module(nodeid):
    return nodeid.split("::", 1)[0]


def _rank(item):
    module = _module(item.nodeid)
    if module in PODMAN_MODULES:
        return (0, PODMAN_MODULES.index(module))
    if module == AFTER_PODMAN:
        return (1, 0)
    return (2, 0)


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: the order inside each rank stays pytest's


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    niceness = 0 if _module(item.nodeid) in PODMAN_MODULES else OTHER_LANE_NICENESS
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except PermissionError:
        pass  # only root may lower a niceness again: a worker that is not root keeps the one it has


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling  # pylint: disable=import-outside-toplevel

    class PodmanLaneScheduling(LoadScopeScheduling):
        """loadscope, with every podman-changing module in one scope."""

        def _split_scope(self, nodeid):
            if _module(nodeid) in PODMAN_MODULES:
                return PODMAN_SCOPE
            return super()._split_scope(nodeid)

    return PodmanLaneScheduling(config, log)
