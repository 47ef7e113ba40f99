"""Static gates, run first by `make test`: yamllint, ansible-lint (production), ansible-test sanity,
argument specs that match defaults, and a changelog fragment for the change."""
import os
import pathlib
import re
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
        # every entry point's options are role defaults; together they are all of them
        options = set()
        for entry, spec in specs.items():
            extra = set(spec.get("options", {})) - set(defaults)
            if extra:
                problems.append("%s: entry point %s has options without a default: %s" % (role.name, entry, sorted(extra)))
            options |= set(spec.get("options", {}))
        if set(options) != set(defaults):
            problems.append("%s: only in specs %s, only in defaults %s" % (
                role.name, sorted(set(options) - set(defaults)), sorted(set(defaults) - set(options))))
        for name in defaults:
            if not name.startswith(role.name + "_"):
                problems.append("%s: public variable %s lacks the role prefix" % (role.name, name))
    assert not problems, "\n".join(problems)


def _releases():
    return set(((yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text()) or {}).get("releases") or {}))


def _galaxy_version():
    return yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def test_changelog_fragments_are_valid():
    result = _run(["antsibull-changelog", "lint"])
    assert result.returncode == 0, result.stdout + result.stderr
    # Right after a release the fragments are in changelog.yaml; otherwise the unreleased changes have fragments.
    assert list((ROOT / "changelogs" / "fragments").glob("*.yml")) or _galaxy_version() in _releases(), "no changelog fragment"


def _versions_added(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "version_added":
                yield str(value)
            else:
                yield from _versions_added(value)
    elif isinstance(node, list):
        for value in node:
            yield from _versions_added(value)


def test_version_added_names_a_release_of_this_collection():
    """Every version_added (plugins and their options) is a released version or the version being prepared
    (galaxy.yml's); a plugin never claims a release it is not in."""
    allowed = _releases() | {_galaxy_version()}
    problems = []
    for path in sorted((ROOT / "plugins").glob("*/*.py")):
        match = re.search(r'^DOCUMENTATION = r?"""(.*?)^"""', path.read_text(), re.S | re.M)
        if not match:
            continue
        for version in set(_versions_added(yaml.safe_load(match.group(1)))):
            if version not in allowed:
                problems.append("%s: version_added %s (releases %s, preparing %s)" % (
                    path.relative_to(ROOT), version, sorted(_releases()), _galaxy_version()))
    assert not problems, "\n".join(problems)


PLACEHOLDER_HOSTS = re.compile(r"(?i)\b[\w.-]*\.(invalid|example|test|localhost)\b|\bexample\.(com|org|net)\b")


def test_galaxy_metadata_names_no_placeholder_address():
    """galaxy.yml claims only what is real: no URL or address on a reserved placeholder domain (RFC 2606)."""
    meta = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    fields = [str(meta.get(key) or "") for key in ("repository", "documentation", "homepage", "issues")] + list(meta["authors"])
    assert [field for field in fields if PLACEHOLDER_HOSTS.search(field)] == []
    assert PLACEHOLDER_HOSTS.search("https://example.invalid/x") and PLACEHOLDER_HOSTS.search("a <ops@dealerscope.invalid>")


def test_requires_ansible_is_the_floor_ci_proves():
    """meta/runtime.yml's requires_ansible and the roles' min_ansible_version claim no older ansible-core than the one
    the suite runs on (requirements.txt's pin, what CI installs)."""
    pinned = re.search(r"^ansible-core==([0-9]+)\.([0-9]+)\.", (ROOT / "requirements.txt").read_text(), re.M)
    floor = "%s.%s" % pinned.groups()
    requires = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    assert re.match(r"^>=%s\.0(,|$)" % re.escape(floor), requires), "requires_ansible %s, but CI proves %s" % (requires, floor)
    for meta in sorted((ROOT / "roles").glob("*/meta/main.yml")):
        found = str(yaml.safe_load(meta.read_text())["galaxy_info"]["min_ansible_version"])
        assert found == floor, "%s: min_ansible_version %s, but CI proves %s" % (meta.relative_to(ROOT), found, floor)


# Changelog coverage: since the last release, every change to a role, plugin or playbook is named by a fragment
# added or edited no earlier than the change (antsibull-changelog's convention "<name> - ..."; changes users do not
# see go under `trivial:`). A module_utils file is named by itself or by any plugin (or module_utils) that imports it.
VERSION_TAG = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")


def _git(repo, *argv):
    result = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, text=True, check=False)
    assert result.returncode == 0, "git %s: %s" % (" ".join(argv), result.stderr)
    return result.stdout


