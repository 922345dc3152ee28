/**
 * A heartbeat from a quiet process, for figure (f): one extra (cordoned, empty) node reports
 * every `everyMs` over its own HTTPS connection, exactly as an agent's heartbeat does
 * (`nodeReport`, a durable write). Its event loop does nothing else, so its round-trips are
 * the control plane's side of a heartbeat (network, TLS, queueing, the write), without the
 * delays of the 1,000 agents' shared process.
 *
 * Run by cluster-scale.ts: `node --import tsx bench/heartbeat-probe.ts URL NODE EVERY_MS MAX_S`,
 * the node token in BUTTER_PROBE_TOKEN and the CA (PEM) file, if any, in BUTTER_PROBE_CA.
 * Prints one JSON line per report: {"at": epoch ms at the send, "ms": round-trip} or
 * {"at", "error"}. Stops by itself after MAX_S, or when its stdin closes (the bench is gone).
 */
import { readFileSync } from 'node:fs';
import { Client } from '../src/sdk/node-client.ts';

const [url, node, everyMs, maxS] = process.argv.slice(2);
const token = process.env.BUTTER_PROBE_TOKEN;
if (!url || !node || !token) {
  console.error('usage: BUTTER_PROBE_TOKEN=… [BUTTER_PROBE_CA=ca.crt] heartbeat-probe.ts URL NODE [EVERY_MS] [MAX_S]');
  process.exit(2);
}
const caFile = process.env.BUTTER_PROBE_CA;
const client = new Client({ url, token, ...(caFile ? { ca: readFileSync(caFile, 'utf8') } : {}) });
const body = { capacity: { cpus: 1, memoryBytes: 2 ** 30, diskBytes: 2 ** 30 }, accel: 'tcg' as const, driver: 'sim' as const, vms: [] };

let running = true;
process.stdin.on('end', () => (running = false));
process.stdin.on('error', () => (running = false));
process.stdin.resume();
const deadline = Date.now() + Number(maxS ?? 600) * 1000;
const period = Number(everyMs ?? 100);

while (running && Date.now() < deadline) {
  const at = Date.now();
  const t0 = performance.now();
  try {
    await client.call('nodeReport', { params: { name: node }, body });
    process.stdout.write(`${JSON.stringify({ at, ms: performance.now() - t0 })}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ at, error: e instanceof Error ? e.message : String(e) })}\n`);
  }
  await new Promise((r) => setTimeout(r, Math.max(0, at + period - Date.now())));
}
process.exit(0);
