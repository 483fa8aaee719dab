#!/usr/bin/env bash
# The image recipe: debootstrap, configuration, kernel/initrd copy-out, mkfs.ext4 -d. Called by build.sh
# with a scratch folder; everything in guest/ (this file included) is hashed into the cache key, so a
# change here rebuilds the image, while edits to build.sh's caching mechanics do not.
#   make-image.sh WORK DEBS_CACHE MIRROR   -> WORK/out/{base.raw,vmlinuz,initrd.img,versions.txt,build-info.txt}
set -euo pipefail
GUEST="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$1"
DEBS="$2"
MIRROR="$3"
SUITE=bookworm
IMAGE_SIZE=6G
ROOTFS="$WORK/rootfs"
log() { printf '[testhost build] %s\n' "$*" >&2; }
die() { printf '[testhost build] ERROR: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s)

PKGS="$(grep -v '^\s*#' "$GUEST/packages.txt" | xargs | tr ' ' ',')"
log "debootstrap $SUITE ($MIRROR), packages: $PKGS"
# --cache-dir keeps the downloaded .debs, so a rebuild after an input change does not fetch again.
debootstrap --variant=minbase --include="$PKGS" --cache-dir="$DEBS" \
  "$SUITE" "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
t1=$(date +%s)
log "debootstrap done in $((t1 - t0)) s"

# --- configuration (plain file edits plus chroot systemctl/useradd; nothing runs in the guest) ---
echo testhost > "$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\ttesthost\n' > "$ROOTFS/etc/hosts"
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0 1\n' > "$ROOTFS/etc/fstab"

install -m 644 "$GUEST/20-dhcp.network" "$ROOTFS/etc/systemd/network/20-dhcp.network"
install -m 644 "$GUEST/storage-modules.conf" "$ROOTFS/etc/modules-load.d/storage.conf"
install -m 644 "$GUEST/sshd-cinderts.conf" "$ROOTFS/etc/ssh/sshd_config.d/cinderts.conf"
install -m 755 "$GUEST/cinderts-seed.sh" "$ROOTFS/usr/local/sbin/cinderts-seed"
install -m 644 "$GUEST/cinderts-seed.service" "$ROOTFS/etc/systemd/system/cinderts-seed.service"

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
# tgt ships enabled and would take 0.0.0.0:3260 from LIO: tests start their own tgtd on other ports.
chroot "$ROOTFS" systemctl mask systemd-networkd-wait-online.service systemd-timesyncd.service \
  apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  nvmf-autoconnect.service tgt.service >/dev/null 2>&1

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

