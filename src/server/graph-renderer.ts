/**
 * Draws a graph's DOT text as SVG with Graphviz (`dot -Tsvg`, DOT on stdin, SVG on stdout)
 * through the agent's one `Exec` door, as image-inspector.ts runs qemu-img. The DOT is ours
 * (core/graph/dot.ts: fixed attributes, every name quoted and escaped), so what a caller can
 * spend is bounded here: a timeout per drawing and a few drawings at once; more are refused.
 */
import { ApiError } from '../api/errors.ts';
import type { Exec } from '../agent/host/exec.ts';

export interface SvgRendererOptions {
  /** The Graphviz program (default `dot`, from PATH). */
  command?: string;
  /** One drawing's deadline (default 10 s). */
  timeoutMs?: number;
  /** Drawings at once; one more is refused with 429 until one ends (default 2: the control plane shares its CPUs). */
  maxConcurrent?: number;
}

export class SvgRenderer {
  private running = 0;
  private readonly command: string;
  private readonly timeoutMs: number;
  private readonly maxConcurrent: number;

  constructor(
    private readonly exec: Exec,
    opts: SvgRendererOptions = {},
  ) {
    this.command = opts.command ?? 'dot';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.maxConcurrent = opts.maxConcurrent ?? 2;
  }

  async svg(dot: string): Promise<string> {
    if (this.running >= this.maxConcurrent) throw new ApiError('too_many_requests', `the control plane is drawing ${this.running} graphs already; try again, or ask for format dot and draw it yourself`, 'format');
    this.running++;
    try {
      const r = await this.exec.run(this.command, ['-Tsvg'], { input: dot, allowFail: true, timeoutMs: this.timeoutMs });
      // Not installed: this control plane cannot make SVG (406 names the package; a 500 would
      // hide it in the log, and a 503 would have clients retry what no retry mends).
      if (r.code === 127) throw new ApiError('not_acceptable', `format svg needs Graphviz's \`${this.command}\` on the control plane, which is not installed (Debian: apt-get install graphviz; scripts/install.sh does); format dot or json need nothing`, 'format');
      if (r.timedOut) throw new ApiError('not_acceptable', `Graphviz did not draw the graph within ${this.timeoutMs / 1000} s; ask for one network, or format dot`, 'format');
      // Graphviz refusing DOT we rendered is our bug: a 500, logged with its stderr.
      if (r.code !== 0) throw new Error(`${this.command} -Tsvg exited ${r.code}: ${r.stderr.trim()}`);
      return r.stdout;
    } finally {
      this.running--;
    }
  }
}
