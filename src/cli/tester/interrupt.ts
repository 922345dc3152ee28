/**
 * Ctrl-C (SIGINT) and SIGTERM during `butter test`: the first one stops the step under way
 * (its promise loses a race; a fixture's code cannot be cancelled, but nothing waits for it
 * any more) so that the tester can tear its network down, then exit 128 + the signal's number
 * as a shell does. A second one exits at once, saying what may be left and how to remove it.
 */
import { constants } from 'node:os';

export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
  }

  get exitCode(): number {
    return 128 + (constants.signals[this.signal] ?? 2);
  }
}

export interface InterruptGuard {
  /** Rejects with `Interrupted` at the first signal; resolves `p` otherwise. */
  race<T>(p: Promise<T>): Promise<T>;
  /** The first signal's, once one came. */
  readonly interrupted: Interrupted | undefined;
  dispose(): void;
}

/** `onSecond`: what to say before exiting at the second signal. */
export function guardInterrupts(onSecond: () => string): InterruptGuard {
  let first: Interrupted | undefined;
  let reject: ((e: Interrupted) => void) | undefined;
  const fired = new Promise<never>((_, r) => (reject = r));
  fired.catch(() => {}); // observed through race(); never an unhandled rejection
  const handler = (signal: NodeJS.Signals) => {
    if (first) {
      process.stderr.write(`\n${onSecond()}\n`);
      process.exit(first.exitCode);
    }
    first = new Interrupted(signal);
    process.stderr.write(`\n${signal}: stopping; tearing down what this test made (${signal} again to stop at once)\n`);
    reject!(first);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  // A fixture's promise that never settles holds nothing open: without this Node would exit,
  // mid-step, leaving the network behind. The tester ends only through its own cleanup.
  const keepAlive = setInterval(() => {}, 1 << 30);
  return {
    race: <T>(p: Promise<T>) => {
      // A step abandoned at a signal may still fail later: nothing awaits it then.
      p.catch(() => {});
      return first ? Promise.reject(first) : Promise.race([p, fired]);
    },
    get interrupted() {
      return first;
    },
    dispose: () => {
      clearInterval(keepAlive);
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
