# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dealerscope.ops.nft_apply against a stand-in `nft` (this machine's real firewall is never touched; the module
is proven on real nftables in molecule/firewall): planned -> loaded -> recorded, idempotence, check mode, drift."""

from __future__ import annotations

import os

import pytest

from ansible.module_utils import basic
from ansible_collections.dealerscope.ops.plugins.modules import nft_apply
from .utils import AnsibleExitJson, AnsibleFailJson, exit_json, fail_json, set_module_args

# A stand-in nft: the live "table" is a file; `-f` loads a file minus its `table`/`delete table` head lines.
FAKE_NFT = r'''#!/bin/sh
state="$FAKE_NFT_STATE"
case "$1 $2" in
  "list table") [ -f "$state" ] && exec cat "$state"; echo "Error: No such file or directory; did you mean table" >&2; exit 1 ;;
  "-c -f") grep -q SYNTAXERROR "$3" && { echo "Error: syntax error, unexpected junk" >&2; exit 1; }; exit 0 ;;
  "-f "*) tail -n +3 "$2" > "$state"; [ -s "$state" ] || rm -f "$state"; exit 0 ;;
esac
echo "fake nft: unexpected $*" >&2; exit 2
'''

CONTENT = """table inet dealerscope
delete table inet dealerscope
table inet dealerscope {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\ttcp dport 22 accept
\t}
}
"""


@pytest.fixture(name='module')
def fixture_module(monkeypatch, tmp_path):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    (bindir / 'nft').write_text(FAKE_NFT)
    (bindir / 'nft').chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (bindir, os.environ.get('PATH', '')))
    monkeypatch.setenv('FAKE_NFT_STATE', str(tmp_path / 'live'))
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    class Runner:
        state_dir = tmp_path / 'state'
        live = tmp_path / 'live'

        def run(self, check=False, **args):
            args.setdefault('state_dir', str(self.state_dir))
            if check:
                args['_ansible_check_mode'] = True
            with set_module_args(args):
                with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as excinfo:
                    nft_apply.main()
            return excinfo.type is AnsibleFailJson, excinfo.value.result

    return Runner()


def converge(module, content=CONTENT):
    failed, plan = module.run(state='planned', content=content)
    assert not failed, plan
    if plan['changed']:
        assert not module.run(state='loaded')[0]
        assert not module.run(state='recorded')[0]
    return plan


def test_first_apply_then_nothing_to_do(module):
    plan = converge(module)
    assert plan['changed'] and plan['reason'] == 'new' and plan['added'] == 2 and plan['removed'] == 0
    assert 'exec ' in plan['revert_script'] and plan['revert_script'].rstrip().endswith('previous.nft')
    previous = (module.state_dir / 'previous.nft').read_text()
    assert previous == 'table inet dealerscope\ndelete table inet dealerscope\n'  # the table did not exist: revert removes it
    assert oct((module.state_dir / 'confirmed.nft').stat().st_mode & 0o777) == '0o600'
    again = converge(module)
    assert not again['changed'] and again['reason'] == 'unchanged'


def test_check_mode_predicts_and_writes_nothing(module):
    failed, plan = module.run(check=True, state='planned', content=CONTENT)
    assert not failed and plan['changed'] and plan['diff']['after'] == CONTENT
    assert not module.state_dir.exists() and not module.live.exists()
    converge(module)
    failed, plan = module.run(check=True, state='planned', content=CONTENT.replace('dport 22', 'dport 2222'))
    assert plan['changed'] and plan['reason'] == 'changed' and (plan['added'], plan['removed']) == (1, 1)
    assert 'dport 22 ' in (module.state_dir / 'candidate.nft').read_text()  # the candidate on disk is untouched


def test_previous_table_is_saved_for_the_revert(module):
    converge(module)
    module.run(state='planned', content=CONTENT.replace('dport 22', 'dport 2222'))
    previous = (module.state_dir / 'previous.nft').read_text()
    assert previous.startswith('table inet dealerscope\ndelete table inet dealerscope\ntable inet dealerscope {')
    assert 'dport 22 accept' in previous and 'dport 2222' not in previous


def test_drift_is_found_and_planned_away(module):
    converge(module)
    module.live.write_text(module.live.read_text().replace('tcp dport 22 accept', 'tcp dport 22 accept\n\t\ttcp dport 9999 accept'))
    failed, facts = module.run(state='inspected')
    assert not failed and facts['drift'] and facts['confirmed'] and facts['table_present']
    failed, plan = module.run(state='planned', content=CONTENT)
    assert plan['changed'] and plan['reason'] == 'drift' and plan['removed'] == 1
    module.live.unlink()
    assert module.run(state='inspected')[1]['drift'] is True
    assert module.run(state='planned', content=CONTENT)[1]['reason'] == 'missing'


def test_a_ruleset_nft_refuses_fails_before_anything_is_written(module):
    failed, result = module.run(state='planned', content=CONTENT + '# SYNTAXERROR\n')
    assert failed and 'does not pass nft -c' in result['msg'] and 'syntax error' in result['msg']
    assert not module.state_dir.exists()


def test_content_for_another_table_is_refused(module):
    failed, result = module.run(state='planned', content=CONTENT.replace('dealerscope', 'filter'))
    assert failed and 'does not define table inet dealerscope' in result['msg']


def test_loading_without_a_plan_is_refused(module):
    failed, result = module.run(state='loaded')
    assert failed and 'run state=planned first' in result['msg']


def test_inspected_reports_the_ssh_source(module, monkeypatch):
    monkeypatch.setenv('SSH_CONNECTION', '10.213.48.1 50022 10.213.48.7 22')
    failed, facts = module.run(state='inspected')
    assert not failed and facts['ssh_client'] == '10.213.48.1' and facts['nftables'] is True
    assert facts['table_present'] is False and facts['confirmed'] is False and facts['drift'] is False
