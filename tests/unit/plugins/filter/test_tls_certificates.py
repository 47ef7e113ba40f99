# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""dealerscope.ops.tls_certificates filter."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.dealerscope.ops.plugins.filter import tls_certificates as plugin
from ansible_collections.dealerscope.ops.plugins.filter.tls_certificates import FilterModule, tls_certificates

from .ansible_render import render

ALLOWED = ['.dealerscope.lab']
ACME = 'https://acme.dealerscope.lab/directory'
DERIVED = ('common_name', 'starttls', 'dir', 'live', 'cert_path', 'chain_path', 'fullchain_path', 'key_path')


def check(certificates, allowed=None, **kwargs):
    kwargs.setdefault('acme_directory', ACME)
    return tls_certificates(certificates, ALLOWED if allowed is None else allowed, **kwargs)


def problems(certificates, allowed=None, **kwargs):
    """The error's lines; fails the test when no error is raised."""
    with pytest.raises(AnsibleFilterError) as error:
        check(certificates, allowed, **kwargs)
    return str(error.value).splitlines()


def one_problem(certificates, allowed=None, **kwargs):
    lines = problems(certificates, allowed, **kwargs)
    assert len(lines) == 1, lines
    return lines[0]


def cert(**overrides):
    base = {'name': 'lb', 'domains': ['lb.dealerscope.lab']}
    base.update(overrides)
    return base


# --- defaults and derived keys ------------------------------------------------------------------------------------------

def test_defaults_and_paths_are_filled():
    out = check([cert(domains=['LB.dealerscope.lab ', 'www.dealerscope.lab'])])
    assert out == [{
        'name': 'lb', 'domains': ['lb.dealerscope.lab', 'www.dealerscope.lab'], 'issuer': 'acme', 'challenge': 'http-01',
        'service': 'nginx', 'endpoint': None, 'server_name': 'lb.dealerscope.lab', 'key_type': 'ecdsa256',
        'owner': 'root', 'group': 'root', 'common_name': 'lb.dealerscope.lab', 'starttls': None,
        'dir': '/etc/dealerscope-ops/tls/lb', 'live': '/etc/dealerscope-ops/tls/lb/live',
        'cert_path': '/etc/dealerscope-ops/tls/lb/live/cert.pem', 'chain_path': '/etc/dealerscope-ops/tls/lb/live/chain.pem',
        'fullchain_path': '/etc/dealerscope-ops/tls/lb/live/fullchain.pem', 'key_path': '/etc/dealerscope-ops/tls/lb/live/privkey.pem',
    }]


def test_explicit_values_are_kept_and_order_preserved():
    certs = [
        cert(name='zz', domains=['*.app.dealerscope.lab', 'app.dealerscope.lab'], challenge='dns-01', service='none',
             endpoint='LB.dealerscope.lab:8443', server_name='app.dealerscope.lab', key_type='rsa4096', owner='www-data', group='ssl-cert'),
        cert(name='db', domains=['db.dealerscope.lab'], issuer='internal', challenge='dns-01', service='postgresql',
             key_type='rsa2048', owner='postgres', group='postgres'),
    ]
    out = check(certs, base_dir='/srv/tls/')
    assert [c['name'] for c in out] == ['zz', 'db']
    assert [c['starttls'] for c in out] == [None, 'postgres']  # a PostgreSQL endpoint speaks TLS after its SSLRequest
    assert out[0]['challenge'] == 'dns-01' and out[0]['endpoint'] == 'lb.dealerscope.lab:8443'
    assert out[0]['common_name'] == '*.app.dealerscope.lab' and out[0]['server_name'] == 'app.dealerscope.lab'
    assert (out[0]['service'], out[0]['key_type'], out[0]['owner'], out[0]['group']) == ('none', 'rsa4096', 'www-data', 'ssl-cert')
    assert out[1]['challenge'] is None   # ignored for internal
    assert (out[1]['issuer'], out[1]['service'], out[1]['key_type']) == ('internal', 'postgresql', 'rsa2048')
    assert out[1]['dir'] == '/srv/tls/db' and out[1]['key_path'] == '/srv/tls/db/live/privkey.pem'


