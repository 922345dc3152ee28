/**
 * Readers of one YAML value each (a map's keys, a whole number, a flag, a size, a text): each
 * returns the value or, after recording a problem at the node, undefined.
 */
import { isMap, isScalar, isSeq, Scalar, type Pair } from 'yaml';
import { MiB, parseBlueprintSize } from '../units.ts';
import { describe, type YamlSource } from './yaml-source.ts';

/** A key's value with the key's own node (for "unknown key" and "missing" positions). */
export interface Field {
  key: unknown;
  value: unknown;
}

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/**
 * The entries of a map, each known key once; unknown keys are refused at the key, listing
 * the known ones. `absent` (null, `key:` with nothing) reads as an empty map.
 */
export function mapFields(src: YamlSource, node: unknown, path: string, known: readonly string[]): Map<string, Field> | undefined {
  const n = src.resolve(node);
  if (isScalar(n) && n.value === null) return new Map();
  if (!isMap(n)) {
    src.problem(n, path, `must be a map with keys ${known.join(', ')} (got ${describe(n)})`);
    return undefined;
  }
  const out = new Map<string, Field>();
  for (const pair of n.items as Pair[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    if (key === undefined || !known.includes(key)) {
      src.problem(pair.key, join(path, key ?? '?'), `unknown key (known: ${known.join(', ')})`);
      continue;
    }
    out.set(key, { key: pair.key, value: src.resolve(pair.value) ?? nothingAt(pair.key) });
  }
  return out;
}

/** `key:` with no value: a null scalar placed at its key, so problems point there. */
function nothingAt(key: unknown): Scalar {
  const s = new Scalar(null);
  s.range = (key as { range?: [number, number, number] }).range;
  return s;
}

/** The items of a list; null (`key:` with nothing) reads as an empty list. */
export function listItems(src: YamlSource, node: unknown, path: string): unknown[] | undefined {
  const n = src.resolve(node);
  if (isScalar(n) && n.value === null) return [];
  if (!isSeq(n)) {
    src.problem(n, path, `must be a list (got ${describe(n)})`);
    return undefined;
  }
  return n.items.map((i) => src.resolve(i));
}

/** A required key that is absent: said at its parent map. */
export function missing(src: YamlSource, parent: unknown, path: string, example: string): void {
  src.problem(parent, path, `missing (e.g. ${example})`);
}

export function wholeNumber(src: YamlSource, node: unknown, path: string, min: number, max: number): number | undefined {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    src.problem(node, path, `must be a whole number from ${min} to ${max} (got ${describe(node)})`);
    return undefined;
  }
  return v;
}

export function flag(src: YamlSource, node: unknown, path: string): boolean | undefined {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'boolean') {
    src.problem(node, path, `must be true or false (got ${describe(node)})`);
    return undefined;
  }
  return v;
}

export function text(src: YamlSource, node: unknown, path: string): string | undefined {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'string' || v === '') {
    src.problem(node, path, `must be a non-empty string (got ${describe(node)})`);
    return undefined;
  }
  return v;
}

/**
 * A size with a unit, in bytes: the original's `4GB`, `512MiB`, `8 GiB` and Butter's `4G`,
 * `512M`, all binary (as everywhere in Butter). A whole number of MiB (QEMU sizes memory and
 * disks in MiB), more than none.
 */
export function size(src: YamlSource, node: unknown, path: string): number | undefined {
  const v = isScalar(node) ? node.value : undefined;
  const bytes = typeof v === 'string' ? parseBlueprintSize(v) : undefined;
  if (bytes === undefined) {
    src.problem(node, path, `${describe(node)} is not a size (e.g. 4GB or 4G)`);
    return undefined;
  }
  if (bytes <= 0 || bytes % MiB !== 0) {
    src.problem(node, path, `${describe(node)} must be more than 0 and a whole number of MiB`);
    return undefined;
  }
  return bytes;
}
