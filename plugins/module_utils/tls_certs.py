# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inventory of TLS certificates on a host: files, keys, chains and what the endpoints serve.

Pure logic (no AnsibleModule import). Only APIs of the Python ``cryptography`` package that exist in
release 38 (Debian 12) are used: certificates are split from PEM bundles by hand, validity dates are read
with the ``*_utc`` attributes when present and the naive UTC ones otherwise, and signatures are verified
with the issuer's public key over ``tbs_certificate_bytes``. Private keys are only compared, never returned.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import ssl
import stat
import struct

try:
    import pwd
    import grp
except ImportError:  # pragma: no cover - not on POSIX
    pwd = grp = None

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import NameOID, SignatureAlgorithmOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised on hosts without python3-cryptography
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, rank, worst

SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
PEM_CERT_RE = re.compile(rb'-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----', re.DOTALL)
ENDPOINT_RE = re.compile(r'^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})$')


# ---------------------------------------------------------------------------------------------
# small helpers

def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    """``2026-12-02T10:00:00Z`` from an aware datetime."""
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _cert_time(cert, attr):
    """``not_valid_before``/``not_valid_after`` as an aware UTC datetime (cryptography 38 has only the naive ones)."""
    value = getattr(cert, attr + '_utc', None)
    if value is None:
        value = getattr(cert, attr).replace(tzinfo=datetime.timezone.utc)
    return value


def serial_hex(number):
    """Uppercase hex without colons, padded to an even length like ``openssl x509 -noout -serial``."""
    text = '%X' % number
    return text if len(text) % 2 == 0 else '0' + text


def _fmt(number):
    return ('%.1f' % number).rstrip('0').rstrip('.') if isinstance(number, float) else str(number)


def parse_endpoint(text):
    """``(host, port)`` from ``host:port`` or ``[v6]:port``; ValueError when malformed."""
    match = ENDPOINT_RE.match(text or '')
    if not match:
        raise ValueError('endpoint %r is not host:port (use [address]:port for IPv6)' % (text,))
    port = int(match.group('port'))
    if not 1 <= port <= 65535:
        raise ValueError('endpoint %r has port %d outside 1-65535' % (text, port))
    return match.group('v6') or match.group('host'), port


def _is_ip(host):
    try:
        socket.inet_pton(socket.AF_INET6 if ':' in host else socket.AF_INET, host)
        return True
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# loading

def split_pem_certificates(data):
    """The certificates of a PEM bundle (cryptography 38 has no load_pem_x509_certificates).

    Return ``(certificates, errors)``; a block that does not parse is reported, not fatal.
    """
    certs, errors = [], []
    for index, block in enumerate(PEM_CERT_RE.findall(data)):
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            errors.append('certificate %d: %s' % (index + 1, exc))
    return certs, errors


def load_cert_file(path):
    """``(certificates, error)``: every certificate of a PEM file (leaf first when it holds a chain)."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except FileNotFoundError:
        return [], 'certificate file %s is missing' % path
    except OSError as exc:
        return [], 'cannot read certificate file %s: %s' % (path, exc.strerror or exc)
    certs, errors = split_pem_certificates(data)
    if errors:
        return [], 'certificate file %s cannot be parsed (%s)' % (path, '; '.join(errors))
    if not certs:
        return [], 'certificate file %s holds no PEM certificate' % path
    return certs, None


def load_trust_anchors(ca_path=None, system_bundle=None):
    """``(anchors, source, error)`` from ``ca_path``, else the system bundle when present."""
    system_bundle = system_bundle or SYSTEM_CA_BUNDLE
    path = ca_path or (system_bundle if system_bundle and os.path.exists(system_bundle) else None)
    if path is None:
        return [], None, None
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as exc:
        return [], path, 'cannot read CA bundle %s: %s' % (path, exc.strerror or exc)
    anchors, errors = split_pem_certificates(data)
    if not anchors:
        return [], path, 'CA bundle %s holds no usable certificate%s' % (path, ' (%s)' % '; '.join(errors) if errors else '')
    return anchors, path, None


# ---------------------------------------------------------------------------------------------
# parsing

def common_name(name):
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else None


def subject_alt_names(cert):
    """``{'dns': [...], 'ip': [...]}`` from the SubjectAlternativeName extension."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return {'dns': [], 'ip': []}
    except ValueError:  # malformed extensions
        return {'dns': [], 'ip': []}
    return {
        'dns': list(ext.value.get_values_for_type(x509.DNSName)),
        'ip': [str(address) for address in ext.value.get_values_for_type(x509.IPAddress)],
    }


