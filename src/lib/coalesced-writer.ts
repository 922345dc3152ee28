/**
 * One state file saved often (the agent's state on every VM start, the simulated driver's
 * table), written atomically without blocking the event loop, and coalesced: saves asked for
 * while a write is in flight are served by one more write after it, of the state as it is
 * then. So a burst of saves costs two writes, not one per save; the file on disk is always
 * some complete state (old or new, never torn); writes of the file never overlap (one temp
 * file, renames in order); and the newest state always lands last.
 */
import { type AtomicWriteOptions, writeFileAtomicAsync } from './atomic-file.ts';

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

export class CoalescedWriter {
  /** Saves not yet covered by a write that started after them. */
  private waiting: Waiter[] = [];
  private running: Promise<void> | undefined;

  /** `render` is called when a write starts, so each write carries the latest state. */
  constructor(
    private readonly path: string,
    private readonly render: () => string | Uint8Array,
    private readonly mode: number,
    private readonly opts: AtomicWriteOptions = {},
  ) {}

  /**
   * Resolves once a write that started after this call is on disk (fsync'ed, unless
   * `fsync: false`), rejects if that write failed. Callers that need not wait must still
   * handle the rejection.
   */
  save(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    // `drain` runs to its first await before `running` is set; it clears `running` only
    // after that, so no second drain can start while one runs.
    this.running ??= this.drain();
    return done;
  }

  /** Waits until every save asked for so far is written (or failed). For a clean stop. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // Saves asked for in the same tick (a VM started, then marked ready) share this write.
    await Promise.resolve();
    while (this.waiting.length) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await writeFileAtomicAsync(this.path, this.render(), this.mode, this.opts);
        for (const w of batch) w.resolve();
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    this.running = undefined;
  }
}
