// Issue 12, item 3, for real: `butter up` in a namespace and tiny guests under real QEMU. A
// QEMU killed with SIGKILL is not a guest that powered off: an `on-failure` VM (the default)
// comes back and says why, a guest poweroff stays off, and `--restart never` stays off too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ButterInNetns } from './butter-cli.ts';
import { QmpClient } from '../../src/agent/host/qmp.ts';
import { WATCH_WAIT_S } from '../../src/agent/agent.ts';

let b: ButterInNetns;

before(async () => {
  b = new ButterInNetns();
  await b.start();
});
after(async () => {
  if (process.env.BUTTER_TEST_DEBUG) console.error(b?.upLog);
  await b?.cleanup();
});

interface ShownVm {
  id: string;
  state: string;
  reason: string | null;
  power: string;
  restart: string;
}

const show = (name: string): ShownVm => JSON.parse(b.ok(['vm', 'show', name, '--json'])) as ShownVm;

/** The QEMU processes of one VM (its id is in QEMU's `-name` and paths). */
const qemuOf = (id: string) => b.processes().filter((p) => p.cmd.includes('qemu-system') && p.cmd.includes(id));

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 180_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`never: ${what}\n${b.upLog.slice(-3000)}`);
    await sleep(500);
  }
}

/** The audit log, as an admin reads it (`GET /v1/events`). */
function events(vm: string): string[] {
  const token = readFileSync(join(b.dataDir, 'admin.token'), 'utf8').trim();
  const r = b.sh('curl', ['-sk', '-H', `authorization: Bearer ${token}`, `https://127.0.0.1:${b.port}/v1/events?limit=1000`]);
  assert.equal(r.code, 0, r.stderr);
  const all = (JSON.parse(r.stdout) as { items: { resource: string; name: string; message: string }[] }).items;
  return all.filter((e) => e.resource === 'vm' && e.name === vm).map((e) => e.message);
}

/** Long enough for the agent to have looked again (its drift check runs at least every WATCH_WAIT_S). */
const oneMorePass = () => sleep((WATCH_WAIT_S + 6) * 1000);

function create(name: string, ...more: string[]): ShownVm {
  b.ok(['vm', 'create', name, '--image', 'tiny', '--memory', '128M', '--disk', '1G', '--wait', ...more]);
  return show(name);
}

test('kill -9 of the QEMU of an on-failure VM (the default): it comes back, and vm show and the audit log say why', async () => {
  const vm = create('crashy');
  const [first] = qemuOf(vm.id);
  assert.ok(first, 'its QEMU runs');
  process.kill(first.pid, 'SIGKILL');
  const back = await until('the killed VM runs again in a new QEMU', () => {
    const q = qemuOf(vm.id);
    const s = show('crashy');
    return q.length === 1 && q[0]!.pid !== first.pid && s.state === 'running' ? s : undefined;
  });
  assert.match(back.reason ?? '', /restarted after crash \(1\)/);
  assert.match(back.reason ?? '', /qemu was killed/);
  assert.ok(events('crashy').some((m) => /restarted after crash \(1\)/.test(m)), `audit log: ${events('crashy').join(' | ')}`);
  assert.equal(back.restart, 'on-failure', 'on-failure is the default');
  b.ok(['vm', 'rm', 'crashy']);
});

test('a guest poweroff is not a crash: the VM stays stopped, with the reason guest poweroff', async () => {
  const vm = create('quitter');
  // The guest itself powers off, from its serial console.
  const typed = b.cli(['vm', 'console', 'quitter'], '\npoweroff -f\n');
  assert.equal(typed.code, 0, typed.stderr);
  const off = await until('the VM is stopped after its guest powered off', () => {
    const s = show('quitter');
    return s.state === 'stopped' ? s : undefined;
  });
  assert.equal(off.power, 'running', 'nobody asked for a stop');
  assert.equal(off.reason, 'guest poweroff');
  await oneMorePass();
  assert.deepEqual(qemuOf(vm.id), [], 'no QEMU left: the agent quit the one -no-shutdown kept');
  const later = show('quitter');
  assert.equal(later.state, 'stopped', 'a guest poweroff is not restarted');
  assert.equal(later.reason, 'guest poweroff');
  assert.ok(events('quitter').some((m) => /guest poweroff/.test(m)), `audit log: ${events('quitter').join(' | ')}`);
  // vm start brings it back, as before.
  b.ok(['vm', 'start', 'quitter']);
  assert.equal(show('quitter').state, 'running');
  b.ok(['vm', 'rm', 'quitter']);
});

test('--restart never: a killed QEMU stays stopped, and says it was killed', async () => {
  const vm = create('fragile', '--restart', 'never');
  assert.equal(vm.restart, 'never');
  const [q] = qemuOf(vm.id);
  assert.ok(q, 'its QEMU runs');
  process.kill(q.pid, 'SIGKILL');
  const off = await until('the killed VM is reported stopped', () => {
    const s = show('fragile');
    return s.state === 'stopped' ? s : undefined;
  });
  assert.match(off.reason ?? '', /qemu was killed/);
  await oneMorePass();
  assert.deepEqual(qemuOf(vm.id), [], 'not restarted');
  assert.equal(show('fragile').state, 'stopped');
  b.ok(['vm', 'rm', 'fragile']);
});

test('what happened while the agent was down is told apart too: a poweroff stays stopped, a kill is restarted', async () => {
  const off = create('calm');
  const hit = create('hit');
  const [q] = qemuOf(hit.id);
  assert.ok(q, 'its QEMU runs');
  await b.kill(); // the agent (butter up), SIGKILL: no cleanup, no QMP connection survives
  // The ACPI power button, pressed straight on QEMU's monitor: the tiny guest's acpid powers off.
  const qmp = await QmpClient.connect(join(b.dataDir, 'agent', 'vms', off.id, 'qmp.sock'));
  try {
    await qmp.execute('system_powerdown');
    await until('the guest shut down (QEMU kept by -no-shutdown, in run state shutdown)', async () => ((await qmp.execute('query-status')) as { status: string }).status === 'shutdown' || undefined);
  } finally {
    qmp.close();
  }
  process.kill(q.pid, 'SIGKILL');
  await b.start();
  const back = await until('the VM killed while the agent was down runs again', () => {
    const s = show('hit');
    const p = qemuOf(hit.id);
    return s.state === 'running' && p.length === 1 && p[0]!.pid !== q.pid ? s : undefined;
  });
  assert.match(back.reason ?? '', /restarted after crash \(1\): qemu was killed/);
  const stopped = await until('the VM whose guest powered off is stopped', () => {
    const s = show('calm');
    return s.state === 'stopped' ? s : undefined;
  });
  assert.equal(stopped.reason, 'guest poweroff');
  await oneMorePass();
  assert.equal(show('calm').state, 'stopped');
  assert.deepEqual(qemuOf(off.id), []);
  for (const name of ['calm', 'hit']) b.ok(['vm', 'rm', name]);
});
