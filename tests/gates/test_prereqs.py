"""Gate: every program the lab, the benchmarks and the tests run on the controller - podman's own helpers
included - belongs to a Debian package that lab/prereqs.txt installs (directly or through Depends /
Pre-Depends) or that every Debian system has (Essential, Priority: required).

A machine that merely happens to have a package cannot make this pass: the owner of each program found
here is looked up with `dpkg -S` and must be *declared*, so `make demo` works on a fresh Debian 12 box.
(Issue 7: netavark runs iptables, which Debian only suggests; it was missing from the list.)
"""
import functools
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PREREQS = ROOT / "lab" / "prereqs.txt"

# Programs podman runs itself (not named in our sources): its runtime and monitor are read from
# `podman info`; netavark and aardvark-dns from podman's helper directory, and netavark's firewall
# driver on Debian 12 runs iptables.
PODMAN_HELPERS = ("/usr/lib/podman/netavark", "/usr/lib/podman/aardvark-dns", "iptables")
# Python's venv (make venv runs `python3 -m venv`, which needs ensurepip).
EXTRA_PATHS = ("/usr/lib/python3.11/ensurepip/__init__.py",)
# Run only on lab hosts (through SSH/podman exec), never on the controller: not the controller's business.
# Shell builtins (bash runs its own, whatever package also ships a program of that name).
SHELL_BUILTINS = {"kill", "echo", "printf", "test", "true", "false", "pwd", "read", "wait", "command", "type", "umask"}
REMOTE_ONLY = {
    "systemctl", "journalctl", "runuser", "psql", "pg_basebackup", "pg_lsclusters", "chronyc", "nft", "sshd",
    "apt-mark", "needrestart", "sadf", "sar", "dpkg-reconfigure", "update-ca-certificates", "logrotate",
}

SHELL_SPLIT = re.compile(r"\|\||&&|[|;&(){}`]|\$\(|\b(?:then|do|else|exec|time|nohup|if|while|until|sudo)\b|\bxargs(?: -r)?\b"
                         r"|\btimeout(?: -[a-z]+ ?[0-9a-z]*)* [0-9.]+[smh]?\b|!")
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _without_heredocs(text):
    """Shell text without here-document bodies (inline Python and the like are not shell commands)."""
    out, end = [], None
    for line in text.splitlines():
        if end is not None:
            if line.strip() == end:
                end = None
            continue
        out.append(line)
        match = re.search(r"<<-?\s*['\"]?([A-Za-z_]+)['\"]?", line)
        if match:
            end = match.group(1)
    return "\n".join(out)


def _shell_commands(text):
    """First words of every simple command in shell text (assignments and here-documents skipped)."""
    text = re.sub(r"python3? -c '[^']*'", "python3", text)
    for line in _without_heredocs(text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line)
        for segment in SHELL_SPLIT.split(line):
            words = segment.split()
            while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                words = words[1:]
            if words:
                yield words[0].strip("\"'")


@functools.lru_cache(maxsize=None)
def _program_uses():
    return program_uses()


def program_uses():
    """{program: {file, ...}} for commands in the controller-side sources of the lab, benchmarks and tests."""
    uses = {}

    def add(word, where):
        if WORD.match(word):
            uses.setdefault(word, set()).add(where)

    shell_files = [*ROOT.glob("lab/**/*.sh"), *ROOT.glob("bench/*.sh"), ROOT / ".ci" / "run", *ROOT.glob("tests/**/*.sh")]
    for path in shell_files:
        for word in _shell_commands(path.read_text()):
            add(word, str(path.relative_to(ROOT)))
    recipes = "\n".join(line[1:] for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("\t"))
    for word in _shell_commands(recipes.replace("@", " ")):
        add(word, "Makefile")
    python_files = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("molecule/**/*.py"), *ROOT.glob("lab/**/*.py"), *ROOT.glob("tools/*.py")]
    argv_start = re.compile(r"""(?:\b(?:run|Popen|check_output|check_call|call|ssh_argv)\(\s*\[|\bargv\s*=\s*\[)\s*["']([a-z][a-z0-9._+-]*)["']""")
    binary_lookup = re.compile(r"""\b(?:which|binary)\(\s*["']([a-z][a-z0-9._+-]*)["']""")
    for path in python_files:
        text = path.read_text()
        for match in [*argv_start.finditer(text), *binary_lookup.finditer(text)]:
            add(match.group(1), str(path.relative_to(ROOT)))
    yaml_files = [*ROOT.glob("lab/*.yml"), *ROOT.glob("lab/tasks/*.yml"), *ROOT.glob("molecule/**/*.yml")]
    for path in yaml_files:
        text = path.read_text()
        for match in re.finditer(r"""argv:\s*(?:\[\s*|\n\s*-\s*)["']?([a-z][a-z0-9._+-]*)""", text):
            add(match.group(1), str(path.relative_to(ROOT)))
        for match in re.finditer(r"^( *)(?:cmd|shell|command):\s*[>|]-?\s*\n", text, re.MULTILINE):
            indent, block = len(match.group(1)), []
            for line in text[match.end():].splitlines():
                if line.strip() and len(line) - len(line.lstrip()) <= indent:
                    break  # the block scalar ends where indentation returns to the key's
                block.append(line)
            for word in _shell_commands("\n".join(block)):
                add(word, str(path.relative_to(ROOT)))
    return uses


def declared_packages(text=None):
    text = PREREQS.read_text() if text is None else text
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def _dpkg_query(*args):
    return subprocess.run(["dpkg-query", *args], capture_output=True, text=True, check=False).stdout


