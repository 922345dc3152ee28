/**
 * The answer `butter path check` gives: may FROM reach TO on PORT? From the same model the
 * node rules are rendered from (core/paths/nft-paths.ts), and held to them by the property
 * test in nft-paths.property.test.ts. "Allowed" means every packet from every address of FROM
 * is admitted (FROM a service: from any address of its block, since its instances' addresses
 * come from there), by one path or by several together (two CIDR paths that cover FROM
 * between them); when only some addresses are, the answer is denied and says which path
 * admits part of it.
 */
import {
  cidrRange,
  findService,
  isService,
  pathText,
  portsText,
  sourceRange,
  sourceText,
  type Path,
  type PathError,
  type PathModel,
  type PathSource,
  type Proto,
  type Range,
} from './model.ts';

export type AccessAnswer =
  | { allowed: true; path: Path; /** Every path that admits part of FROM (more than one when none covers it alone). */ paths: Path[] }
  | { allowed: false; reason: string; /** Paths that admit only part of FROM. */ partial: Path[] };

export const INTERNET: PathSource = { cidr: '0.0.0.0/0' };

/** What is wrong with a query (empty: it can be answered). */
export function checkQuery(model: PathModel, from: PathSource, to: string, port: number, proto: Proto): PathError[] {
  const errors: PathError[] = [];
  const target = findService(model, to);
  if (!target) errors.push({ field: 'to', message: `no service ${to}` });
  if (isService(from)) {
    const src = findService(model, from.service);
    if (!src) errors.push({ field: 'from', message: `no service ${from.service}` });
    else if (target && src.network !== target.network) errors.push({ field: 'from', message: `service ${from.service} is in network ${src.network}, not ${target.network}` });
  } else {
    try {
      cidrRange(from.cidr);
    } catch (e) {
      errors.push({ field: 'from', message: (e as Error).message });
    }
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) errors.push({ field: 'ports', message: `port ${port} is out of range 1..65535` });
  if (proto !== 'tcp' && proto !== 'udp') errors.push({ field: 'proto', message: `protocol ${JSON.stringify(proto)} is not tcp or udp` });
  return errors;
}

/** Throws (naming the first bad field) unless `checkQuery` finds nothing wrong. */
export function checkAccess(model: PathModel, from: PathSource, to: string, port: number, proto: Proto): AccessAnswer {
  const bad = checkQuery(model, from, to, port, proto);
  if (bad.length > 0) throw Object.assign(new Error(bad[0]!.message), { field: bad[0]!.field });
  const target = findService(model, to)!;
  const want = sourceRange(model, { network: target.network, from })!;
  const hits: { path: Path; range: Range }[] = [];
  for (const p of model.paths) {
    if (p.network !== target.network || p.to !== to || p.proto !== proto || port < p.ports[0] || port > p.ports[1]) continue;
    const range = sourceRange(model, p);
    if (range && range[0] <= want[1] && want[0] <= range[1]) hits.push({ path: p, range });
  }
  const what = `${sourceText(from)} -> ${to}:${portsText(proto, [port, port])}`;
  const whole = hits.find((h) => h.range[0] <= want[0] && want[1] <= h.range[1]);
  if (whole) return { allowed: true, path: whole.path, paths: hits.map((h) => h.path) };
  if (covers(want, hits.map((h) => h.range))) return { allowed: true, path: hits[0]!.path, paths: hits.map((h) => h.path) };
  const partial = hits.map((h) => h.path);
  const reason = partial.length > 0 ? `${what}: only part of ${sourceText(from)} is allowed (by ${partial.map(pathText).join(', ')})` : `${what}: no path allows it`;
  return { allowed: false, reason, partial };
}

/** May the internet (every address) reach SERVICE on PORT? */
export function internetAccessible(model: PathModel, service: string, port: number, proto: Proto = 'tcp'): AccessAnswer {
  return checkAccess(model, INTERNET, service, port, proto);
}

/** Whether the union of `ranges` holds all of `want`. */
function covers(want: Range, ranges: readonly Range[]): boolean {
  let next = want[0];
  for (const [lo, hi] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (lo > next) return false;
    next = Math.max(next, hi + 1);
    if (next > want[1]) return true;
  }
  return next > want[1];
}
