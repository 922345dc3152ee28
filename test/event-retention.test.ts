// The control plane prunes its audit log at start, by count (and by age, src/server/event-pruner.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { pino } from 'pino';
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

test('a failed prune is logged through the daemon\'s logger (pino), and the control plane serves on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-retention-'));
  try {
    let cp = createControlPlane({ dataDir: dir });
    const token = cp.adminToken!;
    await cp.close();
    // Something (a hand edit, a bad disk) makes every delete of an event fail.
    const db = new Database(join(dir, 'butter.db'));
    db.exec(`CREATE TRIGGER keep_events BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are read-only'); END`);
    db.close();
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
    cp = createControlPlane({ dataDir: dir, eventRetention: { maxAgeDays: 30, maxCount: 0 }, log: pino({ name: 'butter-server' }, sink) });
    try {
      const admin = new Client({ url: await cp.listen('127.0.0.1', 0), token });
      await new Promise((r) => setImmediate(r));
      const failed = lines.filter((l) => /pruning the audit log failed/.test(String(l.msg)));
      assert.equal(failed.length, 1, `logged: ${JSON.stringify(lines)}`);
      assert.equal(failed[0]!.level, 50, 'error');
      assert.equal(failed[0]!.name, 'butter-server');
      assert.match(JSON.stringify(failed[0]!.err), /events are read-only/);
      assert.ok((await admin.call('listEvents', { query: { limit: 1000 } })).items.length > 0, 'the events are still there, and served');
    } finally {
      await cp.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
