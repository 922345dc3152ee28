/**
 * Butter's policy routing on a host: the tables and rules that send the host's metadata
 * answers back up each network's uplink and route VPN peers through their network's router,
 * and the host's own routes into networks. Through `Exec` (`ip`), compared with what `ip -j`
 * shows so that a converged host gets no command.
 */
import { overlaps, parseCidr } from '../../core/ipv4.ts';
import type { Exec } from './exec.ts';
import { UPLINK_RULE_PRIORITY, VPN_RULE_PRIORITY, VPN_TABLE_BASE, type LocalNetwork } from './network.ts';

/** The routing protocol number that marks the host's routes into networks (see `routeHost`). */
export const HOST_ROUTE_PROTO = '98';

export interface RoutingRule {
  priority: number;
  iif?: string;
  from?: string;
  table: number;
}

export class PolicyRouting {
  constructor(private readonly exec: Exec) {}

  /**
   * Makes a routing table hold exactly these routes (key: `type dst dev`, as `ip -j route`
   * shows them). A table with no route yet does not exist: `ip` says so and fails.
   */
  async ensureTable(table: number, want: Map<string, string[]>): Promise<void> {
    const t = String(table);
    const shown = await this.exec.run('ip', ['-j', 'route', 'show', 'table', t], { allowFail: true });
    if (shown.code !== 0 && !/does not exist/.test(shown.stderr)) throw new Error(`ip route show table ${t}: ${shown.stderr.trim()}`);
    const out = shown.code === 0 ? shown.stdout.trim() : '';
    const missing = new Map(want);
    for (const r of (out ? JSON.parse(out) : []) as { type?: string; dst: string; dev?: string }[]) {
      const key = `${r.type ?? 'unicast'} ${r.dst} ${r.dev ?? ''}`;
      if (missing.delete(key)) continue;
      await this.ip('route', 'del', ...(r.type && r.type !== 'unicast' ? [r.type] : []), r.dst, ...(r.dev ? ['dev', r.dev] : []), 'table', t);
    }
    for (const args of missing.values()) await this.ip('route', 'replace', ...args, 'table', t);
  }

  /**
   * Our routing rules, made to match `wanted`; the tables of rules that go are flushed. Every
   * network has one (its uplink), so they are read on each apply.
   */
  async collectRules(wanted: readonly RoutingRule[]): Promise<void> {
    const have = await this.readRules();
    for (const r of wanted) if (!have.some((h) => sameRule(h, r))) await this.ip('rule', 'add', ...ruleArgs(r));
    const stale = have.filter((h) => !wanted.some((w) => sameRule(h, w)));
    for (const r of stale) await this.ip('rule', 'del', ...ruleArgs(r));
    for (const table of new Set(stale.map((r) => r.table))) {
      if (!wanted.some((w) => w.table === table)) await this.exec.run('ip', ['route', 'flush', 'table', String(table)], { allowFail: true });
    }
  }

  /**
   * The host reaches a network's VMs through its gateway namespace (ssh from the machine
   * itself, as on one machine before), for each network whose CIDR no other network here
   * shares: one routing table cannot tell two of those apart. Ours carry `proto 98`.
   */
  async routeHost(networks: readonly LocalNetwork[]): Promise<void> {
    const want = new Map<string, LocalNetwork>();
    for (const n of networks) {
      const mine = parseCidr(n.cidr);
      if (!networks.some((o) => o !== n && overlaps(parseCidr(o.cidr), mine))) want.set(n.cidr, n);
    }
    const out = (await this.exec.run('ip', ['-j', 'route', 'show', 'proto', HOST_ROUTE_PROTO])).stdout.trim();
    for (const r of (out ? JSON.parse(out) : []) as { dst: string; gateway?: string; dev?: string }[]) {
      const n = want.get(r.dst);
      if (n && r.gateway === n.uplink.ns && r.dev === n.uplink.device) {
        want.delete(r.dst);
        continue;
      }
      await this.exec.run('ip', ['route', 'del', r.dst, 'proto', HOST_ROUTE_PROTO], { allowFail: true });
    }
    for (const n of want.values()) await this.ip('route', 'replace', n.cidr, 'via', n.uplink.ns, 'dev', n.uplink.device, 'proto', HOST_ROUTE_PROTO);
  }

  /** Our routing rules: those at our priorities that look up one of our tables. */
  private async readRules(): Promise<RoutingRule[]> {
    const out = (await this.exec.run('ip', ['-j', 'rule', 'show'])).stdout.trim();
    return ((out ? JSON.parse(out) : []) as { priority: number; iif?: string; src?: string; srclen?: number; table: string }[])
      .filter((r) => (r.priority === VPN_RULE_PRIORITY || r.priority === UPLINK_RULE_PRIORITY) && Number(r.table) >= VPN_TABLE_BASE)
      .map((r) => ({
        priority: r.priority,
        ...(r.iif ? { iif: r.iif } : {}),
        ...(r.src && r.src !== 'all' ? { from: `${r.src}/${r.srclen ?? 32}` } : {}),
        table: Number(r.table),
      }));
  }

  private ip(...args: string[]): Promise<unknown> {
    return this.exec.run('ip', args);
  }
}

/**
 * A network's rules: its uplink's (the host's answers from its end of the link go back up it),
 * and on its VPN gateway, the router's (what arrives on the router port, and from each peer on
 * the mesh, is routed by the VPN table: per peer, as networks' CIDRs may overlap).
 */
export function rulesOf(n: LocalNetwork): RoutingRule[] {
  const out: RoutingRule[] = [{ priority: UPLINK_RULE_PRIORITY, from: `${n.uplink.root}/32`, table: n.uplink.table }];
  if (n.vpn) {
    out.push({ priority: VPN_RULE_PRIORITY, iif: n.vpn.router, table: n.vpn.table });
    for (const p of n.vpn.peers) out.push({ priority: VPN_RULE_PRIORITY, iif: n.vpn.mesh, from: `${p}/32`, table: n.vpn.table });
  }
  return out;
}

function sameRule(a: RoutingRule, b: RoutingRule): boolean {
  return a.priority === b.priority && (a.iif ?? '') === (b.iif ?? '') && (a.from ?? '') === (b.from ?? '') && a.table === b.table;
}

function ruleArgs(r: RoutingRule): string[] {
  return ['priority', String(r.priority), ...(r.iif ? ['iif', r.iif] : []), ...(r.from ? ['from', r.from] : []), 'lookup', String(r.table)];
}
