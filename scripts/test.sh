#!/usr/bin/env bash
# The whole test suite: installs what it needs (idempotently), then typecheck, lint, unit,
# integration and host tests (real QEMU, namespaces, nftables, dnsmasq).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
npm test
