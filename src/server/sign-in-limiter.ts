/**
 * Failed sign-ins (`POST /v1/sessions` with a token that is not one) per client address: after
 * `max` within `windowMs`, every sign-in from that address is refused (429) until the oldest
 * failure leaves the window, without the token being looked at. Tokens carry 192 random bits, so
 * guessing is hopeless anyway; this keeps a scripted guesser from costing the control plane
 * a lookup per try and shows up as refusals rather than silence. In memory: a restart forgets.
 */
export interface SignInLimiterOptions {
  max?: number;
  windowMs?: number;
  /** Most addresses remembered; the least recently failed go first (a spray of addresses cannot grow the map). */
  maxAddresses?: number;
  clock?: () => number;
}

export class SignInLimiter {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  private readonly clock: () => number;
  /** Failure times per address, oldest first; the map in order of each address's last failure. */
  private readonly failures = new Map<string, number[]>();

  constructor(opts: SignInLimiterOptions = {}) {
    this.max = opts.max ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxAddresses = opts.maxAddresses ?? 10_000;
    this.clock = opts.clock ?? Date.now;
  }

  private recent(address: string, now: number): number[] {
    const times = (this.failures.get(address) ?? []).filter((t) => t > now - this.windowMs);
    if (times.length === 0) this.failures.delete(address);
    return times;
  }

  /** Seconds until `address` may try again, or 0 when it may now. */
  retryAfter(address: string): number {
    const now = this.clock();
    const times = this.recent(address, now);
    if (times.length < this.max) return 0;
    return Math.max(1, Math.ceil((times[times.length - this.max]! + this.windowMs - now) / 1000));
  }

  fail(address: string): void {
    const now = this.clock();
    const times = [...this.recent(address, now), now].slice(-this.max);
    this.failures.delete(address);
    this.failures.set(address, times);
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
  }
}
