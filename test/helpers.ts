/**
 * Shared test helpers: a control plane on a random loopback port in a temp dir, fake nodes and
 * real agents (simulated driver) joined to it, the built CLI run against it, bounded polls.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Agent, type AgentOptions } from '../src/agent/agent.ts';
import { SimDriver } from '../src/agent/host/sim-driver.ts';
import { createControlPlane, type ControlPlane, type ControlPlaneOptions } from '../src/server/control-plane.ts';
import assert from 'node:assert/strict';
import { ButterError, Client } from '../src/sdk/client.ts';

export interface TestCloud {
  cp: ControlPlane;
  url: string;
  admin: Client;
  dir: string;
  close(): Promise<void>;
}

export async function startTestCloud(opts: Omit<ControlPlaneOptions, 'dataDir'> = {}): Promise<TestCloud> {
  const dir = mkdtempSync(join(tmpdir(), 'butter-test-'));
  const cp = createControlPlane({ ...opts, dataDir: dir });
  const url = await cp.listen('127.0.0.1', 0);
  const admin = new Client({ url, token: cp.adminToken! });
  return {
    cp,
    url,
    admin,
    dir,
    close: async () => {
      await cp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A node registered through the API that reports the given capacity. */
export async function fakeNode(cloud: TestCloud, name: string, memoryGiB = 8): Promise<Client> {
  const { token } = await cloud.admin.call('createNode', { body: { name } });
  const node = new Client({ url: cloud.url, token });
  await heartbeat(node, name, memoryGiB);
  return node;
}

/**
 * One report of a fake node that runs no VMs: it is ready for the liveness timeout from now.
 * A test that relies on a fake node made long before reports again first (a real node does
 * every 5 s); on a loaded machine the tests before it can outlast the timeout.
 */
export async function heartbeat(node: Client, name: string, memoryGiB = 8): Promise<void> {
  await node.call('nodeReport', { params: { name }, body: { capacity: { cpus: 4, memoryBytes: memoryGiB * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [] } });
}

/**
 * Heartbeats of a fake node every 2 s, as a real node sends them, until the returned function
 * is called: for a test of many CLI runs, which on a loaded machine outlasts the liveness
 * timeout (10 s) by itself. The node reports no VMs, like `heartbeat`.
 */
export function keepReady(node: Client, name: string, memoryGiB = 8): () => void {
  const t = setInterval(() => void heartbeat(node, name, memoryGiB).catch(() => {}), 2000);
  t.unref(); // a test that fails before it stops them must not keep its file's process alive
  return () => clearInterval(t);
}

export async function uploadImage(admin: Client, name: string, bytes = Buffer.from('raw disk bytes'.repeat(100))): Promise<void> {
  const blob = await admin.uploadBlob(Readable.from([bytes]));
  await admin.call('createImage', { body: { name, kind: 'disk', disk: blob.sha256 } });
}

/** Awaits a call that must be refused with `status` (and, when given, naming `field`, saying `message`). */
export async function rejects(p: Promise<unknown>, status: number, field?: string, message?: RegExp): Promise<ButterError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ButterError, String(e));
    assert.equal(e.status, status, e.message);
    if (field) assert.equal(e.field, field, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail('expected a rejection');
}

/** WireGuard public keys for tests: valid, and never used by anything real. */
export const TEST_WG_KEYS = ['S343edvTdLPDUssjfYcnSBZcot1qvWePgii2qp0dEU8=', 'XBTipIAq4xgA/0Nh3/epgdL7QY3EFby0c43DJtqKaQE=', 'Jff8mpijCPepZf9rLXVZnwvKvXnGLxUPRJsFh+WN9TM=', 'AWCnoVL3o4yz6Kvlpp/aCb6QQTEJVFFrKfPQsAWIrjs='] as const;

/** A fake node's heartbeat (simulated driver, no VMs), with its mesh end when given. */
export function reportMesh(node: Client, name: string, mesh?: object): Promise<unknown> {
  return node.call('nodeReport', { params: { name }, body: { capacity: { cpus: 4, memoryBytes: 8 * 1024 ** 3, diskBytes: 100 * 1024 ** 3 }, accel: 'tcg', driver: 'sim', vms: [], ...(mesh ? { mesh: mesh as never } : {}) } });
}

/**
 * A node the admin created, run by a real agent with the simulated driver (not started): its
 * own node token and a fresh state dir, which the caller removes. `again()` is the same node's
 * agent once more (same token and state dir), as after an agent restart.
 */
export async function simAgent(cloud: TestCloud, name: string, extra: Partial<AgentOptions> = {}): Promise<{ agent: Agent; client: Client; stateDir: string; again(): Agent }> {
  const stateDir = mkdtempSync(join(tmpdir(), `butter-agent-${name}-`));
  const { token } = await cloud.admin.call('createNode', { body: { name } });
  const client = new Client({ url: cloud.url, token });
  const again = () => new Agent({ client, node: name, stateDir, driver: new SimDriver({ stateDir }), accel: { accel: 'tcg', reason: 'simulated' }, heartbeatMs: 200, ...extra });
  return { agent: again(), client, stateDir, again };
}

/**
 * A test cloud with one node, `n1`, run by a started real agent with the simulated driver, and
 * an image `img`: the setup of the tests of one feature through the whole stack (snapshots,
 * suspend). `close()` stops the agent and removes the cloud and the agent's state dir.
 */
export async function cloudWithSimNode(): Promise<{ cloud: TestCloud; agent: Agent; stateDir: string; close(): Promise<void> }> {
  const cloud = await startTestCloud();
  let node: Awaited<ReturnType<typeof simAgent>> | undefined;
  const close = async () => {
    await node?.agent.stop();
    await cloud.close();
    if (node) rmSync(node.stateDir, { recursive: true, force: true });
  };
  try {
    await uploadImage(cloud.admin, 'img');
    node = await simAgent(cloud, 'n1');
    await node.agent.start();
  } catch (e) {
    await close();
    throw e;
  }
  return { cloud, agent: node.agent, stateDir: node.stateDir, close };
}

/**
 * Polls `fn` until it returns something (not undefined) and returns that; fails naming `what`
 * after `ms`, a generous bound against hanging, not a speed check.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000, pollMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The built CLI (`npm run build`). */
export const BUTTER = fileURLToPath(new URL('../bin/butter', import.meta.url));

/** Runs the built CLI without blocking: a control plane answering it may live in this very process. */
export function runButter(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(BUTTER, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
