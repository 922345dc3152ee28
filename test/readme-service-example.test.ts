/**
 * The README's service example (the original Butter's, rewritten with `butter/sdk`), taken
 * from README.md as it is and run as a script of another package (the packed SDK,
 * test/packed-sdk.ts) against a real control plane with two simulated nodes (real agents,
 * simulated driver), from a directory holding the repository's `examples/`. Needs
 * `npm run build`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Agent } from '../src/agent/agent.ts';
import { simAgent, startTestCloud, uploadImage, type TestCloud } from './helpers.ts';
import { packSdk, root, run, savedLoginEnv } from './packed-sdk.ts';

let cloud: TestCloud;
let work: string;
let project: string;
const agents: Agent[] = [];
const stateDirs: string[] = [];

/** The README's one js block that creates a service. */
function readmeExample(): string {
  const blocks = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  const mine = blocks.filter((b) => b.includes('butter.service.create('));
  assert.equal(mine.length, 1, `one js block in README.md creates a service (found ${mine.length})`);
  return mine[0]!;
}

before(async () => {
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'tiny');
  for (const name of ['n1', 'n2']) {
    const { agent, stateDir } = await simAgent(cloud, name);
    await agent.start();
    agents.push(agent);
    stateDirs.push(stateDir);
  }
  ({ work, project } = await packSdk());
  cpSync(join(root, 'examples'), join(project, 'examples'), { recursive: true });
});

after(async () => {
  for (const a of agents) await a.stop();
  await cloud?.close();
  for (const d of [work, ...stateDirs]) if (d) rmSync(d, { recursive: true, force: true });
});

test("the README's service example runs as written against a control plane with simulated nodes", async () => {
  writeFileSync(join(project, 'example.mjs'), readmeExample());
  const { stdout } = await run(process.execPath, ['example.mjs'], { cwd: project, env: savedLoginEnv(work, cloud.url, cloud.cp.adminToken!), timeout: 120_000 });

  // What the control plane saw: both services made and removed, their instances with them, the network too.
  const events = (await cloud.admin.call('listEvents', { query: { limit: 1000 } })).items;
  const of = (resource: string) => events.filter((e) => e.resource === resource).map((e) => `${e.action} ${e.name}`);
  assert.deepEqual(of('service'), ['create private', 'create public', 'delete private', 'deleted private', 'delete public', 'deleted public']);
  assert.deepEqual(of('network').filter((x) => x.endsWith(' dev')), ['create dev', 'delete dev']);
  const vmCreates = of('vm').filter((x) => x.startsWith('create '));
  assert.deepEqual(vmCreates.sort(), ['create private-0', 'create private-1', 'create public-0']);
  assert.deepEqual((await cloud.admin.call('listServices', {})).items, []);

  // The front was given the private instances' addresses: the ones the control plane gave them.
  const m = /^public\.dev\.internal -> (.+)$/m.exec(stdout);
  assert.ok(m, `the example prints the front's DNS name and its backends: ${stdout}`);
  const given = events.filter((e) => e.resource === 'vm' && e.action === 'create' && e.name.startsWith('private-')).map((e) => / at (\S+)$/.exec(e.message)?.[1]);
  assert.deepEqual(m[1]!.split(', ').sort(), given.sort());
});
