/**
 * `butter down`: what of one Butter to remove from a host, and in which order, from what was
 * observed there (pure; the observing and the removing are daemon/down.ts and
 * agent/host/host-inventory.ts).
 *
 * What counts as ours is decided before this, by the same rules as the agent's garbage
 * collection: an interface named like ours AND carrying our mark, a namespace whose `lo`
 * carries it (agent/host/linux-net/garbage.ts). The mesh interface carries a mark of its own
 * (`butter-mesh:…`) so that garbage collection, which deletes marked `bt*` links, never takes
 * it. Here only the routing rules are judged: ours are those at Butter's priorities and tables
 * that name one of our interfaces or an address on one, so a second agent's on the same host
 * (another state dir) are not.
 *
 * The order: whatever could make more first (a systemd unit would restart `butter up`, `up`
 * would restart VMs and dnsmasq), then processes (a VM holds its taps), then gateway
 * namespaces (their veths' host ends go with them), routing rules before the interfaces they
 * name (a rule left behind could no longer be told ours), taps and VXLAN ports before the
 * bridges they hang off, the nft tables last (a tap never exists without its anti-spoofing
 * rules), then files.
 */

export const UP_UNIT = 'butter-up.service';
/** The data dir of `butter-up.service` (deploy/systemd), which is also `butter up`'s default. */
export const UNIT_DATA_DIR = '/var/lib/butter';

/** Butter's policy routing (agent/host/network.ts): priorities and the first table of its ranges. */
export interface RuleRange {
  priorities: readonly number[];
  minTable: number;
}

export interface ObservedRule {
  priority: number;
  iif?: string;
  /** `addr/len`. */
  from?: string;
  table: number;
}

export interface ObservedLink {
  name: string;
  kind: string;
  /** IPv4 addresses on it, without prefix length. */
  addrs: readonly string[];
}

export interface DownObserved {
  /** The data dir, resolved. */
  dataDir: string;
  /** `butter-up.service`, when systemd is PID 1 and knows it. */
  unit?: { active: boolean; enabled: boolean; mainPid: number };
  /** The live `butter up` of this data dir (its pidfile, checked against /proc). */
  up?: { pid: number };
  /** VMs whose QEMU runs (by pidfile and marker: agent/host/qemu-driver.ts). */
  vms: readonly string[];
  /** dnsmasq processes serving this agent's files under /run. */
  dnsmasq: readonly { pid: number; network: string }[];
  /** Gateway namespaces that are ours (named and marked). */
  namespaces: readonly string[];
  /** Interfaces that are ours (named and marked), the mesh's aside. */
  links: readonly ObservedLink[];
  /** The mesh interface, when it carries our mesh mark; `pid` of its wireguard-go, if any. */
  mesh?: { iface: string; wireguardGo?: number };
  /** Every routing rule of the host at Butter's priorities and tables (judged here). */
  rules: readonly ObservedRule[];
  /** The host's routes into networks (`proto 98`): destination and device. */
  hostRoutes: readonly { dst: string; dev: string }[];
  /** Butter's nft tables present (`inet butter`, `bridge butter`). */
  nftTables: readonly string[];
  /** This agent's /run dir (dnsmasq's files), when it exists. */
  runDir?: string;
  /** Only looked at with --purge: the data dir exists; the CLI's config and whether it logs in to this Butter. */
  dataDirExists: boolean;
  config?: { path: string; ours: boolean };
}

export type DownStep =
  | { kind: 'unit'; name: string }
  | { kind: 'butter-up'; name: string; pid: number }
  | { kind: 'vm'; name: string }
  | { kind: 'dnsmasq'; name: string; pid: number }
  | { kind: 'namespace'; name: string }
  | { kind: 'rule'; name: string; rule: ObservedRule }
  | { kind: 'route'; name: string; dev: string }
  | { kind: 'table'; name: string; table: number }
  | { kind: 'link'; name: string; linkKind: string }
  | { kind: 'mesh'; name: string; wireguardGo?: number }
  | { kind: 'nft-table'; name: string }
  | { kind: 'run-dir'; name: string }
  | { kind: 'config'; name: string }
  | { kind: 'data-dir'; name: string };

/** What `down` leaves on purpose, and says so. */
export interface DownKept {
  what: string;
  why: string;
}

export interface DownPlan {
  steps: DownStep[];
  kept: DownKept[];
}

