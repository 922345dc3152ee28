/**
 * Keeps a running control plane's server certificate fresh. A control plane left alone for
 * longer than the certificate's 365 days would otherwise serve an expired one, and every agent
 * and CLI would fail at once. Every hour it asks `ensureServerTls` (same CA, same names) whether
 * the certificate is due (tls.ts: less than 30 days or a third of its life left); a new one is
 * written to DATA/tls atomically and swapped into the listening server with
 * `setSecureContext`: new handshakes get it, open connections keep the one they started with.
 *
 * The CA is never replaced (machines pinned its key), so its end is only announced: a warning
 * at start and on every check once fewer than CA_WARN_DAYS remain, and its `notAfter` in
 * `GET /v1/whoami`.
 */
import type { SecureContextOptions } from 'node:tls';
import { ensureServerTls, type ServerTls, type TlsNames } from './tls.ts';

/** How often the certificate is looked at. */
export const CHECK_EVERY_MS = 3600_000;
/**
 * Warn this long before the CA expires. Replacing it means joining every machine again, which
 * wants planning; and from a year before its end, server certificates are cut short to end
 * with it, so half a year of warnings is not too early.
 */
export const CA_WARN_DAYS = 180;

const DAY = 24 * 3600 * 1000;

export interface TlsRenewalOptions {
  dataDir: string;
  /** What the certificate names: those it was made for at start. */
  names: TlsNames;
  log: { info(msg: string): void; warn(msg: string): void };
  /** The time; injected by tests. */
  clock?: () => Date;
  everyMs?: number;
}

/** The server being kept fresh: a `tls.Server`, which Node's https and http2 servers are. */
export interface SecureServer {
  setSecureContext(options: SecureContextOptions): void;
}

export class TlsRenewal {
  private current: ServerTls;
  private timer: NodeJS.Timeout | undefined;
  /** Checks never overlap: each reads what the previous one wrote. */
  private last: Promise<unknown> = Promise.resolve();
  private readonly clock: () => Date;

  constructor(
    tls: ServerTls,
    private readonly server: SecureServer,
    private readonly o: TlsRenewalOptions,
  ) {
    this.current = tls;
    this.clock = o.clock ?? (() => new Date());
  }

  /** The certificate being served now. */
  get tls(): ServerTls {
    return this.current;
  }

  start(): void {
    this.warnCa(this.clock());
    this.timer = setInterval(() => {
      this.check().catch((e: unknown) => this.o.log.warn(`server certificate check failed (next try in an hour): ${e instanceof Error ? e.message : String(e)}`));
    }, this.o.everyMs ?? CHECK_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One check; true when a new certificate is being served. */
  check(): Promise<boolean> {
    const run = this.last.then(() => this.doCheck());
    this.last = run.catch(() => {});
    return run;
  }

  private async doCheck(): Promise<boolean> {
    const now = this.clock();
    const next = await ensureServerTls(this.o.dataDir, { ...this.o.names, now });
    this.warnCa(now);
    if (next.cert === this.current.cert && next.key === this.current.key) return false;
    if (next.caHash !== this.current.caHash) {
      // Only someone replacing DATA/tls by hand gets here: serving it would break every pin.
      throw new Error(`DATA/tls now holds another CA (${next.caHash}); still serving the certificate of ${this.current.caHash} until restarted`);
    }
    this.server.setSecureContext({ key: next.key, cert: next.cert });
    this.current = next;
    this.o.log.info(`server certificate renewed (same CA and names), valid until ${next.certNotAfter}; new connections get it, open ones keep theirs`);
    return true;
  }

  private warnCa(now: Date): void {
    const left = new Date(this.current.caNotAfter).getTime() - now.getTime();
    if (left >= CA_WARN_DAYS * DAY) return;
    const when = left > 0 ? `in ${Math.round(left / DAY)} days` : 'already: nothing can connect';
    this.o.log.warn(
      `the CA certificate expires at ${this.current.caNotAfter} (${when}); Butter does not replace it by itself: a new CA (remove DATA/tls) means every agent and CLI joins and logs in again`,
    );
  }
}