def validity(not_before, not_after, now):
    """Validity fields for a window and a moment (all aware datetimes)."""
    total = (not_after - not_before).total_seconds()
    used = (now - not_before).total_seconds()
    if total > 0:
        percent = used * 100.0 / total
    else:
        percent = 100.0 if used >= 0 else 0.0
    remaining = (not_after - now).total_seconds()
    return {
        'not_before': iso(not_before),
        'not_after': iso(not_after),
        'days_left': round(remaining / 86400.0, 1),
        'lifetime_percent_used': round(max(percent, 0.0), 1),
        'expired': remaining <= 0,
        'not_yet_valid': used < 0,
    }


def cert_summary(cert, now):
    """The fields of one certificate (no key material)."""
    info = {
        'subject': cert.subject.rfc4514_string(),
        'subject_cn': common_name(cert.subject),
        'sans': subject_alt_names(cert),
        'issuer': cert.issuer.rfc4514_string(),
        'serial': serial_hex(cert.serial_number),
        'self_signed': cert.issuer == cert.subject and verify_signature(cert, cert) is None,
    }
    info.update(validity(_cert_time(cert, 'not_valid_before'), _cert_time(cert, 'not_valid_after'), now))
    return info


def cert_label(info):
    """The name a human knows the certificate by."""
    if info.get('subject_cn'):
        return info['subject_cn']
    sans = info.get('sans') or {}
    if sans.get('dns'):
        return sans['dns'][0]
    return info.get('subject') or info.get('cert_path') or '?'


# ---------------------------------------------------------------------------------------------
# signatures and chains

def _hash_for(cert):
    try:
        return cert.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise ValueError('unsupported signature algorithm: %s' % exc) from exc


def _tlv(data, pos):
    """``(tag, value, next_pos)`` of the DER element at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], 'big')
        pos += count
    if pos + length > len(data):
        raise ValueError('truncated DER element')
    return tag, data[pos:pos + length], pos + length


# hash algorithm OIDs (DER content bytes) of RSASSA-PSS parameters
_PSS_HASHES = {
    bytes.fromhex('2b0e03021a'): 'SHA1',
    bytes.fromhex('608648016503040204'): 'SHA224',
    bytes.fromhex('608648016503040201'): 'SHA256',
    bytes.fromhex('608648016503040202'): 'SHA384',
    bytes.fromhex('608648016503040203'): 'SHA512',
}


def _pss_parameters(cert):
    """``(padding, hash)`` of an RSASSA-PSS signature, read from the DER (cryptography 38 cannot tell them)."""
    try:
        _tag, body, _end = _tlv(cert.public_bytes(serialization.Encoding.DER), 0)
        _tag, _tbs, pos = _tlv(body, 0)
        _tag, algorithm_id, _end = _tlv(body, pos)
        _tag, _oid, pos = _tlv(algorithm_id, 0)
        name = 'SHA1'  # the RFC 4055 default
        if pos < len(algorithm_id):
            _tag, params, _end = _tlv(algorithm_id, pos)
            pos = 0
            while pos < len(params):
                tag, value, pos = _tlv(params, pos)
                if tag == 0xA0:  # hashAlgorithm
                    _tag, hash_id, _end = _tlv(value, 0)
                    _tag, oid, _end = _tlv(hash_id, 0)
                    name = _PSS_HASHES[oid]
    except (IndexError, KeyError) as exc:
        raise ValueError('unsupported RSASSA-PSS parameters') from exc
    algorithm = getattr(hashes, name)()
    salt = getattr(padding.PSS, 'AUTO', None)
    return padding.PSS(padding.MGF1(algorithm), salt if salt is not None else algorithm.digest_size), algorithm


def verify_signature(cert, issuer):
    """None when ``issuer``'s key signed ``cert``, else the reason (cryptography 38 has no verify_directly_issued_by)."""
    try:
        public_key = issuer.public_key()
        signature, data = cert.signature, cert.tbs_certificate_bytes
        if isinstance(public_key, rsa.RSAPublicKey):
            if cert.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
                params, algorithm = _pss_parameters(cert)
                public_key.verify(signature, data, params, algorithm)
            else:
                public_key.verify(signature, data, padding.PKCS1v15(), _hash_for(cert))
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(_hash_for(cert)))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        elif isinstance(public_key, dsa.DSAPublicKey):
            public_key.verify(signature, data, _hash_for(cert))
        else:
            return 'unsupported issuer key type %s' % type(public_key).__name__
    except InvalidSignature:
        return 'signature does not verify'
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        return 'signature cannot be checked: %s' % exc
    return None


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return True  # v1 certificates have no extensions; do not reject them for that
    except ValueError:
        return False


