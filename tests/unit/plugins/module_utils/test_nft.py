# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure logic of dealerscope.ops.nft_apply: rules of a ruleset, drift, what must be loaded and why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dealerscope.ops.plugins.module_utils import nft

RULESET = """table inet dealerscope
delete table inet dealerscope
table inet dealerscope {
\tset lb_v4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.0.0.10 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state invalid drop
\t\tip saddr @lb_v4 tcp dport 8000 accept comment "lb api"
\t\tcounter comment "dropped"
\t}
}
"""

LISTING = """table inet dealerscope {
\tset lb_v4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.0.0.10 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state invalid drop
\t\tip saddr @lb_v4 tcp dport 8000 accept comment "lb api"
\t\tcounter packets 12 bytes 720 comment "dropped"
\t}
}
"""


def test_rules_are_the_lines_that_end_in_a_verdict():
    assert nft.rule_lines(RULESET) == ['ct state established,related accept', 'ct state invalid drop',
                                       'ip saddr @lb_v4 tcp dport 8000 accept comment "lb api"']


def test_counters_and_handles_are_not_drift():
    later = LISTING.replace('packets 12 bytes 720', 'packets 99812 bytes 5988720')
    later = later.replace('accept comment "lb api"', 'accept comment "lb api" # handle 7')
    assert not nft.detect_drift(RULESET, later, LISTING, True)


def test_a_rule_added_outside_ansible_is_drift_and_a_missing_table_too():
    changed = LISTING.replace('\t\tct state invalid drop\n', '\t\tct state invalid drop\n\t\ttcp dport 9999 accept\n')
    assert nft.detect_drift(RULESET, changed, LISTING, True)
    assert nft.detect_drift(RULESET, '', LISTING, False)
    assert not nft.detect_drift(None, '', None, False)  # nothing confirmed yet: nothing to drift from


@pytest.mark.parametrize('confirmed,present,live,recorded,expected', [
    (None, False, '', None, (True, 'new')),
    (RULESET.replace('8000', '8001'), True, LISTING, LISTING, (True, 'changed')),
    (RULESET, False, '', LISTING, (True, 'missing')),
    (RULESET, True, LISTING.replace('ct state invalid drop', 'ct state invalid accept'), LISTING, (True, 'drift')),
    (RULESET, True, LISTING, LISTING, (False, 'unchanged')),
])
def test_plan_says_whether_and_why(confirmed, present, live, recorded, expected):
    changed, reason, dummy = nft.plan(RULESET, confirmed, live, recorded, present)
    assert (changed, reason) == expected


def test_rule_changes_count_added_and_removed_rules():
    after = RULESET.replace('tcp dport 8000 accept comment "lb api"', 'tcp dport 8001 accept comment "lb api"')
    after = after.replace('\t\tct state invalid drop\n', '')
    assert nft.rule_changes(RULESET, after) == (1, 2)
    assert nft.rule_changes(RULESET, RULESET) == (0, 0)


@given(st.lists(st.sampled_from(['tcp dport 1 accept', 'udp dport 2 drop', 'ip saddr 10.0.0.1 accept', 'meta l4proto icmp accept']),
                max_size=8),
       st.lists(st.sampled_from(['tcp dport 1 accept', 'udp dport 2 drop', 'ip saddr 10.0.0.1 accept', 'meta l4proto icmp accept']),
                max_size=8))
def test_rule_changes_balance(old, new):
    before = '\n'.join(old)
    after = '\n'.join(new)
    added, removed = nft.rule_changes(before, after)
    assert len(new) - added == len(old) - removed  # the rules both keep


def test_restore_text_puts_the_table_back_or_removes_it():
    assert nft.restore_text('dealerscope', LISTING).startswith('table inet dealerscope\ndelete table inet dealerscope\ntable inet dealerscope {')
    assert nft.restore_text('dealerscope', '') == 'table inet dealerscope\ndelete table inet dealerscope\n'


def test_route_source_and_ssh_source():
    assert nft.route_source('[{"dst":"192.0.2.1","gateway":"10.213.48.1","dev":"eth0","prefsrc":"10.213.48.7","flags":[],"uid":0,"cache":[]}]') \
        == '10.213.48.7'
    assert nft.route_source('not json') == '' and nft.route_source('[]') == ''
    assert nft.ssh_source('10.213.48.1 51234 10.213.48.7 22') == '10.213.48.1'
    assert nft.ssh_source('') == '' and nft.ssh_source('garbage') == ''


@pytest.mark.parametrize('table', ['Dealerscope', '', 'a' * 32, 'x-y', None])
def test_bad_table_names_are_refused(table):
    with pytest.raises(ValueError, match='table must be'):
        nft.validate_table(table)
