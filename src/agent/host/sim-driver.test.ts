import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmSpec } from './driver.ts';
import { SimDriver } from './sim-driver.ts';

const dir = mkdtempSync(join(tmpdir(), 'sim-driver-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function spec(id: string): VmSpec {
  return {
    id,
    name: `name-${id}`,
    cpus: 1,
    memoryMiB: 256,
    diskBytes: 1 << 30,
    boot: { kind: 'disk', disk: '/images/x.qcow2', format: 'qcow2' },
    nics: [],
    smbiosSerial: 'x',
  };
}

test('start/stop/destroy change state and write a console line', async () => {
  const d = new SimDriver({ stateDir: join(dir, 'a') });
  assert.equal(d.name, 'sim');
  await d.start(spec('vm-b'));
  await d.start(spec('vm-a'));
  await d.start(spec('vm-a')); // idempotent: no second boot line
  assert.deepEqual(await d.list(), [
    { id: 'vm-a', running: true },
    { id: 'vm-b', running: true },
  ]);
  assert.match(readFileSync(d.consoleLogPath('vm-a'), 'utf8'), /^\[sim\] \S+ name-vm-a \(vm-a\) booted: 1 vCPU, 256 MiB, no guest\n$/);
  await d.stop('vm-a', 1000);
  await d.stop('vm-a', 1000);
  assert.deepEqual(await d.list(), [
    { id: 'vm-a', running: false },
    { id: 'vm-b', running: true },
  ]);
  assert.match(readFileSync(d.consoleLogPath('vm-a'), 'utf8'), /powered off\n$/);
  await d.destroy('vm-a');
  assert.equal(existsSync(join(dir, 'a', 'vms', 'vm-a')), false);
  assert.deepEqual(await d.list(), [{ id: 'vm-b', running: true }]);
});

test('a restarted sim driver still has its VMs; in-memory mode persists nothing', async () => {
  const stateDir = join(dir, 'b');
  const first = new SimDriver({ stateDir });
  await first.start(spec('vm-1'));
  await first.start(spec('vm-2'));
  await first.stop('vm-2', 0);
  const second = new SimDriver({ stateDir });
  assert.deepEqual(await second.list(), [
    { id: 'vm-1', running: true },
    { id: 'vm-2', running: false },
  ]);

  const mem = new SimDriver({ stateDir: join(dir, 'c'), persist: false });
  await mem.start(spec('vm-1'));
  assert.deepEqual(await new SimDriver({ stateDir: join(dir, 'c'), persist: false }).list(), []);
  assert.equal(existsSync(join(dir, 'c', 'sim-vms.json')), false);
});

test('rejects ids that would escape the state dir', async () => {
  const d = new SimDriver({ stateDir: join(dir, 'd') });
  await assert.rejects(d.start(spec('../x')), /invalid VM id/);
});

// Like the agent's state: the table is what a real host's running QEMUs would be, lost in a
// torn file; the agent starts the VMs that should run again.
test('a torn or corrupt sim-vms.json is set aside with a warning naming it; the table starts empty', async () => {
  for (const [name, text] of Object.entries({ empty: '', truncated: '{"vm-1":{"running":tr', 'wrong shape': '{"vm-1":{"running":"yes"}}' })) {
    const stateDir = join(dir, `torn-${name.replace(' ', '-')}`);
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, 'sim-vms.json'), text);
    const warnings: string[] = [];
    const d = new SimDriver({ stateDir, log: (m) => warnings.push(m) });
    assert.deepEqual(await d.list(), [], name);
    assert.match(warnings.join('\n'), /sim-vms\.json is corrupt .*starting with no VMs/, name);
    assert.equal(readFileSync(join(stateDir, 'sim-vms.json.corrupt'), 'utf8'), text, name);
  }
});

test('data disks are recorded with the VM (across a restarted driver) and named on its console line', async () => {
  const stateDir = join(dir, 'disks');
  const d = new SimDriver({ stateDir });
  await d.start({ ...spec('vm-d'), dataDisks: [{ index: 1, sizeBytes: 16 << 20 }, { index: 2, sizeBytes: 1 << 30 }] });
  assert.match(readFileSync(d.consoleLogPath('vm-d'), 'utf8'), /booted: 1 vCPU, 256 MiB, data disks vdb 16M, vdc 1G, no guest\n$/);
  const again = new SimDriver({ stateDir });
  assert.deepEqual(again.dataDisks('vm-d'), [{ index: 1, sizeBytes: 16 << 20 }, { index: 2, sizeBytes: 1 << 30 }]);
  assert.deepEqual(again.dataDisks('nope'), []);
  await again.destroy('vm-d');
  assert.deepEqual(again.dataDisks('vm-d'), []);
});

test('failStart makes a start fail with its reason, as a broken image would; the VM does not run', async () => {
  const d = new SimDriver({ stateDir: join(dir, 'fail'), failStart: (s) => (s.name === 'name-bad' ? 'simulated boot failure' : undefined) });
  await assert.rejects(d.start(spec('bad')), /simulated boot failure/);
  await d.start(spec('good'));
  assert.deepEqual(await d.list(), [{ id: 'good', running: true }]);
});
