/**
 * The rollout controller: a small loop in the control plane that moves services along their
 * rollouts (and removes a deleted service once its last instance is gone). It is woken by
 * every committed write (a VM's state change arrives as a node's report, which is a write)
 * and by a timer, for the replacement timeout. It keeps nothing of its own: each pass reads
 * the services from the store and asks the planner (core/rollout-plan.ts) for the next step,
 * so after a restart it carries on where the rows say it is.
 */
import type { ServiceManager } from './services.ts';
import type { Store } from './store/store.ts';

/** How long a replacement may take to reach `running` before the rollout stops: a TCG guest boots in a minute or two. */
export const DEFAULT_ROLLOUT_TIMEOUT_MS = 5 * 60_000;
const TICK_MS = 1_000;

export interface RolloutOptions {
  timeoutMs?: number;
  clock?: () => number;
  log?: (msg: string) => void;
}

export class RolloutController {
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private stopped = true;
  private readonly kick = () => {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.pass();
    });
  };

  constructor(
    private readonly store: Store,
    private readonly services: ServiceManager,
    private readonly opts: RolloutOptions = {},
  ) {}

  start(): void {
    this.stopped = false;
    this.store.changes.on('commit', this.kick);
    this.timer = setInterval(this.kick, TICK_MS);
    this.timer.unref();
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.store.changes.off('commit', this.kick);
    clearInterval(this.timer);
  }

  /** One step for each service with work; each step is its own write, which wakes the next pass. */
  pass(): void {
    const now = (this.opts.clock ?? Date.now)();
    for (const name of this.services.pending()) {
      try {
        this.services.step(name, now, this.opts.timeoutMs ?? DEFAULT_ROLLOUT_TIMEOUT_MS);
      } catch (e) {
        // Retried at the next pass: a failing step must not stop the others (or the process).
        (this.opts.log ?? ((m: string) => process.stderr.write(`${JSON.stringify({ level: 'error', msg: m })}\n`)))(`rollout of service ${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}
