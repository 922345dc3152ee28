#!/usr/bin/env bash
# Build the Butter "tiny" guest as a DISK image that boots through BIOS firmware.
#
#   images/tiny/build-disk.sh OUTDIR
#
# Produces OUTDIR/tiny-disk.img: a raw, MBR-partitioned disk whose one (active)
# partition is FAT16 holding SYSLINUX, the tiny kernel and initrd (built into the
# same OUTDIR by images/tiny/build.sh) and a syslinux.cfg with the same kernel
# command line (cmdline.txt). Booting it under QEMU q35 + SeaBIOS with
# `-drive if=virtio` goes:
#
#   SeaBIOS -> MBR (syslinux mbr.bin: loads the active partition's boot sector)
#           -> SYSLINUX (FAT boot sector + ldlinux.sys/ldlinux.c32)
#           -> syslinux.cfg: LINUX /vmlinuz, INITRD /initrd.img, APPEND <cmdline>
#           -> the tiny /init, exactly as with -kernel/-initrd/-append
#
# It exercises the firmware-boot path of Butter's DISK images (like Debian cloud
# images) without downloading anything.
#
# Why this construction: no loop devices and no mounting (containers and CI
# runners often have neither). Everything is done on plain files:
#   * mkfs.vfat -C       creates the FAT filesystem in a file of its own,
#   * syslinux --install the mtools flavour of the installer writes the FAT boot
#                        sector and ldlinux.sys/ldlinux.c32 into that file
#                        (via mtools, no mount),
#   * mcopy              copies vmlinuz, initrd.img and syslinux.cfg in,
#   * the MBR            is syslinux's mbr.bin (440 bytes of boot code) plus one
#                        partition entry written with printf (no fdisk/sfdisk
#                        needed), and the FAT file is dd'd in at 1 MiB.
# A partitioned disk (rather than a bare "superfloppy" FAT) is what real disk
# images look like, and it also means sector 0 is never blank: the tiny init
# only formats a /dev/vda whose first 64 KiB are all zero, and merely fails to
# mount this disk as ext4 (then keeps its state in /run).
#
# Serial console: `SERIAL 0` in syslinux.cfg makes SYSLINUX print its banner on
# ttyS0 (so it shows in `butter vm logs`). SeaBIOS itself -- and everything
# printed through the BIOS screen, like syslinux's SAY -- reaches ttyS0 only
# when SeaBIOS's serial console is on, which QEMU asks for with
# `-machine graphics=off` (or -nographic); with just -nodefaults/-display none
# (no VGA) that output goes nowhere.
#
# Idempotent: OUTDIR/.disk-stamp hashes this script, the kernel, initrd and
# command line and the syslinux/mtools/dosfstools versions; when nothing
# changed the script exits after build.sh's own (fast) up-to-date check.
# Concurrent runs on one OUTDIR are serialised with flock (OUTDIR/.disk-lock),
# the image is replaced atomically by rename.
#
# Environment: as build.sh (TINY_KVER, TINY_ROOT_SIZE, TINY_NO_APT=1).
set -euo pipefail
# The image's file modes (and so its digest) must not depend on who runs this: the daemons
# run with umask 077, which would make the guest's own files root-only.
umask 022

