"""Verify dealerscope.ops.baseline from the outside: real SSH logins, running services, file modes."""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.molecule_ssh import instances, offered_auth_methods, ssh  # noqa: E402

testinfra_hosts = ["all"]
OPS_KEY = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "ops_ed25519")


def _name(host):
    return host.backend.get_hostname()


def test_passwords_are_refused_over_ssh(host):
    methods = offered_auth_methods(_name(host))
    assert methods == ["publickey"], methods


def test_root_key_login_still_works(host):
    result = ssh(_name(host), "id -u")
    assert result.returncode == 0 and result.stdout.strip() == "0", result.stderr


def test_ops_account_logs_in_with_its_key_and_has_sudo(host):
    result = ssh(_name(host), "sudo -n id -u", user="ops", identity=OPS_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_ops_account_has_no_password(host):
    shadow = host.check_output("getent shadow ops").split(":")
    assert shadow[1] in ("!", "*", "!*")


@pytest.mark.parametrize("keyword,value", [
    ("passwordauthentication", "no"),
    ("kbdinteractiveauthentication", "no"),
    ("permitrootlogin", "without-password"),
    ("maxauthtries", "3"),
    ("x11forwarding", "no"),
])
def test_effective_sshd_settings(host, keyword, value):
    effective = host.check_output("sshd -T -C user=root,host=x,addr=127.0.0.1")
    assert "%s %s" % (keyword, value) in effective.splitlines()


def test_sshd_dropin_is_private(host):
    dropin = host.file("/etc/ssh/sshd_config.d/10-dealerscope.conf")
    assert dropin.mode == 0o600 and dropin.user == "root"


def test_no_revert_timer_left_armed(host):
    assert not host.service("dealerscope-revert-sshd.timer").is_running


def test_chrony_runs(host):
    assert host.service("chrony").is_running
    assert "server ntp.dealerscope.invalid iburst" in host.file("/etc/chrony/sources.d/dealerscope.sources").content_string


def _effective(config, key):
    """The value journald uses: the last assignment in `systemd-analyze cat-config` order (drop-ins after the main file)."""
    values = [line.split("=", 1)[1].strip() for line in config.splitlines() if line.strip().startswith(key + "=")]
    return values[-1] if values else None


def test_journald_keeps_90_days_on_persistent_storage(host):
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "# /etc/systemd/journald.conf.d/90-dealerscope.conf" in config, config
    assert _effective(config, "Storage") == "persistent", config
    assert _effective(config, "MaxRetentionSec") == "90day", config


def test_journald_writes_new_entries_to_persistent_storage(host):
    """A line logged now is read back from the journal files under /var/log/journal/<machine-id>/ (not /run)."""
    machine_id = host.check_output("cat /etc/machine-id").strip()
    directory = "/var/log/journal/%s" % machine_id
    assert host.file(directory + "/system.journal").is_file, "journald has no persistent system journal in %s" % directory
    marker = "dealerscope-verify-%s" % uuid.uuid4().hex
    host.check_output("logger -t dealerscope-verify %s" % marker)
    found = ""
    for _attempt in range(10):
        host.run("journalctl --flush; journalctl --sync")
        found = host.run("journalctl -D %s -t dealerscope-verify -o cat --no-pager" % directory).stdout
        if marker in found:
            break
        time.sleep(1)
    assert marker in found, "the entry just logged is not in the persistent journal %s" % directory


def test_logrotate_keeps_90_days_and_parses(host):
    conf = host.file("/etc/logrotate.d/dealerscope").content_string
    assert "rotate 90" in conf and "maxage 90" in conf
    assert host.run("logrotate --debug /etc/logrotate.d/dealerscope").rc == 0


def test_sudoers_dropin_mode(host):
    sudoers = host.file("/etc/sudoers.d/50-dealerscope-ops")
    assert sudoers.mode == 0o440
    assert host.run("visudo -cf /etc/sudoers.d/50-dealerscope-ops").rc == 0


@pytest.mark.parametrize("package", ["chrony", "logrotate", "nftables", "sudo", "curl", "acl", "sysstat"])
def test_packages_installed(host, package):
    assert host.package(package).is_installed


def test_instances_are_the_lab_releases():
    assert set(instances()) == {"baseline-deb12", "baseline-deb13"}


# --------------------------------------------------------------------------- SSH crypto policy (issue 8, item 10)

def test_ssh_audit_reports_no_fail(host):
    """ssh-audit from the controller against the published port: no [fail] finding (NIST curves, SHA-1, 64-bit tags)."""
    assert shutil.which("ssh-audit"), "ssh-audit is not installed on the controller (Debian package ssh-audit)"
    cfg = instances()[_name(host)]
    result = subprocess.run(["ssh-audit", "-n", "-p", str(cfg["port"]), cfg["address"]],
                            capture_output=True, text=True, timeout=60, check=False)
    assert "(gen) banner: SSH-2.0-OpenSSH" in result.stdout, result.stdout + result.stderr  # it really audited sshd
    fails = [line for line in result.stdout.splitlines() if "[fail]" in line]
    assert fails == [] and result.returncode != 3, "\n".join(fails)
    for weak in ("ecdh-sha2-nistp", "ecdsa-sha2-nistp", "hmac-sha1", "umac-64"):
        assert weak not in result.stdout, weak


def test_ssh_crypto_policy_follows_the_release(host):
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T -C user=root,host=x,addr=127.0.0.1").splitlines() if " " in line)
    kex = effective["kexalgorithms"].split(",")
    if _name(host) == "baseline-deb13":  # OpenSSH 10.0: ML-KEM first, no finite-field DH (not offered by default there)
        assert kex[0] == "mlkem768x25519-sha256" and not any(k.startswith("diffie-hellman") for k in kex), kex
    else:  # OpenSSH 9.2 has no ML-KEM: it is left out, not written (sshd would refuse it)
        assert kex[0] == "sntrup761x25519-sha512@openssh.com" and "mlkem768x25519-sha256" not in kex, kex
    assert effective["hostkeyalgorithms"].split(",")[0] == "ssh-ed25519"
    assert not any("nistp" in alg for alg in effective["hostkeyalgorithms"].split(",") + kex)
    assert not any("sha1" in mac or "umac-64" in mac for mac in effective["macs"].split(","))


def test_controller_client_negotiates_the_policy(host):
    """A fresh login from the controller's own ssh client with the pinned-key type the lab uses (ed25519)."""
    result = ssh(_name(host), "true", extra=("-v", "-o", "HostKeyAlgorithms=ssh-ed25519"))
    assert result.returncode == 0, result.stderr[-2000:]
    negotiated = [line for line in result.stderr.splitlines() if "kex: algorithm:" in line]
    assert negotiated and "nistp" not in negotiated[0], negotiated


# --------------------------------------------------------------------------- sysstat (issue 8, item 9)

def test_sysstat_collection_is_on(host):
    assert 'ENABLED="true"' in host.file("/etc/default/sysstat").content_string.splitlines()
    for unit in ("sysstat-collect.timer", "sysstat-summary.timer"):
        assert host.service(unit).is_enabled and host.service(unit).is_running, unit
    assert host.service("sysstat").is_enabled


def test_host_health_reads_the_sysstat_history(host):
    """Two real collections, then dealerscope.ops.host_health on the host reads them back with sadf -j."""
    for _attempt in range(2):
        host.check_output("systemctl start sysstat-collect.service")
        time.sleep(1.2)
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(project, ".build", "collections"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_CONFIG=os.path.join(project, "ansible.cfg"))
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    result = subprocess.run([os.path.join(project, ".venv", "bin", "ansible"), _name(host), "-i", inventory, "-m", "dealerscope.ops.host_health",
                             "-a", "check_updates=false cpu_sample_seconds=0.2"], capture_output=True, text=True, timeout=120, check=False, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    outcome = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"][_name(host)]
    history = outcome["health"]["cpu"]["history"]
    assert history["samples"] >= 1 and history["avg_percent"] is not None, history
    # a lab host is a container without lxcfs: sysstat's /proc/stat is the machine's, so the container's cgroup sample is judged
    assert outcome["health"]["cpu"]["basis"] == "sample" and history["scope"] == "host", outcome["health"]["cpu"]
    cpu = [check for check in outcome["checks"] if check["name"] == "cpu"][0]
    assert "host-wide in a container" in cpu["message"], cpu["message"]
