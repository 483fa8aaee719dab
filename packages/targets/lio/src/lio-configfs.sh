# shellcheck shell=sh
# LIO through configfs, one invocation per operation (sent as `sh -c <this file> lio ROOT SAVEFILE OP ARGS...`).
# Values only ever arrive as positional arguments (validated by the caller) or on stdin (CHAP secrets);
# nothing is interpolated into this text. After every change the whole LIO configuration is written to
# SAVEFILE in rtslib-fb's saveconfig.json format, so `targetctl restore` (run at boot by rtslib-fb-targetctl)
# brings it back. All operations on one host are serialized by flock, as Cinder serializes cinder-rtstool.
#
# Ops:
#   export  SO_NAME DEV SIZE_BYTES WWN IQN AUTH(0|1) LUN_ALIAS PORTAL...   storage object + target + TPG 1 + LUN 0 + portals
#   allow   IQN INITIATOR CHAP(0|1) MAPPED_ALIAS                           ACL + mapped LUN 0 (stdin: user, password lines)
#   deny    IQN INITIATOR|*                                                 remove ACL(s)
#   remove  SO_NAME IQN                                                     target and storage object
#   show    IQN                                                             print "so|lun|acl|session" lines
#   save                                                                    write SAVEFILE only
set -eu
R=$1
SAVE=$2
OP=$3
shift 3

die() {
  echo "lio: $*" >&2
  exit 1
}

# read one value from a configfs file (no fork; configfs files may lack a final newline)
rd() {
  v=
  if [ -r "$1" ]; then read -r v <"$1" 2>/dev/null || :; fi
}

# JSON string; only values with a quote or backslash pay for a sed
js() {
  case $1 in
  *[\"\\]*) printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')" ;;
  *) printf '"%s"' "$1" ;;
  esac
}

find_so() {
  so=
  for d in "$R"/core/*/"$1"; do
    if [ -f "$d/enable" ]; then
      so=$d
      return 0
    fi
  done
}

ensure_fabric() {
  [ -d "$R" ] || modprobe target_core_mod 2>/dev/null || :
  [ -d "$R" ] || die "no LIO in this kernel ($R missing; is configfs mounted?)"
  if [ ! -d "$R/iscsi" ]; then
    modprobe iscsi_target_mod 2>/dev/null || :
    mkdir "$R/iscsi" 2>/dev/null || [ -d "$R/iscsi" ] || die "cannot load the iSCSI fabric"
  fi
}

drop_links() {
  for l in "$1"/*; do
    if [ -L "$l" ]; then rm -f "$l"; fi
  done
}

drop_acl() {
  for m in "$1"/lun_*; do
    [ -d "$m" ] || continue
    drop_links "$m"
    rmdir "$m"
  done
  rmdir "$1"
}

do_export() {
  name=$1 dev=$2 size=$3 wwn=$4 iqn=$5 auth=$6 alias=$7
  shift 7
  ensure_fabric
  find_so "$name"
  if [ -z "$so" ]; then
    if [ -b "$dev" ]; then kind=iblock; else kind=fileio; fi
    [ -e "$dev" ] || die "$dev does not exist"
    n=0
    while [ -e "$R/core/${kind}_$n" ]; do n=$((n + 1)); done
    mkdir "$R/core/${kind}_$n"
    so="$R/core/${kind}_$n/$name"
    mkdir "$so"
    if [ "$kind" = iblock ]; then
      echo "udev_path=$dev" >"$so/control"
    else
      echo "fd_dev_name=$dev,fd_dev_size=$size" >"$so/control"
    fi
    printf '%s' "$dev" >"$so/udev_path"
    echo 1 >"$so/enable"
    echo "$wwn" >"$so/wwn/vpd_unit_serial"
  fi
  rd "$so/udev_path"
  [ "$v" = "$dev" ] || die "storage object $name is backed by $v, not $dev"
  G="$R/iscsi/$iqn/tpgt_1"
  [ -d "$G" ] || mkdir -p "$G"
  if [ ! -d "$G/lun/lun_0" ]; then
    mkdir "$G/lun/lun_0"
    ln -s "$so" "$G/lun/lun_0/$alias"
  fi
  echo 0 >"$G/attrib/generate_node_acls"
  echo "$auth" >"$G/attrib/authentication"
  for p in "$@"; do
    [ -d "$G/np/$p" ] || mkdir "$G/np/$p"
  done
  echo 1 >"$G/enable"
}

do_allow() {
  iqn=$1 init=$2 chap=$3 alias=$4
  G="$R/iscsi/$iqn/tpgt_1"
  [ -d "$G/lun/lun_0" ] || die "target $iqn is not exported"
  A="$G/acls/$init"
  [ -d "$A" ] || mkdir "$A"
  if [ "$chap" = 1 ]; then
    IFS= read -r user || die "CHAP user expected on stdin"
    IFS= read -r pass || die "CHAP secret expected on stdin"
    printf '%s' "$user" >"$A/auth/userid"
    printf '%s' "$pass" >"$A/auth/password"
  fi
  if [ ! -d "$A/lun_0" ]; then
    mkdir "$A/lun_0"
    ln -s "$G/lun/lun_0" "$A/lun_0/$alias"
  fi
}

do_deny() {
  iqn=$1 init=$2
  G="$R/iscsi/$iqn/tpgt_1"
  [ -d "$G/acls" ] || return 0
  for A in "$G"/acls/*; do
    [ -d "$A" ] || continue
    if [ "$init" = "*" ] || [ "${A##*/}" = "$init" ]; then drop_acl "$A"; fi
  done
}

