import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDaemonConfig } from './config.ts';

function withFile(text: string | undefined, fn: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'butter-config-'));
  try {
    if (text !== undefined) writeFileSync(join(dir, 'butter.yaml'), text);
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('no file: the defaults', () =>
  withFile(undefined, (dir) => {
    assert.deepEqual(loadDaemonConfig(dir), {
      console: { maxBytes: 1024 * 1024, nodeMaxBytes: 1024 * 1024 },
      events: { maxAgeDays: 90, maxCount: 100_000 },
      imageCache: { unusedGraceMinutes: 60, minFreePercent: 10 },
      networks: { lingerSeconds: 60 },
      log: { maxBytes: 16 * 1024 * 1024, keep: 3 },
    });
  }));

test('sizes with units; what is left out keeps its default', () =>
  withFile('console:\n  maxBytes: 4M\nevents:\n  maxCount: 5000\nlog:\n  keep: 5\n', (dir) => {
    const c = loadDaemonConfig(dir);
    assert.equal(c.console.maxBytes, 4 * 1024 * 1024);
    assert.equal(c.console.nodeMaxBytes, 1024 * 1024);
    assert.deepEqual(c.events, { maxAgeDays: 90, maxCount: 5000 });
    assert.deepEqual(c.log, { maxBytes: 16 * 1024 * 1024, keep: 5 });
  }));

test('a bad file names the key and the file', () => {
  withFile('console:\n  maxbytes: 4M\n', (dir) => assert.throws(() => loadDaemonConfig(dir), /butter\.yaml: console: Unrecognized key: "maxbytes"/));
  withFile('console:\n  maxBytes: lots\n', (dir) => assert.throws(() => loadDaemonConfig(dir), /console\.maxBytes: not a size/));
  withFile('console:\n  maxBytes: 1K\n', (dir) => assert.throws(() => loadDaemonConfig(dir), /console\.maxBytes: must be at least 65536/));
  withFile('networks:\n  lingerSeconds: -1\n', (dir) => assert.throws(() => loadDaemonConfig(dir), /networks\.lingerSeconds: Too small/));
  withFile('events: [\n', (dir) => assert.throws(() => loadDaemonConfig(dir), /not YAML/));
});
