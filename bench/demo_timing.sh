#!/usr/bin/env bash
# Time `make demo` from a fresh clone: cold (lab base images, provisioned stack images and the cached
# virtualenv absent), warm-newlab (all present, lab removed first: `make lab-down`, then `make demo`), warm (both present and the lab already
# running, e.g. from an earlier clone), then a re-run in the same clone. Tears down any running lab first.
# Usage: bench/demo_timing.sh [cold|warm-newlab|warm|rerun|all]   Output: one line per measurement.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
work=$(mktemp -d /var/tmp/dsbench.XXXXXX)
# shellcheck source=lab/bin/podman-conf.sh
. "$src/lab/bin/podman-conf.sh"
trap 'cd "$src"; [ -d "$work/clone" ] && make -C "$work/clone" lab-down >/dev/null 2>&1; rm -rf "$work"' EXIT

down_everywhere() {
  podman ps -a --filter label=dealerscope.lab=dslab --format '{{.Names}}' | xargs -r podman rm -f >/dev/null
  podman network rm -f dslab >/dev/null 2>&1 || true
}
clone() { rm -rf "$work/clone"; git clone -q "$src" "$work/clone"; }
timed() {  # label, command...
  local label=$1; shift
  local t0 t1; t0=$(date +%s%N)
  "$@" >"$work/$label.log" 2>&1 || { echo "$label: FAILED (log kept: $work/$label.log)"; tail -n 20 "$work/$label.log"; trap - EXIT; exit 1; }
  t1=$(date +%s%N)
  printf '%-11s make demo: %6.1f s\n' "$label" "$(( (t1 - t0) / 1000000 ))e-3"
}

if [ "$what" = cold ] || [ "$what" = all ]; then
  down_everywhere; clone
  for r in debian12 debian13; do podman rmi -f "localhost/dealerscope-lab:$r" >/dev/null 2>&1 || true; done
  podman images -q --filter reference=localhost/dealerscope-stack | xargs -r podman rmi -f >/dev/null 2>&1 || true
  rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/dealerscope-ops"   # the shared virtualenv and provisioned images' state too
  timed cold make -C "$work/clone" demo
fi
if [ "$what" = warm-newlab ] || [ "$what" = all ]; then
  down_everywhere; clone
  timed warm-newlab make -C "$work/clone" demo
fi
if [ "$what" = warm ] || [ "$what" = all ]; then
  podman container exists lb1 || { clone; make -C "$work/clone" demo >/dev/null 2>&1; }
  clone
  timed warm make -C "$work/clone" demo
fi
if [ "$what" = rerun ] || [ "$what" = all ]; then
  [ -d "$work/clone" ] || { clone; make -C "$work/clone" demo >/dev/null 2>&1; }
  timed rerun make -C "$work/clone" demo
fi
