/**
 * The agent's order of work for VPN peers: a peer reaches the mesh interface only once its
 * network's rules (which fence it in) are in place, except peers already on the interface
 * after an agent restart, whose rules outlived the agent. The host parts are recording fakes;
 * the control plane is real.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.ts';
import type { MeshHost } from '../src/agent/host/mesh.ts';
import { NetworkApplyError, type NetworkHost } from '../src/agent/host/network.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { Client } from '../src/sdk/client.ts';
import { fakeNode, reportMesh, startTestCloud, TEST_WG_KEYS, type TestCloud } from './helpers.ts';

const [NODE_KEY, LAPTOP] = TEST_WG_KEYS;

let cloud: TestCloud;
let node: Client;
const dirs: string[] = [];
before(async () => {
  cloud = await startTestCloud();
  node = await fakeNode(cloud, 'gw');
  await reportMesh(node, 'gw', { publicKey: NODE_KEY, listenPort: 51820, endpoint: '192.0.2.7:51820' });
  await cloud.admin.call('createNetwork', { body: { name: 'lan', cidr: '10.20.0.0/24' } });
  await cloud.admin.call('joinNetwork', { params: { name: 'lan' }, body: { name: 'laptop', publicKey: LAPTOP } });
});
after(async () => {
  await cloud.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** What the agent did to the host, in order: mesh applies (with their VPN peers' keys) and network applies. */
function recordingHost(onInterface: readonly string[], failing?: { network: string | undefined }) {
  const events: string[] = [];
  const mesh: MeshHost = {
    apply: async (_m, clients = []) => void events.push(`mesh [${clients.map((c) => c.publicKey).join(' ')}]`),
    peerKeys: async () => new Set(onInterface),
    teardown: async () => {},
  };
  const network: NetworkHost = {
    apply: async (nets) => {
      events.push(`network [${nets.map((n) => n.name).join(' ')}]`);
      if (failing?.network) throw new NetworkApplyError(new Map([[failing.network, new Error('bt-lan exists and is a veth interface, not a bridge')]]));
    },
    teardown: async () => {},
  };
  const stateDir = mkdtempSync(join(tmpdir(), 'butter-agent-vpn-'));
  dirs.push(stateDir);
  const agent = new Agent({
    client: node,
    node: 'gw',
    stateDir,
    driver: new SimDriver({ stateDir }),
    accel: { accel: 'tcg', reason: 'simulated' },
    network,
    mesh: { host: mesh, publicKey: NODE_KEY, listenPort: 51820, endpoint: '192.0.2.7:51820', iface: 'wgtest' },
  });
  return { agent, events };
}

async function desired() {
  const d = await node.call('nodeDesired', { params: { name: 'gw' } });
  assert.ok(!('unchanged' in d));
  assert.deepEqual(d.networks.find((n) => n.name === 'lan')?.vpn?.peers.map((p) => p.publicKey), [LAPTOP], 'this node is lan’s VPN gateway with the laptop');
  return d;
}

test('on a fresh or rebooted host, a VPN peer joins the mesh only after its network’s rules', async () => {
  const { agent, events } = recordingHost([]);
  await agent.reconcile(await desired());
  assert.deepEqual(events.slice(0, 3), ['mesh []', 'network [lan]', `mesh [${LAPTOP}]`]);
  // Converged: another pass changes the mesh no more.
  events.length = 0;
  await agent.reconcile(await desired());
  assert.ok(!events.some((e) => e.startsWith('mesh') && !e.includes(LAPTOP)), events.join('\n'));
});

test('after an agent restart, the peers still on the interface stay there from the first apply', async () => {
  const { agent, events } = recordingHost([NODE_KEY, LAPTOP]);
  await agent.reconcile(await desired());
  assert.equal(events[0], `mesh [${LAPTOP}]`);
  assert.ok(!events.includes('mesh []'), events.join('\n'));
});

test("the agent reports its default-route address only when it has no endpoint of its own: the control plane keeps it for VPN peers", async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'butter-agent-vpn-'));
  dirs.push(stateDir);
  const mesh: MeshHost = { apply: async () => {}, peerKeys: async () => new Set(), teardown: async () => {} };
  const agentWith = (m: { endpoint?: string; defaultAddress?: string }) =>
    new Agent({ client: node, node: 'gw', stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'simulated' }, mesh: { host: mesh, publicKey: NODE_KEY, listenPort: 51820, iface: 'wgtest', ...m } });
  const row = () => cloud.cp.services.store.db.prepare(`SELECT wg_endpoint, default_endpoint FROM nodes WHERE name = 'gw'`).get();
  await agentWith({ defaultAddress: '192.0.2.10' }).report();
  assert.deepEqual(row(), { wg_endpoint: null, default_endpoint: '192.0.2.10:51820' });
  await agentWith({ endpoint: '192.0.2.7:51820', defaultAddress: '192.0.2.10' }).report();
  assert.deepEqual(row(), { wg_endpoint: '192.0.2.7:51820', default_endpoint: null });
});

test('a network that fails to apply gets no new VPN peer (its rules may be missing); once it applies, the peer joins', async () => {
  const failing = { network: 'lan' as string | undefined };
  const { agent, events } = recordingHost([], failing);
  // The failure is the network's: the reconcile itself goes on.
  await agent.reconcile(await desired());
  assert.ok(!events.some((e) => e.includes(LAPTOP)), events.join('\n'));
  failing.network = undefined;
  events.length = 0;
  await agent.reconcile(await desired());
  assert.deepEqual(events.slice(0, 3), ['mesh []', 'network [lan]', `mesh [${LAPTOP}]`]);
});