def test_input_is_not_modified_and_empty_list():
    certs = [cert()]
    before = copy.deepcopy(certs)
    check(certs)
    assert certs == before
    assert check([]) == []


def test_null_values_mean_the_default():
    out = check([cert(issuer=None, challenge=None, service=None, key_type=None, owner=None, group=None, endpoint=None, server_name=None)])
    assert out == check([cert()])


def test_internal_only_needs_no_acme_directory():
    assert check([cert(issuer='internal')], acme_directory='')[0]['issuer'] == 'internal'
    assert check([], acme_directory='') == []


def test_registered():
    assert FilterModule().filters() == {'tls_certificates': tls_certificates}


def test_documentation_parses():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc['name'] == 'tls_certificates' and doc['version_added'] == '0.1.0'
    assert set(doc['options']) == {'_input', 'allowed_domains', 'acme_directory', 'renew_days', 'renew_percent', 'warn_days',
                                   'crit_days', 'base_dir'}
    assert set(doc['options']['_input']['suboptions']) == set(plugin.KEYS)
    assert isinstance(yaml.safe_load(plugin.EXAMPLES), list)
    assert set(yaml.safe_load(plugin.RETURN)['_value']['contains']) == set(DERIVED)


# --- names --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['LB', '-lb', '_lb', 'l b', 'lb.x', 'a' * 41, '', 'lb/..', 'é'])
def test_bad_names(name):
    line = one_problem([cert(name=name)])
    assert line.startswith("certificates[0]: name '%s' is not allowed; use 1-40 lower case letters" % name), line


@pytest.mark.parametrize('name', ['a', '0', 'lb-1_x', 'a' * 40])
def test_good_names(name):
    assert check([cert(name=name)])[0]['dir'] == '/etc/dealerscope-ops/tls/' + name


def test_name_required_and_not_a_string():
    assert one_problem([{'domains': ['lb.dealerscope.lab']}]).startswith('certificates[0]: name is required')
    assert one_problem([cert(name=7)]).startswith('certificates[0]: name int 7 is not allowed')


def test_duplicate_names():
    line = one_problem([cert(), cert(name='db', domains=['db.dealerscope.lab']), cert(domains=['www.dealerscope.lab'])])
    assert line == "certificate 'lb': name is used twice (certificates[0] and certificates[2]); names must be unique"


# --- keys and choices ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('key', ['domain', 'chalenge', 'dir', 'cert_path', 'common_name', 'mode'])
def test_unknown_key(key):
    line = one_problem([cert(**{key: 'x'})])
    assert line.startswith("certificate 'lb': unknown key '%s'; allowed keys are name, domains, issuer, challenge" % key), line


@pytest.mark.parametrize('key, value, allowed', [
    ('challenge', 'tls-alpn-01', 'http-01, dns-01'),
    ('challenge', 'DNS', 'http-01, dns-01'),
    ('issuer', 'letsencrypt', 'acme, internal'),
    ('service', 'apache', 'nginx, postgresql, none'),
    ('key_type', 'rsa1024', 'ecdsa256, rsa2048, rsa4096'),
])
def test_unknown_choice(key, value, allowed):
    assert one_problem([cert(**{key: value})]) == "certificate 'lb': %s '%s' is not allowed; use one of %s" % (key, value, allowed)


def test_choices_are_case_insensitive_and_non_strings_refused():
    assert check([cert(issuer=' ACME ', challenge='DNS-01', service='Nginx')])[0]['challenge'] == 'dns-01'
    assert one_problem([cert(service=True)]) == "certificate 'lb': service bool True is not allowed; use one of nginx, postgresql, none"


@pytest.mark.parametrize('key, value', [('owner', ''), ('owner', 'root:root'), ('group', 'a b'), ('group', 0)])
def test_bad_owner_group(key, value):
    assert one_problem([cert(**{key: value})]).startswith("certificate 'lb': %s " % key)


