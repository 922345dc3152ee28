/**
 * Ships each VM's captured serial console to the control plane, so `vm logs` works through
 * the API. The server ignores bytes it already has, so re-sending after a restart is safe.
 *
 * Bounded on the node: once shipped, all but the newest `keepBytes` of a log are freed
 * (host/console-trim.ts punches a hole; QEMU keeps appending, offsets do not move). Beside
 * each log, `console.ship.json` names its stream (a random id per log file, so a VM recreated
 * on this node is a new stream to the control plane) and how far it was shipped when last
 * trimmed: a restarted agent resumes there instead of re-reading freed bytes. Output the
 * control plane does not take (it is away) is kept up to 16 × `keepBytes`; past that the oldest
 * of it goes too, so a guest writing to its console without end never fills the node's disk.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { z } from 'zod';
import type { Client } from '../sdk/client.ts';
import { writeFileAtomicAsync } from '../lib/atomic-file.ts';
import { checkWith, readJsonState } from '../lib/state-file.ts';
import type { ConsoleTrim } from './host/console-trim.ts';

const CHUNK = 256 * 1024;
export const DEFAULT_NODE_CONSOLE_BYTES = 1024 * 1024;
/** Unshipped output (control plane away) past this many times the kept tail is dropped too. */
const UNSHIPPED_FACTOR = 16;

const Saved = z.object({ stream: z.string().regex(/^[0-9a-f]{8,32}$/), shipped: z.number().int().nonnegative() });
interface Shipping {
  stream: string;
  offset: number;
  /** Bytes freed at the start of the log (a hole). */
  trimmed: number;
  /** Set once trimming failed for this log (a filesystem without hole punching): not tried again. */
  noTrim?: boolean;
}

export interface ConsoleShipperOptions {
  /** Newest bytes kept in each log once shipped; none freed without `trim`. */
  keepBytes?: number;
  trim?: ConsoleTrim;
  log?: (msg: string) => void;
}

export class ConsoleShipper {
  private readonly vms = new Map<string, Shipping>();
  private readonly keep: number;

  constructor(
    private readonly client: Client,
    private readonly node: string,
    private readonly logPath: (id: string) => string,
    private readonly opts: ConsoleShipperOptions = {},
  ) {
    this.keep = opts.keepBytes ?? DEFAULT_NODE_CONSOLE_BYTES;
  }

  private sidecar(id: string): string {
    return `${this.logPath(id)}.ship.json`;
  }

  /** What we know of a log: from memory, else its sidecar, else a new stream from byte 0. */
  private async stateOf(id: string, size: number): Promise<Shipping> {
    let s = this.vms.get(id);
    if (s && size < s.offset) s = undefined; // a new, shorter file: another stream
    if (!s) {
      let saved: z.infer<typeof Saved> | undefined;
      try {
        saved = readJsonState(this.sidecar(id), checkWith(Saved));
      } catch {
        saved = undefined; // torn: a new stream from 0 costs a re-send, nothing more
      }
      if (saved && saved.shipped <= size) s = { stream: saved.stream, offset: saved.shipped, trimmed: Math.max(0, saved.shipped - this.keep) };
      else {
        s = { stream: randomBytes(8).toString('hex'), offset: 0, trimmed: 0 };
        // Not fsync'ed: nothing was shipped or freed under this stream yet, so losing the
        // sidecar to a host crash costs only what a torn one does, the log sent again from 0
        // as a new stream. Once per log, but once per VM start on a node starting many.
        await this.save(id, s, false);
      }
      this.vms.set(id, s);
    }
    return s;
  }

  /**
   * Asynchronous: one agent's pass must not stall the others' in a process running many
   * (`butter sim`). Passes never overlap (the agent runs one at a time), so neither do writes
   * of one sidecar. `durable` (fsync) where the sidecar guards freed bytes.
   */
  private async save(id: string, s: Shipping, durable = true): Promise<void> {
    await writeFileAtomicAsync(this.sidecar(id), JSON.stringify({ stream: s.stream, shipped: s.offset }), 0o600, { fsync: durable });
  }

  async ship(ids: Iterable<string>): Promise<void> {
    for (const id of ids) {
      const file = this.logPath(id);
      if (!existsSync(file)) continue;
      const size = statSync(file).size;
      let s = await this.stateOf(id, size);
      if (this.opts.trim && !s.noTrim && size - s.offset > this.keep * UNSHIPPED_FACTOR) s = await this.skip(id, file, s, size);
      while (s.offset < size) {
        const buf = Buffer.alloc(Math.min(CHUNK, size - s.offset));
        const fd = openSync(file, 'r');
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, s.offset);
        } finally {
          closeSync(fd);
        }
        if (n === 0) break;
        await this.client.call('nodeConsole', { params: { name: this.node, id }, body: { offset: s.offset, base64: buf.subarray(0, n).toString('base64'), stream: s.stream } });
        s.offset += n;
      }
      await this.trim(id, file, s);
    }
  }

  /** Frees what was shipped beyond the kept tail, a quarter of the tail at a time (each costs a write and a command). */
  private async trim(id: string, file: string, s: Shipping): Promise<void> {
    const upTo = s.offset - this.keep;
    if (!this.opts.trim || s.noTrim || upTo - s.trimmed < Math.max(this.keep >> 2, 4096)) return;
    // Saved first, and on disk: a restarted agent must never start below what was freed.
    await this.save(id, s);
    try {
      await this.opts.trim(file, upTo);
      s.trimmed = upTo;
    } catch (e) {
      s.noTrim = true;
      this.opts.log?.(`console log of ${id} cannot be trimmed, it keeps growing: ${String(e)}`);
    }
  }

  /**
   * The control plane has not taken this log for long while the guest kept writing: the
   * oldest unshipped bytes are dropped too, or the node's disk would fill. What follows is a
   * new stream (new id), so the control plane appends it after what it has, with no gap in
   * its offsets.
   */
  private async skip(id: string, file: string, s: Shipping, size: number): Promise<Shipping> {
    const from = size - this.keep;
    const next: Shipping = { stream: randomBytes(8).toString('hex'), offset: from, trimmed: s.trimmed };
    await this.save(id, next);
    this.vms.set(id, next);
    this.opts.log?.(`console log of ${id}: ${from - s.offset} bytes not shipped in time, dropped on the node`);
    try {
      await this.opts.trim!(file, from);
      next.trimmed = from;
    } catch (e) {
      next.noTrim = true;
      this.opts.log?.(`console log of ${id} cannot be trimmed, it keeps growing: ${String(e)}`);
    }
    return next;
  }

  forget(id: string): void {
    this.vms.delete(id);
  }
}
