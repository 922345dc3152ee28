/** Human tables by default, JSON with `--json`; progress goes to stderr so stdout stays clean. */
import Table from 'cli-table3';
import { humanSize } from '../core/units.ts';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** kubectl-style columns: no borders, two spaces between. */
export function printTable(head: string[], rows: (string | number | null | undefined)[][]): void {
  const t = new Table({
    head,
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  process.stdout.write(t.toString().split('\n').map((l) => l.trimEnd()).join('\n') + '\n');
}

export function printFields(fields: [string, unknown][]): void {
  const w = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) process.stdout.write(`${(k + ':').padEnd(w + 2)}${v === null || v === undefined ? '-' : String(v)}\n`);
}

export function progress(msg: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${msg}`);
  else process.stderr.write(msg + '\n');
}

export function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\n');
}

export const size = (b: number | null | undefined) => (b === null || b === undefined ? '-' : humanSize(b));

export function age(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
