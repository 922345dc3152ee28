/**
 * Paths (issue 14): add, remove, list and check who may reach a service's instances. The
 * model and its checks are core/paths/ (the same the node's rules are rendered from); this
 * file stores paths, refuses what may not be (naming the field, inside the write so a refusal
 * leaves nothing, not even a revision), and tells the nodes: every host of the network (its
 * paths table), and every node when a publication changes (published.ts).
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { DesiredPath } from '../api/schemas/desired.ts';
import type { PathCheck, PathCreate, PathMatch, Path as ApiPath } from '../api/schemas/path.ts';
import { checkAccess, INTERNET } from '../core/paths/access.ts';
import { cidrRange, findDuplicate, isService, parsePortSpec, pathText, portsText, validatePath, type Path, type PathError, type PathModel, type PathSource, type Proto } from '../core/paths/model.ts';
import { parseBlueprint } from '../core/blueprint/index.ts';
import { idempotent, type Once } from './idempotency.ts';
import { touchServiceHosts } from './mesh.ts';
import { touchAllNodes } from './published.ts';
import type { Db } from './store/db.ts';
import type { NetworkRow, PathRow, ServiceRevisionRow, ServiceRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';
import { VXLAN_PORT } from '../core/fdb-plan.ts';

/** A host port the nodes need for themselves, and what for: never a published port. */
/** `butter agent --wg-port`'s default; a node's own port is read from the endpoint it reports. */
const WIREGUARD_PORT = 51820;

export interface ReservedPort {
  proto: Proto;
  port: number;
  why: string;
}

export function corePath(r: PathRow): Path {
  return { network: r.network, from: r.from_service !== null ? { service: r.from_service } : { cidr: r.from_cidr! }, to: r.to_service, proto: r.proto, ports: [r.port_lo, r.port_hi] };
}

export function apiPath(r: PathRow): ApiPath {
  const p = corePath(r);
  return { id: r.id, network: r.network, from: p.from, to: r.to_service, proto: r.proto, ports: [r.port_lo, r.port_hi], hostPorts: r.host_port_lo === null ? null : [r.host_port_lo, r.host_port_lo + r.port_hi - r.port_lo], text: pathText(p), createdAt: r.created_at };
}

/** The network's paths as its nodes render them (desired-state.ts). */
export function desiredPaths(db: Db, network: string): DesiredPath[] {
  const rows = db.prepare(`SELECT * FROM paths WHERE network = ? ORDER BY to_service, from_service, from_cidr, proto, port_lo, port_hi`).all(network) as PathRow[];
  return rows.map((r) => {
    const p = corePath(r);
    return { from: p.from, to: p.to, proto: p.proto, ports: [r.port_lo, r.port_hi] };
  });
}

/** A service name is a DNS label: anything with a dot, slash or colon is meant as a CIDR. */
export function parseSource(text: string): PathSource {
  return /[./:]/.test(text) ? { cidr: text } : { service: text };
}

function fail(e: PathError, code: 'invalid' | 'not_found' = 'invalid', field: string = e.field): never {
  throw new ApiError(code, e.message, field);
}

/** What checks need: every service (a path naming one of another network is told so) and the network's paths. */
function modelOf(db: Db, network: string): { model: PathModel; rows: Map<Path, PathRow> } {
  const services = db.prepare(`SELECT name, network, block FROM services ORDER BY name`).all() as { name: string; network: string; block: string }[];
  const rows = new Map<Path, PathRow>();
  for (const r of db.prepare(`SELECT * FROM paths WHERE network = ? ORDER BY created_at, id`).all(network) as PathRow[]) rows.set(corePath(r), r);
  return { model: { services, paths: [...rows.keys()] }, rows };
}

function serviceRow(db: Db, name: string, field: 'from' | 'to'): ServiceRow {
  const s = db.prepare(`SELECT * FROM services WHERE name = ?`).get(name) as ServiceRow | undefined;
  if (!s) throw new ApiError('not_found', `no service ${name}`, field);
  return s;
}

/** The path a request means: its ports parsed, its services found, its network known; not yet checked against the others. */
function requested(db: Db, req: { network?: string | undefined; from: string; to: string; ports: string }): { path: Path; target: ServiceRow; net: NetworkRow } {
  const spec = parsePortSpec(req.ports);
  if ('field' in spec) fail(spec, 'invalid', 'ports');
  const from = parseSource(req.from);
  const target = serviceRow(db, req.to, 'to');
  if (isService(from)) serviceRow(db, from.service, 'from');
  const network = req.network ?? target.network;
  const net = db.prepare(`SELECT * FROM networks WHERE name = ?`).get(network) as NetworkRow | undefined;
  if (!net) throw new ApiError('not_found', `network ${network} not found`, 'network');
  return { path: { network, from, to: req.to, proto: spec.proto, ports: spec.ports }, target, net };
}

