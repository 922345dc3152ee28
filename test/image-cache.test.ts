// The agent inspects every disk blob it fetches before QEMU sees it: the control plane's check
// is not the only wall (its store could hold a blob from before the check, or one planted there).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { SystemExec, type Exec } from '../src/agent/host/exec.ts';
import { ImageCache } from '../src/agent/image-cache.ts';
import { fakeNode, startTestCloud, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let work: string;

before(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'butter-cache-'));
});
after(async () => {
  await cloud.close();
  rmSync(work, { recursive: true, force: true });
});

/** A qcow2 backed by /etc/hostname, put in the control plane's store behind the API's back. */
function plantEvil(): string {
  const file = join(work, 'evil.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '/etc/hostname', '-F', 'raw', file, '1M']);
  const bytes = readFileSync(file);
  const sha = createHash('sha256').update(bytes).digest('hex');
  copyFileSync(file, join(cloud.dir, 'blobs', 'sha256', sha));
  cloud.cp.services.images.recordBlob('test', sha, bytes.length);
  return sha;
}

test('the image cache refuses a qcow2 blob that names a backing file, and keeps nothing of it', async () => {
  const node = await fakeNode(cloud, 'n1');
  const state = join(work, 'agent');
  const cache = new ImageCache(state, node, new SystemExec());
  const sha = plantEvil();
  await assert.rejects(cache.ensure(sha, 'qcow2'), /backing file \/etc\/hostname/);
  assert.deepEqual(readdirSync(join(state, 'images')), [], 'nothing left in the cache');

  // Already in the cache (an older agent fetched it): refused before use all the same, and dropped.
  copyFileSync(join(cloud.dir, 'blobs', 'sha256', sha), cache.path(sha));
  await assert.rejects(new ImageCache(state, node, new SystemExec()).ensure(sha, 'qcow2'), /backing file \/etc\/hostname/);
  assert.equal(existsSync(cache.path(sha)), false);
});

test('the image cache takes clean qcow2 and raw blobs, and kernels unchecked', async () => {
  const node = await fakeNode(cloud, 'n2');
  const cache = new ImageCache(join(work, 'agent2'), node, new SystemExec());
  const q = join(work, 'clean.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', q, '1M']);
  const qcow2 = (await cloud.admin.uploadBlob(Readable.from([readFileSync(q)]))).sha256;
  const raw = (await cloud.admin.uploadBlob(Readable.from([Buffer.alloc(8192, 1)]))).sha256;
  assert.equal(await cache.ensure(qcow2, 'qcow2'), cache.path(qcow2));
  assert.equal(await cache.ensure(raw, 'raw'), cache.path(raw));
  // A qcow2 is not a raw disk, nor a raw file a qcow2: the format is forced, never probed.
  await assert.rejects(new ImageCache(join(work, 'agent3'), node, new SystemExec()).ensure(raw, 'qcow2'), /cannot open it as qcow2/);
  assert.equal(await cache.ensure(raw), cache.path(raw), 'no format: a kernel or initrd, which QEMU does not open as a disk');
});

test('an inspection that could not run (tool missing, killed by its timeout) is no verdict: the cached blob stays', async () => {
  const node = await fakeNode(cloud, 'n3');
  const state = join(work, 'agent4');
  const q = join(work, 'kept.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', q, '1M']);
  const sha = (await cloud.admin.uploadBlob(Readable.from([readFileSync(q)]))).sha256;
  // Fetched and inspected once for real, as a running VM's base image would be.
  const cache = new ImageCache(state, node, new SystemExec());
  assert.equal(await cache.ensure(sha, 'qcow2'), cache.path(sha));
  // A later agent process on a host where the inspection cannot run: prlimit gone (127), or
  // qemu-img killed by the runner's timeout (SIGTERM, 143).
  for (const code of [127, 143]) {
    const broken: Exec = { run: async () => ({ code, stdout: '', stderr: code === 127 ? 'prlimit: not found' : '', ...(code === 143 ? { signal: 'SIGTERM', timedOut: true } : {}) }) };
    await assert.rejects(new ImageCache(state, node, broken).ensure(sha, 'qcow2'), /cannot inspect/);
    assert.ok(existsSync(cache.path(sha)), `exit ${code}: the cached blob is kept, not deleted as if refused`);
  }
});
