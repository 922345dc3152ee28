/**
 * The probe table of `path verify` (agent/host/path-probe.ts sends the packets): on the node
 * of the destination, a probe port (a veth whose other end is in a throwaway namespace) is
 * put on the network's bridge, and packets from it come from source services' addresses to
 * an instance. This table, `bridge butter_probe_<id>`, counts each probe that every table
 * before it let through, and drops everything from the port, so no probe reaches a guest.
 *
 * Why the bridge family, at forward priority 100: br_netfilter runs the `inet` forward hook
 * (`inet butter`, `inet butter_paths`, anyone's iptables) from the bridge's forward hook at
 * priority 0 and goes on to the bridge's later chains only with a packet all of them
 * accepted. So a packet counted here was admitted by the very rules real traffic to that
 * instance meets on this node, from a local tap or from the VXLAN port alike (the paths table
 * keys on the bridge, the addresses and the port, never on the incoming port); and in the
 * bridge family `iifname` is the port itself (in `inet` it is the bridge), so only the probe
 * port's packets are counted and dropped. Its `input` chain drops whatever the port sends to
 * the host. The port is in no `bridge butter` anti-spoofing chain (those are per VM tap), so
 * the source address may be any service's.
 *
 * Every value rendered is checked first: the text goes to `nft -f`.
 */
import { checkIpv4 } from '../ipv4.ts';
import type { Proto } from './model.ts';

/** One packet to count: its counter is `c<index>` in the order given. */
export interface ProbeMatch {
  src: string;
  dst: string;
  proto: Proto;
  port: number;
}

export function probeTableName(id: string): string {
  if (!/^[0-9a-f]{1,16}$/.test(id)) throw new Error(`bad probe run id ${JSON.stringify(id)}`);
  return `butter_probe_${id}`;
}

export function renderProbeTable(id: string, port: string, matches: readonly ProbeMatch[]): string {
  const table = probeTableName(id);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(port)) throw new Error(`bad interface name ${JSON.stringify(port)}`);
  const counters: string[] = [];
  const rules: string[] = [];
  matches.forEach((m, i) => {
    checkIpv4(m.src);
    checkIpv4(m.dst);
    if (m.proto !== 'tcp' && m.proto !== 'udp') throw new Error(`bad protocol ${JSON.stringify(m.proto)}`);
    if (!Number.isInteger(m.port) || m.port < 1 || m.port > 65535) throw new Error(`bad port ${m.port}`);
    counters.push(`\tcounter c${i} {\n\t}`);
    rules.push(`\t\tiifname "${port}" ip saddr ${m.src} ip daddr ${m.dst} meta l4proto ${m.proto} th dport ${m.port} counter name "c${i}" drop`);
  });
  return [
    `table bridge ${table} {`,
    ...counters,
    '\tchain forward {',
    '\t\ttype filter hook forward priority 100; policy accept;',
    ...rules,
    `\t\tiifname "${port}" drop`,
    '\t}',
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy accept;',
    `\t\tiifname "${port}" drop`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

export function renderProbeTableDelete(id: string): string {
  const table = probeTableName(id);
  return `table bridge ${table}\ndelete table bridge ${table}\n`;
}

/** Packets per counter index, from `nft list counters table bridge …`'s text. */
export function parseProbeCounters(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(/counter c(\d+) \{\s*packets (\d+) bytes \d+/g)) out.set(Number(m[1]), Number(m[2]));
  return out;
}
