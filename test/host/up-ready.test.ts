// "Ready means ready", for real: `butter up` (QEMU driver, in a fresh network namespace) is
// probed the way a script would: go on as soon as /healthz answers, create a VM of the tiny
// image at once. The image is then still being built (images/tiny/build.sh takes seconds);
// the CLI waits for it instead of failing with "image tiny not found". /readyz turns 200 once
// the local agent reports and the image is added, and lists each check.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ButterInNetns } from './butter-cli.ts';
import { requires } from '../requires.ts';

const skip = requires(process.getuid?.() === 0, 'needs root (network namespaces, QEMU, nftables)');
let b: ButterInNetns | undefined;

before(async () => {
  if (skip) return;
  b = new ButterInNetns();
  await b.start(300_000, 'healthz');
});
after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(b?.upLog);
  await b?.cleanup();
});

test('a VM created as soon as /healthz answers waits for the tiny image; /readyz says when all is ready', { skip }, async () => {
  const butter = b!;
  const created = butter.cli(['vm', 'create', 'early', '--image', 'tiny', '--memory', '128M']);
  assert.equal(created.code, 0, `vm create right after /healthz: ${created.stderr}`);
  assert.match(created.stdout, /vm early created/);
  const images = JSON.parse(butter.ok(['image', 'list', '--json'])) as { name: string; status: string }[];
  assert.deepEqual(images.map((i) => [i.name, i.status]), [['tiny', 'ready']]);

  // Ready once the local agent has reported too (within a few heartbeats).
  const end = Date.now() + 60_000;
  let probe = butter.probe('/readyz');
  while (probe.status !== 200 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    probe = butter.probe('/readyz');
  }
  assert.equal(probe.status, 200, probe.body);
  assert.deepEqual(JSON.parse(probe.body), { ready: true, checks: [{ name: 'store', state: 'ok' }, { name: 'agent', state: 'ok' }, { name: 'image tiny', state: 'ok' }] });

  butter.ok(['vm', 'rm', 'early']);
  assert.deepEqual(JSON.parse(butter.ok(['vm', 'list', '--json'])), []);
});
