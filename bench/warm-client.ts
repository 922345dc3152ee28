/**
 * Figure (r), the part that runs inside Butter's network namespace (the API and the VMs'
 * addresses are there): creates VMs of `tiny` one at a time through the SDK and, for each,
 * times from just before `POST /v1/vms` to the guest answering TCP (a busybox httpd its
 * user-data starts on port 8080, asked every 20 ms), with the API's answer and the first sight
 * of `running` (the metadata fetch) on the way; then deletes it and waits until it is gone.
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
  start: string;
  startReason: string | null;
  /** ms from just before the create request. */
  ackMs: number;
  runningMs: number | null;
  tcpMs: number;
}

async function answers(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port, timeout: 200 });
    let data = '';
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => resolve(/^HTTP\/1\.[01] 200/.test(data)));
    s.on('timeout', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(false));
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
    while (!(await answers(vm.ip!, 8080))) {
      if (Date.now() - t0 > input.timeoutMs) throw new Error(`${name} never answered TCP on ${vm.ip}:8080 within ${input.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const tcpMs = Date.now() - t0;
    stop = true;
    await watch;
    out.push({ name, start: vm.start, startReason: vm.startReason, ackMs, runningMs, tcpMs });
    await c.call('deleteVm', { params: { name }, query: {} });
    for (;;) {
      const left = (await c.call('listVms', {})).items.some((v) => v.name === name);
      if (!left) break;
      await new Promise((r) => setTimeout(r, 100));
    }
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