def _changelog_area(path):
    """The name a fragment must mention for a change to `path`, or None when the path needs no fragment."""
    match = (re.match(r"roles/([^/]+)/", path) or re.match(r"plugins/[a-z_]+/([A-Za-z0-9_]+)\.py$", path)
             or re.match(r"playbooks/([^/]+)\.ya?ml$", path))
    return match.group(1) if match and match.group(1) != "__init__" else None


def _last_release(repo):
    """The newest version tag reachable from HEAD; else the last commit that recorded a release in changelog.yaml; else None."""
    tags = [t for t in _git(repo, "tag", "--merged", "HEAD", "--sort=-creatordate").split() if VERSION_TAG.match(t)]
    if tags:
        return _git(repo, "rev-list", "-n", "1", tags[0]).strip()
    changelog = pathlib.Path(repo) / "changelogs" / "changelog.yaml"
    if changelog.exists() and (yaml.safe_load(changelog.read_text()) or {}).get("releases"):
        return _git(repo, "log", "-1", "--format=%H", "--", "changelogs/changelog.yaml").strip() or None
    return None


def uncovered_changes(repo):
    """[(area, where, subject)] for changes since the last release that no later-or-same fragment names. The working
    tree (modified and untracked files) counts as the newest change."""
    repo = pathlib.Path(repo)
    base = _last_release(repo)
    span = ["%s..HEAD" % base] if base else ["HEAD"]
    commits = _git(repo, "rev-list", "--reverse", "--topo-order", *span).split()
    order = {sha: i for i, sha in enumerate(commits)}
    now = len(commits)
    latest = {}  # area -> (order, where, subject)
    fragment_order = {}
    sha = subject = None
    for line in _git(repo, "log", "--reverse", "--topo-order", "--format=@%H %s", "--name-only", *span).splitlines():
        if line.startswith("@"):
            sha, _sep, subject = line[1:].partition(" ")
        elif line.startswith("changelogs/fragments/"):
            fragment_order[line] = max(fragment_order.get(line, -1), order[sha])
        elif _changelog_area(line) and sha in order:
            area = _changelog_area(line)
            if order[sha] >= latest.get(area, (-1,))[0]:
                latest[area] = (order[sha], sha[:10], subject)
    for line in _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines():
        path = line[3:].split(" -> ")[-1].strip('"')
        if path.startswith("changelogs/fragments/"):
            fragment_order[path] = now
        elif _changelog_area(path):
            latest[_changelog_area(path)] = (now, "working tree", path)
    fragments = [(fragment_order.get(str(p.relative_to(repo)), -1), p.read_text())
                 for p in sorted((repo / "changelogs" / "fragments").glob("*.y*ml"))]
    plugin_sources = {p.stem: p.read_text() for p in (repo / "plugins").glob("*/*.py")}
    problems = []
    for area, (when, where, subject) in sorted(latest.items()):
        names = [area] + [name for name, source in plugin_sources.items()
                          if name != area and re.search(r"module_utils(\.|\s+import\s+(\w+\s*,\s*)*)%s\b" % re.escape(area), source)]
        mention = re.compile(r"(?<![\w.-])(%s)(?![\w-])" % "|".join(re.escape(n) for n in names))
        if not any(order_ >= when and mention.search(text) for order_, text in fragments):
            problems.append((area, where, subject))
    return problems


def test_every_change_since_the_last_release_has_a_changelog_fragment():
    assert _git(ROOT, "rev-parse", "--is-shallow-repository").strip() == "false", \
        "the changelog gate needs the git history since the last release: git fetch --unshallow"
    problems = uncovered_changes(ROOT)
    assert not problems, "changes without a changelog fragment naming them (add one under changelogs/fragments/, " \
        "'trivial:' for changes users do not see):\n" + "\n".join("  %s - changed in %s (%s)" % p for p in problems)


