// An agent's stop() is the end of what it says: a heartbeat under way when it was called has
// arrived (or failed) by the time stop() resolves, and none starts after. Otherwise a report
// lands after the caller thinks the node is gone (force-remove.test.ts marks a stopped node
// lost and found it `ready` again now and then, under load).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
const stateDirs: string[] = [];

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
});
after(async () => {
  await cloud?.close();
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
});

test('stop() waits for a heartbeat under way, and no report starts after it', async () => {
  const { agent, client, stateDir } = await simAgent(cloud, 'n-stop', { heartbeatMs: 50 });
  stateDirs.push(stateDir);
  // Once the agent idles in its long-poll, each heartbeat is held on its way for a moment, so
  // that stop() meets one under way.
  let hold = false;
  let inFlight = 0;
  let started = 0;
  const call = client.call.bind(client) as (...a: unknown[]) => Promise<unknown>;
  (client as { call: unknown }).call = async (...a: unknown[]) => {
    if (a[0] !== 'nodeReport' || !hold) return call(...a);
    started++;
    inFlight++;
    try {
      await sleep(200);
      return await call(...a);
    } finally {
      inFlight--;
    }
  };
  await agent.start();
  await until('n-stop ready', async () => ((await cloud.admin.call('getNode', { params: { name: 'n-stop' } })).state === 'ready' ? true : undefined));
  await sleep(200); // its first desired state applied and reported: it waits in the long-poll
  hold = true;
  await until('a heartbeat under way', async () => (inFlight > 0 ? true : undefined), 15_000, 5);
  await agent.stop();
  assert.equal(inFlight, 0, 'a report was still under way when stop() resolved');
  const seen = started;
  await sleep(300); // several heartbeat periods: a timer left behind would have sent one
  assert.equal(started, seen, 'a report started after stop()');
});
