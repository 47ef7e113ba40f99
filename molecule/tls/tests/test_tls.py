"""TLS certificates on lb1 from a real ACME CA (pebble on the controller), proven from another lab host.

Order matters (pytest runs a file top to bottom): the converged certificate is checked first, then renewals and
faults one after another, each leaving a served, valid certificate behind.
"""
import datetime
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.awx_job import assert_changed_nothing, scenario_job  # noqa: E402
from helpers.molecule_ssh import ssh  # noqa: E402
from helpers.runbook import changed_tasks, checks_by, latest_report, on, receiver_clear, receiver_messages, run_module, run_playbook  # noqa: E402

testinfra_hosts = ["localhost"]
TLS = "dealerscope.ops.tls"
LIVE = "/etc/dealerscope-ops/tls/api/live"
LB = ("127.0.0.1", 18443)  # lb1:443 published on the controller's loopback


def served_from_app1():
    """What lb1:443 serves to a client on app1 (SNI dealerscope.lab)."""
    result = run_module("app1", "dealerscope.ops.tls_info",
                        {"certificates": [{"name": "probe", "endpoint": "lb1:443", "server_name": "dealerscope.lab"}]})
    served = result["certificates"][0]["endpoint"]
    assert served["reachable"], served
    return served


def on_disk():
    """lb1's live certificate as tls_info sees it on lb1 (chain against pebble's roots)."""
    result = run_module("lb1", "dealerscope.ops.tls_info", {
        "certificates": [{"name": "api", "cert_path": LIVE + "/fullchain.pem", "key_path": LIVE + "/privkey.pem"}],
        "ca_path": "/etc/dealerscope-ops/lab-acme-roots.pem"})
    return result["certificates"][0]


def live_target():
    return on("lb1", "readlink %s" % LIVE).strip()


