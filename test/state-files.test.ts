// Torn or corrupt state files (a crash mid-write on an older version, a full disk, a hand
// edit): the daemons say which file and what to do, in one line, never with a stack trace.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentialPath, loadCredential } from '../src/daemon/join.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'butter-statefiles-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const good = { url: 'https://127.0.0.1:7700', node: 'n1', token: 'bt_x', ca: '-----BEGIN CERTIFICATE-----\n' };
const torn: Record<string, string> = {
  empty: '',
  truncated: JSON.stringify(good).slice(0, 30),
  'wrong shape': JSON.stringify({ url: 'https://127.0.0.1:7700', node: 7 }),
  'not an object': '[]\n',
};

test('a torn or corrupt credential.json is refused, naming the file and what to do', () => {
  for (const [name, text] of Object.entries(torn)) {
    const stateDir = mkdtempSync(join(dir, 'cred-'));
    writeFileSync(credentialPath(stateDir), text);
    assert.throws(
      () => loadCredential(stateDir),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^${credentialPath(stateDir).replace(/[.]/g, '\\.')} is corrupt`), name);
        assert.match(e.message, /remove it and join again/, name);
        assert.doesNotMatch(e.message, /\n/, `${name}: one line`);
        return true;
      },
      name,
    );
  }
  const ok = mkdtempSync(join(dir, 'cred-'));
  writeFileSync(credentialPath(ok), JSON.stringify(good));
  assert.deepEqual(loadCredential(ok), good);
});

test('butter agent with a torn credential.json exits 1 with one line naming it, no stack trace', async () => {
  const stateDir = mkdtempSync(join(dir, 'agent-'));
  writeFileSync(credentialPath(stateDir), torn.truncated!);
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'agent', '--state-dir', stateDir, '--driver', 'sim'], { timeout: 60_000 });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error: .*credential\.json is corrupt .*remove it and join again/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test("a torn CLI config.json is refused, naming it and saying log in again; BUTTER_URL and BUTTER_TOKEN do without it", async () => {
  const { configFile, loadConfig } = await import('../src/cli/config.ts');
  const saved = { XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME, BUTTER_URL: process.env.BUTTER_URL, BUTTER_TOKEN: process.env.BUTTER_TOKEN };
  try {
    process.env.XDG_CONFIG_HOME = mkdtempSync(join(dir, 'cfg-'));
    delete process.env.BUTTER_URL;
    delete process.env.BUTTER_TOKEN;
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(process.env.XDG_CONFIG_HOME, 'butter'));
    writeFileSync(configFile(), '{"url":"https://h:7700","tok');
    assert.throws(() => loadConfig(), (e: Error) => e.message.startsWith(`${configFile()} is corrupt`) && /butter login/.test(e.message));
    process.env.BUTTER_URL = 'https://h:7700';
    process.env.BUTTER_TOKEN = 'bt_x';
    assert.deepEqual(loadConfig(), { url: 'https://h:7700', token: 'bt_x' });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