def test_not_a_dict_and_not_a_list():
    assert one_problem(['lb']) == "certificates[0] is str 'lb', not a dict with name, domains, ..."
    with pytest.raises(AnsibleFilterError, match='must be a list of dicts'):
        check({'lb': {}})


# --- domains ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('domains, message', [
    (None, 'domains is required'),
    ([], 'domains is empty'),
    ('lb.dealerscope.lab', "domains must be a list of DNS names, got str 'lb.dealerscope.lab'; write it as a list: [lb.dealerscope.lab]"),
    ([3], 'domains[0] is int 3, not a string'),
    (['lb_1.dealerscope.lab'], "domain 'lb_1.dealerscope.lab' is not a DNS name"),
    (['-lb.dealerscope.lab'], "domain '-lb.dealerscope.lab' is not a DNS name"),
    (['lb..dealerscope.lab'], "domain 'lb..dealerscope.lab' is not a DNS name"),
    (['a' * 64 + '.dealerscope.lab'], 'is not a DNS name'),
    (['bücher.dealerscope.lab'], "domain 'bücher.dealerscope.lab' contains non-ASCII characters; internationalised domain names are not supported"),
    (['lb*.dealerscope.lab'], 'has a misplaced wildcard'),
    (['a.*.dealerscope.lab'], 'has a misplaced wildcard'),
    (['lb.dealerscope.lab', 'LB.dealerscope.lab'], "domain 'LB.dealerscope.lab' is listed twice"),
])
def test_bad_domains(domains, message):
    line = one_problem([cert(domains=domains)])
    assert line.startswith("certificate 'lb': ") and message in line, line


def test_wildcard_needs_dns_01():
    assert one_problem([cert(domains=['*.dealerscope.lab'])]) == (
        "certificate 'lb': wildcard domain '*.dealerscope.lab' needs issuer acme with challenge dns-01; the challenge is 'http-01'")
    assert one_problem([cert(domains=['*.dealerscope.lab'], challenge='http-01')]).endswith("the challenge is 'http-01'")
    assert one_problem([cert(domains=['*.dealerscope.lab'], issuer='internal', challenge='dns-01')]).endswith('issuer internal has no challenge')
    assert check([cert(domains=['*.dealerscope.lab'], challenge='dns-01')])[0]['domains'] == ['*.dealerscope.lab']


def test_wildcard_directly_under_a_tld_is_refused():
    assert 'directly under a top-level domain' in one_problem([cert(domains=['*.lab'], challenge='dns-01')], allowed=['.lab'])


def test_domain_not_allowed():
    line = one_problem([cert(domains=['lb.dealerscope.lab', 'evil.example.com'])], allowed=['*.dealerscope.lab', '.internal.lab'])
    assert line == "certificate 'lb': domain 'evil.example.com' is not in tls_allowed_domains (*.dealerscope.lab, .internal.lab)"


def test_empty_allowed_list_allows_nothing():
    assert one_problem([cert()], allowed=[]).endswith('is not in tls_allowed_domains (empty: no domain is allowed)')


@pytest.mark.parametrize('pattern, domain, allowed', [
    ('.dealerscope.lab', 'lb.dealerscope.lab', True),
    ('.dealerscope.lab', 'a.b.c.dealerscope.lab', True),
    ('.dealerscope.lab', '*.app.dealerscope.lab', True),
    ('.dealerscope.lab', 'dealerscope.lab', False),
    ('.dealerscope.lab', 'xdealerscope.lab', False),
    ('*.dealerscope.lab', 'lb.dealerscope.lab', True),
    ('*.dealerscope.lab', '*.dealerscope.lab', True),
    ('*.dealerscope.lab', 'a.lb.dealerscope.lab', False),
    ('*.dealerscope.lab', '*.app.dealerscope.lab', False),
    ('*.dealerscope.lab', 'dealerscope.lab', False),
    ('*.dealerscope.lab', 'lb.xdealerscope.lab', False),
    ('lb.dealerscope.lab', 'lb.dealerscope.lab', True),
    ('LB.Dealerscope.lab', 'lb.dealerscope.lab', True),
    ('lb.dealerscope.lab', 'www.lb.dealerscope.lab', False),
    ('dealerscope.lab', 'lb.dealerscope.lab', False),
])
def test_allowed_patterns(pattern, domain, allowed):
    certs = [cert(domains=[domain], challenge='dns-01')]
    if allowed:
        assert check(certs, allowed=[pattern])[0]['domains'] == [domain]
    else:
        assert 'is not in tls_allowed_domains' in one_problem(certs, allowed=[pattern])


