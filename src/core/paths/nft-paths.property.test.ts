/**
 * The property issue 14 asks for: `path check` (checkAccess) and the rendered ruleset, read
 * back and run by the interpreter, agree. Random networks (two of them may share a CIDR on
 * the node), services with blocks of every size from /28 to /32, paths from services and
 * from CIDRs of every width (overlapping each other, so the layering into several sets is
 * exercised), and random packets from anywhere to a random instance address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { intToIp, ipToInt } from '../ipv4.ts';
import { checkAccess } from './access.ts';
import { cidrRange, type Path, type PathModel, type PathSource, type Proto, type ServiceBlock } from './model.ts';
import { evaluate, parseRuleset, type Packet } from './nft-interpreter.ts';
import { renderPathsRuleset, type PathsNetwork } from './nft-paths.ts';

const NETWORKS: PathsNetwork[] = [
  { name: 'n0', bridge: 'bt-n0', gateway: '10.0.0.1' },
  { name: 'n1', bridge: 'bt-n1', gateway: '10.0.0.1' },
];
const SLOT = 16;

const arbProto = fc.constantFrom<Proto>('tcp', 'udp');
const arbAddr = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((n) => ipToInt('10.0.0.0') + n),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }),
);
const arbCidr = fc.tuple(arbAddr, fc.integer({ min: 0, max: 32 })).map(([a, p]) => {
  const size = 2 ** (32 - p);
  return `${intToIp(a - (a % size))}/${p}`;
});
/** Part of a service's slot: halves and quarters of blocks, so that several paths together cover a service. */
const arbPart = fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 29, max: 32 }), fc.nat()).map(([slot, p, k]) => {
  const size = 2 ** (32 - p);
  return `${intToIp(ipToInt('10.0.0.0') + SLOT * (slot + 1) + (k % (SLOT / size)) * size)}/${p}`;
});
const arbRawPath = fc.record({
  net: fc.nat(),
  to: fc.nat(),
  from: fc.oneof(fc.record({ service: fc.nat() }), fc.record({ cidr: fc.oneof(arbCidr, arbPart, fc.constantFrom('0.0.0.0/0', '10.0.0.0/24', '10.0.0.0/25', '10.0.0.128/25')) })),
  proto: arbProto,
  lo: fc.integer({ min: 1, max: 12 }),
  width: fc.integer({ min: 0, max: 4 }),
});
const arbQuery = fc.record({ net: fc.nat(), to: fc.nat(), offset: fc.nat(), src: arbAddr, port: fc.integer({ min: 1, max: 18 }), proto: arbProto, fromService: fc.nat(), sport: fc.integer({ min: 1, max: 65535 }) });
const arbCase = fc.record({
  networks: fc.integer({ min: 1, max: 2 }),
  services: fc.array(fc.array(fc.integer({ min: 28, max: 32 }), { minLength: 1, maxLength: 5 }), { minLength: 2, maxLength: 2 }),
  paths: fc.array(arbRawPath, { maxLength: 14 }),
  queries: fc.array(arbQuery, { minLength: 1, maxLength: 12 }),
  /** Pairs of paths from the two halves of a service's block: together they admit all of it. */
  splits: fc.array(fc.record({ net: fc.nat(), from: fc.nat(), to: fc.nat(), proto: arbProto, port: fc.integer({ min: 1, max: 18 }) }), { maxLength: 3 }),
});

type Case = typeof arbCase extends fc.Arbitrary<infer T> ? T : never;

function build(c: Case): { nets: PathsNetwork[]; model: PathModel; byNet: ServiceBlock[][] } {
  const nets = NETWORKS.slice(0, c.networks);
  const byNet = nets.map((n, k) => c.services[k]!.map((prefix, i): ServiceBlock => ({ network: n.name, name: `${n.name}s${i}`, block: `${intToIp(ipToInt('10.0.0.0') + SLOT * (i + 1))}/${prefix}` })));
  const paths = c.paths.map((r): Path => {
    const k = r.net % nets.length;
    const svcs = byNet[k]!;
    const from: PathSource = 'service' in r.from ? { service: svcs[r.from.service % svcs.length]!.name } : { cidr: r.from.cidr };
    return { network: nets[k]!.name, from, to: svcs[r.to % svcs.length]!.name, proto: r.proto, ports: [r.lo, Math.min(65535, r.lo + r.width)] };
  });
  for (const sp of c.splits) {
    const k = sp.net % nets.length;
    const svcs = byNet[k]!;
    const [lo, hi] = cidrRange(svcs[sp.from % svcs.length]!.block);
    if (lo === hi) continue;
    const half = (hi - lo + 1) / 2;
    const prefix = 32 - Math.log2(half);
    for (const start of [lo, lo + half]) {
      paths.push({ network: nets[k]!.name, from: { cidr: `${intToIp(start)}/${prefix}` }, to: svcs[sp.to % svcs.length]!.name, proto: sp.proto, ports: [sp.port, sp.port] });
    }
  }
  return { nets, model: { services: byNet.flat(), paths }, byNet };
}

