/** Renders a bench run: the console summary and docs/benchmarks.md. */
import { BOOT_DEFAULTS, MIN_CPU_SHARE, type BootRun } from './boot.ts';
import type { BootPhases } from './console-watch.ts';
import { median } from './stats.ts';
import type { CreateLatencyResult } from './create-latency.ts';
import type { HeartbeatPhase } from './cluster-scale.ts';
import { FIGURE_IDS, HEARTBEAT_P99_GOAL_MS, PLACEMENT_GOAL_PER_S, type FigureDataMap, type FigureId, type FigureResult } from './figures.ts';
import type { Machine } from './machine.ts';
import type { MetadataBenchResult } from './metadata.ts';
import type { MeshJoinResult } from './mesh-join.ts';
import type { GuestOverlayResult } from './guest-overlay.ts';
import type { OverlayResult } from './overlay.ts';
import type { ServiceCreateResult } from './service-create.ts';
import type { PathEnforceResult } from './path-enforce.ts';
import type { PathScaleResult } from './path-scale.ts';
import type { PanelBenchResult } from './panel.ts';
import type { ServiceRolloutResult } from './service-rollout.ts';

export interface Results {
  /** When the run started (ISO-8601 UTC). */
  date: string;
  seconds: number;
  machine: Machine;
  build: { ok: boolean; seconds: number; skipped?: boolean; error?: string };
  /** qemu-system processes not ours, running when the bench started. */
  otherQemuProcesses: number;
  figures: FigureResult[];
}

const STATUS: Record<FigureResult['status'], string> = { pass: 'pass', fail: 'FAIL', error: 'ERROR', reported: 'reported' };

function machineLine(m: Machine): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}, ${m.kernel}, Node ${m.node}, ${m.qemu}, accel ${m.accel}${m.accelReason ? ` (${m.accelReason})` : ''}`;
}

export function renderSummary(r: Results): string {
  const lines = [`Butter benchmarks, ${r.date} (${r.seconds} s)`, machineLine(r.machine), ''];
  for (const f of r.figures) {
    lines.push(`(${f.id}) ${f.title}`);
    lines.push(`    ${f.headline}`);
    lines.push(`    goal: ${f.goal ?? 'none (reported)'}  →  ${STATUS[f.status]}${f.error ? `: ${f.error}` : ''}`);
  }
  return lines.join('\n');
}

function data<I extends FigureId>(r: Results, id: I): { f: FigureResult | undefined; d: FigureDataMap[I] | undefined } {
  const f = r.figures.find((x) => x.id === id);
  return { f, d: f?.data as FigureDataMap[I] | undefined };
}

const ms = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '–' : `${Math.round(x)} ms`);
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

function notMeasured(f: FigureResult | undefined): string {
  if (!f) return '_Not run in this run._\n';
  return `**Not measured in this run:** ${f.error ?? 'unknown error'}\n`;
}

/** How a margin compares with the spread (max - min) of some samples. */
function noise(samples: number[], margin: number): string {
  const spread = Math.max(...samples) - Math.min(...samples);
  return margin < spread * 0.8 ? 'smaller than' : margin > spread * 1.25 ? 'larger than' : 'about the size of';
}

function bootSection(r: Results): string {
  const { f, d } = data(r, 'a');
  const between = d?.options.between ?? BOOT_DEFAULTS.between;
  const out: string[] = [];
  out.push(`## (a) create → guest fetched its metadata: Butter vs bare QEMU

**What it measures.** How long it takes from asking for a VM until its guest has fetched its
metadata. At that point the guest has booted, has an address, and knows who it is. The run
measures this once through Butter and once with bare \`qemu-system-x86_64\` booting the same
image to the same point. The figure is the ratio of the two medians, Butter / bare, which is
what Butter's orchestration adds to a boot. **Goal: <= 1.05.**

**How, through Butter.** \`butter up --no-egress\` runs in a fresh network namespace with no
uplink (\`test/host/butter-cli.ts\`). It builds the \`tiny\` image and adds it before it says
it is ready. A small client inside the namespace (\`bench/boot-client.ts\`) calls \`POST /v1/vms\`
through the SDK: image \`tiny\`, 1 CPU, 256M of memory, a 1G disk. It then polls until the VM
is \`running\`. Butter sets \`running\` when its agent's metadata server has answered the
guest's \`/meta-data\`. The figure is the gap between two server-side audit timestamps from
\`GET /v1/events\`: the VM's \`create\` event and its \`booting → running\` event. So neither the
client's start-up nor its polling is counted. The agent's log lines in between give the
timeline below.

**How, bare QEMU.** \`qemu-system-x86_64\` boots the same machine. Its command line is
derived from the one Butter's agent really ran, which the bench reads from \`/proc\` during
the first Butter boot (\`deriveBareArgs\` in \`bench/boot-bare.ts\`):
- Every machine option is kept as it is: machine type, accelerator, CPU model, \`-smp\`,
  \`-m\`, \`-nodefaults\`, the devices, the SMBIOS serial, and whatever else the driver
  renders today.
- The managed-VM plumbing is dropped: \`-name\`, \`-daemonize\`, pidfile, QMP and the console
  socket. The console goes to a file instead.
- The disk is a qcow2 overlay of the same \`root.img\`, of the same size. The kernel, initrd
  and command line are the files \`butter up\` built and uploaded.
- The network is the one real difference. The tap is replaced by user-mode networking (slirp)
  with \`restrict=on\`, so no packet leaves QEMU, and a \`guestfwd\` of 169.254.169.254:80 to
  an HTTP server in the bench process.

If Butter's command line has a shape the derivation does not know, the bench uses a
written-out copy of the driver's options instead and says so below. The clock runs from
spawning the process until the server receives the first \`GET /meta-data\`. The overlay is
made before the clock starts. (Butter's time includes its \`qemu-img\` calls.)

We chose slirp over a hand-built tap, bridge and dnsmasq in a namespace for two reasons. It is
how a person boots an image with bare QEMU, and it needs no host networking. Its DHCP server
is inside QEMU. Butter's guest gets its lease from dnsmasq across a tap and a bridge, so
whatever the real network path costs counts against Butter. Two slirp quirks shape the setup:
- \`guestfwd\` only accepts an address inside the slirp network, hence \`net=169.254.169.0/24\`.
- A \`tcp:\` guestfwd target is one connection, opened when QEMU starts and reused for every
  guest connection, so the server keeps it open.

**Runs.** First comes one warm-up pair, which is not counted: it fills the agent's image cache
and the page cache. Then come alternating pairs (Butter, then bare). ${
    between === 'rm'
      ? `After each Butter run its VM is **removed** with \`vm rm\`, which waits until the node has
destroyed it, so no QEMU of ours runs during the bare boot, and the next Butter VM is given the
address the removed one freed (see the note at the end of this section).`
      : `Between Butter runs each VM is **stopped**, not removed (see the note at the end of this
section), and all of them are removed with \`vm rm\` at the end.`
  }
`);
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const pctOf = (x: number | null) => (x === null ? '–' : `${Math.round(x * 100)} %`);
  const row = (label: string, x: BootRun) =>
    `| ${label} | ${ms(x.butter.totalMs)} | ${ms(x.butter.preQemuMs)} | ${ms(x.bare.totalMs)} | ${(x.butter.totalMs / x.bare.totalMs).toFixed(3)} | ${pctOf(x.butter.cpuShare)} / ${pctOf(x.bare.cpuShare)} | ${x.cpuBusyBefore.map(pctOf).join(' / ')} | ${ms(x.butter.upCpuMs)} |`;
  out.push(`### Results (${r.date.slice(0, 10)})

| run | Butter: create → running | of which before QEMU | bare: spawn → /meta-data | Butter / bare | QEMU's share of a CPU (Butter / bare) | machine busy before (Butter / bare) | CPU used by \`butter up\` |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  if (d.warmup) out.push(row('warm-up (not counted)', d.warmup));
  for (const x of d.runs) out.push(row(String(x.run), x));
  for (const x of d.discarded ?? []) out.push(row(`${x.run} (discarded: a QEMU was starved)`, x));
  out.push(`| **median** | **${ms(d.butterMedianMs)}** | ${ms(d.butterPreQemuMedianMs)} | **${ms(d.bareMedianMs)}** | **${d.ratio.toFixed(3)}** | | | |`);
  out.push(`
Status: **${STATUS[f!.status]}** (ratio ${d.ratio.toFixed(3)}, goal <= 1.05).
- A boot under ${r.machine.accel === 'tcg' ? 'TCG' : r.machine.accel} is CPU-bound: QEMU takes a whole core, a share near 100 %.
  A pair in which either QEMU got less than ${Math.round(MIN_CPU_SHARE * 100)} % was slowed by other work on the machine.
  Such a pair is discarded and another one is run, up to ${d.options.maxExtraRuns ?? 0} more.
- \`butter up\` (control plane and agent, one process) is the CPU Butter itself spends on the boot.
- The client saw \`running\` after a median of ${ms(d.butterClientMedianMs)}, polling every 250 ms like \`vm create --wait\`.
  That is the server-side figure plus the client's own start-up and polling.
- \`butter up\` was ready in ${ms(d.upReadyMs)}, which is not part of the figure.
`);

  // Where the time goes.
  const bare = d.runs.map((x) => x.bare.totalMs);
  const butter = d.runs.map((x) => x.butter.totalMs);
  const spread = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))} ms`;
  out.push(`### Where Butter's time goes
