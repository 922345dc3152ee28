#!/usr/bin/env bash
# Installs what Butter needs on Debian 12 (apt + npm) and builds it; idempotent.
#   scripts/install.sh          install and build
#   scripts/install.sh --start  ... then start `butter up` on this machine in the background
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  qemu-system-x86 qemu-utils          # the hypervisor and qcow2 overlays
  dnsmasq-base dnsmasq-utils          # DHCP/DNS for guest networks (no system service); dhcp_release
  nftables iproute2 kmod              # NAT, anti-spoofing, bridges and taps
  wireguard-tools wireguard-go        # the node mesh (wireguard-go where the kernel has no module)
  iperf3 qrencode                     # overlay throughput benchmark; VPN configs as QR codes
  linux-image-amd64 busybox-static cpio e2fsprogs   # to build the `tiny` image
  syslinux syslinux-common mtools dosfstools        # ... and its firmware-boot disk variant
  iputils-ping curl ca-certificates
  python3 make g++                    # better-sqlite3 compiles its native addon
  python3-requests python3-configobj python3-yaml   # test/host/metadata-hop-limit runs cloud-init's EC2 crawler (unpacked, not installed)
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

if [ "${1:-}" = "--start" ]; then
  data=${BUTTER_DATA_DIR:-/var/lib/butter}
  log=${BUTTER_LOG:-/var/log/butter.log}
  # -k: a liveness probe of our own local server; the CLI itself pins Butter's CA.
  if curl -kfsS https://127.0.0.1:7700/healthz >/dev/null 2>&1; then
    echo "Butter is already running at https://127.0.0.1:7700"
    exit 0
  fi
  echo "starting butter up (data in $data, log in $log)"
  nohup bin/butter up --data-dir "$data" >>"$log" 2>&1 &
  for _ in $(seq 1 600); do
    grep -q '"msg":"ready"' "$log" 2>/dev/null && break
    if ! kill -0 $! 2>/dev/null; then echo "butter up exited; see $log" >&2; tail -5 "$log" >&2; exit 1; fi
    sleep 0.5
  done
  echo "Butter is up at https://127.0.0.1:7700; admin token in $data/admin.token; the CLI is logged in."
  echo "Try: butter vm create demo --image tiny --wait"
fi