def test_changelog_gate_catches_a_change_without_a_fragment(tmp_path):
    """The gate itself: a change after the last fragment naming it is reported until a fragment names it again;
    a release tag starts over."""
    repo = tmp_path / "repo"
    (repo / "changelogs" / "fragments").mkdir(parents=True)
    (repo / "roles" / "web" / "tasks").mkdir(parents=True)
    (repo / "plugins" / "modules").mkdir(parents=True)
    (repo / "plugins" / "module_utils").mkdir(parents=True)

    def commit(message, files):
        for name, text in files.items():
            (repo / name).write_text(text)
        _git(repo, "add", "-A")
        _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)

    _git(repo, "init", "-q")
    commit("web role and probe module", {"roles/web/tasks/main.yml": "---\n", "plugins/modules/probe.py": "from x.module_utils import net\n",
                                         "plugins/module_utils/net.py": "#\n",
                                         "changelogs/fragments/1.yml": "minor_changes:\n  - web - new role.\n  - probe - new module.\n"})
    assert uncovered_changes(repo) == []
    commit("probe fix", {"plugins/modules/probe.py": "from x.module_utils import net\n# fix\n"})
    assert [p[0] for p in uncovered_changes(repo)] == ["probe"]
    commit("net fix", {"plugins/module_utils/net.py": "# fix\n", "changelogs/fragments/2.yml": "bugfixes:\n  - probe - fixed.\n"})
    assert uncovered_changes(repo) == []  # the module_utils change is named through the module that imports it
    (repo / "roles" / "web" / "tasks" / "main.yml").write_text("---\n# edited\n")
    assert uncovered_changes(repo) == [("web", "working tree", "roles/web/tasks/main.yml")]
    commit("web edit", {})
    assert [p[0] for p in uncovered_changes(repo)] == ["web"]
    _git(repo, "tag", "1.0.0")
    assert uncovered_changes(repo) == []


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


def test_every_phase_of_every_role_carries_tags():
    """Issue 9: `--tags`/`--skip-tags` and AWX's job tags work on every role: each task file a role's main.yml includes
    carries tags, given to its tasks too (`apply`; an import gives them statically), and a preflight is tagged `always`
    or `preflight`."""
    problems = []
    for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        for task in yaml.safe_load((role / "tasks" / "main.yml").read_text()) or []:
            include = task.get("ansible.builtin.include_tasks")
            imported = task.get("ansible.builtin.import_tasks")
            if imported is not None and "preflight" in str(imported) and not {"always", "preflight"} & set(task.get("tags") or []):
                problems.append("%s: '%s' is a preflight not tagged always or preflight" % (role.name, task.get("name")))
            if include is None:
                if not task.get("tags"):
                    problems.append("%s: '%s' has no tags" % (role.name, task.get("name")))
                continue
            tags = task.get("tags")
            applied = (include.get("apply") or {}).get("tags") if isinstance(include, dict) else None
            if not tags or applied != tags:
                problems.append("%s: '%s' includes its tasks without tags given to them too (apply: tags: %s)" % (role.name, task.get("name"), tags))
            elif "preflight" in str(include) and not {"always", "preflight"} & set(tags):
                problems.append("%s: '%s' is a preflight not tagged always or preflight" % (role.name, task.get("name")))
    assert not problems, "\n".join(problems)


def _tasks(node):
    """Every task of a task list, blocks opened."""
    for task in node or []:
        if isinstance(task, dict):
            yield task
            for key in ("block", "rescue", "always"):
                yield from _tasks(task.get(key))


def test_the_shared_ending_is_validated_once_per_play_not_per_host():
    """runbook_end validates its own argument_specs with one run_once task at the top of each entry point, and every
    runbook includes it with rolespec_validate false: Ansible's per-host check templated every host's results once per
    host (a 50-host daily run spent seconds there). A runbook that forgets the flag validates twice."""
    problems = []
    for entry in ("main", "preflight"):
        first = yaml.safe_load((ROOT / "roles" / "runbook_end" / "tasks" / ("%s.yml" % entry)).read_text())[0]
        spec = (first.get("ansible.builtin.validate_argument_spec") or {}).get("argument_spec", "")
        if not first.get("run_once") or "argument_specs.%s.options" % entry not in spec:
            problems.append("runbook_end %s: the first task must validate argument_specs.%s once (run_once)" % (entry, entry))
    callers = 0
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text())):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                call = task.get(key)
                if isinstance(call, dict) and call.get("name") == "dealerscope.ops.runbook_end":
                    callers += 1
                    if call.get("rolespec_validate") is not False:
                        problems.append("%s: '%s' includes runbook_end without rolespec_validate: false"
                                        % (path.relative_to(ROOT), task.get("name")))
    assert callers >= 16 and not problems, "\n".join(problems) or "only %d callers found" % callers
