/** For tests: what under a directory others on the host could read, list or connect to. */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every entry under `root` (and `root` itself) that is not private: directories must be 0700,
 * regular files 0600, sockets without group/other bits. Each offender as `mode path`.
 */
export function notPrivate(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    const mode = st.mode & 0o7777;
    const bad = st.isDirectory() ? mode !== 0o700 : st.isFile() ? mode !== 0o600 : st.isSocket() ? (mode & 0o077) !== 0 : false;
    if (bad) out.push(`${mode.toString(8).padStart(4, '0')} ${p}`);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(root);
  return out;
}
