# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render a Jinja expression through the real `ansible` CLI with the repository's ansible.cfg.

This proves a filter loads by its FQCN from the collections path users get (``.build/collections``), and that it
copes with what Ansible's templating passes in (lazy containers, tagged strings, YAML dates).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')


def render(expression, extra_vars_file=None):
    """Return (value, output): the expression's value (None if the run failed) and the CLI output."""
    command = [ANSIBLE, 'localhost', '-m', 'ansible.builtin.debug', '-a', 'msg=RESULT={{ (%s) | to_json | b64encode }}' % expression]
    if extra_vars_file:
        command[2:2] = ['-e', '@%s' % extra_vars_file]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    match = re.search(r'RESULT=([A-Za-z0-9+/=]+)', proc.stdout)
    if proc.returncode != 0 or not match:
        return None, output
    return json.loads(base64.b64decode(match.group(1)).decode('utf-8')), output
