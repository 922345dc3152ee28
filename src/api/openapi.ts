/** OpenAPI 3.1, generated from the route table; checked in as docs/openapi.json. */
import { z } from 'zod';
import { ERROR_STATUS, ErrorBody } from './errors.ts';
import { API_VERSION, routes, WHO_MAY_CALL, type Route } from './routes.ts';

type Json = Record<string, unknown>;
type Io = 'input' | 'output';

const COMPONENTS = '#/components/schemas/';

/**
 * Every schema with a `.meta({ id })` becomes `components/schemas/<id>`, and every reference to it
 * a `$ref` there: zod's registry mode (`z.toJSONSchema(registry, { uri })`) emits the refs itself.
 * Converting one schema at a time instead nests `$defs` in each and points at `#/$defs/…`, which
 * resolves against the document root, where nothing is: standard tools refuse the document.
 */
class Pass {
  private readonly rendered: Record<string, Json>;
  private readonly keys = new Map<z.ZodType, string>();

  constructor(schemas: z.ZodType[], io: Io, uri: (id: string) => string) {
    const registry = z.registry<{ id: string }>();
    for (const [id, s] of z.globalRegistry._idmap) registry.add(s as z.ZodType, { id });
    // Route-level schemas without an id (`z.array(Node)`, path parameters) ride along under a
    // private key so they are rendered in the same pass, and are inlined, never hoisted.
    for (const s of schemas) {
      if (this.keys.has(s)) continue;
      let key = this.idOf(s);
      if (key === undefined) registry.add(s, { id: (key = `~${this.keys.size}`) });
      this.keys.set(s, key);
    }
    const { schemas: out } = z.toJSONSchema(registry, { io, unrepresentable: 'any', target: 'draft-2020-12', uri });
    if ('__shared' in out) throw new Error('OpenAPI: a schema needs shared $defs; give it a .meta({ id })');
    // The document is the one schema resource: no `$schema` (3.1 sets the dialect) and no `$id`
    // (a fragment-only `$id` is not allowed, and would re-base every `$ref` inside it).
    this.rendered = Object.fromEntries(Object.entries(out).map(([k, { $schema: _s, $id: _i, ...rest }]) => [k, rest as Json]));
  }

  private idOf(s: z.ZodType): string | undefined {
    return z.globalRegistry.get(s)?.id as string | undefined;
  }

  /** The whole schema, even when it has an id (parameters are spread from it). */
  full(s: z.ZodType): Json {
    return this.rendered[this.keys.get(s)!]!;
  }

  /** A `$ref` for a schema with an id, else the schema inline. */
  use(s: z.ZodType, uri: (id: string) => string): Json {
    const id = this.idOf(s);
    return id === undefined ? this.full(s) : { $ref: uri(id) };
  }

  /** The component `id`, as this pass renders it. */
  named(id: string): Json | undefined {
    return this.rendered[id];
  }
}

/** The component names every `$ref` under `value` points at, followed through `components`. */
function reachable(value: unknown, component: (name: string) => Json | undefined, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) reachable(v, component, found);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith(COMPONENTS)) {
        const name = v.slice(COMPONENTS.length);
        if (!found.has(name)) {
          found.add(name);
          reachable(component(name), component, found);
        }
      } else reachable(v, component, found);
    }
  }
  return found;
}

function parameters(route: Route, pass: Pass): unknown[] {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', route.params], ['query', route.query], ['header', route.headers]] as const) {
    if (!schema) continue;
    const json = pass.full(schema) as { properties?: Record<string, { description?: string }>; required?: string[] };
    for (const [name, s] of Object.entries(json.properties ?? {})) {
      const { description, ...schema } = s;
      out.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), ...(description ? { description } : {}), schema });
    }
  }
  return out;
}

/** Routes that read an Idempotency-Key mark an answer given again (server/idempotency.ts). */
const takesKey = (r: Route): boolean => r.headers !== undefined && 'Idempotency-Key' in ((r.headers as unknown as { shape?: object }).shape ?? {});
const REPLAYED = {
  'Idempotent-Replayed': { description: '`true` when this is the answer to an earlier request with the same Idempotency-Key, sent again', schema: { type: 'string', enum: ['true'] } },
};

const octets = { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } };
const rawContent = (r: Route) => (r.rawMediaType ? { [r.rawMediaType]: { schema: { type: 'string', contentMediaType: r.rawMediaType } } } : octets);

