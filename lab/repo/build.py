# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the lab's own apt repository: tiny packages that are upgradable deterministically.

Usage: python3 lab/repo/build.py OUTDIR

Every package exists in versions 1.0 and 1.1; hosts get 1.0 installed explicitly (``pkg=1.0``) and apt
offers 1.1 as the upgrade, whatever Debian publishes today. Two suites:

  dslab-security   security updates (apt prints the suite, so "-security" classifies them as security)
                   dslab-libdemo      /usr/lib/dslab/libdemo.so.1 (a data file holding its version; the
                                      sample API maps it, so an upgrade leaves a "(deleted)" mapping)
                   dslab-kernel-stub  on upgrade: touch /run/reboot-required, append to
                                      /run/reboot-required.pkgs (like Ubuntu's notify-reboot-required)
  dslab-updates    regular updates
                   dslab-tools        /usr/share/dslab/tools-version
                   dslab-hookbreak    1.1's postinst writes /etc/dealerscope/faults.json = {"status": 503},
                                      breaking the sample API like a bad post-upgrade hook (1.0 does nothing)
                   dslab-pgbreak      1.1's postinst gives every PostgreSQL cluster a setting it refuses
                                      (/etc/postgresql/*/*/conf.d/99-dslab-pgbreak.conf) and asks for a reboot:
                                      after it the database does not come back (1.0 does nothing; deleting the
                                      file heals it)

The output is byte-for-byte reproducible (fixed timestamps from SOURCE_DATE_EPOCH, default 2024-01-01),
so copying it with Ansible is idempotent. The repository is built in a temporary directory next to
OUTDIR and only replaces OUTDIR when its content differs; the last line printed is CHANGED or UNCHANGED.
Needs dpkg-deb (Debian's dpkg package); everything else is the Python 3 standard library.
"""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

DEFAULT_EPOCH = 1704067200  # 2024-01-01T00:00:00Z
VERSIONS = ("1.0", "1.1")
ARCHITECTURES = ("amd64", "all")
COMPONENT = "main"
ORIGIN = "DealerScope Lab"
MAINTAINER = "DealerScope Ops <ops@dealerscope.invalid>"
# The Release file's Version: apt prints it between the label and the suite in its simulation
# ("DealerScope Lab:1.1/dslab-security"); it names the newest package version the repository carries.
RELEASE_VERSION = VERSIONS[-1]

SUITES = {
    "dslab-security": "DealerScope lab security updates (deterministic test packages)",
    "dslab-updates": "DealerScope lab regular updates (deterministic test packages)",
}

_REBOOT_HOOK = """\
if [ "$1" = configure ] && [ -n "$2" ]; then
    # An upgrade (not a fresh install): ask for a reboot, as Ubuntu's notify-reboot-required does.
    touch /run/reboot-required
    echo "$DPKG_MAINTSCRIPT_PACKAGE" >> /run/reboot-required.pkgs
fi
"""

_HOOKBREAK_1_1 = """\
if [ "$1" = configure ]; then
    # A bad post-upgrade hook: the DealerScope sample API answers 503 while this file exists.
    mkdir -p /etc/dealerscope
    printf '{"status": 503}\\n' > /etc/dealerscope/faults.json
fi
"""


_PGBREAK_1_1 = """\
if [ "$1" = configure ]; then
    # A bad upgrade for a database host: every PostgreSQL cluster gets a setting it refuses at start,
    # and a reboot is asked for - so after the reboot the database does not come back.
    for dir in /etc/postgresql/*/*/conf.d; do
        [ -d "$dir" ] || continue
        printf "# dslab-pgbreak 1.1 (lab fault injection): PostgreSQL refuses to start with this. Delete this file to heal.\\n" > "$dir/99-dslab-pgbreak.conf"
        printf "shared_buffers = 'broken-by-dslab-pgbreak'\\n" >> "$dir/99-dslab-pgbreak.conf"
    done
    touch /run/reboot-required
    echo "$DPKG_MAINTSCRIPT_PACKAGE" >> /run/reboot-required.pkgs
fi
"""


def _version_file(name):
    return lambda version: ("%s %s\n" % (name, version)).encode()


# name -> suite, summary, {path: content(version)}, {version: postinst body or None}
PACKAGES = {
    "dslab-libdemo": {
        "suite": "dslab-security",
        "summary": "DealerScope lab demo shared library (security updates)",
        "files": {"/usr/lib/dslab/libdemo.so.1": _version_file("dslab-libdemo")},
        "postinst": {},
    },
    "dslab-kernel-stub": {
        "suite": "dslab-security",
        "summary": "DealerScope lab stand-in for a kernel: upgrades require a reboot",
        "files": {"/usr/lib/dslab/kernel-stub-version": _version_file("dslab-kernel-stub")},
        "postinst": {"1.0": _REBOOT_HOOK, "1.1": _REBOOT_HOOK},
    },
    "dslab-tools": {
        "suite": "dslab-updates",
        "summary": "DealerScope lab tools (regular updates)",
        "files": {"/usr/share/dslab/tools-version": _version_file("dslab-tools")},
        "postinst": {},
    },
    "dslab-hookbreak": {
        "suite": "dslab-updates",
        "summary": "DealerScope lab package whose 1.1 post-install hook breaks the sample API",
        "files": {"/usr/share/dslab/hookbreak-version": _version_file("dslab-hookbreak")},
        "postinst": {"1.1": _HOOKBREAK_1_1},
    },
    "dslab-pgbreak": {
        "suite": "dslab-updates",
        "summary": "DealerScope lab package whose 1.1 makes PostgreSQL refuse to start after the reboot it asks for",
        "files": {"/usr/share/dslab/pgbreak-version": _version_file("dslab-pgbreak")},
        "postinst": {"1.1": _PGBREAK_1_1},
    },
}


def _write(path, data, mode, epoch):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    os.utime(path, (epoch, epoch))


def _touch_tree(root, epoch):
    """Fixed mode and mtime on every directory of a package tree (the files have theirs already)."""
    for dirpath, dirnames, filenames in os.walk(root):
        del filenames
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        os.chmod(dirpath, 0o755)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        del dirnames, filenames
        os.utime(dirpath, (epoch, epoch))


def control_fields(name, version, spec, installed_size):
    """The control stanza of one package as an ordered list of (field, value)."""
    return [
        ("Package", name),
        ("Version", version),
        ("Architecture", "all"),
        ("Maintainer", MAINTAINER),
        ("Installed-Size", str(installed_size)),
        ("Section", "misc"),
        ("Priority", "optional"),
        ("Multi-Arch", "foreign"),
        ("Description", "%s\n This package only exists in the DealerScope lab repository (lab/repo/build.py)." % spec["summary"]),
    ]


def stanza(fields):
    return "".join("%s: %s\n" % (key, value) for key, value in fields)


def build_deb(name, version, spec, workdir, outdir, epoch):
    """Build one .deb with dpkg-deb; return its control fields and pool-relative file name."""
    root = os.path.join(workdir, "%s_%s" % (name, version))
    size = 0
    for path, content in sorted(spec["files"].items()):
        data = content(version)
        size += len(data)
        _write(os.path.join(root, path.lstrip("/")), data, 0o644, epoch)
    installed_size = max(1, (size + 1023) // 1024)
    fields = control_fields(name, version, spec, installed_size)
    _write(os.path.join(root, "DEBIAN", "control"), stanza(fields).encode(), 0o644, epoch)
    body = spec["postinst"].get(version)
    if body:
        _write(os.path.join(root, "DEBIAN", "postinst"), ("#!/bin/sh\nset -e\n" + body + "exit 0\n").encode(), 0o755, epoch)
    _touch_tree(root, epoch)
    rel = "pool/%s/%s/%s/%s_%s_all.deb" % (COMPONENT, name[0], name, name, version)
    target = os.path.join(outdir, rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), LC_ALL="C")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", "-Zxz", "-z6", root, target],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    os.chmod(target, 0o644)
    os.utime(target, (epoch, epoch))
    return fields, rel


def _hashes(data):
    return {"MD5Sum": hashlib.md5(data).hexdigest(), "SHA256": hashlib.sha256(data).hexdigest()}


def packages_entry(fields, rel, data):
    """A Packages index stanza: the control fields plus Filename, Size and checksums."""
    sums = _hashes(data)
    extra = [("Filename", rel), ("Size", str(len(data))), ("MD5sum", sums["MD5Sum"]), ("SHA256", sums["SHA256"])]
    # Description stays last, as in Debian's indexes.
    return stanza(fields[:-1] + extra + fields[-1:])


def release_file(suite, description, indexes, epoch):
    """dists/<suite>/Release text; `indexes` maps the path below dists/<suite>/ to its bytes."""
    lines = [
        ("Origin", ORIGIN),
        ("Label", ORIGIN),
        ("Suite", suite),
        ("Codename", suite),
        ("Version", RELEASE_VERSION),
        ("Date", time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime(epoch))),
        ("Architectures", " ".join(ARCHITECTURES)),
        ("Components", COMPONENT),
        ("Description", description),
    ]
    text = stanza(lines)
    for algo in ("MD5Sum", "SHA256"):
        text += "%s:\n" % algo
        for path in sorted(indexes):
            data = indexes[path]
            text += " %s %8d %s\n" % (_hashes(data)[algo], len(data), path)
    return text


def build(outdir, epoch):
    """Write the whole repository under `outdir` (which must not exist or be empty)."""
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dslab-repo-src-") as workdir:
        entries = {suite: [] for suite in SUITES}
        for name in sorted(PACKAGES):
            spec = PACKAGES[name]
            for version in VERSIONS:
                fields, rel = build_deb(name, version, spec, workdir, outdir, epoch)
                with open(os.path.join(outdir, rel), "rb") as handle:
                    entries[spec["suite"]].append(packages_entry(fields, rel, handle.read()))
    for suite, description in SUITES.items():
        packages = "\n".join(entries[suite]).encode()
        indexes = {}
        for arch in ARCHITECTURES:
            base = "%s/binary-%s/" % (COMPONENT, arch)
            indexes[base + "Packages"] = packages
            indexes[base + "Packages.gz"] = gzip.compress(packages, compresslevel=9, mtime=epoch)
        suite_dir = os.path.join(outdir, "dists", suite)
        for path, data in indexes.items():
            _write(os.path.join(suite_dir, path), data, 0o644, epoch)
        _write(os.path.join(suite_dir, "Release"), release_file(suite, description, indexes, epoch).encode(), 0o644, epoch)
    for dirpath, dirnames, filenames in os.walk(outdir, topdown=False):
        del dirnames, filenames
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, (epoch, epoch))


def same_tree(left, right):
    """True when both directories hold the same files with the same bytes."""
    cmp = filecmp.dircmp(left, right)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    match, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    del match
    if mismatch or errors:
        return False
    return all(same_tree(os.path.join(left, d), os.path.join(right, d)) for d in cmp.common_dirs)


def main(argv):
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: python3 lab/repo/build.py OUTDIR\n")
        return 2
    if shutil.which("dpkg-deb") is None:
        sys.stderr.write("build.py: dpkg-deb not found (install Debian's dpkg package)\n")
        return 1
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    outdir = os.path.abspath(argv[0])
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".dslab-repo-", dir=parent)
    try:
        build(staging, epoch)
        if os.path.isdir(outdir) and same_tree(staging, outdir):
            print("UNCHANGED")
            return 0
        if os.path.lexists(outdir):
            old = outdir + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(outdir, old)
            os.rename(staging, outdir)
            shutil.rmtree(old)
        else:
            os.rename(staging, outdir)
        print("CHANGED")
        return 0
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
