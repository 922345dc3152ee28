// The agent's image cache deletes images no VM on the node uses, never one a VM (running or
// stopped) uses: a real agent (simulated driver), a real control plane, real qcow2 images made
// by qemu-img, real files in the cache.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { SystemExec } from '../src/agent/host/exec.ts';
import { ImageCache } from '../src/agent/image-cache.ts';
import { fakeNode, simAgent, startTestCloud, until, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let work: string;
let agent: Agent | undefined;
const dirs: string[] = [];

before(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'butter-evict-'));
});
after(async () => {
  await agent?.stop();
  await cloud.close();
  rmSync(work, { recursive: true, force: true });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A real qcow2 image (qemu-img), uploaded and made an image; returns its blob's sha256. */
async function qcow2Image(name: string, size: string): Promise<string> {
  const file = join(work, `${name}.qcow2`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, size]);
  const sha = (await cloud.admin.uploadBlob(Readable.from([readFileSync(file)]))).sha256;
  await cloud.admin.call('createImage', { body: { name, kind: 'disk', disk: sha } });
  return sha;
}

const vmState = (name: string, state: string) => async () => ((await cloud.admin.call('getVm', { params: { name } }).catch(() => undefined))?.state === state ? true : undefined);

test('an image no VM uses leaves the cache; a stopped VM\'s image stays', async () => {
  const shaA = await qcow2Image('img-a', '1M');
  const shaB = await qcow2Image('img-b', '2M');
  // No grace: an unused image goes at the next reconcile (the grace itself: core/image-eviction.test.ts).
  const made = await simAgent(cloud, 'n1', { imageCache: { unusedGraceMs: 0, minFreePercent: 0 } });
  ({ agent } = made);
  const { stateDir } = made;
  dirs.push(stateDir);
  await agent.start();
  const cached = (sha: string) => existsSync(join(stateDir, 'images', sha));

  await cloud.admin.call('createVm', { body: { name: 'a', image: 'img-a', memory: '128M' } });
  await cloud.admin.call('createVm', { body: { name: 'b', image: 'img-b', memory: '128M' } });
  await until('a running', vmState('a', 'running'));
  await until('b running', vmState('b', 'running'));
  assert.ok(cached(shaA) && cached(shaB), 'both fetched');

  await cloud.admin.call('stopVm', { params: { name: 'b' } });
  await until('b stopped', vmState('b', 'stopped'));
  await cloud.admin.call('deleteVm', { params: { name: 'a' } });
  await until('a gone', async () => ((await cloud.admin.call('listVms', {})).items.some((v) => v.name === 'a') ? undefined : true));
  await until('img-a evicted', async () => (cached(shaA) ? undefined : true));
  // Reconciles go on (every watch answer re-checks the host); b's image must survive them.
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(cached(shaB), "the stopped VM's image stays");
  await cloud.admin.call('startVm', { params: { name: 'b' } });
  await until('b running again', vmState('b', 'running'));
});

test('below the free-space floor, unused images go at once; used ones and partial downloads stay', async () => {
  const node = await fakeNode(cloud, 'n2');
  const cache = new ImageCache(join(work, 'agent2'), node, new SystemExec());
  const used = await qcow2Image('img-c', '4M');
  const unused = await qcow2Image('img-d', '3M');
  await cache.ensure(used, 'qcow2');
  await cache.ensure(unused, 'qcow2');
  assert.notEqual(used, unused);
  const partial = join(work, 'agent2', 'images', `.${'e'.repeat(64)}.0123abcd`);
  writeFileSync(partial, 'half a download');
  const plenty = () => ({ bavail: 50, blocks: 100 });
  const low = () => ({ bavail: 5, blocks: 100 });
  const hour = 3_600_000;
  assert.deepEqual(cache.evictUnused(new Set([used]), { graceMs: hour, minFreePercent: 10, statfs: plenty }), [], 'within the grace period');
  assert.deepEqual(cache.evictUnused(new Set([used]), { graceMs: hour, minFreePercent: 10, statfs: low }), [unused]);
  assert.deepEqual(readdirSync(join(work, 'agent2', 'images')).sort(), [used, `.${'e'.repeat(64)}.0123abcd`].sort());
  // The real filesystem (statfs) is not low here: the used image is not touched either way.
  assert.deepEqual(cache.evictUnused(new Set([used]), { graceMs: 0, minFreePercent: 10 }), []);
  assert.deepEqual(readdirSync(join(work, 'agent2', 'images')).sort(), [used, `.${'e'.repeat(64)}.0123abcd`].sort());
});

test('a reconcile lists the VMs once, and evicts in the same pass the image of a VM it destroyed (not of one it failed to)', async () => {
  const node = await fakeNode(cloud, 'n3');
  const sha = await qcow2Image('img-e', '1M');
  await cloud.admin.call('createVm', { body: { name: 'e', image: 'img-e', memory: '128M', node: 'n3' } });
  const desired = await node.call('nodeDesired', { params: { name: 'n3' } });
  assert.ok(!('unchanged' in desired));
  const stateDir = join(work, 'agent3');
  /** The simulated driver, counting `list()` and failing `destroy` on demand. */
  class CountingDriver extends SimDriver {
    lists = 0;
    failDestroy = false;
    override list() {
      this.lists++;
      return super.list();
    }
    override destroy(id: string) {
      return this.failDestroy ? Promise.reject(new Error('disk busy')) : super.destroy(id);
    }
  }
  const driver = new CountingDriver({ stateDir });
  const a = new Agent({ client: node, node: 'n3', stateDir, driver, accel: { accel: 'tcg' }, imageCache: { unusedGraceMs: 0, minFreePercent: 0 } });
  const cached = () => existsSync(join(stateDir, 'images', sha));

  await a.reconcile(desired);
  assert.equal(driver.lists, 1, 'one list() for a pass that started a VM');
  assert.ok(cached(), 'fetched for the start');
  // The VM is gone from the desired state (a forced delete): this pass destroys it.
  const without = { ...desired, vms: desired.vms.filter((v) => v.id !== desired.vms[0]!.id) };
  driver.failDestroy = true;
  await a.reconcile(without);
  assert.equal(driver.lists, 2, 'one list() for a pass whose destroy failed');
  assert.ok(cached(), 'the VM is still on the host: its image stays');
  driver.failDestroy = false;
  await a.reconcile(without);
  assert.equal(driver.lists, 3, 'one list() for a pass that destroyed a VM');
  assert.ok(!cached(), 'evicted in the pass that destroyed its last VM');
});
