"""After both injected lockouts the host is reachable with the last confirmed hardening."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.molecule_ssh import offered_auth_methods, ssh  # noqa: E402

testinfra_hosts = ["all"]


def _faults(host):
    name = host.backend.get_hostname()
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "faults-%s.json" % name)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _reverted_by_the_role(host, message):
    """The message of the role's own rescue ("The run stops with the reason"), not of any other failure."""
    return message.startswith("baseline: SSH hardening on %s was reverted - " % host.backend.get_hostname())


def test_access_check_caught_allowusers_before_reload(host):
    message = _faults(host)["fault1"]
    assert _reverted_by_the_role(host, message) and "would be locked out" in message, message
    assert "AllowUsers" in message or "allowusers" in message, message


def test_unconfirmed_change_was_reported(host):
    """Fault 2 passes the access check (the user is allowed) and fails only at the fresh login after the reload:
    the role reports the revert with wait_for_connection's timeout as the reason."""
    message = _faults(host)["fault2"]
    assert _reverted_by_the_role(host, message), message
    assert "timed out waiting for" in message and "would be locked out" not in message, message


def test_revert_timer_fired_and_logged(host):
    journal = host.check_output("journalctl -t dealerscope-baseline --no-pager -o cat")
    assert "not confirmed in 30s - reverted" in journal


def test_fresh_key_login_works(host):
    result = ssh(host.backend.get_hostname(), "true")
    assert result.returncode == 0, result.stderr


def test_previous_hardening_is_back(host):
    dropin = host.file("/etc/ssh/sshd_config.d/10-dealerscope.conf").content_string
    assert "ListenAddress" not in dropin and "AllowUsers" not in dropin
    assert offered_auth_methods(host.backend.get_hostname()) == ["publickey"]


def test_sshd_listens_on_all_addresses_again(host):
    assert host.socket("tcp://0.0.0.0:22").is_listening