@pytest.mark.parametrize('allowed, message', [
    ('.dealerscope.lab', 'tls_allowed_domains must be a list of domain names or patterns'),
    ([None], 'tls_allowed_domains[0] is NoneType None, not a string'),
    (['**.dealerscope.lab'], "tls_allowed_domains[0] '**.dealerscope.lab' has a misplaced wildcard"),
    (['*dealerscope.lab'], "tls_allowed_domains[0] '*dealerscope.lab' has a misplaced wildcard"),
    (['..lab'], "tls_allowed_domains[0] '..lab' is not a DNS name"),
])
def test_bad_allowed_domains(allowed, message):
    assert problems([], allowed=allowed)[0].startswith(message)


# --- endpoint -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('endpoint, normalised', [
    ('lb.dealerscope.lab:443', 'lb.dealerscope.lab:443'),
    ('192.0.2.7:1', '192.0.2.7:1'),
    ('localhost:65535', 'localhost:65535'),
    ('[::1]:443', '[::1]:443'),
    ('[2001:DB8:0::1]:8443', '[2001:db8::1]:8443'),
])
def test_good_endpoints(endpoint, normalised):
    assert check([cert(endpoint=endpoint)])[0]['endpoint'] == normalised


@pytest.mark.parametrize('endpoint, message', [
    ('lb.dealerscope.lab:0', "endpoint 'lb.dealerscope.lab:0' has port '0'"),
    ('lb.dealerscope.lab:70000', "endpoint 'lb.dealerscope.lab:70000' has port '70000'"),
    ('lb.dealerscope.lab:https', "has port 'https'"),
    ('lb.dealerscope.lab:', 'has port missing'),
    ('lb.dealerscope.lab', 'has no port'),
    ('::1:443', "endpoint '::1:443' looks like an IPv6 address without brackets"),
    ('[::1]', "endpoint '[::1]' has port missing"),
    ('[nope]:443', "endpoint '[nope]:443' does not hold an IPv6 address in brackets"),
    ('lb_x:443', "endpoint 'lb_x:443': host 'lb_x' is not a DNS name"),
    (443, 'endpoint is int 443, not a string'),
])
def test_bad_endpoints(endpoint, message):
    line = one_problem([cert(endpoint=endpoint)])
    assert line.startswith("certificate 'lb': ") and message in line and 'port 1-65535' in line and '[2001:db8::1]:443' in line, line


def test_bad_server_name():
    assert one_problem([cert(server_name='not a name')]).startswith("certificate 'lb': server_name 'not a name' is not a DNS name")


# --- acme directory, base_dir and thresholds ----------------------------------------------------------------------------

@pytest.mark.parametrize('url, message', [
    ('http://acme.dealerscope.lab/directory', "acme_directory 'http://acme.dealerscope.lab/directory' is not an HTTPS URL"),
    ('acme.dealerscope.lab/directory', 'is not an HTTPS URL'),
    ('https:///directory', 'has no valid host'),
    ('', 'acme_directory is empty'),
    (None, 'acme_directory is empty'),
    ('https://acme.example:99999/dir', 'is not a valid URL'),
])
def test_acme_directory_must_be_https_when_acme_is_used(url, message):
    line = one_problem([cert()], acme_directory=url)
    assert line.startswith('acme_directory ') and message in line and line.endswith("(needed by issuer acme: certificate 'lb')"), line


def test_acme_directory_is_checked_when_given_even_without_acme_certificates():
    assert one_problem([cert(issuer='internal')], acme_directory='http://acme').startswith("acme_directory 'http://acme' is not an HTTPS URL")
    assert check([cert(issuer='internal')], acme_directory='HTTPS://acme.dealerscope.lab:14000/dir')[0]['issuer'] == 'internal'


