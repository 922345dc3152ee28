// `butter sim` as a user runs it: simulated agents over the real API. Node loss: killing the
// sim marks its nodes unreachable within 15 s and their VMs unknown; starting it again
// reconciles; evacuation moves VMs off a lost node.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestCloud, uploadImage, type TestCloud } from './helpers.ts';

const BUTTER = fileURLToPath(new URL('../bin/butter', import.meta.url));
let cloud: TestCloud;
let work: string;
const sims: ChildProcess[] = [];

function startSim(args: string[]): ChildProcess {
  const child = spawn(BUTTER, ['sim', '--state-dir', join(work, 'sim'), ...args], {
    env: { ...process.env, XDG_CONFIG_HOME: join(work, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! },
    stdio: 'ignore',
  });
  sims.push(child);
  return child;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return { value: v, ms: Date.now() - t0 };
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'butter-sim-'));
  await uploadImage(cloud.admin, 'img');
});
after(async () => {
  for (const s of sims) s.kill('SIGKILL');
  await cloud?.close();
  rmSync(work, { recursive: true, force: true });
});

test('simulated nodes join, run VMs, are lost, come back, and are evacuated', async () => {
  let sim = startSim(['--nodes', '3', '--zones', 'east,west', '--memory', '8G']);
  await until('3 ready nodes', async () => {
    const { items } = await cloud.admin.call('listNodes', {});
    return items.filter((n) => n.state === 'ready').length === 3 ? items : undefined;
  });
  const zones = (await cloud.admin.call('listNodes', {})).items.map((n) => n.zone).sort();
  assert.deepEqual(zones, ['east', 'east', 'west']);

  for (let i = 0; i < 3; i++) await cloud.admin.call('createVm', { body: { name: `v${i}`, image: 'img', memory: '1G', spreadKey: 'v' } });
  await until('3 running VMs', async () => {
    const { items } = await cloud.admin.call('listVms', {});
    return items.every((v) => v.state === 'running') ? items : undefined;
  });
  assert.equal(new Set((await cloud.admin.call('listVms', {})).items.map((v) => v.node)).size, 3);

  // Lose every node at once.
  sim.kill('SIGKILL');
  // A generous bound on hanging, not a speed check: the 10 s cutoff behind the 15 s promise
  // is checked without a clock in control-plane.test.ts.
  const lost = await until('unreachable nodes', async () => {
    const { items } = await cloud.admin.call('listNodes', {});
    return items.every((n) => n.state === 'unreachable') ? items : undefined;
  }, 60_000);
  console.log(`# unreachable after ${lost.ms} ms`);
  assert.ok((await cloud.admin.call('listVms', {})).items.every((v) => v.state === 'unknown'));

  // They come back: the agents reconcile and report the truth.
  sim = startSim(['--nodes', '3', '--zones', 'east,west', '--memory', '8G']);
  await until('VMs running again', async () => {
    const { items } = await cloud.admin.call('listVms', {});
    return items.every((v) => v.state === 'running') ? items : undefined;
  });

  // Lose one node; evacuate it.
  const victim = (await cloud.admin.call('getVm', { params: { name: 'v0' } })).node!;
  await cloud.admin.call('cordonNode', { params: { name: victim } });
  sim.kill('SIGKILL');
  sim = startSim(['--nodes', '3', '--prefix', 'sim2', '--memory', '8G']);
  await until(`${victim} unreachable`, async () => ((await cloud.admin.call('getNode', { params: { name: victim } })).state === 'unreachable' ? true : undefined));
  const out = await cloud.admin.call('evacuateNode', { params: { name: victim }, body: { confirm: true } });
  assert.deepEqual(out.moved.map((m) => m.vm), ['v0']);
  assert.deepEqual(out.failed, []);
  await until('v0 running elsewhere', async () => {
    const v = await cloud.admin.call('getVm', { params: { name: 'v0' } });
    return v.state === 'running' && v.node !== victim ? v : undefined;
  });
  sim.kill('SIGTERM');
});
