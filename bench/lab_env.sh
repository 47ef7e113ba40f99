# Sourced by the lab benchmarks: run from the repo root against the running lab with the project's
# podman config, ansible.cfg and venv; ms prints milliseconds since the epoch.
# shellcheck shell=bash
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=lab/bin/podman-conf.sh
. "$root/lab/bin/podman-conf.sh"
export ANSIBLE_CONFIG="$root/ansible.cfg" PATH="$root/.venv/bin:$PATH"
ms() { date +%s%N | cut -c1-13; }
