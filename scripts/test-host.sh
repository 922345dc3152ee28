#!/usr/bin/env bash
# The host tests (test/host/*.test.ts: real QEMU under TCG, network namespaces, nft, dnsmasq,
# wireguard-go) in lanes side by side (BUTTER_HOST_TEST_LANES, default 2), each a `node --test` of its own running its files
# one at a time. Most of their time is spent waiting (guests booting, agents' heartbeats and
# drift checks, restart backoff), not computing, so two lanes take little more than half the
# time of one. Side by side is safe because every file names what it makes host-wide after a
# random id or its own temp dir (namespaces, links, wireguard-go sockets, /run/butter/agent-*,
# /etc/netns/*), finds and kills its processes by its own paths only, and builds the shared
# tiny image through build.sh's flock.
#
# Files are dealt to the lanes longest first, each to the lane with the least work so far, by the
# weights below (seconds, measured one at a time on 2026-12-01; the paths files from their authors' runs); a file not listed counts 30.
# Not one `node --test --test-concurrency=2`: node 20 sorts the files by name, so the longest
# could start last and run alone. BUTTER_HOST_TEST_LANES=1 runs every file in one lane.
# Output: each line is prefixed with its lane; each lane ends with its own summary, and this
# exits non-zero when any lane failed.
#
# Hold the host-test lock around this yourself (`flock /tmp/butter-host.lock npm run test:host`)
# when others share the machine; taking it in here would deadlock a caller that already holds it.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A weight=(
  [cluster]=250 [vm-restart]=155 [services]=100 [metadata-spoof]=66 [data-disks]=49
  [tiny-image]=45 [quickstart]=45 [down]=38 [metadata-hop-limit]=32 [linux-network]=24
  [console-bounds]=23 [disk-image]=21 [metrics-vm]=40 [network-isolation]=12 [snapshots]=190 [up-ready]=10 [paths-nft]=9
  [start-script]=7 [qemu-driver]=6 [service-dns]=5 [linux-mesh]=1
  [paths]=175 [paths-agent]=30 [path-verify-agent]=15 [path-verify]=8 [examples]=75
  [panel-vm]=60 [suspend]=150 [scale-to-zero]=135 [warm]=115
)

mapfile -t files < <(find test/host -name '*.test.ts' | sort)
lanes=${BUTTER_HOST_TEST_LANES:-2}
if [ "$lanes" = 1 ]; then
  exec node --import tsx --test --test-concurrency=1 "${files[@]}"
fi

# Deal the files: longest first, each to the lane with the least work so far.
declare -a lane_files lane_work
for ((i = 0; i < lanes; i++)); do lane_files[i]='' lane_work[i]=0; done
while read -r w f; do
  min=0
  for ((i = 1; i < lanes; i++)); do ((lane_work[i] < lane_work[min])) && min=$i; done
  lane_files[min]+="$f "
  lane_work[min]=$((lane_work[min] + w))
done < <(for f in "${files[@]}"; do n=$(basename "$f" .test.ts); echo "${weight[$n]:-30} $f"; done | sort -k1,1nr -k2)

lane() {
  local name=$1
  shift
  echo "# lane $name (~$((lane_work[name])) s by the weights): $*"
  node --import tsx --test --test-concurrency=1 "$@" 2>&1 | sed -u "s/^/[$name] /"
  return "${PIPESTATUS[0]}"
}

pids=()
for ((i = 0; i < lanes; i++)); do
  # shellcheck disable=SC2086 # the file names are words (test/host/*.test.ts, no spaces)
  lane "$i" ${lane_files[i]} &
  pids[i]=$!
done
failed=0
for ((i = 0; i < lanes; i++)); do
  rc=0
  wait "${pids[i]}" || rc=$?
  echo "# host tests: lane $i exit $rc"
  ((rc == 0)) || failed=1
done
exit "$failed"
