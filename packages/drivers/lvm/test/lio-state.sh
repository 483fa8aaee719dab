# shellcheck shell=sh
# What LIO serves right now for one target IQN, read straight from configfs (one line per fact), so the test-host
# tests check the target without going through @cinderts/target-lio's own script. Usage: sh -c <this> sh IQN
T=/sys/kernel/config/target; iqn=$1; G=$T/iscsi/$iqn/tpgt_1
[ -d "$T/iscsi/$iqn" ] || exit 0
echo "target|$iqn"
echo "enable|$(cat "$G/enable")"
echo "authentication|$(cat "$G/attrib/authentication")"
echo "generate_node_acls|$(cat "$G/attrib/generate_node_acls")"
for n in "$G"/np/*; do [ -d "$n" ] && echo "portal|${n##*/}"; done
for l in "$G"/lun/lun_*/*; do
  [ -L "$l" ] || continue
  so=$(readlink -f "$l"); L=${l%/*}
  echo "lun|${L##*/lun_}|${so##*/}|$(cat "$so/udev_path")|$(sed 's/^T10 VPD Unit Serial Number: //' "$so/wwn/vpd_unit_serial")"
done
for a in "$G"/acls/*; do
  [ -d "$a" ] || continue
  m=
  for x in "$a"/lun_*/*; do
    [ -L "$x" ] || continue
    ml=${x%/*}; t=$(readlink -f "$x"); m="$m ${ml##*/}->${t##*/}"
  done
  echo "acl|${a##*/}|$(cat "$a/auth/userid")|$(cat "$a/auth/password")|$m"
done
