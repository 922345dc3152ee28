/** The figures of `npm run bench`: what each measures, its goal, and how a run is judged. */
import type { BootResult } from './boot.ts';
import type { ClusterScaleResult } from './cluster-scale.ts';
import type { CreateLatencyResult } from './create-latency.ts';
import type { EventLatencyResult } from './event-latency.ts';
import type { MetadataBenchResult } from './metadata.ts';
import type { MeshJoinResult } from './mesh-join.ts';
import type { GuestOverlayResult } from './guest-overlay.ts';
import type { OverlayResult } from './overlay.ts';
import type { PanelBenchResult } from './panel.ts';
import type { PathEnforceResult } from './path-enforce.ts';
import type { PathScaleResult } from './path-scale.ts';
import type { PlacementResult } from './placement.ts';
import type { RssResult } from './rss.ts';
import type { ServiceCreateResult } from './service-create.ts';
import type { ServiceRolloutResult } from './service-rollout.ts';
import type { SnapshotPauseResult } from './snapshot-pause.ts';
import type { MemorySnapshotResult } from './memory-snapshot.ts';
import type { WakeFromZeroResult } from './wake-from-zero.ts';
import type { MemorySnapshotPauseResult } from './memory-snapshot-pause.ts';
import type { WarmStartResult } from './warm-start.ts';

export type FigureId = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g' | 'h' | 'i' | 'j' | 'k' | 'l' | 'm' | 'n' | 'o' | 'p' | 'q' | 'r' | 's' | 't';

/** Every figure, in the order they are reported. */
export const FIGURE_IDS: readonly FigureId[] = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't'];

/** Goals of the cluster figures (e) and (f). */
export const PLACEMENT_GOAL_PER_S = 5000;
export const HEARTBEAT_P99_GOAL_MS = 50;
export const OVERLAY_RATIO_GOAL = 0.9;
/** 200 MB, read as decimal megabytes (the stricter reading: 190.7 MiB). */
export const RSS_GOAL_BYTES = 200e6;
/** Goals of the paths figures (l) and (m). */
export const PATH_ENFORCE_P99_GOAL_MS = 1000;
export const PATH_APPLY_GOAL_MS = 1000;
/** The goal is for a browser (p99 < 200 ms); the SDK's share of it must leave room. */
export const EVENT_P99_GOAL_MS = 200;
/** Goal of the panel figure (o): a change shown in a connected browser. */
export const PANEL_EVENT_P99_GOAL_MS = 200;
/** Goal of the snapshot figure (p), issue 16. */
export const SNAPSHOT_PAUSE_GOAL_MS = 50;
/** Goal of the wake figure (s), issue 16: under TCG. */
export const WAKE_P99_GOAL_MS = 1000;
export type Status = 'pass' | 'fail' | 'error' | 'reported';

export interface FigureDef {
  id: FigureId;
  key: string;
  title: string;
  /** Human-readable goal; null when the issue sets none. */
  goal: string | null;
}