def handshake(version=None, port=LB):
    """Serial (hex) of the certificate a TLS handshake with lb1 gets, or the error; only this exact version offered."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if version is not None:
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = version
    try:
        with socket.create_connection(port, timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="dealerscope.lab") as tls:
                der = tls.getpeercert(binary_form=True)
                return tls.version(), der
    except (ssl.SSLError, OSError) as exc:
        return None, str(exc)


def test_the_first_certificate_comes_from_the_acme_ca_and_is_served_to_another_host():
    report = latest_report("tls")[0]
    renewal = checks_by(report, "lb1")["tls-renewal:api"]
    assert renewal["status"] == "ok" and renewal["message"].startswith("renewed"), renewal
    cert = on_disk()
    assert cert["chain"]["valid"], cert["chain"]
    assert "Pebble" in cert["issuer"] and cert["sans"]["dns"] == ["dealerscope.lab", "api.dealerscope.lab"]
    assert cert["key"]["match"] and cert["key"]["mode"] == "0600" and cert["key"]["owner"] == "root"
    served = served_from_app1()
    assert served["serial"] == cert["serial"], (served, cert["serial"])
    # soonest first: db1's internal certificate (365 days) before lb1's from pebble (years)
    assert [(row["host"], row["certificate"]) for row in report["meta"]["soonest_expiries"]] == [("db1", "postgres"), ("lb1", "api")], \
        report["meta"]
    # The report holds no key material.
    assert "PRIVATE KEY" not in json.dumps(report)


def test_tls_policy_checked_from_outside():
    """TLS 1.2 and 1.3 are accepted, 1.1 is refused by the server (nginx's configuration says so too); HSTS on every
    response; plain HTTP answers with a redirect to HTTPS."""
    assert handshake(ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
    assert handshake(ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    version, error = handshake(ssl.TLSVersion.TLSv1_1)
    assert version is None, "lb1 accepted TLS 1.1"
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in on("lb1", "nginx -T 2>/dev/null")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen("https://127.0.0.1:18443/api/vehicles?limit=1", context=context, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    redirect = on("app1", "curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://lb1/api/vehicles")
    assert redirect.startswith("301 https://lb1/"), redirect


def test_a_second_run_as_an_awx_job_changes_nothing_when_nothing_is_due(tmp_path):
    before = live_target()
    result = scenario_job(tmp_path, "tls", tls_force_renewal="false").run()  # as AWX runs it (tests/helpers/awx_job.py)
    assert_changed_nothing(result, "tls")
    assert live_target() == before
    report = latest_report("tls")[0]
    assert checks_by(report, "lb1")["tls-renewal:api"]["message"].startswith("not due"), report


def test_check_mode_predicts_a_forced_renewal_and_changes_nothing():
    before, serial = live_target(), served_from_app1()["serial"]
    result = run_playbook(TLS, "--check", "--diff", extra_vars={"tls_force_renewal": "true"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert ("dealerscope.ops.tls : Check mode - what a real run would renew (reported as changed, as the real run would)", "lb1") \
        in changed_tasks(result.stdout, skip_ending=True), result.stdout[-3000:]
    assert live_target() == before and served_from_app1()["serial"] == serial
    # "false" as a string (extra vars arrive as strings) forces nothing.
    result = run_playbook(TLS, "--check", extra_vars={"tls_force_renewal": "false"})
    assert changed_tasks(result.stdout, skip_ending=True) == []


def test_a_forced_renewal_under_load_serves_the_new_serial_without_a_failed_request():
    old = served_from_app1()["serial"]
    stop, outcomes = threading.Event(), []

    def load():
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline and len(outcomes) < 3000:
            try:
                with urllib.request.urlopen("https://127.0.0.1:18443/api/vehicles?limit=1", context=context, timeout=5) as response:
                    outcomes.append(response.status)
            except Exception as exc:  # noqa: BLE001 - every failure counts
                outcomes.append(repr(exc))
            time.sleep(0.02)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(1)
        result = run_playbook(TLS, extra_vars={"tls_force_renewal": "true"})
    finally:
        time.sleep(1)
        stop.set()
        worker.join(30)
    assert result.returncode == 0, result.stdout[-3000:]
    failed = [outcome for outcome in outcomes if outcome != 200]
    assert len(outcomes) >= 50 and failed == [], (len(outcomes), failed[:5])
    new = served_from_app1()["serial"]
    assert new != old and new == on_disk()["serial"]
    renewal = checks_by(latest_report("tls")[0], "lb1")["tls-renewal:api"]
    assert "forced" in renewal["message"] and "%s -> %s" % (old, new) in renewal["message"], renewal
    releases = on("lb1", "ls /etc/dealerscope-ops/tls/api/releases").split()
    assert 2 <= len(releases) <= 3, releases


def test_a_broken_nginx_configuration_keeps_the_old_certificate_served_and_fails_the_run():
    before, serial = live_target(), served_from_app1()["serial"]
    receiver_clear()
    on("lb1", "echo 'this is not nginx configuration;' > /etc/nginx/conf.d/broken.conf")
    try:
        result = run_playbook(TLS, extra_vars={"tls_force_renewal": "true"})
    finally:
        on("lb1", "rm -f /etc/nginx/conf.d/broken.conf")
    assert result.returncode != 0, "a failed renewal must fail the run"
    assert live_target() == before, "the previous release must be live again"
    assert served_from_app1()["serial"] == serial, "lb1 must keep serving the old certificate"
    renewal = checks_by(latest_report("tls")[0], "lb1")["tls-renewal:api"]
    assert renewal["status"] == "critical" and "reverted" in renewal["message"] and "nginx" in renewal["message"], renewal
    assert len(on("lb1", "ls /etc/dealerscope-ops/tls/api/releases").split()) <= 3
    # The failure is alerted (tls_renewal_failed, severity high: sent at once to the channel taking high).
    assert any(m["path"] == "/slack" and "tls-renewal:api" in json.dumps(m["body"]) for m in receiver_messages()), receiver_messages()


def expired_pair():
    """An expired certificate and its key (PEM), made on the controller."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dealerscope.lab")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=90))
            .not_valid_after(now - datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("dealerscope.lab")]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())


