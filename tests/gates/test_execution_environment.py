"""The execution environment and the AWX project layout (issue 9), proven without a base image:

* `ansible-builder create` turns execution-environment.yml into a build context that installs the collection from its
  own build;
* ansible-builder's own introspection, run on the collection as built and installed, finds meta/execution-environment.yml
  and lists every third-party library the controller side imports (a plugin that imports a new library fails here
  until the list names it), and bindep parses the system list;
* collections/requirements.yml (what an AWX project sync installs) installs this checkout as dealerscope.ops and names
  exactly galaxy.yml's dependencies, and the Galaxy tarball carries neither the lab's inventory nor project files.

The image itself is built from the lab's Debian image by lab/bin/ee-build.sh (make ee, before the suite) and a job runs
in it in molecule/daily/tests/test_runner.py (see docs/awx.md)."""
import ast
import os
import pathlib
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
# Controller-side code: every import here runs in the execution environment.
CONTROLLER_DIRS = ("plugins/filter", "plugins/action", "plugins/plugin_utils", "plugins/callback", "plugins/lookup")
# Modules the roles run on the controller (delegate_to: localhost, or tls_probe_from empty).
CONTROLLER_MODULES = ("http_probe", "ops_notify", "tls_info", "runbook_end")
PROVIDED_BY_ANSIBLE_CORE = {"ansible", "ansible_collections", "jinja2", "markupsafe", "yaml"}
DISTRIBUTION = {"netaddr": "netaddr", "jsonschema": "jsonschema", "cryptography": "cryptography", "zoneinfo": "tzdata"}


def _run(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("ee")
    result = _run([BIN / "ansible-galaxy", "collection", "build", "--force", "--output-path", base / "dist", ROOT], cwd=base)
    assert result.returncode == 0, result.stdout + result.stderr
    return base, next((base / "dist").glob("dealerscope-ops-*.tar.gz"))


OWN_UTILS = "ansible_collections.dealerscope.ops.plugins.module_utils."


def _imports(path, seen=None):
    """Top-level names `path` imports, following the collection's own module_utils it imports."""
    seen = set() if seen is None else seen
    seen.add(path)
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
            if node.module.startswith(OWN_UTILS):
                util = ROOT / "plugins" / "module_utils" / (node.module[len(OWN_UTILS):].replace(".", "/") + ".py")
                if util.is_file() and util not in seen:
                    names |= _imports(util, seen)
    return names


def controller_imports():
    files = [p for d in CONTROLLER_DIRS for p in sorted((ROOT / d).glob("*.py"))]
    files += [ROOT / "plugins" / "modules" / ("%s.py" % m) for m in CONTROLLER_MODULES]
    names = set()
    for path in files:
        names |= _imports(path)
    return sorted(n for n in names if n not in sys.stdlib_module_names and n not in PROVIDED_BY_ANSIBLE_CORE) + (
        ["zoneinfo"] if any("zoneinfo" in _imports(p) for p in files) else [])


def test_ansible_builder_creates_a_context_installing_the_collection_from_its_build(built, tmp_path):
    base, tarball = built
    staged = ROOT / ".build" / "ee-input"
    staged.mkdir(parents=True, exist_ok=True)
    (staged / "dealerscope-ops.tar.gz").write_bytes(tarball.read_bytes())
    result = _run([BIN / "ansible-builder", "create", "-f", ROOT / "execution-environment.yml", "-c", tmp_path / "ctx"], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    context = tmp_path / "ctx"
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "introspect.py introspect" in containerfile
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert {"name": "collections/dealerscope-ops.tar.gz", "type": "file"} in requirements["collections"]
    assert (context / "_build" / "collections" / "dealerscope-ops.tar.gz").read_bytes() == tarball.read_bytes()


def test_the_collections_ee_metadata_names_every_library_its_controller_side_imports(built, tmp_path):
    base, tarball = built
    # --force: under `make test` dealerscope.ops is already on the configured collections path, and ansible-galaxy would
    # otherwise install nothing ("already installed")
    result = _run([BIN / "ansible-galaxy", "collection", "install", "--force", "--offline", "--no-deps", "-p", tmp_path / "c", tarball], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "c" / "ansible_collections" / "dealerscope" / "ops" / "meta" / "execution-environment.yml").is_file(), result.stdout
    script = pathlib.Path(_run([BIN / "python", "-c", "import ansible_builder, os; print(os.path.dirname(ansible_builder.__file__))"]).stdout.strip())
    introspect = _run([BIN / "python", script / "_target_scripts" / "introspect.py", "introspect", tmp_path / "c"])
    assert introspect.returncode == 0, introspect.stdout + introspect.stderr
    found = yaml.safe_load(introspect.stdout)
    python = {line.split("#")[0].strip().split(">")[0].split("=")[0].strip().lower() for line in found["python"]}
    needed = controller_imports()
    assert set(needed) >= {"jsonschema", "netaddr", "cryptography", "zoneinfo"}, needed  # the scan itself works
    missing = sorted(DISTRIBUTION.get(name, name) for name in needed if DISTRIBUTION.get(name, name).lower() not in python)
    assert not missing, "meta/ee-requirements.txt lacks %s (imported on the controller)" % missing
    assert "ansible-runner" in python
    assert any(line.startswith("tzdata ") for line in found["system"]), found["system"]
    parsed = _run([BIN / "bindep", "-f", ROOT / "meta" / "ee-bindep.txt", "-b"])
    assert parsed.returncode in (0, 1) and "Traceback" not in parsed.stderr, parsed.stderr  # 1: packages not installed here


def test_an_awx_project_sync_installs_this_checkout_and_the_collections_it_uses(tmp_path):
    requirements = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())["collections"]
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert {"name": "./", "type": "dir"} in requirements
    named = {entry["name"]: entry.get("version") for entry in requirements if entry.get("type") != "dir"}
    assert named == galaxy["dependencies"], "collections/requirements.yml and galaxy.yml dependencies disagree"
    local = tmp_path / "requirements.yml"
    local.write_text(yaml.safe_dump({"collections": [{"name": str(ROOT), "type": "dir"}]}))
    result = _run([BIN / "ansible-galaxy", "collection", "install", "--force", "--offline", "--no-deps", "-r", local, "-p", tmp_path / "c"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = tmp_path / "c" / "ansible_collections" / "dealerscope" / "ops"
    assert (installed / "playbooks" / "daily.yml").is_file() and not (installed / ".venv").exists()


def test_the_galaxy_tarball_carries_no_lab_inventory_and_no_project_files(built):
    names = tarfile.open(built[1]).getnames()
    assert not [n for n in names if n.startswith(("inventories/lab", "collections/", "molecule/", "lab/", ".venv"))], names[:50]
    assert "execution-environment.yml" not in names and "meta/execution-environment.yml" in names
    assert os.path.basename(built[1]).startswith("dealerscope-ops-")
