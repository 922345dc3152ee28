import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from './store/store.ts';
import { pruneEvents } from './event-pruner.ts';

function withStore(fn: (s: Store) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'butter-events-'));
    const s = new Store(join(dir, 'butter.db'));
    try {
      await fn(s);
    } finally {
      s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

// One transaction for all of them: what is tested is the pruning, and 12,000 commits (one
// fsync each) took 2 to 25 s on a busy disk.
const record = (s: Store, n: number, tag: string) =>
  s.write('test', (tx) => {
    for (let i = 0; i < n; i++) tx.event('create', 'thing', `${tag}${i}`, `made ${tag}${i}`);
  });
const names = (s: Store) => (s.db.prepare(`SELECT name FROM events ORDER BY id`).all() as { name: string }[]).map((r) => r.name);

test('by count: only the newest maxCount stay, across batches', withStore(async (s) => {
  record(s, 12_000, 'e');
  const gone = await pruneEvents(s, { maxAgeDays: 365, maxCount: 1000 }, new Date());
  assert.equal(gone, 11_000);
  const left = names(s);
  assert.equal(left.length, 1000);
  assert.equal(left[0], 'e11000');
  assert.equal(left.at(-1), 'e11999');
  assert.equal(await pruneEvents(s, { maxAgeDays: 365, maxCount: 1000 }, new Date()), 0, 'nothing more the second time');
}));

test('by age: events older than maxAgeDays go, newer stay', withStore(async (s) => {
  record(s, 5, 'old');
  // Recorded 40 days ago, as far as the log can tell.
  s.db.prepare(`UPDATE events SET at = ?`).run(new Date(Date.now() - 40 * 86_400_000).toISOString());
  record(s, 3, 'new');
  assert.equal(await pruneEvents(s, { maxAgeDays: 30, maxCount: 1000 }, new Date()), 5);
  assert.deepEqual(names(s), ['new0', 'new1', 'new2']);
}));
