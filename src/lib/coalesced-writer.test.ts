import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import type { AtomicWriteFs, AtomicWriteHandle } from './atomic-file.ts';
import { CoalescedWriter } from './coalesced-writer.ts';

/**
 * The real `fs.promises`, with every call recorded, and each fsync of a file held until the
 * test releases it: a disk as slow as the test wants, with no clock involved.
 */
function slowDisk() {
  const ops: string[] = [];
  const held: (() => void)[] = [];
  let writing = 0;
  let mostAtOnce = 0;
  let failWrites = 0;
  const fs: AtomicWriteFs = {
    async open(path, flags, mode) {
      const fh = await fsp.open(path, flags, mode);
      const name = path.split('/').pop()!;
      if (flags !== 'r') mostAtOnce = Math.max(mostAtOnce, ++writing);
      ops.push(`open ${name}`);
      const h: AtomicWriteHandle = {
        chmod: (m) => fh.chmod(m),
        async writeFile(data) {
          if (failWrites > 0) {
            failWrites--;
            throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          }
          ops.push(`write ${name} ${String(data)}`);
          await fh.writeFile(data);
        },
        async sync() {
          ops.push(`sync ${name}`);
          if (flags !== 'r') await new Promise<void>((r) => held.push(r));
          await fh.sync();
        },
        async close() {
          if (flags !== 'r') writing--;
          await fh.close();
        },
      };
      return h;
    },
    async rename(from, to) {
      ops.push(`rename ${from.split('/').pop()} ${to.split('/').pop()}`);
      await fsp.rename(from, to);
    },
    rm: (p, o) => fsp.rm(p, o),
  };
  return {
    fs,
    ops,
    /** Lets every held fsync go on. */
    release() {
      while (held.length) held.shift()!();
    },
    /** Until a write's fsync is held (the file's I/O takes turns on the thread pool: polled, no clock). */
    async untilHeld() {
      for (let i = 0; held.length === 0; i++) {
        if (i > 100_000) assert.fail('no write reached its fsync');
        await tick();
      }
    },
    get held() {
      return held.length;
    },
    get mostAtOnce() {
      return mostAtOnce;
    },
    failNextWrite() {
      failWrites++;
    },
  };
}

function withDir(fn: (dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'butter-coalesced-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const tmp = `s.json.tmp-${process.pid}`;

test('saves in one tick are one write, of the latest state, fsync before rename, then the directory', withDir(async (dir) => {
  const disk = slowDisk();
  let state = 0;
  const w = new CoalescedWriter(join(dir, 's.json'), () => JSON.stringify({ state }), 0o600, { fs: disk.fs });
  const saves = [1, 2, 3].map((n) => ((state = n), w.save()));
  // The event loop goes on while the disk is busy: the caller was not held by the fsync.
  await disk.untilHeld();
  assert.equal(readdirSync(dir).includes('s.json'), false, 'not renamed before its fsync');
  disk.release();
  await Promise.all(saves);
  assert.deepEqual(disk.ops, [`open ${tmp}`, `write ${tmp} {"state":3}`, `sync ${tmp}`, `rename ${tmp} s.json`, `open ${dir.split('/').pop()}`, `sync ${dir.split('/').pop()}`]);
  assert.equal(readFileSync(join(dir, 's.json'), 'utf8'), '{"state":3}');
  assert.deepEqual(readdirSync(dir), ['s.json'], 'no temp file left');
}));

test('saves while a write is in flight wait for it and share one more write, of the state as it is then', withDir(async (dir) => {
  const disk = slowDisk();
  let state = 0;
  const w = new CoalescedWriter(join(dir, 's.json'), () => JSON.stringify({ state }), 0o600, { fs: disk.fs });
  state = 1;
  let firstDone = false;
  const first = w.save().then(() => (firstDone = true));
  await disk.untilHeld();
  const later: Promise<void>[] = [];
  for (const n of [2, 3, 4]) {
    state = n;
    later.push(w.save());
    await tick();
  }
  assert.equal(disk.held, 1, 'the later saves do not start a write of their own while one runs');
  disk.release(); // the first write lands; the second starts and is held
  await first;
  assert.ok(firstDone);
  assert.equal(readFileSync(join(dir, 's.json'), 'utf8'), '{"state":1}', 'the file is the first state, whole');
  await disk.untilHeld();
  disk.release();
  await Promise.all(later);
  assert.deepEqual(disk.ops.filter((o) => o.startsWith('write')), [`write ${tmp} {"state":1}`, `write ${tmp} {"state":4}`]);
  assert.equal(disk.mostAtOnce, 1, 'never two writes of the file at once');
  assert.equal(readFileSync(join(dir, 's.json'), 'utf8'), '{"state":4}', 'the newest state landed last');
  await w.flush();
  assert.deepEqual(readdirSync(dir), ['s.json']);
}));

test('flush waits for every save asked for so far', withDir(async (dir) => {
  const disk = slowDisk();
  let state = 0;
  const w = new CoalescedWriter(join(dir, 's.json'), () => JSON.stringify({ state }), 0o600, { fs: disk.fs });
  state = 1;
  void w.save();
  let flushed = false;
  const f = w.flush().then(() => (flushed = true));
  await tick();
  state = 2;
  void w.save(); // asked for before the flush resolves: it waits for this one too
  await disk.untilHeld();
  disk.release();
  await disk.untilHeld();
  assert.equal(flushed, false, 'the second write is still held');
  disk.release();
  await f;
  assert.equal(readFileSync(join(dir, 's.json'), 'utf8'), '{"state":2}');
}));

test('a failed write rejects its saves, leaves the old file whole and no temp file; the next save writes the latest state', withDir(async (dir) => {
  const disk = slowDisk();
  const file = join(dir, 's.json');
  writeFileSync(file, '{"state":0}');
  let state = 1;
  const w = new CoalescedWriter(file, () => JSON.stringify({ state }), 0o600, { fs: disk.fs });
  disk.failNextWrite();
  await assert.rejects(w.save(), /ENOSPC/);
  assert.equal(readFileSync(file, 'utf8'), '{"state":0}');
  assert.deepEqual(readdirSync(dir), ['s.json']);
  state = 2;
  const again = w.save();
  await disk.untilHeld();
  disk.release();
  await again;
  assert.equal(readFileSync(file, 'utf8'), '{"state":2}');
}));

test('fsync: false writes through a temp file and a rename, with no fsync', withDir(async (dir) => {
  const disk = slowDisk();
  const w = new CoalescedWriter(join(dir, 's.json'), () => 'x', 0o644, { fs: disk.fs, fsync: false });
  await w.save(); // nothing held: no fsync to wait for
  assert.deepEqual(disk.ops, [`open ${tmp}`, `write ${tmp} x`, `rename ${tmp} s.json`]);
  assert.deepEqual(readdirSync(dir), ['s.json']);
}));

test('on the real fs, many concurrent saves end as the last state, in a file of the mode asked for', withDir(async (dir) => {
  let state = 0;
  const file = join(dir, 's.json');
  const w = new CoalescedWriter(file, () => JSON.stringify({ state, pad: 'x'.repeat(4096) }), 0o600);
  const saves: Promise<void>[] = [];
  for (let n = 1; n <= 50; n++) {
    state = n;
    saves.push(w.save());
    if (n % 7 === 0) await tick();
  }
  await Promise.all(saves);
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).state, 50);
  assert.equal((await fsp.stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['s.json']);
}));
