/**
 * Latency of the metadata server's hot path: sequential GET /meta-data over one keep-alive
 * connection on loopback, as cloud-init does at boot. Target: p99 <= 5 ms.
 * Run directly (`node --import tsx bench/metadata.ts`) to print JSON, or call benchMetadata().
 */
import http from 'node:http';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createMetadataServer } from '../src/agent/metadata/server.ts';
import type { VmMetadata } from '../src/agent/metadata/types.ts';

export interface MetadataBenchResult {
  p50Ms: number;
  p99Ms: number;
  requests: number;
}

const WARMUP = 500;
const REQUESTS = 5_000;
/** Measurement stops early past this, so a slow machine cannot hang the bench runner. */
const TIME_BUDGET_MS = 20_000;

const vm: VmMetadata = {
  vmId: 'vm-bench',
  instanceId: 'i-bench',
  hostname: 'bench-1',
  localIpv4: '127.0.0.1',
  mac: '52:54:00:12:34:56',
  userData: '#cloud-config\n',
  vendorData: '',
  sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench@example.com'],
  metadataTokens: 'optional',
};

function get(agent: http.Agent, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/meta-data', agent }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET /meta-data: ${res.statusCode}`));
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

export async function benchMetadata(): Promise<MetadataBenchResult> {
  const server = createMetadataServer({ lookup: (ip) => (ip === '127.0.0.1' ? vm : undefined), onFetch: () => {} });
  const { port } = await server.listen('127.0.0.1', 0);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < WARMUP; i++) await get(agent, port);
    const samples: number[] = [];
    const deadline = performance.now() + TIME_BUDGET_MS;
    while (samples.length < REQUESTS && performance.now() < deadline) {
      const t0 = process.hrtime.bigint();
      await get(agent, port);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    samples.sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    return { p50Ms: round(percentile(samples, 50)), p99Ms: round(percentile(samples, 99)), requests: samples.length };
  } finally {
    agent.destroy();
    await server.close();
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  console.log(JSON.stringify(await benchMetadata()));
}
