# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import warnings

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.dealerscope.ops.plugins.module_utils import tls_certs
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import rank
from ansible_collections.dealerscope.ops.plugins.module_utils.tls_certs import (
    certificate_check,
    inspect_certificate,
    key_info,
    load_cert_file,
    load_trust_anchors,
    parse_endpoint,
    probe_endpoint,
    serial_hex,
    validate_chain,
    validate_options,
    validity,
    verify_signature,
)

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# a small PKI, built with the controller's cryptography (the code under test only uses 38's API)

def new_key(kind='ec'):
    if kind == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == 'ed25519':
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def make_cert(cn, key, issuer=None, issuer_key=None, ca=False, not_before=None, not_after=None, dns=(), ips=(),
              serial=None, rsa_pss=False):
    """A certificate for ``key``; self-signed without ``issuer``."""
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'DealerScope Lab'), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or NOW - 10 * DAY)
        .not_valid_after(not_after or NOW + 80 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns or ips:
        names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    if rsa_pss:
        pss_hash = rsa_pss if isinstance(rsa_pss, hashes.HashAlgorithm) else hashes.SHA256()
        return builder.sign(signer, pss_hash, rsa_padding=padding.PSS(padding.MGF1(pss_hash), padding.PSS.DIGEST_LENGTH))
    return builder.sign(signer, algorithm)


def pem(*certs):
    return b''.join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class Pki:
    """Root (RSA) -> intermediate (EC) -> leaf (EC), plus an expired leaf and a stranger key."""

    def __init__(self):
        self.root_key = new_key('rsa')
        self.root = make_cert('DealerScope Root CA', self.root_key, ca=True, not_after=NOW + 3650 * DAY)
        self.inter_key = new_key('ec')
        self.inter = make_cert('DealerScope Intermediate CA', self.inter_key, self.root, self.root_key, ca=True, not_after=NOW + 1000 * DAY)
        self.leaf_key = new_key('ec')
        self.leaf = self.issue('api.dealerscope.lab', self.leaf_key)
        self.stranger_key = new_key('ec')

    def issue(self, cn, key=None, **kwargs):
        kwargs.setdefault('dns', [cn])
        kwargs.setdefault('ips', ['127.0.0.1'])
        return make_cert(cn, key or self.leaf_key, self.inter, self.inter_key, **kwargs)

    def write(self, directory, name, *certs, key=None, key_mode=0o600):
        """Write ``<name>.pem`` (the certificates) and, with ``key``, ``<name>.key``; return their paths."""
        cert_path = os.path.join(str(directory), name + '.pem')
        with open(cert_path, 'wb') as handle:
            handle.write(pem(*certs))
        key_path = None
        if key is not None:
            key_path = os.path.join(str(directory), name + '.key')
            with open(key_path, 'wb') as handle:
                handle.write(key_pem(key))
            os.chmod(key_path, key_mode)
        return cert_path, key_path

    def ca_bundle(self, directory, *certs):
        path = os.path.join(str(directory), 'ca.pem')
        with open(path, 'wb') as handle:
            handle.write(pem(*(certs or (self.root,))))
        return path


@pytest.fixture(scope='session')
def pki():
    return Pki()


# ---------------------------------------------------------------------------------------------
# a real TLS endpoint on 127.0.0.1

class TLSServer:
    """Serves one certificate chain on an ephemeral port; records the SNI names received."""

    def __init__(self, cert_path, key_path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        self.server_names = []
        self.context.sni_callback = self._sni
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.endpoint = '127.0.0.1:%d' % self.port
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _sni(self, sslobj, server_name, context):  # pylint: disable=unused-argument
        self.server_names.append(server_name)

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)  # until the client closes
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def tls_server():
    servers = []

    def start(cert_path, key_path):
        server = TLSServer(cert_path, key_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def inspect(path, key_path=None, anchors=(), endpoint=None, server_name=None, name='lb', now=None, timeout=5.0):
    spec = {'name': name, 'cert_path': path, 'key_path': key_path, 'endpoint': endpoint, 'server_name': server_name}
    return inspect_certificate(spec, list(anchors), 'test-bundle', timeout=timeout, now=now or NOW)


def check_of(info, **thresholds):
    return certificate_check(info, **thresholds)


# ---------------------------------------------------------------------------------------------
# compatibility with cryptography 38 (Debian 12)

def test_only_cryptography_38_apis_are_used():
    with open(tls_certs.__file__) as handle:
        source = handle.read()
    for name in ('verify_directly_issued_by', 'load_pem_x509_certificates', 'not_valid_after_utc', 'not_valid_before_utc',
                 'signature_algorithm_parameters', 'public_key_algorithm_oid'):
        assert not re.search(r'\.%s\b' % name, source), name


def test_no_deprecation_warnings_with_a_recent_cryptography(pki, tmp_path):
    path, key = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter, key=pki.leaf_key)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        info = inspect(path, key, anchors=[pki.root])
    assert info['chain']['valid']


# ---------------------------------------------------------------------------------------------
# parsing

def test_leaf_fields(pki, tmp_path):
    cert = pki.issue('api.dealerscope.lab', dns=['api.dealerscope.lab', 'www.dealerscope.lab'], ips=['127.0.0.1', '::1'],
                     serial=0xABCDEF0123, not_before=NOW - 10 * DAY, not_after=NOW + 30 * DAY)
    path, _key = pki.write(tmp_path, 'leaf', cert, pki.inter)
    info = inspect(path)
    assert info['error'] is None
    assert info['subject_cn'] == 'api.dealerscope.lab'
    assert info['subject'] == 'CN=api.dealerscope.lab,O=DealerScope Lab'
    assert info['sans'] == {'dns': ['api.dealerscope.lab', 'www.dealerscope.lab'], 'ip': ['127.0.0.1', '::1']}
    assert info['issuer'] == 'CN=DealerScope Intermediate CA,O=DealerScope Lab'
    assert info['serial'] == 'ABCDEF0123'
    assert info['not_before'] == (NOW - 10 * DAY).strftime('%Y-%m-%dT%H:%M:%SZ')
    assert info['not_after'] == (NOW + 30 * DAY).strftime('%Y-%m-%dT%H:%M:%SZ')
    assert info['days_left'] == 30.0 and info['leaf_days_left'] == 30.0
    assert info['lifetime_percent_used'] == 25.0
    assert info['expired'] is False and info['not_yet_valid'] is False and info['self_signed'] is False
    assert info['chain']['length'] == 2
    assert [c['subject'] for c in info['chain']['certificates']] == [info['subject'], pki.inter.subject.rfc4514_string()]


def test_serial_is_uppercase_hex_padded_like_openssl():
    assert serial_hex(0xABC) == '0ABC'
    assert serial_hex(0x1A2B) == '1A2B'
    assert serial_hex(255) == 'FF'


def test_validity_window():
    fields = validity(NOW - 75 * DAY, NOW + 25 * DAY, NOW)
    assert fields['days_left'] == 25.0 and fields['lifetime_percent_used'] == 75.0 and not fields['expired']
    fields = validity(NOW - 10 * DAY, NOW - 2 * DAY - datetime.timedelta(hours=12), NOW)
    assert fields['days_left'] == -2.5 and fields['expired'] and fields['lifetime_percent_used'] > 100
    fields = validity(NOW + DAY, NOW + 2 * DAY, NOW)
    assert fields['not_yet_valid'] and fields['lifetime_percent_used'] == 0.0
    assert validity(NOW, NOW, NOW)['lifetime_percent_used'] == 100.0


def test_missing_and_unparsable_files_are_critical(tmp_path):
    info = inspect(str(tmp_path / 'nope.pem'))
    check = check_of(info)
    assert check['status'] == 'critical' and check['alert'] == 'tls_invalid'
    assert check['message'] == 'lb: certificate file %s is missing' % (tmp_path / 'nope.pem')
    assert check['value'] is None and check['unit'] == 'days' and check['threshold'] == 21

    garbage = tmp_path / 'garbage.pem'
    garbage.write_text('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n')
    check = check_of(inspect(str(garbage)))
    assert check['status'] == 'critical' and 'cannot be parsed' in check['message']

    empty = tmp_path / 'empty.pem'
    empty.write_text('nothing here\n')
    assert load_cert_file(str(empty))[1] == 'certificate file %s holds no PEM certificate' % empty


# ---------------------------------------------------------------------------------------------
# chains

def test_full_chain_validates_against_the_ca_bundle(pki, tmp_path):
    path, _key = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter)
    anchors, source, error = load_trust_anchors(pki.ca_bundle(tmp_path))
    assert error is None and source.endswith('ca.pem') and len(anchors) == 1
    info = inspect(path, anchors=anchors)
    assert info['chain']['valid'] is True
    assert info['chain']['anchor'] == pki.root.subject.rfc4514_string()
    assert 'trust anchor' in info['chain']['reason']
    assert check_of(info)['status'] == 'ok'


