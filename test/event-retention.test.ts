// The control plane prunes its audit log at start, by count (and by age, src/server/event-pruner.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane } from '../src/server/control-plane.ts';
import { Client } from '../src/sdk/client.ts';

test('a restarted control plane keeps only the newest maxCount events', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-retention-'));
  try {
    let cp = createControlPlane({ dataDir: dir, eventRetention: { maxAgeDays: 30, maxCount: 5 } });
    const token = cp.adminToken!;
    let admin = new Client({ url: await cp.listen('127.0.0.1', 0), token });
    for (let i = 0; i < 10; i++) await admin.call('createToken', { body: { role: 'viewer', description: `t${i}` } });
    const before = (await admin.call('listEvents', { query: { limit: 1000 } })).items;
    assert.ok(before.length > 10, `${before.length} events`);
    await cp.close();

    cp = createControlPlane({ dataDir: dir, eventRetention: { maxAgeDays: 30, maxCount: 5 } });
    admin = new Client({ url: await cp.listen('127.0.0.1', 0), token });
    const after = (await admin.call('listEvents', { query: { limit: 1000 } })).items;
    assert.deepEqual(after.map((e) => e.id), before.slice(-5).map((e) => e.id), 'the newest five, in order');
    await cp.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
