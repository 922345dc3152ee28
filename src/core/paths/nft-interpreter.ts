/**
 * A small interpreter of the nftables subset core/paths/nft-paths.ts renders: tables, named
 * sets (concatenated types, `flags interval`, elements), one base chain, and rules made of
 * matches (`SEL [. SEL]... [!=] @set`, `SEL VALUE`, `ct state A,B`, `ct direction D`) and a verdict. It reads
 * the text itself, not the renderer's data, so the property test checks what the kernel would
 * be given. Anything outside the subset is an error, not a guess, and so is what the kernel
 * refuses that matters here: overlapping elements of an interval set, ranges in a set without
 * `flags interval`. Pure; used by tests (and fit for `path verify`'s explanations).
 */
import { ipToInt, isIpv4 } from '../ipv4.ts';
import { cidrRange } from './model.ts';

export interface Packet {
  iif: string;
  oif: string;
  saddr: string;
  daddr: string;
  proto: 'tcp' | 'udp' | 'icmp';
  sport: number;
  dport: number;
  ct: 'new' | 'established' | 'related' | 'invalid';
  /** Conntrack's direction: `reply` for packets answering the connection's first one. */
  dir: 'original' | 'reply';
}

export type Verdict = 'accept' | 'drop';

type Field = 'ifname' | 'ipv4_addr' | 'inet_proto' | 'inet_service';
/** One dimension of an element: a string (ifname) or an inclusive numeric range. */
type Part = string | readonly [number, number];

interface NftSet {
  fields: Field[];
  interval: boolean;
  elements: Part[][];
}

interface Match {
  selectors: string[];
  negate: boolean;
  set?: string;
  value?: string;
}

interface Rule {
  matches: Match[];
  verdict: Verdict;
}

export interface Ruleset {
  sets: Map<string, NftSet>;
  chains: Map<string, { hook: string; policy: Verdict; rules: Rule[] }>;
}

const PROTO_NUMBERS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17 };

const SELECTORS: Record<string, Field> = {
  iifname: 'ifname',
  oifname: 'ifname',
  'ip saddr': 'ipv4_addr',
  'ip daddr': 'ipv4_addr',
  'meta l4proto': 'inet_proto',
  'th sport': 'inet_service',
  'th dport': 'inet_service',
  'tcp sport': 'inet_service',
  'tcp dport': 'inet_service',
  'udp sport': 'inet_service',
  'udp dport': 'inet_service',
};

