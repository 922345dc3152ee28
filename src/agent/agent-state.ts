/**
 * What the agent must remember across its own restarts (VMs outlive it): the power
 * generation it last started each VM at, whether that run's guest fetched its metadata, and
 * within that generation the restarts after a crash (for the backoff and the crash-loop cap,
 * which an agent restart must not reset) and the reason it reports.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Applied } from '../core/reconcile.ts';
import { CoalescedWriter } from '../lib/coalesced-writer.ts';
import { CorruptStateError, checkWith, readJsonState } from '../lib/state-file.ts';

interface Saved {
  applied: Record<string, Applied>;
  /** VM id → the generation whose guest fetched its metadata. */
  ready: Record<string, number>;
  /** The kernel's boot id when this was written. */
  bootId?: string;
}

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

const SavedSchema: z.ZodType<Saved> = z.object({
  applied: z.record(z.string(), z.object({ gen: z.number().int(), restarts: z.array(z.number()).optional(), note: z.string().optional(), idle: z.object({ reason: z.string(), wakeGen: z.number().int() }).optional() })),
  ready: z.record(z.string(), z.number().int()),
  bootId: z.string().optional(),
});

export class AgentState {
  private readonly file: string;
  applied: Record<string, Applied> = {};
  ready: Record<string, number> = {};

  private readonly bootId: string;
  private readonly warn: (msg: string) => void;
  private readonly writer: CoalescedWriter;

  /**
   * A torn or corrupt file (from an older version that did not write atomically, a bad disk,
   * a hand edit) is moved aside to `agent-state.json.corrupt` and `warn`ed about, and the agent
   * starts afresh: this is a cache of what it did, and losing it costs what a host reboot costs
   * (VMs that should run and do not are started; running ones keep running). Refusing to start
   * would leave the operator only the same remedy, by hand, with the node down meanwhile.
   */
  constructor(stateDir: string, bootIdFile = BOOT_ID, warn: (msg: string) => void = () => {}) {
    this.file = join(stateDir, 'agent-state.json');
    this.warn = warn;
    this.writer = new CoalescedWriter(this.file, () => JSON.stringify({ applied: this.applied, ready: this.ready, bootId: this.bootId } satisfies Saved), 0o600);
    this.bootId = existsSync(bootIdFile) ? readFileSync(bootIdFile, 'utf8').trim() : '';
    let saved: Saved | undefined;
    try {
      saved = readJsonState(this.file, checkWith(SavedSchema));
    } catch (e) {
      if (!(e instanceof CorruptStateError)) throw e;
      renameSync(this.file, `${this.file}.corrupt`);
      warn(`${e.message}: moved to ${this.file}.corrupt, starting afresh as after a host reboot (VMs that should run and do not are started; running ones show booting until they restart)`);
    }
    // After a host reboot no VM is running because its guest chose to power off: forget
    // what was started, so VMs that should run are started again, as after a host failure
    // on a public cloud.
    if (saved && saved.bootId === this.bootId) {
      this.applied = saved.applied;
      this.ready = saved.ready;
    }
  }

  /** A new generation starts with a clean slate; a restart within one keeps its count. */
  started(id: string, gen: number): void {
    const cur = this.applied[id];
    this.applied[id] = cur?.gen === gen ? cur : { gen };
    delete this.ready[id];
    this.save();
  }

  /**
   * A resume (issue 16): the run goes on where it was, so what it had is kept (its readiness
   * in this generation, its restarts); only the generation is recorded, as a start's would be.
   */
  resumed(id: string, gen: number): void {
    const cur = this.applied[id];
    this.applied[id] = cur?.gen === gen ? cur : { gen };
    this.save();
  }

  /** Recorded before the restart is tried: a restart that fails counts too, or a VM that cannot start would be retried without backoff. */
  restarting(id: string, at: number, reason: string): void {
    const cur = this.applied[id];
    if (!cur) return;
    // The cap counts only a window's worth; older entries are kept only so the list stays short.
    this.applied[id] = { ...cur, restarts: [...(cur.restarts ?? []), at].slice(-20), note: reason };
    this.save();
  }

  note(id: string, reason: string): void {
    const cur = this.applied[id];
    if (!cur || cur.note === reason) return;
    this.applied[id] = { ...cur, note: reason };
    this.save();
  }

  /**
   * Scale to zero: the agent suspended it for idleness at this wake generation (its activator
   * holds its taps, and a restarted agent holds them again); cleared when it wakes or a user's
   * suspend, stop or delete takes over.
   */
  idle(id: string, reason: string, wakeGen: number): void {
    const cur = this.applied[id];
    if (!cur) return;
    this.applied[id] = { ...cur, idle: { reason, wakeGen } };
    this.save();
  }

  awake(id: string): void {
    const cur = this.applied[id];
    if (!cur?.idle) return;
    const { idle: _idle, ...rest } = cur;
    this.applied[id] = rest;
    this.save();
  }

  /** True when this marks the VM ready for the first time in its current run. */
  markReady(id: string): boolean {
    const gen = this.applied[id]?.gen;
    if (gen === undefined || this.ready[id] === gen) return false;
    this.ready[id] = gen;
    this.save();
    return true;
  }

  isReady(id: string): boolean {
    return this.applied[id] !== undefined && this.ready[id] === this.applied[id].gen;
  }

  forget(id: string): void {
    delete this.applied[id];
    delete this.ready[id];
    this.save();
  }

  /**
   * Resolves once everything changed so far is on disk (the agent's stop, and before a
   * restart is tried: the crash-loop count must survive the agent, or a crash of both would
   * reset it).
   */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * Atomic (temp file, fsync, rename): a crash never leaves half a file. Owner-only (VM ids and
   * states). Asynchronous and coalesced (coalesced-writer.ts): an fsync on the event loop
   * stalls every heartbeat of the process, and a VM start saves twice in one tick. Until the
   * write lands, a crash loses at most the last changes, as a crash just before them would:
   * VMs outlive the agent, which adopts what it finds running. A failed write is reported and
   * tried again with the next change.
   */
  private save(): void {
    this.writer.save().catch((e: unknown) => this.warn(`saving ${this.file} failed: ${e instanceof Error ? e.message : String(e)}`));
  }
}
