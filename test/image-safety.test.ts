// Uploaded images must be self-contained (OSSA-2024-001): a qcow2 naming a backing file or an
// external data file would have QEMU open a host file (/etc/shadow, /dev/sda, another VM's disk)
// as the guest's disk. Crafted here with the real qemu-img and sent through the real API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { rejects, startTestCloud, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let work: string;

before(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'butter-evil-'));
});
after(async () => {
  await cloud.close();
  rmSync(work, { recursive: true, force: true });
});

function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The crafted images, each with what the refusal must say. */
function crafted(): { name: string; file: string; says: RegExp }[] {
  const f = (n: string) => join(work, n);
  qemuImg('create', '-q', '-f', 'qcow2', '-b', '/etc/hostname', '-F', 'raw', f('backed-by-raw.qcow2'), '1M');
  writeFileSync(f('x.raw'), '');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${f('x.raw')}`, f('data-file.qcow2'), '1M');
  qemuImg('create', '-q', '-f', 'qcow2', f('base.qcow2'), '1M');
  qemuImg('create', '-q', '-f', 'qcow2', '-b', f('base.qcow2'), '-F', 'qcow2', f('backed-by-qcow2.qcow2'), '1M');
  // The json: pseudo-protocol names a file too; -u: do not open it while creating.
  qemuImg('create', '-q', '-u', '-f', 'qcow2', '-b', 'json:{"file.driver":"file","file.filename":"/etc/hostname"}', '-F', 'raw', f('json-backing.qcow2'), '1M');
  return [
    { name: 'backed-by-raw', file: f('backed-by-raw.qcow2'), says: /backing file \/etc\/hostname/ },
    { name: 'data-file', file: f('data-file.qcow2'), says: new RegExp(`external data file ${f('x.raw').replaceAll('.', '\\.')}`) },
    { name: 'backed-by-qcow2', file: f('backed-by-qcow2.qcow2'), says: new RegExp(`backing file ${f('base.qcow2').replaceAll('.', '\\.')}`) },
    { name: 'json-backing', file: f('json-backing.qcow2'), says: /backing file json:\{/ },
  ];
}

const blobFiles = () => [...readdirSync(join(cloud.dir, 'blobs', 'sha256')), ...readdirSync(join(cloud.dir, 'blobs', 'tmp'))];
const blobRows = () => cloud.cp.services.store.db.prepare(`SELECT sha256 FROM blobs`).all();

test('an upload of a qcow2 naming a backing or data file is refused (400, body) and leaves nothing', async () => {
  for (const c of crafted()) {
    await rejects(cloud.admin.uploadBlob(Readable.from([readFileSync(c.file)])), 400, 'body', c.says);
    assert.deepEqual(blobFiles(), [], `${c.name}: no blob file kept`);
    assert.deepEqual(blobRows(), [], `${c.name}: no blob row`);
  }
  assert.deepEqual((await cloud.admin.call('listImages', {})).items, []);
});

test('an image over such a blob (stored behind the API\'s back) is refused naming disk/rootDisk; no image, blob gone', async () => {
  const images = cloud.cp.services.images;
  /** Puts a file in the blob store the way an old control plane (or a bad disk) could have. */
  const plant = (file: string): string => {
    const bytes = readFileSync(file);
    const sha = createHash('sha256').update(bytes).digest('hex');
    copyFileSync(file, join(cloud.dir, 'blobs', 'sha256', sha));
    images.recordBlob('test', sha, bytes.length);
    return sha;
  };
  const kernel = (await cloud.admin.uploadBlob(Readable.from([Buffer.from('not really a kernel')]))).sha256;
  const initrd = (await cloud.admin.uploadBlob(Readable.from([Buffer.from('not really an initrd')]))).sha256;
  for (const c of crafted()) {
    const disk = plant(c.file);
    await rejects(cloud.admin.call('createImage', { body: { name: 'evil', kind: 'disk', disk } }), 400, 'disk', c.says);
    assert.deepEqual(blobFiles().filter((f) => f === disk), [], `${c.name}: refused blob removed`);
    const rootDisk = plant(c.file);
    await rejects(cloud.admin.call('createImage', { body: { name: 'evil', kind: 'kernel', kernel, initrd, rootDisk } }), 400, 'rootDisk', c.says);
    assert.deepEqual(blobFiles().filter((f) => f === rootDisk), [], `${c.name}: refused root disk removed`);
    assert.deepEqual((await cloud.admin.call('listImages', {})).items, [], `${c.name}: no image row`);
  }
  // The kernel and initrd, which no refusal concerned, are still there.
  assert.deepEqual(blobFiles().sort(), [kernel, initrd].sort());
});

test('clean qcow2 and raw images still upload, with their formats', async () => {
  const q = join(work, 'clean.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', q, '1M');
  const qBlob = await cloud.admin.uploadBlob(Readable.from([readFileSync(q)]));
  const qImg = await cloud.admin.call('createImage', { body: { name: 'clean-qcow2', kind: 'disk', disk: qBlob.sha256 } });
  assert.equal(qImg.format, 'qcow2');
  // A raw disk holding a VMDK descriptor that names a host file: probing would open /etc/hostname
  // as a vmdk extent; Butter takes it as raw bytes, which is harmless.
  const vmdk = '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "/etc/hostname" 0\n';
  const rBlob = await cloud.admin.uploadBlob(Readable.from([Buffer.concat([Buffer.from(vmdk), Buffer.alloc(4096)])]));
  const rImg = await cloud.admin.call('createImage', { body: { name: 'clean-raw', kind: 'disk', disk: rBlob.sha256 } });
  assert.equal(rImg.format, 'raw');
  assert.deepEqual((await cloud.admin.call('listImages', {})).items.map((i) => i.name), ['clean-qcow2', 'clean-raw']);
});
