/**
 * The agent hands each network's service blocks and paths, and the node's published ports,
 * from its desired state to the network host, which renders `inet butter_paths` and
 * `inet butter_publish` (test/host/paths-agent.test.ts runs that part for real). The host is
 * a recording fake; the control plane is real.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.ts';
import type { HostPolicy, LocalNetwork, NetworkHost } from '../src/agent/host/network.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import type { DesiredPublished, NodeDesired } from '../src/api/schemas/desired.ts';
import { fakeNode, startTestCloud, type TestCloud } from './helpers.ts';

let cloud: TestCloud;
let stateDir: string;
before(async () => {
  cloud = await startTestCloud();
  stateDir = mkdtempSync(join(tmpdir(), 'butter-agent-paths-'));
});
after(async () => {
  await cloud.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test("each network's blocks and paths, and the node's published ports, reach the network host", async () => {
  const applied: { nets: LocalNetwork[]; policy: HostPolicy | undefined }[] = [];
  const network: NetworkHost = { apply: async (nets, policy) => void applied.push({ nets: [...nets], policy }), teardown: async () => {} };
  const agent = new Agent({ client: await fakeNode(cloud, 'n1'), node: 'n1', stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'simulated' }, network });
  const base = { gateway: '10.20.0.1', mtu: 1450, nat: true, remotes: [] };
  const published: DesiredPublished = { network: 'lan', service: 'web', proto: 'tcp', ports: [80, 80], hostPorts: [8080, 8080], sources: ['0.0.0.0/0'], backends: [{ ip: '10.20.0.17', node: 'n2' }] };
  const desired: NodeDesired = {
    revision: 1,
    vms: [],
    mesh: null,
    networks: [
      {
        ...base,
        name: 'lan',
        cidr: '10.20.0.0/24',
        vni: 101,
        services: [{ name: 'web', ips: ['10.20.0.17'], block: '10.20.0.16/28' }, { name: 'db', ips: [], block: '10.20.0.32/29' }],
        paths: [
          { from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [5432, 5432] },
          { from: { cidr: '0.0.0.0/0' }, to: 'web', proto: 'tcp', ports: [80, 80] },
        ],
      },
      { ...base, name: 'old', cidr: '10.21.0.0/24', gateway: '10.21.0.1', vni: 102 },
    ],
    published: [published],
  };
  await agent.reconcile(desired);
  const last = applied.at(-1)!;
  assert.deepEqual(
    last.nets.map((n) => [n.name, n.services, n.paths]),
    [
      ['lan', [{ name: 'web', ips: ['10.20.0.17'], block: '10.20.0.16/28' }, { name: 'db', ips: [], block: '10.20.0.32/29' }], desired.networks[0]!.paths],
      ['old', [], undefined],
    ],
  );
  // No mesh (a simulated node): no mesh address to reach other nodes' instances by.
  assert.deepEqual(last.policy, { node: 'n1', published: [published] });
});