def test_chain_ending_with_its_self_signed_root_is_valid_without_anchors(pki, tmp_path):
    path, _key = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter, pki.root)
    info = inspect(path)
    assert info['chain']['valid'] is True and 'self-signed' in info['chain']['reason']


def test_chain_missing_its_intermediate(pki, tmp_path):
    path, _key = pki.write(tmp_path, 'leaf', pki.leaf)
    info = inspect(path, anchors=[pki.root])
    assert info['chain']['valid'] is False
    assert 'missing intermediate' in info['chain']['reason']
    check = check_of(info)
    assert check['status'] == 'critical' and check['alert'] == 'tls_invalid'
    assert 'chain invalid: the issuer CN=DealerScope Intermediate CA' in check['message']

    path, _key = pki.write(tmp_path, 'skip', pki.leaf, pki.root)
    info = inspect(path, anchors=[pki.root])
    assert info['chain']['valid'] is False
    assert info['chain']['reason'].startswith('certificate 1 (CN=api.dealerscope.lab,O=DealerScope Lab) is not signed by certificate 2')

    path, _key = pki.write(tmp_path, 'noanchor', pki.leaf, pki.inter)
    info = inspect(path, anchors=[])
    assert info['chain']['valid'] is False and 'no trust anchors are loaded' in info['chain']['reason']


