"""Helpers for testinfra verifiers: talk to Molecule instances from the outside, over real SSH."""
import os
import subprocess

import yaml


def instances():
    """The instance_config Molecule wrote for this scenario, keyed by instance name."""
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "instance_config.yml")
    with open(path, encoding="utf-8") as handle:
        return {item["instance"]: item for item in yaml.safe_load(handle) or []}


def ssh(instance, command, user=None, identity=None, extra=(), timeout=20):
    """Run `command` on `instance` with a fresh SSH connection (no multiplexing)."""
    cfg = instances()[instance]
    argv = [
        "ssh", "-p", str(cfg["port"]),
        "-i", identity or cfg["identity_file"],
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ConnectTimeout=5",
        "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
        *extra,
        "%s@%s" % (user or cfg["user"], cfg["address"]),
        command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def offered_auth_methods(instance, user="root"):
    """Authentication methods the server offers to a client that has no usable key."""
    cfg = instances()[instance]
    argv = [
        "ssh", "-v", "-p", str(cfg["port"]),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "PubkeyAuthentication=no", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        "-o", "ConnectTimeout=5",
        "%s@%s" % (user, cfg["address"]), "true",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    for line in result.stderr.splitlines():
        if "Authentications that can continue:" in line:
            return line.split(":", 2)[-1].strip().split(",")
    raise AssertionError("server offered no authentication methods: %s" % result.stderr[-500:])
