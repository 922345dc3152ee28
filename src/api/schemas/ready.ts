/**
 * Readiness (`GET /readyz`): whether this control plane can do what its start promised, check
 * by check. `/healthz` says the process answers; `/readyz` says a script may go on (create a
 * VM from the startup images, for instance).
 */
import { z } from 'zod';

export const ReadyCheck = z
  .object({
    name: z.string().describe('`store`; with `butter up` also `agent` (the local agent) and `image NAME` per startup image'),
    state: z.enum(['ok', 'waiting', 'failed']).describe('`waiting` may still turn `ok`; `failed` will not without an operator (see the log)'),
    detail: z.string().optional(),
  })
  .meta({ id: 'ReadyCheck' });
export type ReadyCheck = z.infer<typeof ReadyCheck>;

export const Readiness = z
  .object({
    ready: z.boolean().describe('every check is ok; the answer is 200 then, else 503'),
    checks: z.array(ReadyCheck),
  })
  .meta({ id: 'Readiness' });
export type Readiness = z.infer<typeof Readiness>;
