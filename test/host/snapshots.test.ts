/**
 * Disk snapshots on a real tiny guest (issue 16): `butter up` in a namespace, real QEMU (TCG).
 * A snapshot of the running VM (paused, external qcow2 snapshot over QMP, resumed; the pause
 * reported), a file written after it, a restore: the file is gone and the one before is
 * there; `vm reinit` rolls back to the first boot; a clone of the snapshot boots with its own
 * name and address and the snapshot's file; an image made of the snapshot boots a new VM
 * that has the file too; a snapshot of a stopped VM; a delete refused
 * while a clone stands on the snapshot, and done on the node after it is gone; a snapshot
 * under the running disk deleted by merging it (block-stream), its data kept.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ButterInNetns } from './butter-cli.ts';
import { tinyVmHost, type TinyVmHost } from './tiny-vm-host.ts';
import { backingOf } from '../../src/agent/host/qemu-snapshots.ts';

let b: ButterInNetns;
let ask: TinyVmHost['ask'];
let close: (() => Promise<void>) | undefined;
before(async () => ({ b, ask, close } = await tinyVmHost()));
after(() => close?.());

interface ShownVm {
  id: string;
  ip: string;
  mac: string;
  state: string;
}
interface ShownSnapshot {
  id: string;
  name: string;
  state: string;
  pauseMs: number | null;
  parent: string | null;
  current: boolean;
}

const show = (name: string): ShownVm => JSON.parse(b.ok(['vm', 'show', name, '--json'])) as ShownVm;
const snapshots = (name: string): ShownSnapshot[] => JSON.parse(b.ok(['vm', 'snapshot', 'list', name, '--json'])) as ShownSnapshot[];

/** Whether the guest's root disk (`/dev/vda`, mounted at /data) has the file. */
const has = async (vm: string, file: string) => (await ask(vm, (t) => `echo "${t}-$(test -e /data/${file} && echo yes || echo no)"`)) === 'yes';
/** Writes a file on the root disk and syncs it to the virtual disk (a snapshot is crash-consistent: what was synced is in it). */
const write = async (vm: string, file: string) => assert.equal(await ask(vm, (t) => `echo ${file} > /data/${file} && sync && echo "${t}-$(cat /data/${file})"`), file);