`);
  const ph = (side: 'butter' | 'bare', k: keyof BootPhases) => {
    const xs = d.runs.map((x) => x[side].phases?.[k]).filter((v): v is number => typeof v === 'number');
    return xs.length ? median(xs) : null;
  };
  const phaseRows: [string, number | null, number | null][] = [
    ['create → QEMU spawned (agent wakes, tap, dnsmasq SIGHUP, qemu-img, spawn)', d.butterPreQemuMedianMs, 0],
    ['QEMU spawned → guest /init starts (QEMU, firmware, kernel)', ph('butter', 'toInitMs'), ph('bare', 'toInitMs')],
    ['/init → the guest has an address (modules, DHCP)', ph('butter', 'initToIpMs'), ph('bare', 'initToIpMs')],
    ['address → the guest printed "metadata fetched" (mount /data, fetch)', ph('butter', 'ipToMetadataMs'), ph('bare', 'ipToMetadataMs')],
  ];
  const known = (side: 0 | 1) => phaseRows.reduce((a, row) => a + ((side === 0 ? row[1] : row[2]) ?? NaN), 0);
  const restB = d.butterMedianMs - known(0);
  const restQ = d.bareMedianMs - known(1);
  const diff = (x: number | null, y: number | null) => (x === null || y === null || Number.isNaN(x) || Number.isNaN(y) ? '–' : `${x - y >= 0 ? '+' : ''}${Math.round(x - y)} ms`);
  out.push(`Medians of the phases, timed on the host clock from the agent's log and from the guest's console
lines as they reached the console file (polled every 10 ms). The last row is what remains of
the figure: for Butter, the agent's report after the fetch and the \`running\` event; for bare,
the gap between the server seeing the GET and the guest printing its line (negative). The
phases do not add up exactly to the medians of the totals.

| phase | Butter | bare | Butter − bare |
| --- | ---: | ---: | ---: |
${phaseRows.map(([what, x, y]) => `| ${what} | ${ms(x)} | ${ms(y)} | ${diff(x, y)} |`).join('\n')}
| the rest (see above) | ${ms(restB)} | ${ms(restQ)} | ${diff(restB, restQ)} |
| **create → metadata fetched (median)** | **${ms(d.butterMedianMs)}** | **${ms(d.bareMedianMs)}** | **${diff(d.butterMedianMs, d.bareMedianMs)}** |
`);
  if (d.butterPreQemuMedianMs !== null) {
    out.push(`- **Before QEMU starts:** median ${ms(d.butterPreQemuMedianMs)}, ${pct(d.butterPreQemuMedianMs / d.bareMedianMs)} of the bare boot.
  This is the one part that is pure orchestration; the timeline of the median run is below.
- **Run-to-run spread:** bare ${spread(bare)}, Butter ${spread(butter)}.
  The 5 % allowance is ${ms(d.bareMedianMs * 0.05)} here, ${noise(bare, d.bareMedianMs * 0.05)} the spread of the bare boots.
  ${noise(bare, d.bareMedianMs * 0.05) === 'larger than' ? '' : `So with ${d.runs.length} runs the ratio is only good to a few per cent either way.`}${
    d.warmup?.butter.preQemuMs != null
      ? `
- **The first VM on a node** (the warm-up: ${ms(d.warmup.butter.preQemuMs)} before QEMU) also pays, once, for creating the bridge,
  starting dnsmasq and the metadata server, and downloading the image's blobs into the agent's cache.`
      : ''
  }
`);
  }
  const mid = [...d.runs].sort((x, y) => x.butter.totalMs - y.butter.totalMs)[Math.floor(d.runs.length / 2)];
  if (mid) {
    out.push(`Timeline of the median Butter run (\`${mid.butter.name}\`), in ms after the \`create\` event (audit events from the store and the agent's log lines from \`butter up\`):\n`);
    out.push('| ms | what |\n| ---: | --- |');
    for (const t of mid.butter.timeline) out.push(`| ${t.atMs} | ${t.what.replace(/\|/g, '\\|')} |`);
    out.push('');
  }
  out.push(`### The two QEMU command lines

${d.bareArgsDerived ? 'The baseline\'s command line was derived from Butter\'s, so the machine is the same by construction.' : '**The baseline\'s command line could not be derived from Butter\'s** (its shape was unknown, or it could not be read); the written-out fallback was used.'} ${d.argDifferences.length ? `These options differ, so the comparison is not like for like:\n${d.argDifferences.map((x) => `- ${x}`).join('\n')}` : 'A check of `-M`, `-accel`, `-cpu`, `-smp`, `-m`, `-append`, `-nodefaults`, `-no-user-config` and the device models finds no difference. Only the file paths, the console and QMP plumbing, and the network backend differ: a tap for Butter, slirp for bare.'}

<details><summary>Butter's QEMU (read from /proc) and the baseline's</summary>

\`\`\`
${(d.butterQemuArgs ?? ['(not captured)']).join(' ')}
\`\`\`

\`\`\`
${d.bareQemuArgs.join(' ')}
\`\`\`
</details>

${
    between === 'rm'
      ? `**Removing VMs between runs.** Each Butter VM is removed with \`vm rm\` and the next
\`vm create\` is given the address it freed, as happens on any busy network. This used to fail:
dnsmasq still held that address in its lease file for the old MAC (the lease is one hour), so it
refused it to the new guest (\`not using configured address 10.200.0.2 because it is leased to
<old MAC>\`); the guest's \`udhcpc\` got no lease and the VM stayed \`booting\`, so earlier runs
stopped the VMs instead and removed them at the end. The agent now releases a removed VM's lease
with \`dhcp_release\` when it drops its reservation, so the bench measures the natural way
(\`BOOT_DEFAULTS.between\` in \`bench/boot.ts\`; \`'stop'\` still selects the old way).`
      : `**Why VMs are stopped, not removed, between runs.** \`BOOT_DEFAULTS.between\` in
\`bench/boot.ts\` was set to \`'stop'\` for this run: each VM is stopped after its run (no QEMU
keeps running, so nothing competes with the next boot) and all are removed with \`vm rm\` at
the end. The default, \`'rm'\`, removes each VM and gives its address to the next one, which
relies on the agent releasing the removed VM's DHCP lease (\`dhcp_release\`).`
  }
`);
  return out.join('\n');
}

function createSection(r: Results): string {
  const { f, d } = data(r, 'b');
  const out = [`## (b) create-VM API latency at 100 requests/s

**What it measures.** The latency of \`POST /v1/vms\` as a client sees it, at a steady 100
requests/s for 10 s: 1,000 creates with unique names. Each create is validated. Then, in one
transaction, it is scheduled over a snapshot of the nodes, given an address and a MAC, written
with its audit event, and committed durably before the answer: SQLite WAL with
\`synchronous=FULL\`, so there is an fsync per create. **Goal: p99 <= 20 ms**, with no errors.

**How.** \`butter server\` (the compiled CLI in \`dist/\`) runs as its own process on a loopback
port with a temporary data dir, as it runs by default. When it serves HTTPS with its own CA,
the bench's clients trust that CA (\`<data dir>/tls/ca.crt\`), so the figure includes TLS on
kept-alive connections, as for any client. Eight simulated nodes are registered through the API
(\`POST /v1/nodes\`). Each one reports with its node token: 64 CPUs, 1 TiB of memory, 100 TiB
of disk, driver \`sim\`. They report again every 5 s during the run, each at its own phase as independent agents
would, so they stay \`ready\`. No agent process runs, so the VMs stay \`pending\`, and the only load on the
server is the creates and those heartbeats. The bench uploads a 64 KiB disk image
(\`uploadBlob\` + \`createImage\`) and makes 20 warm-up creates. Then it runs an **open loop**:
request *i* is sent at t0 + *i* × 10 ms whether or not the earlier ones have been answered, so
a slow answer cannot hide the requests that queue behind it. Latency runs from just before the
SDK call to its decoded answer. Percentiles are nearest-rank.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

| p50 | p90 | p99 | max | answered | errors | achieved rate | worst send lag | VMs in the store after | transport |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
| ${d.p50Ms} ms | ${d.p90Ms} ms | **${d.p99Ms} ms** | ${d.maxMs} ms | ${d.ok}/${d.requests} | ${d.errors} | ${d.achievedRatePerS}/s | ${d.maxSendLagMs} ms | ${d.vmsInStore} | ${d.transport ?? 'http'} |

Status: **${STATUS[f!.status]}** (p99 ${d.p99Ms} ms, goal <= 20 ms${d.errors ? `; errors: ${d.errorSamples.join('; ')}` : ''}). The send lag is how late the client's timer fired against the schedule. When it stays small,
the offered rate really was 100/s.

The slowest requests (number in sending order, 10 ms apart: latency):
${d.slowest.map((x) => `#${x.i}: ${x.ms} ms`).join(', ')}. Clusters of neighbouring numbers
are requests that queued behind one stall (a heartbeat's write, a garbage collection, or an
fsync that took longer), not independent slow creates.
`);
  return out.join('\n');
}

function metadataSection(r: Results): string {
  const { f, d } = data(r, 'c');
  const out = [`## (c) metadata GET latency