/**
 * The document of the route table as served at `/openapi.json`: built once (it takes
 * milliseconds and never changes while the process runs), frozen so no caller can alter what
 * the next one is served.
 */
export function servedOpenApiDocument(): Readonly<Record<string, unknown>> {
  return (served ??= deepFreeze(openApiDocument()));
}
let served: Readonly<Record<string, unknown>> | undefined;

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** The document for `table` (the route table unless a test gives its own), built afresh. */
export function openApiDocument(table: Record<string, Route> = routes): Record<string, unknown> {
  const all = Object.entries(table);
  const inputs = all.flatMap(([, r]) => [r.params, r.query, r.headers, r.rawBody ? undefined : r.body].filter((s): s is z.ZodType => s !== undefined));
  const outputs = [ErrorBody, ...all.filter(([, r]) => !r.rawResponse).map(([, r]) => r.response)];

  // A named schema reads differently as input and as output (defaults make fields optional on the
  // way in; objects are closed on the way out). Requests and responses seldom share one; when
  // they do and the two differ, the request side gets its own component, `<id>Input`.
  const plain = (id: string): string => COMPONENTS + id;
  const out = new Pass(outputs, 'output', plain);
  let inUri = plain;
  let inp = new Pass(inputs, 'input', inUri);
  const outNames = reachable(outputs.map((s) => out.use(s, plain)), (n) => out.named(n));
  const inNames = reachable(inputs.map((s) => [inp.use(s, plain), inp.full(s)]), (n) => inp.named(n));
  const split = new Set([...inNames].filter((n) => outNames.has(n) && JSON.stringify(inp.named(n)) !== JSON.stringify(out.named(n))));
  if (split.size > 0) {
    inUri = (id) => COMPONENTS + (split.has(id) ? `${id}Input` : id);
    inp = new Pass(inputs, 'input', inUri);
  }
  const components: Record<string, Json> = {};
  for (const n of outNames) components[n] = out.named(n)!;
  for (const n of inNames) components[split.has(n) ? `${n}Input` : n] = inp.named(n)!;

  const paths: Record<string, Record<string, unknown>> = {};
  for (const [id, r] of all) {
    const op: Record<string, unknown> = {
      operationId: id,
      summary: r.summary,
      description: `Access: ${r.access}, i.e. ${WHO_MAY_CALL[r.access]}.`,
      parameters: parameters(r, inp),
      security: r.access === 'public' ? [] : [{ bearer: [] }, { session: [] }],
      'x-butter-access': r.access,
      responses: {
        ...(r.websocket
          ? { 101: { description: 'Switching Protocols: the connection is a WebSocket from here on (see the summary for its frames)' } }
          : { [r.status]: { description: 'OK', ...(takesKey(r) ? { headers: REPLAYED } : {}), content: r.rawResponse ? rawContent(r) : { 'application/json': { schema: out.use(r.response, plain) }, ...Object.fromEntries((r.alsoText ?? []).map((t) => [t, { schema: { type: 'string' } }])) } } }),
        ...(r.alsoStatus ? { [r.alsoStatus.status]: { description: r.alsoStatus.description, content: { 'application/json': { schema: out.use(r.response, plain) } } } } : {}),
        default: { description: 'Error', content: { 'application/json': { schema: out.use(ErrorBody, plain) } } },
      },
    };
    if (r.rawBody) op.requestBody = { required: true, content: octets };
    else if (r.body) op.requestBody = { required: !r.body.safeParse(undefined).success, content: { 'application/json': { schema: inp.use(r.body, inUri) } } };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Butter API', version: API_VERSION, description: 'The cloud, but butter.' },
    // Every path in the route table is absolute (`/healthz`, `/v1/…`), so the server URL is the
    // bare origin. A template with defaults: what `butter up` listens on unless told otherwise.
    servers: [
      {
        url: 'https://{host}:{port}',
        description: 'A Butter control plane (`butter server --listen HOST:PORT`), HTTPS under its own CA.',
        variables: { host: { default: '127.0.0.1' }, port: { default: '7700' } },
      },
    ],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        // The web panel's: POST /v1/sessions sets it; changing requests also need header x-csrf-token.
        session: { type: 'apiKey', in: 'cookie', name: 'butter_session', description: 'A panel session (`POST /v1/sessions`). With it, a request that is not GET or HEAD must carry the session\'s `csrf` in header `x-csrf-token`.' },
      },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      'x-butter-error-status': ERROR_STATUS,
    },
    paths,
  };
}