/** Whether a CIDR path reaches beyond its network's own CIDR (then it publishes): `0.0.0.0/0`, a home LAN. */
function publishes(path: Path, net: NetworkRow): boolean {
  if (isService(path.from)) return false;
  const [lo, hi] = cidrRange(path.from.cidr);
  const [nlo, nhi] = cidrRange(net.cidr);
  return lo < nlo || hi > nhi;
}

/** `public_ip: true` in the blueprint of every revision the service runs or rolls to. */
function publicIp(db: Db, svc: ServiceRow): { ok: true } | { ok: false; revision: number } {
  for (const n of new Set([svc.current_revision, svc.target_revision])) {
    const rev = db.prepare(`SELECT * FROM service_revisions WHERE service = ? AND number = ?`).get(svc.id, n) as ServiceRevisionRow | undefined;
    if (!rev || !parseBlueprint(rev.blueprint, rev.file).instance.publicIp) return { ok: false, revision: n };
  }
  return { ok: true };
}

export class Paths {
  constructor(
    private readonly store: Store,
    /** The control plane's own API port(s): a node beside it (`butter up`) serves it on its addresses. */
    private readonly apiPorts: () => number[] = () => [],
  ) {}

  list(q: { network?: string | undefined; service?: string | undefined } = {}): ApiPath[] {
    const rows = this.store.db.prepare(`SELECT * FROM paths ORDER BY network, to_service, created_at, id`).all() as PathRow[];
    return rows.filter((r) => (q.network === undefined || r.network === q.network) && (q.service === undefined || r.to_service === q.service || r.from_service === q.service)).map(apiPath);
  }

  add(actor: string, req: PathCreate, once?: Once): ApiPath {
    return this.store.write(actor, idempotent(once, (tx) => {
      const { path, target, net } = requested(tx.db, req);
      const { model } = modelOf(tx.db, path.network);
      const bad = validatePath(model, path);
      if (bad.length > 0) fail(bad[0]!);
      if (target.state === 'deleting') throw new ApiError('conflict', `service ${target.name} is being deleted`, 'to');
      if (isService(path.from) && serviceRow(tx.db, path.from.service, 'from').state === 'deleting') throw new ApiError('conflict', `service ${path.from.service} is being deleted`, 'from');
      const dup = findDuplicate(model, path);
      if (dup) {
        const row = tx.db.prepare(`SELECT id FROM paths WHERE network = ? AND to_service = ? AND COALESCE(from_service, '') = ? AND COALESCE(from_cidr, '') = ? AND proto = ? AND port_lo = ? AND port_hi = ?`).get(path.network, path.to, isService(path.from) ? path.from.service : '', isService(path.from) ? '' : path.from.cidr, path.proto, path.ports[0], path.ports[1]) as { id: string };
        throw new ApiError('conflict', `path ${pathText(dup)} exists already (${row.id})`, 'to');
      }
      const hostLo = publishes(path, net) ? this.hostPort(tx.db, path, target, req.hostPort) : null;
      if (hostLo === null && req.hostPort !== undefined) {
        throw new ApiError('invalid', isService(path.from) ? 'hostPort: only a path from a CIDR publishes a service on host ports' : `hostPort: ${path.from.cidr} lies inside network ${net.name} (${net.cidr}): its addresses reach ${target.name} directly, nothing is published`, 'hostPort');
      }
      const row: PathRow = {
        id: randomBytes(6).toString('hex'),
        network: path.network,
        from_service: isService(path.from) ? path.from.service : null,
        from_cidr: isService(path.from) ? null : path.from.cidr,
        to_service: path.to,
        proto: path.proto,
        port_lo: path.ports[0],
        port_hi: path.ports[1],
        host_port_lo: hostLo,
        created_at: tx.now,
      };
      tx.db.prepare(`INSERT INTO paths (id, network, from_service, from_cidr, to_service, proto, port_lo, port_hi, host_port_lo, created_at) VALUES (@id, @network, @from_service, @from_cidr, @to_service, @proto, @port_lo, @port_hi, @host_port_lo, @created_at)`).run(row);
      const out = apiPath(row);
      tx.event('create', 'path', row.id, `path ${out.text} in ${row.network}${out.hostPorts ? `, published on every node at ${portsText(row.proto, out.hostPorts)}` : ''}`);
      touchFor(tx, row);
      return out;
    }));
  }

