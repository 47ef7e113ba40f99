#!/usr/bin/env bash
# Rolling patch of the two lab app hosts under 20 req/s through lb1: wall time of the playbook, how much
# of it apt itself took on the hosts (the floor: the hosts go one at a time), and the failed requests.
# Needs the running lab (make lab provision); installs the lab apt repository (lab/repo.yml) if missing
# and puts app1/app2 back to the 1.0 packages before each run. Usage: bench/patch.sh [runs, default 1]
set -euo pipefail
# shellcheck source=bench/lab_env.sh
source "$(dirname "$0")/lab_env.sh"
runs=${1:-1}
ansible-playbook lab/repo.yml >/dev/null
for run in $(seq "$runs"); do
  echo "run $run"
  ansible app -m ansible.builtin.shell -a "apt-mark unhold dslab-tools >/dev/null; apt-get install -y -q --allow-downgrades \
    dslab-libdemo=1.0 dslab-tools=1.0 dslab-kernel-stub=1.0 >/dev/null 2>&1 && rm -f /run/reboot-required /run/reboot-required.pkgs \
    /etc/ansible/facts.d/dealerscope_patching.fact && systemctl restart dealerscope-api" >/dev/null
  rm -f .build/bench-load.stop .build/bench-load.json .build/bench-load.ready
  mkdir -p .build
  python3 tests/helpers/load.py 'https://127.0.0.1:8443/api/vehicles?limit=5' --rate 20 --seconds 300 --ca .lab/ca/ca.pem \
    --until-file .build/bench-load.stop --out .build/bench-load.json --ready-file .build/bench-load.ready >/dev/null 2>&1 &
  # Patching starts once the first request through the LB has completed (a condition, not a sleep).
  for _ in $(seq 1 300); do [ -f .build/bench-load.ready ] && break; sleep 0.2; done
  [ -f .build/bench-load.ready ] || { echo "load generator never completed a request" >&2; exit 1; }
  t0=$(ms); status=0
  ansible-playbook dealerscope.ops.patch -e patching_group=app -e patching_mode=full >.build/bench-patch.log 2>&1 || status=$?
  t1=$(ms)
  touch .build/bench-load.stop; wait || true
  python3 - "$root" "$(( t1 - t0 ))" "$status" <<'PY'
import json, pathlib, sys
root, wall_ms, status = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
report = json.loads((root / "reports" / "patch" / "latest" / "report.json").read_text())
load = json.loads((root / ".build" / "bench-load.json").read_text())
apt = report["meta"]["apt_seconds"]
hosts = {h: {c["name"]: c["value"] for c in v["checks"]} for h, v in report["hosts"].items()}
print("exit %d; wall %.1f s; apt on the hosts %.1f s (%.0f %%); orchestration + reboots %.1f s" % (
    status, wall_ms / 1000, apt, 100 * apt / (wall_ms / 1000), wall_ms / 1000 - apt))
for host, checks in sorted(hosts.items()):
    print("  %s: upgraded %s, reboot %s s, out of pool %s s" % (host, checks.get("upgrade"), checks.get("reboot"), checks.get("pool")))
print("load: sent %d, ok %d, failed %d, skipped %d, p95 %s ms" % (load["sent"], load["ok"], load["failed"], load["skipped"], load["p95_ms"]))
PY
done
