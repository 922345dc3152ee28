/**
 * The QEMU driver's layered disks (qemu-snapshots.ts) on real qcow2 files made by the real
 * `qemu-img` (no QEMU process: a stopped VM's path): the initial point, an offline snapshot,
 * restore, a clone's base, and the node's own refusal to delete a file something stands on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmPaths } from '../../core/qemu-args.ts';
import { SystemExec } from './exec.ts';
import { backingOf, memorySnapshotPath, QemuDisks, snapshotLink } from './qemu-snapshots.ts';
import { requires } from '../../../test/requires.ts';

const skip = requires(spawnSync('qemu-img', ['--version']).status === 0, 'qemu-img not installed');

test('layered disk: initial point, offline snapshot, restore, clone base, and deletes refused while something stands on a file', { skip }, async () => {
  const state = realpathSync(mkdtempSync(join(tmpdir(), 'bqs-')));
  try {
    const base = join(state, 'base.raw');
    writeFileSync(base, Buffer.alloc(1 << 20));
    const paths = (id: string) => vmPaths(state, id);
    const disks = new QemuDisks({ exec: new SystemExec(), stateDir: state, paths, livePid: () => undefined });
    const p = paths('vm1');
    const undo: (() => void)[] = [];
    await disks.create(p, { file: base, format: 'raw' }, 8 << 20, 'init1', (f) => undo.push(f));
    assert.ok(lstatSync(p.disk).isSymbolicLink(), 'disk.qcow2 is a link to the active layer');
    const initial = realpathSync(snapshotLink(p, 'init1'));
    assert.equal(backingOf(initial), base, 'the initial layer stands on the image');
    assert.equal(backingOf(realpathSync(p.disk)), initial, 'the disk stands on the initial layer');
    assert.deepEqual(await disks.list('vm1'), ['init1']);

    // A stopped VM's snapshot: the active layer is frozen where it is, a new one goes on it.
    const active = realpathSync(p.disk);
    const r = await disks.take('vm1', 's1');
    assert.equal(r.pauseMs, undefined, 'no QEMU, no pause');
    assert.equal(realpathSync(snapshotLink(p, 's1')), active, 'the old active layer is the snapshot, not moved');
    assert.equal(backingOf(realpathSync(p.disk)), active);
    assert.deepEqual(await disks.list('vm1'), ['init1', 's1']);

    // The disk stands on s1, s1 on init1: neither may go.
    await assert.rejects(disks.remove('vm1', 's1'), /vms\/vm1\/layers\/.*stands on it/);
    await assert.rejects(disks.remove('vm1', 'init1'), /stands on it/);

    // A clone on s1 (another VM of this host).
    const c = paths('vm2');
    await disks.create(c, { file: realpathSync(snapshotLink(p, 's1')), format: 'qcow2' }, 8 << 20, 'init2', () => {});
    assert.equal(backingOf(realpathSync(snapshotLink(c, 'init2'))), active, "the clone's first layer stands on vm1's s1");

    // Restore init1: the discarded active layer is deleted; s1 is left to the clone only.
    const discarded = realpathSync(p.disk);
    await disks.restore(p, 'init1', 8 << 20);
    assert.equal(backingOf(realpathSync(p.disk)), initial);
    assert.equal(existsSync(discarded), false, 'the replaced active layer is gone');
    await assert.rejects(disks.remove('vm1', 's1'), /vms\/vm2\/layers\/.*stands on it/, "the clone's layer keeps s1");
    rmSync(c.dir, { recursive: true, force: true });
    await disks.remove('vm1', 's1');
    assert.equal(existsSync(active), false, 'deleted with its link once nothing stands on it');
    assert.deepEqual(await disks.list('vm1'), ['init1']);
    assert.match(readlinkSync(p.disk), /^layers\//, 'links are relative to the VM directory');
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

/** `qemu-io` on a layer: writes or checks a byte pattern (the real reader of what a guest would see). */
function io(file: string, cmd: string): void {
  const r = spawnSync('qemu-io', ['-f', 'qcow2', '-c', cmd, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /Pattern verification failed|error/i, r.stdout);
}

test("merge on delete, a stopped VM: the layers standing on the snapshot get its data and stand on its parent; the export is one file with it all", { skip }, async () => {
  const state = realpathSync(mkdtempSync(join(tmpdir(), 'bqm-')));
  try {
    const base = join(state, 'base.raw');
    writeFileSync(base, Buffer.alloc(1 << 20));
    const paths = (id: string) => vmPaths(state, id);
    const disks = new QemuDisks({ exec: new SystemExec(), stateDir: state, paths, livePid: () => undefined });
    const p = paths('vm1');
    await disks.create(p, { file: base, format: 'raw' }, 8 << 20, 'init1', () => {});
    const init = realpathSync(snapshotLink(p, 'init1'));
    io(realpathSync(p.disk), 'write -P 0x11 0 64k');
    await disks.take('vm1', 's1');
    const l1 = realpathSync(snapshotLink(p, 's1'));
    io(realpathSync(p.disk), 'write -P 0x22 64k 64k');
    await disks.take('vm1', 's2');
    const l2 = realpathSync(snapshotLink(p, 's2'));
    assert.equal(backingOf(l2), l1);
    // Without merge, as before: refused.
    await assert.rejects(disks.remove('vm1', 's1'), /stands on it/);
    // s1 merged into s2's layer (qemu-img rebase): s2 shows the same bytes, standing on init1.
    await disks.remove('vm1', 's1', true);
    assert.equal(existsSync(l1), false, "s1's layer is gone");
    assert.equal(backingOf(l2), init, 's2 stands on s1\'s parent');
    io(l2, 'read -P 0x11 0 64k');
    io(l2, 'read -P 0x22 64k 64k');
    // s2 merged into the active layer.
    await disks.remove('vm1', 's2', true);
    assert.equal(existsSync(l2), false);
    assert.equal(backingOf(realpathSync(p.disk)), init);
    io(realpathSync(p.disk), 'read -P 0x11 0 64k');
    io(realpathSync(p.disk), 'read -P 0x22 64k 64k');
    // An export of a snapshot is one self-contained qcow2 with the whole chain's bytes.
    await disks.take('vm1', 's3');
    const out = join(state, 'out.qcow2');
    await disks.export('vm1', 's3', out);
    assert.equal(backingOf(out), null, 'no backing file');
    io(out, 'read -P 0x11 0 64k');
    io(out, 'read -P 0x22 64k 64k');
    // A clone on s3 (another VM): merging s3 is still refused by the node.
    const c = paths('vm2');
    await disks.create(c, { file: realpathSync(snapshotLink(p, 's3')), format: 'qcow2' }, 8 << 20, 'init2', () => {});
    await assert.rejects(disks.remove('vm1', 's3', true), /vms\/vm2\/layers\/.*stand on it/);
    assert.equal(backingOf(realpathSync(p.disk)), realpathSync(snapshotLink(p, 's3')), 'and nothing of vm1 was rewritten for it');
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('memory snapshots: refused of a VM that is not running (nothing left); a delete removes the state file with the snapshot', { skip }, async () => {
  const state = realpathSync(mkdtempSync(join(tmpdir(), 'bqs-')));
  try {
    const paths = (id: string) => vmPaths(state, id);
    const disks = new QemuDisks({ exec: new SystemExec(), stateDir: state, paths, livePid: () => undefined });
    const p = paths('vm1');
    await disks.create(p, undefined, 8 << 20, 'init1', () => {});
    const layers = () => readdirSync(join(p.dir, 'layers')).sort();
    const before = layers();
    await assert.rejects(disks.take('vm1', 'm1', { memory: true }), /not running: a memory snapshot is of a running guest/);
    assert.deepEqual(layers(), before, 'no layer made');
    assert.deepEqual(await disks.list('vm1'), ['init1']);
    // A snapshot with its state file (as a running VM's take leaves it), then deleted once nothing stands on it.
    await disks.take('vm1', 'm1');
    await disks.take('vm1', 'm2');
    const memory = memorySnapshotPath(p, 'm1');
    writeFileSync(memory, 'saved RAM', { mode: 0o600 });
    await assert.rejects(disks.remove('vm1', 'm1'), /stands on it/);
    assert.ok(existsSync(memory), 'kept while the snapshot is');
    await disks.restore(p, 'init1', 8 << 20);
    await disks.remove('vm1', 'm2');
    await disks.remove('vm1', 'm1');
    assert.equal(existsSync(memory), false, 'gone with its snapshot');
    assert.deepEqual(await disks.list('vm1'), ['init1']);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});