export const FIGURES: Record<FigureId, FigureDef> = {
  a: { id: 'a', key: 'createToMetadata', title: 'create → guest fetched its metadata, Butter vs bare QEMU', goal: 'Butter / bare <= 1.05' },
  b: { id: 'b', key: 'createVmLatency', title: 'create-VM API latency at 100 requests/s (simulated nodes)', goal: 'p99 <= 20 ms' },
  c: { id: 'c', key: 'metadataGet', title: 'metadata GET /meta-data latency', goal: 'p99 <= 5 ms' },
  d: { id: 'd', key: 'controlPlaneRss', title: 'control-plane resident memory with 1,000+ VMs', goal: null },
  e: { id: 'e', key: 'placementThroughput', title: 'durable placements per second, 10,000 over 1,000 nodes', goal: '>= 5,000/s' },
  g: { id: 'g', key: 'overlayThroughput', title: 'TCP over the full overlay (bridge → VXLAN → WireGuard) vs plain WireGuard, two machines', goal: 'overlay / plain >= 0.9' },
  h: { id: 'h', key: 'meshJoin', title: 'node join → full WireGuard mesh connectivity', goal: '< 1 s' },
  i: { id: 'i', key: 'guestOverlay', title: 'VM-to-VM TCP through real guests (tiny image, TCG), across the overlay and on one node', goal: null },
  j: { id: 'j', key: 'serviceCreate', title: 'a 100-instance service over 1,000 simulated nodes, vs 100 single VM creates', goal: 'service / 100 creates <= 1' },
  k: { id: 'k', key: 'serviceRollingUpdate', title: 'rolling update of a 10-instance service (simulated nodes): time, instances missing from its DNS answer', goal: '0 missing' },
  l: { id: 'l', key: 'pathEnforcement', title: 'path add / remove → first probe admitted / dropped on the remote node (real agents and tables)', goal: 'p99 < 1 s, both' },
  m: { id: 'm', key: 'pathRuleScale', title: 'inet butter_paths for one node: 1,000 services, 5,000 paths, 10,000 instances; size, render and apply', goal: 'apply < 1 s' },
  n: { id: 'n', key: 'eventLatency', title: 'a change committed → its server-sent event received by a Node SDK client (HTTP/2, loopback)', goal: 'p99 < 200 ms' },
  o: { id: 'o', key: 'panel', title: 'web panel in headless Chromium: change → shown in a connected page (p50/p99 over 200); first load: bytes and time to interactive (loopback)', goal: 'p99 < 200 ms' },
  p: { id: 'p', key: 'snapshotPause', title: 'guest paused for a disk snapshot of a running tiny VM (QMP stop, blockdev-snapshot-sync, cont), ~10 snapshots', goal: 'p50 < 50 ms' },
  q: { id: 'q', key: 'memorySnapshot', title: 'suspend (RAM + device state saved, QEMU ended) and resume to running of a 256 MB tiny VM; the memory state file', goal: null },
  r: { id: 'r', key: 'warmStart', title: '`vm create` from a warm image → the guest answers TCP (tiny, 256 MB, ~10), against cold boots of the same image in the same run', goal: 'p50 <= 0.5 s and >= 10x faster' },
  s: { id: 's', key: 'wakeFromZero', title: 'wake from zero: a TCP connection to a tiny VM suspended for idleness → first byte of its answer (the activator holds the SYN, resumes the VM, sends the SYN again)', goal: 'p99 <= 1 s (TCG)' },
  t: { id: 't', key: 'memorySnapshotPause', title: 'guest paused for a memory snapshot (`vm snapshot --memory`) of a running 256 MB tiny VM, ~5 snapshots; its state bytes', goal: null },
  f: { id: 'f', key: 'clusterScale', title: '1,000 simulated agents heartbeating every 5 s; control-plane RSS with 10,000 VMs', goal: 'heartbeat p99 <= 50 ms; RSS <= 200 MB' },
};

export interface RssFigureData extends RssResult {
  idleMiB: number;
  vms: number;
}

export interface FigureDataMap {
  a: BootResult;
  b: CreateLatencyResult;
  c: MetadataBenchResult;
  d: RssFigureData;
  e: PlacementResult;
  f: ClusterScaleResult;
  g: OverlayResult;
  h: MeshJoinResult;
  i: GuestOverlayResult;
  j: ServiceCreateResult;
  k: ServiceRolloutResult;
  l: PathEnforceResult;
  m: PathScaleResult;
  n: EventLatencyResult;
  o: PanelBenchResult;
  p: SnapshotPauseResult;
  q: MemorySnapshotResult;
  r: WarmStartResult;
  s: WakeFromZeroResult;
  t: MemorySnapshotPauseResult;
}

export interface FigureResult<I extends FigureId = FigureId> extends FigureDef {
  status: Status;
  /** null when there is no goal or the figure could not be measured. */
  pass: boolean | null;
  /** One line: the figure's value(s). */
  headline: string;
  error?: string;
  /** Wall time the figure took, including setup and cleanup. */
  seconds: number;
  /** Load average (1 min) when it started: other work on the machine skews every figure. */
  loadAvg1: number;
  /** Fraction of all CPUs busy in the second before it started (after waiting up to 20 s for < 0.2). */
  cpuBusyBefore: number;
  data?: FigureDataMap[I];
}

