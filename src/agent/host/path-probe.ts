/**
 * Runs one batch of `path verify` probes on this node (the design: core/paths/probe-table.ts).
 *
 * A throwaway namespace `butter-probe-<id>` holds one end of a veth; the other end, `bprobe<id>`,
 * goes on the network's bridge only after the probe table is loaded, so nothing from it ever
 * passes uncounted or reaches a guest. In the namespace the veth owns the source addresses
 * (each a /32), sends no ARP (`arp off`: no guest learns a source address behind the probe
 * port) and no IPv6 (disabled before the veth is made), and knows each destination's MAC as a
 * permanent neighbour. The packets are sent by Node itself (`net.connect` with `localAddress`
 * sends an ordinary SYN from that address; `dgram` a datagram), run in the namespace with
 * `ip netns exec`: no raw sockets, no Python on the node. A probe counted is admitted.
 *
 * An address cannot be a source and a destination at once (a packet to an address of the
 * namespace stays in it), so sources go in rounds, each with no destination among its sources.
 * Everything is removed afterwards, failure or not; `removeStaleProbes` clears what a killed
 * agent left.
 */
import { randomBytes } from 'node:crypto';
import type { Exec } from './exec.ts';
import { checkIpv4 } from '../../core/ipv4.ts';
import type { WireProbe } from '../../core/paths/verify-plan.ts';
import { parseProbeCounters, probeTableName, renderProbeTable, renderProbeTableDelete, type ProbeMatch } from '../../core/paths/probe-table.ts';

export const PROBE_NETNS_PREFIX = 'butter-probe-';
export const PROBE_PORT_PREFIX = 'bprobe';

export interface ProbeOptions {
  /** The Node binary that sends the packets (the agent's own). */
  node?: string;
  /** How long the packets of a round are given to cross the bridge before the next round. */
  settleMs?: number;
  /** A fixed run id (tests); else random. */
  id?: string;
}

/** The sender, run by Node in the namespace: the round's probes as JSON on stdin. */
const SENDER = `
const net = require('node:net'), dgram = require('node:dgram');
let text = '';
process.stdin.on('data', (d) => (text += d)).on('end', () => {
  const { probes, settleMs } = JSON.parse(text);
  const open = [];
  for (const p of probes) {
    if (p.proto === 'tcp') {
      const s = net.connect({ host: p.dst, port: p.port, localAddress: p.src });
      s.on('error', () => {});
      open.push(() => s.destroy());
    } else {
      const s = dgram.createSocket('udp4');
      s.on('error', () => {});
      s.bind({ address: p.src, port: 0 }, () => s.send('butter path verify', p.port, p.dst));
      open.push(() => s.close());
    }
  }
  setTimeout(() => { for (const close of open) close(); console.log('sent ' + probes.length); }, settleMs);
});
`;

