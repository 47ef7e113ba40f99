"""Suite-wide ordering for `make test` (pytest-xdist, `-n 2 --dist loadscope`).

Two lanes on a 2-core machine: the Molecule scenarios are one module (tests/integration/test_molecule.py),
so loadscope keeps them on one worker, one after another - stack scenarios share the published LB port and
the webhook receiver, so they must never overlap. Moving that module first gives it a worker from the start;
the other worker takes everything else (gates, unit tests, the lab end-to-end test, the real haproxy/nginx
tests, bad-input tests). `--no-loadscope-reorder` keeps this order (xdist otherwise sorts modules by test
count, which put the scenarios last). xdist gives each worker two modules at the start, so the third module
in this order (tests/gates/test_prereqs.py, 15 s) waits for the scenarios. Without xdist the order changes
nothing but the order.
"""


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/integration/test_molecule.py") else 1)
