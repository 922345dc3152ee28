// A simulated VM start writes the agent's state (agent-state.json), the simulated driver's
// table and console line, and the console shipper's sidecar. `butter sim` and bench (f) run
// 1,000 agents in one process: a synchronous write (and worse, an fsync) there stops every
// agent's heartbeats and the process's other work for as long as the disk takes. Real agent,
// real control plane over HTTP, real files; the spy sees the synchronous fs calls only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AgentState } from '../src/agent/agent-state.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';
import { spySyncWrites } from './sync-fs-spy.ts';

let cloud: TestCloud;
const dirs: string[] = [];

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
});
after(async () => {
  await cloud?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('starting simulated VMs writes no state synchronously on the event loop, and the state is on disk once the agent stops', async () => {
  const { agent, stateDir } = await simAgent(cloud, 'w1', { consoleShipMs: 50 });
  dirs.push(stateDir);
  // Images are fetched once per image, not per start: not what this is about.
  const spy = spySyncWrites(stateDir, (p) => p.startsWith(join(stateDir, 'images')));
  let ids: string[];
  try {
    await agent.start();
    const names = ['w-a', 'w-b', 'w-c'];
    ids = await Promise.all(names.map(async (name) => (await cloud.admin.call('createVm', { body: { name, image: 'img', memory: '128M' } })).id));
    for (const name of names) await until(`${name} running`, async () => ((await cloud.admin.call('getVm', { params: { name } })).state === 'running' ? true : undefined));
    // Its console reached the control plane: the shipper's sidecar was written too.
    for (const name of names) await until(`${name} console shipped`, async () => ((await cloud.admin.call('vmLogs', { params: { name } })).data ? true : undefined));
    await agent.stop();
  } finally {
    spy.restore();
  }
  assert.deepEqual(spy.calls, [], 'synchronous writes under the agent state dir');

  // Nothing lost by not blocking: what a restarted agent reads is all there, and no temp file is left.
  assert.deepEqual(Object.keys(new AgentState(stateDir).applied).sort(), [...ids].sort());
  assert.deepEqual((await new SimDriver({ stateDir }).list()).map((v) => v.id).sort(), [...ids].sort());
  for (const id of ids) {
    assert.match(readFileSync(join(stateDir, 'vms', id, 'console.log'), 'utf8'), /booted/);
    assert.match(readFileSync(join(stateDir, 'vms', id, 'console.log.ship.json'), 'utf8'), /"stream"/);
  }
  assert.deepEqual(readdirSync(stateDir).filter((f) => f.includes('.tmp')), []);
});
