/** TEMP blueprint stub (dropped at merge): the fixed interface of i13-blueprint's bundle reader, minimally. */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse } from 'yaml';

export function loadBundle(path: string): { blueprint: string; file: string; files: Record<string, string> } {
  const blueprint = readFileSync(path, 'utf8');
  const files: Record<string, string> = {};
  let init: { path?: string }[] = [];
  try {
    init = ((parse(blueprint) as { initialization?: { path?: string }[] } | null)?.initialization ?? []);
  } catch {
    // the control plane names the YAML error
  }
  init.forEach((i, n) => {
    if (typeof i?.path !== 'string') return;
    const p = join(dirname(path), i.path);
    try {
      files[i.path] = readFileSync(p, 'utf8');
    } catch {
      throw new Error(`initialization[${n}].path: cannot read ${p}`);
    }
  });
  return { blueprint, file: basename(path), files };
}

export function parseVars(pairs: string[], varsFile?: string): Record<string, unknown> {
  const out: Record<string, unknown> = varsFile ? (parse(readFileSync(varsFile, 'utf8')) as Record<string, unknown>) : {};
  for (const p of pairs) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(p);
    if (!m) throw new Error(`--var: expected K=V, got ${JSON.stringify(p)}`);
    out[m[1]!] = parse(m[2]!);
  }
  return out;
}
