#!/usr/bin/env bash
# The daily runbook over the 5-host lab and over the lab grown to N hosts (lab/scale.yml: lightweight fleet hosts),
# median wall time of each, per forks setting, and the ratio (issue 9's bar: N=50 within 4x the 5-host time).
# Usage: bench/scale.sh [hosts, default 50] [runs, default 3] ["forks settings", default "10 50"] [extra -e for daily]
# On this 2-core machine the fleet's own work (apt-get -s dist-upgrade, ~0.4 s of CPU per host) runs on the controller's
# cores too: "daily_check_updates=false" as the fourth argument shows the controller's side alone.
set -euo pipefail
# shellcheck source=bench/lab_env.sh
source "$(dirname "$0")/lab_env.sh"
hosts=${1:-50}
runs=${2:-3}
forks_list=${3:-"10 50"}
extra=${4:-"daily_fail_on=never"}
ansible-playbook lab/scale.yml -e "lab_hosts=$hosts" >/dev/null
small=(-i inventories/lab)
large=(-i inventories/lab -i .lab/scale/hosts.yml)
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
daily() {  # forks, inventory args... -> milliseconds of one run
  local forks=$1 t0 t1; shift
  t0=$(ms)
  ANSIBLE_FORKS=$forks ansible-playbook "$@" dealerscope.ops.daily -e daily_fail_on=never -e "$extra" -e '{"daily_notify_channels": []}' \
    -e "daily_notify_state_dir=$root/.lab/scale/notify" >/dev/null 2>&1 || true
  t1=$(ms)
  echo $(( t1 - t0 ))
}
hosts_in() { ansible "$@" dealerscope --list-hosts | tail -n +2 | wc -l; }
echo "hosts: $(hosts_in "${small[@]}") and $(hosts_in "${large[@]}")"
for forks in $forks_list; do
  daily "$forks" "${small[@]}" >/dev/null; daily "$forks" "${large[@]}" >/dev/null   # warm-up (cursors, SSH masters)
  a=(); b=()
  for _ in $(seq "$runs"); do a+=("$(daily "$forks" "${small[@]}")"); b+=("$(daily "$forks" "${large[@]}")"); done
  ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
  python3 -c "import sys; a, b = int(sys.argv[2]), int(sys.argv[3]); print('forks %s: 5 hosts %.1f s, %s hosts %.1f s, ratio %.2f' % (sys.argv[1], a / 1000, sys.argv[4], b / 1000, b / a))" \
    "$forks" "$ma" "$mb" "$hosts"
done
