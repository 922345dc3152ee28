/**
 * `POST /v1/networks/{name}/verify` (issue 14): plans the probes from the store
 * (core/paths/verify-plan.ts: the network's services, paths and running instances), hands each
 * node its batch in its desired-state watch (as console input is: the write-free wake-up
 * `node:NAME`), collects the results the nodes post back (`nodeProbeResults`) and, once every
 * node answered or the deadline passed, answers with the report.
 *
 * Nothing is stored: a verification is a question asked now, and a restarted control plane
 * has no half-asked one (its nodes' answers are refused as of an unknown job). A node's
 * answer counts only for a job that handed it a batch of that network, and only once.
 */
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { ApiError } from '../api/errors.ts';
import type { ProbeBatch, ProbeResults, PathVerifyReport } from '../api/schemas/verify.ts';
import type { Path, PathModel } from '../core/paths/model.ts';
import { compareResults, planVerify, type BatchResult, type VerifyInstance } from '../core/paths/verify-plan.ts';
import { desiredPaths } from './paths.ts';
import type { Store } from './store/store.ts';

const DEFAULT_TIMEOUT_S = 60;

interface Job {
  network: string;
  /** Nodes still to answer. */
  waiting: Set<string>;
  results: BatchResult[];
  done: () => void;
}

export class PathVerifier {
  private readonly jobs = new Map<string, Job>();
  /** Batches not yet taken by their node's watch, per node. */
  private readonly queued = new Map<string, ProbeBatch[]>();

  constructor(
    private readonly store: Store,
    private readonly changes: EventEmitter,
  ) {}

  /** The network's model and running instances, as the nodes' tables are rendered from them. */
  private snapshot(network: string): { model: PathModel; instances: VerifyInstance[]; asleep: Set<string> } {
    const db = this.store.db;
    if (!db.prepare(`SELECT 1 FROM networks WHERE name = ?`).get(network)) throw new ApiError('not_found', `network ${network} not found`, 'name');
    const services = db.prepare(`SELECT name, network, block FROM services WHERE network = ? ORDER BY name`).all(network) as { name: string; network: string; block: string }[];
    const paths: Path[] = desiredPaths(db, network).map((p) => ({ network, ...p }));
    const instances = db
      .prepare(`SELECT service, node, ip, mac FROM vms WHERE network = ? AND service IS NOT NULL AND node IS NOT NULL AND ip IS NOT NULL AND state = 'running' AND power = 'running' ORDER BY id`)
      .all(network) as VerifyInstance[];
    // Scale to zero: instances asleep for idleness are not probed (a probe would wake them).
    const asleep = new Set((db.prepare(`SELECT DISTINCT service FROM vms WHERE network = ? AND service IS NOT NULL AND power = 'running' AND state = 'suspended'`).all(network) as { service: string }[]).map((r) => r.service));
    return { model: { services, paths }, instances, asleep };
  }

  async verify(network: string, timeoutS = DEFAULT_TIMEOUT_S): Promise<PathVerifyReport> {
    const { model, instances, asleep } = this.snapshot(network);
    const plan = planVerify(model, network, instances, asleep);
    const id = randomBytes(8).toString('hex');
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const job: Job = { network, waiting: new Set(plan.batches.map((b) => b.node)), results: [], done };
    if (job.waiting.size === 0) return compareResults(plan, []);
    this.jobs.set(id, job);
    for (const b of plan.batches) {
      this.queued.set(b.node, [...(this.queued.get(b.node) ?? []), { job: id, network, probes: b.probes }]);
      this.changes.emit(`node:${b.node}`);
    }
    const timer = setTimeout(done, timeoutS * 1000);
    try {
      await finished;
    } finally {
      clearTimeout(timer);
      this.jobs.delete(id);
      // A node that never watched in time must not be handed a stale batch later.
      for (const [node, list] of this.queued) {
        const left = list.filter((b) => b.job !== id);
        if (left.length > 0) this.queued.set(node, left);
        else this.queued.delete(node);
      }
    }
    return compareResults(plan, job.results);
  }

  hasBatches(node: string): boolean {
    return this.queued.has(node);
  }

  /** Takes (and forgets) the batches queued for a node. */
  takeBatches(node: string): ProbeBatch[] {
    const list = this.queued.get(node) ?? [];
    this.queued.delete(node);
    return list;
  }

  /** A node's results. Refused unless a job still waits for this node's batch of that network. */
  result(node: string, r: ProbeResults): void {
    const job = this.jobs.get(r.job);
    if (!job || job.network !== r.network || !job.waiting.has(node)) throw new ApiError('not_found', `no verify job ${r.job} waits for ${node}'s probes of network ${r.network}`, 'job');
    if (!r.admitted === !r.error) throw new ApiError('invalid', 'give either admitted or error', r.admitted ? 'error' : 'admitted');
    job.waiting.delete(node);
    job.results.push({ node, ...(r.admitted ? { admitted: r.admitted } : { error: r.error! }) });
    if (job.waiting.size === 0) job.done();
  }
}
