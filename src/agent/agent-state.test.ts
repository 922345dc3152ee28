import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentState } from './agent-state.ts';

test('what the agent started survives its restart, but not a host reboot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-state-'));
  try {
    const boot = join(dir, 'boot_id');
    writeFileSync(boot, 'boot-1\n');
    const a = new AgentState(dir, boot);
    a.started('vm1', 3);
    assert.equal(a.markReady('vm1'), true);
    assert.equal(a.markReady('vm1'), false, 'ready once per run');

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

test('restarts after a crash and the reason survive an agent restart, and a new generation clears them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'butter-state-'));
  try {
    const boot = join(dir, 'boot_id');
    writeFileSync(boot, 'boot-1\n');
    const a = new AgentState(dir, boot);
    a.started('vm1', 2);
    a.restarting('vm1', 1000, 'restarted after crash (1)');
    a.started('vm1', 2); // the restart itself, same generation
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
test('a torn or corrupt agent-state.json is set aside with a warning naming it; the agent starts afresh', () => {
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
      assert.deepEqual(new AgentState(dir, boot).applied, { vm2: { gen: 1 } }, `${name}: saved again`);
      assert.ok(existsSync(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