  /**
   * The first host port of a new publishing path: the one its (service, proto, ports) is
   * published at already, else `wanted`, else the first port; never one the nodes need, never
   * overlapping another publication's.
   */
  private hostPort(db: Db, path: Path, target: ServiceRow, wanted: number | undefined): number {
    const pub = publicIp(db, target);
    if (!pub.ok) throw new ApiError('conflict', `service ${target.name} may not be published: the blueprint of its revision ${pub.revision} says instance.public_ip: false (the default); a path from ${sourceOf(path)} beyond network ${path.network} would publish it`, 'to');
    const [lo, hi] = path.ports;
    const same = db.prepare(`SELECT * FROM paths WHERE to_service = ? AND proto = ? AND port_lo = ? AND port_hi = ? AND host_port_lo IS NOT NULL LIMIT 1`).get(path.to, path.proto, lo, hi) as PathRow | undefined;
    const what = `${path.to}:${portsText(path.proto, path.ports)}`;
    if (same && wanted !== undefined && wanted !== same.host_port_lo) throw new ApiError('conflict', `${what} is published at host port ${same.host_port_lo} already (path ${same.id}); give that hostPort or none`, 'hostPort');
    const first = same?.host_port_lo ?? wanted ?? lo;
    const last = first + hi - lo;
    if (last > 65535) throw new ApiError('invalid', `hostPort: host ports ${first}-${last} go beyond 65535`, 'hostPort');
    if (same) return first;
    const hint = wanted === undefined ? ' (by default a service is published at its own port; choose another with hostPort)' : '';
    for (const r of this.reserved(db)) {
      if (r.proto === path.proto && r.port >= first && r.port <= last) throw new ApiError('conflict', `host port ${r.port}/${r.proto} is ${r.why} on the nodes: it cannot publish ${what}${hint}`, 'hostPort');
    }
    const other = db.prepare(`SELECT * FROM paths WHERE proto = ? AND host_port_lo IS NOT NULL AND host_port_lo <= ? AND host_port_lo + port_hi - port_lo >= ? LIMIT 1`).get(path.proto, last, first) as PathRow | undefined;
    if (other) {
      const theirs = apiPath(other);
      throw new ApiError('conflict', `host port${first === last ? '' : 's'} ${portsText(path.proto, [first, last])} taken: ${other.to_service}:${portsText(other.proto, [other.port_lo, other.port_hi])} is published at ${portsText(other.proto, theirs.hostPorts!)} (path ${other.id})${hint}`, 'hostPort');
    }
    return first;
  }

  /** Ports the nodes' hosts need: sshd, Butter's API, the mesh, VXLAN, the host's DNS and DHCP client. */
  private reserved(db: Db): ReservedPort[] {
    const wg = new Set<number>([WIREGUARD_PORT]);
    for (const n of db.prepare(`SELECT wg_endpoint, default_endpoint FROM nodes`).all() as { wg_endpoint: string | null; default_endpoint: string | null }[]) {
      for (const e of [n.wg_endpoint, n.default_endpoint]) {
        const m = e ? /:(\d+)$/.exec(e) : null;
        if (m) wg.add(Number(m[1]));
      }
    }
    return [
      // sshd: Butter cannot tell from here whether a node runs it, and losing it locks its admin out.
      { proto: 'tcp', port: 22, why: "sshd's" },
      ...[...new Set([7700, ...this.apiPorts()])].map((port) => ({ proto: 'tcp' as const, port, why: "Butter's API port" })),
      ...[...wg].map((port) => ({ proto: 'udp' as const, port, why: "the node mesh's WireGuard port" })),
      { proto: 'udp', port: VXLAN_PORT, why: 'the VXLAN port of the private networks' },
      { proto: 'tcp', port: 53, why: "the host resolver's DNS port" },
      { proto: 'udp', port: 53, why: "the host resolver's DNS port" },
      { proto: 'udp', port: 67, why: 'the DHCP server port' },
      { proto: 'udp', port: 68, why: "the host's DHCP client port" },
    ];
  }

