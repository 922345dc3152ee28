/**
 * DNS names for certificates: a dNSName SAN is an IA5String (ASCII), so an internationalised
 * name must be written in its IDNA form (punycode, `xn--…`), the form TLS clients compare
 * against. Anything that is not a DNS name after that conversion is refused, never written.
 */
import { domainToASCII } from 'node:url';

/** One label: letters, digits, inner hyphens, at most 63 characters (RFC 1035, RFC 5890). */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * `name` as it belongs in a certificate (lowercase ASCII, punycode for non-ASCII labels, no
 * trailing dot), or null when it is not a DNS name. A leading `*.` wildcard label is allowed.
 */
export function toDnsName(name: string): string | null {
  const wildcard = name.startsWith('*.');
  const body = wildcard ? name.slice(2) : name;
  // WHATWG's host parser (domainToASCII) percent-decodes and lets `_`, `*` and more through:
  // refuse every ASCII character a DNS name cannot hold before it gets the chance.
  if (!body || [...body].some((c) => c < '\x80' && !/[A-Za-z0-9.-]/.test(c))) return null;
  const ascii = domainToASCII(body).replace(/\.$/, '');
  if (!ascii || ascii.length > (wildcard ? 251 : 253)) return null;
  if (!ascii.split('.').every((l) => LABEL.test(l))) return null;
  return wildcard ? `*.${ascii}` : ascii;
}

/** A network's DNS domain: its VMs are `<vm>.<domain>`, its services `<service>.<domain>`. */
export const networkDomain = (network: string): string => `${network}.internal`;