do_remove() {
  name=$1 iqn=$2
  T="$R/iscsi/$iqn"
  if [ -d "$T" ]; then
    for G in "$T"/tpgt_*; do
      [ -d "$G" ] || continue
      echo 0 >"$G/enable" 2>/dev/null || :
      for A in "$G"/acls/*; do
        if [ -d "$A" ]; then drop_acl "$A"; fi
      done
      for L in "$G"/lun/lun_*; do
        [ -d "$L" ] || continue
        drop_links "$L"
        rmdir "$L"
      done
      for N in "$G"/np/*; do
        if [ -d "$N" ]; then rmdir "$N"; fi
      done
      rmdir "$G"
    done
    rmdir "$T"
  fi
  find_so "$name"
  if [ -n "$so" ]; then
    rmdir "$so"
    rmdir "${so%/*}" 2>/dev/null || :
  fi
}

do_show() {
  iqn=$1
  G="$R/iscsi/$iqn/tpgt_1"
  [ -d "$G" ] || return 0
  for L in "$G"/lun/lun_*; do
    [ -d "$L" ] || continue
    for l in "$L"/*; do
      if [ -L "$l" ]; then echo "lun|${L##*/lun_}|$(readlink -f "$l")"; fi
    done
  done
  for A in "$G"/acls/*; do
    if [ -d "$A" ]; then echo "acl|${A##*/}"; fi
  done
  rd "$G/dynamic_sessions"
  for s in $v; do echo "session|$s"; done
  for A in "$G"/acls/*; do
    [ -d "$A" ] || continue
    rd "$A/info"
    case $v in "No active iSCSI Session"*) ;; ?*) echo "session|${A##*/}" ;; esac
  done
}

so_plugin() {
  case $1 in
  iblock_*) plugin=block ;;
  fileio_*) plugin=fileio ;;
  rd_mcp_*) plugin=ramdisk ;;
  pscsi_*) plugin=pscsi ;;
  *) plugin= ;;
  esac
}