def test_chain_in_the_wrong_order_is_invalid(pki, tmp_path):
    path, _key = pki.write(tmp_path, 'leaf', pki.inter, pki.leaf)
    info = inspect(path, anchors=[pki.root])
    assert info['chain']['valid'] is False
    assert info['subject_cn'] == 'DealerScope Intermediate CA'  # the first certificate is taken as the leaf


def test_forged_signature_is_detected(pki, tmp_path):
    impostor_key = new_key('ec')
    impostor = make_cert('DealerScope Intermediate CA', impostor_key, pki.root, pki.root_key, ca=True)
    forged = make_cert('api.dealerscope.lab', pki.leaf_key, impostor, impostor_key)  # same issuer name, other key
    assert verify_signature(forged, pki.inter) == 'signature does not verify'
    path, _key = pki.write(tmp_path, 'forged', forged, pki.inter)
    info = inspect(path, anchors=[pki.root])
    assert info['chain']['valid'] is False and 'signature does not verify' in info['chain']['reason']


def test_issuer_that_is_not_a_ca_is_rejected(pki, tmp_path):
    signer_key = new_key('ec')
    not_ca = pki.issue('not-a-ca.dealerscope.lab', signer_key)
    child = make_cert('child', new_key('ec'), not_ca, signer_key)
    path, _key = pki.write(tmp_path, 'child', child, not_ca, pki.inter)
    info = inspect(path, anchors=[pki.root])
    assert info['chain']['valid'] is False and 'is not a CA certificate' in info['chain']['reason']


@pytest.mark.parametrize('kind', ['rsa', 'ec', 'ed25519'])
def test_signatures_of_every_key_type(kind, tmp_path):
    ca_key = new_key(kind)
    ca = make_cert('CA %s' % kind, ca_key, ca=True)
    leaf = make_cert('leaf-%s.lab' % kind, new_key('ec'), ca, ca_key)
    assert verify_signature(leaf, ca) is None
    assert verify_signature(leaf, make_cert('CA %s' % kind, new_key(kind), ca=True)) == 'signature does not verify'
    assert validate_chain([leaf], [ca])['valid'] is True


