/**
 * Binds handlers to the route table: authenticate → authorize → parse → validate → handle.
 * Who may call is decided in each route's onRequest hook, before Fastify reads the body:
 * a caller without the right gets 401 or 403 whatever it sends, never 400 or 413.
 * Validation failures and ApiErrors become the one error envelope; nothing else answers 5xx
 * unless it really is our fault.
 */
import { randomBytes } from 'node:crypto';
import type { Http2Session } from 'node:http2';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, fromZodError } from '../api/errors.ts';
import { routes, type Route, type RouteId } from '../api/routes.ts';
import { authenticate, authorize, type Principal } from './auth.ts';
import { checkJoinToken } from './join.ts';
import type { Store } from './store/store.ts';

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

/** The caller of a `public` or `join` route: no API token. Handlers of those routes do not look at it. */
const NOBODY: Principal = { role: 'viewer', node: null, tokenId: 'public' };

function parse(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return value;
  const r = schema.safeParse(value);
  if (!r.success) throw fromZodError(r.error, where === 'body' ? undefined : where);
  return r.data;
}

/** Where a 5xx goes, with the request id its answer carries: never silent (a full disk, a bug). */
export type ServerErrorLog = (err: unknown, ctx: { requestId: string; method: string; url: string }) => void;

/** The default: one JSON line on stderr, the stack included. */
const stderrLog: ServerErrorLog = (err, ctx) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'internal error', ...ctx, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) })}\n`);
};

export function buildHttp(store: Store, handlers: Handlers, log: boolean | object = false, https?: { key: string; cert: string }, onServerError: ServerErrorLog = stderrLog): FastifyInstance {
  // Over TLS the server speaks HTTP/2 as well as HTTP/1.1: an agent then holds one connection
  // for its watches, reports and console, instead of one per request in flight (each TLS
  // connection costs the server about 60 KB, so 1,000 agents × 4 was most of its memory).
  const app = (
    https
      ? Fastify({ logger: log, bodyLimit: 2 * 1024 * 1024, genReqId, http2: true, https: { allowHTTP1: true, key: https.key, cert: https.cert } })
      : Fastify({ logger: log, bodyLimit: 2 * 1024 * 1024, genReqId })
  ) as unknown as FastifyInstance;
  if (https) closeSessionsOnClose(app);
  // Blob uploads stream straight to disk; no size limit applies to them.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send(err.toBody());
    const e = err as { statusCode?: number; message?: string; code?: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 413 ? 'too_large' : e.statusCode === 415 ? 'unsupported_media_type' : 'invalid';
      return reply.code(e.statusCode).send(new ApiError(code, e.message ?? 'bad request', 'body').toBody());
    }
    // The answer says only which request it was; the log has the rest, under the same id.
    const requestId = String(req.id);
    onServerError(err, { requestId, method: req.method, url: req.url.split('?')[0]! });
    const body = new ApiError('internal', `internal error (request ${requestId}; the control plane's log has the details)`).toBody();
    return reply.code(500).header('x-request-id', requestId).send({ error: { ...body.error, requestId } });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(new ApiError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`).toBody()));

  const callers = new WeakMap<FastifyRequest, Principal>();
  for (const [id, route] of Object.entries(routes) as [RouteId, Route][]) {
    const handler = handlers[id];
    app.route({
      method: route.method,
      url: route.path.replace(/\{(\w+)\}/g, ':$1'),
      onRequest: async (req) => {
        // `join` routes carry a join token, not an API token; its handler checks it again as it spends it.
        if (route.access === 'join') checkJoinToken(store.db, req.headers.authorization, store.now());
        const who = route.access === 'public' || route.access === 'join' ? NOBODY : authenticate(store.db, req.headers.authorization);
        authorize(who, route.access, route.access === 'node' ? (req.params as Record<string, string>).name : undefined);
        callers.set(req, who);
      },
      handler: async (req, reply) => {
        const who = callers.get(req)!;
        const params = parse(route.params, req.params, 'params') as Record<string, string>;
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

/** Random, so ids from before a restart never repeat in the log. */
function genReqId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * A server's close waits for every connection to end, and an HTTP/2 client (every agent, the
 * local one of `butter up` included) keeps its connection open: SIGTERM never finished. So at
 * close each session is told to go away (GOAWAY: streams in flight may finish), and whatever
 * still stands after a grace period is cut.
 */
function closeSessionsOnClose(app: FastifyInstance): void {
  const sessions = new Set<Http2Session>();
  app.server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  app.addHook('preClose', (done) => {
    for (const s of sessions) {
      s.close();
      setTimeout(() => s.destroy(), CLOSE_GRACE_MS).unref();
    }
    done();
  });
}

/** Long enough for a request in flight to finish; a long-poll still waiting is cut then (its agent reconnects to the next server). */
const CLOSE_GRACE_MS = 2000;
