#!/usr/bin/env bash
# Build the Butter "tiny" guest image from Debian packages.
#
#   images/tiny/build.sh OUTDIR
#
# Produces OUTDIR/vmlinuz, OUTDIR/initrd.img (gzip'd cpio newc),
# OUTDIR/root.img (raw ext4, mounted at /data in the guest) and
# OUTDIR/cmdline.txt. The kernel comes from the installed Debian kernel
# (/boot/vmlinuz-<ver> + /lib/modules/<ver>), userland is busybox-static,
# /init is images/tiny/init (sourcing images/tiny/mime.sh as /etc/butter/mime.sh).
#
# Idempotent: OUTDIR/.stamp records a hash of every input; when nothing
# changed the script exits immediately. Concurrent invocations on the same
# OUTDIR are serialised with flock, and outputs are replaced atomically.
#
# Environment:
#   TINY_KVER       kernel version to use (default: newest /boot/vmlinuz-*
#                   that has a matching /lib/modules/<ver>)
#   TINY_ROOT_SIZE  size of root.img (default 64M)
#   TINY_NO_APT=1   never call apt-get (fail if something is missing)
set -euo pipefail
# The image's file modes (and so its digest) must not depend on who runs this: the daemons
# run with umask 077, which would make the guest's own files root-only.
umask 022

log() { printf 'tiny-build: %s\n' "$*" >&2; }
die() { printf 'tiny-build: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUTDIR"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
INIT_SRC="$HERE/init"
MIME_SRC="$HERE/mime.sh"   # sourced by init
for f in "$INIT_SRC" "$MIME_SRC"; do [ -f "$f" ] || die "missing $f"; done

mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
ROOT_SIZE=${TINY_ROOT_SIZE:-64M}

# Modules the guest needs (q35 + virtio-net-pci + virtio-blk-pci + ext4 +
# ACPI power button). Dependencies are resolved below; crc32c_generic is
# ext4/jbd2's soft dependency ("crypto-crc32c") for metadata_csum.
# qemu_fw_cfg: a warm clone reads its identity from fw_cfg (init's warm-wait, README).
WANT_MODULES=(virtio_pci virtio_net virtio_blk crc32c_generic ext4 button evdev qemu_fw_cfg)

CMDLINE="console=ttyS0 quiet panic=-1"

# ---------------------------------------------------------------- prereqs
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prereqs=(busybox-static e2fsprogs cpio kmod gzip util-linux)
compgen -G '/boot/vmlinuz-*' >/dev/null || prereqs+=(linux-image-amd64)
ensure_packages "${prereqs[@]}"

BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (busybox-static)"

# ---------------------------------------------------------------- kernel
pick_kver() {
  local v best=""
  if [ -n "${TINY_KVER:-}" ]; then
    echo "$TINY_KVER"; return
  fi
  while read -r v; do
    v=${v#/boot/vmlinuz-}
    [ -d "/lib/modules/$v" ] && best=$v
  done < <(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V)
  [ -n "$best" ] || die "no /boot/vmlinuz-<ver> with matching /lib/modules/<ver>"
  echo "$best"
}
KVER=$(pick_kver)
VMLINUZ=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
[ -r "$VMLINUZ" ] || die "cannot read $VMLINUZ"
[ -f "$MODDIR/modules.dep" ] || die "missing $MODDIR/modules.dep"

# ---------------------------------------------------------------- stamp
stamp_input() {
  sha256sum "$SELF" "$INIT_SRC" "$MIME_SRC" | awk '{print $1}'
  echo "kver=$KVER"
  stat -c 'vmlinuz=%s:%Y' "$VMLINUZ"
  stat -c 'modules.dep=%s:%Y' "$MODDIR/modules.dep"
  dpkg-query -W -f='busybox=${Version}\n' busybox-static 2>/dev/null || true
}
# Bump ROOT_VERSION when the root.img layout changes.
ROOT_VERSION=1
ROOT_STAMP="v$ROOT_VERSION size=$ROOT_SIZE"
STAMP=$( (stamp_input; echo "root=$ROOT_STAMP") | sha256sum | awk '{print $1}')

up_to_date() {
  [ -f "$OUTDIR/.stamp" ] && [ "$(cat "$OUTDIR/.stamp")" = "$STAMP" ] || return 1
  local f
  for f in vmlinuz initrd.img root.img cmdline.txt; do
    [ -s "$OUTDIR/$f" ] || return 1
  done
}

if up_to_date; then
  log "up to date ($OUTDIR, kernel $KVER)"
  exit 0
fi

exec 9>"$OUTDIR/.lock"
flock 9
if up_to_date; then   # somebody else built it while we waited
  log "up to date ($OUTDIR, kernel $KVER)"
  exit 0
fi

WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building tiny image in $OUTDIR (kernel $KVER)"

# ---------------------------------------------------------------- modules
# Resolve dependencies depth-first so every module comes after its deps.
declare -A SEEN=()
ORDERED=()
resolve() {
  local m=${1//-/_} dep deps
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  # built-in modules need nothing
  if grep -qE "/${m//_/[-_]}\.ko(\.[a-z]+)?$" "$MODDIR/modules.builtin" 2>/dev/null; then
    return 0
  fi
  deps=$(modinfo -k "$KVER" -F depends "$m") || die "module $m not found for $KVER"
  local IFS=,
  for dep in $deps; do
    [ -n "$dep" ] && resolve "$dep"
  done
  ORDERED+=("$m")
}
for m in "${WANT_MODULES[@]}"; do resolve "$m"; done

ROOTFS=$WORK/initramfs
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,etc/butter,proc,sys,dev,run,tmp,data,root,var,lib/modules/"$KVER"}
chmod 1777 "$ROOTFS/tmp"
chmod 700 "$ROOTFS/root"

: >"$ROOTFS/etc/butter/modules"
for m in "${ORDERED[@]}"; do
  src=$(modinfo -k "$KVER" -n "$m")
  dst="$ROOTFS/lib/modules/$KVER/$m.ko"
  case "$src" in
    *.ko)     cp "$src" "$dst" ;;
    *.ko.xz)  command -v xz >/dev/null || ensure_packages xz-utils; xz -dc "$src" >"$dst" ;;
    *.ko.zst) command -v zstd >/dev/null || ensure_packages zstd; zstd -qdc "$src" >"$dst" ;;
    *.ko.gz)  gzip -dc "$src" >"$dst" ;;
    *) die "unexpected module file $src" ;;
  esac
  echo "$m" >>"$ROOTFS/etc/butter/modules"
