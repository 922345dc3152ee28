/**
 * The address range of the blueprint tester's throwaway network: a /22 (room for several
 * services' blocks) from 10.200.0.0/13 that overlaps no network the control plane has and
 * holds no node's address (a network over a node's own underlay or mesh address would route
 * that node's traffic into the bridge). The first free one, so runs are repeatable.
 */
import { contains, isIpv4, overlaps, parseCidr, parseRange, type Cidr } from './ipv4.ts';

const FIRST = [10, 200] as const;
/** 10.200.0.0/22 … 10.207.252.0/22. */
const COUNT = 8 * 64;

export function throwawayCidr(networks: readonly string[], hostAddresses: readonly string[]): string | undefined {
  const taken: Cidr[] = networks.map((n) => parseRange(n));
  const hosts = hostAddresses.filter(isIpv4);
  for (let i = 0; i < COUNT; i++) {
    const text = `${FIRST[0]}.${FIRST[1] + Math.floor(i / 64)}.${(i % 64) * 4}.0/22`;
    const c = parseCidr(text);
    if (taken.some((t) => overlaps(t, c))) continue;
    if (hosts.some((a) => contains(c, a))) continue;
    return text;
  }
  return undefined;
}
