// A real process whose stderr a shell opened on a file (`>>` and `>`), logging through the
// daemons' real logger and rotating its own log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const here = resolve(import.meta.dirname);

/** Runs a child that logs `n` numbered lines, trying a rotation after every 100, with stderr sent to `log` by `sh` (`op`: >> or >). */
function run(log: string, op: '>>' | '>', n: number): string {
  const script = `
    import { makeLogger } from ${JSON.stringify(join(here, 'logger.ts'))};
    import { appendedFile, rotateIfBig, rotateStderr } from ${JSON.stringify(join(here, 'log-rotation.ts'))};
    const log = makeLogger('test');
    const warnings = [];
    rotateStderr({ maxBytes: 20000, keep: 2 }, (m) => warnings.push(m))();
    const t = appendedFile(2);
    for (let i = 0; i < ${n}; i++) {
      log.info({ i }, 'line');
      if (i % 100 === 99 && 'path' in t) rotateIfBig(2, t.path, { maxBytes: 20000, keep: 2 });
    }
    process.stdout.write(JSON.stringify(warnings));
  `;
  return execFileSync('sh', ['-c', `node --import tsx --input-type=module -e "$1" 2${op}"$2"`, 'sh', script, log], { encoding: 'utf8' });
}

const numbers = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i) : []);

test('a log appended to (>>) is rotated past its size, keeping LOG.1..LOG.keep, no line lost or doubled within them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-logrot-'));
  try {
    const log = join(dir, 'butter.log');
    assert.equal(run(log, '>>', 1000), '[]');
    const current = numbers(log);
    const one = numbers(`${log}.1`);
    const two = numbers(`${log}.2`);
    assert.equal(existsSync(`${log}.3`), false, 'only `keep` rotated files');
    assert.ok(readFileSync(log).length <= 20000 + 2000, 'the live file stays near its cap');
    const kept = [...two, ...one, ...current];
    assert.ok(two.length > 0 && one.length > 0 && current.length > 0, `${two.length} ${one.length} ${current.length}`);
    // Consecutive numbers up to the last: the newest files hold one unbroken run.
    assert.deepEqual(kept, Array.from({ length: kept.length }, (_, k) => 1000 - kept.length + k));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a log opened without O_APPEND (>) is left alone, with one warning', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-logrot-'));
  try {
    const log = join(dir, 'butter.log');
    const warnings = JSON.parse(run(log, '>', 500)) as string[];
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /not opened for appending/);
    assert.equal(existsSync(`${log}.1`), false);
    assert.equal(numbers(log).length, 500);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
