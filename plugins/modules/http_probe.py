#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: http_probe
short_description: Probe HTTP(S) endpoints and check latency, error rate, TLS expiry and security headers against the SLOs
version_added: 0.1.0
author: DealerScope Ops (@dealerscope)
description:
  - Sends O(endpoints[].count) requests to each endpoint with O(endpoints[].concurrency) parallel workers and measures
    the latency of every request (time until the full response body has been read), the error rate and the status codes.
  - Each worker reuses one keep-alive connection and opens a new one after a failure or when the server closes it.
    An idle keep-alive connection that the server closed is retried once on a fresh connection (it is not counted as an error).
  - Every request carries an C(X-Request-ID) header V(probe-<random>-<endpoint>-<n>) so that probe requests can be found in the
    access logs.
  - An error is a connection error, a TLS error, a timeout, a malformed response, or a status code that is not in
    O(endpoints[].expect_status). A 5xx status is always an error, even when listed in O(endpoints[].expect_status).
  - Any other exception while probing is a fault of the probe itself, not of the service; the module then fails with a message
    naming the endpoint (the daily runbook reports it as a C(runbook_error)) instead of counting it as failed requests.
  - Latency percentiles (p50, p95, p99) are computed over the requests that received an HTTP response (including error statuses)
    by linear interpolation between closest ranks (the C(inclusive) method of Python's C(statistics.quantiles), NumPy's default).
    The latency includes the TCP and TLS connection setup for the first request of each worker and after reconnects.
  - For HTTPS endpoints it also reports the days until the leaf certificate expires and whether the security headers
    of O(security_headers) are present on a 2xx response.
  - Endpoints are probed one after the other. The module runs on the host it is delegated to, for example the controller for
    probes through the load balancer, or an application host for direct probes of C(127.0.0.1).
  - It uses the Python standard library only (plus the C(cryptography) package, when installed, for O(validate_certs=false)).
  - Each endpoint gives the checks V(<name>:error_rate), V(<name>:latency_p95) and, for HTTPS, V(<name>:tls_expiry) and
    V(<name>:security_headers); see RV(checks).
  - The module only sends the requests; it never changes anything. Use C(GET) or C(HEAD) only on read-only URLs.
