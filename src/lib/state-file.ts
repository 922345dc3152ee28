/**
 * Reading a JSON state file the daemons wrote. Files written by `writeFileAtomic` are never
 * torn, but one left by an older version, a full disk, a bad disk or a hand edit may be empty,
 * cut short or of the wrong shape: that is a `CorruptStateError` naming the file and why, for
 * the caller to turn into advice (rejoin, or start afresh) instead of a stack trace.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

export class CorruptStateError extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path} is corrupt (${why})`);
    this.name = 'CorruptStateError';
  }
}

/**
 * The file's content checked by `check` (which throws, with a short reason, on the wrong
 * shape), or undefined when there is no file. Any other read error (EACCES, EIO) is thrown
 * as it is: the file may be fine, and removing it would lose it.
 */
export function readJsonState<T>(path: string, check: (v: unknown) => T): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (text.trim() === '') throw new CorruptStateError(path, 'empty');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CorruptStateError(path, `not JSON: ${(e as Error).message}`);
  }
  try {
    return check(v);
  } catch (e) {
    throw new CorruptStateError(path, (e as Error).message.split('\n')[0]!);
  }
}

/** A `check` for `readJsonState` from a zod schema: the reason names each bad field. */
export function checkWith<T>(schema: z.ZodType<T>): (v: unknown) => T {
  return (v) => {
    const r = schema.safeParse(v);
    if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.') || 'the file'}: ${i.message}`).join('; '));
    return r.data;
  };
}
