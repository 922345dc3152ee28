/**
 * Rule scale of paths (issue 14): `inet butter_paths` rendered for one node that hosts
 * instances of every service, at 1,000 services / 5,000 paths / 10,000 instances and at a
 * tenth of that, then loaded with `nft -f` into a fresh network namespace (a first load, then
 * a second = the atomic replacement every later apply does). The table's elements are one per
 * service (`@instances`) and one per path (`@paths_N`): instances appear in none of them (a
 * service's block covers its instances), so sizes follow services and paths, not pairs.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { intToIp } from '../src/core/ipv4.ts';
import type { Path, PathModel } from '../src/core/paths/model.ts';
import { renderPathsRuleset } from '../src/core/paths/nft-paths.ts';
import { registerCleanup } from './cleanup.ts';

export interface PathScalePoint {
  services: number;
  paths: number;
  instances: number;
  /** Source and destination pairs of instances the paths admit: what a per-pair table would hold. */
  instancePairs: number;
  bytes: number;
  /** Set elements in the table (`@instances`, `@dhcp`, every `@paths_N`). */
  elements: number;
  sets: number;
  renderMs: number;
  /** First `nft -f` into a namespace with no such table. */
  applyMs: number;
  /** Second `nft -f` of the same text: delete and declare again in one transaction. */
  replaceMs: number;
}

export interface PathScaleResult {
  points: PathScalePoint[];
}

const BASE = 0x0a400000; // 10.64.0.0: 1,000 /28 blocks fit in its /18

/** `services` services, a /28 block each (room for 10 instances), and `paths` distinct paths between them. */
export function scaleModel(services: number, paths: number): PathModel {
  const svc = Array.from({ length: services }, (_, i) => ({ network: 'lan', name: `s${i}`, block: `${intToIp(BASE + i * 16)}/28` }));
  const out: Path[] = [];
  // Path k: from service k mod S to service (k * 7 + 1 + floor(k / S)) mod S, on a port of its own: distinct paths.
  for (let k = 0; k < paths; k++) {
    const from = k % services;
    const to = (from + 1 + Math.floor(k / services) * 7) % services;
    const port = 1000 + (k % 50000);
    out.push({ network: 'lan', from: { service: `s${from}` }, to: `s${to}`, proto: k % 5 === 4 ? 'udp' : 'tcp', ports: [port, port] });
  }
  return { services: svc, paths: out };
}

function nft(ns: string, text: string): number {
  const t0 = performance.now();
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: text, encoding: 'utf8', timeout: 120_000 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`nft -f in ${ns}: ${r.stderr || r.error?.message}`);
  return Math.round(ms * 10) / 10;
}

export async function benchPathScale(sizes = [{ services: 100, paths: 500, instances: 1000 }, { services: 1000, paths: 5000, instances: 10000 }], log: (m: string) => void = () => {}): Promise<PathScaleResult> {
  const points: PathScalePoint[] = [];
  for (const size of sizes) {
    const model = scaleModel(size.services, size.paths);
    const t0 = performance.now();
    const text = renderPathsRuleset(model, [{ name: 'lan', bridge: 'btlan', gateway: '10.64.0.1' }]);
    const renderMs = Math.round((performance.now() - t0) * 10) / 10;
    const perService = size.instances / size.services;
    const ns = `bm-pscale-${randomBytes(3).toString('hex')}`;
    const del = () => spawnSync('ip', ['netns', 'del', ns]);
    const undo = registerCleanup(`namespace ${ns}`, del);
    try {
      const r = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
      const applyMs = nft(ns, text);
      const replaceMs = nft(ns, text);
      // What the kernel holds, counted from its own listing (not from our text).
      const listed = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', 'butter_paths'], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 }).stdout;
      const kernelSets = (JSON.parse(listed) as { nftables: { set?: { elem?: unknown[] } }[] }).nftables.flatMap((o) => (o.set ? [o.set] : []));
      const sets = kernelSets.length;
      const counted = kernelSets.reduce((sum, x) => sum + (x.elem?.length ?? 0), 0);
      const p: PathScalePoint = {
        ...size,
        instancePairs: size.paths * perService * perService,
        bytes: Buffer.byteLength(text),
        elements: Math.round(counted),
        sets,
        renderMs,
        applyMs,
        replaceMs,
      };
      log(`${size.services} services, ${size.paths} paths, ${size.instances} instances: ${p.bytes} bytes, ${p.elements} elements in ${p.sets} sets; render ${renderMs} ms, load ${applyMs} ms, replace ${replaceMs} ms`);
      points.push(p);
    } finally {
      del();
      undo();
    }
  }
  return { points };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchPathScale(undefined, (m) => console.log(m)), null, 2));
}
