/**
 * The agent hands a network's services (from its desired state) to the network host, which
 * renders them into dnsmasq's names (test/host/service-dns.test.ts runs that part for real).
 * The host is a recording fake; the control plane is real.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.ts';
import type { LocalNetwork, NetworkHost } from '../src/agent/host/network.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { NodeDesired } from '../src/api/schemas/desired.ts';
import { fakeNode, startTestCloud, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let stateDir: string;
before(async () => {
  cloud = await startTestCloud();
  stateDir = mkdtempSync(join(tmpdir(), 'butter-agent-sdns-'));
});
after(async () => {
  await cloud.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test('each network\'s services and their addresses reach the network host; a network without any has none', async () => {
  const applied: LocalNetwork[][] = [];
  const network: NetworkHost = { apply: async (nets) => void applied.push([...nets]), teardown: async () => {} };
  const agent = new Agent({ client: await fakeNode(cloud, 'n1'), node: 'n1', stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'simulated' }, network });
  const base = { gateway: '10.20.0.1', mtu: 1450, nat: true, remotes: [] };
  const desired: NodeDesired = {
    revision: 1,
    vms: [],
    mesh: null,
    networks: [
      { ...base, name: 'lan', cidr: '10.20.0.0/24', vni: 101, services: [{ name: 'api', ips: ['10.20.0.5', '10.20.0.6'] }, { name: 'idle', ips: [] }] },
      { ...base, name: 'old', cidr: '10.21.0.0/24', gateway: '10.21.0.1', vni: 102 },
    ],
  };
  await agent.reconcile(desired);
  const last = applied.at(-1) ?? [];
  assert.deepEqual(
    last.map((n) => [n.name, n.services]),
    [
      ['lan', [{ name: 'api', ips: ['10.20.0.5', '10.20.0.6'] }, { name: 'idle', ips: [] }]],
      ['old', []],
    ],
  );
});
