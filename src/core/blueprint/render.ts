/**
 * Rendering an instance's user-data: every initialization template with the service's
 * variables and the built-ins; one file as it is, several as MIME multipart.
 */
import { MAX_USER_DATA } from '../../api/schemas/vm.ts';
import { humanSize } from '../units.ts';
import { builtinVars } from './builtins.ts';
import { BlueprintError } from './error.ts';
import { multipart } from './mime.ts';
import { boundedRange, compileTemplate, outputExpression } from './sandbox.ts';
import type { Blueprint, InitFile, RenderInput } from './types.ts';

export function renderUserData(bp: Blueprint, input: RenderInput): string {
  refuseUndeclared(bp, input.vars);
  const width = String(bp.initialization.length - 1).length;
  const parts = bp.initialization.map((init, i) => ({ filename: partName(i, width, init.path), text: renderFile(init, i, input) }));
  if (parts.length === 0) return '';
  const out = parts.length === 1 ? parts[0]!.text : multipart(parts);
  const bytes = new TextEncoder().encode(out).length;
  if (bytes > MAX_USER_DATA) {
    throw new BlueprintError('user-data', undefined, undefined, 'initialization', `renders to ${bytes} bytes for instance ${input.builtins.index}; user-data may be at most ${humanSize(MAX_USER_DATA)}`);
  }
  return out;
}

/**
 * A part's file name: its index, then the template's base name (`0-setup.sh`). cloud-init
 * writes script parts under these names into one directory and runs them sorted by name, so
 * the index keeps the blueprint's order and two `setup.sh` from two directories apart.
 */
function partName(i: number, width: number, path: string): string {
  return `${String(i).padStart(width, '0')}-${path.split('/').pop()!}`;
}

/**
 * As the original Butter: a variable given that no template declares is refused (a typo
 * would otherwise go unnoticed while the template falls back to its default).
 */
function refuseUndeclared(bp: Blueprint, vars: Record<string, unknown>): void {
  const declared = new Set(bp.initialization.flatMap((f) => Object.keys(f.vars)));
  for (const name of Object.keys(vars)) {
    if (!declared.has(name)) {
      const known = [...declared].join(', ') || 'none';
      throw new BlueprintError('variables', undefined, undefined, name, `is not declared in any initialization[].vars of the blueprint (declared: ${known})`);
    }
  }
}

function renderFile(init: InitFile, i: number, input: RenderInput): string {
  const text = Object.hasOwn(input.files, init.path) ? input.files[init.path] : undefined;
  if (text === undefined) throw new BlueprintError(init.path, undefined, undefined, `initialization[${i}].path`, 'template file not given (not among the files read with the blueprint)');
  const ctx: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(init.vars)) {
    if (Object.hasOwn(input.vars, name)) ctx[name] = input.vars[name];
    else if (spec.default !== undefined) ctx[name] = spec.default;
    else if (spec.required) throw new BlueprintError(init.path, undefined, undefined, `initialization[${i}].vars.${name}`, `required variable ${name} is not set (--var ${name}=VALUE)`);
  }
  Object.assign(ctx, input.vars, builtinVars(input.builtins), { range: boundedRange() });
  try {
    return compileTemplate(text, init.path).render(ctx);
  } catch (e) {
    throw templateError(init.path, text, e, ctx);
  }
}

const NUNJUCKS_UNDEFINED = 'attempted to output null or undefined value';

/** nunjucks' error as a BlueprintError: its line and column, its words without the wrapping. */
function templateError(file: string, text: string, e: unknown, ctx: Record<string, unknown>): BlueprintError {
  const message = e instanceof Error ? e.message : String(e);
  const pos = /\[Line (\d+), Column (\d+)\]/.exec(message);
  // nunjucks wraps as "(file) [Line l, Column c]\n  words", again for each include level.
  const words = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(Template render error: )?\([^)]*\)( \[Line \d+, Column \d+\])?$/.test(l))
    .join(' ')
    .replace(/^(Template render error: )?(\w*Error: )/, '');
  let line = pos ? Number(pos[1]) : undefined;
  let col = pos ? Number(pos[2]) : undefined;
  let detail = words;
  if (words === NUNJUCKS_UNDEFINED && line !== undefined && col !== undefined) {
    const out = outputExpression(text, line, col);
    if (out) {
      [line, col] = [out.line, out.col];
      if (out.symbol !== undefined && Object.hasOwn(ctx, out.symbol) && ctx[out.symbol] === null) detail = `variable ${out.symbol} is null`;
      else if (out.symbol !== undefined) detail = `undefined variable ${out.symbol} (declare it in initialization[].vars and give it, or guard it with {% if ${out.symbol} is defined %})`;
      else detail = `${out.expr} is undefined or null`;
    } else detail = 'a value output here is undefined or null';
  }
  return new BlueprintError(file, line, col, '', detail);
}
