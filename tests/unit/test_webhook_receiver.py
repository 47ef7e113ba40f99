# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lab/webhook_receiver.py: /health says where it records and whether it still can; /shutdown stops it.

A receiver left running by a checkout that is gone answered GET /messages but failed every POST, so stack
scenarios that reused it lost every notification (issue 7: lab state must not depend on a checkout)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import threading
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "lab" / "webhook_receiver.py")
receiver = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(receiver)


def _get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as response:
        return json.loads(response.read())


def test_health_names_the_file_and_turns_unwritable_when_its_directory_is_gone(tmp_path):
    directory = tmp_path / "checkout" / ".build"
    directory.mkdir(parents=True)
    server = receiver.WebhookReceiver(port=0, path=str(directory / "webhooks.jsonl"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        assert _get(port, "/health") == {"file": str(directory / "webhooks.jsonl"), "writable": True}
        shutil.rmtree(tmp_path / "checkout")
        assert _get(port, "/health")["writable"] is False
    finally:
        server.shutdown()
        server.server_close()


def test_shutdown_stops_the_receiver(tmp_path):
    server = receiver.WebhookReceiver(port=0, path=str(tmp_path / "webhooks.jsonl"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    request = urllib.request.Request("http://127.0.0.1:%d/shutdown" % port, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"ok": True}
    thread.join(timeout=10)
    server.server_close()
    assert not thread.is_alive()
    assert not (tmp_path / "webhooks.jsonl").exists()  # the shutdown request is not recorded as a message


def _free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _webhook_sh(action, port, path):
    import os
    import subprocess
    env = dict(os.environ, LAB_WEBHOOK_PORT=str(port), LAB_WEBHOOK_FILE=str(path))
    return subprocess.run([str(ROOT / "lab" / "bin" / "webhook.sh"), action], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_webhook_sh_reuses_this_checkouts_receiver_and_replaces_one_of_a_deleted_checkout(tmp_path):
    """lab/bin/webhook.sh start (Molecule's stack preparation and `make lab`): one command that starts the
    receiver, reuses it when it records into the same file and still can, and replaces one that cannot."""
    port = _free_port()
    old = tmp_path / "old" / ".build" / "webhooks.jsonl"
    new = tmp_path / "new" / ".build" / "webhooks.jsonl"
    old.parent.mkdir(parents=True)
    new.parent.mkdir(parents=True)
    try:
        first = _webhook_sh("start", port, old)
        assert first.returncode == 0 and "started" in first.stdout, first.stderr
        again = _webhook_sh("start", port, old)
        assert again.returncode == 0 and "already answers" in again.stdout, again.stderr
        assert _get(port, "/health") == {"file": str(old), "writable": True}
        shutil.rmtree(tmp_path / "old")  # the checkout that started it is gone
        replaced = _webhook_sh("start", port, new)
        assert replaced.returncode == 0 and "started" in replaced.stdout, replaced.stderr
        assert _get(port, "/health") == {"file": str(new), "writable": True}
        request = urllib.request.Request("http://127.0.0.1:%d/pager" % port, data=b'{"x": 1}', method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass
        assert [m["path"] for m in _get(port, "/messages")] == ["/pager"]
    finally:
        _webhook_sh("stop", port, new)
        _webhook_sh("stop", port, old)


def test_the_lab_network_gateways_are_the_only_other_addresses_it_binds(tmp_path):
    """A runner host in the lab notifies the receiver on Molecule's network gateway; any other address is refused."""
    import pytest  # pylint: disable=import-outside-toplevel
    for host in ("10.213.47.1", "10.213.48.1"):
        try:
            server = receiver.WebhookReceiver(0, str(tmp_path / "x.jsonl"), host=host)
        except OSError:
            continue  # the lab network does not exist on this machine right now: the address was accepted
        server.server_close()
    for host in ("10.213.48.2", "10.213.49.1", "0.0.0.0"):
        with pytest.raises(ValueError, match="lab network gateway"):
            receiver.WebhookReceiver(0, str(tmp_path / "x.jsonl"), host=host)
