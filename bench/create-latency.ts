/**
 * Figure (b): create-VM API latency at a fixed 100 requests/s, open loop, against a control
 * plane in its own process with simulated nodes. Each create is validated, scheduled,
 * given an address and committed durably (SQLite WAL, synchronous=FULL) before the answer.
 */
import { Readable } from 'node:stream';
import type { Client } from '../src/sdk/client.ts';
import type { ServerProcess } from './server-process.ts';
import { percentile, round, sleep, within } from './stats.ts';

export interface CreateLatencyOptions {
  ratePerS: number;
  durationS: number;
  warmup: number;
  nodes: number;
}

export const CREATE_DEFAULTS: CreateLatencyOptions = { ratePerS: 100, durationS: 10, warmup: 20, nodes: 8 };

export interface CreateLatencyResult {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  /** Achieved send rate over the measured window. */
  achievedRatePerS: number;
  /** Worst lateness of a send against its open-loop schedule (client-side timer lag). */
  maxSendLagMs: number;
  /** The slowest requests, with their place in the sending order (0-based; 10 ms apart). */
  slowest: { i: number; ms: number }[];
  /** VMs in the store afterwards (warm-up + measured creates that succeeded). */
  vmsInStore: number;
  nodes: number;
  transport: 'https' | 'http';
  options: CreateLatencyOptions;
}

const GiB = 1024 ** 3;
const HEARTBEAT_MS = 5_000;
const capacity = { cpus: 64, memoryBytes: 1024 * GiB, diskBytes: 100 * 1024 * GiB };

export async function benchCreateLatency(server: ServerProcess, o: CreateLatencyOptions = CREATE_DEFAULTS): Promise<CreateLatencyResult> {
  const { admin } = server;

  // Simulated nodes, registered and reporting through the API like a `--driver sim` agent.
  const nodes: { name: string; client: Client }[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const name = `sim-${i}`;
    const { token } = await admin.call('createNode', { body: { name } });
    nodes.push({ name, client: server.client(token) });
  }
  const report = (n: { name: string; client: Client }) =>
    n.client.call('nodeReport', { params: { name: n.name }, body: { capacity, accel: 'tcg', driver: 'sim', vms: [] } });
  await Promise.all(nodes.map(report));
  // Keep the nodes `ready` (the server marks them unreachable after a few silent seconds),
  // each every 5 s like an agent, at its own phase: independent agents do not report in step.
  const beating = new Set<Promise<unknown>>();
  const timers: NodeJS.Timeout[] = [];
  nodes.forEach((n, k) => {
    const beat = () => {
      const p = report(n).catch(() => {});
      beating.add(p);
      void p.finally(() => beating.delete(p));
    };
    timers.push(setTimeout(() => timers.push(setInterval(beat, HEARTBEAT_MS)), (HEARTBEAT_MS * k) / nodes.length));
  });

  try {
    const blob = await admin.uploadBlob(Readable.from([Buffer.alloc(64 * 1024, 0x5a)]));
    await admin.call('createImage', { body: { name: 'bench', kind: 'disk', disk: blob.sha256 } });

    const create = (name: string) => admin.call('createVm', { body: { name, image: 'bench', cpus: 1, memory: '512M', disk: '2G' } });
    let created = 0;
    for (let i = 0; i < o.warmup; i++) {
      await create(`warm-${i}`);
      created++;
      await sleep(1000 / o.ratePerS);
    }

    const total = Math.round(o.ratePerS * o.durationS);
    const interval = 1000 / o.ratePerS;
    const latencies: number[] = [];
    const byIndex: { i: number; ms: number }[] = [];
    const errors: string[] = [];
    let maxLag = 0;
    let firstSend = 0;
    let lastSend = 0;
    const inflight: Promise<void>[] = [];
    const start = performance.now() + 50;
    for (let i = 0; i < total; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const t0 = performance.now();
      maxLag = Math.max(maxLag, t0 - due);
      if (i === 0) firstSend = t0;
      lastSend = t0;
      // Open loop: the next send never waits for this answer.
      inflight.push(
        create(`vm-${i}`).then(
          () => {
            const ms = performance.now() - t0;
            latencies.push(ms);
            byIndex.push({ i, ms });
          },
          (e: Error) => {
            errors.push(e.message);
          },
        ),
      );
    }
    const settled = await within(Promise.all(inflight).then(() => true), 30_000, false);
    if (!settled) errors.push(`${total - latencies.length - errors.length} requests unanswered 30 s after the last send`);
    created += latencies.length;

    latencies.sort((a, b) => a - b);
    const r = (x: number) => round(x, 2);
    return {
      p50Ms: r(percentile(latencies, 50)),
      p90Ms: r(percentile(latencies, 90)),
      p99Ms: r(percentile(latencies, 99)),
      maxMs: r(latencies[latencies.length - 1] ?? NaN),
      requests: total,
      ok: latencies.length,
      errors: errors.length,
      errorSamples: [...new Set(errors)].slice(0, 5),
      achievedRatePerS: r(total > 1 ? ((total - 1) * 1000) / (lastSend - firstSend) : NaN),
      maxSendLagMs: r(maxLag),
      slowest: byIndex
        .sort((x, y) => y.ms - x.ms)
        .slice(0, 10)
        .map((x) => ({ i: x.i, ms: r(x.ms) })),
      vmsInStore: created,
      nodes: o.nodes,
      transport: server.transport,
      options: o,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    await Promise.all(beating);
  }
}
