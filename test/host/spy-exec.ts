/**
 * Passes every command through to a real `Exec` and records it as a shell-like line, so a host
 * test can check what an adapter ran (e.g. that an unchanged input loads no table) while the
 * commands still run for real. (`RecordingExec` in src/agent/host/exec.ts scripts answers instead.)
 */
import type { Exec, ExecOptions, ExecResult } from '../../src/agent/host/exec.ts';

export class SpyExec implements Exec {
  lines: string[] = [];
  constructor(private readonly inner: Exec) {}
  run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    this.lines.push([cmd, ...args].join(' '));
    return this.inner.run(cmd, args, opts);
  }
}
