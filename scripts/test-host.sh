#!/usr/bin/env bash
# The host tests (test/host/*.test.ts: real QEMU under TCG, network namespaces, nft, dnsmasq,
# wireguard-go), two files at a time. Most of their time is spent waiting (guests booting,
# agents' heartbeats and drift checks, restart backoff), not computing, so two lanes take
# about half the time of one. Side by side is safe because every file names what it makes
# host-wide after a random id or its own temp dir (namespaces, links, wireguard-go sockets,
# /run/butter/agent-*, /etc/netns/*), finds and kills its processes by its own paths only,
# and builds the shared tiny image through build.sh's flock.
#
# The longest files start first, so that both lanes end at about the same time; every other
# file follows in name order (a new file needs no entry here). BUTTER_HOST_TEST_CONCURRENCY=1
# runs them one at a time, as before. Output: node:test reports each file's tests as a block.
#
# Hold the host-test lock around this yourself (`flock /tmp/butter-host.lock npm run test:host`)
# when others share the machine; taking it in here would deadlock a caller that already holds it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Measured per file on 2026-12-01 (seconds, one at a time): cluster 246, vm-restart 154,
# services 99, quickstart 45, tiny-image 45, metadata-spoof 66, data-disks 49, down 38.
longest=(cluster vm-restart services metadata-spoof data-disks tiny-image quickstart down)

files=()
for name in "${longest[@]}"; do
  [ -f "test/host/$name.test.ts" ] && files+=("test/host/$name.test.ts")
done
while IFS= read -r f; do
  case " ${files[*]} " in *" $f "*) ;; *) files+=("$f") ;; esac
done < <(find test/host -name '*.test.ts' | sort)

exec node --import tsx --test --test-concurrency="${BUTTER_HOST_TEST_CONCURRENCY:-2}" "${files[@]}"
