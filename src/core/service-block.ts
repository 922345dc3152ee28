/**
 * A service's address block: the smallest aligned CIDR inside its network that holds
 * `count` addresses (blueprint `network.subnetwork_max_instance_count`), clear of everything
 * already taken (other services' blocks, the network's own addresses, VPN addresses, VMs).
 * Its instances take their addresses from it, so a later path rule can match a service by
 * prefix. Pure: the caller says what is taken.
 */
import { intToIp, type Cidr } from './ipv4.ts';

/** The prefix of the smallest block holding `count` addresses (a power of two at least `count`). */
export function blockPrefix(count: number): number {
  let prefix = 32;
  while (2 ** (32 - prefix) < count) prefix--;
  return prefix;
}

export function cidrText(c: Cidr): string {
  return `${intToIp(c.network)}/${c.prefix}`;
}

/** Taken ranges merged into sorted, disjoint [start, end) intervals. */
function intervals(taken: readonly Cidr[]): [number, number][] {
  const sorted = taken.map((c): [number, number] => [c.network, c.network + c.size]).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Whether [a, a+size) meets a taken interval (binary search for the first interval ending after `a`). */
function hits(iv: readonly [number, number][], a: number, size: number): boolean {
  let lo = 0, hi = iv.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (iv[mid]![1] <= a) lo = mid + 1;
    else hi = mid;
  }
  return lo < iv.length && iv[lo]![0] < a + size;
}

/** The lowest free aligned block of `prefix` inside `net`, if any. */
function firstFree(net: Cidr, prefix: number, iv: readonly [number, number][]): Cidr | undefined {
  if (prefix < net.prefix || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  for (let a = net.network; a < net.network + net.size; a += size) {
    if (!hits(iv, a, size)) return { network: a, prefix, size };
  }
  return undefined;
}

export type BlockAllocation = { ok: true; block: Cidr } | { ok: false; largestFree: Cidr | undefined };

/**
 * Lowest-first, like addresses: predictable, and a freed block is reused. When nothing of the
 * size is free, the largest block that is (for the refusal: what would fit).
 */
export function allocateBlock(net: Cidr, count: number, taken: readonly Cidr[]): BlockAllocation {
  const iv = intervals(taken);
  const block = firstFree(net, blockPrefix(count), iv);
  if (block) return { ok: true, block };
  for (let p = Math.max(net.prefix, blockPrefix(count) + 1); p <= 32; p++) {
    const free = firstFree(net, p, iv);
    if (free) return { ok: false, largestFree: free };
  }
  return { ok: false, largestFree: undefined };
}
