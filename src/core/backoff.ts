/**
 * How long to wait before the next attempt to reach a control plane: capped exponential
 * backoff with jitter. Exponential so a long outage costs few attempts; capped so a returning
 * control plane is found within `maxMs`; jittered so a thousand agents cut off by the same
 * outage do not all come back in the same millisecond (a thundering herd on its restart).
 */
export interface BackoffOptions {
  /** The first wait. */
  baseMs: number;
  /** No wait is longer. */
  maxMs: number;
  /** The share of each wait that is random, 0 to 1: a wait is in [d × (1 − jitter), d]. */
  jitter: number;
}

export const AGENT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, jitter: 0.5 };

/** The wait after `failures` failed attempts in a row (1 for the first); `random` in [0, 1). */
export function backoffDelay(failures: number, o: BackoffOptions = AGENT_BACKOFF, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(failures));
  // 2^(n−1) overflows to Infinity for huge n; min() keeps it at the cap.
  const full = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(n - 1, 1024));
  const jitter = Math.min(1, Math.max(0, o.jitter));
  return Math.round(full * (1 - jitter * random()));
}
