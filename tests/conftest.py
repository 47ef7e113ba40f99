"""Suite-wide scheduling for `make test` (pytest-xdist, `-n 2 --dist loadgroup`).

Two lanes on a 2-core machine. Every test that starts, reboots or removes podman containers runs in one
lane, one after another: the Molecule scenarios (tests/integration/test_molecule.py; stack scenarios also
share the published LB port and the webhook receiver) and the lab end-to-end test (tests/integration/
test_lab.py). Podman 4.3's network stack (netavark, aardvark-dns) is not safe against a second podman
process changing networks at the same moment: with the two in separate lanes, a lab host rebooted by
test_lab.py was sometimes never restarted by podman (events `died`, `restart`, then nothing) while Molecule
created containers, and a Molecule host could not resolve its NTP server while the lab was being recreated.

Every other test module is its own group, so its module fixtures are set up once (as with loadscope). The
podman group is sorted first so that it gets a worker from the start; `--no-loadscope-reorder` keeps this
order. xdist hands each worker two groups at the start, so the group sorted right after the podman group
waits for it: that place goes to a short module of pure-logic unit tests (tests/unit/plugins/
filter/test_patch_traffic.py). Without xdist the marks change nothing but the order.
"""

import pytest

PODMAN_MODULES = ("tests/integration/test_molecule.py", "tests/integration/test_lab.py")
AFTER_PODMAN = "tests/unit/plugins/filter/test_patch_traffic.py"


def _module(item):
    return item.nodeid.split("::", 1)[0]


def _rank(item):
    module = _module(item)
    if module in PODMAN_MODULES:
        return (0, PODMAN_MODULES.index(module))
    if module == AFTER_PODMAN:
        return (1, 0)
    return (2, 0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: the order inside each rank stays pytest's
    for item in items:
        module = _module(item)
        item.add_marker(pytest.mark.xdist_group("podman" if module in PODMAN_MODULES else module))