done
log "modules: ${ORDERED[*]}"

# ---------------------------------------------------------------- busybox
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
chmod 755 "$ROOTFS/bin/busybox"
"$BUSYBOX" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  [ -e "$ROOTFS/$applet" ] || [ -L "$ROOTFS/$applet" ] || ln -s /bin/busybox "$ROOTFS/$applet"
done

install -m 755 "$INIT_SRC" "$ROOTFS/init"
install -m 644 "$MIME_SRC" "$ROOTFS/etc/butter/mime.sh"
# /dev/console must exist before /init runs so it gets stdio
mknod -m 600 "$ROOTFS/dev/console" c 5 1 2>/dev/null || true

# ---------------------------------------------------------------- /etc
cat >"$ROOTFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$ROOTFS/etc/group" <<'EOF'
root:x:0:
EOF
cat >"$ROOTFS/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
EOF
chmod 600 "$ROOTFS/etc/shadow"
echo tiny >"$ROOTFS/etc/hostname"
cat >"$ROOTFS/etc/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost
EOF
cat >"$ROOTFS/etc/profile" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
PS1='\u@\h:\w\$ '
EOF
echo "$KVER" >"$ROOTFS/etc/butter/kernel"

# udhcpc event script: address, router, MTU (option 26), DNS.
cat >"$ROOTFS/etc/butter/udhcpc.sh" <<'EOF'
#!/bin/sh
# busybox udhcpc script (see udhcpc(8)). Env: interface ip mask subnet
# broadcast router dns domain mtu (option 26) staticroutes (option 121).
event=$1
case "$event" in
  deconfig)
    ip -4 addr flush dev "$interface" 2>/dev/null
    ip link set dev "$interface" up
    ;;
  bound|renew)
    prefix=${mask:-}
    if [ -z "$prefix" ] && [ -n "${subnet:-}" ]; then
      prefix=$(ipcalc -p "$ip" "$subnet" 2>/dev/null | sed 's/PREFIX=//')
    fi
    [ -n "$prefix" ] || prefix=24
    if [ "$event" = bound ] || ! ip -4 addr show dev "$interface" | grep -q "inet $ip/$prefix "; then
      ip -4 addr flush dev "$interface"
      ip -4 addr add "$ip/$prefix" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    fi
    if [ -n "${mtu:-}" ]; then
      ip link set dev "$interface" mtu "$mtu" ||
        echo "butter-tiny: error: cannot set mtu $mtu on $interface" >/dev/console
    fi
    if [ -n "${staticroutes:-}" ]; then
      # RFC 3442: with classless routes the router option is ignored
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then
          ip -4 route replace "$1" dev "$interface"
        else
          ip -4 route replace "$1" via "$2" dev "$interface"
        fi
        shift 2
      done
    elif [ -n "${router:-}" ]; then
      while ip -4 route del default dev "$interface" 2>/dev/null; do :; done
      for r in $router; do
        ip -4 route add default via "$r" dev "$interface" && break
      done
    fi
    mkdir -p /run/butter
    # eth0 is the VM's primary NIC: its DNS and its address are the VM's. Others (eth1...)
    # only record theirs.
    if [ "$interface" = eth0 ]; then
      : >/etc/resolv.conf.new
      [ -n "${domain:-}" ] && echo "search $domain" >>/etc/resolv.conf.new
      for d in ${dns:-}; do echo "nameserver $d" >>/etc/resolv.conf.new; done
      mv /etc/resolv.conf.new /etc/resolv.conf
      echo "$ip" >/run/butter/ip
      echo "${mtu:-}" >/run/butter/mtu
    else
      echo "$ip" >"/run/butter/ip.$interface"
    fi
    ;;
  leasefail|nak)
    echo "butter-tiny: error: dhcp $event on $interface" >/dev/console
    ;;
