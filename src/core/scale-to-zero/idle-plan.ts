/**
 * Scale to zero (issue 16): when a VM with `idleStop` has been idle long enough to suspend.
 * Pure: the agent passes its taps' byte counters (`/proc/net/dev`, both directions summed over
 * the VM's taps) and the time; the answer is the new watch state and whether to suspend now.
 *
 * Idle means the counters did not move. Any byte counts, either way: a guest talking to
 * the outside is not idle either, and a broadcast reaching its tap is traffic it received.
 */

/** `30s`, `10m`, `2h`: the only syntax `idleStop` takes (whole numbers, one unit). */
export const IDLE_STOP_PATTERN = /^([1-9][0-9]{0,5})(s|m|h)$/;
/** Shorter would suspend a guest between two keystrokes; a suspend and a wake cost seconds under TCG. */
export const MIN_IDLE_STOP_MS = 5_000;
export const MAX_IDLE_STOP_MS = 7 * 24 * 3600_000;

const UNIT_MS = { s: 1000, m: 60_000, h: 3600_000 } as const;

/** Milliseconds of a duration like `10m`, or undefined when it is not one. */
export function parseIdleStop(text: string): number | undefined {
  const m = IDLE_STOP_PATTERN.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** What the agent remembers of one VM between samples. */
export interface IdleWatch {
  /** The counters' sum at the last sample. */
  bytes: number;
  /** When (epoch ms) they last moved, or the watch began. */
  since: number;
}

export type IdleDecision = { watch: IdleWatch; suspend: false } | { watch: IdleWatch; suspend: true; idleMs: number };

/**
 * One sample. `prev` undefined: the watch begins now (a VM just started, resumed, or an agent
 * just restarted: it cannot know how long the VM was idle before, so it waits a whole period).
 * A counter that went down (a tap made again) counts as traffic.
 */
export function idleSample(prev: IdleWatch | undefined, bytes: number, now: number, idleStopMs: number): IdleDecision {
  if (!prev || bytes !== prev.bytes) return { watch: { bytes, since: now }, suspend: false };
  const idleMs = now - prev.since;
  if (idleMs >= idleStopMs) return { watch: prev, suspend: true, idleMs };
  return { watch: prev, suspend: false };
}

/** The reason a VM suspended for being idle carries: `idle for 10m` (its `idleStop` as given). */
export function idleReason(idleStop: string): string {
  return `idle for ${idleStop}`;
}

/** Whether a reported reason is an idle suspend's (the control plane tells the two suspends apart by it). */
export function isIdleReason(reason: string | null | undefined): boolean {
  return reason !== null && reason !== undefined && reason.startsWith('idle for ');
}
