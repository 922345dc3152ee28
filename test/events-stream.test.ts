// GET /v1/events/stream against a real control plane: replay then live, filters, resuming
// across a restart, gap after pruning, access, bad input, a stalled reader, and the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event } from '../src/api/schemas/event.ts';
import { SseParser, type SseMessage } from '../src/core/sse.ts';
import { createControlPlane, type ControlPlane, type ControlPlaneOptions } from '../src/server/control-plane.ts';
import { Store } from '../src/server/store/store.ts';
import { ensureServerTls } from '../src/server/tls.ts';
import { Butter } from '../src/sdk/connect.ts';
import { Client } from '../src/sdk/client.ts';
import type { LiveEvent } from '../src/sdk/events.ts';
import { BUTTER, fakeNode, startTestCloud, until, uploadImage } from './helpers.ts';

const T = { timeout: 120_000 };

/** A control plane over HTTPS (HTTP/2 and HTTP/1.1) in `dir`, on `port` (0: any). */
async function httpsCloud(dir: string, port = 0, extra: Partial<ControlPlaneOptions> = {}): Promise<{ cp: ControlPlane; url: string; ca: string; port: number }> {
  const tls = await ensureServerTls(join(dir, 'cp'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  const cp = createControlPlane({ dataDir: join(dir, 'cp'), https: tls, ...extra });
  await cp.listen('127.0.0.1', port);
  const bound = (cp.http.server.address() as { port: number }).port;
  return { cp, url: `https://127.0.0.1:${bound}`, ca: tls.ca, port: bound };
}

/** Reads `it` until `done` says so; returns everything read. */
async function readUntil(it: AsyncIterator<LiveEvent>, done: (seen: LiveEvent[]) => boolean): Promise<LiveEvent[]> {
  const seen: LiveEvent[] = [];
  while (!done(seen)) {
    const r = await it.next();
    if (r.done) throw new Error(`the stream ended after ${JSON.stringify(seen)}`);
    seen.push(r.value);
  }
  return seen;
}

const isEvent = (x: LiveEvent): x is Event => !('gap' in x);
const has = (action: string, resource: string, name: string) => (seen: LiveEvent[]) => seen.some((e) => isEvent(e) && e.action === action && e.resource === resource && e.name === name);

/** The raw stream over HTTP/1.1 (Node's fetch), parsed, until `done`; then the connection is let go. */
async function rawMessages(url: string, token: string, done: (m: SseMessage[]) => boolean, headers: Record<string, string> = {}): Promise<SseMessage[]> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } });
  assert.equal(res.status, 200, await (res.ok ? Promise.resolve('') : res.text()));
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const out: SseMessage[] = [];
  while (!done(out)) {
    const { value, done: ended } = await reader.read();
    if (ended) throw new Error(`the stream ended after ${JSON.stringify(out)}`);
    out.push(...parser.push(decoder.decode(value, { stream: true })));
  }
  await reader.cancel();
  return out;
}

test('replay after a revision, then live, over HTTP/2; filtered by resource and name', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-events-'));
  const { cp, url, ca } = await httpsCloud(dir);
  const admin = new Butter({ url, token: cp.adminToken!, ca });
  try {
    await admin.call('createNetwork', { body: { name: 'blue', cidr: '10.50.0.0/24' } });
    const all = admin.events.stream({ since: 0 })[Symbol.asyncIterator]();
    const green = admin.events.stream({ since: 0, resource: 'network', name: 'green' })[Symbol.asyncIterator]();
    const replayed = await readUntil(all, has('create', 'network', 'blue'));
    await admin.call('createNetwork', { body: { name: 'green', cidr: '10.51.0.0/24' } });
    await admin.call('createToken', { body: { role: 'viewer', description: 'after green' } });
    const live = await readUntil(all, has('create', 'token', (await admin.call('listTokens', {})).items.find((t) => t.description === 'after green')!.id));
    const stored = (await admin.call('listEvents', { query: { limit: 1000 } })).items;
    assert.deepEqual([...replayed, ...live].map((e) => (e as Event).id), stored.map((e) => e.id), 'every stored event once, in order, replayed then live');
    const only = await readUntil(green, has('create', 'network', 'green'));
    assert.deepEqual(only.map((e) => [(e as Event).resource, (e as Event).name]), [['network', 'green']], 'the filter lets only network green through');
    await all.return?.();
    await green.return?.();
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every change the issue names is an audit event with its resource, seen live over HTTP/1.1', T, async () => {
  const cloud = await startTestCloud();
  try {
    const admin = new Butter({ url: cloud.url, token: cloud.cp.adminToken! });
    const it = admin.events.stream({ since: (await admin.call('health', {})).revision })[Symbol.asyncIterator]();
    await fakeNode(cloud, 'n1');
    await admin.call('createNetwork', { body: { name: 'blue', cidr: '10.50.0.0/24' } });
    await uploadImage(admin, 'img');
    await admin.call('createVm', { body: { name: 'web', image: 'img', memory: '256M', node: 'n1' } });
    await admin.call('createService', { body: { network: 'default', name: 'svc', blueprint: 'image: { name: img }\ninstance: { memory: 256M, cpus: 1, public_ip: true }\n' } });
    await admin.paths.add('10.0.0.0/8', 'svc', 80);
    await admin.call('createToken', { body: { role: 'viewer' } });
    const want = ['node', 'network', 'image', 'vm', 'service', 'path', 'token'];
    const seen = await readUntil(it, (s) => want.every((r) => s.some((e) => isEvent(e) && e.resource === r)));
    assert.ok(has('create', 'vm', 'web')(seen) && has('create', 'service', 'svc')(seen) && has('create', 'node', 'n1')(seen), JSON.stringify(seen));
    await it.return?.();
  } finally {
    await cloud.close();
  }
});