esac
exit 0
EOF
chmod 755 "$ROOTFS/etc/butter/udhcpc.sh"

# busybox acpid maps the ACPI power button to /etc/acpi/PWRF/00000080.
cat >"$ROOTFS/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
exec /etc/butter/shutdown.sh "power button"
EOF
chmod 755 "$ROOTFS/etc/acpi/PWRF/00000080"
: >"$ROOTFS/etc/acpid.conf"
printf 'PWRF PWRF/00000080\n' >"$ROOTFS/etc/acpid.conf"

cat >"$ROOTFS/etc/butter/shutdown.sh" <<'EOF'
#!/bin/sh
# Clean shutdown: stop processes, sync, unmount /data, power off.
exec >/dev/console 2>&1
echo "butter-tiny: shutting down (${1:-request})"
# Everything except PID 1 and ourselves.
kill -TERM -1 2>/dev/null
sleep 0.3
sync
if grep -q " /data " /proc/mounts; then
  umount /data 2>/dev/null || { kill -KILL -1 2>/dev/null; sleep 0.1; umount /data 2>/dev/null; } \
    || umount -l /data 2>/dev/null || mount -o remount,ro /data 2>/dev/null \
    || echo "butter-tiny: error: cannot unmount /data"
fi
sync
echo "butter-tiny: poweroff"
poweroff -f
EOF
chmod 755 "$ROOTFS/etc/butter/shutdown.sh"

# ---------------------------------------------------------------- initrd
(
  cd "$ROOTFS"
  find . -mindepth 1 -exec touch -h -d @1700000000 {} +
  find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet
) | gzip -6n >"$WORK/initrd.img"

# ---------------------------------------------------------------- root.img
# root.img is the backing file of every VM's qcow2 overlay, so it must not
# change under existing overlays: it is only rebuilt when ROOT_STAMP changes
# (its own layout/size, not the kernel or /init) and mke2fs is made
# deterministic (fixed UUID, hash seed and timestamps).
if [ "$(cat "$OUTDIR/.root-stamp" 2>/dev/null)" != "$ROOT_STAMP" ] || [ ! -s "$OUTDIR/root.img" ]; then
  DATA=$WORK/data
  mkdir -p "$DATA/var/lib/butter"
  cat >"$DATA/README" <<'EOF2'
Butter tiny image persistent disk (mounted at /data).
/data/var/lib/butter holds per-instance state (markers for user-data that
already ran, the last instance-id).
EOF2
  find "$DATA" -exec touch -h -d @1700000000 {} +
  rm -f "$WORK/root.img"
  SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 -L butter-data \
    -U 6275a7d0-7465-4000-8000-74696e796461 \
    -E root_owner=0:0,hash_seed=6275a7d0-7465-4000-8000-000000000001 \
    -d "$DATA" "$WORK/root.img" "$ROOT_SIZE" >/dev/null
  # mke2fs -d copies each file's ctime, which touch cannot set: pin it.
  (cd "$DATA" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.\(.*\)|sif \1 ctime @1700000000|') \
    >"$WORK/debugfs.cmds"
  E2FSPROGS_FAKE_TIME=1700000000 debugfs -w -f "$WORK/debugfs.cmds" "$WORK/root.img" >/dev/null 2>&1
  NEW_ROOT=1
else
  NEW_ROOT=0
fi

install -m 644 "$VMLINUZ" "$WORK/vmlinuz"
echo "$CMDLINE" >"$WORK/cmdline.txt"

# ---------------------------------------------------------------- publish
rm -f "$OUTDIR/.stamp"
for f in vmlinuz initrd.img cmdline.txt; do
  mv -f "$WORK/$f" "$OUTDIR/$f"
done
if [ "$NEW_ROOT" = 1 ]; then
  rm -f "$OUTDIR/.root-stamp"
  mv -f "$WORK/root.img" "$OUTDIR/root.img"
  echo "$ROOT_STAMP" >"$OUTDIR/.root-stamp"
fi
echo "$STAMP" >"$OUTDIR/.stamp"
log "done: $(du -h "$OUTDIR/initrd.img" | cut -f1) initrd, kernel $KVER"