def test_base_dir_must_be_absolute():
    assert one_problem([cert()], base_dir='tls').startswith("base_dir str 'tls' is not allowed; write an absolute path")


@pytest.mark.parametrize('field', ['renew_days', 'renew_percent', 'warn_days', 'crit_days'])
def test_negative_threshold_as_string(field):
    kwargs = {field: '-1'}
    assert one_problem([cert()], **kwargs).startswith("%s '-1' is out of range; it must be >= 0" % field)


@pytest.mark.parametrize('field', ['renew_days', 'renew_percent', 'warn_days', 'crit_days'])
@pytest.mark.parametrize('value, message', [
    ('abc', "'abc' is not a number; write a number >= 0"),
    ('', "'' is not a number"),
    (None, 'is NoneType None, not a number'),
    (True, 'is bool True, not a number'),
    ('nan', "'nan' is not a finite number"),
    (-0.5, "'-0.5' is out of range"),
])
def test_bad_thresholds(field, value, message):
    kwargs = {field: value}
    if field == 'crit_days':
        kwargs['warn_days'] = 21
    line = one_problem([cert()], **kwargs)
    assert line.startswith(field + ' ') and message in line, line


def test_threshold_ranges_and_strings():
    assert check([cert()], renew_days='0', renew_percent='99.5', warn_days=' 14 ', crit_days='14') == check([cert()])
    assert one_problem([cert()], renew_percent=100) == "renew_percent '100' is out of range; it must be >= 0 and below 100"
    assert one_problem([cert()], warn_days='5', crit_days='7') == "crit_days '7' is greater than warn_days '5'; crit_days must be <= warn_days"
    assert one_problem([cert()], warn_days=0, crit_days=0.5).startswith("crit_days '0.5' is greater than warn_days '0'")


# --- everything at once -------------------------------------------------------------------------------------------------

def test_all_problems_are_reported_together():
    certs = [
        cert(domains=['lb.dealerscope.lab', 'evil.example.com'], chalenge='dns-01', endpoint='lb.dealerscope.lab:0'),
        cert(name='Bad Name', domains=['*.dealerscope.lab']),
        cert(domains=['www.dealerscope.lab'], challenge='tls-alpn-01', endpoint='[::1]:70000'),
    ]
    lines = problems(certs, acme_directory='http://acme.dealerscope.lab/dir', renew_days='-1', warn_days=3, crit_days=5)
    expected = [
        "renew_days '-1' is out of range",
        "crit_days '5' is greater than warn_days '3'",
        "certificate 'lb': unknown key 'chalenge'",
        "certificate 'lb': domain 'evil.example.com' is not in tls_allowed_domains (.dealerscope.lab)",
        "certificate 'lb': endpoint 'lb.dealerscope.lab:0' has port '0'",
        "certificates[1]: name 'Bad Name' is not allowed",
        "certificates[1]: wildcard domain '*.dealerscope.lab' needs issuer acme with challenge dns-01",
        "certificate 'lb': challenge 'tls-alpn-01' is not allowed",
        "certificate 'lb': endpoint '[::1]:70000' has port '70000'",
        "certificate 'lb': name is used twice (certificates[0] and certificates[2])",
        "acme_directory 'http://acme.dealerscope.lab/dir' is not an HTTPS URL",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected):
        assert line.startswith(start), (line, start)


# --- properties ---------------------------------------------------------------------------------------------------------

LABEL = st.from_regex(r'\A[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?\Z')
SUFFIXES = ['dealerscope.lab', 'corp.example']


