"""dealerscope.ops.lb_member against a real nginx: a private instance (prefix, pid file and logs in a temporary
directory, loopback port) proxying to two tiny Python HTTP servers that answer their own name, with the upstream in
its own file like the lab load balancer's. The module runs through ``ansible`` and validates/reloads that instance."""
import pathlib
import shlex
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.lb_member import (  # noqa: E402  pylint: disable=wrong-import-position
    SLOW_S, Backend, InFlight, answers, binary, free_port, port_open, probe, run_module, stop_process, wait_until)

NGINX = binary("nginx")


@pytest.fixture(autouse=True)
def _nginx_is_installed():
    """A missing nginx fails the suite: a skipped test proves nothing (lab/bin/prereqs.sh installs it)."""
    if NGINX is None:
        pytest.fail("nginx is not installed, so lb_member cannot be tested against it: run lab/bin/prereqs.sh as root "
                    "(or apt-get install nginx)", pytrace=False)


MAIN = """worker_processes 1;
user root root;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    include {d}/conf.d/*.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://dealerscope_api;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""

# The lab's server line format (lab/roles/lab_lb/templates/dealerscope.conf.j2)
UPSTREAM = """# managed by the test
upstream dealerscope_api {{
    server 127.0.0.1:{port_a} max_fails=2 fail_timeout=5s;
    server 127.0.0.1:{port_b} max_fails=2 fail_timeout=5s;
}}
"""


@pytest.fixture
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("nx")
    (directory / "conf.d").mkdir()
    backends = {"a": Backend("a"), "b": Backend("b")}
    port = free_port()
    (directory / "nginx.conf").write_text(MAIN.format(d=directory, port=port))
    upstream = directory / "conf.d" / "dealerscope.conf"
    upstream.write_text(UPSTREAM.format(port_a=backends["a"].port, port_b=backends["b"].port))
    base = [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")]
    proc = None
    try:
        check = subprocess.run(base + ["-t", "-q"], capture_output=True, text=True, timeout=10, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        proc = subprocess.Popen(base + ["-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # pylint: disable=consider-using-with
        wait_until(lambda: port_open(port), 10, "nginx to listen")
        members = {name: "127.0.0.1:%d" % backend.port for name, backend in backends.items()}
        yield dict(port=port, path=upstream, backends=backends, members=members, base=base, directory=directory)
    finally:
        stop_process(proc)  # SIGTERM to the master: it stops its workers too
        for backend in backends.values():
            backend.stop()


def args(lab, **extra):
    result = dict(backend="nginx", config_path=str(lab["path"]), pool="dealerscope_api",
                  validate_command=shlex.join(lab["base"] + ["-t", "-q"]), reload_command=shlex.join(lab["base"] + ["-s", "reload"]))
    result.update(extra)
    return result


def test_drain_with_a_request_in_flight_then_enable(lab):
    started = time.monotonic()
    original = lab["path"].read_text()
    assert set(answers(lab["port"], 10)) == {"a", "b"}
    for backend in lab["backends"].values():
        backend.gate = lambda: " down; # dealerscope.ops drained " in lab["path"].read_text()
    slow = InFlight(lab["port"])
    wait_until(lambda: any(b.slow_started.is_set() for b in lab["backends"].values()), 5, "the slow request to reach a backend")
    busy = next(name for name, b in lab["backends"].items() if b.slow_started.is_set())
    other = "b" if busy == "a" else "a"
    member = lab["members"][busy]

    # check mode first: the request is still in flight, nothing is changed or waited for
    result = run_module(args(lab, member=member, state="drained"), check=True)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "drained" and result["drain_wait_s"] == 0
    assert lab["path"].read_text() == original

    result = run_module(args(lab, member=member, state="drained", reason="patching %s" % busy))
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "drained" and result["previous_state"] == "enabled"
    assert result["drain_wait_s"] >= SLOW_S - 0.5, result["drain_wait_s"]
    assert slow.finished_at is not None  # the module returned after the request had completed
    assert slow.join() == (200, busy)
    text = lab["path"].read_text()
    assert "    server %s max_fails=2 fail_timeout=5s down; # dealerscope.ops drained " % member in text
    changed_lines = [(old, new) for old, new in zip(original.splitlines(), text.splitlines()) if old != new]
    assert len(changed_lines) == 1 and changed_lines[0][0] == "    server %s max_fails=2 fail_timeout=5s;" % member
    assert text.count("\n") == original.count("\n")
    assert answers(lab["port"], 20) == [other] * 20

    result = run_module(args(lab, member=member, state="drained"))
    assert not result.get("failed"), result
    assert result["changed"] is False and result["drain_wait_s"] < 1

    result = run_module(args(lab, member=member, state="enabled"))
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "enabled"
    assert lab["path"].read_text() == original
    wait_until(lambda: set(answers(lab["port"], 10)) == {"a", "b"}, 5, "both servers to answer again")
    assert time.monotonic() - started < 25


def test_query_says_where_each_server_is_reached(lab):
    """The address and port of every upstream server, and a health probe sent there reaches that very server."""
    result = run_module(args(lab))
    assert not result.get("failed"), result
    ports = {name: backend.port for name, backend in lab["backends"].items()}
    assert [(m["name"], m["address"], m["port"]) for m in result["members"]] == [
        (lab["members"]["a"], "127.0.0.1", ports["a"]), (lab["members"]["b"], "127.0.0.1", ports["b"])]
    for member, name in zip(result["members"], ("a", "b")):
        assert probe(member["address"], member["port"]) == (200, name)


def test_a_rejected_configuration_is_restored(lab):
    original = lab["path"].read_text()
    broken = args(lab, member=lab["members"]["a"], state="drained",
                  validate_command=shlex.join(lab["base"] + ["-t", "-q", "-g", "bogus_directive on;"]))
    result = run_module(broken)
    assert result.get("failed") is True and result["changed"] is False
    assert 'unknown directive "bogus_directive"' in result["msg"]
    assert lab["path"].read_text() == original
    assert set(answers(lab["port"], 10)) == {"a", "b"}
