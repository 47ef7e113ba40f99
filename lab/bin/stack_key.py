"""Print the key of the provisioned lab images: a hash of everything lab provisioning reads.

Provisioned images (lab/bin/stack-images.sh) are reused while the key matches and rebuilt when it
changes. The key covers:
  * the files provisioning reads: lab/provision.yml, the stack fixture roles, the sample API,
    roles/baseline and the module it runs, inventories/lab, ansible.cfg, and the ansible-core and
    ansible (collections) pins of requirements.txt;
  * the base images' recipe labels (a rebuilt base image means re-provisioning);
  * the Date of Debian's security suites (bookworm-security, trixie-security): provisioning
    upgrades from them, so the day Debian publishes a security update the images are rebuilt and a
    freshly started lab has no pending security update, as a freshly provisioned real host has none.
    The dates are cached for an hour (one key per test session); offline, the last known dates are used.

Usage: python3 lab/bin/stack_key.py [--explain]   (stdlib only: runs with any python3)
"""
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
INPUTS = [
    "lab/provision.yml",
    "lab/roles/lab_app",
    "lab/roles/lab_db",
    "lab/roles/lab_lb",
    "lab/app",
    "roles/baseline",
    "plugins/modules/sshd_access_check.py",
    "plugins/module_utils/sshd.py",
    "inventories/lab",
    "ansible.cfg",
    "lab/bin/stack_key.py",
]
# Of requirements.txt only the pins that run provisioning count (a new test tool must not rebuild images).
PROVISIONING_PINS = ("ansible-core==", "ansible==")
SKIP_SUFFIXES = (".md", ".pyc")
RELEASES = {"debian12": "bookworm", "debian13": "trixie"}
SECURITY_MIRROR = os.environ.get("LAB_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "dealerscope-ops"
DATES_MAX_AGE_S = 3600


def input_files():
    for rel in INPUTS:
        path = ROOT / rel
        if path.is_file():
            yield path
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.endswith(SKIP_SUFFIXES) and "__pycache__" not in child.parts:
                    yield child
        else:
            raise SystemExit("stack key: input %s is missing" % rel)


def recipe_labels():
    labels = {}
    for release in sorted(RELEASES):
        result = subprocess.run(
            ["podman", "image", "inspect", "--format", '{{ index .Labels "dealerscope.recipe" }}',
             "localhost/dealerscope-lab:%s" % release],
            capture_output=True, text=True, check=False)
        labels[release] = result.stdout.strip() if result.returncode == 0 else "absent"
    return labels


def _fetch_date(suite):
    url = "%s/dists/%s-security/InRelease" % (SECURITY_MIRROR, suite)
    request = urllib.request.Request(url, headers={"Range": "bytes=0-2047"})
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec - Debian's public archive
        head = response.read(2048).decode("utf-8", "replace")
    for line in head.splitlines():
        if line.startswith("Date:"):
            return line.split(":", 1)[1].strip()
    raise ValueError("no Date in %s" % url)


def security_dates():
    cache_file = CACHE / "debian-security-dates.json"
    try:
        cached = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cached = {}
    if cached.get("dates") and time.time() - cached.get("fetched_at", 0) < DATES_MAX_AGE_S:
        return cached["dates"]
    try:
        dates = {suite: _fetch_date(suite) for suite in sorted(RELEASES.values())}
    except (OSError, ValueError) as exc:
        if cached.get("dates"):
            print("stack key: Debian security dates not fetched (%s); using the last known ones" % exc, file=sys.stderr)
            return cached["dates"]
        print("stack key: Debian security dates not fetched (%s)" % exc, file=sys.stderr)
        return {suite: "unknown" for suite in RELEASES.values()}
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fetched_at": time.time(), "dates": dates}))
    os.replace(tmp, cache_file)
    return dates


def main(argv):
    digest = hashlib.sha256()
    explain = []
    for path in input_files():
        rel = str(path.relative_to(ROOT))
        file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(("%s %s\n" % (rel, file_hash)).encode())
        explain.append("%s %s" % (file_hash[:12], rel))
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith(PROVISIONING_PINS)]
    for pin in pins:
        digest.update(("pin %s\n" % pin).encode())
        explain.append("pin %s" % pin)
    for name, value in sorted(recipe_labels().items()):
        digest.update(("image %s %s\n" % (name, value)).encode())
        explain.append("image %s recipe %s" % (name, value))
    for suite, date in sorted(security_dates().items()):
        digest.update(("security %s %s\n" % (suite, date)).encode())
        explain.append("%s-security %s" % (suite, date))
    if "--explain" in argv:
        print("\n".join(explain))
    print(digest.hexdigest()[:16])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