@st.composite
def certificate_lists(draw):
    """Valid certificate lists: every domain under an allowed suffix, random case, optional keys sometimes given."""
    names = draw(st.lists(st.from_regex(r'\A[a-z0-9][a-z0-9_-]{0,39}\Z'), max_size=4, unique=True))
    certs = []
    for name in names:
        issuer = draw(st.sampled_from([None, 'acme', 'internal']))
        challenge = draw(st.sampled_from([None, 'http-01', 'dns-01']))
        wildcard_ok = issuer != 'internal' and challenge == 'dns-01'
        domains = []
        for _index in range(draw(st.integers(1, 4))):
            labels = draw(st.lists(LABEL, min_size=1, max_size=3))
            if wildcard_ok and draw(st.booleans()):
                labels = ['*'] + labels
            domain = '.'.join(labels + [draw(st.sampled_from(SUFFIXES))])
            if domain not in domains:
                domains.append(domain)
        entry = {'name': name, 'domains': [draw(st.sampled_from([d, d.upper(), ' %s ' % d])) for d in domains]}
        optional = {
            'issuer': issuer, 'challenge': challenge,
            'service': draw(st.sampled_from([None, 'nginx', 'postgresql', 'none'])),
            'key_type': draw(st.sampled_from([None, 'ecdsa256', 'rsa2048', 'rsa4096'])),
            'endpoint': draw(st.sampled_from([None, 'lb.dealerscope.lab:443', '[2001:db8::1]:8443', '192.0.2.7:5432'])),
            'owner': draw(st.sampled_from([None, 'root', 'postgres'])),
        }
        entry.update((key, value) for key, value in optional.items() if value is not None or draw(st.booleans()))
        certs.append(entry)
    return certs


def strip_derived(certs):
    return [dict((key, value) for key, value in c.items() if key not in DERIVED) for c in certs]


@settings(max_examples=200, deadline=None)
@given(certificate_lists(), st.sampled_from(['/etc/dealerscope-ops/tls', '/srv/tls']))
def test_domains_under_allowed_suffixes_are_accepted_and_normalisation_is_idempotent(certs, base_dir):
    allowed = ['.' + suffix for suffix in SUFFIXES]
    out = check(certs, allowed=allowed, base_dir=base_dir)
    assert [c['name'] for c in out] == [c['name'] for c in certs]
    for given_cert, result in zip(certs, out):
        assert set(result) == set(plugin.KEYS) | set(DERIVED)
        assert result['domains'] == [d.strip().lower() for d in given_cert['domains']]
        assert result['common_name'] == result['domains'][0]
        assert result['dir'] == base_dir + '/' + result['name'] and result['live'] == result['dir'] + '/live'
        assert result['key_path'] == result['live'] + '/privkey.pem'
        assert (result['challenge'] is None) == (result['issuer'] == 'internal')
    assert check(strip_derived(out), allowed=allowed, base_dir=base_dir) == out   # f(f(x)) == f(x)


@settings(max_examples=100, deadline=None)
@given(certificate_lists().filter(bool), st.data())
def test_a_domain_outside_the_allowed_suffixes_is_refused(certs, data):
    index = data.draw(st.integers(0, len(certs) - 1))
    outsider = data.draw(LABEL) + '.evil.example'
    certs[index]['domains'] = certs[index]['domains'] + [outsider]
    lines = problems(certs, allowed=['.' + suffix for suffix in SUFFIXES])
    assert lines == ["certificate '%s': domain '%s' is not in tls_allowed_domains (.dealerscope.lab, .corp.example)" % (certs[index]['name'], outsider)]


# --- through Ansible's templating, by FQCN -------------------------------------------------------------------------------

def test_filter_loads_by_fqcn_in_jinja(tmp_path):
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({'certs': [cert(domains=['LB.dealerscope.lab'])], 'allowed': ALLOWED, 'renew': '20', 'crit': '-1'}))
    value, output = render("certs | dealerscope.ops.tls_certificates(allowed, acme_directory='%s', renew_days=renew) | map(attribute='key_path')"
                           % ACME, str(extra))
    assert value == ['/etc/dealerscope-ops/tls/lb/live/privkey.pem'], output
    value, output = render("certs | dealerscope.ops.tls_certificates(allowed, acme_directory='%s', crit_days=crit)" % ACME, str(extra))
    assert value is None and re.search(r"crit_days '-1' is out of range", output), output
