#!/usr/bin/env bash
# Installs what Butter needs on Debian 12 (apt + npm) and builds it; idempotent.
#   scripts/install.sh          install and build
#   scripts/install.sh --start  ... then start `butter up` on this machine (scripts/start.sh: the
#                               butter-up systemd unit, or in the background without systemd)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  qemu-system-x86 qemu-utils          # the hypervisor and qcow2 overlays
  dnsmasq-base dnsmasq-utils          # DHCP/DNS for guest networks (no system service); dhcp_release
  nftables iproute2 kmod              # NAT, anti-spoofing, bridges and taps
  wireguard-tools wireguard-go        # the node mesh (wireguard-go where the kernel has no module)
  iperf3 qrencode                     # overlay throughput benchmark; VPN configs as QR codes
  graphviz                            # `butter graph --format svg` (the control plane runs dot -Tsvg)
  linux-image-amd64 busybox-static cpio e2fsprogs   # to build the `tiny` image
  syslinux syslinux-common mtools dosfstools        # ... and its firmware-boot disk variant
  socat                               # scale to zero: the activator holds a suspended VM's tap (frames over loopback UDP)
  iputils-ping curl ca-certificates
  python3 make g++                    # better-sqlite3 compiles its native addon
  systemd                             # the units' checker, systemd-analyze (test/systemd-units.test.ts); PID 1 on most hosts already
  python3-requests python3-configobj python3-yaml   # test/host/metadata-hop-limit runs cloud-init's EC2 crawler (unpacked, not installed)
  chromium                            # the panel's browser tests (test/browser/, test/host/panel-vm), driven by playwright-core
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "Butter needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.butter-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
npm run --silent build
ln -sf "$PWD/bin/butter" /usr/local/bin/butter

# Where systemd is PID 1 (sd_booted(3)), the units go in place (deploy/systemd/); only
# `--start` enables one. Copied only when they changed, so a rerun reloads nothing.
if [ -d /run/systemd/system ]; then
  changed=
  for unit in deploy/systemd/*.service; do
    if ! cmp -s "$unit" "/etc/systemd/system/$(basename "$unit")"; then
      install -m 0644 "$unit" /etc/systemd/system/
      changed=1
    fi
  done
  if [ -n "$changed" ]; then systemctl daemon-reload; fi
fi

if [ "${1:-}" = "--start" ]; then
  exec bash scripts/start.sh
fi
