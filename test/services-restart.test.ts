// Services with nodes driven by hand through the API (each "node" reports what its desired
// state asks, as an agent would): a control plane restarted mid-rollout carries the rollout
// on from the store, and the desired state's DNS records hold running instances only.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { Client } from '../src/sdk/client.ts';
import { TEST_WG_KEYS, until as waitFor, uploadImage } from './helpers.ts';

const until = <T>(what: string, fn: () => Promise<T | undefined>) => waitFor(what, fn, 30_000, 20);

const dir = mkdtempSync(join(tmpdir(), 'butter-svc-restart-'));
let cp: ControlPlane | undefined;
after(async () => {
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

const CAPACITY = { cpus: 8, memoryBytes: 16 * 1024 ** 3, diskBytes: 200 * 1024 ** 3 };
const blueprint = `
placement: { availability_zones: 2 }
instance: { memory: 256M, cpus: 1 }
image: { name: img }
initialization: [ { path: a.sh, vars: { Colour: { required: true } } } ]
`;

interface Fleet {
  url: string;
  admin: Client;
  nodes: { name: string; token: string }[];
}

async function start(): Promise<{ url: string; admin: Client }> {
  cp = createControlPlane({ dataDir: dir });
  const url = await cp.listen('127.0.0.1', 0);
  const token = cp.adminToken ?? (await import('node:fs')).readFileSync(cp.adminTokenPath, 'utf8').trim();
  return { url, admin: new Client({ url, token }) };
}

/** Each node reports its desired VMs: `running`, or as `state` says; deleted ones gone. */
async function report(f: Fleet, state: (vm: { name: string }) => 'running' | 'booting' = () => 'running'): Promise<void> {
  for (const n of f.nodes) {
    const c = new Client({ url: f.url, token: n.token });
    const d = await c.call('nodeDesired', { params: { name: n.name }, query: {} });
    const vms = 'vms' in d ? d.vms.filter((v) => v.power !== 'deleted').map((v) => ({ id: v.id, state: v.power === 'running' ? state(v) : ('stopped' as const) })) : [];
    await c.call('nodeReport', { params: { name: n.name }, body: { capacity: CAPACITY, accel: 'tcg', driver: 'sim', vms } });
  }
}


test('a rollout interrupted by a control-plane restart resumes; DNS records carry running instances only', async () => {
  const first = await start();
  await uploadImage(first.admin, 'img');
  const f: Fleet = { ...first, nodes: [] };
  for (const [i, [name, zone]] of [['n1', 'east'], ['n2', 'west']].entries()) {
    const { token } = await f.admin.call('createNode', { body: { name: name! } });
    await f.admin.call('updateNode', { params: { name: name! }, body: { zone: zone! } });
    await new Client({ url: f.url, token }).call('nodeReport', { params: { name: name! }, body: { capacity: CAPACITY, accel: 'tcg', driver: 'sim', vms: [], mesh: { publicKey: TEST_WG_KEYS[i]!, listenPort: 51820, endpoint: `192.0.2.${i + 1}:51820` } } });
    f.nodes.push({ name: name!, token });
  }
  await f.admin.call('createService', { body: { network: 'default', name: 'api', blueprint, files: { 'a.sh': '#!/bin/sh\necho {{ Colour }}\n' }, vars: { Colour: 'red' } } });

  // Booting instances are not in the service's DNS records; running ones are, and the change
  // wakes the network's hosts (their desired revision moves).
  await report(f, () => 'booting');
  const desired = (node: string) => f.admin.call('nodeDesired', { params: { name: node }, query: {} });
  const records = async (node: string) => {
    const d = await desired(node);
    assert.ok('networks' in d);
    return d.networks.find((n) => n.name === 'default')!.services;
  };
  const block = (await f.admin.call('getService', { params: { name: 'api' } })).block;
  assert.deepEqual(await records('n1'), [{ name: 'api', ips: [], block }]);
  const rev0 = (await desired('n2')).revision;
  await report(f);
  const running = (await f.admin.call('getService', { params: { name: 'api' } })).instances;
  assert.ok(running.every((i) => i.state === 'running'));
  assert.deepEqual((await records('n1'))?.[0]?.ips.sort(), running.map((i) => i.ip!).sort());
  assert.ok((await desired('n2')).revision > rev0, "the hosts' desired state changed");

  // Update, and let the controller create its first replacement; then stop the control plane.
  await f.admin.call('updateService', { params: { name: 'api' }, body: { blueprint, files: { 'a.sh': '#!/bin/sh\necho {{ Colour }}\n' }, vars: { Colour: 'blue' } } });
  await until('a replacement at revision 2', async () => ((await f.admin.call('getService', { params: { name: 'api' } })).instances.some((i) => i.revision === 2) ? true : undefined));
  await cp!.close();
  cp = undefined;

  const second = await start();
  f.url = second.url;
  f.admin = second.admin;
  // The new control plane, told by the nodes what runs, carries the rollout to its end.
  let steps = 0;
  const done = await until('the rollout done after the restart', async () => {
    await report(f);
    const s = await f.admin.call('getService', { params: { name: 'api' } });
    // At every point of the rollout two instances run and the DNS name answers both.
    assert.ok(s.instances.filter((i) => i.state === 'running').length >= 2, JSON.stringify(s.instances));
    assert.ok(((await records('n1'))?.[0]?.ips.length ?? 0) >= 2, 'the DNS name never lacks an instance');
    steps++;
    return s.rollout.state === 'done' && s.instances.length === 2 && s.instances.every((i) => i.revision === 2 && i.state === 'running') ? s : undefined;
  });
  assert.equal(done.revision, 2);
  assert.ok(steps >= 2, 'the rollout took steps after the restart');
  assert.deepEqual(done.instances.map((i) => i.zone).sort(), ['east', 'west']);
  assert.deepEqual((await records('n1'))?.[0]?.ips.sort(), done.instances.map((i) => i.ip!).sort(), 'the records follow the new instances');
});
