/**
 * What an agent knows of its link to the control plane, and the one log line each change of it
 * deserves. Attempts fail every few seconds through an outage; only the changes
 * (connected → unreachable → connected) are news, so only they are logged, with the error
 * that caused them. Pure: the caller logs the line and waits `backoffDelay(failures)`.
 */
export type LinkState = 'starting' | 'connected' | 'unreachable' | 'untrusted' | 'rejected';

/** Why an attempt failed: no answer (network, 502–504), a certificate the pinned CA did not sign, or our token refused (401/403). */
export type LinkFailure = 'unreachable' | 'untrusted' | 'rejected';

export class ControlPlaneLink {
  state: LinkState = 'starting';
  /** Failed attempts since the last success: the backoff's exponent. */
  failures = 0;

  /**
   * @param where the control plane's URL, for the lines
   * @param hint what a user can do when the control plane refuses this node (which file to remove, which command to run)
   */
  constructor(
    private readonly where: string,
    private readonly hint = '',
    private readonly maxWaitS = 30,
  ) {}

  /** An attempt got an answer; the line to log, if this is news. */
  succeeded(): string | undefined {
    const was = this.state;
    const failed = this.failures;
    this.state = 'connected';
    this.failures = 0;
    if (was === 'connected') return undefined;
    if (was === 'starting') return `connected to the control plane at ${this.where}`;
    return `control plane reachable again at ${this.where} after ${failed} failed attempt${failed === 1 ? '' : 's'}`;
  }

  /** An attempt failed; the line to log, if this is news. */
  failed(kind: LinkFailure, reason: string): string | undefined {
    this.failures++;
    if (this.state === kind) return undefined;
    this.state = kind;
    const retry = `retrying with backoff (at most ${this.maxWaitS} s apart); running VMs are left alone`;
    const hint = this.hint ? `. ${this.hint}` : '';
    if (kind === 'unreachable') return `control plane unreachable at ${this.where}: ${reason}; ${retry}`;
    if (kind === 'untrusted') return `control plane at ${this.where} presents a certificate this node does not trust: ${reason}; ${retry}${hint}`;
    return `control plane at ${this.where} refuses this node's token: ${reason}; ${retry}${hint}`;
  }
}
