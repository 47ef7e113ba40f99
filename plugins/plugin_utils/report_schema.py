# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validation of a runbook report against its JSON Schema (controller side, ``jsonschema``).

The schema is ``REPORT_SCHEMA`` in ``plugins/module_utils/ops_report.py`` (also ``docs/report.schema.json``);
``validate`` returns readable error strings rather than raising, so that the caller can name the bug.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import REPORT_SCHEMA

try:
    import jsonschema
except ImportError:  # pragma: no cover - exercised by the error message only
    jsonschema = None


def _path(error):
    return '$' + ''.join('[%d]' % part if isinstance(part, int) else '.%s' % part for part in error.absolute_path)


def validate(report, schema=None):
    """Errors of ``report`` against the report schema (an empty list when valid), worst-first by path."""
    if jsonschema is None:
        raise AnsibleError('the Python library jsonschema is required on the controller to validate runbook reports: '
                           'pip install jsonschema')
    validator = jsonschema.Draft202012Validator(schema or REPORT_SCHEMA)
    return ['%s: %s' % (_path(error), error.message)
            for error in sorted(validator.iter_errors(report), key=lambda error: list(map(str, error.absolute_path)))]
