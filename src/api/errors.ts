/**
 * One error envelope, `{"error":{"code","message","field"?}}`, and one code→status map.
 * Every layer throws `ApiError`; only the HTTP layer turns a code into a status.
 */
import { z } from 'zod';

export const ERROR_STATUS = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  /** A request with the session cookie that changes something lacks the session's `x-csrf-token` (server/sessions.ts). */
  csrf_failed: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  too_large: 413,
  unsupported_media_type: 415,
  no_capacity: 422,
  /** An Idempotency-Key sent again with a different request (server/idempotency.ts). */
  key_reused: 422,
  /** The representation asked for cannot be made here: an SVG graph without Graphviz's `dot` on the control plane, or one it could not draw in time. */
  not_acceptable: 406,
  /** Too many of a costly request at once (SVG drawings); try again shortly. */
  too_many_requests: 429,
  internal: 500,
  /** The control plane is shutting down (its store closed under the request): try again, on the next one. */
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      field: z.string().optional(),
      /** On a 500 only: the id the control plane logged the error under (also `x-request-id`). */
      requestId: z.string().optional(),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) } };
  }
}

/**
 * Turns a zod failure into the envelope's first issue, with its path as `field`, written as
 * in JavaScript: `disks[1].size`.
 */
export function fromZodError(err: z.ZodError, prefix?: string): ApiError {
  const issue = err.issues[0];
  const path = [prefix, ...(issue?.path ?? []).map(String)]
    .filter((k): k is string => Boolean(k))
    .reduce((out, key) => (/^\d+$/.test(key) ? `${out}[${key}]` : out ? `${out}.${key}` : key), '');
  const message = issue ? (path ? `${path}: ${issue.message}` : issue.message) : 'invalid input';
  return new ApiError('invalid', message, path || undefined);
}
