"""Rolling patching through haproxy on a real stack: converge patched app1 and app2 while 20 req/s ran through
lb1, which serves with haproxy (lab_lb's haproxy mode). haproxy's own log shows each host taken out of the
backend (runtime API drain, then maint) while it was patched, and serving no request until it was put back;
a sick peer stops the rollout, probed at the address haproxy uses (an haproxy server name is not a host).
They run in file order."""
import base64
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.runbook import EPHEMERAL, checks_by, latest_report, on, run_playbook  # noqa: E402
from helpers.patching import APPS, PATCH, boot_time, fact, reset, versions  # noqa: E402

POOL = "dealerscope_api"
_ADMIN = """
import socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect("/run/haproxy/admin.sock")
conn.sendall(sys.argv[1].encode() + b"\\n")
chunks = []
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    chunks.append(chunk)
sys.stdout.write(b"".join(chunks).decode())
"""


def said(result):
    """What the run printed, whitespace collapsed: the YAML callback folds long messages over several lines."""
    return " ".join(result.stdout.split())


def haproxy(command):
    """One runtime API command on lb1's admin socket."""
    script = base64.b64encode(_ADMIN.encode()).decode()
    return on("lb1", "echo %s | base64 -d > /tmp/hx_admin.py && python3 /tmp/hx_admin.py '%s'" % (script, command))


def servers():
    """{server: (srv_addr, srv_admin_state, srv_port)} of the backend, from `show servers state`."""
    header, rows = None, {}
    for line in haproxy("show servers state %s" % POOL).splitlines():
        if line.startswith("# "):
            header = line[2:].split()
        elif header and len(line.split()) >= 7:
            row = dict(zip(header, line.split()))
            rows[row["srv_name"]] = (row["srv_addr"], int(row["srv_admin_state"]), row["srv_port"])
    return rows


def status(server):
    for line in haproxy("show stat").splitlines():
        fields = line.split(",")
        if len(fields) > 17 and fields[0] == POOL and fields[1] == server:
            return fields[17]
    raise AssertionError("%s/%s not in show stat" % (POOL, server))


def haproxy_log():
    """What haproxy logged on lb1 (request lines and server state changes), in order."""
    return on("lb1", "journalctl -q -o cat --no-pager -t haproxy").splitlines()


def test_lb1_serves_through_haproxy_not_nginx():
    listeners = on("lb1", "ss -Hltnp")
    for port in (":80 ", ":443 "):
        lines = [line for line in listeners.splitlines() if port in line]
        assert lines and all("haproxy" in line for line in lines), listeners
    assert on("lb1", "ls /etc/nginx/sites-enabled/").strip() == ""
    assert sorted(servers()) == ["app1", "app2"]


def test_rolling_patch_through_haproxy_under_load_dropped_no_request():
    load = json.loads((EPHEMERAL / "load.json").read_text())
    assert load["sent"] >= 200, load  # 20 req/s for the whole run
    assert load["failed"] == 0 and load["skipped"] == 0, load["errors"]
    report, base = latest_report("patch")
    assert report["meta"]["kind"] == "rollout" and report["status"] in ("ok", "warning"), report["problems"]
    assert report["meta"]["counts"]["patched"] == 2 and report["meta"]["counts"]["failed"] == 0
    assert report["meta"]["batches"] == [["app1"], ["app2"]]
    for host in APPS:
        checks = checks_by(report, host)
        # the pre-check found a healthy peer: probed at the address haproxy uses, not at http://<server name>/
        assert checks["precheck"]["status"] == "ok" and checks["pool"]["value"] > 0, checks
        assert checks["reboot"]["message"].startswith("rebooted") and checks["postcheck"]["status"] == "ok"
        assert boot_time(host) != (EPHEMERAL / ("boot_before_%s" % host)).read_text().strip(), "%s was not rebooted" % host
        assert fact(host)["status"] == "ok"
    assert versions("app1")["dslab-libdemo"] == "1.1" and versions("app2")["dslab-libdemo"] == "1.1"


def test_each_host_was_out_of_the_haproxy_backend_while_patched_and_served_nothing_then():
    out_since, periods, served = {}, {host: [] for host in APPS}, {host: [] for host in APPS}
    down = re.compile(r"Server %s/(\w+) is going DOWN for maintenance" % POOL)
    back = re.compile(r"Server %s/(\w+) is .*leaving forced maintenance" % POOL)
    request = re.compile(r"\s%s/(\w+)\s+\S+\s+(\d{3})\s" % POOL)
    for index, line in enumerate(haproxy_log()):
        match = down.search(line)
        if match and match.group(1) in APPS:
            out_since.setdefault(match.group(1), index)
            continue
        match = back.search(line)
        if match and match.group(1) in out_since:
            periods[match.group(1)].append((out_since.pop(match.group(1)), index))
            continue
        match = request.search(line)
        if match and match.group(1) in APPS:
            served[match.group(1)].append(index)
    assert not out_since, "still out of the backend: %s" % out_since
    for host in APPS:
        other = [name for name in APPS if name != host][0]
        assert len(periods[host]) == 1, "%s: drain/enable periods %s" % (host, periods[host])
        start, end = periods[host][0]
        assert not [i for i in served[host] if start < i < end], "%s served requests while out of the backend" % host
        assert len([i for i in served[other] if start < i < end]) >= 20, "%s did not carry the load while %s was out" % (other, host)
        assert [i for i in served[host] if i > end], "%s served nothing after it was put back" % host


def test_both_servers_are_back_in_the_backend_and_up():
    rows = servers()
    assert rows["app1"][1] == 0 and rows["app2"][1] == 0, rows  # admin state: ready (no drain, no maint)
    deadline = time.monotonic() + 15
    while not all(status(host) == "UP" for host in APPS) and time.monotonic() < deadline:
        time.sleep(1)
    assert [status(host) for host in APPS] == ["UP", "UP"]


def test_a_sick_peer_stops_the_rollout_probed_at_its_address():
    reset("app1")
    address, admin, port = servers()["app2"]
    assert re.match(r"^\d+\.\d+\.\d+\.\d+$", address) and port == "8000", (address, port)
    on("app2", "systemctl stop dealerscope-api")
    try:
        result = run_playbook(PATCH)
        assert result.returncode != 0
        assert "only 0 healthy peer(s) would stay in pool dealerscope_api" in said(result), result.stdout[-3000:]
        assert "http://%s:8000/healthz" % address in said(result), result.stdout[-3000:]  # the address haproxy uses
        assert versions("app1")["dslab-libdemo"] == "1.0" and fact("app1") == {}  # untouched
        assert servers()["app1"][1] == 0  # never drained
    finally:
        on("app2", "systemctl start dealerscope-api")
