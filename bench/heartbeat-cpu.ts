/**
 * A diagnostic for figure (f), not a figure: the control plane's CPU time per heartbeat, which
 * wall-clock round-trips on a shared machine cannot show. It starts `butter server` as (f)
 * does, registers NODES nodes, places VMS VMs on them, has each node report them running (and
 * their `initial` snapshots ready, as the sim agent does), then sends ROUNDS rounds of the same
 * "still here" report from every node (16 in flight, one HTTP/2 connection per node) and
 * divides the server's CPU time (utime + stime, /proc/PID/stat) by the reports sent.
 *
 * `node --import tsx bench/heartbeat-cpu.ts [NODES] [VMS] [ROUNDS]`; BENCH_SERVER_NODE_OPTIONS
 * is passed to the server only (e.g. `--require` of a profiler; Node 20 refuses `--cpu-prof` there);
 * BENCH_SERVER_SIGUSR2=1 sends the server SIGUSR2 before and after the measured rounds (for such
 * a profiler to start and stop on); BENCH_COPY_DB=FILE keeps a copy of the store to query later.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { NodeDesired } from '../src/api/schemas/desired.ts';
import type { NodeReport } from '../src/api/schemas/node.ts';
import type { Client } from '../src/sdk/client.ts';
import { readRss } from './rss.ts';
import { startServerProcess } from './server-process.ts';
import { pool } from './stats.ts';

const [nodes = 200, vms = 2000, rounds = 10] = process.argv.slice(2).map(Number);
const HZ = 100;
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(x[11]) + Number(x[12])) * 1000) / HZ;
};

if (process.env.BENCH_SERVER_NODE_OPTIONS) process.env.NODE_OPTIONS = process.env.BENCH_SERVER_NODE_OPTIONS;
const server = await startServerProcess();
process.on('SIGINT', () => void server.stop().then(() => process.exit(130)));
delete process.env.NODE_OPTIONS;
try {
  const { admin } = server;
  const names = Array.from({ length: nodes }, (_, i) => `n-${i + 1}`);
  const clients = new Map<string, Client>();
  await pool(names, 16, async (name) => {
    const { token } = await admin.call('createNode', { body: { name } });
    clients.set(name, server.client(token));
  });
  const base = { capacity: { cpus: 64, memoryBytes: 256 * 2 ** 30, diskBytes: 10 * 2 ** 40 }, accel: 'tcg' as const, accelReason: 'simulated node', driver: 'sim' as const };
  const bodies = new Map<string, NodeReport>(names.map((n) => [n, { ...base, vms: [] }]));
  const report = async (name: string) => void (await clients.get(name)!.call('nodeReport', { params: { name }, body: bodies.get(name)! }));
  await pool(names, 16, report);
  // Until the measured rounds, every node reports every 3 s: a slow setup must not outlast the heartbeat timeout.
  let keeping: Promise<void> | undefined;
  const keepAlive = setInterval(() => void (keeping ??= pool(names, 16, report).finally(() => (keeping = undefined))), 3000);
  if (vms > 0) {
    const blob = await admin.uploadBlob(Readable.from([Buffer.alloc(4096, 0x5a)]));
    await admin.call('createImage', { body: { name: 'bench', kind: 'disk', disk: blob.sha256 } });
    const t0 = performance.now();
    const c0 = cpuMs(server.pid);
    await pool(
      Array.from({ length: vms }, (_, i) => `vm-${i + 1}`),
      32,
      async (name) => void (await admin.call('createVm', { body: { name, image: 'bench', cpus: 1, memory: '512M', disk: '1G' } })),
    );
    console.log(`${vms} creates: ${((performance.now() - t0) / 1000).toFixed(1)} s, server CPU ${((cpuMs(server.pid) - c0) / vms).toFixed(2)} ms per create`);
    // What each node's agent would report: its VMs running, their pending snapshots made.
    await pool(names, 16, async (name) => {
      const d = (await clients.get(name)!.call('nodeDesired', { params: { name }, query: {} })) as NodeDesired;
      bodies.set(name, { ...base, vms: d.vms.map((v, i) => ({ id: v.id, state: 'running' as const, pid: 1000 + i, snapshots: (v.snapshots ?? []).filter((s) => s.state === 'pending').map((s) => ({ id: s.id, state: 'ready' as const })) })) });
    });
    await pool(names, 16, report); // the writes (running, snapshots ready)
  }
  clearInterval(keepAlive);
  await keeping;
  await pool(names, 16, report); // one "still here" round to warm up
  const rss0 = readRss(server.pid).rssMiB;
  // A profiler preloaded into the server (BENCH_SERVER_NODE_OPTIONS) may take SIGUSR2 as start and stop.
  const profile = process.env.BENCH_SERVER_SIGUSR2 === '1';
  if (profile) process.kill(server.pid, 'SIGUSR2');
  const c0 = cpuMs(server.pid);
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) await pool(names, 16, report);
  const ms = cpuMs(server.pid) - c0;
  if (profile) process.kill(server.pid, 'SIGUSR2');
  const n = rounds * nodes;
  console.log(
    JSON.stringify({
      nodes,
      vms,
      reports: n,
      serverCpuMsPerReport: Math.round((ms / n) * 1000) / 1000,
      wallS: Math.round(performance.now() - t0) / 1000,
      rssMiB: readRss(server.pid).rssMiB,
      rssBeforeMiB: rss0,
      load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    }),
  );
  // A copy of the store for looking at its queries afterwards.
  if (process.env.BENCH_COPY_DB) {
    const { default: Database } = await import('better-sqlite3');
    new Database(`${server.dataDir}/butter.db`, { readonly: true }).exec(`VACUUM INTO '${process.env.BENCH_COPY_DB}'`);
  }
} finally {
  await server.stop();
}
