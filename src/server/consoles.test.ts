import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Consoles } from './consoles.ts';

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'butter-consoles-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** Lines numbered from `from`, so any byte tells where it belongs. */
const lines = (from: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `line ${String(from + i).padStart(6, '0')}\n`).join(''));
const LINE = 12;

const logFiles = (dir: string) => readdirSync(join(dir, 'console')).filter((f) => f.endsWith('.log'));

/** Reads everything from `offset` as a follower would, chunk by chunk. */
function readAll(c: Consoles, id: string, offset: number): { data: string; offset: number; start: number } {
  let data = '';
  let start = 0;
  for (;;) {
    const r = c.read(id, offset);
    start = r.start;
    if (r.offset === offset) return { data, offset, start };
    data += r.data;
    offset = r.offset;
  }
}

test('the kept output is capped, newest kept; offsets stay absolute and a follower learns what it missed', withDir((dir) => {
  const c = new Consoles(dir, new EventEmitter(), { maxBytes: 64 * 1024 });
  const perChunk = 100;
  let offset = 0;
  for (let i = 0; i < 200; i++) {
    const buf = lines(i * perChunk, perChunk);
    c.append('vm1', 'n1', offset, buf);
    c.append('vm1', 'n1', offset, buf); // re-sent: nothing doubled
    offset += buf.length;
  }
  assert.equal(c.size('vm1'), 200 * perChunk * LINE, 'the logical end counts every byte ever sent');
  const files = logFiles(dir);
  assert.equal(files.length, 1, files.join());
  const kept = statSync(join(dir, 'console', files[0]!)).size;
  assert.ok(kept <= 64 * 1024 + 16 * 1024, `kept ${kept} bytes`);

  const r = readAll(c, 'vm1', 0);
  assert.ok(r.start > 0, 'something was dropped');
  assert.equal(r.offset, c.size('vm1'));
  assert.equal(r.data.length, c.size('vm1') - r.start, 'from the oldest kept byte to the end');
  // The byte at logical offset `start` is where it was when sent.
  const firstLine = Math.ceil(r.start / LINE);
  assert.ok(r.data.slice((firstLine * LINE) - r.start).startsWith(`line ${String(firstLine).padStart(6, '0')}\n`));
  assert.ok(r.data.endsWith(`line ${String(200 * perChunk - 1).padStart(6, '0')}\n`));

  // A follower at a kept offset reads on exactly from there.
  const mid = c.size('vm1') - 10 * LINE;
  assert.equal(readAll(c, 'vm1', mid).data, lines(200 * perChunk - 10, 10).toString());

  // A restarted control plane finds the same offsets.
  const again = new Consoles(dir, new EventEmitter(), { maxBytes: 64 * 1024 });
  assert.equal(again.size('vm1'), c.size('vm1'));
  assert.deepEqual(readAll(again, 'vm1', 0), r);
  again.remove('vm1');
  assert.deepEqual(readdirSync(join(dir, 'console')), []);
}));

test('a compaction cut short leaves the older or the newer file; the newer wins at start', withDir((dir) => {
  const c = new Consoles(dir, new EventEmitter(), { maxBytes: 64 * 1024 });
  c.append('vm1', 'n1', 0, lines(0, 10_000));
  const end = c.size('vm1');
  const name = logFiles(dir)[0]!;
  assert.match(name, /^vm1@\d+\.log$/);
  // As if the old file's removal had not happened: a `vm1.log` with everything, and a torn temp.
  new Consoles(dir, new EventEmitter(), { maxBytes: 10 * 1024 * 1024 }).append('vm2', 'n1', 0, lines(0, 10_000));
  renameSync(join(dir, 'console', 'vm2.log'), join(dir, 'console', 'vm1.log'));
  writeFileSync(join(dir, 'console', `vm1@999.log.tmp-123`), 'torn');
  const again = new Consoles(dir, new EventEmitter(), { maxBytes: 64 * 1024 });
  assert.equal(again.size('vm1'), end);
  assert.deepEqual(logFiles(dir), [name]);
  assert.deepEqual(readdirSync(join(dir, 'console')).filter((f) => f.includes('.tmp-')), [], 'the torn temp is gone');
}));

