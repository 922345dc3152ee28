/**
 * What `--blueprint` and `--var`/`--vars-file` give the API: the blueprint with its templates
 * (read by the SDK's loader, sdk/blueprint-bundle.ts, so the SDK and the CLI read a blueprint
 * alike) and the variables, `--vars-file F.yml` (a map) overridden by each `--var K=V`.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parse, parseDocument } from 'yaml';
import { isVarName } from '../core/blueprint/index.ts';
import { UsageError } from './config.ts';

export { loadBundle, type Bundle } from '../sdk/blueprint-bundle.ts';

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/**
 * `--vars-file` (a YAML map) and `--var K=V`s, the latter winning. V is read as YAML when it
 * is a flow list or map (`[a, b]`, `{k: v}`) or quoted (`"8080"` stays text); otherwise it is
 * a number, true/false or null only when it reads back exactly so (`8080`, `true`), and the
 * text as given in every other case (`1.10`, `010`, `a: b` stay text).
 */
export function parseVars(pairs: string[], varsFile?: string): Record<string, unknown> {
  const vars: Record<string, unknown> = varsFile === undefined ? {} : readVarsFile(varsFile);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`var: --var ${JSON.stringify(pair)} must be NAME=VALUE`);
    const name = pair.slice(0, eq);
    if (!isVarName(name)) throw new UsageError(`var: --var ${JSON.stringify(pair)}: ${JSON.stringify(name)} is not a variable name (letters, digits and _, not starting with a digit)`);
    vars[name] = varValue(name, pair.slice(eq + 1));
  }
  return vars;
}

function varValue(name: string, text: string): unknown {
  if (/^[[{"']/.test(text)) {
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length > 0) throw new UsageError(`var: --var ${name}=${text}: not a YAML value: ${doc.errors[0]!.message}`);
    return doc.toJS();
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch {
    return text;
  }
  const plain = typeof value === 'number' || typeof value === 'boolean' || value === null;
  return plain && String(value) === text ? value : text;
}

function readVarsFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`vars-file: cannot read ${path}: ${errno(e) === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const { line, col } = lines.linePos(e.pos[0]);
    throw new UsageError(`vars-file: ${path}:${line}:${col}: ${e.message}`);
  }
  const value = doc.toJS() as unknown;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`vars-file: ${path} must be a map of variable names to values (got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)})`);
  }
  const vars: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!isVarName(k)) throw new UsageError(`vars-file: ${path}: ${JSON.stringify(k)} is not a variable name (letters, digits and _, not starting with a digit)`);
    vars[k] = v;
  }
  return vars;
}
