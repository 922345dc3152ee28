/**
 * Minimal QMP (QEMU Machine Protocol) client over a unix socket: one JSON object per line.
 * Commands carry an `id` that QEMU echoes, so replies are matched even when asynchronous
 * events (`{"event": ...}`) arrive in between.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient {
  /** Every event seen on this connection, in order (callers poll or use `onEvent`). */
  readonly events: QmpEvent[] = [];
  onEvent?: (e: QmpEvent) => void;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buf = '';
  private closedError?: Error;
  private greeting?: { resolve: () => void; reject: (e: Error) => void };

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  /** Connects, waits for the greeting and leaves capabilities negotiation mode. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const sock = net.createConnection(path);
    const client = new QmpClient(sock);
    const timer = setTimeout(() => sock.destroy(new Error(`QMP ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        client.greeting = { resolve, reject };
      });
      await client.execute('qmp_capabilities');
      return client;
    } catch (e) {
      sock.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a command; resolves with its `return` value, rejects with `QmpError` on `error`. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { command, resolve, reject });
      this.sock.write(JSON.stringify(msg) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.sock.destroy(new Error(`QMP: unparsable message: ${line.slice(0, 200)}`));
      return;
    }
    if ('QMP' in msg) {
      this.greeting?.resolve();
      this.greeting = undefined;
    } else if ('event' in msg) {
      const ev = msg as unknown as QmpEvent;
      this.events.push(ev);
      this.onEvent?.(ev);
    } else if ('return' in msg || 'error' in msg) {
      const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
      if (!p) return; // A reply to nobody (e.g. no id): nothing waits for it.
      this.pending.delete(msg.id as number);
      if ('error' in msg) {
        const err = msg.error as { class?: string; desc?: string };
        p.reject(new QmpError(p.command, err.class ?? 'GenericError', err.desc ?? ''));
      } else {
        p.resolve(msg.return);
      }
    }
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    this.greeting?.reject(e);
    this.greeting = undefined;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/** `promise`, or a rejection after `ms` (a wedged QEMU answers nothing). */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  const ac = new AbortController();
  try {
    return await Promise.race([promise, sleep(ms, undefined, { signal: ac.signal }).then(() => Promise.reject(new Error(`no answer within ${ms} ms`)))]);
  } finally {
    ac.abort();
  }
}

/** QEMU's migration capabilities the agent sets (`x-ignore-shared`: a warm template's shared RAM left out of its state). */
export type MigrationCapability = 'pause-before-switchover' | 'x-ignore-shared';

/** Sets one migration capability; it stays set in that QEMU process until set again. */
export async function setMigrationCapability(client: QmpClient, capability: MigrationCapability, state: boolean): Promise<void> {
  await client.execute('migrate-set-capabilities', { capabilities: [{ capability, state }] });
}

/**
 * Polls `query-migrate` (each answer within 2 s) until it reports `want` or the migration ends
 * otherwise (`failed`, `cancelled`); undefined after `timeoutMs`.
 */
export async function waitMigration(client: QmpClient, want: string, timeoutMs: number, pollMs = 20): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = (await withTimeout(client.execute('query-migrate'), 2000)) as { status?: string } | undefined;
    const status = r?.status;
    if (status === want || status === 'failed' || status === 'cancelled') return status;
    if (Date.now() >= deadline) return undefined;
    await sleep(pollMs);
  }
}
