/**
 * Serial console output of each VM, as its agent uploads it, kept in `DIR/console/<id>.log`
 * so `vm logs` works through the API wherever the VM runs.
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import { ApiError } from '../api/errors.ts';

/** Reads are capped so one request never carries a huge log; the client asks again. */
const MAX_READ = 256 * 1024;
const MAX_PENDING_INPUT = 64 * 1024;

export class Consoles {
  private readonly dir: string;

  constructor(
    dataDir: string,
    private readonly changes: EventEmitter,
  ) {
    this.dir = join(dataDir, 'console');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
  }

  private file(id: string): string {
    return join(this.dir, `${id}.log`);
  }

  size(id: string): number {
    return existsSync(this.file(id)) ? statSync(this.file(id)).size : 0;
  }

  /** Appends the part of a chunk we do not have yet; `offset` is the byte offset the agent read it at. */
  append(id: string, offset: number, buf: Buffer): void {
    const have = this.size(id);
    if (offset + buf.length <= have) return;
    appendFileSync(this.file(id), buf.subarray(Math.max(0, have - offset)), { mode: 0o600 });
    this.changes.emit(`logs:${id}`);
  }

  read(id: string, offset: number): { offset: number; data: string } {
    const size = this.size(id);
    if (offset >= size) return { offset: size, data: '' };
    const fd = openSync(this.file(id), 'r');
    try {
      const buf = Buffer.alloc(Math.min(MAX_READ, size - offset));
      const n = readSync(fd, buf, 0, buf.length, offset);
      return { offset: offset + n, data: buf.subarray(0, n).toString() };
    } finally {
      closeSync(fd);
    }
  }

  async wait(id: string, offset: number, seconds: number): Promise<{ offset: number; data: string }> {
    if (seconds <= 0 || this.size(id) > offset) return this.read(id, offset);
    await waitFor(this.changes, `logs:${id}`, seconds * 1000);
    return this.read(id, offset);
  }

  remove(id: string): void {
    rmSync(this.file(id), { force: true });
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

/** Resolves when `event` fires or after `ms`, whichever is first. */
export function waitFor(emitter: EventEmitter, event: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off(event, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    emitter.on(event, done);
  });
}
