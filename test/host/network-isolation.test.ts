/**
 * One broken network does not freeze a node (issue 12). A real agent with the real Linux
 * network host, inside a throwaway network namespace (the "machine"), and the simulated VM
 * driver (no guests: the network host is what is under test). An interface named like a
 * network's bridge but not a bridge (something a user can really make) breaks that network:
 * the VM on the other network still starts, and is deleted when asked; `network show` and
 * `vm show` say what is wrong; once the obstacle goes, the network converges and the error
 * clears.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.ts';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { LinuxNetworkHost } from '../../src/agent/host/linux-network.ts';
import { NetnsExec } from '../../src/agent/host/netns-exec.ts';
import { SimDriver } from '../../src/agent/host/sim-driver.ts';
import { bridgeName, tapName } from '../../src/core/vm-spec.ts';
import { Client } from '../../src/sdk/client.ts';
import { startTestCloud, uploadImage, type TestCloud } from '../helpers.ts';
import { requires } from '../requires.ts';

const id = randomBytes(3).toString('hex');
const NS = `bt-iso-${id}`;
/** Gateway namespaces: this plus the network's name (host-wide names: unique to this run). */
const GW = `bt-gwi-${id}-`;
const MARK = `butter:iso-${id}`;

const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/dnsmasq');
const skip = requires(canRun, 'needs root and dnsmasq');
const sys = new SystemExec();

let work: string;
let cloud: TestCloud;
let agent: Agent;
let host: LinuxNetworkHost;
const logs: string[] = [];

const inNs = (...args: string[]) => sys.run('ip', ['netns', 'exec', NS, ...args], { allowFail: true });

async function link(name: string): Promise<{ ifname: string; master?: string; linkinfo?: { info_kind?: string } } | undefined> {
  const r = await inNs('ip', '-j', '-d', 'link', 'show', 'dev', name);
  return r.code === 0 ? (JSON.parse(r.stdout) as { ifname: string; master?: string; linkinfo?: { info_kind?: string } }[])[0] : undefined;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}\n${logs.slice(-30).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const vm = (name: string) => cloud.admin.call('getVm', { params: { name } });
const network = (name: string) => cloud.admin.call('getNetwork', { params: { name } });

before(async () => {
  if (!canRun) return;
  work = mkdtempSync(join(tmpdir(), 'bt-iso-'));
  // dnsmasq runs as an unprivileged user and must reach its files under the work dir.
  chmodSync(work, 0o755);
  await sys.run('ip', ['netns', 'add', NS]);
  await inNs('ip', 'link', 'set', 'lo', 'up');
  cloud = await startTestCloud();
  await uploadImage(cloud.admin, 'img');
  await cloud.admin.call('createNetwork', { body: { name: 'good', cidr: '10.61.0.0/24', nat: false } });
  await cloud.admin.call('createNetwork', { body: { name: 'bad', cidr: '10.62.0.0/24', nat: false } });
  // What a user could do: an interface of the name the agent wants for the network's bridge.
  // (A veth pair: this kernel has no dummy interfaces; the other end's name is not ours.)
  const r = await inNs('ip', 'link', 'add', bridgeName('bad'), 'type', 'veth', 'peer', 'name', `xo${id}`);
  assert.equal(r.code, 0, r.stderr);
  const { token } = await cloud.admin.call('createNode', { body: { name: 'n1' } });
  const stateDir = join(work, 'agent');
  host = new LinuxNetworkHost({ exec: new NetnsExec(sys, NS), stateDir: join(work, 'net'), netnsPrefix: GW, mark: MARK, log: (m) => logs.push(m) });
  agent = new Agent({
    client: new Client({ url: cloud.url, token }),
    node: 'n1',
    stateDir,
    driver: new SimDriver({ stateDir }),
    network: host,
    accel: { accel: 'tcg', reason: 'simulated' },
    noEgress: true,
    heartbeatMs: 500,
    log: (m) => logs.push(m),
  });
  await agent.start();
});

after(async () => {
  if (!canRun || !work) return;
  await agent?.stop();
  await host?.teardown().catch((e) => console.error(`teardown: ${String(e)}`));
  await cloud?.close();
  // Anything still running on our files (dnsmasq), by pid, before the namespaces go.
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(work)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const name of readdirSync('/run/netns').filter((n) => n.startsWith(GW))) await sys.run('ip', ['netns', 'del', name], { allowFail: true });
  await sys.run('ip', ['netns', 'del', NS], { allowFail: true });
  rmSync(work, { recursive: true, force: true });
});

test('a network that cannot be built stops only its own VMs; the error shows, and clears once it builds', { skip }, async () => {
  await cloud.admin.call('createVm', { body: { name: 'vm-bad', image: 'img', memory: '128M', network: 'bad' } });
  const good = await cloud.admin.call('createVm', { body: { name: 'vm-good', image: 'img', memory: '128M', network: 'good' } });

  // The good VM starts beside the broken network, on a real bridge with its real tap.
  await until('vm-good running', async () => ((await vm('vm-good')).state === 'running' ? true : undefined));
  assert.equal((await link(tapName(good.id)))?.master, bridgeName('good'));
  assert.equal((await link(bridgeName('good')))?.linkinfo?.info_kind, 'bridge');

  // The broken one says why, per node, and so does its VM.
  const bad = await until('network bad in error on n1', async () => {
    const n = await network('bad');
    return n.nodes.find((h) => h.node === 'n1' && h.state === 'error') ? n : undefined;
  });
  assert.match(bad.nodes[0]!.error ?? '', new RegExp(`${bridgeName('bad')} exists and is a veth interface, not a bridge`));
  assert.deepEqual((await network('good')).nodes, [{ node: 'n1', state: 'ready', error: null }]);
  const badVm = await until('vm-bad in error', async () => {
    const v = await vm('vm-bad');
    return v.state === 'error' ? v : undefined;
  });
  assert.match(badVm.reason ?? '', /^network bad: .*not a bridge/);
  // The obstacle is the user's: left as it was.
  assert.equal((await link(bridgeName('bad')))?.linkinfo?.info_kind, 'veth');

  // Deleting a VM still works while the other network stays broken.
  await cloud.admin.call('deleteVm', { params: { name: 'vm-good' } });
  await until('vm-good gone', async () => ((await vm('vm-good').catch(() => 'gone')) === 'gone' ? true : undefined));
  await until('its tap gone', async () => ((await link(tapName(good.id))) === undefined ? true : undefined));

  // The user removes the obstacle: the network converges, its VM starts, the error clears.
  assert.equal((await inNs('ip', 'link', 'del', bridgeName('bad'))).code, 0);
  await until('vm-bad running', async () => ((await vm('vm-bad')).state === 'running' ? true : undefined));
  const healed = await until('network bad ready on n1', async () => {
    const n = await network('bad');
    return n.nodes.some((h) => h.state === 'ready') ? n : undefined;
  });
  assert.deepEqual(healed.nodes, [{ node: 'n1', state: 'ready', error: null }]);
  assert.equal((await vm('vm-bad')).reason, null);
  assert.equal((await link(bridgeName('bad')))?.linkinfo?.info_kind, 'bridge');
});
