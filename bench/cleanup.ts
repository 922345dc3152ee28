/**
 * Everything a benchmark sets up on the host (namespaces, processes, temp dirs) registers
 * its undo here as well as in its own `finally`, so a timed-out figure or Ctrl-C still leaves
 * nothing behind. Undo functions must be idempotent: they may run twice.
 */
type Undo = () => unknown;

const undos = new Map<number, { what: string; undo: Undo }>();
let next = 0;

/** Registers `undo`; call the returned function once it has been done the normal way. */
export function registerCleanup(what: string, undo: Undo): () => void {
  const id = next++;
  undos.set(id, { what, undo });
  return () => undos.delete(id);
}

/** Runs every pending undo, newest first; returns what was still pending. */
export async function runCleanups(): Promise<string[]> {
  const pending = [...undos.entries()].reverse();
  undos.clear();
  for (const [, { what, undo }] of pending) {
    try {
      // Bounded: one stuck undo must not keep the others (or the bench) from finishing.
      let timer: NodeJS.Timeout | undefined;
      const stuck = await Promise.race([
        Promise.resolve(undo()).then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 30_000))),
      ]).finally(() => clearTimeout(timer));
      if (stuck) console.error(`bench: cleanup of ${what} still running after 30 s; moving on`);
    } catch (e) {
      console.error(`bench: cleanup of ${what} failed: ${(e as Error).message}`);
    }
  }
  return pending.map(([, p]) => p.what);
}

let interrupted = false;

/** True once SIGINT/SIGTERM arrived: results of such a run are not to be written. */
export function wasInterrupted(): boolean {
  return interrupted;
}

/** On SIGINT/SIGTERM: undo everything, then exit. */
export function cleanupOnSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      console.error(`\nbench: ${sig}, cleaning up`);
      void runCleanups().finally(() => process.exit(130));
    });
  }
}