@pytest.mark.parametrize('algorithm', [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()], ids=lambda a: a.name)
def test_rsa_pss_signature(algorithm):
    # cryptography 38 cannot tell the PSS parameters: they are read from the DER
    ca_key = new_key('rsa')
    ca = make_cert('CA pss', ca_key, ca=True)
    leaf = make_cert('pss.lab', new_key('ec'), ca, ca_key, rsa_pss=algorithm)
    assert verify_signature(leaf, ca) is None
    assert verify_signature(leaf, make_cert('CA pss', new_key('rsa'), ca=True)) == 'signature does not verify'


def test_earliest_expiry_ignores_roots_and_trust_anchors(pki, tmp_path):
    root_key = new_key('ec')
    root = make_cert('Old Root', root_key, ca=True, not_after=NOW + 3 * DAY)  # the root expires first
    inter_key = new_key('ec')
    inter = make_cert('Inter', inter_key, root, root_key, ca=True, not_after=NOW + 40 * DAY)
    leaf = make_cert('svc.lab', new_key('ec'), inter, inter_key, not_after=NOW + 60 * DAY)
    path, _key = pki.write(tmp_path, 'svc', leaf, inter, root)
    info = inspect(path)
    assert info['chain']['valid'] is True
    assert info['earliest_expiry']['index'] == 1 and info['earliest_expiry']['subject'] == 'CN=Inter,O=DealerScope Lab'
    assert info['earliest_expiry']['days_left'] == 40.0 and info['leaf_days_left'] == 60.0
    assert check_of(info)['status'] == 'ok'  # neither the root's 3 days nor the intermediate's 40 are a problem

    # a cross-signed intermediate that is also a trust anchor is a root for this purpose
    path, _key = pki.write(tmp_path, 'svc2', leaf, inter)
    info = inspect(path, anchors=[inter])
    assert info['chain']['valid'] is True and info['earliest_expiry']['index'] == 0


def test_intermediate_expiring_before_the_leaf_is_reported(pki, tmp_path):
    inter_key = new_key('ec')
    inter = make_cert('Short Inter', inter_key, pki.root, pki.root_key, ca=True, not_after=NOW + 5 * DAY)
    leaf = make_cert('svc.lab', new_key('ec'), inter, inter_key, not_after=NOW + 60 * DAY)
    path, _key = pki.write(tmp_path, 'svc', leaf, inter)
    check = check_of(inspect(path, anchors=[pki.root]))
    assert check['status'] == 'critical' and check['alert'] == 'tls_expiry'
    assert 'intermediate CN=Short Inter,O=DealerScope Lab expires in 5 days' in check['message']
    assert check['value'] == 60.0


# ---------------------------------------------------------------------------------------------
# keys

@pytest.mark.parametrize('kind', ['rsa', 'ec', 'ed25519'])
def test_key_matches(kind, pki, tmp_path):
    key = new_key(kind)
    cert = pki.issue('%s.dealerscope.lab' % kind, key)
    path, key_path = pki.write(tmp_path, kind, cert, pki.inter, key=key)
    info = inspect(path, key_path, anchors=[pki.root])
    assert info['key']['match'] is True and info['key']['private'] is True and info['key']['mode'] == '0600'
    assert info['key']['type'] == {'rsa': 'RSA 2048', 'ec': 'EC secp256r1', 'ed25519': 'Ed25519'}[kind]
    assert info['key']['owner'] and info['key']['error'] is None
    assert check_of(info)['status'] == 'ok'
    dumped = json.dumps(info)
    assert 'PRIVATE' not in dumped and 'BEGIN' not in dumped


def test_wrong_key_is_critical(pki, tmp_path):
    path, key_path = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter, key=pki.stranger_key)
    check = check_of(inspect(path, key_path, anchors=[pki.root]))
    assert check['details']['key']['match'] is False
    assert check['status'] == 'critical' and check['alert'] == 'tls_invalid'
    assert check['message'] == 'lb: key %s does not match the certificate' % key_path


