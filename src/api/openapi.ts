/** OpenAPI 3.1, generated from the route table; checked in as docs/openapi.json. */
import { z } from 'zod';
import { ERROR_STATUS, ErrorBody } from './errors.ts';
import { API_VERSION, routes, WHO_MAY_CALL, type Route } from './routes.ts';

function schemaOf(s: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  return z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
}

function parameters(route: Route): unknown[] {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
    if (!schema) continue;
    const json = schemaOf(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, s] of Object.entries(json.properties ?? {})) {
      out.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), schema: s });
    }
  }
  return out;
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [id, r] of Object.entries(routes) as [string, Route][]) {
    const op: Record<string, unknown> = {
      operationId: id,
      summary: r.summary,
      description: `Access: ${r.access}, i.e. ${WHO_MAY_CALL[r.access]}.`,
      parameters: parameters(r),
      security: r.access === 'public' ? [] : [{ bearer: [] }],
      'x-butter-access': r.access,
      responses: {
        [r.status]: {
          description: 'OK',
          content: r.rawResponse
            ? { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } }
            : { 'application/json': { schema: schemaOf(r.response, 'output') } },
        },
        default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (r.rawBody) op.requestBody = { required: true, content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } };
    else if (r.body) op.requestBody = { required: !r.body.safeParse(undefined).success, content: { 'application/json': { schema: schemaOf(r.body, 'input') } } };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Butter API', version: API_VERSION, description: 'The cloud, but butter.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: schemaOf(ErrorBody, 'output') },
      'x-butter-error-status': ERROR_STATUS,
    },
    paths,
  };
}