def test_an_expired_certificate_is_critical_in_the_audit_and_renewed_by_the_next_run():
    cert, key = expired_pair()
    release = "/etc/dealerscope-ops/tls/api/releases/00000000T000000Z"
    on("lb1", "mkdir -p %s && umask 077 && cat > %s/privkey.pem <<'EOF'\n%sEOF\ncat > %s/fullchain.pem <<'EOF'\n%sEOF\n"
              "cp %s/fullchain.pem %s/cert.pem && ln -sfnT releases/00000000T000000Z %s" % (release, release, key, release, cert,
                                                                                            release, release, LIVE))
    result = run_playbook(TLS, extra_vars={"tls_mode": "audit"})
    assert result.returncode != 0, "a critical certificate fails the audit run"
    check = checks_by(latest_report("tls")[0], "lb1")["tls:api"]
    assert check["status"] == "critical" and "EXPIRED" in check["message"], check
    result = run_playbook(TLS)
    assert result.returncode == 0, result.stdout[-3000:]
    report = latest_report("tls")[0]
    assert checks_by(report, "lb1")["tls:api"]["status"] == "ok", checks_by(report, "lb1")
    assert served_from_app1()["serial"] == on_disk()["serial"]


def test_a_private_key_readable_by_others_stops_the_host_before_any_change():
    before = live_target()
    on("lb1", "chmod 0644 %s/privkey.pem" % LIVE)
    try:
        result = run_playbook(TLS, extra_vars={"tls_force_renewal": "true"})
    finally:
        on("lb1", "chmod 0600 %s/privkey.pem" % LIVE)
    assert result.returncode != 0
    assert "group/other permissions" in result.stdout and "nothing was changed" in result.stdout
    assert live_target() == before


def test_postgresql_serves_the_internal_ca_certificate_and_the_app_connects_over_tls():
    """db1's certificate comes from the internal CA (kept on lb1); a client on app1 gets it after PostgreSQL's
    SSLRequest; the API's connections (new ones, after a restart) are encrypted (pg_stat_ssl) and an unencrypted
    connection from the app network is refused by pg_hba."""
    served = run_module("app1", "dealerscope.ops.tls_info", {"certificates": [
        {"name": "pg", "endpoint": "db1:5432", "server_name": "db1.dealerscope.lab", "starttls": "postgres"}]})["certificates"][0]["endpoint"]
    files = run_module("db1", "dealerscope.ops.tls_info", {"certificates": [
        {"name": "postgres", "cert_path": "/etc/dealerscope-ops/tls/postgres/live/fullchain.pem",
         "key_path": "/etc/dealerscope-ops/tls/postgres/live/privkey.pem"}]})["certificates"][0]
    assert served["serial"] == files["serial"] and files["chain"]["valid"], (served, files)
    assert "DealerScope internal CA" in files["issuer"] and files["key"]["owner"] == "postgres" and files["key"]["mode"] == "0600"
    assert on("lb1", "stat -c '%a %U' /etc/dealerscope-ops/tls/internal-ca/ca.key").split() == ["600", "root"]
    on("app1", "systemctl restart dealerscope-api && for i in $(seq 30); do curl -fsS http://127.0.0.1:8000/api/vehicles?limit=1 "
               ">/dev/null && break; sleep 1; done")
    app1 = on("app1", "ip -4 -j route get 192.0.2.1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"prefsrc\"])'").strip()
    rows = on("db1", "runuser -u postgres -- psql -XAtc \"select count(*), bool_and(s.ssl) from pg_stat_ssl s join pg_stat_activity a "
                     "using (pid) where a.client_addr = '%s'\"" % app1).strip()
    count, all_ssl = rows.split("|")
    assert int(count) > 0 and all_ssl == "t", rows
    refused = ssh("app1", "set -a; . /etc/dealerscope/api.env; python3 -c \"import os, psycopg2; psycopg2.connect(host='db1', "
                          "dbname=os.environ['DS_DB_NAME'], user=os.environ['DS_DB_USER'], password=os.environ['DS_DB_PASSWORD'], "
                          "sslmode='disable')\"")
    assert refused.returncode != 0 and "no encryption" in refused.stderr, refused.stderr