test('a new node\'s log (from byte 0) continues after the old node\'s; the old node\'s late chunks do not interleave', withDir((dir) => {
  const c = new Consoles(dir, new EventEmitter());
  c.append('vm1', 'n1', 0, Buffer.from('old node: a long boot log\n'));
  const end = c.size('vm1');
  c.append('vm1', 'n2', 0, Buffer.from('new\n'));
  c.append('vm1', 'n2', 0, Buffer.from('new\nboot\n'));
  assert.equal(c.read('vm1', 0).data, 'old node: a long boot log\nnew\nboot\n');
  assert.deepEqual(c.read('vm1', end), { offset: end + 9, start: 0, data: 'new\nboot\n' });
  // An agent restarted on n2 re-sends from 0: nothing doubled.
  const c2 = new Consoles(dir, new EventEmitter());
  c2.append('vm1', 'n2', 0, Buffer.from('new\nboot\nmore\n'));
  assert.equal(c2.read('vm1', 0).data, 'old node: a long boot log\nnew\nboot\nmore\n');
  // Back on n1 (whose log now starts again too): after everything.
  c2.append('vm1', 'n1', 0, Buffer.from('third\n'));
  assert.equal(c2.read('vm1', 0).data, 'old node: a long boot log\nnew\nboot\nmore\nthird\n');
}));

test('a node whose first chunk is not at 0 (its own log was trimmed) starts the stream there', withDir((dir) => {
  const c = new Consoles(dir, new EventEmitter());
  c.append('vm1', 'n1', 5000, Buffer.from('tail\n'));
  c.append('vm1', 'n1', 4000, Buffer.alloc(1005, 'z')); // re-sent from earlier: only bytes after 5000+5 are new
  assert.equal(c.read('vm1', 0).data, 'tail\n');
  c.append('vm1', 'n1', 5005, Buffer.from('next\n'));
  assert.equal(c.read('vm1', 0).data, 'tail\nnext\n');
}));

test('an agent from before stream ids, upgraded: its log goes on, not sent twice', withDir((dir) => {
  const c = new Consoles(dir, new EventEmitter());
  c.append('vm1', 'n1', 0, Buffer.from('boot\n'));
  c.append('vm1', 'n1/0123456789abcdef', 0, Buffer.from('boot\nmore\n'));
  assert.equal(c.read('vm1', 0).data, 'boot\nmore\n');
  c.append('vm1', 'n2/fedcba9876543210', 0, Buffer.from('elsewhere\n'));
  assert.equal(c.read('vm1', 0).data, 'boot\nmore\nelsewhere\n');
}));

test("a VM's first console chunk costs the control plane's event loop no fsync (10,000 VMs starting are 10,000 first chunks)", async () => {
  const { spySyncWrites } = await import('../../test/sync-fs-spy.ts');
  const dir = mkdtempSync(join(tmpdir(), 'butter-consoles-'));
  try {
    const c = new Consoles(dir, new EventEmitter(), { maxBytes: 64 * 1024 });
    const spy = spySyncWrites(dir);
    try {
      c.append('vm-1', 'n1', 0, Buffer.from('boot\n'));
      c.append('vm-1', 'n2', 0, Buffer.from('moved\n'));
    } finally {
      spy.restore();
    }
    assert.deepEqual(spy.calls.filter((x) => x.startsWith('fsync')), [], 'no fsync on the way');
    assert.equal(c.read('vm-1', 0).data, 'boot\nmoved\n');
    // The stream mapping is still written whole: a fresh reader maps the next chunk of n2 after what it has.
    const again = new Consoles(dir, new EventEmitter(), { maxBytes: 64 * 1024 });
    again.append('vm-1', 'n2', 6, Buffer.from('more\n'));
    assert.equal(again.read('vm-1', 0).data, 'boot\nmoved\nmore\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