options:
  endpoints:
    description:
      - The endpoints to probe. Must not be empty.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the endpoint, used in the check names (V(<name>:latency_p95)) and as the key in RV(probes). Must be unique.
        type: str
        required: true
      url:
        description:
          - The URL to request. The scheme must be V(http) or V(https) and a host is required.
          - Credentials in the URL (V(user:password@host)) are refused; use O(endpoints[].headers) instead.
        type: str
        required: true
      count:
        description:
          - Number of requests to send. Defaults to O(count).
        type: int
      concurrency:
        description:
          - Number of parallel workers (and keep-alive connections), 1 to 64. Defaults to O(concurrency).
        type: int
      p95_ms:
        description:
          - Latency SLO in milliseconds. A p95 latency at or above it is a warning, at or above O(p95_crit_factor) times it critical.
          - Defaults to O(p95_ms).
        type: float
      error_rate_percent:
        description:
          - Error-rate SLO in percent. An error rate at or above it is critical. Defaults to O(error_rate_percent).
        type: float
      expect_status:
        description:
          - Status codes that count as success. 5xx codes are always errors.
        type: list
        elements: int
        default: [200]
      headers:
        description:
          - Extra request headers, for example C(Authorization) or C(Host).
          - The values are treated as secrets (not logged, masked in the output).
        type: dict
      method:
        description:
          - HTTP method.
        type: str
        choices: [GET, HEAD]
        default: GET
  count:
    description:
      - Default number of requests per endpoint.
    type: int
    default: 20
  concurrency:
    description:
      - Default number of parallel workers per endpoint, 1 to 64.
    type: int
    default: 4
  timeout_s:
    description:
      - Socket timeout in seconds for connecting and for each read of a response.
    type: float
    default: 5
  p95_ms:
    description:
      - Default latency SLO in milliseconds for the p95 (the readiness document asks for an API p95 below 500 ms).
    type: float
    default: 500
  p95_crit_factor:
    description:
      - A p95 latency at or above this factor times the endpoint's p95 SLO is critical instead of a warning. At least 1.
    type: float
    default: 2.0
  error_rate_percent:
    description:
      - Default error-rate SLO in percent (the readiness document's error-rate SLO is 0.1 %).
      - With the default, a single failed request out of 20 makes the check critical.
    type: float
    default: 0.1
  validate_certs:
    description:
      - Verify the server certificate and host name of HTTPS endpoints.
      - When V(false), the certificate expiry is read by parsing the certificate with the Python C(cryptography) package;
        without it, the expiry is reported as unknown (a warning).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to verify HTTPS endpoints against, instead of the system trust store.
    type: path
  tls_warn_days:
    description:
      - Warn when the leaf certificate expires in this many days or fewer.
    type: int
    default: 21
  tls_crit_days:
    description:
      - Critical when the leaf certificate expires in this many days or fewer. Must not be greater than O(tls_warn_days).
    type: int
    default: 7
  security_headers:
    description:
      - Response headers that must be present on a 2xx response of HTTPS endpoints (case-insensitive). Not checked for HTTP.
    type: list
    elements: str
    default: [Strict-Transport-Security, Content-Security-Policy, X-Content-Type-Options]
  max_requests:
    description:
      - Hard bound on the total number of requests (the sum of the endpoints' counts). The module fails before sending
        anything when the endpoints ask for more.
    type: int
    default: 2000
  max_seconds:
    description:
      - Hard bound on the wall time of the probing, in seconds. No new request is sent after it; requests in flight finish
        (so the module may take up to O(max_seconds) plus O(timeout_s)).
      - C(probes.<name>.requests_sent) and C(probes.<name>.truncated) tell how many requests were actually sent.
    type: float
    default: 60
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return the same result as without it, because the module only sends read requests.
  diff_mode:
    support: none
    description: Will not return details on what has changed (nothing ever changes).
  idempotent:
    support: full
    description: The module never changes anything, so running it again gives the same kind of result.
notes:
  - Check statuses. V(<name>:error_rate) is critical (alert V(high_error_rate)) when the error rate is at or above the SLO.
    When no request got any HTTP response at all, it is critical at 100 % with alert V(service_down) instead, and the endpoint's
    other checks are critical with alert V(service_down) too (except V(<name>:tls_expiry) when the certificate could be read).
  - V(<name>:latency_p95) is a warning (alert V(high_latency)) at or above O(endpoints[].p95_ms) and critical at or above
    O(p95_crit_factor) times it.
  - V(<name>:tls_expiry) is a warning (alert V(tls_expiry)) at O(tls_warn_days) days or fewer and critical at O(tls_crit_days)
    or fewer; when the expiry cannot be read it is a warning with value V(null).
  - V(<name>:security_headers) is a warning (alert V(security_headers)) when a header of O(security_headers) is missing, or when
    no 2xx response was received to check.
  - An endpoint not probed at all because O(max_seconds) was used up by earlier endpoints gets warnings with value V(null).
  - When a certificate fails verification, the requests fail with a C(tls) error and the reason is in C(probes.<name>.error_samples).
seealso:
  - name: Python statistics.quantiles
    description: The inclusive quantile method the percentiles follow.
    link: https://docs.python.org/3/library/statistics.html#statistics.quantiles
"""

EXAMPLES = r"""
- name: Probe the API through the load balancer
  dealerscope.ops.http_probe:
    ca_path: /etc/dealerscope/ca.pem
    endpoints:
      - name: lb_vehicles
        url: https://dealerscope.example.com/api/vehicles?limit=5
  delegate_to: localhost
  run_once: true
  register: lb_probe

- name: Probe each API host directly, with a tighter SLO and a HEAD health check
  dealerscope.ops.http_probe:
    count: 50
    concurrency: 8
    endpoints:
      - name: api_vehicles
        url: http://127.0.0.1:8000/api/vehicles
        p95_ms: 300
      - name: api_health
        url: http://127.0.0.1:8000/healthz
        method: HEAD
        expect_status: [200, 204]
  register: api_probe

- name: Show the p95 latencies
  ansible.builtin.debug:
    msg: "{{ item.key }}: p95 {{ item.value.latency_ms.p95 }} ms, {{ item.value.error_rate_percent }} % errors"
  loop: "{{ api_probe.probes | dict2items }}"
"""

RETURN = r"""
checks:
  description:
    - One check per endpoint and aspect, built with the collection's check contract (status V(ok), V(warning) or V(critical)).
    - Names are V(<name>:error_rate), V(<name>:latency_p95), and for HTTPS V(<name>:tls_expiry) and V(<name>:security_headers).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Check name.
      type: str
      sample: api_vehicles:latency_p95
    status:
      description: V(ok), V(warning) or V(critical).
      type: str
      sample: ok
    value:
      description: The measured value (p95 in ms, error rate in %, days to expiry, number of missing headers), or V(null).
      type: raw
      sample: 12.4
    threshold:
      description: The limit the value was compared with (the warning limit when there is one).
      type: raw
      sample: 500.0
    unit:
      description: Unit of RV(checks[].value).
      type: str
      sample: ms
    message:
      description: One-line summary.
      type: str
      sample: "api_vehicles latency p95 is 12.4 ms (limit 500 ms) over 20 responses"
    alert:
      description:
        - Alert class raised by a non-ok status (V(high_latency), V(high_error_rate), V(service_down), V(tls_expiry),
          V(security_headers)), V(null) when ok.
      type: str
      sample: null
    details:
      description: For V(<name>:security_headers), the present and missing headers.
      type: dict
      returned: for security header checks
      sample: {"checked": true, "present": ["Strict-Transport-Security"], "missing": ["Content-Security-Policy"]}
  sample:
    - name: api_vehicles:error_rate
      status: ok
      value: 0.0
      threshold: 0.1
      unit: "%"
      message: "api_vehicles error rate is 0 % (limit 0.1 %): 0 of 20 requests failed"
      alert: null
    - name: api_vehicles:latency_p95
      status: ok
      value: 12.4
      threshold: 500.0
      unit: ms
      message: "api_vehicles latency p95 is 12.4 ms (limit 500 ms) over 20 responses"
      alert: null
probes:
  description:
    - Raw measurements per endpoint, keyed by endpoint name. The keys listed below are those of each endpoint's dict.
  returned: always
  type: dict
  contains:
    url:
      description: The probed URL.
      type: str
      sample: http://127.0.0.1:8000/api/vehicles
    method:
      description: The HTTP method.
      type: str
      sample: GET
    requests_planned:
      description: The endpoint's count.
      type: int
      sample: 20
    requests_sent:
      description: Requests actually sent (fewer than planned when O(max_seconds) ran out).
      type: int
      sample: 20
    truncated:
      description: Whether sending stopped early because of O(max_seconds).
      type: bool
      sample: false
    concurrency:
      description: Workers used (the concurrency, at most the count).
      type: int
      sample: 4
    duration_s:
      description: Wall time spent on the endpoint in seconds.
      type: float
      sample: 0.087
    connections_opened:
      description: Connections opened (equal to the concurrency when keep-alive worked throughout).
      type: int
      sample: 4
    responses:
      description: Requests that received an HTTP response (any status).
      type: int
      sample: 20
    errors:
      description: Failed requests (no response, or a status that is not expected).
      type: int
      sample: 0
    error_rate_percent:
      description: Errors in percent of the requests sent, V(null) when none was sent.
      type: float
      sample: 0.0
    error_kinds:
      description: Errors by kind (V(connection), V(timeout), V(tls), V(protocol), V(status)).
      type: dict
      sample: {"status": 1}
    error_samples:
      description: Up to three distinct error messages.
      type: list
      elements: str
      sample: ["unexpected HTTP status 503 (expected 200)"]
    status_codes:
      description: Number of responses per status code.
      type: dict
      sample: {"200": 20}
    reachable:
      description: Whether at least one HTTP response was received.
      type: bool
      sample: true
    latency_ms:
      description: Latency statistics in milliseconds over the responses (all V(null) when there were none).
      type: dict
      contains:
        p50:
          description: Median (linear interpolation).
          type: float
        p95:
          description: 95th percentile (linear interpolation).
          type: float
        p99:
          description: 99th percentile (linear interpolation).
          type: float
        mean:
          description: Arithmetic mean.
          type: float
        min:
          description: Fastest response.
          type: float
        max:
          description: Slowest response.
          type: float
      sample: {"p50": 8.1, "p95": 12.4, "p99": 13.0, "mean": 8.6, "min": 6.2, "max": 13.1}
    p95_ms_threshold:
      description: The endpoint's effective p95 SLO in ms.
      type: float
      sample: 500.0
    error_rate_percent_threshold:
      description: The endpoint's effective error-rate SLO in percent.
      type: float
      sample: 0.1
    tls:
      description: Leaf certificate information for HTTPS endpoints, V(null) for HTTP.
      type: dict
      contains:
        handshake:
          description: Whether a TLS connection was established.
          type: bool
        verified:
          description: Whether the certificate was verified (O(validate_certs)).
          type: bool
        not_after:
          description: Expiry time of the leaf certificate (UTC, ISO 8601), or V(null) when unknown.
          type: str
        days_to_expiry:
          description: Days until expiry (negative when expired), or V(null) when unknown.
          type: float
        unknown_reason:
          description: Why the expiry is unknown although a handshake was made.
          type: str
      sample: {"handshake": true, "verified": true, "not_after": "2027-02-23T17:54:43Z", "days_to_expiry": 365.2, "unknown_reason": null}
    security_headers:
      description: Security headers of the first 2xx response for HTTPS endpoints, V(null) for HTTP.
      type: dict
      sample: {"checked": true, "present": ["Strict-Transport-Security", "X-Content-Type-Options"], "missing": ["Content-Security-Policy"]}
  sample:
    api_vehicles:
      url: http://127.0.0.1:8000/api/vehicles
      method: GET
      requests_planned: 20
      requests_sent: 20
      truncated: false
      concurrency: 4
      duration_s: 0.087
      connections_opened: 4
      responses: 20
      errors: 0
      error_rate_percent: 0.0
      error_kinds: {}
      error_samples: []
      status_codes: {"200": 20}
      reachable: true
      latency_ms: {"p50": 8.1, "p95": 12.4, "p99": 13.0, "mean": 8.6, "min": 6.2, "max": 13.1}
      p95_ms_threshold: 500.0
      error_rate_percent_threshold: 0.1
      tls: null
      security_headers: null
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dealerscope.ops.plugins.module_utils.http_probe import (
    DEFAULT_SECURITY_HEADERS,
    METHODS,
    ProbeError,
    probe_ssl_context,
    run_probes,
    validate_options,
)


def argument_spec():
    return dict(
        endpoints=dict(
            type='list',
            elements='dict',
            required=True,
            options=dict(
                name=dict(type='str', required=True),
                url=dict(type='str', required=True),
                count=dict(type='int'),
                concurrency=dict(type='int'),
                p95_ms=dict(type='float'),
                error_rate_percent=dict(type='float'),
                expect_status=dict(type='list', elements='int', default=[200]),
                headers=dict(type='dict', no_log=True),
                method=dict(type='str', choices=list(METHODS), default='GET'),
            ),
        ),
        count=dict(type='int', default=20),
        concurrency=dict(type='int', default=4),
        timeout_s=dict(type='float', default=5),
        p95_ms=dict(type='float', default=500),
        p95_crit_factor=dict(type='float', default=2.0),
        error_rate_percent=dict(type='float', default=0.1),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        tls_warn_days=dict(type='int', default=21),
        tls_crit_days=dict(type='int', default=7),
        security_headers=dict(type='list', elements='str', default=list(DEFAULT_SECURITY_HEADERS)),
        max_requests=dict(type='int', default=2000),
        max_seconds=dict(type='float', default=60),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        endpoints, settings = validate_options(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc), changed=False)
    if settings['ca_path']:
        try:
            with open(settings['ca_path'], 'rb'):
                pass
        except (IOError, OSError) as exc:
            module.fail_json(msg='ca_path %s cannot be read: %s' % (settings['ca_path'], exc), changed=False)
    try:
        context = probe_ssl_context(endpoints, settings)
    except (ValueError, OSError) as exc:  # ssl.SSLError from a ca_path that is not a PEM CA file is an OSError
        module.fail_json(msg='cannot set up the probe (ca_path %s): %s' % (settings['ca_path'], exc), changed=False)
    # Failed requests are measurements (checks); anything else is the probe's own failure and fails the module,
    # so that the runbook reports a runbook_error instead of paging for a service error rate it never measured.
    try:
        probes, checks = run_probes(endpoints, settings, ssl_context=context)
    except ProbeError as exc:
        module.fail_json(msg='http_probe failed: %s (a fault of the probe, not a measurement of the service)' % exc, changed=False)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='http_probe failed: internal error: %s: %s (a fault of the probe, not a measurement of the service)'
                         % (type(exc).__name__, exc), changed=False)
    module.exit_json(changed=False, checks=checks, probes=probes)


if __name__ == '__main__':
    main()