/** Parses one table's text (the renderer's whole output: the delete preamble is skipped). */
export function parseRuleset(text: string): Ruleset {
  const rs: Ruleset = { sets: new Map(), chains: new Map() };
  const lines = text.split('\n').map((l) => l.trim());
  let i = 0;
  const fail = (msg: string): never => {
    throw new Error(`line ${i + 1}: ${msg}: ${JSON.stringify(lines[i])}`);
  };
  let depth = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l === '') {
      i++;
    } else if (depth === 0 && /^(delete )?table inet [a-z_]+$/.test(l)) {
      i++;
    } else if (depth === 0 && /^table inet [a-z_]+ \{$/.test(l)) {
      depth = 1;
      i++;
    } else if (depth === 1 && l === '}') {
      depth = 0;
      i++;
    } else if (depth === 1 && /^set [a-z_0-9]+ \{$/.test(l)) {
      const name = l.split(' ')[1]!;
      const s: NftSet = { fields: [], interval: false, elements: [] };
      let elements: string | undefined;
      for (i++; lines[i] !== '}'; i++) {
        const b = lines[i];
        if (b === undefined) fail('unterminated set');
        else if (b.startsWith('type ')) s.fields = b.slice(5).split(' . ').map((f) => (Object.values(SELECTORS).includes(f as Field) ? (f as Field) : fail(`unknown type ${f}`)));
        else if (b === 'flags interval') s.interval = true;
        else if (b.startsWith('elements = { ') && b.endsWith(' }')) elements = b.slice(13, -2);
        else fail('unknown set line');
      }
      if (s.fields.length === 0) fail('set without a type');
      if (elements !== undefined) s.elements = elements.split(', ').map((e) => parseElement(e, s, fail));
      checkOverlaps(name, s);
      rs.sets.set(name, s);
      i++;
    } else if (depth === 1 && /^chain [a-z_0-9]+ \{$/.test(l)) {
      const name = l.split(' ')[1]!;
      i++;
      const m = /^type filter hook ([a-z]+) priority filter; policy (accept|drop);$/.exec(lines[i] ?? '');
      if (!m) fail('expected a base chain header');
      const chain = { hook: m![1]!, policy: m![2] as Verdict, rules: [] as Rule[] };
      for (i++; lines[i] !== '}'; i++) {
        if (lines[i] === undefined) fail('unterminated chain');
        chain.rules.push(parseRule(lines[i]!, rs, fail));
      }
      rs.chains.set(name, chain);
      i++;
    } else {
      fail('not in the subset');
    }
  }
  return rs;
}

function parseElement(text: string, s: NftSet, fail: (m: string) => never): Part[] {
  const parts = text.split(' . ');
  if (parts.length !== s.fields.length) fail(`element ${text} does not fit type ${s.fields.join(' . ')}`);
  return parts.map((p, k) => {
    const v = parseValue(p, s.fields[k]!, fail);
    if (typeof v !== 'string' && v[0] !== v[1] && !s.interval) fail(`range ${p} in a set without flags interval`);
    return v;
  });
}

function parseValue(p: string, field: Field, fail: (m: string) => never): Part {
  switch (field) {
    case 'ifname': {
      const m = /^"([A-Za-z0-9_.-]{1,15})"$/.exec(p);
      return m ? m[1]! : fail(`bad ifname ${p}`);
    }
    case 'ipv4_addr':
      if (isIpv4(p)) return [ipToInt(p), ipToInt(p)];
      if (p.includes('/')) return cidrRange(p);
      return fail(`bad address ${p}`);
    case 'inet_proto': {
      const n = PROTO_NUMBERS[p];
      return n !== undefined ? [n, n] : fail(`bad protocol ${p}`);
    }
    case 'inet_service': {
      const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p);
      if (!m) return fail(`bad port ${p}`);
      const lo = Number(m[1]), hi = Number(m[2] ?? m[1]);
      return lo <= hi && hi <= 65535 ? [lo, hi] : fail(`bad port range ${p}`);
    }
  }
}

/** The kernel's interval sets (pipapo for concatenations) refuse an element that overlaps another. */
function checkOverlaps(name: string, s: NftSet): void {
  const seen = new Set<string>();
  const kept: Part[][] = [];
  for (const e of s.elements) {
    const key = JSON.stringify(e);
    if (seen.has(key)) continue; // an exact duplicate in one add: nft keeps it once
    seen.add(key);
    const clash = kept.find((o) => o.every((p, k) => meets(p, e[k]!)));
    if (clash) throw new Error(`set ${name}: element ${JSON.stringify(e)} overlaps ${JSON.stringify(clash)} (the kernel refuses this: File exists)`);
    kept.push(e);
  }
  s.elements = kept;
}

function meets(a: Part, b: Part): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a[0] <= b[1] && b[0] <= a[1];
}

