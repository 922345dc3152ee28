/**
 * Services: groups of VMs made from a blueprint. A service owns an address block in its
 * network (core/service-block.ts) and numbered revisions (blueprint, templates, variables,
 * image digest); its instances are ordinary VMs, made by the VM create path (`Vms.creation`)
 * with the service's name, index, revision and block. Create makes the block, the service,
 * its first revision and every instance in one write: nothing is left half-made. Rolling to
 * another revision is the rollout controller's (server/rollout.ts, deciding with
 * core/rollout-plan.ts): `step` here carries out one of its decisions.
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { Service, ServiceCreate, ServiceRevision, ServiceUpdate } from '../api/schemas/service.ts';
import { MAX_DATA_DISKS, MAX_USER_DATA, MIN_DATA_DISK, type Vm, type VmState } from '../api/schemas/vm.ts';
import { BlueprintError, checkRender, imageMatches, isImageGlob, parseBlueprint, renderUserData, type Blueprint } from '../core/blueprint/index.ts';
import { parseCidr, type Cidr } from '../core/ipv4.ts';
import { newestFirst, planRollout, type RolloutInstance, type RolloutStep } from '../core/rollout-plan.ts';
import { allocateBlock, blockPrefix, cidrText } from '../core/service-block.ts';
import { formatSize } from '../core/units.ts';
import { fingerprint, idempotent, type Once } from './idempotency.ts';
import type { Images } from './images.ts';
import type { ImageRow, NetworkRow, ServiceRevisionRow, ServiceRow, VmRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';
import { checkPublishable, removeServicePaths } from './paths.ts';
import { publishedEndpoints } from './published.ts';
import { usedAddresses } from './vpn.ts';
import { serviceBlocks, type Vms } from './vms.ts';

/** A blueprint checked and its image found: what a revision is made of. */
interface Prepared {
  bp: Blueprint;
  blueprint: string;
  file: string;
  files: Record<string, string>;
  vars: Record<string, unknown>;
  image: ImageRow;
}

const DEFAULT_FILE = 'blueprint.yml';

export const dnsNameOf = (service: string, network: string): string => `${service}.${network}.internal`;

function blueprintError(e: unknown): never {
  if (e instanceof BlueprintError) throw new ApiError('invalid', e.message, 'blueprint');
  throw e;
}

export class ServiceManager {
  constructor(
    private readonly store: Store,
    private readonly vms: Vms,
    private readonly images: Images,
  ) {}

  private row(db: Tx['db'], name: string): ServiceRow {
    const r = db.prepare(`SELECT * FROM services WHERE name = ?`).get(name) as ServiceRow | undefined;
    if (!r) throw new ApiError('not_found', `service ${name} not found`, 'name');
    return r;
  }

  private revision(db: Tx['db'], svc: ServiceRow, number: number): ServiceRevisionRow | undefined {
    return db.prepare(`SELECT * FROM service_revisions WHERE service = ? AND number = ?`).get(svc.id, number) as ServiceRevisionRow | undefined;
  }

  private instanceRows(db: Tx['db'], name: string): (VmRow & { zone: string | null })[] {
    return db.prepare(`SELECT v.*, n.zone AS zone FROM vms v LEFT JOIN nodes n ON n.name = v.node WHERE v.service = ? ORDER BY v.service_index`).all(name) as (VmRow & { zone: string | null })[];
  }

  list(network?: string): Service[] {
    const rows = (network === undefined ? this.store.db.prepare(`SELECT * FROM services ORDER BY name`).all() : this.store.db.prepare(`SELECT * FROM services WHERE network = ? ORDER BY name`).all(network)) as ServiceRow[];
    return rows.map((r) => this.toApi(this.store.db, r));
  }

  get(name: string): Service {
    return this.toApi(this.store.db, this.row(this.store.db, name));
  }

