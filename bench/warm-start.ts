/**
 * (r) Warm start (issue 16): `butter up` in its namespace, real QEMU. First `coldRuns` VMs of
 * `tiny` (256 MiB) are created while the image has no warm state (cold boots), then
 * `image warm tiny`, then `runs` VMs of the same size (warm starts). Each: `POST /v1/vms` ->
 * the guest answers TCP (httpd from its user-data, bench/warm-client.ts). p50/p99 of each and
 * the ratio of the p50s. Where a warm start's time goes comes from the agent's log
 * (`started warm from … in N ms`: QEMU's launch, loading the state, `cont`) and the client's
 * times (the API's answer, `running` = the metadata fetch, TCP), the guest's own steps from its
 * console, and the daemons' log lines meanwhile. Each of those VMs is the only one on the node,
 * so its network is torn down after it and built again for the next; `netRuns` more warm starts
 * with another VM on the network show what that costs.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ButterInNetns } from '../test/host/butter-cli.ts';
import type { WarmClientInput, WarmClientRun } from './warm-client.ts';
import { registerCleanup } from './cleanup.ts';
import { percentile, round } from './stats.ts';

const execFileP = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLIENT = fileURLToPath(new URL('./warm-client.ts', import.meta.url));
const USER_DATA = '#!/bin/sh\nmkdir -p /www && hostname > /www/index.html && httpd -p 8080 -h /www\n';

export interface WarmStartResult {
  runs: number;
  coldRuns: number;
  memoryMiB: number;
  warmMs: number[];
  coldMs: number[];
  warmP50Ms: number;
  warmP99Ms: number;
  coldP50Ms: number;
  coldP99Ms: number;
  /** cold p50 / warm p50. */
  ratio: number;
  /** Warming the image (template boot, wait for warm-ready, save), ms. */
  warmImageMs: number;
  /** p50 of each step of a warm start, ms after the create request. */
  warmSteps: { ackMs: number; qemuRestoreMs: number | null; runningMs: number | null; tcpMs: number };
  /** p50 of each of the guest's own steps (images/tiny/init), ms of its uptime after it took its identity. */
  guestSteps: Record<string, number>;
  /** Warm starts on a node where the VM's network is built already (another VM on it). */
  netRuns: number;
  warmNetworkUpP50Ms: number;
  warmNetworkUpP99Ms: number;
  runsDetail: WarmClientRun[];
}

/** butter up's log lines (pino JSON: `time`, `msg`) between two instants, as ms after the first. */
function daemonLines(text: string, from: number, to: number): { ms: number; msg: string }[] {
  const out: { ms: number; msg: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { time?: number; msg?: string };
      if (typeof o.time === 'number' && o.time >= from && o.time <= to) out.push({ ms: o.time - from, msg: String(o.msg ?? '').slice(0, 160) });
    } catch {
      // not a log line
    }
  }
  return out;
}

const p = (xs: readonly number[], q: number) => round(percentile([...xs].sort((a, b) => a - b), q), 1);

async function client(b: ButterInNetns, prefix: string, runs: number, timeoutMs: number): Promise<WarmClientRun[]> {
  const cfg = JSON.parse(readFileSync(join(b.dir, 'config', 'butter', 'config.json'), 'utf8')) as { url: string; ca?: string };
  const token = readFileSync(join(b.dataDir, 'admin.token'), 'utf8').trim();
  const input: WarmClientInput = { url: cfg.url, token, ...(cfg.ca ? { ca: cfg.ca } : {}), prefix, runs, memory: '256M', userData: USER_DATA, timeoutMs };
  const { stdout } = await execFileP('ip', ['netns', 'exec', b.ns, process.execPath, '--import', 'tsx', CLIENT], {
    cwd: REPO,
    env: { ...process.env, WARM_CLIENT_INPUT: JSON.stringify(input) },
    encoding: 'utf8',
    timeout: timeoutMs * (runs + 1),
  });
  return JSON.parse(stdout) as WarmClientRun[];
}

