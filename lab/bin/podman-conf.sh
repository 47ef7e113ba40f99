#!/usr/bin/env bash
# Source this: points CONTAINERS_CONF at the lab's podman configuration in a per-user location that
# outlives any checkout (~/.config/dealerscope-ops/containers.conf), installing lab/containers.conf
# there when it differs. Podman's restart path (conmon's exit command, e.g. after `systemctl reboot`
# inside a lab host) reads CONTAINERS_CONF again: a path inside a deleted checkout leaves the host exited.
_dslab_conf_src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/containers.conf"
DSLAB_CONTAINERS_CONF="${HOME}/.config/dealerscope-ops/containers.conf"
if ! cmp -s "$_dslab_conf_src" "$DSLAB_CONTAINERS_CONF"; then
  install -D -m 0644 "$_dslab_conf_src" "$DSLAB_CONTAINERS_CONF"
fi
export CONTAINERS_CONF="$DSLAB_CONTAINERS_CONF" DSLAB_CONTAINERS_CONF
unset _dslab_conf_src