test('snapshot, write, restore: the file is gone; reinit rolls back; a clone boots with its own name and address', async () => {
  b.ok(['vm', 'create', 'snappy', '--image', 'tiny', '--memory', '128M', '--disk', '1G', '--wait']);
  const vm = show('snappy');
  const dir = join(b.dataDir, 'agent', 'vms', vm.id);
  assert.deepEqual(snapshots('snappy').map((s) => [s.name, s.state, s.current]), [['initial', 'ready', true]], 'the initial snapshot, made with the disk');

  await write('snappy', 'a');
  const taken = JSON.parse(b.ok(['vm', 'snapshot', 'snappy', '--name', 'with-a', '--json'])) as ShownSnapshot;
  assert.equal(taken.state, 'ready');
  assert.equal(taken.parent, 'initial');
  assert.equal(typeof taken.pauseMs, 'number', 'a running VM is paused for it, and the pause is measured');
  console.log(`# disk snapshot of a running tiny VM: guest paused ${taken.pauseMs} ms`);
  assert.ok(existsSync(join(dir, 'snapshots', `${taken.id}.qcow2`)), 'its file on the node');
  assert.equal(show('snappy').state, 'running', 'the guest runs on after it');
  await write('snappy', 'b');

  // Restore: the VM restarts from with-a; b (written after it) is gone, a is there.
  b.ok(['vm', 'snapshot', 'restore', 'snappy', 'with-a']);
  assert.equal(await has('snappy', 'b'), false, 'the file written after the snapshot is gone');
  assert.equal(await has('snappy', 'a'), true, 'the file written before it is there');
  assert.equal(snapshots('snappy').find((s) => s.current)?.name, 'with-a');

  // Reinit: back to the first boot; neither file.
  b.ok(['vm', 'reinit', 'snappy']);
  assert.equal(await has('snappy', 'a'), false, 'reinit rolls back past every write');
  assert.equal(snapshots('snappy').find((s) => s.current)?.name, 'initial');

  // A clone of with-a: its own identity, the snapshot's disk.
  b.ok(['vm', 'clone', 'snappy', 'twin', '--snapshot', 'with-a']);
  const twin = show('twin');
  assert.notEqual(twin.id, vm.id);
  assert.notEqual(twin.mac, vm.mac);
  assert.notEqual(twin.ip, vm.ip);
  assert.equal(await ask('twin', (t) => `echo "${t}-$(hostname)"`), 'twin', 'its own name, from its own metadata');
  assert.equal(await ask('twin', (t) => `echo "${t}-$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)"`), twin.ip, 'its own address');
  assert.equal(await has('twin', 'a'), true, "the snapshot's file is its disk");

  // A stopped VM's snapshot is made on its files (no pause to measure).
  b.ok(['vm', 'stop', 'twin']);
  const cold = JSON.parse(b.ok(['vm', 'snapshot', 'twin', '--name', 'cold', '--json'])) as ShownSnapshot;
  assert.equal(cold.state, 'ready');
  assert.equal(cold.pauseMs, null);

  // An image of with-a: its node flattens the chain (qemu-img convert) and uploads it; a new
  // VM of that image (a kernel image, as tiny is, with the export as its root disk) has the file.
  const t0 = Date.now();
  const img = JSON.parse(b.ok(['image', 'create', 'snappy-a', '--from-vm', 'snappy', '--snapshot', 'with-a', '--json'])) as { status: string; kind: string; files: { rootDisk?: { sha256: string } } };
  assert.equal(img.status, 'ready');
  assert.equal(img.kind, 'kernel');
  assert.deepEqual(readdirSync(join(b.dataDir, 'agent', 'exports')), [], 'no temporary file left on the node');
  b.ok(['vm', 'create', 'heir', '--image', 'snappy-a', '--memory', '128M', '--disk', '1G', '--wait']);
  assert.equal(await has('heir', 'a'), true, 'a VM of the image sees the file written before the snapshot');
  b.ok(['vm', 'rm', 'heir']);
  console.log(`# image from a snapshot, and a VM of it booted and asked: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // with-a backs the clone: deleting it is refused; once the clone is gone, it goes from the node too.
  const refused = b.cli(['vm', 'snapshot', 'rm', 'snappy', 'with-a']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /twin is a clone of snapshot with-a/);
  b.ok(['vm', 'rm', 'twin']);
  b.ok(['vm', 'snapshot', 'rm', 'snappy', 'with-a']);
  const end = Date.now() + 60_000;
  while (existsSync(join(dir, 'snapshots', `${taken.id}.qcow2`))) {
    if (Date.now() > end) throw new Error(`the node kept ${taken.id}: ${readdirSync(join(dir, 'snapshots')).join(', ')}\n${b.upLog.slice(-3000)}`);
    await sleep(500);
  }
  assert.deepEqual(snapshots('snappy').map((s) => s.name), ['initial']);

  // Merge on delete, running: the snapshot under the running disk goes into it (QMP
  // block-stream, waited for); after a restart (a fresh read of the disk) the guest has both
  // the file written before the snapshot and the one after.
  const t1 = Date.now();
  await write('snappy', 'm');
  const mid = JSON.parse(b.ok(['vm', 'snapshot', 'snappy', '--name', 'mid', '--json'])) as ShownSnapshot;
  const midLayer = realpathSync(join(dir, 'snapshots', `${mid.id}.qcow2`));
  await write('snappy', 'n');
  b.ok(['vm', 'snapshot', 'rm', 'snappy', 'mid']);
  const end2 = Date.now() + 60_000;
  while (existsSync(midLayer)) {
    if (Date.now() > end2) throw new Error(`the node kept ${mid.id}\n${b.upLog.slice(-3000)}`);
    await sleep(500);
  }
  const initialLayer = realpathSync(join(dir, 'snapshots', `${snapshots('snappy')[0]!.id}.qcow2`));
  assert.equal(backingOf(realpathSync(join(dir, 'disk.qcow2'))), initialLayer, 'the running disk stands on initial now');
  b.ok(['vm', 'restart', 'snappy']);
  assert.equal(await has('snappy', 'm'), true, 'the merged snapshot\'s file is in the disk');
  assert.equal(await has('snappy', 'n'), true, 'and the one written after it');
  console.log(`# merge on delete of a running VM's snapshot, checked after a restart: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  b.ok(['vm', 'rm', 'snappy']);
});