log() { printf 'tiny-disk: %s\n' "$*" >&2; }
die() { printf 'tiny-disk: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUTDIR"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
IMG="$OUTDIR/tiny-disk.img"

# ---------------------------------------------------------------- prereqs
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_packages syslinux syslinux-common mtools dosfstools

MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin
[ -s "$MBR_BIN" ] || die "missing $MBR_BIN (syslinux-common)"
command -v syslinux >/dev/null || die "syslinux not found"

# ---------------------------------------------------------------- kernel/initrd
# build.sh has its own stamp and lock (OUTDIR/.stamp, OUTDIR/.lock), so this is
# cheap when the tiny image is already built.
bash "$HERE/build.sh" "$OUTDIR"
for f in vmlinuz initrd.img cmdline.txt; do
  [ -s "$OUTDIR/$f" ] || die "build.sh made no $OUTDIR/$f"
done

# ---------------------------------------------------------------- stamp
stamp_input() { # inputs from ${IN:-$OUTDIR}
  local d=${IN:-$OUTDIR}
  sha256sum "$SELF" "$d/vmlinuz" "$d/initrd.img" "$d/cmdline.txt" | awk '{print $1}'
  dpkg-query -W -f='${Package}=${Version}\n' syslinux syslinux-common mtools dosfstools 2>/dev/null || true
}
up_to_date() {
  [ -s "$IMG" ] && [ -f "$OUTDIR/.disk-stamp" ] && [ "$(cat "$OUTDIR/.disk-stamp")" = "$(stamp_input | sha256sum | awk '{print $1}')" ]
}

exec 8>"$OUTDIR/.disk-lock"
flock 8
if up_to_date; then
  log "up to date ($IMG)"
  exit 0
fi
WORK=$(mktemp -d "$OUTDIR/.disk-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building $IMG"

# Work on copies, and stamp the copies: another build.sh run (butter up, a
# test) may replace OUTDIR's files at any time.
mkdir "$WORK/in"
cp "$OUTDIR/vmlinuz" "$OUTDIR/initrd.img" "$OUTDIR/cmdline.txt" "$WORK/in/"
STAMP=$(IN=$WORK/in stamp_input | sha256sum | awk '{print $1}')
CMDLINE=$(head -n 1 "$WORK/in/cmdline.txt")

# ---------------------------------------------------------------- FAT partition
MIB=$((1024 * 1024))
PART_START=$MIB   # 1 MiB alignment, as fdisk/parted would do
files_bytes=$(( $(stat -c %s "$WORK/in/vmlinuz") + $(stat -c %s "$WORK/in/initrd.img") ))
# Files + 4 MiB slack (FATs, root dir, ldlinux), rounded up to whole MiB,
# at least 16 MiB so FAT16 has enough clusters.
part_mib=$(( (files_bytes + 4 * MIB + MIB - 1) / MIB ))
[ "$part_mib" -ge 16 ] || part_mib=16
PART_BYTES=$((part_mib * MIB))

FAT=$WORK/part.fat
# --invariant (fixed volume id 1234-ABCD and timestamps): no random or time-based fields in the
# filesystem headers. -F 16 (partition type 0x0e, FAT16 LBA).
mkfs.vfat -C -F 16 -n TINYBOOT --invariant "$FAT" $((PART_BYTES / 1024)) >/dev/null

# TIMEOUT 1 (0.1 s) with PROMPT 0: boot the default at once, no boot: prompt.
# The SAY line only reaches the serial port through the BIOS console (above).
cat >"$WORK/syslinux.cfg" <<EOF
SERIAL 0 115200
SAY butter-tiny-disk: syslinux loading /vmlinuz /initrd.img
DEFAULT tiny
PROMPT 0
TIMEOUT 1
LABEL tiny
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND $CMDLINE
EOF

# mtools stamps new files with SOURCE_DATE_EPOCH (instead of the current time),
# which with mkfs.vfat --invariant makes the image byte-for-byte reproducible.
export SOURCE_DATE_EPOCH=1700000000 MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=1
# syslinux (mtools flavour) installs into an image file: boot sector + ldlinux.
syslinux --install "$FAT"
mcopy -i "$FAT" "$WORK/in/vmlinuz" ::vmlinuz
mcopy -i "$FAT" "$WORK/in/initrd.img" ::initrd.img
mcopy -i "$FAT" "$WORK/syslinux.cfg" ::syslinux.cfg
mdir -i "$FAT" -a -b :: | grep -qi 'ldlinux.sys' || die "syslinux did not install ldlinux.sys"

# ---------------------------------------------------------------- disk + MBR
DISK=$WORK/tiny-disk.img
truncate -s $((PART_START + PART_BYTES)) "$DISK"
# Boot code: the first 440 bytes (the rest of sector 0 is the disk signature
# and the partition table).
dd if="$MBR_BIN" of="$DISK" bs=440 count=1 conv=notrunc status=none

le32() { # little-endian 32-bit integer as printf escapes
  printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255))
}
# Disk signature (fixed), then partition entry 1: active (0x80), CHS start/end
# 0xfe/0xff/0xff ("use LBA", the usual value for LBA-addressed partitions),
# type 0x0e (FAT16 LBA), LBA start, sector count. Entries 2-4 stay zero.
# shellcheck disable=SC2059
{
  printf "$(le32 0x42757474)\\x00\\x00"
  printf "\\x80\\xfe\\xff\\xff\\x0e\\xfe\\xff\\xff$(le32 $((PART_START / 512)))$(le32 $((PART_BYTES / 512)))"
} | dd of="$DISK" bs=1 seek=440 conv=notrunc status=none
printf '\x55\xaa' | dd of="$DISK" bs=1 seek=510 conv=notrunc status=none
dd if="$FAT" of="$DISK" bs=1M seek=$((PART_START / MIB)) conv=notrunc,sparse status=none

# Sanity: the boot signatures of MBR and partition boot sector.
[ "$(od -An -tx1 -j510 -N2 "$DISK" | tr -d ' \n')" = 55aa ] || die "bad MBR signature"
[ "$(od -An -tx1 -j$((PART_START + 510)) -N2 "$DISK" | tr -d ' \n')" = 55aa ] || die "bad FAT boot sector"

# ---------------------------------------------------------------- publish
rm -f "$OUTDIR/.disk-stamp"
mv -f "$DISK" "$IMG"
echo "$STAMP" >"$OUTDIR/.disk-stamp"
log "done: $IMG ($((PART_START / MIB + part_mib)) MiB, FAT16 partition at 1 MiB, cmdline: $CMDLINE)"
