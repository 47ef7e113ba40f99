#!/usr/bin/env bash
# Printed at the end of `make demo`: what ran and where to look.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cat <<TXT

DealerScope lab demo - done.
  Fleet (podman, network dslab 10.213.47.0/24, SSH on 127.0.0.1):
$(podman ps --filter label=dealerscope.lab=dslab --format '    {{.Names}}\t{{.Status}}\t{{.Ports}}' 2>/dev/null)
  API through the load balancer:  curl --cacert .lab/ca/ca.pem https://127.0.0.1:8443/api/vehicles?limit=3
  Daily report:                   ${root}/reports/daily/latest/report.html (and report.md, report.json)
  Backup report (three regions):  ${root}/reports/backup/latest/report.html
  Object storage (moto + nginx):  lab/bin/s3.sh status   (LAB_S3_DIR=.lab/s3)
  A restore test, a DR drill:     .venv/bin/ansible-playbook dealerscope.ops.restore_test   (then dealerscope.ops.dr_drill)
  Notifications sent (receiver):  curl -s http://127.0.0.1:8765/messages
  Run a runbook yourself:         .venv/bin/ansible-playbook dealerscope.ops.daily
  SSH to a host:                  ssh -F /dev/null -i .lab/id_ed25519 -o UserKnownHostsFile=.lab/known_hosts -p 2222 root@127.0.0.1
  Lab state (key, known_hosts, CA, generated secrets): ${root}/.lab/
  Tear down:                      make lab-down
TXT
