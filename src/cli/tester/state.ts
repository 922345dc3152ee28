/**
 * What `butter test DIR deploy` leaves for `check` and `cleanup`: DIR/.butter/test-state.json,
 * written before anything is made (the network's name first), so a crash or a Ctrl-C at any
 * point leaves a file that `cleanup` can finish from. Atomic (lib/atomic-file.ts): a reader
 * sees the old state or the new.
 */
import { mkdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../lib/atomic-file.ts';
import { checkWith, readJsonState } from '../../lib/state-file.ts';

export const TestState = z.object({
  /** The throwaway network, and everything the test made is in it. */
  network: z.string(),
  cidr: z.string(),
  /** The service under test. */
  service: z.string(),
  /** `deploying` until the service under test runs and `setupAfterTestedService` returned. */
  phase: z.enum(['deploying', 'deployed']),
  setupInfo: z.object({ deploymentInfo: z.record(z.string(), z.unknown()), blueprintVars: z.record(z.string(), z.unknown()) }).optional(),
  createdAt: z.string(),
});
export type TestState = z.infer<typeof TestState>;

export const stateDir = (dir: string) => join(dir, '.butter');
export const stateFile = (dir: string) => join(stateDir(dir), 'test-state.json');

export function readState(dir: string): TestState | undefined {
  return readJsonState(stateFile(dir), checkWith(TestState));
}

export function writeState(dir: string, s: TestState): void {
  mkdirSync(stateDir(dir), { recursive: true, mode: 0o700 });
  writeFileAtomic(stateFile(dir), JSON.stringify(s, null, 2) + '\n', 0o600);
}

/** Removes the state file, and DIR/.butter when nothing else is in it. */
export function clearState(dir: string): void {
  rmSync(stateFile(dir), { force: true });
  try {
    rmdirSync(stateDir(dir));
  } catch {
    // not empty (something of the user's), or already gone
  }
}
