/**
 * The host of a test file's tiny guests: one `butter up` (with the tiny image) in a fresh
 * namespace, started for the whole file, and the console probe those tests share. A host that
 * fails to start is cleaned up before the error is thrown, so the caller's `after` only needs
 * the host it got.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ButterInNetns } from './butter-cli.ts';

export interface TinyVmHost {
  b: ButterInNetns;
  /**
   * Types `probe` (a shell command whose output is `TAG-<answer>`) into the VM's console until
   * its answer shows in the logs; retyped while the guest's shell is not up yet. Returns the answer.
   */
  ask(vm: string, probe: (tag: string) => string, ms?: number): Promise<string>;
  /** Removes everything the host made (its log printed first with BUTTER_TEST_DEBUG). */
  close(): Promise<void>;
}

export async function tinyVmHost(): Promise<TinyVmHost> {
  const b = new ButterInNetns();
  const close = async () => {
    if (process.env.BUTTER_TEST_DEBUG) console.error(b.upLog);
    await b.cleanup();
  };
  try {
    await b.start();
  } catch (e) {
    await close();
    throw e;
  }
  return { b, ask: (vm, probe, ms) => ask(b, vm, probe, ms), close };
}

async function ask(b: ButterInNetns, vm: string, probe: (tag: string) => string, ms = 180_000): Promise<string> {
  const tag = `q${randomBytes(3).toString('hex')}`;
  const re = new RegExp(`^${tag}-(\\S*)\\r?$`, 'm');
  const end = Date.now() + ms;
  for (;;) {
    const r = b.cli(['vm', 'console', vm], `\n${probe(tag)}\n`);
    assert.equal(r.code, 0, r.stderr);
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      const m = re.exec(b.ok(['vm', 'logs', vm]));
      if (m) return m[1]!;
      await sleep(500);
    }
    if (Date.now() > end) throw new Error(`${vm} never answered ${probe(tag)}\n${b.ok(['vm', 'logs', vm]).slice(-2000)}`);
  }
}
