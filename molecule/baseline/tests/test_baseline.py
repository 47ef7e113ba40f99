"""Verify dealerscope.ops.baseline from the outside: real SSH logins, running services, file modes."""
import os
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
    assert not host.service("dealerscope-sshd-revert.timer").is_running


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


@pytest.mark.parametrize("package", ["chrony", "logrotate", "nftables", "sudo", "curl", "acl"])
def test_packages_installed(host, package):
    assert host.package(package).is_installed


def test_instances_are_the_lab_releases():
    assert set(instances()) == {"baseline-deb12", "baseline-deb13"}