def test_key_readable_by_others_is_a_security_event(pki, tmp_path):
    path, key_path = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter, key=pki.leaf_key, key_mode=0o644)
    info = inspect(path, key_path, anchors=[pki.root])
    assert info['key']['mode'] == '0644' and info['key']['private'] is False and info['key']['match'] is True
    check = check_of(info)
    assert check['status'] == 'critical' and check['alert'] == 'security_event'
    assert 'is mode 0644' in check['message'] and 'readable by group/others' in check['message']


def test_missing_encrypted_and_garbage_keys(pki, tmp_path):
    path, _key = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter)
    missing = str(tmp_path / 'missing.key')
    check = check_of(inspect(path, missing, anchors=[pki.root]))
    assert check['status'] == 'critical' and check['message'] == 'lb: key file %s is missing' % missing

    encrypted = tmp_path / 'enc.key'
    encrypted.write_bytes(pki.leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.BestAvailableEncryption(b'secret')))
    os.chmod(str(encrypted), 0o600)
    info = key_info(str(encrypted), pki.leaf)
    assert info['encrypted'] is True and info['match'] is None
    assert check_of(inspect(path, str(encrypted), anchors=[pki.root]))['status'] == 'warning'

    garbage = tmp_path / 'garbage.key'
    garbage.write_text('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')
    os.chmod(str(garbage), 0o600)
    check = check_of(inspect(path, str(garbage), anchors=[pki.root]))
    assert check['status'] == 'critical' and 'cannot be parsed' in check['message']


def test_unreadable_key_is_a_warning(pki, tmp_path, monkeypatch):
    path, key_path = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter, key=pki.leaf_key)
    real_open = open

    def fake_open(name, *args, **kwargs):
        if name == key_path:
            raise PermissionError(13, 'Permission denied')
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr('builtins.open', fake_open)
    info = inspect(path, key_path, anchors=[pki.root])
    monkeypatch.undo()
    assert info['key']['permission_denied'] is True and info['key']['match'] is None
    check = check_of(info)
    assert check['status'] == 'warning' and 'run with become' in check['message']


# ---------------------------------------------------------------------------------------------
# expiry

def test_expired_leaf(pki, tmp_path):
    cert = pki.issue('old.dealerscope.lab', not_before=NOW - 100 * DAY, not_after=NOW - 3 * DAY)
    path, _key = pki.write(tmp_path, 'old', cert, pki.inter)
    info = inspect(path, anchors=[pki.root])
    assert info['expired'] is True and info['days_left'] == -3.0
    check = check_of(info)
    assert check['status'] == 'critical' and check['alert'] == 'tls_expired'
    assert check['message'] == 'lb: old.dealerscope.lab EXPIRED 3 days ago (since %s)' % info['not_after']


@pytest.mark.parametrize('days, status, word', [(5, 'critical', 'critical at 7'), (15, 'warning', 'warning at 21'), (60, 'ok', None)])
def test_expiry_thresholds(days, status, word, pki, tmp_path):
    cert = pki.issue('svc.dealerscope.lab', not_before=NOW - 10 * DAY, not_after=NOW + days * DAY)
    path, _key = pki.write(tmp_path, 'svc', cert, pki.inter)
    check = check_of(inspect(path, anchors=[pki.root]), warn_days=21, crit_days=7)
    assert check['status'] == status and check['value'] == float(days)
    if word:
        assert check['alert'] == 'tls_expiry'
        assert check['message'] == 'lb: svc.dealerscope.lab expires in %d days (%s; %s)' % (
            days, (NOW + days * DAY).strftime('%Y-%m-%dT%H:%M:%SZ'), word)
    else:
        assert check['alert'] is None and check['message'].startswith('lb: svc.dealerscope.lab valid for 60 days')


def test_lifetime_used_warns_before_the_days(pki, tmp_path):
    cert = pki.issue('acme.dealerscope.lab', not_before=NOW - 81 * DAY, not_after=NOW + 9 * DAY)
    path, _key = pki.write(tmp_path, 'acme', cert, pki.inter)
    check = check_of(inspect(path, anchors=[pki.root]), warn_days=7, crit_days=3, lifetime_warn_percent=90)
    assert check['status'] == 'warning' and check['alert'] == 'tls_expiry'
    assert 'has used 90 % of its lifetime (warning at 90 %' in check['message']


