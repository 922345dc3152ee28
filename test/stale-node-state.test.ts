// Stale local state never locks a user out: node tokens a machine kept from a control plane
// that no longer knows them (reinstalled, another one, the node deleted, the host renamed)
// lead to a fresh join or to a message that says what to do, never to "unknown token" forever.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createControlPlane, type ControlPlane } from '../src/server/control-plane.ts';
import { ensureServerTls } from '../src/server/tls.ts';
import { Client } from '../src/sdk/node-client.ts';
import { joinCluster } from '../src/daemon/join.ts';
import { runSim } from '../src/daemon/sim.ts';
import { runAgent } from '../src/daemon/server.ts';
import { runUp } from '../src/daemon/up.ts';
import type { Logger } from '../src/daemon/logger.ts';
import { until as poll } from './helpers.ts';

interface Cp {
  cp: ControlPlane;
  url: string;
  ca: string;
  caHash: string;
  admin: Client;
}

let dir: string;
const cps: Cp[] = [];
const stops: (() => Promise<void>)[] = [];

async function startCp(name: string): Promise<Cp> {
  const dataDir = join(dir, name);
  const tls = await ensureServerTls(dataDir, { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  const cp = createControlPlane({ dataDir, https: tls });
  await cp.listen('127.0.0.1', 0);
  const url = `https://127.0.0.1:${(cp.http.server.address() as { port: number }).port}`;
  const c = { cp, url, ca: tls.ca, caHash: tls.caHash, admin: new Client({ url, token: cp.adminToken!, ca: tls.ca }) };
  cps.push(c);
  return c;
}

/** A logger whose lines the test reads. */
function captureLog(): { log: Logger; text: () => string } {
  let out = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { log: pino({ level: 'info' }, sink), text: () => out };
}

const until = <T>(what: string, fn: () => Promise<T | undefined>) => poll(what, fn, 30_000, 100);
const ready = (c: Cp, name: string) => until(`${name} ready`, async () => ((await c.admin.call('getNode', { params: { name } }).catch(() => undefined))?.state === 'ready' ? true : undefined));

const sim = (c: Cp, stateDir: string, prefix: string) =>
  runSim({ admin: c.admin, ca: c.ca, nodes: 1, prefix, zones: ['default'], capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, stateDir, log: captureLog().log });

let a: Cp;
let b: Cp;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'butter-stale-'));
  a = await startCp('cp-a');
  b = await startCp('cp-b');
  process.env.XDG_CONFIG_HOME = join(dir, 'cfg'); // `butter up` logs the CLI in
});
after(async () => {
  for (const s of stops) await s().catch(() => {});
  for (const c of cps) await c.cp.close();
  rmSync(dir, { recursive: true, force: true });
});

test('butter sim keeps its nodes per control plane: a second one gets its own, the first keeps its', async () => {
  const state = join(dir, 'sim-two');
  await (await sim(a, state, 's'))();
  await ready(a, 's-1');
  const stopB = await sim(b, state, 's');
  stops.push(stopB);
  await ready(b, 's-1');
  await stopB();
  // Back on the first: its node's token was kept, so no new join was needed.
  const stopA = await sim(a, state, 's');
  stops.push(stopA);
  await ready(a, 's-1');
  assert.equal((await a.admin.call('listJoinTokens', {})).items.length, 1);
  await stopA();
});

test('butter sim moves a node kept in the old layout (STATE/<node>/) into its control plane\'s dir when the token is accepted', async () => {
  const state = join(dir, 'sim-legacy');
  await (await sim(a, state, 'l'))();
  const joins = (await a.admin.call('listJoinTokens', {})).items.length;
  const scope = readdirSync(state).find((f) => f.startsWith('ca-'))!;
  renameSync(join(state, scope, 'l-1'), join(state, 'l-1'));
  const stop = await sim(a, state, 'l');
  stops.push(stop);
  await ready(a, 'l-1');
  await stop();
  assert.equal((await a.admin.call('listJoinTokens', {})).items.length, joins);
  assert.ok(existsSync(join(state, scope, 'l-1', 'node.token')));
  assert.ok(!existsSync(join(state, 'l-1')));
});

