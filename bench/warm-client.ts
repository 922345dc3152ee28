/**
 * Figure (r), the part that runs inside Butter's network namespace (the API and the VMs'
 * addresses are there): creates VMs of `tiny` one at a time through the SDK and, for each,
 * times from just before `POST /v1/vms` to the guest answering TCP (a busybox httpd its
 * user-data starts on port 8080, a new try every 20 ms), with the API's answer and the first sight
 * of `running` (the metadata fetch) on the way; then deletes it, waits until it is gone and 1 s more (the node settles).
 *
 *   WARM_CLIENT_INPUT='{...}' ip netns exec NS node --import tsx bench/warm-client.ts
 */
import { connect } from 'node:net';
import { Client } from '../src/sdk/node-client.ts';
import { clientOptions } from './server-process.ts';

export interface WarmClientInput {
  url: string;
  token: string;
  ca?: string;
  prefix: string;
  runs: number;
  memory: string;
  userData: string;
  timeoutMs: number;
}

export interface WarmClientRun {
  name: string;
  /** When the create request was sent (epoch ms: the daemons' log lines are on the same clock). */
  t0: number;
  start: string;
  startReason: string | null;
  /** ms from just before the create request. */
  ackMs: number;
  runningMs: number | null;
  tcpMs: number;
  /** The first try refused (the guest's network answers, its server not yet), ms; and how many tries timed out. */
  refusedMs: number | null;
  timeouts: number;
  /**
   * A warm clone's own steps, from its console (images/tiny/init's `warm step NAME at=S`
   * lines): ms of guest uptime after it took its identity. Empty for a cold boot.
   */
  guestSteps: Record<string, number>;
}

/** `warm clone generation=G at=S` and the `warm step NAME at=S` lines after it, as ms after the clone line. */
export function guestSteps(consoleText: string): Record<string, number> {
  const base = /butter-tiny: warm clone generation=\w+ at=([\d.]+)s/.exec(consoleText);
  if (!base) return {};
  const t0 = Number(base[1]);
  const out: Record<string, number> = {};
  for (const m of consoleText.matchAll(/butter-tiny: warm step ([\w-]+) at=([\d.]+)s/g)) out[m[1]!] = Math.round((Number(m[2]) - t0) * 1000);
  return out;
}

/** One try: `ok` (200), `refused` (its network is up, nothing listens yet), `timeout` (no answer in `ms`) or `error`. */
async function answers(ip: string, port: number, ms: number): Promise<'ok' | 'refused' | 'timeout' | 'error'> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port, timeout: ms });
    let data = '';
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => resolve(/^HTTP\/1\.[01] 200/.test(data) ? 'ok' : 'error'));
    s.on('timeout', () => (s.destroy(), resolve('timeout')));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'error'));
  });
}

async function main(input: WarmClientInput): Promise<WarmClientRun[]> {
  const c = new Client(clientOptions(input.url, input.token, input.ca));
  const out: WarmClientRun[] = [];
  for (let i = 0; i < input.runs; i++) {
    const name = `${input.prefix}-${i}`;
    const t0 = Date.now();
    const vm = await c.call('createVm', { body: { name, image: 'tiny', memory: input.memory, disk: '1G', userData: input.userData } });
    const ackMs = Date.now() - t0;
    let runningMs: number | null = null;
    let stop = false;
    const watch = (async () => {
      while (!stop && runningMs === null) {
        if ((await c.call('getVm', { params: { name } })).state === 'running') runningMs = Date.now() - t0;
        else await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // A new try every 20 ms, each given 3 s, side by side (at most 50 at once): the first 200
    // is when the guest answers. (One try at a time, each cut off after 200 ms, once counted a
    // guest still translating its server's code under TCG as not answering, and cut off the
    // answer on its way.)
    let refusedMs: number | null = null;
    let timeouts = 0;
    let tcpMs: number | null = null;
    let inFlight = 0;
    while (tcpMs === null) {
      if (Date.now() - t0 > input.timeoutMs) throw new Error(`${name} never answered TCP on ${vm.ip}:8080 within ${input.timeoutMs} ms`);
      if (inFlight < 50) {
        inFlight++;
        void answers(vm.ip!, 8080, 3000).then((r) => {
          inFlight--;
          if (r === 'ok') tcpMs ??= Date.now() - t0;
          if (r === 'refused') refusedMs ??= Date.now() - t0;
          if (r === 'timeout') timeouts++;
        });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await watch;
    // The console reaches the control plane a little after the guest wrote it.
    let text = '';
    for (let end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
      text = (await c.call('vmLogs', { params: { name }, query: { offset: 0 } })).data;
      if (text.includes('butter-tiny: ready')) break;
    }
    out.push({ name, t0, start: vm.start, startReason: vm.startReason, ackMs, runningMs, tcpMs, refusedMs, timeouts, guestSteps: guestSteps(text) });
    await c.call('deleteVm', { params: { name }, query: {} });
    for (;;) {
      const left = (await c.call('listVms', {})).items.some((v) => v.name === name);
      if (!left) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // The node goes on tidying after it said the VM is gone (its tap, its network's state):
    // the next VM is timed on a settled node, not queued behind that.
    await new Promise((r) => setTimeout(r, 1000));
  }
  return out;
}

try {
  const out = await main(JSON.parse(process.env.WARM_CLIENT_INPUT ?? '') as WarmClientInput);
  process.stdout.write(JSON.stringify(out) + '\n');
} catch (e) {
  const err = e as Error & { cause?: { message?: string } };
  process.stderr.write(`${err.message}${err.cause?.message ? `: ${err.cause.message}` : ''}\n`);
  process.exitCode = 1;
}
