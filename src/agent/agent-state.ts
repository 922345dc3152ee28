/**
 * What the agent must remember across its own restarts (VMs outlive it): the power
 * generation it last started each VM at, and whether that run's guest fetched its metadata.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Applied } from '../core/reconcile.ts';

interface Saved {
  applied: Record<string, Applied>;
  /** VM id → the generation whose guest fetched its metadata. */
  ready: Record<string, number>;
}

export class AgentState {
  private readonly file: string;
  applied: Record<string, Applied> = {};
  ready: Record<string, number> = {};

  constructor(stateDir: string) {
    this.file = join(stateDir, 'agent-state.json');
    if (existsSync(this.file)) {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as Saved;
      this.applied = saved.applied;
      this.ready = saved.ready;
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
    writeFileSync(tmp, JSON.stringify({ applied: this.applied, ready: this.ready } satisfies Saved));
    renameSync(tmp, this.file);
  }
}
