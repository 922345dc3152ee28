/**
 * How long the audit log (`GET /v1/events`) keeps its events: pruned by age and by count,
 * whichever drops more, so neither a busy cluster nor a long-lived one grows it without end.
 * Pure: the store runs the plan (server/event-pruner.ts).
 */
export interface EventRetention {
  /** Events older than this go. */
  maxAgeDays: number;
  /** Only the newest this many stay. */
  maxCount: number;
}

export const DEFAULT_RETENTION: EventRetention = { maxAgeDays: 90, maxCount: 100_000 };

export interface PrunePlan {
  /** Delete events recorded before this instant (ISO, as `events.at` is written). */
  before: string;
  /** Delete events with `id <= upToId` (0: none by count). Ids only grow, so these are the oldest. */
  upToId: number;
}

export function eventPrunePlan(r: EventRetention, now: Date, newestId: number): PrunePlan {
  return {
    before: new Date(now.getTime() - r.maxAgeDays * 86_400_000).toISOString(),
    upToId: Math.max(0, newestId - r.maxCount),
  };
}
