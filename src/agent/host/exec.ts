/**
 * The one door through which the agent runs system commands. Adapters take an `Exec`,
 * so unit tests hand them a `RecordingExec` and compare the commands with golden text.
 */
import { execFile, spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The exit status as a shell reports it: 127 not found, 128 + n when killed by signal n. */
  code: number;
  /** The signal that ended it, when one did (`code` alone cannot tell a kill from `exit 137`). */
  signal?: NodeJS.Signals;
  /** True when the runner's own timeout killed it. */
  timedOut?: boolean;
}

export interface ExecOptions {
  /** Text written to the command's standard input (e.g. an nft ruleset for `nft -f -`). */
  input?: string;
  /** When true a non-zero exit is returned, not thrown. */
  allowFail?: boolean;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface Exec {
  run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

export class ExecError extends Error {
  constructor(
    readonly cmd: string,
    readonly args: readonly string[],
    readonly result: ExecResult,
  ) {
    super(`${cmd} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'ExecError';
  }
}

/** Runs commands for real. */
export class SystemExec implements Exec {
  run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (opts.input === undefined) {
        execFile(
          cmd,
          args,
          { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 },
          (err, stdout, stderr) => {
            // A command that is not there exits 127, as a shell reports it (not a generic 1).
            // Killed (by the timeout, say): 128 + the signal's number, as a shell reports it.
            const code = err ? (typeof err.code === 'number' ? err.code : err.code === 'ENOENT' ? 127 : err.signal ? 128 + (constants.signals[err.signal] ?? 0) : 1) : 0;
            const result: ExecResult = { stdout, stderr, code, ...(err?.signal ? { signal: err.signal } : {}), ...(err?.killed ? { timedOut: true } : {}) };
            if (code !== 0 && !opts.allowFail) reject(new ExecError(cmd, args, result));
            else resolve(result);
          },
        );
        return;
      }
      // With input: spawn, since execFile cannot feed stdin. Same timeout, same exit codes.
      const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      // Our own timer, not spawn's `timeout`: that one is cleared only on 'exit', which a command
      // that could not start never emits, so it kept the process alive for the whole timeout.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
      }, opts.timeoutMs ?? 60_000);
      let stdout = '';
      let stderr = '';
      let settled = false;
      const settle = (result: ExecResult) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        if (result.code !== 0 && !opts.allowFail) reject(new ExecError(cmd, args, result));
        else resolve(result);
      };
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // Could not run at all (ENOENT → 127 as a shell says); 'close' may follow, settle once.
      child.on('error', (e: NodeJS.ErrnoException) => settle({ stdout, stderr: stderr || e.message, code: e.code === 'ENOENT' ? 127 : 1 }));
      // A command that exits before reading all its input closes the pipe: the write fails with
      // EPIPE. Without a handler that error is thrown and takes the whole daemon down; the
      // command's exit status (from 'close') is what counts.
      child.stdin.on('error', () => {});
      child.on('close', (code, signal) => {
        settle({ stdout, stderr, code: code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1), ...(signal ? { signal } : {}), ...(timedOut ? { timedOut: true } : {}) });
      });
      child.stdin.end(opts.input);
    });
  }
}

/** Records every command and answers from a script; for golden tests of adapters. */
export class RecordingExec implements Exec {
  readonly calls: { cmd: string; args: readonly string[]; input?: string }[] = [];
  constructor(private readonly answer: (cmd: string, args: readonly string[]) => Partial<ExecResult> = () => ({})) {}

  run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push(opts.input === undefined ? { cmd, args } : { cmd, args, input: opts.input });
    const a = this.answer(cmd, args);
    const result = { stdout: a.stdout ?? '', stderr: a.stderr ?? '', code: a.code ?? 0 };
    if (result.code !== 0 && !opts.allowFail) return Promise.reject(new ExecError(cmd, args, result));
    return Promise.resolve(result);
  }

  /** The recorded commands as shell-like lines, one per call. */
  lines(): string[] {
    return this.calls.map((c) => [c.cmd, ...c.args].join(' '));
  }
}
