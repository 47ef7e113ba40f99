#!/usr/bin/env bash
# Provisioned lab images: one image per lab host (localhost/dealerscope-stack:<host>-<key>), committed
# from a fleet provisioned by lab/provision.yml, keyed by everything provisioning reads
# (lab/bin/stack_key.py). When the images for the current key exist this prints them and exits;
# otherwise it provisions a throwaway build fleet (lab/stack-build.yml, network dsbuild), commits it and
# keeps the controller-side state it was provisioned with (secrets, lab CA) next to them.
# `make lab` and Molecule's create start hosts from these images, so a stack is up in seconds.
# Output (stdout): "stack-key <key>", "stack-dir <dir>", then "current" or "built".
# Usage: lab/bin/stack-images.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lab/bin/podman-conf.sh
. "$here/podman-conf.sh"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/dealerscope-ops"
mkdir -p "$cache/stack"
export ANSIBLE_CONFIG="$root/ansible.cfg"
bin="$root/.venv/bin"
[ -x "$bin/ansible-playbook" ] || { echo "stack images: $bin/ansible-playbook is missing (make venv)" >&2; exit 2; }

# One builder at a time (two Molecule runs, or make lab while a scenario starts).
exec 9>"$cache/stack.lock"
flock -w 900 9 || { echo "stack images: another build holds $cache/stack.lock" >&2; exit 1; }

key=$(python3 "$here/stack_key.py")
dir="$cache/stack/$key"
mapfile -t hosts < <("$bin/ansible-inventory" -i "$root/inventories/lab" --graph dealerscope | sed -n 's/^[ |]*--\([a-z0-9-]*\)$/\1/p' | sort -u)
[ ${#hosts[@]} -gt 0 ] || { echo "stack images: no hosts in group dealerscope of inventories/lab" >&2; exit 2; }

echo "stack-key $key"
echo "stack-dir $dir"
complete=yes
[ -f "$dir/complete" ] || complete=no
for h in "${hosts[@]}"; do
  podman image exists "localhost/dealerscope-stack:$h-$key" || complete=no
done
if [ "$complete" = yes ] && [ "${1:-}" != --force ]; then
  echo current
  exit 0
fi

started=$(date +%s)
echo "stack images: provisioning a build fleet for key $key (once per change of what provisioning reads)" >&2
rm -rf "$dir"; mkdir -p "$dir/state"; chmod 0700 "$dir" "$dir/state"
log="$dir/build.log"
if ! "$bin/ansible-playbook" -i "$root/inventories/lab" "$root/lab/stack-build.yml" \
      -e "lab_state_dir=$dir/state" -e "lab_stack_key=$key" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "stack images: build failed (log $log)" >&2
  "$bin/ansible-playbook" -i "$root/inventories/lab" "$root/lab/down.yml" -e lab_name=dsbuild -e lab_network=dsbuild \
    -e "lab_state_dir=$dir/state" >/dev/null 2>&1 || true
  exit 1
fi
touch "$dir/complete"

# Older keys: their images and state go (images still used by a running container stay).
for old in "$cache"/stack/*/; do
  old_key=$(basename "$old")
  [ "$old_key" = "$key" ] && continue
  rm -rf "$old"
done
podman images --format '{{.Repository}}:{{.Tag}}' --filter reference=localhost/dealerscope-stack |
  grep -v -- "-$key\$" | xargs -r podman rmi >/dev/null 2>&1 || true
echo "stack images: built in $(( $(date +%s) - started )) s" >&2
echo built
