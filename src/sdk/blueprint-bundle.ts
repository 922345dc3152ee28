/**
 * A blueprint as the API takes it: its YAML, its file name (for messages) and the text of
 * every template it names, read relative to the blueprint's directory. The SDK's
 * `service.create(..., { blueprint: PATH })` and the CLI's `--blueprint` both read it here.
 * Paths are checked twice: the blueprint refuses absolute ones and `..` leaving its directory
 * (core/blueprint/validate.ts), and here the real path (symlinks followed) must stay inside
 * it too, so a blueprint from elsewhere cannot pull `~/.ssh` into a VM's user-data.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, resolve, sep } from 'node:path';
import { MAX_USER_DATA } from '../api/schemas/vm.ts';
import { blueprintPosition, BlueprintError, parseBlueprint, templatePaths } from '../core/blueprint/index.ts';
import { humanSize } from '../core/units.ts';

export interface Bundle {
  /** The blueprint's YAML text. */
  blueprint: string;
  /** Its base name, for messages. */
  file: string;
  /** Template path as written in the blueprint -> its text. */
  files: Record<string, string>;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

export function loadBundle(path: string): Bundle {
  let blueprint: string;
  let real: string;
  try {
    real = realpathSync(path);
    blueprint = readFileSync(real, 'utf8');
  } catch (e) {
    throw new Error(`blueprint: cannot read ${path}: ${errno(e) === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const file = basename(path);
  const bp = parseBlueprint(blueprint, file);
  const dir = dirname(real);
  const files: Record<string, string> = {};
  templatePaths(bp).forEach((p, i) => {
    const key = `initialization[${i}].path`;
    const at = blueprintPosition(blueprint, ['initialization', i, 'path']);
    const fail = (detail: string) => new BlueprintError(file, at?.line, at?.col, key, detail);
    const tried = resolve(dir, p);
    let target: string;
    try {
      target = realpathSync(tried);
    } catch (e) {
      throw fail(errno(e) === 'ENOENT' ? `no such file (tried ${tried})` : `cannot read ${tried}: ${(e as Error).message}`);
    }
    if (!target.startsWith(dir + sep)) throw fail(`${tried} leads outside the blueprint's directory (to ${target})`);
    const st = statSync(target);
    if (!st.isFile()) throw fail(`${tried} is not a file`);
    if (st.size > MAX_USER_DATA) throw fail(`${tried} is ${humanSize(st.size)}; user-data may be at most ${humanSize(MAX_USER_DATA)}`);
    files[p] = readFileSync(target, 'utf8');
  });
  return { blueprint, file, files };
}
