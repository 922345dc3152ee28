// "Ready means ready": the real `butter up` (control plane over HTTPS, local agent with the
// simulated driver) answers /healthz at once but /readyz only when the store is open, the
// local agent has reported and the tiny image is added. While the image is built, `image list`
// shows it `building` and creating a VM from it is refused with a 409 that says so. The build
// itself is held by the test (the real one is images/tiny/build.sh, run by the host tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { runUp } from '../src/daemon/up.ts';
import { ButterError, Client } from '../src/sdk/node-client.ts';

/** Polls `f` until it returns a value, for at most `ms` (a bound on hanging, not a speed check). */
async function until<T>(ms: number, what: string, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A stand-in for build.sh's output: the simulated driver never boots it. */
function fakeTiny(dir: string) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinuz'), 'kernel bytes\n');
  writeFileSync(join(dir, 'initrd.img'), 'initrd bytes\n');
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), cmdline: 'console=ttyS0' };
}

async function startUp(build: (outDir: string) => Promise<{ kernel: string; initrd: string; cmdline: string }>) {
  const dir = mkdtempSync(join(tmpdir(), 'butter-ready-'));
  process.env.XDG_CONFIG_HOME = join(dir, 'config');
  const port = await freePort();
  const dataDir = join(dir, 'data');
  const log = pino({ level: process.env.BUTTER_TEST_DEBUG ? 'info' : 'silent' });
  const up = runUp({ dataDir, host: '127.0.0.1', port, driver: 'sim', noEgress: true, tiny: true, mesh: false, log, tinyBuild: build });
  up.catch(() => {}); // awaited by the test; this only keeps an early failure from going unhandled
  const url = `https://127.0.0.1:${port}`;
  // Up as soon as the certificate and the admin token are written and /healthz answers.
  const admin = await until(30_000, 'butter up answers /healthz', async () => {
    const c = new Client({ url, token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(), ca: readFileSync(join(dataDir, 'tls', 'ca.crt'), 'utf8') });
    await c.call('health', {});
    return c;
  });
  return { dir, up, admin };
}

const check = (r: { checks: { name: string; state: string; detail?: string }[] }, name: string) => r.checks.find((c) => c.name === name);

test('while tiny is built: /healthz answers, /readyz is 503 naming the image, image list shows it building, vm create is refused saying so', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const { dir, up, admin } = await startUp(async (outDir) => {
    await held;
    return fakeTiny(outDir);
  });
  try {
    const building = await until(30_000, 'readyz names the tiny image as being built', async () => {
      const r = await admin.call('ready', {});
      return check(r, 'image tiny')?.detail?.includes('being built') ? r : undefined;
    });
    assert.equal(building.ready, false);
    assert.equal(check(building, 'store')?.state, 'ok');
    assert.equal(check(building, 'image tiny')?.state, 'waiting');

    const images = (await admin.call('listImages', {})).items;
    assert.deepEqual(images.map((i) => [i.name, i.status]), [['tiny', 'building']]);
    assert.equal((await admin.call('getImage', { params: { name: 'tiny' } })).status, 'building');

    const refused = await admin.call('createVm', { body: { name: 'early', image: 'tiny' } }).then(
      () => assert.fail('a VM of an image still being built was created'),
      (e: unknown) => e,
    );
    assert.ok(refused instanceof ButterError);
    assert.equal(refused.status, 409);
    assert.equal(refused.field, 'image');
    assert.match(refused.message, /image tiny is being built/);
    assert.deepEqual((await admin.call('listVms', {})).items, [], 'nothing half-made');

    release();
    const stop = await up;
    try {
      const ready = await admin.call('ready', {});
      assert.equal(ready.ready, true, JSON.stringify(ready.checks));
      assert.deepEqual(ready.checks.map((c) => [c.name, c.state]), [['store', 'ok'], ['agent', 'ok'], ['image tiny', 'ok']]);
      const tiny = await admin.call('getImage', { params: { name: 'tiny' } });
      assert.equal(tiny.status, 'ready');
      assert.match(tiny.sha256 ?? '', /^[0-9a-f]{64}$/);
      const vm = await admin.call('createVm', { body: { name: 'early', image: 'tiny', memory: '128M' } });
      assert.equal(vm.image, 'tiny');
    } finally {
      await stop();
    }
  } finally {
    release();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tiny build that fails leaves /readyz at 503 with the image check failed, and no image', async () => {
  const { dir, up, admin } = await startUp(async () => {
    throw new Error('no kernel in /boot');
  });
  const stop = await up;
  try {
    const r = await admin.call('ready', {});
    assert.equal(r.ready, false);
    assert.equal(check(r, 'image tiny')?.state, 'failed');
    assert.match(check(r, 'image tiny')?.detail ?? '', /build failed/);
    assert.deepEqual((await admin.call('listImages', {})).items, []);
    await assert.rejects(admin.call('createVm', { body: { name: 'x', image: 'tiny' } }), (e: ButterError) => e.status === 404 && /image tiny not found/.test(e.message));
  } finally {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('once added, a startup image stays a passed check: removing it later does not make Butter unready', async () => {
  const { dir, up, admin } = await startUp(async (outDir) => fakeTiny(outDir));
  const stop = await up;
  try {
    assert.equal((await admin.call('ready', {})).ready, true);
    await admin.call('deleteImage', { params: { name: 'tiny' } });
    const r = await admin.call('ready', {});
    assert.equal(r.ready, true, JSON.stringify(r.checks));
  } finally {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
