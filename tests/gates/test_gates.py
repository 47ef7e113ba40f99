"""Static gates, run first by `make test`: yamllint, ansible-lint (production), ansible-test sanity,
argument specs that match defaults, and a changelog fragment for the change."""
import os
import pathlib
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE_DIRS = sorted(p for p in list((ROOT / "roles").glob("*")) + list((ROOT / "lab" / "roles").glob("*")) if p.is_dir())


def _run(argv, **kwargs):
    env = dict(os.environ, NO_COLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False, **kwargs)


def test_yamllint():
    result = _run(["yamllint", "-s", "-f", "parsable", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile():
    result = _run(["ansible-lint", "--profile", "production", "--nocolor"])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]


def test_ansible_test_sanity():
    result = _run(["bash", "tests/sanity/run.sh"], timeout=1200)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def test_argument_specs_match_defaults():
    problems = []
    for role in ROLE_DIRS:
        specs_file = role / "meta" / "argument_specs.yml"
        defaults_file = role / "defaults" / "main.yml"
        if not specs_file.exists():
            problems.append("%s: no meta/argument_specs.yml" % role.name)
            continue
        defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
        specs = yaml.safe_load(specs_file.read_text())["argument_specs"]
        options = specs["main"].get("options", {})
        if set(options) != set(defaults):
            problems.append("%s: only in specs %s, only in defaults %s" % (
                role.name, sorted(set(options) - set(defaults)), sorted(set(defaults) - set(options))))
        for name in defaults:
            if not name.startswith(role.name + "_"):
                problems.append("%s: public variable %s lacks the role prefix" % (role.name, name))
    assert not problems, "\n".join(problems)


def test_changelog_fragments_are_valid():
    result = _run(["antsibull-changelog", "lint"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert list((ROOT / "changelogs" / "fragments").glob("*.yml")), "no changelog fragment"


def test_role_readmes_are_generated_from_argument_specs():
    result = _run([str(ROOT / ".venv" / "bin" / "python"), "tools/role_readme.py", "--check"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_doc_lists_the_collection_modules():
    result = _run(["ansible-doc", "-t", "module", "-l", "dealerscope.ops"])
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    expected = {"dealerscope.ops." + p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}
    assert expected and expected <= listed, (expected, listed)


def test_collection_builds_small_and_without_lab_clutter(tmp_path):
    result = _run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(ROOT)])
    assert result.returncode == 0, result.stdout + result.stderr
    tarball = next(tmp_path.glob("dealerscope-ops-*.tar.gz"))
    assert tarball.stat().st_size < 1024 * 1024, tarball.stat().st_size
    import tarfile
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    for forbidden in ("lab/", "molecule/", ".venv/", ".lab/", ".build/", "tests/output/", "bench/"):
        assert not [n for n in names if n.startswith(forbidden)], forbidden
    for required in ("roles/baseline/tasks/main.yml", "plugins/modules/sshd_access_check.py", "playbooks/smoke.yml", "meta/runtime.yml"):
        assert required in names, required
