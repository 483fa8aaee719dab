#!/bin/sh
# Gives this boot its own identity before sshd and iscsid start: SSH host key, authorized keys and
# iSCSI initiator name come from a small "seed" disk the host writes per boot (boot.sh), so nothing
# secret or identifying is shared through the cached base image. Without a seed disk, fresh ones
# are generated so the image still boots usefully.
set -eu
MNT=/run/cinderts-seed

# Find the disk by its virtio serial in sysfs: the kernel knows it as soon as the device is probed and
# devtmpfs has the node, so this does not wait for udev (which took ~20 s under TCG on a busy host).
find_seed() {
  for d in /sys/block/vd*; do
    [ -e "$d/serial" ] || continue
    if [ "$(cat "$d/serial")" = cinderts-seed ]; then
      echo "/dev/${d##*/}"
      return 0
    fi
  done
  return 1
}
SEED_DEV=""
i=0
while [ "$i" -lt 30 ]; do
  SEED_DEV="$(find_seed)" && [ -b "$SEED_DEV" ] && break
  SEED_DEV=""
  sleep 0.2; i=$((i + 1))
done

if [ -n "$SEED_DEV" ]; then
  mkdir -p "$MNT"
  mount -t ext4 -o ro,noload "$SEED_DEV" "$MNT"
  rm -f /etc/ssh/ssh_host_*
  for f in "$MNT"/ssh/ssh_host_*; do
    [ -e "$f" ] || continue
    install -m 600 -o root -g root "$f" /etc/ssh/
  done
  chmod 644 /etc/ssh/ssh_host_*.pub
  if [ -f "$MNT/authorized_keys" ]; then
    install -d -m 700 /root/.ssh
    install -m 600 "$MNT/authorized_keys" /root/.ssh/authorized_keys
    install -d -m 700 -o cinder -g cinder /home/cinder/.ssh
    install -m 600 -o cinder -g cinder "$MNT/authorized_keys" /home/cinder/.ssh/authorized_keys
  fi
  if [ -f "$MNT/initiatorname" ]; then
    printf 'InitiatorName=%s\n' "$(cat "$MNT/initiatorname")" > /etc/iscsi/initiatorname.iscsi
  fi
  umount "$MNT"
fi

# Fallbacks when there was no seed (or it lacked a part).
ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || ssh-keygen -A
grep -q '^InitiatorName=' /etc/iscsi/initiatorname.iscsi 2>/dev/null \
  || printf 'InitiatorName=%s\n' "$(iscsi-iname -p iqn.2004-10.com.cinderts:testhost)" > /etc/iscsi/initiatorname.iscsi
chmod 600 /etc/iscsi/initiatorname.iscsi
