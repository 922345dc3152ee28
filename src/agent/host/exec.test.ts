import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SystemExec } from './exec.ts';

// Exit codes as a shell reports them: callers tell "could not run" and "was killed" from a
// command's own failure by them (core/image-check.ts `couldNotInspect`).
test('a missing command exits 127 and one killed by its timeout 128 + SIGTERM, with or without input', async () => {
  const sys = new SystemExec();
  assert.equal((await sys.run('/nonexistent/butter-no-such-command', [], { allowFail: true })).code, 127);
  assert.equal((await sys.run('sleep', ['5'], { allowFail: true, timeoutMs: 100 })).code, 143);
  assert.equal((await sys.run('false', [], { allowFail: true })).code, 1);
  // It reads its input first: a write to a process already gone is another matter (EPIPE).
  const killed = sys.run('sh', ['-c', 'read x; kill -KILL $$'], { allowFail: true, input: 'x\n' });
  assert.equal((await killed).code, 137);
});
