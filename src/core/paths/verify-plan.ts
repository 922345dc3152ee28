/**
 * `butter path verify NETWORK`, the pure part: which probes to send where, what each should
 * see, and the comparison of what the nodes saw with that (issue 14).
 *
 * For every ordered pair of services of the network (a service and itself too), each protocol,
 * and each port of a small deterministic set (below), one probe: a packet from an address of
 * the source service's block to an instance of the destination. Its expected verdict is
 * `checkAccess`'s, the same model the nodes' tables are rendered from. A probe runs on the
 * node of its destination instance: that node's table decides for real traffic whether it
 * comes from a local tap or from another node through the VXLAN port (agent/host/path-probe.ts
 * sends it and reports whether every table passed it). Every node hosting an instance of the
 * destination runs its own probes, on one of its instances (the lowest address): the rules are
 * keyed by service blocks, so another instance of the same service on the same node would meet
 * the very same rules.
 *
 * Ports, per destination service and protocol: each end of every range a path to it names on
 * that protocol, the ports just outside (lo - 1, hi + 1), and one port no path to it names on
 * either protocol (the highest from 65000 down): edges are where renderings go wrong, and the
 * unnamed port proves the default deny.
 */
import { checkAccess } from './access.ts';
import { cidrRange, pathText, portsText, PROTOS, type PathModel, type Proto } from './model.ts';
import { intToIp, ipToInt } from '../ipv4.ts';

/** A running instance, as the control plane knows it. */
export interface VerifyInstance {
  service: string;
  node: string;
  ip: string;
  mac: string;
}

/** What a node is told to send: no names, only packets (the wire shape, api/schemas/verify.ts). */
export interface WireProbe {
  id: string;
  /** The source address (an address of the source service's block). */
  src: string;
  dst: string;
  /** The destination instance's MAC: the probe is sent to it without asking ARP. */
  dstMac: string;
  proto: Proto;
  port: number;
}

export interface Probe extends WireProbe {
  network: string;
  node: string;
  from: string;
  to: string;
  /** What the paths say. */
  expect: boolean;
  /** The path that allows it, or why none does. */
  because: string;
}

export interface ProbeBatch {
  node: string;
  network: string;
  probes: WireProbe[];
}

export interface VerifyPlan {
  network: string;
  probes: Probe[];
  /** One batch per node that must send probes, in node order. */
  batches: ProbeBatch[];
  /** Pairs that cannot be probed, and why (a destination with no running instance...). */
  skipped: { from: string; to: string; reason: string }[];
}

/** The port no path names, looked for from here down. */
export const UNNAMED_FROM = 65000;

/** The ports probed toward `to` on `proto` (see the file's comment), ascending. */
export function probePorts(model: PathModel, network: string, to: string, proto: Proto): number[] {
  const toIt = model.paths.filter((p) => p.network === network && p.to === to);
  const ports = new Set<number>();
  for (const p of toIt) {
    if (p.proto !== proto) continue;
    for (const port of [p.ports[0] - 1, p.ports[0], p.ports[1], p.ports[1] + 1]) if (port >= 1 && port <= 65535) ports.add(port);
  }
  let unnamed = UNNAMED_FROM;
  while (unnamed > 0 && toIt.some((p) => unnamed >= p.ports[0] && unnamed <= p.ports[1])) unnamed--;
  if (unnamed > 0) ports.add(unnamed);
  return [...ports].sort((a, b) => a - b);
}