test('id only on the last message of a revision; Last-Event-ID wins over since and replays the whole revision', T, async () => {
  const cloud = await startTestCloud();
  try {
    const token = cloud.cp.adminToken!;
    const store = cloud.cp.services.store;
    const rev = store.write('test', (tx) => {
      for (const n of ['a', 'b', 'c']) tx.event('create', 'network', `multi-${n}`, `one of three in one revision`);
      return tx.revision;
    });
    const ofRev = (ms: SseMessage[]) => ms.filter((m) => m.event === 'audit' && (JSON.parse(m.data) as Event).revision === rev);
    const got = ofRev(await rawMessages(`${cloud.url}/v1/events/stream?since=0`, token, (ms) => ofRev(ms).length === 3));
    assert.deepEqual(got.map((m) => m.id), [undefined, undefined, String(rev)]);
    // since=0 would replay everything; Last-Event-ID (before the revision) wins.
    const resumed = await rawMessages(`${cloud.url}/v1/events/stream?since=0`, token, (ms) => ofRev(ms).length === 3, { 'last-event-id': String(rev - 1) });
    const audit = resumed.filter((m) => m.event === 'audit').map((m) => JSON.parse(m.data) as Event);
    assert.deepEqual(audit.map((e) => e.name), ['multi-a', 'multi-b', 'multi-c'], 'from the revision after Last-Event-ID, all of it');
  } finally {
    await cloud.close();
  }
});

