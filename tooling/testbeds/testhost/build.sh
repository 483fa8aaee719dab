#!/usr/bin/env bash
# Builds the Linux storage test host image (Debian bookworm: kernel, LVM, LIO/targetcli, open-iscsi,
# sshd) with debootstrap, and caches it between runs on the same machine.
#
# Output (in $TESTHOST_CACHE_DIR, default /var/cache/cinderts-testhost — /var/cache survives reboots
# and /tmp cleaners, so consecutive CI runs on one machine reuse the image):
#   image-<hash>/base.raw     whole-disk ext4 root file system (no partition table, no bootloader)
#   image-<hash>/vmlinuz, initrd.img, versions.txt
#   current -> image-<hash>
# <hash> covers every input of the build (this script and guest/*); when one changes, the next run
# rebuilds. FORCE=1 rebuilds anyway. The image holds no SSH host key, authorized key or iSCSI
# initiator name: boot.sh injects fresh ones per boot through a seed disk (guest/cinderts-seed.sh).
#
# Usage: build.sh            build if needed, print the image directory
#        build.sh --path     print the image directory the current inputs map to (no build)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${TESTHOST_CACHE_DIR:-/var/cache/cinderts-testhost}"
SUITE=bookworm
MIRROR="${TESTHOST_MIRROR:-http://deb.debian.org/debian}"
IMAGE_SIZE=6G

log() { printf '[testhost build] %s\n' "$*" >&2; }
die() { printf '[testhost build] ERROR: %s\n' "$*" >&2; exit 1; }

inputs_hash() {
  # Sorted file list so the hash does not depend on directory order.
  {
    printf 'suite=%s mirror=%s size=%s\n' "$SUITE" "$MIRROR" "$IMAGE_SIZE"
    (cd "$HERE" && find build.sh guest -type f | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
}

HASH="$(inputs_hash)"
IMG="$CACHE/image-$HASH"

if [[ "${1:-}" == "--path" ]]; then
  echo "$IMG"
  exit 0
fi

[[ $EUID -eq 0 ]] || die "must run as root (debootstrap, chroot)"

mkdir -p "$CACHE"
# One builder at a time per cache; a second caller waits and then finds the finished image.
exec 9>"$CACHE/.build.lock"
flock 9

if [[ -f "$IMG/.complete" && "${FORCE:-0}" != 1 ]]; then
  log "cached image $IMG (inputs unchanged)"
  ln -sfn "image-$HASH" "$CACHE/current"
  echo "$IMG"
  exit 0
fi

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
[[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || need+=(debian-archive-keyring)
if ((${#need[@]})); then
  log "installing host packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
fi

t0=$(date +%s)
WORK="$CACHE/work-$HASH"
ROOTFS="$WORK/rootfs"
cleanup() {
  # A failed build must not leave a half-populated tree (or stray mounts) behind.
  for m in proc sys dev; do mountpoint -q "$ROOTFS/$m" 2>/dev/null && umount -l "$ROOTFS/$m" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$WORK" "$CACHE/debs"

PKGS="$(grep -v '^\s*#' "$HERE/guest/packages.txt" | xargs | tr ' ' ',')"
log "debootstrap $SUITE ($MIRROR), packages: $PKGS"
# --cache-dir keeps the downloaded .debs, so a rebuild after an input change does not fetch again.
debootstrap --variant=minbase --include="$PKGS" --cache-dir="$CACHE/debs" \
  "$SUITE" "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
t1=$(date +%s)
log "debootstrap done in $((t1 - t0)) s"

# --- configuration (plain file edits plus chroot systemctl/useradd; nothing runs in the guest) ---
echo testhost > "$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\ttesthost\n' > "$ROOTFS/etc/hosts"
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0 1\n' > "$ROOTFS/etc/fstab"

install -m 644 "$HERE/guest/20-dhcp.network" "$ROOTFS/etc/systemd/network/20-dhcp.network"
install -m 644 "$HERE/guest/storage-modules.conf" "$ROOTFS/etc/modules-load.d/storage.conf"
install -m 644 "$HERE/guest/sshd-cinderts.conf" "$ROOTFS/etc/ssh/sshd_config.d/cinderts.conf"
install -m 755 "$HERE/guest/cinderts-seed.sh" "$ROOTFS/usr/local/sbin/cinderts-seed"
install -m 644 "$HERE/guest/cinderts-seed.service" "$ROOTFS/etc/systemd/system/cinderts-seed.service"

# Serial autologin: root's shell on console.log helps when a boot goes wrong.
mkdir -p "$ROOTFS/etc/systemd/system/serial-getty@ttyS0.service.d"
cat > "$ROOTFS/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF

# An unprivileged login with passwordless sudo, for the runners' "sudo -n --" mode.
chroot "$ROOTFS" useradd --create-home --shell /bin/bash cinder
echo 'cinder ALL=(ALL) NOPASSWD: ALL' > "$ROOTFS/etc/sudoers.d/cinder"
chmod 440 "$ROOTFS/etc/sudoers.d/cinder"

chroot "$ROOTFS" systemctl enable systemd-networkd cinderts-seed.service serial-getty@ttyS0.service >/dev/null 2>&1
chroot "$ROOTFS" systemctl mask systemd-networkd-wait-online.service systemd-timesyncd.service \
  apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1

# Identity must not be baked in: every boot gets its own (seed disk), see guest/cinderts-seed.sh.
rm -f "$ROOTFS"/etc/ssh/ssh_host_* "$ROOTFS/etc/iscsi/initiatorname.iscsi"
: > "$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb

chroot "$ROOTFS" dpkg-query -W -f '${Package} ${Version}\n' \
  linux-image-amd64 lvm2 thin-provisioning-tools targetcli-fb python3-rtslib-fb open-iscsi openssh-server \
  > "$WORK/versions.txt"
KVER="$(ls "$ROOTFS/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)"
[[ -n "$KVER" ]] || die "no kernel in rootfs/boot"
echo "kernel $KVER" >> "$WORK/versions.txt"

# --- image: mkfs.ext4 -d needs neither a loop device nor device-mapper (absent on this kernel) ---
OUT="$WORK/out"
mkdir -p "$OUT"
cp "$ROOTFS/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
cp "$ROOTFS/boot/initrd.img-$KVER" "$OUT/initrd.img"
cp "$WORK/versions.txt" "$OUT/versions.txt"
truncate -s "$IMAGE_SIZE" "$OUT/base.raw"
mkfs.ext4 -q -F -L testroot -E root_owner=0:0 -d "$ROOTFS" "$OUT/base.raw"
t2=$(date +%s)
printf 'build_seconds=%s debootstrap_seconds=%s built_at=%s\n' "$((t2 - t0))" "$((t1 - t0))" "$(date -u +%FT%TZ)" \
  > "$OUT/build-info.txt"
touch "$OUT/.complete"

# Swap in atomically, then drop images of older inputs (each is ~800 MiB allocated).
rm -rf "$IMG"
mv "$OUT" "$IMG"
ln -sfn "image-$HASH" "$CACHE/current"
for old in "$CACHE"/image-*; do
  [[ "$old" == "$IMG" ]] && continue
  # A test host still booted from an older image keeps it open; leave that one alone.
  if find /proc/[0-9]*/fd -lname "$old/*" -print -quit 2>/dev/null | grep -q .; then continue; fi
  rm -rf "$old"
done
log "image $IMG built in $((t2 - t0)) s"
cat "$IMG/versions.txt" >&2
echo "$IMG"
