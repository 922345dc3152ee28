// The node's console log stays bounded while a writer holds it open with O_APPEND, as QEMU does
// (`logappend=on`): the shipper sends every byte once, in order, and frees what it sent past the
// kept tail with a real `fallocate --punch-hole`. Real files, a real writer process, real HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleShipper } from '../src/agent/console-shipper.ts';
import { punchConsole } from '../src/agent/host/console-trim.ts';
import { SystemExec } from '../src/agent/host/exec.ts';
import type { Client } from '../src/sdk/client.ts';
import { fakeNode, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let node: Client;
let dir: string;
let id: string;
const KEEP = 16 * 1024;

before(async () => {
  cloud = await startTestCloud();
  node = await fakeNode(cloud, 'n1');
  await uploadImage(cloud.admin, 'img');
  id = (await cloud.admin.call('createVm', { body: { name: 'v', image: 'img', memory: '128M' } })).id;
  dir = mkdtempSync(join(tmpdir(), 'butter-console-trim-'));
});
after(async () => {
  await cloud?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `sh` appending numbered lines through one O_APPEND descriptor (`>>`), pausing now and then so shipping interleaves. */
function writer(file: string, from: number, to: number): Promise<void> {
  const script = `i=${from}; while [ $i -lt ${to} ]; do echo "line $i"; i=$((i+1)); if [ $((i % 2000)) -eq 0 ]; then sleep 0.02; fi; done >> "$1"`;
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', script, 'sh', file], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}`))));
  });
}
const expected = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line ${from + i}\n`).join('');

async function serverLog(): Promise<string> {
  let offset = 0;
  let data = '';
  for (;;) {
    const r = await cloud.admin.call('vmLogs', { params: { name: 'v' }, query: { offset } });
    if (r.offset === offset) return data;
    assert.equal(r.start, 0, 'under the control plane\'s cap nothing is dropped there');
    data += r.data;
    offset = r.offset;
  }
}

/** Records the offsets a shipper sends from. */
function recording(real: Client, offsets: number[]): Client {
  return { call: (op: string, args: { body?: { offset?: number } }) => (offsets.push(args.body?.offset ?? -1), (real.call as (o: string, a: unknown) => Promise<unknown>)(op, args)) } as unknown as Client;
}

test('an appended-to console log is shipped whole and freed on the node down to the kept tail', async () => {
  const file = join(dir, 'console.log');
  const trim = punchConsole(new SystemExec());
  const shipper = new ConsoleShipper(node, 'n1', () => file, { keepBytes: KEEP, trim });
  const N = 40_000;
  let done = false;
  const w = writer(file, 0, N).finally(() => (done = true));
  while (!done) {
    await shipper.ship([id]);
    await new Promise((r) => setTimeout(r, 5));
  }
  await w;
  await shipper.ship([id]);

  const total = Buffer.byteLength(expected(0, N));
  assert.equal(statSync(file).size, total, 'the file keeps its size: offsets never moved under the writer');
  assert.equal(await serverLog(), expected(0, N), 'every line once, in order');
  const onDisk = statSync(file).blocks * 512;
  assert.ok(onDisk <= KEEP + (KEEP >> 2) + 3 * 4096, `the node keeps ${onDisk} bytes on disk of ${total}`);

  // A restarted agent resumes from its sidecar: it does not re-read the freed bytes.
  const offsets: number[] = [];
  const restarted = new ConsoleShipper(recording(node, offsets), 'n1', () => file, { keepBytes: KEEP, trim });
  await writer(file, N, N + 100);
  await restarted.ship([id]);
  assert.ok(offsets.length > 0 && Math.min(...offsets) >= total - KEEP - (KEEP >> 2), `resumed at ${Math.min(...offsets)}`);
  assert.equal(await serverLog(), expected(0, N + 100), 'nothing doubled, nothing lost');

  // The VM's log made anew on this node (destroyed and recreated): a new stream, after the old.
  rmSync(file);
  rmSync(`${file}.ship.json`);
  assert.ok(!existsSync(file));
  await writer(file, 0, 3);
  await restarted.ship([id]);
  assert.equal(await serverLog(), expected(0, N + 100) + expected(0, 3));
});

test('while the control plane does not take the log, the node keeps at most 16 × the tail; what follows is appended after', async () => {
  const file = join(dir, 'away.log');
  const trim = punchConsole(new SystemExec());
  const down = { call: () => Promise.reject(new Error('connect ECONNREFUSED')) } as unknown as Client;
  const before = await serverLog();
  const away = new ConsoleShipper(down, 'n1', () => file, { keepBytes: KEEP, trim });
  let done = false;
  const w = writer(file, 0, 60_000).finally(() => (done = true));
  while (!done) {
    await away.ship([id]).catch(() => {});
    await new Promise((r) => setTimeout(r, 5));
  }
  await w;
  await away.ship([id]).catch(() => {});
  const size = statSync(file).size;
  const onDisk = statSync(file).blocks * 512;
  assert.ok(size > 16 * KEEP * 2, `${size} bytes written`);
  assert.ok(onDisk <= 16 * KEEP + 64 * 1024, `the node keeps ${onDisk} bytes on disk of ${size} while the control plane is away`);

  // Back: the newest output arrives, after what the control plane had, ending with the last line.
  const back = new ConsoleShipper(node, 'n1', () => file, { keepBytes: KEEP, trim });
  await back.ship([id]);
  const now = await serverLog();
  assert.ok(now.startsWith(before), 'what the control plane had stays');
  const added = now.slice(before.length);
  assert.ok(added.endsWith('line 59999\n'));
  assert.ok(added.length <= 16 * KEEP, `${added.length} bytes arrived`);
  assert.ok(expected(0, 60_000).endsWith(added.slice(added.indexOf('\n') + 1)), 'an unbroken run of the newest lines');
});
