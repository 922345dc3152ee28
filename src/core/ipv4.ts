/**
 * IPv4 syntax, arithmetic and address allocation: the one place that says what an IPv4
 * address or CIDR is, for the API's validation, the renderers' own checks (core/nft-rules.ts,
 * core/dnsmasq-config.ts) and the metadata server's source lookup alike. Pure.
 */

/**
 * Dotted quad, each part 0..255 written without leading zeros: `010.0.0.1` is refused rather
 * than guessed at, since inet_aton (and so some tools) reads it as octal.
 */
export function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** Throws `bad IPv4 <what> "<s>"` unless `s` is an IPv4 address (see isIpv4). */
export function checkIpv4(s: string, what = 'address'): void {
  if (!isIpv4(s)) throw new Error(`bad IPv4 ${what} ${JSON.stringify(s)}`);
}

/** `a.b.c.d/p` with p in 0..32, by syntax only (host bits allowed, no reserved ranges): for renderers. */
export function splitCidr(text: string): { ip: string; prefix: number } {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 32) throw new Error(`bad IPv4 CIDR ${JSON.stringify(text)}`);
  return { ip: m[1]!, prefix: Number(m[2]) };
}

/** The netmask of a prefix length, as an unsigned integer. */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function ipToInt(ip: string): number {
  if (!isIpv4(ip)) throw new Error(`not an IPv4 address: ${ip}`);
  return ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
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
 * `whole`: every address of `cidr` is a guest's (a service's block inside its network, which
 * holds neither the network's gateway nor its broadcast). `exclude`: ranges to jump over (the
 * services' blocks, when allocating a plain VM's address in the network).
 */
export function allocateIp(cidr: Cidr, used: ReadonlySet<string>, from?: string, opts: { whole?: boolean; exclude?: readonly Cidr[] } = {}): string | undefined {
  const first = opts.whole ? cidr.network : cidr.network + 2;
  const end = opts.whole ? cidr.network + cidr.size : cidr.network + cidr.size - 1;
  // `from`: a caller that knows every address below it is used may start there.
  const start = from !== undefined && contains(cidr, from) ? Math.max(ipToInt(from), first) : first;
  for (let n = start; n < end; n++) {
    const skip = opts.exclude?.find((b) => n >= b.network && n < b.network + b.size);
    if (skip) {
      n = skip.network + skip.size - 1;
      continue;
    }
    const ip = intToIp(n);
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

export function contains(cidr: Cidr, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= cidr.network && n < cidr.network + cidr.size;
}
