#!/usr/bin/env bash
# Builds the Linux storage test host image (Debian bookworm: kernel, LVM, LIO/targetcli, open-iscsi,
# sshd) with debootstrap, and caches it between runs on the same machine.
#
# Output (in $TESTHOST_CACHE_DIR, default /var/cache/cinderts-testhost — /var/cache survives reboots
# and /tmp cleaners, so consecutive CI runs on one machine reuse the image):
#   image-<hash>/base.raw     whole-disk ext4 root file system (no partition table, no bootloader)
#   image-<hash>/vmlinuz, initrd.img, versions.txt
#   current -> image-<hash>
# <hash> covers every input of the image: the recipe guest/make-image.sh, the package list and the files
# it installs (all of guest/), and the mirror; when one changes, the next run rebuilds. FORCE=1 rebuilds anyway. The image holds no SSH host key, authorized key or iSCSI
# initiator name: boot.sh injects fresh ones per boot through a seed disk (guest/cinderts-seed.sh).
#
# Usage: build.sh            build if needed, print the image directory
#        build.sh --path     print the image directory the current inputs map to (no build)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${TESTHOST_CACHE_DIR:-/var/cache/cinderts-testhost}"
MIRROR="${TESTHOST_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[testhost build] %s\n' "$*" >&2; }
die() { printf '[testhost build] ERROR: %s\n' "$*" >&2; exit 1; }

inputs_hash() {
  # Sorted file list so the hash does not depend on directory order.
  {
    printf 'mirror=%s\n' "$MIRROR"
    (cd "$HERE" && find guest -type f | LC_ALL=C sort | xargs sha256sum)
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
"$HERE/guest/make-image.sh" "$WORK" "$CACHE/debs" "$MIRROR"
OUT="$WORK/out"
touch "$OUT/.complete"

# Swap in atomically, then drop images of older inputs (each is ~800 MiB allocated).
rm -rf "$IMG"
mv "$OUT" "$IMG"
ln -sfn "image-$HASH" "$CACHE/current"
for old in "$CACHE"/image-*; do
  [[ "$old" == "$IMG" ]] && continue
  # A test host still booted from an older image keeps it open; leave that one alone.
  # (find complains about processes that exit while it looks; only its output counts)
  holders="$(find /proc/[0-9]*/fd -lname "$old/*" -print -quit 2>/dev/null || true)"
  [[ -n "$holders" ]] && continue
  rm -rf "$old"
done
log "image $IMG built in $(( $(date +%s) - t0 )) s"
cat "$IMG/versions.txt" >&2
echo "$IMG"