test('checkAccess agrees with the rendered ruleset, run by the interpreter, for random packets to instances', () => {
  fc.assert(
    fc.property(arbCase, (c) => {
      const { nets, model, byNet } = build(c);
      const text = renderPathsRuleset(model, nets);
      const rs = parseRuleset(text);
      for (const q of c.queries) {
        const k = q.net % nets.length;
        const target = byNet[k]![q.to % byNet[k]!.length]!;
        const [lo, hi] = cidrRange(target.block);
        const daddr = intToIp(lo + (q.offset % (hi - lo + 1)));
        const pkt = (saddr: string): Packet => ({ iif: nets[k]!.bridge, oif: nets[k]!.bridge, saddr, daddr, proto: q.proto, sport: q.sport, dport: q.port, ct: 'new', dir: 'original' });

        // From one address.
        const saddr = intToIp(q.src);
        const answer = checkAccess(model, { cidr: `${saddr}/32` }, target.name, q.port, q.proto);
        const verdict = evaluate(rs, 'forward', pkt(saddr));
        assert.equal(verdict === 'accept', answer.allowed, `${saddr} -> ${target.name} (${daddr}) ${q.port}/${q.proto}: check says ${JSON.stringify(answer)}, the rules ${verdict}\n${text}`);

        // From a service: allowed exactly when every address of its block is admitted.
        const from = byNet[k]![q.fromService % byNet[k]!.length]!;
        const [flo, fhi] = cidrRange(from.block);
        const all = Array.from({ length: fhi - flo + 1 }, (_, i) => evaluate(rs, 'forward', pkt(intToIp(flo + i))) === 'accept').every(Boolean);
        const sAnswer = checkAccess(model, { service: from.name }, target.name, q.port, q.proto);
        assert.equal(all, sAnswer.allowed, `${from.name} -> ${target.name} ${q.port}/${q.proto}: check says ${JSON.stringify(sAnswer)}, the rules ${all ? 'admit' : 'do not admit'} all of ${from.block}\n${text}`);

        // An open connection toward the instance is held to the paths on every packet (so a
        // removed path cuts it); replies always flow; ICMP to an instance never does (paths
        // name tcp and udp only).
        assert.equal(evaluate(rs, 'forward', { ...pkt(saddr), ct: 'established' }), verdict, 'established, original direction: as a new one');
        assert.equal(evaluate(rs, 'forward', { ...pkt(saddr), ct: 'established', dir: 'reply' }), 'accept');
        assert.equal(evaluate(rs, 'forward', { ...pkt(saddr), proto: 'icmp' }), 'drop');
      }
    }),
    { numRuns: 300 },
  );
});

test('traffic to addresses of no service, and DHCP from the gateway, pass whatever the paths say', () => {
  fc.assert(
    fc.property(arbCase, fc.integer({ min: 0, max: 255 }), (c, host) => {
      const { nets, model, byNet } = build(c);
      const rs = parseRuleset(renderPathsRuleset(model, nets));
      nets.forEach((n, k) => {
        const daddr = intToIp(ipToInt('10.0.0.0') + host);
        const inBlock = byNet[k]!.some((s) => {
          const [lo, hi] = cidrRange(s.block);
          return ipToInt(daddr) >= lo && ipToInt(daddr) <= hi;
        });
        const any: Packet = { iif: n.bridge, oif: n.bridge, saddr: '10.0.0.200', daddr, proto: 'tcp', sport: 1000, dport: 22, ct: 'new', dir: 'original' };
        if (!inBlock) assert.equal(evaluate(rs, 'forward', any), 'accept', `${daddr} is no instance in ${n.name}`);
        assert.equal(evaluate(rs, 'forward', { ...any, saddr: n.gateway, proto: 'udp', sport: 67, dport: 68 }), 'accept', 'DHCP answer');
      });
    }),
    { numRuns: 200 },
  );
});