/** Taps and VXLAN ports before the bridges (and veth router ports) they hang off. */
const LINK_ORDER = ['tun', 'vxlan', 'veth', 'bridge'];

export function planDown(o: DownObserved, opts: { purge: boolean; rules: RuleRange }): DownPlan {
  const steps: DownStep[] = [];
  const kept: DownKept[] = [];
  // The unit only when it is this Butter: it runs the `up` we stop, or it would start one on this data dir.
  if (o.unit && ((o.up && o.unit.mainPid === o.up.pid) || (o.dataDir === UNIT_DATA_DIR && (o.unit.active || o.unit.enabled)))) {
    steps.push({ kind: 'unit', name: UP_UNIT });
  }
  if (o.up) steps.push({ kind: 'butter-up', name: `pid ${o.up.pid}`, pid: o.up.pid });
  for (const id of o.vms) steps.push({ kind: 'vm', name: id });
  for (const d of o.dnsmasq) steps.push({ kind: 'dnsmasq', name: d.network, pid: d.pid });
  for (const ns of o.namespaces) steps.push({ kind: 'namespace', name: ns });

  const rules = ourRules(o, opts.rules);
  for (const r of rules) steps.push({ kind: 'rule', name: ruleText(r), rule: r });
  const devs = new Set(o.links.map((l) => l.name));
  for (const r of o.hostRoutes) if (devs.has(r.dev)) steps.push({ kind: 'route', name: r.dst, dev: r.dev });
  // A rule's table holds routes through our interfaces (and a VPN table a blackhole default).
  for (const table of [...new Set(rules.map((r) => r.table))].sort((a, b) => a - b)) steps.push({ kind: 'table', name: String(table), table });

  for (const kind of LINK_ORDER) {
    for (const l of o.links) if (l.kind === kind) steps.push({ kind: 'link', name: l.name, linkKind: kind });
  }
  for (const l of o.links) if (!LINK_ORDER.includes(l.kind)) steps.push({ kind: 'link', name: l.name, linkKind: l.kind });
  if (o.mesh) steps.push({ kind: 'mesh', name: o.mesh.iface, ...(o.mesh.wireguardGo !== undefined ? { wireguardGo: o.mesh.wireguardGo } : {}) });
  // The tables are named `butter`, not marked: they are this Butter's only where something else of it is.
  const here = !!(o.up || o.vms.length || o.dnsmasq.length || o.namespaces.length || o.links.length || o.mesh || o.runDir);
  if (here) for (const t of o.nftTables) steps.push({ kind: 'nft-table', name: t });
  else if (o.nftTables.length) kept.push({ what: `nft tables ${o.nftTables.join(', ')}`, why: 'nothing else of this data dir is on this host, so they are another Butter\'s' });
  if (o.runDir) steps.push({ kind: 'run-dir', name: o.runDir });

  if (opts.purge) {
    if (o.config?.ours) steps.push({ kind: 'config', name: o.config.path });
    else if (o.config) kept.push({ what: o.config.path, why: 'it logs the CLI in to another control plane' });
    if (o.dataDirExists) steps.push({ kind: 'data-dir', name: o.dataDir });
  } else if (o.dataDirExists) {
    kept.push({ what: o.dataDir, why: 'the data dir (VM disks, the database, keys): --purge removes it' });
  }
  return { steps, kept };
}

/** Rules at Butter's priorities and tables that name one of our interfaces, or come from an address on one. */
export function ourRules(o: Pick<DownObserved, 'links' | 'mesh' | 'rules'>, range: RuleRange): ObservedRule[] {
  const ifaces = new Set([...o.links.map((l) => l.name), ...(o.mesh ? [o.mesh.iface] : [])]);
  const addrs = new Set(o.links.flatMap((l) => l.addrs));
  return o.rules.filter((r) => {
    if (!range.priorities.includes(r.priority) || r.table < range.minTable) return false;
    if (r.iif !== undefined) return ifaces.has(r.iif);
    return r.from !== undefined && r.from.endsWith('/32') && addrs.has(r.from.slice(0, -3));
  });
}

/** As `ip rule` prints it. */
export function ruleText(r: ObservedRule): string {
  return [`priority ${r.priority}`, ...(r.iif ? [`iif ${r.iif}`] : []), ...(r.from ? [`from ${r.from}`] : []), `lookup ${r.table}`].join(' ');
}

/** `ip rule del` arguments. */
export function ruleArgs(r: ObservedRule): string[] {
  return ruleText(r).split(' ');
}
