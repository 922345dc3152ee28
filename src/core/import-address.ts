/**
 * Which addresses an image import (server/image-import.ts) may not download from: the control
 * plane's own loopback, link-local (169.254.0.0/16 holds the clouds' metadata address,
 * 169.254.169.254, and fe80::/10) and the unspecified address (0.0.0.0/8, `::`, which reach the
 * host itself). Otherwise an operator could make the control plane fetch its own local-only
 * services or a cloud's metadata (an SSRF). Pure: the caller resolves the name.
 */

/** Why `ip` (an IPv4 or IPv6 literal, as DNS answers it) is refused, or undefined when it is not. */
export function refusedImportAddress(ip: string): string | undefined {
  const v4 = ipv4Of(ip);
  if (v4) {
    if (v4[0] === 127) return 'a loopback address';
    if (v4[0] === 169 && v4[1] === 254) return 'a link-local address (169.254.0.0/16, where the metadata address is)';
    if (v4[0] === 0) return 'the unspecified address (0.0.0.0/8)';
    return undefined;
  }
  const v6 = ip.toLowerCase().replace(/^\[|\]$/g, '').split('%')[0]!;
  const groups = expand6(v6);
  if (!groups) return undefined;
  if (groups.every((g) => g === 0)) return 'the unspecified address (::)';
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return 'a loopback address (::1)';
  if ((groups[0]! & 0xffc0) === 0xfe80) return 'a link-local address (fe80::/10)';
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses reach the IPv4 one.
  if (groups.slice(0, 5).every((g) => g === 0) && (groups[5] === 0xffff || groups[5] === 0)) {
    const mapped = `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
    return refusedImportAddress(mapped);
  }
  return undefined;
}

function ipv4Of(ip: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  return o.every((x) => x <= 255) ? o : undefined;
}

/** The eight 16-bit groups of an IPv6 literal (a trailing dotted quad allowed), or undefined. */
function expand6(s: string): number[] | undefined {
  let tail: number[] = [];
  const dotted = /(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(s);
  if (dotted) {
    const o = ipv4Of(dotted[1]!);
    if (!o) return undefined;
    tail = [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
    s = s.slice(0, -dotted[1]!.length) + (s.endsWith(`::${dotted[1]}`) ? '' : '0');
    if (s.endsWith(':0')) s = s.slice(0, -2);
    else if (s.endsWith(':')) s = s.endsWith('::') ? s : s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const part = (h: string) => (h === '' ? [] : h.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = part(halves[0]!);
  const rest = halves.length === 2 ? part(halves[1]!) : [];
  const want = 8 - tail.length;
  let groups: number[];
  if (halves.length === 2) {
    const zeros = want - head.length - rest.length;
    if (zeros < 0) return undefined;
    groups = [...head, ...Array<number>(zeros).fill(0), ...rest, ...tail];
  } else groups = [...head, ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g)) ? groups : undefined;
}
