"""Helpers for the patching scenarios' verifiers: package versions, boot times, the load balancer's
upstream lines, the host's patching fact, and a reset to the pending 1.0 -> 1.1 updates of the lab repo."""
import json
import re

from helpers.runbook import on

PATCH = "dealerscope.ops.patch"
APPS = ("app1", "app2")
PKGS = ("dslab-libdemo", "dslab-tools", "dslab-kernel-stub")
UPSTREAM = "/etc/nginx/sites-available/dealerscope.conf"


def versions(host):
    out = on(host, "dpkg-query -W -f='${Package} ${Version}\\n' 'dslab-*'")
    return dict(line.split() for line in out.splitlines() if line.strip())


def boot_time(host):
    return on(host, "awk '{print $22}' /proc/1/stat").strip()


def upstream_line(host):
    text = on("lb1", "cat %s" % UPSTREAM)
    return [line.strip() for line in text.splitlines() if line.strip().startswith("server %s:8000" % host)][0]


def fact(host):
    text = on(host, "cat /etc/ansible/facts.d/dealerscope_patching.fact 2>/dev/null || echo '{}'")
    return json.loads(text)


def reset(host, extra_packages=()):
    """Back to the 1.0 packages (pending 1.1 updates), nothing marked, the API mapping the 1.0 library."""
    pkgs = " ".join("%s=1.0" % p for p in PKGS + tuple(extra_packages))
    on(host, "apt-get install -y -q --allow-downgrades %s >/dev/null 2>&1 && rm -f /run/reboot-required /run/reboot-required.pkgs "
             "/etc/ansible/facts.d/dealerscope_patching.fact /etc/dealerscope/faults.json && systemctl restart dealerscope-api" % pkgs)


def host_changes(output):
    """Changed task results per managed host: `changed: [app1]` and `changed: [app1 -> lb1]` count (the
    latter for lb1, where the change happened); results delegated to the controller (reports, notifications) do not."""
    rows = {}
    for match in re.finditer(r"^changed: \[([^\]\s]+)(?: -> ([^\]\s]+))?\]", output, re.M):
        where = (match.group(2) or match.group(1)).split("(")[0]
        if where != "localhost":
            rows[where] = rows.get(where, 0) + 1
    return rows


def snapshot():
    """Everything a patch run could change on the fleet."""
    state = {}
    for host in APPS:
        state[host] = (versions(host), boot_time(host), fact(host), on(host, "systemctl show -p MainPID --value dealerscope-api"),
                       on(host, "ls /run/reboot-required 2>/dev/null; true"))
    state["lb1"] = (on("lb1", "md5sum %s" % UPSTREAM), on("lb1", "pgrep -f '^nginx: worker' | sort"))
    return state
