"""Converge lab containers in one pass (called by lab/tasks/containers.yml).

stdin: JSON {"containers": [...], "memory": "512m", "conf": "<CONTAINERS_CONF path>"}; each container:
name, image (lab release) or image_ref (full reference), hostname, network, ip, ssh_port, publish, volumes,
labels (created in list order).
For each container:
  * a dead one is removed: not running (exited, paused...), its podman configuration file gone (an old
    checkout), or systemd inside not answering;
  * the definition (image id, recipe label, every option below) is hashed into the label
    dealerscope.definition: a container whose hash differs is recreated, one that matches is kept;
  * missing ones are started with `podman run` (restart policy always, systemd, the lab capabilities).
stdout: JSON {"containers": {name: {"changed": bool, "reason": str}}}; exit 1 with a message on failure.
"""
import hashlib
import json
import os
import subprocess
import sys

# SYS_PTRACE: root may read every process's /proc/<pid>/maps, as on a real host (the patching role's
# needrestart-style check finds services still using replaced files that way).
CAPS = ["NET_ADMIN", "NET_RAW", "AUDIT_WRITE", "SYS_PTRACE"]
ALIVE = {"initializing", "starting", "running", "degraded"}


def podman(*args, check=True, timeout=120):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise SystemExit("lab containers: podman %s failed: %s" % (" ".join(args[:3]), result.stderr.strip()[-400:]))
    return result


def inspect_image(ref):
    out = podman("image", "inspect", "--format", '{{.Id}} {{ index .Labels "dealerscope.recipe" }}', ref).stdout.split()
    return out[0], (out[1] if len(out) > 1 else "")


def dead_reason(name, conf_of):
    result = podman("container", "inspect", "--format", '{{.State.Status}}|{{ index .Config.Labels "dealerscope.conf" }}',
                    name, check=False)
    if result.returncode != 0:
        return None, False
    status, _sep, conf = result.stdout.strip().partition("|")
    if status != "running":
        return "state %s" % status, True
    if conf and not conf_of(conf):
        return "its podman configuration %s is gone" % conf, True
    try:
        state = podman("exec", name, "systemctl", "is-system-running", check=False, timeout=15).stdout.strip()
    except subprocess.TimeoutExpired:
        state = ""
    if state not in ALIVE:
        return "systemd answers '%s'" % (state or "nothing"), True
    return None, True


def main():
    spec = json.load(sys.stdin)
    out = {}
    images = {}
    for c in spec["containers"]:
        name = c["name"]
        ref = c.get("image_ref") or "localhost/dealerscope-lab:%s" % c["image"]
        if ref not in images:
            images[ref] = inspect_image(ref)
        image_id, recipe = images[ref]
        labels = dict(c.get("labels") or {}, **{"dealerscope.recipe": recipe, "dealerscope.conf": spec["conf"]})
        network = c["network"] + ((":ip=" + c["ip"]) if c.get("ip") else "")
        hostname = c.get("hostname") or name
        publish = ["127.0.0.1:%s:22" % (c.get("ssh_port") or "")] + list(c.get("publish") or [])
        volumes = list(c.get("volumes") or [])
        definition = json.dumps([image_id, sorted(labels.items()), network, hostname, publish, volumes, CAPS, spec["memory"]])
        digest = hashlib.sha256(definition.encode()).hexdigest()[:16]
        reason, exists = dead_reason(name, os.path.isfile)
        if exists and reason is None:
            current = podman("container", "inspect", "--format", '{{ index .Config.Labels "dealerscope.definition" }}', name).stdout.strip()
            if current == digest:
                out[name] = {"changed": False, "reason": "kept"}
                continue
            reason = "its definition changed"
        if exists:
            podman("rm", "-f", "-t", "2", name)
        argv = ["run", "-d", "--name", name, "--hostname", hostname, "--network", network, "--network-alias", hostname,
                "--restart", "always", "--systemd", "true", "--memory", spec["memory"]]
        for cap in CAPS:
            argv += ["--cap-add", cap]
        for port in publish:
            argv += ["--publish", port]
        for volume in volumes:
            argv += ["--volume", volume]
        for key, value in sorted(dict(labels, **{"dealerscope.definition": digest}).items()):
            argv += ["--label", "%s=%s" % (key, value)]
        podman(*argv, ref)
        out[name] = {"changed": True, "reason": ("recreated: %s" % reason) if reason else "created"}
    json.dump({"containers": out}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
