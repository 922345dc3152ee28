/**
 * A VM's serial console over a WebSocket (`GET /v1/vms/{name}/console/ws`), for the panel's
 * terminal: the same bytes `vm logs` returns and the same input path as `vm console`.
 *
 * - Server → client: binary frames of console output, from `offset` (the current end unless
 *   the query names one), each as soon as the VM's agent has shipped it (`logs:<vmId>` on the
 *   store's changes). One send at a time, the next after the last was written out, so a slow
 *   reader holds at most one read (256 KiB) in memory, never the backlog.
 * - Client → server: text or binary frames of keystrokes, typed in as `POST …/console` does
 *   (the VM must be running; queued for its node's agent). A refusal is a text frame with the
 *   API's error envelope; the socket stays open.
 * - Closed by the server with 1000 and a reason when the VM is deleted, and with 1008 when the
 *   caller's token is revoked or its session ends (checked on every commit and every frame,
 *   and when the session's 12 h are up).
 *
 * Who may open it is decided before the upgrade, by the route's access (http.ts, `authorize`);
 * with the session cookie the Origin must also be the control plane's own (sessions.ts).
 */
import type { EventEmitter } from 'node:events';
import { ApiError } from '../api/errors.ts';
import type { Consoles } from './consoles.ts';

/** The part of a `ws` WebSocket this uses (the package ships no types of its own). */
export interface ConsoleSocket {
  send(data: Buffer | string, opts?: { binary: boolean }, cb?: (err?: Error) => void): void;
  close(code: number, reason: string): void;
  on(event: 'close', fn: () => void): unknown;
  on(event: 'message', fn: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
}

export interface ConsoleSocketDeps {
  changes: EventEmitter;
  consoles: Consoles;
  vmId: string;
  /** The first output offset to send. */
  from: number;
  /** Why the socket must close now (the VM deleted, the caller's credential gone), or undefined. */
  ended(): { code: number; reason: string } | undefined;
  /** When the caller's session ends by itself (ms since the epoch): no commit says so, so a timer checks then. */
  endsAt?: number;
  /** Types bytes into the VM's console (throws ApiError when it cannot). */
  type(bytes: Buffer): void;
}

/** WebSocket close reasons are at most 123 bytes. */
const reasonOf = (s: string) => Buffer.from(s).subarray(0, 123).toString();

export function attachConsole(socket: ConsoleSocket, d: ConsoleSocketDeps): void {
  let offset = d.from;
  let pumping = false;
  let closed = false;

  const pump = async () => {
    if (pumping || closed) return;
    pumping = true;
    try {
      while (!closed && offset < d.consoles.size(d.vmId)) {
        const r = d.consoles.readBytes(d.vmId, offset);
        if (r.bytes.length === 0) break;
        offset = r.offset;
        await new Promise<void>((resolve, reject) => socket.send(r.bytes, { binary: true }, (err) => (err ? reject(err) : resolve())));
      }
    } catch {
      // The peer went away mid-send; 'close' cleans up.
    } finally {
      pumping = false;
    }
  };
  const checkEnded = (): boolean => {
    const end = d.ended();
    if (end && !closed) socket.close(end.code, reasonOf(end.reason));
    return end !== undefined;
  };
  const onLogs = () => void pump();
  // A listener of every commit: whatever it meets (a store closing under it) must not become the
  // committing request's error, so it ends this socket instead.
  const guarded = (fn: () => void) => () => {
    try {
      fn();
    } catch {
      if (!closed) socket.close(1011, 'internal error');
    }
  };
  const onCommit = guarded(() => void checkEnded());
  const logsEvent = `logs:${d.vmId}`;
  d.changes.on(logsEvent, onLogs);
  d.changes.on('commit', onCommit);
  const expiry = d.endsAt === undefined ? undefined : setTimeout(guarded(() => void checkEnded()), Math.max(0, d.endsAt - Date.now()) + 1000);
  expiry?.unref();
  socket.on('close', () => {
    closed = true;
    clearTimeout(expiry);
    d.changes.off(logsEvent, onLogs);
    d.changes.off('commit', onCommit);
  });
  socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    guarded(() => {
      if (checkEnded()) return;
      try {
        d.type(bytes);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        socket.send(JSON.stringify(e.toBody()));
      }
    })();
  });
  guarded(() => {
    if (!checkEnded()) void pump();
  })();
}
