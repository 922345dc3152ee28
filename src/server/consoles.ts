/**
 * Serial console output of each VM, as its agent uploads it, kept in `DIR/console/` so
 * `vm logs` works through the API wherever the VM runs.
 *
 * **Offsets.** A reader sees one logical byte stream per VM whose offsets only grow. Two
 * things break the naive "offset = position in the file":
 * - The cap (`maxBytes`): past it, the oldest bytes are dropped. The kept bytes live in
 *   `<id>.log` (nothing dropped yet) or `<id>@<dropped>.log`, where `dropped` is how many bytes
 *   came before the file's first byte; the logical end is `dropped + size`. The tail is copied
 *   into the new name (fsync, rename) before the old file goes, so a crash leaves one or the
 *   other, both consistent. A reader asking for dropped bytes gets the oldest kept ones, and
 *   `start` tells it where they begin (`vm logs --follow` says how much it missed).
 * - Placements: after a drain or evacuation the VM (same id) boots on another node, whose
 *   console log starts again at byte 0. Each node's log is a **stream** (keyed by node name;
 *   a node's chunks are accepted only while the VM is placed there): the first chunk of a new
 *   stream begins at the current logical end, and that stream's offsets are mapped from there
 *   (`<id>.json`: stream, its base and origin). Without this the new node's output was
 *   taken for bytes already had, until it outgrew the old node's log.
 */
