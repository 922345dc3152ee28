// The DISK-image path end to end, through Butter itself: `images/tiny/build-disk.sh` makes a raw
// MBR disk (syslinux on FAT16, the tiny kernel + initrd), `butter image add --file` registers it
// as a disk image, and a VM boots it through the firmware (q35 + SeaBIOS -> MBR -> SYSLINUX ->
// kernel), fetches its metadata and runs its user-data, like a cloud image would.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ButterInNetns } from './butter-cli.ts';

const BUILD_DISK = fileURLToPath(new URL('../../images/tiny/build-disk.sh', import.meta.url));
// Shared across runs: build-disk.sh (and the build.sh it calls) skip the work when nothing changed.
const IMAGE_DIR = join(tmpdir(), 'butter-tiny-disk-image');
const marker = `hello-from-disk-image-${process.pid}`;

let b: ButterInNetns;
let diskImg: string;

before(async () => {
  // Build first (may apt-get syslinux/mtools/dosfstools on a fresh host), then start Butter.
  await promisify(execFile)('bash', [BUILD_DISK, IMAGE_DIR], { timeout: 600_000 });
  diskImg = join(IMAGE_DIR, 'tiny-disk.img');
  b = new ButterInNetns();
  await b.start();
});
after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(b?.upLog);
  await b?.cleanup();
});

const ok = (args: string[]) => b.ok(args);

const logsUntil = (name: string, re: RegExp) => b.logsUntil(name, re);

const qemus = () => b.processes().filter((p) => p.cmd.includes('qemu'));

test('a raw disk image boots through the BIOS firmware, gets its metadata and runs user-data', async () => {
  const img = JSON.parse(ok(['image', 'add', 'tinydisk', '--file', diskImg, '--json'])) as { kind: string; format: string | null };
  assert.equal(img.kind, 'disk');
  assert.equal(img.format, 'raw');

  const script = join(b.dir, 'hello.sh');
  writeFileSync(script, `#!/bin/sh\necho ${marker}\n`);
  const created = ok(['vm', 'create', 'd1', '--image', 'tinydisk', '--memory', '256M', '--disk', '1G', '--user-data', script, '--wait']);
  assert.match(created, /vm d1 is running/, 'running means the guest fetched its metadata from 169.254.169.254');

  const logs = await logsUntil('d1', new RegExp(`^${marker}\\r?$`, 'm'));
  // Butter runs QEMU with `-machine graphics=off`, so SeaBIOS prints to the serial console;
  // the SYSLINUX banner (its `SERIAL 0` directive) can only come from a firmware boot of this disk.
  const syslinux = logs.search(/SYSLINUX \d+\.\d+/);
  assert.ok(syslinux >= 0, `no SYSLINUX banner in the console log:\n${logs.slice(0, 2000)}`);
  const seabios = logs.indexOf('SeaBIOS');
  assert.ok(seabios >= 0 && seabios < syslinux, 'SeaBIOS runs before syslinux');
  const init = logs.indexOf('butter-tiny: init starting');
  assert.ok(init > syslinux, 'syslinux loaded the tiny kernel + initrd');
  assert.match(logs, /butter-tiny: metadata fetched instance-id=/);
  // The boot disk is FAT: init must leave it alone (not blank, so never formatted; not ext4).
  assert.doesNotMatch(logs, /formatted blank \/dev\/vda/);
  assert.match(logs, /butter-tiny: error: cannot mount \/dev\/vda on \/data/);
  assert.equal(qemus().length, 1);

  ok(['vm', 'rm', 'd1']);
  assert.deepEqual(JSON.parse(ok(['vm', 'list', '--json'])), []);
  assert.deepEqual(qemus(), [], 'no QEMU process left');
  ok(['image', 'rm', 'tinydisk']);
  const images = JSON.parse(ok(['image', 'list', '--json'])) as { name: string }[];
  assert.deepEqual(images.map((i) => i.name), ['tiny']);
});
