import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKey, publicKeyOf } from './wireguard-key.ts';

test('the key pair is made once, kept 0600, and its public half is what wg derives', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-wgkey-'));
  try {
    const k = loadOrCreateKey(dir);
    assert.equal(statSync(join(dir, 'wireguard', 'private.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadOrCreateKey(dir), k, 'the same key on the next start');
    assert.equal(publicKeyOf(k.privateKey), k.publicKey);
    // The real tool agrees (wireguard-tools is installed by scripts/install.sh).
    assert.equal(execFileSync('wg', ['pubkey'], { input: k.privateKey }).toString().trim(), k.publicKey);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a torn key file is refused, naming it and what to do', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-wgkey-'));
  try {
    mkdirSync(join(dir, 'wireguard'));
    const file = join(dir, 'wireguard', 'private.key');
    writeFileSync(file, 'cGFydGlhbA==\n');
    assert.throws(() => loadOrCreateKey(dir), (e: Error) => e.message.startsWith(`${file} is corrupt`) && /remove it and restart the agent/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
