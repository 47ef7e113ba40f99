#!/usr/bin/env bash
# ansible-test sanity on a clean copy of the collection (what git tracks plus new, unignored files),
# laid out as ansible_collections/dealerscope/ops as ansible-test requires.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/.venv/bin"
dest="$root/.build/sanity/ansible_collections/dealerscope/ops"
rm -rf "$dest"
mkdir -p "$dest"
cd "$root"
git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
cd "$dest"
git init -q . && git add -A >/dev/null 2>&1   # ansible-test lists files through git when present
# ansible-test bootstraps pip in each test venv from a script it downloads from a host that is
# unreachable here. Provide that cached script: it installs the stdlib's bundled pip (ensurepip),
# then asks that pip for the exact version ansible-test wants, from PyPI.
pip_version=$("$bin/python" - <<'PY'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent.joinpath('_internal', 'python_requirements.py').read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if ! grep -q "must not inherit" "$cache" 2>/dev/null; then
  mkdir -p "$(dirname "$cache")"
  cat >"$cache" <<'PY'
"""Offline stand-in for get-pip.py: bootstrap with ensurepip, then install the requested pip."""
import ensurepip
import os
import subprocess
import sys

env = dict(os.environ)
ensurepip.bootstrap()  # note: sets PIP_CONFIG_FILE=/dev/null in this process; the install below must not inherit it
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env))
PY
fi
exec "$bin/ansible-test" sanity --python 3.11 --color no "$@"
