// The control plane's data dir holds user-data, tokens, keys, uploaded disks and consoles:
// nothing in it may be readable by another user of the host, whatever the umask it started
// with, and a data dir left loose by an older version is tightened at start.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { runServer } from '../src/daemon/server.ts';
import { Client } from '../src/sdk/node-client.ts';
import { fakeNode, startTestCloud } from './helpers.ts';
import { notPrivate } from './private-tree.ts';

const umaskBefore = process.umask();
const dirs: string[] = [];
after(() => {
  process.umask(umaskBefore);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** An upload, an image, a VM on a node and its console output: every kind of file the data dir gets. */
async function useIt(admin: Client, node: Client, nodeName: string): Promise<void> {
  const blob = await admin.uploadBlob(Readable.from([Buffer.alloc(4096, 7)]));
  await admin.call('createImage', { body: { name: 'img', kind: 'disk', disk: blob.sha256 } });
  const vm = await admin.call('createVm', { body: { name: 'v1', image: 'img', memory: '256M', node: nodeName } });
  await node.call('nodeConsole', { params: { name: nodeName, id: vm.id }, body: { offset: 0, base64: Buffer.from('login: ').toString('base64') } });
}

test('blobs, console logs and the database are private even under a loose umask', async () => {
  process.umask(0o022);
  const cloud = await startTestCloud();
  try {
    await useIt(cloud.admin, await fakeNode(cloud, 'n1'), 'n1');
    assert.deepEqual(notPrivate(cloud.dir), [], 'readable by others');
  } finally {
    await cloud.close();
  }
});

test('butter server tightens an old, loose data dir at start, TLS files included, and runs with umask 077', async () => {
  process.umask(0o022);
  const base = mkdtempSync(join(tmpdir(), 'butter-dd-'));
  dirs.push(base);
  const dataDir = join(base, 'data');
  // What an older version left: world-readable dirs and blob files.
  mkdirSync(join(dataDir, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
  chmodSync(dataDir, 0o755);
  writeFileSync(join(dataDir, 'blobs', 'sha256', 'a'.repeat(64)), 'old blob', { mode: 0o644 });
  const port = await freePort();
  const stop = await runServer({ dataDir, host: '127.0.0.1', port, tls: true, sans: [], log: pino({ level: 'silent' }) });
  try {
    assert.equal(process.umask(), 0o077, 'the daemon runs with umask 077');
    const url = `https://127.0.0.1:${port}`;
    const ca = readFileSync(join(dataDir, 'tls', 'ca.crt'), 'utf8');
    const admin = new Client({ url, token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(), ca });
    const { token } = await admin.call('createNode', { body: { name: 'n1' } });
    const node = new Client({ url, token, ca });
    await node.call('nodeReport', { params: { name: 'n1' }, body: { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] } });
    await useIt(admin, node, 'n1');
    assert.deepEqual(notPrivate(dataDir), [], 'readable by others');
  } finally {
    await stop();
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