  private toApi(db: Tx['db'], r: ServiceRow): Service {
    const rev = this.revision(db, r, r.target_revision)!;
    const instances = this.instanceRows(db, r.name);
    const placement = [...new Set(instances.map((i) => i.placement_warning).filter((w): w is string => !!w))];
    return {
      name: r.name,
      network: r.network,
      block: r.block,
      dnsName: dnsNameOf(r.name, r.network),
      zones: r.zones,
      count: r.count,
      state: r.state,
      revision: r.current_revision,
      targetRevision: r.target_revision,
      rollout: { state: r.rollout, message: r.rollout_message },
      warnings: [...(r.warning ? [r.warning] : []), ...placement],
      image: rev.image,
      blueprint: rev.blueprint,
      instances: instances.map((i) => ({ name: i.name, index: i.service_index!, node: i.node, zone: i.zone, ip: i.ip, state: i.state, reason: i.reason, revision: i.service_revision! })),
      published: publishedEndpoints(db, r.name),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  revisions(name: string): ServiceRevision[] {
    const svc = this.row(this.store.db, name);
    const rows = this.store.db.prepare(`SELECT * FROM service_revisions WHERE service = ? ORDER BY number DESC`).all(svc.id) as ServiceRevisionRow[];
    return rows.map((r) => ({
      number: r.number,
      current: r.number === svc.current_revision,
      target: r.number === svc.target_revision,
      image: r.image,
      imageDigest: r.image_digest,
      blueprint: r.blueprint,
      templates: Object.keys(JSON.parse(r.files) as Record<string, string>),
      vars: JSON.parse(r.vars) as Record<string, unknown>,
      createdAt: r.created_at,
    }));
  }

  /** Parses and checks a blueprint with its templates and variables, and finds its image. Writes nothing. */
  private prepare(service: string, network: string, content: { blueprint: string; file?: string | undefined; files?: Record<string, string> | undefined; vars?: Record<string, unknown> | undefined }): Prepared {
    const file = content.file ?? DEFAULT_FILE;
    const files = content.files ?? {};
    const vars = content.vars ?? {};
    let bp: Blueprint;
    try {
      bp = parseBlueprint(content.blueprint, file);
      checkRender(bp, { files, vars, builtins: { service, network, index: 0, dnsName: dnsNameOf(service, network), instanceName: `${service}-0` } });
    } catch (e) {
      blueprintError(e);
    }
    // The VM API's own bounds on data disks, said in the blueprint's terms.
    const data = bp.instance.dataDisks;
    if (data.length > MAX_DATA_DISKS) throw new ApiError('invalid', `${file}: instance.disks: at most ${MAX_DATA_DISKS} data disks besides the root disk, got ${data.length}`, 'blueprint');
    const small = data.findIndex((d) => d.sizeBytes < MIN_DATA_DISK);
    if (small >= 0) throw new ApiError('invalid', `${file}: instance.disks[${small + 1}].size: a data disk must be at least 1M`, 'blueprint');
    const size = Buffer.byteLength(this.render({ bp, files, vars } as Prepared, service, network, 0));
    if (size > MAX_USER_DATA) throw new ApiError('invalid', `${file}: initialization: the rendered user-data is ${size} bytes, more than ${MAX_USER_DATA}`, 'blueprint');
    return { bp, blueprint: content.blueprint, file, files, vars, image: this.image(bp.image.name, file) };
  }

  /** An image name, or a glob: then the newest match by creation time. */
  private image(name: string, file: string): ImageRow {
    if (!isImageGlob(name)) {
      try {
        return this.images.row(name);
      } catch (e) {
        if (e instanceof ApiError) throw new ApiError(e.code, `${file}: image.name: ${e.message}`, 'blueprint');
        throw e;
      }
    }
    const match = (this.store.db.prepare(`SELECT * FROM images ORDER BY created_at DESC, name DESC`).all() as ImageRow[]).find((r) => imageMatches(name, r.name));
    if (!match) throw new ApiError('not_found', `${file}: image.name: no image matches ${JSON.stringify(name)}`, 'blueprint');
    return match;
  }

  private render(p: Pick<Prepared, 'bp' | 'files' | 'vars'>, service: string, network: string, index: number): string {
    try {
      return renderUserData(p.bp, { files: p.files, vars: p.vars, builtins: { service, network, index, dnsName: dnsNameOf(service, network), instanceName: `${service}-${index}` } });
    } catch (e) {
      blueprintError(e);
    }
  }

  /** Ready, uncordoned nodes' zones: what `placement.availability_zones` can spread over. */
  private zones(): string[] {
    return (this.store.db.prepare(`SELECT DISTINCT zone FROM nodes WHERE state = 'ready' AND cordoned = 0 ORDER BY zone`).all() as { zone: string }[]).map((r) => r.zone);
  }

  create(actor: string, req: ServiceCreate, once?: Once): Service {
    const net = this.store.db.prepare(`SELECT * FROM networks WHERE name = ?`).get(req.network) as NetworkRow | undefined;
    if (!net) throw new ApiError('not_found', `network ${req.network} not found`, 'network');
    const p = this.prepare(req.name, req.network, req);
    const count = req.count ?? p.bp.count ?? p.bp.placement.availabilityZones;
    const max = p.bp.network.subnetworkMaxInstanceCount;
    if (count > max) throw new ApiError('invalid', `count ${count} is more than the blueprint's network.subnetwork_max_instance_count (${max})`, 'count');
    const wanted = p.bp.placement.availabilityZones;
    const zones = this.zones();
    let warning: string | null = null;
    if (zones.length < wanted) {
      const found = `${zones.length} found${zones.length ? ` (${zones.join(', ')})` : ''} among ready, uncordoned nodes`;
      if (!req.force) throw new ApiError('no_capacity', `${p.file}: placement.availability_zones: ${wanted} zones wanted, ${found}; --force places anyway`, 'blueprint');
      warning = `placement.availability_zones: ${wanted} zones wanted, ${found} (placed with --force)`;
    }
    // Rendered and checked before anything is written: a template error makes nothing.
    const userData = Array.from({ length: count }, (_, i) => this.render(p, req.name, req.network, i));
    return this.store.write(actor, idempotent(once, (tx) => {
      this.checkName(tx, req.name);
      const block = this.allocate(tx, net, max, p.file);
      const svc: ServiceRow = {
        id: randomUUID().replace(/-/g, '').slice(0, 16),
        name: req.name,
        network: req.network,
        block: cidrText(block),
        zones: wanted,
        count,
        current_revision: 1,
        target_revision: 1,
        state: 'active',
        rollout: 'done',
        rollout_message: null,
        warning,
        created_at: tx.now,
        updated_at: tx.now,
      };
      tx.db
        .prepare(`INSERT INTO services (id, name, network, block, zones, count, current_revision, target_revision, state, rollout, rollout_message, warning, created_at, updated_at) VALUES (@id, @name, @network, @block, @zones, @count, @current_revision, @target_revision, @state, @rollout, @rollout_message, @warning, @created_at, @updated_at)`)
        .run(svc);
      this.insertRevision(tx, svc, 1, p);
      for (let i = 0; i < count; i++) this.instance(tx, svc, 1, p, i, userData[i]);
      tx.event('create', 'service', req.name, `service ${req.name} in ${req.network} (${svc.block}): ${count} instance(s) of ${p.image.name}${warning ? ` — warning: ${warning}` : ''}`);
      return this.toApi(tx.db, svc);
    }));
  }

  /** Another service, a VM with the service's name, or one named like an instance of it. */
  private checkName(tx: Tx, name: string): void {
    if (tx.db.prepare(`SELECT 1 FROM services WHERE name = ?`).get(name)) throw new ApiError('conflict', `service ${name} already exists`, 'name');
    const like = (tx.db.prepare(`SELECT name FROM vms WHERE name = ? OR name LIKE ? ORDER BY name`).all(name, `${name}-%`) as { name: string }[]).find((v) => v.name === name || new RegExp(`^${name}-\\d+$`).test(v.name));
    if (like) throw new ApiError('conflict', `vm ${like.name} exists: a service named ${name} would clash with it (its instances are ${name}-0, ${name}-1, …)`, 'name');
  }

  /** The service's block: clear of the network's own addresses, other blocks, VPN addresses and VMs. */
  private allocate(tx: Tx, net: NetworkRow, max: number, file: string): Cidr {
    const cidr = parseCidr(net.cidr);
    const point = (n: number): Cidr => ({ network: n, prefix: 32, size: 1 });
    const taken = [point(cidr.network), point(cidr.network + 1), point(cidr.network + cidr.size - 1), ...serviceBlocks(tx.db, net.name), ...[...usedAddresses(tx, net.name)].map((ip) => parseCidr(`${ip}/32`, { maxPrefix: 32 }))];
    const r = allocateBlock(cidr, max, taken);
    if (r.ok) return r.block;
    const free = r.largestFree ? `the largest free block is ${cidrText(r.largestFree)} (${r.largestFree.size} addresses)` : 'no address is free';
    throw new ApiError('no_capacity', `${file}: network.subnetwork_max_instance_count: network ${net.name} (${net.cidr}) has no free block of ${max} addresses (/${blockPrefix(max)}); ${free}`, 'blueprint');
  }

  private insertRevision(tx: Tx, svc: ServiceRow, number: number, p: Prepared): void {
    tx.db
      .prepare(`INSERT INTO service_revisions (service, number, blueprint, file, files, vars, image, image_digest, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(svc.id, number, p.blueprint, p.file, JSON.stringify(p.files), JSON.stringify(p.vars), p.image.name, p.image.sha256, tx.now);
  }

  /** The lowest indexes whose names no VM has (a service's own deleting instances included). */
  private freeIndexes(tx: Tx, name: string, n: number): number[] {
    const taken = new Set((tx.db.prepare(`SELECT name FROM vms WHERE name LIKE ?`).all(`${name}-%`) as { name: string }[]).map((v) => v.name));
    const out: number[] = [];
    for (let i = 0; out.length < n; i++) if (!taken.has(`${name}-${i}`)) out.push(i);
    return out;
  }

  /** One instance, by the VM create path, spread over zones then nodes by the service's name. */
  private instance(tx: Tx, svc: ServiceRow, revision: number, p: Prepared, index: number, userData = this.render(p, svc.name, svc.network, index)): Vm {
    const inst = p.bp.instance;
    const req = {
      name: `${svc.name}-${index}`,
      image: p.image.name,
      cpus: inst.cpus,
      memory: formatSize(inst.memoryBytes),
      ...(inst.rootDiskBytes !== undefined ? { disk: formatSize(inst.rootDiskBytes) } : {}),
      // instance.disks[1..]: data disks, vdb, vdc, ... (their device_name is the original's; the guest names them by order).
      ...(inst.dataDisks.length ? { disks: inst.dataDisks.map((d) => ({ size: formatSize(d.sizeBytes) })) } : {}),
      network: svc.network,
      spreadKey: svc.name,
      userData,
      ...(inst.idleStop ? { idleStop: inst.idleStop } : {}),
    };
    return this.vms.creation(req, { service: svc.name, index, revision, block: parseCidr(svc.block, { maxPrefix: 32 }) })(tx);
  }

  /** A stored revision, checked again as it would be made now (its image must still be the one it names). */
  private stored(svc: ServiceRow, rev: ServiceRevisionRow): Prepared {
    const p = this.prepare(svc.name, svc.network, { blueprint: rev.blueprint, file: rev.file, files: JSON.parse(rev.files) as Record<string, string>, vars: JSON.parse(rev.vars) as Record<string, unknown> });
    if (p.image.sha256 !== rev.image_digest) throw new ApiError('conflict', `image ${p.image.name} is not the one revision ${rev.number} was made with (digest ${rev.image_digest.slice(0, 12)})`, 'blueprint');
    return p;
  }

  scale(actor: string, name: string, count: number): Service {
    const svc = this.row(this.store.db, name);
    if (svc.state === 'deleting') throw new ApiError('conflict', `service ${name} is being deleted`, 'name');
    if (svc.rollout === 'rolling') throw new ApiError('conflict', `service ${name} is rolling to revision ${svc.target_revision}; scale it when the rollout is done (or roll back)`, 'count');
    const rev = this.revision(this.store.db, svc, svc.current_revision)!;
    const p = this.stored(svc, rev);
    if (count > p.bp.network.subnetworkMaxInstanceCount) throw new ApiError('invalid', `count ${count} is more than the blueprint's network.subnetwork_max_instance_count (${p.bp.network.subnetworkMaxInstanceCount})`, 'count');
    return this.store.write(actor, (tx) => {
      const live = this.instanceRows(tx.db, name).filter((v) => v.power !== 'deleted');
      if (count > live.length) for (const i of this.freeIndexes(tx, name, count - live.length)) this.instance(tx, svc, svc.current_revision, p, i);
      for (const v of newestFirst(live.map((v) => ({ row: v, index: v.service_index!, createdMs: Date.parse(v.created_at) })), live.length - count)) this.vms.markDeleted(tx, v.row);
      tx.db.prepare(`UPDATE services SET count = ?, updated_at = ? WHERE id = ?`).run(count, tx.now, svc.id);
      tx.event('scale', 'service', name, `service ${name}: ${live.length} → ${count} instance(s)`);
      return this.toApi(tx.db, this.row(tx.db, name));
    });
  }

  /** Its instances are deleted; the service row goes with the last of them (`step`). */
  remove(actor: string, name: string): Service {
    return this.store.write(actor, (tx) => {
      const svc = this.row(tx.db, name);
      for (const v of this.instanceRows(tx.db, name)) if (v.power !== 'deleted') this.vms.markDeleted(tx, v);
      tx.db.prepare(`UPDATE services SET state = 'deleting', rollout = CASE rollout WHEN 'rolling' THEN 'failed' ELSE rollout END, rollout_message = CASE rollout WHEN 'rolling' THEN 'stopped: the service is being deleted' ELSE rollout_message END, updated_at = ? WHERE id = ?`).run(tx.now, svc.id);
      tx.event('delete', 'service', name, `service ${name} to be deleted with its instances`);
      // Its paths go now, not with the row: a deleting service is reached by nothing, published nowhere.
      removeServicePaths(tx, name);
      this.reapIfEmpty(tx, this.row(tx.db, name));
      const gone = tx.db.prepare(`SELECT 1 FROM services WHERE id = ?`).get(svc.id) === undefined;
      return gone ? { ...this.toApiDetached(svc, tx), state: 'deleting' as const } : this.toApi(tx.db, this.row(tx.db, name));
    });
  }

  /** The answer for a service deleted within the same write (it had no instance left). */
  private toApiDetached(svc: ServiceRow, tx: Tx): Service {
    return { name: svc.name, network: svc.network, block: svc.block, dnsName: dnsNameOf(svc.name, svc.network), zones: svc.zones, count: svc.count, state: 'deleting', revision: svc.current_revision, targetRevision: svc.target_revision, rollout: { state: svc.rollout, message: svc.rollout_message }, warnings: svc.warning ? [svc.warning] : [], image: '', blueprint: '', instances: [], published: [], createdAt: svc.created_at, updatedAt: tx.now };
  }

  private reapIfEmpty(tx: Tx, svc: ServiceRow): boolean {
    if (svc.state !== 'deleting' || tx.db.prepare(`SELECT 1 FROM vms WHERE service = ?`).get(svc.name)) return false;
    tx.db.prepare(`DELETE FROM services WHERE id = ?`).run(svc.id);
    tx.event('deleted', 'service', svc.name, `service ${svc.name} deleted`);
    return true;
  }

  /** A new revision to roll to, unless it is the one rolled to already (then nothing changes). */
  update(actor: string, name: string, req: ServiceUpdate): Service {
    const svc = this.row(this.store.db, name);
    if (svc.state === 'deleting') throw new ApiError('conflict', `service ${name} is being deleted`, 'name');
    const p = this.prepare(name, svc.network, req);
    checkPublishable(this.store.db, name, p.bp.instance.publicIp, p.file);
    const same = (n: number) => {
      const r = this.revision(this.store.db, svc, n)!;
      return r.blueprint === p.blueprint && fingerprint(JSON.parse(r.files)) === fingerprint(p.files) && fingerprint(JSON.parse(r.vars)) === fingerprint(p.vars) && r.image_digest === p.image.sha256;
    };
    if (same(svc.target_revision) && svc.rollout !== 'failed') return this.toApi(this.store.db, svc);
    if (same(svc.current_revision)) return this.retarget(actor, name, svc.current_revision, 'update');
    return this.store.write(actor, (tx) => {
      const last = (tx.db.prepare(`SELECT MAX(number) AS n FROM service_revisions WHERE service = ?`).get(svc.id) as { n: number }).n;
      this.insertRevision(tx, svc, last + 1, p);
      return this.startRollout(tx, svc, last + 1, 'update', p.bp.placement.availabilityZones);
    });
  }

  rollback(actor: string, name: string, to?: number): Service {
    const svc = this.row(this.store.db, name);
    if (svc.state === 'deleting') throw new ApiError('conflict', `service ${name} is being deleted`, 'name');
    let target = to;
    if (target === undefined) {
      if (svc.target_revision !== svc.current_revision) target = svc.current_revision;
      else {
        const prev = this.store.db.prepare(`SELECT MAX(number) AS n FROM service_revisions WHERE service = ? AND number < ?`).get(svc.id, svc.current_revision) as { n: number | null };
        if (prev.n === null) throw new ApiError('conflict', `service ${name} has no revision before ${svc.current_revision}`, 'to');
        target = prev.n;
      }
    }
    const rev = this.revision(this.store.db, svc, target);
    if (!rev) throw new ApiError('not_found', `service ${name} has no revision ${target}`, 'to');
    const back = this.stored(svc, rev); // still makeable (its image, its templates)
    checkPublishable(this.store.db, name, back.bp.instance.publicIp, back.file);
    if (target === svc.target_revision && svc.rollout !== 'failed') return this.toApi(this.store.db, svc);
    return this.retarget(actor, name, target, 'rollback');
  }

  private retarget(actor: string, name: string, to: number, why: 'update' | 'rollback'): Service {
    return this.store.write(actor, (tx) => this.startRollout(tx, this.row(tx.db, name), to, why));
  }

  private startRollout(tx: Tx, svc: ServiceRow, to: number, why: 'update' | 'rollback', zones = svc.zones): Service {
    tx.db.prepare(`UPDATE services SET target_revision = ?, rollout = 'rolling', rollout_message = ?, zones = ?, updated_at = ? WHERE id = ?`).run(to, `rolling to revision ${to}`, zones, tx.now, svc.id);
    tx.event(why, 'service', svc.name, `service ${svc.name}: ${why} to revision ${to}, rolling one instance at a time`);
    return this.toApi(tx.db, this.row(tx.db, svc.name));
  }

  /** Services the controller has work for: rolling, or deleting. */
  pending(): string[] {
    return (this.store.db.prepare(`SELECT name FROM services WHERE rollout = 'rolling' OR state = 'deleting' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
  }

  /** Carries out the planner's next step for one service; returns it (for the controller's log and tests). */
  step(name: string, nowMs: number, timeoutMs: number): RolloutStep | 'reaped' | undefined {
    const svc = this.store.db.prepare(`SELECT * FROM services WHERE name = ?`).get(name) as ServiceRow | undefined;
    if (!svc) return undefined;
    if (svc.state === 'deleting') return this.store.write('server', (tx) => (this.reapIfEmpty(tx, svc) ? 'reaped' : undefined));
    if (svc.rollout !== 'rolling') return undefined;
    const rows = this.instanceRows(this.store.db, name).filter((v) => v.power !== 'deleted');
    const instances: RolloutInstance[] = rows.map((v) => ({ name: v.name, index: v.service_index!, revision: v.service_revision!, state: v.state as VmState, reason: v.reason, createdMs: Date.parse(v.created_at) }));
    const plan = planRollout({ instances, target: svc.target_revision, count: svc.count, nowMs, timeoutMs });
    const to = svc.target_revision;
    const fail = (tx: Tx, message: string) => {
      tx.db.prepare(`UPDATE services SET rollout = 'failed', rollout_message = ?, updated_at = ? WHERE id = ?`).run(message, tx.now, svc.id);
      tx.event('rollout', 'service', name, `service ${name}: rollout to revision ${to} ${message}; the other instances are left as they are`);
    };
    switch (plan.kind) {
      case 'wait':
        return plan;
      case 'create': {
        let p: Prepared;
        try {
          p = this.stored(svc, this.revision(this.store.db, svc, to)!);
        } catch (e) {
          this.store.write('server', (tx) => fail(tx, `failed: ${e instanceof Error ? e.message : String(e)}`));
          return { kind: 'failed', name, reason: String(e) };
        }
        try {
          this.store.write('server', (tx) => {
            const [index] = this.freeIndexes(tx, name, 1);
            const vm = this.instance(tx, svc, to, p, index!);
            tx.event('rollout', 'service', name, `service ${name}: ${vm.name} created at revision ${to}`);
          });
        } catch (e) {
          const reason = e instanceof Error ? e.message : String(e);
          this.store.write('server', (tx) => fail(tx, `failed creating a replacement: ${reason}`));
          return { kind: 'failed', name, reason };
        }
        return plan;
      }
      case 'delete':
        this.store.write('server', (tx) => {
          const vm = rows.find((v) => v.name === plan.name)!;
          this.vms.markDeleted(tx, vm);
          tx.event('rollout', 'service', name, `service ${name}: ${vm.name} (revision ${vm.service_revision}) replaced`);
        });
        return plan;
      case 'failed':
        this.store.write('server', (tx) => {
          this.vms.markDeleted(tx, rows.find((v) => v.name === plan.name)!);
          fail(tx, `failed at ${plan.name}: ${plan.reason}`);
        });
        return plan;
      case 'done':
        this.store.write('server', (tx) => {
          tx.db.prepare(`UPDATE services SET current_revision = ?, rollout = 'done', rollout_message = ?, updated_at = ? WHERE id = ?`).run(to, `rolled to revision ${to}`, tx.now, svc.id);
          tx.event('rollout', 'service', name, `service ${name}: every instance at revision ${to}`);
        });
        return plan;
    }
  }
}
