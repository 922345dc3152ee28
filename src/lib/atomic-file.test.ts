import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.ts';

test('a write replaces the file whole, with the mode asked for, and leaves no temp file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-atomic-'));
  try {
    const f = join(dir, 'credential.json');
    writeFileSync(f, 'old\n', { mode: 0o644 });
    writeFileAtomic(f, 'new\n', 0o600);
    assert.equal(readFileSync(f, 'utf8'), 'new\n');
    assert.equal(statSync(f).mode & 0o777, 0o600, 'an existing file gets the new mode too');
    assert.deepEqual(readdirSync(dir), ['credential.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A write that fails midway (here: the file size limit is hit after 64 KiB, as a full disk
// would) must leave the old file whole, not its first 64 KiB of the new content.
test('a write that fails midway leaves the old file whole and no temp file behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-atomic-'));
  try {
    const f = join(dir, 'agent-state.json');
    writeFileSync(f, '{"old":true}\n');
    const script = `
      import { writeFileAtomic } from ${JSON.stringify(new URL('./atomic-file.ts', import.meta.url).href)};
      try { writeFileAtomic(${JSON.stringify(f)}, 'x'.repeat(1 << 20), 0o600); } catch (e) { console.log(e.code); }
    `;
    const child = spawnSync('prlimit', [`--fsize=${64 << 10}`, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.stdout.trim(), 'EFBIG', `the write should have failed: ${child.stderr}`);
    const now = readFileSync(f, 'utf8');
    assert.ok(now === '{"old":true}\n', `the old file was replaced by ${now.length} bytes of the new content`);
    assert.deepEqual(readdirSync(dir), ['agent-state.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
