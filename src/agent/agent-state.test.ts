import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
