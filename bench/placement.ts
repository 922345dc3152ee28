/**
 * Placement throughput: 10,000 placements over 1,000 nodes, each durable (fsynced) before it
 * is acknowledged — measured at the control plane's service layer, in-process, so the figure
 * is the scheduler + store, not HTTP. Two ways: one at a time (a transaction and an fsync per
 * placement), and as the API does it, with many requests in flight group-committed (one
 * transaction and fsync per batch; each promise settles after its batch is durable). In the
 * same run: the raw rate of durable SQLite commits on the same disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { createControlPlane } from '../src/server/control-plane.ts';

export interface PlacementResult {
  nodes: number;
  placements: number;
  /** One placement per transaction, one after the other. */
  sequentialPerSecond: number;
  /** `inFlight` placements outstanding at a time, group-committed. */
  concurrentPerSecond: number;
  inFlight: number;
  durableCommitsPerSecond: number;
}

/** Tiny durable transactions on the same disk for `ms`: what fsync allows. */
export function durableCommitRate(dir: string, ms = 3000): number {
  const db = new Database(join(dir, 'ceiling.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  const one = db.transaction(() => ins.run('x'.repeat(200)));
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    one();
    n++;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  db.close();
  return Math.round(rate);
}

async function cluster(dir: string, nodes: number) {
  const cp = createControlPlane({ dataDir: dir });
  const s = cp.services;
  for (let i = 0; i < nodes; i++) {
    s.nodes.create('bench', `node-${i}`);
    s.nodes.report(`node-${i}`, { capacity: { cpus: 64, memoryBytes: 512 * 2 ** 30, diskBytes: 2 ** 44 }, accel: 'tcg', driver: 'sim', vms: [] });
  }
  const blob = await s.blobs.put(Readable.from([Buffer.from('a disk image for the benchmark'.repeat(100))]));
  s.images.recordBlob('bench', blob.sha256, blob.sizeBytes);
  await s.images.create('bench', { name: 'img', kind: 'disk', disk: blob.sha256 });
  return cp;
}

const req = (i: number) => ({ name: `vm-${i}`, image: 'img', memory: '512M', disk: '1G', spreadKey: `svc-${i % 50}` });

export async function benchPlacement(o: { nodes?: number; placements?: number; inFlight?: number } = {}): Promise<PlacementResult> {
  const nodes = o.nodes ?? 1000;
  const placements = o.placements ?? 10_000;
  const inFlight = o.inFlight ?? 256;
  const dir = mkdtempSync(join(tmpdir(), 'butter-bench-place-'));
  try {
    const seq = await cluster(join(dir, 'seq'), nodes);
    let t0 = performance.now();
    for (let i = 0; i < placements; i++) seq.services.vms.create('bench', req(i));
    const sequential = placements / ((performance.now() - t0) / 1000);
    await seq.close();

    const con = await cluster(join(dir, 'con'), nodes);
    t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < placements) await con.services.vms.createQueued('bench', req(next++));
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const concurrent = placements / ((performance.now() - t0) / 1000);
    const placed = (con.services.store.db.prepare('SELECT COUNT(*) AS n FROM vms').get() as { n: number }).n;
    await con.close();
    if (placed !== placements) throw new Error(`placed ${placed} of ${placements}`);

    return { nodes, placements, sequentialPerSecond: Math.round(sequential), concurrentPerSecond: Math.round(concurrent), inFlight, durableCommitsPerSecond: durableCommitRate(dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await benchPlacement(), null, 2));
