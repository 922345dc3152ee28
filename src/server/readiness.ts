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
  /** Startup images: added (true, for good: removing one later is an operator's choice, not unreadiness), pending (false), or why not. */
  private readonly images = new Map<string, boolean | string>();

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
    this.images.set(name, false);
  }

  /** It is there (added now, or found from an earlier start). */
  imageAdded(name: string): void {
    this.images.set(name, true);
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

  private imageCheck(name: string, state: boolean | string): ReadyCheck {
    const n = `image ${name}`;
    if (state === true) return { name: n, state: 'ok' };
    if (typeof state === 'string') return { name: n, state: 'failed', detail: state };
    return { name: n, state: 'waiting', detail: this.imageService.isBuilding(name) ? 'being built' : 'not added yet' };
  }
}