export function judge<I extends FigureId>(id: I, data: FigureDataMap[I]): { pass: boolean | null; headline: string } {
  switch (id) {
    case 'a': {
      const d = data as BootResult;
      return {
        pass: d.ratio <= 1.05,
        headline: `ratio ${d.ratio.toFixed(3)}: Butter ${d.butterMedianMs} ms vs bare ${d.bareMedianMs} ms (medians of ${d.runs.length})`,
      };
    }
    case 'b': {
      const d = data as CreateLatencyResult;
      return {
        pass: d.errors === 0 && d.p99Ms <= 20,
        headline: `p50 ${d.p50Ms} ms, p99 ${d.p99Ms} ms (${d.ok}/${d.requests} ok at ${d.achievedRatePerS}/s)`,
      };
    }
    case 'c': {
      const d = data as MetadataBenchResult;
      return { pass: d.p99Ms <= 5, headline: `p50 ${d.p50Ms} ms, p99 ${d.p99Ms} ms (${d.requests} requests)` };
    }
    case 'd': {
      const d = data as RssFigureData;
      return { pass: null, headline: `${d.rssMiB} MiB RSS with ${d.vms} VMs (idle ${d.idleMiB} MiB, peak ${d.peakMiB} MiB)` };
    }
    case 'e': {
      const d = data as PlacementResult;
      const best = Math.max(d.sequentialPerSecond, d.concurrentPerSecond);
      return {
        pass: best >= PLACEMENT_GOAL_PER_S,
        headline: `${n(d.concurrentPerSecond)}/s with ${d.inFlight} in flight (group commit), ${n(d.sequentialPerSecond)}/s one at a time; ceiling ${n(d.durableCommitsPerSecond)} durable SQLite commits/s`,
      };
    }
    case 'g': {
      const d = data as OverlayResult;
      return {
        pass: d.ratio >= OVERLAY_RATIO_GOAL,
        headline: `ratio ${d.ratio.toFixed(3)}: overlay ${d.overlayMbps} Mbit/s vs plain WireGuard ${d.plainMbps} Mbit/s (medians of ${d.runs.length}; guest MTU ${d.mtu.guest})`,
      };
    }
    case 'h': {
      const d = data as MeshJoinResult;
      return {
        pass: d.maxMs < 1000,
        headline: `median ${d.medianMs} ms, worst ${d.maxMs} ms over ${d.joinsMs.length} joins (meshes of ${d.meshSizes.join(', ')} nodes)`,
      };
    }
    case 'i': {
      const d = data as GuestOverlayResult;
      return { pass: null, headline: `${d.crossNodeMbps} Mbit/s between nodes (bridge → VXLAN → WireGuard), ${d.sameNodeMbps} Mbit/s on one node (${d.seconds} s windows; guest MTU ${d.guestMtu})` };
    }
    case 'j': {
      const d = data as ServiceCreateResult;
      return {
        pass: d.ratio <= 1,
        headline: `ratio ${d.ratio.toFixed(3)}: service ${d.serviceMedianMs} ms vs ${d.instances} creates one after the other ${d.sequentialMedianMs} ms (medians of ${d.serviceMs.length}; ${d.options.inFlight} in flight: ${d.concurrentMedianMs} ms); ${d.instances} instances on ${d.distinctNodes} nodes in ${Object.keys(d.perZone).length} zones`,
      };
    }
    case 'k': {
      const d = data as ServiceRolloutResult;
      const missing = Math.max(d.update.maxMissing, d.rollback.maxMissing);
      const whole = d.update.replaced === d.instances && d.rollback.replaced === d.instances;
      return {
        pass: missing === 0 && whole,
        headline: `update ${d.update.ms} ms, rollback ${d.rollback.ms} ms for ${d.instances} instances; at most ${missing} missing from the DNS answer (${d.update.samples + d.rollback.samples} answers sent to ${d.nodes} nodes)`,
      };
    }
    case 'l': {
      const d = data as PathEnforceResult;
      return {
        pass: d.add.p99Ms < PATH_ENFORCE_P99_GOAL_MS && d.remove.p99Ms < PATH_ENFORCE_P99_GOAL_MS,
        headline: `add → admitted p50 ${d.add.p50Ms} ms, p99 ${d.add.p99Ms} ms; remove → dropped p50 ${d.remove.p50Ms} ms, p99 ${d.remove.p99Ms} ms (${d.rounds} rounds, probe every 10 ms, counters read every ${d.pollMs} ms)`,
      };
    }
    case 'm': {
      const d = data as PathScaleResult;
      const big = d.points.reduce((a, b) => (b.paths > a.paths ? b : a));
      const small = d.points.reduce((a, b) => (b.paths < a.paths ? b : a));
      return {
        pass: d.points.every((p) => p.applyMs < PATH_APPLY_GOAL_MS && p.replaceMs < PATH_APPLY_GOAL_MS),
        headline:
          `${n(big.services)} services / ${n(big.paths)} paths / ${n(big.instances)} instances: ${n(big.elements)} elements in ${big.sets} sets, ${n(Math.round(big.bytes / 1024))} KiB; ` +
          `render ${big.renderMs} ms, load ${big.applyMs} ms, replace ${big.replaceMs} ms (${n(small.services)}/${n(small.paths)}/${n(small.instances)}: ${n(small.elements)} elements, load ${small.applyMs} ms)`,
      };
    }
    case 'n': {
      const d = data as EventLatencyResult;
      return {
        pass: d.commit.p99Ms < EVENT_P99_GOAL_MS,
        headline: `commit → received p50 ${d.commit.p50Ms} ms, p99 ${d.commit.p99Ms} ms; API call → received p50 ${d.call.p50Ms} ms, p99 ${d.call.p99Ms} ms (${d.changes} changes, ${d.transport})`,
      };
    }
    case 'o': {
      const d = data as PanelBenchResult;
      return {
        pass: d.roundTrip.p99Ms < PANEL_EVENT_P99_GOAL_MS,
        headline:
          `change → shown p50 ${d.roundTrip.p50Ms} ms, p99 ${d.roundTrip.p99Ms} ms round trip (answer → shown p99 ${d.afterAnswer.p99Ms} ms; ${d.changes} changes); ` +
          `first load ${n(Math.round(d.firstLoad.bytes / 1024))} KiB in ${d.firstLoad.requests} requests, interactive at ${d.firstLoad.interactiveMs} ms (median of ${d.firstLoad.runs.length})`,
      };
    }
    case 'p': {
      const d = data as SnapshotPauseResult;
      return { pass: d.p50Ms < SNAPSHOT_PAUSE_GOAL_MS, headline: `p50 ${d.p50Ms} ms, max ${d.maxMs} ms over ${d.snapshots} snapshots (${d.accel})` };
    }
    case 'q': {
      const d = data as MemorySnapshotResult;
      return { pass: null, headline: `suspend p50 ${d.suspendP50Ms} ms, resume to running p50 ${d.resumeP50Ms} ms, memory state ${Math.round(d.stateP50Bytes / 2 ** 20)} MiB of ${d.memoryMiB} MiB, over ${d.cycles} cycles (${d.accel})` };
    }
    case 'r': {
      const d = data as WarmStartResult;
      const st = d.warmSteps;
      return {
        pass: d.warmP50Ms <= 500 && d.ratio >= 10,
        headline:
          `warm p50 ${d.warmP50Ms} ms, p99 ${d.warmP99Ms} ms over ${d.runs}; cold p50 ${d.coldP50Ms} ms over ${d.coldRuns}; ${d.ratio}x ` +
          `(warm steps p50: API answer ${st.ackMs} ms, QEMU restore ${st.qemuRestoreMs ?? '?'} ms, running ${st.runningMs ?? '?'} ms, TCP ${st.tcpMs} ms; ` +
          `in the guest after its identity, p50: ${Object.entries(d.guestSteps ?? {}).map(([k, v]) => `${k} ${v} ms`).join(', ') || 'not seen'}; ` +
          `with the network already up on the node: p50 ${d.warmNetworkUpP50Ms ?? '?'} ms, p99 ${d.warmNetworkUpP99Ms ?? '?'} ms over ${d.netRuns ?? '?'}; warming took ${Math.round(d.warmImageMs / 100) / 10} s)`,
      };
    }
    case 's': {
      const d = data as WakeFromZeroResult;
      return { pass: d.p99Ms <= WAKE_P99_GOAL_MS, headline: `connect → first byte p50 ${d.p50Ms} ms, p99 ${d.p99Ms} ms over ${d.cycles} wakes (agent: frame → running ${d.agentWakeMs.join(', ')} ms)` };
    }
    case 't': {
      const d = data as MemorySnapshotPauseResult;
      return { pass: null, headline: `pause p50 ${d.p50Ms} ms, max ${d.maxMs} ms over ${d.snapshots} memory snapshots; state ${Math.round(d.stateP50Bytes / 2 ** 20)} MiB of ${d.memoryMiB} MiB (${d.accel})` };
    }
    default: {
      const d = data as ClusterScaleResult;
      const heartbeatsOk = d.steady.p99Ms <= HEARTBEAT_P99_GOAL_MS && d.loaded.p99Ms <= HEARTBEAT_P99_GOAL_MS && d.steady.errors + d.loaded.errors === 0;
      const rssOk = d.rssMiB * 2 ** 20 <= RSS_GOAL_BYTES;
      const complete = d.runningVms === d.vms && d.readyNodes === d.nodes;
      return {
        pass: heartbeatsOk && rssOk && complete,
        headline:
          `heartbeat p99 ${d.steady.p99Ms} ms with no VMs, ${d.loaded.p99Ms} ms with ${n(d.runningVms)} VMs (${n(d.nodes)} agents) [${heartbeatsOk ? 'met' : 'missed'}]; ` +
          `RSS ${d.rssMiB} MiB (${Math.round((d.rssMiB * 2 ** 20) / 1e6)} MB) with ${n(d.runningVms)} VMs [${rssOk ? 'met' : 'missed'}]; ${n(d.vms)} creates in ${d.createS} s`,
      };
    }
  }
}

/** 12345 → "12,345". */
function n(x: number): string {
  return x.toLocaleString('en-US');
}
