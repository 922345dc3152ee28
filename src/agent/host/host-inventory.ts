/**
 * What one agent left on a host, as `butter down` sees it (core/down-plan.ts decides what to
 * remove): its marked interfaces and gateway namespaces (the same test as garbage collection,
 * linux-net/garbage.ts), its mesh interface, Butter's routing rules and nft tables, and the
 * dnsmasq and wireguard-go processes serving it. Reads only: through `Exec` and /proc.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NFT_TABLES } from '../../core/nft-rules.ts';
import type { DownObserved, ObservedLink, ObservedRule } from '../../core/down-plan.ts';
import type { Exec } from './exec.ts';
import { HOST_ROUTE_PROTO } from './linux-routing.ts';
import { readLinks, readNamespaces } from './linux-net/links.ts';

export interface InventoryOptions {
  exec: Exec;
  /** Our interfaces' names start with this (`bt`). */
  prefix: string;
  /** The alias on this agent's interfaces and its namespaces' `lo` (agent-runtime.ts linkMarkOf). */
  mark: string;
  /** The alias on its mesh interface (agent-runtime.ts meshMarkOf). */
  meshMark: string;
  netnsPrefix: string;
  /** Its dnsmasq files' dir under /run (agent-runtime.ts dnsmasqDirPath). */
  runDir: string;
  procDir?: string;
}

export type HostInventory = Pick<DownObserved, 'dnsmasq' | 'namespaces' | 'links' | 'mesh' | 'rules' | 'hostRoutes' | 'nftTables'>;

export async function observeHost(o: InventoryOptions): Promise<HostInventory> {
  const procDir = o.procDir ?? '/proc';
  const links = await readLinks(o.exec);
  const ours: ObservedLink[] = [];
  let mesh: { iface: string } | undefined;
  for (const [name, l] of links) {
    if (l.alias === o.meshMark) mesh = { iface: name };
    else if (l.alias === o.mark && name.startsWith(o.prefix)) ours.push({ name, kind: l.kind ?? '', addrs: [...l.addrs.keys()].map((a) => a.split('/')[0]!) });
  }
  const namespaces: string[] = [];
  for (const ns of await readNamespaces(o.exec)) {
    if (ns.startsWith(o.netnsPrefix) && (await readLinks(o.exec, ns)).get('lo')?.alias === o.mark) namespaces.push(ns);
  }
  const procs = await processes(procDir);
  const confPrefix = `--conf-file=${join(o.runDir, 'net')}/`;
  const dnsmasq = procs.flatMap(({ pid, argv }) => {
    const conf = argv.find((a) => a.startsWith(confPrefix));
    return conf ? [{ pid, network: conf.slice(confPrefix.length).split('/')[0]! }] : [];
  });
  const wg = mesh && procs.find((p) => p.argv.length === 2 && /(^|\/)wireguard-go$/.test(p.argv[0]!) && p.argv[1] === mesh!.iface);
  return {
    dnsmasq,
    namespaces,
    links: ours,
    ...(mesh ? { mesh: { ...mesh, ...(wg ? { wireguardGo: wg.pid } : {}) } } : {}),
    rules: await readRules(o.exec),
    hostRoutes: await readHostRoutes(o.exec),
    nftTables: await readNftTables(o.exec),
  };
}

async function readRules(exec: Exec): Promise<ObservedRule[]> {
  const out = (await exec.run('ip', ['-j', 'rule', 'show'])).stdout.trim();
  return ((out ? JSON.parse(out) : []) as { priority: number; iif?: string; src?: string; srclen?: number; table: string }[]).flatMap((r) => {
    const table = Number(r.table);
    // Named tables (main, local, default) are not Butter's.
    if (!Number.isInteger(table)) return [];
    return [{ priority: r.priority, ...(r.iif ? { iif: r.iif } : {}), ...(r.src && r.src !== 'all' ? { from: `${r.src}/${r.srclen ?? 32}` } : {}), table }];
  });
}

async function readHostRoutes(exec: Exec): Promise<{ dst: string; dev: string }[]> {
  const out = (await exec.run('ip', ['-j', 'route', 'show', 'proto', HOST_ROUTE_PROTO])).stdout.trim();
  return ((out ? JSON.parse(out) : []) as { dst: string; dev?: string }[]).map((r) => ({ dst: r.dst, dev: r.dev ?? '' }));
}

async function readNftTables(exec: Exec): Promise<string[]> {
  const lines = (await exec.run('nft', ['list', 'tables'])).stdout.split('\n').map((l) => l.trim());
  return NFT_TABLES.filter((t) => lines.includes(`table ${t}`));
}

/** Every process's pid and argv (a zombie's argv is empty). */
export async function processes(procDir = '/proc'): Promise<{ pid: number; argv: string[] }[]> {
  const out: { pid: number; argv: string[] }[] = [];
  for (const name of await readdir(procDir)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = (await readFile(join(procDir, name, 'cmdline'), 'utf8')).split('\0').filter(Boolean);
      if (argv.length) out.push({ pid: Number(name), argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
