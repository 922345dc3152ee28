/**
 * The API's error where it happened: `ApiErrorNote` under a form or action for errors that
 * name no field the form shows (a field's own error is shown by its `Field`).
 */
import { ButterError } from '../../../src/sdk/client.ts';

/** Whether `error` is about the form field `name` (`networks` also owns `networks[1]`). */
export function errorForField(error: unknown, name: string): ButterError | undefined {
  if (!(error instanceof ButterError) || !error.field) return undefined;
  const f = error.field;
  return f === name || f.startsWith(`${name}.`) || f.startsWith(`${name}[`) ? error : undefined;
}

export function errorText(error: unknown): string {
  if (error instanceof ButterError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Shows `error` unless it belongs to one of `fields` (shown next to that field instead). */
export function ApiErrorNote({ error, fields = [] }: { error: unknown; fields?: string[] }) {
  if (error === undefined || error === null) return null;
  if (fields.some((f) => errorForField(error, f))) return null;
  const code = error instanceof ButterError ? error.code : undefined;
  return (
    <p class="error" role="alert">
      {code ? <span class="code">{code}</span> : null} {errorText(error)}
    </p>
  );
}
