"""dealerscope.ops.lb_member against a real haproxy: a frontend on a free loopback port, an admin socket, and a backend
with two servers (tiny Python HTTP servers answering their own name). The module runs through ``ansible``."""
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.lb_member import (  # noqa: E402  pylint: disable=wrong-import-position
    SLOW_S, Backend, InFlight, answers, binary, free_port, port_open, probe, run_module, stop_process, wait_until)

HAPROXY = binary("haproxy")


@pytest.fixture(autouse=True)
def _haproxy_is_installed():
    """A missing haproxy fails the suite: a skipped test proves nothing (lab/bin/prereqs.sh installs it)."""
    if HAPROXY is None:
        pytest.fail("haproxy is not installed, so lb_member cannot be tested against it: run lab/bin/prereqs.sh as root "
                    "(or apt-get install haproxy)", pytrace=False)


CONFIG = """global
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be_app
backend be_app
    balance roundrobin
    server a 127.0.0.1:{port_a}
    server b 127.0.0.1:{port_b}
"""


def admin(sock, command):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(sock)
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return b"".join(chunks).decode()
            chunks.append(chunk)


def admin_state(sock, server):
    """srv_admin_state of be_app/<server> (0 ready, 8 drain, 1 maint)."""
    for line in admin(sock, "show servers state be_app").splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == "be_app" and fields[3] == server:
            return int(fields[6])
    raise AssertionError("server %s not in show servers state" % server)


@pytest.fixture
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hx")
    sock = str(directory / "admin.sock")
    backends = {"a": Backend("a"), "b": Backend("b")}
    port = free_port()
    config = directory / "haproxy.cfg"
    config.write_text(CONFIG.format(sock=sock, port=port, port_a=backends["a"].port, port_b=backends["b"].port))
    proc = None
    try:
        check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=10, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(directory / "haproxy.log", "w") as log:
            proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
        wait_until(lambda: os.path.exists(sock) and port_open(port), 10, "haproxy to listen")
        yield dict(port=port, sock=sock, backends=backends)
    finally:
        stop_process(proc)
        for backend in backends.values():
            backend.stop()


def args(lab, **extra):
    result = dict(backend="haproxy", socket=lab["sock"], pool="be_app")
    result.update(extra)
    return result


def test_drain_and_enable_a_real_haproxy_server(lab):
    started = time.monotonic()
    assert set(answers(lab["port"], 10)) == {"a", "b"}

    # check mode: predicts the change, changes nothing
    result = run_module(args(lab, member="a", state="drained"), check=True)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "maint" and result["previous_state"] == "enabled"
    assert admin_state(lab["sock"], "a") == 0
    assert set(answers(lab["port"], 10)) == {"a", "b"}

    result = run_module(args(lab, member="a", state="drained", reason="patching a"))
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "maint" and result["reason"] == "patching a"
    assert [(m["name"], m["state"]) for m in result["members"]] == [("a", "maint"), ("b", "enabled")]
    assert admin_state(lab["sock"], "a") & 0x01
    assert answers(lab["port"], 20) == ["b"] * 20

    result = run_module(args(lab, member="a", state="drained"))
    assert not result.get("failed"), result
    assert result["changed"] is False and result["state"] == "maint"

    result = run_module(args(lab, member="a", state="enabled"))
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "enabled" and result["previous_state"] == "maint"
    assert set(answers(lab["port"], 10)) == {"a", "b"}
    assert time.monotonic() - started < 20


def test_query_says_where_each_server_is_reached(lab):
    """haproxy server names (a, b) are not host names: the module returns the address and port haproxy uses, and a
    health probe sent there (what the patching role does from the load balancer) reaches that very server."""
    result = run_module(args(lab))
    assert not result.get("failed"), result
    ports = {name: backend.port for name, backend in lab["backends"].items()}
    expected = [("a", "127.0.0.1", ports["a"]), ("b", "127.0.0.1", ports["b"])]
    assert [(m["name"], m["address"], m["port"]) for m in result["members"]] == expected
    for member in result["members"]:
        assert probe(member["address"], member["port"]) == (200, member["name"])


def test_drain_waits_for_the_request_in_flight(lab):
    started = time.monotonic()
    sock = lab["sock"]
    for name, backend in lab["backends"].items():
        # the slow request is released once haproxy has the server in drain state (the module is then waiting)
        backend.gate = lambda name=name: bool(admin_state(sock, name) & 0x08)
    slow = InFlight(lab["port"])
    wait_until(lambda: any(b.slow_started.is_set() for b in lab["backends"].values()), 5, "the slow request to reach a backend")
    busy = next(name for name, b in lab["backends"].items() if b.slow_started.is_set())
    other = "b" if busy == "a" else "a"

    result = run_module(args(lab, member=busy, state="drained", reason="slow request test"))
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "maint"
    assert result["drain_wait_s"] >= SLOW_S - 0.5, result["drain_wait_s"]
    assert slow.finished_at is not None  # the module returned after the request had completed
    assert slow.join() == (200, busy)
    assert answers(lab["port"], 20) == [other] * 20
    assert time.monotonic() - started < 20