@functools.lru_cache(maxsize=None)
def everywhere_packages():
    """Packages every Debian system has: Essential: yes, or Priority: required."""
    out = _dpkg_query("-W", "-f", "${Package}\t${Essential}\t${Priority}\n")
    return frozenset(name.split(":")[0] for name, essential, priority in (line.split("\t") for line in out.splitlines())
                     if essential == "yes" or priority == "required")


@functools.lru_cache(maxsize=None)
def closure(packages):
    """The declared packages and the installed packages they pull in through Depends/Pre-Depends (recursively).

    --installed: of a dependency's alternatives (`podman` Depends `containernetworking-plugins | netavark`)
    only the one really installed counts, so an uninstalled alternative cannot smuggle a package in."""
    result = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--installed", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
         "--no-replaces", "--no-enhances", *packages],
        capture_output=True, text=True, check=True)
    return frozenset(line.strip().split(":")[0] for line in result.stdout.splitlines() if line and not line[0].isspace())


_OWNERS = {}


def _dpkg_owner(path):
    return _OWNERS.get(path)


def _learn_owners(paths):
    """One `dpkg -S` for many paths (it is slow per call); remembers path -> package."""
    todo = sorted({p for p in paths if p not in _OWNERS})
    if not todo:
        return
    result = subprocess.run(["dpkg", "-S", *todo], capture_output=True, text=True, check=False)
    for path in todo:
        _OWNERS[path] = None
    for line in result.stdout.splitlines():
        if line.startswith("diversion") or ": " not in line:
            continue
        packages, path = line.split(": ", 1)
        if path in _OWNERS:
            _OWNERS[path] = packages.split(",")[0].split(":")[0].strip()


@functools.lru_cache(maxsize=None)
def owner(program):
    """(path, Debian package) of `program` (a name looked up on PATH, or an absolute path).

    Every match on PATH is tried in order, so a pyenv shim or a virtualenv script in front of Debian's
    program falls through to the Debian program a fresh machine would run. (None, None): not here at all;
    (path, None): only a non-Debian program (pip-installed into the virtualenv, for instance).
    """
    candidates = _candidates(program)
    _learn_owners(name for _path, names in candidates for name in names)
    for path, names in candidates:
        for name in names:
            package = _dpkg_owner(name)
            if package:
                return path, package
    return (candidates[0][0] if candidates else None), None


def _candidates(program):
    """[(path found, [names dpkg may know it by])] for every match of `program` on PATH, in order."""
    if os.path.isabs(program):
        hits = [program] if os.path.exists(program) else []
    else:
        dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/sbin"]
        hits = [os.path.join(d, program) for d in dirs if d and os.access(os.path.join(d, program), os.X_OK)
                and os.path.isfile(os.path.join(d, program))]
    candidates = []
    for path in hits:
        names = [path, os.path.realpath(path)]
        for prefix in ("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"):
            if path.startswith(prefix):
                names += [p + path[len(prefix):] for p in ("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/")]
        candidates.append((path, names))
    return candidates


def podman_programs():
    out = subprocess.run(["podman", "info", "--format", "{{.Host.Conmon.Path}} {{.Host.OCIRuntime.Path}}"],
                         capture_output=True, text=True, check=False).stdout.split()
    return [*out, *PODMAN_HELPERS]


def problems(declared, uses, extra):
    """Programs found on this machine whose package is not declared, pulled in, or on every Debian system."""
    allowed = closure(tuple(declared)) | everywhere_packages()
    found = []
    programs = {word: sorted(where)[:3] for word, where in uses.items() if word not in REMOTE_ONLY | SHELL_BUILTINS}
    programs.update({program: ["podman/venv (implicit)"] for program in extra})
    _learn_owners(name for program in programs for _path, names in _candidates(program) for name in names)
    for program, where in sorted(programs.items()):
        path, package = owner(program)
        if path is None:
            continue  # not a program on this machine (a word, or run only where it is installed)
        if package is None:
            if program in extra:
                found.append("%s (%s): no Debian package owns it, used in %s" % (program, path, where))
            continue  # pip-installed (the virtualenv) or project-local: make venv provides it
        if package not in allowed:
            found.append("%s (%s) belongs to package %s, which lab/prereqs.txt neither lists nor pulls in; used in %s"
                         % (program, path, package, ", ".join(where)))
    return found


def test_declared_packages_are_installed():
    missing = [p for p in declared_packages() if "install ok installed" not in _dpkg_query("-W", "-f", "${Status}", p)]
    assert not missing, "lab/prereqs.txt lists packages that are not installed (run lab/bin/prereqs.sh): %s" % missing


def test_every_program_the_lab_and_tests_run_is_declared():
    found = problems(declared_packages(), _program_uses(), podman_programs() + list(EXTRA_PATHS))
    assert not found, "\n".join(found)


def test_the_scan_sees_the_programs_that_matter():
    uses = _program_uses()
    for program in ("podman", "debootstrap", "ssh", "ssh-keyscan", "git", "curl", "make", "rsync", "flock", "nginx", "haproxy"):
        assert program in uses, "the source scan no longer finds %s: the gate would not check it" % program


@pytest.mark.parametrize("dropped", ["iptables", "debootstrap", "haproxy"])
def test_the_gate_fails_when_a_needed_package_is_not_declared(dropped):
    """The check can fail: without the package (as lab/prereqs.txt was before iptables was added), it is named."""
    declared = [p for p in declared_packages() if p != dropped]
    found = problems(declared, _program_uses(), podman_programs() + list(EXTRA_PATHS))
    assert any("package %s," % dropped in line for line in found), found
