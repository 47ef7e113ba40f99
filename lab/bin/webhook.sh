#!/usr/bin/env bash
# The lab's webhook receiver on 127.0.0.1:8765 (records what runbooks notify; GET /messages).
# Usage: lab/bin/webhook.sh start|stop|status
# LAB_WEBHOOK_FILE: where the receiver records (default .lab/webhooks.jsonl; Molecule: .build/webhooks.jsonl).
# `start` prints "already answers" when this checkout's receiver runs and still records, else "started".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
file=${LAB_WEBHOOK_FILE:-$root/.lab/webhooks.jsonl}
state=$(dirname "$file")
pidfile="$state/webhook.pid"
port=${LAB_WEBHOOK_PORT:-8765}
# LAB_WEBHOOK_HOST: 127.0.0.1, or a lab network's gateway (10.213.48.1) for lab hosts that notify themselves.
host=${LAB_WEBHOOK_HOST:-127.0.0.1}
case "${1:-status}" in
  start)
    # Reuse a running receiver only if it records into this checkout's file and still can (one started
    # from a deleted checkout answers GET but fails every POST); ask any other to stop.
    health=$(curl -fsS "http://${host}:${port}/health" 2>/dev/null || true)
    if [ -n "$health" ]; then
      if printf '%s' "$health" | python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(0 if h.get("file") == sys.argv[1] and h.get("writable") else 1)' "$file"; then
        echo "webhook receiver already answers on ${host}:${port}"; exit 0
      fi
      curl -fsS -o /dev/null -X POST "http://${host}:${port}/shutdown" 2>/dev/null || true
      for _ in $(seq 50); do curl -fsS -o /dev/null "http://${host}:${port}/messages" 2>/dev/null || break; sleep 0.2; done
    fi
    if curl -fsS -o /dev/null "http://${host}:${port}/messages" 2>/dev/null; then
      echo "${host}:${port} is held by a webhook receiver that does not record into $file (an older one without /health or /shutdown?): stop it first" >&2; exit 1
    fi
    mkdir -p "$state"
    nohup python3 "$root/lab/webhook_receiver.py" "$port" "$file" "$host" >"$state/webhook.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do curl -fsS -o /dev/null "http://${host}:${port}/messages" 2>/dev/null && { echo "webhook receiver started on ${host}:${port}"; exit 0; }; sleep 0.1; done
    echo "webhook receiver did not start (see $state/webhook.log)" >&2; exit 1 ;;
  stop)
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi ;;
  status)
    curl -fsS "http://${host}:${port}/messages" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)), "messages recorded")' ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