/** `asleep`: services with an instance suspended for idleness (scale to zero) and none running: not probed, a probe would wake them. */
export function planVerify(model: PathModel, network: string, instances: readonly VerifyInstance[], asleep: ReadonlySet<string> = new Set()): VerifyPlan {
  const services = model.services.filter((s) => s.network === network).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byIp = (a: VerifyInstance, b: VerifyInstance) => ipToInt(a.ip) - ipToInt(b.ip);
  const of = (service: string) => instances.filter((i) => i.service === service).sort(byIp);
  const probes: Probe[] = [];
  const skipped: VerifyPlan['skipped'] = [];
  for (const to of services) {
    // One destination per node hosting the service: its lowest address there.
    const targets = new Map<string, VerifyInstance>();
    for (const i of of(to.name)) if (!targets.has(i.node)) targets.set(i.node, i);
    for (const from of services) {
      if (targets.size === 0) {
        skipped.push({ from: from.name, to: to.name, reason: asleep.has(to.name) ? `${to.name} is suspended (scaled to zero): a probe would wake it` : `${to.name} has no running instance` });
        continue;
      }
      for (const dst of [...targets.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))) {
        const src = sourceAddress(from.block, of(from.name), dst.ip);
        if (!src) {
          skipped.push({ from: from.name, to: to.name, reason: `${from.name}'s block ${from.block} has no address but ${dst.ip}, the destination's` });
          continue;
        }
        for (const proto of PROTOS) {
          for (const port of probePorts(model, network, to.name, proto)) {
            const a = checkAccess(model, { service: from.name }, to.name, port, proto);
            probes.push({
              id: `p${probes.length}`,
              network,
              node: dst.node,
              from: from.name,
              to: to.name,
              src,
              dst: dst.ip,
              dstMac: dst.mac,
              proto,
              port,
              expect: a.allowed,
              because: a.allowed ? `allowed by ${pathText(a.path)}` : a.reason,
            });
          }
        }
      }
    }
  }
  const nodes = [...new Set(probes.map((p) => p.node))].sort();
  const batches = nodes.map((node) => ({ node, network, probes: probes.filter((p) => p.node === node).map(wire) }));
  return { network, probes, batches, skipped };
}

/**
 * The address a probe comes from: a running instance of the source (the lowest) that is not
 * the destination, else the lowest address of its block that is not (a service probing itself
 * with one instance). The rules match the block, so any address of it speaks for the service.
 */
function sourceAddress(block: string, running: readonly VerifyInstance[], dst: string): string | undefined {
  const inst = running.find((i) => i.ip !== dst);
  if (inst) return inst.ip;
  const [lo, hi] = cidrRange(block);
  for (let a = lo; a <= hi && a <= lo + 1; a++) if (intToIp(a) !== dst) return intToIp(a);
  return undefined;
}

function wire(p: Probe): WireProbe {
  return { id: p.id, src: p.src, dst: p.dst, dstMac: p.dstMac, proto: p.proto, port: p.port };
}

/** What a node answered for its batch: per probe id, whether every table let it through. */
export interface BatchResult {
  node: string;
  /** Absent when the node could not run the batch (then `error` says why). */
  admitted?: Record<string, boolean>;
  error?: string;
}

export interface Disagreement {
  node: string;
  from: string;
  to: string;
  src: string;
  dst: string;
  port: string;
  expected: 'allowed' | 'denied';
  observed: 'admitted' | 'dropped';
  because: string;
}

export interface VerifyReport {
  network: string;
  /** No disagreement, and every node answered for every probe. */
  ok: boolean;
  /** Probes whose node answered. */
  probed: number;
  agreed: number;
  disagreements: Disagreement[];
  /** Nodes that did not answer in time, or could not run their batch: their probes prove nothing. */
  unanswered: { node: string; probes: number; reason: string }[];
  skipped: VerifyPlan['skipped'];
}

/** Every probe whose node's answer differs from what the paths say; `ok` when none does and every node answered. */
export function compareResults(plan: VerifyPlan, results: readonly BatchResult[]): VerifyReport {
  const byNode = new Map(results.map((r) => [r.node, r]));
  const disagreements: Disagreement[] = [];
  const unanswered: VerifyReport['unanswered'] = [];
  let probed = 0;
  for (const b of plan.batches) {
    const r = byNode.get(b.node);
    const admitted = r?.admitted;
    if (!admitted) {
      unanswered.push({ node: b.node, probes: b.probes.length, reason: r?.error ?? 'no answer before the deadline' });
      continue;
    }
    for (const p of plan.probes) {
      if (p.node !== b.node) continue;
      const seen = admitted[p.id];
      if (seen === undefined) {
        // A node that leaves out a probe has not shown it dropped: count it as not answered.
        unanswered.push({ node: b.node, probes: 1, reason: `no result for probe ${p.id}` });
        continue;
      }
      probed++;
      if (seen === p.expect) continue;
      disagreements.push({
        node: p.node,
        from: p.from,
        to: p.to,
        src: p.src,
        dst: p.dst,
        port: portsText(p.proto, [p.port, p.port]),
        expected: p.expect ? 'allowed' : 'denied',
        observed: seen ? 'admitted' : 'dropped',
        because: p.because,
      });
    }
  }
  const ok = disagreements.length === 0 && unanswered.length === 0;
  return { network: plan.network, ok, probed, agreed: probed - disagreements.length, disagreements, unanswered, skipped: plan.skipped };
}