**What it measures.** The hot path of the agent's metadata server: \`GET /meta-data\`, looked
up by the caller's address and rendered. **Goal: p99 <= 5 ms.**

**How.** \`bench/metadata.ts\` (\`benchMetadata()\`) starts the real metadata server
(\`createMetadataServer\`) on 127.0.0.1. It sends sequential GETs over one keep-alive
connection, as a guest fetching at boot would: 500 warm-up requests, then 5,000 measured ones
(stopping early after 20 s on a slow machine). Percentiles are nearest-rank. The server and
the client share one Node process, so the figure includes the client's own HTTP work.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const m = d as MetadataBenchResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| p50 | p99 | requests |
| ---: | ---: | ---: |
| ${m.p50Ms} ms | **${m.p99Ms} ms** | ${m.requests} |

Status: **${STATUS[f!.status]}** (p99 ${m.p99Ms} ms, goal <= 5 ms).
`);
  return out.join('\n');
}

function overlaySection(r: Results): string {
  const { f, d } = data(r, 'g');
  const out = [`## (g) TCP throughput over the overlay

**What it measures.** What a private network across machines costs: TCP from one VM
stand-in to another on a second machine, through the network's bridge, its VXLAN port and
the WireGuard mesh, against TCP over plain WireGuard between the same two machines, in the
same run. **Goal: overlay / plain >= 0.9.**

**How.** \`bench/overlay.ts\` (\`benchOverlay()\`) makes two namespaces joined by a veth
(the 1500-byte underlay) and sets both up with Butter's own adapters through \`NetnsExec\`:
\`LinuxMeshHost\` (wireguard-go here: no kernel module) and \`LinuxNetworkHost\` (bridge, VXLAN
port with its forwarding entries, nftables, dnsmasq). A veth whose far end sits in a third
namespace, with the guest MTU, stands in for each VM. A full-size ping with DF set must pass
first. Then iperf3 (one stream, receiver-side goodput) alternates between the two paths,
three runs of 8 s each; the figure is the ratio of the medians.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const o = d as OverlayResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| run | plain WireGuard | full overlay | retransmissions (plain / overlay) |
| ---: | ---: | ---: | ---: |
${o.runs.map((x, i) => `| ${i + 1} | ${x.plainMbps} Mbit/s | ${x.overlayMbps} Mbit/s | ${x.plainRetrans ?? '–'} / ${x.overlayRetrans ?? '–'} |`).join('\n')}

MTUs: underlay ${o.mtu.underlay}, WireGuard ${o.mtu.wireguard}, guest ${o.mtu.guest}. Status:
**${STATUS[f!.status]}** (ratio ${o.ratio}, goal >= 0.9).

**Why it falls short here: an investigation (2026-11-22, the same 2-core machine).** Each
line is a separate run of this benchmark (\`OVERLAY_RUNS\`, \`OVERLAY_S\`; changes made for the
experiment through \`OVERLAY_HOOK\` in the machines' namespaces and \`OVERLAY_VM_HOOK\` in the
stand-ins', or a scratch edit that was not kept). None of these changes is Butter's
configuration.

- *Where the time goes* (\`perf record -a -g\` during each path, 6 s): the kernel takes 81 %
  (plain) and 85 % (overlay) of all samples, wireguard-go's own code 17 % and 14 %. The
  receiver's writes of decrypted packets into its TUN device (\`tun_get_user\`, with all the
  kernel work they trigger) take 16 % of samples on the plain path and 31 % on the overlay:
  there each packet is decapsulated from VXLAN, bridged (through br_netfilter and conntrack
  on this kernel) and crosses the stand-in's veth before TCP sees it.
- *The receiver is the bottleneck on both paths.* Its wireguard-go socket overflows:
  \`UdpRcvbufErrors\` counted about 31,000 drops in 6 s on the plain path and about 15,000 on
  the overlay, and TCP backs off on them. Both "machines" share the 2 cores, so every extra
  kernel step per packet, on either side, is taken from the receiver.
- *Without br_netfilter* (its per-namespace sysctl set to 0 in both machines), 5 runs of 6 s:
  ratio 0.831; with \`notrack\` for the VXLAN packets as well, 0.798 and 0.833 in two runs. The
  baseline in the same session gave 0.722 and 0.751. Stock Debian 12 does not load
  br_netfilter; this kernel has it built in and on, and Butter's default-deny paths between
  services will filter bridged traffic through it, so Butter keeps it.
- *GRO on the stand-ins' veths* (as a virtio-net guest has it): 0.747. Each write brings one
  packet, so there is nothing to merge.
- *One core per machine* (each machine's wireguard-go and iperf3 pinned with \`taskset\`):
  0.639 and 0.586. The extra steps then weigh on one core alone.
- *Bigger packets across the mesh.* The cost is per packet, so bigger packets help most.
  - WireGuard MTU 9000 over the 1500-byte underlay, so the kernel fragments WireGuard's outer
    UDP, and guests at 8890 (an earlier session the same day): the overlay moved about
    1,020 Mbit/s, twice plain WireGuard at its normal MTU, and 0.877 of plain WireGuard at
    MTU 9000. That fragments the underlay, which some networks drop.
  - WireGuard kept at 1440, guests at 8466, the VXLAN packets fragmented inside the tunnel
    (the kernel's VXLAN answers a too-big guest packet with "fragmentation needed" while DF is
    set, so an nft rule cleared DF on frames leaving by the VXLAN port): 442.7 Mbit/s against
    448.2 (0.99) in the first run, then **0 Mbit/s** in the next two, where the receiver's
    \`IpReasmFails\` counted every reassembly failing. The receiver drops fragments at its
    socket as above, and one lost fragment wastes the other five; most likely the incomplete
    reassemblies filled the kernel's reassembly memory (4 MB), which frees them only when they
    time out (30 s). Not safe to adopt.

So on this machine the goal is out of reach with the parts it has: a userspace WireGuard
without offloads (no kernel module here; Debian 12's wireguard-go is v0.0.20220316),
receiving one packet per system call, on 2 cores shared by both machines and both iperf3
ends. Kernel WireGuard, or a wireguard-go with TUN offloads (GSO/GRO, 2023 and later),
removes most of the per-packet cost that the overlay's extra steps are measured against.
`);
  return out.join('\n');
}

function guestOverlaySection(r: Results): string {
  const { f, d } = data(r, 'i');
  const out = [`## (i) VM-to-VM TCP through real guests

**What it measures.** What two guests get from each other over a private network: across the
overlay (bridge → VXLAN → WireGuard → the other machine), and on one machine (the bridge
only). The issue asks for it to be reported beside (g); it sets no goal, and under TCG the
guests' emulated CPUs, not the network, are the limit.

**How.** \`bench/guest-overlay.ts\` (\`benchGuestOverlay()\`) starts a Butter cluster of two
namespace machines (the host tests' harness: control plane, agents, WireGuard mesh) and three
tiny-image VMs on one network: a receiver on n1 that discards what arrives on a TCP port,
a sender on n2 and one on n1. Each sender in turn, typed into its serial console, streams
zeros with busybox \`dd | nc\`; the figure is what the receiver's tap carried over 10 s in the
middle of the stream (kernel counters on n1).
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const g = d as GuestOverlayResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| path | Mbit/s |
| --- | ---: |
| n2 → n1: bridge → VXLAN → WireGuard | ${g.crossNodeMbps} |
| n1 → n1: bridge | ${g.sameNodeMbps} |

Status: **${STATUS[f!.status]}** (no goal). Guest MTU ${g.guestMtu}.
`);
  return out.join('\n');
}