test('resuming with Last-Event-ID across a control-plane restart loses nothing and repeats nothing', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-events-'));
  let { cp, url, ca, port } = await httpsCloud(dir);
  const token = cp.adminToken!;
  let admin = new Butter({ url, token, ca });
  const reconnects: unknown[] = [];
  const since = (await admin.call('health', {})).revision;
  const it = admin.events.stream({ since, minDelayMs: 50, maxDelayMs: 200, onReconnect: (why) => reconnects.push(why) })[Symbol.asyncIterator]();
  try {
    await admin.call('createNetwork', { body: { name: 'before', cidr: '10.60.0.0/24' } });
    const seen = await readUntil(it, has('create', 'network', 'before'));
    // The stream is open (HTTP/2) while the control plane stops: close() ends it, it does not wait.
    await cp.close();
    // Changes the client cannot see as they happen: one revision of three events, written to
    // the same database while the control plane is down.
    const offline = new Store(join(dir, 'cp', 'butter.db'));
    const multi = offline.write('test', (tx) => {
      for (const n of ['x', 'y', 'z']) tx.event('create', 'network', `offline-${n}`, 'one of three in one revision');
      return tx.revision;
    });
    offline.close();
    ({ cp, url, ca, port } = await httpsCloud(dir, port));
    admin = new Butter({ url, token, ca });
    await admin.call('createNetwork', { body: { name: 'after', cidr: '10.61.0.0/24' } });
    seen.push(...(await readUntil(it, has('create', 'network', 'after'))));
    const stored = (await admin.call('listEvents', { query: { sinceRevision: since, limit: 1000 } })).items;
    assert.deepEqual(seen.map((e) => (e as Event).id), stored.map((e) => e.id), 'each event exactly once, in order');
    assert.deepEqual(seen.filter((e) => (e as Event).revision === multi).map((e) => (e as Event).name), ['offline-x', 'offline-y', 'offline-z']);
    assert.ok(reconnects.length >= 1, 'it did reconnect');
  } finally {
    await it.return?.();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a client from before the pruned events first gets a gap; one after them does not', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-events-'));
  const opts = { dataDir: dir, eventRetention: { maxAgeDays: 30, maxCount: 3 } };
  let cp = createControlPlane(opts);
  const token = cp.adminToken!;
  try {
    let url = await cp.listen('127.0.0.1', 0);
    const admin = new Client({ url, token });
    for (let i = 0; i < 6; i++) await admin.call('createToken', { body: { role: 'viewer', description: `t${i}` } });
    await cp.close();
    cp = createControlPlane(opts); // prunes at start: the newest three stay
    url = await cp.listen('127.0.0.1', 0);
    const kept = (await new Client({ url, token }).call('listEvents', {})).items;
    assert.equal(kept.length, 3);
    const oldest = kept[0]!.revision;
    const first = await rawMessages(`${url}/v1/events/stream?since=0`, token, (ms) => ms.some((m) => m.event === 'audit'));
    assert.equal(first[0]!.event, 'gap');
    assert.deepEqual(JSON.parse(first[0]!.data), { from: 0, oldest });
    assert.deepEqual(first.filter((m) => m.event === 'audit').map((m) => (JSON.parse(m.data) as Event).id).slice(0, 1), [kept[0]!.id], 'then what is kept');
    const after = await rawMessages(`${url}/v1/events/stream?since=${oldest}`, token, (ms) => ms.some((m) => m.event === 'audit'));
    assert.deepEqual(after.map((m) => m.event).filter((e) => e === 'gap'), [], 'nothing after it was pruned');
    // The SDK hands the gap on, so a panel knows to reload.
    const it = new Butter({ url, token }).events.stream({ since: 0 })[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value, { gap: { from: 0, oldest } });
    await it.return?.();
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a viewer may follow the events; a node token may not (403), nor anyone without a token (401)', T, async () => {
  const cloud = await startTestCloud();
  try {
    const viewer = (await cloud.admin.call('createToken', { body: { role: 'viewer' } })).secret;
    const { token: nodeToken } = await cloud.admin.call('createNode', { body: { name: 'n1' } });
    const status = async (headers: Record<string, string>) => {
      const res = await fetch(`${cloud.url}/v1/events/stream`, { headers });
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await status({ authorization: `Bearer ${viewer}` }), 200);
    assert.equal(await status({ authorization: `Bearer ${nodeToken}` }), 403);
    assert.equal(await status({}), 401);
    await assert.rejects(new Butter({ url: cloud.url, token: nodeToken }).events.stream()[Symbol.asyncIterator]().next(), (e: { status?: number }) => e.status === 403, 'the SDK gives up on a refusal: no retry can change it');
  } finally {
    await cloud.close();
  }
});

test('a HEAD of the stream, or a client that went away, leaves no stream open on the server', T, async () => {
  const cloud = await startTestCloud();
  try {
    const auth = { authorization: `Bearer ${cloud.cp.adminToken}` };
    const head = await fetch(`${cloud.url}/v1/events/stream`, { method: 'HEAD', headers: auth });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
    const ac = new AbortController();
    const res = await fetch(`${cloud.url}/v1/events/stream`, { headers: auth, signal: ac.signal });
    await res.body!.getReader().read();
    assert.equal(cloud.cp.services.events.size, 1, 'the GET is subscribed, the HEAD is not');
    ac.abort();
    await until('the server lets go of the stream', async () => (cloud.cp.services.events.size === 0 ? true : undefined));
  } finally {
    await cloud.close();
  }
});

