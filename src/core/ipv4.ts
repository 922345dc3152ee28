/** IPv4 arithmetic and address allocation. Pure. */

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  return parts.reduce((acc, p) => {
    const n = Number(p);
    if (!/^\d{1,3}$/.test(p) || n > 255) throw new Error(`not an IPv4 address: ${ip}`);
    return acc * 256 + n;
  }, 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
  size: number;
}

/**
 * Ranges no private network may use: "this host", loopback, link-local (the metadata server
 * lives at 169.254.169.254), multicast and reserved, and the nodes' own mesh addresses.
 */
export const MESH_CIDR = '100.127.0.0/16';
/** Links between each node and its networks' gateway namespaces (see core/gateway-ns.ts). */
export const UPLINK_CIDR = '100.126.0.0/16';
const RESERVED: readonly [string, string][] = [
  ['0.0.0.0/8', 'is "this network"'],
  ['127.0.0.0/8', 'is loopback'],
  ['169.254.0.0/16', 'is link-local (the metadata server is 169.254.169.254)'],
  ['224.0.0.0/3', 'is multicast or reserved'],
  [MESH_CIDR, "is Butter's node mesh"],
  [UPLINK_CIDR, "is Butter's links to network gateways"],
];

export function parseCidr(text: string, opts: { maxPrefix?: number } = {}): Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text);
  if (!m) throw new Error(`not a CIDR (like 10.20.0.0/16): ${JSON.stringify(text)}`);
  const prefix = Number(m[2]);
  const maxPrefix = opts.maxPrefix ?? 30;
  if (prefix > maxPrefix || prefix < 8) throw new Error(`prefix /${prefix} out of range /8../${maxPrefix}`);
  const size = 2 ** (32 - prefix);
  const addr = ipToInt(m[1]!);
  const network = addr - (addr % size);
  if (network !== addr) throw new Error(`${text} has host bits set; did you mean ${intToIp(network)}/${prefix}?`);
  const cidr = { network, prefix, size };
  for (const [r, why] of RESERVED) {
    if (overlaps(cidr, parseRange(r))) throw new Error(`${text} overlaps ${r}, which ${why}`);
  }
  return cidr;
}

/** A CIDR without the private-network rules (for the reserved ranges themselves, like the mesh). */
export function parseRange(text: string): Cidr {
  const [ip, p] = text.split('/');
  const prefix = Number(p);
  return { network: ipToInt(ip!), prefix, size: 2 ** (32 - prefix) };
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network < b.network + b.size && b.network < a.network + a.size;
}

/** The gateway is the first host address; guests get the ones after it. */
export function gatewayOf(cidr: Cidr): string {
  return intToIp(cidr.network + 1);
}

/**
 * Lowest free guest address: skips network, gateway and broadcast. Lowest-first keeps
 * addresses predictable and reuses freed ones, like a public cloud's subnet does.
 */
export function allocateIp(cidr: Cidr, used: ReadonlySet<string>, from?: string): string | undefined {
  // `from`: a caller that knows every address below it is used may start there.
  const start = from !== undefined && contains(cidr, from) ? Math.max(ipToInt(from), cidr.network + 2) : cidr.network + 2;
  for (let n = start; n < cidr.network + cidr.size - 1; n++) {
    const ip = intToIp(n);
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

export function contains(cidr: Cidr, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= cidr.network && n < cidr.network + cidr.size;
}
