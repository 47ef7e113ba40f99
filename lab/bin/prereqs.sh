#!/usr/bin/env bash
# Make sure the Debian packages the lab and the test suite need (lab/prereqs.txt) are present.
# As root, missing ones are installed; otherwise one line names what to install.
set -euo pipefail
list="$(cd "$(dirname "$0")/.." && pwd)/prereqs.txt"
mapfile -t need < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')
missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "prerequisites missing: run 'sudo apt-get install -y ${missing[*]}' (or run make as root)" >&2
  exit 2
fi
echo "installing prerequisites: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
