/**
 * What the agent does when a VM that should run is found not running at the generation it
 * started it at: the VM's restart policy against how its QEMU ended. Pure (time is passed in),
 * so the backoff and the crash-loop cap are unit-tested without waiting.
 *
 * How it ended (`VmExit`, told apart by the QEMU driver, see qemu-driver.ts):
 * - `poweroff`: the guest powered itself off (QEMU, run with `-no-shutdown`, stayed in run
 *   state `shutdown` and the agent quit it, leaving a marker);
 * - `killed`: QEMU vanished without exiting (its pidfile left behind): SIGKILL, the OOM
 *   killer, a crash;
 * - `exited`: QEMU exited on its own (pidfile removed) without a guest poweroff: SIGTERM, an
 *   internal error.
 */

export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export type VmExit = 'poweroff' | 'killed' | 'exited';

export interface RestartLimits {
  /** Restarts within `windowMs` after which the VM stays stopped ("crash loop"). */
  maxRestarts: number;
  windowMs: number;
  /** The first restart is immediate; the n-th (n ≥ 2) waits `baseDelayMs · 2^(n-2)`, at most `maxDelayMs`, after the one before. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Five restarts in ten minutes, then the VM stays stopped until someone starts it: a guest
 * that dies at once would otherwise burn the host's CPU on boots forever. The delays (0, 10 s,
 * 20 s, 40 s, 80 s) are a few of the agent's drift checks apart (at least every 10 s), so a
 * one-off crash costs seconds and a loop is recognised within about 2.5 minutes.
 */
export const DEFAULT_LIMITS: RestartLimits = { maxRestarts: 5, windowMs: 10 * 60_000, baseDelayMs: 10_000, maxDelayMs: 5 * 60_000 };

export type RestartDecision =
  /** Leave it stopped; `reason` is what `vm show` says. */
  | { kind: 'stay'; reason: string }
  /** Restart it, but not before `at` (epoch ms). */
  | { kind: 'wait'; at: number; reason: string }
  /** Restart it now: this is restart number `n` in the window. */
  | { kind: 'restart'; n: number; reason: string };

export function exitReason(exit: VmExit): string {
  switch (exit) {
    case 'poweroff':
      return 'guest poweroff';
    case 'killed':
      return 'qemu was killed (by a signal, the OOM killer, or a crash)';
    case 'exited':
      return 'qemu exited without a guest poweroff';
  }
}

/** The delay before restart number `n` (1-based), counted from the restart before it. */
export function backoffMs(n: number, limits: RestartLimits = DEFAULT_LIMITS): number {
  if (n <= 1) return 0;
  return Math.min(limits.baseDelayMs * 2 ** (n - 2), limits.maxDelayMs);
}

/**
 * `restarts`: when (epoch ms) the agent restarted this VM before, within this power
 * generation. `vm start`/`vm restart` begin a new generation, and with it a clean slate.
 */
export function decideRestart(policy: RestartPolicy, exit: VmExit, restarts: readonly number[], now: number, limits: RestartLimits = DEFAULT_LIMITS): RestartDecision {
  const why = exitReason(exit);
  if (policy === 'never' || (policy === 'on-failure' && exit === 'poweroff')) return { kind: 'stay', reason: why };
  const recent = restarts.filter((t) => t > now - limits.windowMs).sort((a, b) => a - b);
  if (recent.length >= limits.maxRestarts) {
    return { kind: 'stay', reason: `crash loop: ${why}, after ${recent.length} restarts within ${Math.round(limits.windowMs / 60_000)} min; vm start tries again` };
  }
  const n = recent.length + 1;
  const last = recent.at(-1);
  const at = last === undefined ? now : last + backoffMs(n, limits);
  // Stable text (no countdown): a reason that changed on every pass would be a write and an audit event each time.
  if (at > now) return { kind: 'wait', at, reason: `${why}; restart ${n} after a ${Math.round(backoffMs(n, limits) / 1000)} s backoff` };
  return { kind: 'restart', n, reason: exit === 'poweroff' ? `restarted after guest poweroff (${n})` : `restarted after crash (${n}): ${why}` };
}
