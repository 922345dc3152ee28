import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from './db.ts';
import { MIGRATIONS } from './migrations.ts';

/** The index of the migration whose SQL contains `marker`. */
const indexOf = (marker: string) => MIGRATIONS.findIndex((m) => m.includes(marker));

test('the operator migration keeps every token and lets the tokens table hold operators only as a known role', () => {
  const db = new Database(':memory:');
  const v = indexOf("CHECK (role IN ('admin', 'operator', 'viewer', 'node'))");
  assert.ok(v > 0);
  for (let i = 0; i < v; i++) db.exec(MIGRATIONS[i]!);
  db.pragma(`user_version = ${v}`);
  const insert = db.prepare(`INSERT INTO tokens (id, hash, role, node, description, created_at) VALUES (?, ?, ?, ?, ?, '2025-01-01T00:00:00.000Z')`);
  insert.run('aaaaaaaaaaaa', 'h1', 'admin', null, 'first');
  insert.run('bbbbbbbbbbbb', 'h2', 'viewer', null, null);
  insert.run('cccccccccccc', 'h3', 'node', 'node-1', null);
  assert.throws(() => insert.run('dddddddddddd', 'h4', 'operator', null, null), /CHECK constraint/);
  const before = db.prepare(`SELECT * FROM tokens ORDER BY id`).all();

  migrate(db);
  assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.deepEqual(db.prepare(`SELECT * FROM tokens ORDER BY id`).all(), before);
  insert.run('dddddddddddd', 'h4', 'operator', null, null);
  assert.throws(() => insert.run('eeeeeeeeeeee', 'h5', 'root', null, null), /CHECK constraint/);
});

test('metadata tokens: VMs made before the column keep the IMDSv2-only behaviour they had; new rows default to optional', () => {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = OFF'); // rows without the images and networks they name
  const at = MIGRATIONS.findIndex((m) => m.includes('metadata_tokens'));
  assert.ok(at > 0, 'the migration exists');
  for (let v = 0; v < at; v++) db.exec(MIGRATIONS[v]!);
  db.pragma(`user_version = ${at}`);
  const insert = (id: string) =>
    db
      .prepare(
        `INSERT INTO vms (id, name, image, node, cpus, memory_bytes, disk_bytes, power, state, network, ip, mac, user_data, ssh_keys, restart_gen, created_at, updated_at)
         VALUES (?, ?, 'img', NULL, 1, 1, 1, 'running', 'pending', 'default', NULL, ?, '', '[]', 0, 'now', 'now')`,
      )
      .run(id, `vm-${id}`, `52:54:00:00:00:0${id}`);
  insert('1');
  migrate(db);
  insert('2');
  const tokens = db.prepare(`SELECT id, metadata_tokens FROM vms ORDER BY id`).all();
  assert.deepEqual(tokens, [
    { id: '1', metadata_tokens: 'required' },
    { id: '2', metadata_tokens: 'optional' },
  ]);
  assert.throws(() => db.prepare(`UPDATE vms SET metadata_tokens = 'sometimes'`).run(), /CHECK/);
});
