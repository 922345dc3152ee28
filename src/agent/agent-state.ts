/**
 * What the agent must remember across its own restarts (VMs outlive it): the power
 * generation it last started each VM at, and whether that run's guest fetched its metadata.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Applied } from '../core/reconcile.ts';

interface Saved {
  applied: Record<string, Applied>;
  /** VM id → the generation whose guest fetched its metadata. */
  ready: Record<string, number>;
  /** The kernel's boot id when this was written. */
  bootId?: string;
}

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

export class AgentState {
  private readonly file: string;
  applied: Record<string, Applied> = {};
  ready: Record<string, number> = {};

  private readonly bootId: string;

  constructor(stateDir: string, bootIdFile = BOOT_ID) {
    this.file = join(stateDir, 'agent-state.json');
    this.bootId = existsSync(bootIdFile) ? readFileSync(bootIdFile, 'utf8').trim() : '';
    if (existsSync(this.file)) {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as Saved;
      // After a host reboot no VM is running because its guest chose to power off: forget
      // what was started, so VMs that should run are started again, as after a host failure
      // on a public cloud.
      if (saved.bootId === this.bootId) {
        this.applied = saved.applied;
        this.ready = saved.ready;
      }
    }
  }

  started(id: string, gen: number): void {
    this.applied[id] = { gen };
    delete this.ready[id];
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

  /** Written to a temp file and renamed, so a crash never leaves half a file. */
  private save(): void {
    const tmp = `${this.file}.tmp`;
    // Owner-only (VM ids and states); chmod too: a leftover tmp keeps its old mode.
    writeFileSync(tmp, JSON.stringify({ applied: this.applied, ready: this.ready, bootId: this.bootId } satisfies Saved), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
  }
}