test('butter sim answers an unknown node token with a fresh join', async () => {
  const state = join(dir, 'sim-deleted');
  await (await sim(a, state, 'd'))();
  await a.admin.call('deleteNode', { params: { name: 'd-1' } });
  const stop = await sim(a, state, 'd');
  stops.push(stop);
  await ready(a, 'd-1');
  await stop();
});

test('butter agent with a credential the control plane no longer knows: says what to do, or joins afresh with --join', async () => {
  const state = join(dir, 'agent-stale');
  mkdirSync(state, { mode: 0o700 });
  const { token: first } = await a.admin.call('createJoinToken', { body: {} });
  await joinCluster({ url: a.url, joinToken: first, caHash: a.caHash, name: 'n-stale', stateDir: state });
  await a.admin.call('deleteNode', { params: { name: 'n-stale' } });
  const logged = captureLog();
  const base = { stateDir: state, driver: 'sim' as const, noEgress: true, mesh: false as const, log: logged.log };
  await assert.rejects(runAgent(base), (e: Error) => {
    assert.match(e.message, /credential\.json/);
    assert.match(e.message, /--join/);
    return true;
  });
  // A control plane reinstalled at the same address (a new CA): the saved CA does not sign its certificate.
  const file = join(state, 'credential.json');
  const cred = JSON.parse(readFileSync(file, 'utf8')) as { url: string };
  writeFileSync(file, JSON.stringify({ ...cred, url: b.url }));
  await assert.rejects(runAgent(base), (e: Error) => {
    assert.match(e.message, /not signed by the CA saved in .*credential\.json.*reinstalled/);
    assert.match(e.message, /--join/);
    return true;
  });
  writeFileSync(file, JSON.stringify(cred));
  // A join token for another control plane does not silently move this node there (its VMs belong to the first).
  const { token: other } = await b.admin.call('createJoinToken', { body: {} });
  await assert.rejects(runAgent({ ...base, join: { url: b.url, token: other, caHash: b.caHash, name: 'n-stale' } }), (e: Error) => {
    assert.match(e.message, /another control plane/);
    assert.match(e.message, /credential\.json/);
    return true;
  });
  // With a fresh join token for its own control plane it joins again and runs.
  const { token: fresh } = await a.admin.call('createJoinToken', { body: {} });
  const stop = await runAgent({ ...base, join: { url: a.url, token: fresh, caHash: a.caHash, name: 'n-stale' } });
  stops.push(stop);
  await ready(a, 'n-stale');
  // Deleted while it runs: the agent says so once, with what to do, and keeps trying.
  await a.admin.call('deleteNode', { params: { name: 'n-stale' } });
  const refused = () => logged.text().split('\n').filter((l) => /refuses this node's token/.test(l));
  await until('the refusal logged', async () => (refused().length ? true : undefined));
  assert.match(refused()[0]!, /unknown token.*butter node token create.*--join .*credential\.json/);
  await stop();
  assert.equal(refused().length, 1);
});

test('butter up on a renamed host keeps its node (and its VMs) under the name it registered', async () => {
  const dataDir = join(dir, 'up');
  const base = { dataDir, host: '127.0.0.1', port: 0, driver: 'sim' as const, noEgress: true, tiny: false, mesh: false as const };
  await (await runUp({ ...base, nodeName: 'host-a', log: captureLog().log }))();
  const restarted = new Date().toISOString();
  const { log, text } = captureLog();
  const stop = await runUp({ ...base, nodeName: 'host-b', log });
  stops.push(stop);
  const cfg = JSON.parse(readFileSync(join(dir, 'cfg', 'butter', 'config.json'), 'utf8')) as { url: string; token: string; ca: string };
  const admin = new Client(cfg);
  const nodes = (await admin.call('listNodes', {})).items;
  assert.deepEqual(nodes.map((n) => [n.name, n.state]), [['host-a', 'ready']]);
  // Its agent reported after the restart (a restarted control plane shows nodes ready until a timeout).
  await until('host-a reports', async () => ((nodes[0]!.lastHeartbeatAt ?? '') >= restarted || ((await admin.call('getNode', { params: { name: 'host-a' } })).lastHeartbeatAt ?? '') >= restarted ? true : undefined));
  assert.match(text(), /host-b.*host-a|host-a.*host-b/);
  await stop();
});
