/**
 * Figure (j): a 100-instance service over 1,000 simulated nodes, against 100 single VM
 * creates in the same run. The control plane is `butter server` in its own process
 * (server-process.ts); the nodes are registered through the API, put in zones, and report
 * every 5 s from this process (as in (b): simulated nodes that run nothing, so the figure is
 * placement, not boots). Each round times, one after the other:
 *
 *   - `POST /v1/services` with count 100 (spread over the zones, then nodes): its answer
 *     comes once the address block and every instance are placed and durable (one transaction);
 *     every instance is checked to have a node;
 *   - 100 `POST /v1/vms` one after the other, as 100 `butter vm create`s would be: each
 *     answered once placed and durable;
 *   - the same 100 with 32 in flight (group commit), for context.
 *
 * The figure is the median of the rounds; the ratio is service / one-after-the-other.
 * `node --import tsx bench/service-create.ts` runs it alone and prints it.
 */
import { Readable } from 'node:stream';
import type { Service } from '../src/api/schemas/service.ts';
import type { Client } from '../src/sdk/client.ts';
import { withServerProcess, type ServerProcess } from './server-process.ts';
import { median, pool, round, sleep } from './stats.ts';

export interface ServiceCreateOptions {
  nodes: number;
  zones: number;
  instances: number;
  rounds: number;
  /** The context measurement: single creates in flight at once. */
  inFlight: number;
}

export const SERVICE_CREATE_DEFAULTS: ServiceCreateOptions = { nodes: 1000, zones: 4, instances: 100, rounds: 3, inFlight: 32 };

export interface ServiceCreateResult {
  nodes: number;
  zones: number;
  instances: number;
  /** Per round, ms: the service create; 100 VM creates one after the other; 100 with `inFlight` at once. */
  serviceMs: number[];
  sequentialMs: number[];
  concurrentMs: number[];
  serviceMedianMs: number;
  sequentialMedianMs: number;
  concurrentMedianMs: number;
  /** service / sequential (the goal), and service / concurrent (context). */
  ratio: number;
  ratioConcurrent: number;
  /** Of the last service: instances per zone, and the distinct nodes they landed on. */
  perZone: Record<string, number>;
  distinctNodes: number;
  transport: 'https' | 'http';
  options: ServiceCreateOptions;
}

const GiB = 1024 ** 3;
const HEARTBEAT_MS = 5_000;
const capacity = { cpus: 64, memoryBytes: 512 * GiB, diskBytes: 10 * 1024 * GiB };
const VM = { cpus: 1, memory: '512M' } as const;

const blueprint = (o: ServiceCreateOptions) => `network: { subnetwork_max_instance_count: ${o.instances} }
placement: { availability_zones: ${o.zones} }
instance: { memory: ${VM.memory}, cpus: ${VM.cpus} }
image: { name: bench }
initialization:
  - path: hello.sh
count: ${o.instances}
`;
const files = { 'hello.sh': '#!/bin/sh\necho "{{ instance_name }} of {{ service }}"\n' };

/** Starts its own `butter server`, runs the figure against it, and stops it. */
export async function benchServiceCreate(o: ServiceCreateOptions = SERVICE_CREATE_DEFAULTS, log: (m: string) => void = () => {}): Promise<ServiceCreateResult> {
  return withServerProcess(log, (server) => measure(server, o, log));
}

async function measure(server: ServerProcess, o: ServiceCreateOptions, log: (m: string) => void): Promise<ServiceCreateResult> {
  const { admin } = server;
  const nodes: { name: string; client: Client }[] = [];
  let t0 = performance.now();
  await pool(
    Array.from({ length: o.nodes }, (_, i) => i),
    16,
    async (i) => {
      const name = `sim-${i + 1}`;
      const { token } = await admin.call('createNode', { body: { name } });
      await admin.call('updateNode', { params: { name }, body: { zone: `zone-${(i % o.zones) + 1}` } });
      nodes.push({ name, client: server.client(token) });
    },
  );
  const report = (n: { name: string; client: Client }) => n.client.call('nodeReport', { params: { name: n.name }, body: { capacity, accel: 'tcg', driver: 'sim', vms: [] } });
  await pool(nodes, 32, async (n) => void (await report(n)));
  log(`${o.nodes} nodes in ${o.zones} zones registered and reporting in ${round((performance.now() - t0) / 1000, 1)} s`);
  // Every node reports every 5 s, spread over the period, as independent nodes do.
  const timers: NodeJS.Timeout[] = [];
  const beating = new Set<Promise<unknown>>();
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
    await admin.call('createNetwork', { body: { name: 'bench', cidr: '10.80.0.0/16' } });
    // Warm-up: the first create of each kind pays for caches and compiled statements.
    await admin.call('createVm', { body: { name: 'warm-vm', image: 'bench', network: 'bench', ...VM } });
    await admin.call('createService', { body: { network: 'bench', name: 'warm', blueprint: blueprint({ ...o, instances: o.zones }), files } });

    const serviceMs: number[] = [];
    const sequentialMs: number[] = [];
    const concurrentMs: number[] = [];
    let last: Service | undefined;
    for (let r = 1; r <= o.rounds; r++) {
      t0 = performance.now();
      const s = await admin.call('createService', { body: { network: 'bench', name: `svc-${r}`, blueprint: blueprint(o), files } });
      serviceMs.push(round(performance.now() - t0, 1));
      const unplaced = s.instances.filter((i) => !i.node).length;
      if (s.instances.length !== o.instances || unplaced) throw new Error(`service svc-${r}: ${s.instances.length} instances, ${unplaced} without a node`);
      last = s;
      await sleep(500);

      t0 = performance.now();
      for (let i = 0; i < o.instances; i++) await admin.call('createVm', { body: { name: `seq-${r}-${i}`, image: 'bench', network: 'bench', ...VM } });
      sequentialMs.push(round(performance.now() - t0, 1));
      await sleep(500);

      t0 = performance.now();
      await pool(
        Array.from({ length: o.instances }, (_, i) => i),
        o.inFlight,
        async (i) => void (await admin.call('createVm', { body: { name: `con-${r}-${i}`, image: 'bench', network: 'bench', ...VM } })),
      );
      concurrentMs.push(round(performance.now() - t0, 1));
      log(`round ${r}: service ${serviceMs.at(-1)} ms, ${o.instances} creates one after the other ${sequentialMs.at(-1)} ms, ${o.inFlight} in flight ${concurrentMs.at(-1)} ms`);
      await sleep(500);
    }
    const perZone: Record<string, number> = {};
    for (const i of last!.instances) perZone[i.zone ?? '(none)'] = (perZone[i.zone ?? '(none)'] ?? 0) + 1;
    const serviceMedianMs = round(median(serviceMs), 1);
    const sequentialMedianMs = round(median(sequentialMs), 1);
    const concurrentMedianMs = round(median(concurrentMs), 1);
    return {
      nodes: o.nodes,
      zones: o.zones,
      instances: o.instances,
      serviceMs,
      sequentialMs,
      concurrentMs,
      serviceMedianMs,
      sequentialMedianMs,
      concurrentMedianMs,
      ratio: round(serviceMedianMs / sequentialMedianMs, 3),
      ratioConcurrent: round(serviceMedianMs / concurrentMedianMs, 3),
      perZone,
      distinctNodes: new Set(last!.instances.map((i) => i.node)).size,
      transport: server.transport,
      options: o,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    await Promise.all(beating);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await benchServiceCreate(undefined, (m) => console.log(m)), null, 2));
