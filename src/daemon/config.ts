/**
 * The daemons' own settings: `butter.yaml` in the data dir (`butter up`, `butter server`) or
 * the state dir (`butter agent`), optional, every key with a default. Today it holds the
 * bounds on what grows: console logs, audit events, the image cache, the daemon's own log.
 * A bad file stops the daemon at start with the key it objects to, before anything runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { parseSize } from '../core/units.ts';
import { DEFAULT_RETENTION } from '../core/event-retention.ts';

/** Bytes, or a size with a unit (`512K`, `4M`, `1G`). */
const Size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : parseSize(v);
  if (n === undefined || !Number.isInteger(n) || n < 0) ctx.addIssue({ code: 'custom', message: `not a size (like 512K, 4M): ${JSON.stringify(v)}` });
  return n ?? 0;
});
const atLeast = (min: number) => Size.refine((n) => n >= min, `must be at least ${min} bytes`);

export const DaemonConfig = z
  .object({
    console: z
      .object({
        /** Per VM, on the control plane. */
        maxBytes: atLeast(64 * 1024).default(1024 * 1024),
        /** Per VM, on the node: what stays in its `console.log` once shipped. */
        nodeMaxBytes: atLeast(64 * 1024).default(1024 * 1024),
      })
      .strict()
      .prefault({}),
    events: z
      .object({
        maxAgeDays: z.number().positive().default(DEFAULT_RETENTION.maxAgeDays),
        maxCount: z.number().int().positive().default(DEFAULT_RETENTION.maxCount),
      })
      .strict()
      .prefault({}),
    imageCache: z
      .object({
        /** An image no VM on the node uses is deleted after this long. */
        unusedGraceMinutes: z.number().nonnegative().default(60),
        /** Below this much free space on the cache's filesystem, unused images go at once. */
        minFreePercent: z.number().min(0).max(100).default(10),
      })
      .strict()
      .prefault({}),
    networks: z
      .object({
        /** A network stays built on a node this long after its last VM there went (server/network-linger.ts). */
        lingerSeconds: z.number().nonnegative().max(86_400).default(60),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        /** The daemon's log file, when its stderr is one (not the journal), is rotated past this. */
        maxBytes: atLeast(64 * 1024).default(16 * 1024 * 1024),
        /** Rotated files kept: `LOG.1` … `LOG.N`. */
        keep: z.number().int().min(1).max(100).default(3),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type DaemonConfig = z.infer<typeof DaemonConfig>;

export const CONFIG_FILE = 'butter.yaml';

/** The settings in `DIR/butter.yaml`, defaults for what it leaves out (and for no file). */
export function loadDaemonConfig(dir: string): DaemonConfig {
  const path = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return DaemonConfig.parse({});
    throw e;
  }
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (e) {
    throw new Error(`${path}: not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = DaemonConfig.safeParse(raw);
  if (!r.success) throw new Error(`${path}: ${r.error.issues.map((i) => `${i.path.join('.') || 'the file'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** What the control plane takes of it. */
export function controlPlaneBounds(c: DaemonConfig): { consoleMaxBytes: number; eventRetention: { maxAgeDays: number; maxCount: number }; networkLingerMs: number } {
  return { consoleMaxBytes: c.console.maxBytes, eventRetention: c.events, networkLingerMs: c.networks.lingerSeconds * 1000 };
}
