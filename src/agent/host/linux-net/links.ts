/**
 * What the kernel says about interfaces and namespaces (`ip -j`), and what every part of the
 * Linux network host shares: the one `Exec`, the log, and how our interfaces are named and
 * marked (see linux-network.ts for why a mark).
 */
import type { Exec } from '../exec.ts';

/** What `ip -j -d addr show` tells us about one interface. */
export interface Link {
  kind?: string;
  /** VXLAN devices: their VNI and tunnel source. */
  vni?: number;
  local?: string;
  master?: string;
  /** Its alias: `mark` when we made it. */
  alias?: string;
  mtu: number;
  up: boolean;
  mac: string;
  /** IPv4 addresses as `addr/prefix` → label. */
  addrs: Map<string, string>;
}

export type Links = Map<string, Link>;

/** A link just made, before the kernel is asked again. */
export function madeLink(kind: string, extra: Partial<Link> = {}): Link {
  return { kind, mtu: 0, up: false, mac: '', addrs: new Map(), ...extra };
}

/** What the parts share. */
export interface HostCtx {
  exec: Exec;
  log: (m: string) => void;
  /** Our interfaces' names start with this; only those that also carry `mark` are ours to delete. */
  prefix: string;
  /** The alias on every interface (and gateway namespace's `lo`) this host makes. */
  mark: string;
}

export function ip(ctx: HostCtx, ...args: string[]): Promise<unknown> {
  return ctx.exec.run('ip', args);
}

/** `alias MARK` when the link does not carry our mark yet (made just now, or by a Butter from before marks). */
export function marking(ctx: HostCtx, link: Link): string[] {
  return link.alias === ctx.mark ? [] : ['alias', ctx.mark];
}

/** Gateway namespaces and any others (`ip netns` names are host-wide). */
export async function readNamespaces(exec: Exec): Promise<Set<string>> {
  const out = (await exec.run('ip', ['-j', 'netns', 'list'])).stdout.trim();
  return new Set(((out ? JSON.parse(out) : []) as { name: string }[]).map((n) => n.name));
}

/** Interfaces of the host, or of a namespace. */
export async function readLinks(exec: Exec, ns?: string): Promise<Links> {
  const out = (await exec.run('ip', [...(ns ? ['-n', ns] : []), '-j', '-d', 'addr', 'show'])).stdout.trim();
  const links: Links = new Map();
  for (const l of (out ? JSON.parse(out) : []) as IpAddrJson[]) {
    const addrs = new Map<string, string>();
    for (const a of l.addr_info ?? []) {
      if (a.family === 'inet') addrs.set(`${a.local}/${a.prefixlen}`, a.label ?? l.ifname);
    }
    const data = l.linkinfo?.info_data;
    links.set(l.ifname, {
      kind: l.linkinfo?.info_kind,
      ...(data?.id !== undefined ? { vni: data.id } : {}),
      ...(data?.local !== undefined ? { local: data.local } : {}),
      master: l.master,
      ...(l.ifalias !== undefined ? { alias: l.ifalias } : {}),
      mtu: l.mtu,
      up: (l.flags ?? []).includes('UP'),
      mac: (l.address ?? '').toLowerCase(),
      addrs,
    });
  }
  return links;
}

/** The subset of `ip -j -d addr show` we read. */
interface IpAddrJson {
  ifname: string;
  flags?: string[];
  mtu: number;
  master?: string;
  ifalias?: string;
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string } };
  addr_info?: { family: string; local: string; prefixlen: number; label?: string }[];
}