function meshJoinSection(r: Results): string {
  const { f, d } = data(r, 'h');
  const out = [`## (h) node join → full mesh

**What it measures.** How fast the WireGuard mesh converges when a node joins: from the new
agent's start (its first report carries its public key and endpoint) until every node of the
mesh pings every other over it. **Goal: < 1 s.**

**How.** \`bench/mesh-join.ts\` (\`benchMeshJoin()\`) runs a control plane and real \`Agent\`s
in this process, each with a \`LinuxMeshHost\` whose WireGuard interface (wireguard-go) lives
in a namespace of its own; the namespaces share an underlay bridge. Each agent gives its
underlay address as its endpoint (its API traffic is over loopback). Two nodes form the mesh
first; then three more join one at a time. After each start, every ordered pair runs one
\`ping\` sending every 20 ms (started again if it exits unanswered, e.g. before the route
exists) until its first answer; the time is when the last pair first got one. (Until
2026-12-01 each attempt was a process of its own with a 100 ms wait; with 20 pairs on two
cores that probe's own cost was most of the figure: 672/741/1,238 ms with it against
312/413/562 ms with this one, back to back under the same load.) The
new node's first watch creates its interface (starting wireguard-go); the others' watches
answer on the join and apply the new peer with \`wg syncconf\`.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const m = d as MeshJoinResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| join | nodes in the mesh | time to full mesh |
| ---: | ---: | ---: |
${m.joinsMs.map((ms, i) => `| ${i + 1} | ${m.meshSizes[i]} | ${ms} ms |`).join('\n')}

Status: **${STATUS[f!.status]}** (worst ${m.maxMs} ms, goal < 1 s). The pings themselves (up to
20 in flight on 2 cores) run beside the agents, so the figure is pessimistic.
`);
  return out.join('\n');
}

function rssSection(r: Results): string {
  const { f, d } = data(r, 'd');
  const b = data(r, 'b').d as CreateLatencyResult | undefined;
  const out = [`## (d) control-plane RSS

**What it measures.** The resident memory (\`VmRSS\` from \`/proc/PID/status\`) of the
\`butter server\` process from (b). It is read right after (b), with its VMs, the 8 nodes and
the audit events in the store, and before anything else asks the server for anything. Idle
RSS (read just after start-up) and peak RSS (\`VmHWM\`) are given for context. The issue sets
no goal, so the figure is reported.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

| RSS after (b) | VMs in the store | idle after start-up | peak (VmHWM) |
| ---: | ---: | ---: | ---: |
| **${d.rssMiB} MiB** | ${d.vms}${b ? ` (${b.options.warmup} warm-up + ${b.ok})` : ''} | ${d.idleMiB} MiB | ${d.peakMiB} MiB |

Most of it is there before the first request: the Node.js runtime, Fastify and SQLite${b?.transport === 'https' ? ' and TLS' : ''}
(the idle figure). Registering the nodes and creating the VMs added
${Math.round(d.rssMiB - d.idleMiB)} MiB, which includes garbage not yet collected after the
burst.
`);
  return out.join('\n');
}

const num = (x: number) => x.toLocaleString('en-US');

