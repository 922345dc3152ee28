/**
 * The template engine, closed in: nunjucks renders from strings only (no loader, so
 * `{% include "/etc/passwd" %}` finds nothing), throws on an undefined value it outputs, and
 * does not escape HTML (user-data is not HTML).
 *
 * nunjucks does not sandbox: out of the box `{{ range.constructor("…")() }}` runs any
 * JavaScript in the process that renders (we watched it answer 42). Templates come from
 * whoever creates a service, and rendering may happen in the control plane, so the two
 * lookups compiled templates make (member `a.b`, `a[b]`, and bare names) are wrapped here:
 * no member of a function, no `constructor`/`__proto__`/`prototype`/getter-setter hooks, and
 * bare names that are Object's own properties (`constructor`, `toString`) are undefined.
 * The wrappers are installed on nunjucks' shared runtime (compiled code calls it), once.
 */
import nunjucks from 'nunjucks';

const HIDDEN = new Set(['constructor', '__proto__', 'prototype', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__', 'caller', 'callee', 'arguments']);

/**
 * `range()` may give this many numbers in all, per file rendered: a template's loops (nested
 * ones too) must not stall the process that renders.
 */
export const MAX_RANGE = 10_000;

/** nunjucks' own template functions; a variable may not take their names. */
export const TEMPLATE_FUNCTIONS = ['range', 'cycler', 'joiner'] as const;

/**
 * Jinja's `range`, with a budget of MAX_RANGE numbers for one rendering. Given to each
 * rendering as a variable (variables come before nunjucks' globals), so budgets are not shared.
 */
export function boundedRange(): (start: number, stop?: number, step?: number) => number[] {
  let left = MAX_RANGE;
  return (start, stop, step) => {
    if (stop === undefined) [start, stop, step] = [0, start, 1];
    step = step || 1;
    const n = Math.max(0, Math.ceil((Number(stop) - Number(start)) / step));
    if (!Number.isFinite(n) || n > left) throw new Error(`range() of more than ${MAX_RANGE} numbers in all is refused`);
    left -= n;
    return Array.from({ length: n }, (_, i) => start + i * step);
  };
}

interface Runtime {
  memberLookup(obj: unknown, val: unknown): unknown;
  contextOrFrameLookup(context: unknown, frame: unknown, name: string): unknown;
}

function harden(rt: Runtime): void {
  const memberLookup = rt.memberLookup;
  rt.memberLookup = (obj, val) => {
    if (obj === undefined || obj === null) return undefined;
    const key = String(val);
    if (typeof obj === 'function') throw new Error(`a template may not look up "${key}" of a function`);
    if (HIDDEN.has(key)) throw new Error(`a template may not look up "${key}"`);
    return memberLookup(obj, val);
  };
  const lookup = rt.contextOrFrameLookup;
  rt.contextOrFrameLookup = (context, frame, name) => (Object.prototype.hasOwnProperty.call(Object.prototype, name) ? undefined : lookup(context, frame, name));
}

let env: nunjucks.Environment | undefined;

/** The one environment; hardened on first use. */
export function templateEnv(): nunjucks.Environment {
  if (env) return env;
  harden(nunjucks.runtime as unknown as Runtime);
  env = new nunjucks.Environment([], { autoescape: false, throwOnUndefined: true });
  // Each rendering passes its own bounded `range` as a variable; should one ever not, the
  // global is bounded too (per call).
  env.addGlobal('range', (start: number, stop?: number, step?: number) => boundedRange()(start, stop, step));
  return env;
}

/** A template compiled at once (syntax errors throw here, not at render). */
export function compileTemplate(text: string, name: string): nunjucks.Template {
  return new nunjucks.Template(text, templateEnv(), name, true);
}

interface AstNode {
  typename: string;
  lineno: number;
  colno: number;
  value?: unknown;
  target?: AstNode;
  val?: AstNode;
  children?: AstNode[];
}

/** The template's syntax tree (nunjucks' parser is public but untyped). */
export function parseTemplate(text: string): AstNode {
  return (nunjucks as unknown as { parser: { parse(src: string): AstNode } }).parser.parse(text);
}

/** The expression of the `{{ … }}` that starts at (line, col), 1-based, if it is a name or a.b.c. */
export function outputExpression(text: string, line: number, col: number): { expr: string; line: number; col: number; symbol?: string } | undefined {
  let found: AstNode | undefined;
  const walk = (n: unknown): void => {
    if (found || !n || typeof n !== 'object') return;
    if (Array.isArray(n)) return n.forEach(walk);
    const node = n as AstNode;
    if (node.typename === 'Output' && node.lineno === line - 1 && node.colno === col - 1 && node.children?.[0]?.typename !== 'TemplateData') {
      found = node.children?.[0];
      return;
    }
    for (const v of Object.values(node)) if (v && typeof v === 'object') walk(v);
  };
  try {
    walk(parseTemplate(text));
  } catch {
    return undefined;
  }
  if (!found) return undefined;
  const expr = describeExpr(found);
  if (expr === undefined) return undefined;
  let start = found;
  while (start.typename === 'LookupVal' && start.target) start = start.target;
  return { expr, line: start.lineno + 1, col: start.colno + 1, symbol: found.typename === 'Symbol' ? String(found.value) : undefined };
}

function describeExpr(n: AstNode | undefined): string | undefined {
  if (!n) return undefined;
  if (n.typename === 'Symbol') return String(n.value);
  if (n.typename === 'LookupVal') {
    const target = describeExpr(n.target);
    if (target === undefined) return undefined;
    const v = n.val?.typename === 'Literal' ? n.val.value : undefined;
    if (typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) return `${target}.${v}`;
    if (typeof v === 'string' || typeof v === 'number') return `${target}[${JSON.stringify(v)}]`;
    const inner = describeExpr(n.val);
    return inner === undefined ? undefined : `${target}[${inner}]`;
  }
  return undefined;
}
