#!/usr/bin/env bash
# Build one DealerScope lab base image from Debian's archive: debootstrap, then `podman import`.
# Usage: lab/images/build.sh debian12|debian13 [--force]
# The image is rebuilt only when its recipe (this script + packages.txt + release) changes:
# the recipe hash is stored as the image label dealerscope.recipe.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
release=${1:-}
force=${2:-}
case "$release" in
  debian12) suite=bookworm ;;
  debian13) suite=trixie ;;
  *) echo "lab image: unknown Debian release '${release}' (known: debian12, debian13)" >&2; exit 2 ;;
esac
# shellcheck source=lab/bin/podman-conf.sh
. "$here/../bin/podman-conf.sh"
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${LAB_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
image="localhost/dealerscope-lab:${release}"
recipe=$( (cat "$here/build.sh" "$here/packages.txt"; echo "$suite $mirror $security_mirror") | sha256sum | cut -c1-16)

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "lab image: '$tool' is missing (apt-get install $tool)" >&2; exit 2; }
done

current=$(podman image inspect --format '{{ index .Labels "dealerscope.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe" ] && [ "$force" != "--force" ]; then
  echo "lab image ${image} is current (recipe ${recipe})"
  exit 0
fi

work=$(mktemp -d /var/tmp/dslab-image.XXXXXX)
root="$work/rootfs"
cleanup() {
  if mountpoint -q "$root/proc"; then umount -l "$root/proc"; fi
  rm -rf "$work"
}
trap cleanup EXIT

pkgs=$(grep -v -e '^#' -e '^$' "$here/packages.txt")
base="systemd,systemd-sysv,dbus,python3,openssh-server,sudo"
echo "lab image: debootstrap ${suite} into ${root}"
debootstrap --variant=minbase --include="$base" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2; echo "lab image: debootstrap ${suite} failed" >&2; exit 1; }

# Second stage: the rest of the package set, with service starts disabled inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
# Sources as a real Debian host has them: the release, its point-release updates and its security
# suite (lynis PKGS-7388; host_health classifies "-security" origins as security updates).
cat >"$root/etc/apt/sources.list" <<SRC
deb ${mirror} ${suite} main
deb ${mirror} ${suite}-updates main
deb ${security_mirror} ${suite}-security main
SRC
chroot "$root" apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends $pkgs >"$work/apt.log" 2>&1 || {
  tail -n 30 "$work/apt.log" >&2; echo "lab image: package install failed" >&2; exit 1; }
# debootstrap installs the release's original versions: bring everything to today's security level.
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get dist-upgrade -y -qq >>"$work/apt.log" 2>&1 || {
  tail -n 30 "$work/apt.log" >&2; echo "lab image: upgrade failed" >&2; exit 1; }
umount "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"

# Per-container identity: host keys and machine-id are generated at first boot, not baked in.
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
cat >"$root/etc/systemd/system/lab-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable lab-ssh-hostkeys.service ssh.service >/dev/null 2>&1
# Cached stack packages stay off until a role enables them where they belong.
chroot "$root" systemctl disable nginx.service haproxy.service postgresql.service >/dev/null 2>&1
# Nothing to do on a console in a container.
for unit in getty@tty1.service console-getty.service systemd-firstboot.service; do
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
chroot "$root" passwd -l root >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/tmp/* "$root"/var/log/*.log

echo "lab image: importing ${image}"
tar -C "$root" --numeric-owner -cf - . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL dealerscope.recipe=${recipe}" \
  --change "LABEL dealerscope.release=${release}" \
  - "$image" >/dev/null 2>&1
echo "lab image ${image} built (recipe ${recipe})"
