/**
 * What `GET /readyz` checks. A control plane alone (`butter server`) is ready once its store
 * answers. `butter up` promises more, and says so here before it starts them: its local agent
 * (ready once it has reported to this process, not from a report stored before a restart) and
 * its startup images (ready once created; `building` meanwhile, see images.ts).
 */
import type { Readiness as Answer, ReadyCheck } from '../api/schemas/ready.ts';
import type { Images } from './images.ts';
import type { Nodes } from './nodes.ts';
import type { Store } from './store/store.ts';

export class Readiness {
  private agent: string | undefined;
  private readonly images = new Map<string, string | null>();

  constructor(
    private readonly store: Store,
    private readonly nodes: Nodes,
    private readonly imageService: Images,
  ) {}

  /** The node whose agent runs in this process (`butter up`). */
  expectAgent(node: string): void {
    this.agent = node;
  }

  /** An image this start adds (the tiny image). */
  expectImage(name: string): void {
    this.images.set(name, null);
  }

  /** Its build failed: the check fails, with no cause (the log has it; this answer is public). */
  imageFailed(name: string): void {
    this.images.set(name, 'build failed; see the log of butter up');
  }

  check(): Answer {
    const checks: ReadyCheck[] = [this.storeCheck()];
    if (this.agent !== undefined) {
      checks.push(this.nodes.reportedSinceStart(this.agent) ? { name: 'agent', state: 'ok' } : { name: 'agent', state: 'waiting', detail: 'the local agent has not reported yet' });
    }
    for (const [name, failure] of this.images) checks.push(this.imageCheck(name, failure));
    return { ready: checks.every((c) => c.state === 'ok'), checks };
  }

  private storeCheck(): ReadyCheck {
    try {
      this.store.db.prepare('SELECT 1').get();
      return { name: 'store', state: 'ok' };
    } catch {
      return { name: 'store', state: 'failed', detail: 'the database does not answer' };
    }
  }

  private imageCheck(name: string, failure: string | null): ReadyCheck {
    const n = `image ${name}`;
    if (this.imageService.isBuilding(name)) return { name: n, state: 'waiting', detail: 'being built' };
    if (this.imageService.exists(name)) return { name: n, state: 'ok' };
    return failure ? { name: n, state: 'failed', detail: failure } : { name: n, state: 'waiting', detail: 'not added yet' };
  }
}
