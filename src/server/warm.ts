/**
 * Warm images (issue 16), the control plane's side: `POST /v1/images/{name}/warm` records a
 * warm state (`image_warm`, one per image and node) as `warming`; the node's desired state
 * lists it (`DesiredWarm`), the node boots the template, saves it and reports `ready` or
 * `failed`. A VM created on that node with the same size then starts from it
 * (`core/warm.ts#startPlan`, decided in the create's transaction).
 *
 * The template is no VM: no row in `vms`, no address on any network (its one NIC is a tap
 * of its own QEMU on no bridge, see `warmTemplateSpec`). While it runs (seconds) its CPUs and
 * memory are not counted on the node; the request checks that they fit when it is made.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { DesiredWarm } from '../api/schemas/desired.ts';
import type { Image, ImageWarm, ImageWarmState } from '../api/schemas/image.ts';
import type { NodeReport, ObservedVmReport } from '../api/schemas/node.ts';
import { summarizeReasons } from '../core/scheduler.ts';
import { humanSize, MiB, parseSize } from '../core/units.ts';
import type { WarmEntry } from '../core/warm.ts';
import type { Images } from './images.ts';
import type { Nodes } from './nodes.ts';
import type { ImageRow, VmRow } from './store/rows.ts';
import type { Store, Tx } from './store/store.ts';

/** As `vm create`'s (vms.ts, not imported: vms.ts imports this file). */
const MIN_MEMORY = 64 * MiB;

export interface WarmRow {
  id: string;
  image: string;
  node: string;
  cpus: number;
  memory_bytes: number;
  nics: number;
  state: 'warming' | 'ready' | 'failed';
  reason: string | null;
  size_bytes: number | null;
  ready_at: string | null;
  created_at: string;
}

/** The image's warm states as the API shows them, by node. */
export function warmStatesOf(db: Tx['db'], image: string): ImageWarmState[] {
  const rows = db.prepare(`SELECT * FROM image_warm WHERE image = ? ORDER BY node`).all(image) as WarmRow[];
  return rows.map((r) => ({
    node: r.node,
    state: r.state,
    ...(r.reason !== null ? { reason: r.reason } : {}),
    cpus: r.cpus,
    memoryMb: Math.round(r.memory_bytes / 1024 ** 2),
    ...(r.size_bytes !== null ? { sizeBytes: r.size_bytes } : {}),
    ...(r.ready_at !== null ? { readyAt: r.ready_at } : {}),
  }));
}

/** What `startPlan` weighs for a VM of `image`. */
export function warmEntries(db: Tx['db'], image: string): WarmEntry[] {
  const rows = db.prepare(`SELECT * FROM image_warm WHERE image = ? ORDER BY node`).all(image) as WarmRow[];
  return rows.map((r) => ({ id: r.id, node: r.node, state: r.state, reason: r.reason, cpus: r.cpus, memoryBytes: r.memory_bytes, nics: r.nics }));
}

/** The node's warm states for its desired state: the ones it is to make or keep (failed ones it has deleted). */
export function nodeWarm(db: Tx['db'], node: string, imageOf: (name: string) => DesiredWarm['image']): DesiredWarm[] {
  const rows = db.prepare(`SELECT * FROM image_warm WHERE node = ? AND state != 'failed' ORDER BY id`).all(node) as WarmRow[];
  return rows.map((r) => ({ id: r.id, image: imageOf(r.image), cpus: r.cpus, memoryBytes: r.memory_bytes, state: r.state as 'warming' | 'ready' }));
}

/** A warm state a node finished, from its report. */
export interface WarmChange {
  row: WarmRow;
  state: 'ready' | 'failed';
  reason: string | null;
  sizeBytes: number | null;
}

export function warmReportChanges(db: Tx['db'], node: string, warm: NodeReport['warm']): WarmChange[] {
  if (!warm?.length) return [];
  const pending = new Map((db.prepare(`SELECT * FROM image_warm WHERE node = ? AND state = 'warming'`).all(node) as WarmRow[]).map((r) => [r.id, r]));
  return warm.flatMap((w) => {
    const row = pending.get(w.id);
    return row ? [{ row, state: w.state, reason: w.reason ?? null, sizeBytes: w.sizeBytes ?? null }] : [];
  });
}

export function applyWarmChanges(tx: Tx, changes: readonly WarmChange[]): void {
  for (const c of changes) {
    tx.db.prepare(`UPDATE image_warm SET state = ?, reason = ?, size_bytes = ?, ready_at = ? WHERE id = ?`).run(c.state, c.reason, c.sizeBytes, c.state === 'ready' ? tx.now : null, c.row.id);
    // Its node stops reporting it (ready) or deletes what is left (failed: no longer listed).
    tx.touchNode(c.row.node);
    const size = c.sizeBytes !== null ? ` (${humanSize(c.sizeBytes)} of memory state)` : '';
    tx.event('warm', 'image', c.row.image, c.state === 'ready' ? `image ${c.row.image}: warm on ${c.row.node}${size}` : `image ${c.row.image}: warming on ${c.row.node} failed: ${c.reason ?? 'no reason given'}`);
  }
}