# rtslib-fb saveconfig.json (see saveconfig.json(5)); attributes not listed take their defaults on restore
do_save() {
  [ -n "$SAVE" ] || return 0
  mkdir -p "${SAVE%/*}"
  tmp="$SAVE.tmp.$$"
  (
    umask 077
    printf '{\n  "fabric_modules": [],\n  "storage_objects": ['
    sep=
    for so in "$R"/core/*_*/*; do
      [ -f "$so/enable" ] || continue
      hba=${so%/*}
      so_plugin "${hba##*/}"
      [ -n "$plugin" ] || continue
      rd "$so/enable"
      [ "$v" = 1 ] || continue
      rd "$so/udev_path"
      dev=$v
      rd "$so/wwn/vpd_unit_serial"
      wwn=${v#T10 VPD Unit Serial Number: }
      printf '%s\n    {"plugin": "%s", "name": %s, "wwn": %s' "$sep" "$plugin" "$(js "${so##*/}")" "$(js "$wwn")"
      case $plugin in
      block) printf ', "dev": %s, "readonly": false, "write_back": false' "$(js "$dev")" ;;
      fileio)
        size=$(sed -n 's/.* Size: \([0-9][0-9]*\).*/\1/p' "$so/info")
        printf ', "dev": %s, "size": %s, "write_back": false' "$(js "$dev")" "${size:-0}"
        ;;
      ramdisk)
        size=$(sed -n 's/.*PAGES\/PAGE_SIZE: \([0-9][0-9]*\).*/\1/p' "$so/info")
        printf ', "size": %s' "$((${size:-0} * 4096))"
        ;;
      pscsi) printf ', "dev": %s' "$(js "$dev")" ;;
      esac
      printf '}'
      sep=,
    done
    printf '\n  ],\n  "targets": ['
    sep=
    for T in "$R"/iscsi/*; do
      case ${T##*/} in iqn.* | eui.* | naa.*) ;; *) continue ;; esac
      [ -d "$T" ] || continue
      printf '%s\n    {"fabric": "iscsi", "wwn": %s, "tpgs": [' "$sep" "$(js "${T##*/}")"
      sep=,
      gsep=
      for G in "$T"/tpgt_*; do
        [ -d "$G" ] || continue
        rd "$G/enable"
        if [ "$v" = 1 ]; then en=true; else en=false; fi
        printf '%s\n      {"tag": %s, "enable": %s, "parameters": {}, "attributes": {' "$gsep" "${G##*/tpgt_}" "$en"
        gsep=,
        asep=
        for a in authentication generate_node_acls demo_mode_write_protect cache_dynamic_acls; do
          rd "$G/attrib/$a"
          case $v in '' | *[!0-9]*) continue ;; esac
          printf '%s"%s": %s' "$asep" "$a" "$v"
          asep=', '
        done
        printf '},\n       "luns": ['
        lsep=
        for L in "$G"/lun/lun_*; do
          [ -d "$L" ] || continue
          for l in "$L"/*; do
            [ -L "$l" ] || continue
            t=$(readlink "$l")
            h=${t%/*}
            so_plugin "${h##*/}"
            printf '%s{"index": %s, "alias": %s, "storage_object": %s}' "$lsep" "${L##*/lun_}" "$(js "${l##*/}")" \
              "$(js "/backstores/$plugin/${t##*/}")"
            lsep=', '
          done
        done
        printf '],\n       "portals": ['
        psep=
        for N in "$G"/np/*; do
          [ -d "$N" ] || continue
          np=${N##*/}
          printf '%s{"ip_address": %s, "port": %s, "iser": false, "offload": false}' "$psep" "$(js "${np%:*}")" "${np##*:}"
          psep=', '
        done
        printf '],\n       "node_acls": ['
        nsep=
        for A in "$G"/acls/*; do
          [ -d "$A" ] || continue
          printf '%s\n         {"node_wwn": %s, "attributes": {}' "$nsep" "$(js "${A##*/}")"
          nsep=,
          rd "$A/auth/userid"
          if [ -n "$v" ] && [ "$v" != NULL ]; then printf ', "chap_userid": %s' "$(js "$v")"; fi
          rd "$A/auth/password"
          if [ -n "$v" ] && [ "$v" != NULL ]; then printf ', "chap_password": %s' "$(js "$v")"; fi
          printf ', "mapped_luns": ['
          msep=
          for M in "$A"/lun_*; do
            [ -d "$M" ] || continue
            rd "$M/write_protect"
            if [ "$v" = 1 ]; then wp=true; else wp=false; fi
            for l in "$M"/*; do
              [ -L "$l" ] || continue
              t=$(readlink "$l")
              printf '%s{"index": %s, "tpg_lun": %s, "write_protect": %s, "alias": %s}' "$msep" "${M##*/lun_}" "${t##*/lun_}" "$wp" \
                "$(js "${l##*/}")"
              msep=', '
            done
          done
          printf ']}'
        done
        printf ']}'
      done
      printf ']}'
    done
    printf '\n  ]\n}\n'
  ) >"$tmp"
  mv -f "$tmp" "$SAVE"
}

LOCK=${SAVE:-/run/lock/cinderts-lio}.lock
mkdir -p "${LOCK%/*}"
exec 9>>"$LOCK"
flock -w 120 9 || die "timed out waiting for $LOCK"

case $OP in
export) do_export "$@" ;;
allow) do_allow "$@" ;;
deny) do_deny "$@" ;;
remove) do_remove "$@" ;;
show)
  do_show "$@"
  exit 0
  ;;
save) ;;
*) die "unknown op $OP" ;;
esac
do_save
