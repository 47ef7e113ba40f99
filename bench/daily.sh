#!/usr/bin/env bash
# Wall time of the daily runbook on the running lab (warm: lab up, previous run done), and the
# module executions per host it records in its report. Usage: bench/daily.sh [runs, default 3]
# Bars (issue 3): <= 10 s on the 5-host lab, <= 6 module executions per host.
set -euo pipefail
# shellcheck source=bench/lab_env.sh
source "$(dirname "$0")/lab_env.sh"
runs=${1:-3}
t0=$(ms); ansible dealerscope -m ansible.builtin.ping -o >/dev/null; t1=$(ms)
echo "one SSH round trip to every lab host (ansible dealerscope -m ping): $(( t1 - t0 )) ms"
ansible-playbook dealerscope.ops.daily -e daily_fail_on=never >/dev/null 2>&1 || true   # warm-up (cursors, connections)
times=()
for i in $(seq "$runs"); do
  t0=$(ms); ansible-playbook dealerscope.ops.daily -e daily_fail_on=never >/dev/null 2>&1; t1=$(ms)
  times+=($(( t1 - t0 )))
  echo "daily run $i: $(( t1 - t0 )) ms"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "median: $(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p") ms over $runs runs"
python3 - "$root" <<'PY'
import json, pathlib, sys
report = json.loads(pathlib.Path(sys.argv[1], "reports", "daily", "latest", "report.json").read_text())
ex = report["meta"]["module_executions"]
print("module executions per host (+1 http_probe, +1 ops_report, +1 ops_notify on the controller):", ex, "max", max(ex.values()))
print("report status:", report["status"], "- checks:", report["summary"]["checks"])
PY
