/**
 * The typed Butter client. Its methods come from the route table, so the CLI, the agent and
 * the web panel call the same API with the server's own types.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ErrorBody } from '../api/errors.ts';
import { trustingFetch } from './tls.ts';
import { routes, type BodyOf, type HeadersOf, type ParamsOf, type QueryOf, type ResponseOf, type Route, type RouteId } from '../api/routes.ts';

export interface ClientOptions {
  url: string;
  token?: string;
  /** PEM of the control plane's CA: HTTPS is then verified against it alone. */
  ca?: string;
}

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
  private readonly fetch: (input: string, init?: RequestInit) => Promise<Response>;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
    this.fetch = opts.ca ? trustingFetch(opts.ca) : globalThis.fetch;
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
    const key = takesKey(route) ? (a.idempotencyKey ?? randomUUID()) : undefined;
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
  async uploadBlob(body: Readable, sha256?: string): Promise<ResponseOf<'uploadBlob'>> {
    const res = await this.fetch(this.target('uploadBlob', undefined, { sha256 }), {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/octet-stream' }),
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    return (await this.decode(res)) as ResponseOf<'uploadBlob'>;
  }

  async downloadBlob(sha256: string): Promise<{ size: number; body: Readable }> {
    const res = await this.fetch(this.target('getBlob', { sha256 }), { headers: this.headers() });
    if (!res.ok || !res.body) await this.decode(res);
    return { size: Number(res.headers.get('content-length') ?? 0), body: Readable.fromWeb(res.body as never) };
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