import { appendFileSync, chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import { z } from 'zod';
import { ApiError } from '../api/errors.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CorruptStateError, checkWith, readJsonState } from '../lib/state-file.ts';

/** Reads are capped so one request never carries a huge log; the client asks again. */
const MAX_READ = 256 * 1024;
const MAX_PENDING_INPUT = 64 * 1024;
/** Default cap of the output kept per VM. */
export const DEFAULT_CONSOLE_MAX_BYTES = 1024 * 1024;

const Meta = z.object({ stream: z.string(), base: z.number().int().nonnegative(), origin: z.number().int().nonnegative() });
type Meta = z.infer<typeof Meta>;

export interface ConsolesOptions {
  /** Most bytes kept per VM; the oldest go first (a quarter of it at a time, so copies are rare). */
  maxBytes?: number;
}

export class Consoles {
  private readonly dir: string;
  private readonly maxBytes: number;
  /** Bytes dropped before each VM's kept file (absent: none). */
  private readonly dropped = new Map<string, number>();
  private readonly meta = new Map<string, Meta | null>();

  constructor(
    dataDir: string,
    private readonly changes: EventEmitter,
    opts: ConsolesOptions = {},
  ) {
    this.dir = join(dataDir, 'console');
    this.maxBytes = opts.maxBytes ?? DEFAULT_CONSOLE_MAX_BYTES;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    this.scan();
  }

  /** Finds each VM's kept file; of two (a crash during a compaction), the newer wins. */
  private scan(): void {
    const found = new Map<string, number[]>();
    for (const f of readdirSync(this.dir)) {
      if (/\.tmp-\d+$/.test(f)) rmSync(join(this.dir, f), { force: true }); // a write cut short
      const m = /^(.+?)(?:@(\d+))?\.log$/.exec(f);
      if (m) found.set(m[1]!, [...(found.get(m[1]!) ?? []), Number(m[2] ?? 0)]);
    }
    for (const [id, all] of found) {
      const newest = Math.max(...all);
      for (const d of all) if (d !== newest) rmSync(this.file(id, d), { force: true });
      if (newest) this.dropped.set(id, newest);
    }
  }

  private file(id: string, dropped = this.dropped.get(id) ?? 0): string {
    return join(this.dir, dropped ? `${id}@${dropped}.log` : `${id}.log`);
  }

  private metaFile(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private kept(id: string): number {
    const f = this.file(id);
    return existsSync(f) ? statSync(f).size : 0;
  }

  /** The logical end: every byte ever stored for the VM, dropped or kept. */
  size(id: string): number {
    return (this.dropped.get(id) ?? 0) + this.kept(id);
  }

  private streamOf(id: string): Meta | null {
    let m = this.meta.get(id);
    if (m === undefined) {
      try {
        m = readJsonState(this.metaFile(id), checkWith(Meta)) ?? null;
      } catch (e) {
        // A torn mapping costs at most a misplaced stream start, never the upload: rewritten on the next chunk.
        if (!(e instanceof CorruptStateError)) throw e;
        rmSync(this.metaFile(id), { force: true });
        m = null;
      }
      this.meta.set(id, m);
    }
    return m;
  }

  /**
   * Appends the part of a chunk we do not have yet; `offset` is the byte offset `node` read it
   * at in its own log (idempotent: agents re-send after a restart).
   */
  append(id: string, node: string, offset: number, buf: Buffer): void {
    let m = this.streamOf(id);
    if (m?.stream !== node) {
      // A log from before streams were kept is the sending node's own, from its byte 0; one
      // kept for a node by name alone (an agent from before stream ids) goes on under the id.
      if (m === null && this.size(id) > 0) m = { stream: node, base: 0, origin: 0 };
      else if (m !== null && node.startsWith(`${m.stream}/`)) m = { ...m, stream: node };
      else m = { stream: node, base: this.size(id), origin: offset };
      // Renamed into place whole, but not fsync'ed: the log it maps is never fsync'ed either, a
      // mapping lost with the host costs at most a misplaced stream start, and 10,000 VMs
      // starting are 10,000 first chunks whose fsyncs (two each) blocked this event loop.
      writeFileAtomic(this.metaFile(id), JSON.stringify(m), 0o600, { fsync: false });
      this.meta.set(id, m);
    }
    // Bytes before the stream's origin came before the first chunk we kept of it.
    const skip = Math.max(0, m.origin - offset);
    const at = m.base + offset + skip - m.origin;
    const data = buf.subarray(skip);
    const have = this.size(id);
    if (at + data.length <= have) return;
    appendFileSync(this.file(id), data.subarray(Math.max(0, have - at)), { mode: 0o600 });
    if (this.kept(id) > this.maxBytes + Math.max(1, this.maxBytes >> 2)) this.compact(id);
    this.changes.emit(`logs:${id}`);
  }

  /** Keeps the newest `maxBytes`, under the name that says how many came before them. */
  private compact(id: string): void {
    const old = this.file(id);
    const size = statSync(old).size;
    const drop = size - this.maxBytes;
    const tail = Buffer.alloc(this.maxBytes);
    const fd = openSync(old, 'r');
    try {
      readSync(fd, tail, 0, tail.length, drop);
    } finally {
      closeSync(fd);
    }
    const dropped = (this.dropped.get(id) ?? 0) + drop;
    writeFileAtomic(this.file(id, dropped), tail, 0o600);
    this.dropped.set(id, dropped);
    rmSync(old, { force: true });
  }

  /** From `offset` on; `start` is the oldest offset still kept (a reader behind it missed `start − offset` bytes). */
  read(id: string, offset: number): { offset: number; start: number; data: string } {
    const r = this.readBytes(id, offset);
    return { offset: r.offset, start: r.start, data: r.bytes.toString() };
  }

  /** As `read`, the bytes as they are (the console WebSocket sends them so: a UTF-8 sequence may span two reads). */
  readBytes(id: string, offset: number): { offset: number; start: number; bytes: Buffer } {
    const start = this.dropped.get(id) ?? 0;
    const size = this.size(id);
    if (offset >= size) return { offset: size, start, bytes: Buffer.alloc(0) };
    const from = Math.max(offset, start);
    const fd = openSync(this.file(id), 'r');
    try {
      const buf = Buffer.alloc(Math.min(MAX_READ, size - from));
      const n = readSync(fd, buf, 0, buf.length, from - start);
      return { offset: from + n, start, bytes: buf.subarray(0, n) };
    } finally {
      closeSync(fd);
    }
  }

  async wait(id: string, offset: number, seconds: number, signal?: AbortSignal): Promise<{ offset: number; start: number; data: string }> {
    if (seconds <= 0 || this.size(id) > offset) return this.read(id, offset);
    await waitFor(this.changes, `logs:${id}`, seconds * 1000, signal);
    return this.read(id, offset);
  }

  remove(id: string): void {
    rmSync(this.file(id), { force: true });
    rmSync(this.metaFile(id), { force: true });
    this.dropped.delete(id);
    this.meta.delete(id);
    this.input.delete(id);
  }
  /** Keystrokes waiting for the node's agent; bounded so an absent agent cannot make us grow. */
  private readonly input = new Map<string, { node: string; bytes: Buffer }>();

  type(node: string, id: string, data: Buffer): void {
    const prev = this.input.get(id)?.bytes ?? Buffer.alloc(0);
    const bytes = Buffer.concat([prev, data]);
    if (bytes.length > MAX_PENDING_INPUT) throw new ApiError('too_large', 'console input is not being consumed: is the node up?', 'base64');
    this.input.set(id, { node, bytes });
    // Wakes the node's desired-state watch, which carries the input to the agent.
    this.changes.emit(`node:${node}`);
  }

  hasInput(node: string): boolean {
    for (const v of this.input.values()) if (v.node === node) return true;
    return false;
  }

  /** Takes (and forgets) the input queued for a node's VMs. */
  takeInput(node: string): { id: string; base64: string }[] {
    const out: { id: string; base64: string }[] = [];
    for (const [id, v] of this.input) {
      if (v.node !== node) continue;
      out.push({ id, base64: v.bytes.toString('base64') });
      this.input.delete(id);
    }
    return out;
  }
}

/**
 * Resolves when `event` fires, after `ms`, or when `signal` aborts (the caller hung up),
 * whichever is first; each way it removes its listener and its timer at once.
 */
export function waitFor(emitter: EventEmitter, event: string, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off(event, done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    emitter.on(event, done);
    if (signal?.aborted) done();
    else signal?.addEventListener('abort', done, { once: true });
  });
}
