#!/usr/bin/env bash
# The daily runbook over the 5-host lab and over the lab grown to N hosts (lab/scale.yml: lightweight fleet hosts),
# median wall time of each, per forks setting, and the ratio (issue 9's bar: N=50 within 4x the 5-host time).
# Usage: [SCALE_CACHE=warm|cold] bench/scale.sh [hosts, default 50] [runs, default 3] ["forks settings", default "10 50"]
#        [extra -e for daily]
# On this 2-core machine the fleet's own work runs on the controller's cores too: each run is measured by
# bench/cpu_split.py - wall time, the controller's CPU (ansible-playbook and what it starts) and the hosts' CPU (the lab
# containers' cgroups) - and the ratios of all three are printed.
# SCALE_CACHE=warm (default) measures repeated runs: host_health answers pending updates from its cache on each host
# (apt's state is unchanged between runs). SCALE_CACHE=cold deletes that cache on every host before each measured run
# (outside the timing), as after an apt-get update: every host runs apt-get -s dist-upgrade (~0.3 s of CPU each).
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
cache=${SCALE_CACHE:-warm}
case $cache in warm|cold) ;; *) echo "SCALE_CACHE must be warm or cold, not $cache" >&2; exit 2;; esac
daily() {  # forks, inventory args... -> one JSON line of bench/cpu_split.py
  local forks=$1; shift
  if [ "$cache" = cold ]; then
    ansible "$@" dealerscope -f 20 -m ansible.builtin.file -a "path=/var/cache/dealerscope-ops/updates.json state=absent" >/dev/null
  fi
  ANSIBLE_FORKS=$forks python3 bench/cpu_split.py ansible-playbook "$@" dealerscope.ops.daily -e daily_fail_on=never -e "$extra" \
    -e '{"daily_notify_channels": []}' -e "daily_notify_state_dir=$root/.lab/scale/notify"
}
hosts_in() { ansible "$@" dealerscope --list-hosts | tail -n +2 | wc -l; }
echo "hosts: $(hosts_in "${small[@]}") and $(hosts_in "${large[@]}")"
for forks in $forks_list; do
  daily "$forks" "${small[@]}" >/dev/null; daily "$forks" "${large[@]}" >/dev/null   # warm-up (cursors, SSH masters)
  a=(); b=()
  for _ in $(seq "$runs"); do a+=("$(daily "$forks" "${small[@]}")"); b+=("$(daily "$forks" "${large[@]}")"); done
  python3 - "$forks" "$hosts" "$cache" "${#a[@]}" "${a[@]}" "${b[@]}" <<'PY'
import json, statistics, sys
forks, hosts, cache, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runs = [json.loads(line) for line in sys.argv[5:]]
small, large = runs[:n], runs[n:]
med = lambda rows, key: statistics.median(row[key] for row in rows) / 1000
parts = []
for key, label in (("wall_ms", "wall"), ("controller_cpu_ms", "controller CPU"), ("hosts_cpu_ms", "hosts' CPU")):
    parts.append("%s %.1f s -> %.1f s (%.2fx)" % (label, med(small, key), med(large, key), med(large, key) / med(small, key)))
print("forks %s, updates cache %s, 5 -> %s hosts: %s" % (forks, cache, hosts, "; ".join(parts)))
PY
done