/** VMs whose node fell back to a cold boot (or confirms its warm start): `vms.start` follows the node's word. */
export function startReportChanges<V extends Pick<VmRow, 'id' | 'start' | 'start_reason'>>(vms: readonly V[], reports: readonly ObservedVmReport[]): { vm: V; start: 'warm' | 'cold'; reason: string | null }[] {
  const byId = new Map(vms.map((v) => [v.id, v]));
  return reports.flatMap((r) => {
    const vm = r.start && byId.get(r.id);
    if (!vm || !r.start) return [];
    const reason = r.start.kind === 'cold' ? (r.start.reason ?? null) : null;
    return vm.start === r.start.kind && (vm.start_reason ?? null) === reason ? [] : [{ vm, start: r.start.kind, reason }];
  });
}

export class WarmImages {
  constructor(
    private readonly store: Store,
    private readonly nodes: Nodes,
    private readonly images: Images,
  ) {}

  /**
   * Records the warm state as `warming` on the named node (or where a VM of that size would go)
   * and wakes the node. Refused: an image that is not there or not ready (404/409 naming
   * `name`), a node that cannot take the template (422 naming `node`), an image already warm
   * or warming on that node (409 naming `name`). A failed one is replaced.
   */
  warm(actor: string, name: string, req: ImageWarm): Image {
    let image: ImageRow;
    try {
      image = this.images.row(name);
    } catch (e) {
      throw e instanceof ApiError ? new ApiError(e.code, e.message, 'name') : e;
    }
    const memoryBytes = parseSize(req.memory ?? '512M');
    if (memoryBytes === undefined) throw new ApiError('invalid', `memory ${JSON.stringify(req.memory)} is not a size (e.g. 256M, 1G)`, 'memory');
    if (memoryBytes < MIN_MEMORY) throw new ApiError('invalid', `memory must be at least ${humanSize(MIN_MEMORY)}`, 'memory');
    const cpus = req.cpus ?? 1;
    if (req.node) this.nodes.row(req.node);
    // The template runs for seconds: it must fit (its disk is the image's, counted nowhere).
    const placement = this.nodes.snapshot().schedule({ cpus, memoryBytes, diskBytes: 0, ...(req.node ? { node: req.node } : {}) });
    if (!placement.ok) throw new ApiError('no_capacity', `no node can run the template of ${name} (${cpus} cpu, ${humanSize(memoryBytes)}): ${summarizeReasons(placement.reasons)}`, 'node');
    const node = placement.node;
    this.store.write(actor, (tx) => {
      const had = tx.db.prepare(`SELECT * FROM image_warm WHERE image = ? AND node = ?`).get(image.name, node) as WarmRow | undefined;
      if (had && had.state !== 'failed') {
        throw new ApiError('conflict', `image ${image.name} is ${had.state === 'ready' ? 'already warm' : 'being warmed'} on node ${node} (${had.cpus} cpu, ${humanSize(had.memory_bytes)})`, 'name');
      }
      if (had) tx.db.prepare(`DELETE FROM image_warm WHERE id = ?`).run(had.id);
      tx.db
        .prepare(`INSERT INTO image_warm (id, image, node, cpus, memory_bytes, nics, state, created_at) VALUES (?, ?, ?, ?, ?, 1, 'warming', ?)`)
        .run(randomBytes(6).toString('hex'), image.name, node, cpus, memoryBytes, tx.now);
      tx.touchNode(node);
      tx.event('warm', 'image', image.name, `image ${image.name}: warming on ${node} (${cpus} cpu, ${humanSize(memoryBytes)})`);
    });
    return this.images.get(image.name);
  }

  /** `image unwarm NAME --node N`: the row goes; the node, told, deletes the files (once no disk stands on them). */
  unwarm(actor: string, name: string, node: string): Image {
    this.store.write(actor, (tx) => {
      if (!tx.db.prepare(`SELECT 1 FROM images WHERE name = ?`).get(name)) throw new ApiError('not_found', `image ${name} not found`, 'name');
      const row = tx.db.prepare(`SELECT * FROM image_warm WHERE image = ? AND node = ?`).get(name, node) as WarmRow | undefined;
      if (!row) throw new ApiError('not_found', `image ${name} has no warm state on node ${node}`, 'node');
      tx.db.prepare(`DELETE FROM image_warm WHERE id = ?`).run(row.id);
      tx.touchNode(node);
      tx.event('unwarm', 'image', name, `image ${name}: warm state on ${node} removed (${row.state}); new VMs of it there boot cold`);
    });
    return this.images.get(name);
  }
}

/**
 * A node that stopped reporting will not say how its warming ended: each warm state it was
 * making fails, saying so (warm it again; if the node returns it deletes what it made, no
 * longer told to keep it). Its ready ones stay: they are on its disk, for when it is back.
 */
export function failNodeWarming(tx: Tx, node: string): void {
  const rows = tx.db.prepare(`SELECT * FROM image_warm WHERE node = ? AND state = 'warming'`).all(node) as WarmRow[];
  for (const r of rows) {
    const reason = `node ${node} stopped reporting while warming`;
    tx.db.prepare(`UPDATE image_warm SET state = 'failed', reason = ? WHERE id = ?`).run(reason, r.id);
    tx.event('warm', 'image', r.image, `image ${r.image}: warming on ${node} failed: ${reason}`);
  }
}