function placementSection(r: Results): string {
  const { f, d } = data(r, 'e');
  const out = [`## (e) durable placements per second

**What it measures.** 10,000 placements over 1,000 simulated nodes, each durable before it is
acknowledged, in placements per second. **Goal: >= ${num(PLACEMENT_GOAL_PER_S)}/s** on this machine, judged on
the better of the two ways below. For scale: HashiCorp's C1M reached 3,750 placements/s with
five Nomad servers, and the Kubernetes scheduler's gate is 100 pods/s. In the same run the bench
measures the ceiling the disk sets: the raw rate of durable SQLite commits.

**How.** \`bench/placement.ts\` (\`benchPlacement()\`) drives the control plane's service layer in
the bench process, without HTTP, so the figure is the scheduler and the store. It makes a fresh
store with 1,000 nodes that have reported (64 CPUs, 512 GiB, 16 TiB each, driver \`sim\`) and
one image. Each placement is a VM of 512M and 1G spread over 50 anti-affinity keys, so the
scheduler also counts VMs of the same key per zone and node. A placement is what
\`POST /v1/vms\` does inside its transaction: schedule over the cached view of the nodes,
check the chosen node's \`alloc_rev\`, allocate an address and a MAC, insert the VM and its
audit event, mark the node's desired state. The store is WAL with \`synchronous=FULL\`. It is
measured two ways, each on a fresh store:
- **one at a time**: one transaction and one fsync per placement;
- **${d?.inFlight ?? 256} in flight**, as the API does it (\`createQueued\`): placements that arrive in the
  same turn of the event loop share one transaction and one fsync (group commit, up to 256
  per batch), each in its own savepoint, and each is answered only after its batch is durable.

**The ceiling.** Tiny transactions (one 200-byte \`INSERT\`) on a fresh database in the same
directory, WAL, \`synchronous=FULL\`, for 3 s: what fsync allows one committer on this disk.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const best = Math.max(d.sequentialPerSecond, d.concurrentPerSecond);
  const perPlacementMs = 1000 / d.concurrentPerSecond;
  out.push(`### Results (${r.date.slice(0, 10)})

| one at a time | ${d.inFlight} in flight (group commit) | ceiling: durable SQLite commits | goal |
| ---: | ---: | ---: | ---: |
| ${num(d.sequentialPerSecond)}/s | **${num(d.concurrentPerSecond)}/s** | ${num(d.durableCommitsPerSecond)}/s | >= ${num(PLACEMENT_GOAL_PER_S)}/s |

Status: **${STATUS[f!.status]}** (${num(best)}/s, goal >= ${num(PLACEMENT_GOAL_PER_S)}/s${best < PLACEMENT_GOAL_PER_S ? `: ${(PLACEMENT_GOAL_PER_S / best).toFixed(1)} times short` : ''}).
${num(d.nodes)} nodes, ${num(d.placements)} placements each way.

### Where the time goes

- **The fsync is not the limit.** One at a time, every placement pays its own fsync, and the
  disk allows ${num(d.durableCommitsPerSecond)} durable commits/s (${(1000 / d.durableCommitsPerSecond).toFixed(2)} ms each). With group commit one fsync serves
  up to 256 placements, so its share is a few microseconds each. What remains,
  ${perPlacementMs.toFixed(2)} ms per placement with ${d.inFlight} in flight, is CPU on the one thread that runs
  both the JavaScript and SQLite.
- **Scheduling is no longer most of it.** Every placement still considers all 1,000 nodes
  (hard constraints, capacity under the group's overcommit ratios, anti-affinity counts for the
  spread key, the policy's choice), but over \`core/placement-index.ts\`: the nodes' numbers
  in typed arrays, scanned without allocating. Over node objects built from database rows the
  same scan cost about 1 ms per placement, nearly all of it cache misses; over the columns,
  tens of microseconds. The placement itself is about eight SQL statements in the transaction
  (the name check, the chosen node re-read in one statement with its usage and group ratios,
  the \`alloc_rev\` bump, the network, the VM and event inserts, the desired-state mark; a MAC
  collision is caught by its UNIQUE index instead of a lookup).
  A CPU profile of the ${d.inFlight}-in-flight run on this machine (2026-11-22, with the index; not
  repeated on every run) put most of the remaining time in SQLite executing those statements and
  committing, then the re-read of the chosen node (about 30 µs) and the index's scan (about 25 µs).
- **${best >= PLACEMENT_GOAL_PER_S ? 'This run met the goal.' : 'This run missed the goal.'}** Before the index the same benchmark measured 1,541/s (2026-11-22).
  The disk is not what stands in the way: group commit already takes the fsync out of the per-placement cost.
`);
  return out.join('\n');
}

function clusterSection(r: Results): string {
  const { f, d } = data(r, 'f');
  const out = [`## (f) 1,000 agents heartbeating; control-plane RSS with 10,000 VMs

**What it measures.** 1,000 simulated agents heartbeating every 5 s against one control plane:
the heartbeat's round-trip, **goal: p99 <= ${HEARTBEAT_P99_GOAL_MS} ms**, with no VMs and again with 10,000 VMs
on the nodes. And the control plane's resident memory with those 10,000 VMs, **goal: <= 200 MB**
(judged as 200 × 10^6 bytes, 190.7 MiB, the stricter reading).

**How.** \`bench/cluster-scale.ts\` starts \`butter server\` as its own process, over HTTPS with
its CA, as for (b). It registers 1,000 nodes through the API (\`POST /v1/nodes\` gives each a
node token), then starts 1,000 real agents (\`Agent\` from \`src/agent/agent.ts\` with the
simulated driver, as \`butter sim\` runs them) in the bench process, 10 ms apart so their 5 s
heartbeats are spread over the period as independent agents' are. Each has its own state dir,
node token and HTTPS connections, and reports 64 CPUs, 256 GiB and 10 TiB. Each agent long-polls
its desired state, reconciles, reports every 5 s and after every reconcile (at least every 10 s,
the long-poll's timeout), takes console input on that same watch, and ships its consoles every 5 s. Every
\`nodeReport\` call is a heartbeat here, timed in the agent's client from just before the SDK
call to its decoded answer. In the control plane a report that changes something (a VM's state,
a deletion confirmed) is a durable write (SQLite, \`synchronous=FULL\`); one that only says
"still here" is noted in memory (\`server/liveness.ts\`). Each agent's requests are streams of
one HTTP/2 connection (\`sdk/h2-fetch.ts\`). The phases:
1. **No VMs**: 5 s after the last agent started, heartbeats are measured for ${d?.options.steadyS ?? 30} s.
2. **Creating** (context, not judged): 10,000 \`POST /v1/vms\` (1 CPU, 512M, 1G each), ${d?.options.createConcurrency ?? 32} in
   flight, spread over the nodes by the scheduler; each wakes its node's agent, which starts the
   VM on its simulated driver and reports it \`running\`. The phase ends 5 s after every VM
   runs on its agent.
3. **With 10,000 VMs**: heartbeats measured for ${d?.options.loadedS ?? 30} s; each report now carries the node's VMs.
   Then the control plane's \`VmRSS\` is read (rss.ts), before anything else asks it for anything.

**Pessimistic by construction.** The 1,000 agents run in the bench process, on the same
${r.machine.cores} cores as the control plane, so every heartbeat's time includes the agents' own work:
TLS, JSON, and an event loop shared by 1,000 agents. The table shows how late that event loop
ran and how much CPU each side used, to tell the two apart. Real agents each have a machine.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const row = (label: string, p: HeartbeatPhase) =>
    `| ${label} | ${num(p.reports)} | ${p.p50Ms} ms | ${p.p90Ms} ms | **${p.p99Ms} ms** | ${p.maxMs} ms | ${p.errors} | ${p.quiet.p50Ms} / ${p.quiet.p99Ms} ms | ${p.agentsLoopDelayP99Ms} / ${p.agentsLoopDelayMaxMs} ms | ${p.agentsCpuCores} | ${p.serverCpuCores} | ${pct(p.machineBusy)} |`;
  const rssMB = Math.round((d.rssMiB * 2 ** 20) / 1e6);
  const ours = (p: HeartbeatPhase) => (p.agentsCpuCores + p.serverCpuCores) / r.machine.cores;
  const others = (p: HeartbeatPhase) => Math.max(0, p.machineBusy - ours(p));
  const judged = [d.steady, d.loaded];
  const quietMiss = judged.some((p) => p.quiet.p99Ms > HEARTBEAT_P99_GOAL_MS);
  const agentsMiss = judged.some((p) => p.p99Ms > HEARTBEAT_P99_GOAL_MS);
  const busiest = Math.max(...judged.map(others));
  out.push(`### Results (${r.date.slice(0, 10)})

Heartbeat round-trips (\`nodeReport\`), as the agents saw them and as the quiet probe saw them:

| phase | heartbeats | p50 | p90 | p99 | max | errors | quiet probe p50 / p99 | agents' event-loop delay p99 / max | agents' CPU (cores) | server CPU (cores) | machine busy |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${row(`no VMs (${d.steady.windowS} s)`, d.steady)}
${row(`creating the VMs (${d.creating.windowS} s; not judged)`, d.creating)}
${row(`with ${num(d.runningVms)} VMs (${d.loaded.windowS} s)`, d.loaded)}

| control-plane RSS | | open sockets |
| --- | ---: | ---: |
| idle, after start-up | ${d.idleRssMiB} MiB | |
| ${num(d.readyNodes)} agents joined, no VMs | ${d.joinedRssMiB} MiB | ${num(d.joinedSockets)} |
| **with ${num(d.runningVms)} VMs running** | **${d.rssMiB} MiB (${rssMB} MB)** | ${num(d.sockets)} |
| peak (VmHWM) | ${d.peakMiB} MiB | |

Status: **${STATUS[f!.status]}** (heartbeat p99 ${d.steady.p99Ms} ms with no VMs and ${d.loaded.p99Ms} ms with ${num(d.runningVms)} VMs, goal <= ${HEARTBEAT_P99_GOAL_MS} ms;
RSS ${d.rssMiB} MiB = ${rssMB} MB, goal <= 200 MB${d.runningVms !== d.vms ? `; only ${num(d.runningVms)} of ${num(d.vms)} VMs were running at the end` : ''}).

- **Setting up:** the ${num(d.nodes)} nodes were registered in ${d.registerS} s and their agents started (each
  having reported once) in ${d.joinS} s; ${num(d.readyNodes)} nodes were \`ready\`.
- **The creates:** ${num(d.vms)} creates took ${d.createS} s (${num(d.createsPerSecond)}/s, ${d.options.createConcurrency} in flight, ${d.createErrors} errors${d.createErrorSamples.length ? `: ${d.createErrorSamples.join('; ')}` : ''}),
  while the ${num(d.nodes)} agents kept reporting and started the VMs as they came: each create
  wakes its node's long-poll, and the agent fetches its desired state, starts the VM and reports.
  Every VM ran on its agent ${d.convergeS} s after the last create was answered; ${num(d.runningVms)} were
  \`running\` in the control plane at the end.

**Where a heartbeat's time goes.** The quiet probe (\`bench/heartbeat-probe.ts\`) is a process
of its own that sends the same report for one more node (cordoned, so it gets no VMs) every
100 ms over its own connection. Its event loop does nothing else, so its round-trips are the
control plane's side of a heartbeat: the network, TLS, and waiting in the server's one event
loop behind whatever it runs (other agents' requests, the writes of the VMs' state changes, each
a synchronous SQLite commit with an fsync). The agents' figure adds their own process
on top: its event loop, shared by ${num(d.nodes)} agents, ran up to ${d.steady.agentsLoopDelayP99Ms} / ${d.loaded.agentsLoopDelayP99Ms} ms late at the 99th
percentile and ${d.steady.agentsLoopDelayMaxMs} / ${d.loaded.agentsLoopDelayMaxMs} ms at worst (no VMs / ${num(d.runningVms)} VMs), and a reply that has arrived
waits that long. ${
    quietMiss
      ? `Here even the quiet probe's p99 (${d.steady.quiet.p99Ms} / ${d.loaded.quiet.p99Ms} ms) is over the goal, so the control plane itself stalled.`
      : agentsMiss
        ? `The quiet probe's p99 (${d.steady.quiet.p99Ms} / ${d.loaded.quiet.p99Ms} ms) is within the goal, so the miss is the agents' side: their process stalled, and every heartbeat in flight or due then waited.`
        : `The quiet probe's p99 (${d.steady.quiet.p99Ms} / ${d.loaded.quiet.p99Ms} ms) is within the goal.`
  } Our two processes used ${pct(ours(d.steady))} / ${pct(ours(d.loaded))} of the machine; ${busiest > 0.1 ? `other work took about ${pct(busiest)} more at worst, so this run's tail is pessimistic.` : 'little else ran on it.'}

**How much it varies.** The agents' event loop shared by 1,000 agents pauses in its full
garbage collections (34–77 ms in a run with \`--trace-gc\`, before the agents shared one
connection each); a heartbeat in flight then waits. Runs beside other work (someone's
\`npm ci\`, a test suite) measured several times these tails, at no more server CPU.

**Where the memory goes.** Mostly connections. ${num(d.nodes)} agents hold ${num(d.joinedSockets)} sockets: one HTTP/2
connection each, carrying its one long-poll (desired state and console input), its reports
and console uploads. (Over HTTP/1.1 keep-alive pools they held three to four each; this
benchmark then measured 345–435 MiB with the VMs, on 2026-11-22.) A TLS connection costs the
server about 60 KB before HTTP (OpenSSL's state; measured separately on this machine, 500 idle
TLS sockets to a bare Node server) and HTTP/2 adds about 35 KB (nghttp2's session); a
connection that once carried a larger answer (an agent's desired state with its VMs) keeps
more of its buffers. Each pending long-poll holds about 10 KB of heap (request, reply and
stream objects): one per agent since console input rides on the desired-state watch (two
before, 10 MiB more at 1,000 agents). The joins added
${Math.round(d.joinedRssMiB - d.idleRssMiB)} MiB here; the ${num(d.runningVms)} VMs added ${Math.round(d.rssMiB - d.joinedRssMiB)} MiB more.
The rest is V8's heap policy: the live heap is about 40 MB after a full GC with 1,000 agents
and 10,000 VMs (\`--trace-gc\` on the server), but with V8's defaults it grew to 2–3 × that
(126 MB measured) before the next full GC. \`bin/butter\` runs Node with 2 MB young-generation
semi-spaces and \`--heap-growing-percent=30\` (the old generation grows 30 % past what the last
full GC kept); with those, four runs on 2026-11-22 measured 185–188 MiB with the VMs, where the
same code without the growth cap measured 192 MiB, and 209–303 MiB before the watch merge.
By a later session the same day (VPN, several NICs, gateway namespaces) seven runs measured
188.5–191.7 MiB, on both sides of the goal (190.7 MiB). \`bin/butter\` now also sets
\`MALLOC_MMAP_THRESHOLD_=32768\`: glibc gives each allocation of 32 KB and up a mapping of
its own, returned when freed, instead of carving it from heaps that fragment and stay
resident. Five runs with it measured 180.8–182.7 MiB (\`MALLOC_ARENA_MAX=2\` instead: 201.1 and
203.8 MiB). The price may be in the heartbeat tail: with 10,000 VMs its p99 measured
30.1–50.1 ms in those five runs (one just over the goal), against 21.8–59.7 ms in six runs
without it (one over). The machine was noisy that afternoon, and five or six runs do not
settle which way it leans.
By 2026-12-02 the same figure had crept to 209–229 MiB (the web panel, metrics, snapshots,
warm starts and scale to zero had all added code and state). A heap snapshot of the server
with the VMs put 31 MiB in nghttp2 (31 KB per session), of which the HPACK tables for headers
each way took ~10 KB once agents' reports had filled them; the server now sets the header
table size to 0 both ways (nghttp2 21 MiB in the next snapshot, RSS 209 → 198 MiB). glibc's
own accounting (\`malloc_info\`) showed its heap in use, not fragmented: \`malloc_trim\` gave
back nothing. \`MALLOC_MMAP_THRESHOLD_\` went from 32768 to 16384: its heap fell from 69.8 to
51.4 MiB and the RSS to 186 MiB (8192: 186 MiB too). Names are no longer sorted with
\`localeCompare\`, whose first call maps ~2.5 MiB of ICU's collation data. With all that the
same build measured 186.0 and 195.7 MiB; with \`--heap-growing-percent=15\` instead of 30
(V8 collects the old generation sooner, so less garbage is resident when the figure is read)
183.9, 183.2 and 181.9 MiB.
The agents' process held ${d.agentsRssMiB} MiB at the end; it is not part of the figure.
`);
  return out.join('\n');
}

function serviceCreateSection(r: Results): string {
  const { f, d } = data(r, 'j');
  const out = [`## (j) a 100-instance service vs 100 single VM creates

**What it measures.** How long creating a service of 100 instances over 1,000 simulated nodes
takes until every instance is placed, against 100 single VM creates of the same size in the
same run. **Goal: service / 100 creates <= 1** (the service is not slower).

**How.** \`bench/service-create.ts\` (\`benchServiceCreate()\`) runs \`butter server\` in its own
process, as (b) does, and registers 1,000 nodes through the API, put in 4 zones, each
reporting every 5 s from the bench's process (simulated nodes that run nothing, so this is
placement, not boots). A network, a 64 KiB image and one warm-up create of each kind come
first. Each of 3 rounds then times, one after the other: \`POST /v1/services\` with
\`count: 100\` and \`availability_zones: 4\` (its answer comes once the address block and all
100 instances are placed, spread over the zones and then the nodes, rendered and durable: one
transaction; every instance is checked to have a node); 100 \`POST /v1/vms\` one after the other,
as 100 \`butter vm create\`s would be (each answered once placed and durable); and, for
context, the same 100 with 32 in flight (group commit). The figures are medians of the rounds;
the ratio is service / one after the other.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const j = d as ServiceCreateResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| | service (100 instances) | 100 creates, one after the other | 100 creates, ${j.options.inFlight} in flight |
| --- | ---: | ---: | ---: |
${j.serviceMs.map((x, i) => `| round ${i + 1} | ${x} ms | ${j.sequentialMs[i]} ms | ${j.concurrentMs[i]} ms |`).join('\n')}
| **median** | **${j.serviceMedianMs} ms** | ${j.sequentialMedianMs} ms | ${j.concurrentMedianMs} ms |

Status: **${STATUS[f!.status]}** (ratio ${j.ratio.toFixed(3)}, goal <= 1; against ${j.options.inFlight} in flight
${j.ratioConcurrent.toFixed(3)}). The last service's instances: ${Object.entries(j.perZone)
    .map(([z, n]) => `${n} in ${z}`)
    .join(', ')}, on ${j.distinctNodes} distinct nodes. One request and one fsync make the
whole service, where single creates pay a round trip and a commit each.
`);
  return out.join('\n');
}

function serviceRolloutSection(r: Results): string {
  const { f, d } = data(r, 'k');
  const out = [`## (k) rolling update of a 10-instance service

**What it measures.** A rolling update of a service of 10 instances on simulated nodes: how
long it takes, and the most instances ever missing from the service's DNS answer meanwhile.
**Goal: 0 missing.** The time is reported (no goal).

**How.** \`bench/service-rollout.ts\` (\`benchServiceRollout()\`) runs \`butter server\` in its
own process and 5 real agents with the simulated driver in the bench's process (2 zones), so
each replacement really goes \`running\` through an agent's reconcile and report before the
rollout takes an old instance away. The DNS answer is what the nodes are sent: the desired
state's \`networks[].services[].ips\`, which each agent renders into dnsmasq's addn-hosts. One
watcher per node long-polls that node's desired state as its agent does (\`since\` the last
revision), so it sees every state the node can be sent; missing is the service's count less
the addresses in an answer. First the watchers are shown to see a loss: one instance is
stopped (it leaves the answer) and started again. Then the update changes a template variable
(revision 2), and a rollback to revision 1 is measured the same way. Each is timed from the
request until every instance runs at the new revision with the rollout done; the watching
goes on 1 s after. Replacements are counted from the audit log's VM creates.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const k = d as ServiceRolloutResult;
  const row = (what: string, p: ServiceRolloutResult['update']) => `| ${what} | ${p.ms} ms | ${p.replaced} | **${p.maxMissing}** | ${p.maxIps} | ${p.samples} |`;
  out.push(`### Results (${r.date.slice(0, 10)})

| | time | instances replaced | most missing from the DNS answer | most addresses in it | answers sent |
| --- | ---: | ---: | ---: | ---: | ---: |
${row('update (a variable changed)', k.update)}
${row('rollback to revision 1', k.rollback)}

Status: **${STATUS[f!.status]}** (goal: 0 missing). A replacement runs beside the instance it
replaces until the rollout removes that one, so an answer holds up to ${k.instances + 1} addresses.
`);
  return out.join('\n');
}

function pathEnforceSection(r: Results): string {
  const { f, d } = data(r, 'l');
  const out = [`## (l) path change → enforcement on a remote node

**What it measures.** How soon a path change is enforced where it matters, on the node of the
destination: from calling \`paths.add(web, db, 5432)\` until the first packet from web's
address to db's address:5432 is admitted there, and from \`paths.remove\` until the first such
packet is dropped. **Goal: p99 < 1 s, both.**

**How.** \`bench/path-enforce.ts\` (\`benchPathEnforce()\`) runs a control plane and two real
\`Agent\`s in this process, each with a \`LinuxNetworkHost\` in a "machine" network namespace
of its own (bridge, gateway namespace, dnsmasq, \`inet butter\`, \`bridge butter\`,
\`inet butter_paths\`) and the simulated VM driver: services \`web\` (placed on n1) and \`db\`
(on n2) have one instance each, whose tap the network host makes; no QEMU runs. On n2 a probe
port on the network's bridge (as \`path verify\`'s probe: a veth to a namespace that owns web's
address, no ARP, db's MAC as a permanent neighbour) sends a TCP SYN to db:5432 every 10 ms. A
bridge table counts each probe twice: at forward priority -100, before br_netfilter runs the
\`inet\` tables (sent), and at priority 100, after they admitted it (admitted, then dropped:
nothing reaches anyone). So the verdict is that of n2's \`inet butter_paths\` as its agent
applied it from its desired state, and the time covers the API call, the commit, n2's watch
answering, its apply and \`nft -f\`. The counters are read in a loop, 10 ms apart (each read is
an \`nft\` process, so the gap between reads is longer: it is given below); add is seen when
admitted moves, remove when a probe is sent and not admitted. 20 rounds of add then remove.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const l = d as PathEnforceResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| | p50 | p99 | worst |
| --- | ---: | ---: | ---: |
| \`paths.add\` → first probe admitted on n2 | ${l.add.p50Ms} ms | **${l.add.p99Ms} ms** | ${Math.max(...l.addMs)} ms |
| \`paths.remove\` → first probe dropped on n2 | ${l.remove.p50Ms} ms | **${l.remove.p99Ms} ms** | ${Math.max(...l.removeMs)} ms |

Status: **${STATUS[f!.status]}** (goal: p99 < 1 s, both). With ${l.rounds} rounds the p99 is the
worst round. Resolution: a probe every 10 ms, the counters read every ${l.pollMs} ms (median).
`);
  return out.join('\n');
}

function pathScaleSection(r: Results): string {
  const { f, d } = data(r, 'm');
  const out = [`## (m) paths rule scale

**What it measures.** The size of \`inet butter_paths\` for one node hosting instances of every
service, and how long it takes to render and to load: 1,000 services, 5,000 paths and 10,000
instances, and a tenth of that to show how it grows. **Goal: apply < 1 s.**

**How.** \`bench/path-scale.ts\` (\`benchPathScale()\`) builds a model of N services (a /28
block each, 10 instances each) and M distinct paths between them (a port each, one in five
UDP), renders the node's table with \`renderPathsRuleset\` (core/paths/nft-paths.ts) and loads
it with \`nft -f\` into a fresh network namespace, twice: the first load, then the same text
again, which (delete and declare in one transaction) is the replacement every later apply
does. Elements and sets are counted from the kernel's listing (\`nft -j list table\`).
Instances are in no element (a service's block covers them), so the table follows services
and paths; "instance pairs" is what a table of one rule per admitted pair would hold.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const m = d as PathScaleResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| services | paths | instances | instance pairs | text | elements | sets | render | first load | replace |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${m.points.map((p) => `| ${p.services} | ${p.paths} | ${p.instances} | ${p.instancePairs} | ${Math.round(p.bytes / 1024)} KiB | ${p.elements} | ${p.sets} | ${p.renderMs} ms | **${p.applyMs} ms** | **${p.replaceMs} ms** |`).join('\n')}

Status: **${STATUS[f!.status]}** (goal: every load < 1 s). Render time is in this process, the
first size's including the code's warm-up.
`);
  return out.join('\n');
}

function eventLatencySection(r: Results): string {
  const { f, d } = data(r, 'n');
  const out = [`## (n) live events: commit → received

**What it measures.** How soon a change reaches a client of \`GET /v1/events/stream\`: from
the commit to the Node SDK (\`client.events.stream\`) yielding its event, over HTTP/2 with TLS
on loopback, against a \`butter server\` process. The issue's goal is for a browser
(p99 < 200 ms, the panel's bench); this is the server's and the SDK's share. **Goal: p99 < 200 ms.**

**How.** \`bench/event-latency.ts\` (\`benchEventLatency()\`) creates a token (one event, one
revision) and waits for its message before the next, 500 times. "Commit" is the event's own
\`at\` (taken in the committing transaction, millisecond resolution); "API call" from sending
the request, which adds the request's own way in and the fsync.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

| | p50 | p99 | worst |
| --- | ---: | ---: | ---: |
| commit → received | ${d.commit.p50Ms} ms | **${d.commit.p99Ms} ms** | ${d.commit.maxMs} ms |
| API call → received | ${d.call.p50Ms} ms | ${d.call.p99Ms} ms | ${d.call.maxMs} ms |

Status: **${STATUS[f!.status]}** (goal: p99 < 200 ms; ${d.changes} changes, ${d.transport}).
`);
  return out.join('\n');
}

function panelSection(r: Results): string {
  const { f, d } = data(r, 'o');
  const out = [`## (o) the web panel: change → shown in a browser; first load

**What it measures.** How soon a change shows in a browser that has the panel open, and what
opening the panel costs. **Goal: p99 < 200 ms** (change → shown).

**How.** \`bench/panel.ts\` (\`benchPanel()\`) starts \`butter server\` (server-process.ts) and
headless Chromium (\`playwright-core\`, Debian's \`chromium\`), signs in with the admin token
(a session cookie) and opens the audit log page, which follows \`GET /v1/events/stream\`. The
page itself then makes 200 changes one after the other (\`POST /v1/tokens\`, each with its own
description, by \`fetch\` with the session's CSRF header) and, on its own performance clock,
times each until a MutationObserver sees the event's row added to the table: **round trip** is
from sending the call to the row shown (the call, the commit with its fsync, the stream, the
render); **after the answer** is from the call's answer (the change committed) to the row
shown, 0 when the row came first. Both ends are read by the same clock in the browser. A first
change, not counted, makes sure the stream is connected. **First load:** a fresh browser
context (empty cache, the session cookie) opens \`/#/overview\`; bytes are the sum of CDP's
\`Network.loadingFinished\` \`encodedDataLength\` (headers and bodies as on the wire) of every
request that finished (the event stream stays open) until the first screen has its data, and
time to interactive is the page's clock when the signed-in shell is in the DOM (a
MutationObserver installed before the page's scripts run). Median of 5 loads.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  const p = d as PanelBenchResult;
  out.push(`### Results (${r.date.slice(0, 10)})

| | p50 | p99 | worst |
| --- | ---: | ---: | ---: |
| change sent → row shown (round trip) | ${p.roundTrip.p50Ms} ms | **${p.roundTrip.p99Ms} ms** | ${p.roundTrip.maxMs} ms |
| change answered → row shown | ${p.afterAnswer.p50Ms} ms | ${p.afterAnswer.p99Ms} ms | ${p.afterAnswer.maxMs} ms |

${p.changes} changes; ${p.shownBeforeAnswer} rows appeared before their call had answered.
Status: **${STATUS[f!.status]}** (goal: p99 < 200 ms).

| first load (${p.transport}, Chromium ${p.chromium}) | median |
| --- | ---: |
| bytes transferred | ${p.firstLoad.bytes.toLocaleString('en-US')} B (${Math.round(p.firstLoad.bytes / 1024)} KiB) |
| requests | ${p.firstLoad.requests} |
| DOMContentLoaded | ${p.firstLoad.domContentLoadedMs} ms |
| time to interactive (signed-in shell shown) | ${p.firstLoad.interactiveMs} ms |
| load event | ${p.firstLoad.loadMs} ms |
`);
  return out.join('\n');
}

function snapshotPauseSection(r: Results): string {
  const { f, d } = data(r, 'p');
  const out = [`## (p) disk snapshot pause

**What it measures.** How long the guest is paused for a crash-consistent disk snapshot of a
running VM (issue 16). **Goal: p50 < 50 ms.**

**How.** \`bench/snapshot-pause.ts\` (\`benchSnapshotPause()\`) starts a tiny VM (128 MiB, no NIC)
with the QEMU driver, waits for its shell, and takes 10 snapshots through the driver's own path
(\`agent/host/qemu-snapshots.ts\`): the new qcow2 layer is made before the pause, then QMP
\`stop\`, \`blockdev-snapshot-sync\` onto it, the links, \`cont\`. The guest writes 256 KiB and
syncs between snapshots. The pause is the driver's own figure, from \`stop\` to the answer of \`cont\`.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

${d.snapshots} snapshots (${d.accel}): p50 **${d.p50Ms} ms**, max **${d.maxMs} ms**; each: ${d.pausesMs.map((x) => `${x}`).join(', ')} ms.

Status: **${STATUS[f!.status]}**.
`);
  return out.join('\n');
}

function memorySnapshotSection(r: Results): string {
  const { f, d } = data(r, 'q');
  const out = [`## (q) suspend and resume (memory snapshots)

**What it measures.** How long \`vm suspend\` takes to save a running 256 MB tiny VM's RAM and
device state and end its QEMU, how long \`vm resume\` takes from QEMU's launch to \`running\`,
and the size of the memory state file (issue 16). No goal in the issue: reported.

**How.** \`bench/memory-snapshot.ts\` (\`benchMemorySnapshot()\`) starts a tiny VM (256 MiB, no
NIC) with the QEMU driver, waits for its shell, then suspends and resumes it 5 times through
the driver's own path: QMP \`migrate\` to \`exec:cat > FILE\` until \`query-migrate\` says
completed, then \`quit\`; a QEMU launched with \`-S -incoming defer\`, \`migrate-incoming\` from
\`exec:cat FILE\`, \`cont\`. After each resume the guest's shell must answer on its console.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

${d.cycles} cycles (${d.accel}): suspend p50 **${d.suspendP50Ms} ms** (each: ${d.suspendMs.join(', ')} ms); resume to running p50 **${d.resumeP50Ms} ms** (each: ${d.resumeMs.join(', ')} ms); memory state ${d.stateBytes.map((b) => `${Math.round(b / 2 ** 20)} MiB`).join(', ')} of ${d.memoryMiB} MiB.

Status: **${STATUS[f!.status]}**.
`);
  return out.join('\n');
}

function warmStartSection(r: Results): string {
  const { f, d } = data(r, 'r');
  const out = [`## (r) warm start (warm images)

**What it measures.** \`vm create\` of a VM whose image is warm on its node (issue 16), from the
request to the guest answering TCP, against cold boots of the same image and size in the same
run. Goal (the issue's): p50 ≤ 0.5 s and ≥ 10× faster than a cold boot.

**How.** \`bench/warm-start.ts\` (\`benchWarmStart()\`) runs \`butter up\` in a network namespace;
\`bench/warm-client.ts\`, inside it, creates VMs of \`tiny\` (256 MiB) one at a time through the
SDK, each with a user-data script starting busybox httpd on port 8080, and starts a new
\`GET /\` every 20 ms (each given 3 s, side by side) until one answers 200; then deletes the VM and waits until it is gone and 1 s more (the node settles).
First the cold VMs (the image is not warm yet), then \`image warm tiny --memory 256M\`, then
the warm ones (each must say \`start: warm\`). Each of these is the only VM on the node, so its
network is torn down after it and built again for the next (part of every figure). Then a VM
\`resident\` is started on the network and a few more warm starts show the figure with the
network already up, as on a node in use. The steps of a warm start: the API's answer, the
agent's \`started warm from … in N ms\` (QEMU's launch, the state loaded, \`cont\`),
\`running\` (the guest fetched its metadata; it set its address from its identity, without
DHCP), TCP; and the guest's own steps (\`butter-tiny: warm step\` lines on its console, its
uptime after it took its identity).
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

Warm: p50 **${d.warmP50Ms} ms**, p99 ${d.warmP99Ms} ms (each: ${d.warmMs.join(', ')} ms). Cold: p50 **${d.coldP50Ms} ms** (each: ${d.coldMs.join(', ')} ms). Ratio **${d.ratio}×**.
Warm steps, p50 after the request: API answer ${d.warmSteps.ackMs} ms, QEMU restore ${d.warmSteps.qemuRestoreMs ?? '?'} ms, \`running\` ${d.warmSteps.runningMs ?? '?'} ms, TCP ${d.warmSteps.tcpMs} ms. In the guest, p50 after it took its identity: ${Object.entries(d.guestSteps ?? {}).map(([k, v]) => `${k} ${v} ms`).join(', ') || 'not seen'}. With the network already up on the node: p50 **${d.warmNetworkUpP50Ms ?? '?'} ms**, p99 ${d.warmNetworkUpP99Ms ?? '?'} ms over ${d.netRuns ?? '?'}. Warming the image took ${Math.round(d.warmImageMs / 100) / 10} s.

Status: **${STATUS[f!.status]}**.
`);
  return out.join('\n');
}

function memorySnapshotPauseSection(r: Results): string {
  const { f, d } = data(r, 't');
  const out = [`## (t) memory snapshot pause

**What it measures.** How long the guest is paused for a memory snapshot (\`vm snapshot
--memory\`: its RAM and device state saved with a disk snapshot, the VM running on after it) of
a running 256 MB tiny VM, and the size of its state file (issue 16). No goal in the issue:
reported, beside (p)'s disk-only pause.

**How.** \`bench/memory-snapshot-pause.ts\` (\`benchMemorySnapshotPause()\`) starts a tiny VM
(256 MiB, no NIC) with the QEMU driver, waits for its shell, and takes 5 memory snapshots
through the driver's own path (\`agent/host/qemu-snapshots.ts\`): a live QMP \`migrate\` to
\`exec:cat > FILE\` with the capability \`pause-before-switchover\`, so the guest runs while its
RAM is copied; in the pause at the end (vCPUs stopped, disks still active)
\`blockdev-snapshot-sync\`, then \`migrate-continue\`, \`cont\`. The pause is QEMU's own, from its
\`STOP\` event to its \`RESUME\` event. After each one the guest's shell must answer.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

${d.snapshots} memory snapshots (${d.accel}): pause p50 **${d.p50Ms} ms**, max **${d.maxMs} ms**; each: ${d.pausesMs.join(', ')} ms; state ${d.stateBytes.map((b) => `${Math.round(b / 2 ** 20)} MiB`).join(', ')} of ${d.memoryMiB} MiB.

Status: **${STATUS[f!.status]}**.
`);
  return out.join('\n');
}

function wakeFromZeroSection(r: Results): string {
  const { f, d } = data(r, 's');
  const out = [`## (s) wake from zero (scale to zero)

**What it measures.** How long a client waits for the first byte of an answer from a VM that
its agent suspended for idleness (\`--idle-stop\`), from its \`connect()\`: the activator holds
the VM's tap and the SYN, ends its socat, resumes the VM from its memory state, and sends the
held SYN again toward it (issue 16). Goal: p99 ≤ 1 s under TCG.

**How.** \`bench/wake-from-zero.ts\` (\`benchWakeFromZero()\`) runs \`butter up\` in a namespace,
creates a 256 MB tiny VM with \`--idle-stop 5s\` serving busybox httpd, and 5 times waits
until it is suspended for idleness, then connects from the host (Python, in the namespace)
and sends a GET; the figure is connect() → the first byte, on the client's clock. Beside it,
each \`wake\` event's own figure: the frame that woke it → the guest running again.
`];
  if (!d) return out.join('\n') + '\n' + notMeasured(f);
  out.push(`### Results (${r.date.slice(0, 10)})

${d.cycles} wakes: connect → first byte p50 **${d.p50Ms} ms**, p99 **${d.p99Ms} ms** (each: ${d.firstByteMs.join(', ')} ms); the agent's frame → running: ${d.agentWakeMs.join(', ')} ms.

Status: **${STATUS[f!.status]}**.
`);
  return out.join('\n');
}

export function renderMarkdown(r: Results): string {
  const rows = FIGURE_IDS.map((id) => {
    const f = r.figures.find((x) => x.id === id);
    return f ? `| (${id}) | ${f.title} | ${f.headline} | ${f.goal ?? '(none; reported)'} | **${STATUS[f.status]}** |` : `| (${id}) | | not run | | |`;
  });
  const m = r.machine;
  const notes: string[] = [];
  if (!r.build.ok) notes.push(`- \`tsc -p tsconfig.build.json\` failed before this run, so the CLI figures ran on the \`dist/\` that was already there: ${r.build.error?.split('\n')[0]}`);
  if (r.otherQemuProcesses) notes.push(`- ${r.otherQemuProcesses} qemu-system process(es) that were not ours were running when the bench started. They competed for the CPUs, so every figure is pessimistic.`);
  const loads = r.figures.map((f) => `(${f.id}) ${Math.round(f.cpuBusyBefore * 100)} % / ${f.loadAvg1}`).join(', ');
  const busy = r.figures.filter((f) => f.cpuBusyBefore >= 0.2);
  if (busy.length) notes.push(`- **The machine was busy with other work** before ${busy.map((f) => `(${f.id})`).join(', ')} (still at least 20 % CPU after waiting 20 s for it to quieten down). Those figures are pessimistic.`);
  return `# Benchmarks

<!-- Generated by \`npm run bench\` (bench/run.ts → bench/report.ts). Do not edit by hand: run it again. -->

\`npm run bench\` measures the figures of the issues side by side in one run. It prints
them, writes them to [\`bench/results.json\`](../bench/results.json) for machines, and rewrites
this page. It is a benchmark, not a timed test. Every figure is bounded in count and time and
cleans up after itself (namespaces, QEMU, dnsmasq, the server process, temp dirs). A figure
that fails is reported as an error while the others still run.

## Results: ${r.date}

| | figure | result | goal | status |
| --- | --- | --- | --- | --- |
${rows.join('\n')}

| machine | |
| --- | --- |
| CPU | ${m.cpuModel} |
| cores | ${m.cores} |
| memory | ${m.memoryGiB} GiB |
| OS / kernel | ${m.os} / ${m.kernel} |
| Node.js | ${m.node} |
| QEMU | ${m.qemu} |
| acceleration | ${m.accel}${m.accelReason ? ` (KVM refused: ${m.accelReason})` : ''} |

The run took ${Math.round(r.seconds)} s. Before each figure starts, the bench waits (up to 20 s) for the machine to be quiet, and before each boot of (a) up to 5 s. CPU busy in the second before each figure, and the 1-minute load average: ${loads}.
${notes.length ? '\n' + notes.join('\n') + '\n' : ''}
${bootSection(r)}
${createSection(r)}
${metadataSection(r)}
${rssSection(r)}
${placementSection(r)}
${clusterSection(r)}
${overlaySection(r)}
${meshJoinSection(r)}
${guestOverlaySection(r)}
${serviceCreateSection(r)}
${serviceRolloutSection(r)}
${pathEnforceSection(r)}
${pathScaleSection(r)}
${eventLatencySection(r)}
${panelSection(r)}
${snapshotPauseSection(r)}

${memorySnapshotSection(r)}

${warmStartSection(r)}

${wakeFromZeroSection(r)}

${memorySnapshotPauseSection(r)}
## Running it

\`\`\`sh
sudo npm run bench                # all of them; about ${Math.max(1, Math.round(r.seconds / 60))} min here
sudo BENCH_ONLY=b,d npm run bench # a subset: printed only, nothing written
BENCH_ONLY=e,f npm run bench      # the cluster figures (no root needed)
BENCH_ONLY=j,k npm run bench      # the services figures (no root needed)
sudo BENCH_ONLY=l,m npm run bench # the paths figures (namespaces, nft, dnsmasq)
BENCH_ONLY=n npm run bench        # live events: commit → SSE at an SDK client (no root needed)
BENCH_ONLY=o npm run bench        # the web panel in headless Chromium (no root needed)
sudo BENCH_ONLY=p npm run bench   # the disk snapshot pause (QEMU, the tiny image)
sudo BENCH_ONLY=q npm run bench   # suspend and resume of a 256 MB tiny VM (QEMU, the tiny image)
sudo BENCH_ONLY=r npm run bench   # warm start: vm create from a warm image → TCP, against cold boots
sudo BENCH_ONLY=s npm run bench   # wake from zero: connection → first byte of a VM asleep for idleness
sudo BENCH_ONLY=t npm run bench   # the memory snapshot pause of a 256 MB tiny VM (QEMU, the tiny image)
BENCH_BOOT_RUNS=5 ...             # more pairs for (a) (default 3)
BENCH_NO_BUILD=1 ...              # skip rebuilding dist/ (the CLI runs from it)
\`\`\`

(a) needs root, \`qemu-system-x86_64\`, \`qemu-img\`, \`dnsmasq\` and \`ip\`, like the host tests. It
makes its own network namespace and removes it afterwards. The exit status is 0 when every
figure was measured and 1 when one could not be. A missed goal is a result, not a failure of
the run.
`;
}
