# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared harness for module unit tests: inject arguments, turn exit_json/fail_json into exceptions, run a module."""

from __future__ import annotations

import contextlib
import json
import re
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # older ansible-core
    patch_module_args = None


class AnsibleExitJson(Exception):
    """Raised instead of exit_json; .result holds the module result."""

    def __init__(self, kwargs):
        super().__init__(kwargs)
        self.result = kwargs


class AnsibleFailJson(Exception):
    """Raised instead of fail_json; .result holds the module result."""

    def __init__(self, kwargs):
        super().__init__(kwargs)
        self.result = kwargs


def exit_json(self, **kwargs):  # pylint: disable=unused-argument
    kwargs.setdefault('changed', False)
    raise AnsibleExitJson(kwargs)


def fail_json(self, **kwargs):  # pylint: disable=unused-argument
    kwargs['failed'] = True
    raise AnsibleFailJson(kwargs)


@contextlib.contextmanager
def set_module_args(args):
    """Inject module arguments, for ansible-core before and after 2.19."""
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
    else:
        serialized = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
        with mock.patch.object(basic, '_ANSIBLE_ARGS', serialized):
            yield


def module_runner(monkeypatch, main, warnings=True):
    """``run(**args) -> (failed, result)`` for a ``run`` fixture: runs the module's ``main`` with ``args`` as its
    arguments, exit_json/fail_json (patched through ``monkeypatch``) ending it with the result. With ``warnings`` the
    warnings the module gave during that run are in ``result['_warnings']``."""
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    given = []
    if warnings:
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda _self, warning, **_kwargs: given.append(warning))

    def runner(**args):
        del given[:]
        with set_module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                main()
        result = excinfo.value.result
        if warnings:
            result['_warnings'] = list(given)
        return excinfo.type is AnsibleFailJson, result

    return runner


def assert_documentation_matches(module, name):
    """A module's DOCUMENTATION, EXAMPLES and RETURN parse, and its documented options match ``argument_spec()``
    (type, required, default, choices, elements). Returns (documentation, return documentation, spec)."""
    import yaml  # pylint: disable=import-outside-toplevel
    doc = yaml.safe_load(module.DOCUMENTATION)
    yaml.safe_load(module.EXAMPLES)
    returned = yaml.safe_load(module.RETURN)
    spec = module.argument_spec()
    assert doc['module'] == name and re.match(r'^[0-9]+\.[0-9]+\.[0-9]+$', str(doc['version_added']))  # which release: tests/gates
    assert set(doc['options']) == set(spec)
    for option_name, option in doc['options'].items():
        assert option['type'] == spec[option_name]['type'], option_name
        assert option.get('required', False) == spec[option_name].get('required', False), option_name
        assert option.get('default') == spec[option_name].get('default'), option_name
        assert option.get('choices') == spec[option_name].get('choices'), option_name
        assert option.get('elements') == spec[option_name].get('elements'), option_name
    return doc, returned, spec
