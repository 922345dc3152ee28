import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimUp, liveUp, releaseUp, startTimeOf, upPidFile } from './up-pidfile.ts';

test('a claim names this process; a second live one is refused; a stale or reused pid is not taken for it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-uppid-'));
  try {
    assert.equal(liveUp(dir), undefined, 'no pidfile');
    claimUp(dir);
    assert.deepEqual(liveUp(dir), { pid: process.pid, startTime: startTimeOf(process.pid) });
    claimUp(dir); // the same process again: fine

    // PID 1 is alive: a pidfile naming it with its real start time is a running `up`...
    writeFileSync(upPidFile(dir), `1 ${startTimeOf(1)}\n`);
    assert.throws(() => claimUp(dir), /already running on .* \(pid 1\)/);
    releaseUp(dir);
    assert.ok(existsSync(upPidFile(dir)), "another process's claim is not released");
    // ...with another start time it is a reused pid: stale, and overwritten.
    writeFileSync(upPidFile(dir), `1 ${Number(startTimeOf(1)) + 1}\n`);
    assert.equal(liveUp(dir), undefined);
    claimUp(dir);
    assert.match(readFileSync(upPidFile(dir), 'utf8'), new RegExp(`^${process.pid} `));
    releaseUp(dir);
    assert.ok(!existsSync(upPidFile(dir)));
    writeFileSync(upPidFile(dir), 'garbage\n');
    assert.equal(liveUp(dir), undefined, 'a torn file names nobody');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