def test_not_yet_valid_is_critical(pki, tmp_path):
    cert = pki.issue('future.dealerscope.lab', not_before=NOW + DAY, not_after=NOW + 90 * DAY)
    path, _key = pki.write(tmp_path, 'future', cert, pki.inter)
    check = check_of(inspect(path, anchors=[pki.root]))
    assert check['status'] == 'critical' and 'is not valid before' in check['message']


def test_every_problem_is_listed_worst_first(pki, tmp_path):
    cert = pki.issue('svc.dealerscope.lab', not_before=NOW - 10 * DAY, not_after=NOW + 15 * DAY)  # warning
    path, key_path = pki.write(tmp_path, 'svc', cert, key=pki.leaf_key, key_mode=0o640)  # no intermediate, mode 0640
    check = check_of(inspect(path, key_path, anchors=[pki.root], endpoint='127.0.0.1:%d' % closed_port(), timeout=2))
    assert check['status'] == 'critical' and check['alert'] == 'security_event'
    parts = re.split(r'; (?![^()]*\))', check['message'][len('lb: '):])  # not inside parentheses
    assert len(parts) == 4
    assert parts[0].startswith('key %s is mode 0640' % key_path)
    assert parts[1].startswith('chain invalid')
    assert parts[2].startswith('svc.dealerscope.lab expires in 15 days')
    assert parts[3].startswith('endpoint 127.0.0.1:') and 'unreachable' in parts[3]
    assert '\n' not in check['message']


# ---------------------------------------------------------------------------------------------
# endpoints

def test_endpoint_serves_the_file(pki, tmp_path, tls_server):
    path, key_path = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter, key=pki.leaf_key)
    server = tls_server(path, key_path)
    info = inspect(path, key_path, anchors=[pki.root], endpoint=server.endpoint)
    served = info['endpoint']
    assert served['reachable'] is True and served['error'] is None
    assert served['serial'] == info['serial'] and served['matches_file'] is True
    assert served['protocol'] in ('TLSv1.2', 'TLSv1.3')
    assert served['days_left'] == info['days_left'] and served['subject_cn'] == 'api.dealerscope.lab'
    assert served['server_name'] == 'api.dealerscope.lab' and server.server_names == ['api.dealerscope.lab']
    assert check_of(info)['status'] == 'ok'


def test_endpoint_sni_override(pki, tmp_path, tls_server):
    path, key_path = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter, key=pki.leaf_key)
    server = tls_server(path, key_path)
    info = inspect(path, endpoint=server.endpoint, server_name='other.dealerscope.lab')
    assert server.server_names == ['other.dealerscope.lab'] and info['endpoint']['server_name'] == 'other.dealerscope.lab'
    probed = probe_endpoint(server.endpoint, None, 5.0)
    assert probed['server_name'] is None and probed['reachable'] is True  # no SNI for an IP address


def test_endpoint_not_reloaded(pki, tmp_path, tls_server):
    old = pki.issue('api.dealerscope.lab', not_before=NOW - 88 * DAY, not_after=NOW + 2 * DAY)
    old_path, key_path = pki.write(tmp_path, 'old', old, pki.inter, key=pki.leaf_key)
    server = tls_server(old_path, key_path)
    new_path, _key = pki.write(tmp_path, 'new', pki.leaf, pki.inter)  # renewed on disk, not reloaded
    info = inspect(new_path, key_path, anchors=[pki.root], endpoint=server.endpoint)
    assert info['endpoint']['matches_file'] is False and info['endpoint']['serial'] == serial_hex(old.serial_number)
    check = check_of(info)
    assert check['status'] == 'critical' and check['alert'] == 'tls_expiry'  # what clients see expires in 2 days
    assert ('endpoint %s serves serial %s, the file holds %s: the service was not reloaded'
            % (server.endpoint, serial_hex(old.serial_number), info['serial'])) in check['message']
    assert check['message'].index('served by') < check['message'].index('not reloaded')


def test_endpoint_not_reloaded_is_a_warning(pki, tmp_path, tls_server):
    other = pki.issue('api.dealerscope.lab')
    other_path, key_path = pki.write(tmp_path, 'other', other, pki.inter, key=pki.leaf_key)
    server = tls_server(other_path, key_path)
    path, _key = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter)
    check = check_of(inspect(path, anchors=[pki.root], endpoint=server.endpoint))
    assert check['status'] == 'warning' and check['alert'] == 'tls_invalid'
    assert check['message'].endswith('the service was not reloaded')


