/**
 * `fetch` over one HTTP/2 connection per control plane (Node's own http2 client).
 *
 * Why not undici: its HTTP/2 support (6.x and 7.x, "experimental") opens a new connection for
 * each request in flight, so an agent with two long-polls and a report still held three. On
 * the control plane every TLS connection costs about 60 KB, which made the connections, not
 * the cluster's data, most of its memory. Here all of a client's requests are streams on one
 * connection, like kubelet's to the Kubernetes API server.
 *
 * Liveness: a connection whose peer vanished (a node cut off, a NAT forgetting it) would hold
 * every request on it forever, so it is pinged every PING_EVERY_MS and dropped when a ping
 * goes unanswered for as long; requests on it fail and the next one connects again.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';

const PING_EVERY_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;

export type ClosableFetch = ((input: string | URL, init?: RequestInit) => Promise<Response>) & { close(): Promise<void> };

export function http2Fetch(connect: { ca: string }): ClosableFetch {
  const sessions = new Map<string, Session>();

  const sessionFor = (origin: URL): Session => {
    let s = sessions.get(origin.origin);
    if (!s || s.h2.closed || s.h2.destroyed) {
      s = new Session(origin, connect.ca, () => sessions.delete(origin.origin));
      sessions.set(origin.origin, s);
    }
    return s;
  };

  const f = async (input: string | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input));
    const session = sessionFor(url);
    const headers: OutgoingHttpHeaders = { ':method': (init.method ?? 'GET').toUpperCase(), ':path': url.pathname + url.search };
    for (const [k, v] of new Headers(init.headers as HeadersInit | undefined)) headers[k] = v;
    return session.request(headers, init.body as string | ReadableStream | undefined, init.signal ?? undefined);
  };
  return Object.assign(f, {
    close: async () => {
      await Promise.all([...sessions.values()].map((s) => s.close()));
      sessions.clear();
    },
  });
}

class Session {
  readonly h2: ClientHttp2Session;
  private active = 0;
  private readonly pinger: NodeJS.Timeout;

  constructor(origin: URL, ca: string, onGone: () => void) {
    const host = origin.hostname.replace(/^\[|\]$/g, '');
    // `ca` replaces the default roots; certificate and host name are verified.
    this.h2 = http2.connect(origin.origin, { ca, ...(isIP(host) ? {} : { servername: host }), timeout: CONNECT_TIMEOUT_MS } as http2.SecureClientSessionOptions);
    this.h2.on('error', () => {}); // surfaces on the streams; the session is then dropped
    this.h2.once('close', onGone);
    this.h2.once('goaway', onGone);
    this.h2.unref(); // an idle connection does not keep a CLI process alive
    this.pinger = setInterval(() => {
      if (this.h2.destroyed) return clearInterval(this.pinger);
      const timer = setTimeout(() => this.h2.destroy(new Error(`no answer from ${origin.host} for ${PING_EVERY_MS / 1000} s`)), PING_EVERY_MS);
      timer.unref();
      const sent = this.h2.ping((err) => {
        clearTimeout(timer);
        if (err && !this.h2.destroyed) this.h2.destroy(err);
      });
      if (!sent) clearTimeout(timer);
    }, PING_EVERY_MS);
    this.pinger.unref();
    this.h2.once('close', () => clearInterval(this.pinger));
  }

  request(headers: OutgoingHttpHeaders, body: string | ReadableStream | undefined, signal: AbortSignal | undefined): Promise<Response> {
    signal?.throwIfAborted();
    const stream = this.h2.request(headers, { endStream: body === undefined });
    // Requests in flight keep the process alive; an idle connection does not.
    if (this.active++ === 0) this.h2.ref();
    stream.once('close', () => {
      if (--this.active === 0 && !this.h2.destroyed) this.h2.unref();
    });
    const abort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
    signal?.addEventListener('abort', abort, { once: true });
    stream.once('close', () => signal?.removeEventListener('abort', abort));
    if (typeof body === 'string') stream.end(body);
    else if (body !== undefined) Readable.fromWeb(body as never).pipe(stream);

    return new Promise<Response>((resolve, reject) => {
      const fail = (e: unknown) => reject(signal?.aborted ? signal.reason : e);
      stream.once('error', fail);
      stream.once('close', () => fail(new Error(`the control plane closed the stream (code ${stream.rstCode})`)));
      stream.once('response', (h: IncomingHttpHeaders) => {
        stream.off('error', fail);
        const status = Number(h[':status']);
        const out = new Headers();
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : String(v));
        const nobody = status === 204 || status === 304 || headers[':method'] === 'HEAD';
        if (nobody) stream.resume();
        resolve(new Response(nobody ? null : (Readable.toWeb(stream) as ReadableStream), { status, headers: out }));
      });
    });
  }

  close(): Promise<void> {
    clearInterval(this.pinger);
    return new Promise((resolve) => (this.h2.closed ? resolve() : this.h2.close(() => resolve())));
  }
}