def _signed_by(cert, issuer):
    """None when ``issuer`` issued ``cert`` (name, CA flag, signature), else the reason."""
    if cert.issuer != issuer.subject:
        return 'its issuer is %s, not %s' % (cert.issuer.rfc4514_string(), issuer.subject.rfc4514_string())
    if not _is_ca(issuer):
        return '%s is not a CA certificate' % issuer.subject.rfc4514_string()
    reason = verify_signature(cert, issuer)
    if reason:
        return 'the %s' % reason if reason.startswith('signature') else reason
    return None


def _der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def validate_chain(certs, anchors, anchor_source=None):
    """Each certificate must be signed by the next; the last one self-signed or signed by a trust anchor."""
    result = {'valid': False, 'reason': None, 'length': len(certs), 'anchor': None, 'anchor_source': anchor_source}
    if not certs:
        result['reason'] = 'no certificate'
        return result
    for index in range(len(certs) - 1):
        reason = _signed_by(certs[index], certs[index + 1])
        if reason:
            result['reason'] = 'certificate %d (%s) is not signed by certificate %d (%s): %s' % (
                index + 1, certs[index].subject.rfc4514_string(), index + 2, certs[index + 1].subject.rfc4514_string(), reason)
            return result
    last = certs[-1]
    if last.issuer == last.subject and verify_signature(last, last) is None:
        result.update(valid=True, anchor=last.subject.rfc4514_string(), reason='ends at the self-signed %s' % last.subject.rfc4514_string())
        return result
    last_der = _der(last)
    candidates = [anchor for anchor in anchors if anchor.subject == last.issuer or _der(anchor) == last_der]
    for anchor in candidates:
        if _der(anchor) == last_der or _signed_by(last, anchor) is None:
            result.update(valid=True, anchor=anchor.subject.rfc4514_string(),
                          reason='signed by the trust anchor %s' % anchor.subject.rfc4514_string())
            return result
    if candidates:
        result['reason'] = 'the trust anchor %s did not sign %s' % (last.issuer.rfc4514_string(), last.subject.rfc4514_string())
    elif not anchors:
        result['reason'] = 'the issuer %s of %s is not in the file and no trust anchors are loaded' % (
            last.issuer.rfc4514_string(), last.subject.rfc4514_string())
    else:
        result['reason'] = 'the issuer %s of %s is neither in the file nor a trust anchor (missing intermediate?)' % (
            last.issuer.rfc4514_string(), last.subject.rfc4514_string())
    return result


# ---------------------------------------------------------------------------------------------
# private keys

