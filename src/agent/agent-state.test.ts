import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentState } from './agent-state.ts';

test('what the agent started survives its restart, but not a host reboot', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-state-'));
  try {
    const boot = join(dir, 'boot_id');
    writeFileSync(boot, 'boot-1\n');
    const a = new AgentState(dir, boot);
    a.started('vm1', 3);
    assert.equal(a.markReady('vm1'), true);
    assert.equal(a.markReady('vm1'), false, 'ready once per run');
    await a.flush();

    const restarted = new AgentState(dir, boot);
    assert.deepEqual(restarted.applied, { vm1: { gen: 3 } });
    assert.equal(restarted.isReady('vm1'), true);

    writeFileSync(boot, 'boot-2\n');
    const rebooted = new AgentState(dir, boot);
    assert.deepEqual(rebooted.applied, {}, 'after a reboot the VMs are started again');
    assert.equal(rebooted.isReady('vm1'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restarts after a crash and the reason survive an agent restart, and a new generation clears them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-state-'));
  try {
    const boot = join(dir, 'boot_id');
    writeFileSync(boot, 'boot-1\n');
    const a = new AgentState(dir, boot);
    a.started('vm1', 2);
    a.restarting('vm1', 1000, 'restarted after crash (1)');
    a.started('vm1', 2); // the restart itself, same generation
    await a.flush();
    const again = new AgentState(dir, boot);
    assert.deepEqual(again.applied, { vm1: { gen: 2, restarts: [1000], note: 'restarted after crash (1)' } }, 'the backoff and the cap survive the agent');
    again.started('vm1', 3); // vm start
    assert.deepEqual(again.applied, { vm1: { gen: 3 } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The state is a cache of what this agent did: losing it costs what a host reboot costs (VMs
// that should run and are not running are started; running ones are adopted as they are),
// so a torn or corrupt file is set aside with a warning and the agent starts afresh.
test('a torn or corrupt agent-state.json is set aside with a warning naming it; the agent starts afresh', async () => {
  const cases: Record<string, string> = {
    empty: '',
    truncated: '{"applied":{"vm1":{"gen":3}},"rea',
    'wrong shape': '{"applied":{"vm1":{"gen":"three"}},"ready":{}}',
    'not an object': 'null',
  };
  for (const [name, text] of Object.entries(cases)) {
    const dir = mkdtempSync(join(tmpdir(), 'butter-state-'));
    try {
      const boot = join(dir, 'boot_id');
      writeFileSync(boot, 'boot-1\n');
      const file = join(dir, 'agent-state.json');
      writeFileSync(file, text);
      const warnings: string[] = [];
      const s = new AgentState(dir, boot, (m) => warnings.push(m));
      assert.deepEqual(s.applied, {}, name);
      assert.equal(warnings.length, 1, name);
      assert.match(warnings[0]!, new RegExp(`${file.replace(/[.]/g, '\\.')} is corrupt .*starting afresh`), name);
      assert.equal(readFileSync(`${file}.corrupt`, 'utf8'), text, `${name}: kept for a look`);
      s.started('vm2', 1);
      await s.flush();
      assert.deepEqual(new AgentState(dir, boot).applied, { vm2: { gen: 1 } }, `${name}: saved again`);
      assert.ok(existsSync(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

// Saves are asynchronous (an fsync on the event loop stalls every agent of `butter sim`) and
// coalesced; what a restarted agent reads after `flush` is the latest state, whole.
test('many changes in a row end on disk as the latest state, with no temp file left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-state-'));
  try {
    const boot = join(dir, 'boot_id');
    writeFileSync(boot, 'boot-1\n');
    const a = new AgentState(dir, boot);
    for (let i = 0; i < 40; i++) {
      a.started(`vm${i}`, 1);
      a.markReady(`vm${i}`);
      if (i % 5 === 0) await new Promise((r) => setImmediate(r));
    }
    a.forget('vm0');
    await a.flush();
    const again = new AgentState(dir, boot);
    assert.equal(Object.keys(again.applied).length, 39);
    assert.equal(again.applied.vm0, undefined, 'the last change landed last');
    assert.equal(again.isReady('vm39'), true);
    assert.deepEqual(readdirSync(dir).sort(), ['agent-state.json', 'boot_id']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed save is reported and the next change writes the whole state again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-state-'));
  try {
    const boot = join(dir, 'boot_id');
    writeFileSync(boot, 'boot-1\n');
    const warnings: string[] = [];
    const a = new AgentState(dir, boot, (m) => warnings.push(m));
    mkdirSync(join(dir, 'agent-state.json')); // a directory where the file goes: the rename fails
    a.started('vm1', 1);
    await a.flush();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /saving .*agent-state\.json failed/);
    rmSync(join(dir, 'agent-state.json'), { recursive: true });
    a.started('vm2', 1);
    await a.flush();
    assert.deepEqual(Object.keys(new AgentState(dir, boot).applied).sort(), ['vm1', 'vm2']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
