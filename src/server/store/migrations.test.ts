import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from './db.ts';
import { MIGRATIONS } from './migrations.ts';
import { issueToken, type Role } from '../auth.ts';

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
  // Since the tokens table lost its CHECK on role (below), the code refuses an unknown role.
  assert.throws(() => issueToken(db, 'root' as Role, null, '2025-01-01T00:00:00.000Z'), /unknown role "root"/);
});

test('roles are checked in code, not by a CHECK on tokens.role: its last copy keeps every token and every panel session', () => {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON'); // as the store opens it: dropping the old table must not take the sessions with it
  const v = MIGRATIONS.findIndex((m) => m.includes('tokens.role: checked in code'));
  assert.ok(v > 0, 'the migration exists');
  for (let i = 0; i < v; i++) db.exec(MIGRATIONS[i]!);
  db.pragma(`user_version = ${v}`);
  const insert = db.prepare(`INSERT INTO tokens (id, hash, role, node, description, created_at) VALUES (?, ?, ?, ?, ?, '2025-01-01T00:00:00.000Z')`);
  insert.run('aaaaaaaaaaaa', 'h1', 'admin', null, 'first');
  insert.run('bbbbbbbbbbbb', 'h2', 'metrics', null, null);
  insert.run('cccccccccccc', 'h3', 'node', 'node-1', null);
  db.prepare(`INSERT INTO sessions (hash, token_id, csrf, created_at, expires_at) VALUES ('s1', 'aaaaaaaaaaaa', 'c1', 'now', 'later')`).run();
  const tokens = db.prepare(`SELECT * FROM tokens ORDER BY id`).all();
  const sessions = db.prepare(`SELECT * FROM sessions`).all();

  migrate(db);
  assert.deepEqual(db.prepare(`SELECT * FROM tokens ORDER BY id`).all(), tokens);
  assert.deepEqual(db.prepare(`SELECT * FROM sessions`).all(), sessions, 'signed-in panels stay signed in');
  const schema = (db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'tokens'`).get() as { sql: string }).sql;
  assert.doesNotMatch(schema, /CHECK/, 'a new role needs no copy of the table');
  // The one writer of tokens refuses a role it does not know; the ones it knows go in.
  assert.throws(() => issueToken(db, 'root' as Role, null, 'now'), /unknown role "root"/);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM tokens`).get() as { n: number }).n, 3, 'nothing written');
  for (const role of ['admin', 'operator', 'viewer', 'metrics'] as const) assert.match(issueToken(db, role, null, 'now'), /^bt_/);
  // The foreign key still holds: a session goes with its token.
  db.prepare(`DELETE FROM tokens WHERE id = 'aaaaaaaaaaaa'`).run();
  assert.deepEqual(db.prepare(`SELECT * FROM sessions`).all(), []);
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

test('paths: one source each, host ports only on CIDR paths and within 65535, one row per meaning, gone with either service', () => {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  migrate(db);
  db.exec(`INSERT INTO networks (name, cidr, gateway, nat, vni, created_at) VALUES ('default', '10.200.0.0/16', '10.200.0.1', 1, 100, 'now')`);
  const svc = db.prepare(`INSERT INTO services (id, name, network, block, zones, count, current_revision, target_revision, state, rollout, created_at, updated_at) VALUES (?, ?, 'default', ?, 1, 1, 1, 1, 'active', 'done', 'now', 'now')`);
  svc.run('s1', 'web', '10.200.1.0/24');
  svc.run('s2', 'db', '10.200.2.0/24');
  const insert = db.prepare(`INSERT INTO paths (id, network, from_service, from_cidr, to_service, proto, port_lo, port_hi, host_port_lo, created_at) VALUES (?, 'default', ?, ?, ?, ?, ?, ?, ?, 'now')`);
  insert.run('a', 'web', null, 'db', 'tcp', 5432, 5432, null);
  insert.run('b', null, '0.0.0.0/0', 'web', 'tcp', 80, 80, 8080);
  assert.throws(() => insert.run('c', 'web', '0.0.0.0/0', 'db', 'tcp', 1, 1, null), /CHECK/, 'a service and a CIDR');
  assert.throws(() => insert.run('c', null, null, 'db', 'tcp', 1, 1, null), /CHECK/, 'no source');
  assert.throws(() => insert.run('c', 'web', null, 'db', 'tcp', 1, 1, 1), /CHECK/, 'a host port on a service path');
  assert.throws(() => insert.run('c', null, '0.0.0.0/0', 'web', 'tcp', 100, 200, 65500), /CHECK/, 'host ports past 65535');
  assert.throws(() => insert.run('c', 'web', null, 'db', 'tcp', 0, 1, null), /CHECK/, 'port 0');
  assert.throws(() => insert.run('c', 'web', null, 'db', 'tcp', 9, 8, null), /CHECK/, 'a backwards range');
  assert.throws(() => insert.run('c', 'web', null, 'db', 'sctp', 1, 1, null), /CHECK/, 'another protocol');
  assert.throws(() => insert.run('c', 'web', null, 'db', 'tcp', 5432, 5432, null), /UNIQUE/, 'the same path twice');
  assert.throws(() => insert.run('c', 'ghost', null, 'db', 'tcp', 1, 1, null), /FOREIGN KEY/);
  db.prepare(`DELETE FROM services WHERE name = 'db'`).run();
  assert.deepEqual(db.prepare(`SELECT id FROM paths ORDER BY id`).all(), [{ id: 'b' }], 'the path to db went with it');
  db.prepare(`DELETE FROM services WHERE name = 'web'`).run();
  assert.deepEqual(db.prepare(`SELECT id FROM paths`).all(), []);
});