def test_endpoint_unreachable(pki, tmp_path):
    path, _key = pki.write(tmp_path, 'leaf', pki.leaf, pki.inter)
    endpoint = '127.0.0.1:%d' % closed_port()
    info = inspect(path, anchors=[pki.root], endpoint=endpoint, timeout=2)
    assert info['endpoint']['reachable'] is False and info['endpoint']['matches_file'] is None
    assert info['endpoint']['error']
    check = check_of(info)
    assert check['status'] == 'warning' and check['alert'] == 'service_down'
    assert check['message'] == 'lb: endpoint %s unreachable: %s' % (endpoint, info['endpoint']['error'])


def test_endpoint_that_is_not_tls(pki, tmp_path):
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    stop = threading.Event()

    def serve():
        listener.settimeout(5)
        try:
            conn, _addr = listener.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b'SSH-2.0-OpenSSH_9.2\r\n' * 20)
            stop.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = probe_endpoint('127.0.0.1:%d' % listener.getsockname()[1], 'x.lab', 2.0)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert result['reachable'] is False and result['error']


# ---------------------------------------------------------------------------------------------
# options

def test_parse_endpoint():
    assert parse_endpoint('127.0.0.1:443') == ('127.0.0.1', 443)
    assert parse_endpoint('api.dealerscope.lab:8443') == ('api.dealerscope.lab', 8443)
    assert parse_endpoint('[::1]:443') == ('::1', 443)
    for bad in ('127.0.0.1', '::1:443', 'host:0', 'host:70000', 'https://host:443', '', 'host :443'):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


def options(**overrides):
    params = {'certificates': [{'name': 'lb', 'cert_path': '/x.pem', 'key_path': None, 'endpoint': None, 'server_name': None}],
              'ca_path': None, 'warn_days': 21, 'crit_days': 7, 'lifetime_warn_percent': 90.0, 'timeout': 5.0}
    params.update(overrides)
    return params


def test_validate_options():
    assert validate_options(options()) is None
    assert 'crit_days' in validate_options(options(crit_days=30))
    assert 'must not be negative' in validate_options(options(crit_days=-1))
    assert 'timeout' in validate_options(options(timeout=0))
    assert 'lifetime_warn_percent' in validate_options(options(lifetime_warn_percent=150))
    two = [dict(options()['certificates'][0]), dict(options()['certificates'][0])]
    assert validate_options(options(certificates=two)) == "certificate 'lb': the name is used more than once"
    bad = [dict(options()['certificates'][0], endpoint='lb.lab')]
    assert validate_options(options(certificates=bad)).startswith("certificate 'lb': endpoint 'lb.lab' is not host:port")


def test_system_bundle_is_the_default(pki, tmp_path, monkeypatch):
    bundle = pki.ca_bundle(tmp_path)
    monkeypatch.setattr(tls_certs, 'SYSTEM_CA_BUNDLE', bundle)
    anchors, source, error = load_trust_anchors(None)
    assert source == bundle and len(anchors) == 1 and error is None
    monkeypatch.setattr(tls_certs, 'SYSTEM_CA_BUNDLE', str(tmp_path / 'absent.crt'))
    assert load_trust_anchors(None) == ([], None, None)
    assert 'cannot read CA bundle' in load_trust_anchors(str(tmp_path / 'absent.crt'))[2]


# ---------------------------------------------------------------------------------------------
# properties

STATUS_INFO = {'name': 'p', 'cert_path': '/p.pem', 'error': None, 'subject_cn': 'p.lab', 'chain': None,
               'earliest_expiry': None, 'key': None, 'endpoint': None}


