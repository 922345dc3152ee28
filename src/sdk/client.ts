/**
 * The typed Butter client. Its methods come from the route table, so the CLI, the agent and
 * the web panel call the same API with the server's own types.
 *
 * Browser-safe: no `node:` import here (the panel bundles this file). The node-only parts, a
 * pinned CA over Node's TLS, live in `node-client.ts`, whose `Client` is this one plus `ca`.
 */
import type { ErrorBody } from '../api/errors.ts';
import { routes, type BodyOf, type HeadersOf, type ParamsOf, type QueryOf, type ResponseOf, type Route, type RouteId } from '../api/routes.ts';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** The control plane's base URL; '' in a browser page served by it (same origin). */
  url: string;
  token?: string;
  /** The transport: `globalThis.fetch` unless given (node-client.ts gives one pinned to a CA). */
  fetch?: FetchLike;
  /** Sent with every request: a browser sends the session cookie with 'same-origin'. */
  credentials?: RequestCredentials;
  /**
   * The session's CSRF token, sent as `x-csrf-token` on every request that is not GET/HEAD
   * (the server refuses a cookie-authenticated change without it). A function is asked anew
   * on each request, so a sign-in after the client was made is seen.
   */
  csrf?: string | (() => string | undefined);
}

/** What `uploadBlob` streams: a Blob (a browser's File), bytes, a web stream or any async iterable of bytes (a Node Readable). */
export type BlobBody = Blob | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** An error answered by the API, with its envelope. */
export class ButterError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ButterError';
  }
}

type Args<I extends RouteId> = (ParamsOf<I> extends undefined ? { params?: undefined } : { params: ParamsOf<I> }) &
  (QueryOf<I> extends undefined ? { query?: undefined } : { query?: QueryOf<I> }) &
  (BodyOf<I> extends undefined ? { body?: undefined } : undefined extends BodyOf<I> ? { body?: BodyOf<I> } : { body: BodyOf<I> }) &
  // Routes that take an Idempotency-Key (the creates): one is made per call unless given.
  (HeadersOf<I> extends { 'Idempotency-Key'?: unknown } ? { idempotencyKey?: string } : { idempotencyKey?: undefined });

/** Whether a route reads an Idempotency-Key (its `headers` schema names it). */
const takesKey = (route: Route): boolean => route.headers !== undefined && 'Idempotency-Key' in (route.headers as unknown as { shape: object }).shape;

/**
 * Waits before each retry of a call that carries an Idempotency-Key, when no answer came (the
 * connection failed or dropped) or a proxy answered 502/503/504: the key makes the retry safe.
 */
const RETRY_DELAYS_MS = [250, 1_000];

export class Client {
  readonly url: string;
  private readonly token: string | undefined;
  /** Every request goes through here: it adds the credentials mode and, on changes, the CSRF header. */
  protected readonly fetch: FetchLike;

  constructor(opts: ClientOptions) {
    // A pinned CA is node-client.ts's: here it would be ignored, and HTTPS fail for no clear reason.
    if ((opts as { ca?: unknown }).ca !== undefined) throw new Error('a pinned CA (`ca`) needs the Node client: import { Client } from node-client.ts (or butter/sdk)');
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
    // Looked up per call, not bound once: a test (or a page) may replace globalThis.fetch.
    const transport: FetchLike = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    const { credentials, csrf } = opts;
    this.fetch = (input, init = {}) => {
      const method = (init.method ?? 'GET').toUpperCase();
      const token = typeof csrf === 'function' ? csrf() : csrf;
      const headers = token !== undefined && method !== 'GET' && method !== 'HEAD' ? { ...(init.headers as Record<string, string> | undefined), 'x-csrf-token': token } : init.headers;
      return transport(input, { ...init, ...(headers ? { headers } : {}), ...(credentials ? { credentials } : {}) });
    };
  }

  /**
   * The same control plane, over the same connection (and pinned CA), as another token: how an
   * agent asks `whoami` of the token a scraper of its `/metrics` presents.
   */
  withToken(token: string): Client {
    return Object.assign(Object.create(Client.prototype) as Client, this, { token });
  }