def _key_type(key):
    if isinstance(key, rsa.RSAPrivateKey):
        return 'RSA %d' % key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return 'EC %s' % key.curve.name
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return 'Ed25519'
    if isinstance(key, ed448.Ed448PrivateKey):
        return 'Ed448'
    if isinstance(key, dsa.DSAPrivateKey):
        return 'DSA %d' % key.key_size
    return type(key).__name__


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_info(path, cert=None):
    """Mode, owner and whether the private key in ``path`` belongs to ``cert``. No key material is returned."""
    info = {'path': path, 'exists': False, 'readable': False, 'type': None, 'match': None,
            'mode': None, 'owner': None, 'group': None, 'private': None, 'encrypted': False, 'permission_denied': False, 'error': None}
    try:
        st = os.stat(path)
    except FileNotFoundError:
        info['error'] = 'key file %s is missing' % path
        return info
    except OSError as exc:
        info['error'] = 'cannot stat key file %s: %s' % (path, exc.strerror or exc)
        return info
    mode = stat.S_IMODE(st.st_mode)
    info.update(exists=True, mode='%04o' % mode, private=not mode & 0o077)
    info['owner'] = _name_of(pwd, 'getpwuid', st.st_uid, 'pw_name')
    info['group'] = _name_of(grp, 'getgrgid', st.st_gid, 'gr_name')
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as exc:
        info['error'] = 'cannot read key file %s: %s' % (path, exc.strerror or exc)
        info['permission_denied'] = isinstance(exc, PermissionError)
        return info
    info['readable'] = True
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        info['encrypted'] = True
        info['error'] = 'key file %s is encrypted (only unencrypted PEM keys can be compared)' % path
        return info
    except (ValueError, UnsupportedAlgorithm) as exc:
        info['error'] = 'key file %s cannot be parsed: %s' % (path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return info
    info['type'] = _key_type(key)
    if cert is not None:
        try:
            info['match'] = _spki(key.public_key()) == _spki(cert.public_key())
        except (ValueError, UnsupportedAlgorithm) as exc:
            info['error'] = 'cannot compare the key with the certificate: %s' % exc
    del key
    return info


def _name_of(module, function, ident, field):
    if module is None:
        return str(ident)
    try:
        return getattr(getattr(module, function)(ident), field)
    except KeyError:
        return str(ident)


# ---------------------------------------------------------------------------------------------
# endpoints

POSTGRES_SSL_REQUEST = 80877103  # PostgreSQL's SSLRequest code (protocol 1234.5679)


def probe_endpoint(endpoint, server_name=None, timeout=5.0, now=None, starttls=None):
    """Connect without verification and describe the leaf certificate served; errors are text, never raised.

    ``starttls='postgres'``: PostgreSQL's SSLRequest first (the server answers ``S`` when it offers TLS), then the handshake.
    """
    now = now or utc_now()
    result = {'endpoint': endpoint, 'server_name': server_name, 'reachable': False, 'serial': None, 'subject_cn': None,
              'not_after': None, 'days_left': None, 'protocol': None, 'error': None}
    try:
        host, port = parse_endpoint(endpoint)
    except ValueError as exc:
        result['error'] = str(exc)
        return result
    sni = server_name or (None if _is_ip(host) else host)
    result['server_name'] = sni
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if starttls == 'postgres':
                sock.sendall(struct.pack('!ii', 8, POSTGRES_SSL_REQUEST))
                answer = sock.recv(1)
                if answer != b'S':
                    result['reachable'] = True
                    result['error'] = 'PostgreSQL does not offer TLS (it answered %r to the SSLRequest: ssl = off?)' % answer
                    return result
            with context.wrap_socket(sock, server_hostname=sni) as tls:
                der = tls.getpeercert(binary_form=True)
                result['protocol'] = tls.version()
    except socket.timeout:
        result['error'] = 'timed out after %s s' % _fmt(float(timeout))
        return result
    except ssl.SSLError as exc:
        result['error'] = 'TLS handshake failed: %s' % (exc.reason or exc)
        return result
    except (OSError, ValueError) as exc:
        result['error'] = getattr(exc, 'strerror', None) or str(exc) or type(exc).__name__
        return result
    result['reachable'] = True
    if not der:
        result['error'] = 'the server sent no certificate'
        return result
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        result['error'] = 'cannot parse the served certificate: %s' % exc
        return result
    fields = validity(_cert_time(cert, 'not_valid_before'), _cert_time(cert, 'not_valid_after'), now)
    result.update(serial=serial_hex(cert.serial_number), subject_cn=common_name(cert.subject),
                  not_after=fields['not_after'], days_left=fields['days_left'])
    return result


# ---------------------------------------------------------------------------------------------
# one certificate

def inspect_certificate(spec, anchors=(), anchor_source=None, timeout=5.0, now=None, probe=probe_endpoint):
    """The info dict of one certificate entry (``name``, ``cert_path``, optional ``key_path``, ``endpoint``, ``server_name``)."""
    now = now or utc_now()
    info = {'name': spec['name'], 'cert_path': spec.get('cert_path'), 'error': None, 'chain': None,
            'earliest_expiry': None, 'leaf_days_left': None, 'key': None, 'endpoint': None}
    if not spec.get('cert_path'):  # endpoint only: what a live endpoint serves, no file on this host
        certs, error = [], None
    else:
        certs, error = load_cert_file(spec['cert_path'])
    if error or not certs:
        info['error'] = error
    else:
        leaf = cert_summary(certs[0], now)
        info.update(leaf)
        info['leaf_days_left'] = leaf['days_left']
        chain = validate_chain(certs, anchors, anchor_source)
        members = [leaf] + [cert_summary(cert, now) for cert in certs[1:]]
        chain['certificates'] = [dict((k, m[k]) for k in ('subject', 'issuer', 'serial', 'not_after', 'days_left', 'self_signed'))
                                 for m in members]
        info['chain'] = chain
        # Roots (self-signed, or trust anchors) are left out: their expiry is not the service's problem.
        anchor_ders = set(_der(anchor) for anchor in anchors)
        candidates = [(i, m) for i, m in enumerate(members)
                      if i == 0 or not (m['self_signed'] or _der(certs[i]) in anchor_ders)]
        index, member = min(candidates, key=lambda item: item[1]['not_after'])
        info['earliest_expiry'] = {'index': index, 'subject': member['subject'], 'not_after': member['not_after'],
                                   'days_left': member['days_left']}
    if spec.get('key_path'):
        info['key'] = key_info(spec['key_path'], certs[0] if certs else None)
    if spec.get('endpoint'):
        server_name = spec.get('server_name')
        if not server_name and certs:
            server_name = (info['sans']['dns'] or [None])[0] or info.get('subject_cn')
        served = probe(spec['endpoint'], server_name, timeout, now, **({'starttls': spec['starttls']} if spec.get('starttls') else {}))
        served['matches_file'] = None if not served.get('serial') or error or not certs else served['serial'] == info['serial']
        info['endpoint'] = served
    return info


# ---------------------------------------------------------------------------------------------
# the check

def _expiry_problem(label, days_left, not_after, lifetime, warn_days, crit_days, lifetime_warn_percent):
    """``(status, text)`` for the expiry of one certificate, or None when fine."""
    if days_left <= crit_days:
        status, limit = 'critical', crit_days
    elif days_left <= warn_days:
        status, limit = 'warning', warn_days
    else:
        status = None
    life = lifetime is not None and lifetime >= lifetime_warn_percent
    if status:
        text = '%s expires in %s days (%s; %s at %s' % (label, _fmt(days_left), not_after, status, _fmt(limit))
        if life:
            text += ', %s %% of its lifetime used' % _fmt(lifetime)
        return status, text + ')'
    if life:
        return 'warning', '%s has used %s %% of its lifetime (warning at %s %%; expires %s, in %s days)' % (
            label, _fmt(lifetime), _fmt(lifetime_warn_percent), not_after, _fmt(days_left))
    return None


def _ago(days):
    return '%s days ago' % _fmt(-days) if days <= -1 else 'less than a day ago'


def _endpoint_only_check(info, warn_days, crit_days, lifetime_warn_percent):
    """The check of an entry without a certificate file: what the endpoint serves, judged by its days left."""
    name, served = info['name'], info.get('endpoint') or {}
    days = served.get('days_left')
    if not served.get('reachable') or days is None:
        return make_check('tls:%s' % name, 'critical', None, warn_days, '%s: endpoint %s serves no certificate: %s' % (
            name, served.get('endpoint'), served.get('error') or 'unreachable'), alert='service_down', unit='days', details=info)
    label = 'the certificate served by %s (serial %s)' % (served['endpoint'], served.get('serial'))
    if days <= 0:
        problem = ('critical', '%s EXPIRED %s (since %s)' % (label, _ago(days), served['not_after']))
    else:
        problem = _expiry_problem(label, days, served['not_after'], None, warn_days, crit_days, lifetime_warn_percent)
    if problem:
        return make_check('tls:%s' % name, problem[0], days, warn_days, '%s: %s' % (name, problem[1]),
                          alert='tls_expired' if days <= 0 else 'tls_expiry', unit='days',
                          details=info)
    return make_check('tls:%s' % name, 'ok', days, warn_days, '%s: %s valid for %s days (until %s)' % (
        name, label, _fmt(days), served['not_after']), unit='days', details=info)


def certificate_check(info, warn_days=21, crit_days=7, lifetime_warn_percent=90.0):
    """The check ``tls:<name>`` of one info dict from inspect_certificate."""
    name = info['name']
    problems = []  # (status, alert, text), in the order of severity listed in the docs

    def add(status, alert, text):
        problems.append((status, alert, text))

    if not info.get('cert_path'):
        return _endpoint_only_check(info, warn_days, crit_days, lifetime_warn_percent)
    label = cert_label(info)
    if info.get('error'):
        add('critical', 'tls_invalid', info['error'])
    else:
        if info['expired']:
            add('critical', 'tls_expired', '%s EXPIRED %s (since %s)' % (label, _ago(info['days_left']), info['not_after']))
        else:
            problem = _expiry_problem(label, info['days_left'], info['not_after'], info['lifetime_percent_used'],
                                      warn_days, crit_days, lifetime_warn_percent)
            if problem:
                add(problem[0], 'tls_expiry', problem[1])
        if info.get('not_yet_valid'):
            add('critical', 'tls_invalid', '%s is not valid before %s' % (label, info['not_before']))
        earliest = info.get('earliest_expiry')
        if earliest and earliest['index'] > 0:
            member = info['chain']['certificates'][earliest['index']]
            if member['days_left'] <= 0:
                add('critical', 'tls_expired', 'intermediate %s EXPIRED %s (since %s)' % (
                    member['subject'], _ago(member['days_left']), member['not_after']))
            else:
                problem = _expiry_problem('intermediate %s' % member['subject'], member['days_left'], member['not_after'], None,
                                          warn_days, crit_days, lifetime_warn_percent)
                if problem:
                    add(problem[0], 'tls_expiry', problem[1])
    key = info.get('key')
    if key:
        if key.get('match') is False:
            add('critical', 'tls_invalid', 'key %s does not match the certificate' % key['path'])
        elif key.get('permission_denied'):
            add('warning', 'tls_invalid', '%s (run with become to compare it)' % key['error'])
        elif key.get('encrypted'):
            add('warning', 'tls_invalid', key['error'])
        elif key.get('error'):
            add('critical', 'tls_invalid', key['error'])
        if key.get('private') is False:
            mode = int(key['mode'], 8)
            what = 'readable by group/others' if mode & 0o044 else 'has group/other permissions'
            add('critical', 'security_event', 'key %s is mode %s owned by %s:%s (%s)' % (key['path'], key['mode'], key['owner'], key['group'], what))
    chain = info.get('chain')
    if chain and not chain['valid']:
        add('critical', 'tls_invalid', 'chain invalid: %s' % chain['reason'])
    served = info.get('endpoint')
    if served:
        if served.get('matches_file') is False:
            add('warning', 'tls_invalid', 'endpoint %s serves serial %s, the file holds %s: the service was not reloaded' % (
                served['endpoint'], served['serial'], info['serial']))
            days = served.get('days_left')
            if days is not None:
                if days <= 0:
                    add('critical', 'tls_expired', 'the certificate served by %s EXPIRED %s (since %s)' % (
                        served['endpoint'], _ago(days), served['not_after']))
                else:
                    problem = _expiry_problem('the certificate served by %s' % served['endpoint'], days, served['not_after'], None,
                                              warn_days, crit_days, lifetime_warn_percent)
                    if problem:
                        add(problem[0], 'tls_expiry', problem[1])
        elif not served.get('reachable'):
            add('warning', 'service_down', 'endpoint %s unreachable: %s' % (served['endpoint'], served['error']))
        elif served.get('error'):
            add('warning', 'tls_invalid', 'endpoint %s: %s' % (served['endpoint'], served['error']))
    status = worst(problem[0] for problem in problems)
    ordered = sorted(problems, key=lambda problem: -rank(problem[0]))  # stable: same severity keeps the listed order
    if ordered:
        message = '%s: %s' % (name, '; '.join(problem[2] for problem in ordered))
        alert = ordered[0][1]
    else:
        message = '%s: %s valid for %s days (until %s)' % (name, label, _fmt(info['days_left']), info['not_after'])
        alert = None
    return make_check('tls:%s' % name, status, info.get('days_left'), warn_days, message, alert=alert, unit='days', details=info)


# ---------------------------------------------------------------------------------------------
# options

def validate_options(params):
    """None when the module options are consistent, else the error message."""
    for option in ('warn_days', 'crit_days', 'lifetime_warn_percent'):
        if params.get(option) is not None and params[option] < 0:
            return '%s must not be negative, got %s' % (option, params[option])
    if params['crit_days'] > params['warn_days']:
        return 'crit_days (%s) must not be greater than warn_days (%s)' % (params['crit_days'], params['warn_days'])
    if params['lifetime_warn_percent'] > 100:
        return 'lifetime_warn_percent must be at most 100, got %s' % params['lifetime_warn_percent']
    if params['timeout'] <= 0:
        return 'timeout must be greater than 0, got %s' % params['timeout']
    seen = set()
    for index, entry in enumerate(params.get('certificates') or []):
        name = entry.get('name')
        if not name or not name.strip():
            return 'certificate %d has an empty name' % (index + 1)
        if name in seen:
            return "certificate '%s': the name is used more than once" % name
        seen.add(name)
        if not entry.get('cert_path') and not entry.get('endpoint'):
            return "certificate '%s': give cert_path, endpoint or both" % name
        if entry.get('endpoint'):
            try:
                parse_endpoint(entry['endpoint'])
            except ValueError as exc:
                return "certificate '%s': %s" % (name, exc)
        elif entry.get('server_name'):
            return "certificate '%s': server_name needs an endpoint" % name
    return None