test('an idle stream carries a keepalive comment', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-events-'));
  const cp = createControlPlane({ dataDir: dir, eventStream: { keepaliveMs: 20 } });
  try {
    const url = await cp.listen('127.0.0.1', 0);
    const res = await fetch(`${url}/v1/events/stream`, { headers: { authorization: `Bearer ${cp.adminToken}` } });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(': keepalive\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    assert.deepEqual(new SseParser().push(text), [], 'comments and an id only: nothing dispatched');
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input is a 400 naming the field', T, async () => {
  const cloud = await startTestCloud();
  try {
    const refusal = async (query: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${cloud.url}/v1/events/stream${query}`, { headers: { authorization: `Bearer ${cloud.cp.adminToken}`, ...headers } });
      const body = (await res.json()) as { error: { code: string; field?: string } };
      return [res.status, body.error.field];
    };
    assert.deepEqual(await refusal('?resource=bogus'), [400, 'query.resource']);
    assert.deepEqual(await refusal('?since=-1'), [400, 'query.since']);
    assert.deepEqual(await refusal('?name=Not_A_Name'), [400, 'query.name']);
    assert.deepEqual(await refusal('?color=red'), [400, 'query']);
    assert.deepEqual(await refusal('', { 'last-event-id': 'yesterday' }), [400, 'Last-Event-ID']);
  } finally {
    await cloud.close();
  }
});

test('a client that stops reading is dropped with a log line once its unsent bytes pass the cap', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-events-'));
  const warnings: { obj: object; msg: string }[] = [];
  const log = { error: () => {}, warn: (obj: object, msg: string) => void warnings.push({ obj, msg }) };
  const { cp, url, ca } = await httpsCloud(dir, 0, { log, eventStream: { maxBufferedBytes: 64 * 1024 } });
  const session = http2.connect(url, { ca });
  const open = async () => {
    const stream = session.request({ ':path': '/v1/events/stream', authorization: `Bearer ${cp.adminToken}` });
    assert.equal(await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status'])))), 200);
    return stream;
  };
  try {
    // One client reads everything; the other never reads: HTTP/2 flow control stops the
    // server's sending to it once its window is full, and the rest piles up on the server.
    const reader = await open();
    let read = 0;
    reader.on('data', (d: Buffer) => (read += d.length));
    const stalled = await open();
    stalled.pause();
    const closed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
    const store = cp.services.store;
    let written = 0;
    for (let i = 0; i < 2000 && cp.services.events.size > 1; i++) {
      store.write('test', (tx) => tx.event('create', 'network', `big-${i}`, 'x'.repeat(4096)));
      written += 4096;
      await new Promise((r) => setTimeout(r, 2)); // a reading client keeps up
    }
    assert.equal(cp.services.events.size, 1, `one stream was dropped (${written} bytes of messages written)`);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    await until('the reader has read what was written', async () => (read >= written ? true : undefined));
    assert.match(warnings[0]!.msg, /event stream dropped: its client stopped reading/);
    assert.ok((warnings[0]!.obj as { bufferedBytes: number }).bufferedBytes > 64 * 1024);
    stalled.resume(); // reading again, it finds its stream ended
    await closed;
  } finally {
    session.destroy();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`butter events --follow --json` prints a VM create as it happens, one JSON per line', T, async () => {
  const cloud = await startTestCloud();
  const child = spawn(BUTTER, ['events', '--follow', '--json', '--resource', 'vm'], { env: { ...process.env, XDG_CONFIG_HOME: join(cloud.dir, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! } });
  try {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    await fakeNode(cloud, 'n1');
    await uploadImage(cloud.admin, 'img');
    // The CLI may not be connected yet: create until it shows one (each has its own name).
    let n = 0;
    const line = await until('the CLI prints a vm create', async () => {
      const shown = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
      const hit = shown.find((e) => e.action === 'create' && e.resource === 'vm');
      if (!hit) await cloud.admin.call('createVm', { body: { name: `web-${n++}`, image: 'img', memory: '256M', node: 'n1' } });
      return hit;
    }, 60_000, 500).catch((e: unknown) => assert.fail(`${String(e)}; stderr: ${stderr}`));
    assert.match(line.name, /^web-\d+$/);
    assert.ok(stdout.split('\n').filter(Boolean).every((l) => (JSON.parse(l) as Event).resource === 'vm'), 'only VM events, each line one JSON');
  } finally {
    child.kill('SIGTERM');
    await cloud.close();
  }
});

test('`butter events` without --follow: the newest events as a table, --json, and usage errors exit 2', T, async () => {
  const cloud = await startTestCloud();
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(BUTTER, ['events', ...args], { env: { ...process.env, XDG_CONFIG_HOME: join(cloud.dir, 'cfg'), BUTTER_URL: cloud.url, BUTTER_TOKEN: cloud.cp.adminToken! } });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d));
      c.stderr.on('data', (d: Buffer) => (stderr += d));
      c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  try {
    for (let i = 0; i < 4; i++) await cloud.admin.call('createToken', { body: { role: 'viewer', description: `t${i}` } });
    const all = (await cloud.admin.call('listEvents', {})).items;
    const json = await run(['--json', '--limit', '2']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as Event[]).map((e) => e.id), all.slice(-2).map((e) => e.id), 'the newest two, oldest first');
    const table = await run(['--resource', 'network']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^REV\s+AT\s+ACTOR\s+ACTION\s+RESOURCE\s+NAME\s+MESSAGE/);
    assert.match(table.stdout, /create\s+network\s+default/);
    assert.doesNotMatch(table.stdout, /token/);
    const since = await run(['--json', '--since', String(all.at(-2)!.revision)]);
    assert.deepEqual((JSON.parse(since.stdout) as Event[]).map((e) => e.id), [all.at(-1)!.id]);
    const bad = await run(['--resource', 'bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /resource: must be one of vm, node/);
    assert.equal((await run(['--since', 'x'])).code, 2);
  } finally {
    await cloud.close();
  }
});