  private target(id: RouteId, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
    const route = routes[id];
    const path = route.path.replace(/\{(\w+)\}/g, (_m, k: string) => encodeURIComponent(String(params?.[k] ?? '')));
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    return `${this.url}${path}${qs.size ? `?${qs}` : ''}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  async call<I extends RouteId>(id: I, args: Args<I>, signal?: AbortSignal): Promise<ResponseOf<I>> {
    const route: Route = routes[id];
    const a = args as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown; idempotencyKey?: string };
    // One key per call, the same on every retry of it: sent as the draft's structured string.
    const key = takesKey(route) ? (a.idempotencyKey ?? globalThis.crypto.randomUUID()) : undefined;
    const send = () =>
      this.fetch(this.target(id, a.params, a.query), {
        method: route.method,
        headers: this.headers({ ...(a.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(key !== undefined ? { 'idempotency-key': /^".*"$/.test(key) ? key : `"${key}"` } : {}) }),
        ...(a.body !== undefined ? { body: JSON.stringify(a.body) } : {}),
        ...(signal ? { signal } : {}),
      });
    for (let attempt = 0; ; attempt++) {
      const retry = key !== undefined && attempt < RETRY_DELAYS_MS.length;
      let res: Response;
      try {
        res = await send();
      } catch (e) {
        if (!retry || signal?.aborted) throw e;
        await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
        continue;
      }
      if (retry && (res.status === 502 || res.status === 503 || res.status === 504)) {
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
        continue;
      }
      // A route's second status (readiness: 503) carries the route's own response, not an error.
      return (await this.decode(res, route.alsoStatus?.status)) as ResponseOf<I>;
    }
  }

  /**
   * A route's answer as text, for the routes that also answer another media type than JSON
   * (`alsoText`: the graph's `format=dot|svg`). Errors are `ButterError`s, as from `call`.
   */
  async callText<I extends RouteId>(id: I, args: Args<I>, signal?: AbortSignal): Promise<string> {
    const a = args as { params?: Record<string, unknown>; query?: Record<string, unknown> };
    const res = await this.fetch(this.target(id, a.params, a.query), { method: routes[id].method, headers: this.headers(), ...(signal ? { signal } : {}) });
    if (!res.ok) await this.decode(res);
    return res.text();
  }

  /**
   * A route's raw answer, its body unread (an event stream: sdk/events.ts), with extra request
   * headers (`Last-Event-ID`). An error answer is thrown as a `ButterError`, as from `call`.
   */
  async open<I extends RouteId>(id: I, args: Args<I> & { headers?: Record<string, string> }, signal?: AbortSignal): Promise<Response> {
    const a = args as { params?: Record<string, unknown>; query?: Record<string, unknown>; headers?: Record<string, string> };
    const res = await this.fetch(this.target(id, a.params, a.query), { method: routes[id].method, headers: this.headers(a.headers), ...(signal ? { signal } : {}) });
    if (!res.ok) await this.decode(res);
    return res;
  }

  /** Streams a blob up; the server refuses it when `sha256` is given and differs. */
  async uploadBlob(body: BlobBody, sha256?: string): Promise<ResponseOf<'uploadBlob'>> {
    // A Blob or bytes go as they are (a browser cannot stream a request body over HTTP/1.1);
    // anything iterable is streamed, never held whole in memory.
    const whole = body instanceof Uint8Array || (typeof Blob !== 'undefined' && body instanceof Blob);
    const res = await this.fetch(this.target('uploadBlob', undefined, { sha256 }), {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/octet-stream' }),
      body: whole ? (body as BodyInit) : toWebStream(body as ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>),
      ...(whole ? {} : { duplex: 'half' }),
    } as RequestInit);
    return (await this.decode(res)) as ResponseOf<'uploadBlob'>;
  }

  /** A node's upload of an export it was asked for (`NodeDesired.exports`): streamed, with the digest it computed. */
  async uploadExport(node: string, id: string, sha256: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    const res = await this.fetch(this.target('nodeExportUpload', { name: node, id }, { sha256 }), {
      method: 'PUT',
      headers: this.headers({ 'content-type': 'application/octet-stream' }),
      body: toWebStream(body),
      duplex: 'half',
    } as RequestInit);
    await this.decode(res);
  }

  /** A blob's bytes as a web stream (Node: `Readable.fromWeb(body)`). */
  async downloadBlob(sha256: string): Promise<{ size: number; body: ReadableStream<Uint8Array> }> {
    const res = await this.fetch(this.target('getBlob', { sha256 }), { headers: this.headers() });
    if (!res.ok || !res.body) await this.decode(res);
    return { size: Number(res.headers.get('content-length') ?? 0), body: res.body as ReadableStream<Uint8Array> };
  }

  private async decode(res: Response, alsoStatus?: number): Promise<unknown> {
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new ButterError(res.status, 'invalid', `unexpected reply (${res.status}): ${text.slice(0, 200)}`);
    }
    if (!res.ok && res.status !== alsoStatus) {
      const e = (json as Partial<ErrorBody>).error;
      throw new ButterError(res.status, e?.code ?? 'internal', e?.message ?? `HTTP ${res.status}`, e?.field);
    }
    return json;
  }
}

/** An async iterable of bytes as a web stream, pulled as the request is sent. */
function toWebStream(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return body;
  const it = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const next = await it.next();
      if (next.done) ctl.close();
      else ctl.enqueue(next.value);
    },
    async cancel(reason) {
      await it.return?.(reason);
    },
  });
}
