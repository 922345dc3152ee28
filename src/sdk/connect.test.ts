import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Butter, connect } from './connect.ts';

const dir = mkdtempSync(join(tmpdir(), 'butter-connect-'));
const saved = { XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME, BUTTER_URL: process.env.BUTTER_URL, BUTTER_TOKEN: process.env.BUTTER_TOKEN, BUTTER_CA: process.env.BUTTER_CA };
process.env.XDG_CONFIG_HOME = dir;
for (const k of ['BUTTER_URL', 'BUTTER_TOKEN', 'BUTTER_CA']) delete process.env[k];
after(() => {
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
  else process.env[k] = v;
  rmSync(dir, { recursive: true, force: true });
});

test('connect(): given a URL, that one; else nothing saved is a clear error', () => {
  assert.equal(connect({ url: 'https://cp.example:7700/', token: 't' }).url, 'https://cp.example:7700');
  assert.throws(() => connect(), /no control plane: pass \{ url, token \}, set BUTTER_URL/);
});

test('connect(): the CLI\'s saved login, and BUTTER_URL/BUTTER_TOKEN over it, as `butter` reads them', () => {
  mkdirSync(join(dir, 'butter'));
  writeFileSync(join(dir, 'butter', 'config.json'), JSON.stringify({ url: 'https://saved.example:7700', token: 'saved-token' }));
  const b = connect();
  assert.ok(b instanceof Butter);
  assert.equal(b.url, 'https://saved.example:7700');
  process.env.BUTTER_URL = 'https://env.example:7700';
  process.env.BUTTER_TOKEN = 'env-token';
  assert.equal(connect().url, 'https://env.example:7700');
  delete process.env.BUTTER_URL;
  delete process.env.BUTTER_TOKEN;
  writeFileSync(join(dir, 'butter', 'config.json'), '{"url": ');
  assert.throws(() => connect(), /config\.json is corrupt .*run butter login again/);
});