  remove(actor: string, id: string): ApiPath {
    return this.store.write(actor, (tx) => {
      const row = tx.db.prepare(`SELECT * FROM paths WHERE id = ?`).get(id) as PathRow | undefined;
      if (!row) throw new ApiError('not_found', `path ${id} not found`, 'id');
      return deletePath(tx, row, 'removed');
    });
  }

  /** The path saying exactly FROM TO PORTS (what `path rm FROM TO PORT` names). */
  removeMatching(actor: string, m: PathMatch): ApiPath {
    return this.store.write(actor, (tx) => {
      const { path } = requested(tx.db, m);
      const { model, rows } = modelOf(tx.db, path.network);
      const dup = findDuplicate(model, path);
      if (!dup) throw new ApiError('not_found', `no path ${pathText(path)} in network ${path.network}`, 'to');
      return deletePath(tx, rows.get(dup)!, 'removed');
    });
  }

  check(q: { from?: string | undefined; internet?: boolean | undefined; to: string; port: string; proto?: Proto | undefined }): PathCheck {
    const db = this.store.db;
    if (q.internet && q.from !== undefined) throw new ApiError('invalid', 'give from or internet, not both', 'from');
    if (!q.internet && q.from === undefined) throw new ApiError('invalid', 'from: a service or a CIDR (or internet=1)', 'from');
    const spec = parsePortSpec(q.port);
    if ('field' in spec) fail(spec, 'invalid', spec.field === 'ports' ? 'port' : 'proto');
    if (spec.ports[0] !== spec.ports[1]) throw new ApiError('invalid', `port: one port, not a range (${q.port})`, 'port');
    const explicit = /\/[a-z]+$/.test(q.port.trim());
    if (q.proto !== undefined && explicit && q.proto !== spec.proto) throw new ApiError('invalid', `proto ${q.proto} and port ${q.port} disagree`, 'proto');
    const proto = q.proto ?? spec.proto;
    const from = q.internet ? INTERNET : parseSource(q.from!);
    const target = serviceRow(db, q.to, 'to');
    if (isService(from)) serviceRow(db, from.service, 'from');
    const { model, rows } = modelOf(db, target.network);
    let answer;
    try {
      answer = checkAccess(model, from, q.to, spec.ports[0], proto);
    } catch (e) {
      const field = (e as { field?: string }).field;
      throw new ApiError('invalid', (e as Error).message, field === 'ports' ? 'port' : field);
    }
    const api = (p: Path) => apiPath(rows.get(p)!);
    const base = { network: target.network, from, to: q.to, proto, port: spec.ports[0] };
    return answer.allowed
      ? { ...base, allowed: true, path: api(answer.path), paths: answer.paths.map(api), reason: null }
      : { ...base, allowed: false, path: null, paths: answer.partial.map(api), reason: answer.reason };
  }
}

function sourceOf(p: Path): string {
  return isService(p.from) ? p.from.service : p.from.cidr;
}

/** Every host of the network re-reads its paths; every node, when the path publishes. */
function touchFor(tx: Tx, row: PathRow): void {
  touchServiceHosts(tx, row.network);
  if (row.host_port_lo !== null) touchAllNodes(tx);
}

function deletePath(tx: Tx, row: PathRow, why: string): ApiPath {
  tx.db.prepare(`DELETE FROM paths WHERE id = ?`).run(row.id);
  const out = apiPath(row);
  tx.event('delete', 'path', row.id, `path ${out.text} in ${row.network} ${why}`);
  touchFor(tx, row);
  return out;
}

/**
 * Refuses a revision of `service` whose blueprint says `public_ip: false` while paths publish
 * it (services.ts, at update and rollback): what may be published is the blueprint's to say.
 */
export function checkPublishable(db: Db, service: string, publicIp: boolean, file: string): void {
  if (publicIp) return;
  const rows = db.prepare(`SELECT * FROM paths WHERE to_service = ? AND host_port_lo IS NOT NULL ORDER BY id`).all(service) as PathRow[];
  if (rows.length === 0) return;
  throw new ApiError('conflict', `${file}: instance.public_ip: false, but service ${service} is published by ${rows.map((r) => `path ${r.id} (${apiPath(r).text})`).join(', ')}; remove them first (path rm)`, 'blueprint');
}

/** A service being deleted takes the paths from and to it along (a new one of its name starts with none). */
export function removeServicePaths(tx: Tx, service: string): void {
  for (const row of tx.db.prepare(`SELECT * FROM paths WHERE to_service = ? OR from_service = ? ORDER BY id`).all(service, service) as PathRow[]) {
    deletePath(tx, row, `removed with service ${service}`);
  }
}
