/**
 * What a test needs from the host (root, dnsmasq, a kernel image, IPv6). On a developer's
 * machine a missing requirement skips the test, with the reason; under `CI=true` it fails
 * instead, naming the reason: a CI run where the host tests quietly skip would pass while
 * testing nothing.
 */
import type { TestContext } from 'node:test';

type Env = Record<string, string | undefined>;

const inCi = (env: Env) => env.CI === 'true';

/** The value for a test's `skip` option: false when `ok`, else the reason (or, in CI, a throw). */
export function requires(ok: boolean, reason: string, env: Env = process.env): string | false {
  if (ok) return false;
  if (inCi(env)) throw new Error(`CI=true, so this test may not skip: ${reason}`);
  return reason;
}

/** The same, decided while a test runs: skips it (or, in CI, fails it) with the reason. */
export function cannotRun(t: Pick<TestContext, 'skip'>, reason: string, env: Env = process.env): void {
  if (requires(false, reason, env)) t.skip(reason);
}
