import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.ts';
import type { Exec, ExecOptions, ExecResult } from '../agent/host/exec.ts';
import { SvgRenderer } from './graph-renderer.ts';

/** An Exec whose runs end only when the test says, with the result it gives. */
class GatedExec implements Exec {
  readonly calls: { cmd: string; args: readonly string[]; opts: ExecOptions }[] = [];
  private readonly ends: ((r: ExecResult) => void)[] = [];
  run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ cmd, args, opts });
    return new Promise((resolve) => this.ends.push(resolve));
  }
  end(i: number, r: Partial<ExecResult> = {}): void {
    this.ends[i]!({ stdout: '<svg/>', stderr: '', code: 0, ...r });
  }
}

const refused = (code: string, message: RegExp) => (e: unknown) => e instanceof ApiError && e.code === code && e.field === 'format' && message.test(e.message);

test('runs dot -Tsvg with the DOT on stdin and a deadline', async () => {
  const exec = new GatedExec();
  const p = new SvgRenderer(exec, { timeoutMs: 1234 }).svg('digraph {}');
  exec.end(0);
  assert.equal(await p, '<svg/>');
  assert.deepEqual(exec.calls, [{ cmd: 'dot', args: ['-Tsvg'], opts: { input: 'digraph {}', allowFail: true, timeoutMs: 1234 } }]);
});

test('no more than maxConcurrent drawings at once: one more is refused with too_many_requests (429), and taken again once one ends', async () => {
  const exec = new GatedExec();
  const r = new SvgRenderer(exec, { maxConcurrent: 2 });
  const a = r.svg('a');
  const b = r.svg('b');
  await assert.rejects(r.svg('c'), refused('too_many_requests', /drawing 2 graphs already/));
  assert.equal(exec.calls.length, 2);
  exec.end(0);
  await a;
  const d = r.svg('d');
  exec.end(1);
  exec.end(2);
  assert.deepEqual(await Promise.all([b, d]), ['<svg/>', '<svg/>']);
});

test('a failure frees its place too', async () => {
  const exec = new GatedExec();
  const r = new SvgRenderer(exec, { maxConcurrent: 1 });
  const a = r.svg('a');
  exec.end(0, { code: 1, stderr: 'syntax error' });
  await assert.rejects(a, /dot -Tsvg exited 1: syntax error/);
  const b = r.svg('b');
  exec.end(1);
  assert.equal(await b, '<svg/>');
});

test('not installed (127) and out of time are not_acceptable (406) naming format; another exit is a plain error (500, logged)', async () => {
  const exec = new GatedExec();
  const r = new SvgRenderer(exec, { timeoutMs: 5000 });
  const missing = r.svg('x');
  exec.end(0, { code: 127, stdout: '' });
  await assert.rejects(missing, refused('not_acceptable', /needs Graphviz's `dot`.*apt-get install graphviz/));
  const slow = r.svg('x');
  exec.end(1, { code: 137, signal: 'SIGTERM', timedOut: true, stdout: '' });
  await assert.rejects(slow, refused('not_acceptable', /within 5 s/));
  const broken = r.svg('x');
  exec.end(2, { code: 1, stderr: 'Error: syntax error in line 1' });
  await assert.rejects(broken, (e) => !(e instanceof ApiError) && /exited 1/.test((e as Error).message));
});
