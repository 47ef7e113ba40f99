"""Run a command and say where its CPU went: wall time, the controller's CPU (the command and every process it
started: ansible-playbook, its workers, the SSH clients) and the managed hosts' CPU (the lab containers' cgroups,
where the modules run). On the lab both share this machine's cores; on a real fleet the hosts' part runs on the hosts.

Usage: python3 bench/cpu_split.py <command...>   -> prints one JSON line {wall_ms, controller_cpu_ms, hosts_cpu_ms, hosts}
"""
import json
import os
import resource
import subprocess
import sys
import time


def lab_cgroups():
    """The cgroup directories of the running lab containers (label dealerscope.lab)."""
    ids = subprocess.run(["podman", "ps", "-q", "--filter", "label=dealerscope.lab"], capture_output=True, text=True,
                         check=True).stdout.split()
    paths = []
    for cid in ids:
        rel = subprocess.run(["podman", "inspect", "-f", "{{.State.CgroupPath}}", cid], capture_output=True, text=True,
                             check=True).stdout.strip()
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/cpuacct"):  # cgroup v2, or v1's cpuacct controller
            path = os.path.join(base, rel.lstrip("/"))
            if os.path.isfile(os.path.join(path, "cpu.stat")) or os.path.isfile(os.path.join(path, "cpuacct.usage")):
                paths.append(path)
                break
    return paths


def usage_ms(paths):
    """CPU time used so far by the cgroups: cgroup v2's cpu.stat usage_usec, or v1's cpuacct.usage (ns)."""
    total_us = 0
    for path in paths:
        try:
            if os.path.isfile(os.path.join(path, "cpuacct.usage")):
                with open(os.path.join(path, "cpuacct.usage"), encoding="ascii") as handle:
                    total_us += int(handle.read()) // 1000
                continue
            with open(os.path.join(path, "cpu.stat"), encoding="ascii") as handle:
                for line in handle:
                    key, value = line.split()
                    if key == "usage_usec":
                        total_us += int(value)
        except OSError:
            continue
    return total_us // 1000


def children_cpu_ms():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((usage.ru_utime + usage.ru_stime) * 1000)


def main(argv):
    if not argv:
        sys.exit(__doc__)
    cgroups = lab_cgroups()
    hosts0, cpu0, wall0 = usage_ms(cgroups), children_cpu_ms(), time.monotonic()
    with open(os.devnull, "w", encoding="ascii") as quiet:
        rc = subprocess.run(argv, stdout=quiet, stderr=quiet, check=False).returncode
    wall = int((time.monotonic() - wall0) * 1000)
    print(json.dumps({"rc": rc, "wall_ms": wall, "controller_cpu_ms": children_cpu_ms() - cpu0,
                      "hosts_cpu_ms": usage_ms(cgroups) - hosts0, "hosts": len(cgroups)}))


if __name__ == "__main__":
    main(sys.argv[1:])
