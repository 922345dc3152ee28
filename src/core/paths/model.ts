/**
 * Paths: who may reach a service's instances (issue 14). A path admits traffic from a service
 * of the same network, or from a CIDR (`0.0.0.0/0` is the internet), to a service, on one
 * protocol and a port range. Everything else to an instance is denied (core/paths/nft-paths.ts
 * renders that; core/paths/access.ts answers questions about it). Pure: the caller hands the
 * model in, as the control plane sees it.
 */
import { intToIp, ipToInt, prefixMask, splitCidr } from '../ipv4.ts';

export type Proto = 'tcp' | 'udp';
export const PROTOS: readonly Proto[] = ['tcp', 'udp'];

export type PathSource = { service: string } | { cidr: string };

export interface Path {
  /** The network of `to` (and of a `from` service): paths never cross networks. */
  network: string;
  from: PathSource;
  /** A service name (service names are unique across networks). */
  to: string;
  proto: Proto;
  /** Inclusive port range; a single port is `[p, p]`. */
  ports: readonly [number, number];
}

/** What paths need of a service: where it lives and which addresses its instances take. */
export interface ServiceBlock {
  network: string;
  name: string;
  /** Its address block (CIDR) inside the network: every instance's address is in it. */
  block: string;
}

export interface PathModel {
  services: readonly ServiceBlock[];
  paths: readonly Path[];
}

/** A problem with one field of a path (or a query), for `ApiError('invalid', message, field)`. */
export interface PathError {
  field: 'network' | 'from' | 'to' | 'proto' | 'ports';
  message: string;
}

/** An inclusive range of unsigned 32-bit addresses. */
export type Range = readonly [number, number];

/** A CIDR as an address range, host bits refused (a typo such as 10.0.0.5/8 is not guessed at). */
export function cidrRange(text: string): Range {
  const { ip, prefix } = splitCidr(text);
  const addr = ipToInt(ip);
  const mask = prefixMask(prefix);
  const net = (addr & mask) >>> 0;
  if (net !== addr) throw new Error(`${text} has host bits set; did you mean ${intToIp(net)}/${prefix}?`);
  return [net, net + 2 ** (32 - prefix) - 1];
}

export function isService(s: PathSource): s is { service: string } {
  return 'service' in s;
}

export function sourceText(s: PathSource): string {
  return isService(s) ? s.service : s.cidr;
}

export function portsText(proto: Proto, [lo, hi]: readonly [number, number]): string {
  return `${lo === hi ? lo : `${lo}-${hi}`}/${proto}`;
}

export function pathText(p: Path): string {
  return `${sourceText(p.from)} -> ${p.to}:${portsText(p.proto, p.ports)}`;
}

/**
 * `PORT`, `LO-HI`, each optionally `/tcp` or `/udp` (tcp by default): the CLI's and the API's
 * port syntax. Returns the proto and range, or the error (field `ports`, or `proto`).
 */
export function parsePortSpec(text: string): { proto: Proto; ports: [number, number] } | PathError {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/([a-z]+))?$/.exec(text.trim());
  if (!m) return { field: 'ports', message: `${JSON.stringify(text)} is not PORT, LO-HI, PORT/udp or LO-HI/tcp` };
  const proto = m[3] ?? 'tcp';
  if (!(PROTOS as readonly string[]).includes(proto)) return { field: 'proto', message: `protocol ${JSON.stringify(proto)} is not tcp or udp` };
  const ports: [number, number] = [Number(m[1]), Number(m[2] ?? m[1])];
  const err = portsError(ports);
  return err ?? { proto: proto as Proto, ports };
}

function portsError([lo, hi]: readonly [number, number]): PathError | undefined {
  for (const p of [lo, hi]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) return { field: 'ports', message: `port ${p} is out of range 1..65535` };
  }
  if (lo > hi) return { field: 'ports', message: `port range ${lo}-${hi} is backwards (low > high)` };
  return undefined;
}

export function findService(model: Pick<PathModel, 'services'>, name: string): ServiceBlock | undefined {
  return model.services.find((s) => s.name === name);
}

/** Everything wrong with a path against the model, each naming its field (empty: valid). */
export function validatePath(model: PathModel, p: Path): PathError[] {
  const errors: PathError[] = [];
  if (!(PROTOS as readonly string[]).includes(p.proto)) errors.push({ field: 'proto', message: `protocol ${JSON.stringify(p.proto)} is not tcp or udp` });
  const pe = portsError(p.ports);
  if (pe) errors.push(pe);
  const to = findService(model, p.to);
  if (!to) errors.push({ field: 'to', message: `no service ${p.to}` });
  else if (to.network !== p.network) errors.push({ field: 'to', message: `service ${p.to} is in network ${to.network}, not ${p.network}` });
  if (isService(p.from)) {
    const from = findService(model, p.from.service);
    if (!from) errors.push({ field: 'from', message: `no service ${p.from.service}` });
    else if (from.network !== p.network) errors.push({ field: 'from', message: `service ${p.from.service} is in network ${from.network}, not ${p.network}: paths stay inside one network (use its CIDR, or a path per network)` });
  } else {
    try {
      cidrRange(p.from.cidr);
    } catch (e) {
      errors.push({ field: 'from', message: (e as Error).message });
    }
  }
  return errors;
}

/** The path already in the model that says the same as `p` (a duplicate is a conflict). */
export function findDuplicate(model: PathModel, p: Path): Path | undefined {
  const key = pathText(p);
  return model.paths.find((o) => o.network === p.network && pathText(o) === key);
}

/** A path's source as an address range, when it still names something (a removed service: none). */
export function sourceRange(model: PathModel, p: Pick<Path, 'network' | 'from'>): Range | undefined {
  if (!isService(p.from)) return cidrRange(p.from.cidr);
  const s = findService(model, p.from.service);
  return s && s.network === p.network ? cidrRange(s.block) : undefined;
}
