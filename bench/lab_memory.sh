#!/usr/bin/env bash
# Memory used by the running lab fleet (podman stats), per host and in total.
set -euo pipefail
# shellcheck source=lab/bin/podman-conf.sh
. "$(cd "$(dirname "$0")/.." && pwd)/lab/bin/podman-conf.sh"
mapfile -t hosts < <(podman ps --filter label=dealerscope.lab=dslab --format '{{.Names}}')
[ ${#hosts[@]} -gt 0 ] || { echo "no lab hosts running (make lab)" >&2; exit 1; }
podman stats --no-stream --no-reset --format '{{.Name}} {{.MemUsage}}' "${hosts[@]}" |
python3 -c '
import re, sys
units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
total = 0
for line in sys.stdin:
    name, usage = line.split(" ", 1)
    num, unit = re.match(r"([0-9.]+)\s*([A-Za-z]+)", usage).groups()
    b = float(num) * units[unit]
    total += b
    print("%-6s %7.1f MiB" % (name, b / 1024**2))
print("total  %7.1f MiB (bar: 2048 MiB)" % (total / 1024**2))
'
