/** The one error of blueprints: where (file, line, column, key path) and what is wrong. */

/** `FILE:LINE:COL: key.path: detail`; line and column when known, the path when there is one. */
function format(file: string, line: number | undefined, column: number | undefined, path: string, detail: string): string {
  const where = line === undefined ? file : `${file}:${line}:${column ?? 1}`;
  return `${where}: ${path ? `${path}: ` : ''}${detail}`;
}

export class BlueprintError extends Error {
  readonly detail: string;
  /** Every problem found, this one first (parsing reports all of them; rendering stops at one). */
  problems: BlueprintError[] = [this];

  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly path: string,
    detail: string,
  ) {
    super(format(file, line, column, path, detail));
    this.name = 'BlueprintError';
    this.detail = detail;
  }

  /** One error for several problems: the first's fields, every problem's message on its own line. */
  static all(problems: BlueprintError[]): BlueprintError {
    const first = problems[0]!;
    first.problems = problems;
    first.message = problems.map((p) => format(p.file, p.line, p.column, p.path, p.detail)).join('\n');
    return first;
  }
}
