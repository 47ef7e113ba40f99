# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The type checks and value descriptions the filter plugins share (plugins/plugin_utils/filter_values.py)."""

from __future__ import annotations

import collections
import importlib

import pytest
from hypothesis import given, settings, strategies as st

from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types
from ansible.utils.unsafe_proxy import AnsibleUnsafeBytes, AnsibleUnsafeText
from ansible_collections.dealerscope.ops.plugins.plugin_utils import filter_values
from ansible_collections.dealerscope.ops.plugins.plugin_utils.filter_values import describe, is_dict, is_list

FILTERS = ('backup_retention', 'deploy_canary_steps', 'deploy_releases', 'patch_batches', 'patch_window', 'tls_certificates')

# any value a filter may be handed from YAML or a Jinja2 expression, nested
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def _id(value):
    """A test id that is the same in every pytest-xdist worker (no memory address: workers must collect alike)."""
    text = repr(value)
    return type(value).__name__ if ' at 0x' in text else text


class KeysOnly(object):
    """Has keys but no items: neither a dict nor a list."""

    def keys(self):
        return []


class ListWithKeys(list):
    """A list that also has keys: not a list for the filters (a dict-like value never is)."""

    def keys(self):
        return []


@pytest.mark.parametrize('value', [
    [], [1, 'a'], (), ('a',), range(3), bytearray(b'ab'), collections.UserList([1]),
], ids=_id)
def test_list_like_sequences_are_lists(value):
    assert is_list(value) is True


@pytest.mark.parametrize('value', [
    '', 'a,b', b'a,b', AnsibleUnsafeText('a'), AnsibleUnsafeBytes(b'a'), {}, {'a': 1}, collections.OrderedDict(),
    ListWithKeys([1]), {1, 2}, frozenset(), None, 0, 1.5, True, KeysOnly(), iter([1]), (item for item in [1]),
], ids=_id)
def test_strings_mappings_sets_and_scalars_are_not_lists(value):
    assert is_list(value) is False


@pytest.mark.parametrize('value', [{}, {'a': 1}, collections.OrderedDict(a=1), collections.UserDict(a=1)], ids=_id)
def test_mappings_are_dicts(value):
    assert is_dict(value) is True


@pytest.mark.parametrize('value', [[], ['a'], (), 'keys', b'items', None, 0, {1}, KeysOnly()], ids=_id)
def test_everything_else_is_not_a_dict(value):
    assert is_dict(value) is False


@pytest.mark.parametrize('value, expected', [
    ('x', "str 'x'"),
    ('', "str ''"),
    (3, 'int 3'),
    (1.5, 'float 1.5'),
    (True, 'bool True'),
    (None, 'NoneType None'),
    (b'x', "bytes b'x'"),
    ([1, 'a'], "list [1, 'a']"),
    ((1,), 'tuple (1,)'),
    ({'a': 1}, "dict {'a': 1}"),
])
def test_describe_names_the_type_and_the_repr(value, expected):
    assert describe(value) == expected


def test_describe_of_a_tuple_is_not_taken_as_format_arguments():
    assert describe((1, 2)) == 'tuple (1, 2)'


@pytest.mark.parametrize('name', FILTERS)
def test_each_filter_uses_the_shared_helpers(name):
    module = importlib.import_module('ansible_collections.dealerscope.ops.plugins.filter.%s' % name)
    assert module.is_list is filter_values.is_list
    for copy in ('_is_list', '_is_dict', '_describe'):
        assert not hasattr(module, copy), '%s still has its own %s' % (name, copy)
    for shared in ('is_dict', 'describe'):
        if hasattr(module, shared):
            assert getattr(module, shared) is getattr(filter_values, shared)


# ---------------------------------------------------------------------------------------------
# properties


def _is_list_string_types(value):
    """patch_batches' and patch_window's former copy, which excluded ``string_types`` instead of (str, bytes)."""
    return not isinstance(value, string_types) and not hasattr(value, 'keys') and is_sequence(value)


@settings(max_examples=300, deadline=None)
@given(value=VALUES)
def test_is_list_matches_the_string_types_copy_it_replaces(value):
    assert is_list(value) == _is_list_string_types(value)


@settings(max_examples=300, deadline=None)
@given(value=VALUES)
def test_a_value_is_never_both_a_list_and_a_dict(value):
    assert not (is_list(value) and is_dict(value))
    assert is_list(value) == isinstance(value, (list, tuple))
    assert is_dict(value) == isinstance(value, dict)


@settings(max_examples=300, deadline=None)
@given(value=VALUES)
def test_describe_is_the_type_name_then_the_repr(value):
    text = describe(value)
    assert text == type(value).__name__ + ' ' + repr(value)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=20), data=st.binary(max_size=20))
def test_strings_and_bytes_are_never_lists(text, data):
    for value in (text, data, AnsibleUnsafeText(text), AnsibleUnsafeBytes(data)):
        assert is_list(value) is False
    assert is_list([text]) is True
    assert is_list(list(text)) is True
