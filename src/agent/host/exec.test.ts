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

// `nft -f -` and the like: a command fed on stdin times out like the rest.
test('a command fed on stdin that never reads is killed by its timeout (128 + SIGTERM), not waited for', async () => {
  const r = await new SystemExec().run('sleep', ['5'], { allowFail: true, input: 'table inet t {}\n', timeoutMs: 200 });
  assert.equal(r.code, 143);
});

test('a missing command fed on stdin exits 127, as without input', async () => {
  const r = await new SystemExec().run('/nonexistent/butter-no-such-command', [], { allowFail: true, input: 'x\n' });
  assert.equal(r.code, 127);
});

// A command that could not start must not leave its timeout's timer behind: it would keep an
// agent's (or a test file's) process alive for the whole timeout after the last command ran.
test('a missing command fed on stdin leaves no timer running: nothing keeps the process alive after it', async () => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    import { SystemExec } from ${JSON.stringify(new URL('./exec.ts', import.meta.url).href)};
    const r = await new SystemExec().run('/nonexistent/butter-no-such-command', [], { allowFail: true, input: 'x\\n' });
    const ok = await new SystemExec().run('cat', [], { input: 'x\\n' });
    console.log(JSON.stringify({ code: r.code, out: ok.stdout, timers: process.getActiveResourcesInfo().filter((k) => k === 'Timeout') }));
    process.exit(0);
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, `the process died: ${child.stderr}`);
  assert.deepEqual(JSON.parse(child.stdout.trim()), { code: 127, out: 'x\n', timers: [] });
});

// A command that exits before reading its input closes the pipe: the write fails with EPIPE.
// That must be the command's result (or an ExecError), never an uncaught error that takes
// the agent down, so it runs in a child process of its own and must print its result.
test('a big input to a command that exits at once is a result, not a crash of the process', async () => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    import { SystemExec } from ${JSON.stringify(new URL('./exec.ts', import.meta.url).href)};
    const r = await new SystemExec().run('true', [], { allowFail: true, input: 'x'.repeat(8 << 20) });
    const failing = await new SystemExec().run('false', [], { input: 'x'.repeat(8 << 20) }).then(() => 'resolved', (e) => e.name);
    console.log(JSON.stringify({ code: r.code, failing }));
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, `the process died: ${child.stderr}`);
  const out = JSON.parse(child.stdout.trim()) as { code: number; failing: string };
  assert.equal(typeof out.code, 'number');
  assert.equal(out.failing, 'ExecError');
});

// The exit code alone cannot tell "killed" from "exited with that number": the result says which.
test('a killed command names its signal and whether the timeout killed it; one that exits 143 by itself does not', async () => {
  const sys = new SystemExec();
  for (const input of [undefined, 'x\n']) {
    const slow = await sys.run('sleep', ['5'], { allowFail: true, timeoutMs: 100, ...(input ? { input } : {}) });
    assert.deepEqual([slow.code, slow.signal, slow.timedOut], [143, 'SIGTERM', true], `input ${String(input)}`);
    const own = await sys.run('sh', ['-c', 'read x; exit 143'], { allowFail: true, input: 'x\n' });
    assert.deepEqual([own.code, own.signal, own.timedOut], [143, undefined, undefined]);
    const noInput = await sys.run('sh', ['-c', 'exit 137'], { allowFail: true });
    assert.deepEqual([noInput.code, noInput.signal, noInput.timedOut], [137, undefined, undefined]);
    const killed = await sys.run('sh', ['-c', 'kill -KILL $$'], { allowFail: true, ...(input ? { input } : {}) });
    assert.deepEqual([killed.code, killed.signal, killed.timedOut], [137, 'SIGKILL', undefined]);
  }
});