export async function benchWarmStart(runs = 10, coldRuns = 3, log: (m: string) => void = () => {}, netRuns = 5): Promise<WarmStartResult> {
  const b = new ButterInNetns();
  const undo = registerCleanup('the warm start bench', () => b.cleanup());
  try {
    await b.start();
    const cold = await client(b, 'cold', coldRuns, 180_000);
    for (const r of cold) log(`cold ${r.name}: ack ${r.ackMs} ms, running ${r.runningMs} ms, TCP ${r.tcpMs} ms`);
    const t0 = Date.now();
    const warmed = JSON.parse(b.ok(['image', 'warm', 'tiny', '--memory', '256M', '--json'])) as { warm: { state: string; reason?: string }[] };
    const warmImageMs = Date.now() - t0;
    if (warmed.warm[0]?.state !== 'ready') throw new Error(`image warm tiny: ${JSON.stringify(warmed.warm)}`);
    log(`image warm tiny: ready in ${warmImageMs} ms`);
    const logFrom = b.upLog.length;
    const warm = await client(b, 'warm', runs, 60_000);
    const restores = [...b.upLog.slice(logFrom).matchAll(/started warm from \w+ in (\d+) ms/g)].map((m) => Number(m[1]));
    for (const r of warm) {
      if (r.start !== 'warm') throw new Error(`${r.name} did not start warm: ${r.startReason ?? ''}`);
      log(`warm ${r.name}: ack ${r.ackMs} ms, running ${r.runningMs} ms, first refused ${r.refusedMs} ms, TCP ${r.tcpMs} ms (${r.timeouts} tries timed out); in the guest after its identity: ${Object.entries(r.guestSteps).map(([k, v]) => `${k} ${v} ms`).join(', ') || '(no steps on its console)'}`);
      // The daemons' own lines meanwhile (pino JSON on butter up's stderr), as ms after the request.
      for (const line of daemonLines(b.upLog.slice(logFrom), r.t0, r.t0 + r.tcpMs)) log(`    +${line.ms} ms ${line.msg}`);
    }
    // The same again with the network already built on the node (another VM on it, as on a
    // node in use): what the network's teardown and rebuild between the runs above cost.
    b.ok(['vm', 'create', 'resident', '--image', 'tiny', '--memory', '128M', '--wait']);
    const onNetwork = await client(b, 'warm-net', netRuns, 60_000);
    for (const r of onNetwork) {
      if (r.start !== 'warm') throw new Error(`${r.name} did not start warm: ${r.startReason ?? ''}`);
      log(`warm, network up ${r.name}: ack ${r.ackMs} ms, running ${r.runningMs} ms, TCP ${r.tcpMs} ms`);
    }
    const warmMs = warm.map((r) => r.tcpMs);
    const coldMs = cold.map((r) => r.tcpMs);
    const runningOf = warm.map((r) => r.runningMs).filter((x): x is number => x !== null);
    return {
      runs,
      coldRuns,
      memoryMiB: 256,
      warmMs,
      coldMs,
      warmP50Ms: p(warmMs, 50),
      warmP99Ms: p(warmMs, 99),
      coldP50Ms: p(coldMs, 50),
      coldP99Ms: p(coldMs, 99),
      ratio: round(p(coldMs, 50) / p(warmMs, 50), 1),
      warmImageMs,
      warmSteps: { ackMs: p(warm.map((r) => r.ackMs), 50), qemuRestoreMs: restores.length ? p(restores, 50) : null, runningMs: runningOf.length ? p(runningOf, 50) : null, tcpMs: p(warmMs, 50) },
      guestSteps: Object.fromEntries(
        [...new Set(warm.flatMap((r) => Object.keys(r.guestSteps)))].map((k) => [k, p(warm.flatMap((r) => (r.guestSteps[k] === undefined ? [] : [r.guestSteps[k]!])), 50)]),
      ),
      netRuns,
      warmNetworkUpP50Ms: p(onNetwork.map((r) => r.tcpMs), 50),
      warmNetworkUpP99Ms: p(onNetwork.map((r) => r.tcpMs), 99),
      runsDetail: [...cold, ...warm, ...onNetwork],
    };
  } finally {
    await b.cleanup();
    undo();
  }
}