@hsettings(max_examples=300, deadline=None)
@given(
    lifetime_hours=st.integers(min_value=0, max_value=800 * 24),
    start_hours=st.integers(min_value=-1000 * 24, max_value=1000 * 24),
    t1_hours=st.integers(min_value=-1000 * 24, max_value=1000 * 24),
    step_hours=st.integers(min_value=0, max_value=500 * 24),
    crit=st.integers(min_value=0, max_value=60),
    extra=st.integers(min_value=0, max_value=60),
    life_warn=st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_status_never_improves_as_time_passes(lifetime_hours, start_hours, t1_hours, step_hours, crit, extra, life_warn):
    not_before = NOW + datetime.timedelta(hours=start_hours)
    not_after = not_before + datetime.timedelta(hours=lifetime_hours)
    t1 = NOW + datetime.timedelta(hours=t1_hours)
    t2 = t1 + datetime.timedelta(hours=step_hours)
    early, late = validity(not_before, not_after, t1), validity(not_before, not_after, t2)
    assert late['days_left'] <= early['days_left']
    assert late['lifetime_percent_used'] >= early['lifetime_percent_used']
    assert late['expired'] >= early['expired']
    assert early['expired'] == ((not_after - t1).total_seconds() <= 0)
    thresholds = dict(warn_days=crit + extra, crit_days=crit, lifetime_warn_percent=life_warn)
    # leave the not-yet-valid problem out: it goes away with time by design
    first = certificate_check(dict(STATUS_INFO, **dict(early, not_yet_valid=False)), **thresholds)
    second = certificate_check(dict(STATUS_INFO, **dict(late, not_yet_valid=False)), **thresholds)
    assert rank(second['status']) >= rank(first['status'])
    assert (first['alert'] is None) == (first['status'] == 'ok')
    assert first['message'].startswith('p: ') and '\n' not in first['message']
    if early['expired']:
        assert first['status'] == 'critical' and 'EXPIRED' in first['message']


def test_an_entry_without_a_file_judges_what_the_endpoint_serves():
    served = {'endpoint': 'lb1:443', 'server_name': 'api.dealerscope.lab', 'reachable': True, 'serial': '0ABC', 'subject_cn': 'api',
              'not_after': '2026-12-02T10:00:00Z', 'days_left': 5.0, 'protocol': 'TLSv1.3', 'error': None}
    info = inspect_certificate({'name': 'probe', 'endpoint': 'lb1:443', 'server_name': 'api.dealerscope.lab'},
                               probe=lambda endpoint, server_name, timeout, now: dict(served))
    assert info['cert_path'] is None and info['error'] is None and info['endpoint']['matches_file'] is None
    check = certificate_check(info, warn_days=21, crit_days=7)
    assert (check['status'], check['value'], check['alert']) == ('critical', 5.0, 'tls_expiry')
    assert 'serial 0ABC' in check['message']
    unreachable = dict(served, reachable=False, serial=None, days_left=None, error='connection refused')
    info = inspect_certificate({'name': 'probe', 'endpoint': 'lb1:443'}, probe=lambda *args: dict(unreachable))
    check = certificate_check(info)
    assert check['status'] == 'critical' and 'connection refused' in check['message']


def _postgres_like_server(answer, context=None):
    """A one-connection server on loopback answering PostgreSQL's SSLRequest with `answer`, then (b'S') a TLS handshake."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    requests = []

    def serve():
        conn, _addr = listener.accept()
        with conn:
            requests.append(conn.recv(8))
            conn.sendall(answer)
            if answer == b'S' and context is not None:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    pass
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return '127.0.0.1:%d' % listener.getsockname()[1], requests, thread


def test_a_postgres_endpoint_is_probed_after_its_ssl_request(pki, tmp_path):
    cert_file, key_file = pki.write(tmp_path, 'pg', pki.leaf, key=pki.leaf_key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    endpoint, requests, thread = _postgres_like_server(b'S', context)
    served = probe_endpoint(endpoint, 'db.dealerscope.lab', timeout=5, starttls='postgres')
    thread.join(5)
    assert requests == [b'\x00\x00\x00\x08\x04\xd2\x16\x2f'], requests  # length 8, code 80877103
    assert served['reachable'] and served['serial'] == serial_hex(pki.leaf.serial_number), served
    endpoint, requests, thread = _postgres_like_server(b'N')
    served = probe_endpoint(endpoint, None, timeout=5, starttls='postgres')
    thread.join(5)
    assert served['serial'] is None and 'does not offer TLS' in served['error'], served
