# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The baseline role's SSH crypto policy through the real CLI, without a lab.

The role's preflight (which only reads) runs on this machine over a local connection and the sshd drop-in is
rendered into a temporary directory. What is proven: the drop-in restricts KexAlgorithms, Ciphers, MACs and
HostKeyAlgorithms to the configured lists as far as this OpenSSH supports them (``ssh -Q`` - so ML-KEM is written
only where OpenSSH has it, Debian 13's OpenSSH 10.0, and finite-field DH is left out there); a list the host
supports none of, and a crypto keyword smuggled in through baseline_ssh_extra_settings, are refused.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')

RENDER = """---
- name: Render the baseline sshd drop-in (the role's preflight only reads)
  hosts: all
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: dealerscope.ops.baseline
        tasks_from: preflight
        public: true
    - name: Drop-in
      ansible.builtin.template:
        src: {root}/roles/baseline/templates/sshd_dropin.conf.j2
        dest: "{{{{ out_dir }}}}/{{{{ inventory_hostname }}}}.conf"
        mode: "0600"
      delegate_to: localhost
"""

# What OpenSSH 10.0 (Debian 13) answers to ssh -Q kex: 9.2's list and ML-KEM.
FAKE_SSH_10 = """#!/bin/sh
if [ "$1" = "-Q" ] && [ "$2" = "kex" ]; then ssh -Q kex; echo mlkem768x25519-sha256; exit 0; fi
exec ssh "$@"
"""


def ssh_query(what):
    return subprocess.run(['ssh', '-Q', what], capture_output=True, text=True, check=True).stdout.split()


def render(tmp_path, hosts, *extra_args):
    (tmp_path / 'render.yml').write_text(RENDER.format(root=ROOT))
    inventory = {'all': {'hosts': dict((name, dict(ansible_connection='local', ansible_python_interpreter=sys.executable, **host_vars))
                                       for name, host_vars in hosts.items())}}
    (tmp_path / 'hosts.yml').write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0', NO_COLOR='1')
    result = subprocess.run([PLAYBOOK, '-i', str(tmp_path / 'hosts.yml'), str(tmp_path / 'render.yml'), '-e', 'out_dir=%s' % tmp_path,
                             *extra_args], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300, check=False)
    return result, dict((name, (tmp_path / ('%s.conf' % name)).read_text() if (tmp_path / ('%s.conf' % name)).exists() else None)
                        for name in hosts)


def keywords(dropin):
    return dict(line.split(' ', 1) for line in dropin.splitlines() if line and not line.startswith('#'))


def test_policy_is_written_as_far_as_this_openssh_supports_it_and_nonsense_is_refused(tmp_path):
    result, dropins = render(tmp_path, {
        'good': {},
        'unsupported': {'baseline_ssh_ciphers': ['aes128-cbc-of-the-future@example.org']},
        'smuggled': {'baseline_ssh_extra_settings': {'Ciphers': 'aes128-cbc'}},
    })
    output = result.stdout + result.stderr
    good = keywords(dropins['good'])
    kex = good['KexAlgorithms'].split(',')
    supported = ssh_query('kex')
    wanted = ['mlkem768x25519-sha256', 'sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org',
              'diffie-hellman-group-exchange-sha256']
    if 'mlkem768x25519-sha256' in supported:  # a Debian 13 controller: its release vars leave finite-field DH out
        wanted.remove('diffie-hellman-group-exchange-sha256')
    assert kex == [alg for alg in wanted if alg in supported], kex
    assert good['Ciphers'] == 'chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr'
    assert good['MACs'] == 'hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512,hmac-sha2-256'
    assert good['HostKeyAlgorithms'].split(',')[:3] == ['ssh-ed25519', 'ssh-ed25519-cert-v01@openssh.com', 'rsa-sha2-512']
    assert not any('nistp' in alg or 'sha1' in alg or 'umac-64' in alg for value in good.values() for alg in value.split(','))
    assert dropins['unsupported'] is None and dropins['smuggled'] is None
    assert 'refusing the SSH crypto policy on unsupported - its OpenSSH supports none of' in output, output[-3000:]
    assert 'baseline_ssh_ciphers []' in output
    assert 'baseline_ssh_extra_settings may not set KexAlgorithms, Ciphers, MACs or HostKeyAlgorithms' in output


def test_debian_13_gets_ml_kem_first_and_no_finite_field_dh(tmp_path):
    fake = tmp_path / 'ssh10'
    fake.write_text(FAKE_SSH_10)
    fake.chmod(0o755)
    result, dropins = render(tmp_path, {'trixie': {}}, '-e', '__baseline_ssh_client_bin=%s' % fake,
                             '-e', '@%s' % (ROOT / 'roles' / 'baseline' / 'vars' / 'Debian_13.yml'))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    kex = keywords(dropins['trixie'])['KexAlgorithms'].split(',')
    assert kex[0] == 'mlkem768x25519-sha256' and 'diffie-hellman-group-exchange-sha256' not in kex, kex
