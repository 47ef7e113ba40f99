#!/usr/bin/env bash
# Backup and restore throughput on a database grown to SIZE_MB (default 1024), and the restore test's restore step
# against the bare restore command on the same backup (the floor). Uses Molecule scenario dr's hosts and the lab's
# object storage (created and converged here; destroyed at the end unless KEEP=1).
# Usage: bench/restore.sh [size_mb]     Output: the figures, and tests/output/bench/restore.json
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH CONTAINERS_CONF=${CONTAINERS_CONF:-$HOME/.config/dealerscope-ops/containers.conf}
size=${1:-1024}
molecule destroy -s dr >/dev/null 2>&1 || true
molecule create -s dr >/dev/null 2>&1
molecule converge -s dr >/dev/null 2>&1
eph=""
for dir in "$HOME"/.ansible/tmp/molecule.*.dr; do [ -f "$dir/instance_config.yml" ] && eph=$dir; done
[ -n "$eph" ] || { echo "no ephemeral directory of scenario dr" >&2; exit 1; }
export MOLECULE_EPHEMERAL_DIRECTORY=$eph MOLECULE_INVENTORY_FILE=$eph/inventory/ansible_inventory.yml \
  MOLECULE_SCENARIO_DIRECTORY=$PWD/molecule/dr MOLECULE_PROJECT_DIRECTORY=$PWD
status=0
python3 bench/restore.py "$size" || status=$?
[ "${KEEP:-0}" = 1 ] || molecule destroy -s dr >/dev/null
exit "$status"