/** Per probe id: whether every table of this node let it through toward its destination. */
export async function runProbes(exec: Exec, bridge: string, probes: readonly WireProbe[], o: ProbeOptions = {}): Promise<Record<string, boolean>> {
  for (const p of probes) {
    checkIpv4(p.src);
    checkIpv4(p.dst);
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(p.dstMac)) throw new Error(`bad MAC ${JSON.stringify(p.dstMac)}`);
    if (p.src === p.dst) throw new Error(`probe ${p.id} comes from its own destination ${p.dst}`);
  }
  const id = o.id ?? randomBytes(4).toString('hex');
  const ns = `${PROBE_NETNS_PREFIX}${id}`;
  const port = `${PROBE_PORT_PREFIX}${id}`;
  // One counter per distinct packet (two probes saying the same share it).
  const matches: ProbeMatch[] = [];
  const counterOf = new Map<string, number>();
  const index = probes.map((p) => {
    const k = `${p.src} ${p.dst} ${p.proto} ${p.port}`;
    if (!counterOf.has(k)) {
      counterOf.set(k, matches.length);
      matches.push({ src: p.src, dst: p.dst, proto: p.proto, port: p.port });
    }
    return counterOf.get(k)!;
  });
  const inNs = (args: string[], input?: string, allowFail = false) => exec.run('ip', ['netns', 'exec', ns, ...args], { ...(input === undefined ? {} : { input }), allowFail });
  const mtu = await bridgeMtu(exec, bridge);
  try {
    await exec.run('nft', ['-f', '-'], { input: renderProbeTable(id, port, matches) });
    await exec.run('ip', ['netns', 'add', ns]);
    // Before the veth exists, so its end is made without IPv6 (no router solicitations, no MLD).
    for (const key of ['all', 'default']) await inNs(['sysctl', '-qw', `net.ipv6.conf.${key}.disable_ipv6=1`], undefined, true);
    await exec.run('ip', ['link', 'add', port, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'probe', 'mtu', String(mtu), 'netns', ns]);
    await inNs(['ip', 'link', 'set', 'dev', 'probe', 'arp', 'off', 'up']);
    // Only now on the bridge: the table drops everything from the port already.
    await exec.run('ip', ['link', 'set', 'dev', port, 'master', bridge, 'up']);
    const macs = new Map(probes.map((p) => [p.dst, p.dstMac]));
    for (const round of rounds(matches)) {
      for (const src of new Set(round.map((m) => m.src))) await inNs(['ip', 'addr', 'add', `${src}/32`, 'dev', 'probe']);
      // Each round: removing a device's last address (the flush below) takes its routes and
      // neighbours with it, permanent ones too.
      await inNs(['ip', 'route', 'replace', 'default', 'dev', 'probe']);
      for (const dst of new Set(round.map((m) => m.dst))) await inNs(['ip', 'neigh', 'replace', dst, 'lladdr', macs.get(dst)!, 'dev', 'probe', 'nud', 'permanent']);
      await inNs([o.node ?? process.execPath, '-e', SENDER], JSON.stringify({ probes: round, settleMs: o.settleMs ?? 300 }));
      await inNs(['ip', 'addr', 'flush', 'dev', 'probe']);
    }
    const counted = parseProbeCounters((await exec.run('nft', ['list', 'counters', 'table', 'bridge', probeTableName(id)])).stdout);
    return Object.fromEntries(probes.map((p, i) => [p.id, (counted.get(index[i]!) ?? 0) > 0]));
  } finally {
    // The namespace takes both ends of the veth with it; the table goes after the port.
    await exec.run('ip', ['netns', 'del', ns], { allowFail: true });
    await exec.run('ip', ['link', 'del', port], { allowFail: true });
    await exec.run('nft', ['-f', '-'], { input: renderProbeTableDelete(id), allowFail: true });
  }
}

/** Sources in rounds: no address is a source in a round that also sends to it. */
export function rounds(matches: readonly ProbeMatch[]): ProbeMatch[][] {
  const bySrc = new Map<string, ProbeMatch[]>();
  for (const m of matches) bySrc.set(m.src, [...(bySrc.get(m.src) ?? []), m]);
  const out: { srcs: Set<string>; dsts: Set<string>; matches: ProbeMatch[] }[] = [];
  for (const [src, ms] of bySrc) {
    const dsts = new Set(ms.map((m) => m.dst));
    let r = out.find((x) => !x.dsts.has(src) && ![...dsts].some((d) => x.srcs.has(d)));
    if (!r) out.push((r = { srcs: new Set(), dsts: new Set(), matches: [] }));
    r.srcs.add(src);
    for (const d of dsts) r.dsts.add(d);
    r.matches.push(...ms);
  }
  return out.map((r) => r.matches);
}

async function bridgeMtu(exec: Exec, bridge: string): Promise<number> {
  const [link] = JSON.parse((await exec.run('ip', ['-j', 'link', 'show', 'dev', bridge])).stdout) as { mtu: number }[];
  // A port of a smaller MTU would lower the bridge's (and every guest's path) while it is on it.
  if (!link || !Number.isInteger(link.mtu)) throw new Error(`no bridge ${bridge}`);
  return link.mtu;
}

/** What a probe run killed half way left: its namespace (with the veth) and its table. */
export async function removeStaleProbes(exec: Exec): Promise<string[]> {
  const removed: string[] = [];
  const namespaces = JSON.parse((await exec.run('ip', ['-j', 'netns', 'list'])).stdout || '[]') as { name: string }[];
  for (const { name } of namespaces) {
    if (!name.startsWith(PROBE_NETNS_PREFIX)) continue;
    await exec.run('ip', ['netns', 'del', name], { allowFail: true });
    removed.push(`namespace ${name}`);
  }
  const links = JSON.parse((await exec.run('ip', ['-j', 'link', 'show'])).stdout || '[]') as { ifname: string }[];
  for (const { ifname } of links) {
    if (!new RegExp(`^${PROBE_PORT_PREFIX}[0-9a-f]{1,8}$`).test(ifname)) continue;
    await exec.run('ip', ['link', 'del', ifname], { allowFail: true });
    removed.push(`link ${ifname}`);
  }
  for (const line of (await exec.run('nft', ['list', 'tables'])).stdout.split('\n')) {
    const m = /^table bridge (butter_probe_[0-9a-f]{1,16})$/.exec(line.trim());
    if (!m) continue;
    await exec.run('nft', ['delete', 'table', 'bridge', m[1]!], { allowFail: true });
    removed.push(`table bridge ${m[1]}`);
  }
  return removed;
}
