/**
 * A bounded wait: `p`, or a failure naming `what` once `ms` have passed. Tests use it with a
 * deadline far beyond the expected time (a bound on hanging, not a speed check: speed is the
 * benchmark's job). The real setTimeout is kept at load, so tests that mock timers still get
 * their deadline.
 */
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = realSetTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    realClearTimeout(timer);
  }
}
