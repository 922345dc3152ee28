/**
 * Binds handlers to the route table: parse → authenticate → authorize → validate → handle.
 * Validation failures and ApiErrors become the one error envelope; nothing else answers 5xx
 * unless it really is our fault.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, fromZodError } from '../api/errors.ts';
import { routes, type Route, type RouteId } from '../api/routes.ts';
import { authenticate, authorize, type Principal } from './auth.ts';
import type { Db } from './store/db.ts';

export interface Call {
  who: Principal;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  req: FastifyRequest;
  reply: FastifyReply;
}

export type Handler = (call: Call) => unknown;
export type Handlers = Record<RouteId, Handler>;

const PUBLIC: Principal = { role: 'viewer', node: null, tokenId: 'public' };

function parse(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return value;
  const r = schema.safeParse(value);
  if (!r.success) throw fromZodError(r.error, where === 'body' ? undefined : where);
  return r.data;
}

export function buildHttp(db: Db, handlers: Handlers, log: boolean | object = false, https?: { key: string; cert: string }): FastifyInstance {
  // Over TLS the server speaks HTTP/2 as well as HTTP/1.1: an agent then holds one connection
  // for its watches, reports and console, instead of one per request in flight (each TLS
  // connection costs the server about 60 KB, so 1,000 agents × 4 was most of its memory).
  const app = (
    https
      ? Fastify({ logger: log, bodyLimit: 2 * 1024 * 1024, http2: true, https: { allowHTTP1: true, key: https.key, cert: https.cert } })
      : Fastify({ logger: log, bodyLimit: 2 * 1024 * 1024 })
  ) as unknown as FastifyInstance;
  // Blob uploads stream straight to disk; no size limit applies to them.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.setErrorHandler((err: unknown, _req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send(err.toBody());
    const e = err as { statusCode?: number; message?: string; code?: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 413 ? 'too_large' : e.statusCode === 415 ? 'unsupported_media_type' : 'invalid';
      return reply.code(e.statusCode).send(new ApiError(code, e.message ?? 'bad request', 'body').toBody());
    }
    app.log.error(err);
    return reply.code(500).send(new ApiError('internal', 'internal error').toBody());
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(new ApiError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`).toBody()));

  for (const [id, route] of Object.entries(routes) as [RouteId, Route][]) {
    const handler = handlers[id];
    app.route({
      method: route.method,
      url: route.path.replace(/\{(\w+)\}/g, ':$1'),
      handler: async (req, reply) => {
        // `join` routes carry a join token, checked by their handler, not an API token.
        const who = route.access === 'public' || route.access === 'join' ? PUBLIC : authenticate(db, req.headers.authorization);
        const rawParams = req.params as Record<string, string>;
        authorize(who, route.access, route.access === 'node' ? rawParams.name : undefined);
        const params = parse(route.params, rawParams, 'params') as Record<string, string>;
        const query = parse(route.query, req.query ?? {}, 'query') as Record<string, unknown>;
        if (!route.rawBody && req.body !== undefined && req.headers['content-type']?.startsWith('application/octet-stream')) {
          throw new ApiError('unsupported_media_type', 'this route takes JSON', 'body');
        }
        const body = route.rawBody ? req.body : parse(route.body, req.body, 'body');
        const out = await handler({ who, params, query, body, req, reply });
        if (route.rawResponse) return reply.code(route.status).send(out);
        return reply.code(route.status).send(out ?? {});
      },
    });
  }
  return app;
}
