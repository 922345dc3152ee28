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

export function parseCidr(text: string): Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text);
  if (!m) throw new Error(`not a CIDR: ${text}`);
  const prefix = Number(m[2]);
  if (prefix > 30 || prefix < 8) throw new Error(`prefix /${prefix} out of range /8../30`);
  const size = 2 ** (32 - prefix);
  const addr = ipToInt(m[1]!);
  const network = addr - (addr % size);
  if (network !== addr) throw new Error(`${text} has host bits set; did you mean ${intToIp(network)}/${prefix}?`);
  return { network, prefix, size };
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
