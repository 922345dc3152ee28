/**
 * A blueprint's YAML with its positions: the parsed document, a line counter to turn offsets
 * into line and column, and the problems found so far (each at the node it is about).
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { BlueprintError } from './error.ts';

export class YamlSource {
  readonly doc: Document;
  readonly problems: BlueprintError[] = [];
  private readonly lines = new LineCounter();

  /** Parses `text`; malformed YAML throws at once, with yaml's own message and position. */
  constructor(text: string, readonly file: string) {
    // prettyErrors off: the message stays yaml's one line; the position comes from `pos`.
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    // Warnings too (an unresolved tag like `!!python/object`, a map used as a key): strict on types.
    const errors = [...this.doc.errors, ...this.doc.warnings];
    if (errors.length > 0) {
      throw BlueprintError.all(errors.map((e) => {
        const { line, col } = this.lines.linePos(e.pos[0]);
        return new BlueprintError(file, line, col, '', e.message);
      }));
    }
  }

  /** Records a problem at `node` (where it starts), or at 1:1 when the node has no place. */
  problem(node: unknown, path: string, detail: string): void {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    const { line, col } = range ? this.lines.linePos(range[0]) : { line: 1, col: 1 };
    this.problems.push(new BlueprintError(this.file, line, col, path, detail));
  }

  /** Where the value at a key path (`['initialization', 0, 'path']`) starts, if it is there. */
  positionOf(path: (string | number)[]): { line: number; col: number } | undefined {
    const range = (this.doc.getIn(path, true) as { range?: [number, number, number] } | undefined)?.range;
    return range ? this.lines.linePos(range[0]) : undefined;
  }

  /** The node an alias (`*name`) stands for; any other node as it is. */
  resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** The plain value of a node (a var's `default`), aliases expanded. */
  toJS(node: unknown): unknown {
    const n = this.resolve(node);
    if (isScalar(n) || isMap(n) || isSeq(n)) return n.toJS(this.doc);
    return null;
  }
}

/** How a value is named in "got …": `a map`, `a list`, `nothing`, `"text"`, `3`, `true`. */
export function describe(node: unknown): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    if (node.value === null || node.value === undefined) return 'nothing';
    return typeof node.value === 'string' ? JSON.stringify(node.value) : String(node.value);
  }
  return 'nothing';
}
