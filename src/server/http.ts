/**
 * Binds handlers to the route table: authenticate → authorize → parse → validate → handle.
 * Who may call is decided in each route's onRequest hook, before Fastify reads the body:
 * a caller without the right gets 401 or 403 whatever it sends, never 400 or 413.
 * Validation failures and ApiErrors become the one error envelope; nothing else answers 5xx
 * unless it really is our fault.
 */
import { randomBytes } from 'node:crypto';
import fastifyCompress from '@fastify/compress';
import fastifyCookie from '@fastify/cookie';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, fromZodError } from '../api/errors.ts';
import { routes, type Route, type RouteId } from '../api/routes.ts';
import { authorize, cachedTokenRows, type Principal } from './auth.ts';
import { fingerprint, IdempotencyKeys, Replayed, type Once, type StoredAnswer } from './idempotency.ts';
import { checkJoinToken } from './join.ts';
import { callerOf, checkOrigin, Sessions } from './sessions.ts';
import type { ConsoleSocket } from './console-ws.ts';
import { servePanel } from './panel.ts';
import type { Store } from './store/store.ts';
import type { RequestObserver } from './metrics.ts';

export interface Call {
  who: Principal;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  /** The headers the route declares (`route.headers`), validated. */
  headers: Record<string, unknown>;
  /** The request's Idempotency-Key with its fingerprint, for the create's write (see idempotency.ts). */
  once?: Once;
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

/** The route's declared headers, by the names its schema gives them (HTTP header names have no case). */
function pickHeaders(schema: z.ZodType, headers: FastifyRequest['headers']): Record<string, unknown> {
  const names = Object.keys((schema as z.ZodObject).shape);
  return Object.fromEntries(names.filter((n) => headers[n.toLowerCase()] !== undefined).map((n) => [n, headers[n.toLowerCase()]]));
}

/** A kept answer, sent again as it was, and marked so. */
function replay(reply: FastifyReply, answer: StoredAnswer): FastifyReply {
  return reply.code(answer.status).header('idempotent-replayed', 'true').type('application/json; charset=utf-8').send(answer.response);
}

/** Where a 5xx goes, with the request id its answer carries: never silent (a full disk, a bug). */
export type ServerErrorLog = (err: unknown, ctx: { requestId: string; method: string; url: string }) => void;

/** The default: one JSON line on stderr, the stack included. */
const stderrLog: ServerErrorLog = (err, ctx) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'internal error', ...ctx, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) })}\n`);
};

export interface HttpOptions {
  /** Where the built web panel is (panel.ts; `dist/panel/` of this package by default). */
  panelDir?: string;
  /** Told of every answer, by route id (metrics.ts). */
  requests?: RequestObserver;
}

// No HPACK dynamic tables on the server's side of a session: neither for the headers it
// decodes (SETTINGS_HEADER_TABLE_SIZE 0 tells each client's encoder) nor for those it encodes.
// Each table may hold 4 KB of headers by default, and nghttp2 kept ~31 KB per session once
// agents' reports had filled them (heap snapshot, 1,000 agents, bench (f)); a heartbeat's few
// headers then go Huffman-coded or from the static table, some tens of bytes more each.
const H2_TABLES = { settings: { headerTableSize: 0 }, maxDeflateDynamicTableSize: 0 } as const;

export function buildHttp(store: Store, handlers: Handlers, log: boolean | object = false, https?: { key: string; cert: string }, onServerError: ServerErrorLog = stderrLog, opts: HttpOptions = {}): FastifyInstance {
  // Over TLS the server speaks HTTP/2 as well as HTTP/1.1: an agent then holds one connection
  // for its watches, reports and console, instead of one per request in flight (each TLS
  // connection costs the server about 60 KB, so 1,000 agents × 4 was most of its memory).
  const app = (
    https
      ? // forceCloseConnections: close() ends the clients' HTTP/2 sessions at once (agents reconnect
        // to the next process) instead of waiting out their 72 s idle timeout: a supervised
        // `systemctl restart` or stop is then prompt, not held up for a minute.
        Fastify({ logger: log, bodyLimit: 2 * 1024 * 1024, genReqId, http2: true, https: { allowHTTP1: true, key: https.key, cert: https.cert, ...H2_TABLES }, forceCloseConnections: true })
      : // Plain HTTP likewise: fastify's default ('idle') leaves a request under way (a long-poll,
        // up to 60 s) and then its keep-alive (72 s) holding close() up.
        Fastify({ logger: log, bodyLimit: 2 * 1024 * 1024, genReqId, forceCloseConnections: true })
  ) as unknown as FastifyInstance;
  // WebSocket routes (`websocket` in the table): upgrades of HTTP/1.1 requests, over plain HTTP
  // and over TLS (allowHTTP1: browsers open WebSockets over HTTP/1.1). A frame is at most the
  // console input a VM may have queued (consoles.ts); more closes the socket (1009).
  void app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
  // Blob uploads stream straight to disk; no size limit applies to them.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send(err.toBody());
    const e = err as { statusCode?: number; message?: string; code?: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 413 ? 'too_large' : e.statusCode === 415 ? 'unsupported_media_type' : 'invalid';
      return reply.code(e.statusCode).send(new ApiError(code, e.message ?? 'bad request', 'body').toBody());
    }
    // A request under way when the control plane closed its store (a long-poll its close
    // woke, a write queued just before): not a bug, and the next control plane can answer it.
    // Its connection is usually cut already; if not, the client is told to try again.
    if (!store.db.open) return reply.code(503).send(new ApiError('unavailable', 'the control plane is shutting down: try again').toBody());
    // The answer says only which request it was; the log has the rest, under the same id.
    const requestId = String(req.id);
    onServerError(err, { requestId, method: req.method, url: req.url.split('?')[0]! });
    const body = new ApiError('internal', `internal error (request ${requestId}; the control plane's log has the details)`).toBody();
    return reply.code(500).header('x-request-id', requestId).send({ error: { ...body.error, requestId } });
  });
  // Every answer, refusals and unknown paths too, counted by the route's id (its config), never
  // by the raw URL: names in paths would make a series per VM (metrics.ts).
  const requests = opts.requests;
  if (requests) {
    app.addHook('onResponse', async (req, reply) => {
      const route = (req.routeOptions.config as { routeId?: string } | undefined)?.routeId ?? 'unmatched';
      requests.answered(route, req.method, reply.statusCode, reply.elapsedTime / 1000);
    });
  }
  const callers = new WeakMap<FastifyRequest, Principal>();
  const keys = new IdempotencyKeys(store);
  const sessions = new Sessions(store);
  const tokenRows = cachedTokenRows(store);
  /** What a WebSocket route's handler returned before the upgrade: it takes the socket after it. */
  const attach = new WeakMap<FastifyRequest, (socket: ConsoleSocket) => void>();
  const table = Object.entries(routes) as [RouteId, Route][];
  // Two contexts (Fastify plugins), each with the hooks its callers need, so a request runs only
  // those. The agents' routes (`node` access: their desired state, heartbeats, consoles, probe
  // results; 1,000 agents report every 5 s) take a node token and answer on the cluster's own
  // network: no session cookie and no compression there (compressing a node's desired state on
  // every watch cost the control plane more CPU than its bytes cost the network). Everything
  // else, the panel's files and the users' API, has both. The routes are added once their
  // context's plugins have loaded (avvio runs registrations in order); @fastify/websocket, at
  // the root, sees them as they are added (its onRoute hook) and takes the upgrades of the
  // `websocket` ones.
  void app.register(async (agents) => {
    addRoutes(agents, table.filter(([, r]) => r.access === 'node'));
  });
  void app.register(async (users) => {
    // Parses Cookie headers (req.cookies) for the panel's session cookie; sets it (reply.setCookie).
    await users.register(fastifyCookie);
    // Answers compressed as the client asks (br, else gzip): the panel's files and JSON over 1 KiB.
    // Only text, JSON, JavaScript and SVG: never blobs (disks: the CPU for little, and agents
    // check their Content-Length) nor the event stream (a compressor holds a block back, so its
    // client would wait for events); those routes also opt out below. Request bodies are never
    // decompressed (a blob's digest is of the bytes as sent).
    await users.register(fastifyCompress, { threshold: 1024, encodings: ['br', 'gzip'], customTypes: COMPRESSIBLE, globalDecompression: false });
    // The web panel at `/`: its files, and index.html for other paths outside the API (panel.ts).
    const panel = servePanel(users, opts.panelDir);
    users.setNotFoundHandler((req, reply) => panel(req, reply) || reply.code(404).send(new ApiError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`).toBody()));
    addRoutes(users, table.filter(([, r]) => r.access !== 'node'));
  });
  return app;

  function addRoutes(api: FastifyInstance, entries: [RouteId, Route][]): void {
    for (const [id, route] of entries) {
      const handler = handlers[id];
      const admit = async (req: FastifyRequest) => {
        // `join` routes carry a join token, not an API token; its handler checks it again as it spends it.
        if (route.access === 'join') checkJoinToken(store.db, req.headers.authorization, store.now());
        // An Authorization header, else the panel's session cookie (with its CSRF check): sessions.ts.
        const who = route.access === 'public' || route.access === 'join' ? NOBODY : callerOf(store.db, sessions, req, tokenRows);
        // A WebSocket carries no CSRF header: with the cookie, its Origin must be ours.
        if (route.websocket && who.session) checkOrigin(req);
        authorize(who, route.access, route.access === 'node' ? (req.params as Record<string, string>).name : undefined);
        callers.set(req, who);
      };
      if (route.websocket) {
        // Everything that may refuse (who, params, query, the handler's own checks) runs before the
        // upgrade and answers as HTTP; the handler returns what takes the socket after it.
        api.route({
          method: 'GET',
          url: route.path.replace(/\{(\w+)\}/g, ':$1'),
          config: { routeId: id },
          compress: false,
          onRequest: admit,
          preHandler: async (req, reply) => {
            const params = parse(route.params, req.params, 'params') as Record<string, string>;
            const query = parse(route.query, req.query ?? {}, 'query') as Record<string, unknown>;
            attach.set(req, (await handler({ who: callers.get(req)!, params, query, body: undefined, headers: {}, req, reply })) as (socket: ConsoleSocket) => void);
          },
          handler: async () => {
            throw new ApiError('invalid', 'this route answers only a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket, over HTTP/1.1)');
          },
          wsHandler: (socket, req) => attach.get(req)!(socket as unknown as ConsoleSocket),
        });
        continue;
      }
      api.route({
        method: route.method,
        url: route.path.replace(/\{(\w+)\}/g, ':$1'),
        config: { routeId: id },
        // The event stream must reach its client message by message, a blob as it is stored
        // (their types are not COMPRESSIBLE either); /metrics is compressed when the scraper asks.
        ...(route.rawMediaType === 'text/event-stream' || id === 'getBlob' ? { compress: false as const } : {}),
        onRequest: admit,
        handler: async (req, reply) => {
          const who = callers.get(req)!;
          const params = parse(route.params, req.params, 'params') as Record<string, string>;
          const query = parse(route.query, req.query ?? {}, 'query') as Record<string, unknown>;
          if (!route.rawBody && req.body !== undefined && req.headers['content-type']?.startsWith('application/octet-stream')) {
            throw new ApiError('unsupported_media_type', 'this route takes JSON', 'body');
          }
          const body = route.rawBody ? req.body : parse(route.body, req.body, 'body');
          let headers: Record<string, unknown> = {};
          if (route.headers) {
            const r = route.headers.safeParse(pickHeaders(route.headers, req.headers));
            if (!r.success) throw fromZodError(r.error);
            headers = r.data as Record<string, unknown>;
          }
          const key = headers['Idempotency-Key'] as string | undefined;
          const once: Once | undefined = key === undefined ? undefined : { scope: who.tokenId, key, route: id, fingerprint: fingerprint(body), status: route.status };
          // Answered before: the same answer, without even checking the request again (what it
          // named may be gone since). The write checks once more, for retries racing the first.
          const kept = once && keys.find(once);
          if (kept) return replay(reply, kept);
          let out: unknown;
          try {
            out = await handler({ who, params, query, body, headers, ...(once ? { once } : {}), req, reply });
          } catch (e) {
            if (e instanceof Replayed) return replay(reply, e.answer);
            throw e;
          }
          if (route.rawResponse) return reply.code(route.status).send(out);
          // A handler may answer a route's declared second status (readiness: 503) with its body.
          const alsoStatus = route.alsoStatus?.status;
          return reply.code(reply.statusCode === alsoStatus ? alsoStatus : route.status).send(out ?? {});
        },
      });
    }
  }
}

/** What is worth compressing: text but the event stream, JSON, JavaScript, SVG (never octet-stream). */
export const COMPRESSIBLE = /^(?:text\/(?!event-stream)|application\/(?:[\w.+-]+\+)?json(?:;|$)|application\/javascript|image\/svg\+xml)/;

/**
 * A random prefix per process, so ids from before a restart do not repeat in the log, and a
 * counter (16 hex digits in all): drawing 8 random bytes for every request, most of them
 * heartbeats, cost a few per cent of the control plane's CPU.
 */
const REQ_ID_PREFIX = randomBytes(4).toString('hex');
let reqIds = 0;
function genReqId(): string {
  reqIds = (reqIds + 1) >>> 0;
  return REQ_ID_PREFIX + reqIds.toString(16).padStart(8, '0');
}
