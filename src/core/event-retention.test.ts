import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RETENTION, eventPrunePlan } from './event-retention.ts';

test('the plan cuts by age and by count', () => {
  const now = new Date('2026-03-31T12:00:00.000Z');
  assert.deepEqual(eventPrunePlan({ maxAgeDays: 30, maxCount: 1000 }, now, 5000), { before: '2026-03-01T12:00:00.000Z', upToId: 4000 });
  assert.deepEqual(eventPrunePlan({ maxAgeDays: 0.5, maxCount: 1000 }, now, 999), { before: '2026-03-31T00:00:00.000Z', upToId: 0 }, 'fewer than the count: none by count');
  assert.equal(eventPrunePlan(DEFAULT_RETENTION, now, 100_001).upToId, 1);
});