function parseRule(line: string, rs: Ruleset, fail: (m: string) => never): Rule {
  const t = line.split(' ');
  const matches: Match[] = [];
  let k = 0;
  const selector = (): string => {
    const one = t[k]!;
    if (one === 'iifname' || one === 'oifname') {
      k++;
      return one;
    }
    const two = `${one} ${t[k + 1]}`;
    if (SELECTORS[two]) {
      k += 2;
      return two;
    }
    return fail(`unknown selector at ${one}`);
  };
  while (k < t.length - 1) {
    if (t[k] === 'ct' && t[k + 1] === 'state') {
      matches.push({ selectors: ['ct state'], negate: false, value: t[k + 2] ?? fail('ct state without states') });
      k += 3;
      continue;
    }
    if (t[k] === 'ct' && t[k + 1] === 'direction') {
      const d = t[k + 2];
      if (d !== 'original' && d !== 'reply') fail('ct direction is original or reply');
      matches.push({ selectors: ['ct direction'], negate: false, value: d });
      k += 3;
      continue;
    }
    const selectors = [selector()];
    while (t[k] === '.') {
      k++;
      selectors.push(selector());
    }
    let negate = false;
    if (t[k] === '!=') {
      negate = true;
      k++;
    }
    const v = t[k++] ?? fail('match without a value');
    if (v.startsWith('@')) {
      const set = rs.sets.get(v.slice(1)) ?? fail(`unknown set ${v}`);
      const types = selectors.map((s) => SELECTORS[s]!);
      if (types.join(' . ') !== set.fields.join(' . ')) fail(`${selectors.join(' . ')} does not fit set ${v} (${set.fields.join(' . ')})`);
      matches.push({ selectors, negate, set: v.slice(1) });
    } else {
      if (selectors.length !== 1) fail('a concatenation needs a set');
      parseValue(v, SELECTORS[selectors[0]!]!, fail);
      matches.push({ selectors, negate, value: v });
    }
  }
  const verdict = t[k];
  if (verdict !== 'accept' && verdict !== 'drop') return fail('expected accept or drop at the end');
  return { matches, verdict };
}

/** The chain on `hook`'s verdict for a packet: first rule whose matches all hold, else the policy. */
export function evaluate(rs: Ruleset, hook: string, pkt: Packet): Verdict {
  const chain = [...rs.chains.values()].find((c) => c.hook === hook);
  if (!chain) throw new Error(`no chain on hook ${hook}`);
  for (const r of chain.rules) {
    if (r.matches.every((m) => holds(rs, m, pkt))) return r.verdict;
  }
  return chain.policy;
}

function holds(rs: Ruleset, m: Match, pkt: Packet): boolean {
  if (m.selectors[0] === 'ct state') return m.value!.split(',').includes(pkt.ct) !== m.negate;
  // An invalid packet has no conntrack entry, so no direction; a new one's is `original`.
  if (m.selectors[0] === 'ct direction') return pkt.ct !== 'invalid' && pkt.dir === m.value;
  const key: Part[] = [];
  for (const s of m.selectors) {
    const v = read(s, pkt);
    if (v === undefined) return false; // `udp dport` on a TCP packet: no match, even negated
    key.push(v);
  }
  if (m.set !== undefined) {
    const found = rs.sets.get(m.set)!.elements.some((e) => e.every((p, k) => meets(p, key[k]!)));
    return found !== m.negate;
  }
  const want = parseValue(m.value!, SELECTORS[m.selectors[0]!]!, () => {
    throw new Error('unreachable');
  });
  return meets(want, key[0]!) !== m.negate;
}

function read(sel: string, pkt: Packet): Part | undefined {
  const n = (x: number): Part => [x, x];
  switch (sel) {
    case 'iifname':
      return pkt.iif;
    case 'oifname':
      return pkt.oif;
    case 'ip saddr':
      return n(ipToInt(pkt.saddr));
    case 'ip daddr':
      return n(ipToInt(pkt.daddr));
    case 'meta l4proto':
      return n(PROTO_NUMBERS[pkt.proto]!);
    // `th` reads the transport header's bytes whatever the protocol (for ICMP, its type,
    // code and checksum): the packet's own numbers stand in for those.
    case 'th sport':
      return n(pkt.sport);
    case 'th dport':
      return n(pkt.dport);
    default: {
      const [proto, which] = sel.split(' ') as ['tcp' | 'udp', 'sport' | 'dport'];
      return pkt.proto === proto ? n(pkt[which]) : undefined;
    }
  }
}
